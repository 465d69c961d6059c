import math
import time

import orjson
import pytest
from mcp_gateway import parse
from mcp_gateway.message import Direction, ErrorCode, Exchange, Kind
from mcp_gateway.parse import (
    ParseError,
    case_variant,
    check_mirrored_headers,
    classify,
    decode_header_value,
    decode_json,
    encode_header_value,
    encode_json,
    is_mcp_method,
    is_mcp_payload,
    legacy_session_from_url,
    looks_like_json,
    marks_mcp,
    may_name_jsonrpc,
    parse_body,
    target_name,
    target_pointer,
)


def ex(**headers):
    e = Exchange(flow_id="f", server="s:1", request_headers=headers)
    e.protocol_version = headers.get("mcp-protocol-version")
    return e


@pytest.mark.parametrize(
    "obj,kind",
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, Kind.REQUEST),
        ({"jsonrpc": "2.0", "id": "a", "method": "x"}, Kind.REQUEST),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, Kind.RESULT),
        ({"jsonrpc": "2.0", "id": None, "error": {"code": 1, "message": "m"}}, Kind.ERROR),
        # read as the MCP SDKs read them (they ignore what they do not expect): never
        # classed away from the scanner
        ({"jsonrpc": "2.0", "id": None, "method": "x"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1.0, "method": "x"}, Kind.REQUEST),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, Kind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, Kind.RESULT),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": None}, Kind.RESULT),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "method": None}, Kind.RESULT),
        ({"jsonrpc": "1.0", "id": 1, "method": "x"}, Kind.INVALID),
        # an MCP method whatever jsonrpc says, or without it: the Java SDK reads a message by
        # its method and id alone
        ({"id": 1, "method": "tools/call"}, Kind.REQUEST),
        ({"jsonrpc": "1.0", "id": 1, "method": "tools/call"}, Kind.REQUEST),
        ({"jsonrpc": 2.0, "method": "notifications/initialized"}, Kind.NOTIFICATION),
        ({"jsonrpc": None, "id": None, "method": "tools/call"}, Kind.NOTIFICATION),
        ({"id": 1, "method": "getblock"}, Kind.INVALID),  # JSON-RPC 1.0 of another service
        # an answer with a usable id, as the Java SDK reads a client's answer to its request
        ({"id": 1, "result": {}}, Kind.RESULT),
        ({"jsonrpc": "1.0", "id": "s-1", "error": {"code": 1, "message": "m"}}, Kind.ERROR),
        ({"id": None, "result": {}}, Kind.INVALID),
        ({"id": 1, "method": 5, "result": {}}, Kind.INVALID),
        ({"jsonrpc": "2.0", "method": 5}, Kind.INVALID),
        ({"jsonrpc": "2.0", "result": {}}, Kind.INVALID),  # no id: no SDK reads it
        ([1], Kind.INVALID),
        ("x", Kind.INVALID),
    ],
)
def test_classify(obj, kind):
    assert classify(obj) is kind


def test_parse_single_and_names():
    p = parse_body(
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}',
        Direction.CLIENT_TO_SERVER,
        ex(),
    )
    (m,) = p.messages
    assert not p.batch
    assert (m.kind, m.id, m.method, m.name) == (Kind.REQUEST, 7, "tools/call", "echo")
    assert target_name("resources/read", {"uri": "file:///a"}) == "file:///a"
    assert target_name("completion/complete", {"ref": {"type": "ref/prompt", "name": "p"}}) == "p"


def test_a_completion_reference_is_named_by_its_type() -> None:
    """The SDK servers read a ref/resource as its uri, whatever name stands beside it (a
    harmless name took a secret template's completion out of rules scoped to the resource),
    and a ref/prompt as its name."""
    ref = {"type": "ref/resource", "uri": "file:///secret/{name}", "name": "greet"}
    assert target_name("completion/complete", {"ref": ref}) == "file:///secret/{name}"
    assert target_pointer("completion/complete", {"ref": ref}) == "/params/ref/uri"
    ref = {"type": "ref/prompt", "name": "p", "uri": "file:///secret/x"}
    assert target_name("completion/complete", {"ref": ref}) == "p"
    assert target_name("completion/complete", {"ref": {"uri": "file:///a"}}) == "file:///a"


