"""Issue 4, "How we will know": identity end to end.

A real ``mitmdump -s addons/gateway.py --set mcp_config=...`` in front of the FastMCP test
server (tests/e2e/servers/everything.py), the official MCP SDK client or raw HTTP over
127.0.0.1. Fixtures come from tests/e2e/conftest.py (loaded below under its own name).
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import types
from mcp_gateway.identity.keys import create_key, revoke_key

_CONF = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
_spec = importlib.util.spec_from_file_location("mcp_gateway_e2e_conftest", _CONF)
_e2e = sys.modules.get(_spec.name)
if _e2e is None:
    _e2e = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _e2e
    _spec.loader.exec_module(_e2e)

# the shared e2e fixtures (all of them: they depend on each other), re-exported so that
# pytest finds them for this module
for _name, _obj in vars(_e2e).items():
    if type(_obj).__name__ == "FixtureFunctionDefinition" and _name not in globals():
        globals()[_name] = _obj

pytestmark = pytest.mark.e2e

ACCEPT = "application/json, text/event-stream"
UPSTREAM_SECRET = "e2e-upstream-secret-4711"


def _text(result: types.CallToolResult) -> str:
    assert not result.isError, result
    return result.content[0].text


class Raw:
    """A minimal MCP client over httpx (JSON-response server), to see statuses and headers."""

    def __init__(self, url: str, proxy: str, token: str | None) -> None:
        self.url = url
        self.client = httpx.Client(proxy=proxy, trust_env=False, timeout=10)
        self.token = token
        self.session: str | None = None
        self.next_id = 1

    def close(self) -> None:
        self.client.close()

    def post(self, payload: dict, session: str | None = None) -> httpx.Response:
        h = {
            "accept": ACCEPT,
            "content-type": "application/json",
            "mcp-protocol-version": "2025-06-18",
        }
        if self.token:
            h["authorization"] = f"Bearer {self.token}"
        sid = session or self.session
        if sid:
            h["mcp-session-id"] = sid
        return self.client.post(self.url, content=json.dumps(payload), headers=h)

    def request(
        self, method: str, params: dict | None = None, session: str | None = None
    ) -> httpx.Response:
        payload: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            payload["params"] = params
        return self.post(payload, session)

    def initialize(self) -> httpx.Response:
        r = self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        )
        if r.status_code == 200:
            self.session = r.headers.get("mcp-session-id")
            self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def call(
        self, tool: str, args: dict | None = None, session: str | None = None
    ) -> httpx.Response:
        return self.request("tools/call", {"name": tool, "arguments": args or {}}, session)


def _gateway(
    mitmdump_factory, tmp_path: Path, config: str, name: str = "gateway.yaml", **kw: Any
) -> Any:
    cfg = tmp_path / name
    cfg.write_text(config)
    options = {"mcp_config": str(cfg), **kw.pop("options", {})}
    return mitmdump_factory(options=options, **kw)


def _assert_401(r: httpx.Response, what: str) -> None:
    assert r.status_code == 401, (what, r.status_code, r.text)
    assert r.headers["www-authenticate"].startswith('Bearer realm="mcp-gateway"'), what
    body = r.json()
    assert body["error"]["code"] == -32062, (what, body)


def _all_headers(server) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in req["headers"].items()} for req in server.requests()]


def _injecting_gateway(
    mitmdump_factory, mcp_server_factory, tmp_path: Path, monkeypatch, *extra_args: str
) -> tuple[Any, Any, str]:
    """A gateway that swaps a gateway API key for the upstream bearer credential, printing
    every flow with its headers and saving the flows (the secret must be in neither):
    (mitmdump, server, the client's gateway key)."""
    monkeypatch.setenv("MGW_E2E_UPSTREAM", UPSTREAM_SECRET)  # the gateway process inherits it
    db = tmp_path / "keys.db"
    key, _ = create_key(db, "e2e", "agent-e2e", [])
    server = mcp_server_factory("streamable", fresh=True)
    config = f"""
keys_db: {db}
servers:
  - match: "127.0.0.1:{server.port}"
    name: everything
    credential: {{type: bearer, ref: env://MGW_E2E_UPSTREAM}}
"""
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        config,
        options={"flow_detail": 3},
        extra_args=["-w", str(tmp_path / "flows.mitm"), *extra_args],
    )
    return md, server, key


