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


def codings(header: str | None) -> list[str]:
    """The content codings of a ``Content-Encoding`` value, in the order they were applied."""
    return [c.strip().lower() for c in (header or "").split(",") if c.strip()]


class _One:
    """Incremental decoding of one content coding."""

    def __init__(self, enc: str) -> None:
        if enc in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._fn = self._d.decompress
        elif enc == "deflate":
            self._d = zlib.decompressobj()
            self._fn = self._d.decompress
        elif enc == "br":
            import brotli

            self._d = brotli.Decompressor()
            self._fn = self._d.process
        elif enc == "zstd":
            import zstandard

            self._d = zstandard.ZstdDecompressor().decompressobj()
            self._fn = self._d.decompress
        else:
            raise ValueError(f"unsupported content-encoding {enc!r}")

    def decompress(self, data: bytes) -> bytes:
        return self._fn(data) if data else b""

    def flush(self) -> bytes:
        f = getattr(self._d, "flush", None)
        try:
            return f() if f else b""
        except Exception:  # noqa: BLE001 - a truncated stream has nothing more to give
            return b""


class StreamDecoder:
    """Incremental decoding of a streamed body's content codings (gzip, deflate, br, zstd,
    identity; several, comma-separated, are undone last one first)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        chain = [c for c in codings(encoding) if c != "identity"]
        if not chain:
            raise ValueError(f"unsupported content-encoding {encoding!r}")
        self._chain = [_One(c) for c in reversed(chain)]

    def decompress(self, data: bytes) -> bytes:
        for d in self._chain:
            data = d.decompress(data)
        return data

    def flush(self) -> bytes:
        out = b""
        for d in self._chain:
            out = d.decompress(out) + d.flush()
        return out


class TooLarge(ValueError):
    """The decoded body would exceed the limit."""


_PIECE = 64 * 1024


def decode_content(raw: bytes, encoding: str | None, limit: int | None = None) -> bytes:
    """A whole body with its content codings undone. ValueError if one is unknown or the
    bytes are corrupt; TooLarge as soon as the output passes ``limit`` (a compression bomb
    is fed in 64 KiB pieces and never inflated whole)."""
    if not [c for c in codings(encoding) if c != "identity"]:
        return raw
    d = StreamDecoder(encoding or "")
    out = bytearray()
    try:
        for i in range(0, len(raw), _PIECE):
            out += d.decompress(raw[i : i + _PIECE])
            if limit is not None and len(out) > limit:
                raise TooLarge(f"decoded body over {limit} bytes")
        out += d.flush()
    except ValueError:
        raise
    except Exception as e:  # zlib.error, brotli.error, zstandard.ZstdError
        raise ValueError(f"corrupt {encoding} body: {e}") from e
    if limit is not None and len(out) > limit:
        raise TooLarge(f"decoded body over {limit} bytes")
    return bytes(out)


SINGLE_CODINGS = frozenset({"gzip", "deflate", "br", "zstd"})


def charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type, lower case, or None."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").lower() or None
    return None


def foreign_charset(content_type: str | None) -> str | None:
    """A charset other than UTF-8 that the receiver will decode the body with, or None.
    ValueError when Python does not know it (the receiver's reading cannot be reproduced)."""
    cs = charset(content_type)
    if cs is None or cs in UTF8_NAMES:
        return None
    try:
        info = codecs.lookup(cs)
    except LookupError:
        raise ValueError(f"unknown charset {cs!r}") from None
    if info.name == "utf-8":
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, hex, rot13: no charsets
        raise ValueError(f"unknown charset {cs!r}")
    return cs


def json_utf8(body: bytes, content_type: str | None) -> bytes:
    """A JSON body as UTF-8: decoded from the Content-Type's charset, or from UTF-16/UTF-32
    told by its first bytes (RFC 4627). ``body`` itself when it already is UTF-8.

    Most receivers ignore a JSON body's charset (RFC 8259 gives it no meaning; the MCP SDKs
    parse the bytes: UTF-8, or UTF-16/32 by their zero bytes). So when the declared charset
    does not yield JSON but the bytes as such do (``charset=utf-16`` on a UTF-8 body), the
    body is read as those receivers read it: otherwise it would pass as "not JSON" to a
    receiver that finds a message in it."""
    try:
        cs = foreign_charset(content_type)
    except ValueError:
        cs = None  # a charset nobody can decode: the SDKs read the bytes, and so does this
    if cs is not None:
        try:
            text = body.decode(cs, "replace")
        except UnicodeError:  # (utf-16 without a byte order mark is refused, not replaced)
            text = ""
        if _JSON_START.match(text) or not _JSON_START_B.match(_by_content(body)):
            return text.encode("utf-8", "surrogatepass")
    return _by_content(body)


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
