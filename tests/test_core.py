"""The core addon's hooks, driven with mitmproxy's test flows and small fake stages."""

import gzip

import orjson
import pytest
from mcp_gateway import core
from mcp_gateway.core import Gateway, SSEStream
from mcp_gateway.message import Action, ErrorCode, Kind, Refusal
from mcp_gateway.parse import decode_json
from mitmproxy import exceptions, flow
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils
from pipeline_fakes import BlockTool, Boom, Recorder, RefuseAll, rpc


def post(body, headers=()):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = (
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        *headers,
    )
    return tflow.tflow(req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=content))


@pytest.fixture
def gw():
    g = Gateway()
    rec = Recorder()
    g.pipeline.add(rec)
    g.pipeline.add(BlockTool())
    g.rec = rec
    with taddons.context(g) as tctx:
        g.tctx = tctx
        yield g


def send(gw, flow):
    gw.requestheaders(flow)
    gw.request(flow)
    return flow


def send_typed(gw, ctype: bytes, content: bytes):
    """A POST to /mcp with this Content-Type only (no MCP headers)."""
    headers = ((b"content-type", ctype),)
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=headers, content=content)
    return send(gw, tflow.tflow(req=req))


def test_options_are_validated(gw):
    with pytest.raises(exceptions.OptionsError):
        gw.tctx.configure(gw, mcp_fail_mode="sometimes")
    with pytest.raises(exceptions.OptionsError):
        gw.tctx.configure(gw, mcp_max_message_bytes=0)
    gw.tctx.configure(gw, mcp_fail_mode="open")
    assert gw.pipeline.fail_mode == "open"


def test_request_is_parsed_once_and_forwarded_unchanged(gw):
    body = orjson.dumps(rpc("tools/call", name="echo", arguments={"text": "hi"}))
    f = send(gw, post(body))
    assert f.response is None and f.request.content == body
    (m,) = gw.rec.msgs
    assert (m.kind, m.method, m.name, m.id, m.action) == (
        Kind.REQUEST,
        "tools/call",
        "echo",
        1,
        Action.PASS,
    )
    assert f.metadata["mcp"][0]["method"] == "tools/call"
    orjson.dumps(f.metadata["mcp"])  # plain data: flows can be saved with -w


def test_blocked_request_gets_jsonrpc_error_and_never_forwarded(gw):
    f = send(gw, post(rpc("tools/call", id=9, name="bad")))
    assert f.response.status_code == 200
    assert orjson.loads(f.response.content) == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {"code": -32061, "message": "blocked by rule test.bad"},
    }
    assert f.marked == ":no_entry:"


def test_redacted_request_stays_valid_jsonrpc(gw):
    f = send(gw, post(rpc("tools/call", name="echo", arguments={"text": "PII"})))
    assert f.response is None
    assert orjson.loads(f.request.content)["params"]["arguments"]["text"] == "[REDACTED:email]"


def test_blocked_client_response_becomes_error_for_server(gw):
    body = {"jsonrpc": "2.0", "id": 4, "result": {"content": {"type": "text", "text": "SECRET"}}}
    f = send(gw, post(body, headers=((b"mcp-session-id", b"s1"),)))
    assert f.response is None  # still forwarded: the server must not wait forever
    assert orjson.loads(f.request.content)["error"]["code"] == -32061
    assert b"SECRET" not in f.request.content


def test_batch_with_one_refused_element_is_answered_whole(gw):
    f = send(
        gw,
        post(
            [
                rpc("tools/call", id=1, name="echo"),
                rpc("tools/call", id=2, name="bad"),
                rpc("notifications/progress", id=None),
            ]
        ),
    )
    answers = orjson.loads(f.response.content)
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["error"] == {
        "code": ErrorCode.NOT_FORWARDED,
        "message": "not forwarded: batch element 1 was refused",
    }
    assert answers[1]["error"]["message"] == "blocked by rule test.bad"
    # the audit sees what happened to each element: none was forwarded
    assert [(m.action, m.refusal.code) for m in gw.rec.msgs] == [
        (Action.BLOCK, ErrorCode.NOT_FORWARDED),
        (Action.BLOCK, ErrorCode.BLOCKED),
        (Action.DROP, ErrorCode.NOT_FORWARDED),
    ]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_batch_over_mcp_max_batch_is_not_inspected(gw, mode):
    # each element holds the event loop ~0.1 ms: 100,000 of them stalled every client 9 s
    gw.tctx.configure(gw, mcp_max_batch=3, mcp_fail_mode=mode)
    body = orjson.dumps([rpc("ping", id=i) for i in range(4)])
    f = send(gw, post(body))
    (m,) = gw.rec.msgs  # one row for the body, none per element
    assert m.inspected is False
    if mode == "closed":
        assert f.response.status_code == 413
        err = orjson.loads(f.response.content)["error"]
        assert err["code"] == ErrorCode.TOO_LARGE
        assert err["message"] == "batch of 4 elements exceeds mcp_max_batch (3); not inspected"
    else:
        assert f.response is None and f.request.content == body
    gw.rec.msgs.clear()
    f = send(gw, post([rpc("ping", id=i) for i in range(3)]))
    assert f.response is None and len(gw.rec.msgs) == 3
    with pytest.raises(exceptions.OptionsError):
        gw.tctx.configure(gw, mcp_max_batch=0)


@pytest.mark.parametrize("over", ["batch", "bytes"])
def test_an_uninspectable_request_is_still_refused_by_authentication(gw, over):
    # mcp_fail_mode=open forwards what cannot be inspected, never what is not authenticated
    gw.pipeline.add(RefuseAll())
    gw.tctx.configure(gw, mcp_fail_mode="open")
    if over == "batch":
        gw.tctx.configure(gw, mcp_max_batch=2)
    else:
        gw.tctx.configure(gw, mcp_max_message_bytes=50)
    f = send(gw, post([rpc("ping", id=i) for i in range(3)]))
    assert f.response is not None and f.response.status_code == 401
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert f.response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_response_batch_over_mcp_max_batch_is_not_inspected(gw):
    gw.tctx.configure(gw, mcp_max_batch=2)
    f = send(gw, post([rpc("ping", id=i) for i in range(2)]))
    answer = orjson.dumps([{"jsonrpc": "2.0", "id": i, "result": {}} for i in range(3)])
    f.response = tutils.tresp(content=answer, headers=((b"content-type", b"application/json"),))
    gw.responseheaders(f)
    gw.response(f)
    err = orjson.loads(f.response.content)["error"]
    assert err["code"] == ErrorCode.TOO_LARGE
    assert err["message"] == "response batch of 3 elements exceeds mcp_max_batch (2); not inspected"


def test_parse_error_is_400(gw):
    f = send(
        gw,
        post(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/list"', headers=((b"mcp-session-id", b"x"),)
        ),
    )
    assert f.response.status_code == 400
    assert orjson.loads(f.response.content)["error"]["code"] == -32700
    assert gw.rec.msgs[0].inspected is False  # still audited


@pytest.mark.parametrize(
    "body",
    [
        # Go's encoding/json (mcp-go, the Go SDK before 1.3.1) reads "Name" as "name", the
        # last one winning: the gateway's rules saw "echo", the server would call "bad"
        b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","Name":"bad"}}',
        # a method only such a reader sees: no MCP header, a server not yet known as MCP
        b'{"jsonrpc":"2.0","id":4,"METHOD":"tools/call","params":{"name":"bad"}}',
        '{"jsonrpc":"2.0","id":4,"method":"tools/call","param\u017f":{"name":"bad"}}'.encode(),
    ],
)
def test_a_member_that_differs_only_in_case_is_refused(gw, body):
    f = send(gw, post(body))
    assert f.response is not None and f.response.status_code == 400  # never forwarded
    err = orjson.loads(f.response.content)
    assert err["id"] == 4 and err["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert "only in case" in err["error"]["message"]
    (m,) = gw.rec.msgs  # audited as that reader reads it
    assert (m.method, m.name, m.action) == ("tools/call", "bad", Action.BLOCK)


def test_an_answer_with_a_member_that_differs_only_in_case_is_withheld(gw):
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    answer = b'{"jsonrpc":"2.0","id":5,"result":{"content":[]},"Result":{"content":[{"type":"text","text":"x"}]}}'
    f.response = tutils.tresp(content=answer, headers=((b"content-type", b"application/json"),))
    gw.responseheaders(f)
    gw.response(f)
    err = orjson.loads(f.response.content)
    assert err["id"] == 5 and err["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert "result" not in err and b'"text"' not in f.response.content  # withheld


def test_header_mismatch_is_400_32020(gw):
    f = send(
        gw,
        post(
            rpc("tools/call", name="echo"),
            headers=(
                (b"mcp-protocol-version", b"2026-07-28"),
                (b"mcp-method", b"tools/call"),
                (b"mcp-name", b"evil"),
            ),
        ),
    )
    assert f.response.status_code == 400
    assert orjson.loads(f.response.content)["error"]["code"] == -32020


def test_non_mcp_traffic_untouched(gw):
    f = send(gw, post({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}))
    assert f.response is None and not gw.rec.msgs and "mcp" not in f.metadata
    g = tflow.tflow(req=tutils.treq(method=b"POST", content=b"hello"))
    send(gw, g)
    assert g.response is None and not gw.rec.msgs


def test_stage_fault_fails_closed_by_default(gw):
    gw.pipeline.add(Boom())
    f = send(gw, post(rpc("tools/call", name="echo")))
    err = orjson.loads(f.response.content)["error"]
    assert err["code"] == -32603 and "boom" in err["message"]


def test_stage_fault_fails_open_when_configured(gw):
    gw.tctx.configure(gw, mcp_fail_mode="open")
    gw.pipeline.add(Boom())
    f = send(gw, post(rpc("tools/call", name="echo")))
    assert f.response is None and gw.rec.msgs[0].faults == ["boom"]


def test_too_large_request(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=100)
    f = send(gw, post(rpc("tools/call", name="echo", arguments={"t": "x" * 200})))
    assert f.response.status_code == 413
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.TOO_LARGE
    gw.tctx.configure(gw, mcp_fail_mode="open")
    f = send(gw, post(rpc("tools/call", name="echo", arguments={"t": "x" * 200})))
    assert f.response is None


def test_exchange_refusal_applies_to_get_stream(gw):
    gw.pipeline.add(RefuseAll())
    f = tflow.tflow(
        req=tutils.treq(
            method=b"GET",
            path=b"/mcp",
            content=b"",
            headers=((b"accept", b"text/event-stream"), (b"mcp-session-id", b"abc")),
        )
    )
    send(gw, f)
    assert f.response.status_code == 401
    assert f.response.headers["WWW-Authenticate"].startswith("Bearer")


def test_json_response_correlated_and_blocked_in_place(gw):
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    f.response = tutils.tresp(
        headers=((b"content-type", b"application/json"),),
        content=orjson.dumps({"jsonrpc": "2.0", "id": 5, "result": {"t": "SECRET"}}),
    )
    gw.responseheaders(f)
    gw.response(f)
    resp = gw.rec.msgs[-1]
    assert (resp.kind, resp.method, resp.name) == (Kind.RESULT, "tools/call", "echo")
    assert resp.latency_ms is not None and resp.latency_ms >= 0
    assert orjson.loads(f.response.content) == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32061, "message": "blocked by rule test.secret"},
    }


def json_answer(gw, content, id=5):
    f = send(gw, post(rpc("tools/call", id=id, name="echo")))
    f.response = tutils.tresp(headers=((b"content-type", b"application/json"),), content=content)
    gw.responseheaders(f)
    gw.response(f)
    return f


