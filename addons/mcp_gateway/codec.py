"""Content codings and character sets: the gateway reads a body the way its receiver does.

A receiver undoes every content coding of a body (``Content-Encoding: gzip, br`` means br
over gzip) and decodes the text in the charset the ``Content-Type`` names (the Python SDK
client honours ``text/event-stream; charset=utf-16``) or, for JSON without one, the encoding
its first bytes show (RFC 4627: UTF-16 and UTF-32 are told apart by their zero bytes; Python's
``json.loads`` does so). Whatever the gateway cannot decode the same way it cannot inspect.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib

UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def _latin1(header: str) -> str:
    """A header value as httpx and Node read it: its bytes as latin-1 (the gateway's header
    maps hold them as UTF-8 with surrogate escapes: a lone 0xA0 byte is no space there)."""
    try:
        return header.encode("utf-8", "surrogateescape").decode("latin-1")
    except UnicodeError:
        return header


def codings(header: str | None) -> list[str]:
    """The content codings of a ``Content-Encoding`` value, in the order they were applied
    (each trimmed as httpx trims it: ``gzip`` after a no-break space is gzip to it)."""
    return [c.strip().lower() for c in _latin1(header or "").split(",") if c.strip()]


_READ_BY_CLIENTS = frozenset({"identity", "gzip", "x-gzip", "deflate", "br", "zstd"})


def answer_codings(header: str | None) -> str | None:
    """An answer's ``Content-Encoding`` as its client undoes it. httpx (the Python SDK)
    skips a coding it does not know, and Node's fetch (the TypeScript SDK) then decodes
    nothing: ``none``, ``utf-8``, ``compress`` (common misconfigurations, or a hostile
    server's) leave the bytes as they are, and the client reads them so. The gateway drops
    such tokens and reads the answer as httpx does (None: no coding left)."""
    if not header:
        return None
    known = [c for c in codings(header) if c in _READ_BY_CLIENTS]
    return ", ".join(known) if known else None


_NOT_TRIMMED_BY_JS = "\x1c\x1d\x1e\x1f\x85"  # Python's str.strip() takes these, String.trim() not


def readings_differ(header: str | None) -> bool:
    """Whether httpx and Node's fetch undo an answer's codings differently. httpx undoes the
    codings it knows and skips the rest; fetch undoes them only when every token is one it
    decodes (``identity`` or an unknown token next to ``gzip`` makes it decode nothing, and
    the TypeScript SDK then quotes the raw bytes, a gzip header's file name included). Such
    an answer is sent on decoded, so both read what was scanned."""
    if not header:
        return False
    raw = [c for c in _latin1(header).split(",") if c.strip()]
    known = [c for c in codings(header) if c in _READ_BY_CLIENTS and c != "identity"]
    if not known:
        return False  # nothing decoded either way
    if len(known) != len(raw):
        return True
    return any(ch in c for c in raw for ch in _NOT_TRIMMED_BY_JS)


class TooLarge(ValueError):
    """The decoded body would exceed the limit."""


_PIECE = 64 * 1024
# input fed to zstd and brotli at a time: one call inflates without a bound (a 32 KB zstd
# request made 2 GB), so output is checked after each small piece of input (zstd's densest
# block turns 3 bytes into 128 KiB: 1 KiB of input gives at most ~44 MiB)
_SMALL = 1024
# most output one brotli or zstd call may make before it is checked (brotli may overshoot
# ~2x)
_BR_STEP = 1 << 20
# zstd frames a body or stream may have: real ones have one or a few; 8-byte skippable
# frames by the million would cost seconds of the event loop
_MAX_FRAMES = 10_000


def _bounded_zstd():
    """A zstd decoder whose output per call can be bounded (``max_length``): Python 3.14's
    ``compression.zstd`` or its backport (which mitmproxy 12.3 depends on); None without
    either (``zstandard``'s decompressobj has no such bound)."""
    global _ZSTD
    if _ZSTD is False:
        try:
            from compression.zstd import ZstdDecompressor  # type: ignore[import-not-found]
        except ImportError:
            try:
                from backports.zstd import ZstdDecompressor  # type: ignore[import-not-found]
            except ImportError:
                ZstdDecompressor = None  # noqa: N806
        _ZSTD = ZstdDecompressor
    return _ZSTD


_ZSTD = False  # (looked up once, on the first zstd body)


class _One:
    """Incremental decoding of one content coding, its output bounded by ``cap`` a call."""

    def __init__(self, enc: str) -> None:
        if enc not in ("gzip", "x-gzip", "deflate", "br", "zstd"):
            raise ValueError(f"unsupported content-encoding {enc!r}")
        self.enc = enc
        self._pending = b""
        self._frames = 0
        self._ignore = False  # what follows the last gzip member is no member
        self._d = self._new()

    def _new(self):
        enc = self.enc
        if enc in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if enc == "deflate":
            return None  # zlib-wrapped or raw: told by the first bytes (see decompress)
        if enc == "br":
            import brotli

            return brotli.Decompressor()
        bounded = _bounded_zstd()
        if bounded is not None:
            return bounded()
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes, cap: int) -> bytes:
        out = bytearray()
        if self.enc == "br":
            # Brotli is denser still: 826 bytes inflate to 1 GB, so no input piece is small
            # enough, and one process() call of 1 KiB held the whole gigabyte (an anonymous
            # request of 1.6 KB took the proxy to 1.3 GB). Its output is drawn in steps
            # instead (brotli >= 1.2), each checked against the cap.
            d = self._d
            for i in range(0, len(data), _SMALL):
                out += d.process(data[i : i + _SMALL], output_buffer_limit=_BR_STEP)
                while True:
                    if len(out) > cap:
                        raise TooLarge(f"decoded body over {cap} bytes")
                    more = d.process(b"", output_buffer_limit=_BR_STEP)
                    if not more:
                        break  # (it wants more input, or the stream is finished)
                    out += more
            return bytes(out)
        if self.enc == "zstd":
            bounded = _bounded_zstd() is not None
            i = 0
            carry = b""
            while carry or i < len(data):
                if carry:
                    piece, carry = carry, b""
                else:
                    # (output drawn in bounded steps: the input need not be cut so small)
                    piece = data[i : i + (_PIECE if bounded else _SMALL)]
                    i += len(piece)
                d = self._d
                if bounded:
                    # zstd's densest block turns 3 bytes into 128 KiB: one call on 1 KiB of
                    # input made ~44 MiB at once (beyond the cap, before it was checked).
                    # Its output is drawn in steps instead, each checked against the cap.
                    out += d.decompress(piece, _BR_STEP)
                    while not d.eof and not d.needs_input:
                        if len(out) > cap:
                            raise TooLarge(f"decoded body over {cap} bytes")
                        more = d.decompress(b"", _BR_STEP)
                        if not more:
                            break
                        out += more
                else:
                    out += d.decompress(piece)
                if len(out) > cap:
                    raise TooLarge(f"decoded body over {cap} bytes")
                if d.eof:
                    # one frame ended: the next starts in what is left of the piece
                    # (receivers such as httpx decode every frame, skippable ones included)
                    carry = d.unused_data
                    self._d = self._new()
                    self._frames += 1
                    if self._frames > _MAX_FRAMES:
                        raise ValueError(f"more than {_MAX_FRAMES} zstd frames")
            return bytes(out)
        if self._d is None:
            # "deflate" is meant to be zlib-wrapped, but servers send raw deflate too, and
            # httpx and fetch read both (a zlib header: CM 8 and a multiple of 31)
            data = self._pending + data
            if len(data) < 2:
                self._pending = data  # kept until a second byte arrives
                return b""
            zlib_wrapped = data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        d = self._d
        gzip = self.enc in ("gzip", "x-gzip")
        while data:
            if d.eof:
                if not gzip or self._ignore:
                    break
                # Another gzip member (RFC 1952 allows several): Node's fetch, and so the
                # TypeScript SDK, decodes them all (httpx only the first), so all are read.
                # Bytes that do not start one are read by no receiver.
                data = self._pending + data
                if len(data) < 2:
                    self._pending = data
                    break
                self._pending = b""
                if data[:2] != b"\x1f\x8b":
                    self._ignore = True
                    break
                self._frames += 1
                if self._frames > _MAX_FRAMES:
                    raise ValueError(f"more than {_MAX_FRAMES} gzip members")
                d = self._d = self._new()
            out += d.decompress(data, cap + 1 - len(out))
            if len(out) > cap:
                raise TooLarge(f"decoded body over {cap} bytes")
            data = d.unconsumed_tail or (d.unused_data if d.eof else b"")
        return bytes(out)

    def flush(self) -> bytes:
        f = getattr(self._d, "flush", None)
        try:
            return f() if f else b""
        except Exception:  # noqa: BLE001 - a truncated stream has nothing more to give
            return b""


class StreamDecoder:
    """Incremental decoding of a streamed body's content codings (gzip, deflate, br, zstd,
    identity; several, comma-separated, are undone last one first). One call's output is
    bounded by ``cap`` (TooLarge beyond it)."""

    def __init__(self, encoding: str, cap: int = 64 << 20) -> None:
        self.encoding = encoding.strip().lower()
        chain = [c for c in codings(encoding) if c != "identity"]
        if not chain:
            raise ValueError(f"unsupported content-encoding {encoding!r}")
        self._chain = [_One(c) for c in reversed(chain)]
        self.cap = cap

    def decompress(self, data: bytes) -> bytes:
        for d in self._chain:
            data = d.decompress(data, self.cap)
        return data

    def flush(self) -> bytes:
        out = b""
        for d in self._chain:
            out = d.decompress(out, self.cap) + d.flush()
        return out


def decode_content(raw: bytes, encoding: str | None, limit: int | None = None) -> bytes:
    """A whole body with its content codings undone. ValueError if one is unknown or the
    bytes are corrupt; TooLarge as soon as the output passes ``limit`` (a compression bomb
    is never inflated whole)."""
    if not [c for c in codings(encoding) if c != "identity"]:
        return raw
    cap = limit if limit is not None else 1 << 62
    d = StreamDecoder(encoding or "", cap)
    out = bytearray()
    try:
        for i in range(0, len(raw), _PIECE):
            out += d.decompress(raw[i : i + _PIECE])
            if len(out) > cap:
                raise TooLarge(f"decoded body over {limit} bytes")
        out += d.flush()
    except ValueError:
        raise
    except Exception as e:  # zlib.error, brotli.error, zstandard.ZstdError
        raise ValueError(f"corrupt {encoding} body: {e}") from e
    if len(out) > cap:
        raise TooLarge(f"decoded body over {limit} bytes")
    return bytes(out)


def decoded_prefix(raw: bytes, encoding: str | None, n: int = 4096) -> bytes | None:
    """The first ``n`` bytes (or fewer) of a body with its content codings undone, to tell
    JSON from other uploads when the whole is too big to decode; b"" if the codings cannot
    be undone, None if its first bytes already inflate beyond 64 MiB (a bomb)."""
    try:
        return StreamDecoder(encoding or "", 64 << 20).decompress(raw[:512])[:n]
    except TooLarge:
        return None
    except Exception:  # noqa: BLE001 - unknown coding, corrupt bytes
        return b""


SINGLE_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type, lower case, or None."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").lower() or None
    return None


# The charsets a JSON or event-stream body may name, by the name receivers reduce a label
# to (iconv-lite, behind Node's body parsers, drops everything but letters and digits:
# "utf-7." is utf7 to it), with the Python codec that reads them.
_CHARSETS = {
    "utf8": "utf-8", "usascii": "ascii", "ascii": "ascii", "utf7": "utf-7",
    "utf16": "utf-16", "utf16le": "utf-16-le", "utf16be": "utf-16-be",
    "utf32": "utf-32", "utf32le": "utf-32-le", "utf32be": "utf-32-be",
    "latin1": "latin-1", "koi8r": "koi8-r", "koi8u": "koi8-u", "shiftjis": "shift_jis",
    "sjis": "shift_jis", "eucjp": "euc_jp", "euckr": "euc_kr", "gb2312": "gb2312",
    "gbk": "gbk", "gb18030": "gb18030", "big5": "big5", "iso2022jp": "iso2022_jp",
    **{f"iso8859{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)},
    **{f"windows125{n}": f"cp125{n}" for n in range(9)},
    **{f"cp125{n}": f"cp125{n}" for n in range(9)},
}  # fmt: skip


_CHARSET_WORD = re.compile(r"(?i)charset")
_PARAM = re.compile(r'\s*([^=;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?\s*(?:;|\Z)')


def _charset_ambiguous(content_type: str) -> bool:
    """Whether receivers may disagree on a Content-Type's charset: named twice, in RFC 2231
    form (``charset*=utf-8''utf-7``, ``charset*0=…``), or with "charset" inside another
    parameter's quoted value (``x="a;charset=utf-8"; charset=utf-7``). The gateway reads the
    first plain ``charset``; httpx (``email.message``), Node's ``content-type`` and
    iconv-lite read these forms each their own way."""
    _, sep, params = content_type.partition(";")
    if not sep:
        return bool(_CHARSET_WORD.search(content_type))  # "text/plain charset=…": malformed
    names = []
    pos = 0
    while pos < len(params):
        m = _PARAM.match(params, pos)
        if m is None or m.end() == pos:
            return True  # not a parameter list anyone parses alike
        names.append(m.group(1).lower())
        value = m.group(2) or ""
        if value.startswith('"') and _CHARSET_WORD.search(value):
            return True
        pos = m.end()
    plain = [n for n in names if n == "charset"]
    odd = [n for n in names if n.startswith("charset") and n != "charset"]
    return len(plain) > 1 or bool(odd)


def foreign_charset(content_type: str | None) -> str | None:
    """A charset other than UTF-8 that the receiver will decode the body with (the Python
    codec's name), or None. ValueError for a charset that is not one of the registered text
    charsets above (``unicode_escape``, ``utf-7-imap``, ``cp500``: receivers that know one
    read what the gateway would not), or that receivers spell apart (``utf-7.``: utf-7 to
    Node, unknown to Python, which falls back to UTF-8)."""
    if content_type and _CHARSET_WORD.search(content_type) and _charset_ambiguous(content_type):
        raise ValueError(
            "ambiguous charset: the Content-Type names it in a form receivers read apart"
        )
    cs = charset(content_type)
    if cs is None or cs in UTF8_NAMES:
        return None
    name = _CHARSETS.get(re.sub(r"[^0-9a-z]", "", cs))
    if name is None:
        raise ValueError(f"unsupported charset {cs!r}")
    try:
        same = codecs.lookup(cs).name == codecs.lookup(name).name
    except LookupError:
        same = False
    if not same:
        raise ValueError(f"ambiguous charset {cs!r}")
    return None if codecs.lookup(name).name == "utf-8" else name


def unknown_charset(content_type: str | None) -> bool:
    """Whether the Content-Type names, in plain form, a charset that Python does not know
    either: httpx then reads UTF-8 (as Node's fetch always does)."""
    if not content_type or _charset_ambiguous(content_type):
        return False
    cs = charset(content_type)
    if cs is None:
        return False
    try:
        codecs.lookup(cs)
    except LookupError:
        return True
    return False


def json_utf8(body: bytes, content_type: str | None) -> bytes:
    """A JSON body as UTF-8: decoded from the Content-Type's charset, or from UTF-16/UTF-32
    told by its first bytes (RFC 4627). ``body`` itself when it already is UTF-8.

    Most receivers ignore a JSON body's charset (RFC 8259 gives it no meaning; the MCP SDKs
    parse the bytes: UTF-8, or UTF-16/32 by their zero bytes). So when the declared charset
    does not yield JSON but the bytes as such do (``charset=utf-16`` on a UTF-8 body), the
    body is read as those receivers read it: otherwise it would pass as "not JSON" to a
    receiver that finds a message in it."""
    cs = foreign_charset(content_type)  # (ValueError: one the gateway cannot read alike)
    if cs is not None:
        try:
            text = body.decode(cs, "replace")
        except UnicodeError:  # (utf-16 without a byte order mark is refused, not replaced)
            text = ""
        by_bytes = _by_content(body)
        if cs == "utf-7" and not _JSON_START_B.match(by_bytes):
            # JSON only once decoded from UTF-7 ("+AHs-" is "{"): decoders read UTF-7 apart
            # (Node's iconv-lite drops a run's leftover bits, "+AHt-" is "{" to it and
            # "{\ufffd" to Python), so the gateway cannot read such a body as Node does.
            raise ValueError(
                "unsupported charset 'utf-7' for a body that is JSON only once decoded: "
                "decoders read it apart"
            )
        if _JSON_START.match(text):
            declared = text.encode("utf-8", "surrogatepass")
            if declared != by_bytes and _JSON_START_B.match(by_bytes) and _utf8(by_bytes):
                # Receivers disagree: the SDKs' streamable servers and clients read the bytes
                # (UTF-8), Node's legacy server and body parsers the declared charset. One
                # reading may hide what the other shows (+ghp_… in UTF-7, a backslash eaten
                # by a GBK lead byte), so the body is not read at all.
                raise ValueError(f"ambiguous charset {cs!r}: the body reads differently as UTF-8")
            return declared
        if not _JSON_START_B.match(by_bytes):
            return text.encode("utf-8", "surrogatepass")
    return _by_content(body)


def charset_may_hide_json(body: bytes, content_type: str | None) -> bool:
    """Whether a body whose bytes do not open JSON may still be JSON to a receiver that
    decodes it by the Content-Type's charset: UTF-7 writes ``{`` as ``+AHs-``, and Node's
    body parsers (``express.json()``, the TypeScript SDK's legacy transport) decode UTF-7.
    Also True for a body declared JSON in a charset the gateway cannot read alike (it is
    refused, not passed unread)."""
    if not content_type or "charset" not in content_type.lower():
        return False
    try:
        cs = foreign_charset(content_type)
    except ValueError:
        return "json" in content_type.lower()
    if cs is None:
        return False
    if cs == "utf-7":
        return True  # (read below only to be refused: decoders read UTF-7 apart)
    try:
        text = body.decode(cs, "replace")
    except UnicodeError:
        return False
    return _JSON_START.match(text) is not None


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_JSON_START = re.compile(r"\ufeff?[ \t\r\n]*+[{\[]")
_JSON_START_B = re.compile(rb"[ \t\r\n]*+[{\[]")


def _by_content(body: bytes) -> bytes:
    """A JSON body read by its bytes alone, as ``json.loads`` reads bytes, as UTF-8."""
    if body[:3] == b"\xef\xbb\xbf":
        return body[3:]  # a UTF-8 byte order mark (Python's json.loads skips it too)
    if len(body) < 2 or (body[0] and body[1] and body[:2] not in (b"\xff\xfe", b"\xfe\xff")):
        return body  # the common case: no zero byte up front, no UTF-16 BOM
    cs = json.detect_encoding(body)
    if cs == "utf-8" or cs == "utf-8-sig":
        return body
    return body.decode(cs, "replace").encode("utf-8", "surrogatepass")


class TextDecoder:
    """Incremental re-encoding of a stream from ``charset`` into UTF-8."""

    def __init__(self, cs: str) -> None:
        self._d = codecs.getincrementaldecoder(cs)(errors="replace")

    def decode(self, data: bytes, final: bool = False) -> bytes:
        return self._d.decode(data, final).encode("utf-8", "surrogatepass")
