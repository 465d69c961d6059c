"""Issue 2, "How we will know": the gateway core end to end.

A real `mitmdump -s addons/gateway.py` in regular (forward proxy) and reverse mode, FastMCP
servers (tests/e2e/servers/everything.py) and the official MCP SDK client, all on loopback.
The `plain` control tests run the same scenario through a plain mitmdump to show that the
assertions can fail (plain mitmdump buffers SSE).
"""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest
from mcp import types

pytestmark = pytest.mark.e2e

DEPLOYS = ["regular", "reverse"]
ACCEPT = "application/json, text/event-stream"


def start(mitmdump_factory, server, deploy: str, gateway: bool = True, **kw):
    """mitmdump (shared per session) in front of `server`: (mitmdump, client url, proxy or None)."""
    kw.setdefault("shared", True)
    if deploy == "regular":
        md = mitmdump_factory(gateway=gateway, **kw)
        return md, server.url, md.proxy_url
    md = mitmdump_factory(gateway=gateway, mode=f"reverse:{server.base}", **kw)
    return md, md.url_for(server), None


def text_of(result: types.CallToolResult) -> str:
    assert not result.isError, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def assert_proxied(md, path: str = "/mcp") -> None:
    """The request really went through this mitmdump (its flow log names the path)."""
    md.wait_log(path, timeout=5)


# ----------------------------------------------------------------------------- basics


@pytest.mark.parametrize("deploy", DEPLOYS)
@pytest.mark.parametrize("transport", ["streamable", "json", "stateless"])
async def test_initialize_list_and_call(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy, transport
):
    server = mcp_server_factory(transport)
    md, url, proxy = start(mitmdump_factory, server, deploy)
    async with mcp_session(url, proxy=proxy) as s:
        tools = {t.name for t in (await s.list_tools()).tools}
        assert {"echo", "add", "big", "slow_progress", "sample", "elicit"} <= tools
        assert text_of(await s.call_tool("echo", {"text": 'héllo "gateway"'})) == 'héllo "gateway"'
        assert text_of(await s.call_tool("add", {"a": 40, "b": 2})) == "42"
    assert_proxied(md)


# ----------------------------------------------------------------------------- streaming


async def _progress_timing(mcp_session, url, proxy, transport="streamable"):
    stamps: list[float] = []

    async def on_progress(progress, total, message):
        stamps.append(time.monotonic())

    async with mcp_session(url, proxy=proxy, transport=transport) as s:
        t0 = time.monotonic()
        res = await s.call_tool(
            "slow_progress", {"steps": 3, "delay": 0.4}, progress_callback=on_progress
        )
        t_result = time.monotonic()
    assert text_of(res) == "done after 3 steps"
    return t0, stamps, t_result


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_progress_arrives_while_call_runs(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy
):
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    t0, stamps, t_result = await _progress_timing(mcp_session, url, proxy)
    assert len(stamps) == 3
    # the server sends step 1 at once and answers after 3 x 0.4 s
    assert t_result - stamps[0] >= 0.5, (stamps, t_result)
    assert stamps[2] - stamps[0] >= 0.5, stamps


async def test_control_plain_mitmdump_delays_progress(
    mitmdump_factory, mcp_server_factory, mcp_session
):
    """Without the gateway, mitmdump buffers the SSE answer: progress arrives with the result."""
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, "regular", gateway=False)
    t0, stamps, t_result = await _progress_timing(mcp_session, url, proxy)
    assert len(stamps) == 3
    assert t_result - stamps[0] < 0.3, (stamps, t_result)
    assert stamps[0] - t0 >= 1.0


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_burst_of_notifications_in_order(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy
):
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    seen: list[float] = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    async with mcp_session(url, proxy=proxy) as s:
        res = await s.call_tool("burst", {"events": 300}, progress_callback=on_progress)
    assert text_of(res) == "sent 300"
    assert seen == [float(i) for i in range(1, 301)]


# ----------------------------------------------------------------------------- server -> client


async def _sampling(ctx, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    prompt = params.messages[0].content.text
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"echo of {prompt}"),
        model="test-llm",
        stopReason="endTurn",
    )


