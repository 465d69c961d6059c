"""HTTP/2 through the gateway, on both legs.

Clients that offer h2 over TLS (Go's net/http, browsers, curl, httpx with http2=True) get
it from mitmproxy when the server speaks it too. The FastMCP server is served here by
hypercorn over TLS with h2 (tests/e2e/servers/everything.py --http2); the client is httpx
with http2=True, in regular proxy mode (CONNECT, trusting the mitmproxy CA) and in reverse
mode. Everything the gateway does on HTTP/1.1 must hold: SSE streamed event by event, secrets
redacted in both directions with a correct frame length, a block answered with a JSON-RPC
error, a broken body answered with a parse error.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ACCEPT = "application/json, text/event-stream"
AWS_KEY_ID = "AKIAQ3EGUIF5ZK7XVJ2M"
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


def rpc(i: int, method: str, params: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}).encode()


def answer(r: httpx.Response) -> dict:
    """The JSON-RPC answer in a JSON body or in the last SSE event that carries one."""
    if r.headers["content-type"].startswith("application/json"):
        return r.json()
    events = [ln[5:] for ln in r.text.splitlines() if ln.startswith("data:")]
    return json.loads(events[-1])


def route(mitmdump_factory, server, tls_cert, deploy: str, options=None, **kw):
    """mitmdump in front of the h2 server: (mitmdump, client URL, proxy or None)."""
    opts = {"ssl_verify_upstream_trusted_ca": str(tls_cert.certfile), **(options or {})}
    if deploy == "regular":
        md = mitmdump_factory(options=opts, **kw)
        return md, server.url, md.proxy_url
    md = mitmdump_factory(mode=f"reverse:{server.base}", options=opts, **kw)
    return md, md.url_for(server).replace("http://", "https://"), None


def h2_client(md, proxy) -> httpx.Client:
    return httpx.Client(
        http2=True,
        proxy=proxy,
        verify=ssl.create_default_context(cafile=str(md.ca_file)),
        trust_env=False,
        timeout=20,
    )


def initialize(c: httpx.Client, url: str, capabilities: dict) -> dict:
    """initialize + initialized over h2; the headers for the session's next requests."""
    h = {"content-type": "application/json", "accept": ACCEPT}
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": capabilities,
        "clientInfo": {"name": "h2", "version": "1"},
    }
    r = c.post(url, content=rpc(0, "initialize", init), headers=h)
    assert r.http_version == "HTTP/2" and r.status_code == 200, r.text
    h["mcp-session-id"] = r.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert c.post(url, json=note, headers=h).status_code == 202
    return h


@pytest.mark.parametrize("deploy", ["regular", "reverse"])
@pytest.mark.parametrize("transport", ["streamable", "json"])
def test_http2_on_both_legs(mitmdump_factory, mcp_server_factory, tls_cert, deploy, transport):
    server = mcp_server_factory(transport, tls=tls_cert, http2=True)
    md, url, proxy = route(mitmdump_factory, server, tls_cert, deploy, shared=True)
    with h2_client(md, proxy) as c:
        h = initialize(c, url, {})

        if transport == "streamable":
            # progress events arrive while the call runs (0.4 s apart), not at its end
            slow = {"name": "slow_progress", "arguments": {"steps": 3, "delay": 0.4}}
            slow["_meta"] = {"progressToken": 7}
            seen: list[tuple[float, str]] = []
            t0 = time.monotonic()
            with c.stream("POST", url, content=rpc(1, "tools/call", slow), headers=h) as s:
                assert s.http_version == "HTTP/2"
                for line in s.iter_lines():
                    if line.startswith("data:"):
                        kind = json.loads(line[5:]).get("method") or "answer"
                        seen.append((time.monotonic() - t0, kind))
            assert [k for _, k in seen] == ["notifications/progress"] * 3 + ["answer"]
            assert seen[0][0] < seen[-1][0] - 0.6, seen

        leak = c.post(url, content=rpc(2, "tools/call", {"name": "leak", "arguments": {"kind": "github"}}), headers=h)  # fmt: skip
        text = answer(leak)["result"]["content"][0]["text"]
        assert text == "GITHUB_TOKEN=[REDACTED:github_token]"

        echo = {"name": "echo", "arguments": {"text": f"key {AWS_KEY_ID}"}}
        r = c.post(url, content=rpc(3, "tools/call", echo), headers=h)
        assert answer(r)["result"]["content"][0]["text"] == "key [REDACTED:aws_access_key_id]"

        pem = {"name": "echo", "arguments": {"text": PEM}}
        r = c.post(url, content=rpc(4, "tools/call", pem), headers=h)
        err = answer(r)["error"]
        assert err["code"] == -32061 and "private-key" in err["message"]

        r = c.post(url, content=rpc(5, "tools/call", {"name": "echo"})[:-3], headers=h)
        assert r.http_version == "HTTP/2" and r.status_code == 400
        assert r.json()["error"]["code"] == -32700
    # the server got nothing secret, and mitmproxy spoke HTTP/2 to it as well
    assert all(
        AWS_KEY_ID not in json.dumps(x) and "PRIVATE" not in json.dumps(x) for x in server.calls()
    )
    md.wait_log("/mcp HTTP/2.0", timeout=5)


@pytest.mark.parametrize(
    "deploy", ["regular", "reverse", "reverse-keep-host"], ids=["regular", "reverse", "keep-host"]
)
def test_http2_blocked_server_request_is_answered_to_the_server(
    mitmdump_factory, mcp_server_factory, tls_cert, deploy, tmp_path
):
    # The answer to a blocked sampling request is a new POST: over HTTP/2 it must carry the
    # stream's authority (an h2 request has no Host header), or the server refuses it and
    # its tool call waits forever.
    server = mcp_server_factory("streamable", tls=tls_cert, http2=True, fresh=True)
    rules = tmp_path / "strict.yaml"
    rules.write_text("rules:\n  - id: private-key-in-result\n    action: block\n")
    args = ["--set", f"mcp_rules={Path(__file__).resolve().parents[2] / 'rules'}"]
    args += ["--set", f"mcp_rules={rules}"]
    keep = {"keep_host_header": True} if deploy == "reverse-keep-host" else {}
    mode = "regular" if deploy == "regular" else "reverse"
    md, url, proxy = route(mitmdump_factory, server, tls_cert, mode, keep, extra_args=args)
    with h2_client(md, proxy) as c:
        h = initialize(c, url, {"sampling": {}})
        call = {"name": "sample", "arguments": {"prompt": "summarize", "leak": "key"}}
        t0 = time.monotonic()
        with c.stream("POST", url, content=rpc(1, "tools/call", call), headers=h) as s:
            assert s.http_version == "HTTP/2"
            events = [json.loads(ln[5:]) for ln in s.iter_lines() if ln.startswith("data:")]
        assert time.monotonic() - t0 < 15  # answered, not timed out
    assert [e.get("method") for e in events] == [None]  # the sampling request never came
    result = events[-1]["result"]
    assert result["isError"] and "private-key-in-result" in result["content"][0]["text"]
    assert "PRIVATE KEY" not in json.dumps(events)
