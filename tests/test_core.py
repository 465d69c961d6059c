"""The core addon's hooks, driven with mitmproxy's test flows and small fake stages
(the event-stream callable: tests/test_stream.py)."""

import gzip

import orjson
import pytest
from gateway_fakes import (
    CUT_EMOJI,
    SECRET_ANSWER,
    answer_with,
    core_gateway,
    json_answer_with,
    post,
    send,
    send_typed,
)
from mcp_gateway.core import Gateway
from mcp_gateway.message import Action, ErrorCode, Kind, Refusal
from mcp_gateway.parse import decode_json
from mcp_gateway.stream import SSEStream
from mitmproxy import exceptions
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils
from pipeline_fakes import Boom, RefuseAll, ScrubAndBlock, rpc


@pytest.fixture
def gw():
    yield from core_gateway()


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


def test_a_request_a_rule_blocked_stays_in_the_flow_as_the_rule_left_it(gw):
    # it stayed as the client sent it: mitmweb showed and `-w` saved the value the rule
    # stopped, while a redacted request keeps only the placeholder
    gw.pipeline.add(ScrubAndBlock())
    one = post(rpc("tools/call", id=3, name="echo", arguments={"text": "CODENAME"}))
    one.request.headers["Mcp-Param-Text"] = "CODENAME"
    batch = post([rpc("tools/call", id=4, name="echo", arguments={"text": "CODENAME"}),
                  rpc("tools/list", id=5)])  # fmt: skip
    note = post(rpc("notifications/cancelled", None, requestId=3, reason="CODENAME"))
    for f in (one, batch, note):
        send(gw, f)
        assert f.response is not None and f.marked == ":no_entry:"
        assert b"CODENAME" not in f.request.content and b"[REDACTED:codename]" in f.request.content
        assert "CODENAME" not in str(f.request.headers)
    assert orjson.loads(batch.request.content)[1]["method"] == "tools/list"
    # a request refused otherwise (here: not by a scanning rule) is kept as it came
    f = send(gw, post(rpc("tools/call", id=9, name="bad")))
    assert f.response is not None and orjson.loads(f.request.content)["params"]["name"] == "bad"


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


def _too_large_id(gw, body: bytes, headers=()) -> object:
    f = send(gw, post(body, headers))
    assert f.response is not None and f.response.status_code == 413
    err = orjson.loads(f.response.content)
    assert err["error"]["code"] == ErrorCode.TOO_LARGE
    return err["id"]


def test_too_large_request_is_answered_with_its_id(gw):
    """The 413 of an oversized request answered "id": null, and a client waits for its id
    (the SDKs fail the call only when the answer names it): the id is read from the first
    bytes of the top-level object, in any member order, or from its end; exactly, never an
    "id" inside params or a string, and null when it cannot be read for certain."""
    gw.tctx.configure(gw, mcp_max_message_bytes=1000)
    pad = "x" * 5000
    call = {"name": "echo", "arguments": {"t": pad}}
    # the Python SDK's order (id first), the TypeScript SDK's (id last), ids of both kinds
    assert (
        _too_large_id(
            gw, orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call})
        )
        == 7
    )
    assert (
        _too_large_id(
            gw,
            orjson.dumps({"method": "tools/call", "params": call, "jsonrpc": "2.0", "id": "r-9"}),
        )
        == "r-9"
    )
    # an id nested before the top-level one, or written inside a string, is not taken
    body = (
        b'{"jsonrpc":"2.0","method":"tools/call","_meta":{"id":5},"note":"\\"id\\": 6",'
        b'"id":8,"params":' + orjson.dumps(call) + b"}"
    )
    assert _too_large_id(gw, body) == 8
    # a top-level id beyond the first 64 KiB and not last: read exactly too (the body is in
    # memory: it was null), the params' own "id" not taken
    body = (
        b'{"jsonrpc":"2.0","method":"tools/call","params":{"id":5,"t":"'
        + b"y" * 70000
        + b'\\\\"},"id":3,"x":1}'
    )
    assert _too_large_id(gw, body) == 3
    # ... a duplicate there too (it had taken the first), and after more values than the
    # reading's budget (a body of countless small strings is not walked): null, not a guess
    body = b'{"id":1,"params":{"t":"' + b"y" * 70000 + b'"},"id":2,"x":1}'
    assert _too_large_id(gw, body) is None
    body = b'{"params":{"a":[' + b'"a",' * 60000 + b'"a"]},"id":3,"x":1}'
    assert _too_large_id(gw, body) is None
    # duplicates and case variants, which receivers read apart, and a batch: null
    body = (
        b'{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/call","params":'
        + orjson.dumps(call)
        + b"}"
    )
    assert _too_large_id(gw, body) is None
    assert _too_large_id(gw, orjson.dumps([rpc("tools/call", id=4, **call)])) is None
    # a compressed body: by its decoded first bytes
    body = gzip.compress(
        orjson.dumps({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": call})
    )
    assert _too_large_id(gw, body, ((b"content-encoding", b"gzip"),)) == 11
    # the audit row names it too
    assert gw.rec.msgs[-1].id == 11


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
        # the Java SDK reads a message by its method and id alone, whatever its jsonrpc
        # member says, or without one (red-team round 32: such a tools/call passed a real
        # mitmdump unauthenticated, unscanned and unaudited to the server)
        pytest.param(lambda b: b.replace(b'"jsonrpc":"2.0",', b""), id="no-jsonrpc"),
        pytest.param(lambda b: b.replace(b'"2.0"', b'"1.0"'), id="jsonrpc-1.0"),
        pytest.param(lambda b: b.replace(b'"2.0"', b"2.0"), id="jsonrpc-number"),
        pytest.param(lambda b: b.replace(b'"jsonrpc":"2.0"', b'"jsonrpc":null'), id="jsonrpc-null"),
    ],
)
def test_requests_are_read_as_the_server_reads_them(gw, encode):
    # no MCP headers (stateless servers, initialize, legacy /messages): the gate looks at what
    # the server will read, not at the raw bytes
    body = orjson.dumps(rpc("tools/call", id=8, name="bad"))
    f = send_typed(gw, b"application/json", encode(body))
    assert f.response is not None and b"test.bad" in f.response.content