# A lone surrogate escape is what JavaScript writes for a string cut in the middle of an
# emoji; JavaScript and Python read it, orjson does not. The gateway must read it too.
CUT_EMOJI = b'"config \\ud83d'


def test_answers_other_parsers_accept_are_inspected_not_waved_through(gw):
    f = json_answer(gw, b'{"jsonrpc":"2.0","id":5,"result":{"t":' + CUT_EMOJI + b' SECRET"}}')
    assert decode_json(f.response.content)["error"]["message"] == "blocked by rule test.secret"
    f = json_answer(gw, b'{"jsonrpc":"2.0","id":5,"result":{"t":' + CUT_EMOJI + b' PII"}}')
    assert f.response.content.isascii()  # re-encoded with the surrogate escaped again
    assert decode_json(f.response.content)["result"]["t"] == "config \ud83d [REDACTED:email]"
    # invalid UTF-8 in an answer: JavaScript clients decode it with replacement characters
    f = json_answer(gw, b'{"jsonrpc":"2.0","id":5,"result":{"t":"\xff SECRET"}}')
    assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content
    assert [m.kind for m in gw.rec.msgs[-2:]] == [Kind.REQUEST, Kind.RESULT]


@pytest.mark.parametrize("step", [1, 9, 1000])
def test_sse_event_with_a_lone_surrogate_is_inspected(gw, step):
    f = sse_flow(gw)
    ev = b'data: {"jsonrpc":"2.0","id":1,"result":{"t":' + CUT_EMOJI + b' PII"}}\n\n'
    out = feed(f.response.stream, ev, step)
    data = out.split(b"data: ", 1)[1].strip()
    assert decode_json(data)["result"]["t"] == "config \ud83d [REDACTED:email]"


def test_request_with_a_lone_surrogate_is_forwarded_not_refused(gw):
    body = (
        b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"t":'
        + CUT_EMOJI
        + b'"}}}'
    )
    f = send(gw, post(body))
    assert f.response is None and f.request.content == body
    assert gw.rec.msgs[-1].payload["params"]["arguments"]["t"] == "config \ud83d"
    f = send(gw, post(body.replace(b'"echo"', b'"bad"')))
    assert f.response.status_code == 200 and b"test.bad" in f.response.content


def test_unchanged_json_response_is_byte_identical(gw):
    f = send(gw, post(rpc("tools/list", id=5)))
    raw = b'{"jsonrpc":"2.0",  "id":5,"result":{"tools":[]}}'
    f.response = tutils.tresp(headers=((b"content-type", b"application/json"),), content=raw)
    gw.responseheaders(f)
    gw.response(f)
    assert f.response.content == raw


def sse_flow(gw, headers=(), request=None):
    f = send(gw, post(request or rpc("tools/call", id=1, name="echo")))
    f.response = tutils.tresp(
        headers=((b"content-type", b"text/event-stream"), *headers), content=None
    )
    gw.responseheaders(f)
    assert isinstance(f.response.stream, SSEStream)
    return f


def feed(stream, data, step):
    out = []
    for i in range(0, len(data), step):
        r = list(stream(data[i : i + step]))
        assert b"" not in r  # b"" would end a chunked body
        out += r
    out += list(stream(b""))
    return b"".join(out)


EVENTS = (
    b": ping\n\n"
    b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n'
    b'id: 9\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"text":"SECRET"}}\n\n'
    b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"SECRET"}}\n\n'
    b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"PII"}}\n\n'
)


def test_first_event_of_a_chunk_goes_out_before_the_rest_is_processed(gw, monkeypatch):
    """One network read can carry many events: the first is sent on as soon as it is
    inspected (mitmproxy writes each piece the iterable yields), not after the whole chunk."""
    f = sse_flow(gw)
    ev = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}\n\n'
    chunk = b"".join(ev % i for i in range(50))
    pieces = f.response.stream(chunk)
    first = next(pieces)
    assert first == ev % 0
    # the request, and of the events only the first has been through the pipeline
    assert len(f.metadata["mcp"]) == 2
    rest = list(pieces)
    assert len(f.metadata["mcp"]) == 51
    assert first + b"".join(rest) == chunk
    # the others go out in pieces of some work each, not one write per event
    monkeypatch.setattr(core, "_PIECE_SECONDS", 60.0)
    pieces = list(f.response.stream(chunk))
    assert pieces == [ev % 0, chunk[len(ev % 0) :]]


def test_internal_error_part_way_through_a_chunk_repeats_nothing(gw, monkeypatch):
    """fail open: events already sent are not sent again; the rest go on as they came."""
    gw.fail_mode = "open"
    f = sse_flow(gw)
    ev = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}\n\n'
    chunk = b"".join(ev % i for i in range(5))
    stream = f.response.stream
    real = stream._event
    calls = []

    def flaky(e):
        calls.append(e)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(e)

    monkeypatch.setattr(stream, "_event", flaky)
    out = b"".join(stream(chunk)) + b"".join(stream(b"data: tail\n\n")) + b"".join(stream(b""))
    assert out == chunk + b"data: tail\n\n"


def test_internal_error_after_a_chunks_events_repeats_none_of_them(gw, monkeypatch):
    """A failure in the oversized-event handling, after the chunk's events were processed:
    fail open sends each of them once."""
    gw.fail_mode = "open"
    gw.tctx.configure(gw, mcp_max_message_bytes=200)
    f = sse_flow(gw)
    stream = f.response.stream

    def boom(*a, **k):
        raise RuntimeError("audit down")

    monkeypatch.setattr(stream, "_not_inspected", boom)
    ev = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}\n\n'
    chunk = ev % 0 + ev % 1 + ev % 2 + b'data: {"jsonrpc":"2.0","x":"' + b"A" * 300
    out = b"".join(stream(chunk))
    assert [out.count(ev % i) for i in range(3)] == [1, 1, 1]


def test_internal_error_part_way_through_a_chunk_fails_closed(gw, monkeypatch):
    f = sse_flow(gw)
    ev = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}\n\n'
    stream = f.response.stream
    real = stream._event
    monkeypatch.setattr(stream, "_event", lambda e: real(e) if b":1}" not in e.raw else 1 / 0)
    out = b"".join(stream(ev % 0 + ev % 1 + ev % 2)) + b"".join(stream(ev % 3))
    assert out.startswith(ev % 0)
    assert b'"progress":1}' not in out and b'"progress":2}' not in out
    assert b'"progress":3}' not in out and b"-32603" in out


@pytest.mark.parametrize("step", [1, 7, 64, 10_000])
def test_sse_events_blocked_and_redacted_in_place(gw, step):
    f = sse_flow(gw)
    out = feed(f.response.stream, EVENTS, step)
    assert out.startswith(
        b": ping\n\n" + EVENTS.split(b"\n\n")[1] + b"\n\n"
    )  # untouched: byte-identical
    assert b"SECRET" not in out
    # replaced in place, keeping the event's type and id (resumption still works)
    assert b'event: message\nid: 9\ndata: {"jsonrpc":"2.0","id":1,"error"' in out
    assert b'"id":1,"error":{"code":-32061' in out  # the response replaced in place
    assert b"[REDACTED:email]" in out
    assert out.count(b"notifications/message") == 1  # the secret notification was dropped
    assert f.marked == ":no_entry:"
    gw.response(f)
    assert f.response.content == out  # display copy for mitmweb


def test_sse_gzip_stream_is_decoded(gw):
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    assert "content-encoding" not in f.response.headers
    out = feed(f.response.stream, gzip.compress(EVENTS), 5)
    assert b"[REDACTED:email]" in out and b"SECRET" not in out


PROGRESS = b'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n'


def gzip_chunks(n_chunks: int, per_chunk: int) -> list[bytes]:
    """A gzip event stream flushed in small pieces, each inflating to many events."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return [c.compress(PROGRESS * per_chunk) + c.flush(zlib.Z_SYNC_FLUSH) for _ in range(n_chunks)]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_compressed_stream_inflating_to_a_flood_of_events_is_not_inspected(gw, mode):
    """mitmproxy calls the stream callable for each chunk of a network read in turn,
    without the event loop running in between: a gzip stream in small chunks of 1,000
    events each (a few hundred bytes on the wire) held 180 chunks per read and stalled
    every other client for 12 s (30 MB of events)."""
    gw.tctx.configure(gw, mcp_fail_mode=mode)
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    chunks = gzip_chunks(30, 1000)
    assert sum(map(len, chunks)) < 30 * 1000  # (~0.4 bytes per event on the wire)
    out = b"".join(b"".join(f.response.stream(c)) for c in chunks)
    out += b"".join(f.response.stream(b""))
    inspected = [m for m in gw.rec.msgs if m.method == "notifications/progress"]
    assert len(inspected) <= core._MAX_DECODED_EVENTS
    refused = [m for m in gw.rec.msgs if m.kind is Kind.INVALID]
    assert len(refused) == 1
    if mode == "closed":
        assert out.count(b"-32065") == 1 and b'"id":1' in out.rsplit(b"\n\n", 2)[-2]
        assert out.count(b"notifications/progress") == len(inspected)
    else:  # forwarded as it came
        assert out.count(b"notifications/progress") == 30 * 1000


def test_a_compressed_stream_of_a_few_events_at_a_time_is_inspected(gw, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(core, "perf_counter", lambda: clock[0])
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    for c in gzip_chunks(30, 1000):  # 30,000 events, but 1,000 a second
        clock[0] += 1.01
        assert b"-32065" not in b"".join(f.response.stream(c))
    assert len([m for m in gw.rec.msgs if m.method == "notifications/progress"]) == 30_000
    assert not [m for m in gw.rec.msgs if m.kind is Kind.INVALID]


def test_sse_oversized_event_fail_closed(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=200)
    f = sse_flow(gw)
    big = b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"' + b"x" * 1000 + b'"}}\n\n'
    out = feed(f.response.stream, big + b"data: after\n\n", 50)
    assert b"xxxx" not in out and b'"code":-32065' in out and b'"id":1' in out
    assert out.endswith(b"data: after\n\n")
    # one event, one answer and one audit record, however many times its tail fills the limit
    assert out.count(b"-32065") == 1
    # one record of the event not inspected; "after" is scanned as text
    assert [m.payload for m in gw.rec.msgs if m.kind is Kind.INVALID] == [None, {"data": "after"}]


def test_oversized_response_event_with_its_id_last_is_answered_for_the_request(gw):
    # The TypeScript SDK server writes {"result": ..., "jsonrpc": "2.0", "id": N}.
    gw.tctx.configure(gw, mcp_max_message_bytes=200)
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    big = b'data: {"result":{"content":[{"id":7,"t":"' + b"x" * 1000 + b'"}]},"id":42}\n\n'
    out = feed(f.response.stream, big, 64)
    assert b'"code":-32065' in out and b'"id":42' in out and b'"id":7' not in out
    # a server's request or notification keeps the id it carries (or none)
    f = sse_flow(gw, request=rpc("tools/call", id=43, name="echo"))
    big = b'data: {"method":"sampling/createMessage","id":9,"params":{"t":"' + b"x" * 1000
    out = feed(f.response.stream, big + b'"}}\n\n', 64)
    assert b'"id":9' in out and b'"id":43' not in out


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_sse_oversized_event_that_comes_whole_in_one_read(gw, mode):
    """An event over the limit that arrives complete within one network read is refused as
    one read in pieces is (a ~40 KB event passed inspected under a 1000-byte limit)."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode=mode)
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    big = b'data: {"jsonrpc":"2.0","id":42,"result":{"t":"' + b"x" * 1000 + b'"}}\n\n'
    out = b"".join(f.response.stream(big + b"data: after\n\n"))
    if mode == "closed":
        assert b"xxxx" not in out and b'"code":-32065' in out and b'"id":42' in out
        assert out.count(b"-32065") == 1 and out.endswith(b"data: after\n\n")
    else:
        assert out == big + b"data: after\n\n"
    assert [m.payload for m in gw.rec.msgs if m.kind is Kind.INVALID] == [None, {"data": "after"}]
    # a server's request whose id comes last: the error goes to the server (or, without
    # client replay, to the client), never the request itself
    if mode == "closed":
        f = sse_flow(gw, request=rpc("tools/call", id=43, name="echo"))
        req = b'data: {"method":"sampling/createMessage","params":{"t":"' + b"x" * 1000
        out = b"".join(f.response.stream(req + b'"},"id":9}\n\n'))
        assert b"xxxx" not in out and b"sampling" not in out


