"""The gateway's answer to a server request it stopped, sent to the server over HTTP.

A server request (sampling, elicitation, roots) reaches the client in an SSE event. When the
pipeline blocks one, the client must not see it, and the server must not wait for an answer
that will never come: the Python SDK's server waits without a timeout, so the tool call
that asked would hang. So the event is dropped, and the server gets the JSON-RPC error the
way it gets any client answer: a POST of the response to the MCP endpoint (streamable HTTP)
or to the ``endpoint`` the legacy HTTP+SSE stream announced.

The POST is a new flow handed to mitmproxy's client replay (``replay.client``), which sends
it on its own connection with the stream's request headers (the session id, the protocol
version, the client's credentials as the server received them). It is marked in
``flow.metadata`` so that the gateway's hooks let it through uninspected: its only content
is the gateway's own error. (Over WebSocket the error is injected on the socket instead:
see ws.py.)
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

from mitmproxy import connection, ctx, http

from .parse import encode_json

log = logging.getLogger(__name__)

ANSWER_KEY = "mcp_gateway_answer"  # flow.metadata marker of the gateway's own answers

# Request headers not carried over: the body's framing and coding, the stream's own
# negotiation and resumption, hop-by-hop headers.
_NOT_COPIED = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "accept",
        "accept-encoding",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)


def is_answer(flow: Any) -> bool:
    """Whether ``flow`` is an answer the gateway itself sends to a server."""
    try:
        return bool(flow.metadata.get(ANSWER_KEY))
    except AttributeError:
        return False


def answer_flow(
    stream_flow: http.HTTPFlow,
    url: str,
    answers: list[dict],
    header_fields: tuple[tuple[bytes, bytes], ...] | None = None,
) -> http.HTTPFlow:
    """A flow that POSTs ``answers`` (one JSON-RPC response, or a batch) to ``url``, with the
    stream request's headers (``header_fields``: as they were sent, before the identity
    addon masked an injected upstream credential in the flow)."""
    body = encode_json(answers[0] if len(answers) == 1 else answers)
    if header_fields is None:
        header_fields = stream_flow.request.headers.fields
    fields = [(k, v) for k, v in header_fields if k.decode("latin-1").lower() not in _NOT_COPIED]
    headers = http.Headers(fields)
    headers["content-type"] = "application/json"
    headers["accept"] = "application/json, text/event-stream"
    req = http.Request.make("POST", url, body, headers)
    f = http.HTTPFlow(stream_flow.client_conn, connection.Server(address=(req.host, req.port)))
    f.request = req
    f.metadata[ANSWER_KEY] = True
    return f


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def send_to_server(
    stream_flow: http.HTTPFlow,
    endpoint: str | None,
    answers: list[dict],
    header_fields: tuple[tuple[bytes, bytes], ...] | None = None,
) -> bool:
    """POST ``answers`` to the server of ``stream_flow``: to its URL, or to ``endpoint``
    (a legacy HTTP+SSE stream's announced URI, resolved against it). False when it cannot be
    sent (no client replay in this mitmproxy, a bad URL): the caller falls back."""
    try:
        url = stream_flow.request.url
        if endpoint:
            url = urljoin(url, endpoint)
            if _origin(url) != _origin(stream_flow.request.url):
                # the client's credentials go only where the stream came from (the SDKs
                # refuse a cross-origin endpoint too)
                raise ValueError(f"endpoint {endpoint!r} is not on the stream's origin")
        f = answer_flow(stream_flow, url, answers, header_fields)
        ctx.master.commands.call("replay.client", [f])
    except Exception as e:  # noqa: BLE001 - the caller falls back to the client
        log.warning(
            "mcp-gateway: cannot send the answer to the server's request to %s: %r",
            stream_flow.request.pretty_url,
            e,
        )
        return False
    log.info(
        "mcp-gateway: answered %d server request(s) on flow %s with the gateway's refusal",
        len(answers),
        stream_flow.id,
    )
    return True