def test_parse_batch():
    p = parse_body(
        b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]',
        Direction.CLIENT_TO_SERVER,
        ex(),
    )
    assert p.batch and [m.kind for m in p.messages] == [Kind.REQUEST, Kind.NOTIFICATION]
    assert [m.batch_index for m in p.messages] == [0, 1]
    with pytest.raises(ParseError) as e:
        parse_body(b"[]", Direction.CLIENT_TO_SERVER, ex())
    assert e.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "body,needle",
    [
        (b'{"a":', "Parse error"),
        (b'{"a":"\xff"}', "not valid UTF-8"),
        (b"[" * 2000 + b"]" * 2000, "nested"),
    ],
)
def test_decode_errors(body, needle):
    with pytest.raises(ParseError) as e:
        decode_json(body)
    assert e.value.code == ErrorCode.PARSE_ERROR and needle in e.value.message


def test_what_other_json_parsers_accept_is_read():
    assert decode_json(b'{"a":"\\ud83d"}') == {"a": "\ud83d"}  # a lone surrogate
    assert decode_json(b'{"a":"\\udc00\\ud83d x"}') == {"a": "\udc00\ud83d x"}
    assert decode_json(b"\xef\xbb\xbf" + b'{"a":1}') == {"a": 1}  # byte order mark
    assert math.isnan(decode_json(b'{"a":NaN}')["a"])
    # invalid UTF-8: refused, or read as a JavaScript client reads it
    with pytest.raises(ParseError, match="not valid UTF-8"):
        decode_json(b'{"a":"\xff"}')
    assert decode_json(b'{"a":"\xff"}', lenient_utf8=True) == {"a": "\ufffd"}
    # still refused: what no parser reads
    with pytest.raises(ParseError, match="Parse error"):
        decode_json(b'{"a":"\\ud83d"', lenient_utf8=True)


def test_encode_json_writes_what_orjson_refuses():
    value = {"a": "x\ud83d", "n": 2**70}
    raw = encode_json(value)
    assert raw.isascii() and decode_json(raw) == value
    assert encode_json({"a": "é"}) == '{"a":"é"}'.encode()  # the usual path: orjson


def test_json_escapes_are_decoded():
    assert decode_json(b'{"k":"\\u0073k-abc"}') == {"k": "sk-abc"}


def test_is_mcp_payload():
    assert is_mcp_payload({"jsonrpc": "2.0", "id": 1, "method": "tools/call"})
    assert is_mcp_payload([{"jsonrpc": "2.0", "method": "notifications/initialized"}])
    assert not is_mcp_payload({"jsonrpc": "2.0", "id": 1, "method": "eth_call"})
    assert not is_mcp_payload({"jsonrpc": "2.0", "id": 1, "result": {}})


def _msgs(body, e):
    return parse_body(body, Direction.CLIENT_TO_SERVER, e).messages


CALL = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}'


def test_mirrored_headers_match():
    e = ex(**{"mcp-method": "tools/call", "mcp-name": "echo", "mcp-protocol-version": "2026-07-28"})
    assert check_mirrored_headers(e, _msgs(CALL, e)) is None


