import orjson
from mcp_gateway.contentview import MCPContentview
from mitmproxy import contentviews
from mitmproxy.test import tflow, tutils


def test_sse_body_is_split_into_messages_with_decisions():
    f = tflow.tflow(
        resp=tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=b"")
    )
    f.metadata["mcp"] = [
        {
            "direction": "s2c",
            "kind": "result",
            "method": "tools/call",
            "name": "echo",
            "action": "block",
            "refusal": {"code": -32061, "message": "blocked by rule x"},
        }
    ]
    body = b'id: 1\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"error":{"code":-32061,"message":"m"}}\n\n: ping\n\n'
    md = contentviews.Metadata(flow=f, content_type="text/event-stream", http_message=f.response)
    view = MCPContentview()
    assert view.render_priority(body, md) == 2
    text = view.prettify(body, md)
    assert "tools/call echo -> block: blocked by rule x" in text
    assert "## error id=1" in text and '"code": -32061' in text


def test_plain_jsonrpc_without_gateway_metadata():
    f = tflow.tflow()
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "t"}}
    )
    md = contentviews.Metadata(flow=f, content_type="application/json", http_message=f.request)
    view = MCPContentview()
    assert view.render_priority(body, md) > 1  # beats the built-in JSON view
    assert "## request tools/call t id=2" in view.prettify(body, md)
    assert (
        view.render_priority(b"<html>", contentviews.Metadata(flow=f, content_type="text/html")) < 0
    )
