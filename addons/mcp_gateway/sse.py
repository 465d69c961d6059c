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
MAX_COMMENTS = 64  # comments kept per event (for display; no client acts on them)


class SSEEvent:
    """One event: its exact raw bytes and its fields. ``data_bytes`` is the joined data as
    received (UTF-8 bytes); ``data`` decodes it (undecodable bytes become U+FFFD)."""

    __slots__ = (
        "raw",
        "data_bytes",
        "event",
        "id",
        "retry",
        "comments",
        "complete",
        "stray",
        "_data",
    )

    def __init__(
        self,
        raw: bytes,
        data_bytes: bytes | None = None,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comments: list[str] | None = None,
        complete: bool = True,
        stray: bool = False,
    ) -> None:
        self.raw = raw
        self.data_bytes = data_bytes
        self.event = event
        self.id = id
        self.retry = retry
        self.comments = comments if comments is not None else []
        self.complete = complete
        # it has a line that is no field an SSE client reads (data, event, id, retry) nor a
        # comment: clients ignore it, careless readers of the stream do not
        self.stray = stray
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
_LONG_LINE = 4096


def _decode(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


class SSEParser:
    """Feed bytes, get events. Never raises on garbage: undecodable bytes become U+FFFD."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # where line scanning resumes in _buf
        # _buf[_pos:_seen] holds no CR or LF: a long line that arrives in many chunks is
        # searched once, not again from its start with every chunk
        self._seen = 0
        self._head: bytes | None = b""  # the stream's first bytes, until the BOM is settled
        self._bom = False  # the first line starts with a BOM not yet skipped
        # after take_pending, part-way through an event: the next bytes up to a line end
        # finish a line already taken (never a blank line, nor a field), and an LF right
        # after a CR taken at the very end is that CR's
        self._cont = False
        self._skip_lf = False
        self._whole = False  # ... and the CR taken was the event's blank line: no tail
        self._reset()

    def _reset(self) -> None:
        # The fields of the event being built, read line by line as its lines arrive: an
        # event of two million short lines holds its data once, not two million objects.
        self._open = False  # it has a line
        self._data: bytes | bytearray | None = None
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._comments: list[str] = []
        self._stray = False

    @property
    def pending(self) -> int:
        """Bytes held for an event not yet complete."""
        return len(self._buf)

    def pending_has(self, needle: bytes) -> bool:
        """Whether the event being built holds ``needle`` so far."""
        return needle in self._buf

    def pending_head(self, n: int) -> bytes:
        """The first ``n`` bytes held for the event being built."""
        return bytes(self._buf[:n])

    def take_pending(self) -> bytes:
        """Give up on the event being built: return its raw bytes. What comes next is the
        rest of that event (its tail, up to its blank line), read as one event: a line the
        bytes taken cut in two is finished, not taken for a blank line (the event's next
        line would have gone out as an event of its own)."""
        whole = self._held_blank_line()
        raw = bytes(self._buf)
        self._buf.clear()
        self._pos = self._seen = 0
        self._reset()
        self._whole = whole
        if raw:
            self._open = True
            last = raw[-1]
            self._skip_lf = last == _CR
            self._cont = last != _CR and last != _LF
        return raw

    def end_held_event(self) -> list[SSEEvent]:
        """The event being built, when all it lacks is the LF that may follow its last byte:
        a CR after a line end is its blank line whatever comes next (a lone CR ends lines
        too), so the event is whole. Returned as such; an LF that follows reads as a blank
        line of its own, which no client acts on. [] in any other state."""
        return self._scan(b"", final=True) if self._held_blank_line() else []

    def _held_blank_line(self) -> bool:
        """Whether the event being built lacks only the LF that may follow its last CR."""
        buf = self._buf
        n = len(buf)
        return (
            self._open
            and n >= 2
            and self._pos == n - 1
            and buf[-1] == _CR
            and buf[-2] in (_CR, _LF)
        )

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
        if not data or final or self._cont or self._skip_lf:
            return self._scan(data, final)
        # LF, or CRLF as sse-starlette (the Python SDK) writes it: the fast paths check that
        # no line holds a bare CR or LF before they trust CRLF (memchr per line: counting
        # the three of them over the chunk took longer than the rest of the parsing)
        eol = b"\n" if b"\r" not in data else b"\r\n"
        if not (self._buf or self._open):
            if data[:1] in (b"\r", b"\n"):
                return self._scan(data)
            return self._feed_split(data, eol)
        # An event is pending (a chunk boundary fell inside it): the general scanner ends
        # it, and the rest of the chunk takes the fast path again.
        if b"\n" not in data and b"\r" not in data and self._buf[-1:] != b"\r":
            # more of a long line (a big result in one data line): nothing to split (two
            # memchr passes; a four-byte search for the blank line read ~1 GB/s)
            grown = self._seen == len(self._buf)
            self._buf += data
            if grown:
                self._seen = len(self._buf)
            return []
        blank = eol + eol
        win = bytes(self._buf[-(len(blank) - 1) :])
        k = (win + data[: len(blank) - 1]).find(blank)  # a blank line across the boundary
        if k < 0:
            k = data.find(blank)
            if k < 0:
                return self._more_lines(data, eol)
            k += len(win)
        j = k + len(blank) - len(win)
        cut = j - len(eol)  # the lines before the blank one, then the blank one
        out = self._more_lines(data[:cut], eol) if cut > 0 else []
        out += self._scan(data[max(cut, 0) : j])
        rest = data[j:]
        if not rest:
            return out
        if self._buf or self._open or rest[:1] in (b"\r", b"\n"):
            return out + self._scan(rest)
        return out + self._feed_split(rest, eol)

    def _more_lines(self, data: bytes, eol: bytes) -> list[SSEEvent]:
        """More lines of a pending event, none blank: whole lines that are all ``data``
        fields are read in C (an event of two million short lines took seconds line by
        line); anything else goes through the general scanner."""
        i = data.find(eol)
        r = data.rfind(eol)
        if i < 0 or i == r:
            return self._scan(data)
        first = i + len(eol)
        out = self._scan(data[:first])  # ends the line the chunk boundary cut
        if self._buf[self._pos :] or not self._open:
            return out + self._scan(data[first:])
        seg = data[first : r + len(eol)]
        n = seg.count(eol)
        if len(eol) == 2 and not (seg.count(b"\r") == n == seg.count(b"\n")):
            return out + self._scan(data[first:])  # a bare CR or LF: not CRLF after all
        if seg.startswith(b"data: ") and seg.count(eol + b"data: ") == n - 1:
            values = seg[6 : -len(eol)].replace(eol + b"data: ", b"\n")
        elif (
            seg.startswith(b"data:")
            and seg.count(eol + b"data:") == n - 1
            and not seg.startswith(b"data: ")
            and eol + b"data: " not in seg
        ):
            values = seg[5 : -len(eol)].replace(eol + b"data:", b"\n")
        else:
            return out + self._scan(data[first:])
        self._buf += seg
        self._pos = self._seen = len(self._buf)
        self._add_data(values)
        return out + self._scan(data[r + len(eol) :])

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
        lf = -2  # the next LF at or after pos (-1: none in buf), searched again only once
        # passed: lines ending in CR alone searched to the buffer's end for every line
        seen = self._seen  # (nothing before it, from pos on, is a CR or LF)
        if self._skip_lf and pos < n:
            self._skip_lf = False
            if buf[pos] == _LF:
                pos += 1  # the LF of a CRLF whose CR was taken with the event's start
                seen = max(seen, pos)
            if self._whole:  # the event was whole: its rest is that LF, or nothing
                self._whole = False
                out.append(self._dispatch(bytes(memoryview(buf)[:pos]), True))
                start = pos
        cont = self._cont
        while pos < n:
            lo = pos if pos >= seen else seen
            if lf != -1 and lf < pos:
                lf = buf.find(b"\n", lo)
            cr = buf.find(b"\r", lo, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n and not final:
                    seen = cr
                    break  # CR at the end: wait for a possible LF
                end = cr
                nxt = cr + 2 if cr + 1 < n and buf[cr + 1] == _LF else cr + 1
            elif lf >= 0:
                end = lf
                nxt = lf + 1
            else:
                seen = n
                break
            if cont:
                cont = self._cont = False  # the end of a line whose start was taken
                pos = nxt
                continue
            # (one copy: a bytearray slice and then bytes() would copy a long line twice;
            # the memoryviews are temporaries, so the buffer can still be resized)
            if end > pos:
                if end - pos > _LONG_LINE and buf.startswith(b"data: ", pos) and not self._bom:
                    self._open = True  # a long data line: its value copied once, not twice
                    self._add_data(bytes(memoryview(buf)[pos + 6 : end]))
                else:
                    self._line(bytes(memoryview(buf)[pos:end]))
                pos = nxt
                continue
            pos = nxt
            if not self._open:
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
            seen -= start
        self._pos = pos
        self._seen = seen if seen > pos else pos
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
        crlf = len(eol) == 2
        whole = len(parts) == 1 and not tail  # one event: its raw bytes are the chunk
        out: list[SSEEvent] = []
        for i, part in enumerate(parts):
            lines = part.split(eol) if part and not part.startswith(eol) else None
            if crlf and lines is not None:
                for line in lines:
                    if b"\r" in line or b"\n" in line:
                        lines = None  # a bare CR or LF: not CRLF after all
                        break
            if lines is None:
                # a blank line right after an event, or mixed line endings: the rest goes
                # through the general path
                rest = blank.join(parts[i:]) + blank + tail
                return out + self._scan(rest)
            for line in lines:
                self._line(line)
            out.append(self._dispatch(data if whole else part + blank, True))
        if tail:
            out += self._scan(tail)
        return out

    def close(self) -> list[SSEEvent]:
        """End of stream: a held-back CR ends its line; a last event without its blank line
        is returned with ``complete=False`` (browsers would drop it; we pass its bytes on)."""
        out = self.feed(b"", final=True)
        if self._buf:
            rest = bytes(self._buf[self._pos :])
            if rest and not self._cont:
                self._line(rest)
            out.append(self._dispatch(bytes(self._buf), False))
            self._buf.clear()
            self._pos = self._seen = 0
        elif self._open:
            # the stream ended right after a take: the rest of the event it cut is empty
            out.append(self._dispatch(b"", False))
        self._cont = self._skip_lf = self._whole = False
        return out

    def _line(self, line: bytes) -> None:
        """One non-blank line of the event being built: its field, read now."""
        self._open = True
        if self._bom:
            self._bom = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
        if line[:6] == b"data: ":  # the usual data line: its value in one copy
            name, value = b"data", line[6:]
        elif line[:1] == b":":
            if len(self._comments) < MAX_COMMENTS:
                self._comments.append(_decode(line[1:]))
            return
        else:
            name, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._add_data(value)
        elif name == b"event":
            self._event = _decode(value)
        elif name == b"id":
            if b"\x00" not in value:
                self._id = _decode(value)
        elif name == b"retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            self._stray = True

    def _add_data(self, value: bytes) -> None:
        """One more data line (or lines already joined with LF) of the event being built:
        the first is kept as it is, the next ones are joined into one buffer."""
        data = self._data
        if data is None:
            self._data = value
            return
        if data.__class__ is bytes:
            data = self._data = bytearray(data)
        data += b"\n"
        data += value

    def _dispatch(self, raw: bytes, complete: bool) -> SSEEvent:
        self._bom = False
        data = self._data
        ev = SSEEvent(
            raw,
            data if data is None or data.__class__ is bytes else bytes(data),
            self._event,
            self._id,
            self._retry,
            self._comments,
            complete,
            self._stray,
        )
        self._reset()
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
