"""A blocked server request (sampling, elicitation) on an event stream: dropped for the
client, answered to the server with a POST through mitmproxy's client replay."""

from collections.abc import Sequence

import orjson
import pytest
from mcp_gateway import answer
from mcp_gateway.core import Gateway
from mitmproxy import flow as mflow
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils
from pipeline_fakes import BlockTool, Recorder, rpc

SAMPLING = rpc("sampling/createMessage", id=7, messages=[{"role": "user", "text": "SECRET"}])


@pytest.fixture
def gw():
    g = Gateway()
    g.rec = Recorder()
    g.pipeline.add(g.rec)
    g.pipeline.add(BlockTool())
    with taddons.context(g) as tctx:
        g.tctx = tctx
        g.replayed = []

        def replay(flows: Sequence[mflow.Flow]) -> None:
            g.replayed.extend(flows)

        tctx.master.commands.add("replay.client", replay)
        yield g


def stream(gw, method=b"POST", path=b"/mcp", body=None, headers=(), tweak=None):
    hdrs = (
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"accept-encoding", b"gzip"),
        (b"authorization", b"Bearer client-token"),
        (b"mcp-session-id", b"s-1"),
        (b"mcp-protocol-version", b"2025-06-18"),
        *headers,
    )
    content = orjson.dumps(body) if body is not None else b""
    f = tflow.tflow(req=tutils.treq(method=method, path=path, headers=hdrs, content=content))
    if tweak is not None:
        tweak(f)
    gw.requestheaders(f)
    gw.request(f)
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gw.responseheaders(f)
    return f


def feed(f, data: bytes) -> bytes:
    return b"".join([*f.response.stream(data), *f.response.stream(b"")])


def test_blocked_server_request_is_dropped_and_answered_to_the_server(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    out = feed(f, b"id: 5\nevent: message\ndata: " + orjson.dumps(SAMPLING) + b"\n\n")
    # the client sees neither the request nor an error for an id it never sent
    assert b"SECRET" not in out and b"sampling" not in out and b"error" not in out
    assert out == b"id: 5\n\n"  # the event id stays: resumption still works
    (a,) = gw.replayed
    assert answer.is_answer(a) and not a.live
    assert (a.request.method, a.request.url) == ("POST", f.request.url)
    assert orjson.loads(a.request.content) == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32061, "message": "blocked by rule test.secret"},
    }
    h = a.request.headers
    assert h["authorization"] == "Bearer client-token"  # as the server received it
    assert (h["mcp-session-id"], h["mcp-protocol-version"]) == ("s-1", "2025-06-18")
    assert (h["content-type"], h["accept"]) == (
        "application/json",
        "application/json, text/event-stream",
    )
    assert "accept-encoding" not in h and h["content-length"] == str(len(a.request.content))
    # audited as blocked, like any refused message
    (m,) = [m for m in gw.rec.msgs if m.method == "sampling/createMessage"]
    assert m.stopped and m.refusal.message == "blocked by rule test.secret"


def test_an_oversized_server_request_is_answered_to_the_server(gw):
    # The server waits for the answer to its sampling request: an error sent to the client
    # (for an id it never sent) would leave the tool call hanging.
    gw.tctx.configure(gw, mcp_max_message_bytes=300)
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    big = rpc("sampling/createMessage", id=77, messages=[{"text": "x" * 2000}])
    data = b"event: message\ndata: " + orjson.dumps(big) + b"\n\n"
    out = b"".join(b"".join(f.response.stream(data[i : i + 100])) for i in range(0, len(data), 100))
    out += b"".join(f.response.stream(b""))
    assert b"xxxx" not in out and b"-32065" not in out
    (a,) = gw.replayed
    err = orjson.loads(a.request.content)
    assert err["id"] == 77 and err["error"]["code"] == -32065


