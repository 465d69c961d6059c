"""The relay's minimal HTTP/1.1 client against canned loopback servers."""

from __future__ import annotations

import asyncio

import pytest
from mcp_gateway.shim.httpclient import ConnectFailed, MiniHttp, ProtocolError
from shimtest_helpers import free_port


class Canned:
    """A loopback server answering each request with the next canned response."""

    def __init__(self, responses: list[bytes], close_after: set[int] = frozenset()) -> None:
        self.responses = responses
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0

    async def __aenter__(self) -> Canned:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                body = await r.readexactly(n) if n else b""
                self.requests.append(head + body)
                i = len(self.requests) - 1
                w.write(self.responses[i])
                await w.drain()
                if i in self.close_after:
                    w.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            w.close()


async def test_length_chunked_and_close_delimited_bodies_and_keepalive():
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: text/event-stream\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ]
    async with Canned(responses, close_after={3}) as srv:
        c = MiniHttp(f"http://127.0.0.1:{srv.port}/mcp")
        r = await c.request("POST", {"x-a": "1"}, b'{"a":1}')
        assert r.status_code == 200 and await r.aread() == b"hello"
        r = await c.request("POST", {}, b"{}")
        assert r.headers["content-type"] == "text/event-stream"
        assert [x async for x in r.aiter_bytes()] == [b"abc", b"de"]
        r = await c.request("POST", {}, b"{}")
        assert r.status_code == 202 and await r.aread() == b""
        r = await c.request("GET", {})
        assert await r.aread() == b"until close"
        await c.aclose()
        assert srv.connections == 1  # keep-alive reused for all four
        first = srv.requests[0]
        assert first.startswith(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"x-a: 1\r\n" in first and b"Content-Length: 7\r\n" in first
        assert first.endswith(b'{"a":1}')


async def test_proxy_uses_absolute_form():
    async with Canned([b"HTTP/1.1 204 No Content\r\n\r\n"]) as proxy:
        c = MiniHttp("http://127.0.0.1:9/mcp", proxy=f"http://127.0.0.1:{proxy.port}")
        r = await c.request("DELETE", {})
        assert r.status_code == 204
        assert proxy.requests[0].startswith(b"DELETE http://127.0.0.1:9/mcp HTTP/1.1\r\n")
        await c.aclose()


async def test_stale_keepalive_connection_is_retried_once():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with Canned([ok, ok], close_after={0}) as srv:
        c = MiniHttp(f"http://127.0.0.1:{srv.port}/mcp")
        r = await c.request("POST", {}, b"1")
        await r.aread()
        await asyncio.sleep(0.05)  # the server closed the idle connection meanwhile
        r = await c.request("POST", {}, b"2")
        assert await r.aread() == b"ok"
        assert srv.connections == 2
        await c.aclose()


async def test_connect_failure_and_broken_responses():
    c = MiniHttp(f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(ConnectFailed):
        await c.request("POST", {}, b"{}")
    async with Canned(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], close_after={0}
    ) as srv:
        c = MiniHttp(f"http://127.0.0.1:{srv.port}/mcp")
        r = await c.request("POST", {}, b"{}")
        with pytest.raises(ProtocolError):
            await r.aread()
    async with Canned([b"garbage\r\n\r\n"]) as srv:
        c = MiniHttp(f"http://127.0.0.1:{srv.port}/mcp")
        with pytest.raises(ProtocolError):
            await c.request("POST", {}, b"{}")
    with pytest.raises(ValueError, match="only http://"):
        MiniHttp("https://127.0.0.1/mcp")
