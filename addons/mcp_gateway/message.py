"""The structured MCP message every pipeline stage works on.

One HTTP exchange (a POST, a GET stream, a JSON response...) is an :class:`Exchange`;
every JSON-RPC message found in it, whether in a request body, a JSON response or one
SSE event, becomes a :class:`Message` that points back to its exchange.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# A session id is the client's or the server's string, of any length (the spec sets none):
# state kept per session keys a longer one by its SHA-256 digest.
MAX_SID = 256


def session_key(sid: str) -> str:
    """The key a session id is kept under: itself, or its digest when long (a NUL, which no
    header value holds, keeps a digest from naming a real id)."""
    if len(sid) <= MAX_SID:
        return sid
    digest = hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()
    return f"\x00sha256:{digest}:{sid[:16]}"


class Direction(enum.StrEnum):
    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"


class Kind(enum.StrEnum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESULT = "result"  # a response carrying "result"
    ERROR = "error"  # a response carrying "error"
    INVALID = "invalid"  # JSON, but not a JSON-RPC 2.0 message


class Transport(enum.StrEnum):
    HTTP = "http"  # a POST body or an application/json response
    SSE = "sse"  # one event of a streamable-HTTP text/event-stream
    LEGACY_SSE = "legacy-sse"  # 2024-11-05 HTTP+SSE: GET /sse stream + POST /messages
    WEBSOCKET = "websocket"  # one WebSocket message (the Python SDK 1.x's subprotocol "mcp")


class Action(enum.StrEnum):
    """What the gateway does with one message, from mildest to strongest."""

    PASS = "pass"  # forwarded unchanged
    REDACT = "redact"  # forwarded with values replaced (payload was modified in place)
    BLOCK = "block"  # not forwarded; the sender of the request gets a JSON-RPC error
    DROP = "drop"  # not forwarded, nothing sent in its place (notifications)


_ACTION_RANK = {Action.PASS: 0, Action.REDACT: 1, Action.DROP: 2, Action.BLOCK: 3}


# JSON-RPC error codes the gateway answers with. Documented in the README.
class ErrorCode(enum.IntEnum):
    """JSON-RPC error codes the gateway answers with. Its own are -32061..-32067, in the
    implementation-defined range but clear of what the MCP SDKs and spec use (-32000
    connection closed, -32001 request timeout, -32002 resource not found, -32020..-32022,
    -32042): a client must never take a block for a timeout and retry it."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    INTERNAL_ERROR = -32603
    HEADER_MISMATCH = -32020  # 2026-07-28: Mcp-Method/Mcp-Name differ from the body
    BLOCKED = -32061  # a scanning rule or policy refused the message
    UNAUTHORIZED = -32062  # no or bad credential
    # the access policy refuses the request (HTTP 200); a session not the caller's (404)
    FORBIDDEN = -32063
    RATE_LIMITED = -32064  # over a rate limit
    TOO_LARGE = -32065  # over mcp_max_message_bytes, not inspected
    UPSTREAM_CREDENTIAL = -32066  # the upstream credential could not be resolved
    NOT_FORWARDED = -32067  # another element of its batch was refused; none was forwarded


class NotInspected(Exception):
    """A stage could not inspect a message whole within its bounds (a scan past
    ``mcp_max_scan_ms``). Like any failed check it is decided by ``mcp_fail_mode``;
    closed mode answers -32065, as for a message too large to inspect, with this message."""


@dataclass(slots=True)
class Finding:
    """One detection in one message. Never holds the raw secret."""

    rule: str
    type: str
    severity: str
    action: str  # log | alert | redact | block
    location: (
        str  # JSON pointer into the message ("/params/arguments/key"), "header:authorization",
        # "url:query", or "" (in no single string; a cap notice)
    )
    start: int = 0  # offsets into the decoded string at `location`
    end: int = 0
    masked: str = ""  # e.g. "sk-p…Xz9" ; never the full value


@dataclass(slots=True)
class Refusal:
    """Why a message was blocked, and how to answer."""

    code: int
    message: str
    http_status: int | None = (
        None  # for client requests: the HTTP status of the answer (default 200)
    )
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None
    stage: str = ""