def test_a_json_rpc_1_service_naming_ping_is_not_taken_for_mcp(gw):
    """bitcoind (and its forks) speak JSON-RPC 1.0 with a method "ping": since messages
    without "jsonrpc": "2.0" that name an MCP method were read as MCP, such a request
    through a regular-mode gateway was an MCP exchange, refused with a 401 under
    auth.required (a real mitmdump did) and its server learnt as an MCP one. A bare ping
    or initialize so written is MCP only to a known server or in reverse mode; a method
    with a slash (tools/call) everywhere."""
    gw.pipeline.add(NeedsKey())
    body = b'{"jsonrpc":"1.0","id":"curltest","method":"ping","params":[]}'
    for b in (body, body.replace(b'"jsonrpc":"1.0",', b""), b"[" + body + b"]"):
        f = send_typed(gw, b"text/plain", b)
        assert f.response is None and f.id not in gw._exchanges and not gw._mcp_servers
    f = send_typed(gw, b"text/plain", body.replace(b'"ping"', b'"tools/call"'))
    assert f.response.status_code == 401
    # in reverse mode the upstream is the MCP server: a bare ping is MCP there
    req = tutils.treq(method=b"POST", path=b"/mcp", content=body)
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    assert send(gw, f).response.status_code == 401
    # as to a server known to speak MCP
    gw._learn_server("address:22")
    assert send_typed(gw, b"text/plain", body).response.status_code == 401


LENIENT_CALL = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_repo"}}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b")]}'\n" + LENIENT_CALL, id="xssi-prefix"),
        pytest.param(LENIENT_CALL.replace(b'"', b"'"), id="single-quotes"),
        pytest.param(
            b"{jsonrpc:'2.0',id:2,method:'tools/call',params:{name:'x'}}", id="bare-names"
        ),
        pytest.param(b"# note\n" + LENIENT_CALL, id="hash-comment"),
        pytest.param(b"// note\n" + LENIENT_CALL, id="slash-comment"),
        pytest.param(b"{method /* x */ => 'tools\\u002fcall'; params={name='x'}}", id="gson-arrow"),
        pytest.param(b'{"jsonrpc":"2.0","id":2,"method":\'tools/call\'}', id="one-value-quoted"),
        pytest.param(b"{method: initialize, id: 1}", id="bare-initialize"),
    ],
)
def test_a_request_only_a_lenient_parser_reads_is_refused_in_reverse_mode(gw, body):
    """Gson's fromJson and Json.NET read single quotes, bare names, comments and Gson's ")]}'"
    prefix: to a server on them each of these is a tools/call (Gson 2.13 read every one), and
    through a real reverse mitmdump under auth.required each reached such a server
    unauthenticated, unscanned and unaudited (red-team round 33). Refused (400, -32700)."""
    gw.pipeline.add(NeedsKey())
    req = tutils.treq(
        method=b"POST",
        path=b"/mcp",
        headers=((b"content-type", b"application/json"),),
        content=body,
    )
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.response is not None and f.response.status_code == 400
    assert decode_json(f.response.content)["error"]["code"] == -32700
    # to a host not known to speak MCP, in regular mode, it may be any text: left alone
    # (unless it is JSON naming "jsonrpc" and "method" that does not parse: refused before)
    if not (body.startswith(b"{") and b'"jsonrpc"' in body and b'"method"' in body):
        f = send_typed(gw, b"application/json", body)
        assert f.response is None and f.request.content == body


def test_text_that_only_mentions_a_method_is_left_alone_in_reverse_mode(gw):
    gw.pipeline.add(NeedsKey())
    for body in (
        b"Docs: send {method: 'tools/call'} to run a tool",
        b'<p>{method: "tools/call"}</p>',
        b"method=tools/call&name=x",
        b'{"http_method":"tools/x"}',
    ):
        req = tutils.treq(method=b"POST", path=b"/docs", content=body)
        f = tflow.tflow(req=req)
        f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
        send(gw, f)
        assert f.response is None and f.request.content == body, body


