"""The ``scan`` pipeline stage: scan what the receiver of a message will see.

Every decoded JSON string of the message (params and result/error alike: tool arguments,
text and resource contents, prompt messages, log notifications, error messages, tool
descriptions) is scanned once, in one buffer, each value preceded by its key so that
context rules (``"password": "..."``) see the field name. Inside the values the engine also
looks through JSON escapes (a JSON document carried in a string, one more level), percent-
encoding and base64 blobs. For client requests the ``Authorization`` header is scanned too.

Findings never hold the secret: the stage records a masked value; the exact spans needed
to redact are kept aside for the act stage in ``msg.exchange.scratch`` (key ``SPANS_KEY``,
per message id), and the act stage pops them.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import hyperscan as hs
import orjson

from .. import secretref
from ..correlate import pending_of
from ..message import Direction, Finding, Kind, Message, NotInspected, session_key
from ..parse import (
    MCP_PARAM_PREFIX,
    URI_METHODS,
    URI_NORMALISED_MAX,
    decode_header_value,
    repeats_members,
    served_aliases,
    target_pointer,
)
from ..pipeline import ORDER_SCAN
from .engine import GATE_BUFFER, GATE_DUMP, GATE_PROMPT, UNCHANGING, Detection, Engine
from .rules import Rule
from .views import wrap_view

SPANS_KEY = "scan.spans"  # read by mcp_gateway.act
_HEADER_DONE = "scan.header_done"
_MIN_LEN = 6  # no rule matches anything shorter
_MAX_PENDING = 256
_MAX_CACHED_KEY = 1024  # longest method, name, server or address kept in the scope cache
_MAX_LOCATE = 32
# A terminal's screen and scrollback as a tool captures it: a few KB to a few tens, a shell's
# prompt on it (engine.GATES: "$ ", starship's and pure's U+276F). Only such a message is read
# for lines cut at the terminal's width: measuring the lines of every multi-line result (or a
# Hyperscan pass of its own first) cost the stage 12-20 % of its throughput on the benchmark
# corpus.
_WRAP_MAX_MESSAGE = 65536
_WRAP_MIN = 80  # the narrowest terminal whose cut lines are joined (views.wrap_view)
_JOIN_WINDOW = 256  # characters of a long text block read across its boundaries with others
_MAX_JOINS = 1000  # text blocks read joined in one message
_ECHO_MIN = 4096  # below it, scanning the copy twice costs less than noticing it
_ECHO_PATH = ("result", "structuredContent", "result")
_RELATED_TASK = "io.modelcontextprotocol/related-task"
# Values the protocol itself needs back unchanged: JSON-RPC's own members, and the opaque
# identifiers one side hands the other to be echoed (progress tokens, pagination cursors, task
# and elicitation ids, the request id a cancellation names, a multi round-trip request's
# state). Rewriting one breaks the session (a client whose progressToken was redacted never
# sees its progress) and hides nothing: the receiver chose the value or gets it back. A finding there is recorded, never redacted; a
# ``block`` rule still blocks.
PROTOCOL_FIELDS = frozenset(
    {
        ("jsonrpc",), ("id",), ("method",),
        ("params", "_meta", "progressToken"), ("params", "progressToken"),
        ("params", "requestId"), ("params", "cursor"), ("result", "nextCursor"),
        ("params", "taskId"), ("result", "taskId"), ("result", "task", "taskId"),
        ("params", "_meta", _RELATED_TASK, "taskId"),
        ("result", "_meta", _RELATED_TASK, "taskId"),
        ("params", "elicitationId"),
        ("params", "protocolVersion"), ("result", "protocolVersion"),
        # 2026-07-28 multi round-trip requests: the state an input_required result hands the
        # client, passed back verbatim on the retry (a server that seals it rejects a change)
        ("result", "requestState"), ("params", "requestState"),
    }
)  # fmt: skip
# The same for one request method only: the MCP Events draft's (SEP-3415) webhook signing key,
# which the client makes for one subscription and hands the server in ``events/subscribe`` to
# sign its deliveries with (Standard Webhooks: ``whsec_`` + base64, read as a Stripe webhook
# secret). Redacted, the server refused the subscription or signed with the placeholder.
METHOD_PROTOCOL_FIELDS = frozenset({("events/subscribe", ("params", "delivery", "secret"))})


@dataclass(slots=True)
class Span:
    """Where to redact: ``container[key]`` is the string, ``start:end`` the part to replace."""

    container: Any
    key: Any
    start: int
    end: int
    value: str
    encoding: str  # "" | "json" | "url" | "unicode" | "base64" | "hex"
    decoded: tuple[str, ...]
    rule: Rule | None
    type: str
    action: str
    location: str


def mask(value: str) -> str:
    """A short, non-reversible hint of a value: never more than a quarter of it."""
    n = len(value)
    if n < 8:
        return "…"
    k = min(4, n // 4)
    tail = value[-2:] if n >= 24 else ""
    return f"{value[:k]}…{tail}" if tail else f"{value[:k]}…"


def pointer(path: tuple) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


# What a 2026-07-28 server may ask of the client inside an input_required result (the SDKs
# accept no other method there), and so what the client's inputResponses answer.
_INPUT_METHODS = ("elicitation/create", "roots/list", "sampling/createMessage")


def _embedded(msg: Message) -> tuple[str, ...]:
    """The methods of the requests a 2026-07-28 message carries inside it: an input_required
    result's ``inputRequests`` (an elicitation, a sampling request) and the retried request's
    ``inputResponses`` (the user's answers). Rules scoped to those methods read the message
    too, under its tool's name: they skipped both, though each is the same elicitation or
    sampling exchange as before, only carried in the tool call."""
    p = msg.payload
    if not isinstance(p, dict):
        return ()
    if msg.kind is Kind.RESULT:
        res = p.get("result")
        reqs = res.get("inputRequests") if isinstance(res, dict) else None
        if not isinstance(reqs, dict) or not reqs:
            return ()
        # (a method that is no string is none of them: a list there raised, unhashable)
        methods = {
            v.get("method")
            for v in reqs.values()
            if isinstance(v, dict) and isinstance(v.get("method"), str)
        }
        return tuple(m for m in _INPUT_METHODS if m in methods)
    if msg.kind is Kind.REQUEST:
        params = p.get("params")
        answers = params.get("inputResponses") if isinstance(params, dict) else None
        if isinstance(answers, dict) and answers:
            return _INPUT_METHODS  # (an answer does not say what it answers)
    return ()


class _Needles:
    """Found values, looked up inside other strings (member names) in time linear in those
    strings. Values are searched one by one (``str.find``, C speed) until that work passes
    ``_WORK`` character comparisons; then the values up to ``_LITERAL_MAX`` bytes are
    compiled into one Hyperscan database of literals, so that a name is read once however
    many values there are (longer ones, private keys, stay with ``str.find``). (A loop over
    every value for every name was quadratic: 10,000 tokens in a 510 KB result took a
    minute; a Python loop over a name's positions took 49 s for 3,000 addresses sharing
    their first characters and a 300 KB name.)"""

    __slots__ = ("_values", "_short", "_long", "_db", "_scratch", "_work")

    _WORK = 10_000_000  # ~10 ms of str.find before the database is worth compiling
    _LITERAL_MAX = 4_000  # bytes: Hyperscan's literals end at 16,000, escaped ones at 4,000

    def __init__(self, values) -> None:
        self._values = [v for v in dict.fromkeys(values) if len(v) >= _MIN_LEN]
        self._short: list[str] = []  # (once compiled) the values in the database
        self._long: list[str] | None = None  # (once compiled) the values left out of it
        self._db: hs.Database | None = None
        self._scratch: hs.Scratch | None = None
        self._work = 0

    def __bool__(self) -> bool:
        return bool(self._values)

    def find(self, name: str) -> list[tuple[int, str]]:
        """(offset of the first occurrence, value) of every value found inside ``name``."""
        values = self._values
        if len(name) < _MIN_LEN or not values:
            return []
        candidates = values
        if self._db is None and self._long is None:
            self._work += len(name) * len(values)
            if self._work > self._WORK and len(values) > 8:
                self._compile()
        if self._db is not None:
            hit: set[int] = set()
            try:
                self._db.scan(
                    name.encode("utf-8", "surrogatepass"),
                    match_event_handler=_on_literal,
                    context=hit,
                    scratch=self._scratch,
                )
                candidates = [self._short[i] for i in sorted(hit)] + self._long
            except hs.error:
                candidates = values
        out = []
        for v in candidates:
            i = name.find(v)
            if i >= 0:
                out.append((i, v))
        return out

    def _compile(self) -> None:
        short: list[str] = []
        raw: list[bytes] = []
        self._long = []
        for v in self._values:
            b = v.encode("utf-8", "surrogatepass")
            if len(b) <= self._LITERAL_MAX:
                short.append(v)
                raw.append(b)
            else:
                self._long.append(v)
        if not short:
            return
        flags = [hs.HS_FLAG_SINGLEMATCH] * len(raw)
        try:
            db = hs.Database(mode=hs.HS_MODE_BLOCK)
            try:
                db.compile(expressions=raw, ids=list(range(len(raw))), elements=len(raw),
                           flags=flags, literal=True)  # fmt: skip
            except TypeError:  # (a binding without literal mode: escaped bytes)
                db.compile(
                    expressions=[b"".join(b"\\x%02x" % b for b in r) for r in raw],
                    ids=list(range(len(raw))), elements=len(raw), flags=flags,
                )  # fmt: skip
            self._scratch = hs.Scratch(db)
        except hs.error:
            self._long = self._values  # one by one, then
            return
        self._short = short
        self._db = db


def _on_literal(i: int, _frm: int, _to: int, _flags: int, hit: set) -> None:
    hit.add(i)


def _mask_locations(findings: list[Finding], first: int, values: set[str]) -> None:
    """A member name on a finding's path that holds what a finding matched (a map keyed by
    tokens or e-mail addresses) is masked like the value: the audit, the logs and mitmweb
    show locations, and must not show what they hide."""
    needles = _Needles(values)
    if not needles:
        return
    done: dict[str, str] = {}  # each distinct member name is looked at once

    def masked(name: str) -> str:
        out = done.get(name)
        if out is None:
            out = name
            for v in sorted({v for _i, v in needles.find(name)}, key=len, reverse=True):
                out = out.replace(v, mask(v))
            done[name] = out
        return out

    for k in range(first, len(findings)):
        f = findings[k]
        loc = f.location
        if loc.startswith("/"):
            parts = [masked(p.replace("~1", "/").replace("~0", "~")) for p in loc[1:].split("/")]
            f.location = pointer(tuple(parts))


def collect(payload: Any) -> list[tuple[Any, Any, tuple, str, str]]:
    """Every string (and long integer) in ``payload``: (container, key, path, context key, text)."""
    out: list[tuple[Any, Any, tuple, str, str]] = []
    stack: list[tuple[Any, tuple, str]] = [(payload, (), "")]
    while stack:
        node, path, ctxkey = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        for k, v in items:
            ck = k if isinstance(k, str) else ctxkey
            if isinstance(v, str):
                if len(v) >= _MIN_LEN:
                    out.append((node, k, path + (k,), ck, v))
            elif isinstance(v, dict | list):
                stack.append((v, path + (k,), ck))
            elif (
                isinstance(v, int)
                and not isinstance(v, bool)
                and (v >= 1_000_000 or v <= -1_000_000)
            ):
                out.append((node, k, path + (k,), ck, str(v)))
            elif isinstance(v, float) and 1e12 <= abs(v) < 1e20 and v.is_integer():
                # a card as pandas writes an integer column with a missing value
                # (4539578763621486.0, or 4.539578763621486e15): clients show the integer
                out.append((node, k, path + (k,), ck, str(int(v))))
    if isinstance(payload, str) and len(payload) >= _MIN_LEN:
        out.append((None, None, (), "", payload))
    return out


_XXD_LINE = re.compile(
    r"(?m)^[0-9a-fA-F]{8,16}: ((?:[0-9a-fA-F]{2}){1,16}(?: (?:[0-9a-fA-F]{2}){1,16})*)  +[^\n]*$"
)
_HEXDUMP_LINE = re.compile(
    r"(?m)^[0-9a-fA-F]{8,16}  ((?:[0-9a-fA-F]{2} {1,2}){1,32})\s*\|[^\n]*\|[ \r]*$"
)


def _dumps(text: str) -> list[tuple[int, int, list[tuple[int, int, bytes]]]]:
    """The hex dumps in ``text``: runs of consecutive ``xxd`` or ``hexdump -C`` lines from a
    line at offset zero (the scan's gate is that offset), each as (start, end, [(line start,
    line end, its bytes)]). Followed line by line from there: both patterns run over the
    whole of any text with eight zeros in it cost ~2 ms a 256 KiB tool result (a numbered
    log's `line 00000000`), twice its whole scan."""
    out: list[tuple[int, int, list[tuple[int, int, bytes]]]] = []
    n = len(text)
    i = text.find("00000000")
    while i >= 0:
        nxt = i + 8
        if i == 0 or text[i - 1] == "\n":
            for rx in (_XXD_LINE, _HEXDUMP_LINE):
                run: list[tuple[int, int, bytes]] = []
                pos = i
                while pos < n:
                    m = rx.match(text, pos)
                    if m is None:
                        break
                    run.append((m.start(), m.end(), bytes.fromhex(m.group(1).replace(" ", ""))))
                    pos = m.end()
                    if text.startswith("\r\n", pos):
                        pos += 2
                    elif text.startswith("\n", pos):
                        pos += 1
                    else:
                        break
                if len(run) > 1:
                    out.append((run[0][0], run[-1][1], run))
                    nxt = max(nxt, run[-1][1])
                    break
        i = text.find("00000000", nxt)
    return out


_MAX_BUFFERS = 1000  # Buffers read in one message
# Node's Buffer in a JSON text (any key order is Node's "type" first), its numbers (group 1)
_BUFFER_JSON = re.compile(
    r'\\{0,3}"type\\{0,3}"\s*:\s*\\{0,3}"Buffer\\{0,3}"\s*,\s*\\{0,3}"data\\{0,3}"\s*:\s*\[([0-9,\s]{11,})\]'
)
_NUMBER = re.compile(r"[0-9]{1,3}")


# What a reader sees of a file's bytes (xxd's text column, `strings`): printable ASCII, tabs
# and line breaks as they are, every other byte a space, one character a byte (offsets stay
# the bytes'). Read as latin-1, an image's or an archive's random bytes raised a
# generic-secret finding about twice a MB (a Buffer of a JPEG blocked its result) and cost
# ~1.4 s a MB in the unicode views; as this text, none in 4 MB and ~0.3 s a MB.
_SHOWN_BYTES = bytes(b if 32 <= b < 127 or b in (9, 10, 13) else 32 for b in range(256))
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27)) + b"\x7f"
# A Buffer of a binary file (more than 1 control byte in 64: an image, an archive) larger
# than this is not read: a model cannot read it as text, and scanning it cost ~0.3 s a MB
_MAX_BINARY_BUFFER = 65536