@pytest.mark.parametrize(
    "headers,problem",
    [
        ({"mcp-method": "tools/list"}, "does not match body method"),
        ({"mcp-method": "tools/call", "mcp-name": "other"}, "does not match body name"),
        ({"mcp-protocol-version": "2026-07-28"}, "missing Mcp-Method"),
        ({"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}, "missing Mcp-Name"),
    ],
)
def test_mirrored_headers_mismatch(headers, problem):
    e = ex(**headers)
    assert problem in check_mirrored_headers(e, _msgs(CALL, e))


def test_a_mismatched_header_is_not_quoted():
    """The refusal is audited: what a client wrote in Mcp-Method may be a credential."""
    e = ex(**{"mcp-method": "ghp_Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0abc123"})
    assert "ghp_" not in check_mirrored_headers(e, _msgs(CALL, e))


def test_mirrored_headers_not_required_before_2026():
    e = ex(**{"mcp-protocol-version": "2025-11-25"})
    assert check_mirrored_headers(e, _msgs(CALL, e)) is None


def test_base64_header_values():
    assert decode_header_value("=?base64?w6ljaG8=?=") == "écho"
    assert decode_header_value("plain") == "plain"
    # read exactly as the SDKs read them: a malformed sentinel matches nothing
    assert decode_header_value("=?BASE64?ZWNobw==?=") == "=?BASE64?ZWNobw==?="  # not a sentinel
    assert decode_header_value("=?base64?!!!?=") is None
    assert decode_header_value("=?base64?ZWNobx==?=") is None  # not canonical base64
    assert decode_header_value("=?base64?/w==?=") is None  # not UTF-8
    for v in ("plain", "écho", " lead", "tab\t", "a\nb", "=?base64?ZWNobw==?="):
        enc = encode_header_value(v)
        assert decode_header_value(enc) == v and enc.isascii()
    assert encode_header_value("plain") == "plain"


def test_mcp_name_counts_only_on_methods_that_carry_a_name():
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    e = ex(**{"mcp-method": "tools/list", "mcp-name": "foo", "mcp-protocol-version": "2026-07-28"})
    assert check_mirrored_headers(e, _msgs(body, e)) is None
    e = ex(
        **{
            "mcp-method": "tools/call",
            "mcp-name": "=?base64?!?=",
            "mcp-protocol-version": "2026-07-28",
        }
    )
    assert "does not match body name" in check_mirrored_headers(e, _msgs(CALL, e))


def test_a_name_mismatch_repeats_neither_value():
    """The refusal goes to the client and into the audit trail: a URI may hold a secret."""
    e = ex(
        **{
            "mcp-method": "tools/call",
            "mcp-name": "ghp_secretinheader",
            "mcp-protocol-version": "2026-07-28",
        }
    )
    problem = check_mirrored_headers(e, _msgs(CALL, e))
    assert "does not match body name" in problem and "ghp_" not in problem
    assert "echo" not in problem  # the body's name either


def test_legacy_session():
    assert legacy_session_from_url("/messages/?session_id=abc") == "abc"
    assert legacy_session_from_url("http://h/message?sessionId=x1") == "x1"
    # the official Go SDK (mcp-grafana's SSE transport): /sse?sessionid=…
    assert legacy_session_from_url("/sse?sessionid=4JI36BPJOEWGA5ZB") == "4JI36BPJOEWGA5ZB"
    assert legacy_session_from_url("/mcp") is None


def test_legacy_session_has_one_spelling_and_one_value():
    """The Python SDK reads the id as a UUID whatever its spelling: binding must too. A URL
    naming two sessions is refused (servers differ on which one counts)."""
    from mcp_gateway.parse import AmbiguousSession

    hexid = "f7ea9dcb88d24b89a2d4316009380061"
    dashed = "F7EA9DCB-88D2-4B89-A2D4-316009380061"
    for spelling in (hexid, hexid.upper(), dashed, "{" + dashed + "}", "urn:uuid:" + dashed):
        assert legacy_session_from_url(f"/messages/?session_id={spelling}") == hexid
    assert legacy_session_from_url(f"/m?session_id={hexid}&session_id={dashed}") == hexid
    with pytest.raises(AmbiguousSession):
        legacy_session_from_url(f"/m?session_id=own&session_id={hexid}")
    with pytest.raises(AmbiguousSession):
        legacy_session_from_url(f"/m?sessionId=own&session_id={hexid}")
    with pytest.raises(AmbiguousSession):
        legacy_session_from_url(f"/sse?sessionid=own&sessionId={hexid}")
    # a percent-escaped name is the same parameter to the server
    assert legacy_session_from_url(f"/messages/?%73ession_id={dashed}") == hexid
    # and so is an array name to Express's query parser (sessionId[]=…, sessionId[0]=…)
    for name in ("sessionId[]", "sessionId[0]", "sessionId%5B%5D", "session_id[]"):
        assert legacy_session_from_url(f"/message?{name}={hexid}") == hexid
    with pytest.raises(AmbiguousSession):
        legacy_session_from_url(f"/message?sessionId=own&sessionId[]={hexid}")
    assert legacy_session_from_url(f"/message?sessionIdx={hexid}") is None


def test_nesting_limit_is_exact_and_cheap_for_wide_documents():
    # 512 levels pass, 513 are refused (the documented limit), whatever lies inside strings
    ok = b"[" * parse.MAX_DEPTH + b"]" * parse.MAX_DEPTH
    assert parse.decode_json(ok) is not None
    deep = b"[" * (parse.MAX_DEPTH + 1) + b"]" * (parse.MAX_DEPTH + 1)
    with pytest.raises(parse.ParseError, match="nested deeper than 512"):
        parse.decode_json(deep)
    # brackets inside strings and thousands of sibling objects are not nesting
    wide = orjson.dumps({"rows": [{"a": [1]} for _ in range(5000)], "text": "[{" * 5000})
    assert parse.decode_json(wide)["rows"][0] == {"a": [1]}
    # too deep behind more siblings than the first, budgeted walk visits: still refused
    pad = b'"' + b"x" * parse._COUNT_MAX + b'"'  # large enough to be walked first
    hidden = b'{"p":' + pad + b',"rows":[' + b",".join([b"{}"] * 1000) + b'],"x":' + deep + b"}"
    with pytest.raises(parse.ParseError, match="nested deeper than 512"):
        parse.decode_json(hidden)
    # a small body with more containers than its small walk budget, the deep part last
    small = b'{"x":' + deep + b',"rows":[' + b",".join([b"{}"] * 40) + b"]}"
    assert len(small) < parse._COUNT_MAX
    with pytest.raises(parse.ParseError, match="nested deeper than 512"):
        parse.decode_json(small)
    assert parse._depth_over([[[]]], budget=2) is None  # out of budget: no answer
    assert parse._depth_over([[[]]], limit=2, budget=2) is True


def test_peek_id_reads_the_id_of_a_message_too_large_to_parse():
    assert parse.peek_id(b'{"jsonrpc":"2.0","id":42,"result":{"text":"aaaa') == 42
    assert parse.peek_id(b'{"jsonrpc":"2.0", "id" : "a\\"b", "method":"x"') == 'a"b'
    assert parse.peek_id(b'{"jsonrpc":"2.0","method":"x","params":{"te') is None


def test_outer_id_is_the_message_s_own_id_not_one_inside_it():
    # written last, as the TypeScript SDK writes its answers (then an event's line breaks)
    assert parse.outer_id(b'{"result":{"id":1,"t":"aaaa"},"jsonrpc":"2.0","id":7}\r\n') == 7
    assert parse.trailing_id(b'{"result":{},"id":"a\\"b"}') == 'a"b'
    # first, before its result
    assert parse.outer_id(b'{"jsonrpc":"2.0","id":42,"result":{"text":"aaaa') == 42
    # only inside its params or result: none of its own
    assert parse.outer_id(b'{"jsonrpc":"2.0","result":{"id":3,"text":"aaaa') is None
    assert parse.outer_id(b'{"jsonrpc":"2.0","method":"x","params":{"id":3,"t') is None
    assert parse.trailing_id(b'{"result":{"id":3}}') is None
    assert parse.is_request_head(b'{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"')
    assert not parse.is_request_head(b'{"jsonrpc":"2.0","id":1,"result":{"method":"x"')


@pytest.mark.parametrize(
    "body, ok",
    [
        (b'{"a":1}', True),
        (b"[1]", True),
        (b" \t\r\n" * 1000 + b'{"jsonrpc":"2.0"}', True),  # any amount of JSON whitespace
        (b"\n" * 70 + b"[", True),
        (b'\xef\xbb\xbf  {"a":1}', True),
        (b"", False),
        (b"   ", False),
        (b"hello {", False),
        (b"\x0b{", False),  # not JSON whitespace
    ],
)
def test_looks_like_json(body, ok):
    assert looks_like_json(body) is ok


@pytest.mark.parametrize(
    "literal", [b"18446744073709551616", b"-9223372036854775809", b"1234567890123456789012345"]
)
@pytest.mark.parametrize("pad", [0, 5000])  # (a large body is searched with Hyperscan)
def test_integers_beyond_64_bits_survive_a_rewrite(literal, pad):
    # orjson reads them as floats: a redaction elsewhere in the message changed the number
    text = b'"' + b"7" * 18 + b" x" * (pad // 2) + b'"'  # 18 digits, no run of 19
    body = b'{"jsonrpc":"2.0","id":1,"params":{"n":' + literal + b',"t":' + text + b"}}"
    assert encode_json(decode_json(body)) == body


def test_the_digit_run_search_agrees_with_the_plain_one(monkeypatch):
    from mcp_gateway import parse

    samples = [b"x" * 3000 + b"1" * 19, b"x" * 3000 + b"1" * 18 + b"x" + b"1" * 18, b"9" * 4000]
    fast = [parse._has_big_int(b) for b in samples]
    monkeypatch.setattr(parse, "_digit_run", False)  # as without Hyperscan
    assert fast == [parse._has_big_int(b) for b in samples] == [True, False, True]


def test_a_long_uri_is_normalised_but_not_cached():
    from mcp_gateway import parse

    parse.served_uri.cache_clear()
    assert parse.served_uri_of("FILE:///srv/a") == "file:///srv/a"
    assert parse.served_uri_of("FILE:///" + "a" * 5000) == "file:///" + "a" * 5000
    assert parse.served_uri.cache_info().currsize == 1
    assert parse.served_uri_of("FILE:///" + "a" * parse.URI_NORMALISED_MAX) is None


def test_json_with_too_many_containers_is_not_inspected_and_costs_little():
    # 16 MB of [[],[],…] (5.6 million lists) held the event loop 3-4 s before authentication:
    # orjson built them all and the depth check walked them in Python
    many = b"[" + b",".join([b"[]"] * (parse.MAX_CONTAINERS + 1)) + b"]"
    with pytest.raises(parse.Uninspectable, match="objects and arrays"):
        parse.decode_json(many)
    # brackets inside strings are no containers, and a wide document under the cap passes
    text = orjson.dumps({"t": "[{" * parse.MAX_CONTAINERS, "rows": [[] for _ in range(1000)]})
    assert len(parse.decode_json(text)["rows"]) == 1000
    # the budgeted walk counts containers as it meets them: one huge list is not walked whole
    assert parse._depth_over([[] for _ in range(100)], budget=10) is None


def test_the_container_count_stays_linear_on_escaped_quotes():
    # past 200,000 brackets strings are cut out before counting: a string left open, made of
    # escaped quotes, restarted a failing match at each one (280 KB: ~10 s before)
    body = b'{"jsonrpc":"2.0","method":"tools/call","params":' + b"[" * 200_001
    body += b'"' + b'\\"' * 40_000
    t = time.perf_counter()
    with pytest.raises(parse.ParseError):
        parse.decode_json(body)
    assert time.perf_counter() - t < 2.0  # (quadratic: ~10 s)


def test_the_container_count_outside_strings_is_exact():
    import random

    rnd = random.Random(5)

    def val(d=0):
        r = rnd.random()
        if d > 6 or r < 0.3:
            return rnd.choice(['a"[{\\', "[", "{x}", '\\"[', "", 1, None])
        if r < 0.65:
            return [val(d + 1) for _ in range(rnd.randint(0, 4))]
        return {f'k{i}["\\': val(d + 1) for i in range(rnd.randint(0, 4))}

    for _ in range(300):
        v = [val() for _ in range(3)]
        bare = parse._JSON_STRING.sub(b"", orjson.dumps(v))
        n, stack = 0, [v]
        while stack:
            x = stack.pop()
            if isinstance(x, dict | list):
                n += 1
                stack.extend(x.values() if isinstance(x, dict) else x)
        assert bare.count(b"[") + bare.count(b"{") == n


def test_a_servers_answer_may_hold_a_larger_table_than_a_request():
    # a tool's result may be a big table: 250,000 rows of [id, name]
    rows = b",".join(b'[%d,"n"]' % i for i in range(250_000))
    body = b'{"jsonrpc":"2.0","id":1,"result":{"rows":[' + rows + b"]}}"
    with pytest.raises(parse.Uninspectable, match="more than 200000"):
        parse.decode_json(body)  # a request: not inspected
    assert len(parse.decode_json(body, lenient_utf8=True)["result"]["rows"]) == 250_000
    many = b"[" + b",".join([b"[]"] * (parse.MAX_ANSWER_CONTAINERS + 1)) + b"]"
    with pytest.raises(parse.Uninspectable, match="more than 1000000"):
        parse.decode_json(many, lenient_utf8=True)


@pytest.mark.parametrize(
    "obj,hit",
    [
        ({"jsonrpc": "2.0", "id": 1, "Method": "tools/call"}, ("Method", "method")),
        ({"jsonrpc": "2.0", "ID": 1, "method": "x"}, ("ID", "id")),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "param\u017f": {}}, ("param\u017f", "params")),
        ({"jsonrpc": "2.0", "id": 1, "resul\u0074": {}, "Result": {}}, ("Result", "result")),
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "a", "NAME": "b"},
            },
            ("NAME", "name"),
        ),
        (
            {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"Uri": "file:///x"}},
            ("Uri", "uri"),
        ),
        # Go folds the Kelvin sign to k and the long s to s
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "x",
                "params": {"_meta": {"progre\u017fsTo\u212aen": 1}},
            },
            ("progre\u017fsTo\u212aen", "progressToken"),
        ),
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "completion/complete",
                "params": {"ref": {"Name": "p"}},
            },
            ("Name", "name"),
        ),
        # what every client sends, and members the gateway does not decide on
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "a", "arguments": {"Name": "x", "name": "y"}},
            },
            None,
        ),
        (
            {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"Foo": 1, "foo": 2}, "extra": 1},
            None,
        ),
        ({"jsonrpc": "2.0", "id": 1, "result": {"Content": [], "content": []}}, None),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1, 2]}, None),
        ([{"Method": "x"}], None),  # (a batch: each element is looked at on its own)
    ],
)
def test_members_that_differ_from_protocol_members_only_in_case(obj, hit):
    assert case_variant(obj) == hit


