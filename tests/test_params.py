"""Mcp-Param-* headers (2026-07-28) follow the body the pipeline rewrote, or the request is refused."""

import base64
import sys
from pathlib import Path

import orjson
import pytest
from mcp_gateway import params
from mcp_gateway.act import ActStage
from mcp_gateway.headers import header_map
from mcp_gateway.message import Direction, Exchange, Kind, Message
from mcp_gateway.parse import decode_header_value
from mcp_gateway.pipeline import Pipeline
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.stage import ScanStage
from mitmproxy.test import tflow, tutils

sys.path.insert(0, str(Path(__file__).parent / "scan"))
from scan_helpers import github_token  # noqa: E402


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline([ScanStage(Engine.load()), ActStage(b"k"), params.ParamHeaderStage()])


def call(pipeline, arguments, headers):
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call"}
    body["params"] = {"name": "tagged", "arguments": arguments}
    hdrs = [(b"content-type", b"application/json"), (b"mcp-protocol-version", b"2026-07-28")]
    hdrs += [(k.encode(), v.encode()) for k, v in headers.items()]
    f = tflow.tflow(
        req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=orjson.dumps(body))
    )
    h = header_map(f.request.headers)
    ex = Exchange(flow_id=f.id, server="s:1", request_headers=h, flow=f)
    m = Message(body, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=3, method="tools/call")
    m.name = "tagged"
    params.snapshot(h, False, [m])
    pipeline.run(m)
    return m, f.request.headers


def test_header_mirroring_a_redacted_argument_carries_the_redacted_value(pipeline):
    tok = github_token()
    m, headers = call(pipeline, {"region": f"{tok}:y", "n": 1}, {"Mcp-Param-Region": f"{tok}:y"})
    assert not m.stopped and m.modified
    assert m.payload["params"]["arguments"]["region"] == "[REDACTED:github_token]:y"
    assert headers["Mcp-Param-Region"] == "[REDACTED:github_token]:y"  # what the server checks
    assert [f.location for f in m.findings] == [
        "/params/arguments/region",
        "header:mcp-param-region",
    ]


def test_nested_and_base64_encoded_headers_follow_too(pipeline):
    tok = github_token(seed=5)
    value = f"clé {tok}"
    enc = "=?base64?" + base64.b64encode(value.encode()).decode() + "?="
    m, headers = call(pipeline, {"cfg": {"owner": value}, "other": "x"}, {"Mcp-Param-Owner": enc})
    assert not m.stopped
    assert decode_header_value(headers["Mcp-Param-Owner"]) == "clé [REDACTED:github_token]"
    assert headers["Mcp-Param-Owner"].startswith("=?base64?")  # still not plain ASCII


def test_a_secret_only_in_a_header_refuses_the_request(pipeline):
    tok = github_token(seed=7)
    m, headers = call(pipeline, {"region": "eu"}, {"Mcp-Param-Region": tok})
    assert m.stopped and "in header mcp-param-region" in m.refusal.message
    assert tok not in m.refusal.message


@pytest.mark.parametrize("arguments", [["a", "list"], None], ids=["list", "missing"])
def test_a_header_secret_refuses_whatever_the_arguments_are(pipeline, arguments):
    """Without an object of arguments nothing is rewritten: any header finding refuses."""
    tok = github_token(seed=9)
    m, _ = call(pipeline, arguments, {"Mcp-Param-Q": tok})
    assert m.stopped and "in header mcp-param-q" in m.refusal.message


def test_every_copy_of_a_repeated_header_and_a_malformed_encoding_is_scanned(pipeline):
    tok = github_token(seed=11)
    m, _ = call(pipeline, {"q": "x"}, {"Mcp-Param-Q": "x", "mcp-param-q": tok})
    assert m.stopped
    bad = "=?base64?" + tok + "?="  # not valid base64: the receiver gets these bytes
    m, _ = call(pipeline, {"q": "x"}, {"Mcp-Param-R": bad})
    assert m.stopped


def test_untouched_bodies_leave_the_headers_alone(pipeline):
    m, headers = call(pipeline, {"region": "eu-west-1"}, {"Mcp-Param-Region": "eu-west-1"})
    assert not m.stopped and not m.modified and headers["Mcp-Param-Region"] == "eu-west-1"
    assert params.SNAPSHOT_KEY not in m.exchange.scratch  # nothing kept after the message


def test_mcp_name_follows_a_redacted_resource_uri_and_the_audited_name_is_masked():
    """A token in a resource URI's query: the body is redacted, Mcp-Name (which mirrors the
    URI) follows it, and the name the message (and its response) carries for the audit is
    masked like the finding."""
    from mcp_gateway.correlate import CorrelateStage

    corr = CorrelateStage()
    p = Pipeline([corr, ScanStage(Engine.load()), ActStage(b"k"), params.ParamHeaderStage()])
    tok = github_token(seed=9)
    uri = f"https://api.example.com/repo?access_token={tok}"
    body = {"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": uri}}
    hdrs = [
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"resources/read"),
        (b"mcp-name", uri.encode()),
    ]
    f = tflow.tflow(
        req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=orjson.dumps(body))
    )
    ex = Exchange(flow_id=f.id, server="s:1", request_headers=header_map(f.request.headers), flow=f)
    m = Message(body, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=4, method="resources/read")
    m.name = uri
    p.run(m)
    redacted = "https://api.example.com/repo?access_token=[REDACTED:github_token]"
    assert m.payload["params"]["uri"] == redacted
    assert decode_header_value(f.request.headers["mcp-name"]) == redacted
    assert tok not in m.name and m.name.startswith("https://api.example.com/repo?access_token=ghp_")
    res = Message(
        {"jsonrpc": "2.0", "id": 4, "result": {"contents": []}},
        Direction.SERVER_TO_CLIENT, Kind.RESULT, ex, id=4,
    )  # fmt: skip
    p.run(res)
    assert res.method == "resources/read" and res.name == m.name


@pytest.mark.parametrize("mangle", ["spaces", "dots", "urlsafe"])
def test_a_malformed_base64_header_is_read_as_lenient_decoders_read_it(pipeline, mangle):
    # Node's Buffer.from(x, "base64") and Python's b64decode without validate skip what is
    # not base64: a token in such a mirrored header reached the server while the body's copy
    # was redacted (the gateway scanned the malformed value only as it is)
    tok = github_token(seed=13)
    b64 = base64.b64encode(f"owner {tok}".encode()).decode()
    body = {
        "spaces": " ".join(b64[i : i + 8] for i in range(0, len(b64), 8)),
        "dots": b64[:12] + "." + b64[12:],
        "urlsafe": base64.urlsafe_b64encode(f"owner {tok}".encode()).decode().rstrip("="),
    }[mangle]
    m, headers = call(
        pipeline, {"owner": f"owner {tok}"}, {"Mcp-Param-Owner": f"=?base64?{body}?="}
    )
    assert m.stopped  # the header could not be rewritten: the request is refused
    assert tok not in (m.refusal.message or "")
