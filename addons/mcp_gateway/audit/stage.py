"""The ``audit`` pipeline stage: one compact row per message, handed to the writer.

Runs last (``ORDER_AUDIT``) and with ``always = True``, so blocked and dropped messages are
recorded too.  It never touches the disk: it builds a small dict and calls
``AuditWriter.submit`` (``put_nowait``).  When the queue is full, ``on_full`` decides:
``"drop"`` forwards the message and counts the loss (recorded in ``audit_events``);
``"block"`` refuses it with a JSON-RPC error, because it could not be recorded.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from typing import Any

import orjson

from ..identity.identify import client_host
from ..message import ErrorCode, Exchange, Kind, Message
from ..pipeline import ORDER_AUDIT
from ..scan.stage import SECRET_IDS_KEY, is_secret_session

log = logging.getLogger("mcp_gateway")

MASKED_ID = "[masked: holds a secret]"
AUDIT_FULL_MESSAGE = "mcp-gateway: the audit trail is not keeping up; message refused because it could not be recorded"
_SCRATCH_KEY = "audit.n"


def _identity(ex: Exchange) -> tuple[Any, Any, Any]:
    ident = ex.identity
    if ident is None:
        # refused before it was identified (a missing or bad credential under
        # auth.required): named by its address, as an anonymous caller is (usage listed
        # such calls as "(anonymous)" beside the same caller's anon:<ip>); no identity kind
        addr = ex.client_addr
        return ("anon:" + client_host(addr) if addr else None), None, None
    key = getattr(ident, "key_id", None) or getattr(ident, "subject", None)
    return getattr(ident, "consumer", None), key, getattr(ident, "kind", None)


def _status(ex: Exchange) -> int | None:
    flow = ex.flow
    if flow is None:
        return None
    resp = getattr(flow, "response", None)
    return getattr(resp, "status_code", None) if resp is not None else None


def _exchange_columns(ex: Exchange) -> dict[str, Any]:
    """The columns every row of an HTTP exchange shares: where, who, how."""
    consumer, key_id, ikind = _identity(ex)
    return {
        "flow_id": ex.flow_id,
        "transport": ex.transport._value_,  # plain str: no conversion in the writer
        "server": ex.server,
        "session_id": ex.session_id or ex.legacy_session,  # legacy HTTP+SSE: ?session_id=
        "client_addr": ex.client_addr or None,
        "consumer": consumer,
        "key_id": key_id,
        "identity_kind": ikind,
        "http_method": ex.http_method,
        "status": _status(ex),
        "_protocol_version": _version(ex.protocol_version),
    }


_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def _version(v: Any) -> Any:
    """The MCP-Protocol-Version header as the sessions table records it: a version, or a
    note that it was none (the raw header may be anything, a credential included)."""
    if v is None or (isinstance(v, str) and _VERSION.match(v)):
        return v
    return "[not a protocol version]"


def message_row(msg: Message, store_payloads: bool = False) -> dict[str, Any]:
    """The compact row for one message (values are coerced to column types by the writer)."""
    refusal = msg.refusal
    error = None
    error_code = None
    payload = msg.payload
    if msg.kind is Kind.ERROR:
        error = 1
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            error_code = err.get("code")
    elif msg.kind is Kind.RESULT and isinstance(payload, dict):
        res = payload.get("result")
        error = 1 if isinstance(res, dict) and res.get("isError") is True else 0
    row = _exchange_columns(msg.exchange)
    row.update(
        time=msg.time,
        direction=msg.direction._value_,
        kind=msg.kind._value_,
        method=msg.method,
        name=msg.name,
        rpc_id=msg.id if msg.id is None or msg.id.__class__ is str else str(msg.id),
        latency_ms=msg.latency_ms,
        size=msg.size,
        action=msg.action._value_,
        error=error,
        error_code=error_code,
        refusal_code=refusal.code if refusal else None,
        refusal_message=refusal.message if refusal else None,
        refusal_stage=(refusal.stage or None) if refusal else None,
        faults=",".join(msg.faults) if msg.faults else None,
        modified=1 if msg.modified else 0,
        inspected=1 if msg.inspected else 0,
        batch_index=msg.batch_index,
        sse_event_id=msg.sse_event_id,
    )
    if msg.findings:
        row["_findings"] = [
            {
                "rule": f.rule,
                "type": f.type,
                "severity": f.severity,
                "action": f.action,
                "location": _cut(f.location),
                "start": f.start,
                "end": f.end,
                "masked": (f.masked or "")[:200],
            }
            for f in msg.findings
        ]
    if is_secret_session(row["session_id"]):
        row["session_id"] = MASKED_ID
    secret = msg.exchange.scratch.get(SECRET_IDS_KEY)
    if secret:
        # identifiers that travel unchanged but hold a secret (found by the scan stage)
        for col in ("rpc_id", "method", "name", "session_id", "server", "sse_event_id"):
            v = row.get(col)
            if v is not None and str(v) in secret:
                row[col] = MASKED_ID
    _cap_columns(row)
    if store_payloads:
        row["payload"] = stored_payload(msg)
    return row


# Identifiers are recorded as they came, but a client chooses them: a 15 MB tool name made
# two 15 MB rows, a usage key and an index entry per call (24 anonymous calls, a 1.5 GB
# audit database; the queue is bounded in rows, not bytes). Past this length they are cut,
# and the cut says how long they were.
ID_CAP = 512
_CAPPED = (
    "method", "name", "rpc_id", "session_id", "sse_event_id", "server", "consumer", "key_id",
    "client_addr", "refusal_message", "faults",
)  # fmt: skip


def _cap_columns(row: dict[str, Any]) -> None:
    for col in _CAPPED:
        v = row.get(col)
        if v.__class__ is str and len(v) > ID_CAP:
            row[col] = _cut(v)


def _cut(v: Any) -> Any:
    """An identifier, or a finding's location (a JSON pointer through the client's member
    names, of any length: 120 findings under 30 KB names made a 3.6 MB row, and up to
    mcp_max_findings of them per message), cut past ID_CAP with its length and a digest of
    the whole said: two long session ids that share their first ID_CAP characters stay two
    sessions in the audit."""
    if v.__class__ is str and len(v) > ID_CAP:
        whole = hashlib.blake2b(v.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        return f"{v[:ID_CAP]}…[{len(v)} characters, blake2b {whole}]"
    return v


def exchange_row(ex: Exchange) -> dict[str, Any]:
    """A row for an MCP HTTP exchange that carried no JSON-RPC message (GET stream, DELETE,
    or a request refused before its body was looked at)."""
    r = ex.refusal
    row = _exchange_columns(ex)
    if is_secret_session(row["session_id"]):
        row["session_id"] = MASKED_ID
    row.update(
        time=ex.started,
        direction="c2s",
        kind="exchange",
        action="block" if r is not None else "pass",
        refusal_code=r.code if r else None,
        refusal_message=r.message if r else None,
        refusal_stage=(r.stage or None) if r else None,
    )
    _cap_columns(row)
    return row


# -- payload storage (opt-in) -----------------------------------------------------------


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _resolve(doc: Any, pointer: str) -> tuple[Any, Any] | None:
    """(container, key) for a JSON pointer, or None."""
    if not pointer.startswith("/"):
        return None
    parts = [_unescape(p) for p in pointer[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            return None
    last = parts[-1]
    if isinstance(cur, dict) and last in cur:
        return cur, last
    if isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        return cur, int(last)
    return None


def stored_payload(msg: Message) -> str | None:
    """The payload as stored with ``mcp_audit_store_payloads``: as the pipeline left it
    (already redacted by the act stage), and with every finding's span masked again, so that
    a secret found but not redacted (action log/alert, or a blocked message that the act
    stage never saw) never reaches the database.  If a finding cannot be located, the
    payload is withheld rather than stored with a possible secret in it."""
    payload = msg.payload
    if not msg.findings:
        try:
            return orjson.dumps(payload).decode()
        except TypeError:
            return None
    doc = copy.deepcopy(payload)
    by_loc: dict[str, list] = {}
    for f in msg.findings:
        if f.location.startswith(("header:", "url:")):
            continue  # headers and the URL are not stored
        by_loc.setdefault(f.location, []).append(f)
    for loc, fs in by_loc.items():
        target = _resolve(doc, loc) if loc else None
        if target is None:
            return orjson.dumps({"withheld": f"finding at {loc!r} could not be masked"}).decode()
        cont, key = target
        val = cont[key]
        if not isinstance(val, str):
            cont[key] = f"[{fs[0].type} masked]"
            continue
        spans = sorted(((f.start, f.end, f) for f in fs), key=lambda t: t[0], reverse=True)
        ok = all(0 <= s < e <= len(val) for s, e, _ in spans)
        if not ok:
            cont[key] = f"[{fs[0].type} masked]"
            continue
        for s, e, f in spans:
            val = val[:s] + (f.masked or f"[{f.type}]") + val[e:]
        cont[key] = val
    try:
        return orjson.dumps(doc).decode()
    except TypeError:
        return None


class AuditStage:
    name = "audit"
    order = ORDER_AUDIT
    always = True

    def __init__(self, writer: Any, *, on_full: str = "block", store_payloads: bool = False):
        self.writer = writer
        self.on_full = on_full
        self.store_payloads = store_payloads

    def process(self, msg: Message) -> None:
        ex = msg.exchange
        ex.scratch[_SCRATCH_KEY] = ex.scratch.get(_SCRATCH_KEY, 0) + 1
        block = self.on_full == "block"
        if self.writer.submit(message_row(msg, self.store_payloads), refused_if_full=block):
            return
        if block and not msg.stopped:
            msg.block(ErrorCode.INTERNAL_ERROR, AUDIT_FULL_MESSAGE, stage=self.name)

    def process_batch(self, msgs: list[Message]) -> None:
        """A client's batch: recorded whole or not at all. With ``on_full="block"`` and no
        room for every row, every element is refused (the gateway answers the batch as a
        whole, so rows already queued for some would say they passed). The writer takes the
        rows in one step, so a writer switching to its fallback cannot split them."""
        many = getattr(self.writer, "submit_many", None)
        if self.on_full != "block" or many is None:
            for m in msgs:
                self.process(m)
            return
        rows = [message_row(m, self.store_payloads) for m in msgs]
        accepted = many(rows)
        for m in msgs:
            ex = m.exchange
            ex.scratch[_SCRATCH_KEY] = ex.scratch.get(_SCRATCH_KEY, 0) + 1
            if not accepted and not m.stopped:
                m.block(ErrorCode.INTERNAL_ERROR, AUDIT_FULL_MESSAGE, stage=self.name)

    def on_exchange_end(self, ex: Exchange) -> None:
        if ex.scratch.get(_SCRATCH_KEY):
            return
        self.writer.submit(exchange_row(ex))
