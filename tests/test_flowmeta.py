"""What the gateway attaches to a flow (flowmeta.py)."""

from mcp_gateway.flowmeta import META, address_of, request_id, request_ids, summary
from mcp_gateway.message import Direction, Exchange, Kind, Message
from mitmproxy.test import tflow


def test_a_summary_is_plain_data_without_the_payload():
    ex = Exchange(flow_id="f", server="s:1")
    m = Message(
        payload={"params": {"arguments": {"t": "ghp_x"}}},
        direction=Direction.CLIENT_TO_SERVER,
        kind=Kind.REQUEST,
        exchange=ex,
        id=4,
        method="tools/call",
        name="echo",
    )
    d = summary(m)
    assert d["direction"] == "c2s" and d["kind"] == "request" and d["id"] == 4
    assert d["method"] == "tools/call" and d["name"] == "echo"
    assert "ghp_x" not in repr(d)


def test_the_request_ids_are_read_back_from_the_flow():
    f = tflow.tflow()
    assert request_id(f) is None
    f.metadata[META] = [
        {"direction": "c2s", "kind": "request", "id": 1},
        {"direction": "c2s", "kind": "notification", "id": None},
        {"direction": "s2c", "kind": "result", "id": 1},
        {"direction": "c2s", "kind": "request", "id": "b"},
    ]
    assert request_ids(f) == [1, "b"] and request_id(f) == 1


def test_a_server_is_known_by_its_address_not_its_name():
    f = tflow.tflow()
    assert address_of(f) == f"{f.request.host}:{f.request.port}"
    ex = Exchange(flow_id="f", server="named-by-client")
    ex.address = "127.0.0.1:8000"
    assert address_of(ex) == "127.0.0.1:8000"