def _shown_text(data: bytes) -> str:
    """``data`` as a reader sees it (``_SHOWN_BYTES``)."""
    return data.translate(_SHOWN_BYTES).decode("ascii")


def _buffer_text(data: list | bytes) -> str | None:
    """The bytes of a Buffer's ``data`` as a reader sees them (None: not all of them bytes,
    or a large binary file's)."""
    try:
        raw = bytes(data)
    except (TypeError, ValueError):
        return None
    if len(raw) > _MAX_BINARY_BUFFER and _binary(raw):
        return None
    return _shown_text(raw)


def _binary(data: bytes) -> bool:
    """More than one control byte in 64 (not a tab, a line break, a form feed or ESC)."""
    return (len(data) - len(data.translate(None, _CONTROL_BYTES))) * 64 > len(data)


def _multiline(payload: Any) -> list[tuple[Any, Any, tuple, str]]:
    """The strings of ``payload`` of more than one terminal line (``_WRAP_MIN``) with line
    breaks: (container, key, path, text). (Leaner than ``collect``: paths only for those.)"""
    out: list[tuple[Any, Any, tuple, str]] = []
    stack: list[tuple[Any, tuple]] = [(payload, ())]
    while stack:
        node, path = stack.pop()
        for k, v in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(v, str):
                if len(v) > _WRAP_MIN and "\n" in v:
                    out.append((node, k, path + (k,), v))
            elif isinstance(v, dict | list):
                stack.append((v, path + (k,)))
    return out


