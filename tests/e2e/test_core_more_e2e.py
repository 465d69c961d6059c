"""More core end-to-end cases: HTTPS in regular mode (the mitmproxy CA), gzip answers, and the
mcp_max_message_bytes / mcp_fail_mode pair. (Idle streams vs tcp_timeout: test_core_streams_e2e.py.)
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl

import httpx
import pytest
from mcp import types
from mcp.shared.exceptions import McpError

pytestmark = pytest.mark.e2e

ACCEPT = "application/json, text/event-stream"


def text_of(result: types.CallToolResult) -> str:
    assert not result.isError, result
    return result.content[0].text


async def test_https_upstream_in_regular_mode(
    mitmdump_factory, mcp_server_factory, mcp_session, tls_cert
):
    """HTTPS_PROXY-style use: CONNECT + TLS interception; the client trusts the mitmproxy CA."""
    server = mcp_server_factory("streamable", tls=tls_cert)
    assert server.url.startswith("https://")
    md = mitmdump_factory(
        options={"ssl_verify_upstream_trusted_ca": tls_cert.certfile}, shared=True
    )
    stamps: list[float] = []

    async def on_progress(progress, total, message):
        stamps.append(progress)

    async with mcp_session(server.url, proxy=md.proxy_url, verify=md.ca_file) as s:
        assert text_of(await s.call_tool("echo", {"text": "over tls"})) == "over tls"
        res = await s.call_tool(
            "slow_progress", {"steps": 2, "delay": 0.1}, progress_callback=on_progress
        )
        assert text_of(res) == "done after 2 steps" and stamps == [1.0, 2.0]
    # the gateway saw the decrypted exchange (its flow log names the https URL)
    md.wait_log(f"POST {server.url}")


def test_https_without_the_ca_is_refused(mitmdump_factory, mcp_server_factory, tls_cert):
    """Control: a client that does not trust the mitmproxy CA fails verification."""
    server = mcp_server_factory("streamable", tls=tls_cert)
    md = mitmdump_factory(
        options={"ssl_verify_upstream_trusted_ca": tls_cert.certfile}, shared=True
    )
    ctx = ssl.create_default_context(cafile=str(tls_cert.certfile))  # not the mitmproxy CA
    with httpx.Client(proxy=md.proxy_url, trust_env=False, verify=ctx) as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            c.get(server.base + "/_debug/calls")


@pytest.mark.parametrize("deploy", ["regular", "reverse"])
async def test_gzip_answers(mitmdump_factory, mcp_server_factory, mcp_session, deploy):
    server = mcp_server_factory("json", gzip=True)
    if deploy == "regular":
        md = mitmdump_factory(shared=True)
        url, proxy = server.url, md.proxy_url
    else:
        md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
        url, proxy = md.url_for(server), None
    async with mcp_session(url, proxy=proxy, timeout=60) as s:
        expected = text_of(await s.call_tool("digest", {"n_bytes": 300_000}))
        got = text_of(await s.call_tool("big", {"n_bytes": 300_000}))
    assert hashlib.sha256(got.encode()).hexdigest() == expected


def test_gzip_direct_answer_really_is_gzip(mcp_server_factory):
    """Guard for the test above: the server does compress."""
    server = mcp_server_factory("stateless-json", gzip=True)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "big", "arguments": {"n_bytes": 10_000}},
    }
    with httpx.Client(trust_env=False, timeout=10) as c:
        r = c.post(
            server.url,
            content=json.dumps(body),
            headers={"content-type": "application/json", "accept": ACCEPT},
        )
    assert r.headers.get("content-encoding") == "gzip"


async def test_oversized_message_fail_closed(mitmdump_factory, mcp_server_factory, mcp_session):
    server = mcp_server_factory("json")
    md = mitmdump_factory(
        options={"mcp_max_message_bytes": 100_000, "mcp_fail_mode": "closed"}, shared=True
    )
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        assert text_of(await s.call_tool("echo", {"text": "small"})) == "small"
        with pytest.raises(McpError) as e:
            await s.call_tool("big", {"n_bytes": 200_000})
        assert e.value.error.code == -32065, e.value.error
        # the session keeps working afterwards
        assert text_of(await s.call_tool("add", {"a": 1, "b": 2})) == "3"


async def test_oversized_message_fail_open(mitmdump_factory, mcp_server_factory, mcp_session):
    server = mcp_server_factory("json")
    md = mitmdump_factory(
        options={"mcp_max_message_bytes": 100_000, "mcp_fail_mode": "open"}, shared=True
    )
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        got = text_of(await s.call_tool("big", {"n_bytes": 200_000}))
        assert len(got.encode()) == 200_000


async def test_mitmweb_shows_mcp_flows(
    mitmdump_factory, mcp_server_factory, mcp_session, free_port
):
    """`mitmweb -s addons/gateway.py`: MCP traffic streams, and the flows (including the
    streamed SSE body) can be browsed in the UI's API."""
    server = mcp_server_factory("streamable")
    web_port = free_port()
    md = mitmdump_factory(
        program="mitmweb",
        options={"web_port": web_port, "web_password": "e2e-secret", "web_open_browser": False},
    )
    stamps: list[float] = []

    async def on_progress(progress, total, message):
        stamps.append(progress)

    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        res = await s.call_tool(
            "slow_progress", {"steps": 2, "delay": 0.2}, progress_callback=on_progress
        )
    assert text_of(res) == "done after 2 steps" and stamps == [1.0, 2.0]
    api = f"http://127.0.0.1:{web_port}"
    auth = {"authorization": "Bearer e2e-secret"}
    async with httpx.AsyncClient(trust_env=False, timeout=10, headers=auth) as web:
        flows = (await web.get(api + "/flows")).json()
        posts = [f for f in flows if f["request"]["method"] == "POST" and f.get("response")]
        sse = [
            f
            for f in posts
            if any(
                k.lower() == "content-type" and v.startswith("text/event-stream")
                for k, v in f["response"]["headers"]
            )
        ]
        assert sse, flows
        # the streamed body of the tools/call answer is kept for the UI
        bodies = {}
        for f in sse:
            if f.get("error"):
                # A stream the client closed early ("Client disconnected.") has no content in
                # 12.2.3's mitmweb API (HTTP 500); reported to the core, not asserted here.
                continue
            r = await web.get(api + f"/flows/{f['id']}/response/content.data")
            assert r.status_code == 200, (f["request"], f["response"], f.get("error"))
            bodies[f["id"]] = r.content
        call = [i for i, b in bodies.items() if b"done after 2 steps" in b]
        assert len(call) == 1, bodies
        assert bodies[call[0]].count(b"notifications/progress") == 2
        view = await web.get(api + f"/flows/{call[0]}/response/content/mcp.json")
        assert view.status_code == 200, view.text
        assert "slow_progress" in view.text, view.text