def test_sse_oversized_whole_event_is_answered_by_its_messages_own_ids(gw):
    """A whole event over the limit is read for its ids only: a batch's response, a
    response whose id comes last (after an "id" inside its result), and a server request
    whose id comes last each get their error by their own id; the event's SSE id is kept;
    a notification is dropped. The limit counts the message, not the SSE framing."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed")

    def errs(out):
        return [orjson.loads(ln[6:]) for ln in out.split(b"\n") if ln.startswith(b"data: ")]

    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    batch = b'[{"jsonrpc":"2.0","method":"notifications/progress","params":{"t":"' + b"x" * 500
    batch += b'"}},{"jsonrpc":"2.0","id":42,"result":{}}]'
    out = b"".join(f.response.stream(b"id: 17\ndata: " + batch + b"\n\n"))
    assert [e["id"] for e in errs(out)] == [42] and b"id: 17\n" in out
    assert errs(out)[0]["error"]["code"] == -32065
    f = sse_flow(gw, request=rpc("tools/call", id=43, name="echo"))
    late = b'{"result":{"content":[{"id":7,"t":"' + b"x" * 1000 + b'"}]},"jsonrpc":"2.0","id":43}'
    out = b"".join(f.response.stream(b"data: " + late + b"\n\n"))
    assert [e["id"] for e in errs(out)] == [43]
    f = sse_flow(gw, request=rpc("tools/call", id=44, name="echo"))
    req = b'{"jsonrpc":"2.0","method":"sampling/createMessage","params":{"t":"' + b"x" * 1000
    out = b"".join(f.response.stream(b"data: " + req + b'"},"id":9}\n\n'))
    # (no client replay in a unit test: the server's error comes to the client instead)
    assert b"sampling" not in out and [e["id"] for e in errs(out)] == [9]
    note = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"data":{"id":44,"t":"'
    out = b"".join(f.response.stream(b"data: " + note + b"x" * 1000 + b'"}}}\n\n'))
    assert out == b""
    # exactly the limit, as a JSON body of that size: inspected and forwarded
    body = b'{"jsonrpc":"2.0","id":44,"result":{"t":"' + b"x" * 150 + b'"}}'
    gw.tctx.configure(gw, mcp_max_message_bytes=len(body))
    out = b"".join(f.response.stream(b"data: " + body + b"\n\n"))
    assert b"xxxx" in out and b"-32065" not in out


@pytest.mark.parametrize("step", [None, 100])
def test_sse_oversized_event_spelling_jsonrpc_with_an_escape_is_refused(gw, step):
    """On a stream not known as MCP, an event over the limit that may name "jsonrpc" with a
    \\u escape is refused in closed mode, whether it comes whole or in pieces."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed")
    f = sse_flow(gw)
    f.response.stream.known = False
    big = b'data: {"\\u006asonrpc":"2.0","method":"notifications/message","params":{"data":"'
    big += b"y" * 500 + b' SECRET"}}\n\n'
    out = b"".join(f.response.stream(big)) if step is None else feed(f.response.stream, big, step)
    assert b"SECRET" not in out


def test_sse_oversized_whole_event_answers_each_asked_id_once_and_echoes_no_made_up_id(gw):
    """Thousands of elements with one id (a small gzip event inflates to megabytes of
    them) get one error, not one each; an id the server made up (a long text, an object)
    is not echoed unread: the flow's own request is answered; an event with nothing to
    answer keeps its SSE id."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed", mcp_max_batch=5000)
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    many = b"[" + b",".join([b'{"jsonrpc":"2.0","id":42,"result":{}}'] * 3000) + b"]"
    out = b"".join(f.response.stream(b"data: " + many + b"\n\n"))
    assert out.count(b"-32065") == 1 and b'"id":42' in out
    for made_up in (b'"AKIAIOSFODNN7EXAMPLE ' + b"z" * 300 + b'"', b'{"a":[1,2]}', b"true"):
        f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
        ev = b'data: {"jsonrpc":"2.0","id":' + made_up + b',"result":{"t":"' + b"x" * 500
        out = b"".join(f.response.stream(ev + b'"}}\n\n'))
        assert out.count(b"-32065") == 1 and b'"id":42' in out and b"AKIA" not in out
    note = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"t":"'
    out = b"".join(f.response.stream(b"id: 99\n" + note + b"x" * 500 + b'"}}\n\n'))
    assert out == b"id: 99\n\n"
    # a request is answered once on a stream: its own response went, so an oversized event
    # of another id is not answered for it again
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    out = b"".join(f.response.stream(b'data: {"jsonrpc":"2.0","id":42,"result":{}}\n\n'))
    assert b'"result"' in out
    late = b'data: {"jsonrpc":"2.0","id":43,"result":{"t":"' + b"x" * 500 + b'"}}\n\n'
    assert b"".join(f.response.stream(late)) == b""


@pytest.mark.parametrize("step", [None, 100])
def test_sse_oversized_json_event_on_an_unknown_stream_is_refused_when_closed(gw, step):
    """Read in pieces, an event's "jsonrpc" may come after the first bytes past the limit
    (members in any order): in closed mode an oversized event that opens JSON is refused."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed")
    f = sse_flow(gw)
    f.response.stream.known = False
    body = b'{"method":"notifications/message","params":{"data":"' + b"y" * 500
    body += b' SECRET"},"jsonrpc":"2.0"}'
    for head in (b"data: ", b"data:\ndata: ", b": " + b"p" * 300 + b"\ndata: "):
        f = sse_flow(gw)
        f.response.stream.known = False
        big = head + body + b"\n\n"
        out = (
            b"".join(f.response.stream(big)) if step is None else feed(f.response.stream, big, step)
        )
        assert b"SECRET" not in out, head[:10]


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_sse_oversized_whole_answer_is_audited_as_the_call_it_answers(gw, mode):
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode=mode)
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    big = b'data: {"jsonrpc":"2.0","id":42,"result":{"t":"' + b"x" * 500 + b'"}}\n\n'
    b"".join(f.response.stream(big))
    rows = [m for m in gw.rec.msgs if m.kind is Kind.INVALID]
    assert [(m.id, m.method, m.name) for m in rows] == [(42, "tools/call", "echo")]


def test_sse_oversized_whole_server_request_is_answered_at_the_server_by_its_own_id(
    gw, monkeypatch
):
    """A server's request in an oversized event gets its error at the server, by its own
    id whatever its kind (a float too); bool ids are no JSON-RPC ids."""
    from mcp_gateway import answer

    sent = []
    monkeypatch.setattr(
        answer, "send_to_server", lambda f, ep, errs, req=None: sent.extend(errs) or True
    )
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed")
    f = sse_flow(gw, request=rpc("tools/call", id=42, name="echo"))
    for ident in (b"9", b"1.5", b'"' + b"r" * 300 + b'"', b"true"):
        req = b'data: {"jsonrpc":"2.0","method":"sampling/createMessage","params":{"t":"'
        out = b"".join(f.response.stream(req + b"x" * 500 + b'"},"id":' + ident + b"}\n\n"))
        assert b"sampling" not in out and b"-32065" not in out
    assert [e["id"] for e in sent] == [9, 1.5, "r" * 300]


def test_sse_oversized_event_fail_open(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="open")
    f = sse_flow(gw)
    big = b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"' + b"x" * 1000 + b'"}}\n\n'
    assert feed(f.response.stream, big + b"data: after\n\n", 50) == big + b"data: after\n\n"
    # one record of the event not inspected; "after" is scanned as text
    assert [m.payload for m in gw.rec.msgs if m.kind is Kind.INVALID] == [None, {"data": "after"}]


def test_sse_stream_fault_fails_closed(gw):
    f = sse_flow(gw)
    gw.pipeline.add(Boom())
    out = feed(f.response.stream, EVENTS, 13)
    assert b"SECRET" not in out and b"PII" not in out
    assert b'"id":1,"error":{"code":-32603' in out  # the response became an error in place
    assert b"notifications/" not in out  # notifications that could not be checked are dropped


def legacy_get(gw):
    """A legacy GET /sse in reverse mode, its event stream begun (no event yet)."""
    f = tflow.tflow(
        req=tutils.treq(
            method=b"GET", path=b"/sse", content=b"", headers=((b"accept", b"text/event-stream"),)
        )
    )
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gw.responseheaders(f)
    return f


