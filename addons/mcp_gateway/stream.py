"""The ``flow.response.stream`` callable of an event stream (:class:`SSEStream`).

mitmproxy buffers ``text/event-stream`` unless ``flow.response.stream`` is set, and then hands
the callable each chunk as it arrives, cut anywhere. The callable reassembles events across
chunks, runs each JSON-RPC event through the message pipeline as the core addon runs a JSON
body, and sends each event on as soon as it is inspected: unchanged ones byte-identical,
redacted or blocked ones rewritten in place. It also handles what an event stream adds: the
legacy transport's ``endpoint`` event, events over ``mcp_max_message_bytes`` (answered by the
ids they carry), compressed streams that inflate to floods of events, server requests whose
refusal goes to the server, and a stream that fails (``mcp_fail_mode``).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson
from mitmproxy import ctx, http
from mitmproxy.proxy import mode_specs

from . import answer
from .codec import StreamDecoder, TextDecoder
from .correlate import SSE_EVENT_IDS, note_event_id
from .flowmeta import address_of, request_ids, reverse_mode
from .message import (
    Action,
    Direction,
    ErrorCode,
    Exchange,
    Kind,
    Message,
    Transport,
    error_response,
)
from .outcome import UNCHANGED, rebuild, refusal_error
from .parse import (
    AmbiguousSession,
    ParseError,
    Uninspectable,
    build_messages,
    decode_json,
    encode_json,
    is_request_head,
    legacy_session_from_url,
    looks_like_json,
    marks_mcp,
    may_name_jsonrpc,
    names_mcp_method,
    outer_id,
    peek_id,
    trailing_id,
)
from .sse import SSEEvent, SSEParser, encode_event

if TYPE_CHECKING:
    from .core import Gateway

log = logging.getLogger("mcp_gateway")

_SSE_FIELD = re.compile(rb"(?:data|event|id|retry)(?::|$)")


def _stray_lines(raw: bytes, first: bool = False) -> bool:
    """Whether an event without data holds lines that are no SSE field nor comment (a JSON
    body sent as an event stream): an SSE client ignores them, a careless one reads them.
    The stream's ``first`` event may open with a byte order mark, which is no line's."""
    if first and raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    for line in raw.splitlines():
        if line and not line.startswith(b":") and not _SSE_FIELD.match(line):
            return True
    return False


def _without_stray(ev: SSEEvent) -> SSEEvent:
    """The event written again from the fields SSE clients read (its data, event, id and
    retry), without the lines that are none of them (and without comments)."""
    raw = encode_event(ev.data, event=ev.event, id=ev.id, retry=ev.retry)
    if not ev.complete:
        raw = raw[:-1]  # (a last event cut short stays one: no blank line added)
    return SSEEvent(raw, ev.data_bytes, ev.event, ev.id, ev.retry, [], ev.complete)


def _kept_fields(ev: SSEEvent) -> bytes:
    """What stays of a dropped event: the fields that steer the client's reconnection (its
    id, so resumption still works, and its ``retry:``), or nothing."""
    if ev.id is None and ev.retry is None:
        return b""
    return encode_event(None, id=ev.id, retry=ev.retry)


# Most bytes of an oversized event that came whole (uncompressed, at most one network read;
# a compressed one may inflate to 4 x mcp_max_message_bytes) read for its messages' ids.
_WHOLE_EVENT_READ = 1 << 20


def _plain_id(ident: Any) -> bool:
    """An id echoed to its sender without being scanned: an integer or a short string (as
    ``peek_id`` reads them), not an object or a long text."""
    return (isinstance(ident, int) and not isinstance(ident, bool)) or (
        isinstance(ident, str) and len(ident) <= 200
    )


def _among(ident: Any, ids: list) -> bool:
    """Whether ``ident`` is one of ``ids`` as JSON-RPC compares them (1 is not "1" or 1.0)."""
    return any(type(i) is type(ident) and i == ident for i in ids)


_FIRST_DATA = re.compile(rb"(?:^|[\r\n])data:[ \t]*(?:\xef\xbb\xbf)?([^ \t\r\n])")


def _json_event(pending: bytes) -> bool:
    """Whether an event being read may be JSON: its first data line with content opens
    JSON, or no data line with content came yet (blank data lines, comments and other
    fields before it, however long, do not decide it)."""
    m = _FIRST_DATA.search(pending)
    return m is None or m.group(1) in b"{["


def _id_before_params(raw: bytes) -> bool:
    """Whether a message's first ``"id"`` key comes before its ``"params"``: then it is the
    message's own id, not one inside the params."""
    head = raw[:65536]
    i = head.find(b'"id"')
    if i < 0:
        return False
    p = head.find(b'"params"')
    return p < 0 or i < p


