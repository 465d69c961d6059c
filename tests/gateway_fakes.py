"""Helpers shared by the core addon's tests (tests/test_core.py, tests/test_stream.py):
a Gateway with small fake stages, test flows for its hooks."""

import orjson
from mcp_gateway.core import Gateway
from mitmproxy.test import taddons, tflow, tutils
from pipeline_fakes import BlockTool, Recorder, rpc


def post(body, headers=()):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    hdrs = (
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        *headers,
    )
    return tflow.tflow(req=tutils.treq(method=b"POST", path=b"/mcp", headers=hdrs, content=content))


def send(gw, flow):
    gw.requestheaders(flow)
    gw.request(flow)
    return flow


def send_typed(gw, ctype: bytes, content: bytes):
    """A POST to /mcp with this Content-Type only (no MCP headers)."""
    headers = ((b"content-type", ctype),)
    req = tutils.treq(method=b"POST", path=b"/mcp", headers=headers, content=content)
    return send(gw, tflow.tflow(req=req))


# A lone surrogate escape is what JavaScript writes for a string cut in the middle of an
# emoji; JavaScript and Python read it, orjson does not. The gateway must read it too.
CUT_EMOJI = b'"config \\ud83d'


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


SECRET_ANSWER = b'{"jsonrpc":"2.0","id":5,"result":{"t":"SECRET"}}'


def core_gateway():
    """A Gateway under taddons with a Recorder and BlockTool stage (for a ``gw`` fixture)."""
    g = Gateway()
    rec = Recorder()
    g.pipeline.add(rec)
    g.pipeline.add(BlockTool())
    g.rec = rec
    with taddons.context(g) as tctx:
        g.tctx = tctx
        yield g