def test_oversized_response_on_the_legacy_stream_is_answered_by_its_id(gw):
    """The legacy GET stream carries the answers to other POSTs: an oversized one that
    came whole is answered by its own (plain) id, or the client would wait for ever."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200, mcp_fail_mode="closed")
    f = legacy_get(gw)
    out = feed(f.response.stream, b"event: endpoint\ndata: /messages/?session_id=ab\n\n", 4)
    big = b'data: {"jsonrpc":"2.0","id":77,"result":{"t":"' + b"x" * 500 + b'"}}\n\n'
    out = b"".join(f.response.stream(big))
    assert b"xxxx" not in out and b'"id":77' in out and out.count(b"-32065") == 1


def test_legacy_endpoint_rewritten_in_reverse_mode(gw):
    f = legacy_get(gw)
    out = feed(
        f.response.stream,
        b"event: endpoint\ndata: http://127.0.0.1:9/messages/?session_id=ab\n\n",
        4,
    )
    assert out == b"event: endpoint\ndata: /messages/?session_id=ab\n\n"
    ex = gw.exchange(f)
    assert ex.legacy_session == "ab"
    # A later POST to the session is MCP and its response on the stream is correlated.
    p = send(
        gw,
        tflow.tflow(
            req=tutils.treq(
                method=b"POST",
                path=b"/messages/?session_id=ab",
                headers=((b"content-type", b"application/json"),),
                content=orjson.dumps(rpc("tools/call", id=3, name="echo")),
            )
        ),
    )
    assert p.response is None
    feed(f.response.stream, b'event: message\ndata: {"jsonrpc":"2.0","id":3,"result":{}}\n\n', 10)
    last = gw.rec.msgs[-1]
    assert (last.kind, last.method, last.name) == (Kind.RESULT, "tools/call", "echo")


def legacy_stream(gw, session: bytes = b"ab"):
    f = legacy_get(gw)
    list(f.response.stream(b"event: endpoint\ndata: /messages/?session_id=" + session + b"\n\n"))
    return f


def legacy_post(gw, body, session: bytes = b"ab"):
    req = tutils.treq(
        method=b"POST",
        path=b"/messages/?session_id=" + session,
        headers=((b"content-type", b"application/json"),),
        content=orjson.dumps(body),
    )
    return send(gw, tflow.tflow(req=req))


def test_pending_legacy_refusals_are_bounded_by_bytes(gw):
    """A refused legacy request goes on as a ping, its refusal kept until the ping's answer
    comes on the stream: never, when the server refuses the POST (404 once the session's
    stream closed). The id is the client's, of any length: 200 refused requests with 1 MB
    ids grew the proxy by 241 MB, and 10,000 were kept."""
    f = legacy_stream(gw)
    for i in range(40):
        p = legacy_post(gw, rpc("tools/call", id=f"{i:03d}" + "x" * 1_000_000, name="bad"))
        assert b'"method":"ping"' in p.request.content  # answered on the stream
    assert gw._legacy_refusal_bytes <= core._MAX_LEGACY_REFUSAL_BYTES
    assert 6 <= len(gw._legacy_refusals) < 12  # each counts its id twice: ~2 MB
    assert gw._legacy_refusal_bytes == sum(c for _, c in gw._legacy_refusals.values())
    # the latest ones are still answered on the stream, and their bytes given back
    out = b"".join(
        f.response.stream(
            b'event: message\ndata: {"jsonrpc":"2.0","id":"039'
            + b"x" * 1_000_000
            + b'","result":{}}\n\n'
        )
    )
    assert b"blocked by rule test.bad" in out
    assert gw._legacy_refusal_bytes == sum(c for _, c in gw._legacy_refusals.values())
    # a server's legacy session id of megabytes is not remembered (10,000 of them were)
    legacy_stream(gw, b"s" * 100_000)
    assert all(len(k[1]) < 1000 for k in gw._legacy_sessions)


def unknown_sse_flow(gw, headers=()):
    f = tflow.tflow(
        req=tutils.treq(
            method=b"GET",
            path=b"/events",
            content=b"",
            headers=((b"accept", b"text/event-stream"),),
        )
    )
    send(gw, f)
    f.response = tutils.tresp(
        headers=((b"content-type", b"text/event-stream"), *headers), content=None
    )
    gw.responseheaders(f)
    return f


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_non_mcp_event_stream_passes_untouched(gw, step):
    f = unknown_sse_flow(gw)
    assert "x-accel-buffering" not in f.response.headers
    body = b'data: {"price": 1}\n\ndata: plain text\n\n: comment\n\ndata: partial event at the e'
    assert feed(f.response.stream, body, step) == body
    assert not gw.rec.msgs


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_events_of_an_mcp_stream_without_jsonrpc_are_scanned_as_text(gw, step):
    # Clients quote such an event in the parse error they report, and hosts show it.
    f = sse_flow(gw)
    body = (
        b"data: hello\n\n"
        b"id: 7\ndata: a SECRET in text\n\n"
        b"data: SECRET without an id\n\n"
        b'event: note\ndata: {"who": "PII"}\n\n'
        b"data: line one PII\ndata: line two\n\n"
        b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'
    )
    out = feed(f.response.stream, body, step)
    assert out == (
        b"data: hello\n\n"
        b"id: 7\n\n"  # withheld; its id kept for resumption
        b'event: note\ndata: {"who": "[REDACTED:email]"}\n\n'
        b"data: line one [REDACTED:email]\ndata: line two\n\n"
        b'data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'
    )
    assert [m.kind for m in gw.rec.msgs[1:]] == [Kind.INVALID] * 5 + [Kind.RESULT]
    assert f.marked == ":no_entry:"


def test_an_answer_goes_on_with_the_content_type_the_gateway_read_it_by(gw):
    # Clients differ on a repeated Content-Type (the SDKs join the copies, others take the
    # last): only the copy the gateway read the body by goes on.
    f = sse_flow(gw, headers=((b"content-type", b"application/json"),))
    assert f.response.headers.get_all("content-type") == ["text/event-stream"]


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_lines_of_an_mcp_stream_that_are_no_event_are_scanned(gw, step):
    # a JSON body sent as an event stream: SSE clients ignore its lines, careless ones read them
    f = sse_flow(gw)
    body = b": ping\n\nretry: 10\n\n" + b'{"jsonrpc":"2.0","id":1,"result":{"t":"PII"}}\n'
    out = feed(f.response.stream, body, step)
    assert out == b": ping\n\nretry: 10\n\n" + (
        b'{"jsonrpc":"2.0","id":1,"result":{"t":"[REDACTED:email]"}}\n'
    )


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_junk_first_event_does_not_switch_the_inspection_off(gw, step):
    # A server cannot slip MCP messages past the pipeline by sending something else first.
    f = unknown_sse_flow(gw)
    head = b'data: hello\n\ndata: {"price": 1}\n\n'
    body = head + (
        b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"SECRET"}}\n\n'
        b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"PII"}}\n\n'
    )
    out = feed(f.response.stream, body, step)
    assert [(m.kind, m.id) for m in gw.rec.msgs] == [(Kind.RESULT, 1), (Kind.NOTIFICATION, None)]
    assert out.startswith(head) and b"SECRET" not in out and b"PII" not in out
    assert b"blocked by rule test.secret" in out and b"[REDACTED:email]" in out


def test_junk_first_then_an_escaped_jsonrpc_name_is_still_inspected(gw):
    # "\u006asonrpc" is "jsonrpc" to every JSON parser, but not to a byte search
    f = unknown_sse_flow(gw)
    body = (
        b"data: hello\n\n"
        b'data: {"\\u006asonrpc":"2.0","method":"notifications/message","params":{"data":"PII"}}'
        b"\n\n"
    )
    out = feed(f.response.stream, body, 7)
    assert [m.kind for m in gw.rec.msgs] == [Kind.NOTIFICATION]
    assert b"PII" not in out and b"[REDACTED:email]" in out


def test_large_event_of_another_stream_is_not_held_to_the_mcp_limit(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=1000)
    f = unknown_sse_flow(gw)
    body = b"data: hi\n\ndata: " + b"x" * 5000 + b"\n\ndata: after\n\n"
    assert feed(f.response.stream, body, 100) == body
    assert not gw.rec.msgs
    # ... but an oversized JSON-RPC message on it is refused like on any MCP stream
    f = unknown_sse_flow(gw)
    big = b'data: {"jsonrpc":"2.0","id":3,"result":{"t":"' + b"x" * 5000 + b'"}}\n\n'
    out = feed(f.response.stream, b"data: hi\n\n" + big, 100)
    assert b"x" * 1000 not in out and b"-32" in out


MCP_SECRET_EVENT = b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"SECRET"}}\n\n'


@pytest.mark.parametrize("coding", [b"none", b"utf-8", b"compress", b"x-foo"])
def test_a_coding_clients_do_not_know_is_read_as_they_read_it(gw, coding):
    """httpx skips a content coding it does not know and Node's fetch then decodes nothing:
    a legacy GET /sse (no MCP header, a server not seen yet) or an error page with
    ``Content-Encoding: none`` reaches the client readable. It was passed on unread."""
    f = unknown_sse_flow(gw, headers=((b"content-encoding", coding),))
    assert isinstance(f.response.stream, SSEStream)
    out = feed(f.response.stream, b"data: hi\n\n" + MCP_SECRET_EVENT, 7)
    assert out.startswith(b"data: hi\n\n") and b"SECRET" not in out and b"test.secret" in out
    # a JSON answer reads as JSON (it was refused as undecodable)
    body = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII"}}'
    f = json_answer_with(gw, body, [(b"content-encoding", coding)])
    assert decode_json(f.response.content)["result"]["t"] == "[REDACTED:email]"
    # an error page is scanned as text
    hdrs = [(b"content-type", b"text/plain"), (b"content-encoding", coding)]
    f = answer_with(gw, hdrs, b"internal error: SECRET in config", status=500)
    assert f.response.status_code == 500 and b"SECRET" not in f.response.content


@pytest.mark.parametrize(
    ("ctype", "body", "hidden"),
    [
        # a charset nobody knows: every client reads UTF-8
        (b"text/plain; charset=x-bogus", b"error: SECRET", b"SECRET"),
        # "+SECRET" reads as other characters in UTF-7, as SECRET in UTF-8 (fetch)
        (b"text/plain; charset=utf-7", b"error: +SECRET", b"SECRET"),
        (b"text/html; charset=utf-8; charset=utf-7", b"<p>SECRET</p>", b"SECRET"),
    ],
)
def test_an_error_page_in_a_charset_clients_read_apart_goes_on_as_scanned(gw, ctype, body, hidden):
    f = answer_with(gw, [(b"content-type", ctype)], body, status=500)
    out = f.response.content
    assert f.response.headers["content-type"].endswith("; charset=utf-8")
    if b"+" in body:  # UTF-7: the reading one client gets is sent on, as UTF-8, to all
        assert out == body.decode("utf-7", "replace").encode() and hidden not in out
    else:
        assert hidden not in out


def test_an_error_page_in_an_unknown_charset_keeps_its_text_and_media_type(gw):
    hdrs = [(b"content-type", b"text/html; charset=x-bogus"), (b"content-encoding", b"none")]
    f = answer_with(gw, hdrs, b"<p>bad gateway</p>", status=502)
    assert f.response.content == b"<p>bad gateway</p>"
    assert f.response.headers["content-type"] == "text/html; charset=utf-8"
    assert not gw.rec.msgs[-1].findings


def test_an_error_page_in_a_foreign_charset_is_sent_on_as_its_reading(gw):
    hdrs = [(b"content-type", b"text/plain; charset=windows-1252")]
    f = answer_with(gw, hdrs, "Fehler: Gebühr".encode("cp1252"), status=500)
    assert f.response.content.decode() == "Fehler: Gebühr"
    assert f.response.headers["content-type"] == "text/plain; charset=utf-8"


def test_unknown_streams_with_a_length_or_a_coding_are_still_inspected(gw):
    # a legacy GET /sse on first contact (the server not known yet) may come either way
    f = unknown_sse_flow(gw, headers=((b"content-length", b"10"),))
    assert isinstance(f.response.stream, SSEStream) and "content-length" not in f.response.headers
    assert b"SECRET" not in feed(f.response.stream, b"data: hi\n\n" + MCP_SECRET_EVENT, 7)
    f = unknown_sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    out = feed(f.response.stream, gzip.compress(b"data: hi\n\n" + MCP_SECRET_EVENT), 9)
    assert out.startswith(b"data: hi\n\n") and b"SECRET" not in out
    assert "content-encoding" not in f.response.headers


def test_sse_in_a_list_of_codings_or_another_charset_is_read_as_the_client_reads_it(gw):
    import brotli

    f = sse_flow(gw, headers=((b"content-encoding", b"gzip, br"),))
    out = feed(f.response.stream, brotli.compress(gzip.compress(MCP_SECRET_EVENT)), 5)
    assert b"SECRET" not in out and b"test.secret" in out
    for cs in ("utf-16", "utf-16-le", "utf-7", "windows-1252"):
        f = send(gw, post(rpc("tools/call", id=1, name="echo")))
        ctype = f"text/event-stream; charset={cs}".encode()
        f.response = tutils.tresp(headers=((b"content-type", ctype),), content=None)
        gw.responseheaders(f)
        assert f.response.headers["content-type"] == "text/event-stream"  # now UTF-8
        out = feed(f.response.stream, MCP_SECRET_EVENT.decode().encode(cs), 3)
        assert b"SECRET" not in out and b"test.secret" in out, cs


def test_sse_the_gateway_cannot_read_gets_one_error_in_closed_mode(gw):
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    out = feed(f.response.stream, b"\x1f\x8b garbage" * 10, 4)  # corrupt gzip
    assert out.count(b"event: message") == 1 and b"-32065" in out and b'"id":1' in out
    assert "content-encoding" not in f.response.headers  # the error is plain text
    gw.tctx.configure(gw, mcp_fail_mode="open")
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    assert feed(f.response.stream, b"\x1f\x8b garbage", 4) == b"\x1f\x8b garbage"


def json_answer_with(gw, content, headers):
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    f.response = tutils.tresp(
        headers=((b"content-type", b"application/json"), *headers), content=b""
    )
    f.response.raw_content = content
    gw.responseheaders(f)
    gw.response(f)
    return f


def answer_with(gw, headers, raw, status=200):
    """An answer to a tools/call with exactly these headers and body bytes."""
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    f.response = tutils.tresp(status_code=status, headers=tuple(headers), content=b"")
    f.response.raw_content = raw
    gw.responseheaders(f)
    gw.response(f)
    return f


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_an_answer_announced_far_over_the_limit_is_not_read(gw, mode, caplog):
    # mitmproxy would hold the whole body before the response hook: 300 MB took 600 MB
    gw.tctx.configure(gw, mcp_max_message_bytes=1000, mcp_fail_mode=mode)
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    hdrs = ((b"content-type", b"application/json"), (b"content-length", b"5000"))
    f.response = tutils.tresp(headers=hdrs, content=None)
    gw.responseheaders(f)
    if mode == "open":
        assert f.response.stream is True  # through, uninspected
    else:
        s = f.response.stream
        assert list(s(b"x" * 4000)) == [] and list(s(b"SECRET" * 100)) == []
        (out,) = list(s(b""))
        err = orjson.loads(out)
        assert err["id"] == 5 and err["error"]["code"] == -32065
        assert f.response.headers["content-length"] == str(len(out))
    (m,) = [m for m in gw.rec.msgs if m.kind is Kind.INVALID]
    assert not m.inspected
    # its audit row names what was called (and closed mode logs the refusal too)
    assert (m.id, m.method, m.name) == (5, "tools/call", "echo")
    assert f"per mcp_fail_mode={mode}" in caplog.text


def test_a_refusal_in_place_of_an_answer_keeps_a_float_id(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=1000)
    f = send(gw, post(rpc("tools/call", id=8.0, name="echo")))
    hdrs = ((b"content-type", b"application/json"), (b"content-length", b"5000"))
    f.response = tutils.tresp(headers=hdrs, content=None)
    gw.responseheaders(f)
    (out,) = list(f.response.stream(b""))
    assert orjson.loads(out)["id"] == 8.0  # the client matches its request by it


def test_json_answers_in_a_list_of_codings_or_another_charset_are_inspected(gw):
    import brotli

    body = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII"}}'
    f = json_answer_with(
        gw, brotli.compress(gzip.compress(body)), [(b"content-encoding", b"gzip, br")]
    )
    assert "content-encoding" not in f.response.headers  # re-sent plain
    assert decode_json(f.response.content)["result"]["t"] == "[REDACTED:email]"
    f = json_answer_with(
        gw,
        body.replace(b"PII", b"SECRET").decode().encode("utf-16"),
        [(b"content-type", b"application/json; charset=utf-16")],
    )
    assert f.response.headers["content-type"] == "application/json"
    assert b"test.secret" in f.response.content
    f = json_answer_with(gw, body.decode().encode("utf-32"), [])  # no charset: RFC 4627
    assert decode_json(f.response.content)["result"]["t"] == "[REDACTED:email]"
    # unreadable: not inspected, so refused in closed mode
    f = json_answer_with(gw, b"\x1f\x8bgarbage", [(b"content-encoding", b"gzip")])
    assert decode_json(f.response.content)["error"]["code"] == -32065


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: b.decode().encode("utf-16"), id="utf-16"),
        pytest.param(lambda b: b.decode().encode("utf-32-le"), id="utf-32-le"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="bom"),
        pytest.param(lambda b: b.replace(b'"jsonrpc"', b'"json\\u0072pc"'), id="escaped-key"),
        # JSON allows any amount of whitespace first: a check that gave up after 64 bytes
        # let a padded body past the scanner
        pytest.param(lambda b: b" " * 100 + b, id="padded"),
        pytest.param(lambda b: b"\r\n" * 5000 + b, id="padded-lines"),
        # an id the SDKs do not refuse (a float without fraction is read as the integer)
        pytest.param(lambda b: b.replace(b'"id":8', b'"id":8.0'), id="float-id"),
    ],
)
def test_requests_are_read_as_the_server_reads_them(gw, encode):
    # no MCP headers (stateless servers, initialize, legacy /messages): the gate looks at what
    # the server will read, not at the raw bytes
    body = orjson.dumps(rpc("tools/call", id=8, name="bad"))
    f = send_typed(gw, b"application/json", encode(body))
    assert f.response is not None and b"test.bad" in f.response.content


@pytest.mark.parametrize("cs", ["utf-16", "utf-32"])
def test_a_charset_the_body_does_not_follow_does_not_hide_it(gw, cs):
    """The SDKs parse a JSON body's bytes and ignore its charset: a UTF-8 body labelled
    UTF-16 must be read as UTF-8, not dismissed as "not JSON" and forwarded."""
    body = orjson.dumps(rpc("tools/call", id=8, name="echo", arguments={"t": "PII"}))
    ctype = f"application/json; charset={cs}".encode()
    f = send_typed(gw, ctype, body)
    assert b"PII" not in f.request.content and b"[REDACTED:email]" in f.request.content
    # a body that does follow its charset is still read in it
    utf16 = body.decode().encode("utf-16")
    f = send_typed(gw, b"application/json; charset=utf-16", utf16)
    assert b"[REDACTED:email]" in f.request.content


@pytest.mark.parametrize(
    "ident", [None, True, {"x": 1}, 1.5], ids=["null", "true", "object", "fraction"]
)
def test_requests_with_an_id_the_sdks_ignore_are_still_inspected(gw, ident):
    """The SDKs read such a request as a notification (they ignore the member they do not
    expect): it reaches the server's code, so it is scanned."""
    body = {
        "jsonrpc": "2.0",
        "id": ident,
        "method": "notifications/message",
        "params": {"d": "PII"},
    }
    f = send(gw, post(body))
    assert b"PII" not in f.request.content and b"[REDACTED:email]" in f.request.content
    (m,) = gw.rec.msgs
    assert m.kind is Kind.NOTIFICATION and m.id is None


