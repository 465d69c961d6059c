"""The gateway's answer to a server request it stopped, sent to the server over HTTP.

A server request (sampling, elicitation, roots) reaches the client in an SSE event. When the
pipeline blocks one, the client must not see it, and the server must not wait for an answer
that will never come: the Python SDK's server waits without a timeout, so the tool call
that asked would hang. So the event is dropped, and the server gets the JSON-RPC error the
way it gets any client answer: a POST of the response to the MCP endpoint (streamable HTTP)
or to the ``endpoint`` the legacy HTTP+SSE stream announced.

The POST is a new flow handed to mitmproxy's client replay (``replay.client``), which sends
it on its own connection with the stream's request headers (the session id, the protocol
version, the client's credentials as the server received them, its Host or HTTP/2
authority). The gateway's hooks let it through uninspected (it is known by identity, in
memory: a marker saved with the flow would let a replayed file skip them): its only content
is the gateway's own error. Once sent, an upstream credential the identity addon injected is
masked in it as in the stream's own flow, and a failed answer is logged. (Over WebSocket the
error is injected on the socket instead: see ws.py.)
"""

from __future__ import annotations

import logging
import re
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from mitmproxy import connection, ctx, http
from mitmproxy.net.http.url import unparse as url_unparse
from mitmproxy.proxy import mode_specs

from .parse import encode_json

log = logging.getLogger(__name__)

# Request headers not carried over: the body's framing, coding and signatures, the stream's
# own negotiation and resumption, the tools/call's mirrored parameters and per-request keys,
# hop-by-hop headers.
_NOT_COPIED = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "content-digest",
        "content-md5",
        "digest",
        "signature",
        "signature-input",
        "transfer-encoding",
        "accept",
        "accept-encoding",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "idempotency-key",
        "x-request-id",
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


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A stream's request as it went upstream, taken when the stream is set up: the identity
    addon masks an injected upstream credential in the flow right after (the header fields
    are an immutable tuple: free to keep)."""

    fields: tuple[tuple[bytes, bytes], ...]
    scheme: str
    host: str
    port: int
    path: str
    http_version: str
    authority: str

    @classmethod
    def of(cls, flow: http.HTTPFlow) -> SentRequest:
        # the URL's parts as they are (``Request.url`` builds a string: ~15 us on every
        # stream's first event, for an answer that is rarely sent)
        r = flow.request
        return cls(r.headers.fields, r.scheme, r.host, r.port, r.path, r.http_version, r.authority)

    @property
    def url(self) -> str:
        return url_unparse(self.scheme, self.host, self.port, self.path)


@dataclass(slots=True)
class _Pending:
    stream_id: str
    headers: dict[bytes, bytes]  # lowercased name -> the value to show once sent
    query: dict[str, str]  # parameter -> the value to show once sent
    # the flow whose headers the answer copied, and them as copied: what the identity addon
    # masks in it later (a client POST the gateway answered itself is masked once answered,
    # after its answers to the server were made) is masked in the answer too, once sent
    source: http.HTTPFlow | None = None
    sent: SentRequest | None = None


# The gateway's answers on their way: known by identity, never by a marker in the flow.
_PENDING: weakref.WeakKeyDictionary[http.HTTPFlow, _Pending] = weakref.WeakKeyDictionary()


def is_answer(flow: Any) -> bool:
    """Whether ``flow`` is an answer the gateway itself sends to a server."""
    try:
        return flow in _PENDING
    except TypeError:
        return False


def answer_flow(
    stream_flow: http.HTTPFlow, url: str, answers: list[dict], sent: SentRequest
) -> http.HTTPFlow:
    """A flow that POSTs ``answers`` (one JSON-RPC response, or a batch) to ``url``, with the
    stream request's headers as they were sent, its Host (or HTTP/2 authority)."""
    body = encode_json(answers[0] if len(answers) == 1 else answers)
    fields = [
        (k, v)
        for k, v in sent.fields
        if (n := k.decode("latin-1").lower()) not in _NOT_COPIED and not n.startswith("mcp-param-")
    ]
    headers = http.Headers(fields)
    headers["content-type"] = "application/json"
    headers["accept"] = "application/json, text/event-stream"
    req = http.Request.make("POST", url, body, headers)
    host = next((v for k, v in sent.fields if k.lower() == b"host"), None)
    if host is not None:  # the URL set the Host from the address, which may be an IP
        req.headers["host"] = host.decode("latin-1")
    if sent.http_version in ("HTTP/2.0", "HTTP/3"):
        req.http_version, req.authority = sent.http_version, sent.authority
    f = http.HTTPFlow(stream_flow.client_conn, connection.Server(address=(req.host, req.port)))
    f.request = req
    return f


def endpoint_parts(uri: str) -> SplitResult:
    """A legacy ``endpoint`` URI as clients resolve it: ASCII tabs and line breaks dropped
    (a WHATWG URL parser and Python's ``urlsplit`` drop them), and backslashes before its
    query read as slashes (a WHATWG parser, Node's ``new URL``, does so for http and https):
    ``//host/path``, ``\\\\host/path`` and ``/\\host/path`` name a host as ``http://host/path``
    does."""
    u = re.sub(r"[\t\r\n]", "", uri)
    cut = min((i for i in (u.find("?"), u.find("#")) if i >= 0), default=len(u))
    return urlsplit(u[:cut].replace("\\", "/") + u[cut:])


