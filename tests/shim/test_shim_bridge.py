"""The bridge: a stdio server as a loopback streamable-HTTP endpoint (in-process, SDK HTTP
client), its access checks, sessions, routing, and the pure helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time

import anyio
import httpx
import orjson
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.types import CreateMessageResult, TextContent
from mcp_gateway.shim.bridge import Bridge, frame, peek_id
from mcp_gateway.shim.refs import RefError, parse_env_assignments, resolve_ref
from mcp_gateway.shim.relay import LineReader, iter_sse
from shimtest_helpers import FIXTURE, INIT, PY, ROOT, SHIM, free_port, pid_alive, wait_gone

TOKEN = "test-token-123"
HDRS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "authorization": f"Bearer {TOKEN}",
}


@pytest.fixture
async def bridge():
    b = Bridge([PY, FIXTURE], None, token=TOKEN, timeout=30, backoff_initial=0.2)
    await b.start()
    try:
        yield b
    finally:
        await b.close()
    assert b.child_pid is None or not pid_alive(b.child_pid)


def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        trust_env=False, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
    )


async def sampling_cb(context, params):
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="42"), model="m"
    )


def text_of(result) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_sdk_http_client_through_bridge(bridge):
    logs: list = []

    async def on_log(params):
        logs.append(params.data)

    with anyio.fail_after(60):
        async with (
            http() as client,
            streamable_http_client(bridge.url, http_client=client) as (
                r,
                w,
                _,
            ),
        ):
            async with ClientSession(
                r, w, sampling_callback=sampling_cb, logging_callback=on_log
            ) as s:
                await s.initialize()
                assert bridge.session_id is not None
                assert "echo" in {t.name for t in (await s.list_tools()).tools}
                assert text_of(await s.call_tool("echo", {"text": "x"})) == "x"
                assert text_of(await s.call_tool("ask_llm", {"prompt": "q"})) == "model said: 42"
                progress: list = []

                async def on_progress(p, total, message):
                    progress.append(p)

                res = await s.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
                assert text_of(res) == "3 steps"
                assert progress == [1, 2, 3]
                # a server message with no request in flight travels on the GET stream
                assert text_of(await s.call_tool("later_notice", {"delay": 0.3})) == "scheduled"
                for _ in range(100):
                    if "later notice" in logs:
                        break
                    await asyncio.sleep(0.05)
                assert "later notice" in logs
    # the SDK client sent DELETE on close
    assert bridge.session_id is None


async def test_crash_mid_request_then_restart_keeps_the_session(bridge):
    with anyio.fail_after(60):
        async with (
            http() as client,
            streamable_http_client(bridge.url, http_client=client) as (
                r,
                w,
                _,
            ),
        ):
            async with ClientSession(r, w) as s:
                await s.initialize()
                sid = bridge.session_id
                first = bridge.child_pid
                with pytest.raises(McpError, match="exited with code 3.*being restarted"):
                    await s.call_tool("crash", {})
                assert text_of(await s.call_tool("echo", {"text": "again"})) == "again"
                assert bridge.child_pid != first
                assert bridge.session_id == sid
                assert await asyncio.to_thread(wait_gone, [first], 5) == []


async def post(client: httpx.AsyncClient, url: str, body, headers=None) -> httpx.Response:
    h = dict(HDRS)
    h.update(headers or {})
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(url, content=data, headers=h)


async def test_access_checks(bridge):
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        url = bridge.url
        r = await c.post(
            url, content=orjson.dumps(INIT), headers={"content-type": "application/json"}
        )
        assert r.status_code == 401
        r = await post(c, url, INIT, {"authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = await post(c, url, INIT, {"authorization": "", "mcp-gateway-shim-token": TOKEN})
        assert r.status_code == 200
        r = await post(c, url, INIT, {"host": "evil.example:80"})
        assert r.status_code == 421
        r = await post(c, url, INIT, {"origin": "https://evil.example"})
        assert r.status_code == 403
        r = await post(c, url, INIT, {"origin": "null"})
        assert r.status_code == 403
        r = await post(c, url, INIT, {"origin": "http://localhost:3000"})
        assert r.status_code == 200
        r = await post(c, url.replace("/mcp", "/other"), INIT)
        assert r.status_code == 404
        r = await c.request("PUT", url, headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 405


async def test_sessions_json_mode_notifications_and_batches(bridge):
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        url = bridge.url
        r = await post(c, url, INIT)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        sid = r.headers["mcp-session-id"]
        assert len(sid) >= 32 and sid.isascii()
        events = [ln for ln in r.text.splitlines() if ln.startswith("data: ")]
        assert orjson.loads(events[-1][6:])["result"]["serverInfo"]["name"] == "shim-fixture"
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await post(c, url, note)).status_code == 400  # no session id
        assert (await post(c, url, note, {"mcp-session-id": "nope"})).status_code == 404
        assert (await post(c, url, note, {"mcp-session-id": sid})).status_code == 202
        # a client that accepts JSON only gets JSON
        req = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
        r = await post(c, url, req, {"mcp-session-id": sid, "accept": "application/json"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json()["id"] == 7 and r.json()["result"]["tools"]
        # batches, non-JSON and non-JSON-RPC bodies are refused
        r = await post(c, url, [req], {"mcp-session-id": sid})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32600
        r = await post(c, url, b"{nope", {"mcp-session-id": sid})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        assert r.json()["error"]["message"].count("Parse error") == 1
        # GET needs Accept: text/event-stream
        r = await c.get(url, headers={**HDRS, "accept": "application/json", "mcp-session-id": sid})
        assert r.status_code == 406
        # DELETE ends the session
        r = await c.delete(url, headers={**HDRS, "mcp-session-id": sid})
        assert r.status_code == 204
        r = await post(c, url, req, {"mcp-session-id": sid})
        assert r.status_code == 404
        # with no session at all, session-less (2026-07-28 style) requests are served
        r = await post(c, url, {**req, "id": 8}, {"accept": "application/json"})
        assert r.status_code == 200 and r.json()["id"] == 8


async def test_large_messages_pass(bridge):
    async with httpx.AsyncClient(trust_env=False, timeout=60) as c:
        r = await post(c, bridge.url, INIT)
        sid = r.headers["mcp-session-id"]
        text = "é" * 2_500_000  # 5 MB of UTF-8 each way
        req = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}},
        }
        r = await post(c, bridge.url, req, {"mcp-session-id": sid, "accept": "application/json"})
        assert r.status_code == 200
        assert r.json()["result"]["content"][0]["text"] == text


async def test_bridge_refuses_non_loopback_bind():
    with pytest.raises(ValueError, match="loopback only"):
        Bridge([PY, FIXTURE], host="0.0.0.0")


async def test_bridge_command_line(tmp_path):
    port = free_port()
    err = open(tmp_path / "err.log", "w+b")
    proc = subprocess.Popen(
        [*SHIM, "bridge", "--port", str(port), "--token", TOKEN, "--", PY, FIXTURE],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            err.seek(0)
            if b"serving" in err.read():
                break
            await asyncio.sleep(0.1)
        err.seek(0)
        assert f"http://127.0.0.1:{port}/mcp".encode() in err.read()
        with anyio.fail_after(60):
            async with (
                http() as client,
                streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (
                    r,
                    w,
                    _,
                ),
            ):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    child = int(text_of(await s.call_tool("pid", {})))
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 10) == 0
        assert await asyncio.to_thread(wait_gone, [child], 5) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(port):
    proc = subprocess.run(
        [*SHIM, "bridge", "--port", port, "--", PY, FIXTURE],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr
    assert b"--port" in proc.stderr


# ----------------------------------------------------------------------------- helpers
def test_frame_and_peek_id():
    assert frame(b'{"a": 1}') == b'{"a": 1}'
    assert frame(b'{"a":\n 1}') == b'{"a":1}'
    assert peek_id(b'{"jsonrpc":"2.0","id":42,"result":{"x":"') == 42
    assert peek_id(b'{"jsonrpc":"2.0","id": "abc","method":"x"') == "abc"
    assert peek_id(b'{"jsonrpc":"2.0","result":') is None


def test_refs(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIM_REF_X", "v1")
    assert resolve_ref("env://SHIM_REF_X") == "v1"
    f = tmp_path / "s"
    f.write_text("v2\n")
    assert resolve_ref(f"file://{f}") == "v2"
    assert resolve_ref("plain") == "plain"
    with pytest.raises(RefError, match="SHIM_REF_MISSING is not set"):
        resolve_ref("env://SHIM_REF_MISSING")
    with pytest.raises(RefError, match="absolute path"):
        resolve_ref("file://relative")
    with pytest.raises(RefError, match="cannot read"):
        resolve_ref(f"file://{tmp_path}/missing")
    with pytest.raises(RefError, match="keyring://service/name"):
        resolve_ref("keyring://only-service")
    assert parse_env_assignments(["A=env://SHIM_REF_X", "B=lit=eral"]) == {
        "A": "v1",
        "B": "lit=eral",
    }
    with pytest.raises(RefError) as e:
        parse_env_assignments(["sk-secretvalue"])
    assert "sk-secretvalue" not in str(e.value)


def test_keyring_ref(monkeypatch):
    import keyring

    store = {("svc", "user"): "kv"}
    monkeypatch.setattr(keyring, "get_password", lambda s, n: store.get((s, n)))
    assert resolve_ref("keyring://svc/user") == "kv"
    with pytest.raises(RefError, match="no such entry"):
        resolve_ref("keyring://svc/other")


async def test_line_reader_splits_and_limits():
    chunks = [b'{"a":1}\n{"b"', b":2}\r\n", b"x" * 50, b"y" * 50 + b"\nlast"]

    async def read(n: int) -> bytes:
        return chunks.pop(0) if chunks else b""

    lr = LineReader(read, max_line=80)
    assert await lr.next() == (b'{"a":1}', b"", 0)
    assert await lr.next() == (b'{"b":2}', b"", 0)
    line, prefix, size = await lr.next()
    assert line is None and size == 100 and prefix.startswith(b"x")
    assert await lr.next() == (b"last", b"", 0)
    assert await lr.next() is None


async def test_iter_sse_parses_events():
    body = (
        b': comment\n\nid: 1\ndata:\nretry: 100\n\nevent: message\ndata: {"a":\ndata: 1}\n\n'
        b'event: other\ndata: skip\n\ndata: {"b":2}\r\n\r\n'
    )

    class FakeResp:
        async def aiter_bytes(self):
            for i in range(0, len(body), 7):
                yield body[i : i + 7]

    got = [d async for d in iter_sse(FakeResp())]
    assert got == [b"", b'{"a":\n1}', b'{"b":2}']


def test_mirror_headers_for_2026_messages():
    from mcp_gateway.shim.relay import mirror_headers

    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    assert mirror_headers({"method": "tools/list", "params": {}}) is None  # handshake era
    h = mirror_headers({"method": "tools/call", "params": {"name": "echo", "_meta": meta}})
    assert h == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "echo",
    }
    h = mirror_headers({"method": "tools/call", "params": {"name": "grüße", "_meta": meta}})
    assert h["mcp-name"] == "=?base64?Z3LDvMOfZQ==?="
    h = mirror_headers(
        {"method": "resources/read", "params": {"uri": "file:///a b", "_meta": meta}}
    )
    assert h["mcp-name"] == "file:///a b"


async def test_body_over_the_limit_is_413():
    b = Bridge([PY, FIXTURE], None, max_message_bytes=2048)
    await b.start()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            big = {**INIT, "params": {**INIT["params"], "pad": "x" * 5000}}
            r = await post(c, b.url, big)
            assert r.status_code == 413
            assert r.json()["error"]["code"] == -32065
    finally:
        await b.close()


async def test_a_dropped_long_lived_stream_no_longer_swallows_server_messages():
    # subscriptions/listen has no deadline: when its connection dropped, the bridge kept
    # routing every unsolicited server message to it (the only event stream in flight),
    # where they waited for ever instead of reaching the session's GET stream
    from shimtest_helpers import HERE

    b = Bridge([PY, str(HERE / "servers" / "poke_server.py")], None, token=TOKEN, timeout=30)
    await b.start()
    try:
        host, port, path = "127.0.0.1", b.port, "/mcp"

        async def send(method: str, body: dict | None, sid: str | None, keep: bool = False):
            r, w = await asyncio.open_connection(host, port)
            data = orjson.dumps(body) if body is not None else b""
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            head += f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            head += "Accept: " + (
                "text/event-stream" if method == "GET" else "application/json, text/event-stream"
            )
            head += f"\r\nContent-Length: {len(data)}\r\n"
            if sid:
                head += f"Mcp-Session-Id: {sid}\r\n"
            w.write(head.encode() + b"\r\n" + data)
            await w.drain()
            if keep:
                return r, w
            out = await asyncio.wait_for(r.read(65536), 5)
            w.close()
            return out

        async def read_for(r, seconds: float) -> bytes:
            out, end = b"", time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    chunk = await asyncio.wait_for(r.read(65536), max(0.05, end - time.monotonic()))
                except TimeoutError:
                    break
                if not chunk:
                    break
                out += chunk
            return out

        init = await send("POST", INIT, None)
        sid = next(
            ln.split(b": ", 1)[1].decode()
            for ln in init.split(b"\r\n")
            if ln.lower().startswith(b"mcp-session-id")
        )
        await send("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        lr, lw = await send(
            "POST", {"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen"}, sid, keep=True
        )
        await read_for(lr, 0.3)
        lw.close()  # the listen stream's connection drops
        await asyncio.sleep(0.3)
        gr, gw = await send("GET", None, sid, keep=True)
        await asyncio.sleep(0.3)
        await send(
            "POST", {"jsonrpc": "2.0", "method": "notifications/poke", "params": {"n": 1}}, sid
        )
        got = await read_for(gr, 3.0)
        gw.close()
        assert b"poke-1" in got
        assert not b.pending  # the dead listen request is forgotten
    finally:
        await b.close()


ODD_SERVER = r"""
import json, os, sys, time
def w(b):
    sys.stdout.buffer.write(b + b"\n"); sys.stdout.buffer.flush()
