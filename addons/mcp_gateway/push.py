"""Send what a streamed answer's callable holds before the server sends anything.

mitmproxy sends a streamed answer's headers after the ``responseheaders`` hook and its body
only as the server's bytes arrive, each chunk through ``response.stream``. A refusal put in
place of an event stream (``Gateway._refuse_stream``) waited so for the server's first bytes:
a server that opens a stream and stays silent kept the client waiting for the refusal's body
(its headers came at once, with a ``Content-Length``), for as long as the server said
nothing. ``push`` hands the stream's callable an empty chunk of data at once, as if the
server had sent one, so what it returns goes to the client now.

Uses mitmproxy internals (the connection handler, the HTTP layer's streams and states),
guarded: when any of them is not as expected, nothing is pushed and the body goes with the
server's first bytes, as before. Pinned to mitmproxy < 13 (pyproject.toml).
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http
from mitmproxy.proxy import events

log = logging.getLogger(__name__)

try:  # (internals: a missing one leaves push a no-op)
    from mitmproxy.proxy.layers.http import HttpLayer, HttpStream
    from mitmproxy.proxy.layers.http._events import ResponseData
    from mitmproxy.proxy.layers.http._http1 import Http1Connection
except ImportError:  # pragma: no cover
    HttpLayer = HttpStream = ResponseData = Http1Connection = None  # type: ignore[assignment,misc]

_TRIES = 200  # x 10 ms: the stream state is reached within a hook round trip
_TASKS: set[asyncio.Task] = set()  # (kept referenced until done)

if ResponseData is not None:

    class _Nudge(events.MessageInjected, ResponseData):  # type: ignore[misc,valid-type]
        """An empty chunk of answer data, routed by the HTTP layer to the flow's stream
        (as an injected message is) and read there as the server's data."""

        def __init__(self, flow: http.HTTPFlow, stream_id: int) -> None:
            self.flow = flow
            self.message = None
            self.stream_id = stream_id
            self.data = b""


def _handler(flow: http.HTTPFlow):
    ps = ctx.master.addons.get("proxyserver")
    conns = getattr(ps, "connections", None) if ps else None
    return conns.get(flow.client_conn.id) if conns else None


def _http_layer(handler):
    layer = getattr(handler, "layer", None)
    for _ in range(32):  # (a stack: proxy mode, TLS, next layers; bounded)
        if layer is None or isinstance(layer, HttpLayer):
            return layer
        layer = getattr(layer, "layer", None) or getattr(layer, "child_layer", None)
    return None


def _stream(layer, flow: http.HTTPFlow):
    """The flow's HTTP stream, found as the HTTP layer finds an injected message's."""
    conn = layer.connections.get(flow.server_conn) or layer.connections.get(flow.client_conn)
    if conn is None:
        return None
    if isinstance(conn, HttpStream):
        sid = conn.stream_id
    else:
        last = conn.context.layers[-1] if conn.context.layers else None
        if not isinstance(last, Http1Connection) or not last.stream_id:
            return None  # (an HTTP/2 upstream: the HTTP layer cannot route it so)
        sid = last.stream_id
    stream = layer.streams.get(sid)
    return stream if stream is not None and stream.flow is flow else None


async def _push(flow: http.HTTPFlow) -> None:
    for _ in range(_TRIES):
        if not flow.live or flow.error is not None:
            return
        handler = _handler(flow)
        layer = _http_layer(handler) if handler is not None else None
        stream = _stream(layer, flow) if layer is not None else None
        if stream is None:
            return
        lock = getattr(handler, "_server_event_lock", None)
        state = getattr(stream.server_state, "__func__", None)
        if state is HttpStream.state_stream_response_body and lock is not None:
            if not lock.locked():  # (acquired with no await in between: the state holds)
                await handler.server_event(_Nudge(flow, stream.stream_id))
                return
        elif state is not HttpStream.state_wait_for_response_headers:
            return  # done, errored, or no stream: nothing to push
        await asyncio.sleep(0.01)


def push(flow: http.HTTPFlow) -> None:
    """Soon hand ``flow.response.stream`` an empty chunk (see the module's docstring)."""
    if ResponseData is None:
        return
    try:
        task = asyncio.get_running_loop().create_task(_push(flow))
    except RuntimeError:  # no loop (unit tests calling the hooks directly)
        return
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
