"""MCP over WebSocket through a real mitmdump: the official Python SDK 1.x's WebSocket client
(``mcp.client.websocket``, subprotocol "mcp") and server (``mcp.server.websocket``).

WebSocket is not a transport of the MCP specification, but the SDK ships one, so a client
could otherwise carry MCP past the scanner. Checked in reverse mode: a token in tool
arguments is redacted before the server sees it, a token in a tool result is redacted on
the way back, a private key sent by the client is blocked with a JSON-RPC error naming the
rule, and the audit records the messages as transport "websocket". Through a plain mitmdump
the token reaches the server.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import anyio
import pytest
from mcp import ClientSession, types
from mcp.client.websocket import websocket_client
from mcp.shared.exceptions import McpError

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings(
        "ignore:The WebSocket client transport is deprecated:DeprecationWarning"
    ),
]

BODY = "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0"  # the test server's github_token() body


def _token() -> str:
    import zlib

    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n, tail = zlib.crc32(BODY.encode()), ""
    for _ in range(6):
        n, r = divmod(n, 62)
        tail = alphabet[r] + tail
    return f"ghp_{BODY}{tail}"


TOKEN = _token()
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(
        "MIIEowIBAAKCAQEAx" + f"{i:02d}" + "q8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0aB3dEf5hIj7lMn9pQr1tUv"
        for i in range(6)
    )
    + "\n-----END RSA PRIVATE KEY-----"
)


@contextlib.asynccontextmanager
async def _session(url: str):
    """An initialized SDK session over the SDK's WebSocket client, bounded in time."""
    with anyio.fail_after(60):
        async with websocket_client(url) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def _audit_rows(db, want: int) -> list[tuple]:
    deadline = time.monotonic() + 10
    while True:
        rows = []
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                rows = c.execute(
                    "SELECT m.kind, m.method, m.name, m.action, m.findings FROM messages m "
                    "WHERE m.transport = 'websocket' ORDER BY m.seq"
                ).fetchall()
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


async def test_websocket_mcp_is_scanned_redacted_blocked_and_audited(
    mcp_server_factory, mitmdump_factory
):
    server = mcp_server_factory("websocket", fresh=True)
    gw = mitmdump_factory(mode=f"reverse:{server.base}")
    url = gw.url_for(server).replace("http://", "ws://")
    async with _session(url) as s:
        r = await s.call_tool("echo", {"text": f"deploy with {TOKEN}"})
        assert TOKEN not in _text(r) and "[REDACTED:github_token]" in _text(r)
        leaked = await s.call_tool("leak", {"kind": "github"})
        assert TOKEN not in _text(leaked)
        assert "GITHUB_TOKEN=[REDACTED:github_token]" in _text(leaked)
        with pytest.raises(McpError) as blocked:
            await s.call_tool("echo", {"text": PEM})
        assert "private-key" in str(blocked.value) and "PRIVATE KEY" not in str(blocked.value)
        # the session goes on after a refusal
        assert _text(await s.call_tool("add", {"a": 2, "b": 3})) == "5"
    calls = server.calls()
    echoed = [c["arguments"]["text"] for c in calls if c["tool"] == "echo"]
    assert echoed == ["deploy with [REDACTED:github_token]"]  # the key never arrived
    rows = _audit_rows(gw.audit_db, 10)
    assert ("request", "tools/call", "echo", "redact", 1) in rows
    assert ("request", "tools/call", "echo", "block", 1) in rows
    assert any(r[1:4] == ("tools/call", "leak", "redact") for r in rows if r[0] == "result")


async def test_through_a_plain_mitmdump_the_token_reaches_the_server(
    mcp_server_factory, mitmdump_factory
):
    server = mcp_server_factory("websocket", fresh=True)
    plain = mitmdump_factory(gateway=False, mode=f"reverse:{server.base}")
    url = plain.url_for(server).replace("http://", "ws://")
    async with _session(url) as s:
        r = await s.call_tool("echo", {"text": f"deploy with {TOKEN}"})
        assert TOKEN in _text(r)


async def test_a_gateway_key_authenticates_a_websocket_and_is_swapped_for_the_upstream_one(
    mcp_server_factory, mitmdump_factory, tmp_path, monkeypatch
):
    # The SDK's WebSocket client sends no headers; other clients send a credential in the
    # handshake. The gateway used to remove a gateway key from it as a stray credential
    # before making the connection's exchange: a client with a valid key was refused under
    # auth.required, anonymous otherwise, and the server never got its own credential.
    import json

    import websockets
    from mcp_gateway.identity.keys import create_key

    monkeypatch.setenv("MGW_WS_UPSTREAM", "ws-upstream-secret-4711")
    db = tmp_path / "keys.db"
    key, _ = create_key(db, "ws", "agent-ws", [])
    server = mcp_server_factory("websocket", fresh=True)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        f"keys_db: {db}\nauth: {{required: true}}\nservers:\n"
        f'  - match: "127.0.0.1:{server.port}"\n'
        "    credential: {type: bearer, ref: env://MGW_WS_UPSTREAM}\n"
    )
    gw = mitmdump_factory(mode=f"reverse:{server.base}", options={"mcp_config": str(cfg)})
    url = gw.url_for(server).replace("http://", "ws://")
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-ws", "version": "1"},
        },
    }
    with anyio.fail_after(30):
        async with websockets.connect(
            url, subprotocols=["mcp"], additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send(json.dumps(init))
            answer = json.loads(await ws.recv())
        assert answer.get("result", {}).get("serverInfo"), answer
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=["mcp"]):
                pass
    assert refused.value.response.status_code == 401
    shakes = [r["headers"] for r in server.requests() if r["method"] == "WEBSOCKET"]
    # one handshake reached the server, with the upstream credential and not the key
    assert [h.get("authorization") for h in shakes] == ["Bearer ws-upstream-secret-4711"]
    with sqlite3.connect(f"file:{gw.audit_db}?mode=ro", uri=True, timeout=1) as c:
        deadline = time.monotonic() + 10
        while True:
            rows = c.execute(
                "SELECT consumer, action FROM messages WHERE method = 'initialize' "
                "AND direction = 'c2s'"
            ).fetchall()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert rows == [("agent-ws", "pass")]