def test_strict_json_whose_strings_mention_a_method_is_left_alone_in_reverse_mode(gw):
    """A JSON body that parses as it is reads the same to a lenient parser: a "method:" or
    "?method=" inside one of its strings (a webhook's URL, a note) is no member, and such a
    body to a reverse gateway's other endpoints was refused as "lenient" (review 8)."""
    gw.pipeline.add(NeedsKey())
    for body in (
        b'{"callback":"https://hooks.example.com/rpc?method=initialize"}',
        b'{"note":"first call method: tools/list, then tools/call"}',
        b'[{"step":"send method=ping"}]',
    ):
        req = tutils.treq(
            method=b"POST",
            path=b"/api/hooks",
            headers=((b"content-type", b"application/json"),),
            content=body,
        )
        f = tflow.tflow(req=req)
        f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
        send(gw, f)
        assert f.response is None and f.request.content == body, body


def test_json_lines_of_another_kind_naming_a_method_are_not_refused(gw):
    """Bodies naming "method" without any jsonrpc member are read since the Java SDK runs
    such MCP requests; one the gateway cannot parse was then refused as a parse error
    (400) wherever it went: JSON lines of access logs ({"method": "GET", ...}) shipped to a
    log service through a regular-mode gateway. Only one that names an MCP method is."""
    lines = b'{"method":"GET","path":"/"}\n{"method":"POST","path":"/x"}\n'
    f = send_typed(gw, b"application/x-ndjson", lines)
    assert f.response is None and f.request.content == lines
    # the Java SDK (Jackson) reads the first value of such a body and ignores the rest
    for call in (b'{"method":"tools/call","id":1}', b'{"method" : "tools\\/call","id":1}'):
        f = send_typed(gw, b"application/x-ndjson", call + b"\n" + lines)
        assert f.response is not None and f.response.status_code == 400, call


def test_an_answer_without_jsonrpc_on_a_legacy_session_is_inspected(gw):
    """The Java SDK's legacy SSE servers read a client's answer to their sampling or
    elicitation request without any jsonrpc member; posted to /messages/ (no MCP header)
    such an answer passed unread: unauthenticated, unscanned, unaudited."""
    sid = "0123456789abcdef0123456789abcdef"
    gw._learn_legacy_session("address:22", sid)
    req = tutils.treq(
        method=b"POST",
        path=f"/messages/?session_id={sid}".encode(),
        headers=((b"content-type", b"application/json"),),
        content=b'{"id":1,"result":{"content":{"type":"text","text":"SECRET"}}}',
    )
    send(gw, tflow.tflow(req=req))
    (m,) = gw.rec.msgs
    assert m.kind is Kind.RESULT and m.stopped


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


def test_refused_exchange_answers_a_client_response_itself(gw):
    gw.pipeline.add(RefuseAll())
    body = {"jsonrpc": "2.0", "id": 4, "result": {"content": {"type": "text", "text": "hello"}}}
    f = send(gw, post(body, headers=((b"mcp-session-id", b"s1"),)))
    assert f.response.status_code == 401  # answered by the gateway, never forwarded
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.UNAUTHORIZED


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
    # its own id, written last: not an "id" inside its result (which would settle another
    # of the server's requests and leave this one waiting)
    bad = b'{"jsonrpc":"2.0","result":{"content":{"id":5,"text":"x\x01"}},"id":9}'
    f = send(gw, post(bad, headers=((b"mcp-session-id", b"s1"),)))
    assert decode_json(f.request.content)["id"] == 9
    # nor an "id" inside a member written before its own (it is read member by member)
    bad = b'{"jsonrpc":"2.0","_meta":{"id":5},"id":"srv-8","result":{"content":{"text":"cut'
    f = send(gw, post(bad, headers=((b"mcp-session-id", b"s1"),)))
    assert decode_json(f.request.content)["id"] == "srv-8"
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


def test_a_zstd_body_of_several_frames_is_read_whole(gw):
    import zstandard

    c = zstandard.ZstdCompressor()
    skippable = b"\x50\x2a\x4d\x18" + bytes(4)  # an empty skippable frame first
    body = skippable + c.compress(SECRET_ANSWER[:20]) + c.compress(SECRET_ANSWER[20:])
    f = json_answer_with(gw, body, ((b"content-encoding", b"zstd"),))
    assert b"SECRET" not in f.response.content and b"test.secret" in f.response.content


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


def test_stream_large_bodies_is_turned_off_in_closed_mode(gw):
    # mitmproxy streams a body over stream_large_bodies before the request/response hooks
    # get its content: a 2 KB tools/call reached the server unauthenticated, unscanned and
    # unaudited, and a JSON answer over it the client unscanned
    from mitmproxy.addons.proxyserver import Proxyserver  # (the option is its)

    with taddons.context(gw, Proxyserver()) as tctx:
        tctx.options.stream_large_bodies = "2k"
        tctx.configure(gw, mcp_fail_mode="closed")
        assert tctx.options.stream_large_bodies is None
        tctx.configure(gw, stream_large_bodies="1m")  # set again later: turned off again
        assert tctx.options.stream_large_bodies is None
        tctx.configure(gw, mcp_fail_mode="open", stream_large_bodies="1m")
        assert tctx.options.stream_large_bodies == "1m"  # open mode keeps it (and warns)


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