async def test_api_key_valid_invalid_revoked(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
) -> None:
    db = tmp_path / "keys.db"
    key, rec = create_key(db, "e2e", "agent-e2e", ["reader"])
    server = mcp_server_factory("streamable", fresh=True)
    md = _gateway(mitmdump_factory, tmp_path, f"keys_db: {db}\nauth:\n  required: true\n")

    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        assert _text(await s.call_tool("echo", {"text": "hi"})) == "hi"
    # the server never saw the gateway key
    assert server.requests() and all(
        key not in json.dumps(h) and "mgw_" not in json.dumps(h) for h in _all_headers(server)
    )

    n_before = len(server.requests())
    for bad in (None, "mgw_000000000000_wrong", key[:-4] + "AAAA", "some-other-token"):
        raw = Raw(server.url, md.proxy_url, bad)
        try:
            _assert_401(raw.initialize(), f"token {bad!r}")
        finally:
            raw.close()
    # the refused requests never reached the server
    assert len(server.requests()) == n_before

    revoke_key(db, rec.id)  # as `mcp-gateway keys revoke` does; no restart
    deadline = time.monotonic() + 3
    raw = Raw(server.url, md.proxy_url, key)
    try:
        while True:
            r = raw.initialize()
            if r.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        _assert_401(r, "revoked key")
        assert "revoked" in r.json()["error"]["message"]
        # once refused, requests with the revoked key never reach the server
        n_after = len(server.requests())
        _assert_401(raw.initialize(), "revoked key again")
        assert len(server.requests()) == n_after
    finally:
        raw.close()
    assert "revoked" in md.log_text()


async def test_jwt_from_loopback_jwks(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path, signer, jwks_server, mkjwks
) -> None:
    jwks_server.doc = mkjwks(signer)
    server = mcp_server_factory("streamable")
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        f"""
keys_db: {tmp_path / "keys.db"}
auth:
  required: true
  jwt:
    jwks_url: {jwks_server.url}
    issuer: https://issuer.test/
    audience: mcp-gw
    roles_claim: roles
""",
    )
    deadline = time.monotonic() + 5
    while jwks_server.hits == 0 and time.monotonic() < deadline:  # fetched in the background
        time.sleep(0.05)
    time.sleep(0.2)
    token = signer.token({"roles": ["reader"]})
    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {token}"}
    ) as s:
        assert _text(await s.call_tool("add", {"a": 2, "b": 3})) == "5"

    head, body, sig = signer.token().split(".")
    tampered = f"{head}.{body[:-3]}{'A' if body[-3] != 'A' else 'B'}{body[-2:]}.{sig}"
    for what, tok in {
        "tampered": tampered,
        "expired": signer.token(exp=int(time.time()) - 3600),
        "wrong audience": signer.token(aud="other"),
    }.items():
        raw = Raw(server.url, md.proxy_url, tok)
        try:
            _assert_401(raw.initialize(), what)
        finally:
            raw.close()
    log = md.log_text()
    assert "token expired" in log and "audience" in log