@pytest.mark.parametrize(
    "extra",
    [{"error": None}, {"error": {"code": 1, "message": "PII"}}, {"method": None}],
    ids=["error-null", "error-too", "method-null"],
)
def test_answers_the_sdks_read_as_results_are_inspected(gw, extra):
    body = orjson.dumps({"jsonrpc": "2.0", "id": 5, "result": {"t": "PII"}, **extra})
    f = json_answer_with(gw, body, [])
    assert b"PII" not in f.response.content and b"[REDACTED:email]" in f.response.content
    f = sse_flow(gw)
    out = feed(f.response.stream, b"data: " + body + b"\n\n", 7)
    assert b"PII" not in out and b"[REDACTED:email]" in out


@pytest.mark.parametrize("pad", [b" " * 100, b"\n" * 70], ids=["spaces", "empty-data-lines"])
def test_padded_sse_events_are_inspected(gw, pad):
    f = sse_flow(gw)
    data = pad + b'{"jsonrpc":"2.0","id":1,"result":{"t":"PII"}}'
    ev = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"
    out = feed(f.response.stream, ev, 9)
    assert b"PII" not in out and b"[REDACTED:email]" in out


def test_json_nested_too_deep_to_inspect_is_not_passed_as_not_json(gw):
    """Deeper than the parser's limit is valid JSON that JavaScript reads: not inspected,
    so refused in closed mode (and passed in open mode), never forwarded as "not JSON"."""
    deep = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII","pad":' + b"[" * 600 + b"]" * 600 + b"}}"
    f = json_answer_with(gw, deep, [])
    assert b"PII" not in f.response.content
    assert decode_json(f.response.content)["error"]["code"] == ErrorCode.TOO_LARGE
    f = sse_flow(gw)
    out = feed(f.response.stream, b"data: " + deep + b"\n\ndata: after\n\n", 50)
    assert b"PII" not in out and b'"code":-32065' in out and out.endswith(b"data: after\n\n")
    gw.tctx.configure(gw, mcp_fail_mode="open")
    assert json_answer_with(gw, deep, []).response.content == deep


@pytest.mark.parametrize(
    "cs", ["x-bogus", "rot13", "base64", "cp500", "unicode_escape", "utf-7-imap", "utf-7."]
)
def test_json_in_a_charset_receivers_read_apart_is_refused(gw, cs):
    """A charset that is not a registered text charset, or that receivers spell apart, is
    read differently by different receivers (Node's body parser decodes UTF-7-IMAP and
    "utf-7." as UTF-7, Python falls back to UTF-8, httpx decodes unicode_escape): the
    gateway cannot read it as the receiver will, so it is refused in closed mode."""
    body = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII"}}'
    ctype = f"application/json; charset={cs}".encode()
    f = answer_with(gw, [(b"content-type", ctype)], body)
    assert b"PII" not in f.response.content and b"-32065" in f.response.content
    req = orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": "PII"}))
    f = send_typed(gw, ctype, req)
    assert f.response is not None and f.response.status_code == 400
    assert b"charset" in f.response.content


@pytest.mark.parametrize(
    "ctype", [b"application/json; charset=utf-7", b"text/plain; charset=UTF-7"]
)
@pytest.mark.parametrize("head", [b"+AHs-", b"+AHt-"])
def test_a_body_that_is_json_only_once_decoded_from_utf7_is_refused(gw, ctype, head):
    """Node's body parsers (express.json(), the TypeScript SDK's legacy transport) decode a
    body by its charset: "+AHs-" is "{" in UTF-7. Such a body once passed as "not JSON",
    uninspected, unauthenticated and unaudited, though the server ran it. Decoders read
    UTF-7 apart ("+AHt-" is "{" to Node, which drops a run's leftover bits, and "{" and a
    replacement character to Python): the gateway cannot read it as the server will."""
    body = head + orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": "PII"}))[1:]
    f = send_typed(gw, ctype, body)
    assert f.response is not None and f.response.status_code == 400
    assert b"utf-7" in f.response.content
    assert [m.kind for m in gw.rec.msgs] == [Kind.INVALID]  # (the refusal's audit row)


def test_a_body_its_declared_charset_makes_json_is_inspected_whatever_its_type(gw):
    req = orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": "PII"}))
    body = req.decode().encode("utf-16")  # (with its byte order mark)
    f = send_typed(gw, b"text/plain; charset=utf-16", body)
    assert f.response is None and "PII" not in f.request.content.decode("utf-16")
    assert [(m.method, m.name) for m in gw.rec.msgs] == [("tools/call", "echo")]


def test_an_upload_in_another_charset_that_is_no_json_is_left_alone(gw):
    body = "name=Jos\u00e9&city=M\u00e1laga".encode("latin-1")
    f = send_typed(gw, b"application/x-www-form-urlencoded; charset=ISO-8859-1", body)
    assert f.response is None and f.request.content == body and gw.rec.msgs == []
    f = send_typed(gw, b"text/plain; charset=x-unknown", b"+AHs- not json either")
    assert f.response is None and gw.rec.msgs == []


def test_json_in_a_charset_the_gateway_cannot_read_is_refused_whatever_its_bytes(gw):
    # (Node decodes "utf-7." as UTF-7; Python knows no such charset)
    body = b"+AHs-" + orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": "PII"}))[1:]
    f = send_typed(gw, b"application/json; charset=utf-7.", body)
    assert f.response is not None and f.response.status_code == 400
    assert b"charset" in f.response.content


TOKEN_UTF7 = "+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"  # "+ghp" is a UTF-7 base64 run