def test_a_refused_option_is_raised_by_the_addon_that_refuses_it_not_from_inside_ours():
    # The start-up's traceback began in the gateway's configure (turning rawtcp off
    # configured every addon again) and ran through mitmproxy's option manager for some
    # thirty lines before the rule file's one-line error.
    import traceback

    g, other = Gateway(), _RefusesUntilLoaded()
    with taddons.context(g) as tctx:
        tctx.master.addons.chain.append(other)
        before = tctx.options.rawtcp
        with pytest.raises(exceptions.OptionsError, match="Field required") as e:
            tctx.options.update(rawtcp=not before)
        frames = [f.name for f in traceback.extract_tb(e.value.__traceback__)]
        assert "_no_blind_spots" not in frames and "configure" in frames
        assert tctx.options.rawtcp is before  # the update as a whole was rolled back
        # once the other addon accepts the options, closed mode turns rawtcp off again
        tctx.master.addons.chain.remove(other)
        tctx.options.update(rawtcp=True)
        assert tctx.options.rawtcp is False


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


def test_open_mode_streams_a_body_far_over_the_limit_only_once_its_exchange_is_admitted(gw):
    # Streamed from requestheaders without the exchange's stages, an anonymous tools/call
    # padded past 4 x the limit ran on the server under auth.required, with no audit row
    gw.tctx.configure(gw, mcp_fail_mode="open", mcp_max_message_bytes=1000)
    hdrs = ((b"content-type", b"application/json"), (b"content-length", b"4001"))

    def flow():
        return tflow.tflow(req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=b""))

    f = flow()
    gw.requestheaders(f)  # admitted: streamed, audited as not inspected, answer still read
    assert f.request.stream is True and f.error is None
    assert f.id in gw._exchanges
    assert [m.inspected for m in gw.rec.msgs] == [False]
    f.request.content = b"{" + b" " * 4000 + b"}"  # (what store_streamed_bodies keeps)
    gw.request(f)  # already sent: not handled again
    assert len(gw.rec.msgs) == 1 and f.response is None
    gw.pipeline.add(RefuseAll())
    f = flow()
    gw.requestheaders(f)  # refused: not streamed, the connection closed, one audit row
    assert not f.request.stream and f.error is not None and not f.live
    assert f.id not in gw._exchanges
    assert len(gw.rec.msgs) == 2 and gw.rec.msgs[-1].stopped
    assert gw.rec.ended[-1].refusal.code == ErrorCode.UNAUTHORIZED


def test_open_mode_admits_a_request_mitmproxy_streams_before_it_goes_on(gw):
    # Open mode keeps stream_large_bodies, and mitmproxy sets request.stream before any hook
    # of the gateway: under stream_large_bodies=2k, an anonymous tools/call padded past 2k
    # (under mcp_max_message_bytes) reached the server under auth.required, unaudited.
    hdrs = ((b"content-type", b"application/json"), (b"content-length", b"2500"))

    def flow():
        f = tflow.tflow(req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=b""))
        f.request.stream = True  # (mitmproxy's stream_large_bodies=2k)
        return f

    # closed mode turns stream_large_bodies off; a body streamed by anything else under
    # 4 x the limit is read whole (and inspected) instead
    f = flow()
    gw.requestheaders(f)
    assert f.request.stream is False and f.error is None and not gw.rec.msgs
    gw.tctx.configure(gw, mcp_fail_mode="open")
    f = flow()
    gw.requestheaders(f)  # admitted: streamed, audited as not inspected, answer still read
    assert f.request.stream is True and f.error is None and f.id in gw._exchanges
    assert [m.inspected for m in gw.rec.msgs] == [False]
    gw.pipeline.add(RefuseAll())
    f = flow()
    gw.requestheaders(f)  # refused before its body goes on: the connection is closed
    assert f.error is not None and not f.live and f.id not in gw._exchanges
    assert gw.rec.ended[-1].refusal.code == ErrorCode.UNAUTHORIZED


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


@pytest.mark.parametrize(
    "name", [b"m\\u0065thod", b"\\u006D\\u0065\\u0074\\u0068\\u006F\\u0064", b"METHOD", b"Method"]
)
@pytest.mark.parametrize("shape", ["wide", "deep"])
def test_a_request_too_costly_to_parse_names_its_method_in_any_spelling(gw, name, shape):
    # "m\u0065thod" is "method" to json.loads, pydantic and JSON.parse (and "METHOD" to Go's
    # and .NET's ignoring case): a body too costly (200,001 containers) or too deep (deeper
    # than 512) to parse hid its method from the bytes "method", and a first request to a
    # server not yet seen speaking MCP went on untouched: a stateless FastMCP server ran a
    # tools/call with a GitHub token, unauthenticated and unaudited
    from mcp_gateway.parse import MAX_CONTAINERS

    if shape == "wide":
        pad = b"[" + b",".join([b"[]"] * (MAX_CONTAINERS + 1)) + b"]"
    else:
        pad = b"[" * 3000 + b"]" * 3000  # (json.loads: RecursionError; JSON.parse reads it)
    body = (
        b'{"jsonrpc":"2.0","id":1,"' + name + b'":"tools/call","params":{"name":"echo",'
        b'"arguments":{"text":"x"},"_meta":{"pad":' + pad + b"}}}"
    )
    f = send(gw, post(body))
    assert f.response is not None and f.response.status_code in (400, 413)
    assert len(gw.rec.msgs) == 1