def _oversized_event_id(raw: bytes, flow: http.HTTPFlow) -> Any:
    """The id an error for an event too large to parse must carry. A response on the
    stream answering a POST of one request answers that request, whatever its first bytes
    hold: the TypeScript SDK writes ``{"result": …, "jsonrpc": "2.0", "id": N}``, its id
    last, and an error with a null id would leave the client waiting for ever. Otherwise
    the first ``"id"`` met (best effort)."""
    head = raw[:4096]
    found = [i for i in (head.find(b'"result"'), head.find(b'"error"')) if i >= 0]
    method = head.find(b'"method"')
    if found and (method < 0 or min(found) < method):
        ids = request_ids(flow)
        if len(ids) == 1:
            return ids[0]
    return peek_id(raw)


# Most events a compressed event stream may inflate to within _DECODED_EVENTS_WINDOW
# seconds and still be inspected. The stream callable runs on the event loop, ~40 us per
# event, and mitmproxy calls it for every chunk of a network read in turn: an uncompressed
# read (65,535 bytes) holds at most ~8,200 events, a compressed one as many as its chunks
# inflate to (each up to 4 x mcp_max_message_bytes). Uncompressed streams are not counted
# (the gateway asks upstreams for uncompressed event streams).
_MAX_DECODED_EVENTS = 10_000


_DECODED_EVENTS_WINDOW = 1.0


# After a chunk's first event, processed events go out in pieces of about this much work:
# one write per event would cost mitmproxy a write (and a chunk header) each.
_PIECE_SECONDS = 0.0005


def _error_events(ids: list, text: str, code: int = ErrorCode.INTERNAL_ERROR) -> bytes:
    """Error events for the requests a stream still owes an answer (each would wait for
    ever), or one without an id when it owes none."""
    errs = [error_response(i, code, text) for i in ids or [None]]
    return b"".join(encode_event(encode_json(e).decode(), event="message") for e in errs)


class ErrorStream:
    """Fail-closed replacement for a stream the gateway could not set up: one error event
    for each request of the flow."""

    def __init__(self, ids: list | None = None) -> None:
        self.sent = False
        self.ids = ids or []

    def __call__(self, data: bytes) -> list[bytes]:
        if self.sent:
            return []
        self.sent = True
        return [_error_events(self.ids, "gateway internal error: event stream not inspected")]


