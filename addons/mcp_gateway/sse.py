"""Incremental ``text/event-stream`` parser.

Chunks arrive at arbitrary byte boundaries. :meth:`SSEParser.feed` returns every event
completed so far, each with the exact raw bytes it occupied in the stream, so that the
gateway can forward unchanged events byte-identical and replace only the ones it changes.

Per the WHATWG spec, lines end with CRLF, LF or CR; an empty line dispatches the event;
``:`` starts a comment; ``data`` lines are joined with ``\\n``; a field without a colon has
an empty value; one leading space after the colon is dropped. A CR at the very end of a
chunk may be the first half of a CRLF, so it is held back until the next byte (or the end).
"""

from __future__ import annotations

import re

_CR = 0x0D
_LF = 0x0A


_NOT_EOL = re.compile(rb"[^\r\n]")


class SSEEvent:
    """One event: its exact raw bytes and its fields. ``data_bytes`` is the joined data as
    received (UTF-8 bytes); ``data`` decodes it (undecodable bytes become U+FFFD)."""

    __slots__ = ("raw", "data_bytes", "event", "id", "retry", "comments", "complete", "_data")

    def __init__(
        self,
        raw: bytes,
        data_bytes: bytes | None = None,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comments: list[str] | None = None,
        complete: bool = True,
    ) -> None:
        self.raw = raw
        self.data_bytes = data_bytes
        self.event = event
        self.id = id
        self.retry = retry
        self.comments = comments if comments is not None else []
        self.complete = complete
        self._data: str | None = None

    @property
    def data(self) -> str | None:
        if self.data_bytes is None:
            return None
        if self._data is None:
            self._data = self.data_bytes.decode("utf-8", errors="replace")
        return self._data

    @property
    def type(self) -> str:
        return self.event or "message"

    def _key(self) -> tuple:
        return (
            self.raw,
            self.data_bytes,
            self.event,
            self.id,
            self.retry,
            self.comments,
            self.complete,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and self._key() == other._key()

    def __repr__(self) -> str:
        return (
            f"SSEEvent(raw={self.raw!r}, data={self.data!r}, event={self.event!r}, id={self.id!r})"
        )


_BOM = b"\xef\xbb\xbf"


def _decode(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


class SSEParser:
    """Feed bytes, get events. Never raises on garbage: undecodable bytes become U+FFFD."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # where line scanning resumes in _buf
        self._lines: list[bytes] = []  # lines of the event being built
        self._head: bytes | None = b""  # the stream's first bytes, until the BOM is settled
        self._bom = False  # the first line starts with a BOM not yet skipped

    @property
    def pending(self) -> int:
        """Bytes held for an event not yet complete."""
        return len(self._buf)

    def pending_has(self, needle: bytes) -> bool:
        """Whether the event being built holds ``needle`` so far."""
        return needle in self._buf

    def take_pending(self) -> bytes:
        """Give up on the event being built: return its raw bytes and reset."""
        raw = bytes(self._buf)
        self._buf.clear()
        self._pos = 0
        self._lines.clear()
        return raw

    def feed(self, data: bytes, final: bool = False) -> list[SSEEvent]:
        if self._head is not None:
            # A UTF-8 byte order mark at the very start of the stream is not part of the
            # first line (WHATWG: clients strip it), so it must not hide the first event.
            head = self._head + data
            if len(head) < len(_BOM) and _BOM.startswith(head) and not final:
                self._head = head
                return []
            self._head = None
            self._bom = head.startswith(_BOM)  # kept in the raw bytes, skipped by the fields
            data = head
        if data and not self._buf and not self._lines and data[:1] not in (b"\r", b"\n"):
            if b"\r" not in data:
                return self._feed_split(data, b"\n")
            crlf = data.count(b"\r\n")
            if crlf == data.count(b"\r") == data.count(b"\n"):
                return self._feed_split(data, b"\r\n")  # sse-starlette (the Python SDK)
        return self._scan(data, final)

    def _scan(self, data: bytes, final: bool = False) -> list[SSEEvent]:
        """The general scanner: any line endings, any state."""
        if data:
            self._buf += data
        out: list[SSEEvent] = []
        buf = self._buf
        n = len(buf)
        pos = self._pos
        start = 0  # start of the current event in buf
        run = -1  # start of a run of blank lines (empty events) not yet handed out
        while pos < n:
            lf = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n and not final:
                    break  # CR at the end: wait for a possible LF
                end = cr
                nxt = cr + 2 if cr + 1 < n and buf[cr + 1] == _LF else cr + 1
            elif lf >= 0:
                end = lf
                nxt = lf + 1
            else:
                break
            # (one copy: a bytearray slice and then bytes() would copy a long line twice;
            # the memoryviews are temporaries, so the buffer can still be resized)
            line = bytes(memoryview(buf)[pos:end])
            pos = nxt
            if line:
                self._lines.append(line)
            elif not self._lines:
                # A blank line alone is an empty event, which no client acts on: a run of
                # them goes out as one (a megabyte of line breaks was a million events),
                # found in C (a lone CR at the end may still be waiting for its LF)
                if run < 0:
                    run = start
                m = _NOT_EOL.search(buf, pos)
                k = m.start() if m else n
                if k > pos and buf[k - 1] == _CR and k == n and not final:
                    k -= 1
                pos = start = k
            else:
                if run >= 0:
                    out.append(SSEEvent(bytes(memoryview(buf)[run:start])))
                    run = -1
                out.append(self._dispatch(bytes(memoryview(buf)[start:pos]), True))
                start = pos
        if run >= 0:
            out.append(SSEEvent(bytes(memoryview(buf)[run:start])))
        if start:
            del buf[:start]
            pos -= start
        self._pos = pos
        return out

    def _feed_split(self, data: bytes, eol: bytes) -> list[SSEEvent]:
        """Fast path: nothing pending and every line ends with ``eol`` (LF, or CRLF as the
        Python SDK's server writes it): the common cases on the wire.

        Complete events are split on blank lines in C; anything unusual (a run of blank
        lines) and the incomplete tail go through the general scanner.
        """
        blank = eol + eol
        parts = data.split(blank)
        tail = parts.pop()
        out: list[SSEEvent] = []
        for i, part in enumerate(parts):
            if not part or part.startswith(eol):
                # a blank line right after an event: hand the rest to the general path
                rest = blank.join(parts[i:]) + blank + tail
                return out + self._scan(rest)
            self._lines = part.split(eol)
            out.append(self._dispatch(part + blank, True))
        if tail:
            out += self._scan(tail)
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: a held-back CR ends its line; a last event without its blank line
        is returned with ``complete=False`` (browsers would drop it; we pass its bytes on)."""
        out = self.feed(b"", final=True)
        if self._buf:
            rest = bytes(self._buf[self._pos :])
            if rest:
                self._lines.append(rest)
            out.append(self._dispatch(bytes(self._buf), False))
            self._buf.clear()
            self._pos = 0
        return out

    def _dispatch(self, raw: bytes, complete: bool) -> SSEEvent:
        ev = SSEEvent(raw, complete=complete)
        data: list[bytes] | None = None
        if self._bom:
            self._bom = False
            lines = self._lines
            if lines and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM) :]
                if not lines[0]:
                    del lines[0]
        for line in self._lines:
            if line[:1] == b":":
                ev.comments.append(_decode(line[1:]))
                continue
            if line[:6] == b"data: ":  # the usual data line: its value in one copy
                name, sep, value = b"data", b":", line[6:]
            else:
                name, sep, value = line.partition(b":")
                if sep and value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            elif name == b"event":
                ev.event = _decode(value)
            elif name == b"id":
                if b"\x00" not in value:
                    ev.id = _decode(value)
            elif name == b"retry":
                if value.isdigit():
                    ev.retry = int(value)
        self._lines = []
        if data is not None:
            ev.data_bytes = data[0] if len(data) == 1 else b"\n".join(data)
        return ev


def encode_event(
    data: str | None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Serialize one event with LF line endings. Multi-line data becomes several data lines."""
    parts: list[str] = []
    if event is not None:
        parts.append(f"event: {event}\n")
    if id is not None:
        parts.append(f"id: {id}\n")
    if retry is not None:
        parts.append(f"retry: {retry}\n")
    if data is not None:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        parts.extend(f"data: {line}\n" for line in lines)
    parts.append("\n")
    return "".join(parts).encode("utf-8")
