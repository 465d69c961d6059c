"""What the gateway attaches to a flow for other addons and for its own later hooks.

``flow.metadata["mcp"]`` holds a plain-data summary of each of the flow's messages (direction,
kind, id, method, name, action, latency, refusal, findings), at most ``MAX_SUMMARIES`` of
them; the hooks that answer for a request read its id back from there.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from .message import Exchange, Message

META = "mcp"  # flow.metadata key: plain-data summaries of the flow's messages
MAX_SUMMARIES = 1000  # per flow; further messages are only counted in flow.metadata["mcp_more"]


def summary(m: Message) -> dict[str, Any]:
    """A message as plain data, as other addons read it in ``flow.metadata["mcp"]``."""
    d: dict[str, Any] = {
        "direction": m.direction.value,
        "kind": m.kind.value,
        "id": m.id if isinstance(m.id, str | int | float) else None,
        "method": m.method,
        "name": m.name,
        "action": m.action.value,
    }
    if m.latency_ms is not None:
        d["latency_ms"] = m.latency_ms
    if m.refusal is not None:
        d["refusal"] = {"code": m.refusal.code, "message": m.refusal.message}
    if m.findings:
        d["findings"] = [
            {"rule": f.rule, "type": f.type, "action": f.action, "location": f.location}
            for f in m.findings
        ]
    if not m.inspected:
        d["inspected"] = False
    return d


def request_ids(flow: http.HTTPFlow) -> list:
    """The ids of the requests the client sent in this flow (a batch's: several)."""
    return [
        s.get("id")
        for s in flow.metadata.get(META, ())
        if s.get("direction") == "c2s" and s.get("kind") == "request"
    ]


def request_id(flow: http.HTTPFlow) -> Any:
    ids = request_ids(flow)
    return ids[0] if ids else None


def address_of(x: http.HTTPFlow | Exchange) -> str:
    """The host:port a request goes to, whatever name a client gave the server."""
    if isinstance(x, Exchange):
        return x.address or x.server
    return f"{x.request.host}:{x.request.port}"


def reverse_mode(flow: http.HTTPFlow) -> bool:
    """Whether the flow came in through a reverse-mode listener (its upstream is the MCP
    server the gateway stands in front of)."""
    return type(getattr(flow.client_conn, "proxy_mode", None)).__name__ == "ReverseMode"