def test_a_case_variant_message_is_read_as_go_reads_it_and_refused():
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"rm"}}'
    (m,) = parse_body(body, Direction.CLIENT_TO_SERVER, ex()).messages
    # Go's encoding/json assigns every member that folds to "name", in order: the last wins
    assert (m.kind, m.method, m.name, m.id) == (Kind.REQUEST, "tools/call", "rm", 1)
    assert m.stopped and m.refusal.code == ErrorCode.INVALID_REQUEST
    assert m.refusal.http_status == 400
    assert "'Name' differs from 'name' only in case" in m.refusal.message
    assert m.payload == orjson.loads(body)  # scanned as it came
    # a message that names its method only in another case is MCP to that reader
    body = b'{"jsonrpc":"2.0","ID":3,"METHOD":"tools/call","params":{"name":"rm"}}'
    assert is_mcp_payload(orjson.loads(body))
    (m,) = parse_body(body, Direction.CLIENT_TO_SERVER, ex()).messages
    assert (m.kind, m.method, m.name, m.id, m.stopped) == (
        Kind.REQUEST,
        "tools/call",
        "rm",
        3,
        True,
    )
    # a batch: the element is refused, its siblings are read as they are
    body = b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"Method":"ping"}]'
    a, b = parse_body(body, Direction.CLIENT_TO_SERVER, ex()).messages
    assert not a.stopped and b.stopped and b.batch_index == 1


