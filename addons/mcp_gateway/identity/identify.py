"""The identify stage: who is calling, is the session theirs, which upstream credential.

Runs in ``on_exchange`` (every MCP HTTP exchange: POSTs, GET streams, DELETEs) and sets
``ex.identity``. Identity sources, in order:

1. a gateway API key (``mgw_<id>_<secret>``) -> kind ``api_key``;
2. a JWT, when ``auth.jwt`` is configured -> kind ``jwt`` (signature, issuer,
   audience, expiry with leeway; consumer and roles from configurable claims);
3. any other bearer token -> kind ``bearer``, identified by the SHA-256 of the token
   (only a 16-hex prefix is ever kept), forwarded unchanged;
4. nothing -> kind ``anonymous``, identified by the client's IP address.

A presented gateway credential that is invalid (wrong, revoked, expired, tampered...)
is always refused with 401; with ``auth.required`` a request without a gateway
credential is refused too. Refusals carry ``WWW-Authenticate: Bearer realm=...``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Any

import jwt as pyjwt

from ..message import Direction, ErrorCode, Exchange, Kind, Message, Refusal
from ..pipeline import ORDER_IDENTIFY
from .config import GatewayConfig, default_keys_db
from .jwt import Jwks, JwtRejected, claim, looks_like_jwt, roles_from
from .keys import PREFIX, KeyRejected, KeyStore
from .sessions import SessionBindings, short
from .upstream import SecretCache, Upstreams, strip_fields

# a gateway API key as ``keys.create_key`` makes it: mgw_<12 hex>_<the secret, base64url>
_KEY_SHAPE = re.compile(r"(?i)mgw_[0-9a-f]{12}_[A-Za-z0-9_-]{16,}\Z")

log = logging.getLogger("mcp_gateway.identity")

GATEWAY_KINDS = ("api_key", "jwt")


@dataclass(frozen=True, slots=True)
class Identity:
    consumer: str
    roles: tuple[str, ...] = ()
    kind: str = "anonymous"  # api_key | jwt | bearer | anonymous
    key_id: str | None = None  # api_key: the key's id
    subject: str | None = None  # jwt: the "sub" claim
    issuer: str | None = None  # jwt: the "iss" claim
    token_hash: str | None = None  # first 16 hex chars of sha256(token); never the token
    client_addr: str = ""
    name: str | None = None  # api_key: the key's name
    expires: float | None = None  # jwt: its exp claim (time.time() seconds), if it has one

    @property
    def key(self) -> str:
        """The principal: what sessions are bound to and limits are counted for."""
        if self.kind == "api_key":
            return f"key:{self.key_id}"
        if self.kind == "jwt":
            return f"jwt:{self.issuer or ''}|{self.subject or self.consumer}"
        if self.kind == "bearer":
            return f"bearer:{self.token_hash}"
        return self.consumer

    @property
    def authenticated(self) -> bool:
        """True for gateway credentials (API key, verified JWT)."""
        return self.kind in GATEWAY_KINDS

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["roles"] = list(self.roles)
        d["principal"] = self.key
        return d


def client_host(addr: str) -> str:
    if not addr:
        return "unknown"
    if addr.startswith("["):
        return addr[1 : addr.find("]")] if "]" in addr else addr
    if addr.count(":") == 1:
        return addr.rsplit(":", 1)[0]
    return addr


def extract_token(value: str | None, header: str) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    words = v.split()
    if words[0].lower() == "bearer":
        # The token is the first word: the TypeScript SDK's requireBearerAuth splits on
        # spaces and authenticates "tok" in "Bearer tok anything", so "tok x1", "tok x2", …
        # must not each be a new identity with fresh rate-limit buckets. Words are split at
        # any whitespace: the Go SDK's RequireBearerToken (strings.Fields) reads
        # "Bearer<TAB>tok" and "Bearer<NBSP>tok" as tok, which the gateway took for no
        # credential (an anonymous caller; a gateway key so written went on to the server).
        return words[1] if len(words) > 1 else None
    if header.lower() == "authorization":
        return None  # Basic, Digest...: not a bearer credential; treated as no credential
    return v  # a custom header (X-Api-Key: ...) carries the raw token


class State:
    """Everything built from one version of the config file; swapped atomically."""

    def __init__(
        self, cfg: GatewayConfig, previous: State | None = None, default_db: str | None = None
    ) -> None:
        self.cfg = cfg
        self.header = cfg.auth.header
        self.header_lower = cfg.auth.header.lower()
        self.required = cfg.auth.required
        self.realm = cfg.auth.realm.replace('"', "")
        db = cfg.keys_db or default_db or default_keys_db()
        if (
            previous is not None
            and previous.keys is not None
            and previous.keys.db == db
            and cfg.auth.api_keys
        ):
            self.keys: KeyStore | None = previous.keys
        else:
            self.keys = KeyStore(db) if cfg.auth.api_keys else None
        jcfg = cfg.auth.jwt
        if jcfg is None:
            self.jwks: Jwks | None = None
        elif previous is not None and previous.jwks is not None and previous.jwks.cfg == jcfg:
            self.jwks = previous.jwks
        else:
            self.jwks = Jwks(jcfg)
        self.secrets = previous.secrets if previous is not None else SecretCache()
        self.upstreams = Upstreams(cfg.servers, self.secrets)

    def close(self, successor: State | None = None) -> None:
        if self.keys is not None and (successor is None or successor.keys is not self.keys):
            self.keys.close()


class IdentifyStage:
    name = "identify"
    order = ORDER_IDENTIFY

    JWT_CACHE_TTL = 60.0

    def __init__(self, state: State, sessions: SessionBindings | None = None) -> None:
        self.state = state
        s = state.cfg.sessions
        self.sessions = sessions or SessionBindings(
            s.idle_timeout, s.max_sessions, max_per_identity=s.max_per_identity
        )
        self._jwt_cache: dict[bytes, tuple[Identity, float]] = {}
        self._key_idents: dict[
            tuple[bytes, str], tuple[Any, Identity]
        ] = {}  # (sha256, addr) -> (record, identity)
        # flow id -> (principal, DELETE sid, sid held open while the exchange lasts)
        self._pending: dict[str, tuple[str, str | None, str | None]] = {}
        self._masks: dict[
            str, Any
        ] = {}  # flow id -> (flow, credential) injected, to mask after sending
        self.refused = {"unauthorized": 0, "session": 0, "upstream_credential": 0}
        # SSE event id (or its digest) -> the identities it was delivered to (see process)
        self._events: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._event_owners: dict[str, OrderedDict[str, None]] = {}  # identity -> its events
        # servers (address and path) whose event ids two identities were given live: ids
        # counted per session or stream (the Go SDK's 1_0, 1_1…), not checked (see _deliver)
        self._counting: set[str] = set()
        # an id -> the address of the server that gave it first (a server of a caller's own
        # that hands him another's id gives him no right to it: see _deliver)
        self._from: dict[str, str] = {}

    def set_state(self, state: State) -> None:
        if state.jwks is not self.state.jwks:
            self._jwt_cache = {}
        self.state = state
        s = state.cfg.sessions
        self.sessions.configure(s.idle_timeout, s.max_sessions, s.max_per_identity)

    def process(self, msg: Message) -> None:
        """Server events carrying an SSE ``id``: whose they were. A client resumes a stream
        with ``Last-Event-ID``, and the SDK servers' event store is one for all sessions
        (its interface takes no session): another identity's event id, given on a GET in
        one's own session, replayed that identity's answers (a tool result) to the caller.
        So an id goes on record for the identity it was delivered to, and on a resumed
        stream an event delivered to other identities only is refused (a store keyed by
        stream, where a stream is a request id, replays another session's answers to the
        same id after one's own event)."""
        if msg.direction is Direction.CLIENT_TO_SERVER:
            if msg.method in _TASK_METHODS and msg.kind is Kind.REQUEST:
                self._task_request(msg)
            return
        if msg.kind is Kind.RESULT:
            self._task_created(msg)
        eid = msg.sse_event_id
        if not eid:
            return
        ex = msg.exchange
        ident = ex.identity
        if ident is None or ex.refusal is not None or not self.state.cfg.sessions.bind:
            return
        who = ident.key
        scope = _scope(ex)
        if scope in self._counting:
            return
        if ex.http_method == "GET" and ex.header("last-event-id") is not None:
            owners = self._events.get(_event_key(eid))
            if owners and who not in owners:
                self.refused["session"] += 1
                log.warning(
                    "mcp-gateway: event %s replayed to %s (%s) was delivered to %s; refused",
                    short(eid),
                    who,
                    ex.client_addr or "?",
                    ", ".join(sorted(owners))[:200],
                )
                msg.block(
                    ErrorCode.FORBIDDEN,
                    "Event not found (delivered to another identity)",
                    stage=self.name,
                )
                return
        self._deliver(eid, who, scope, ex.address or ex.server)

    def _task_created(self, msg: Message) -> None:
        """A task made for this identity (a CreateTaskResult): its id is on record as the
        identity's, as a delivered event id is. The SDK's default task handlers serve a task
        to the session that made it only, but a server's own handler (the SDK warns that one
        calling ``TaskResultHandler.handle()`` decides access itself) served any session's
        task to whoever named its id."""
        payload = msg.payload
        res = payload.get("result") if type(payload) is dict else None
        task = res.get("task") if type(res) is dict else None
        tid = task.get("taskId") if type(task) is dict else None
        if not isinstance(tid, str) or not tid:
            return
        ex = msg.exchange
        ident = ex.identity
        if ident is None or ex.refusal is not None or not self.state.cfg.sessions.bind:
            return
        self._deliver(_TASK + tid, ident.key, None, ex.address or ex.server)

    def _task_request(self, msg: Message) -> None:
        """``tasks/get``, ``tasks/result``, ``tasks/cancel`` of a task made for another
        identity: refused, as a session of another identity is."""
        payload = msg.payload
        params = payload.get("params") if type(payload) is dict else None
        tid = params.get("taskId") if type(params) is dict else None
        ident = msg.exchange.identity
        if not isinstance(tid, str) or ident is None or not self.state.cfg.sessions.bind:
            return
        owners = self._events.get(_event_key(_TASK + tid))
        if not owners or ident.key in owners:
            return
        self.refused["session"] += 1
        log.warning(
            "mcp-gateway: %s of task %s by %s (%s), made for %s; refused",
            msg.method,
            short(tid),
            ident.key,
            msg.exchange.client_addr or "?",
            ", ".join(sorted(owners))[:200],
        )
        msg.block(
            ErrorCode.FORBIDDEN, "Task not found (made for another identity)", stage=self.name
        )

    def _deliver(
        self, eid: str, who: str, scope: str | None = None, where: str | None = None
    ) -> None:
        key = _event_key(eid)
        events = self._events
        owners = events.get(key)
        if owners is None:
            events[key] = (who,)
            if where is not None:
                self._from[key] = where
            self._own(who, key)
            if len(events) > MAX_EVENTS:
                gone, was = events.popitem(last=False)
                self._from.pop(gone, None)
                for w in was:
                    self._disown_event(w, gone)
            return
        events.move_to_end(key)
        if where is not None and self._from.get(key, where) != where:
            # The same id from another server: not the same event. A server of the
            # caller's own (any host, in regular proxy mode) that sent him another's event
            # id, or answered with her task id, made him one of its owners, and he resumed
            # her stream (or read her task) at the real one. The id stays whose it was;
            # that server's ids are not unique.
            if scope is not None and len(self._counting) < MAX_COUNTING:
                self._counting.add(scope)
            return
        if owners and who not in owners:
            if scope is not None and len(self._counting) < MAX_COUNTING:
                # An id given live to a second identity (a replayed one of another's is
                # refused, never given): this server's ids are not unique. The Go SDK
                # counts them per session (1_0, 1_1…, every session's alike) and replays
                # from a store keyed by session: a resumed stream's own answers bore ids
                # another identity had had, and were refused. Its streams go unchecked.
                self._counting.add(scope)
            # (ids a server counts per stream or session, 1, 2, 3…, are everyone's: eight
            # identities on one id, and it is nobody's, (), not checked)
            if len(owners) < 7:
                events[key] = (*owners, who)
                self._own(who, key)
            else:
                events[key] = ()
                for w in owners:
                    self._disown_event(w, key)
        elif owners:
            mine = self._event_owners.get(who)
            if mine is not None and key in mine:
                mine.move_to_end(key)

    def _own(self, who: str, key: str) -> None:
        """``key`` is among ``who``'s events; past ``MAX_EVENTS_PER_IDENTITY`` its own oldest
        is forgotten, so that one caller's flood of events (a tool streaming thousands)
        cannot push the events of others out and resume their streams unchecked."""
        mine = self._event_owners.get(who)
        if mine is None:
            mine = self._event_owners[who] = OrderedDict()
        mine[key] = None
        if len(mine) > MAX_EVENTS_PER_IDENTITY:
            old, _ = mine.popitem(last=False)
            owners = self._events.get(old)
            if owners:
                rest = tuple(w for w in owners if w != who)
                if rest:
                    self._events[old] = rest
                else:
                    del self._events[old]
                    self._from.pop(old, None)

    def _disown_event(self, who: str, key: str) -> None:
        mine = self._event_owners.get(who)
        if mine is not None:
            mine.pop(key, None)
            if not mine:
                del self._event_owners[who]

    def _foreign_resumption(self, ex: Exchange, ident: Identity) -> Refusal | None:
        """A GET resuming a stream from an event delivered to other identities only."""
        if ex.http_method != "GET":
            return None
        last = ex.header("last-event-id")
        if not last or _scope(ex) in self._counting:
            return None
        owners = self._events.get(_event_key(last))
        if not owners or ident.key in owners:
            return None
        self.refused["session"] += 1
        log.warning(
            "mcp-gateway: %s (%s) resumed a stream from event %s delivered to %s; refused (404)",
            ident.key,
            ex.client_addr or "?",
            short(last),
            ", ".join(sorted(owners))[:200],
        )
        return Refusal(
            ErrorCode.FORBIDDEN,
            "Session not found (event delivered to another identity)",
            http_status=404,
            stage=self.name,
        )

    # -- authentication ---------------------------------------------------------------
    def identify(self, ex: Exchange) -> Identity | Refusal:
        st = self.state
        h = ex.request_headers
        raw = h.get(st.header_lower) if isinstance(h, dict) else None  # the core's lowercase map
        if raw is None:
            raw = ex.header(st.header)
        repeated = raw is not None and _repeated(ex, st.header_lower)
        if repeated and _one_value(ex, st.header_lower):
            repeated = False
            if not isinstance(h, dict):
                raw = ex.header(st.header)  # (read again: the copies were read joined)
        if not repeated and raw is not None and "," in raw:
            # two copies joined into one line by a proxy (RFC 9110 5.3): a credential
            # after a comma (Bearer opaque, Bearer mgw_<key>) is a second one
            repeated = any(extract_token(p, st.header) for p in raw.split(",")[1:])
        if repeated:
            # Authorization: Bearer opaque + Authorization: Bearer mgw_<key>: the first copy
            # made an unverified caller, and the request went on with both, the gateway key
            # to the server (which may read the last copy, or all of them). A credential
            # header holds one value (RFC 9110 11.6.2); two mean two callers at once.
            self.refused["unauthorized"] += 1
            log.warning(
                "mcp-gateway: 400 refused %s %s%s from %s: the %s header is given more than once",
                ex.http_method,
                ex.server,
                (ex.path or "").split("?", 1)[0],
                ex.client_addr or "?",
                st.header,
            )
            return Refusal(
                ErrorCode.INVALID_REQUEST,
                f"Invalid Request: the {st.header} header is given more than once",
                http_status=400,
                stage=self.name,
            )
        token = extract_token(raw, st.header)
        addr = ex.client_addr
        if token is None:
            if st.required:
                return self._unauthorized(ex, "authentication required", None, error=False)
            host = client_host(addr)
            return Identity(consumer=f"anon:{host}", kind="anonymous", client_addr=addr)
        fast = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        thash = fast.hex()[:16]
        # (MGW_… too: a key mangled in case is refused, never passed upstream as a token)
        if st.keys is not None and token[: len(PREFIX)].lower() == PREFIX:
            try:
                rec = st.keys.verify(token, fast)
            except KeyRejected as e:
                return self._unauthorized(ex, str(e), thash)
            ck = (fast, addr)
            hit = self._key_idents.get(ck)
            if hit is not None and hit[0] is rec:
                return hit[1]
            ident = Identity(
                consumer=rec.consumer,
                roles=rec.roles,
                kind="api_key",
                key_id=rec.id,
                token_hash=thash,
                client_addr=addr,
                name=rec.name,
            )
            if len(self._key_idents) > 50_000:
                self._key_idents.clear()
            self._key_idents[ck] = (rec, ident)
            return ident
        if st.jwks is not None and looks_like_jwt(token):
            now = time.time()
            hit = self._jwt_cache.get(fast)
            if hit is not None and hit[1] > now:
                ident = hit[0]
                return ident if ident.client_addr == addr else _with_addr(ident, addr)
            try:
                claims = st.jwks.verify(token)
            except JwtRejected as e:
                return self._unauthorized(ex, e.reason, thash, status=e.status)
            jc = st.jwks.cfg
            consumer = claim(claims, jc.consumer_claim)
            if not isinstance(consumer, str | int) or consumer == "":
                return self._unauthorized(
                    ex, f"token lacks the consumer claim {jc.consumer_claim!r}", thash
                )
            ident = Identity(
                consumer=str(consumer),
                roles=roles_from(claim(claims, jc.roles_claim)),
                kind="jwt",
                subject=str(claims.get("sub")) if claims.get("sub") is not None else None,
                issuer=str(claims.get("iss")) if claims.get("iss") is not None else None,
                token_hash=thash,
                client_addr=addr,
            )
            exp = claims.get("exp")
            until = now + self.JWT_CACHE_TTL
            if isinstance(exp, int | float):
                until = min(until, float(exp))
                ident = replace(ident, expires=float(exp) + float(jc.leeway or 0))
            if len(self._jwt_cache) > 50_000:
                self._jwt_cache.clear()
            self._jwt_cache[fast] = (ident, until)
            return ident
        if st.required:
            return self._unauthorized(
                ex, "not a gateway credential (API key or accepted JWT)", thash
            )
        return Identity(
            consumer=f"token:{thash}", kind="bearer", token_hash=thash, client_addr=addr
        )

    def _unauthorized(
        self, ex: Exchange, reason: str, thash: str | None, *, status: int = 401, error: bool = True
    ) -> Refusal:
        self.refused["unauthorized"] += 1
        log.warning(
            "mcp-gateway: %d refused %s %s%s from %s: %s%s",
            status,
            ex.http_method,
            ex.server,
            (ex.path or "").split("?", 1)[0],  # (not its query: /mcp?api_key=… is a credential)
            ex.client_addr or "?",
            reason,
            f" (token sha256:{thash})" if thash else "",
        )
        challenge = f'Bearer realm="{self.state.realm}"'
        if error and status == 401:
            desc = reason.replace('"', "'").replace("\\", "")
            challenge += f', error="invalid_token", error_description="{desc}"'
        headers = {"WWW-Authenticate": challenge} if status == 401 else {}
        if status == 503:
            headers["Retry-After"] = "5"
        return Refusal(
            ErrorCode.UNAUTHORIZED,
            f"unauthorized: {reason}",
            http_status=status,
            headers=headers,
            stage=self.name,
        )

    # -- the stage hooks ---------------------------------------------------------------
    def reauthenticate(self, ex: Exchange) -> Refusal | None:
        """An exchange that lives on (a WebSocket connection): whether the gateway credential
        it was admitted with still holds (a key revoked, a JWT expired since). None if it
        does, or if it was admitted without one."""
        ident = ex.identity
        if ident is None:
            return None
        if ident.kind == "api_key":
            keys = self.state.keys
            rec = keys.get(ident.key_id) if keys is not None and ident.key_id else None
            if rec is None:
                return self._unauthorized(ex, "unknown API key", ident.token_hash)
            if not rec.active:
                return self._unauthorized(ex, f"API key {rec.id} is revoked", ident.token_hash)
        elif ident.kind == "jwt" and ident.expires is not None and time.time() > ident.expires:
            return self._unauthorized(ex, "token expired", ident.token_hash)
        return None

    def authenticate(self, ex: Exchange) -> Refusal | None:
        """The refusal of a request whose credential is missing or wrong, told by its
        headers alone (before its body is read); None if it may go on."""
        got = self.identify(ex)
        if isinstance(got, Refusal):
            if ex.flow is not None and got.code in _STRIPPED:
                strip_fields(ex.flow.request.headers, (self.state.header_lower.encode(),))
            return got
        return None

    def on_exchange(self, ex: Exchange) -> None:
        got = self.identify(ex)
        if isinstance(got, Refusal):
            ex.refusal = got
            # a refused gateway credential must not travel further either, whatever the
            # adapter does with the refused exchange
            if ex.flow is not None and got.code in _STRIPPED:
                strip_fields(ex.flow.request.headers, (self.state.header_lower.encode(),))
            return
        ident = got
        ex.identity = ident
        st = self.state
        # session binding. A legacy (HTTP+SSE) server routes by the URL's session and
        # ignores the header: both are checked, or a header would hide the URL's session.
        sid = ex.legacy_session or ex.session_id
        checked: tuple[str, ...] = ()
        if sid and st.cfg.sessions.bind:
            checked = (sid,)
            fresh = self.sessions.owner(sid) is None  # bound on first sight by the check
            why = self.sessions.check(sid, ident.key)
            if why is None and ex.session_id and ex.legacy_session:
                other = ex.session_id if sid == ex.legacy_session else ex.legacy_session
                if other != sid:
                    checked = (sid, other)
                    why = self.sessions.check(other, ident.key)
            if why is not None:
                if len(checked) == 2 and fresh:
                    # the first id was bound on first sight just now, the second refused:
                    # the server never sees the first (else it stays bound to whoever
                    # made it up)
                    self.sessions.settle(sid, False)
                self.refused["session"] += 1
                if why == "foreign":
                    log.warning(
                        "mcp-gateway: session %s presented by %s (%s) but bound to %s; refused (404)",
                        short(sid),
                        ident.key,
                        ex.client_addr or "?",
                        self.sessions.owner(sid),
                    )
                    message = "Session not found (bound to another identity)"
                else:
                    log.info("mcp-gateway: session %s %s; refused (404)", short(sid), why)
                    message = f"Session not found ({why})"
                ex.refusal = Refusal(ErrorCode.FORBIDDEN, message, http_status=404, stage=self.name)
                return
        if st.cfg.sessions.bind:
            refusal = self._foreign_resumption(ex, ident)
            if refusal is not None:
                ex.refusal = refusal
                return
        flow = ex.flow
        if flow is not None:
            delete_sid = sid if ex.http_method == "DELETE" else None
            held = None
            if sid and st.cfg.sessions.bind and ex.http_method != "DELETE":
                # an open exchange (a GET stream, a long tool call) keeps the session alive
                self.sessions.hold(sid)
                held = sid
            if len(self._pending) > 100_000:  # exchanges whose end was never reported
                self._pending.clear()
                self.sessions.release_all()
            # every id bound here on first sight is settled by the server's answer
            self._pending[flow.id] = (ident.key, delete_sid, held, checked)
        # no token passthrough
        if ident.authenticated and flow is not None:
            headers_obj = flow.request.headers
            shared = ex.request_headers is headers_obj
            # (by the address the request goes to: a name from the Mcp-Gateway-Server header is
            # the client's to choose, and must not pick another server's credential)
            refusal, injected = st.upstreams.swap(flow, st.header, ex.address or ex.server)
            if refusal is not None:
                self.refused["upstream_credential"] += 1
                ex.refusal = refusal
                return
            if not shared and ex.request_headers is not None:
                _drop_header(ex.request_headers, st.header)
            if injected is not None:
                cred = injected[0]
                if shared:
                    # what the audit and later stages see: no secret, a placeholder instead
                    view = headers_obj.copy()
                    if cred.type != "query" and cred.header in view:
                        view[cred.header] = f"[mcp-gateway: {cred.ref}]"
                    ex.request_headers = view
                if len(self._masks) > 100_000:
                    self._masks.clear()
                self._masks[flow.id] = (flow, cred)

    def on_session(self, ex: Exchange, sid: str) -> None:
        """A legacy (HTTP+SSE) server announced ``sid`` in the ``endpoint`` event of the
        GET stream this identity opened: the session is theirs from now on, and stays
        alive while the stream is open. (Bound on first sight only, it belonged to
        whoever POSTed to it first: another identity that learnt the id took it before its
        owner's first request, and the owner was refused.)"""
        ident = ex.identity
        if ident is None or ex.refusal is not None or not self.state.cfg.sessions.bind:
            return
        self.sessions.learn(sid, ident.key)
        flow = ex.flow
        pending = self._pending.get(flow.id) if flow is not None else None
        if pending is not None and pending[2] is None:
            self.sessions.hold(sid)
            self._pending[flow.id] = (pending[0], pending[1], sid, pending[3])

    def strip_stray_credential(self, flow: Any) -> None:
        """A flow the MCP core did not handle (not MCP): never forward a gateway credential.

        Gateway API keys are recognised by their prefix; JWTs only when they verify against
        the gateway's JWKS (a JWT for someone else passes through).
        """
        if flow.id in self._pending:
            return
        st = self.state
        name = st.header_lower.encode()
        # (every copy of the header: a gateway key in the second went on when the first held
        # another token)
        # (and every credential of a copy: two joined into one line by a proxy)
        for k, v in flow.request.headers.fields:
            if k.lower() != name:
                continue
            ours = False
            for part in v.decode("utf-8", "surrogateescape").split(","):
                token = extract_token(part, st.header)
                if token is None:
                    continue
                ours = token[: len(PREFIX)].lower() == PREFIX and st.keys is not None
                if not ours and st.jwks is not None and looks_like_jwt(token):
                    ours = self._our_jwt(token)
                if ours:
                    break
            if ours:
                strip_fields(flow.request.headers, (name,))
                log.info(
                    "mcp-gateway: removed a gateway credential from non-MCP request %s %s",
                    flow.request.method,
                    flow.request.pretty_url.split("?", 1)[0],
                )
                return

    def strip_keys_in_authorization(self, flow: Any) -> None:
        """With ``auth.header`` another header (``X-Api-Key``), ``Authorization`` is the
        server's and goes on unread; a gateway API key there (a client not yet moved to the
        new header, or written after an edit of ``auth.header``) went on to the server. A
        gateway key is never a server's credential: such a copy is removed."""
        st = self.state
        if st.keys is None or st.header_lower == "authorization":
            return
        fields = flow.request.headers.fields
        kept = tuple(
            (k, v)
            for k, v in fields
            if not (
                len(k) == 13
                and k.lower() == b"authorization"
                and b"mgw_" in v.lower()
                and _KEY_SHAPE.match(
                    extract_token(v.decode("utf-8", "surrogateescape"), "Authorization") or ""
                )
            )
        )
        if len(kept) != len(fields):
            flow.request.headers.fields = kept
            log.info(
                "mcp-gateway: removed a gateway API key from the Authorization header of %s %s "
                "(the gateway reads %s)",
                flow.request.method,
                flow.request.pretty_url.split("?", 1)[0],
                st.header,
            )

    def strip_query_keys(self, flow: Any) -> None:
        """A gateway API key in the request URL's query (``?access_token=mgw_…``) is the
        gateway's credential, never the upstream's: the gateway reads keys from the
        ``Authorization`` header only, and forwarded, a hostile server could collect the key
        and replay it against the gateway. Such a parameter is removed from every request,
        MCP or not (the scanner records it as the client's credential in the query)."""
        st = self.state
        keys, jwks = st.keys is not None, st.jwks is not None
        if not keys and not jwks:
            return
        req = flow.request
        low = req.data.path.lower()
        if b"%" not in low and (not keys or b"mgw_" not in low) and (not jwks or b"eyj" not in low):
            return  # (C-speed searches: the common case; %5F or %6D spell a key too)
        fields = req.query.fields
        kept = tuple((k, v) for k, v in fields if not self._ours_in_query(v))
        if len(kept) != len(fields):
            req.query = kept
            log.info(
                "mcp-gateway: removed a gateway credential from the query of %s %s",
                req.method,
                req.pretty_url.split("?", 1)[0],
            )

    def _ours_in_query(self, value: str) -> bool:
        """A gateway API key, or a JWT the gateway accepts (``?access_token=eyJ…``, RFC 6750
        2.3): either, forwarded, a server could replay at the gateway."""
        st = self.state
        if st.keys is not None and _KEY_SHAPE.match(value) is not None:
            return True
        return st.jwks is not None and looks_like_jwt(value) and self._our_jwt(value)

    def _our_jwt(self, token: str) -> bool:
        """A JWT the gateway accepts, now or soon: forwarded, a server could replay it."""
        jwks = self.state.jwks
        assert jwks is not None
        try:
            jwks.verify(token)
        except JwtRejected as e:
            # ours all the same, naming our issuer and audience: signed by our key but
            # valid only from a little later (nbf; PyJWT checks it before the audience),
            # or not checkable now (the key set not loaded, its URL failing); either the
            # gateway accepts later, when a server that kept it could replay it
            soon = e.reason == "token not yet valid"
            return (soon or e.status == 503) and _names_us(token, jwks.cfg)
        return True

    def after_send(self, flow: Any) -> None:
        """The request has gone upstream: replace an injected secret by a placeholder."""
        hit = self._masks.pop(flow.id, None)
        if hit is not None:
            Upstreams.mask(hit[0], hit[1])

    def learn(self, flow: Any) -> None:
        """Response headers are in: learn a new Mcp-Session-Id, end a DELETEd session."""
        pending = self._pending.get(flow.id)
        resp = getattr(flow, "response", None)
        if pending is None or resp is None:
            return
        who, delete_sid, _, presented = pending
        if getattr(flow, "metadata", {}).get("mcp_gateway_answered"):
            # the gateway answered (a blocked request): the server never saw the ids, so a
            # first-sight binding is not kept, and the answer's status says nothing of them
            for p in presented:
                self.sessions.settle(p, False)
            return
        for p in presented:
            # a first-sight binding: kept if the server accepts the id, dropped if it
            # answers with an error (404 for an id it does not know: a made-up one)
            self.sessions.settle(p, resp.status_code < 400)
        sid = resp.headers.get("mcp-session-id")
        if sid and self.state.cfg.sessions.bind:
            self.sessions.learn(sid, who)
        if delete_sid and resp.status_code < 300:
            self.sessions.end(delete_sid)

    def on_exchange_end(self, ex: Exchange) -> None:
        flow = ex.flow
        if flow is None:
            return
        try:
            self.after_send(flow)
            self.learn(flow)
        finally:
            self._done(flow)

    def forget(self, flow: Any) -> None:
        self.after_send(flow)
        self._done(flow)

    def _done(self, flow: Any) -> None:
        pending = self._pending.pop(flow.id, None)
        if pending is None:
            return
        if pending[2] is not None:
            self.sessions.release(pending[2])
        for p in pending[3]:
            # no answer came (the flow failed or was cut): a first-sight binding the server
            # never accepted is not kept
            self.sessions.settle(p, False)


# the methods naming a task by its id, and the prefix of a task id among the event ids (an SSE
# id holds no NUL)
_TASK_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/cancel"})
_TASK = "task\x00"
MAX_EVENTS = 50_000  # event ids remembered with the identities they were delivered to
MAX_EVENTS_PER_IDENTITY = 2_000  # ... of them one identity's (its own oldest go first)


MAX_COUNTING = 10_000  # servers known to count their event ids


def _scope(ex: Exchange) -> str:
    """The server an event stream is of: the address the request goes to, and its path
    (two servers behind one address are told apart by path; an id is still remembered
    across all, so that another spelling of a path finds it)."""
    return f"{ex.address or ex.server}{(ex.path or '/').split('?', 1)[0]}"


def _event_key(eid: str) -> str:
    """An event id as remembered: itself, or over 256 characters its SHA-256."""
    if len(eid) <= 256:
        return eid
    return "sha256:" + hashlib.sha256(eid.encode("utf-8", "surrogatepass")).hexdigest()


# refusals of the identify stage after which the credential header is removed from the flow
_STRIPPED = (ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_REQUEST)


def _repeated(ex: Exchange, name: str) -> bool:
    """Whether the request holds header ``name`` (lowercase) more than once."""
    flow = ex.flow
    headers = flow.request.headers if flow is not None else ex.request_headers
    fields = getattr(headers, "fields", None)
    if fields is None:
        return False
    h = ex.request_headers
    if isinstance(h, dict) and len(h) >= len(fields):
        return False  # (no name came twice: the common case, without a pass over the fields)
    b = name.encode("latin-1", "replace")
    n = 0
    for k, _ in fields:
        if len(k) == len(b) and k.lower() == b:
            n += 1
            if n > 1:
                return True
    return False


def _names_us(token: str, cfg: Any) -> bool:
    """Whether an unverified JWT's ``iss`` and ``aud`` are the configured ones (each as
    configured, or not configured)."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        return False
    if cfg.issuer is not None and claims.get("iss") != cfg.issuer:
        return False
    if cfg.audience is not None:
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        wanted = cfg.audience if isinstance(cfg.audience, list | tuple) else [cfg.audience]
        if not any(a in wanted for a in auds):
            return False
    return True


def _one_value(ex: Exchange, name: str) -> bool:
    """Whether every copy of header ``name`` (lowercase) holds the same bytes: a proxy or a
    library that wrote it twice, one caller. The extra copies are removed (one alone goes
    on, swapped or masked as usual); True then."""
    flow = ex.flow
    headers = flow.request.headers if flow is not None else ex.request_headers
    fields = getattr(headers, "fields", None)
    if fields is None:
        return False
    b = name.encode("latin-1", "replace")
    if len({v for k, v in fields if len(k) == len(b) and k.lower() == b}) != 1:
        return False
    for hs in (headers, ex.request_headers):
        if getattr(hs, "fields", None) is not None:
            seen = False
            kept = []
            for k, v in hs.fields:
                if len(k) == len(b) and k.lower() == b:
                    if seen:
                        continue
                    seen = True
                kept.append((k, v))
            hs.fields = tuple(kept)
    return True


def _with_addr(ident: Identity, addr: str) -> Identity:
    from dataclasses import replace

    return replace(ident, client_addr=addr)


def _drop_header(headers: Any, name: str) -> None:
    try:
        if isinstance(headers, dict):
            lname = name.lower()
            headers.pop(lname, None)  # the core's map has lowercase names
            for k in [k for k in headers if k.lower() == lname]:
                del headers[k]
        elif name in headers:
            del headers[name]
    except Exception:  # noqa: BLE001
        log.debug("mcp-gateway: could not drop %s from the exchange headers", name)
