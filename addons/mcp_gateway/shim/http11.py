"""A minimal asyncio HTTP/1.1 server: just enough for one MCP endpoint on loopback.

Keep-alive, Content-Length and chunked request bodies, chunked streaming responses.
No third-party web framework (starlette/uvicorn are not product dependencies).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

HEADER_LIMIT = 64 * 1024
REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""

    @property
    def path(self) -> str:
        t = self.target
        if t.startswith(("http://", "https://")):  # absolute-form (sent to a proxy)
            rest = t.split("://", 1)[1]
            slash = rest.find("/")
            t = rest[slash:] if slash >= 0 else "/"
        q = t.find("?")
        return t[:q] if q >= 0 else t

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def read_request(
    reader: asyncio.StreamReader, max_body: int, writer: asyncio.StreamWriter | None = None
) -> Request | None:
    """Read one request; None on a clean EOF between requests. Raises HttpError."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    lines = head[:-4].split(b"\r\n")
    while lines and not lines[0]:  # tolerate stray CRLF between requests
        lines.pop(0)
    if not lines:
        return None
    try:
        method, target, version = lines[0].decode("latin-1").split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(400, "unsupported HTTP version")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        name = name.lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    req = Request(method, target, version, headers)
    if writer is not None and headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    te = headers.get("transfer-encoding", "").lower()
    if te:
        if te != "chunked":
            raise HttpError(400, "unsupported transfer-encoding")
        req.body = await _read_chunked(reader, max_body)
    elif "content-length" in headers:
        try:
            n = int(headers["content-length"])
        except ValueError:
            raise HttpError(400, "bad content-length") from None
        if n < 0:
            raise HttpError(400, "bad content-length")
        if n > max_body:
            raise HttpError(413, f"request body of {n} bytes exceeds the limit of {max_body} bytes")
        try:
            req.body = await reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise HttpError(400, "incomplete request body") from None
    return req


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(body)
            if len(body) + size > max_body:
                raise HttpError(413, f"request body exceeds the limit of {max_body} bytes")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        raise HttpError(400, "malformed chunked body") from None


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"]
    out += [f"{k}: {v}\r\n" for k, v in headers]
    out.append("\r\n")
    return "".join(out).encode("latin-1")


class ResponseWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.streaming = False

    async def send(
        self, status: int, headers: list[tuple[str, str]], body: bytes = b"", close: bool = False
    ) -> None:
        hs = [*headers, ("Content-Length", str(len(body)))]
        if close:
            hs.append(("Connection", "close"))
        self.writer.write(_head(status, hs) + body)
        await self.writer.drain()

    async def start_stream(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.streaming = True
        self.writer.write(_head(status, [*headers, ("Transfer-Encoding", "chunked")]))
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        if data:
            self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await self.writer.drain()

    async def chunk_and_end(self, data: bytes) -> None:
        """The last chunk and the end of the body in one write (one TCP segment)."""
        self.writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        await self.writer.drain()
        self.streaming = False

    async def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
        self.streaming = False