@pytest.mark.parametrize(
    "data, named",
    [
        (b'{"jsonrpc":"2.0"}', True),
        (b'{"\\u006asonrpc":"2.0"}', True),  # (an escape may spell it)
        (b'{"JSONRPC":"2.0"}', True),  # mcp-go reads member names in any case
        ('{"J\u017fONRPC":"2.0"}'.encode(), True),  # and "s" as the long s
        (bytearray(b'{"JsonRpc":"2.0"}'), True),
        (b'{"price": 1}', False),
        (b'{"json_rpc": "2.0"}', False),
    ],
)
def test_may_name_jsonrpc(data, named):
    assert may_name_jsonrpc(data) is named


def test_repeats_members_tells_a_member_named_twice():
    from mcp_gateway.parse import decode_json, repeats_members

    for body, repeated in [
        (b'{"a":1,"a":2}', True),
        (b'{"a":"x:y","b":2}', False),
        (b'{"a":"x\\u003ay","b":"\\u003A"}', False),
        (b'{"a":"x\\u003ay","a":2}', True),  # (an escaped colon hides no member)
        (b'[{"a":{"b":1,"b":"c:d"}}]', True),
        (b'{"k\\u003a":1,"k:":2}', True),
        (b'{"a":[1,2,{"b":null}]}', False),
        (b"[1,2]", False),
    ]:
        assert repeats_members(body, decode_json(body)) is repeated, body


