"""The official TypeScript MCP SDK through the gateway, both ways, in reverse mode.

* its client -> gateway -> a FastMCP server (tests/e2e/servers/everything.py);
* the Python SDK client -> gateway -> its server (tests/e2e/node/server.mjs).

The SDK (pinned with its lock file in tests/e2e/node/) is installed once with `npm ci` into
``<venv>/node-sdk`` (the ``ts_sdk`` fixture in conftest.py). Node 20 clients have no proxy support of their own (NODE_USE_ENV_PROXY
arrives in Node 24), so these run in reverse mode. Skipped when node or npm is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import types
from mcp.shared.exceptions import McpError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AWS_KEY_ID = "AKIAQ3EGUIF5ZK7XVJ2M"  # format-valid, not AWS's documentation example


def _everything():
    """tests/e2e/servers/everything.py as a module (its format-valid fake GitHub token)."""
    path = Path(__file__).resolve().parent / "servers" / "everything.py"
    spec = importlib.util.spec_from_file_location("mcp_gateway_e2e_everything", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return {**env, **extra}


PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBq8Zl3Wc1Rv9Tn4Xk2Jm7Hs5Ld0Fg3Pb6Nc9Vy1Qw8AAAAJgPq2Mz\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@dataclass
class NodeServer:
    port: int
    proc: subprocess.Popen
    path: str = "/mcp"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run_client(
    ts_sdk: Path, url: str, echo: str, leak: dict, node: str = "node", **env: str
) -> dict:
    args = json.dumps({"echo": echo, "leak": leak})
    r = subprocess.run(
        [node, str(ts_sdk / "client.mjs"), url, args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(**env),
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["streamable", "json"])
def test_typescript_client_through_the_gateway(
    ts_sdk, mitmdump_factory, mcp_server_factory, transport
):
    server = mcp_server_factory(transport, fresh=True)
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    out = run_client(ts_sdk, md.url_for(server), f"my key {AWS_KEY_ID}", {"kind": "github"})

    assert {"echo", "leak", "slow_progress"} <= set(out["tools"])
    assert out["slow"] == "done after 3 steps"
    if transport == "streamable":
        # progress streamed while the call runs (3 steps, 0.3 s apart), not all at the end
        assert [p for p, _ in out["progress"]] == [1, 2, 3]
        assert out["progress"][0][1] < out["slow_ms"] - 400, out
    # the AWS key was redacted on its way to the server, which echoed what it got
    assert out["echo"] == "my key [REDACTED:aws_access_key_id]", out
    assert AWS_KEY_ID not in json.dumps(server.calls())
    # the GitHub token in the tool result was redacted on its way back
    assert out["leak"].startswith("GITHUB_TOKEN=[REDACTED:github_token]"), out
    md.wait_log("/mcp", timeout=5)  # it really went through this mitmdump


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_node24_client_finds_the_gateway_in_its_environment(
    ts_sdk, node24, mitmdump_factory, mcp_server_factory, tls_cert, scheme
):
    """Regular proxy mode as the README sets it up for Node >= 24: NODE_USE_ENV_PROXY=1,
    HTTP(S)_PROXY and NODE_EXTRA_CA_CERTS (the gateway's CA), the client unchanged."""
    tls = tls_cert if scheme == "https" else None
    server = mcp_server_factory("streamable", tls=tls, fresh=True)
    options = {"ssl_verify_upstream_trusted_ca": str(tls_cert.certfile)} if tls else {}
    md = mitmdump_factory(options=options, shared=True)
    env = {
        "NODE_USE_ENV_PROXY": "1",
        "HTTP_PROXY": md.proxy_url,
        "HTTPS_PROXY": md.proxy_url,
        "NODE_EXTRA_CA_CERTS": str(md.ca_file),
    }
    out = run_client(ts_sdk, server.url, f"my key {AWS_KEY_ID}", {"kind": "github"}, node24, **env)

    assert out["echo"] == "my key [REDACTED:aws_access_key_id]", out
    assert AWS_KEY_ID not in json.dumps(server.calls())
    assert out["leak"].startswith("GITHUB_TOKEN=[REDACTED:github_token]"), out
    assert [p for p, _ in out["progress"]] == [1, 2, 3]
    assert out["progress"][0][1] < out["slow_ms"] - 400, out  # streamed
    md.wait_log(f"127.0.0.1:{server.port}", timeout=5)


@pytest.fixture
def node_server(ts_sdk, free_port, request):
    mode = request.param
    port = free_port()
    token = _everything().github_token()
    log = ts_sdk / f"server-{port}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            ["node", str(ts_sdk / "server.mjs"), str(port), mode],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=_env(LEAK_TEXT=f"deploy token {token}"),
            cwd=ts_sdk,
        )
    try:
        deadline = time.monotonic() + 20
        while b"listening" not in log.read_bytes():
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the node server did not start"
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        yield NodeServer(port, proc), mode, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        print(f"\n----- node server log -----\n{log.read_text(errors='replace')[-3000:]}")
        log.unlink(missing_ok=True)