@pytest.mark.parametrize(
    ("cs", "text"),
    [
        ("utf-7", TOKEN_UTF7),  # the UTF-7 reading loses "ghp_"
        ("iso-8859-1", "ghp_Qw3Er5\u200bTy7Ui9Op1As2Df4Gh6Jk8Lz00yDv8d"),  # the ZWSP's bytes
    ],
)
def test_json_whose_charset_reading_differs_from_its_bytes_is_refused(gw, cs, text):
    """The SDKs' streamable servers and clients read a JSON body's bytes (UTF-8); Node's
    legacy server and body parsers read the declared charset. When the two readings differ,
    one may hide what the other shows: the body is refused rather than read one way."""
    ctype = f"application/json; charset={cs}".encode()
    req = orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": text}))
    f = send_typed(gw, ctype, req)
    assert f.response is not None and f.response.status_code == 400
    assert b"ambiguous charset" in f.response.content
    body = orjson.dumps({"jsonrpc": "2.0", "id": 5, "result": {"t": text}})
    f = answer_with(gw, [(b"content-type", ctype)], body)
    assert b"Qw3Er5" not in f.response.content and b"-32065" in f.response.content
    # the same charset on a body that reads alike either way is read as before
    plain = orjson.dumps(rpc("tools/call", id=7, name="echo", arguments={"t": "PII"}))
    f = send_typed(gw, ctype, plain)
    assert b"[REDACTED:email]" in f.request.content


@pytest.mark.parametrize(
    "ctype",
    [
        "charset*=utf-8''utf-7",
        "charset*0=utf-; charset*1=7",
        'x="a;charset=utf-8"; charset=utf-7',
        "charset=utf-8; charset=utf-7",
    ],
)
def test_a_charset_named_in_forms_receivers_parse_apart_is_refused(gw, ctype):
    """httpx (email.message), Node's content-type and iconv-lite read RFC 2231 forms,
    repeated and quoted parameters each their own way."""
    req = orjson.dumps(rpc("tools/call", id=6, name="echo", arguments={"t": "PII"}))
    f = send_typed(gw, f"application/json; {ctype}".encode(), req)
    assert f.response is not None and f.response.status_code == 400
    f = send(gw, post(rpc("tools/call", id=1, name="echo")))
    f.response = tutils.tresp(
        headers=((b"content-type", f"text/event-stream; {ctype}".encode()),), content=None
    )
    gw.responseheaders(f)
    out = feed(f.response.stream, b'data: {"jsonrpc":"2.0","id":1,"result":{"t":"PII"}}\n\n', 5)
    assert b"PII" not in out


def test_sse_in_a_charset_its_bytes_do_not_follow_is_refused_cleanly(gw):
    f = send(gw, post(rpc("tools/call", id=1, name="echo")))
    f.response = tutils.tresp(
        headers=((b"content-type", b"text/event-stream; charset=utf-16"),), content=None
    )
    gw.responseheaders(f)
    out = feed(f.response.stream, MCP_SECRET_EVENT, 1000)  # UTF-8, and no byte order mark
    assert b"SECRET" not in out and b'"code":-32065' in out and b"-32603" not in out


def test_summaries_are_capped_on_long_streams(gw):
    f = sse_flow(gw)
    ev = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}\n\n'
    feed(f.response.stream, ev * 1500, 10_000)
    assert len(f.metadata["mcp"]) == 1000 and f.metadata["mcp_more"] == 1 + 1500 - 1000


def test_refused_exchange_answers_a_client_response_itself(gw):
    gw.pipeline.add(RefuseAll())
    body = {"jsonrpc": "2.0", "id": 4, "result": {"content": {"type": "text", "text": "hello"}}}
    f = send(gw, post(body, headers=((b"mcp-session-id", b"s1"),)))
    assert f.response.status_code == 401  # answered by the gateway, never forwarded
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.UNAUTHORIZED


def test_cut_stream_keeps_its_display_copy(gw):
    f = sse_flow(gw)
    list(f.response.stream(b": ping\n\ndata: {}\n\n"))
    f.error = flow_error = tflow.terr()
    gw.error(f)
    assert f.error is flow_error and f.response.content == b": ping\n\ndata: {}\n\n"


def test_sse_content_type_in_any_case_and_a_leading_bom_are_inspected(gw):
    f = send(gw, post(rpc("tools/call", id=1, name="echo")))
    f.response = tutils.tresp(headers=((b"content-type", b"Text/Event-Stream"),), content=None)
    gw.responseheaders(f)
    assert isinstance(f.response.stream, SSEStream)
    ev = b'\xef\xbb\xbfdata: {"jsonrpc":"2.0","id":1,"result":{"t":"PII"}}\n\n'
    out = feed(f.response.stream, ev, 2)
    assert b"PII" not in out and b"[REDACTED:email]" in out


def test_on_shutdown_nothing_more_is_forwarded(gw):
    # the audit trail closes right after the gateway's `done`; mitmproxy's connections run on
    f = sse_flow(gw)
    gw.tctx.master.should_exit.set()
    gw.done()
    assert gw.closing
    assert feed(f.response.stream, b'data: {"jsonrpc":"2.0","method":"x/y"}\n\n', 5) == b""
    f = send(gw, post(rpc("tools/call", id=3, name="echo")))
    assert f.response.status_code == 503 and b"shutting down" in f.response.content


def test_a_script_reload_is_not_a_shutdown(gw):
    gw.done()  # mitmproxy calls done on the old addons of a reloaded script, too
    assert not gw.closing


def test_a_client_answer_that_cannot_be_parsed_reaches_the_server_as_an_error(gw):
    # a sampling answer cut short: refusing it to the client would leave the server waiting
    bad = b'{"jsonrpc":"2.0","id":"srv-7","result":{"content":{"type":"text","text":"cut'
    f = send(gw, post(bad, headers=((b"mcp-session-id", b"s1"),)))
    assert f.response is None  # goes on to the server...
    sent = decode_json(f.request.content)
    assert sent["id"] == "srv-7" and sent["error"]["code"] == -32700  # ... as an error
    assert b"cut" not in f.request.content
    assert gw.rec.msgs[-1].stopped and gw.rec.msgs[-1].id == "srv-7"
    # a request that cannot be parsed is still refused to the client
    f = send(
        gw,
        post(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{',
            headers=((b"mcp-session-id", b"s1"),),
        ),
    )
    assert f.response.status_code == 400


@pytest.mark.parametrize("ctype", [b"text/plain", b"application/x-www-form-urlencoded", b""])
def test_json_rpc_is_inspected_whatever_the_content_type_says(gw, ctype):
    # a lenient server reads the body as JSON-RPC anyway: so does the gateway
    body = orjson.dumps(rpc("tools/call", 3, name="bad", arguments={}))
    f = tflow.tflow(
        req=tutils.treq(
            method=b"POST", path=b"/mcp", headers=((b"content-type", ctype),), content=body
        )
    )
    send(gw, f)
    assert f.response is not None and decode_json(f.response.content)["id"] == 3
    assert "test.bad" in decode_json(f.response.content)["error"]["message"]
    # a form upload is not JSON: untouched
    form = tflow.tflow(
        req=tutils.treq(
            method=b"POST",
            path=b"/login",
            headers=((b"content-type", b"application/x-www-form-urlencoded"),),
            content=b"user=bob&password=x",
        )
    )
    send(gw, form)
    assert form.response is None and gw.rec.msgs[-1].id == 3


@pytest.mark.parametrize("sent", [(), ((b"X-Accel-Buffering", b"yes"),)])
def test_a_known_mcp_stream_asks_proxies_in_front_not_to_buffer(gw, sent):
    f = sse_flow(gw, headers=sent)
    assert f.response.headers.get_all("x-accel-buffering") == ["no"]


def test_requests_refused_after_the_rate_limit_charged_them_are_refunded(gw):
    """A refused request charges no bucket: not when a later stage (the scanner) blocks it,
    nor when it is refused with the rest of its batch."""
    from mcp_gateway.identity.config import load_config_text
    from mcp_gateway.identity.limits import LimitsStage

    stage = LimitsStage(load_config_text("limits:\n  default: 3/minute\n").limits)
    gw.pipeline.add(stage)

    def call(name, i):
        return send(gw, post(rpc("tools/call", id=i, name=name)))

    batch = [rpc("tools/call", id=i, name=n) for i, n in enumerate(["ok", "ok", "bad"])]
    f = send(gw, post(batch))
    assert f.response is not None  # answered as a whole, nothing forwarded
    for i in range(3):
        assert b"test.bad" in call("bad", 10 + i).response.content  # blocked by the scanner
    for i in range(3):
        assert call("ok", 20 + i).response is None  # forwarded: the bucket is still full
    f = call("ok", 30)
    assert decode_json(f.response.content)["error"]["code"] == ErrorCode.RATE_LIMITED
    assert stage.admitted_total == 3


def test_a_url_naming_two_sessions_is_refused_whatever_it_carries(gw):
    body = {"jsonrpc": "2.0", "id": 4, "result": {"content": []}}  # a client's answer
    f = tflow.tflow(
        req=tutils.treq(
            method=b"POST",
            path=b"/messages/?session_id=aaa&session_id=bbb",
            headers=((b"content-type", b"application/json"),),
            content=orjson.dumps(body),
        )
    )
    send(gw, f)
    assert f.response is not None and f.response.status_code == 400
    assert decode_json(f.response.content)["error"]["code"] == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "path", [b"/messages/#?session_id=aaa", b"/messages/?a=1#&session_id=aaa", b"/mcp#x"]
)
def test_a_request_target_with_a_fragment_is_refused(gw, path):
    """uvicorn reads all after the first "?" as the query (the session named after a "#"
    is the one routed to), a URL parser reads a fragment: the gateway cannot know which
    session the server will use."""
    f = tflow.tflow(
        req=tutils.treq(
            method=b"POST",
            path=path,
            headers=((b"content-type", b"application/json"),),
            content=orjson.dumps(rpc("tools/call", id=4, name="echo")),
        )
    )
    send(gw, f)
    assert f.response is not None and f.response.status_code == 400
    err = decode_json(f.response.content)["error"]
    assert err["code"] == ErrorCode.INVALID_REQUEST and "fragment" in err["message"]


def test_folded_header_values_are_unfolded_for_the_gateway_and_the_server(gw):
    """obs-fold (``Name:`` CRLF `` value``): uvicorn joins the lines and trims; mitmproxy
    keeps CR LF in the value. Both the gateway and the server must read one value."""
    f = tflow.tflow(
        req=tutils.treq(
            method=b"POST",
            headers=(
                (b"content-type", b"application/json"),
                (b"mcp-session-id", b"\r\n 9761f224a4ae4113a134896a4cbcd7fc"),
                (b"authorization", b"Bearer\r\n\ttok-1"),
            ),
            content=orjson.dumps(rpc("tools/list", id=1)),
        )
    )
    gw.requestheaders(f)
    assert f.request.headers["mcp-session-id"] == "9761f224a4ae4113a134896a4cbcd7fc"
    assert f.request.headers["authorization"] == "Bearer tok-1"
    gw.request(f)
    (m,) = gw.rec.msgs
    assert m.exchange.session_id == "9761f224a4ae4113a134896a4cbcd7fc"
    f.response = tutils.tresp(
        headers=((b"content-type", b"application/json;\r\n charset=utf-8"),),
        content=b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}',
    )
    gw.responseheaders(f)
    assert f.response.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json; x=text/event-stream",
        "application/json, text/event-stream",
        'application/json;profile="text/event-stream"',
    ],
)
def test_json_whose_content_type_mentions_event_stream_is_read_as_json(gw, ctype):
    """The SDKs decide by the media type (or its prefix): such an answer is JSON to them,
    so it must be inspected as JSON, not passed as an event stream with no events in it."""
    body = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII"}}'
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    f.response = tutils.tresp(headers=((b"content-type", ctype.encode()),), content=body)
    gw.responseheaders(f)
    assert not f.response.stream
    gw.response(f)
    assert b"PII" not in f.response.content and b"[REDACTED:email]" in f.response.content