async def _elicitation(ctx, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert "Who" in params.message
    return types.ElicitResult(action="accept", content={"name": "Ada", "ok": True})


@pytest.mark.parametrize("deploy", DEPLOYS)
@pytest.mark.parametrize("on_get_stream", [False, True], ids=["post-stream", "get-stream"])
async def test_sampling_round_trip(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy, on_get_stream
):
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    async with mcp_session(url, proxy=proxy, sampling_callback=_sampling, timeout=20) as s:
        res = await s.call_tool("sample", {"prompt": "ping", "on_get_stream": on_get_stream})
    assert text_of(res) == "sampled[test-llm]: echo of ping"


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_elicitation_round_trip(mitmdump_factory, mcp_server_factory, mcp_session, deploy):
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    async with mcp_session(url, proxy=proxy, elicitation_callback=_elicitation, timeout=20) as s:
        res = await s.call_tool("elicit", {"question": "Who are you?"})
    assert text_of(res) == "accepted: name=Ada ok=True"


# ----------------------------------------------------------------------------- scanning

TOKEN = "ghp_" + "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0" + "21XlvR"  # valid CRC32 checksum


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_a_markdown_escaped_token_is_redacted(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy
):
    """HTML-to-Markdown converters (mcp-server-fetch's markdownify) write every "_" as "\\_": the
    model reads ``ghp\\_…`` as the token, which once crossed the gateway unredacted. Markdown that
    hides nothing (snake\\_case names, escaped list markers) is left alone."""
    server = mcp_server_factory("streamable")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    page = "export GITHUB\\_TOKEN=" + TOKEN.replace("_", "\\_") + "\n\\- my\\_snake\\_case.py"
    async with mcp_session(url, proxy=proxy) as s:
        echoed = text_of(await s.call_tool("echo", {"text": page}))
    assert echoed == "export GITHUB\\_TOKEN=[REDACTED:github_token]\n\\- my\\_snake\\_case.py"
    seen = [c["arguments"]["text"] for c in server.calls() if c["tool"] == "echo"]
    assert seen and all("Zq8Lm2Xv9Rt4" not in t for t in seen)


# ----------------------------------------------------------------------------- legacy HTTP+SSE


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_legacy_http_sse(mitmdump_factory, mcp_server_factory, mcp_session, deploy):
    server = mcp_server_factory("sse")
    md, url, proxy = start(mitmdump_factory, server, deploy)
    stamps: list[float] = []

    async def on_progress(progress, total, message):
        stamps.append(time.monotonic())

    async with mcp_session(
        url, proxy=proxy, transport="sse", sampling_callback=_sampling, timeout=20
    ) as s:
        assert "echo" in {t.name for t in (await s.list_tools()).tools}
        assert text_of(await s.call_tool("echo", {"text": "legacy"})) == "legacy"
        res = await s.call_tool(
            "slow_progress", {"steps": 3, "delay": 0.4}, progress_callback=on_progress
        )
        t_result = time.monotonic()
        assert text_of(res) == "done after 3 steps"
        assert len(stamps) == 3 and t_result - stamps[0] >= 0.5, (stamps, t_result)
        res = await s.call_tool("sample", {"prompt": "legacy ping"})
        assert text_of(res) == "sampled[test-llm]: echo of legacy ping"
    assert_proxied(md, "/messages/")


# ----------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("deploy", DEPLOYS)
async def test_session_delete_reaches_server(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy
):
    server = mcp_server_factory("streamable", fresh=True)
    md, url, proxy = start(mitmdump_factory, server, deploy)
    async with mcp_session(url, proxy=proxy) as s:
        await s.list_tools()
    reqs = server.requests()
    sids = {r["headers"].get("mcp-session-id") for r in reqs if r["method"] == "POST"} - {None}
    assert len(sids) == 1, reqs
    deletes = [r for r in reqs if r["method"] == "DELETE"]
    assert [d["headers"].get("mcp-session-id") for d in deletes] == list(sids)
    md.wait_log("DELETE ", timeout=5)


# ----------------------------------------------------------------------------- big bodies


@pytest.mark.parametrize(
    "deploy,transport", [("regular", "streamable"), ("reverse", "json")], ids=["sse", "json"]
)
async def test_5mb_result_byte_identical(
    mitmdump_factory, mcp_server_factory, mcp_session, deploy, transport
):
    server = mcp_server_factory(transport)
    md, url, proxy = start(mitmdump_factory, server, deploy)
    async with mcp_session(url, proxy=proxy, timeout=60) as s:
        expected = text_of(await s.call_tool("digest", {"n_bytes": 5_000_000}))
        got = text_of(await s.call_tool("big", {"n_bytes": 5_000_000}))
    assert len(got.encode()) == 5_000_000
    assert hashlib.sha256(got.encode()).hexdigest() == expected


def _post(client: httpx.Client, url: str, body: bytes, **headers: str) -> httpx.Response:
    h = {"content-type": "application/json", "accept": ACCEPT, **headers}
    return client.post(url, content=body, headers=h)


def _raw_clients(md, server, deploy):
    """(direct client, url) and (through-mitmdump client, url) for raw HTTP."""
    direct = httpx.Client(trust_env=False, timeout=30)
    if deploy == "regular":
        return (direct, server.url), (
            httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=30),
            server.url,
        )
    return (direct, server.url), (httpx.Client(trust_env=False, timeout=30), md.url_for(server))


