"""The core mitmproxy addon: thin adapters from HTTP hooks onto the message pipeline.

* ``requestheaders``: cheap MCP pre-check; ask upstream for identity encoding.
* ``request``: client->server messages (POST bodies, batches); GET/DELETE exchanges.
* ``responseheaders``: ``text/event-stream`` is streamed through :class:`stream.SSEStream`.
* ``response``: ``application/json`` answers (and everything buffered).

Every hook catches its own failures and applies ``mcp_fail_mode`` (mitmproxy itself would
log and forward). Decisions on messages become HTTP: see :meth:`Gateway._answer`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections import OrderedDict
from typing import Any

from mitmproxy import ctx, exceptions, http

from . import answer, codec, params
from .codec import StreamDecoder, TextDecoder
from .correlate import CorrelateStage, Correlator, id_key
from .flowmeta import MAX_SUMMARIES, META, address_of, request_id, request_ids, summary
from .headers import (
    drop_foreign_upgrade,
    has_mcp_header,
    header_map,
    hget,
    is_event_stream,
    one_content_type,
    other_vhost,
    repeated_singletons,
    same_origin_relative,
    standard_reason,
    unfold_headers,
    url_origin,
)
from .message import (
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
    MAX_BATCH,
    AmbiguousSession,
    ParseError,
    TooManyContainers,
    TooManyElements,
    Uninspectable,
    build_messages,
    check_mirrored_headers,
    decode_json,
    encode_json,
    head_id,
    is_mcp_payload,
    legacy_session_from_url,
    lenient_names_mcp_method,
    lenient_opens_document,
    looks_like_json,
    may_name_jsonrpc,
    names_mcp_method,
    outer_id,
    top_level_id,
)
from .pipeline import Pipeline
from .push import push
from .stream import ErrorStream, SSEStream
from .ws import WebSockets

log = logging.getLogger("mcp_gateway")

SERVER_NAME_HEADER = "mcp-gateway-server"  # set by the stdio shim; trusted for loopback upstreams
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# the first byte of a body with a byte order mark (UTF-8, UTF-16, UTF-32); UTF-16/32 without
# one is told by a zero byte among the first four, as json.detect_encoding tells it (" {" in
# UTF-16LE is 20 00 7b 00)
_BOM_STARTS = (b"\xef", b"\xfe", b"\xff")


class Gateway:
    """Owns the pipeline; other concern addons register their stages into ``pipeline``."""

    def __init__(self) -> None:
        self.pipeline = Pipeline()
        self.correlator = Correlator()
        self.pipeline.add(CorrelateStage(self.correlator))
        self.pipeline.add(params.ParamHeaderStage())
        self.fail_mode = "closed"
        self.max_message_bytes = 16 * 1024 * 1024
        self.max_batch = MAX_BATCH
        self.keep_stream_bytes = 1024 * 1024
        self.hold_streams = True
        self._exchanges: dict[str, Exchange] = {}
        # GETs that asked for no event stream, in reverse mode or to a server known to speak
        # MCP: their headers as the client sent them (the identity addon removes a gateway
        # credential from them before they go on), should the answer be an event stream
        # (see _stream_unasked). In memory only: flows saved with -w must not keep the key.
        self._unasked_gets: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._mcp_servers: OrderedDict[str, None] = OrderedDict()
        # legacy HTTP+SSE: sessions announced by an `endpoint` event, and the refusals waiting
        # to be delivered on their GET stream (see _answer_on_legacy_stream)
        self._legacy_sessions: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._legacy_refusals: OrderedDict[tuple, tuple[dict, int]] = OrderedDict()
        self._legacy_refusal_bytes = 0  # what the refusals' ids and texts hold
        self.closing = False  # mitmproxy is shutting down: nothing more is forwarded
        self.websockets = WebSockets(self)
        self._updating_options = False  # (see _no_blind_spots)

    def done(self) -> None:
        """On shutdown (not on a script reload) the audit trail closes right after this hook,
        while mitmproxy's connections still run until they are cancelled. A message that
        could no longer be recorded must not pass: from here on the gateway forwards no MCP
        message (requests get a 503, answers and stream events are held back)."""
        try:
            self.closing = bool(ctx.master.should_exit.is_set())
        except AttributeError:
            self.closing = False

    def running(self) -> None:
        """A closed terminal sends SIGHUP, which ends mitmdump at once by default: no `done`
        hook, so the audit trail loses the events not yet handed to its writer and gets no
        `stop` event. Shut down as on SIGTERM instead, unless SIGHUP already has a handler
        (nohup, a supervisor, a user's script)."""
        try:
            if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, ctx.master.shutdown)
        except (AttributeError, NotImplementedError, RuntimeError, ValueError):
            pass  # no SIGHUP (Windows), no running loop (tests), not the main thread

    # -- options --------------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option(
            "mcp_fail_mode",
            str,
            "closed",
            "What happens when the gateway itself fails on a message (a rule or stage raises, "
            "a message is too large to inspect): 'closed' blocks it with a JSON-RPC error, "
            "'open' forwards it unchanged.",
            choices=["closed", "open"],
        )
        loader.add_option(
            "mcp_max_message_bytes",
            int,
            16 * 1024 * 1024,
            "Largest JSON-RPC message (HTTP body or one SSE event) the gateway inspects. A larger "
            "one is not inspected and is blocked or passed per mcp_fail_mode.",
        )
        loader.add_option(
            "mcp_max_batch",
            int,
            MAX_BATCH,
            "Most elements a JSON-RPC batch may hold to be inspected. A larger batch is not "
            "inspected and is blocked or passed per mcp_fail_mode (each element holds the "
            "proxy's event loop for ~0.1 ms; the MCP SDKs send a handful).",
        )
        loader.add_option(
            "mcp_keep_stream_bytes",
            int,
            1024 * 1024,
            "How many bytes of each streamed (SSE) response to keep so that mitmweb can show "
            "it after the stream ends (0 keeps none; store_streamed_bodies=true keeps all).",
        )
        loader.add_option(
            "mcp_hold_streams",
            bool,
            True,
            "Keep idle MCP SSE streams open: mitmproxy's tcp_timeout does not cut a "
            "connection while it carries an MCP event stream.",
        )

    def configure(self, updated: set[str]) -> None:
        if "mcp_fail_mode" in updated:
            mode = ctx.options.mcp_fail_mode
            if mode not in ("closed", "open"):
                raise exceptions.OptionsError(
                    f"mcp_fail_mode must be 'closed' or 'open', not {mode!r}"
                )
            self.fail_mode = mode
            self.pipeline.fail_mode = mode
        if {"mcp_fail_mode", "rawtcp", "stream_large_bodies"} & updated:
            self._no_blind_spots()
        if "mcp_max_message_bytes" in updated:
            n = ctx.options.mcp_max_message_bytes
            if n <= 0:
                raise exceptions.OptionsError(f"mcp_max_message_bytes must be positive, not {n}")
            self.max_message_bytes = n
        if "mcp_max_batch" in updated:
            n = ctx.options.mcp_max_batch
            if n <= 0:
                raise exceptions.OptionsError(f"mcp_max_batch must be positive, not {n}")
            self.max_batch = n
        if {"mcp_keep_stream_bytes", "save_stream_file"} & updated:
            n = ctx.options.mcp_keep_stream_bytes
            if n < 0:
                raise exceptions.OptionsError(f"mcp_keep_stream_bytes must be >= 0, not {n}")
            self.keep_stream_bytes = n if self._streams_shown(n) else 0
        if "mcp_hold_streams" in updated:
            self.hold_streams = ctx.options.mcp_hold_streams

    # -- helpers --------------------------------------------------------------------
    @staticmethod
    def _streams_shown(n: int) -> bool:
        """Whether a display copy of streamed bodies is of use: not in mitmdump at the default
        (nothing shows it there, and it cost up to 1 MiB per open stream), unless flows are
        saved (``-w``) or the option was set."""
        master = getattr(ctx, "master", None)
        if type(master).__name__ != "DumpMaster" or n != 1024 * 1024:
            return True
        return bool(getattr(ctx.options, "save_stream_file", None))

    def _no_blind_spots(self) -> None:
        """In closed mode, the mitmproxy options that carry traffic past every hook of the
        gateway are turned off: ``rawtcp`` and ``stream_large_bodies``. With ``rawtcp`` on, a connection
        mitmproxy cannot read as HTTP or TLS (a ClientHello sent in two pieces, the first of
        2 bytes) and the connection after an HTTP 101 that is no WebSocket (an h2c upgrade)
        become raw TCP pipes that no hook of the gateway sees. Off, such a connection is read
        as HTTP (and refused) or closed. ``--ignore-hosts``/``--tcp-hosts`` still pass their
        hosts through; ``mcp_fail_mode=open`` leaves both as set (and warns of the second)."""
        opts = getattr(ctx, "options", None)
        if self._updating_options:
            # mitmproxy rolling back our own update because another addon refused the
            # options (a bad rule file at start-up): setting it again looped until
            # RecursionError, thousands of log lines before the file's error
            return
        if self.fail_mode == "closed" and opts is not None and getattr(opts, "rawtcp", False):
            log.info(
                "mcp-gateway: rawtcp turned off (mcp_fail_mode=closed): connections that are "
                "neither HTTP nor TLS are refused instead of tunnelled uninspected"
            )
            self._set_own(opts, rawtcp=False)
        # mitmproxy's stream_large_bodies streams a body over its size (announced, or read so
        # far for a chunked one) before the request/response hooks get any content: a 2 KB
        # tools/call went to the server unauthenticated, unscanned and unaudited, and a JSON
        # answer over it to the client unscanned. It is set before the gateway's hooks run
        # (and mid-body for a chunked one), so no flow can be taken back from it: closed mode
        # turns it off (body_size_limit still bounds memory; the gateway bounds MCP bodies
        # itself), open mode keeps it and says what passes uninspected.
        big = getattr(opts, "stream_large_bodies", None) if opts is not None else None
        if big and self.fail_mode == "closed":
            log.warning(
                "mcp-gateway: stream_large_bodies=%s turned off (mcp_fail_mode=closed): bodies "
                "streamed by mitmproxy reach no hook of the gateway (not authenticated, scanned "
                "or audited); use body_size_limit to bound memory",
                big,
            )
            self._set_own(opts, stream_large_bodies=None)
        elif big:
            log.warning(
                "mcp-gateway: stream_large_bodies=%s with mcp_fail_mode=open: MCP requests and "
                "answers over that size pass uninspected (a request with a Content-Length is "
                "still authenticated and audited first; a chunked one is not)",
                big,
            )

    def _set_own(self, opts, **values) -> None:
        """Set mitmproxy options from inside ``configure`` (which configures every addon
        again). When another addon refuses the options there (a bad rule file at start-up,
        the scan addon not configured yet), its error is not raised from here: the same addon
        refuses them again in the configure pass this one is part of, and raised from here the
        error's one line came after some thirty lines of nested traceback."""
        self._updating_options = True
        try:
            opts.update(**values)
        except exceptions.OptionsError as e:
            log.debug("mcp-gateway: %s not set now: %s", ", ".join(values), e)
        finally:
            self._updating_options = False

    @staticmethod
    def _big(big: bool, body: bytes, enc: str | None) -> bool:
        """Whether a request too large to read is refused: when it looks like MCP, also
        under a content coding (its decoded start is JSON, or it inflates like a bomb)."""
        if big or not enc:
            return big
        head = codec.decoded_prefix(body, enc)
        return head is None or looks_like_json(head)

    def _server_name(self, flow: http.HTTPFlow) -> str:
        name = flow.metadata.get("mcp_server_name")
        if name:
            return name
        req = flow.request
        return f"{req.host}:{req.port}"

    def _known_server(self, server: str) -> bool:
        """Whether the server at this address (host:port, see flowmeta.address_of) was seen speaking
        MCP. By address, not by name: a client names a loopback upstream as it likes
        (Mcp-Gateway-Server), and a name never seen made a known server new again, where a
        request without a plain sign of MCP passes untouched."""
        return server in self._mcp_servers

    def _learn_server(self, server: str) -> None:
        self._mcp_servers[server] = None
        self._mcp_servers.move_to_end(server)
        while len(self._mcp_servers) > 10_000:
            self._mcp_servers.popitem(last=False)

    def _new_exchange(self, flow: http.HTTPFlow, h: dict[str, str] | None = None) -> Exchange:
        req = flow.request
        if h is None:
            h = header_map(req.headers)
        legacy, ambiguous = None, "#" in req.path
        # (a fragment is no part of a request target, RFC 9112 3.2: servers read one apart.
        # uvicorn and Starlette take all after the first "?" as the query, so the session of
        # POST /messages/#?session_id=… is the one named, while a URL parser reads none.)
        if not ambiguous and ("session" in req.path or "%" in req.path):
            # (%73ession_id is session_id too)
            try:
                legacy = legacy_session_from_url(req.path)
            except AmbiguousSession:
                ambiguous = True
        ex = Exchange(
            flow_id=flow.id,
            server=self._server_name(flow),
            address=f"{req.host}:{req.port}" if "mcp_server_name" in flow.metadata else None,
            http_method=req.method,
            path=req.path,
            scheme=req.scheme,
            session_id=h.get("mcp-session-id"),
            protocol_version=h.get("mcp-protocol-version"),
            client_addr=f"{flow.client_conn.peername[0]}" if flow.client_conn.peername else "",
            request_headers=h,
            legacy_session=legacy,
            flow=flow,
        )
        if ex.legacy_session is not None:
            ex.transport = Transport.LEGACY_SSE
        if flow.response is None:
            ex.vhost = other_vhost(flow)
        if ambiguous:
            ex.refusal = Refusal(
                ErrorCode.INVALID_REQUEST,
                "Invalid Request: a request target holds a fragment (#)"
                if "#" in req.path
                else "Invalid Request: the URL names more than one session",
                http_status=400,
                stage="parse",
            )
        elif len(h) < len(req.headers.fields):  # some header came twice (rare: checked apart)
            twice = repeated_singletons(req.headers)
            if twice:
                ex.refusal = Refusal(
                    ErrorCode.INVALID_REQUEST,
                    f"Invalid Request: the {twice} header is given more than once",
                    http_status=400,
                    stage="parse",
                )
        return ex

    def exchange(self, flow: http.HTTPFlow) -> Exchange | None:
        return self._exchanges.get(flow.id)

    def _fail(self, flow: http.HTTPFlow, where: str, exc: BaseException) -> None:
        log.error(
            "mcp-gateway: internal error in %s (flow %s): %r", where, flow.id, exc, exc_info=exc
        )
        if self.fail_mode == "closed" and flow.live and flow.response is None:
            self._reply(
                flow,
                500,
                error_response(
                    None, ErrorCode.INTERNAL_ERROR, f"gateway internal error in {where}"
                ),
            )

    def _reply(
        self, flow: http.HTTPFlow, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        hdrs = {"content-type": "application/json"}
        if headers:
            hdrs.update(headers)
        content = encode_json(body) if body is not None else b""
        if body is None:
            hdrs.pop("content-type")
        flow.response = http.Response.make(status, content, hdrs)
        flow.metadata["mcp_gateway_answered"] = True

    @staticmethod
    def _mark(flow: http.HTTPFlow, msgs: list[Message]) -> None:
        stopped = [m for m in msgs if m.stopped]
        if stopped:
            flow.marked = ":no_entry:"
            reasons = "; ".join(
                f"{m.method or m.kind.value}: {m.refusal.message}" for m in stopped if m.refusal
            )
            flow.comment = (
                flow.comment + "\n" if flow.comment else ""
            ) + f"mcp-gateway blocked {reasons}"
        elif any(m.modified for m in msgs) and not flow.marked:
            flow.marked = ":pencil2:"

    def _record(self, flow: http.HTTPFlow, msgs: list[Message]) -> None:
        kept = flow.metadata.setdefault(META, [])
        room = MAX_SUMMARIES - len(kept)
        if room >= len(msgs):
            kept.extend(summary(m) for m in msgs)
        else:
            # A long-lived stream must not grow without bound; the audit has every message.
            kept.extend(summary(m) for m in msgs[: max(room, 0)])
            flow.metadata["mcp_more"] = flow.metadata.get("mcp_more", 0) + len(msgs) - max(room, 0)

    # -- hooks ----------------------------------------------------------------------
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or answer.is_answer(flow):
            return
        try:
            headers = flow.request.headers
            unfold_headers(headers)
            h = header_map(headers)
            name = h.get(SERVER_NAME_HEADER)
            if name is not None:
                del headers[SERVER_NAME_HEADER]
                if flow.request.host in LOOPBACK and name.strip():
                    flow.metadata["mcp_server_name"] = name.strip()[:200]
            # We must read SSE as it streams: ask for uncompressed event streams.
            if "accept-encoding" in h and "text/event-stream" in h.get("accept", ""):
                headers["accept-encoding"] = "identity"
            if "upgrade" in h and self.fail_mode == "closed":
                drop_foreign_upgrade(headers)
            if flow.request.method == "POST":
                if "content-length" in h:
                    self._huge_request(flow, h)
                elif "transfer-encoding" in h or not flow.request.http_version.startswith("HTTP/1"):
                    self._unbounded_request(flow, h)
        except Exception as e:  # noqa: BLE001
            self._fail(flow, "requestheaders", e)

    def _huge_request(self, flow: http.HTTPFlow, h: dict[str, str]) -> None:
        """A body announced far over ``mcp_max_message_bytes`` is not read into memory (the
        proxy would hold it whole before the ``request`` hook): when it may be MCP (an MCP
        header, a JSON or unset type, a server known to speak MCP), closed mode refuses it
        here, before its body is read (the connection is closed), and open mode streams it
        through uninspected. Up to 4 times the limit, it is read and answered 413 as usual."""
        try:
            size = int(h["content-length"].strip())
        except ValueError:
            return
        # mitmproxy's stream_large_bodies (kept in open mode) has already chosen to stream a
        # body over its size, whatever mcp_max_message_bytes says: such a request is
        # admitted here too, or an anonymous tools/call padded past 2k under
        # stream_large_bodies=2k reached the server unauthenticated and unaudited
        streamed = bool(flow.request.stream)
        if size <= 4 * self.max_message_bytes and not streamed:
            return
        ctype = h.get("content-type", "").lower()
        server = self._server_name(flow)
        if not (
            has_mcp_header(h)
            or "json" in ctype
            or not ctype
            or self._known_server(address_of(flow))
        ):
            return
        if self.fail_mode == "open":
            # Open mode forwards what it cannot inspect, not what is not authenticated: the
            # exchange's stages run first (authentication, session binding, the credential
            # swap) and the request is audited as not inspected. Streamed unauthenticated,
            # an anonymous tools/call padded past the limit ran under auth.required, with no
            # audit row, and a gateway key went on to the server unswapped.
            ex = self._new_exchange(flow, h)
            self.pipeline.start_exchange(ex)
            text = (
                f"request body of {size} bytes exceeds mcp_max_message_bytes "
                f"({self.max_message_bytes}); not inspected"
                if size > self.max_message_bytes
                else f"request body of {size} bytes streamed (stream_large_bodies); not inspected"
            )
            msg = self._not_inspected(
                flow, ex, Direction.CLIENT_TO_SERVER, size, text, http_status=413
            )
            if msg.stopped or ex.refusal is not None:
                r = ex.refusal or msg.refusal
                log.warning(
                    "mcp-gateway: %s request body of %d bytes to %s refused before reading "
                    "it: %s; connection closed",
                    flow.request.method, size, server, r.message if r else "refused",
                )  # fmt: skip
                self.pipeline.end_exchange(ex)
                flow.kill()  # (the body is not read: no answer can be sent before it)
                return
            self._exchanges[flow.id] = ex  # (its answer is inspected; ended with it)
            flow.request.stream = True
            return
        if size <= 4 * self.max_message_bytes:
            # (closed mode turns stream_large_bodies off; should another addon stream such a
            # body, it is read whole and inspected instead)
            flow.request.stream = False
            return
        log.warning(
            "mcp-gateway: %s request body of %d bytes to %s refused before reading it "
            "(over 4 x mcp_max_message_bytes=%d); connection closed",
            flow.request.method, size, server, self.max_message_bytes,
        )  # fmt: skip
        ex = self._new_exchange(flow, h)
        ex.refusal = Refusal(
            ErrorCode.TOO_LARGE,
            f"request body of {size} bytes is over the gateway's limit",
            http_status=413,
            stage="core",
        )
        self.pipeline.end_exchange(ex)  # one audit row for the refused exchange
        flow.kill()

    def _unbounded_request(self, flow: http.HTTPFlow, h: dict[str, str]) -> None:
        """A body of undeclared length (chunked, or HTTP/2 without Content-Length) is held
        whole by mitmproxy before the ``request`` hook, however large. Clients send such
        bodies (the C# SDK's JsonContent is chunked), so they are read; but one whose
        credential the gateway refuses (auth required, a key missing or wrong) is refused
        before its body is read (the connection, or the HTTP/2 stream, is closed; one audit
        row): an anonymous client cannot make the proxy hold gigabytes. (A request that may
        be MCP, as for ``_huge_request``.)"""
        server = self._server_name(flow)
        if not (_reverse(flow) or has_mcp_header(h) or self._known_server(address_of(flow))):
            return  # (a POST to another host, in proxy mode, is not the gateway's to refuse)
        ex = self._new_exchange(flow, h)
        if ex.refusal is not None:
            return  # (refused for another reason: answered as usual once the body is read)
        refusal = self.pipeline.authenticate(ex)
        if refusal is None or refusal.http_status != 401:
            return  # (a JWKS not loaded yet, 503: decided again with the body)
        log.warning(
            "mcp-gateway: POST to %s without Content-Length refused before reading its body: %s",
            server,
            refusal.message,
        )
        ex.refusal = refusal
        self.pipeline.end_exchange(ex)  # one audit row for the refused exchange
        flow.kill()

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or answer.is_answer(flow):
            return
        try:
            self._request(flow)
        except Exception as e:  # noqa: BLE001
            self._fail(flow, "request", e)

    def _request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if req.stream and flow.id in self._exchanges:
            # already sent and admitted (open mode: a body far over the limit, or one that
            # mitmproxy's stream_large_bodies streams: see _huge_request); its content is
            # here only with store_streamed_bodies, and was dealt with then. (Only that one:
            # a streamed body _huge_request did not admit, a chunked one, is read here as
            # before when it is kept, and a GET or DELETE still opens its exchange, so that
            # their answers are inspected.)
            return
        body = req.raw_content or b""
        method = req.method
        if method != "POST" and body and self._off_post(flow, body):
            return
        if method == "POST" and body:
            h = header_map(req.headers)
            mcp_header = has_mcp_header(h)
            ctype = h.get("content-type", "").lower()
            enc = h.get("content-encoding")
            # Whatever the Content-Type says, a body that is JSON is looked at: a lenient
            # server reads JSON-RPC sent as text/plain too. (Compressed or UTF-16/32 bodies
            # only when the type is JSON or unset: other uploads are not decoded.) So is a
            # body that its declared charset makes JSON (UTF-7: Node's body parsers decode
            # it), whatever the type.
            json_type = "json" in ctype or not ctype
            if not mcp_header and not (
                looks_like_json(body)
                or (json_type and (enc or body[:1] in _BOM_STARTS or b"\x00" in body[:4]))
                or codec.charset_may_hide_json(body, ctype)
            ):
                # not JSON: not MCP (checked on what the server will read, below), unless a
                # lenient parser reads an MCP request in it (a ")]}'" prefix, a comment first)
                if not enc:
                    if lenient_names_mcp_method(body):
                        self._refuse_lenient(flow, self._new_exchange(flow, h))
                    return
                if not self._compressed_json(flow, h, body, enc):
                    return
                # (read below as a JSON body is: decoded, parsed, refused if only a lenient
                # parser reads it)
            ex = self._new_exchange(flow, h)
            mcp_ish = mcp_header or self._known_server(address_of(ex))
            big = mcp_ish or looks_like_json(body)  # too large to read: refused if MCP-like
            if len(body) > self.max_message_bytes:
                return (
                    self._too_large_request(flow, ex, len(body))
                    if self._big(big, body, enc)
                    else None
                )
            try:
                # what the server reads: content codings undone, its charset (or UTF-16/32)
                content = codec.json_utf8(
                    codec.decode_content(body, enc, self.max_message_bytes), ctype
                )
            except codec.TooLarge:
                return (
                    self._too_large_request(flow, ex, len(body), enc)
                    if self._big(big, body, enc)
                    else None
                )
            except ValueError as e:
                if (
                    mcp_ish
                    or looks_like_json(body)
                    or "unsupported charset" in str(e)
                    or ("charset" in str(e) and "json" in ctype)  # unread: not passed on
                ):
                    self._exchanges[flow.id] = ex
                    self._reject(flow, ex, 400, ErrorCode.PARSE_ERROR, f"Parse error: {e}")
                return
            if not mcp_header and not (
                looks_like_json(content)
                # (a key written with escapes, "json\u0072pc", is still parsed, and so is a
                # body naming a method without any jsonrpc member, which the Java SDK runs)
                and (
                    may_name_jsonrpc(content)
                    or _names_method(content)
                    # (an answer to the server's request on a legacy session: the Java SDK
                    # reads it without any jsonrpc or method member, see classify)
                    or ex.legacy_session is not None
                )
            ):
                # {method: 'tools/call', …}; JSON that parses as it is reads the same to a
                # lenient parser: a "method=ping" in one of its strings is no member
                if lenient_names_mcp_method(content) and not _strict_json(content):
                    self._refuse_lenient(flow, ex)
                return
            try:
                value = decode_json(content)
            except TooManyContainers as e:
                # JSON too costly to inspect: an MCP request is passed or refused per
                # mcp_fail_mode, after authentication; other traffic goes on untouched (as
                # unparsable JSON does, by the same signs)
                if (
                    mcp_header
                    or ex.legacy_session is not None
                    or self._known_server(address_of(ex))
                    or _names_mcp_method(content)
                ):
                    self._uninspectable_request(
                        flow, ex, len(content), e.message, top_level_id(content)
                    )
                return
            except ParseError as e:
                if (
                    mcp_header
                    or self._known_server(address_of(ex))
                    or _names_mcp_method(content)
                    or _lenient_mcp(content, bare=_reverse(flow))
                    or (_reverse(flow) and lenient_names_mcp_method(content))
                ):
                    self._exchanges[flow.id] = ex
                    if not self._answer_for_the_server(flow, ex, content, e):
                        self._reject(flow, ex, 400, e.code, e.message)
                return
            try:
                parsed = build_messages(
                    value, len(content), Direction.CLIENT_TO_SERVER, ex, content, self.max_batch
                )
            except Uninspectable as e:
                if (
                    mcp_header
                    or ex.legacy_session is not None
                    or self._known_server(address_of(ex))
                    # (every element: one past the limit counts)
                    or is_mcp_payload(value, bare=_reverse(flow))
                ):
                    self._uninspectable_request(flow, ex, len(content), e.message)
                return
            except ParseError as e:
                self._exchanges[flow.id] = ex
                return self._reject(flow, ex, 400, e.code, e.message)
            msgs = parsed.messages
            mcp = (
                mcp_header
                or ex.legacy_session is not None
                or ex.refusal
                is not None  # (a URL naming two sessions: refused, whatever it carries)
                # (a bare ping or initialize without "jsonrpc": "2.0" only in reverse mode:
                # to another host it is a JSON-RPC 1.0 service's as likely, see marks_mcp)
                or is_mcp_payload(value, bare=_reverse(flow))
                or (
                    self._known_server(address_of(ex))
                    and any(m.kind is not Kind.INVALID for m in msgs)
                )
            )
            if not mcp:
                return
            self._learn_server(address_of(ex))
            self._exchanges[flow.id] = ex
            problem = check_mirrored_headers(ex, msgs)
            if problem is not None:
                return self._reject(
                    flow, ex, 400, ErrorCode.HEADER_MISMATCH, f"Header mismatch: {problem}", msgs
                )
            if self.closing:
                self._exchanges[flow.id] = ex
                text = "mcp-gateway is shutting down; message not forwarded"
                return self._reject(flow, ex, 503, ErrorCode.INTERNAL_ERROR, text, msgs)
            self.pipeline.start_exchange(ex)
            params.snapshot(h, parsed.batch, msgs)
            if parsed.batch:
                self.pipeline.run_batch(msgs)  # answered as a whole if one element is refused
            else:
                self.pipeline.run_all(msgs)
            self._record(flow, msgs)
            self._apply_request(flow, ex, parsed.batch, msgs)
            return
        # Bodiless exchanges: the GET stream, DELETE of a session, resumption.
        if method not in ("GET", "DELETE"):
            return
        h = header_map(req.headers)
        if method == "GET" and "websocket" in h.get("upgrade", "").lower():
            # a WebSocket handshake: its exchange is made from the headers as sent (see
            # WebSockets.handshake); one asking for the mcp subprotocol starts it now
            ex, refusal = self.websockets.handshake(flow, h)
            if refusal is not None:
                self._exchanges[flow.id] = ex
                self._refuse_exchange(flow, ex, refusal)
            return
        if has_mcp_header(h) or (
            method == "GET"
            and "text/event-stream" in h.get("accept", "")
            # (in reverse mode the upstream is the MCP server the gateway stands for: a
            # legacy client's first request, GET /sse, is authenticated and audited also
            # before any POST taught the gateway that the server speaks MCP)
            and (self._known_server(address_of(flow)) or _reverse(flow))
        ):
            ex = self._new_exchange(flow, h)
            self._exchanges[flow.id] = ex
            refusal = self.pipeline.start_exchange(ex)
            if refusal is not None:
                self._refuse_exchange(flow, ex, refusal)
        elif method == "GET" and (_reverse(flow) or self._known_server(address_of(flow))):
            self._unasked_gets[flow.id] = h
            while len(self._unasked_gets) > 10_000:  # (flows that never end are forgotten)
                self._unasked_gets.popitem(last=False)

    def _off_post(self, flow: http.HTTPFlow, body: bytes) -> bool:
        """Refuse (405, audited) a request that is no POST but carries JSON-RPC in its body
        to an MCP endpoint. The gateway reads messages in POST bodies only, and let another
        method's body pass untouched: not authenticated, scanned, rate-limited or audited.
        The Python SDK's legacy ``/messages/`` endpoint (mcp <= 1.26 and the servers built on
        it: a Starlette ``Mount`` takes every method) ran a ``tools/call`` sent with PUT,
        PATCH or GET, and answered it on the GET stream like a POST's. No MCP transport sends
        a message with another method. True if refused."""
        req = flow.request
        h = header_map(req.headers)
        path = req.path
        if not (
            has_mcp_header(h)
            or "session" in path.lower()
            or "%" in path
            or _reverse(flow)
            or self._known_server(address_of(flow))
        ):
            return False
        ctype = h.get("content-type", "").lower()
        enc = h.get("content-encoding")
        json_type = "json" in ctype or not ctype
        if not (
            looks_like_json(body)
            or (json_type and (enc or body[:1] in _BOM_STARTS or b"\x00" in body[:4]))
            or codec.charset_may_hide_json(body, ctype)
        ):
            return False
        try:
            content = codec.json_utf8(
                codec.decode_content(body, enc, self.max_message_bytes), ctype
            )
        except (codec.TooLarge, ValueError):
            content = body  # (read as it is: any sign of JSON-RPC in it refuses it)
        if not (may_name_jsonrpc(content) or may_name_jsonrpc(body)):
            return False
        try:  # (any \\u escape is a sign above: parsed, JSON of another API names no jsonrpc)
            value = decode_json(content)
        except ParseError:
            value = None  # (unparsable here: refused by its signs, audited as not inspected)
        else:
            if not _names_jsonrpc(value):
                return False
        ex = self._new_exchange(flow, h)
        self._exchanges[flow.id] = ex
        text = f"Invalid Request: MCP messages are sent with POST, not {req.method[:16]}"
        msgs = None
        if value is not None:
            try:
                msgs = build_messages(
                    value, len(content), Direction.CLIENT_TO_SERVER, ex, content, self.max_batch
                ).messages
            except ParseError:
                pass  # (audited as a message not inspected)
        self._reject(flow, ex, 405, ErrorCode.INVALID_REQUEST, text, msgs)
        flow.response.headers["allow"] = "POST"
        log.warning(
            "mcp-gateway: %s %s with a JSON-RPC body refused (MCP messages are sent with POST)",
            req.method[:16],
            path.split("?", 1)[0][:200],
        )
        return True

    # -- WebSocket (not an MCP transport, but the Python SDK 1.x has one): see ws.py -----
    def websocket_start(self, flow: http.HTTPFlow) -> None:
        try:
            self.websockets.start(flow)
        except Exception as e:  # noqa: BLE001
            log.error("mcp-gateway: internal error in websocket_start (flow %s): %r", flow.id, e)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        self.websockets.message(flow)  # guarded inside: mcp_fail_mode applies per message

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        try:
            self.websockets.end(flow)
        except Exception as e:  # noqa: BLE001
            log.error("mcp-gateway: internal error in websocket_end (flow %s): %r", flow.id, e)

    def _not_inspected(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        direction: Direction,
        size: int,
        text: str,
        http_status: int | None = None,
        whole_answer: bool = False,
        ident: Any = None,
    ) -> Message:
        """A message the gateway could not inspect: blocked or passed per mcp_fail_mode,
        and still handed to the pipeline (so it is audited)."""
        msg = _uninspected(ex, direction, size)
        if ident is not None:
            msg.id = ident
        if whole_answer:
            # a whole answer (no event stream) answers the flow's request: its row names
            # what was called
            for sm in flow.metadata.get(META, ()):
                if sm.get("direction") == "c2s" and sm.get("kind") == "request":
                    msg.id, msg.method, msg.name = sm.get("id"), sm.get("method"), sm.get("name")
                    break
        if self.fail_mode == "closed":
            msg.block(ErrorCode.TOO_LARGE, text, http_status=http_status, stage="parse")
            log.warning(
                "mcp-gateway: %s (flow %s), refused per mcp_fail_mode=closed", text, flow.id
            )
        else:
            log.warning(
                "mcp-gateway: %s (flow %s), forwarded per mcp_fail_mode=open", text, flow.id
            )
        self.pipeline.run(msg)
        self._record(flow, [msg])
        return msg

    def _too_large_request(
        self, flow: http.HTTPFlow, ex: Exchange, size: int, enc: str | None = None
    ) -> None:
        text = _over("message", size, enc, self.max_message_bytes)
        self._uninspectable_request(flow, ex, size, text, _oversized_id(flow.request, enc))

    def _uninspectable_request(
        self, flow: http.HTTPFlow, ex: Exchange, size: int, text: str, ident: Any = None
    ) -> None:
        """A request the gateway will not inspect (too large, too many batch elements):
        refused with 413 (mcp_fail_mode=closed), or forwarded uninspected (open) unless the
        exchange itself is refused (authentication, session binding). ``ident``: its id, when
        it could be read for certain without parsing it (the refusal answers it)."""
        self._exchanges[flow.id] = ex
        self.pipeline.start_exchange(ex)
        msg = self._not_inspected(
            flow, ex, Direction.CLIENT_TO_SERVER, size, text, http_status=413, ident=ident
        )
        if msg.stopped:
            r = ex.refusal or msg.refusal  # (authentication's answer first: 401, not 413)
            if r is None:
                r = Refusal(ErrorCode.TOO_LARGE, text, 413)
            self._reply(
                flow,
                r.http_status or 413,
                error_response(ident, r.code, r.message, r.data),
                r.headers,
            )
            self._mark(flow, [msg])

    def _reject(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        status: int,
        code: int,
        text: str,
        msgs: list[Message] | None = None,
    ) -> None:
        """Refuse a request the gateway cannot or will not parse; still audited."""
        if not msgs:
            msgs = [
                _uninspected(ex, Direction.CLIENT_TO_SERVER, len(flow.request.raw_content or b""))
            ]
        for m in msgs:
            m.block(code, text, http_status=status, stage="parse")
        self.pipeline.run_all(msgs)
        self._record(flow, msgs)
        ident = msgs[0].id if len(msgs) == 1 else None
        self._reply(flow, status, error_response(ident, code, text))
        self._mark(flow, msgs)

    def _refuse_lenient(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """A body that is no JSON to the gateway but an MCP request to a lenient parser
        (Gson, Json.NET: single quotes, bare names, comments, a ``)]}'`` prefix), sent in
        reverse mode or to a server known to speak MCP: refused (400, -32700), since the
        gateway cannot read it as such a server does. It went on unauthenticated, unscanned
        and unaudited. (Elsewhere it may be any text that mentions MCP: left alone.)"""
        if not (_reverse(flow) or self._known_server(address_of(ex))):
            return
        self._exchanges[flow.id] = ex
        self._reject(
            flow,
            ex,
            400,
            ErrorCode.PARSE_ERROR,
            "Parse error: not JSON, though a lenient parser reads an MCP request in it",
        )

    def _compressed_json(
        self, flow: http.HTTPFlow, h: dict[str, str], body: bytes, enc: str
    ) -> bool:
        """Whether a compressed body of a type that is not JSON (``text/plain`` in gzip) is
        read as a JSON body is: in reverse mode or to a server known to speak MCP, when it
        decodes (within the message limit) to JSON or to what a lenient parser reads as an
        MCP request. A server that inflates requests (Jetty's GzipHandler, ASP.NET Core's
        request decompression) and reads the body whatever its type, leniently or not, ran
        such a body's ``tools/call`` unread: uncompressed, the same body was inspected (or
        refused as lenient), compressed it went on untouched. Other uploads are not decoded."""
        ex = self._new_exchange(flow, h)
        if not (_reverse(flow) or self._known_server(address_of(ex))):
            return False
        try:
            content = codec.decode_content(body, enc, self.max_message_bytes)
        except codec.TooLarge:
            # Too large to read: refused when its start opens a document (JSON or a lenient
            # parser's) or it inflates like a bomb, as a JSON-typed body is. It went on
            # unread: a tools/call padded past mcp_max_message_bytes reached the server.
            head = codec.decoded_prefix(body, enc)
            if head is None or looks_like_json(head) or lenient_opens_document(head):
                self._too_large_request(flow, ex, len(body), enc)
            return False
        except ValueError:  # (corrupt: an upload goes on as before)
            return False
        return looks_like_json(content) or lenient_names_mcp_method(content)

    def _answer_for_the_server(
        self, flow: http.HTTPFlow, ex: Exchange, content: bytes, e: ParseError
    ) -> bool:
        """A client's answer to a server->client request (sampling, elicitation) that cannot
        be parsed: refusing it to the client would leave the server waiting for it forever.
        The server gets a parse error for that id in its place (the bytes themselves never
        reach it), and the client the server's own reply."""
        if b'"method"' in content or not (b'"result"' in content or b'"error"' in content):
            return False
        ident = outer_id(content)  # (not an "id" inside its result)
        if ident is None:
            return False
        msg = _uninspected(ex, Direction.CLIENT_TO_SERVER, len(content))
        msg.id = ident
        msg.block(e.code, e.message, stage="parse")
        self.pipeline.run(msg)
        self._record(flow, [msg])
        self._mark(flow, [msg])
        text = f"mcp-gateway could not parse the client's answer: {e.message}"
        _set_json_body(flow.request, encode_json(error_response(ident, e.code, text)))
        return True

    # -- legacy HTTP+SSE refusals -------------------------------------------------------
    def _learn_legacy_session(self, server: str, session: str) -> None:
        if len(session) > _MAX_LEGACY_SESSION:
            return  # (a server's id of megabytes, 10,000 of them: not kept)
        self._legacy_sessions[(server, session)] = None
        while len(self._legacy_sessions) > _MAX_LEGACY:
            self._legacy_sessions.popitem(last=False)

    def _answer_on_legacy_stream(self, flow: http.HTTPFlow, ex: Exchange, m: Message) -> bool:
        """A refused request of the legacy HTTP+SSE transport. Its clients read every answer
        from the GET stream and ignore the POST's body, so an error in the POST's answer
        leaves them waiting forever. Instead, the request goes on to the server as a
        ``ping`` with the same id (the refused content never reaches it), and the ping's
        answer on the stream is replaced by the refusal (SSEStream._event)."""
        r = m.refusal
        key = (address_of(ex), ex.legacy_session)
        if (
            m.kind is not Kind.REQUEST
            or m.id is None
            or r is None
            or r.http_status == 401  # an authentication challenge must stay an HTTP answer
            or key not in self._legacy_sessions
        ):
            return False
        err = error_response(m.id, r.code, r.message, r.data)
        # The id is the client's, of any length, and an entry stays until the ping's answer
        # comes on the stream: never, when the server refuses the POST (404 for a session
        # whose stream closed). 1 MB ids kept 1.2 MB each, 10,000 of them. (The key's id is
        # counted too: it is the same string as the answer's when the message was parsed
        # once, but not necessarily, so the bound errs on the safe side.)
        cost = 200 + len(encode_json(err)) + (len(m.id) if isinstance(m.id, str) else 0)
        k = (*key, id_key(m.id))
        old = self._legacy_refusals.pop(k, None)
        if old is not None:
            self._legacy_refusal_bytes -= old[1]
        self._legacy_refusals[k] = (err, cost)
        self._legacy_refusal_bytes += cost
        while len(self._legacy_refusals) > 1 and (
            len(self._legacy_refusals) > _MAX_LEGACY
            or self._legacy_refusal_bytes > _MAX_LEGACY_REFUSAL_BYTES
        ):
            self._legacy_refusal_bytes -= self._legacy_refusals.popitem(last=False)[1][1]
        _set_json_body(flow.request, encode_json({"jsonrpc": "2.0", "id": m.id, "method": "ping"}))
        return True

    def _take_legacy_refusal(self, ex: Exchange, m: Message) -> dict | None:
        if not m.is_response or m.id is None:
            return None
        hit = self._legacy_refusals.pop((address_of(ex), ex.legacy_session, id_key(m.id)), None)
        if hit is None:
            return None
        self._legacy_refusal_bytes -= hit[1]
        return hit[0]

    def _refuse_exchange(self, flow: http.HTTPFlow, ex: Exchange, r: Refusal) -> None:
        self._reply(
            flow, r.http_status or 403, error_response(None, r.code, r.message, r.data), r.headers
        )
        flow.marked = ":no_entry:"
        flow.comment = f"mcp-gateway refused: {r.message}"

    def _apply_request(
        self, flow: http.HTTPFlow, ex: Exchange, batch: bool, msgs: list[Message]
    ) -> None:
        self._mark(flow, msgs)
        stopped = [m for m in msgs if m.stopped]
        if not stopped:
            if any(m.modified for m in msgs):
                value = [m.payload for m in msgs] if batch else msgs[0].payload
                _set_json_body(flow.request, encode_json(value))
            return
        if ex.refusal is not None:
            # The whole exchange is refused (authentication, session binding): whatever the
            # client sent, it gets the refusal and nothing reaches the server.
            r = ex.refusal
            ident = msgs[0].id if not batch and msgs[0].kind is Kind.REQUEST else None
            self._reply(
                flow,
                r.http_status or 403,
                error_response(ident, r.code, r.message, r.data),
                r.headers,
            )
            return
        if not batch:
            m = msgs[0]
            r = m.refusal
            if self._answer_on_legacy_stream(flow, ex, m):
                return
            if m.kind is Kind.REQUEST or m.kind is Kind.INVALID:
                self._reply(
                    flow,
                    (r.http_status if r else None) or 200,
                    error_response(m.id, r.code, r.message, r.data) if r else None,
                    r.headers if r else None,
                )
                _keep_scrubbed(flow, batch, msgs)
            elif m.is_response:
                # A client's answer to a server->client request (sampling, elicitation):
                # the server gets an error in its place, never the refused content.
                _set_json_body(
                    flow.request,
                    encode_json(error_response(m.id, r.code, r.message) if r else None),
                )
                for name in [k for k in flow.request.headers if k.lower().startswith("mcp-param-")]:
                    del flow.request.headers[name]  # (they mirrored what was refused)
            else:  # a notification: dropped
                status = r.http_status if r and r.http_status else 202
                self._reply(
                    flow,
                    status,
                    error_response(None, r.code, r.message) if r and status >= 400 else None,
                    r.headers if r else None,
                )
                _keep_scrubbed(flow, batch, msgs)
            return
        # A batch with a refused element is answered by the gateway as a whole (the pipeline
        # refused the other elements as "not forwarded").
        # (status and headers from the refusals themselves: a 429's Retry-After, a 401's
        # WWW-Authenticate; not from the elements refused with them)
        real = [
            m for m in stopped if m.refusal and m.refusal.code != ErrorCode.NOT_FORWARDED
        ] or stopped
        first = real[0]
        status = max((m.refusal.http_status or 200) for m in real if m.refusal)
        answers = batch_answers(msgs)
        headers = first.refusal.headers if first.refusal else None
        self._reply(flow, status if answers else 202, answers or None, headers)
        _keep_scrubbed(flow, batch, msgs)
        # The client's answers to server requests in it (2025-03-26 lets a client answer two
        # sampling requests in one batch with a new call) reach the server as errors in their
        # place, as a refused single answer does: dropped with the batch, they left the tool
        # call that asked waiting (the TypeScript SDK's server for its 60 s timeout, the
        # Python SDK's without one). One POST each: a server may take no batch (the Python
        # SDK's answers a batch 400), and the client's was never forwarded to find out.
        for m in msgs:
            if m.is_response and m.id is not None:
                answer.send_to_server(flow, None, [refusal_error(m)])

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if answer.is_answer(flow):
            return answer.after_send(flow)  # the gateway's own answer to a server: sent
        asked = self._unasked_gets.pop(flow.id, None) if self._unasked_gets else None
        if flow.error or not flow.live or flow.metadata.get("mcp_gateway_answered"):
            return
        try:
            resp = flow.response
            if resp is None:
                return
            unfold_headers(resp.headers)
            if 300 <= resp.status_code < 400 and "location" in resp.headers and _reverse(flow):
                self._redirect_here(flow)
            if flow.id in self._exchanges:
                standard_reason(resp)
                if 300 <= resp.status_code < 400 and "location" in resp.headers:
                    self._scan_location(flow, self._exchanges[flow.id])
            first = hget(resp.headers, b"content-type")
            if first is not None and (flow.id in self._exchanges or is_event_stream(first)):
                one_content_type(resp.headers)
            if first is not None and flow.id in self._exchanges and not _PLAIN_TYPE.match(first):
                self._scan_content_type(flow, self._exchanges[flow.id])
                first = hget(resp.headers, b"content-type")
            if not is_event_stream(first):
                if flow.id in self._exchanges:
                    self._huge_response(flow)
                return
            if resp.status_code >= 400 and flow.id in self._exchanges:
                # An error answer is no event stream to its client: the TypeScript SDK quotes
                # the whole body in its error ("Error POSTing to endpoint: …"), comments and
                # id/event/retry lines included. It is read whole, as any answer without
                # JSON-RPC, and its text scanned.
                self._huge_response(flow)
                return
            ex = self._exchanges.get(flow.id)
            known = ex is not None
            rh = header_map(resp.headers)
            enc = codec.answer_codings(rh.get("content-encoding")) or ""
            decoder = text = None
            undecodable = ""
            utf8 = False  # a charset no client knows: they read UTF-8, and so does the gateway
            try:
                if [c for c in codec.codings(enc) if c != "identity"]:
                    decoder = StreamDecoder(enc, 4 * self.max_message_bytes)
                try:
                    cs = codec.foreign_charset(rh.get("content-type"))
                except ValueError:
                    if not codec.unknown_charset(rh.get("content-type")):
                        raise
                    # a charset no client knows (``x-bogus``): httpx falls back to UTF-8,
                    # EventSource and the TypeScript SDK always read UTF-8
                    cs, utf8 = None, True
                if cs is not None:  # the client decodes the events from this charset
                    text = TextDecoder(cs)
            except (ValueError, LookupError, ImportError) as e:
                undecodable = str(e)
            # (a charset that receivers read apart is no accident: such a stream is refused
            # like an MCP one, whatever it carries; an unknown stream is not waved through
            # unread: clients would read it, as they read an unknown coding or charset)
            if ex is None:
                ex = self._new_exchange(flow, asked)
                self._exchanges[flow.id] = ex
                if asked is not None and self._stream_unasked(flow):
                    # A GET that did not ask for an event stream (no ``text/event-stream``
                    # in its Accept) but got one, in reverse mode or from a server known to
                    # speak MCP: a legacy server opens its session on any GET /sse, and
                    # such a stream (mcp-use's ``Accept: application/json`` probe, curl)
                    # went on unauthenticated under ``auth.required``, its session and
                    # audit rows without a consumer. It is identified now, as it would have
                    # been had it asked.
                    refusal = self.pipeline.start_exchange(ex)
                    if refusal is not None:
                        return self._refuse_stream(flow, ex, refusal)
            if ex.transport is Transport.HTTP:
                ex.transport = Transport.SSE
            sid = rh.get("mcp-session-id")
            if sid and not ex.session_id:
                ex.session_id = sid
            if undecodable:
                log.warning(
                    "mcp-gateway: cannot decode event stream (flow %s): %s", flow.id, undecodable
                )
                if self.fail_mode == "closed":  # the client gets one plain error event
                    resp.headers.pop("content-encoding", None)
                    resp.headers["content-type"] = "text/event-stream"
            elif decoder is not None:
                del resp.headers["content-encoding"]  # the events go on decoded
            if text is not None or utf8:
                resp.headers["content-type"] = "text/event-stream"  # ... and as UTF-8
            if "content-length" in rh:
                # Redaction may change lengths: let mitmproxy frame each chunk instead.
                del resp.headers["content-length"]
                if resp.http_version == "HTTP/1.1":
                    resp.headers["transfer-encoding"] = "chunked"
            if known and "x-accel-buffering" in rh:
                resp.headers["x-accel-buffering"] = "no"
            elif known:  # appended: setting it looks for an existing one first (~10 us)
                resp.headers.fields += ((b"x-accel-buffering", b"no"),)
            stream = SSEStream(
                self,
                flow,
                ex,
                known=known,
                decoder=decoder,
                text=text,
                undecodable=undecodable,
            )
            resp.stream = stream
            if known:
                stream.hold_connection()
        except Exception as e:  # noqa: BLE001
            log.error(
                "mcp-gateway: internal error in responseheaders (flow %s): %r",
                flow.id,
                e,
                exc_info=e,
            )
            if flow.response is not None and self.fail_mode == "closed":
                resp = flow.response
                resp.stream = ErrorStream(request_ids(flow))
                try:  # one error event in place of the stream: framed and labelled as it is
                    resp.headers.pop("content-length", None)
                    resp.headers.pop("content-encoding", None)
                    resp.headers["content-type"] = "text/event-stream"
                    if resp.http_version == "HTTP/1.1":
                        resp.headers["transfer-encoding"] = "chunked"
                except Exception:  # noqa: BLE001
                    pass
            elif flow.response is not None:
                flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._no_upgrade(flow)
        try:
            self._response(flow)
        except Exception as e:  # noqa: BLE001
            log.error(
                "mcp-gateway: internal error in response (flow %s): %r", flow.id, e, exc_info=e
            )
            if (
                self.fail_mode == "closed"
                and flow.response is not None
                and not flow.response.stream
            ):
                flow.response = http.Response.make(
                    502,
                    encode_json(
                        error_response(
                            None, ErrorCode.INTERNAL_ERROR, "gateway internal error in response"
                        )
                    ),
                    {"content-type": "application/json"},
                )
        finally:
            ex = self._exchanges.pop(flow.id, None)
            if ex is not None:
                stream = flow.response.stream if flow.response else None
                if isinstance(stream, SSEStream):
                    stream.release_connection()
                self.pipeline.end_exchange(ex)

    def _no_upgrade(self, flow: http.HTTPFlow) -> None:
        """A WebSocket handshake answered without an upgrade ends the exchange made for it
        (see WebSockets.no_upgrade: nothing to do for any other flow)."""
        if flow.websocket is not None:
            return
        try:
            self.websockets.no_upgrade(flow)
        except Exception as e:  # noqa: BLE001
            log.error("mcp-gateway: internal error ending a handshake (flow %s): %r", flow.id, e)

    def error(self, flow: http.HTTPFlow) -> None:
        self._unasked_gets.pop(flow.id, None)
        self._no_upgrade(flow)
        if answer.is_answer(flow):
            return answer.after_send(flow)
        ex = self._exchanges.pop(flow.id, None)
        if ex is None:
            return
        try:
            resp = flow.response
            stream = resp.stream if resp is not None else None
            if isinstance(stream, SSEStream):
                stream.release_connection()
                kept = stream.kept()
                if kept is not None and resp.raw_content is None:
                    resp.data.content = kept  # a cut stream stays viewable in mitmweb
        finally:
            self.pipeline.end_exchange(ex)

    def _response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        unsent = flow.metadata.pop(_UNSENT_REFUSAL, None)
        if unsent is not None and resp is not None:
            # A refused stream whose server ended it with its headers (Content-Length: 0):
            # mitmproxy streams no such body, and the refusal went with its Content-Length
            # and no body (the client saw a broken answer, not the 401)
            resp.content = unsent
        if resp is None or flow.metadata.get("mcp_gateway_answered"):
            return
        ex = self._exchanges.get(flow.id)
        if ex is None:
            return
        if self.closing and not resp.stream:
            text = "mcp-gateway is shutting down; answer not forwarded"
            flow.response = http.Response.make(
                503,
                encode_json(error_response(request_id(flow), ErrorCode.INTERNAL_ERROR, text)),
                {"content-type": "application/json"},
            )
            return
        rh = header_map(resp.headers)
        sid = rh.get("mcp-session-id")
        if sid and not ex.session_id:
            ex.session_id = sid
        stream = resp.stream
        if isinstance(stream, SSEStream):
            kept = stream.kept()
            if kept is not None and resp.raw_content is None:
                resp.data.content = kept  # display copy for mitmweb; already sent
            return
        if stream:
            return
        raw = resp.raw_content
        if not raw:
            return
        ctype = rh.get("content-type", "").lower()
        enc = codec.answer_codings(rh.get("content-encoding"))
        if enc and codec.readings_differ(rh.get("content-encoding")):
            # httpx and fetch would read it apart (gzip next to identity or an unknown
            # token): it goes on decoded, as what both read and the gateway scans
            try:
                raw = codec.decode_content(raw, enc, self.max_message_bytes)
            except ValueError:
                pass  # (corrupt or too large: handled below as for any coding)
            else:
                del resp.headers["content-encoding"]
                resp.content = raw  # (identity now; Content-Length follows)
                enc = None
        if "json" not in ctype and not (enc or looks_like_json(raw)):
            return self._plain_answer(flow, ex, raw, enc)
        if len(raw) > self.max_message_bytes:
            return self._too_large_response(flow, ex, len(raw))
        try:
            # what the client reads: content codings undone, its charset (or UTF-16/32)
            content = codec.json_utf8(codec.decode_content(raw, enc, self.max_message_bytes), ctype)
        except codec.TooLarge:
            return self._too_large_response(flow, ex, len(raw), enc)
        except ValueError as e:
            if "json" in ctype:
                self._undecodable_response(flow, ex, len(raw), str(e))
            return
        if "json" not in ctype and not looks_like_json(content):
            return self._plain_answer(flow, ex, raw, enc)
        try:
            value = decode_json(content, lenient_utf8=True)
            parsed = build_messages(
                value, len(content), Direction.SERVER_TO_CLIENT, ex, content, self.max_batch
            )
        except TooManyElements as e:
            return self._undecodable_response(flow, ex, len(raw), "", f"response {e.message}")
        except Uninspectable as e:
            return self._undecodable_response(flow, ex, len(raw), e.message)
        except ParseError:
            return self._plain_answer(flow, ex, raw, enc)  # not JSON: scanned as text
        msgs = parsed.messages
        if all(m.kind is Kind.INVALID for m in msgs):
            return self._plain_answer(flow, ex, raw, enc)
        self.pipeline.run_all(msgs)
        self._record(flow, msgs)
        self._mark(flow, msgs)
        new = rebuild(value, parsed.batch, msgs)
        if new is not UNCHANGED:
            _set_json_body(resp, encode_json(new) if new is not None else b"")

    def _plain_answer(self, flow: http.HTTPFlow, ex: Exchange, raw: bytes, enc: str | None) -> None:
        """An answer to an MCP request that holds no JSON-RPC message (an error page, a
        server's text, an unexpected Content-Type): the client does not parse it, but it shows
        it (the TypeScript SDK throws ``Error POSTing to endpoint: <body>`` and ``Unexpected
        content type: <type>``, and hosts hand that to the model). So its text and its
        Content-Type are scanned like a message's strings: redacted in place, or withheld when
        a rule blocks, and audited."""
        resp = flow.response
        if resp is None or len(raw) > self.max_message_bytes:
            return
        if resp.status_code == 202:
            # an acknowledgement: the legacy HTTP+SSE transport's "Accepted" after every POST
            # (and a streamable HTTP server's after a notification or response). No client
            # reads it, so nothing is shown and nothing is audited, as for an empty one.
            return
        try:
            content = codec.decode_content(raw, enc, self.max_message_bytes)
        except ValueError:
            return  # (corrupt bytes under a coding: the client cannot read them either)
        ctype = resp.headers.get("content-type", "")
        # Node's fetch reads the text as UTF-8 whatever the charset, httpx in the charset
        # (UTF-8 when it does not know it). When the readings differ (utf-7 hides "+ghp_…"
        # from one of them), or the charset is unknown or named ambiguously, the answer goes
        # on as UTF-8, the reading the gateway scanned, so that every client reads that.
        utf8 = content.decode("utf-8", "replace")
        try:
            cs = codec.foreign_charset(ctype) or "utf-8"
            text = content.decode(cs, "replace") if cs != "utf-8" else utf8
            relabel = text != utf8
        except (ValueError, LookupError):
            cs, text, relabel = "utf-8", utf8, True
        payload = {"body": text}
        if not flow.metadata.get(_TYPE_SCANNED):
            payload["content-type"] = ctype
        msg = Message(
            payload=payload,
            direction=Direction.SERVER_TO_CLIENT,
            kind=Kind.INVALID,
            exchange=ex,
            size=len(raw),
        )
        self.pipeline.run(msg)
        if not (msg.findings or msg.stopped or relabel):
            return
        if msg.findings or msg.stopped:
            self._record(flow, [msg])
            self._mark(flow, [msg])
        if msg.stopped:
            why = msg.refusal.message if msg.refusal else "blocked"
            resp.headers["content-type"] = "text/plain; charset=utf-8"
            if "content-encoding" in resp.headers:
                del resp.headers["content-encoding"]
            resp.content = f"mcp-gateway: answer withheld: {why}".encode()
        elif msg.modified or relabel:
            new = msg.payload
            out = str(new.get("content-type", ctype) or "")
            if cs != "utf-8" or relabel:
                out = (out.split(";")[0].strip() or "text/plain") + "; charset=utf-8"
            if out != ctype:
                resp.headers["content-type"] = out
            if "content-encoding" in resp.headers:
                del resp.headers["content-encoding"]
            resp.content = str(new.get("body", "")).encode("utf-8", "surrogatepass")

    def _redirect_here(self, flow: http.HTTPFlow) -> None:
        """A reverse gateway's upstream redirecting to its own address (``Location:
        http://upstream/mcp/``: FastMCP of the Python SDK 1.8 and 1.9 answers every POST to
        ``/mcp`` so, to add the slash) would send the client around the gateway: httpx (the
        Python SDK 1.8 and 1.9, fastmcp 2.8) and fetch (mcp-remote) follow it, and every
        request and answer after the first went to the server unscanned and unaudited. Such a
        target is made relative, so the client follows it to the gateway; other origins are
        left alone."""
        resp, req = flow.response, flow.request
        assert resp is not None
        values = resp.headers.get_all("location")
        mine = "https" if flow.client_conn.tls_established else "http"
        here = [same_origin_relative(v, req.scheme, req.host, req.port, mine) for v in values]
        if all(h is None for h in here):
            for v in values:
                o = url_origin(v, mine)
                if o is not None and o[1] == req.host.lower().rstrip(".").strip("[]"):
                    # (the upstream's host under another scheme or port, typically http ->
                    # https: made relative, it would come back here and be redirected again)
                    log.warning(
                        "mcp-gateway: the upstream %s redirects to %s://%s:%d, which clients "
                        "reach without the gateway: point --mode reverse at that address "
                        "(flow %s)",
                        f"{req.scheme}://{req.host}:{req.port}",
                        o[0],
                        req.host,
                        o[2],
                        flow.id,
                    )
            return
        resp.headers.set_all(
            "location", [v if h is None else h for v, h in zip(values, here, strict=True)]
        )
        log.info(
            "mcp-gateway: redirect to the upstream's own address kept on the gateway (flow %s)",
            flow.id,
        )

    def _scan_location(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """A redirect's target: the TypeScript SDK does not follow a redirected POST and
        throws ``Redirect to <target> not followed``, path included, which hosts hand to the
        model (a Telegram ``bot<token>`` path, a signed download path)."""
        self._scan_answer_header(flow, ex, "location")

    def _scan_content_type(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """An answer's Content-Type that is not plainly JSON or an event stream: the
        TypeScript SDK reads the media type strictly (``application/json, x=…``,
        ``application/json-x``, ``text/event-stream-x`` are none of its two) and throws
        ``Unexpected content type: <the header>``, which hosts hand to the model, while the
        gateway reads such a body as JSON or as events and never looked at the header."""
        resp = flow.response
        assert resp is not None
        if resp.status_code == 202:
            return  # (no client reads a 202's body or type: see _plain_answer)
        # (every rule, no scope, first: most such types are an error page's text/plain, and
        # a pipeline run would audit each one)
        scan = self.pipeline.get("scan")
        engine = getattr(scan, "engine", None)
        if engine is None:
            return
        flow.metadata[_TYPE_SCANNED] = True  # (not again by _plain_answer)
        # (outside any message: the caps the engine was left with are another message's,
        # and a rule that used its cap up there was not looked for here)
        engine.begin_message()
        if not engine.scan_text(", ".join(resp.headers.get_all("content-type"))):
            engine.capped.clear()
            return
        self._scan_answer_header(flow, ex, "content-type")

    def _scan_answer_header(self, flow: http.HTTPFlow, ex: Exchange, name: str) -> None:
        """An answer's header that clients quote to the model, scanned like an answer's
        text: redacted in place, removed by a blocking rule, audited."""
        resp = flow.response
        assert resp is not None
        values = resp.headers.get_all(name)
        msg = Message(
            payload={name: values[0] if len(values) == 1 else values},
            direction=Direction.SERVER_TO_CLIENT,
            kind=Kind.INVALID,
            exchange=ex,
            size=sum(len(v) for v in values),
        )
        self.pipeline.run(msg)
        if not (msg.findings or msg.stopped):
            return
        self._record(flow, [msg])
        self._mark(flow, [msg])
        if msg.stopped:
            del resp.headers[name]
        elif msg.modified:
            new = msg.payload.get(name)
            resp.headers.set_all(name, new if isinstance(new, list) else [str(new)])

    def _undecodable_response(
        self, flow: http.HTTPFlow, ex: Exchange, size: int, why: str, text: str = ""
    ) -> None:
        text = text or f"response cannot be decoded ({why}); not inspected"
        msg = self._not_inspected(
            flow, ex, Direction.SERVER_TO_CLIENT, size, text, whole_answer=True
        )
        if self.fail_mode == "closed":
            ident = request_id(flow)
            flow.response.headers.pop("content-encoding", None)
            _set_json_body(
                flow.response, encode_json(error_response(ident, ErrorCode.TOO_LARGE, text))
            )
            flow.response.headers["content-type"] = "application/json"
            self._mark(flow, [msg])

    def _stream_unasked(self, flow: http.HTTPFlow) -> bool:
        """A successful event stream answering a GET that the request hook let pass as no
        MCP exchange (see ``requestheaders``), where a GET asking for one would have been
        one: in reverse mode, or from a server known to speak MCP."""
        resp = flow.response
        return (
            flow.request.method == "GET"
            and resp is not None
            and 200 <= resp.status_code < 300
            and (_reverse(flow) or self._known_server(address_of(flow)))
        )

    def _refuse_stream(self, flow: http.HTTPFlow, ex: Exchange, r: Refusal) -> None:
        """Answer the refusal in place of an event stream whose headers came already: the
        status, the refusal's headers and its JSON error, sent at once (``push``: the body
        waited for the server's first bytes, for ever from a server that stayed silent; when
        it cannot be pushed, with those bytes or the stream's end); the server's events are
        dropped. ``Connection: close`` (HTTP/1) ends the stream's connection once the client
        has read the refusal."""
        resp = flow.response
        assert resp is not None
        err = encode_json(error_response(None, r.code, r.message, r.data))
        resp.status_code = r.http_status or 403
        standard_reason(resp)
        for name in ("content-length", "content-encoding", "content-type", "transfer-encoding"):
            resp.headers.pop(name, None)
        for name, value in (r.headers or {}).items():
            resp.headers[name] = value
        resp.headers["content-type"] = "application/json"
        resp.headers["content-length"] = str(len(err))
        # (the client's version: mitmproxy speaks to each side in its own, and an HTTP/1
        # client of an h2 server kept its connection, its next request waiting behind a
        # stream that never ends)
        if flow.request.http_version in ("HTTP/1.1", "HTTP/1.0"):
            resp.headers["connection"] = "close"
        sent = False

        def once(data: bytes) -> list[bytes]:
            nonlocal sent
            flow.metadata.pop(_UNSENT_REFUSAL, None)
            if sent:
                return []
            sent = True
            return [err]

        resp.stream = once
        # (a body that ended with its headers is not streamed: the response hook gives it)
        flow.metadata[_UNSENT_REFUSAL] = err
        push(flow)
        flow.metadata["mcp_gateway_answered"] = True
        flow.marked = ":no_entry:"
        flow.comment = f"mcp-gateway refused: {r.message}"

    def _huge_response(self, flow: http.HTTPFlow) -> None:
        """An answer announced far over ``mcp_max_message_bytes`` is not read into memory
        (mitmproxy would hold it whole before the ``response`` hook): closed mode drops its
        bytes as they come and answers the request's error in their place; open mode streams
        it through uninspected. Up to 4 times the limit, it is read and refused as usual."""
        resp = flow.response
        assert resp is not None
        try:
            size = int((hget(resp.headers, b"content-length") or "").strip())
        except ValueError:
            return
        if size <= 4 * self.max_message_bytes:
            return
        ex = self._exchanges[flow.id]
        text = f"response of {size} bytes exceeds mcp_max_message_bytes ({self.max_message_bytes}); not inspected"
        msg = self._not_inspected(
            flow, ex, Direction.SERVER_TO_CLIENT, size, text, whole_answer=True
        )
        if self.fail_mode == "open":
            resp.stream = True
            return
        err = encode_json(error_response(request_id(flow), ErrorCode.TOO_LARGE, text))
        for name in ("content-length", "content-encoding", "content-type"):
            resp.headers.pop(name, None)
        resp.headers["content-type"] = "application/json"
        resp.headers["content-length"] = str(len(err))

        def swallow(data: bytes) -> list[bytes]:
            return [err] if data == b"" else []

        resp.stream = swallow
        self._mark(flow, [msg])

    def _too_large_response(
        self, flow: http.HTTPFlow, ex: Exchange, size: int, enc: str | None = None
    ) -> None:
        text = _over("response", size, enc, self.max_message_bytes)
        msg = self._not_inspected(
            flow, ex, Direction.SERVER_TO_CLIENT, size, text, whole_answer=True
        )
        if self.fail_mode == "closed":
            ident = request_id(flow)
            _set_json_body(
                flow.response, encode_json(error_response(ident, ErrorCode.TOO_LARGE, text))
            )
            flow.response.headers["content-type"] = "application/json"
            self._mark(flow, [msg])


# flow.metadata: the answer's Content-Type was scanned with the headers (_plain_answer
# leaves it out of the body's scan)
_TYPE_SCANNED = "mcp_gateway_type_scanned"

# Content-Types whose text no client quotes: JSON or an event stream, with at most a charset
_PLAIN_TYPE = re.compile(
    r"(?i)[ \t]*(?:application/json|text/event-stream)[ \t]*(?:;[ \t]*charset=\"?[a-z0-9_.:-]{1,40}\"?[ \t]*)?"
    r"(?:;[ \t]*)?\Z"
)


# flow.metadata: a refused stream's body, until its callable has given it (_refuse_stream)
_UNSENT_REFUSAL = "mcp_gateway_unsent_refusal"


def _keep_scrubbed(flow: http.HTTPFlow, batch: bool, msgs: list[Message]) -> None:
    """A client request a scanning rule blocked is answered by the gateway and never sent;
    the flow keeps it as the rule left it (what it blocked replaced, as in a redacted
    request), without the Mcp-Param-* headers that mirrored it. It kept what the client
    sent: mitmweb showed, and `-w` saved, the very value the rule stopped, while a redacted
    one was gone from both."""
    if not blocked_by_rule(msgs):
        return
    _set_json_body(
        flow.request, encode_json([m.payload for m in msgs] if batch else msgs[0].payload)
    )
    for name in [k for k in flow.request.headers if k.lower().startswith("mcp-param-")]:
        del flow.request.headers[name]


def _set_json_body(m: http.Message, data: bytes) -> None:
    """Put a (re-)serialized JSON body in place. It is UTF-8: a Content-Type naming another
    charset is replaced; content codings mitmproxy cannot re-apply (a list, x-gzip) are
    dropped, a single one is re-applied."""
    ce = m.headers.get("content-encoding")
    if ce is not None and ce.strip().lower() not in codec.SINGLE_CODINGS:
        del m.headers["content-encoding"]
    try:
        foreign = codec.foreign_charset(m.headers.get("content-type")) is not None
    except ValueError:
        foreign = True
    if foreign:
        m.headers["content-type"] = "application/json"
    m.content = data


def _strict_json(content: bytes) -> bool:
    """Whether a body parses as JSON as it is (which a lenient parser reads the same)."""
    try:
        json.loads(content)
    except (ValueError, RecursionError):
        return False
    return True


def _oversized_id(req: http.Request, enc: str | None) -> Any:
    """The id of a request too large to read, for its 413: read for certain from the first
    bytes of its top-level object, or written last at its top level (``parse.top_level_id``);
    a compressed body by its decoded first bytes only. None (``"id": null``) for a batch, a
    body in another charset, or when the id cannot be read for certain."""
    body = req.raw_content or b""
    try:
        if codec.foreign_charset(req.headers.get("content-type")) is not None:
            return None
    except ValueError:
        return None
    if enc and [c for c in codec.codings(enc) if c != "identity"]:
        head = codec.decoded_prefix(body, enc, 65536)
        return head_id(head) if head else None
    return top_level_id(body)


def _over(what: str, size: int, enc: str | None, limit: int) -> str:
    """The text for a body over the limit. A compressed one's size is not what passed the
    limit ("message of 1662 bytes exceeds mcp_max_message_bytes (16777216)" read as a bug),
    so its codings are named (by their names only: the header is the peer's text)."""
    chain = [c for c in codec.codings(enc) if c in codec.SINGLE_CODINGS][:4] if enc else []
    if chain:
        return (
            f"{what} of {size} bytes ({', '.join(chain)}) exceeds mcp_max_message_bytes "
            f"({limit}) once decoded; not inspected"
        )
    return f"{what} of {size} bytes exceeds mcp_max_message_bytes ({limit}); not inspected"


_MAX_LEGACY = 10_000  # legacy sessions and pending refusals remembered
_MAX_LEGACY_REFUSAL_BYTES = 16 * 1024 * 1024  # what the pending refusals hold, at most
_MAX_LEGACY_SESSION = 1024  # a longer legacy session id (the server's) is not remembered


def _uninspected(ex: Exchange, direction: Direction, size: int) -> Message:
    msg = Message(payload=None, direction=direction, kind=Kind.INVALID, exchange=ex, size=size)
    msg.inspected = False
    return msg


def _names_jsonrpc(value: Any) -> bool:
    """Whether a decoded body (an object, or a batch's elements) has a "jsonrpc" member as
    some server reads it (in any case, with Go's fold of "s": mcp-go's reading)."""
    items = value if isinstance(value, list) else (value,)
    return any(
        isinstance(o, dict) and any(isinstance(k, str) and k.casefold() == "jsonrpc" for k in o)
        for o in items
    )


def _reverse(flow: http.HTTPFlow) -> bool:
    """Whether the flow came in through a reverse-mode listener (its upstream is the MCP
    server the gateway stands in front of)."""
    return type(getattr(flow.client_conn, "proxy_mode", None)).__name__ == "ReverseMode"


# A member named "method" as receivers read its name: each letter as it is, in either case
# (Go's encoding/json and .NET match member names ignoring case) or as a \\u escape
# (json.loads, pydantic and JSON.parse undo them). "m\\u0065thod" is "method" to every
# server, and a body too costly or too deep to parse hid its method from the bytes "method":
# a first request to a server not yet seen speaking MCP passed on untouched
# (unauthenticated, unscanned, unaudited), and the server ran it. (Matched on the body in
# lower case.)
_METHOD_NAME = re.compile(
    rb'"(?:m|\\u00[46]d)(?:e|\\u00[46]5)(?:t|\\u00[57]4)'
    rb'(?:h|\\u00[46]8)(?:o|\\u00[46]f)(?:d|\\u00[46]4)"'
)


def _names_method(content: bytes) -> bool:
    """Whether a body the gateway does not parse has a member that a receiver reads as
    ``method`` (see _METHOD_NAME)."""
    if b'"method"' in content:
        return True
    low = content.lower()
    return b'"method"' in low or (b"\\u00" in low and _METHOD_NAME.search(low) is not None)


def _names_mcp_method(content: bytes) -> bool:
    """Whether a body the gateway cannot read (or will not) is MCP to a receiver that reads
    it leniently: it names a method with "jsonrpc" beside it (or a \\u escape, which may
    spell either), or, without any, names an MCP method (the Java SDK runs one without
    jsonrpc; Jackson reads the first value of JSON lines and ignores the rest). JSON lines
    of another kind (access logs: ``{"method": "GET", ...}``), sent to a host not known to
    speak MCP, were refused as a parse error once such bodies were read."""
    if may_name_jsonrpc(content):
        return _names_method(content)
    return names_mcp_method(content)


def _lenient_mcp(content: bytes, bare: bool = True) -> bool:
    """Whether a body the gateway refuses to parse (invalid UTF-8, such as an encoded lone
    surrogate) is an MCP message to a receiver that reads it leniently: Python's
    ``json.loads`` takes such bytes with ``surrogatepass`` (a key written ``"\\u006dethod"``
    hides the method from a plain byte search)."""
    try:
        value = json.loads(content.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return False
    return is_mcp_payload(value, bare=bare)