def test_an_oversized_server_request_with_its_id_last_is_answered_when_it_ends(gw):
    # The Python SDK writes {"method": ..., "params": ..., "jsonrpc": "2.0", "id": N}.
    gw.tctx.configure(gw, mcp_max_message_bytes=300)
    f = stream(gw, method=b"GET")
    data = (
        b'data: {"method":"sampling/createMessage","params":{"id":5,"t":"' + b"x" * 2000
        + b'"},"jsonrpc":"2.0","id":78}\n\n'
    )  # fmt: skip
    out = b"".join(b"".join(f.response.stream(data[i : i + 100])) for i in range(0, len(data), 100))
    out += b"".join(f.response.stream(b""))
    assert out == b""  # the client sees neither the request nor an error
    (a,) = gw.replayed
    err = orjson.loads(a.request.content)
    assert err["id"] == 78 and err["error"]["code"] == -32065


def sent(gw, a, status=202):
    a.live = True  # as during its replay
    gw.requestheaders(a)
    gw.request(a)
    a.response = tutils.tresp(status_code=status, headers=(), content=b"")
    gw.responseheaders(a)
    gw.response(a)


def test_an_injected_upstream_credential_is_sent_then_masked(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    # the identity addon masks an injected upstream credential once the request is sent
    f.request.headers["authorization"] = "Bearer [upstream credential]"
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert a.request.headers["authorization"] == "Bearer client-token"  # what the server gets
    sent(gw, a)
    # once sent, the answer's flow (logs, mitmweb, saved flows) shows the placeholder only
    assert a.request.headers["authorization"] == "Bearer [upstream credential]"
    assert not answer.is_answer(a)


def test_an_injected_query_credential_reaches_the_legacy_endpoint_then_is_masked(gw):
    f = stream(gw, method=b"GET", path=b"/sse?api_key=s3cr3t&x=1")
    f.request.query["api_key"] = "[upstream credential]"  # as the identity addon masks it
    announce = b"event: endpoint\ndata: /messages/?session_id=ab\n\n"
    feed(f, announce + b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert a.request.path == "/messages/?session_id=ab&api_key=s3cr3t"  # not the client's x=1
    sent(gw, a)
    assert a.request.query["api_key"] == "[upstream credential]"


def test_a_failed_answer_is_logged(gw, caplog):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    sent(gw, a, status=401)
    assert f"did not take the gateway's answer to its request on flow {f.id} (HTTP 401)" in (
        caplog.text
    )


def test_http2_stream_answer_keeps_its_authority(gw):
    def h2(f):
        f.request.http_version = "HTTP/2.0"
        f.request.authority = "mcp.example:8443"

    f = stream(gw, body=rpc("tools/call", id=1, name="ask"), tweak=h2)
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert (a.request.http_version, a.request.authority) == ("HTTP/2.0", "mcp.example:8443")


def test_http1_stream_answer_keeps_its_host_header(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"), headers=((b"host", b"mcp.example"),))
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert a.request.headers["host"] == "mcp.example"  # not the address it connects to
    assert a.request.host == f.request.host


def test_headers_tied_to_the_original_request_are_not_copied(gw):
    extra = ((b"mcp-param-city", b"Paris"), (b"idempotency-key", b"k1"), (b"digest", b"x"))
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"), headers=extra)
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert not {"mcp-param-city", "idempotency-key", "digest"} & {
        k.lower() for k in a.request.headers
    }


def test_get_stream_answer_goes_to_the_mcp_endpoint(gw):
    f = stream(gw, method=b"GET", headers=((b"last-event-id", b"3"),))
    out = feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    assert out == b""
    (a,) = gw.replayed
    assert a.request.url == f.request.url and a.request.method == "POST"
    assert "last-event-id" not in a.request.headers


@pytest.mark.parametrize(
    "endpoint", ["/messages/?session_id=ab", "http://address:22/messages/?session_id=ab"]
)
def test_legacy_answer_goes_to_the_announced_endpoint(gw, endpoint):
    f = stream(gw, method=b"GET", path=b"/sse")
    announce = b"event: endpoint\ndata: " + endpoint.encode() + b"\n\n"
    out = feed(f, announce + b"event: message\ndata: " + orjson.dumps(SAMPLING) + b"\n\n")
    assert out == announce
    (a,) = gw.replayed
    assert a.request.url == "http://address:22/messages/?session_id=ab"
    assert orjson.loads(a.request.content)["id"] == 7


@pytest.mark.parametrize(
    "endpoint",
    [b"http://10.0.0.7:9000", b"//10.0.0.7:9000", b"\\\\10.0.0.7:9000", b"//address:22"],
)
def test_reverse_mode_answer_goes_to_the_path_the_client_was_given(gw, endpoint):
    def reverse(f):
        f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://address:22")

    f = stream(gw, method=b"GET", path=b"/sse", tweak=reverse)
    announce = b"event: endpoint\ndata: " + endpoint + b"/messages/?session_id=ab\n\n"
    out = feed(f, announce + b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    assert out.startswith(b"event: endpoint\ndata: /messages/?session_id=ab\n\n")
    (a,) = gw.replayed
    assert a.request.url == "http://address:22/messages/?session_id=ab"


@pytest.mark.parametrize(
    "endpoint", ["http://elsewhere.example/messages/?session_id=ab", "//elsewhere.example/m"]
)
def test_an_endpoint_on_another_origin_gets_no_credentials(gw, endpoint, caplog):
    f = stream(gw, method=b"GET", path=b"/sse")
    out = feed(
        f,
        b"event: endpoint\ndata: " + endpoint.encode() + b"\n\n"
        b"event: message\ndata: " + orjson.dumps(SAMPLING) + b"\n\n",
    )
    assert gw.replayed == []  # not sent there: the client gets the error instead
    assert b'"id":7,"error":{"code":-32061' in out and b"SECRET" not in out
    assert "not on the stream's origin" in caplog.text


def test_other_messages_of_a_batch_event_still_reach_the_client(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    batch = [SAMPLING, rpc("notifications/progress", id=None, progress=1)]
    out = feed(f, b"data: " + orjson.dumps(batch) + b"\n\n")
    assert orjson.loads(out.removeprefix(b"data: ")) == [batch[1]]
    assert [orjson.loads(a.request.content)["id"] for a in gw.replayed] == [7]


def test_without_client_replay_the_client_gets_the_error(gw, caplog):
    del gw.tctx.master.commands.commands["replay.client"]
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    out = feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    assert b"SECRET" not in out and b'"id":7,"error":{"code":-32061' in out
    assert "cannot send the answer to the server" in caplog.text


def test_blocked_results_and_notifications_are_not_sent_to_the_server(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    out = feed(
        f,
        b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"d":"SECRET"}}\n\n'
        b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"SECRET"}}\n\n',
    )
    assert gw.replayed == []
    assert b'"id":1,"error"' in out and b"notifications" not in out


def test_the_gateways_own_answer_is_not_inspected(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    before = len(gw.rec.msgs)
    a.live = True  # as during its replay
    gw.requestheaders(a)
    gw.request(a)  # a JSON-RPC error for the server's id, with the session id: MCP-shaped
    assert a.response is None and len(gw.rec.msgs) == before and gw.exchange(a) is None
    a.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gw.responseheaders(a)
    assert a.response.stream is False  # not set up as an MCP stream either


def test_a_saved_flow_is_no_answer():
    # the marker is kept in memory: a flow file replayed later gets the gateway's hooks
    a = answer.answer_flow(
        tflow.tflow(req=tutils.treq(path=b"/mcp")),
        "http://127.0.0.1:9/mcp",
        [{"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}}],
        answer.SentRequest.of(tflow.tflow()),
    )
    assert not answer.is_answer(a) and "mcp_gateway_answer" not in a.metadata


@pytest.mark.parametrize("last", [False, True])
def test_a_server_request_too_deep_to_inspect_is_answered_to_the_server(gw, last):
    """As one over the size limit: the server waits for the answer to its request, and an
    error sent to the client (for an id it never sent) would leave the tool call hanging."""
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    params = b'"params":{"p":' + b"[" * 600 + b"]" * 600 + b"}"
    if last:
        req = b'{"jsonrpc":"2.0","method":"sampling/createMessage",' + params + b',"id":77}'
    else:
        req = b'{"jsonrpc":"2.0","id":77,"method":"sampling/createMessage",' + params + b"}"
    out = feed(f, b"event: message\ndata: " + req + b"\n\n")
    assert b"sampling" not in out and b"-32065" not in out
    (a,) = gw.replayed
    err = orjson.loads(a.request.content)
    assert err["id"] == 77 and err["error"]["code"] == -32065


def client_post(gw, body):
    """A client's POST through the request hooks only (the gateway answers it or lets it go)."""
    hdrs = (
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"authorization", b"Bearer client-token"),
        (b"mcp-session-id", b"s-1"),
        (b"mcp-protocol-version", b"2025-03-26"),
    )
    f = tflow.tflow(
        req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=orjson.dumps(body))
    )
    gw.requestheaders(f)
    gw.request(f)
    return f


def test_client_answers_in_a_refused_batch_reach_the_server_as_errors(gw):
    # 2025-03-26 lets a client answer the server's sampling requests in one batch with a new
    # call. Refused as a whole, the batch was answered to the client alone: its answers were
    # dropped and the tool call that asked waited (TypeScript SDK 1.11 server: for its 60 s
    # timeout; the Python SDK's server without one).
    answered = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
    batch = [
        {"jsonrpc": "2.0", "id": 0, "result": answered},
        {"jsonrpc": "2.0", "id": 1, "result": {**answered, "content": {"text": "SECRET"}}},
        rpc("tools/call", id=9, name="bad"),
    ]
    f = client_post(gw, batch)
    # the client gets the batch's answer: an error for its one request
    (mine,) = orjson.loads(f.response.content)
    assert mine["id"] == 9 and mine["error"]["message"] == "blocked by rule test.bad"
    # the server gets an error in place of each answer, never the answers' content, one POST
    # each (a server may take no batch: the Python SDK's answers one 400)
    assert len(gw.replayed) == 2
    for a in gw.replayed:
        assert answer.is_answer(a) and (a.request.method, a.request.url) == ("POST", f.request.url)
        assert b"SECRET" not in a.request.content and b"hi" not in a.request.content
        h = a.request.headers
        assert (h["mcp-session-id"], h["authorization"]) == ("s-1", "Bearer client-token")
    assert [orjson.loads(a.request.content) for a in gw.replayed] == [
        {
            "jsonrpc": "2.0",
            "id": 0,
            "error": {"code": -32067, "message": "not forwarded: batch element 1 was refused"},
        },
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32061, "message": "blocked by rule test.secret"},
        },
    ]


def test_a_refused_batch_without_answers_sends_nothing_to_the_server(gw):
    f = client_post(gw, [rpc("tools/call", id=1, name="echo"), rpc("tools/call", id=2, name="bad")])
    assert [m["id"] for m in orjson.loads(f.response.content)] == [1, 2]
    assert gw.replayed == []


def test_a_refused_batch_answer_is_masked_as_its_post_is(gw):
    # the client's POST was answered by the gateway: the identity addon masks an upstream
    # credential injected in it once it is answered, after the errors for its answers were
    # made from its headers; the errors' flows show the placeholder once sent, as the POST
    answered = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
    f = client_post(
        gw, [{"jsonrpc": "2.0", "id": 0, "result": answered}, rpc("tools/call", id=9, name="bad")]
    )
    (a,) = gw.replayed
    f.request.headers["authorization"] = "Bearer [upstream credential]"  # as the addon masks it
    assert a.request.headers["authorization"] == "Bearer client-token"  # what the server gets
    sent(gw, a)
    assert a.request.headers["authorization"] == "Bearer [upstream credential]"