def test_a_batch_naming_a_member_twice_goes_on_as_parsed():
    """Batch elements are scanned as parsed, each alone: a token in the first copy of a
    member named twice was never read, and went on in the batch's bytes."""
    body = (
        b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
        b'"arguments":{"text":"ghp_secret","text":"safe"}}},'
        b'{"jsonrpc":"2.0","id":2,"method":"ping"}]'
    )
    from mcp_gateway.parse import build_messages, decode_json

    def parsed(b):  # as the adapters build them: with the bytes
        return build_messages(decode_json(b), len(b), Direction.CLIENT_TO_SERVER, ex(), b)

    p = parsed(body)
    assert p.batch and all(m.modified for m in p.messages)
    assert p.messages[0].payload["params"]["arguments"] == {"text": "safe"}
    ok = body.replace(b'"text":"ghp_secret",', b"")
    assert not any(m.modified for m in parsed(ok).messages)


def test_repeats_members_is_not_fooled_by_an_escaped_backslash_before_u003a():
    """``"\\\\u003a"`` in the bytes is a backslash and the text ``u003a``, no colon: counted
    as an escaped colon, a message naming each member once was taken for one naming a member
    twice and re-serialized (a batch, or a message scanned as parsed: a \\u escape of a
    non-ASCII character) instead of going on byte-identical."""
    from mcp_gateway.parse import decode_json, repeats_members

    for body, repeated in [
        (b'{"a": "caf\\u00e9 \\\\u003a regex"}', False),
        (b'[{"t": "C:\\\\u003A"}, {"u": "\\\\\\\\u003a"}]', False),
        (b'{"t": "\\\\\\u003a"}', False),  # (a backslash, then an escaped colon)
        (b'{"t": "\\\\\\u003a", "t": "x"}', True),
        (b'{"t": "\\\\u003a", "t": "x"}', True),
        (b'{"t": "\\u003a\\\\u003a", "t": "x"}', True),
    ]:
        assert repeats_members(body, decode_json(body)) is repeated, body