@pytest.mark.parametrize("deploy", DEPLOYS)
def test_unchanged_messages_are_byte_identical(mitmdump_factory, mcp_server_factory, deploy):
    """Same request direct and through the gateway: identical response bytes (JSON answers)."""
    server = mcp_server_factory("stateless-json")
    md = start(mitmdump_factory, server, deploy)[0]
    (direct, durl), (via, vurl) = _raw_clients(md, server, deploy)
    with direct, via:
        for args, rid in (({"text": 'a ü \\u00e9 "q"'}, 7), ({"n_bytes": 5_000_000}, "big-1")):
            tool = "echo" if "text" in args else "big"
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": args},
                }
            ).encode()
            a = _post(direct, durl, body, **{"mcp-protocol-version": "2025-11-25"})
            b = _post(via, vurl, body, **{"mcp-protocol-version": "2025-11-25"})
            assert a.status_code == b.status_code == 200
            assert b.headers["content-type"].startswith("application/json")
            assert hashlib.sha256(b.content).digest() == hashlib.sha256(a.content).digest()


# ----------------------------------------------------------------------------- bad input


def _raw_initialize(client: httpx.Client, url: str) -> dict[str, str]:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }
    r = _post(client, url, json.dumps(init).encode())
    assert r.status_code == 200, r.text
    h = {"mcp-protocol-version": "2025-11-25"}
    if sid := r.headers.get("mcp-session-id"):
        h["mcp-session-id"] = sid
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert _post(client, url, json.dumps(note).encode(), **h).status_code == 202
    return h


@pytest.mark.parametrize("deploy", DEPLOYS)
@pytest.mark.parametrize(
    "body",
    [b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"', b"\xff\xfe not json", b"{,}"],
    ids=["truncated", "garbage", "bad-syntax"],
)
def test_malformed_json_is_answered_with_parse_error(
    mitmdump_factory, mcp_server_factory, deploy, body
):
    server = mcp_server_factory("streamable")
    md = start(mitmdump_factory, server, deploy)[0]
    _, (via, url) = _raw_clients(md, server, deploy)
    with via:
        h = _raw_initialize(via, url)
        server.reset()
        r = _post(via, url, body, **h)
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()
    assert err["jsonrpc"] == "2.0" and err["id"] is None
    assert err["error"]["code"] == -32700 and err["error"]["message"]
    assert not [x for x in server.requests() if x["method"] == "POST"], "server saw the bad body"


@pytest.mark.parametrize("deploy", DEPLOYS)
@pytest.mark.parametrize(
    "headers",
    [
        {"mcp-method": "tools/list", "mcp-name": "echo"},
        {"mcp-method": "tools/call", "mcp-name": "add"},
        {"mcp-method": "tools/call"},
    ],
    ids=["method", "name", "missing-name"],
)
def test_2026_header_body_mismatch_is_rejected(
    mitmdump_factory, mcp_server_factory, deploy, headers
):
    server = mcp_server_factory("stateless-json")
    md = start(mitmdump_factory, server, deploy)[0]
    _, (via, url) = _raw_clients(md, server, deploy)
    body = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"text": "x"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
        },
    }
    server.reset()
    with via:
        r = _post(
            via, url, json.dumps(body).encode(), **{"mcp-protocol-version": "2026-07-28"}, **headers
        )
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()
    assert err["jsonrpc"] == "2.0" and err["error"]["code"] == -32020
    assert not server.requests(), "the server saw a mismatched request"


@pytest.mark.parametrize("deploy", DEPLOYS)
def test_2026_matching_headers_pass(mitmdump_factory, mcp_server_factory, deploy):
    server = mcp_server_factory("stateless-json")
    md = start(mitmdump_factory, server, deploy)[0]
    _, (via, url) = _raw_clients(md, server, deploy)
    body = {
        "jsonrpc": "2.0",
        "id": 6,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}},
    }
    server.reset()
    with via:
        r = _post(
            via,
            url,
            json.dumps(body).encode(),
            **{
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "echo",
            },
        )
    # mcp 1.30 does not speak 2026-07-28 and may refuse it; the gateway must not.
    if r.status_code == 400:
        assert r.json().get("error", {}).get("code") != -32020, r.text
    assert [x for x in server.requests() if x["method"] == "POST"], "request did not reach server"


# ----------------------------------------------------------------------------- non-MCP


@pytest.mark.parametrize("deploy", DEPLOYS)
def test_non_mcp_traffic_untouched(mitmdump_factory, plain_http_server, deploy):
    if deploy == "regular":
        md = mitmdump_factory(gateway=True, shared=True)
        client = httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=10)
        base = plain_http_server.base
    else:
        md = mitmdump_factory(gateway=True, mode=f"reverse:{plain_http_server.base}", shared=True)
        client = httpx.Client(trust_env=False, timeout=10)
        base = md.base
    with client:
        r = client.get(base + "/hello")
        assert r.status_code == 200
        assert r.content == plain_http_server.hello_body
        assert r.headers["x-plain"] == "1"
        payload = b'{"hello": "world", "jsonrpc": "no"}'
        r = client.post(
            base + "/echo", content=payload, headers={"content-type": "application/json"}
        )
        assert r.status_code == 200 and r.content == payload
        assert r.headers["content-type"] == "application/json"
    md.wait_log("/hello")