for line in sys.stdin.buffer:
    m = json.loads(line)
    meth, id_ = m.get("method"), m.get("id")
    if meth == "initialize":
        w(json.dumps({"jsonrpc": "2.0", "id": id_, "result": {"protocolVersion": "2025-06-18",
          "capabilities": {"tools": {}}, "serverInfo": {"name": "odd", "version": "1"}}}).encode())
    elif meth == "tools/call":
        mode = m["params"]["name"]
        text = m["params"].get("arguments", {}).get("text", "")
        res = lambda t: json.dumps({"jsonrpc": "2.0", "id": id_,
                                    "result": {"content": [{"type": "text", "text": t}]}}).encode()
        if mode == "surrogate":  # json.dumps / JSON.stringify of a string cut inside an emoji
            w(res("cut \ud83d"))
        elif mode == "badutf8":
            w(res("bad Q").replace(b"Q", b"\xff\xfe"))
        elif mode == "batch":
            w(b"[" + res("one \ud83d") + b"]")
        elif mode == "flood":  # 20 MB of log notifications, then the answer
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                               "params": {"level": "info", "data": "x" * 10000}}).encode()
            for _ in range(2000):
                w(note)
            if len(sys.argv) > 1:
                open(sys.argv[1], "w").close()  # every notification written
            w(res("flooded"))
        elif mode == "echo":
            w(res(text))
        elif mode == "closeout":
            w(res("closing"))
            os.close(1)
            time.sleep(60)
