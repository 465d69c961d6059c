"""A minimal asyncio HTTP/1.1 client for the relay: plain ``http://`` to one loopback
endpoint, optionally through an HTTP proxy (absolute-form requests), keep-alive pool,
streamed bodies (Content-Length, chunked, or until close).

The relay sends every MCP message over it, so it is on the hot path; a general client
(httpx + httpcore + anyio) costs several times more CPU per request than this.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024


class ConnectFailed(OSError):
    """No TCP connection to the proxy (or to the endpoint when direct)."""


class ProtocolError(Exception):
    """The peer broke HTTP framing or closed the connection mid-response."""


def _hostport(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported here, not {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


class _Conn:
    __slots__ = ("reader", "writer", "reused")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False

    def usable(self) -> bool:
        return not (
            self.writer.is_closing() or self.reader.at_eof() or self.reader._buffer  # noqa: SLF001
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Response:
    def __init__(self, client: MiniHttp, conn: _Conn, status: int, headers: dict[str, str]) -> None:
        self._client = client
        self._conn: _Conn | None = conn
        self.status_code = status
        self.headers = headers
        self._done = False
        self._reusable = "close" not in headers.get("connection", "").lower()
        self.content = b""
        te = headers.get("transfer-encoding", "").lower()
        if status in (204, 304) or 100 <= status < 200:
            self._mode, self._left = "none", 0
        elif "chunked" in te:
            self._mode, self._left = "chunked", 0
        elif "content-length" in headers:
            try:
                self._left = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad content-length") from None
            self._mode = "length"
        else:
            self._mode, self._left, self._reusable = "close", 0, False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if self._done or conn is None:
            return
        r = conn.reader
        try:
            if self._mode == "length":
                while self._left > 0:
                    chunk = await r.read(min(self._left, 262144))
                    if not chunk:
                        raise ProtocolError("connection closed before the end of the body")
                    self._left -= len(chunk)
                    yield chunk
            elif self._mode == "chunked":
                while True:
                    line = await r.readuntil(b"\r\n")
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while (await r.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        break
                    left = size
                    while left > 0:
                        chunk = await r.read(min(left, 262144))
                        if not chunk:
                            raise ProtocolError("connection closed inside a chunk")
                        left -= len(chunk)
                        yield chunk
                    await r.readexactly(2)
            elif self._mode == "close":
                while chunk := await r.read(262144):
                    yield chunk
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            self._reusable = False
            raise ProtocolError(f"malformed response body ({type(e).__name__})") from None
        except ConnectionError as e:
            self._reusable = False
            raise ProtocolError(f"connection lost ({e})") from None
        self._done = True
        self._release()

    async def aread(self, limit: int | None = None) -> bytes:
        parts = []
        n = 0
        async for chunk in self.aiter_bytes():
            parts.append(chunk)
            n += len(chunk)
            if limit is not None and n > limit:
                await self.aclose()
                break
        self.content = b"".join(parts)
        return self.content

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._reusable and conn.usable():
            self._client._idle.append(conn)  # noqa: SLF001
        else:
            conn.close()

    async def aclose(self) -> None:
        if self._conn is not None:
            if not self._done:
                self._reusable = False
            self._release()


class MiniHttp:
    """Requests to one ``http://`` endpoint, through ``proxy`` (``http://host:port``) or direct."""

    def __init__(
        self, endpoint: str, proxy: str | None = None, connect_timeout: float = 10.0
    ) -> None:
        host, port, path = _hostport(endpoint)
        self.endpoint = endpoint
        self.host_header = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if proxy:
            phost, pport, _ = _hostport(proxy)
            self.connect_to = (phost, pport)
            self.target = f"http://{self.host_header}{path}"
        else:
            self.connect_to = (host, port)
            self.target = path
        self.connect_timeout = connect_timeout
        self._idle: list[_Conn] = []
        self._closed = False

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*self.connect_to, limit=HEAD_LIMIT),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as e:
            raise ConnectFailed(f"{type(e).__name__}: {e}") from None
        return _Conn(reader, writer)

    def _get_idle(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                conn.reused = True
                return conn
            conn.close()
        return None

    async def request(
        self, method: str, headers: dict[str, str], body: bytes | None = None
    ) -> Response:
        """Send a request; return once the response head arrived (the body streams)."""
        head = [f"{method} {self.target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        for k, v in headers.items():
            head.append(f"{k}: {v}\r\n")
        if body is not None or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body or b'')}\r\n")
        head.append("\r\n")
        data = "".join(head).encode("latin-1") + (body or b"")
        for attempt in range(2):
            conn = self._get_idle() if attempt == 0 else None
            if conn is None:
                conn = await self._connect()
            try:
                conn.writer.write(data)
                await conn.writer.drain()
            except ConnectionError as e:
                conn.close()
                if conn.reused and attempt == 0:
                    continue  # a stale keep-alive connection: the request was not sent
                raise ProtocolError(f"connection lost while sending ({e})") from None
            try:
                return await self._read_head(conn)
            except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as e:
                conn.close()
                # The request went out; only an idempotent one may be sent again (a POST
                # could run a tool twice), and only if the peer said nothing at all.
                if conn.reused and attempt == 0 and method != "POST" and not _got_bytes(e):
                    continue
                raise ProtocolError(f"connection lost before the response ({e})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read_head(self, conn: _Conn) -> Response:
        while True:
            try:
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise ProtocolError("response head too large") from None
            lines = raw[:-4].decode("latin-1").split("\r\n")
            try:
                _, code, *_ = lines[0].split(" ", 2)
                status = int(code)
            except (ValueError, IndexError):
                raise ProtocolError(f"malformed status line {lines[0][:80]!r}") from None
            headers: dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                v = v.strip()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            if 100 <= status < 200:
                continue  # 100 Continue and friends
            return Response(self, conn, status, headers)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for c in idle:
            c.close()


def _got_bytes(e: Exception) -> bool:
    return isinstance(e, asyncio.IncompleteReadError) and bool(e.partial)
