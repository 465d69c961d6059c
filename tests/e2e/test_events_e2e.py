"""MCP Events (SEP-3415 draft: ChatGPT, the AI SDK's ``experimental_events``) through a real
gateway in reverse mode, against a small 2026-07-28 server in this process.

``events/subscribe`` hands the server ``delivery.secret``, the Standard Webhooks key
(``whsec_`` + base64 of 24-64 random bytes) the client made for this subscription and the
server signs its deliveries with. The gateway read it as a Stripe webhook secret and redacted
it, and the AI SDK 2.0's ``experimental_events.subscribe`` failed through the gateway (found
by the interop round with ``@ai-sdk/mcp``): the server refused ``[REDACTED:stripe_key]=``.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import sqlite3
import threading
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

GOT: list[dict[str, Any]] = []
MAX_GOT = 100


class _EventsHandler(http.server.BaseHTTPRequestHandler):
    """server/discover, events/list, events/subscribe (checks the key as servers do)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        pass

    def do_POST(self) -> None:
        msg = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        if len(GOT) < MAX_GOT:
            GOT.append(msg)
        params = msg.get("params") or {}
        method = msg.get("method")
        if method == "server/discover":
            body: dict[str, Any] = {
                "result": {
                    "resultType": "complete",
                    "supportedVersions": ["2026-07-28"],
                    "capabilities": {"events": {}},
                }
            }
        elif method == "events/subscribe":
            secret = (params.get("delivery") or {}).get("secret", "")
            m = re.fullmatch(r"whsec_([A-Za-z0-9+/]+={0,2})", secret)
            n = len(base64.b64decode(m.group(1))) if m else 0
            if 24 <= n <= 64:
                body = {"result": {"resultType": "complete", "id": "sub-1", "truncated": False}}
            else:
                body = {"error": {"code": -32602, "message": "invalid delivery.secret"}}
        else:
            body = {"error": {"code": -32601, "message": f"no method {method}"}}
        data = json.dumps({"jsonrpc": "2.0", "id": msg.get("id"), **body}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def events_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EventsHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _post(client: httpx.Client, url: str, rid: int, method: str, params: dict | None = None):
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
    }
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return client.post(url, json=msg, headers=headers)


def test_an_event_subscriptions_webhook_key_reaches_the_server(events_server, mitmdump_factory):
    gw = mitmdump_factory(mode=f"reverse:{events_server}")
    # the rules compile before the proxy listens for clients (a fresh Hyperscan cache: seconds)
    gw.wait_log("listening at", timeout=120)
    secret = "whsec_" + base64.b64encode(bytes(range(40, 72))).decode()
    token = "ghp_" + "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0" + "21XlvR"  # valid CRC32 checksum
    GOT.clear()
    with httpx.Client(timeout=30, trust_env=False) as c:
        r = _post(c, f"{gw.base}/mcp", 1, "server/discover")
        assert r.status_code == 200 and r.json()["result"]["capabilities"] == {"events": {}}
        params = {
            "name": "ticket.created",
            "arguments": {"note": token},
            "delivery": {"mode": "webhook", "url": "https://app.example/hook", "secret": secret},
        }
        r = _post(c, f"{gw.base}/mcp", 2, "events/subscribe", params)
        assert r.status_code == 200
        assert r.json().get("result", {}).get("id") == "sub-1", r.text
    sub = [m for m in GOT if m.get("method") == "events/subscribe"]
    assert len(sub) == 1
    assert sub[0]["params"]["delivery"]["secret"] == secret  # the server's key, as made
    assert sub[0]["params"]["arguments"]["note"] == "[REDACTED:github_token]"  # still scanned
    # audited: the key as a finding that was only logged, never its value
    sql = (
        "SELECT m.action, f.location, f.action, f.masked FROM findings f"
        " JOIN messages m ON m.seq = f.message_seq"
        " WHERE m.method = 'events/subscribe' AND m.direction = 'c2s'"
    )
    deadline = time.monotonic() + 10
    rows: list = []
    while len(rows) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        if gw.audit_db.exists():
            with sqlite3.connect(f"file:{gw.audit_db}?mode=ro", uri=True, timeout=1) as db:
                rows = db.execute(sql).fetchall()
    assert {(r[0], r[1], r[2]) for r in rows} == {
        ("redact", "/params/delivery/secret", "log"),
        ("redact", "/params/arguments/note", "redact"),
    }
    assert not any(secret[6:20] in r[3] for r in rows)