"""


async def test_answers_orjson_refuses_but_clients_read_are_delivered(tmp_path):
    # a lone surrogate escape or invalid UTF-8 in a server's answer was skipped as "not JSON",
    # and the request waited out --timeout (300 s) for an answer that had come
    srv = tmp_path / "odd.py"
    srv.write_text(ODD_SERVER)
    b = Bridge([PY, str(srv)], None, token=TOKEN, timeout=10)
    await b.start()
    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            r = await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            h["mcp-session-id"] = r.headers["mcp-session-id"]
            for i, (mode, want) in enumerate(
                [("surrogate", "cut \ud83d"), ("badutf8", "bad \ufffd\ufffd")], 1
            ):
                call = {"jsonrpc": "2.0", "id": i, "method": "tools/call"}
                call["params"] = {"name": mode, "arguments": {}}
                t = time.monotonic()
                r = await c.post(b.url, content=orjson.dumps(call), headers=h)
                assert time.monotonic() - t < 5 and r.status_code == 200, r.text
                import json

                assert json.loads(r.content.decode())["result"]["content"][0]["text"] == want
                r.content.decode("utf-8")  # valid UTF-8 on the wire
            # a client's request with a lone surrogate reaches the server (it was a 400)
            body = (
                b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo",'
                b'"arguments":{"text":"x \\ud83d"}}}'
            )
            r = await c.post(b.url, content=body, headers=h)
            assert r.status_code == 200 and "\\ud83d" in r.text
    finally:
        await b.close()


def test_frame_reads_what_the_clients_read():
    assert frame(b'{"a": "\\ud83d",\r\n "b": 1}') == b'{"a":"\\ud83d","b":1}'
    assert frame(b"not json\r\nat all") == b"not json at all"


async def test_a_server_that_closes_stdout_but_keeps_running_is_stopped(tmp_path):
    # it could never answer again: every request waited out --timeout, nothing said why
    srv = tmp_path / "odd.py"
    srv.write_text(ODD_SERVER)
    b = Bridge([PY, str(srv)], None, token=TOKEN, timeout=30, backoff_initial=0.2)
    await b.start()
    first = b.child_pid
    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            r = await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            h["mcp-session-id"] = r.headers["mcp-session-id"]
            await c.post(
                b.url,
                content=orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                headers=h,
            )
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
            call["params"] = {"name": "closeout", "arguments": {}}
            r = await c.post(b.url, content=orjson.dumps(call), headers=h)
            assert r.json()["result"]["content"][0]["text"] == "closing"
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
            call["params"] = {"name": "echo", "arguments": {"text": "hi"}}
            t = time.monotonic()
            r = await c.post(b.url, content=orjson.dumps(call), headers=h)
            assert time.monotonic() - t < 10
            assert "error" in r.json() and not pid_alive(first)
            # restarted (session kept): the next call is answered
            for _ in range(50):
                if b.child_pid not in (None, first):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            call["id"] = 3
            r = await c.post(b.url, content=orjson.dumps(call), headers=h)
            assert r.json()["result"]["content"][0]["text"] == "hi"
    finally:
        await b.close()


async def test_a_server_faster_than_its_client_is_read_no_further_than_the_budget(
    tmp_path, monkeypatch
):
    # the bridge read the server's stdout whole into the stream's queue: a flood of log
    # notifications to a client that reads slowly took as much of the shim's memory
    import mcp_gateway.shim.bridge as bridge_mod

    monkeypatch.setattr(bridge_mod, "QUEUE_BUDGET", 1 << 20, raising=False)
    srv = tmp_path / "odd.py"
    srv.write_text(ODD_SERVER)
    done = tmp_path / "flood-written"
    b = Bridge([PY, str(srv), str(done)], None, token=TOKEN, timeout=60)
    await b.start()
    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            r = await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            sid = r.headers["mcp-session-id"]
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "flood"}}
        )
        writer.write(
            (
                f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{b.port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\n"
                f"Mcp-Session-Id: {sid}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        await writer.drain()
        await asyncio.sleep(3)  # not reading: the stream backs up
        # 20 MB written, one socket's buffers (a few MB) between: the server is held
        assert not done.exists()
        got = bytearray()
        with anyio.fail_after(30):
            while b"flooded" not in got:
                chunk = await reader.read(1 << 20)
                assert chunk
                got += chunk
        assert got.count(b"notifications/message") == 2000
        writer.close()
    finally:
        await b.close()


ONE_SESSION_SERVER = """
import json, os, sys
inited = False
for line in sys.stdin:
    m = json.loads(line)
    if m.get("method") == "initialize":
        if inited:  # as the Go SDK answers a second initialize
            out = {"jsonrpc": "2.0", "id": m["id"],
                   "error": {"code": 0, "message": 'duplicate "initialize" received'}}
        else:
            inited = True
            out = {"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-11-25",
                   "capabilities": {}, "serverInfo": {"name": "once", "version": str(os.getpid())}}}
    elif "id" in m:
        out = {"jsonrpc": "2.0", "id": m["id"], "result": {"pid": os.getpid()}}
    else:
        continue
    print(json.dumps(out), flush=True)
