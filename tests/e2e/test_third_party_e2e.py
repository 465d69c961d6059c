"""A published third-party MCP server through the gateway, as users deploy it:
``@modelcontextprotocol/server-everything`` (the MCP project's reference server, Node,
pinned in tests/e2e/node/) with the official Python SDK client.

* its streamable HTTP and legacy HTTP+SSE transports in regular proxy mode (the client
  uses the gateway as its HTTP proxy);
* its stdio transport through the stdio shim (``mcp-gateway stdio``).

What is checked: a secret in tool arguments is redacted before the server sees it (its
``echo`` tool returns what it got), a secret the server leaks from its environment
(``get-env``) is redacted on the way back, progress notifications stream while the call
runs, and the audit trail records the findings. A sampling request that a user rule blocks
never reaches the client, and the server gets the refusal as the client's answer (its tool
fails at once instead of waiting). Skipped when node or npm is missing.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AWS_KEY_ID = "AKIAQ3EGUIF5ZK7XVJ2M"  # format-valid, not AWS's documentation example
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5" + "0Zb5Hm"  # valid CRC32 tail
MCP_GATEWAY = str(Path(sys.executable).parent / "mcp-gateway")  # the console command


def _entry(ts_sdk: Path) -> Path:
    return ts_sdk / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return {**env, **extra}


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def _findings(db: Path, want: set[str], server: str | None = None) -> set[str]:
    """The rules in the audit trail (the writer commits in batches: wait, bounded)."""
    sql = "SELECT f.rule FROM findings f JOIN messages m ON m.seq = f.message_seq"
    args: tuple = ()
    if server is not None:
        sql += " WHERE m.server = ?"
        args = (server,)
    deadline = time.monotonic() + 10
    while True:
        rules: set[str] = set()
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                rules = {r for (r,) in c.execute(sql, args)}
        if want <= rules or time.monotonic() > deadline:
            return rules
        time.sleep(0.2)


@pytest.fixture
def everything(ts_sdk, free_port, service, request):
    """server-everything on a loopback port, with a token in its environment."""
    transport = request.param
    port = free_port()
    env = _env(PORT=str(port), DEPLOY_TOKEN=GITHUB_TOKEN)
    service(["node", str(_entry(ts_sdk)), transport], port, env=env, cwd=ts_sdk)
    path = "/mcp" if transport == "streamableHttp" else "/sse"
    return f"http://127.0.0.1:{port}{path}", ("sse" if transport == "sse" else "streamable")


@pytest.mark.parametrize("everything", ["streamableHttp", "sse"], indirect=True)
async def test_reference_server_through_the_gateway_as_a_proxy(
    everything, mitmdump_factory, mcp_session
):
    url, transport = everything
    md = mitmdump_factory(shared=True)
    async with mcp_session(url, proxy=md.proxy_url, transport=transport, timeout=40) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"echo", "get-env", "trigger-long-running-operation"} <= names

        # client -> server: the key never reaches the server, which echoes what it got
        echoed = _text(await s.call_tool("echo", {"message": f"my key {AWS_KEY_ID}"}))
        assert echoed == "Echo: my key [REDACTED:aws_access_key_id]"

        # server -> client: a token from the server's environment is redacted
        env = _text(await s.call_tool("get-env", {}))
        assert '"DEPLOY_TOKEN": "[REDACTED:github_token]"' in env
        assert GITHUB_TOKEN not in env

        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None):
            seen.append(time.monotonic())

        t0 = time.monotonic()
        done = await s.call_tool(
            "trigger-long-running-operation",
            {"duration": 1.5, "steps": 3},
            progress_callback=on_progress,
        )
        end = time.monotonic()
        assert "completed" in _text(done)
        assert len(seen) == 3
        assert seen[0] - t0 < (end - t0) - 0.4  # streamed while the call ran
    md.wait_log(url.rsplit("/", 1)[0], timeout=5)  # it really went through this mitmdump
    assert {"aws-access-key-id", "github-token"} <= _findings(
        md.audit_db, {"aws-access-key-id", "github-token"}
    )


async def test_reference_server_over_stdio_through_the_shim(ts_sdk, mitmdump_factory, tmp_path):
    md = mitmdump_factory(shared=True)
    params = StdioServerParameters(
        command=MCP_GATEWAY,
        args=[
            "stdio", "--name", "everything-stdio", "--gateway", md.proxy_url,
            "--env", f"DEPLOY_TOKEN={GITHUB_TOKEN}", "--", "node", str(_entry(ts_sdk)), "stdio",
            ],
        env=_env(),
    )  # fmt: skip
    with open(tmp_path / "err.log", "w+") as errlog, anyio.fail_after(60):
        async with stdio_client(params, errlog=errlog) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                echoed = _text(await s.call_tool("echo", {"message": f"key {AWS_KEY_ID}"}))
                assert echoed == "Echo: key [REDACTED:aws_access_key_id]"
                env = _text(await s.call_tool("get-env", {}))
                assert '"DEPLOY_TOKEN": "[REDACTED:github_token]"' in env
        errlog.seek(0)
        assert GITHUB_TOKEN not in errlog.read()
    want = {"aws-access-key-id", "github-token"}
    assert want <= _findings(md.audit_db, want, server="everything-stdio")


BLOCK_SAMPLING_MARKER = """rules:
  - id: test-sampling-marker
    description: a marker that must not reach the client's LLM
    type: custom_marker
    severity: high
    action: block
    pattern: 'MARKER-[0-9]{6}'
    scope: {direction: [s2c], methods: ['sampling/*']}
"""


@pytest.mark.parametrize("everything", ["streamableHttp", "sse"], indirect=True)
async def test_reference_server_gets_the_refusal_of_its_sampling_request(
    everything, mitmdump_factory, mcp_session, tmp_path
):
    # The server asks the client's LLM with a prompt a user rule blocks (only in sampling
    # requests, so the tool call carrying it passes). The client never sees the request; the
    # server gets the gateway's error as the client's answer, so its tool fails at once.
    url, transport = everything
    rules = tmp_path / "block-sampling.yaml"
    rules.write_text(BLOCK_SAMPLING_MARKER)
    root = Path(__file__).resolve().parents[2]
    md = mitmdump_factory(
        extra_args=["--set", f"mcp_rules={root / 'rules'}", "--set", f"mcp_rules={rules}"]
    )
    asked: list = []

    async def sampling(_ctx, params):
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="ok"), model="m"
        )

    t0 = time.monotonic()
    async with mcp_session(
        url, proxy=md.proxy_url, transport=transport, sampling_callback=sampling, timeout=40
    ) as s:
        try:
            res = await s.call_tool("trigger-sampling-request", {"prompt": "say MARKER-424242"})
            refused = _text(res) if res.isError else None
        except McpError as e:
            refused = str(e)
        assert refused is not None and "test-sampling-marker" in refused
        assert asked == []
        res = await s.call_tool("trigger-sampling-request", {"prompt": "hello"})
        assert not res.isError and '"model": "m"' in _text(res)
        assert len(asked) == 1
    assert time.monotonic() - t0 < 30  # answered, not timed out