@pytest.mark.parametrize(
    "obj, bare, want",
    [
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, False, True),
        ({"jsonrpc": "2.0", "id": 1, "method": "x"}, False, True),
        ({"JSONRPC": "2.0", "id": 1, "result": {}}, False, True),  # (as mcp-go reads it)
        ({"id": 1, "method": "tools/call"}, False, True),
        ({"jsonrpc": "1.0", "method": "notifications/initialized"}, False, True),
        # an answer without jsonrpc: the Chrome DevTools Protocol's as well
        ({"id": 1, "result": {}}, True, False),
        ({"jsonrpc": "1.0", "id": 1, "error": {"code": 1}}, True, False),
        # a bare ping or initialize without it: bitcoind's JSON-RPC 1.0 ping too
        ({"jsonrpc": "1.0", "id": "c", "method": "ping", "params": []}, False, False),
        ({"id": 1, "method": "initialize"}, False, False),
        ({"id": 1, "method": "ping"}, True, True),
        ({"id": 1, "method": "Runtime.evaluate"}, True, False),
        ([{"jsonrpc": "2.0", "id": 1, "result": {}}], True, False),
    ],
)
def test_what_makes_a_channel_mcp(obj, bare, want):
    assert marks_mcp(obj, bare) is want
    # (a body: the same for a request; answers never made one)
    if isinstance(obj, dict) and is_mcp_method(obj.get("method")):
        assert is_mcp_payload(obj, bare=bare) is want
        assert is_mcp_payload([{"x": 1}, obj], bare=bare) is want


def test_the_lenient_method_check_is_linear_on_any_body():
    """It runs on every POST body that is no JSON (uploads of any size): a first, backtracking
    pattern took 6 s on 20,000 spaces before a "method" (quadratic)."""
    import time

    from mcp_gateway.parse import lenient_names_mcp_method

    call = b"{method: 'tools/call', params: {name: 'x'}}"
    assert lenient_names_mcp_method(b"// note\n/* c */ # x\n" + call)
    assert lenient_names_mcp_method(b")]}'\n" + call.replace(b"method", b"m\\u0065thod"))
    for body in (
        b" " * 40_000 + b"x method",  # (24 s with a backtracking pattern: quadratic)
        b" \t" * 2_000_000 + b"x method",
        b"// " + b"x" * 5_000_000 + b" method",
        b"/* " + b"x" * 5_000_000 + b" method",
        b"/**/" * 1_000_000 + b"x method",
        b"\n" * 2_000_000 + b"{" + b"method " * 500_000,
    ):
        t = time.perf_counter()
        assert not lenient_names_mcp_method(body)
        assert time.perf_counter() - t < 2.0, body[:8]