def _via(mitmdump_factory, server, deploy):
    """(client through mitmdump, base url to use with it)."""
    if deploy == "regular":
        md = mitmdump_factory(shared=True)
        return httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=10), server.base
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    return httpx.Client(trust_env=False, timeout=10), md.base


BATCH = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "one"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1}},
    {
        "jsonrpc": "2.0",
        "id": "two",
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}},
    },
]


@pytest.mark.parametrize("deploy", ["regular", "reverse"])
@pytest.mark.parametrize("sse", ["", "1", "array"], ids=["json", "sse-events", "sse-array"])
def test_batches_2025_03_26_pass_unchanged(mitmdump_factory, mcp_server_factory, deploy, sse):
    """A JSON-RPC batch (allowed in 2025-03-26) goes through, and the batched answers come back
    byte-identical to a direct call, as a JSON array or as SSE events."""
    server = mcp_server_factory("stateless-json")
    via, base = _via(mitmdump_factory, server, deploy)
    path = "/batch/mcp" + (f"?sse={sse}" if sse else "")
    headers = {
        "content-type": "application/json",
        "accept": ACCEPT,
        "mcp-protocol-version": "2025-03-26",
    }
    body = json.dumps(BATCH).encode()
    with httpx.Client(trust_env=False, timeout=10) as direct:
        a = direct.post(server.base + path, content=body, headers=headers)
    server.reset()
    with via:
        b = via.post(base + path, content=body, headers=headers)
    assert a.status_code == b.status_code == 200
    assert b.content == a.content
    assert re.search(rb'"text": ?"one"', b.content) and re.search(rb'"text": ?"5"', b.content)
    assert [c["tool"] for c in server.calls()] == ["echo", "add"]