@dataclass(slots=True, eq=False)
class Exchange:
    """One HTTP request/response pair as the pipeline sees it."""

    flow_id: str
    server: str  # "host:port" of the upstream, or the name the stdio shim gave it
    # "host:port" the request really goes to, when ``server`` is a name from the shim's
    # header (credentials and server limits go by the address too, never by that name alone)
    address: str | None = None
    # "host:port" its Host header (or :authority) names when that is not where the request
    # goes (regular proxy mode: an absolute-form request, a CONNECT tunnel): a shared front
    # end serves that site, and server scopes and limits match it too
    vhost: str | None = None
    http_method: str = "POST"
    path: str = "/"
    scheme: str = "http"
    session_id: str | None = None
    protocol_version: str | None = None
    client_addr: str = ""
    # Request headers as a plain dict with lowercase names (first value wins); reading
    # mitmproxy's Headers costs microseconds per lookup, this costs one dict access.
    request_headers: dict[str, str] | None = None
    transport: Transport = Transport.HTTP
    legacy_session: str | None = None  # ?session_id= / ?sessionId= of the legacy transport
    identity: Any = None  # set by the identify stage (mcp_gateway.identity.Identity)
    refusal: Refusal | None = None  # exchange-level refusal (auth, session binding)
    flow: Any = None  # the mitmproxy HTTPFlow, when there is one
    started: float = field(default_factory=time.time)
    scratch: dict[str, Any] = field(default_factory=dict)  # per-exchange state for stages

    def header(self, name: str) -> str | None:
        h = self.request_headers
        return h.get(name.lower()) if h else None


@dataclass(slots=True, eq=False)
class Message:
    """One JSON-RPC message, parsed once, handed through every stage."""

    payload: Any  # the decoded JSON value; stages that redact modify it in place
    direction: Direction
    kind: Kind
    exchange: Exchange
    size: int = 0  # bytes of this message as received
    id: str | int | None = None
    method: str | None = None  # own method; for responses, the method of the answered request
    name: str | None = None  # tool/prompt name or resource uri; for responses, of the request
    latency_ms: float | None = None  # responses: time since the request passed the gateway
    batch_index: int | None = None  # position in a JSON-RPC batch array
    sse_event_id: str | None = None
    # whatever its tool scope, a rule applies (a legacy progress notification whose token two
    # requests in flight for different tools gave: it may be either's)
    any_name: bool = False
    # whatever its method and tool scope, a rule applies (the answer to a tasks/result for a
    # task the gateway did not see created: it may be any tool's result)
    any_target: bool = False
    time: float = field(default_factory=time.time)
    findings: list[Finding] = field(default_factory=list)
    action: Action = Action.PASS
    refusal: Refusal | None = None
    modified: bool = False  # payload was changed; the adapter re-serializes it
    inspected: bool = True  # False when the message was too large or not parseable
    faults: list[str] = field(default_factory=list)  # stages that failed on it (fail-open)
    # The bytes the payload was decoded from, when they were the whole body or SSE event data
    # (not a batch member): the scan stage reads them instead of serializing the payload again.
    raw: bytes | None = field(default=None, repr=False)
    # Undo what a stage charged for this message (a rate limit's tokens) if it is not
    # forwarded after all: blocked by a later stage, or refused with the rest of its batch.
    refunds: list[Callable[[], None]] | None = field(default=None, repr=False)

    def refund(self) -> None:
        fns, self.refunds = self.refunds, None
        for fn in fns or ():
            fn()

    @property
    def transport(self) -> Transport:
        return self.exchange.transport

    @property
    def is_request(self) -> bool:
        return self.kind is Kind.REQUEST

    @property
    def is_response(self) -> bool:
        return self.kind in (Kind.RESULT, Kind.ERROR)

    @property
    def stopped(self) -> bool:
        return self.action in (Action.BLOCK, Action.DROP)

    def block(
        self,
        code: int,
        message: str,
        *,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        stage: str = "",
    ) -> None:
        """Refuse this message. Notifications are dropped, the rest answered with an error."""
        action = Action.DROP if self.kind is Kind.NOTIFICATION else Action.BLOCK
        if self.refusal is None or _ACTION_RANK[action] > _ACTION_RANK[self.action]:
            self.refusal = Refusal(code, message, http_status, dict(headers or {}), data, stage)
        self.escalate(action)

    def escalate(self, action: Action) -> None:
        if _ACTION_RANK[action] > _ACTION_RANK[self.action]:
            self.action = action

    def mark_modified(self) -> None:
        self.modified = True
        self.escalate(Action.REDACT)

    @property
    def decision(self) -> str:
        return self.action.value


def error_response(msg_id: Any, code: int, message: str, data: Any = None) -> dict:
    err: dict[str, Any] = {"code": int(code), "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}