def test_event_stream_media_types():
    from mcp_gateway.core import is_event_stream

    assert is_event_stream("text/event-stream")
    assert is_event_stream("Text/Event-Stream; charset=utf-8")
    assert is_event_stream(" text/event-stream")
    assert is_event_stream("text/event-streamx")  # the Python SDK's prefix test says so
    assert not is_event_stream("application/json; x=text/event-stream")
    assert not is_event_stream(None)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        (b"mcp-session-id", (b"s-own", b"s-victim")),
        (b"Mcp-Method", (b"tools/call", b"tools/list")),
        (b"mcp-name", (b"echo", b"delete_everything")),
        (b"MCP-Protocol-Version", (b"2025-11-25", b"2025-11-25")),
    ],
)
def test_a_repeated_one_value_mcp_header_is_refused(gw, name, values):
    """Servers read a repeated header differently (the first copy, or the copies joined):
    the gateway cannot know which one the server will act on, so it refuses the request."""
    headers = tuple((name, v) for v in values)
    f = send(gw, post(rpc("tools/call", id=3, name="echo"), headers=headers))
    assert f.response is not None and f.response.status_code == 400
    err = decode_json(f.response.content)["error"]
    assert err["code"] == ErrorCode.INVALID_REQUEST and "more than once" in err["message"]
    assert not any(v.decode() in err["message"] for v in values)  # no value echoed


def test_a_repeated_header_on_the_get_stream_is_refused(gw):
    hdrs = ((b"accept", b"text/event-stream"), (b"mcp-session-id", b"a"), (b"mcp-session-id", b"b"))
    f = tflow.tflow(req=tutils.treq(method=b"GET", path=b"/mcp", headers=hdrs, content=b""))
    send(gw, f)
    assert f.response is not None and f.response.status_code == 400


def test_other_repeated_headers_change_nothing(gw):
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})
    hdrs = (
        (b"content-type", b"application/json"),
        (b"authorization", b"a"),
        (b"authorization", b"b"),
    )
    g = tflow.tflow(req=tutils.treq(method=b"POST", headers=hdrs, content=body))
    send(gw, g)
    assert g.response is None and "mcp" not in g.metadata  # not MCP: untouched
    headers = ((b"x-trace", b"1"), (b"x-trace", b"2"), (b"mcp-session-id", b"s1"))
    f = send(gw, post(rpc("tools/call", id=3, name="echo"), headers=headers))
    assert f.response is None and f.metadata["mcp"]  # inspected and forwarded


SECRET_ANSWER = b'{"jsonrpc":"2.0","id":5,"result":{"t":"SECRET"}}'


@pytest.mark.parametrize(
    ("lines", "encode"),
    [
        ((b"gzip", b"gzip"), lambda b: gzip.compress(gzip.compress(b))),
        ((b"identity", b"gzip"), gzip.compress),
        ((b"", b"gzip"), gzip.compress),
    ],
    ids=["gzip+gzip", "identity+gzip", "empty+gzip"],
)
def test_codings_on_several_content_encoding_lines_are_all_undone(gw, lines, encode):
    """httpx and fetch read every Content-Encoding line, in order, as one list."""
    headers = tuple((b"content-encoding", v) for v in lines)
    f = json_answer_with(gw, encode(SECRET_ANSWER), headers)
    assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content
    f = sse_flow(gw, headers=headers)
    out = feed(f.response.stream, encode(MCP_SECRET_EVENT), 7)
    assert b"SECRET" not in out and b"test.secret" in out


def test_a_zstd_body_of_several_frames_is_read_whole(gw):
    import zstandard

    c = zstandard.ZstdCompressor()
    skippable = b"\x50\x2a\x4d\x18" + bytes(4)  # an empty skippable frame first
    body = skippable + c.compress(SECRET_ANSWER[:20]) + c.compress(SECRET_ANSWER[20:])
    f = json_answer_with(gw, body, ((b"content-encoding", b"zstd"),))
    assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content


def test_a_gzip_body_of_several_members_is_read_whole(gw):
    # Node's fetch (the TypeScript SDK) decodes every member; httpx only the first.
    body = gzip.compress(SECRET_ANSWER[:20]) + gzip.compress(SECRET_ANSWER[20:])
    f = json_answer_with(gw, body, ((b"content-encoding", b"gzip"),))
    assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content
    f = sse_flow(gw, headers=((b"content-encoding", b"gzip"),))
    event = MCP_SECRET_EVENT
    out = feed(f.response.stream, gzip.compress(event[:30]) + gzip.compress(event[30:]), 5)
    assert b"SECRET" not in out and b"test.secret" in out
    # bytes after the last member that start no member are read by no receiver
    f = json_answer_with(
        gw,
        gzip.compress(b'{"jsonrpc":"2.0","id":5,"result":{}}') + b"\n",
        ((b"content-encoding", b"gzip"),),
    )
    assert f.response.status_code == 200 and b'"result"' in f.response.content


def test_a_zstd_bomb_is_refused_without_inflating_it(gw):
    import resource

    import zstandard

    bomb = zstandard.ZstdCompressor(level=19).compress(b'{"a":"' + b"x" * (200 << 20))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    headers = ((b"content-type", b"application/json"), (b"content-encoding", b"zstd"))
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=headers, content=bomb)
    f = send(gw, tflow.tflow(req=req))  # no MCP header, a server never seen: still refused
    assert f.response is not None and f.response.status_code == 413
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grew_mib < 100, grew_mib
    f = sse_flow(gw, headers=((b"content-encoding", b"zstd"),))
    out = feed(f.response.stream, b"data: " + bomb[:4096], 1)
    assert b"-32065" in out  # cannot be decoded within the bound: one error, closed mode
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grew_mib < 200, grew_mib


def test_a_compressed_request_too_large_to_read_is_refused_if_it_is_json(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=65536)
    body = orjson.dumps(rpc("tools/call", id=3, name="echo", arguments={"t": "x" * 100_000}))
    headers = ((b"content-type", b"application/json"), (b"content-encoding", b"gzip"))
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=headers, content=gzip.compress(body))
    f = send(gw, tflow.tflow(req=req))
    assert f.response is not None and f.response.status_code == 413
    # a compressed upload that is not JSON goes on
    other = gzip.compress(b"PK\x03\x04" + bytes(100_000))
    req = tutils.treq(method=b"POST", path=b"/upload", headers=headers, content=other)
    f = send(gw, tflow.tflow(req=req))
    assert f.response is None


def test_raw_deflate_is_read_like_zlib_wrapped_deflate(gw):
    """'deflate' means zlib-wrapped, but servers send raw deflate too and httpx and fetch
    read both: refusing it broke such servers, reading only one hid the other."""
    import zlib

    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for body in (raw.compress(SECRET_ANSWER) + raw.flush(), zlib.compress(SECRET_ANSWER)):
        f = json_answer_with(gw, body, ((b"content-encoding", b"deflate"),))
        assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content


def test_a_flood_of_empty_zstd_frames_is_refused_quickly(gw):
    """Receivers decode every frame, so the gateway does too, but millions of 8-byte
    skippable frames would hold the event loop for seconds: past 10,000 the body is
    not decodable (refused in closed mode)."""
    import time

    flood = (b"\x50\x2a\x4d\x18" + bytes(4)) * (1 << 20)
    t = time.process_time()
    f = json_answer_with(gw, flood, ((b"content-encoding", b"zstd"),))
    assert time.process_time() - t < 2.0
    assert b"-32065" in f.response.content


# -- bypass round 4 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "cs"),
    [(" ", "utf-16-le"), ("\n", "utf-16-le"), ("\r\n", "utf-16-be"), ("\t", "utf-32-le")],
)
def test_utf16_and_utf32_bodies_opening_with_whitespace_are_inspected(gw, lead, cs):
    # (no byte order mark: json.loads and express.json() read them all the same)
    body = (lead + orjson.dumps(rpc("tools/call", name="bad")).decode()).encode(cs)
    f = send_typed(gw, b"application/json", body)
    assert f.response is not None and b"blocked" in f.response.content
    assert [m.name for m in gw.rec.msgs] == ["bad"]


def test_invalid_utf8_that_a_lenient_parser_reads_as_mcp_is_refused_for_any_server(gw):
    # An encoded lone surrogate (Python's json.loads reads it with surrogatepass), and the
    # method name written with an escape: refused even before the server is known.
    body = b'{"jsonrpc":"2.0","id":3,"\\u006dethod":"tools/call","x":"\xed\xa0\x80",' + (
        b'"params":{"name":"echo","arguments":{}}}'
    )
    f = send_typed(gw, b"application/json", body)
    assert f.response is not None and f.response.status_code == 400
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.PARSE_ERROR
    # not JSON-RPC at all: not the gateway's business
    f = send_typed(gw, b"application/json", b'{"a":"\xed\xa0\x80"}')
    assert f.response is None


@pytest.mark.parametrize("upgrade", [[b"H2C"], [b"foo", b"h2c"], [b"TLS/1.2"]])
def test_upgrades_other_than_websocket_are_removed_in_closed_mode(gw, upgrade):
    hdrs = [(b"upgrade", u) for u in upgrade] + [
        (b"connection", b"Upgrade, HTTP2-Settings, keep-alive"),
        (b"http2-settings", b"AAMAAABkAARAAAAAAAIAAAAA"),
    ]
    f = send(gw, post(rpc("tools/list"), headers=hdrs))
    h = f.request.headers
    assert "upgrade" not in h and "http2-settings" not in h
    assert h["connection"] == "keep-alive"
    gw.tctx.configure(gw, mcp_fail_mode="open")
    f = send(gw, post(rpc("tools/list"), headers=hdrs))
    assert f.request.headers.get_all("upgrade") == [u.decode() for u in upgrade]


def test_websocket_upgrade_is_kept(gw):
    hdrs = ((b"upgrade", b"WebSocket"), (b"connection", b"Upgrade"))
    req = tutils.treq(method=b"GET", path=b"/ws", headers=hdrs, content=b"")
    f = send(gw, tflow.tflow(req=req))
    assert f.request.headers["upgrade"] == "WebSocket"


def test_rawtcp_is_turned_off_in_closed_mode(gw):
    with taddons.context(gw) as tctx:
        tctx.options.rawtcp = True
        tctx.configure(gw, mcp_fail_mode="closed")
        assert tctx.options.rawtcp is False
        tctx.configure(gw, rawtcp=True)  # set again later: turned off again
        assert tctx.options.rawtcp is False
        tctx.configure(gw, mcp_fail_mode="open", rawtcp=True)
        assert tctx.options.rawtcp is True


class _RefusesUntilLoaded:
    """Like the scan addon before its rules loaded: every configure refuses the options."""

    calls = 0

    def configure(self, updated):
        self.calls += 1
        raise exceptions.OptionsError("mcp_rules: rules.yaml:3: rules[0].type: Field required")


def test_turning_rawtcp_off_does_not_loop_when_another_addon_refuses_the_options():
    # A bad rule file at start-up: the gateway's update of rawtcp was rolled back (the other
    # addon refused), the rollback configured the gateway again, which set rawtcp again...
    # until RecursionError, with the file's error lost in thousands of lines.
    g, other = Gateway(), _RefusesUntilLoaded()
    with taddons.context(g) as tctx:
        tctx.master.addons.chain.append(other)  # (after the gateway, as in build_addons)
        with pytest.raises(exceptions.OptionsError, match="Field required"):
            tctx.options.update(rawtcp=True)
        assert other.calls < 10