async def test_upstream_receives_injected_credential_never_the_gateway_key(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path, monkeypatch
) -> None:
    md, server, key = _injecting_gateway(
        mitmdump_factory, mcp_server_factory, tmp_path, monkeypatch
    )
    db = tmp_path / "keys.db"  # the key store it made (the second gateway below uses it)
    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        assert _text(await s.call_tool("echo", {"text": "x"})) == "x"
        # a server that shows the client its request headers shows no injected credential
        shown = _text(await s.call_tool("last_request_headers", {}))
        assert "authorization" in shown and UPSTREAM_SECRET not in shown, shown
        assert "[REDACTED:generic_secret]" in shown
    # what the server received (read directly from the server, not through the gateway,
    # whose scanner would redact the secret in a tool result)
    reqs = _all_headers(server)
    assert reqs and all(h.get("authorization") == f"Bearer {UPSTREAM_SECRET}" for h in reqs)
    assert all(key not in json.dumps(h) for h in reqs)
    log = md.log_text()
    assert "[mcp-gateway: env://MGW_E2E_UPSTREAM]" in log  # the headers were printed, masked
    assert UPSTREAM_SECRET not in log and key not in log
    md.stop()  # flush the saved flows and the audit
    saved = (tmp_path / "flows.mitm").read_bytes()
    assert b"/mcp" in saved and UPSTREAM_SECRET.encode() not in saved and key.encode() not in saved
    audit = md.audit_db.read_bytes() + b"".join(
        p.read_bytes() for p in md.audit_db.parent.glob(md.audit_db.name + "*")
    )
    assert b"agent-e2e" in audit  # the audit recorded the consumer
    with sqlite3.connect(md.audit_db) as conn:  # (found as what it is, not only by a rule)
        rules = {r for (r,) in conn.execute("SELECT rule FROM findings")}
    assert "upstream-credential" in rules
    assert UPSTREAM_SECRET.encode() not in audit and key.encode() not in audit

    # a missing reference: refused with 502, nothing forwarded
    monkeypatch.delenv("MGW_E2E_UPSTREAM")
    md2 = _gateway(
        mitmdump_factory,
        tmp_path,
        f"""
keys_db: {db}
servers:
  - match: "127.0.0.1:{server.port}"
    credential: {{type: bearer, ref: env://MGW_E2E_UPSTREAM}}
""",
        name="second.yaml",
    )
    server.reset()
    raw = Raw(server.url, md2.proxy_url, key)
    try:
        r = raw.initialize()
    finally:
        raw.close()
    assert r.status_code == 502 and r.json()["error"]["code"] == -32066, r.text
    assert server.requests() == []
    assert "env://MGW_E2E_UPSTREAM" in md2.log_text()


def test_rate_limit_429_with_retry_after_other_identity_unaffected(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    db = tmp_path / "keys.db"
    key_a, _ = create_key(db, "a", "alice", [])
    key_b, _ = create_key(db, "b", "bob", [])
    server = mcp_server_factory("json")
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        f'keys_db: {db}\nlimits:\n  tools:\n    - match: "ech*"\n      rate: 3/minute\n',
    )
    a, b = Raw(server.url, md.proxy_url, key_a), Raw(server.url, md.proxy_url, key_b)
    try:
        assert a.initialize().status_code == 200 and b.initialize().status_code == 200
        for i in range(3):
            r = a.call("echo", {"text": str(i)})
            assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == str(i)
        r = a.call("echo", {"text": "one too many"})
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        err = r.json()["error"]
        assert err["code"] == -32064 and err["message"].startswith("rate limit exceeded: 3/minute")
        # other tools and other identities are unaffected
        assert a.call("add", {"a": 1, "b": 1}).status_code == 200
        r = b.call("echo", {"text": "bob"})
        assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "bob"
    finally:
        a.close()
        b.close()
    assert not any("one too many" in json.dumps(c) for c in server.calls())