@pytest.mark.parametrize("deploy", ["regular", "reverse"])
def test_unknown_method_reaches_server_unchanged(mitmdump_factory, mcp_server_factory, deploy):
    """Unknown methods are not the gateway's business: the server's own answer comes back."""
    server = mcp_server_factory("stateless-json")
    via, base = _via(mitmdump_factory, server, deploy)
    body = b'{"jsonrpc":"2.0","id":9,"method":"vendor/unknownThing","params":{"x":1}}'
    headers = {"content-type": "application/json", "accept": ACCEPT}
    with httpx.Client(trust_env=False, timeout=10) as direct:
        a = direct.post(server.url, content=body, headers=headers)
    server.reset()
    with via:
        b = via.post(base + "/mcp", content=body, headers=headers)
    assert (b.status_code, b.content) == (a.status_code, a.content)
    assert [r["body"] for r in server.requests()] == [body.decode()]


@pytest.mark.parametrize("deploy", ["regular", "reverse"])
def test_members_that_differ_only_in_case_never_reach_the_server(
    mitmdump_factory, mcp_server_factory, deploy
):
    """Go's JSON decoding (mcp-go, the Go SDK before 1.3.1) matches member names ignoring
    case, the last one winning: {"name": "echo", "Name": "add"} is a call of add there. Such
    a request is refused (400, -32600) before the server sees it, whatever it names."""
    server = mcp_server_factory("stateless-json")
    via, base = _via(mitmdump_factory, server, deploy)
    server.reset()
    headers = {"content-type": "application/json", "accept": ACCEPT}
    bodies = [
        b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo",'
        b'"arguments":{"text":"x"},"Name":"add"}}',
        b'{"jsonrpc":"2.0","id":9,"METHOD":"tools/call","params":{"name":"add"}}',
    ]
    with via:
        for body in bodies:
            r = via.post(base + "/mcp", content=body, headers=headers)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == -32600 and r.json()["id"] == 9
        ok = b'{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}'
        assert via.post(base + "/mcp", content=ok, headers=headers).status_code == 200
    assert [c["tool"] for c in server.calls()] == ["echo"]  # only the plain one


def test_an_option_given_twice_stops_start_up(tmp_path):
    """mitmproxy would fail inside its script loader without a word and run on as a plain
    proxy (no scanning, no audit); the gateway makes it an error that stops start-up."""
    import subprocess

    from .conftest import GATEWAY_SCRIPT, VENV_BIN, clean_env, pick_free_port

    args = [
        str(VENV_BIN / "mitmdump"),
        "--listen-host", "127.0.0.1", "-p", str(pick_free_port()),
        "--set", f"confdir={tmp_path / 'conf'}", "--set", f"mcp_audit_db={tmp_path / 'a.db'}",
        "-s", str(GATEWAY_SCRIPT),
        "--set", "mcp_fail_mode=closed", "--set", "mcp_fail_mode=open",
    ]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=clean_env())
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert "option mcp_fail_mode is given 2 times ('closed', 'open'); give it once" in out


def test_a_bad_rule_file_stops_start_up_with_its_line_not_a_long_traceback(tmp_path):
    """The README: a bad rule stops start-up with ``file:line: field: problem``. It did, after
    some thirty lines of traceback through mitmproxy's option manager (closed mode turning
    rawtcp off from inside the start-up's configure)."""
    import subprocess

    from .conftest import GATEWAY_SCRIPT, VENV_BIN, clean_env, pick_free_port

    bad = tmp_path / "mine.yaml"
    bad.write_text(
        "rules:\n  - id: my_rule\n    type: generic_secret\n    severity: high\n"
        "    action: redact\n    patterns: ['foo[0-9']\n"
    )
    args = [
        str(VENV_BIN / "mitmdump"),
        "--listen-host", "127.0.0.1", "-p", str(pick_free_port()),
        "--set", f"confdir={tmp_path / 'conf'}", "--set", f"mcp_audit_db={tmp_path / 'a.db'}",
        "-s", str(GATEWAY_SCRIPT),
        "--set", f"mcp_rules={bad}",
    ]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=clean_env())
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert f"mcp_rules: {bad}:6: rules[0].patterns: invalid regular expression" in out, out
    assert "optmanager.py" not in out and out.count("File ") <= 2, out


GITHUB_TOKEN = "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"  # (valid CRC32 tail)


