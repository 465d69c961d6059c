"""A blocked server request (sampling, elicitation) on an event stream: dropped for the
client, answered to the server with a POST through mitmproxy's client replay."""

from collections.abc import Sequence

import orjson
import pytest
from mcp_gateway import answer
from mcp_gateway.core import Gateway
from mitmproxy import flow as mflow
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


def stream(gw, method=b"POST", path=b"/mcp", body=None, headers=()):
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
    gw.requestheaders(f)
    gw.request(f)
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gw.responseheaders(f)
    return f


def feed(f, data: bytes) -> bytes:
    return b"".join(f.response.stream(data) + f.response.stream(b""))


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


def test_answer_carries_the_headers_as_they_went_upstream(gw):
    f = stream(gw, body=rpc("tools/call", id=1, name="ask"))
    # the identity addon masks an injected upstream credential once the request is sent
    f.request.headers["authorization"] = "Bearer [upstream credential]"
    feed(f, b"data: " + orjson.dumps(SAMPLING) + b"\n\n")
    (a,) = gw.replayed
    assert a.request.headers["authorization"] == "Bearer client-token"


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
    a = answer.answer_flow(
        tflow.tflow(req=tutils.treq(path=b"/mcp")), "http://127.0.0.1:9/mcp", [{"x": "SECRET"}]
    )
    a.live = True  # as during its replay
    gw.requestheaders(a)
    gw.request(a)
    assert a.response is None and gw.rec.msgs == [] and gw.exchange(a) is None