"""


async def test_a_later_session_on_a_one_session_server_gets_a_fresh_process(tmp_path):
    """The Go SDK (mcp-grafana, github-mcp-server) refuses a second initialize on one
    process: every client after the first (mcpc reconnecting, a restarted agent) got
    `duplicate "initialize" received` until the bridge was restarted. Such a server now
    gets a fresh process for the new session; a server that accepts it keeps its process."""
    srv = tmp_path / "once.py"
    srv.write_text(ONE_SESSION_SERVER)
    b = Bridge([PY, str(srv)], None, token=TOKEN, timeout=10)
    await b.start()
    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            first = await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            pid1 = first.json()["result"]["serverInfo"]["version"]
            assert pid1 == str(b.child_pid)
            t = time.monotonic()
            r = await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            assert "result" in r.json(), r.text
            pid2 = r.json()["result"]["serverInfo"]["version"]
            assert pid2 != pid1 and pid2 == str(b.child_pid) and time.monotonic() - t < 5
            assert not pid_alive(int(pid1))
            h["mcp-session-id"] = r.headers["mcp-session-id"]
            call = {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}
            r = await c.post(b.url, content=orjson.dumps(call), headers=h)
            assert r.json()["result"]["pid"] == int(pid2)
    finally:
        await b.close()


async def test_initializes_refused_together_start_one_fresh_process_not_one_each(tmp_path):
    """Several initializes refused together (read from the server's stdout in one go) each
    started a fresh process, and all but the last ran on, unwatched: a client sending
    initializes at once made orphans without end. One is renewed; the others get the
    server's refusal."""
    srv = tmp_path / "once.py"
    # (its refusals are written together, once six have come, as one burst)
    srv.write_text(
        ONE_SESSION_SERVER.replace(
            "    print(json.dumps(out), flush=True)",
            "    if 'error' in out:\n        held = globals().setdefault('held', [])\n"
            "        held.append(out)\n        if len(held) < 6:\n            continue\n"
            "        sys.stdout.write(''.join(json.dumps(o) + '\\n' for o in held))\n"
            "        sys.stdout.flush()\n        held.clear()\n        continue\n"
            "    print(json.dumps(out), flush=True)",
        )
    )
    b = Bridge([PY, str(srv)], None, token=TOKEN, timeout=10)
    await b.start()

    def running() -> list[int]:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                with contextlib.suppress(OSError):
                    if str(srv).encode() in open(f"/proc/{d}/cmdline", "rb").read():
                        out.append(int(d))
        return out

    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            await c.post(b.url, content=orjson.dumps(INIT), headers=h)
            with anyio.fail_after(30):  # (before the fix, some of them waited forever)
                rs = await asyncio.gather(
                    *[c.post(b.url, content=orjson.dumps(dict(INIT, id=i)), headers=h)
                      for i in range(1, 7)]
                )  # fmt: skip
            assert sum("result" in r.json() for r in rs) == 1
            await asyncio.sleep(0.5)
            assert running() == [b.child_pid]
    finally:
        await b.close()


async def test_a_later_session_on_a_tolerant_server_keeps_its_process(bridge):
    async with http() as c:
        h = {"content-type": "application/json", "accept": "application/json"}
        assert (await c.post(bridge.url, content=orjson.dumps(INIT), headers=h)).status_code == 200
        pid = bridge.child_pid
        r = await c.post(bridge.url, content=orjson.dumps(INIT), headers=h)
        assert "result" in r.json() and bridge.child_pid == pid


async def test_a_one_session_server_initialized_after_its_client_gave_up_is_renewed_again(
    tmp_path,
):
    """A fresh process slow to start (a docker run, an npx download) answers the renewed
    initialize after its client timed out: the answer is dropped, and the bridge took the
    process for one no initialize had reached, so every later session went to it unrenewed
    and got `duplicate "initialize" received` until the bridge was restarted."""
    slow = tmp_path / "slow"
    srv = tmp_path / "once.py"
    srv.write_text(
        ONE_SESSION_SERVER.replace(
            "        else:\n            inited = True",
            "        else:\n            inited = True\n"
            f"            if os.path.exists({str(slow)!r}):\n"
            f"                os.remove({str(slow)!r}); import time; time.sleep(1.5)",
        )
    )
    b = Bridge([PY, str(srv)], None, token=TOKEN, timeout=1)
    await b.start()
    try:
        async with http() as c:
            h = {"content-type": "application/json", "accept": "application/json"}
            assert "result" in (await c.post(b.url, content=orjson.dumps(INIT), headers=h)).json()
            slow.write_text("")
            r = await c.post(b.url, content=orjson.dumps(dict(INIT, id=2)), headers=h)
            assert "error" in r.json()  # (timed out while the fresh process started)
            await asyncio.sleep(1.0)  # it answers now: dropped
            r = await c.post(b.url, content=orjson.dumps(dict(INIT, id=3)), headers=h)
            assert "result" in r.json(), r.text
    finally:
        await b.close()