def test_a_body_announced_far_over_the_limit_is_not_read(gw):
    gw.tctx.configure(gw, mcp_max_message_bytes=1000)
    hdrs = ((b"content-type", b"application/json"), (b"content-length", b"4001"))
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=b"")
    f = tflow.tflow(req=req)
    gw.requestheaders(f)
    assert f.error is not None and not f.live  # killed before mitmproxy reads the body
    # up to 4 times the limit it is read and answered 413 as before
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs[:1], content=b"{" + b" " * 3000)
    f = tflow.tflow(req=req)
    gw.requestheaders(f)
    assert f.error is None
    # open mode: streamed through uninspected
    gw.tctx.configure(gw, mcp_fail_mode="open")
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=b"")
    f = tflow.tflow(req=req)
    gw.requestheaders(f)
    assert f.request.stream is True and f.error is None
    # not MCP-like (an upload of another type): left to mitmproxy
    gw.tctx.configure(gw, mcp_fail_mode="closed")
    hdrs = ((b"content-type", b"video/mp4"), (b"content-length", b"40001"))
    f = tflow.tflow(req=tutils.treq(method=b"POST", path=b"/up", headers=hdrs, content=b""))
    gw.requestheaders(f)
    assert f.error is None and not f.request.stream


class RefuseAnonymous:
    """An identify stage that tells a missing credential from the headers."""

    name, order = "fake-identify", 100

    def process(self, msg):
        pass

    def authenticate(self, ex):
        if "x-key" not in ex.request_headers:
            return Refusal(ErrorCode.UNAUTHORIZED, "authentication required", http_status=401)
        return None


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        (((b"transfer-encoding", b"chunked"),), "HTTP/1.1"),
        ((), "HTTP/2.0"),  # HTTP/2 without Content-Length
    ],
)
def test_a_body_of_undeclared_length_is_read_unless_its_credential_is_refused(gw, headers, version):
    """mitmproxy holds a chunked body whole before the request hook: an anonymous 120 MB
    chunked POST took 250 MB before authentication refused it. Clients do send such bodies
    (the C# SDK's JsonContent is chunked): they are read, unless the headers alone already
    show that the credential is refused."""

    def head(path=b"/mcp", ctype=b"application/json", extra=()):
        req = tutils.treq(
            method=b"POST",
            path=path,
            headers=((b"content-type", ctype), *headers, *extra),
            content=b"",
        )
        req.http_version = version
        f = tflow.tflow(req=req)
        gw.requestheaders(f)
        return f

    mcp = ((b"mcp-protocol-version", b"2025-11-25"),)
    f = head(extra=mcp)  # no authentication stage: read, as any body
    assert f.error is None and not f.request.stream
    gw.pipeline.add(RefuseAnonymous())
    f = head()  # a JSON POST to a host not known as MCP (api.openai.com…): not ours
    assert f.error is None
    f = head(extra=mcp)
    assert f.error is not None and not f.live  # killed before mitmproxy reads the body
    (ex,) = gw.rec.ended  # its audit row
    assert ex.refusal.http_status == 401
    f = head(extra=(*mcp, (b"x-key", b"k")))  # a credential the stage accepts: read
    assert f.error is None
    f = head(path=b"/up", ctype=b"video/mp4")  # not MCP-like: mitmproxy's business
    assert f.error is None


def test_a_batch_over_the_limit_is_mcp_by_any_of_its_elements(gw):
    # only the first mcp_max_batch elements were looked at: plain JSON-RPC in front of a
    # tools/call made the batch "not MCP", forwarded uninspected in closed mode
    gw.tctx.configure(gw, mcp_max_batch=3)
    filler = {"jsonrpc": "2.0", "id": 99, "result": {}}
    f = send(gw, post([filler, filler, filler, rpc("tools/call", id=1, name="echo")]))
    assert f.response is not None and f.response.status_code == 413
    gw.pipeline.add(RefuseAll())
    f = send(gw, post([filler, filler, filler, rpc("tools/call", id=1, name="echo")]))
    assert f.response.status_code == 401  # authentication's answer, not the size's


class _Limited:
    name, order = "limits", 350

    def process(self, msg):
        if msg.name == "limited":
            msg.block(
                ErrorCode.RATE_LIMITED, "rate limit exceeded", http_status=429,
                headers={"Retry-After": "7"}, stage=self.name,
            )  # fmt: skip


def test_a_batch_answered_whole_keeps_the_refusals_status_and_headers(gw):
    # the elements refused with it come first in the batch: their "not forwarded" must not
    # hide the 429's Retry-After
    gw.pipeline.add(_Limited())
    f = send(
        gw, post([rpc("tools/call", id=1, name="ok"), rpc("tools/call", id=2, name="limited")])
    )
    assert f.response.status_code == 429
    assert f.response.headers.get("Retry-After") == "7"


def test_an_mcp_answers_reason_phrase_is_the_standard_one(gw):
    """Clients quote the reason phrase in their errors (httpx: "Server error '500 …'"), which
    hosts show to the model; a server could fill it with anything."""
    f = send(gw, post(rpc("tools/call", id=5, name="echo")))
    f.response = tutils.tresp(status_code=500, reason=b"token ghp_secret", content=b"oops")
    gw.responseheaders(f)
    assert f.response.reason == "Internal Server Error"


def test_a_stream_not_known_as_mcp_with_an_ambiguous_charset_is_refused(gw):
    """A stream not (yet) known as MCP whose charset the gateway cannot read passes as it
    is; but a charset named so that receivers read it apart is no accident."""
    f = tflow.tflow(
        req=tutils.treq(
            method=b"GET", path=b"/sse", content=b"", headers=((b"accept", b"text/event-stream"),)
        )
    )
    send(gw, f)
    ctype = b"text/event-stream; charset*=utf-8''utf-7"
    f.response = tutils.tresp(headers=((b"content-type", ctype),), content=None)
    gw.responseheaders(f)
    assert callable(f.response.stream)
    out = feed(
        f.response.stream, b'data: {"jsonrpc":"2.0","method":"x","params":{"t":"PII"}}\n\n', 9
    )
    assert b"PII" not in out


@pytest.mark.parametrize(
    "coding",
    [
        pytest.param(b"gzip\xa0", id="nbsp-after"),  # httpx and fetch trim it: gzip
        pytest.param(b"\xa0gzip", id="nbsp-before"),
        pytest.param(b"gzip, x-foo", id="unknown-after"),  # fetch: decodes nothing
        pytest.param(b"x-foo, gzip", id="unknown-before"),
        pytest.param(b"gzip, identity", id="identity"),
        pytest.param(b"gzip\x85", id="trimmed-by-python-only"),
    ],
)
def test_an_answer_whose_codings_clients_read_apart_goes_on_as_scanned(gw, coding):
    """A byte beside a coding's name, or a token next to gzip that fetch does not decode:
    the gateway read the compressed bytes (a token reached both SDKs), or fetch read them
    raw while httpx and the gateway inflated them (a gzip header's file name, quoted by the
    TypeScript SDK, was never scanned). The answer now goes on decoded, as scanned."""
    body = b'{"jsonrpc":"2.0","id":5,"result":{"t":"PII"}}'
    f = json_answer_with(gw, gzip.compress(body), [(b"content-encoding", coding)])
    assert "content-encoding" not in f.response.headers
    assert f.response.headers["content-length"] == str(len(f.response.raw_content))
    assert decode_json(f.response.raw_content)["result"]["t"] == "[REDACTED:email]"
    # nothing to redact, but a gzip header's file name that fetch would show raw
    import io

    clean = b'{"jsonrpc":"2.0","id":5,"result":{"t":"ok"}}'
    buf = io.BytesIO()
    with gzip.GzipFile(filename="SECRET.txt", mode="wb", fileobj=buf) as z:
        z.write(clean)
    f = json_answer_with(gw, buf.getvalue(), [(b"content-encoding", coding)])
    if b"\xa0" in coding:  # both trim it: they undo the gzip alike, so it goes on as it came
        assert f.response.raw_content == buf.getvalue()
    else:
        assert f.response.raw_content == clean and "content-encoding" not in f.response.headers
    # an event stream too (decoded on the fly, its Content-Encoding dropped)
    f = sse_flow(gw, headers=((b"content-encoding", coding),))
    out = feed(f.response.stream, gzip.compress(MCP_SECRET_EVENT), 7)
    assert b"SECRET" not in out and b"test.secret" in out
    assert "content-encoding" not in f.response.headers


def test_the_codings_clients_read_alike_are_left_alone():
    from mcp_gateway import codec

    assert not codec.readings_differ("gzip")
    assert not codec.readings_differ("gzip, br")
    assert not codec.readings_differ("x-foo")  # nothing decoded either way
    assert not codec.readings_differ("identity")
    assert codec.readings_differ("gzip, identity") and codec.readings_differ("x-foo, gzip")
    assert codec.codings("gzip\udca0") == ["gzip"]  # (a lone 0xA0 byte, as header maps hold it)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_request_of_too_many_containers_is_not_inspected_unless_it_is_no_mcp(gw, mode):
    # 16 MB of [[],[],…] held the event loop 3-4 s before authentication
    from mcp_gateway.parse import MAX_CONTAINERS

    gw.tctx.configure(gw, mcp_fail_mode=mode)
    lists = b",".join([b"[]"] * (MAX_CONTAINERS + 1))
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":[' + lists + b"]}}"
    f = send(gw, post(body))
    (m,) = gw.rec.msgs
    assert m.inspected is False
    if mode == "closed":
        assert f.response.status_code == 413
        assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.TOO_LARGE
    else:
        assert f.response is None and f.request.content == body
    # JSON that is no MCP (no method, no MCP header, a server not known to speak MCP) goes on
    gw.rec.msgs.clear()
    other = b'{"jsonrpc":"2.0","id":1,"result":{"rows":[' + lists + b"]}}"
    f = send(gw, post(other))
    assert f.response is None and f.request.content == other and not gw.rec.msgs


def test_a_legacy_sse_get_is_authenticated_in_reverse_mode_before_any_post(gw):
    # a legacy client's first request is GET /sse: to a server not yet seen speaking MCP it
    # went on unauthenticated (an anonymous client opened a session under auth.required)
    gw.pipeline.add(RefuseAll())

    def get_sse():
        return tflow.tflow(
            req=tutils.treq(
                method=b"GET",
                path=b"/sse",
                content=b"",
                headers=((b"accept", b"text/event-stream"),),
            )
        )

    f = get_sse()
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.response is not None and f.response.status_code == 401
    # in regular proxy mode, an event stream of a host not known to speak MCP is not ours
    f = get_sse()
    send(gw, f)
    assert f.response is None


@pytest.mark.parametrize("with_id", [True, False])
def test_a_cut_answer_stream_frees_its_ids_unless_it_can_be_resumed(gw, with_id):
    """The client of a cut stream resumes it (GET with Last-Event-ID) only when it carried
    an event id; else its answers cannot come, and a client that rejoins the session after a
    restart counts its ids from 0 again: they must not stay taken."""
    from mcp_gateway.correlate import CorrelateStage

    gw.pipeline.add(CorrelateStage())
    hdr = ((b"mcp-session-id", b"S1"),)
    f = send(gw, post(rpc("tools/call", id=5, name="echo"), headers=hdr))
    f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
    gw.responseheaders(f)
    priming = b"id: ev-1\ndata: \n\n" if with_id else b": keep-alive\n\n"
    list(f.response.stream(priming))
    f.error = flow.Error("connection reset")  # the stream is cut before the answer
    gw.error(f)
    again = send(gw, post(rpc("tools/call", id=5, name="echo"), headers=hdr))
    assert (again.response is not None) is with_id  # refused only while resumable
