"""MCP over WebSocket: the Gateway's ``websocket_*`` hooks adapt each message to the pipeline.

WebSocket is not a transport of the MCP specification, but the Python SDK 1.x ships one
(``mcp.client.websocket`` / ``mcp.server.websocket``, subprotocol ``mcp``): each text message
is one JSON-RPC message or batch. Without this adapter such a session would carry MCP past
the scanner. Each message that is JSON-RPC goes through the same stages as a POST body or an
SSE event (one exchange per WebSocket connection: the handshake's headers identify the
caller, requests and responses are paired on it):

- redacted: the message is replaced, still one message;
- blocked, from the client: a request is not forwarded and the client gets the JSON-RPC
  error on the same WebSocket; a client's answer to a server request is replaced by an
  error for the server; a notification is dropped;
- blocked, from the server: a response is replaced by the error for that id; a request
  (sampling, elicitation) is not forwarded and the server gets the error instead; a
  notification is dropped.

Messages that are not JSON-RPC pass unchanged. A message over ``mcp_max_message_bytes`` and
an internal error follow ``mcp_fail_mode`` (closed: dropped, and the side that waits for an
answer gets the error; open: forwarded).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from mitmproxy import ctx, http

from .flowmeta import address_of, reverse_mode
from .message import (
    Action,
    Direction,
    ErrorCode,
    Exchange,
    Kind,
    Message,
    Refusal,
    Transport,
    error_response,
)
from .outcome import UNCHANGED, batch_answers, blocked_by_rule, rebuild, refusal_error
from .parse import (
    ParseError,
    Uninspectable,
    build_messages,
    decode_json,
    encode_json,
    is_request_head,
    lenient_names_mcp_method,
    looks_like_json,
    marks_mcp,
    may_name_jsonrpc,
    names_mcp_method,
    outer_id,
)

if TYPE_CHECKING:
    from .core import Gateway

log = logging.getLogger("mcp_gateway")

SUBPROTOCOL = "mcp"


class WebSockets:
    """The WebSocket connections of one Gateway: an Exchange each, opened on first MCP use."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._open: dict[str, Exchange] = {}  # flow id -> its exchange
        self._started: set[str] = set()  # flow ids whose exchange the pipeline has seen

    # -- hooks (called by the Gateway, which guards them) ---------------------------------
    def handshake(self, flow: http.HTTPFlow, h: dict[str, str]) -> tuple[Exchange, Refusal | None]:
        """The client's upgrade request, before it goes on (the ``request`` hook): the
        connection's exchange is made from the headers as the client sent them. Later the
        identity addon removes a gateway credential from any request that is no exchange,
        and ``websocket_start`` came after that: a client with a valid API key or JWT was
        anonymous to the gateway (refused under ``auth.required``), and no upstream
        credential could reach the server. A handshake asking for the ``mcp`` subprotocol is
        MCP: its exchange starts now (authentication, session binding, the credential swap,
        before the server sees it); a refused one is handed back with its refusal, for the
        core to answer and end. Any other upgrade starts its exchange at its first JSON-RPC
        message, with these headers."""
        ex = self.gw._new_exchange(flow, h)
        ex.transport = Transport.WEBSOCKET
        self._open[flow.id] = ex
        proto = h.get("sec-websocket-protocol", "")
        if SUBPROTOCOL not in (p.strip().lower() for p in proto.split(",")):
            return ex, None
        self._started.add(flow.id)
        self.gw._learn_server(address_of(ex))
        refusal = self.gw.pipeline.start_exchange(ex)
        if refusal is not None:  # answered by the gateway: ended with the flow, not here
            self._open.pop(flow.id, None)
            self._started.discard(flow.id)
        return ex, refusal

    def no_upgrade(self, flow: http.HTTPFlow) -> None:
        """The handshake was answered without an upgrade (the server refused it, or the
        flow failed): its exchange, made at the handshake, ends with it (else every such
        handshake stayed here, holding its flow)."""
        ex = self._open.pop(flow.id, None)
        if ex is not None and flow.id in self._started:
            self._started.discard(flow.id)
            self.gw.pipeline.end_exchange(ex)

    def start(self, flow: http.HTTPFlow) -> None:
        if flow.id in self._open:
            return  # made from the handshake (see handshake)
        ex = self.gw._new_exchange(flow)
        ex.transport = Transport.WEBSOCKET
        self._open[flow.id] = ex

    def end(self, flow: http.HTTPFlow) -> None:
        ex = self._open.pop(flow.id, None)
        if ex is not None and flow.id in self._started:
            self._started.discard(flow.id)
            self.gw.pipeline.end_exchange(ex)

    def message(self, flow: http.HTTPFlow) -> None:
        ws = flow.websocket
        if ws is None or not ws.messages:
            return
        wm = ws.messages[-1]
        if wm.injected or wm.dropped:
            return  # ours (an error answer), or already refused
        try:
            self._message(flow, wm)
        except Exception as e:  # noqa: BLE001 - a fault must never take the proxy down
            log.error(
                "mcp-gateway: internal error in websocket message (flow %s): %r",
                flow.id,
                e,
                exc_info=e,
            )
            if self.gw.fail_mode == "closed":
                wm.drop()
                try:
                    text = "gateway internal error: message not forwarded"
                    self._answer_dropped(flow, wm, ErrorCode.INTERNAL_ERROR, text)
                except Exception as e2:  # noqa: BLE001
                    log.error("mcp-gateway: cannot answer a dropped message: %r", e2)

    # -- one message ---------------------------------------------------------------------
    def _known(self, flow: http.HTTPFlow) -> bool:
        if flow.id in self._started:
            return True
        proto = flow.response.headers.get("sec-websocket-protocol", "") if flow.response else ""
        return SUBPROTOCOL in (p.strip().lower() for p in proto.split(","))

    def _message(self, flow: http.HTTPFlow, wm) -> None:
        gw = self.gw
        if flow.id not in self._open:  # (a connection that started before a script reload)
            self.start(flow)
        ex = self._open[flow.id]
        content = wm.content
        from_client = wm.from_client
        direction = Direction.CLIENT_TO_SERVER if from_client else Direction.SERVER_TO_CLIENT
        known = self._known(flow)
        jsonish = looks_like_json(content)
        if not jsonish and not known and not reverse_mode(flow):
            return  # (the common case of other WebSocket traffic first: one regex)
        if not jsonish or not (known or may_name_jsonrpc(content) or names_mcp_method(content)):
            if known or reverse_mode(flow):
                # ({method: 'tools/call', …} on a connection not yet seen speaking MCP)
                if lenient_names_mcp_method(content) and not _strict(content):
                    return self._refuse_lenient(flow, wm, ex, direction, content)
            # not JSON-RPC: forwarded unchanged (an MCP method without jsonrpc is, but not
            # every message naming a method: the Chrome DevTools Protocol's events, whose
            # screencast frames or traces over mcp_max_message_bytes were refused uninspected)
            return
        if len(content) > gw.max_message_bytes:
            text = f"WebSocket message over mcp_max_message_bytes ({gw.max_message_bytes}); not inspected"
            return self._uninspected(flow, wm, ex, direction, content, text)
        try:
            value = decode_json(content, lenient_utf8=not from_client)
            parsed = build_messages(value, len(content), direction, ex, content, gw.max_batch)
        except Uninspectable as e:
            # valid JSON that some receivers read: not inspected, so per mcp_fail_mode
            return self._uninspected(flow, wm, ex, direction, content, e.message)
        except ParseError:
            if (known or reverse_mode(flow)) and lenient_names_mcp_method(content):
                # ({method: 'tools/call', …}: opens an object, but no JSON)
                return self._refuse_lenient(flow, wm, ex, direction, content)
            return  # not JSON-RPC after all: forwarded unchanged
        msgs = parsed.messages
        if all(m.kind is Kind.INVALID for m in msgs):
            return
        if not known:
            # (not an answer without "jsonrpc": "2.0", as the Chrome DevTools Protocol's:
            # see marks_mcp)
            bare = reverse_mode(flow)
            if not any(marks_mcp(m.payload, bare) for m in msgs):
                return
        if gw.closing:
            wm.drop()  # shutting down: the audit trail is closed, nothing more goes on
            return
        self._begin(flow, ex)
        # one exchange for the whole connection, admitted at its start: a key revoked (or a
        # JWT expired) since refuses every later message of it
        gw.pipeline.recheck(ex, "WebSocket connection", flow.id)
        if from_client and parsed.batch:
            gw.pipeline.run_batch(msgs)  # answered as a whole if one element is refused
        else:
            gw.pipeline.run_all(msgs)
        gw._record(flow, msgs)
        gw._mark(flow, msgs)
        if from_client:
            self._apply_client(flow, wm, parsed.batch, msgs)
        else:
            self._apply_server(flow, wm, value, parsed.batch, msgs)

    def _refuse_lenient(
        self, flow: http.HTTPFlow, wm, ex: Exchange, direction: Direction, content: bytes
    ) -> None:
        """A message no JSON to the gateway but MCP to a lenient parser: dropped and audited
        (whatever mcp_fail_mode says, as over HTTP), its sender told with -32700."""
        self._begin(flow, ex)
        text = "Parse error: not JSON, though a lenient parser reads an MCP message in it"
        m = Message(None, direction, Kind.INVALID, ex, size=len(content))
        m.inspected = False
        m.block(ErrorCode.PARSE_ERROR, text, stage="parse")
        log.warning("mcp-gateway: %s (WebSocket flow %s), refused", text, flow.id)
        self.gw.pipeline.run(m)
        self.gw._record(flow, [m])
        wm.drop()
        self._answer(flow, wm, [error_response(None, ErrorCode.PARSE_ERROR, text)], wm.from_client)

    def _begin(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """The connection's first MCP message: authentication and session binding run."""
        if flow.id not in self._started:
            self._started.add(flow.id)
            self.gw._learn_server(address_of(ex))
            self.gw.pipeline.start_exchange(ex)

    def _uninspected(
        self, flow: http.HTTPFlow, wm, ex: Exchange, direction: Direction, content: bytes, text: str
    ) -> None:
        """A message the gateway will not inspect: blocked or passed per mcp_fail_mode, but
        never before the connection's authentication has run (open mode forwards what
        cannot be inspected, not what is not authenticated)."""
        self._begin(flow, ex)
        m = self.gw._not_inspected(flow, ex, direction, len(content), text)
        if m.stopped:
            wm.drop()
            if wm.from_client:
                r = ex.refusal or m.refusal
                code, why = (r.code, r.message) if r else (ErrorCode.TOO_LARGE, text)
                self._answer(flow, wm, [error_response(outer_id(content), code, why)])
            else:
                self._answer_uninspected(flow, wm, content, text)

    def _answer_uninspected(self, flow: http.HTTPFlow, wm, content: bytes, text: str) -> None:
        """A server message dropped uninspected, as an event stream answers one: a request
        (sampling, elicitation) gets its error at the server, a response becomes the error
        for the client's request (each side would wait for ever); a notification, or a
        message whose id cannot be read from its ends, is just dropped."""
        self._answer_dropped(flow, wm, ErrorCode.TOO_LARGE, text, content)

    def _answer_dropped(
        self, flow: http.HTTPFlow, wm, code: int, text: str, content: bytes | None = None
    ) -> None:
        """The error for a message dropped without being read: a request's goes back to its
        sender, a response's on to the side that asked (each would wait for ever)."""
        content = wm.content if content is None else content
        if content.lstrip()[:1] != b"{":
            return  # (a batch: its elements' ids are not read)
        ident = outer_id(content)
        if ident is None:
            return
        request = is_request_head(content)
        err = error_response(ident, code, text)
        self._answer(flow, wm, [err], to_client=wm.from_client == request)

    def _apply_server(
        self, flow: http.HTTPFlow, wm, value, batch: bool, msgs: list[Message]
    ) -> None:
        if not batch and msgs[0].kind is Kind.REQUEST and msgs[0].stopped:
            # a server request (sampling, elicitation) carrying what must not reach the
            # client: the server gets the error for its request; the client never sees it
            # (an error with the server's id could settle one of the client's own requests)
            _withhold(wm)
            self._answer(flow, wm, [refusal_error(msgs[0])], to_client=False)
            return
        # (so are those of a batch: the server gets their errors, the client the rest)
        stopped = [m for m in msgs if m.kind is Kind.REQUEST and m.action is Action.BLOCK]
        if stopped:
            self._answer(flow, wm, [refusal_error(m) for m in stopped], to_client=False)
        new = rebuild(value, batch, msgs, answered=bool(stopped))
        if new is UNCHANGED:
            return
        if new is None:
            _withhold(wm)
        else:
            wm.content = encode_json(new)

    def _apply_client(self, flow: http.HTTPFlow, wm, batch: bool, msgs: list[Message]) -> None:
        if not any(m.stopped for m in msgs):
            if any(m.modified for m in msgs):
                wm.content = encode_json([m.payload for m in msgs] if batch else msgs[0].payload)
            return
        if not batch:
            m = msgs[0]
            if m.is_response:
                # a client's answer to a server request: the server gets an error in its place
                wm.content = encode_json(refusal_error(m))
                return
            wm.drop()
            _keep_scrubbed(wm, batch, msgs)
            if m.kind is Kind.REQUEST:
                self._answer(flow, wm, [refusal_error(m, with_data=True)])
            return
        # A batch with a refused element is answered by the gateway as a whole, as over HTTP.
        wm.drop()
        _keep_scrubbed(wm, batch, msgs)
        answers = batch_answers(msgs)
        if answers:
            self._answer(flow, wm, [answers])
        # its answers to server requests: the server gets errors in their place, as over HTTP
        # (one message each: a server may take no batch)
        errors = [refusal_error(m) for m in msgs if m.is_response and m.id is not None]
        if errors:
            self._answer(flow, wm, errors, to_client=False)

    @staticmethod
    def _answer(flow: http.HTTPFlow, wm, bodies: list, to_client: bool = True) -> None:
        """Send the gateway's answers on the same WebSocket (to the client by default)."""
        for body in bodies:
            data = encode_json(body)
            ctx.master.commands.call("inject.websocket", flow, to_client, data, wm.is_text)


def _strict(content: bytes) -> bool:
    """Whether a message parses as JSON as it is (which a lenient parser reads the same:
    a string of it that mentions a method is no member)."""
    try:
        json.loads(content)
    except (ValueError, RecursionError):
        return False
    return True


WITHHELD = b"[mcp-gateway: server message blocked by a scanning rule; its content is not kept]"


def _keep_scrubbed(wm, batch: bool, msgs: list[Message]) -> None:
    """A client message a scanning rule blocked stays in the flow (dropped) as the rule left
    it, as over HTTP: it kept what the client sent, so mitmweb showed and `-w` saved the
    value the rule stopped, while a redacted message kept the placeholder."""
    if blocked_by_rule(msgs):
        wm.content = encode_json([m.payload for m in msgs] if batch else msgs[0].payload)


def _withhold(wm) -> None:
    """Drop a server message a rule blocked, and its content with it: a dropped message stays
    in the flow, where mitmweb's views showed what the rule kept from the client and `-w`
    saved it (a blocked HTTP answer's body is replaced, and an SSE display copy keeps only
    what was forwarded)."""
    wm.drop()
    wm.content = WITHHELD