@pytest.mark.parametrize("name", ["JSONRPC", "JsonRpc", "j\u017fonrpc", "J\u017fONRPC"])
def test_a_jsonrpc_member_in_another_case_is_mcp_on_first_contact(gw, name):
    # "JSONRPC" (and Go's fold of s, the long s) is jsonrpc to mcp-go: a request naming it so,
    # without an MCP header, to a server not yet seen speaking MCP, went on untouched, where
    # the gateway refuses case variants (-32600)
    body = b'{"' + name.encode() + b'":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}'
    f = send(gw, post(body))
    assert f.response is not None and f.response.status_code == 400
    assert orjson.loads(f.response.content)["error"]["code"] == ErrorCode.INVALID_REQUEST
    # JSON of no such shape still goes on untouched
    f = send(gw, post(b'{"rows":[1,2,3],"note":"jsonrpc"}'))
    assert f.response is None


def test_a_server_known_to_speak_mcp_stays_known_under_another_name(gw):
    # A client names a loopback upstream as it likes (Mcp-Gateway-Server, the stdio shim's
    # header): a name never seen made a known server new again, and JSON-RPC too costly to
    # parse, without the bytes "method", went on to it untouched
    from mcp_gateway.parse import MAX_CONTAINERS

    def loopback(f):
        f.request.host, f.request.port = "127.0.0.1", 8931
        return f

    send(gw, loopback(post(rpc("tools/list"))))  # the server speaks MCP
    lists = b",".join([b"[]"] * (MAX_CONTAINERS + 1))
    body = b'{"jsonrpc":"2.0","id":2,"params":{"a":[' + lists + b"]}}"
    f = send(gw, loopback(post(body, ((b"mcp-gateway-server", b"fresh-name"),))))
    assert f.response is not None and f.response.status_code == 413


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


class NeedsKey(RefuseAll):
    """Refuses an exchange whose request, as the client sent it, has no good key."""

    def on_exchange(self, ex):
        if ex.request_headers.get("authorization") != "Bearer good":
            super().on_exchange(ex)


def _unasked_sse(gw, accept, key=None, reverse=True):
    """GET /sse without text/event-stream in its Accept, answered with an event stream."""
    headers = [(b"accept", accept)] if accept is not None else []
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key))
    req = tutils.treq(method=b"GET", path=b"/sse", content=b"", headers=tuple(headers))
    f = tflow.tflow(req=req)
    if reverse:
        f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.response is None  # (no sign of MCP yet: it goes on)
    f.request.headers.pop("authorization", None)  # (the identity addon strips gateway keys)
    f.response = tutils.tresp(
        status_code=200, headers=((b"content-type", b"text/event-stream"),), content=b""
    )
    gw.responseheaders(f)
    return f