def test_session_reused_by_another_identity_is_refused(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    db = tmp_path / "keys.db"
    key_a, _ = create_key(db, "a", "alice", [])
    key_b, _ = create_key(db, "b", "bob", [])
    server = mcp_server_factory("json")
    md = _gateway(mitmdump_factory, tmp_path, f"keys_db: {db}\n")
    a, b = Raw(server.url, md.proxy_url, key_a), Raw(server.url, md.proxy_url, key_b)
    anon = Raw(server.url, md.proxy_url, None)
    try:
        assert a.initialize().status_code == 200 and a.session
        r = b.call("echo", {"text": "hijack"}, session=a.session)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == -32063
        r = anon.call("echo", {"text": "hijack"}, session=a.session)
        assert r.status_code == 404
        # the owner goes on
        r = a.call("echo", {"text": "mine"})
        assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "mine"
    finally:
        for c in (a, b, anon):
            c.close()
    assert not any("hijack" in json.dumps(c) for c in server.calls())
    assert "bound to key:" in md.log_text()


async def test_rate_limit_with_status_200_keeps_sdk_session(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
) -> None:
    from mcp.shared.exceptions import McpError

    db = tmp_path / "keys.db"
    key, _ = create_key(db, "a", "alice", [])
    server = mcp_server_factory("streamable")
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        f'keys_db: {db}\nlimits:\n  http_status: 200\n  tools:\n    - match: "echo"\n      rate: 1/minute\n',
    )
    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        assert _text(await s.call_tool("echo", {"text": "1"})) == "1"
        with pytest.raises(McpError) as ei:
            await s.call_tool("echo", {"text": "2"})
        assert ei.value.error.code == -32064
        assert "rate limit exceeded" in ei.value.error.message
        # the session goes on
        assert _text(await s.call_tool("add", {"a": 1, "b": 2})) == "3"


async def test_config_edits_apply_without_dropping_the_session(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
) -> None:
    from mcp.shared.exceptions import McpError

    db = tmp_path / "keys.db"
    key, _ = create_key(db, "a", "alice", [])
    server = mcp_server_factory("streamable")
    md = _gateway(mitmdump_factory, tmp_path, f"keys_db: {db}\nlimits:\n  http_status: 200\n")
    cfg = tmp_path / "gateway.yaml"
    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        for _ in range(3):
            assert _text(await s.call_tool("add", {"a": 1, "b": 1})) == "2"
        mark = md.mark()
        cfg.write_text(f"keys_db: {db}\nlimits:\n  default: [broken\n")  # a bad edit
        md.wait_log("keeping the previous configuration", timeout=5, since=mark)
        assert _text(await s.call_tool("add", {"a": 1, "b": 1})) == "2"
        cfg.write_text(
            f'keys_db: {db}\nlimits:\n  http_status: 200\n  tools:\n    - match: "add"\n      rate: 1/minute\n'
        )
        md.wait_log("identity reloaded", timeout=5, since=mark)
        assert _text(await s.call_tool("add", {"a": 2, "b": 2})) == "4"
        with pytest.raises(McpError) as ei:
            await s.call_tool("add", {"a": 3, "b": 3})
        assert ei.value.error.code == -32064
        assert _text(await s.call_tool("echo", {"text": "still here"})) == "still here"
    assert md.proc.poll() is None


