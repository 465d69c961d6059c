"""Relay the MCP client's stdio to the bridge's HTTP endpoint, through the gateway.

Each line the client writes on our stdin is one JSON-RPC message; it is POSTed to the
bridge via the gateway (an HTTP proxy) with ``Mcp-Gateway-Server: NAME``. Every message
of the answers (JSON or SSE) and of the session's GET stream is written to stdout, one
JSON object per line.

Order: the next stdin message is POSTed only once the previous POST's response head has
arrived; the bridge sends that head only after the message reached the server's stdin,
so messages reach the server in the client's order even though answers stream
concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mcp_gateway.message import ErrorCode
from mcp_gateway.parse import encode_header_value, encode_json

from .bridge import LONG_LIVED, TOKEN_HEADER, frame, id_key, jsonrpc_error, loads, peek_id
from .httpclient import ConnectFailed, MiniHttp, ProtocolError, Response

SERVER_NAME_HEADER = "mcp-gateway-server"
EOF_GRACE = 2.0  # seconds to let answers in flight arrive after the client closed stdin
HEAD_WAIT = 0.25  # seconds to wait for a request's response head before the next message
READ_CHUNK = 256 * 1024
GATEWAY_DOWN = ErrorCode.INTERNAL_ERROR


class GatewayUnreachable(Exception):
    pass


# ---------------------------------------------------------------------------- stdio
class LineReader:
    """Lines from an async ``read(n)``; lines over ``max_line`` become ``(None, prefix, size)``."""

    def __init__(self, read: Callable[[int], Awaitable[bytes]], max_line: int) -> None:
        self.read = read
        self.max_line = max_line
        self.buf = bytearray()
        self.eof = False

    async def next(self) -> tuple[bytes | None, bytes, int] | None:
        """``(line, b"", 0)``, ``(None, prefix, size)`` for an oversized line, None at EOF."""
        discarding = 0
        prefix = b""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                if discarding:
                    size = discarding + nl
                    del self.buf[: nl + 1]
                    return None, prefix, size
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                if len(line) > self.max_line:
                    return None, line[:512], len(line)
                return line.rstrip(b"\r"), b"", 0
            if len(self.buf) > self.max_line:
                if not discarding:
                    prefix = bytes(self.buf[:512])
                discarding += len(self.buf)
                self.buf.clear()
            if self.eof:
                if discarding:
                    return None, prefix, discarding
                if self.buf:
                    line = bytes(self.buf)
                    self.buf.clear()
                    return line.rstrip(b"\r"), b"", 0
                return None
            chunk = await self.read(READ_CHUNK)
            if not chunk:
                self.eof = True
            else:
                self.buf += chunk


async def open_stdin() -> Callable[[int], Awaitable[bytes]]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    fd = sys.stdin.fileno()
    try:
        st = os.fstat(fd)
        if stat.S_ISCHR(st.st_mode) and not os.isatty(fd):
            # /dev/null: asyncio takes any character device as a pipe, then fails to poll
            # it in a callback (EPERM), and the shim waited for ever instead of seeing EOF
            raise ValueError("a character device that cannot be polled")
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
        return reader.read
    except (ValueError, OSError):  # a regular file or something else: read in a thread

        async def read(n: int) -> bytes:
            return await asyncio.to_thread(os.read, fd, n)

        return read


class StdoutWriter:
    """Ordered, whole-line writes to stdout (non-blocking pipe when possible)."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.closed = asyncio.Event()

    async def open(self, fileobj: Any = None) -> None:
        fileobj = fileobj or sys.stdout.buffer
        self._fileobj = fileobj
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.connect_write_pipe(
                lambda: _WriteProtocol(self.closed), fileobj
            )
            self.writer = asyncio.StreamWriter(transport, protocol, None, loop)
            self.transport = transport
        except (ValueError, OSError):
            self.writer = None

    def write_line(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        if self.writer is not None:
            self.writer.write(data + b"\n")
        else:
            try:
                self._fileobj.write(data + b"\n")
                self._fileobj.flush()
            except (BrokenPipeError, OSError):
                self.closed.set()

    async def drain(self) -> None:
        if self.writer is not None and not self.closed.is_set():
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.closed.set()

    async def close(self) -> None:
        await self.drain()


class _WriteProtocol(asyncio.streams.FlowControlMixin):
    def __init__(self, closed: asyncio.Event) -> None:
        super().__init__()
        self._closed_event = closed

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_event.set()
        super().connection_lost(exc)

    def _get_close_waiter(self, stream: Any) -> asyncio.Future:  # StreamWriter needs it
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


# ---------------------------------------------------------------------------- SSE
async def iter_sse(resp: Response):
    """Yield the ``data`` of each event of a ``text/event-stream`` body (bytes)."""
    buf = b""
    data: list[bytes] = []
    event = b""
    async for chunk in resp.aiter_bytes():
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = buf[:nl]
            buf = buf[nl + 1 :]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data and event in (b"", b"message"):
                    yield b"\n".join(data)
                data = []
                event = b""
                continue
            if line.startswith(b":"):
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                event = value
    if data and event in (b"", b"message"):
        yield b"\n".join(data)


# ---------------------------------------------------------------------------- relay
class Relay:
    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        name: str,
        gateway: str | None,
        direct_fallback: bool = False,
        timeout: float = 300.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        log: Callable[[str], None] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.extra_headers = dict(extra_headers or {})
        self.token = token
        self.name = name
        self.gateway = gateway
        self.direct_fallback = direct_fallback
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.closing = False  # shutting down: streams cut by the shutdown are not errors
        self.out = StdoutWriter()
        self.tasks: set[asyncio.Task] = set()
        self.cancelled: set[tuple[bool, Any]] = set()
        self._get_task: asyncio.Task | None = None
        self._last_gateway_warning = 0.0
        self._direct = gateway is None
        # never taken from HTTP(S)_PROXY: the gateway is explicit (--gateway)
        self.client = MiniHttp(url, proxy=gateway)
        self._direct_client: MiniHttp | None = None
        if gateway is None:
            self._direct_client = self.client

    # -------------------------------------------------------------- plumbing
    def _headers(self) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            SERVER_NAME_HEADER: self.name,
        }
        h.update(self.extra_headers)
        if self.token is not None:
            h[TOKEN_HEADER] = self.token
        if self.session_id:
            h["mcp-session-id"] = self.session_id
        if self.protocol_version:
            h["mcp-protocol-version"] = self.protocol_version
        return h

    def emit(self, raw: bytes) -> None:
        self.out.write_line(frame(raw))

    def emit_error(self, id_: Any, code: int, message: str) -> None:
        self.out.write_line(jsonrpc_error(id_, code, message))

    def _gateway_down(self, e: Exception) -> str:
        msg = (
            f"cannot reach the gateway at {self.gateway} ({type(e).__name__}: {e}); start it "
            "with `mitmdump -s addons/gateway.py`, point --gateway at it, or pass --direct to "
            "allow an uninspected direct connection"
        )
        now = time.monotonic()
        if now - self._last_gateway_warning > 30.0:
            self._last_gateway_warning = now
            self.log(f"mcp-gateway stdio: [{self.name}] {msg}")
        return msg

    def _use_direct(self) -> None:
        if self._direct_client is None:
            self._direct_client = MiniHttp(self.url)
        self.log(
            f"mcp-gateway stdio: [{self.name}] WARNING: the gateway at {self.gateway} is "
            "unreachable; --direct given, so traffic now goes straight to the server, "
            "NOT inspected by the gateway"
        )
        self._direct = True

    async def _send(
        self,
        method: str,
        body: bytes | None,
        *,
        stream: bool,
        extra: dict[str, str] | None = None,
    ) -> Response:
        """Send via the gateway (or directly); raises GatewayUnreachable with a clear message.

        ``stream=False`` reads the whole body (into ``resp.content``) before returning."""
        client = self._direct_client if self._direct else self.client
        assert client is not None
        try:
            headers = self._headers()
            if extra:
                headers.update(extra)
            resp = await client.request(method, headers, body)
            if not stream:
                await resp.aread(limit=1 << 20)
            return resp
        except ConnectFailed as e:
            if self._direct:
                raise GatewayUnreachable(f"cannot reach the bridge at {self.url} ({e})") from None
            if self.direct_fallback:
                self._use_direct()
                return await self._send(method, body, stream=stream, extra=extra)
            raise GatewayUnreachable(self._gateway_down(e)) from None
        except ProtocolError as e:
            where = "the bridge" if self._direct else f"the gateway at {self.gateway}"
            raise GatewayUnreachable(f"HTTP error talking to {where}: {e}") from None

    def _spawn(self, coro: Awaitable[None]) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    # -------------------------------------------------------------- main loop
    async def run(self, read: Callable[[int], Awaitable[bytes]], stop: asyncio.Event) -> int:
        """Relay until stdin ends, stdout closes or ``stop`` is set."""
        await self.out.open()
        lines = LineReader(read, self.max_message_bytes)
        stop_wait = asyncio.ensure_future(stop.wait())
        closed_wait = asyncio.ensure_future(self.out.closed.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(lines.next())
                done, _ = await asyncio.wait(
                    {nxt, stop_wait, closed_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if nxt not in done:
                    nxt.cancel()
                    return 0
                item = nxt.result()
                if item is None:
                    # stdin ended: answers already on their way get a moment to arrive
                    # (a client piping a file), then the shim stops
                    pending = [t for t in self.tasks if not t.done()]
                    if pending:
                        all_done = asyncio.ensure_future(asyncio.wait(pending))
                        await asyncio.wait(
                            {all_done, stop_wait, closed_wait},
                            timeout=EOF_GRACE,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                        all_done.cancel()
                    return 0
                line, prefix, size = item
                if line is None:
                    self._too_large(prefix, size)
                elif line.strip():
                    step = asyncio.ensure_future(self.handle_line(line))
                    done, _ = await asyncio.wait(
                        {step, stop_wait, closed_wait}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if step not in done:
                        step.cancel()
                        return 0
                    step.result()
                await self.out.drain()
        finally:
            stop_wait.cancel()
            closed_wait.cancel()

    def _too_large(self, prefix: bytes, size: int) -> None:
        id_ = peek_id(prefix)
        msg = (
            f"message of {size} bytes exceeds the shim's limit of {self.max_message_bytes} "
            "bytes (--max-message-bytes); not forwarded"
        )
        self.log(f"mcp-gateway stdio: [{self.name}] {msg}")
        if id_ is not None and b'"method"' in prefix:
            self.emit_error(id_, ErrorCode.TOO_LARGE, msg)

    async def handle_line(self, line: bytes) -> None:
        try:
            obj, line = loads(line)
        except ValueError as e:
            self.log(
                f"mcp-gateway stdio: [{self.name}] the client sent a line that is not JSON ({e})"
            )
            text = str(e)  # (the parser's own words already begin "Parse error: " mostly)
            if not text.startswith("Parse error"):
                text = f"Parse error: {text}"
            self.emit_error(None, ErrorCode.PARSE_ERROR, text)
            return
        if isinstance(obj, list):
            self.emit_error(None, ErrorCode.INVALID_REQUEST, "JSON-RPC batches are not supported")
            return
        if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
            self.emit_error(
                None, ErrorCode.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message"
            )
            return
        method = obj.get("method")
        raw = frame(line)
        if method is not None and "id" in obj:
            await self._request(obj, raw)
            return
        if method == "notifications/cancelled":
            params = obj.get("params")
            if isinstance(params, dict):
                with contextlib.suppress(TypeError):
                    self.cancelled.add(id_key(params.get("requestId")))
        await self._other(obj, raw)
        if method == "notifications/initialized" and self._get_task is None:
            self._get_task = asyncio.ensure_future(self._get_stream())

    async def _other(self, obj: dict, raw: bytes) -> None:
        """A notification or a response: POST it, expect 202."""
        try:
            resp = await self._send("POST", raw, stream=False, extra=mirror_headers(obj))
        except GatewayUnreachable as e:
            if "method" not in obj:
                self.log(f"mcp-gateway stdio: [{self.name}] a response to the server was lost: {e}")
            return
        if resp.status_code >= 400:
            kind = obj.get("method") or f"response to {obj.get('id')!r}"
            self.log(
                f"mcp-gateway stdio: [{self.name}] {kind} refused with HTTP {resp.status_code}: "
                f"{_error_text(resp.content)}"
            )
        elif resp.headers.get("content-type", "").startswith("application/json") and resp.content:
            # a gateway may answer a blocked notification with a JSON-RPC error; nothing to do
            pass

    async def _request(self, obj: dict, raw: bytes) -> None:
        """POST a request; return once its response head arrived (so the next message
        cannot overtake it), or after HEAD_WAIT seconds when a proxy holds the head back
        (plain mitmdump buffers event streams; an approval step may pause a request).
        ``initialize`` always waits: later messages need its session id."""
        head = asyncio.Event()
        task = asyncio.ensure_future(self._post_request(obj, raw, head))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        wait = asyncio.ensure_future(head.wait())
        try:
            timeout = None if obj.get("method") == "initialize" else HEAD_WAIT
            await asyncio.wait({wait, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wait.cancel()

    async def _post_request(self, obj: dict, raw: bytes, head: asyncio.Event) -> None:
        id_ = obj["id"]
        try:
            resp = await asyncio.wait_for(
                self._send("POST", raw, stream=True, extra=mirror_headers(obj)),
                self.timeout + 10.0,
            )
            if obj.get("method") == "initialize" and resp.status_code == 200:
                sid = resp.headers.get("mcp-session-id")
                if sid:
                    self.session_id = sid
        except GatewayUnreachable as e:
            self.emit_error(id_, GATEWAY_DOWN, str(e))
            return
        except TimeoutError:
            self.emit_error(id_, ErrorCode.INTERNAL_ERROR, f"no answer within {self.timeout:g}s")
            return
        finally:
            head.set()
        await self._consume(obj, id_, resp)

    async def _consume(self, obj: dict, id_: Any, resp: Response) -> None:
        is_init = obj.get("method") == "initialize"
        answered = False
        try:
            limit = None if obj.get("method") in LONG_LIVED else self.timeout + 10.0
            async with asyncio.timeout(limit):
                ctype = resp.headers.get("content-type", "").lower()
                if resp.status_code == 200 and ctype.startswith("text/event-stream"):
                    async for data in iter_sse(resp):
                        if not data.strip():
                            continue  # priming event
                        answered |= self._deliver(data, id_, is_init)
                        await self.out.drain()
                elif resp.status_code == 200 and ctype.startswith("application/json"):
                    body = await resp.aread()
                    answered |= self._deliver(body, id_, is_init)
                elif resp.status_code == 202:
                    answered = True  # cancelled, or a gateway dropped it: no answer
                else:
                    body = await resp.aread()
                    answered = self._http_error(id_, resp.status_code, body)
        except TimeoutError:
            self.emit_error(id_, ErrorCode.INTERNAL_ERROR, f"no answer within {self.timeout:g}s")
            return
        except (ProtocolError, ConnectionError) as e:
            if not self.closing:  # a stream cut by the shutdown is not an error
                self.log(f"mcp-gateway stdio: [{self.name}] the answer stream broke: {e!r}")
        finally:
            await resp.aclose()
        key = id_key(id_)
        try:
            was_cancelled = key in self.cancelled
            self.cancelled.discard(key)
        except TypeError:  # an id no request may have ({"a": 1}, [1]): answered with an
            was_cancelled = False  # error, and once a traceback on stderr as well
        if not answered and not was_cancelled and not self.closing:
            self.emit_error(
                id_,
                ErrorCode.INTERNAL_ERROR,
                "the answer stream ended without a response (the gateway or the bridge closed it)",
            )

    def _deliver(self, data: bytes, id_: Any, is_init: bool) -> bool:
        """Write one message of an answer; True if it is the response to ``id_``."""
        try:
            msg, data = loads(data)
        except ValueError:
            self.log(f"mcp-gateway stdio: [{self.name}] skipped a non-JSON event from the server")
            return False
        if isinstance(msg, list):
            hit = False
            for m in msg:
                self.emit(encode_json(m))
                hit |= isinstance(m, dict) and "method" not in m and m.get("id") == id_
            return hit
        if not isinstance(msg, dict):
            return False
        is_response = "method" not in msg and ("result" in msg or "error" in msg)
        if is_response and msg.get("id") is None and "error" in msg:
            # an error about our request without an id (e.g. a gateway refusal): give it ours
            msg["id"] = id_
            data = encode_json(msg)
        if is_init and is_response and isinstance(msg.get("result"), dict):
            pv = msg["result"].get("protocolVersion")
            if isinstance(pv, str):
                self.protocol_version = pv
        self.emit(data)
        return is_response and msg.get("id") == id_

    def _http_error(self, id_: Any, status: int, body: bytes) -> bool:
        try:
            msg = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            msg = None
        if isinstance(msg, dict) and isinstance(msg.get("error"), dict):
            err = msg["error"]
            code = err.get("code") if isinstance(err.get("code"), int) else ErrorCode.INTERNAL_ERROR
            message = str(err.get("message", ""))
            if status == 401 and code == ErrorCode.UNAUTHORIZED and "bridge token" in message:
                message += " (does the gateway strip the Mcp-Gateway-Shim-Token header?)"
            out: dict[str, Any] = {"code": code, "message": message}
            if "data" in err:
                out["data"] = err["data"]
            self.out.write_line(orjson.dumps({"jsonrpc": "2.0", "id": id_, "error": out}))
            return True
        self.emit_error(
            id_, ErrorCode.INTERNAL_ERROR, f"HTTP {status} from the gateway: {_error_text(body)}"
        )
        return True

    # -------------------------------------------------------------- GET stream
    async def _get_stream(self) -> None:
        """The session's GET stream; reopened (backoff up to 5 s) while the session lives."""
        failures = 0
        while self.session_id:
            try:
                resp = await self._send("GET", None, stream=True)
            except GatewayUnreachable as e:
                failures += 1
                if failures == 1:
                    self.log(f"mcp-gateway stdio: [{self.name}] GET stream: {e}")
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            try:
                if resp.status_code in (404, 405, 406):
                    return
                if resp.status_code != 200:
                    failures += 1
                    await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                    continue
                failures = 0
                async for data in iter_sse(resp):
                    if data.strip():
                        self.emit(data)
                        await self.out.drain()
            except (ProtocolError, ConnectionError):
                failures += 1
            finally:
                await resp.aclose()
            await asyncio.sleep(0.2)

    # -------------------------------------------------------------- shutdown
    async def end_session(self) -> None:
        """DELETE the session (bounded to 1 s), at most once. Called while the bridge still
        runs: a DELETE sent after it stopped fails at the gateway and is audited as such."""
        if not self.session_id:
            return
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send("DELETE", None, stream=False), 1.0)
        finally:
            self.session_id = None

    async def close(self, delete_session: bool = True) -> None:
        self.closing = True
        if self._get_task is not None:
            self._get_task.cancel()
        for t in list(self.tasks):
            t.cancel()
        if delete_session:
            await self.end_session()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.out.close(), 1.0)
        for c in {self.client, self._direct_client}:
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.aclose()


def mirror_headers(obj: dict) -> dict[str, str] | None:
    """For a 2026-07-28 message (``_meta`` names the protocol version), the headers that
    mirror its body on HTTP: ``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``."""
    params = obj.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    pv = meta.get("io.modelcontextprotocol/protocolVersion") if isinstance(meta, dict) else None
    method = obj.get("method")
    if not isinstance(pv, str) or not isinstance(method, str):
        return None
    h = {"mcp-protocol-version": encode_header_value(pv), "mcp-method": encode_header_value(method)}
    key = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}.get(method)
    if key is not None and isinstance(params.get(key), str):
        h["mcp-name"] = encode_header_value(params[key])
    return h


def _error_text(body: bytes) -> str:
    try:
        msg = orjson.loads(body)
        if isinstance(msg, dict) and isinstance(msg.get("error"), dict):
            return str(msg["error"].get("message", ""))[:300]
    except orjson.JSONDecodeError:
        pass
    text = body[:300].decode("utf-8", "replace").strip()
    return text or "(empty body)"