def collect_keys(payload: Any) -> list[tuple[tuple, str]]:
    """Every member name of ``payload``'s objects long enough to hold a secret: (path of the
    member, name). A name cannot be rewritten: what is found in one blocks the message."""
    out: list[tuple[tuple, str]] = []
    stack: list[tuple[Any, tuple]] = [(payload, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and len(k) >= _MIN_LEN:
                    out.append((path + (k,), k))
                if isinstance(v, dict | list):
                    stack.append((v, path + (k,)))
        elif isinstance(node, list):
            stack.extend((v, path + (i,)) for i, v in enumerate(node) if isinstance(v, dict | list))
    return out


def text_block_runs(payload: Any) -> list[list[tuple[tuple, dict]]]:
    """Runs of two or more consecutive text content blocks (``{"type": "text", "text": …}``,
    each with its path) of the lists a model reads as one text: a result's ``content``
    (tools/call, tasks/result, a sampling answer) and its copy in ``structuredContent``, and
    the ``content`` of each of a prompt's or a sampling request's ``messages``;
    ``_MAX_JOINS`` blocks at most. (Only there: walking every node of every message would
    cost the scanner on large results.)"""
    if not isinstance(payload, dict):
        return []
    # (every message comes here: only lists of two or more are kept, with few lookups)
    lists: list[tuple[tuple, list]] = []
    for top in ("result", "params"):
        body = payload.get(top)
        if not isinstance(body, dict):
            continue
        node = body.get("content")
        if isinstance(node, list) and len(node) > 1:
            lists.append(((top, "content"), node))
        # FastMCP returns a tool's list of blocks in structuredContent too, wrapped as
        # {"result": [...]}; hosts that prefer structuredContent hand that copy to the model
        sc = body.get("structuredContent")
        if isinstance(sc, dict):
            sc, where = sc.get("result"), (top, "structuredContent", "result")
        else:
            where = (top, "structuredContent")
        if isinstance(sc, list) and len(sc) > 1:
            lists.append((where, sc))
        msgs = body.get("messages")
        if isinstance(msgs, list):
            for i, m in enumerate(msgs[:_MAX_JOINS]):
                node = m.get("content") if isinstance(m, dict) else None
                if isinstance(node, list) and len(node) > 1:
                    lists.append(((top, "messages", i, "content"), node))
    if not lists:
        return []
    runs: list[list[tuple[tuple, dict]]] = []
    budget = _MAX_JOINS
    for path, node in lists:
        run: list[tuple[tuple, dict]] = []
        for i, v in enumerate(node[:budget]):
            if _is_text_block(v):
                run.append((path + (i, "text"), v))
                continue
            if len(run) > 1:
                runs.append(run)
            run = []
        if len(run) > 1:
            runs.append(run)
        budget -= min(len(node), budget)
        if budget <= 0:
            break
    return runs


def _is_text_block(v: Any) -> bool:
    return isinstance(v, dict) and v.get("type") == "text" and isinstance(v.get("text"), str)


def echoed_result(payload: Any) -> tuple[dict, dict, str] | None:
    """A tool result that carries its text twice: FastMCP (the Python SDK) returns a tool's
    non-object value both as a text content block and as ``structuredContent: {"result":
    text}``, so a 256 KiB result is a 512 KiB message. Returns (result, content block,
    text) when ``structuredContent`` is exactly such a copy of a long text block: the copy
    is then scanned once and its findings apply to both. (Its key, ``result``, gives no
    context a rule could use; any other shape is scanned as it is.)"""
    if not isinstance(payload, dict):
        return None
    res = payload.get("result")
    if not isinstance(res, dict):
        return None
    sc = res.get("structuredContent")
    if not isinstance(sc, dict) or len(sc) != 1:
        return None
    text = sc.get("result")
    if not isinstance(text, str) or len(text) < _ECHO_MIN:
        return None
    content = res.get("content")
    if not isinstance(content, list):
        return None
    for block in content:
        if isinstance(block, dict) and block.get("text") == text:
            return res, block, text
    return None


INJECTED_RULE = "upstream-credential"  # the findings of _scan_injected
_injected_cache: list = [(), None]  # (the values, their regex)
_PCT_HEX = re.compile(r"%[0-9A-F]{2}")
_NET_ESCAPES = str.maketrans({c: f"\\u{ord(c):04X}" for c in "+<>&'"})


def _injected_rx(values: tuple[str, ...]) -> re.Pattern | None:
    """One regex of the injected values, as they are, with their percent escapes in lower
    case too (URLs differ on the case), and as JSON carried in a string writes them (PHP
    escapes "/", .NET "+", "<", ">", "&" and "'"); the longest first."""
    if not values:
        return None
    if _injected_cache[0] != values:
        forms = set(values)
        forms.update(_PCT_HEX.sub(lambda m: m.group().lower(), v) for v in values if "%" in v)
        for v in values:
            j = orjson.dumps(v).decode()[1:-1]
            forms.add(j)
            forms.add(j.replace("/", "\\/"))
            forms.add(j.translate(_NET_ESCAPES))
        alts = sorted(forms, key=len, reverse=True)
        _injected_cache[:] = [values, re.compile("|".join(map(re.escape, alts)))]
    return _injected_cache[1]


class ScanStage:
    name = "scan"
    order = ORDER_SCAN

    def __init__(self, engine: Engine) -> None:
        self._values: set[str] = set()
        self.engine = engine  # swapped atomically by the addon on reload
        # the caps left after the previous message, if it was an element of a batch (the
        # elements of one body share them: a batch of 1000 elements, each just under the
        # cap, held the event loop like one big message), and those at this message's start
        self._ids_engine: Engine | None = None  # the engine _clean_ids were scanned with
        self._clean_ids: set[tuple[str, frozenset[int] | None]] = set()
        self._batch: tuple[int, Direction, int] | None = None
        self._batch_left: dict[int, list[int]] = {}
        self._batch_deadline: float | None = None
        self._at_start: dict[int, list[int]] = {}

    # -- scope -----------------------------------------------------------------------
    @staticmethod
    def _allowed(engine: Engine, msg: Message):
        ex = msg.exchange
        # An answer whose request is unknown, on a resumed stream (GET with Last-Event-ID):
        # the server replays answers it sent before, and one the gateway no longer remembers
        # (a client can push it out with answers of its own) is read by every rule, whatever
        # its method and tool scope, as the answer of any request it may be.
        replay = msg.any_target or (
            msg.method is None
            and (msg.kind is Kind.RESULT or msg.kind is Kind.ERROR)
            and ex.header("last-event-id") is not None
        )
        embedded = _embedded(msg)
        key = (
            str(msg.direction), msg.method, msg.name, ex.server, ex.address, ex.vhost, replay, embedded,
            msg.any_name,
        )  # fmt: skip
        cache = engine.__dict__.setdefault("_scope_cache", {})
        got = cache.get(key, False)
        if got is not False:
            return got
        d = str(msg.direction)
        # A resource URI scoped by a rule is matched as written and as the server reads it:
        # FILE:///srv/secrets/a, file://localhost/…, /srv/public/../secrets/a are
        # file:///srv/secrets/a to the SDK servers.
        aliases: list[str] = []
        if msg.method in URI_METHODS and isinstance(msg.name, str):
            aliases = served_aliases(msg.name)
        # A file: URI names a file, and the file systems of macOS and Windows ignore case:
        # file:///Users/alice/.SSH/id_rsa is ~/.ssh/id_rsa there, so a resource scope is also
        # matched ignoring case for it (erring toward the rule where the disk is Linux's).
        # (a URI too long to normalise may name any file, and a message correlate marks
        # any_name may be any tool's: every tool and resource scope applies)
        huge = msg.any_name or (
            msg.method in URI_METHODS
            and isinstance(msg.name, str)
            and len(msg.name) > URI_NORMALISED_MAX
        )
        # A tool or prompt name is also matched ignoring case, as the access policy reads it:
        # a server that looks tools up so ran crm_export for CRM_export, and its result and
        # arguments stepped out of the rules scoped to crm_*.
        if not isinstance(msg.name, str):
            folds = []
        elif msg.method in URI_METHODS:
            folds = [u for u in (msg.name, *aliases) if u[:5].lower() == "file:"]
        else:
            folds = [msg.name]
        # (a server scope matches the address, a name the client gave it, or the site its
        # Host header names, which a shared front end serves)
        addr = ex.address if ex.vhost is None else tuple(a for a in (ex.address, ex.vhost) if a)
        idx = [
            i
            for i, r in enumerate(engine.rules)
            if r.in_scope(d, msg.method, msg.name, ex.server, addr, replay, any_name=huge)
            or any(r.in_scope(d, msg.method, a, ex.server, addr) for a in aliases)
            or any(r.in_scope(d, msg.method, f, ex.server, addr, fold=True) for f in folds)
            or any(r.in_scope(d, m, msg.name, ex.server, addr) for m in embedded)
            or any(r.in_scope(d, m, f, ex.server, addr, fold=True) for m in embedded for f in folds)
        ]
        allowed = None if len(idx) == len(engine.rules) else frozenset(idx)
        if len(cache) > 4096:
            cache.clear()
        if allowed is not None:
            # One copy of each set of rules: the entries differ by the peer's names (a client
            # inventing a tool name a call), their sets hardly ever; each set of 130 rules
            # takes 8 KB, and a full cache of copies held 34 MB.
            sets = engine.__dict__.setdefault("_scope_sets", {})
            if len(sets) > 4096:
                sets.clear()
            allowed = sets.setdefault(allowed, allowed)
        # (the method and the name are the peer's strings, of any length: a long one is not
        # kept in the cache, whose 4096 entries could otherwise pin gigabytes)
        if all(not isinstance(v, str) or len(v) <= _MAX_CACHED_KEY for v in key):
            cache[key] = allowed
        return allowed

    # -- processing ------------------------------------------------------------------
    def process(self, msg: Message) -> None:
        first = len(msg.findings)
        try:
            self._process(msg)
        except NotInspected:
            # Out of time (mcp_max_scan_ms): what was found so far stays with the message
            # (a block rule's finding still blocks it in open mode), its locations masked as
            # always; this message's left-overs are not carried into the next one.
            if len(msg.findings) > first:
                _mask_locations(msg.findings, first, self._values)
            self._values = set()
            self.engine.capped.clear()
            raise
        finally:
            self.engine.deadline = None  # (a scan outside a message has no time limit)

    def _process(self, msg: Message) -> None:
        engine = self.engine  # one snapshot: a concurrent reload cannot mix two engines
        allowed = self._allowed(engine, msg) if engine.rules else frozenset()
        self._values = set()  # what this message's findings matched (see _mask_locations)
        first = len(msg.findings)
        if not engine.rules or (allowed is not None and not allowed):
            # no rule applies; the gateway's own upstream credentials still may not pass
            if msg.direction is Direction.SERVER_TO_CLIENT and secretref.injected():
                spans: list[Span] = []
                self._scan_injected(msg, spans)
                if len(msg.findings) > first:
                    _mask_locations(msg.findings, first, self._values)
                self._pend(msg, spans)
            return
        spans = []
        # One scan of the message's JSON text, which carries every string with its key as
        # context; only messages with detections pay for walking the payload. The bytes the
        # message arrived as serve (the engine decodes their escapes itself, and asks for the
        # canonical serialization if they escape non-ASCII characters); without them, one
        # C-speed serialization.
        payload = msg.payload

        serialized: list[bytes | None] = []  # canonical()'s, once asked for

        def canonical() -> bytes | None:
            try:
                serialized.append(orjson.dumps(payload))
            except (TypeError, orjson.JSONEncodeError):
                serialized.append(None)
            return serialized[-1]

        raw = msg.raw if not msg.modified else None
        echo = echoed_result(payload) if msg.kind is Kind.RESULT else None
        if echo is not None:
            # scan the message without the copy (``_locate`` finds values in both)
            res = echo[0]
            payload = {
                **msg.payload,
                "result": {k: v for k, v in res.items() if k != "structuredContent"},
            }
            raw = None
        if raw is None:
            raw = canonical()
        batch = (
            (id(msg.exchange), msg.direction, id(engine)) if msg.batch_index is not None else None
        )
        # (the first element starts afresh: an exchange's id may be a freed one's)
        same = bool(msg.batch_index) and batch == self._batch
        # (a batch's elements share the caps and the time budget: a batch of dense elements
        # held the event loop as long as one message of them all)
        engine.begin_message(
            self._batch_left if same else None, self._batch_deadline if same else None
        )
        if batch is not None and not same:
            # (now, not at the end: when an element's scan runs out of time, the next
            # elements have none left either)
            self._batch, self._batch_deadline = batch, engine.deadline
            self._batch_left = engine.budgets()
        self._at_start = engine.budgets()
        # With many candidates for its number of strings, go to the string walk at once
        # rather than after confirming them all in the JSON text: a message with many
        # findings was scanned twice. (The walk costs ~3 us a string, confirming a candidate
        # ~20 us; 100,000 UUIDs, which raise a few thousand candidates and no finding, stay
        # on the JSON text.)
        dets = None
        gates = -1
        if raw is not None:

            def walk_instead(hits: int, raw: bytes = raw) -> bool:
                # (counting the quotes costs 0.3 ms on 571 KB: only when there are many)
                return hits > 4 * _MAX_LOCATE and hits > raw.count(b'"') // 13

            dets = engine.scan_json(raw, allowed, canonical, walk_instead)
            gates = engine.gates()
        else:
            gates = -1  # (no bytes to search: every reading)
        if (
            msg.raw is not None
            and not msg.modified
            and (dets is None or raw is not msg.raw or serialized)
        ):
            self._normalize_repeats(msg)
        if dets is not None:
            if len(dets) > _MAX_LOCATE:
                # many findings (a customer export...): searching each value in every string
                # would be quadratic, so scan the strings again with exact offsets instead
                self._scan_walk(engine, msg, allowed, spans, payload, echo)
            elif dets:
                self._locate(msg, dets, spans)
        else:
            self._scan_walk(engine, msg, allowed, spans, payload, echo)
        self._scan_joins(engine, msg, allowed, spans)
        if (
            msg.direction is Direction.SERVER_TO_CLIENT
            and gates & GATE_PROMPT
            and (raw is None or (len(raw) <= _WRAP_MAX_MESSAGE and b"\\n" in raw))
        ):
            # (a server's only: terminals' screens come from tools; see _scan_wraps)
            self._scan_wraps(engine, msg, allowed, spans)
        if msg.direction is Direction.SERVER_TO_CLIENT:
            # (what a tool returns: a shell's hex dump, a Node tool's Buffer; each gate is one
            # search of the bytes)
            if gates & GATE_DUMP:
                self._scan_dumps(engine, msg, allowed, spans)
            if gates & GATE_BUFFER:
                self._scan_buffers(engine, msg, allowed, spans)
        self._scan_header(engine, msg, allowed)
        if msg.direction is Direction.SERVER_TO_CLIENT:
            self._scan_server_ids(engine, msg, allowed)
            self._scan_injected(msg, spans)
        if msg.batch_index is not None:
            self._batch = (id(msg.exchange), msg.direction, id(engine))
            self._batch_left = engine.budgets()
            self._batch_deadline = engine.deadline
        if engine.capped:
            self._capped(engine, msg)
        if len(msg.findings) > first:
            _mask_locations(msg.findings, first, self._values)
        self._values = set()
        if msg.findings and msg.kind in _NAMING and isinstance(msg.name, str):
            params = msg.payload.get("params") if isinstance(msg.payload, dict) else None
            loc = target_pointer(msg.method, params)
            if loc is not None:
                self._mask_name(msg, loc)
        self._pend(msg, spans)

    @staticmethod
    def _normalize_repeats(msg: Message) -> None:
        """The message's strings were scanned as parsed, not in the bytes it arrived as (a
        \\u escape of a non-ASCII character, an echoed copy, many candidates). Where those
        bytes name a member twice in one object, the parser kept the last copy and the
        scanner read only that, while readers that take the first read the other
        (``{"text": "ghp_…", "text": "safe"}``): the message goes on as it was scanned,
        each member once. (Scanned as it arrived, a copy dropped by the parser is found in
        the bytes and blocks the message where it would be redacted.)"""
        if repeats_members(msg.raw, msg.payload):
            msg.modified = True  # re-serialized by the adapter; nothing was redacted

    @staticmethod
    def _pend(msg: Message, spans: list[Span]) -> None:
        """Leave ``spans`` for the act stage."""
        if spans:
            pending = msg.exchange.scratch.setdefault(SPANS_KEY, {})
            if len(pending) > _MAX_PENDING:  # act stage missing: do not grow without bound
                pending.clear()
            pending[id(msg)] = (msg, spans)

    @staticmethod
    def _mask_name(msg: Message, loc: str) -> None:
        """A finding in the tool name or resource URI (``?access_token=…``): the name the
        message carries for the audit, the logs and its response is masked like the finding,
        whatever the action (the body itself is the act stage's business)."""
        name = msg.name
        assert name is not None
        spans = sorted(
            ((f.start, f.end, f.masked) for f in msg.findings
             if f.location == loc and 0 <= f.start < f.end <= len(name)),
            reverse=True,
        )  # fmt: skip
        if not spans:
            return
        limit = len(name)
        for start, end, masked in spans:
            if end > limit:
                continue  # overlaps one masked already
            name = name[:start] + (masked or "…") + name[end:]
            limit = start
        msg.name = name
        p = pending_of(msg)
        if p is not None:
            p.name = name

    @staticmethod
    def _capped(engine: Engine, msg: Message) -> None:
        """One more finding per rule that matched more than its cap in one message: the
        rest of its matches were not examined. For a log/alert rule (``mcp_max_findings``
        matches) the message goes on; a redact or block rule (ten times as many) could
        not be applied to all of them, so the message is blocked whole."""
        by_id = {r.id: r for r in engine.rules}
        cap = engine.finding_cap
        for rid in sorted(engine.capped):
            r = by_id[rid]
            unchanging = r.action in UNCHANGING
            n = cap if unchanging or cap is None else cap * 10
            msg.findings.append(
                Finding(
                    rule=r.id,
                    type=r.type,
                    severity=r.severity,
                    action=r.action if unchanging else "block",
                    location="",
                    masked=f"(more than {n} matches in one message: the rest not examined, "
                    "mcp_max_findings)",
                )
            )
        engine.capped.clear()

    def _locate(self, msg: Message, dets: list[Detection], spans: list[Span]) -> None:
        """Map detections in the serialized message back to the decoded strings."""
        segs = collect(msg.payload)
        names: list[tuple[tuple, str]] | None = None
        seen: set[str] = set()
        for d in dets:
            needle = _json_unescape(d.value)
            if needle in seen:
                continue  # every occurrence was handled with the first detection of it
            seen.add(needle)
            # Every occurrence: the detection's own cannot be told from the others here, and a
            # copy of a secret glued to other characters (-pSECRET, %3DSECRET, a CJK
            # sentence) is the secret too.
            found = False
            for container, key, path, _ck, s in segs:
                i = s.find(needle)
                while i >= 0:
                    found = True
                    self._found(msg, d, container, key, path, i, i + len(needle), needle, spans)
                    i = s.find(needle, i + len(needle))
            # A member name cannot be rewritten: a value that had to be redacted there blocks
            # the message, also when its copies in values were redacted (the name would
            # still carry it to the receiver).
            action = "block" if d.action in ("redact", "block") else d.action
            if names is None:
                names = collect_keys(msg.payload)
            for path, name in names:
                i = name.find(needle)
                if i >= 0:
                    found = True
                    self._record(msg, d, pointer(path), i, i + len(needle), action)
            if not found:
                # Found in the message but in no single string (across values): it cannot
                # be rewritten either.
                self._record(msg, d, "", d.start, d.end, action)

    def _scan_walk(
        self, engine: Engine, msg: Message, allowed, spans: list[Span], payload: Any,
        echo: tuple[dict, dict, str] | None = None,
    ) -> None:  # fmt: skip
        """Scan the strings of ``payload`` (the message's, or it without an echoed copy) as
        one buffer, with exact offsets: for payloads orjson cannot serialize, and for
        messages with many candidates."""
        segs = collect(payload)
        names = collect_keys(payload)
        if not segs and not names:
            return
        # (the message is scanned again, from the start: its caps as they were then, its
        # time as it is)
        engine.begin_message(self._at_start, engine.deadline)
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for _c, _k, _p, ck, text in segs:
            head = f'"{ck}": "'
            parts.append(head)
            parts.append(text)
            parts.append('"\n')
            s = pos + len(head)
            starts.append(s)
            ends.append(s + len(text))
            pos = s + len(text) + 2
        for _path, name in names:  # then the member names, one a line
            parts.append(name)
            parts.append("\n")
            starts.append(pos)
            ends.append(pos + len(name))
            pos += len(name) + 1
        buf = "".join(parts)
        n_values = len(segs)
        changed: dict[str, Detection] = {}  # values to be redacted or blocked, found in values
        in_names: set[tuple[int, int]] = set()
        for d in engine.scan(buf, allowed):
            i = bisect.bisect_right(starts, d.start) - 1
            if i < 0 or d.start >= ends[i]:
                continue  # inside the framing (a value's member name is scanned on its own)
            if i >= n_values:
                # in a member name, which cannot be rewritten: blocked if it had to change
                path, _name = names[i - n_values]
                action = "block" if d.action in ("redact", "block") else d.action
                self._record(msg, d, pointer(path), d.start - starts[i], d.end - starts[i], action)
                in_names.add((i - n_values, d.start - starts[i]))
                continue
            container, key, path, _ck, text = segs[i]
            s, e = d.start - starts[i], min(d.end, ends[i]) - starts[i]
            self._found(msg, d, container, key, path, s, e, text[s:e], spans)
            if d.action in ("redact", "block"):
                changed.setdefault(text[s:e], d)
            if echo is not None and container is echo[1] and key == "text":
                sc = echo[0]["structuredContent"]
                self._found(msg, d, sc, "result", _ECHO_PATH, s, e, text[s:e], spans)
        # A value found by its context in a value (password: S) is the secret in a member name
        # too, where the names scanned on their own show no context: as in _locate, it
        # blocks the message (the name cannot be rewritten).
        needles = _Needles(changed) if names and changed else None
        for k, (path, name) in enumerate(names) if needles else ():
            for i, v in needles.find(name):
                if (k, i) not in in_names:
                    in_names.add((k, i))
                    self._record(msg, changed[v], pointer(path), i, i + len(v), "block")

    def _scan_joins(self, engine: Engine, msg: Message, allowed, spans: list[Span]) -> None:
        """A secret cut across consecutive text blocks of one content list (a tool result's
        ``content``, a sampling message's): hosts hand the blocks to the model one after
        the other, which reads them as one text, so a token split between them (a tool that
        returns its output in fixed-size chunks) reached it unread. The blocks of a run are
        read joined (a long block by its first and last ``_JOIN_WINDOW`` characters, its
        middle being scanned on its own); a detection that spans blocks is recorded in each
        and every part is redacted (the first to the placeholder, the others to nothing, so
        the reader sees one placeholder)."""
        runs = text_block_runs(msg.payload)
        if not runs:
            return
        # what each block's own scan found: a joined match of the same rule that overlaps it
        # is that value read on into the next block ("…is Xk9mP2vLqR7t" + "Next step"),
        # whose words the redaction of the joined value deleted
        # (by the same rule only: a partial token that a generic rule found in its block, as
        # in GITHUB_TOKEN=ghp_… cut in two, is still read whole by the token's own rule)
        found: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for f in msg.findings:
            found.setdefault((f.location, f.rule), []).append((f.start, f.end))
        for run in runs:
            # windows of (block, its offset, piece): a long block closes one with its first
            # characters and opens the next with its last (its two ends never meet)
            windows: list[list[tuple[int, int, str]]] = [[]]
            for k, (_path, block) in enumerate(run):
                t = block["text"]
                if len(t) <= 2 * _JOIN_WINDOW:
                    windows[-1].append((k, 0, t))
                    continue
                windows[-1].append((k, 0, t[:_JOIN_WINDOW]))
                windows.append([(k, len(t) - _JOIN_WINDOW, t[-_JOIN_WINDOW:])])
            for window in windows:
                if len(window) > 1:
                    self._join_window(engine, msg, allowed, spans, run, window, found)

    def _scan_wraps(self, engine: Engine, msg: Message, allowed, spans: list[Span]) -> None:
        """A token cut by a terminal at its width (a shell tool's ``tmux capture-pane``
        without ``-J``): each string with such line breaks (``views.wrap_view``) is read
        with them removed, and a detection across one is recorded and redacted whole (the
        placeholder replaces both parts and the line break between them)."""
        found: dict[str, list[tuple[int, int, str]]] | None = None
        rank: dict[str, int] = {}
        for container, key, path, text in _multiline(msg.payload):
            view = wrap_view(text)
            if view is None:
                continue
            if found is None:
                found = {}
                for f in msg.findings:
                    found.setdefault(f.location, []).append((f.start, f.end, f.rule))
                rank = {r.id: r.priority for r in engine.rules}
            loc = pointer(path)
            cut = [s for s, lit in zip(view.ostarts, view.literal, strict=True) if not lit]
            for d in engine.scan(view.text, allowed):
                s, e = view.map_span(d.start, d.end)
                i = bisect.bisect_left(cut, s)
                if i >= len(cut) or cut[i] >= e:
                    continue  # across no removed line break: found in the text itself
                if any(
                    a < e and s < b and (r == d.rule or rank.get(r, 0) >= d.priority)
                    for a, b, r in found.get(loc, ())
                ):
                    # a value found without the join (by the same rule, or a rule as
                    # specific: a token whole at the line's end is no generic secret with
                    # the next line's first word; a generic rule's reading of a token's
                    # first part is no reason to leave the token's rule unheard)
                    continue
                value = text[s:e]
                whole = d.decoded[0] if d.decoded else d.value
                part = replace(d, value=value, start=s, end=e, encoding="wrap", decoded=(whole,))
                self._found(msg, part, container, key, path, s, e, value, spans)

    def _scan_dumps(self, engine: Engine, msg: Message, allowed, spans: list[Span]) -> None:
        """A file shown as a hex dump (``xxd``, ``hexdump -C``: a shell tool's output): its
        text column shows 16 bytes a line, so a token comes cut into pieces a model reads
        joined, and its hex column holds it whole. The dump's bytes are read as one text;
        a detection in them is redacted with the dump lines that hold it (the placeholder
        in their place)."""
        for container, key, path, text in _multiline(msg.payload):
            if "00000000" not in text:
                continue
            for _first, _last, data in _dumps(text):
                starts = [0]
                for _s, _e, b in data:
                    starts.append(starts[-1] + len(b))
                joined = _shown_text(b"".join(b for _s, _e, b in data))
                for d in engine.scan(joined, allowed):
                    i = bisect.bisect_right(starts, d.start) - 1
                    j = bisect.bisect_right(starts, d.end - 1) - 1
                    s, e = data[i][0], data[j][1]
                    whole = d.decoded[0] if d.decoded else d.value
                    part = replace(
                        d, value=text[s:e], start=s, end=e, encoding="dump", decoded=(whole,)
                    )
                    self._found(msg, part, container, key, path, s, e, text[s:e], spans)

    def _scan_buffers(self, engine: Engine, msg: Message, allowed, spans: list[Span]) -> None:
        """Node's Buffer as JSON writes it, ``{"type": "Buffer", "data": [103, 104, …]}``
        (``JSON.stringify`` of a file read without an encoding, in a result's
        ``structuredContent`` or its text): the bytes as numbers, which a client revives
        with ``Buffer.from(data)``. Read as their text; a value is redacted as numbers (the
        placeholder's bytes), in a JSON text and in the message's own arrays alike."""
        stack: list[tuple[Any, tuple]] = [(msg.payload, ())]
        seen = 0
        while stack and seen < _MAX_BUFFERS:
            node, path = stack.pop()
            if isinstance(node, dict):
                data = node.get("data")
                if (
                    node.get("type") == "Buffer"
                    and isinstance(data, list)
                    and len(data) >= _MIN_LEN
                ):
                    seen += 1
                    text = _buffer_text(data)
                    if text is not None:
                        where = path + ("data",)
                        for d in engine.scan(text, allowed):
                            # (the numbers are rewritten as a JSON text's are: blocking the
                            # result for them broke the tool's answer where a redaction
                            # does; ActStage._scrub checks the bytes are still these)
                            whole = d.decoded[0] if d.decoded else d.value
                            part = replace(d, value=text[d.start : d.end], encoding="bytes",
                                           decoded=(whole,))  # fmt: skip
                            self._found(
                                msg, part, node, "data", where, d.start, d.end, part.value, spans
                            )
                    continue
                items = node.items()
            elif isinstance(node, list):
                items = enumerate(node)
            else:
                continue
            for k, v in items:
                if isinstance(v, dict | list):
                    stack.append((v, path + (k,)))
                elif isinstance(v, str) and "Buffer" in v and len(v) > 40:
                    self._scan_buffer_texts(engine, msg, allowed, spans, node, k, path + (k,), v)

    def _scan_buffer_texts(
        self, engine: Engine, msg: Message, allowed, spans: list[Span], container, key,
        path: tuple, text: str,
    ) -> None:  # fmt: skip
        for m in _BUFFER_JSON.finditer(text):
            # (the numbers' places only when something is found: a 1 MB image's million
            # numbers took a second to list)
            a, b = m.span(1)
            if b - a > 2 * _MAX_BINARY_BUFFER:
                # (a large one: its first numbers tell a binary file without listing them all)
                try:
                    if _binary(bytes(map(int, _NUMBER.findall(text, a, a + 16384)))):
                        continue
                except ValueError:
                    continue  # a number beyond a byte: no Buffer's
            values = _NUMBER.findall(text, a, b)
            if len(values) < _MIN_LEN:
                continue
            decoded = _buffer_text(list(map(int, values)))
            if decoded is None:
                continue
            nums: list[tuple[int, int]] = []
            for d in engine.scan(decoded, allowed):
                if not nums:
                    nums = [n.span() for n in _NUMBER.finditer(text, m.start(1), m.end(1))]
                s, e = nums[d.start][0], nums[d.end - 1][1]
                whole = d.decoded[0] if d.decoded else d.value
                part = replace(
                    d, value=text[s:e], start=s, end=e, encoding="bytes", decoded=(whole,)
                )
                self._found(msg, part, container, key, path, s, e, text[s:e], spans)

    def _join_window(
        self, engine: Engine, msg: Message, allowed, spans: list[Span], run, window, found
    ):
        starts: list[int] = []
        pos = 0
        for _k, _off, piece in window:
            starts.append(pos)
            pos += len(piece)
        for d in engine.scan("".join(p for _k, _o, p in window), allowed):
            covered: dict[int, tuple[int, int]] = {}  # block -> (start, end) in it
            i = bisect.bisect_right(starts, d.start) - 1
            while i < len(window) and starts[i] < d.end:
                k, off, piece = window[i]
                a = max(d.start, starts[i]) - starts[i] + off
                b = min(d.end, starts[i] + len(piece)) - starts[i] + off
                if b > a:
                    covered[k] = (a, b)
                i += 1
            if len(covered) < 2:
                continue  # within one block: found there already
            if any(
                a < fe and fs < b
                for k, (a, b) in covered.items()
                for fs, fe in found.get((pointer(run[k][0]), d.rule), ())
            ):
                continue  # a value found within a block, read on across its end
            whole = (d.decoded[0] if d.decoded else d.value,)
            # (the first part is replaced by the placeholder of the whole value, quoted as its
            # encoding needs; a blob's part cannot be re-encoded on its own)
            enc = d.encoding if d.encoding in ("json", "url") else ""
            for n, (k, (a, b)) in enumerate(sorted(covered.items())):
                path, block = run[k]
                part = replace(d, encoding=enc if n == 0 else "split", decoded=whole)
                self._found(msg, part, block, "text", path, a, b, block["text"][a:b], spans)

    def _found(
        self, msg: Message, d: Detection, container, key, path: tuple, s: int, e: int,
        value: str, spans: list[Span],
    ) -> None:  # fmt: skip
        """Record detection ``d`` at ``container[key][s:e]`` and keep its span for the act
        stage (none in a protocol field: see ``PROTOCOL_FIELDS``)."""
        loc = pointer(path)
        if path in PROTOCOL_FIELDS or (
            msg.kind is Kind.REQUEST and (msg.method, path) in METHOD_PROTOCOL_FIELDS
        ):
            self._record(msg, d, loc, s, e, "log" if d.action == "redact" else d.action)
            if path == ("id",) or path == ("method",):
                # never rewritten, but the audit must not record it: see SECRET_IDS_KEY
                _remember_secret(
                    msg.exchange, container.get(key) if isinstance(container, dict) else None
                )
            return
        self._record(msg, d, loc, s, e)
        spans.append(
            Span(container, key, s, e, value, d.encoding, d.decoded, d.ref, d.type, d.action, loc)
        )

    def _scan_injected(self, msg: Message, spans: list[Span]) -> None:
        """The upstream credentials the gateway injected into requests, wherever a server
        shows them to a client (an echoed header, a URL quoted in an error): the client
        never had them. Redacted whatever the rules say. Searched in the decoded strings,
        so JSON escapes (PHP's ``\\/``, .NET's ``\\u002B``) hide nothing."""
        rx = _injected_rx(secretref.injected())
        if rx is None:
            return
        for container, key, path, _ck, text in collect(msg.payload):
            for m in rx.finditer(text):
                v = m.group()
                d = Detection(
                    INJECTED_RULE, "generic_secret", v, m.start(), m.end(), "critical", "redact"
                )
                self._found(msg, d, container, key, path, m.start(), m.end(), v, spans)

    def _record(
        self, msg: Message, d: Detection, loc: str, s: int, e: int, action: str | None = None
    ) -> None:
        shown = d.decoded[0] if d.decoded else d.value
        self._values.add(shown)
        self._values.add(d.value)
        msg.findings.append(
            Finding(
                rule=d.rule,
                type=d.type,
                severity=d.severity,
                action=action or d.action,
                location=loc,
                start=s,
                end=e,
                masked=mask(shown),
            )
        )

    def _scan_header(self, engine: Engine, msg: Message, allowed) -> None:
        ex = msg.exchange
        if msg.direction is not Direction.CLIENT_TO_SERVER or ex.request_headers is None:
            return
        if ex.scratch.get(_HEADER_DONE):
            return  # once per exchange (a batch carries several messages)
        ex.scratch[_HEADER_DONE] = True
        auth = _authorization(ex)
        if auth:
            text = f"Authorization: {auth}"
            off = len("Authorization: ")
            for d in engine.scan(text, allowed):
                # The Authorization header is how the client authenticates to this server:
                # record which kind of credential travels, never rewrite it (that would break
                # the session).
                action = "log" if d.action == "redact" else d.action
                where = "header:authorization"
                self._record(msg, d, where, max(0, d.start - off), d.end - off, action)
        query = ex.path.partition("?")[2] if isinstance(ex.path, str) else ""
        if query:
            # The request URL's query (`/mcp?api_key=…`), as the client sent it: a credential
            # there is recorded like the Authorization header's, never rewritten.
            text = f"?{query}"
            for d in engine.scan(text, allowed):
                action = "log" if d.action == "redact" else d.action
                self._record(msg, d, "url:query", max(0, d.start - 1), d.end - 1, action)
        # Identifiers the audit records as they are (the session id, the server's name):
        # one holding a secret is recorded as a finding and masked in the audit.
        for label, value in (
            ("header:mcp-session-id", ex.session_id),
            ("url:session", ex.legacy_session),
            ("server", ex.server),
        ):
            if isinstance(value, str) and value:
                if self._scan_id(engine, msg, allowed, value, label) and label != "server":
                    remember_secret_session(value)
        if isinstance(ex.session_id, str):
            ex.scratch[_SID_DONE] = ex.session_id  # (its answer need not scan it again)
        for key, raw in _param_headers(ex):
            # 2026-07-28: Mcp-Param-* headers mirror tool arguments. The core keeps them in step
            # with a redacted body, and refuses a request whose header finding it cannot.
            # Every copy of a repeated header counts, and a value that is not valid
            # =?base64?…?= is scanned as it is (the receiver gets those bytes all the same).
            value = decode_header_value(raw) or raw
            if not value:
                continue
            label = key[len(MCP_PARAM_PREFIX) :]
            off = len(label) + 2
            where = f"header:{key}"
            for d in engine.scan(f"{label}: {value}", allowed):
                if d.end > off:
                    self._record(msg, d, where, max(0, d.start - off), d.end - off, d.action)
            # A malformed sentinel (whitespace or dots inside, base64url, no padding, another
            # case) is no value to a conformant server, but lenient decoders (Node's Buffer,
            # Python's b64decode without validate) read it: scan that reading too, so a
            # secret does not reach the server in it while the body's copy is redacted.
            lenient = _lenient_sentinel(raw) if decode_header_value(raw) is None else None
            if lenient:
                for d in engine.scan(f"{label}: {lenient}", allowed):
                    if d.end > off:
                        self._record(msg, d, where, 0, len(raw), d.action)

    def _scan_server_ids(self, engine: Engine, msg: Message, allowed) -> None:
        """Identifiers a server hands out and the audit records as they are: the session id
        it assigns (``Mcp-Session-Id`` on its answer) and an event's SSE ``id``. One holding
        a secret is recorded as a finding and masked in the audit (the client needs it back
        unchanged, so it is never rewritten)."""
        ex = msg.exchange
        sid = ex.session_id
        if isinstance(sid, str) and sid and ex.scratch.get(_SID_DONE) != sid:
            ex.scratch[_SID_DONE] = sid
            if self._scan_id(engine, msg, allowed, sid, "header:mcp-session-id"):
                remember_secret_session(sid)
        eid = msg.sse_event_id
        if isinstance(eid, str) and len(eid) >= _MIN_LEN:
            self._scan_id(engine, msg, allowed, eid, "sse:id")

    def _scan_id(self, engine: Engine, msg: Message, allowed, value: str, where: str) -> bool:
        """Scan an identifier that travels unchanged: findings are recorded (a redaction
        only logged) and the value remembered for the audit to mask. True if it holds one."""
        # (the session id and the server's name come again with every request: one found
        # clean is not scanned again by the same engine under the same rules)
        if self._ids_engine is not engine:
            self._ids_engine, self._clean_ids = engine, set()
        key = (value, allowed)
        if key in self._clean_ids:
            return False
        ds = engine.scan(value, allowed)
        if not ds:
            if len(value) <= _MAX_CACHED_KEY:  # (a peer's string: a long one is not kept)
                if len(self._clean_ids) >= _MAX_CLEAN_IDS:
                    self._clean_ids.clear()
                self._clean_ids.add(key)
            return False
        for d in ds:
            action = "log" if d.action == "redact" else d.action
            self._record(msg, d, where, d.start, d.end, action)
        if ds:
            _remember_secret(msg.exchange, value)
        return bool(ds)


_SID_DONE = "scan.server_sid"
_MAX_CLEAN_IDS = 4096

# messages whose name (tool, prompt, resource URI) is read from their own params: a request,
# and one sent without an id (a notification to the SDKs, still recorded with its name)
_NAMING = (Kind.REQUEST, Kind.NOTIFICATION)

# ex.scratch key: identifiers of this exchange (a JSON-RPC id, a method, the session id,
# the server's name) that hold a secret. They travel unchanged (rewriting one breaks the
# protocol), so the audit masks them wherever it would record them.
SECRET_IDS_KEY = "scan.secret_ids"


# Session ids found to hold a secret, gateway-wide: the session's other exchanges (its GET
# stream, its DELETE) are recorded under the same id. Bounded; the oldest are forgotten.
_SECRET_SESSIONS: OrderedDict[str, None] = OrderedDict()  # keys: message.session_key
_MAX_SECRET_SESSIONS = 10_000


def remember_secret_session(sid: str) -> None:
    _SECRET_SESSIONS[session_key(sid)] = None
    if len(_SECRET_SESSIONS) > _MAX_SECRET_SESSIONS:
        _SECRET_SESSIONS.popitem(last=False)


def is_secret_session(sid: object) -> bool:
    return bool(_SECRET_SESSIONS) and isinstance(sid, str) and session_key(sid) in _SECRET_SESSIONS


def _remember_secret(ex, value) -> None:
    if value is None or isinstance(value, bool):
        return
    ex.scratch.setdefault(SECRET_IDS_KEY, set()).add(str(value))


def _json_unescape(v: str) -> str:
    """The decoded form of a span of serialized JSON string content (itself if not valid)."""
    if "\\" not in v:
        return v
    try:
        out = orjson.loads(('"' + v + '"').encode("utf-8", "surrogatepass"))
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        return v
    return out if isinstance(out, str) else v


def _lenient_sentinel(raw: str) -> str | None:
    """What a lenient decoder reads in a malformed ``=?base64?…?=`` (None: no sentinel)."""
    if not (raw[:9].lower() == "=?base64?" and raw.endswith("?=")):
        return None
    body = "".join(c for c in raw[9:-2] if c.isascii() and (c.isalnum() or c in "+/-_"))
    body = body.replace("-", "+").replace("_", "/")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def _param_headers(ex) -> list[tuple[str, str]]:
    """(lower-case name, value) of every Mcp-Param-* header copy of the request."""
    flow = ex.flow
    req = getattr(flow, "request", None) if flow is not None else None
    if req is not None:
        out = []
        for k, v in req.headers.fields:
            name = k.decode("latin-1").lower()
            if name.startswith(MCP_PARAM_PREFIX):
                out.append((name, v.decode("utf-8", "replace")))
        return out
    headers = ex.request_headers
    if not isinstance(headers, dict):
        return []
    return [
        (k, v)
        for k, v in headers.items()
        if isinstance(k, str) and k.startswith(MCP_PARAM_PREFIX) and isinstance(v, str)
    ]


def _authorization(ex) -> str | None:
    try:
        v = ex.header("authorization")
    except Exception:  # noqa: BLE001 - odd header containers must not break scanning
        v = None
    h = ex.request_headers
    if v is None and isinstance(h, dict):
        for k, val in h.items():
            if isinstance(k, str) and k.lower() == "authorization":
                return val
    return v if isinstance(v, str) else None


__all__ = [
    "ScanStage",
    "Span",
    "SPANS_KEY",
    "METHOD_PROTOCOL_FIELDS",
    "PROTOCOL_FIELDS",
    "SECRET_IDS_KEY",
    "is_secret_session",
    "remember_secret_session",
    "mask",
    "pointer",
    "collect",
    "ORDER_SCAN",
]