async def test_keys_live_in_the_audit_database_by_default(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
) -> None:
    import subprocess

    audit_db = tmp_path / "gateway-audit.db"
    # the CLI, with no --db: the gateway's database, i.e. the audit database
    env = {k: v for k, v in _e2e.clean_env().items()}
    env["MCP_GATEWAY_AUDIT_DB"] = str(audit_db)
    r = subprocess.run(
        [sys.executable, "-m", "mcp_gateway.cli", "keys", "create", "n", "audited", "", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)["key"]
    server = mcp_server_factory("streamable")
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        "auth:\n  required: true\n",
        options={"mcp_audit_db": str(audit_db)},
    )
    async with mcp_session(
        server.url, proxy=md.proxy_url, headers={"Authorization": f"Bearer {key}"}
    ) as s:
        assert _text(await s.call_tool("echo", {"text": "audited"})) == "audited"
    md.stop()
    v = subprocess.run(
        [sys.executable, "-m", "mcp_gateway.cli", "audit", "verify", "--db", str(audit_db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert v.returncode == 0, v.stdout + v.stderr
    log = subprocess.run(
        [sys.executable, "-m", "mcp_gateway.cli", "audit", "log", "--db", str(audit_db), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "audited" in log.stdout and key not in log.stdout


async def test_answer_to_a_blocked_server_request_carries_then_masks_the_upstream_credential(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path, monkeypatch
) -> None:
    # A sampling request blocked by a user rule is answered to the server by the gateway
    # (a POST it makes itself): with the upstream credential the server expects, which then
    # stays out of the printed and saved flows like the stream's own.
    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n  - id: private-key-in-result\n    action: block\n")
    rules = Path(__file__).resolve().parents[2] / "rules"
    md, server, key = _injecting_gateway(
        mitmdump_factory,
        mcp_server_factory,
        tmp_path,
        monkeypatch,
        *("--set", f"mcp_rules={rules}", "--set", f"mcp_rules={strict}"),
    )
    asked: list = []

    async def sampling(_ctx, params):
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="ok"), model="m"
        )

    async with mcp_session(
        server.url,
        proxy=md.proxy_url,
        headers={"Authorization": f"Bearer {key}"},
        sampling_callback=sampling,
        timeout=20,
    ) as s:
        res = await s.call_tool("sample", {"prompt": "summarize", "leak": "key"})
    text = "".join(c.text for c in res.content if isinstance(c, types.TextContent))
    assert res.isError and "private-key-in-result" in text and asked == []
    answers = [
        r for r in server.requests() if '"error"' in (r.get("body") or "") and r["method"] == "POST"
    ]
    assert len(answers) == 1, server.requests()
    headers = {k.lower(): v for k, v in answers[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    log = md.log_text()
    assert "[replay]" in log and UPSTREAM_SECRET not in log and key not in log
    md.stop()
    saved = (tmp_path / "flows.mitm").read_bytes()
    assert UPSTREAM_SECRET.encode() not in saved and key.encode() not in saved


async def test_a_legacy_session_belongs_to_the_identity_that_opened_its_stream(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    """The legacy (HTTP+SSE) server hands its session to the GET /sse that opened it, in
    the endpoint event. Bound on first sight only, it was whoever POSTed first's: another
    bearer token that learnt the id took the session, and its owner was refused."""
    server = mcp_server_factory("sse", fresh=True)
    md = _gateway(
        mitmdump_factory, tmp_path, "sessions: {bind: true}\n", mode=f"reverse:{server.base}"
    )
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2024-11-05",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    with (
        httpx.Client(trust_env=False, timeout=10) as g,
        httpx.Client(trust_env=False, timeout=10) as c,
    ):
        owner = {"authorization": "Bearer owner-token-1"}
        with g.stream(
            "GET", md.base + "/sse", headers={**owner, "accept": "text/event-stream"}
        ) as s:
            endpoint = None
            lines = s.iter_lines()  # (kept: a generator collected closes the stream)
            for line in lines:
                if line.startswith("data:"):
                    endpoint = line[5:].strip()
                    break
            assert endpoint and "session_id=" in endpoint
            other = c.post(
                md.base + endpoint,
                json=init,
                headers={"authorization": "Bearer other-token-2"},
            )
            assert other.status_code == 404, other.text
            assert other.json()["error"]["code"] == -32063
            mine = c.post(md.base + endpoint, json=init, headers=owner)
            assert mine.status_code == 202, mine.text


def test_a_legacy_stream_opened_without_asking_for_one_is_authenticated(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    """Interop round 8: mcp-use probes a server with GET url, Accept: application/json.
    A legacy server opens its session on any GET /sse, and the gateway, which took a GET
    for MCP only when it asked for text/event-stream, let that stream pass unauthenticated
    under auth.required in reverse mode, audited without a consumer. Its answer now makes
    it an exchange: refused at once with the 401 (the server's events dropped), admitted
    with the key the client sent (which never reaches the server)."""
    db = tmp_path / "keys.db"
    key, _ = create_key(db, "e2e", "agent-e2e", [])
    server = mcp_server_factory("sse", fresh=True)
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        f"keys_db: {db}\nauth:\n  required: true\n",
        mode=f"reverse:{server.base}",
    )
    md.wait_log("listening at", timeout=60)  # (a loaded machine: the rules still loading)
    with httpx.Client(trust_env=False, timeout=10) as c:
        for accept in ("application/json", "*/*"):
            t = time.monotonic()
            r = c.get(md.base + "/sse", headers={"accept": accept})
            _assert_401(r, accept)
            assert time.monotonic() - t < 5  # (not read to the stream's end)
            assert "session_id" not in r.text
        with c.stream(
            "GET",
            md.base + "/sse",
            headers={"accept": "application/json", "authorization": f"Bearer {key}"},
        ) as s:
            assert s.status_code == 200
            lines = s.iter_lines()  # (kept: a generator collected closes the stream)
            endpoint = next(x for x in lines if x.startswith("data:"))
            assert "session_id=" in endpoint
    deadline = time.monotonic() + 10
    while True:  # (the audit writer commits in batches)
        with sqlite3.connect(md.audit_db) as conn:
            rows = conn.execute(
                "SELECT status, consumer FROM messages WHERE http_method = 'GET'"
            ).fetchall()
        if len(rows) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # (the refused ones, never identified, under their address, as anonymous callers are)
    assert sorted(rows, key=str) == sorted(
        [(401, "anon:127.0.0.1"), (401, "anon:127.0.0.1"), (200, "agent-e2e")], key=str
    ), rows


class _SilentStreams(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an event stream's headers, then says nothing for 30 s."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        self.server.stop.wait(30)  # type: ignore[attr-defined]

    def log_message(self, *a: Any) -> None:
        pass


def test_an_unasked_stream_is_refused_at_once_by_a_silent_server(
    mitmdump_factory, tmp_path
) -> None:
    """The refusal of a stream the GET did not ask for went with its status and headers at
    once, but its body (with a Content-Length) waited for the server's first bytes: a server
    that opened the stream and said nothing kept the client waiting for the 401's body (a
    client reading it, as httpx does, until its timeout)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SilentStreams)
    srv.daemon_threads = True
    srv.stop = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        db = tmp_path / "keys.db"
        create_key(db, "e2e", "agent-e2e", [])
        md = _gateway(
            mitmdump_factory,
            tmp_path,
            f"keys_db: {db}\nauth:\n  required: true\n",
            mode=f"reverse:http://127.0.0.1:{srv.server_address[1]}",
        )
        md.wait_log("listening at", timeout=60)
        with httpx.Client(trust_env=False, timeout=10) as c:
            for accept in ("application/json", "*/*"):
                t = time.monotonic()
                r = c.get(md.base + "/sse", headers={"accept": accept})
                _assert_401(r, accept)
                assert time.monotonic() - t < 5, accept  # (the server never wrote a byte)
    finally:
        srv.stop.set()  # type: ignore[attr-defined]
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("transport", ["streamable", "json"])
async def test_access_policy_refuses_and_hides_tools_by_role(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path, transport
) -> None:
    # (answers in an SSE stream and as JSON bodies)
    db = tmp_path / "keys.db"
    admin, _ = create_key(db, "ops", "ops-admin", ["admin"])
    agent, _ = create_key(db, "bot", "agent-bot", ["agent"])
    server = mcp_server_factory(transport, fresh=True)
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        f"keys_db: {db}\n"
        "policy:\n  rules:\n"
        "    - {action: allow, roles: [admin], tools: [add]}\n"
        "    - {action: deny, tools: [add], message: add is for admins}\n",
        options={"mcp_audit_db": str(tmp_path / "audit.db")},
    )
    hdr = {"Authorization": f"Bearer {agent}"}
    async with mcp_session(server.url, proxy=md.proxy_url, headers=hdr) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "echo" in names and "add" not in names  # not offered to the agent
        with pytest.raises(Exception, match="forbidden by mcp-gateway policy: add is for admins"):
            await s.call_tool("add", {"a": 1, "b": 2})
        assert _text(await s.call_tool("echo", {"text": "still here"})) == "still here"
    assert not any('"add"' in json.dumps(c) for c in server.calls())  # never reached it
    hdr = {"Authorization": f"Bearer {admin}"}
    async with mcp_session(server.url, proxy=md.proxy_url, headers=hdr) as s:
        assert "add" in {t.name for t in (await s.list_tools()).tools}
        assert _text(await s.call_tool("add", {"a": 1, "b": 2})) == "3"
    md.wait_log("mcp-gateway: policy refused tools/call add for agent-bot", timeout=5)
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline and not rows:
        with sqlite3.connect(tmp_path / "audit.db") as c:
            rows = c.execute(
                "SELECT consumer, name, refusal_code, refusal_stage FROM messages"
                " WHERE refusal_stage = 'policy'"
            ).fetchall()
        time.sleep(0.2)
    assert rows == [("agent-bot", "add", -32063, "policy")]


async def test_an_allow_rule_on_a_server_is_not_met_by_a_name_the_client_gives(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
) -> None:
    # Mcp-Gateway-Server names a loopback upstream as the client likes: it passed an allow
    # rule scoped to that name under default deny, and the server ran the tool
    server = mcp_server_factory("json", fresh=True)
    md = _gateway(
        mitmdump_factory,
        tmp_path,
        "policy:\n  default: deny\n  rules:\n    - {action: allow, servers: ['docs.internal:*']}\n",
    )
    hdr = {"Mcp-Gateway-Server": "docs.internal:1"}
    async with mcp_session(server.url, proxy=md.proxy_url, headers=hdr) as s:
        with pytest.raises(Exception, match="forbidden by mcp-gateway policy"):
            await s.call_tool("echo", {"text": "should not run"})
    assert not any("should not run" in json.dumps(c) for c in server.calls())


def test_a_message_without_its_jsonrpc_member_is_still_authenticated_and_judged(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    """The Java SDK (and Spring AI's servers on it) reads a message by its method and id
    alone, whatever its jsonrpc member says: a tools/call sent without "jsonrpc": "2.0" and
    without MCP headers went through a real reverse gateway under auth.required to the
    server, unauthenticated, unscanned and unaudited, and with a session header past the
    policy (red-team round 32). Such a message is an MCP request to the gateway too."""
    db = tmp_path / "keys.db"
    key, _ = create_key(db, "agent", "agent", [])
    server = mcp_server_factory("json", fresh=True)
    config = (
        f"keys_db: {db}\nauth: {{required: true}}\n"
        "policy:\n  rules:\n    - action: deny\n      tools: [add]\n"
    )
    md = _gateway(mitmdump_factory, tmp_path, config, mode=f"reverse:{server.base}")
    url = md.url_for(server)
    bare = {"id": 41, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    with httpx.Client(trust_env=False, timeout=10) as c:
        h = {"content-type": "application/json", "accept": ACCEPT}
        for variant in (bare, {**bare, "jsonrpc": "1.0"}, {**bare, "jsonrpc": 2.0}):
            _assert_401(c.post(url, content=json.dumps(variant), headers=h), variant)
    raw = Raw(url, None, key)
    try:
        assert raw.initialize().status_code == 200
        denied = {"id": 42, "method": "tools/call", "params": {"name": "add", "arguments": {}}}
        r = raw.post(denied)
        assert r.status_code == 200 and r.json()["error"]["code"] == -32063, r.text
    finally:
        raw.close()
    assert not any(c.get("tool") == "add" for c in server.calls())
    bodies = [req["body"] for req in server.requests()]
    assert not any('"id": 41' in b or '"id":41' in b for b in bodies), bodies
    assert not any('"id": 42' in b or '"id":42' in b for b in bodies), bodies


def test_a_gateway_key_in_a_second_authorization_header_never_reaches_the_server(
    mitmdump_factory, mcp_server_factory, tmp_path, monkeypatch
) -> None:
    """Authorization: Bearer <opaque> then Authorization: Bearer mgw_<key>: the gateway read
    the first copy (an unverified token, forwarded unchanged) and the server got both, the
    gateway key among them (Starlette's dict of headers kept the last: the key)."""
    md, server, key = _injecting_gateway(
        mitmdump_factory, mcp_server_factory, tmp_path, monkeypatch
    )
    server.reset()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    with httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=10) as c:
        for first in ("Bearer opaque-123", "Basic dXNlcjpwdw=="):
            r = c.post(
                server.url,
                content=json.dumps(body),
                headers=[
                    ("accept", ACCEPT),
                    ("content-type", "application/json"),
                    ("authorization", first),
                    ("authorization", f"Bearer {key}"),
                ],
            )
            assert r.status_code == 400, (first, r.status_code, r.text)
            assert r.json()["error"]["code"] == -32600
            assert "more than once" in r.json()["error"]["message"]
        # one copy: as before
        raw = Raw(server.url, md.proxy_url, key)
        try:
            assert raw.initialize().status_code == 200
        finally:
            raw.close()
    reqs = server.requests()
    assert len(reqs) == 2, reqs  # the initialize and its notification, nothing before
    assert key not in json.dumps(reqs)


def test_a_stream_resumed_from_another_identitys_event_is_refused(
    mitmdump_factory, mcp_server_factory, tmp_path
) -> None:
    """FastMCP with an event store (one for all sessions, as the SDK's interface has it):
    bob, in his own session, resumed a stream from an event id of alice's stream and got
    alice's tool result; or from his own event of a request with the id alice used later,
    and got hers too (a store keyed by stream, a POST's stream being its request id)."""
    db = tmp_path / "keys.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    server = mcp_server_factory("streamable", module="eventstore", fresh=True)
    md = _gateway(mitmdump_factory, tmp_path, f"keys_db: {db}\n")
    a, b = Raw(server.url, md.proxy_url, alice), Raw(server.url, md.proxy_url, bob)

    def note(client: Raw, name: str) -> list[str]:
        client.next_id = 7  # (both use id 7)
        r = client.call("note", {"name": name})
        assert r.status_code == 200 and f"private note of {name}" in r.text, r.text
        return [line[3:].strip() for line in r.text.splitlines() if line.startswith("id:")]

    def resume(client: Raw, last: str) -> tuple[int, str]:
        h = {
            "accept": "text/event-stream",
            "mcp-protocol-version": "2025-06-18",
            "authorization": f"Bearer {client.token}",
            "mcp-session-id": client.session,
            "last-event-id": last,
        }
        got = ""
        try:
            with client.client.stream("GET", server.url, headers=h, timeout=3) as s:
                status = s.status_code
                for chunk in s.iter_text():
                    got += chunk
                    if got.count("\n\n") >= 3 or status != 200:
                        break
        except httpx.ReadTimeout:
            pass
        return status, got

    try:
        assert a.initialize().status_code == 200 and b.initialize().status_code == 200
        bob_ids = note(b, "bob")
        alice_ids = note(a, "alice")
        assert len(alice_ids) == 2 and len(bob_ids) == 2  # the log event, the answer
        status, got = resume(b, alice_ids[0])
        assert status == 404 and "private note of alice" not in got, (status, got)
        status, got = resume(b, bob_ids[0])  # his own event: what follows it on stream 7
        assert status == 200, got
        assert "private note of alice" not in got, got
        assert "delivered to another identity" in got, got
        status, got = resume(a, alice_ids[0])  # alice's own: as always
        assert status == 200 and "private note of alice" in got, got
    finally:
        a.close()
        b.close()