def test_stream_large_bodies_does_not_carry_a_call_past_the_gateway(
    mitmdump_factory, mcp_server_factory
):
    """mitmproxy's stream_large_bodies streamed a body over its size before any hook of the
    gateway saw it: a 4 KB tools/call reached the server with its token, unaudited. Closed
    mode turns the option off at start-up (and says so)."""
    server = mcp_server_factory("stateless-json")
    md = mitmdump_factory(mode=f"reverse:{server.base}", options={"stream_large_bodies": "2k"})
    server.reset()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": f"t {GITHUB_TOKEN} " + "x" * 4000}},
    }
    with httpx.Client(trust_env=False, timeout=10) as c:
        r = c.post(md.base + "/mcp", json=body, headers={"accept": ACCEPT})
    assert r.status_code == 200 and GITHUB_TOKEN not in r.text
    assert GITHUB_TOKEN not in json.dumps(server.calls())
    assert "stream_large_bodies=2k turned off" in md.log_since(md.since)


def test_a_call_too_costly_to_parse_with_an_escaped_method_is_refused_on_first_contact(
    mitmdump_factory, mcp_server_factory
):
    """200,001 empty lists make a request too costly to inspect; it then went on untouched
    unless it showed a sign of MCP, and "m\\u0065thod" hid its method from the bytes "method":
    the first call to a stateless FastMCP server ran, its token unscanned and unaudited."""
    server = mcp_server_factory("stateless-json")
    md = mitmdump_factory(mode=f"reverse:{server.base}")  # fresh: the server not yet known
    server.reset()
    pad = ",".join(["[]"] * 200_001)
    body = (
        '{"jsonrpc":"2.0","id":1,"m\\u0065thod":"tools/call","params":{"name":"echo",'
        '"arguments":{"text":"t ' + GITHUB_TOKEN + '"},"_meta":{"pad":[' + pad + "]}}}"
    )
    headers = {"content-type": "application/json", "accept": ACCEPT}
    with httpx.Client(trust_env=False, timeout=20) as c:
        r = c.post(md.base + "/mcp", content=body.encode(), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == -32065
    assert server.calls() == []


async def test_a_redirect_to_the_upstream_keeps_the_client_on_a_reverse_gateway(
    mitmdump_factory, mcp_server_factory
):
    """Starlette (FastMCP's server) answers a POST to ``/mcp/`` with 307 to the absolute
    ``http://<its own address>/mcp`` (and FastMCP of the SDK 1.8/1.9 and fastmcp 2.8 answer
    ``/mcp`` with 307 to ``/mcp/``). Clients that follow redirects (httpx with
    ``follow_redirects=True``: the Python SDK 1.8 and 1.9, fastmcp 2.8; and mcp-remote) then
    talked to the server directly: a token in a tool's result reached them unredacted and no
    audit row said so."""
    server = mcp_server_factory("streamable")
    md = mitmdump_factory(mode=f"reverse:{server.base}", shared=True)
    url = md.url_for(server) + "/"  # the endpoint as users write it, with a slash
    headers = {"accept": ACCEPT, "content-type": "application/json"}

    def rpc(i: int, method: str, params: dict) -> dict:
        return {"jsonrpc": "2.0", "id": i, "method": method, "params": params}

    def answer(r: httpx.Response) -> dict:
        for line in r.text.splitlines():  # (an SSE answer: its one data line)
            if line.startswith("data:"):
                return json.loads(line[5:])
        return r.json()

    async with httpx.AsyncClient(follow_redirects=True, trust_env=False, timeout=40) as c:
        init = rpc(
            1,
            "initialize",
            {
                "protocolVersion": "2025-03-26",
                "capabilities": {},
                "clientInfo": {"name": "follows-redirects", "version": "1"},
            },
        )
        r = await c.post(url, json=init, headers=headers)
        assert r.history and r.history[0].status_code == 307
        assert r.url.port == md.port, f"followed the redirect around the gateway to {r.url}"
        sid = r.headers["mcp-session-id"]
        h = {**headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-03-26"}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await c.post(url, json=note, headers=h)).status_code == 202
        r = await c.post(
            url,
            json=rpc(2, "tools/call", {"name": "leak", "arguments": {"kind": "github"}}),
            headers=h,
        )
        assert r.url.port == md.port
        text = answer(r)["result"]["content"][0]["text"]
        assert text == "GITHUB_TOKEN=[REDACTED:github_token]"
