"""Correlate stage: pair each response with the request it answers.

A request is remembered when it passes the gateway; its response gets the request's
method, name and the request->response latency. Streamable HTTP answers a request on the
same HTTP exchange (looked up there first, so clients without sessions can reuse ids); the
GET stream, resumed streams and the legacy HTTP+SSE transport answer on another exchange
(looked up by server + session). Both directions are tracked: server->client requests
(sampling, elicitation, roots) are answered by client POSTs.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any

from .headers import is_event_stream
from .message import Direction, ErrorCode, Exchange, Kind, Message
from .pipeline import ORDER_CORRELATE


@dataclass(slots=True)
class Pending:
    method: str
    name: str | None
    t0: float  # time.monotonic() when the request passed
    cost: int = 0  # bytes counted for it in Correlator._bytes (fixed when it was stored)
    # its answer stream ended before the answer, with event ids: a stream resumed from one of
    # them (the last ones seen on it) may bring it
    resumable: frozenset = frozenset()
    done: bool = False  # its answer came (a progress token it gave may be reused since)
    # a tasks/result for a task the gateway did not see created: its answer may be any
    # tool's result, and every rule reads it (Message.any_target)
    any_target: bool = False


# a legacy progress token that two requests in flight, for different tools, gave: its
# progress notifications may be either's
AMBIGUOUS = Pending("", None, 0.0)


class Correlator:
    """Bounded maps of in-flight requests; old entries are evicted first."""

    def __init__(
        self, max_entries: int = 100_000, ttl: float = 3600.0, max_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        # the ids, sessions, methods and names are the peers' strings, of any length (up to
        # mcp_max_message_bytes): the entries count by their size too, not only their number
        self.max_bytes = max_bytes
        self._bytes = 0
        self._by_session: OrderedDict[tuple, Pending] = OrderedDict()
        # (server, session, task id) -> the tool a task-augmented tools/call started: its
        # result comes later, as the answer to tasks/result
        # (and the other way: a task-augmented sampling or elicitation request, 2025-11-25)
        self.tasks: OrderedDict[tuple, tuple[str, str | None]] = OrderedDict()
        # (server, session, SSE event id) -> the request an answer event answered: a stream
        # resumed with Last-Event-ID replays it after its request left the maps above
        self.events: OrderedDict[tuple, Pending] = OrderedDict()
        # (server, legacy session, progress token) -> the request that asked for progress: on
        # the legacy HTTP+SSE transport its progress comes on the GET stream, apart from it
        self.progress: OrderedDict[tuple, Pending] = OrderedDict()

    @staticmethod
    def _session_key(msg: Message, req_direction: Direction) -> tuple | None:
        # By the server's address, never the name a client may give a loopback server
        # (Mcp-Gateway-Server): a legacy GET stream named one way and its POSTs another left
        # every answer unpaired, out of the rules scoped to its tool.
        ex = msg.exchange
        session = ex.session_id or ex.legacy_session
        if session is None:
            return None
        return (ex.address or ex.server, session, req_direction, id_key(msg.id))

    def in_flight(self, msg: Message) -> bool:
        """Whether a request of the same direction with ``msg``'s id is still waiting for
        its answer, on this exchange or in this session. The answer names only the id: a
        second request with it would take the first one's answer (its method and tool, so
        its tool-scoped rules and its audit row) or leave that answer unattributed."""
        ident = id_key(msg.id)
        local = msg.exchange.scratch.get("pending")
        if local and (msg.direction, ident) in local:
            return True
        key = self._session_key(msg, msg.direction)
        if key is None:
            return False
        p = self._by_session.get(key)
        return p is not None and time.monotonic() - p.t0 <= self.ttl

    def forget(self, msg: Message, p: Pending) -> None:
        """The request that left ``p`` was not forwarded (the gateway answered it): no
        answer will come, so its id is not in flight."""
        local = msg.exchange.scratch.get("pending")
        k = (msg.direction, id_key(msg.id))
        if local and local.get(k) is p:
            del local[k]
        key = self._session_key(msg, msg.direction)
        if key is not None and self._by_session.get(key) is p:
            del self._by_session[key]
            self._bytes -= p.cost

    def release(self, ex: Exchange) -> None:
        """The client requests of an exchange that no answer will come for: their ids are
        free again."""
        local = ex.scratch.get("pending")
        if not local:
            return
        session = ex.session_id or ex.legacy_session
        for k, p in list(local.items()):
            if k[0] is not Direction.CLIENT_TO_SERVER:
                continue
            del local[k]
            key = (ex.address or ex.server, session, *k) if session is not None else None
            if key is not None and self._by_session.get(key) is p:
                del self._by_session[key]
                self._bytes -= p.cost

    def charge(self, ex: Exchange, k: tuple, p: Pending, extra: int) -> None:
        """``p`` (of ``ex``, its local key ``k``) holds ``extra`` bytes more."""
        session = ex.session_id or ex.legacy_session
        if not extra or session is None:
            return
        key = (ex.address or ex.server, session, *k)
        if self._by_session.get(key) is p:
            p.cost += extra
            self._bytes += extra
            self._evict()

    def remember(self, msg: Message) -> Pending:
        p = Pending(msg.method or "", msg.name, time.monotonic())
        local: dict = msg.exchange.scratch.setdefault("pending", {})
        if len(local) < 10_000:
            local[(msg.direction, id_key(msg.id))] = p
        key = self._session_key(msg, msg.direction)
        if key is not None:
            old = self._by_session.pop(key, None)
            if old is not None:
                self._bytes -= old.cost
            p.cost = _cost(key, p)
            self._by_session[key] = p
            self._bytes += p.cost
            self._evict()
        return p

    def match(self, msg: Message, resumed_from: str | None = None) -> Pending | None:
        """The request ``msg`` answers (taken out of the maps). ``resumed_from``: the
        Last-Event-ID of the resumed stream ``msg`` came on, where only a request whose own
        stream ended before its answer, after that event id, can take it (not one in flight
        on a live stream that reuses the id, nor one whose stream the client cut to mark it
        so, while resuming another request's stream)."""
        req_dir = (
            Direction.CLIENT_TO_SERVER
            if msg.direction is Direction.SERVER_TO_CLIENT
            else Direction.SERVER_TO_CLIENT
        )
        local = msg.exchange.scratch.get("pending")
        key = self._session_key(msg, req_dir)
        p = None
        # the id as sent, then as the clients read it: the official SDKs take "7" for 7.
        # A loose match leaves the request pending: clients differ on which forms they take
        # ("0_7" is 7 to Python only, "7.0" to TypeScript only), so a decoy answer the
        # client ignores must not use up the request its real answer names.
        for n, ident in enumerate((id_key(msg.id), *loose_ids(msg.id))):
            if local:
                p = local.pop((req_dir, ident), None) if n == 0 else local.get((req_dir, ident))
            if key is not None:
                k = (*key[:3], ident)
                q = self._by_session.get(k)
                if q is not None and resumed_from is not None and resumed_from not in q.resumable:
                    q = None
                if n == 0 and q is not None:
                    del self._by_session[k]
                    self._bytes -= q.cost
                p = p or q
            if p is not None:
                break
        return p

    def _evict(self) -> None:
        while len(self._by_session) > self.max_entries or (
            self._bytes > self.max_bytes and len(self._by_session) > 1
        ):
            k, v = self._by_session.popitem(last=False)
            self._bytes -= v.cost
        if self._by_session:
            now = time.monotonic()
            while self._by_session:
                k, v = next(iter(self._by_session.items()))
                if now - v.t0 <= self.ttl:
                    break
                del self._by_session[k]
                self._bytes -= v.cost

    def __len__(self) -> int:
        return len(self._by_session)


def _cost(key: tuple, p: Pending) -> int:
    """Roughly the bytes an entry holds beyond its fixed overhead."""
    n = 200 + len(p.method) + len(p.name or "")
    for part in key:
        if isinstance(part, str):
            n += len(part)
        elif isinstance(part, tuple):  # ("~", repr) of an odd id
            n += sum(len(x) for x in part if isinstance(x, str))
    return n


def id_key(v: Any) -> Any:
    """A JSON-RPC id as a key, as servers echo it: 1 and "1" are different ids, and an
    integral float (``8.0``, ``9e0``) is the integer (zod reads it as one, pydantic too,
    and both answer ``"id": 8``)."""
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return ("~", repr(v))  # (no str: the number 8.5 is not the id "8.5")


def loose_ids(v: Any) -> list:
    """The other ids a client takes an answer's id for. The TypeScript SDK reads it with
    ``Number()`` ("7", " 7 ", "7.0", "7e0", "0x7" are 7), the Python SDK with ``int()``
    ("+7", "0_7" too), so a server that echoes the id as a string still answers request 7:
    without this, the answer named no method or tool, and tool-scoped rules skipped it."""
    if isinstance(v, str):
        s = v.strip()
        if not s or len(s) > 40:
            return []
        for read in (int, float, lambda t: int(t, 0)):
            try:
                n = read(s)
            except ValueError:
                continue
            if isinstance(n, float) and not (n.is_integer() and abs(n) < 2**63):
                return []
            return [int(n)] if int(n) != v else []
        return []
    if isinstance(v, int) and not isinstance(v, bool):
        return [str(v)]
    return []


def pending_of(msg: Message) -> Pending | None:
    """The in-flight entry a request left for its response (its name can still change)."""
    local = msg.exchange.scratch.get("pending")
    return local.get((msg.direction, id_key(msg.id))) if local else None


SSE_EVENT_IDS = "sse_event_ids"  # Exchange.scratch: its answer stream carried an event id
SSE_IDS = "sse_ids"  # Exchange.scratch: the last event ids its answer stream carried


def note_event_id(scratch: dict, eid: str) -> None:
    """An event id seen on an exchange's answer stream: a client that lost the stream resumes
    it from the last one it received (the last 64 are kept, none over 256 characters)."""
    if len(eid) > 256:
        return
    ids = scratch.get(SSE_IDS)
    if ids is None:
        ids = scratch[SSE_IDS] = OrderedDict()
    ids[eid] = None
    ids.move_to_end(eid)
    if len(ids) > 64:
        ids.popitem(last=False)


CALL = "call"  # Exchange.scratch: the Pending of its only client request, else None


def _whole_answer(ex: Exchange, resp: Any) -> bool:
    """A POST's answer that is one JSON body (not an event stream, not the legacy
    transport's 202): once it has come, no answer to the POST's requests can follow, read or
    not. (A JSON answer the gateway could not read, oversized, corrupt or cut short, left its
    request's id taken for an hour, and the client's next use of it was refused.)"""
    if ex.legacy_session is not None or not 200 <= resp.status_code < 300:
        return False
    if resp.status_code == 202:
        return False
    headers = getattr(resp, "headers", None)
    ctype = headers.get("content-type") if headers is not None else None
    return bool(ctype) and not is_event_stream(ctype)


class CorrelateStage:
    name = "correlate"
    order = ORDER_CORRELATE
    always = True

    def __init__(self, correlator: Correlator | None = None) -> None:
        self.correlator = correlator if correlator is not None else Correlator()

    def on_exchange_end(self, ex: Exchange) -> None:
        """The client requests of a POST that no answer will come for are free again: one
        the server refused (an HTTP error status: 401 for an expired token, 404 for a
        session it forgot) or redirected, one whose connection failed before any answer
        began, one whose answer stream was cut and cannot be resumed (but on the legacy
        transport, where answers come on the GET stream). The TypeScript SDK sends a
        request again, with its id, after refreshing its token."""
        if not ex.scratch.get("pending"):
            return
        flow = ex.flow
        resp = getattr(flow, "response", None)
        cut = getattr(flow, "error", None) is not None
        if resp is not None and resp.status_code < 300:
            # An answer stream cut before its answers: a client resumes it (GET with
            # Last-Event-ID, the answers may still come) only when it carried an event id;
            # else no answer can come, and a TypeScript client that rejoins the session
            # after a restart counts its ids from 0 again.
            if ex.scratch.get(SSE_EVENT_IDS) and ex.legacy_session is None:
                # (its answers may come on a stream the client resumes from one of these)
                ids = frozenset(ex.scratch.get(SSE_IDS) or ())
                extra = sum(100 + len(i) for i in ids)  # (the server's strings: counted)
                for k, p in ex.scratch["pending"].items():
                    if k[0] is Direction.CLIENT_TO_SERVER:
                        p.resumable = ids
                        self.correlator.charge(ex, k, p, extra)
            if _whole_answer(ex, resp) and not cut:
                pass  # (its requests left unanswered stay so: freed below)
            elif not cut or ex.legacy_session is not None or ex.scratch.get(SSE_EVENT_IDS):
                return
        elif resp is None and (ex.legacy_session is not None or not cut):
            return
        # (a redirect answers none either: httpx and fetch POST the body again, with its
        # ids, to the Location; Starlette redirects /mcp/ to /mcp)
        self.correlator.release(ex)

    def process(self, msg: Message) -> None:
        if msg.direction is Direction.SERVER_TO_CLIENT and msg.kind is not Kind.RESULT:
            if msg.kind is not Kind.ERROR and msg.name is None:
                # A notification or request on a request's own answer stream (a tool's log
                # and progress messages, its sampling and elicitation requests) comes from
                # that request: it names its tool (or prompt, or resource), so rules scoped
                # to the tool read what the tool sends there too, not its result alone.
                call = msg.exchange.scratch.get(CALL)
                ev = _event_key(msg) if msg.sse_event_id else None
                if call is not None:
                    msg.name = call.name
                    if call.any_target:
                        msg.any_name = True  # (a tool's message on an unknown task's stream)
                    if ev is not None and call.name is not None:
                        _learn_event(self.correlator, ev, call)
                elif ev is not None and _resumed(msg.exchange):  # (replayed there)
                    seen = self.correlator.events.get(ev)
                    if seen is not None:
                        msg.name = seen.name
                elif msg.exchange.legacy_session is not None:
                    # The legacy transport sends everything on the GET stream; a progress
                    # notification names its request by the token the request gave
                    seen = _progress_origin(self.correlator, msg)
                    if seen is AMBIGUOUS:
                        msg.any_name = True  # every tool scope applies: it may be either's
                    elif seen is not None:
                        msg.name = seen.name
        if msg.kind is Kind.REQUEST:
            c = self.correlator
            task = _task_origin(c, msg) if msg.method == "tasks/result" else None
            if msg.direction is Direction.CLIENT_TO_SERVER and c.in_flight(msg):
                if msg.stopped:
                    # refused already (an exchange refusal, a member differing in case): it
                    # is not forwarded, and the request in flight keeps its entry (storing
                    # this one, then undoing it, left that request's answer unattributed)
                    return
                # A client reusing the id of a request still in flight: the servers answer
                # both (the Python SDK's legacy and WebSocket servers) or route the first
                # one's answer to the second's stream (its streamable HTTP keys streams by
                # the id), and the answer of a crm_* call was matched to a ping, its
                # tool-scoped rules skipped and its audit row unnamed. The spec forbids
                # reusing an id in a session; the SDK clients count up.
                msg.block(
                    ErrorCode.INVALID_REQUEST,
                    "Invalid Request: a request with this id is already in flight",
                    http_status=400,
                    stage=self.name,
                )
                return
            p = c.remember(msg)
            if msg.direction is Direction.CLIENT_TO_SERVER:
                # the request whose answer stream this exchange's s2c messages are on (None
                # once a second one shares it: a batch, a WebSocket connection)
                sc = msg.exchange.scratch
                sc[CALL] = None if CALL in sc else p
                if msg.exchange.legacy_session is not None and msg.name is not None:
                    _learn_progress(c, msg, p)
            if task is not None:
                # a task's result is the tool's result: its answer is scanned as the tool's
                # (rules scoped to the tool) and audited under it; a server's task-augmented
                # sampling or elicitation request's result is that request's answer
                p.method, p.name = task
            elif msg.method == "tasks/result":
                # A task the gateway did not see created: made in another session (the SDK
                # servers keep one task store for all of them), pushed out of the memory
                # below, or before a restart. Its result may be any tool's: unattributed, a
                # crm_export task's result read from a second session skipped every rule
                # scoped to crm_*. Every rule reads it, whatever its method and tool scope.
                p.any_target = True
            # not forwarded after all (refused by a later stage): no answer will free its id
            undo = partial(c.forget, msg, p)
            if msg.refunds is None:
                msg.refunds = [undo]
            else:
                msg.refunds.append(undo)
        elif msg.kind in (Kind.RESULT, Kind.ERROR) and msg.id is not None:
            ev = _event_key(msg) if msg.sse_event_id else None
            # (only on a resumed stream: an event id is unique in its session, or for its
            # client where there is none, and a server may count them again, so on any
            # other stream an id seen before named an earlier request's tool, and the answer
            # of the request in flight went out under it, outside its own tool's rules)
            resumed = ev is not None and _resumed(msg.exchange)
            seen = self.correlator.events.get(ev) if resumed else None
            if seen is not None:
                # An answer event replayed on a resumed stream (GET with Last-Event-ID): the
                # server resends it with its event id after its request was answered, so the
                # id matches nothing (or a later request reusing it). It is that request's
                # answer again: the first time through, a rule scoped to its tool redacted
                # it; replayed unattributed, the client read it whole.
                msg.method = seen.method
                msg.name = seen.name
                return
            # On a resumed stream (not the legacy one, whose GET carries every answer) an
            # answer the event ids do not name is one replayed or one whose stream was cut:
            # a request in flight on a live stream, reusing the id, does not take it (once
            # the client had pushed the replayed crm_* answer's event out, its ping or echo
            # with that id did, and the answer went out outside the rules scoped to crm_*;
            # unknown, it meets every rule).
            ex = msg.exchange
            p = self.correlator.match(
                msg,
                resumed_from=ex.header("last-event-id")
                if _resumed(ex) and ex.legacy_session is None
                else None,
            )
            if p is not None:
                p.done = True
                msg.method = p.method
                msg.name = p.name
                msg.any_target = p.any_target
                msg.latency_ms = round((time.monotonic() - p.t0) * 1000.0, 3)
                if p.method in _TASKED:
                    _learn_task(self.correlator, msg, p)
                if ev is not None:
                    _learn_event(self.correlator, ev, p)
            else:
                _orphan_error(msg)
                if (
                    msg.method is None
                    and msg.direction is Direction.SERVER_TO_CLIENT
                    and ex.http_method == "GET"
                ):
                    # An answer on a stream apart from its request (the legacy transport's
                    # GET stream carries them all; a WebSocket connection) whose request is
                    # not known: pushed out of the bounded maps (by requests that no answer
                    # frees, of any session or server), or sent in a way the gateway did not
                    # read. It may be any request's answer, and went out under no tool, past
                    # the rules scoped to crm_*: every rule reads it, as an unknown answer
                    # replayed on a resumed stream.
                    msg.any_target = True
        else:
            _orphan_error(msg)


def _orphan_error(msg: Message) -> None:
    """An error that names no request, on the answer of a POST that carried one, answers
    that request: servers refuse a request they will not serve (a 2026-07-28 client's
    `server/discover` probe, a request without a session, an unsupported protocol version)
    with HTTP 400 and an error whose id is `null` (the TypeScript SDK, the Python SDK 2.x)
    or `"server-error"` (the Python SDK 1.x), and the TypeScript client quotes the body in
    the error it throws. Unattributed, the refusal was audited under no method or tool
    (usage counted its error under none) and the rules scoped to the tool did not read it."""
    if msg.kind is not Kind.ERROR or msg.direction is not Direction.SERVER_TO_CLIENT:
        return
    p = msg.exchange.scratch.get(CALL)
    if p is not None:
        msg.method = p.method
        msg.name = p.name
        msg.any_target = p.any_target
        msg.latency_ms = round((time.monotonic() - p.t0) * 1000.0, 3)


MAX_EVENTS = 50_000  # answer events remembered for resumed streams
MAX_PROGRESS = 10_000  # legacy requests' progress tokens remembered


def _progress_key(msg: Message, token: Any) -> tuple | None:
    if isinstance(token, bool) or not isinstance(token, str | int):
        return None
    if isinstance(token, str) and len(token) > 256:
        token = ("sha256", hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest())
    ex = msg.exchange
    return (ex.address or ex.server, ex.legacy_session, id_key(token))


def _learn_progress(c: Correlator, msg: Message, p: Pending) -> None:
    """A legacy (HTTP+SSE) request that asks for progress: its tool's progress notifications
    come on the session's GET stream, tied to it only by the token. Without this they named
    no tool, and rules scoped to the tool skipped what it reported there."""
    params = msg.payload.get("params") if isinstance(msg.payload, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict) or len(p.name or "") > 1024:
        return
    key = _progress_key(msg, meta.get("progressToken"))
    if key is None or len(key[1]) > 1024:
        return
    old = c.progress.get(key)
    if old is AMBIGUOUS or (old is not None and not old.done and old.name != p.name):
        # Two requests in flight for different tools gave the same token: a client reusing
        # it for echo while crm_export ran had crm_export's progress named echo, outside the
        # rules scoped to crm_*. Such a token's progress meets every tool scope (until it is
        # forgotten: the gateway cannot tell whose it is any more).
        p = AMBIGUOUS
    c.progress[key] = p
    c.progress.move_to_end(key)
    while len(c.progress) > MAX_PROGRESS:
        c.progress.popitem(last=False)


def _progress_origin(c: Correlator, msg: Message) -> Pending | None:
    if msg.method != "notifications/progress" or not c.progress:
        return None
    params = msg.payload.get("params") if isinstance(msg.payload, dict) else None
    if not isinstance(params, dict):
        return None
    key = _progress_key(msg, params.get("progressToken"))
    return c.progress.get(key) if key is not None else None


def _event_key(msg: Message) -> tuple | None:
    """None without a session: event ids are then unique per client only (which the gateway
    cannot tell apart), so one client's ids would name another's requests."""
    ex = msg.exchange
    session = ex.session_id or ex.legacy_session
    if session is None:
        return None
    eid = msg.sse_event_id
    if len(eid) > 256:  # (the server's string, of any length: kept by its digest)
        eid = ("sha256", hashlib.sha256(eid.encode("utf-8", "surrogatepass")).hexdigest())
    return (ex.address or ex.server, session, eid)


def _resumed(ex: Exchange) -> bool:
    """A stream the client resumed (GET with Last-Event-ID): the server replays there. (Not
    a POST carrying the header, which servers ignore: its answers are fresh, and looked up
    by event id they took an earlier answer's tool where a server counts its ids again.)"""
    return ex.http_method == "GET" and ex.header("last-event-id") is not None


def _learn_event(c: Correlator, key: tuple, p: Pending) -> None:
    sess = key[1]
    if isinstance(sess, str) and len(sess) > 1024:
        return
    # (kept after its request left the byte-bounded maps: a client's method or tool name,
    # up to mcp_max_message_bytes, is not kept 50 000 times over)
    if len(p.method) > 1024 or (p.name is not None and len(p.name) > 1024):
        return
    c.events[key] = p
    while len(c.events) > MAX_EVENTS:
        c.events.popitem(last=False)


# requests a receiver may answer with a task (CreateTaskResult), whose result then comes
# as the answer to tasks/result
_TASKED = frozenset({"tools/call", "sampling/createMessage", "elicitation/create"})


def _task_key(msg: Message, task_id: Any, req_dir: Direction) -> tuple | None:
    if not isinstance(task_id, str):
        return None
    if len(task_id) > 512:
        # a long id (the server chooses it) by its digest: ignoring it left the task's
        # result unattributed, out of its tool's rules
        task_id = ("sha256", hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest())
    ex = msg.exchange
    # (the direction of the request that made the task: the client names the tasks of its
    # answers, the server those of its own; neither may name the other's)
    return (ex.address or ex.server, ex.session_id or ex.legacy_session, task_id, req_dir)


def _learn_task(c: Correlator, msg: Message, p: Pending) -> None:
    """A tools/call (or a server's sampling or elicitation request) answered with a task
    (CreateTaskResult): remember which request, and which tool, it runs."""
    res = msg.payload.get("result") if isinstance(msg.payload, dict) else None
    task = res.get("task") if isinstance(res, dict) else None
    if not isinstance(task, dict):
        return
    req_dir = (
        Direction.CLIENT_TO_SERVER
        if msg.direction is Direction.SERVER_TO_CLIENT
        else Direction.SERVER_TO_CLIENT
    )
    key = _task_key(msg, task.get("taskId"), req_dir)
    if key is None or (p.name is not None and len(p.name) > 1024):
        return
    c.tasks[key] = (p.method, p.name)
    c.tasks.move_to_end(key)
    while len(c.tasks) > 10_000:
        c.tasks.popitem(last=False)


def _task_origin(c: Correlator, msg: Message) -> tuple[str, str | None] | None:
    params = msg.payload.get("params") if isinstance(msg.payload, dict) else None
    if not isinstance(params, dict):
        return None
    key = _task_key(msg, params.get("taskId"), msg.direction)
    return c.tasks.get(key) if key is not None else None
