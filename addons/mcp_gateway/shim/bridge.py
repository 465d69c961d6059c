"""Serve one stdio MCP server as a loopback streamable-HTTP endpoint (``/mcp``).

Wire design (keeps order, stays simple):

* ``POST`` of a request: the message is written to the child's stdin as one line, *then*
  the response head goes out (``text/event-stream``). The stream carries the messages the
  child emits for that request (progress with its token, or anything while it is the only
  request in flight: logging, sampling, elicitation, roots...) and ends with the response.
  A client that sent the next message only after it saw the head of the previous answer
  therefore never overtakes itself (the relay does exactly that). A client whose
  ``Accept`` lacks ``text/event-stream`` gets ``application/json`` with just the response.
* ``POST`` of a notification or response: written to the child, then ``202``.
* ``GET``: the session's stream for server messages that belong to no request in flight
  (buffered until a GET stream is open).
* ``DELETE``: ends the session (the child keeps running; a new ``initialize`` starts a new
  session on the same child, or on a fresh one when the child refuses a second
  ``initialize``, as Go SDK servers do). One child per bridge, never one per POST.

Security (MCP security best practices for local proxies): the command is fixed on the
command line, never chosen by a request; the server binds loopback only; ``Host`` must be
a loopback name, a present ``Origin`` must be a loopback origin; an optional bearer token
(``Authorization: Bearer T`` or ``Mcp-Gateway-Shim-Token: T``) is compared in constant time.

Child crash: every request in flight gets a JSON-RPC error (-32603); the child is
restarted with backoff and, if the session had been initialized, the client's last
``initialize`` request and ``notifications/initialized`` are replayed to the new child
(the replayed response is swallowed), so the client's session keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from mcp_gateway.message import ErrorCode
from mcp_gateway.parse import decode_json, encode_json, peek_id

from .child import ChildUnavailable, Supervisor, _describe_exit
from .http11 import HEADER_LIMIT, HttpError, Request, ResponseWriter, read_request

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SESSION_HEADER = "mcp-session-id"
TOKEN_HEADER = "mcp-gateway-shim-token"
GET_BUFFER_MAX = 1000
# Bytes of server messages waiting for their client stream before the bridge stops reading the
# server's stdout (the server then blocks on its writes, as with any slow pipe reader). A server
# that wrote faster than its client read (a flood of log notifications, a host that reads its
# stdout slowly) was read whole into memory: 200 MB of notifications took 200 MB of the shim's.
# One message always gets through, however large (the check comes before each read).
QUEUE_BUDGET = 16 * 1024 * 1024
KEEPALIVE_SECONDS = 25.0
LONG_LIVED = frozenset({"subscriptions/listen"})


def id_key(v: Any) -> tuple[bool, Any]:
    """Request ids are strings or integers; 1 and "1" are different ids."""
    return (isinstance(v, str), v)


def jsonrpc_error(id_: Any, code: int, message: str, data: Any = None) -> bytes:
    err: dict[str, Any] = {"code": int(code), "message": message}
    if data is not None:
        err["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": id_, "error": err})


def loads(raw: bytes) -> tuple[Any, bytes]:
    """A message as the gateway and the SDK clients read it (``parse.decode_json`` with the
    leniency of a server's answer), and its bytes as valid UTF-8.

    orjson refuses what they read: a lone surrogate escape (``JSON.stringify`` and Python's
    ``json.dumps`` of a string cut inside an emoji write ``"\\ud83d"``), invalid UTF-8
    (JavaScript decodes it with replacement characters, as the gateway does a server's answer)
    and NaN. Such an answer was skipped as "not JSON", and its request waited out --timeout
    (300 s) for an answer that had come. Raises ValueError for what is not JSON."""
    value = decode_json(raw, lenient_utf8=True)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raw = raw.decode("utf-8", "replace").encode("utf-8")
    return value, raw


def frame(raw: bytes) -> bytes:
    """One JSON value on one line: re-serialize only if the bytes contain a line break."""
    if b"\n" in raw or b"\r" in raw:
        try:
            return encode_json(loads(raw)[0])
        except ValueError:  # not JSON: still one line
            return raw.replace(b"\r\n", b" ").replace(b"\r", b" ").replace(b"\n", b" ")
    return raw


_LONG_RUN = re.compile(r"[^\s\"'`,;:(){}\[\]<>|]{16,}")


class Waiter:
    """A client request in flight: the stream its answer (and related messages) go to."""

    __slots__ = ("id", "key", "queue", "progress_token", "started", "sse", "method", "retry")

    def __init__(self, id_: Any, progress_token: Any, sse: bool, method: str = "") -> None:
        self.id = id_
        self.method = method
        self.key = id_key(id_)
        self.queue: asyncio.Queue[tuple[bytes | None, bool]] = asyncio.Queue()
        self.progress_token = progress_token
        self.started = time.monotonic()
        self.sse = sse
        self.retry: bytes | None = None  # an initialize to send again to a fresh child

    def push(self, raw: bytes) -> None:
        self.queue.put_nowait((raw, False))

    def finish(self, raw: bytes | None) -> None:
        """The final message; None ends the stream without an answer (cancelled)."""
        self.queue.put_nowait((raw, True))


class GetStream:
    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()


class Bridge:
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        timeout: float = 300.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        restart: bool = True,
        max_restarts: int = 5,
        backoff_initial: float = 0.5,
        name: str | None = None,
        on_fatal: Callable[[str], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"the bridge binds loopback only (127.0.0.1, ::1, localhost), not {host!r}"
            )
        self.argv = argv
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.name = name or argv[0]
        self.on_fatal = on_fatal
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.sup = Supervisor(
            argv,
            env,
            on_line=self._on_child_line,
            on_oversize=self._on_child_oversize,
            on_exit=self._on_child_exit,
            on_restart=self._replay_initialize,
            on_give_up=self._on_give_up,
            room=self._room,
            max_line=max_message_bytes,
            restart=restart,
            max_restarts=max_restarts,
            backoff_initial=backoff_initial,
            log=self.log,
        )
        self.pending: dict[tuple[bool, Any], Waiter] = {}
        self.by_token: dict[tuple[bool, Any], Waiter] = {}
        self.replays: dict[tuple[bool, Any], asyncio.Future] = {}
        self._replay_n = 0
        self.session_id: str | None = None
        self.init_payload: dict | None = None
        # an initialize reached the running child (its answer may have been dropped: a client
        # that gave up waiting for a fresh process to start; judged by its answer, the child
        # was taken for a new one, and every later session got `duplicate "initialize"`)
        self.child_initialized = False
        # a fresh process is being started for a refused initialize: refusals that come
        # meanwhile (the old process's, for sessions sent with it) are not each given one
        self._renewing = False
        self._tasks: set[asyncio.Task] = set()
        self.initialized_seen = False
        self.get_streams: list[GetStream] = []
        self._streaming: set[Waiter] = set()  # requests whose answer stream is being written
        self.get_buffer: deque[bytes] = deque()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._fatal = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/mcp"

    async def start(self) -> None:
        """Start the child (raises OSError when the command cannot run), then listen."""
        await self.sup.start()
        self._server = await asyncio.start_server(
            self._handle_conn, self.host, self.port, limit=HEADER_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Requests still waiting for the server end now (no answer), so that their handlers
        # return instead of being cancelled when the event loop stops.
        pending, self.pending = self.pending, {}
        for w in pending.values():
            w.finish(None)
        self._end_session()
        for w in list(self._conns):
            with contextlib.suppress(Exception):
                w.close()
        await self.sup.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def kill_now(self) -> None:
        self.sup.kill_now()

    @property
    def child_pid(self) -> int | None:
        return self.sup.child.pid if self.sup.child else None

    # ------------------------------------------------------------------ child -> client
    def _queued_bytes(self) -> int:
        """Bytes waiting in the queues of live streams (counted afresh: nothing to leak).
        A stream whose answer came stays counted until its client has read it all."""
        n = 0
        for w in self._streaming:
            for raw, _final in w.queue._queue:  # type: ignore[attr-defined]
                n += len(raw) if raw else 0
        for s in self.get_streams:
            for raw in s.queue._queue:  # type: ignore[attr-defined]
                n += len(raw) if raw else 0
        return n

    async def _room(self) -> None:
        """Wait while more than QUEUE_BUDGET bytes wait for client streams."""
        while self._queued_bytes() > QUEUE_BUDGET:
            await asyncio.sleep(0.02)

    def _on_child_line(self, line: bytes) -> None:
        try:
            obj, line = loads(line)
        except ValueError:
            # (its words are shown, not a long run that may be a token: the log is no place
            # for what the scanner never saw)
            shown = _LONG_RUN.sub(
                lambda m: m.group()[:4] + "…", line[:4096].decode("utf-8", "replace")
            )[:120]  # (cut after masking: a token cut in two would show its first part)
            self.log(
                f"mcp-gateway: [{self.name}] skipped a non-JSON line on the server's stdout "
                f"({len(line)} bytes): {shown!r}"
            )
            return
        if isinstance(obj, list):
            for item in obj:
                self._route(item, encode_json(item))
        else:
            self._route(obj, frame(line))

    def _route(self, obj: Any, raw: bytes) -> None:
        if not isinstance(obj, dict):
            self.log(
                f"mcp-gateway: [{self.name}] skipped a JSON value that is not a JSON-RPC message"
            )
            return
        if "method" in obj:
            self._route_server_message(obj, raw)
            return
        if "id" in obj and ("result" in obj or "error" in obj):
            try:
                key = id_key(obj["id"])
                fut = self.replays.get(key)
            except TypeError:  # unhashable id
                self.log(f"mcp-gateway: [{self.name}] skipped a response with an invalid id")
                return
            if fut is not None:
                if not fut.done():
                    fut.set_result(obj)
                return
            w = self.pending.pop(key, None)
            if w is None:
                self.log(
                    f"mcp-gateway: [{self.name}] dropped a response for id {obj['id']!r}: no such "
                    "request in flight (it timed out or was cancelled)"
                )
                return
            if w.method == "initialize":
                if "error" in obj and w.retry is not None and not self._renewing:
                    # A server that keeps one session per process (the Go SDK: `duplicate
                    # "initialize" received`) refuses a later client's session: that client
                    # gets a fresh process, as a stdio client would. One at a time: several
                    # refusals read together each started a process, and all but the last
                    # ran on, orphaned (a client sending initializes at once made them
                    # without end); the others get the server's refusal.
                    self._renewing = True
                    self.pending[key] = w
                    task = asyncio.get_running_loop().create_task(self._renew_for(w))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    return
            self._forget_token(w)
            w.finish(raw)
            return
        self.log(f"mcp-gateway: [{self.name}] skipped an invalid JSON-RPC message from the server")

    def _route_server_message(self, obj: dict, raw: bytes) -> None:
        target: Waiter | None = None
        params = obj.get("params")
        if isinstance(params, dict) and "progressToken" in params:
            with contextlib.suppress(TypeError):
                target = self.by_token.get(id_key(params["progressToken"]))
        if target is None:
            sse = [w for w in self.pending.values() if w.sse]
            if len(sse) == 1:
                target = sse[0]
            elif not self.get_streams and sse:
                target = sse[-1]  # better some stream than none: avoid a deadlock
        if target is not None and target.sse:
            target.push(raw)
        else:
            self._to_get(raw)

    def _to_get(self, raw: bytes) -> None:
        if self.get_streams:
            self.get_streams[-1].queue.put_nowait(raw)
            return
        size = len(raw) + sum(map(len, self.get_buffer))
        while self.get_buffer and (len(self.get_buffer) >= GET_BUFFER_MAX or size > QUEUE_BUDGET):
            size -= len(self.get_buffer.popleft())
            self.log(
                f"mcp-gateway: [{self.name}] no GET stream open; dropped the oldest buffered message"
            )
        self.get_buffer.append(raw)

    def _on_child_oversize(self, prefix: bytes, size: int) -> None:
        id_ = peek_id(prefix)
        self.log(
            f"mcp-gateway: [{self.name}] the server wrote a message of {size} bytes, over the "
            f"limit of {self.max_message_bytes} bytes (--max-message-bytes); dropped it"
        )
        if id_ is None:
            return
        w = self.pending.pop(id_key(id_), None)
        if w is None:
            return
        self._forget_token(w)
        w.finish(
            jsonrpc_error(
                w.id,
                ErrorCode.TOO_LARGE,
                f"the MCP server's response ({size} bytes) exceeds the shim's limit of "
                f"{self.max_message_bytes} bytes (--max-message-bytes)",
            )
        )

    def _fail_all(self, message: str, code: int = ErrorCode.INTERNAL_ERROR) -> None:
        pending, self.pending = self.pending, {}
        self.by_token.clear()
        for w in pending.values():
            w.finish(jsonrpc_error(w.id, code, message))

    def _on_child_exit(self, rc: int, restarting: bool) -> None:
        what = _describe_exit(rc)
        self.log(f"mcp-gateway: [{self.name}] MCP server process {what}")
        if self.pending:
            tail = "; it is being restarted" if restarting else ""
            self._fail_all(f"the MCP server process {what} while this request was in flight{tail}")

    def _on_give_up(self, why: str) -> None:
        self._fatal = True
        self.log(f"mcp-gateway: [{self.name}] the MCP server is down: {why}")
        self._fail_all(f"the MCP server is not running ({why})")
        if self.on_fatal is not None:
            self.on_fatal(why)

    async def _renew_for(self, w: Waiter) -> None:
        raw, w.retry = w.retry, None
        self.log(
            f"mcp-gateway: [{self.name}] the server refused a new session's initialize; "
            "starting a fresh server process for it"
        )
        # the old process's requests in flight get no answer from the new one
        others = {k: v for k, v in self.pending.items() if v is not w}
        for k in others:
            del self.pending[k]
        for v in others.values():
            self._forget_token(v)
            v.finish(jsonrpc_error(v.id, ErrorCode.INTERNAL_ERROR, "the MCP server was restarted"))
        self.child_initialized = False
        try:
            await self.sup.renew()
            await self.sup.write(raw or b"", timeout=self.timeout)
            self.child_initialized = True
        except ChildUnavailable as e:
            if self.pending.get(w.key) is w:
                del self.pending[w.key]
                w.finish(jsonrpc_error(w.id, ErrorCode.INTERNAL_ERROR, str(e)))
        finally:
            self._renewing = False

    async def _replay_initialize(self) -> None:
        if self.init_payload is None:
            return
        self._replay_n += 1
        rid = f"mcp-gateway-replay-{self._replay_n}"
        key = id_key(rid)
        fut = asyncio.get_running_loop().create_future()
        self.replays[key] = fut
        try:
            payload = dict(self.init_payload, id=rid)
            await self.sup.write_direct(encode_json(payload) + b"\n")
            child = self.sup.child
            exited = asyncio.ensure_future(child.proc.wait()) if child and child.proc else None
            try:
                done, _ = await asyncio.wait(
                    {fut, *([exited] if exited else [])},
                    timeout=min(self.timeout, 30.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                if exited is not None:
                    exited.cancel()
            if fut not in done:
                self.log(
                    f"mcp-gateway: [{self.name}] the restarted server did not answer initialize"
                )
                return
            if self.initialized_seen:
                note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await self.sup.write_direct(orjson.dumps(note) + b"\n")
            self.log(f"mcp-gateway: [{self.name}] restarted server re-initialized (session kept)")
        finally:
            self.replays.pop(key, None)

    def _forget_token(self, w: Waiter) -> None:
        if w.progress_token is not None:
            with contextlib.suppress(TypeError):
                if self.by_token.get(id_key(w.progress_token)) is w:
                    del self.by_token[id_key(w.progress_token)]

    # ------------------------------------------------------------------ HTTP
    async def _handle_conn(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._conns.add(writer)
        resp = ResponseWriter(writer)
        resp.reader = reader  # type: ignore[attr-defined]  # (a long-lived answer watches it)
        try:
            while True:
                try:
                    req = await read_request(reader, self.max_message_bytes, writer)
                except HttpError as e:
                    code = ErrorCode.TOO_LARGE if e.status == 413 else ErrorCode.INVALID_REQUEST
                    await self._send_error(resp, e.status, e.message, code=code, close=True)
                    return
                if req is None:
                    return
                await self._dispatch(req, resp)
                if not req.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # pragma: no cover - last resort, keep serving others
            self.log(f"mcp-gateway: [{self.name}] internal error in the bridge: {e!r}")
        finally:
            self._conns.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _send_error(
        self,
        resp: ResponseWriter,
        status: int,
        message: str,
        *,
        code: int = ErrorCode.INVALID_REQUEST,
        id_: Any = None,
        close: bool = False,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        body = jsonrpc_error(id_, code, message)
        hs = [("Content-Type", "application/json"), *(extra or [])]
        with contextlib.suppress(ConnectionError):
            await resp.send(status, hs, body, close=close)

    def _check_access(self, req: Request) -> tuple[int, str, int] | None:
        host = req.headers.get("host")
        if not host:
            return 400, "missing Host header", ErrorCode.INVALID_REQUEST
        hostname = _hostname(host)
        if hostname not in LOOPBACK_HOSTS:
            return 421, f"Host {host!r} is not a loopback name", ErrorCode.FORBIDDEN
        origin = req.headers.get("origin")
        if origin is not None and _hostname_of_origin(origin) not in LOOPBACK_HOSTS:
            return 403, f"Origin {origin!r} is not allowed", ErrorCode.FORBIDDEN
        if self.token is not None:
            given = req.headers.get(TOKEN_HEADER)
            if given is None:
                auth = req.headers.get("authorization", "")
                if auth[:7].lower() == "bearer ":
                    given = auth[7:].strip()
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "missing or wrong bridge token", ErrorCode.UNAUTHORIZED
        return None

    def _check_session(self, req: Request) -> tuple[int, str] | None:
        sid = req.headers.get(SESSION_HEADER)
        if sid is None:
            if self.session_id is None and req.method == "POST":
                return None  # no session: stateless use (e.g. 2026-07-28 clients), allowed
            return 400, "Bad Request: Missing session ID"
        if sid != self.session_id:
            return 404, "Not Found: unknown or terminated session"
        return None

    async def _dispatch(self, req: Request, resp: ResponseWriter) -> None:
        denied = self._check_access(req)
        if denied is not None:
            status, message, code = denied
            await self._send_error(resp, status, message, code=code)
            return
        if req.path != "/mcp":
            await self._send_error(resp, 404, f"no MCP endpoint at {req.path}; use /mcp")
            return
        if req.method == "POST":
            await self._post(req, resp)
        elif req.method == "GET":
            await self._get(req, resp)
        elif req.method == "DELETE":
            bad = self._check_session(req)
            if bad is not None:
                await self._send_error(resp, bad[0], bad[1])
                return
            self._end_session()
            await resp.send(204, [])
        else:
            await self._send_error(
                resp, 405, "method not allowed", extra=[("Allow", "GET, POST, DELETE")]
            )

    async def _post(self, req: Request, resp: ResponseWriter) -> None:
        ctype = req.headers.get("content-type", "application/json").lower()
        if not ctype.startswith("application/json"):
            await self._send_error(resp, 415, "Content-Type must be application/json")
            return
        try:
            obj, body = loads(req.body)
        except ValueError as e:
            await self._send_error(
                resp, 400, str(e), code=ErrorCode.PARSE_ERROR
            )  # "Parse error: …"
            return
        if isinstance(obj, list):
            await self._send_error(
                resp, 400, "JSON-RPC batches are not supported by the stdio bridge"
            )
            return
        if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
            await self._send_error(resp, 400, "not a JSON-RPC 2.0 message")
            return
        raw = frame(body) + b"\n"
        method = obj.get("method")
        is_request = method is not None and "id" in obj
        if method == "initialize" and is_request:
            self._end_session()
            self.session_id = secrets.token_hex(16)
            self.init_payload = obj
            self.initialized_seen = False
        else:
            bad = self._check_session(req)
            if bad is not None:
                await self._send_error(
                    resp, bad[0], bad[1], id_=obj.get("id") if is_request else None
                )
                return
        if not is_request:
            if method == "notifications/initialized":
                self.initialized_seen = True
            elif method == "notifications/cancelled":
                self._cancelled(obj.get("params"))
            try:
                await self.sup.write(raw, timeout=self.timeout)
            except ChildUnavailable as e:
                await self._send_error(resp, 503, str(e), code=ErrorCode.INTERNAL_ERROR)
                return
            await resp.send(202, [])
            return
        await self._request(obj, raw, req, resp)

    async def _request(self, obj: dict, raw: bytes, req: Request, resp: ResponseWriter) -> None:
        id_ = obj["id"]
        try:
            key = id_key(id_)
            hash(key)
        except TypeError:
            await self._send_error(resp, 400, "invalid request id")
            return
        if id_ is None or isinstance(id_, bool | float | dict | list):
            await self._send_error(resp, 400, "a request id must be a string or an integer")
            return
        if key in self.pending:
            await self._send_error(resp, 400, f"request id {id_!r} is already in flight", id_=id_)
            return
        accept = req.headers.get("accept", "")
        sse = "text/event-stream" in accept or "*/*" in accept or not accept
        token = None
        params = obj.get("params")
        if isinstance(params, dict) and isinstance(params.get("_meta"), dict):
            token = params["_meta"].get("progressToken")
        w = Waiter(id_, token, sse, obj.get("method", ""))
        if w.method == "initialize" and self.child_initialized:
            w.retry = raw  # a later session: sent again to a fresh child if this one refuses
        self.pending[key] = w
        if token is not None:
            with contextlib.suppress(TypeError):
                self.by_token[id_key(token)] = w
        try:
            await self.sup.write(raw, timeout=self.timeout)
            if w.method == "initialize":
                self.child_initialized = True
        except ChildUnavailable as e:
            if self.pending.get(key) is w:
                del self.pending[key]
                self._forget_token(w)
                w.finish(jsonrpc_error(id_, ErrorCode.INTERNAL_ERROR, str(e)))
        headers = [("Cache-Control", "no-cache")]
        if self.session_id is not None:
            headers.append(("Mcp-Session-Id", self.session_id))
        # long-lived by design (2026-07-28 change notifications): no per-request timeout
        deadline = w.started + (float("inf") if w.method in LONG_LIVED else self.timeout)
        if sse:
            await resp.start_stream(
                200, [("Content-Type", "text/event-stream"), ("X-Accel-Buffering", "no"), *headers]
            )
        # A client gone away shows only when written to or read from: until then the server's
        # messages are routed to this stream and would wait in its queue for ever (a dropped
        # subscriptions/listen swallowed every later notification and server request). An
        # event stream gets a keep-alive comment now and then, and a long-lived one, which no
        # further request on its connection can follow, watches its connection's end.
        reader = getattr(resp, "reader", None)
        gone = (
            asyncio.ensure_future(reader.read(1))
            if sse and deadline == float("inf") and reader is not None
            else None
        )
        self._streaming.add(w)
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    item, final = w.queue.get_nowait()  # what is there beats the deadline
                except asyncio.QueueEmpty:
                    wait = None if remaining == float("inf") else max(remaining, 0.0)
                    if sse:
                        wait = KEEPALIVE_SECONDS if wait is None else min(wait, KEEPALIVE_SECONDS)
                    got = asyncio.ensure_future(w.queue.get())
                    waits = {got} if gone is None or gone.done() else {got, gone}
                    done, _ = await asyncio.wait(
                        waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    if got in done:
                        item, final = got.result()
                    else:
                        got.cancel()
                        if gone is not None and gone in done and not gone.result():
                            raise ConnectionError("the client closed the stream") from None
                        if gone in done or (sse and time.monotonic() < deadline):
                            await resp.chunk(b": keepalive\n\n")
                            continue
                        item, final = self._timed_out(w), True
                if item is None:  # cancelled by the client: no answer
                    if sse:
                        await resp.end_stream()
                    else:
                        await resp.send(202, headers)
                    return
                if sse:
                    event = b"event: message\ndata: " + item + b"\n\n"
                    if final:
                        await resp.chunk_and_end(event)
                        return
                    await resp.chunk(event)
                elif final:
                    await resp.send(200, [("Content-Type", "application/json"), *headers], item)
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            # a disconnect is not a cancellation: the request stays in flight, its answer
            # is dropped when it comes; forget it at its deadline if none comes (a long-lived
            # one at once: none will). Its stream is gone: server messages are no longer
            # routed to it, and what it held goes to the session's GET stream.
            w.sse = False
            while not w.queue.empty():
                item, final = w.queue.get_nowait()
                if item is not None and not final:
                    self._to_get(item)

            def forget() -> None:
                if self.pending.get(w.key) is w:
                    del self.pending[w.key]
                    self._forget_token(w)

            if deadline != float("inf"):
                asyncio.get_running_loop().call_later(max(0.0, deadline - time.monotonic()), forget)
            else:
                forget()
            return
        finally:
            self._streaming.discard(w)
            if gone is not None and not gone.done():
                gone.cancel()

    def _cancelled(self, params: Any) -> None:
        if not isinstance(params, dict):
            return
        try:
            key = id_key(params.get("requestId"))
            w = self.pending.pop(key, None)
        except TypeError:
            return
        if w is not None:
            self._forget_token(w)
            w.finish(None)

    def _timed_out(self, w: Waiter) -> bytes:
        if self.pending.get(w.key) is w:
            del self.pending[w.key]
        self._forget_token(w)
        if w.method == "initialize":  # initialize must not be cancelled
            return self._timeout_error(w)
        cancel = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": w.id, "reason": f"timed out after {self.timeout:g}s"},
        }
        task = asyncio.ensure_future(self._write_quietly(orjson.dumps(cancel) + b"\n"))
        task.add_done_callback(lambda t: t.exception())
        return self._timeout_error(w)

    def _timeout_error(self, w: Waiter) -> bytes:
        self.log(f"mcp-gateway: [{self.name}] request {w.id!r} timed out after {self.timeout:g}s")
        return jsonrpc_error(
            w.id,
            ErrorCode.INTERNAL_ERROR,
            f"the MCP server did not answer within {self.timeout:g} seconds (--timeout)",
        )

    async def _write_quietly(self, data: bytes) -> None:
        with contextlib.suppress(ChildUnavailable):
            await self.sup.write(data, timeout=5.0)

    async def _get(self, req: Request, resp: ResponseWriter) -> None:
        accept = req.headers.get("accept", "")
        if "text/event-stream" not in accept:
            await self._send_error(resp, 406, "GET needs Accept: text/event-stream")
            return
        bad = self._check_session(req)
        if bad is not None:
            await self._send_error(resp, bad[0], bad[1])
            return
        stream = GetStream()
        self.get_streams.append(stream)
        while self.get_buffer:
            stream.queue.put_nowait(self.get_buffer.popleft())
        try:
            await resp.start_stream(
                200,
                [
                    ("Content-Type", "text/event-stream"),
                    ("Cache-Control", "no-cache"),
                    ("X-Accel-Buffering", "no"),
                    ("Mcp-Session-Id", self.session_id or ""),
                ],
            )
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await resp.chunk(b": keepalive\n\n")
                    continue
                if item is None:
                    await resp.end_stream()
                    return
                await resp.chunk(b"event: message\ndata: " + item + b"\n\n")
        except ConnectionError:
            return
        finally:
            if stream in self.get_streams:
                self.get_streams.remove(stream)
                # whatever it could not deliver goes back to the buffer, in order
                left = []
                while not stream.queue.empty():
                    item = stream.queue.get_nowait()
                    if item is not None:
                        left.append(item)
                for item in reversed(left):
                    self.get_buffer.appendleft(item)

    def _end_session(self) -> None:
        self.session_id = None
        streams, self.get_streams = self.get_streams, []
        for s in streams:
            s.queue.put_nowait(None)
        self.get_buffer.clear()


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _hostname_of_origin(origin: str) -> str | None:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    return (parts.hostname or "").lower() or None