@pytest.mark.parametrize(
    ("body", "ident"),
    [
        (b'{"jsonrpc":"2.0","id":7,"params":{"t":"' + b"x" * 100_000, 7),
        (b'\xef\xbb\xbf {"id" : "a\\"b" ,"params":{', 'a"b'),
        (b'{"method":"x","meta":{"id":5,"l":[{"id":6}]},"id":-3,"params":{', -3),
        (b'{"s":"\\"id\\": 4, ","id":9,', 9),
        (b'{"\\u0069d":4,"x":', 4),  # (a member name written with escapes)
        (b'{"id":8.0,"x":', 8),  # (servers answer it as 8)
        (b'{"id":12', None),  # (the number may go on beyond the prefix)
        (b'{"id":null,"x":', None),
        (b'{"id":{"a":1},"x":', None),
        (b'{"id":1,"id":2,', None),
        (b'{"Id":1,"x":', None),
        (b'{"x":"' + b"y" * 70_000 + b'","id":1,', None),  # (beyond the prefix)
        (b'[{"id":1}]', None),
        (b'{"x" 1, "id": 2,', None),
        (b'{"x":[1,2,{"a":"]}"}],"id":5,', 5),
    ],
)
def test_head_id_reads_the_top_level_id_exactly(body, ident):
    from mcp_gateway.parse import head_id

    got = head_id(body)
    assert got == ident and type(got) is type(ident)


def test_top_level_id_prefers_the_id_written_last():
    from mcp_gateway.parse import top_level_id

    assert top_level_id(b'{"id":1,"params":{"t":"' + b"x" * 70_000 + b'"},"id":2}') == 2
    assert top_level_id(b'{"params":{"id":1,"t":"' + b"x" * 70_000 + b'"},"id":"z"}\n') == "z"
    assert top_level_id(b'[{"params":{},"id":1}]') is None


def test_top_level_id_reads_past_the_first_64_kib_within_a_budget() -> None:
    """The 413's id: a top-level id after a large member and not last was null; the whole
    body (in memory already) is read member by member now, strings skipped by ``find``
    (a 20 MB string in milliseconds) and within a budget of brackets, strings and escapes
    (a body of countless small values, or escapes, gives null, as before)."""
    import random
    import time

    from mcp_gateway.parse import _STR_TOKEN, _str_end, top_level_id

    rnd = random.Random(5)
    for _ in range(20_000):  # (the string's end as the regex reads it)
        body = b'"' + bytes(rnd.choice(b'ab\\"x') for _ in range(rnd.randint(0, 12))) + b'"z'
        m = _STR_TOKEN.match(body, 0)
        assert (m.end() if m else -1) == _str_end(body, 0), body
    big = b"y" * (20 << 20)
    t = time.monotonic()
    assert top_level_id(b'{"params":{"id":5,"t":"' + big + b'"},"id":7,"x":1}') == 7
    assert top_level_id(b'{"\\"' + big + b'":1,"id":"k","x":1}') == "k"
    assert top_level_id(b'{"id":1,"t":"' + big + b'","id":2,"x":1}') is None  # a duplicate
    assert top_level_id(b'{"t":"' + b"\\n" * 100_000 + b'","id":7,"x":1}') is None
    assert top_level_id(b'{"t":[' + b"[]," * 100_000 + b'[]],"id":7,"x":1}') is None
    assert time.monotonic() - t < 2


def test_top_level_id_budget_counts_top_level_members() -> None:
    """A body of a million small top-level members (``"a":1,`` repeated, 6 MB; up to 4 x
    16 MB is held for a 413) was walked member by member in Python: 2.5 s of the event loop,
    every other flow waiting, since a member of a scalar spent nothing of the budget. Each
    member spends one now: past the budget, null, as for countless small values inside."""
    from mcp_gateway.parse import HEAD_ID_BUDGET, top_level_id

    n = HEAD_ID_BUDGET + 10
    assert top_level_id(b'{"jsonrpc":"2.0",' + b'"a":1,' * n + b'"id":7,"x":1}') is None
    assert top_level_id(b'{"jsonrpc":"2.0",' + b'"a":"b",' * n + b'"id":7,"x":1}') is None
    # within it, read as before
    few = b'{"jsonrpc":"2.0","t":"' + b"y" * 70_000 + b'",' + b'"a":1,' * 1000
    assert top_level_id(few + b'"id":7,"x":1}') == 7
