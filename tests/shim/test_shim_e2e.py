"""End to end: the MCP SDK stdio client -> `mcp-gateway stdio` -> a real gateway
(`mitmdump -s addons/gateway.py`) -> the bridge -> a real stdio server.

The gateway's rules redact a secret in a tool result, audit rows carry the shim's --name,
sampling and server notifications cross the gateway's streamed SSE."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError
from mcp.types import CreateMessageResult, ElicitResult, ListRootsResult, Root, TextContent
from shimtest_helpers import FIXTURE, INIT, PY, ROOT, SHIM, Mitmdump, RawShim

GATEWAY = ROOT / "addons" / "gateway.py"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (ROOT / "addons" / "mcp_gateway" / "core.py").exists(), reason="no gateway core yet"
    ),
]

FAKE_AWS = "AKIA" + "Q3ZR7XWJ5M2TBN4K"
FAKE_GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5" + "0Zb5Hm"  # valid CRC32 tail


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw")
    m = Mitmdump(tmp, scripts=[str(GATEWAY)], options={"mcp_audit_db": str(tmp / "audit.db")})
    m.audit_db = tmp / "audit.db"
    yield m
    m.stop()


def params(gw: Mitmdump, name: str, server: list[str] | None = None) -> StdioServerParameters:
    server = server if server is not None else [PY, FIXTURE]
    return StdioServerParameters(
        command=PY,
        args=[*SHIM[1:], "stdio", "--name", name, "--gateway", gw.url, "--", *server],
        cwd=str(ROOT),
    )


async def sampling_cb(context, p):
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="sampled"), model="m"
    )


async def elicit_cb(context, p):
    assert p.message == "favourite colour?"
    return ElicitResult(action="accept", content={"color": "teal"})


async def roots_cb(context):
    return ListRootsResult(roots=[Root(uri="file:///work/project", name="project")])


def text_of(result) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def audit_rows(db: Path, sql: str, args: tuple, want: int, timeout: float = 15.0) -> list:
    """Poll the audit DB (written by a background thread) until `want` rows match."""
    deadline = time.monotonic() + timeout
    rows: list = []
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                    rows = c.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                rows = []
            if len(rows) >= want:
                return rows
        time.sleep(0.1)
    return rows


async def test_shim_through_gateway_redacts_and_audits(gateway, tmp_path):
    logs: list = []

    async def on_log(p):
        logs.append(p.data)

    with open(tmp_path / "err.log", "w+") as errlog, anyio.fail_after(90):
        async with stdio_client(params(gateway, "fixture-e2e"), errlog=errlog) as (r, w):
            async with ClientSession(
                r,
                w,
                sampling_callback=sampling_cb,
                logging_callback=on_log,
                elicitation_callback=elicit_cb,
                list_roots_callback=roots_cb,
            ) as s:
                await s.initialize()
                tools = {t.name for t in (await s.list_tools()).tools}
                assert "fake_secret" in tools
                assert text_of(await s.call_tool("echo", {"text": "hello"})) == "hello"
                # several MB each way through the gateway
                big = "é" * 1_500_000
                assert text_of(await s.call_tool("echo", {"text": big})) == big
                secret_text = text_of(await s.call_tool("fake_secret", {}))
                assert secret_text.startswith("config: aws_access_key_id=")
                assert FAKE_AWS not in secret_text
                assert FAKE_GITHUB not in secret_text
                # sampling: a server->client request on the POST's SSE stream, answered by a POST
                assert (
                    text_of(await s.call_tool("ask_llm", {"prompt": "hi"})) == "model said: sampled"
                )
                # elicitation and roots take the same way
                res = await s.call_tool("ask_user", {"question": "favourite colour?"})
                assert text_of(res) == "user chose teal"
                assert text_of(await s.call_tool("roots", {})) == "file:///work/project"
                # a notification with no request in flight: the GET stream, streamed by the gateway
                await s.call_tool("later_notice", {"delay": 0.3})
                for _ in range(100):
                    if "later notice" in logs:
                        break
                    await asyncio.sleep(0.05)
                assert "later notice" in logs
        errlog.seek(0)
        err = errlog.read()
    assert FAKE_AWS not in err and "cannot reach" not in err

    rows = audit_rows(
        gateway.audit_db,
        "select direction, kind, method, name, action from messages where server = ?"
        " and method = 'tools/call'",
        ("fixture-e2e",),
        want=8,
    )
    names = {(d, k, n) for d, k, _, n, _ in rows}
    assert ("c2s", "request", "fake_secret") in names
    assert ("s2c", "result", "fake_secret") in names
    assert ("s2c", "result", "fake_secret", "redact") in {(d, k, n, a) for d, k, _, n, a in rows}
    findings = audit_rows(
        gateway.audit_db,
        "select f.rule, f.masked from findings f join messages m on m.seq = f.message_seq"
        " where m.server = ?",
        ("fixture-e2e",),
        want=1,
    )
    assert any("aws" in rule for rule, _ in findings), findings
    assert all(FAKE_AWS not in (masked or "") for _, masked in findings)
    # stdin closed: the shim ended the session while its bridge still answered
    deletes = audit_rows(
        gateway.audit_db,
        "select status from messages where server = ? and http_method = 'DELETE'",
        ("fixture-e2e",),
        want=1,
    )
    assert [s for (s,) in deletes] == [204], deletes
    # the shim's loopback address never appears as the server's name
    others = audit_rows(
        gateway.audit_db,
        "select distinct server from messages where server like '127.0.0.1:%'",
        (),
        want=0,
        timeout=0.5,
    )
    assert others == []


async def test_a_signalled_shim_ends_its_session_at_the_gateway(gateway):
    """Claude Code stops its stdio servers with SIGINT and SIGTERM 0.1 s later, without closing
    stdin: the session must still end with a DELETE the gateway audits (status 204)."""
    shim = await RawShim.start("--name", "signalled", "--gateway", gateway.url)
    try:
        await shim.send(INIT)
        assert (await shim.recv_id(0, timeout=60))["result"]
        await shim.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (await shim.call(1, "echo", {"text": "x"}, timeout=60))["result"]
        shim.proc.send_signal(signal.SIGINT)
        await asyncio.sleep(0.1)
        shim.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(shim.proc.wait(), 10) == 128 + signal.SIGINT
    finally:
        await shim.close()
    deletes = audit_rows(
        gateway.audit_db,
        "select status from messages where server = ? and http_method = 'DELETE'",
        ("signalled",),
        want=1,
    )
    assert [s for (s,) in deletes] == [204], deletes


async def test_published_server_time_through_gateway(gateway, tmp_path):
    server = [PY, "-m", "mcp_server_time", "--local-timezone", "UTC"]
    with open(tmp_path / "err.log", "w") as errlog, anyio.fail_after(60):
        async with stdio_client(params(gateway, "time", server), errlog=errlog) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                res = await s.call_tool("get_current_time", {"timezone": "UTC"})
                assert not res.isError and "UTC" in text_of(res)
    rows = audit_rows(
        gateway.audit_db,
        "select name from messages where server = 'time' and method = 'tools/call'",
        (),
        want=2,
    )
    assert ("get_current_time",) in rows


async def test_crash_through_gateway(gateway, tmp_path):
    with open(tmp_path / "err.log", "w+") as errlog, anyio.fail_after(60):
        async with stdio_client(params(gateway, "crashy"), errlog=errlog) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                with pytest.raises(McpError, match="exited with code 3"):
                    await s.call_tool("crash", {})
                assert text_of(await s.call_tool("echo", {"text": "back"})) == "back"


@pytest.mark.parametrize("mode", ["auto", "2026-07-28", "legacy"])
def test_modern_era_client_and_server_through_shim_and_gateway(gateway, mode, mcp2_python):
    MCP2_PY = mcp2_python  # noqa: N806
    import json
    import subprocess

    servers = Path(__file__).resolve().parent / "servers"
    cmd = [
        str(MCP2_PY),
        str(servers / "modern_stdio_client.py"),
        mode,
        *SHIM,
        "stdio",
        "--name",
        f"modern-{mode}",
        "--gateway",
        gateway.url,
        "--",
        str(MCP2_PY),
        str(servers / "modern_stdio_server.py"),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["version"] == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert out["tools"] == ["echo", "grüße"]
    assert out["echo"] == "hi" and out["gruss"] == "hallo Welt"
    rows = audit_rows(
        gateway.audit_db,
        "select name from messages where server = ? and method = 'tools/call' and direction = 'c2s'",
        (f"modern-{mode}",),
        want=2,
    )
    assert sorted(n for (n,) in rows) == ["echo", "grüße"]


async def test_bridge_mode_behind_the_gateway(gateway, tmp_path):
    """`mcp-gateway bridge` + an HTTP client that uses the gateway as its proxy."""
    import subprocess

    import httpx
    from mcp.client.streamable_http import streamable_http_client
    from shimtest_helpers import free_port

    port = free_port()
    err = open(tmp_path / "bridge.err", "w+b")
    proc = subprocess.Popen(
        [*SHIM, "bridge", "--port", str(port), "--token", "tok-1", "--", PY, FIXTURE],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        cwd=ROOT,
    )
    try:
        for _ in range(300):
            err.seek(0)
            if b"serving" in err.read():
                break
            await asyncio.sleep(0.1)
        headers = {"authorization": "Bearer tok-1", "mcp-gateway-server": "bridged"}
        with anyio.fail_after(60):
            async with (
                httpx.AsyncClient(
                    proxy=gateway.url, trust_env=False, headers=headers, timeout=30
                ) as client,
                streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (
                    r,
                    w,
                    _,
                ),
            ):
                async with ClientSession(r, w, sampling_callback=sampling_cb) as s:
                    await s.initialize()
                    secret_text = text_of(await s.call_tool("fake_secret", {}))
                    assert FAKE_AWS not in secret_text
                    assert text_of(await s.call_tool("ask_llm", {"prompt": "x"})) == (
                        "model said: sampled"
                    )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        err.close()
    rows = audit_rows(
        gateway.audit_db,
        "select name from messages where server = 'bridged' and method = 'tools/call'",
        (),
        want=4,
    )
    assert ("fake_secret",) in rows