class SSEStream:
    """The ``flow.response.stream`` callable for one event stream.

    Reassembles events across arbitrary chunk boundaries, runs each JSON-RPC event through
    the pipeline, and returns a lazy iterable of chunks (never a bare ``b""``, which would
    end an HTTP/1.1 chunked body). Unchanged events go out byte-identical.
    """

    def __init__(
        self,
        gw: Gateway,
        flow: http.HTTPFlow,
        ex: Exchange,
        *,
        known: bool,
        decoder: StreamDecoder | None = None,
        text: TextDecoder | None = None,
        undecodable: str = "",
    ) -> None:
        self.gw = gw
        self.flow = flow
        self.ex = ex
        self.known = known  # the exchange was recognised as MCP at request time
        self.decoder = decoder
        self.text = text  # re-encodes a stream in another charset as UTF-8
        self.parser = SSEParser()
        self.passthrough = False  # after an internal error: bytes go on unparsed
        self.foreign = False  # not (yet) MCP: only events that name "jsonrpc" are parsed
        self.skip_tail: str | None = None  # "drop" or "raw": how to treat an oversized event's tail
        # a withheld oversized server request whose id comes last (the Python SDK writes
        # {"method": …, "params": …, "jsonrpc": "2.0", "id": N}): the end of its tail, read for
        # the id, to answer the server once the event ends
        self._tail_id: bytes | None = None
        self.undecodable = undecodable
        self._kept = bytearray() if gw.keep_stream_bytes else None
        self._kept_truncated = False
        self._left: deque[SSEEvent] | None = None  # a chunk's events not yet processed
        self._decoded = b""  # the chunk being parsed, its codings and charset undone
        self._hold = None
        self._closed_after_error = False
        self._answered: list = []  # ids of the responses this stream delivered (bounded)
        self._first = True  # no event read yet (the first may open with a byte order mark)
        # (start, events): events a compressed stream inflated to since ``start``
        self._burst: tuple[float, int] = (0.0, 0)
        self.endpoint: str | None = None  # legacy HTTP+SSE: where the client POSTs
        # the request as it went upstream, for answering a blocked server request (the
        # identity addon masks an injected upstream credential in the flow right after this)
        self.sent_request = answer.SentRequest.of(flow)
        if undecodable:
            self._not_inspected(f"event stream cannot be decoded ({undecodable})")

    # -- idle timeout ---------------------------------------------------------------
    def hold_connection(self) -> None:
        """Disarm mitmproxy's idle watchdog for this connection while the stream lives.

        Uses Proxyserver internals (connections, timeout_watchdog); guarded and pinned to
        mitmproxy < 13, and covered by an end-to-end test with a tiny tcp_timeout.
        """
        if not self.gw.hold_streams or self._hold is not None:
            return
        try:
            ps = ctx.master.addons.get("proxyserver")
            handler = ps.connections.get(self.flow.client_conn.id) if ps else None
            wd = getattr(handler, "timeout_watchdog", None)
            if wd is None:
                return
            cm = wd.disarm()
            cm.__enter__()
            wd.register_activity()  # a watch() already sleeping must not fire on wake-up
            self._hold = cm
        except Exception as e:  # noqa: BLE001
            log.debug("mcp-gateway: cannot hold stream connection open: %r", e)

    def release_connection(self) -> None:
        cm, self._hold = self._hold, None
        if cm is not None:
            try:
                cm.__exit__(None, None, None)
            except Exception:  # noqa: BLE001
                pass

    # -- mitmweb copy ---------------------------------------------------------------
    def _keep(self, out: bytes) -> None:
        k = self._kept
        if k is None or self._kept_truncated:
            return
        room = self.gw.keep_stream_bytes - len(k)
        if len(out) <= room:
            k += out
        else:
            k += out[:room]
            self._kept_truncated = True

    def kept(self) -> bytes | None:
        if self._kept is None:
            return None
        suffix = b"\n: [mcp-gateway: display copy truncated]\n" if self._kept_truncated else b""
        return bytes(self._kept) + suffix

    # -- the callable ---------------------------------------------------------------
    def __call__(self, data: bytes) -> Iterator[bytes]:
        """A lazy iterable: mitmproxy writes each piece to the client as it is yielded,
        before the rest of the chunk is processed. One network read can hold dozens of
        events; the first goes out at once, so the gateway adds one event's work to the
        time to first event, not the whole chunk's. The rest go out in pieces of at most
        ``_PIECE_SECONDS`` of work (one write per event would cost a write each)."""
        return self._emit(data)

    def _emit(self, data: bytes) -> Iterator[bytes]:
        self._left = None
        self._decoded = b""
        try:
            parts: list[bytes] = []
            first = True
            t = 0.0
            for out in self._process(data):
                if not out:
                    continue
                if first:
                    first = False
                    self._keep(out)
                    yield out
                    t = perf_counter()
                    continue
                parts.append(out)
                if perf_counter() - t >= _PIECE_SECONDS:
                    out = b"".join(parts)
                    parts.clear()
                    self._keep(out)
                    yield out
                    t = perf_counter()
            if parts:
                out = b"".join(parts)
                self._keep(out)
                yield out
        except Exception as e:  # noqa: BLE001 - raising here would only drop this chunk
            log.error(
                "mcp-gateway: internal error in event stream (flow %s): %r",
                self.flow.id,
                e,
                exc_info=e,
            )
            out = self._on_internal_error(data, parts)
            if out:
                self._keep(out)
                yield out

    def _on_internal_error(self, data: bytes, done: list[bytes]) -> bytes:
        """What goes out after a failure part-way through a chunk: ``done`` is what was
        processed but not yet sent."""
        self.passthrough = True
        left, self._left = self._left, None
        pending = self.parser.take_pending()
        if self.gw.fail_mode == "open":
            if left is None:  # failed before its events were parsed
                raw = data if self.decoder is None and self.text is None else self._decoded
                return b"".join(done) + pending + raw
            # the rest of the chunk's events as they came (those already sent are not repeated)
            return b"".join(done) + b"".join(ev.raw for ev in left) + pending
        self.skip_tail = "drop"
        self._closed_after_error = True
        text = "gateway internal error: rest of event stream withheld"
        return b"".join(done) + _error_events(self._owed(), text)

    def _process(self, data: bytes) -> Iterator[bytes]:
        final = data == b""
        if self._closed_after_error or self.gw.closing:
            return  # (shutting down: the audit trail is closed, nothing more goes on)
        if self.undecodable:
            yield from self._cannot_decode(data)
            return
        raw = data
        try:
            if self.decoder is not None:
                data = self.decoder.decompress(data) + (self.decoder.flush() if final else b"")
            if self.text is not None:
                data = self.text.decode(data, final)
        except Exception as e:  # noqa: BLE001 - corrupt coding, bytes not in the charset
            self.undecodable = f"{type(e).__name__}: {e}"[:200]
            log.warning(
                "mcp-gateway: cannot decode event stream (flow %s): %s",
                self.flow.id,
                self.undecodable,
            )
            self._not_inspected(f"event stream cannot be decoded ({self.undecodable})")
            yield self.parser.take_pending() if self.gw.fail_mode == "open" else b""
            yield from self._cannot_decode(raw)
            return
        if self.passthrough:
            yield data
            return
        self._decoded = data  # (gone from the decoder: what fail open sends on)
        events = self.parser.feed(data) if data else []
        if final:
            events += self.parser.close()
        elif self.parser.pending > self.gw.max_message_bytes:
            # an event over the limit whose blank line, a lone CR, is the chunk's last byte
            # (held for a possible LF) is whole: taken as one still being read, the next
            # event was read as its tail (passed unread, or dropped unaudited)
            events += self.parser.end_held_event()
        if self.decoder is not None and events:
            now = perf_counter()
            start, n = self._burst
            if now - start > _DECODED_EVENTS_WINDOW:
                start, n = now, 0
            n += len(events)
            self._burst = (start, n)
            if n > _MAX_DECODED_EVENTS:
                yield from self._too_many_events(events, n)
                return
        left = self._left = deque(events)
        while left:
            ev = left[0]
            out = ev.raw if self.passthrough else self._event(ev)
            if not ev.complete and out is not ev.raw and out.endswith(b"\n\n"):
                # the stream ended inside the event: clients drop it, so the event written
                # in its place has no blank line either (it is forwarded, not completed)
                out = out[:-1]
            left.popleft()
            yield out
        # (self._left stays, empty: a failure after the events, in the oversized-event
        # handling below, must not take the chunk for one not yet parsed)
        if self.passthrough:
            yield self.parser.take_pending()  # the partial event goes on as it is
        elif self.parser.pending > self.gw.max_message_bytes:
            if self.skip_tail is not None:
                # more of an event already over the limit (and already answered for)
                tail = self.parser.take_pending()
                if self.skip_tail == "raw":
                    yield tail
                elif self._tail_id is not None:
                    self._tail_id = (self._tail_id + tail)[-512:]
            elif (
                self.known
                or self.parser.pending_has(b'"jsonrpc"')  # (in place: the common cases)
                or self.parser.pending_has(b"\\u")
                or may_name_jsonrpc(head := self.parser.pending_head(self.parser.pending))
                or (self.gw.fail_mode == "closed" and _json_event(head))
            ):
                # (closed mode: JSON whose "jsonrpc" may come later, its members in any
                # order, or an event whose data has not begun)
                yield self._oversized()
            else:  # a large event of another kind of stream: not the MCP limit's business
                self.skip_tail = "raw"
                yield self.parser.take_pending()

    def _too_many_events(self, events: list, n: int) -> Iterator[bytes]:
        """A compressed stream that inflates to more events than the event loop can inspect
        without keeping every other client waiting (~40 us each): one 64 KB read of a
        gzip stream sent in small chunks held ~180 of them, 1,000 small events each, and
        the stream callable ran for each in turn without the loop running in between (30 MB
        of events, a few hundred KB on the wire, stalled the proxy for 12 s). Not inspected:
        closed mode withholds the rest of the stream (one error for the request), open
        mode passes it on as it is."""
        text = (
            f"compressed event stream inflated to {n} events within "
            f"{_DECODED_EVENTS_WINDOW:g} s, over {_MAX_DECODED_EVENTS}; not inspected"
        )
        size = sum(len(ev.raw) for ev in events)
        msg = self._not_inspected(text, size=size)
        if not msg.stopped:  # mcp_fail_mode=open
            self.passthrough = True
            yield b"".join(ev.raw for ev in events) + self.parser.take_pending()
            return
        self.parser.take_pending()
        self._closed_after_error = True
        yield _error_events(self._owed(), text, ErrorCode.TOO_LARGE)

    def _cannot_decode(self, data: bytes) -> Iterator[bytes]:
        if self.gw.fail_mode == "open":
            yield data
            return
        # fail closed: one error in place of the stream (the client must not wait for it)
        self._closed_after_error = True
        text = f"event stream cannot be decoded ({self.undecodable}); not inspected"
        yield _error_events(self._owed(), text, ErrorCode.TOO_LARGE)

    def _oversized(self, whole: bytes | None = None) -> bytes:
        """An event over the limit: the start of one still being read, or ``whole``, one
        that came complete within a single read (as large as the read: ~40 KB passed
        inspected under a 1000-byte limit, while a JSON body of that size was refused)."""
        if whole is None:
            size = self.parser.pending
            raw = self.parser.take_pending()
        else:
            size, raw = len(whole), whole
        text = f"SSE event over mcp_max_message_bytes ({self.gw.max_message_bytes}); not inspected"
        msg = self._not_inspected(text, size=size)
        if self.gw.fail_mode == "open":
            if whole is None:
                self.skip_tail = "raw"
            return raw
        if whole is None:
            self.skip_tail = "drop"
        ident = _oversized_event_id(raw, self.flow)
        err = error_response(ident, ErrorCode.TOO_LARGE, text)
        msg.id = ident
        if is_request_head(raw):
            # a server's request (sampling, elicitation): the server waits for its answer,
            # so the error goes to the server, and the client never sees the request
            if not _id_before_params(raw):
                # its id comes last (an "id" met first would be one inside its params):
                # answered when the event ends
                if whole is not None:
                    self._tail_id = b""
                    return self._answer_tail_id(raw)
                self._tail_id = raw[-512:]
                return b""
            if answer.send_to_server(self.flow, self.endpoint, [err], self.sent_request):
                return b""
        else:
            self._delivered(ident)  # (the request it answers is answered)
        return encode_event(encode_json(err).decode(), event="message")

    def _oversized_whole(self, ev: SSEEvent, data: bytes) -> bytes:
        """An event over the limit that came whole within one read (as large as the read:
        ~40 KB passed inspected under a 1000-byte limit, while a JSON body of that size was
        refused). Not inspected; in closed mode its messages are answered as an oversized
        body's, read from its JSON for their ids only (up to 1 MiB of it and
        ``mcp_max_batch`` messages; beyond, as an event still being read): a response
        answers the client's request it names (one this flow sent, or any plain id on a
        stream that sent none: the GET or legacy stream; else, as the body path does, the
        flow's request), a server's request gets its error at the server, a
        notification is dropped; each id once, the event's SSE id kept."""
        if len(data) > _WHOLE_EVENT_READ:
            return self._oversized(ev.raw)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._oversized(ev.raw)  # not JSON (or too deep): the best guess of an id
        elements = value if isinstance(value, list) else [value]
        if len(elements) > self.gw.max_batch:
            return self._oversized(ev.raw)
        text = f"SSE event over mcp_max_message_bytes ({self.gw.max_message_bytes}); not inspected"
        asked = request_ids(self.flow)
        to_server: list[dict] = []
        answered: list = []
        response_seen = False
        for el in elements:
            if not isinstance(el, dict) or "id" not in el:
                continue  # a notification: dropped
            ident = el["id"]
            if isinstance(el.get("method"), str):  # a server's request
                # (its own id goes back to it, whatever it is; JSON-RPC's kinds of id only)
                valid = isinstance(ident, str | int | float) and not isinstance(ident, bool)
                if valid and not _among(ident, [e["id"] for e in to_server]):
                    to_server.append(error_response(ident, ErrorCode.TOO_LARGE, text))
                continue
            response_seen = True
            if _among(ident, answered) or _among(ident, self._answered):
                continue  # (each request is answered once on a stream)
            if _among(ident, asked) or (not asked and _plain_id(ident)):
                # (a stream that asked nothing itself, the GET or legacy stream, answers
                # requests of other POSTs: a plain id, as peek_id reads one, is echoed; an
                # id the server made up of anything else is not, unread)
                answered.append(ident)
        if response_seen and not answered and len(asked) == 1:
            if not _among(asked[0], self._answered):
                answered.append(asked[0])  # an id of another type or spelling: the request
        # one audit row; it names the call when the event answers the flow's one request
        self.gw._not_inspected(
            self.flow, self.ex, Direction.SERVER_TO_CLIENT, len(data), text,
            whole_answer=len(asked) == 1 and answered == asked,
        )  # fmt: skip
        for ident in answered:
            self._delivered(ident)
        if self.gw.fail_mode == "open":
            return ev.raw
        to_client = [error_response(i, ErrorCode.TOO_LARGE, text) for i in answered]
        if to_server and not answer.send_to_server(
            self.flow, self.endpoint, to_server, self.sent_request
        ):
            # (to the client instead: an id it never saw is echoed only when plain)
            to_client = [e for e in to_server if _plain_id(e["id"])] + to_client
        if not to_client:
            return _kept_fields(ev)
        return b"".join(
            encode_event(encode_json(err).decode(), event="message", id=ev.id if not k else None)
            for k, err in enumerate(to_client)
        )

    def _refuse_unread(self, ev: SSEEvent, data: bytes, text: str) -> bytes:
        """An event refused without being read (closed mode), answered by the id read from
        its ends: a server request's error goes to the server (the client never sees it), a
        response becomes the error for its request (one this flow sent when its id cannot be
        read), a notification is dropped. An "id" inside its params or result is no id."""
        ident = outer_id(data)
        err = error_response(ident, ErrorCode.TOO_LARGE, text)
        if is_request_head(data):
            if ident is None:
                return _kept_fields(ev)  # a notification
            if answer.send_to_server(self.flow, self.endpoint, [err], self.sent_request):
                return _kept_fields(ev)
        elif ident is None and (b'"result"' in data[:4096] or b'"error"' in data[:4096]):
            ids = request_ids(self.flow)
            if len(ids) == 1:
                err["id"] = ids[0]
        self._delivered(err["id"])
        return encode_event(encode_json(err).decode(), event=ev.event, id=ev.id)

    def _owed(self) -> list:
        """The flow's requests not yet answered on this stream."""
        return [i for i in request_ids(self.flow) if not _among(i, self._answered)]

    def _delivered(self, ident: Any) -> None:
        if ident is not None and len(self._answered) < 1000:
            self._answered.append(ident)

    def _answer_tail_id(self, last: bytes) -> bytes:
        """The end of a withheld oversized server request: its id is in the last bytes
        (none: a notification, nothing to answer). The error goes to the server, or to the
        client when it cannot be sent."""
        tail, self._tail_id = (self._tail_id or b"") + last[-512:], None
        ident = trailing_id(tail)
        if ident is None:
            return b""
        text = f"SSE event over mcp_max_message_bytes ({self.gw.max_message_bytes}); not inspected"
        err = error_response(ident, ErrorCode.TOO_LARGE, text)
        if answer.send_to_server(self.flow, self.endpoint, [err], self.sent_request):
            return b""
        return encode_event(encode_json(err).decode(), event="message")

    def _not_inspected(self, text: str, size: int = 0) -> Message:
        return self.gw._not_inspected(self.flow, self.ex, Direction.SERVER_TO_CLIENT, size, text)

    def _event(self, ev: SSEEvent) -> bytes:
        first, self._first = self._first, False
        if self.skip_tail is not None:
            mode, self.skip_tail = self.skip_tail, None
            if mode == "raw":
                return ev.raw
            return self._answer_tail_id(ev.raw) if self._tail_id is not None else b""
        if ev.id:
            self.ex.scratch[SSE_EVENT_IDS] = True  # resumable: its answers may still come
            note_event_id(self.ex.scratch, ev.id)  # (the ids a client resumes it from)
        data = ev.data_bytes
        if data is None:
            if self.known and _stray_lines(ev.raw, first):
                return self._plain_event(ev, raw_text=True)
            return ev.raw  # comments, keep-alives, retry-only events
        if ev.stray and (self.known or ev.event == "endpoint"):
            # lines beside its data that are no SSE field: an SSE client ignores them, a
            # careless reader does not, and they went on unscanned (a token on a line of its
            # own before a JSON-RPC answer's data). The event goes on without them. (On a
            # stream not known as MCP, once one of its events is found MCP: another kind of
            # stream goes on byte-identical, whatever its data names.)
            ev = _without_stray(ev)
        if ev.event == "endpoint":
            return self._endpoint(ev)
        if self.foreign and not (may_name_jsonrpc(data) or names_mcp_method(data)):
            return ev.raw  # another kind of event stream: one C-speed search per event
        if len(data) > self.gw.max_message_bytes and (self.known or may_name_jsonrpc(data)):
            return self._oversized_whole(ev, data)  # (one that came whole within a read)
        if not looks_like_json(data):
            # empty priming events, text: forwarded unchanged (documented)
            return ev.raw if not data.strip() else self._not_mcp(ev)
        try:
            value = decode_json(data, lenient_utf8=True)
            parsed = build_messages(
                value, len(ev.raw), Direction.SERVER_TO_CLIENT, self.ex, data, self.gw.max_batch
            )
        except Uninspectable as e:
            if not (self.known or may_name_jsonrpc(data)):
                return self._not_mcp(ev)
            msg = self._not_inspected(e.message, size=len(ev.raw))
            if not msg.stopped:
                return ev.raw  # mcp_fail_mode=open
            return self._refuse_unread(ev, data, e.message)
        except ParseError:
            return self._not_mcp(ev)  # not JSON: forwarded unchanged (documented)
        msgs = parsed.messages
        if all(m.kind is Kind.INVALID for m in msgs):
            return self._not_mcp(ev)
        if not self.known:
            # (not an answer without "jsonrpc": "2.0": see marks_mcp)
            bare = reverse_mode(self.flow)
            if not any(marks_mcp(m.payload, bare) for m in msgs):
                return self._not_mcp(ev)
            self._became_mcp()
            if ev.stray:
                ev = _without_stray(ev)
        if self.ex.legacy_session is not None and not parsed.batch:
            refusal = self.gw._take_legacy_refusal(self.ex, msgs[0])
            if refusal is not None:  # the answer to a refused request's stand-in ping
                data = encode_json(refusal).decode()
                return encode_event(data, event=ev.event, id=ev.id, retry=ev.retry)
        for m in msgs:
            m.sse_event_id = ev.id
        # a stream admitted with a gateway credential lives on (a standalone GET stream, a
        # long tool call, a 2026-07-28 subscriptions/listen): a key revoked since ends it
        self.gw.pipeline.recheck(self.ex, "event stream of flow", self.flow.id)
        self.gw.pipeline.run_all(msgs)
        self.gw._record(self.flow, msgs)
        for m in msgs:
            if m.kind is Kind.RESULT or m.kind is Kind.ERROR:
                self._delivered(m.id)
        if not any(m.modified or m.stopped for m in msgs):
            return ev.raw  # the common case: the event goes on byte-identical
        self.gw._mark(self.flow, msgs)
        new = rebuild(value, parsed.batch, msgs, self._answer_server(msgs))
        if new is UNCHANGED:
            return ev.raw
        if new is None:
            # Everything in the event was dropped; keep its id so resumption still works.
            return _kept_fields(ev)
        return encode_event(encode_json(new).decode(), event=ev.event, id=ev.id, retry=ev.retry)

    def _answer_server(self, msgs: list[Message]) -> bool:
        """Blocked server requests (sampling, elicitation): their errors go to the server,
        which would otherwise wait for the client's answer forever; the client never sees
        them. True when sent (else the client gets the errors, as for any blocked message)."""
        stopped = [m for m in msgs if m.kind is Kind.REQUEST and m.action is Action.BLOCK]
        if not stopped:
            return False
        errors = [refusal_error(m) for m in stopped]
        return answer.send_to_server(self.flow, self.endpoint, errors, self.sent_request)

    def _not_mcp(self, ev: SSEEvent) -> bytes:
        if not self.known:
            # Some other event stream, so far: its events pass through unchanged, and only
            # one that names "jsonrpc" is parsed. (Passing the rest of the stream through
            # unparsed would let a server slip MCP messages past the scanner behind one
            # event of junk.)
            self.foreign = True
            return ev.raw
        return self._plain_event(ev)

    def _plain_event(self, ev: SSEEvent, raw_text: bool = False) -> bytes:
        """An event of an MCP stream that holds no JSON-RPC message (text, or JSON of
        another shape). No client takes it for a message, but clients report the failure
        with its text (Node's ``JSON.parse`` quotes its start, pydantic's error its value),
        and hosts show such errors to the model. So its data is scanned as text, like a
        whole answer without JSON-RPC: findings are redacted in place, a blocking rule
        drops the event (its id is kept, so resumption still works), and it is audited."""
        text = ev.raw.decode("utf-8", "replace") if raw_text else ev.data
        msg = Message(
            payload={"data": text},
            direction=Direction.SERVER_TO_CLIENT,
            kind=Kind.INVALID,
            exchange=self.ex,
            size=len(ev.raw),
        )
        msg.sse_event_id = ev.id
        self.gw.pipeline.run(msg)
        if not (msg.findings or msg.stopped or msg.modified):
            return ev.raw
        self.gw._record(self.flow, [msg])
        self.gw._mark(self.flow, [msg])
        if msg.stopped:
            return _kept_fields(ev)
        if not msg.modified:
            return ev.raw
        data = msg.payload.get("data") if isinstance(msg.payload, dict) else None
        if raw_text:  # lines that are no event: they go on as they were, redacted
            return str(data or "").encode("utf-8", "surrogatepass")
        return encode_event(str(data or ""), event=ev.event, id=ev.id, retry=ev.retry)

    def _became_mcp(self) -> None:
        self.known = True
        self.foreign = False
        self.gw._learn_server(address_of(self.ex))
        self.hold_connection()

    def _endpoint(self, ev: SSEEvent) -> bytes:
        """Legacy HTTP+SSE: learn the session from the endpoint URI; keep clients on the gateway."""
        uri = (ev.data or "").strip()
        self.ex.transport = Transport.LEGACY_SSE
        self.endpoint = uri
        try:
            self.ex.legacy_session = legacy_session_from_url(uri)
        except AmbiguousSession:
            self.ex.legacy_session = None
        if self.ex.legacy_session is not None:
            self.gw._learn_legacy_session(address_of(self.ex), self.ex.legacy_session)
            # the session is the identity's that opened this stream (session binding)
            self.gw.pipeline.announce_session(self.ex, self.ex.legacy_session)
        if not self.known:
            self._became_mcp()
        try:
            relative = answer.relative_endpoint(uri)
        except ValueError:
            return ev.raw
        if relative is not None and isinstance(
            self.flow.client_conn.proxy_mode, mode_specs.ReverseMode
        ):
            # An endpoint naming a host (``http://host/…``, or ``//host/…`` without a
            # scheme) would let the client bypass a reverse gateway.
            return encode_event(relative, event=ev.event, id=ev.id, retry=ev.retry)
        return ev.raw