@pytest.mark.parametrize("node_server", ["sse", "json"], indirect=True)
async def test_python_client_to_a_typescript_server_through_the_gateway(
    node_server, mitmdump_factory, mcp_session
):
    server, mode, token = node_server
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    async with mcp_session(md.url_for(server), timeout=20) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"echo", "leak", "slow"} <= names

        leak = await s.call_tool("leak", {})
        (block,) = leak.content
        assert isinstance(block, types.TextContent)
        assert block.text == "deploy token [REDACTED:github_token]"
        assert token not in block.text

        seen: list[tuple[float, float]] = []

        async def on_progress(progress: float, total: float | None, message: str | None):
            seen.append((progress, time.monotonic()))

        t0 = time.monotonic()
        done = await s.call_tool("slow", {"steps": 3}, progress_callback=on_progress)
        end = time.monotonic()
        assert isinstance(done.content[0], types.TextContent)
        assert done.content[0].text == "done 3"
        if mode == "sse":
            assert [p for p, _ in seen] == [1, 2, 3]
            assert seen[0][1] - t0 < (end - t0) - 0.3  # streamed, not buffered to the end

        with pytest.raises(McpError, match=r"blocked by mcp-gateway rule private-key"):
            await s.call_tool("echo", {"text": f"keep this\n{PEM}"})
        # the session goes on after the refusal
        ok = await s.call_tool("echo", {"text": "harmless"})
        assert isinstance(ok.content[0], types.TextContent) and ok.content[0].text == "harmless"
    assert "PRIVATE KEY" not in md.log_text()
    # the audit trail has both findings (the writer commits in batches: wait, bounded)
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(md.audit_db)
        try:
            rules = {r for (r,) in db.execute("SELECT rule FROM findings")}
        finally:
            db.close()
        if {"github-token", "private-key"} <= rules or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"github-token", "private-key"} <= rules


@pytest.mark.parametrize("node_server", ["sse"], indirect=True)
async def test_python_client_resumes_and_answers_a_typescript_server_through_the_gateway(
    node_server, mitmdump_factory, mcp_session
):
    """The TypeScript server keeps an event store: ``long`` closes its answer stream, the
    Python client resumes it (GET with Last-Event-ID) and the answer, replayed there, is still
    redacted and audited as ``long``'s. ``ask`` sends an elicitation request: its question
    reaches the user redacted, and so does the user's answer reach the server."""
    server, _mode, token = node_server
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    asked: list[str] = []

    async def on_elicit(ctx, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": f"Bob {token}"})

    async with mcp_session(md.url_for(server), timeout=20, elicitation_callback=on_elicit) as s:
        done = await s.call_tool("long", {})
        assert isinstance(done.content[0], types.TextContent)
        assert done.content[0].text == "long done deploy token [REDACTED:github_token]"
        got = await s.call_tool("ask", {})
        assert asked == ["give your name (deploy token [REDACTED:github_token])"]
        assert isinstance(got.content[0], types.TextContent)
        assert got.content[0].text == 'got {"name":"Bob [REDACTED:github_token]"}'
    # (the server sends the question on the session's GET stream, which names no tool)
    want = {
        ("GET", "s2c", "result", "tools/call", "long", "redact"),  # the resumed stream
        ("GET", "s2c", "request", "elicitation/create", None, "redact"),
        ("POST", "c2s", "result", "elicitation/create", None, "redact"),
    }
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(md.audit_db)
        try:
            rows = set(
                db.execute(
                    "SELECT http_method, direction, kind, method, name, action FROM messages"
                    " WHERE name = 'long' OR method = 'elicitation/create'"
                )
            )
        finally:
            db.close()
        if want <= rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert want <= rows


@pytest.mark.parametrize("node_server", ["sse"], indirect=True)
def test_sampling_answers_in_a_refused_batch_reach_the_typescript_server(
    node_server, mitmdump_factory
):
    """2025-03-26 lets a client answer two sampling requests in one batch. One answer holds
    a private key, so the gateway refuses the batch as a whole: the server gets an error in
    place of each answer and the tool call ends at once (the answers were dropped, and the
    call waited for the SDK's 60 s request timeout)."""
    import httpx

    server, _mode, _token = node_server
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    url = md.url_for(server)
    h = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }
    with httpx.Client(timeout=httpx.Timeout(60.0)) as c:  # (a loaded machine starts slowly)
        r = c.post(url, json=init, headers=h)
        assert r.status_code == 200, r.text
        h |= {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-03-26"}
        c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        call["params"] = {"name": "sample2", "arguments": {}}
        asked: list[dict] = []
        result = None
        t0 = time.monotonic()
        with c.stream("POST", url, json=call, headers=h) as resp:
            for line in resp.iter_lines():  # bounded: the stream ends with the call's answer
                if not line.startswith("data:"):
                    continue
                m = json.loads(line[5:])
                if m.get("method") == "sampling/createMessage":
                    asked.append(m)
                    if len(asked) == 2:
                        t0 = time.monotonic()
                        texts = [f"keep this\n{PEM}", "hello"]
                        batch = [
                            {
                                "jsonrpc": "2.0",
                                "id": q["id"],
                                "result": {
                                    "role": "assistant",
                                    "model": "m",
                                    "content": {"type": "text", "text": t},
                                },
                            }
                            for q, t in zip(asked, texts, strict=True)
                        ]
                        a = c.post(url, json=batch, headers=h)
                        assert a.status_code == 202, a.text  # no request in it: nothing to answer
                elif m.get("id") == 1:
                    result = m["result"]
                    break
    assert len(asked) == 2 and result is not None
    assert time.monotonic() - t0 < 10  # at once, not after the server's timeout
    assert result.get("isError") is True
    (block,) = result["content"]
    assert "-32061" in block["text"] or "-32067" in block["text"], block
    assert "PRIVATE KEY" not in md.log_text()