@pytest.mark.parametrize("accept", [b"application/json", b"*/*", None])
def test_a_legacy_stream_the_get_did_not_ask_for_is_authenticated_by_its_answer(gw, accept):
    """Interop round 8: mcp-use probes a server with GET url, Accept: application/json,
    before it connects. A legacy server opens a session on any GET /sse, and the gateway,
    which makes a GET an MCP exchange only when it asks for an event stream, let that
    stream pass unauthenticated under auth.required in reverse mode (curl did the same),
    its audit rows without a consumer. The answer's event stream makes it one now: refused
    as the request would have been, with the key the client sent (which the identity addon
    had removed before it went on)."""
    gw.pipeline.add(NeedsKey())
    f = _unasked_sse(gw, accept)
    resp = f.response
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["connection"] == "close" and "transfer-encoding" not in resp.headers
    assert callable(resp.stream)
    out = resp.stream(b"event: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n")
    assert resp.stream(b"event: message\r\ndata: {}\r\n\r\n") == [] == resp.stream(b"")
    (body,) = out
    assert int(resp.headers["content-length"]) == len(body)
    assert orjson.loads(body)["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert f.marked == ":no_entry:"
    # with the key it is admitted, and streamed as before
    f = _unasked_sse(gw, accept, key=b"good")
    assert f.response.status_code == 200 and isinstance(f.response.stream, SSEStream)
    ex = gw._exchanges[f.id]
    assert ex.refusal is None and ex.request_headers["authorization"] == "Bearer good"
    assert not gw._unasked_gets


def test_an_unasked_stream_refused_to_an_http1_client_of_an_h2_server_closes(gw):
    # the refusal's Connection: close is for the client's connection: mitmproxy speaks h2
    # to the server and HTTP/1.1 to this client, whose next request on a kept connection
    # would wait behind the server's stream for ever
    gw.pipeline.add(NeedsKey())
    req = tutils.treq(method=b"GET", path=b"/sse", content=b"", http_version=b"HTTP/1.1")
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    f.response = tutils.tresp(
        http_version=b"HTTP/2.0", headers=((b"content-type", b"text/event-stream"),), content=b""
    )
    gw.responseheaders(f)
    assert f.response.status_code == 401 and f.response.headers["connection"] == "close"


def test_an_unasked_stream_is_authenticated_only_where_an_asked_one_would_be(gw):
    gw.pipeline.add(NeedsKey())
    # regular proxy mode, a host not known to speak MCP: not ours (as a GET that asked)
    f = _unasked_sse(gw, b"application/json", reverse=False)
    assert f.response.status_code == 200
    assert not gw._unasked_gets
    # known to speak MCP, in regular mode too
    gw._learn_server("address:22")  # (tutils.treq's address)
    f = _unasked_sse(gw, b"application/json", reverse=False)
    assert f.response.status_code == 401
    # an answer that is no event stream (OAuth discovery, a page) goes on: no MCP here
    req = tutils.treq(method=b"GET", path=b"/.well-known/oauth-protected-resource", content=b"")
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    f.response = tutils.tresp(headers=((b"content-type", b"application/json"),), content=b"{}")
    gw.responseheaders(f)
    assert f.response.status_code == 200 and not gw._unasked_gets
    # a GET that ends in an error is forgotten too
    f = tflow.tflow(req=tutils.treq(method=b"GET", path=b"/sse", content=b""))
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.id in gw._unasked_gets
    gw.error(f)
    assert not gw._unasked_gets


def test_a_request_streamed_by_mitmproxy_itself_is_still_read_when_its_body_is_kept(gw):
    # Open mode keeps stream_large_bodies: mitmproxy sets request.stream before any hook.
    # Only a request the gateway itself admitted and streamed (_huge_request) is skipped by
    # the request hook; one streamed by mitmproxy, whose body store_streamed_bodies kept,
    # opens its exchange as before, so that its answer is inspected (a JSON answer holding
    # SECRET reached the client unscanned), and a GET stream is still authenticated.
    gw.tctx.configure(gw, mcp_fail_mode="open", mcp_max_message_bytes=1000)
    f = post(rpc("tools/call", id=5, name="echo", pad="x" * 1500))
    f.request.stream = True  # (mitmproxy's stream_large_bodies=1k)
    send(gw, f)
    assert f.id in gw._exchanges
    f.response = tutils.tresp(headers=((b"content-type", b"application/json"),), content=b"")
    f.response.raw_content = SECRET_ANSWER
    gw.responseheaders(f)
    gw.response(f)
    assert b"SECRET" not in f.response.content

    gw.pipeline.add(RefuseAll())
    hdrs = ((b"accept", b"text/event-stream"), (b"mcp-session-id", b"abc"))
    f = tflow.tflow(req=tutils.treq(method=b"GET", path=b"/mcp", headers=hdrs, content=b""))
    f.request.stream = True
    send(gw, f)
    assert f.response is not None and f.response.status_code == 401


@pytest.mark.parametrize("method", [b"PUT", b"PATCH", b"GET", b"DELETE", b"OPTIONS", b"FOO"])
def test_a_json_rpc_body_sent_with_another_method_than_post_is_refused(gw, method):
    """Red-team round 30: the gateway read JSON-RPC in POST bodies only, and let any other
    method's body pass untouched: not authenticated, scanned, rate-limited or audited. The
    Python SDK's legacy /messages/ endpoint (mcp <= 1.26, and the servers built on it: a
    Starlette Mount takes every method) ran a tools/call sent with PUT, PATCH or even GET,
    its answer coming on the GET stream like a POST's. No MCP transport sends a message
    with another method: such a request is refused (405) and audited."""
    body = orjson.dumps(rpc("tools/call", id=9, name="bad"))
    legacy = b"/messages/?session_id=0123456789abcdef0123456789abcdef"
    for path, headers in (
        (legacy, ((b"content-type", b"application/json"),)),
        (b"/mcp", ((b"content-type", b"application/json"), (b"mcp-session-id", b"s1"))),
    ):
        req = tutils.treq(method=method, path=path, headers=headers, content=body)
        f = send(gw, tflow.tflow(req=req))
        assert f.response is not None and f.response.status_code == 405, (method, path)
        err = orjson.loads(f.response.content)
        assert err["error"]["code"] == ErrorCode.INVALID_REQUEST and err["id"] == 9
        assert f.response.headers["allow"] == "POST"
        assert gw.rec.msgs[-1].stopped  # (audited)
    # other traffic with a body passes as it is: an upload, JSON of another API, an
    # empty body
    gw.rec.msgs.clear()
    for path, content in (
        (legacy, b"\x89PNG\r\n"),
        (b"/api/items/1", b'{"name": "x", "method": "patch"}'),
        (legacy, b""),
    ):
        req = tutils.treq(method=method, path=path, headers=(), content=content)
        f = send(gw, tflow.tflow(req=req))
        assert f.response is None or f.response.status_code != 405, (method, path, content)


@pytest.mark.parametrize("method", [b"PUT", b"PATCH"])
def test_json_of_another_api_with_escapes_is_not_refused_for_its_method(gw, method):
    """The 405 for a JSON-RPC body sent without POST looked for signs of "jsonrpc" only:
    any \\u escape counted as one (it may spell the name), so ordinary JSON of a REST API
    with an escaped non-ASCII letter ("Caf\\u00e9", as Python's json.dumps writes it) was
    refused on a path naming a session, a percent-encoded path, a reverse gateway's
    upstream or a server known to speak MCP. Parsed, it names no jsonrpc member: it passes;
    a member spelt with escapes is still refused."""
    note = b'{"title": "Caf\\u00e9 menu", "note": "\\u2014 updated"}'
    for path, reverse in (
        (b"/api/sessions/12", False),
        (b"/api/files/my%20menu.json", False),
        (b"/api/items/1", True),
    ):
        headers = ((b"content-type", b"application/json"),)
        req = tutils.treq(method=method, path=path, headers=headers, content=note)
        f = tflow.tflow(req=req)
        if reverse:
            f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
        send(gw, f)
        assert f.response is None or f.response.status_code != 405, (method, path)
    # (the name written with escapes is still a JSON-RPC message)
    body = b'{"json\\u0072pc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "x"}}'
    req = tutils.treq(method=method, path=b"/api/sessions/12", headers=(), content=body)
    f = send(gw, tflow.tflow(req=req))
    assert f.response is not None and f.response.status_code == 405


def test_an_exchange_knows_the_site_its_host_header_names(gw):
    """Regular proxy mode: an absolute-form request goes to the URL's host with the client's
    Host header (mitmproxy keeps it), and a shared front end serves that site; server scopes,
    limits and upstream credentials look at it too (Exchange.vhost). Not in reverse mode,
    where the operator chose the server (and keep_host_header keeps the gateway's name)."""
    body = rpc("tools/call", id=4, name="echo")
    for headers, vhost in (
        (((b"host", b"paid.example"),), "paid.example:80"),
        (((b"host", b"Address:22"),), None),
        ((), None),
    ):
        send(gw, post(body, headers=headers))
        assert gw.rec.msgs[-1].exchange.vhost == vhost, headers
    f = post(body, headers=((b"host", b"paid.example"),))
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert gw.rec.msgs[-1].exchange.vhost is None


def _redirect(gw, location: bytes, mode: str | None):
    f = post(rpc("initialize", id=1))
    if mode is not None:
        f.client_conn.proxy_mode = ProxyMode.parse(mode)
    f.request.scheme, f.request.host, f.request.port = "http", "127.0.0.1", 8000
    f.client_conn.timestamp_tls_setup = None  # (the client came in over plain http)
    send(gw, f)
    f.response = tutils.tresp(
        status_code=307, headers=((b"location", location), (b"content-length", b"0")), content=b""
    )
    gw.responseheaders(f)
    gw.response(f)
    return f.response.headers.get_all("location")


def test_a_reverse_gateways_upstream_cannot_redirect_clients_around_it(gw):
    """FastMCP of the Python SDK 1.8/1.9 answers a POST to /mcp with 307 to
    http://<its own address>/mcp/: the Python SDK 1.9 client followed it to the server, and
    every request and answer after the first went around the gateway, unscanned."""
    assert _redirect(gw, b"http://127.0.0.1:8000/mcp/", "reverse:http://127.0.0.1:8000") == [
        "/mcp/"
    ]
    assert _redirect(gw, b"//127.0.0.1:8000/mcp/?a=1", "reverse:http://127.0.0.1:8000") == [
        "/mcp/?a=1"
    ]
    # another origin (an authorization server) is the client's to follow
    auth = b"https://auth.example.com/authorize"
    assert _redirect(gw, auth, "reverse:http://127.0.0.1:8000") == [auth.decode()]
    # a regular proxy's client comes back through the proxy: nothing to change
    assert _redirect(gw, b"http://127.0.0.1:8000/mcp/", None) == ["http://127.0.0.1:8000/mcp/"]


def test_a_redirect_to_the_upstream_under_another_scheme_is_left_with_a_warning(gw, caplog):
    """http -> https on the upstream's own host: made relative it would come back to the
    gateway and be redirected again, for ever; the operator is told where to point it."""
    up = b"https://127.0.0.1:8443/mcp/"
    with caplog.at_level("WARNING", logger="mcp_gateway"):
        assert _redirect(gw, up, "reverse:http://127.0.0.1:8000") == [up.decode()]
    assert "redirects to https://127.0.0.1:8443" in caplog.text
    assert "/mcp/" not in caplog.text  # (a path may carry a token: not logged)


def test_a_batch_naming_a_member_twice_goes_on_as_parsed(gw):
    """Batch elements are scanned as parsed; a member's first copy, which the parser drops,
    went on in the batch's bytes, where parsers that take the first copy read it."""
    body = (
        b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
        b'"arguments":{"t":"SECRET","t":"fine"}}},{"jsonrpc":"2.0","id":2,"method":"ping"}]'
    )
    f = send(gw, post(body))
    assert f.response is None and b"SECRET" not in f.request.content
    assert orjson.loads(f.request.content)[0]["params"]["arguments"] == {"t": "fine"}
    once = body.replace(b'"t":"SECRET",', b"")
    f = send(gw, post(once))
    assert f.response is None and f.request.content == once  # (nothing named twice: as sent)


def test_a_batch_with_an_escaped_backslash_before_u003a_goes_on_byte_identical(gw):
    """``\\\\u003a`` in a string is a backslash and the text u003a: the batch names each
    member once and goes on as it came (it was re-serialized, as if it named one twice)."""
    body = (
        b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", '
        b'"arguments": {"t": "JSON writes a colon as \\\\u003a"}}}, '
        b'{"jsonrpc": "2.0", "id": 2, "method": "ping"}]'
    )
    f = send(gw, post(body))
    assert f.response is None and f.request.content == body


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{method: 'tools/call', id: 2, params: {name: 'delete_repo'}}", 400),
        (b")]}'\n" + LENIENT_CALL, 400),
        (LENIENT_CALL, 401),  # strict JSON: read, and so authenticated (refused here)
    ],
)
@pytest.mark.parametrize("ctype", [b"text/plain", b"application/octet-stream"])
def test_a_compressed_body_of_another_type_is_read_as_mcp_in_reverse_mode(gw, body, status, ctype):
    """Red-team round 34: the lenient-JSON check (round 33) and the reading of JSON sent as
    text/plain skipped compressed bodies of a type that is not JSON: gzip'd, the same
    tools/call went on to a reverse gateway's server unread, unauthenticated and unaudited
    (a server that inflates requests and reads them whatever their type runs it)."""
    gw.pipeline.add(NeedsKey())
    req = tutils.treq(
        method=b"POST",
        path=b"/mcp",
        headers=((b"content-type", ctype), (b"content-encoding", b"gzip")),
        content=gzip.compress(body),
    )
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.response is not None and f.response.status_code == status