def relative_endpoint(uri: str) -> str | None:
    """The path and query of an endpoint URI that names a host (with or without a scheme), as
    a reverse gateway hands it to its clients; None for a relative one."""
    parts = endpoint_parts(uri)
    if not (parts.scheme or parts.netloc):
        return None
    path = parts.path or "/"
    if path.startswith("//"):  # (as written, //host/… would name another host)
        path = "/." + path
    return urlunsplit(("", "", path, parts.query, ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _masked(sent: SentRequest, now: http.Request) -> tuple[dict[bytes, bytes], dict[str, str]]:
    """What the identity addon masked in the stream's flow since it was sent: header values
    and query parameters (an injected upstream credential), with their placeholders."""
    was = {k.lower(): v for k, v in sent.fields}
    headers = {k.lower(): v for k, v in now.headers.fields if was.get(k.lower(), v) != v}
    before = dict(parse_qsl(urlsplit(sent.url).query, keep_blank_values=True))
    query = {k: v for k, v in now.query.items() if k in before and before[k] != v}
    return headers, query


def send_to_server(
    stream_flow: http.HTTPFlow,
    endpoint: str | None,
    answers: list[dict],
    sent: SentRequest | None = None,
) -> bool:
    """POST ``answers`` to the server of ``stream_flow``: to its URL, or to ``endpoint``
    (a legacy HTTP+SSE stream's announced URI, resolved against it; only on the stream's own
    origin). False when it cannot be sent (no client replay in this mitmproxy, another
    origin): the caller falls back."""
    try:
        if sent is None:
            sent = SentRequest.of(stream_flow)
        headers, query = _masked(sent, stream_flow.request)
        url = sent.url
        if endpoint:
            relative = relative_endpoint(endpoint)
            if relative is not None and isinstance(
                stream_flow.client_conn.proxy_mode, mode_specs.ReverseMode
            ):
                # as the client was told: the path on the reverse target
                endpoint = relative
            url = urljoin(sent.url, endpoint)
            if _origin(url) != _origin(sent.url):
                # the client's credentials go only where the stream came from (the SDKs
                # refuse a cross-origin endpoint too)
                raise ValueError(f"endpoint {endpoint!r} is not on the stream's origin")
            if query:  # an upstream credential the identity addon put in the stream's query
                before = dict(parse_qsl(urlsplit(sent.url).query, keep_blank_values=True))
                u = urlsplit(url)
                q = parse_qsl(u.query, keep_blank_values=True)
                q += [(k, before[k]) for k in query if k not in dict(q)]
                url = urlunsplit((u.scheme, u.netloc, u.path, urlencode(q), u.fragment))
        f = answer_flow(stream_flow, url, answers, sent)
        _PENDING[f] = _Pending(stream_flow.id, headers, query, stream_flow, sent)
        ctx.master.commands.call("replay.client", [f])
    except Exception as e:  # noqa: BLE001 - the caller falls back to the client
        log.warning(
            "mcp-gateway: cannot send the answer to the server's request to %s: %r",
            stream_flow.request.pretty_url,
            e,
        )
        return False
    log.info(
        "mcp-gateway: answering %d server request(s) on flow %s with the gateway's refusal",
        len(answers),
        stream_flow.id,
    )
    return True


def after_send(flow: http.HTTPFlow) -> None:
    """The answer has gone upstream (response headers or an error are in): show the
    placeholders of what the identity addon masked in the stream, and log a failure (the
    server then still waits)."""
    try:
        _after_send(flow)
    except Exception:  # noqa: BLE001 - a hook must not fail
        log.exception("mcp-gateway: after sending the answer on flow %s", flow.id)


def _after_send(flow: http.HTTPFlow) -> None:
    p = _PENDING.pop(flow, None)
    if p is None:
        return
    if p.source is not None and p.sent is not None:
        later_headers, later_query = _masked(p.sent, p.source.request)
        p.headers = {**later_headers, **p.headers}
        p.query = {**later_query, **p.query}
    req = flow.request
    if p.headers:
        req.headers.fields = tuple((k, p.headers.get(k.lower(), v)) for k, v in req.headers.fields)
    for k, v in p.query.items():
        if k in req.query:
            req.query[k] = v
    if p.headers or p.query:
        # client replay kept a copy of the flow from before it was sent (for mitmweb's
        # "revert"), which a saved flow would carry: it holds the credential
        flow._backup = None
    resp = flow.response
    if flow.error is not None or resp is None or resp.status_code >= 400:
        why = (
            flow.error.msg
            if flow.error is not None
            else f"HTTP {resp.status_code}"
            if resp
            else "no response"
        )
        log.warning(
            "mcp-gateway: the server did not take the gateway's answer to its request on "
            "flow %s (%s): it may still be waiting",
            p.stream_id,
            why,
        )