def test_a_compressed_upload_of_another_type_goes_on_untouched(gw):
    gw.pipeline.add(NeedsKey())
    for body in (b"plain text, method=tools/call", b"\x89PNG\r\n\x1a\n" + bytes(range(256))):
        req = tutils.treq(
            method=b"POST",
            path=b"/upload",
            headers=((b"content-type", b"text/plain"), (b"content-encoding", b"gzip")),
            content=gzip.compress(body),
        )
        f = tflow.tflow(req=req)
        f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
        send(gw, f)
        assert f.response is None and gzip.decompress(f.request.raw_content) == body


def test_an_unasked_stream_refused_with_an_empty_body_still_gets_its_body(gw):
    """A server that opened the stream and ended it at once (Content-Length: 0): mitmproxy
    streams no body that ended with its headers, so the refusal's callable never ran and the
    401 went with its Content-Length and no body (httpx: "peer closed connection without
    sending complete message body", the 401 and its WWW-Authenticate never read). Its body is
    the response's content then."""
    gw.pipeline.add(NeedsKey())
    f = _unasked_sse(gw, b"application/json")
    resp = f.response
    assert resp.status_code == 401 and callable(resp.stream)
    # (mitmproxy: end of stream with the headers, the body consumed, the response hook)
    gw.response(f)
    body = resp.raw_content
    assert body and int(resp.headers["content-length"]) == len(body)
    assert orjson.loads(body)["error"]["code"] == ErrorCode.UNAUTHORIZED
    # a streamed one that sent its body keeps it as it went (and no second copy)
    f = _unasked_sse(gw, b"application/json")
    (sent,) = f.response.stream(b"event: x\r\ndata: {}\r\n\r\n")
    f.response.stream(b"")
    gw.response(f)
    assert f.response.raw_content == b"" and int(f.response.headers["content-length"]) == len(sent)


@pytest.mark.parametrize(
    "body",
    [
        b"{method: 'tools/call', id: 2, params: {name: 'delete_repo', pad: '",
        b'{"jsonrpc": "2.0", "method": "tools/call", "id": 2, "params": {"pad": "',
    ],
)
def test_a_compressed_body_of_another_type_too_large_to_read_is_refused(gw, body):
    """Review of round 34: a gzip'd text/plain body read as JSON in reverse mode went on
    unread when it inflated beyond mcp_max_message_bytes (padding after the call): the same
    body uncompressed was refused, and a JSON-typed one too large is."""
    big = body + b"x" * (gw.max_message_bytes + 10) + b"'}}"
    req = tutils.treq(
        method=b"POST",
        path=b"/mcp",
        headers=((b"content-type", b"text/plain"), (b"content-encoding", b"gzip")),
        content=gzip.compress(big),
    )
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    send(gw, f)
    assert f.response is not None and f.response.status_code == 413
