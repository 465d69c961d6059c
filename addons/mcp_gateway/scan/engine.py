"""The scanning engine: one Hyperscan database locates candidates, Python confirms them.

Why this design
  Plain Python ``re`` over ~40 patterns walks every message ~40 times and reaches only a few
  MB/s. Hyperscan compiles every rule's anchor into one automaton and scans a message once,
  in linear time, at GB/s; it reports (rule, start, end) only where something *could* be a
  secret, which in real MCP traffic is rare. Hyperscan has no look-arounds, back-references
  or capture groups, so each candidate is confirmed with the rule's own Python regex on a
  bounded window around the hit (so a pattern can never backtrack over a whole message),
  then by the rule's allowlist, the placeholder filter and its validators (Luhn, mod-97,
  CRC32, JWT structure, entropy...). The cost per message is therefore one linear pass plus a
  few microseconds per candidate.

Encodings
  ``scan_text`` also scans decoded views of the text (JSON escapes, two levels deep;
  percent-encoding; invisible, fullwidth and tag characters; base64 blobs) and maps what it
  finds back to the original offsets, so ``text[d.start:d.end] == d.value`` always holds.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
import re
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from re import _constants as _sre_constants  # the parse tree's opcodes (_needs_non_ascii)
from re import _parser as _sre_parser

import hyperscan as hs

from ..message import NotInspected
from ..yamlconf import ConfigError
from . import hscache
from . import validators as V
from .rules import PII_TYPES, Rule, RuleSet, load_rules
from .views import (
    ESCAPE_ANCHOR,
    UNICODE_CONTROL,
    UNICODE_MULTIBYTE,
    escape_view,
    json_unescape_view,
    percent_view,
    unicode_view,
)

__all__ = ["GATES", "Detection", "Engine", "blob_text"]

# Literals the scan stage gates its readings on (see Engine.gates): a hex dump's first offset,
# Node's Buffer in JSON, a shell's prompt ("$ ", starship's and pure's U+276F, as it is or
# \u-escaped)
GATES = (rb"00000000", rb"Buffer", rb"\$ |\xe2\x9d\xaf|\\u276[fF]")
GATE_DUMP, GATE_BUFFER, GATE_PROMPT = 1, 2, 4

# decoded views worth scanning, as reported by the internal anchors
_VIEW_JSON = 1  # \u00XX or \/ escapes
_VIEW_UNICODE = 2  # invisible, fullwidth, mathematical or tag characters
_VIEW_PERCENT = 4  # %XX escapes
_VIEW_ESCAPE = 8  # HTML character references, \xHH and \u{...} escapes
_CONTROL_GROUP = 999  # the control characters' database: see _compile
_NON_ASCII_GROUP = 1_000  # the last database: see _compile
# Up to this size, a C-speed check that a text has no control character at all replaces the
# control characters' Hyperscan pass (~2 us a call, cold ~5, however small the text; the
# check: ~1 us for 1 KiB). A text that has one is scanned as before, for its offset.
_CONTROL_CHECK_MAX = 4096
_NOT_CONTROL = bytes(b for b in range(256) if not (b < 0x20 and b not in b"\t\n\r" or b == 0x7F))


@dataclass(slots=True)
class Detection:
    rule: str
    type: str
    value: str  # the matched text: text[start:end]
    start: int
    end: int
    severity: str
    action: str
    # how the value is encoded in the text: "" (plain), "json" (escapes), "url" (percent),
    # "base64", "gzip" (base64 of gzip or zlib data) or "hex" (value is the whole blob;
    # decoded holds the secrets inside it), "escape", "unicode"; "split" (scan stage: the
    # rest of a value cut across two text blocks, redacted to nothing)
    encoding: str = field(default="", repr=False, compare=False)
    decoded: tuple[str, ...] = field(default=(), repr=False, compare=False)
    priority: int = field(default=0, repr=False, compare=False)
    rank: int = field(default=1, repr=False, compare=False)  # 0 base64, 1 raw, 2 decoded view
    ref: Rule | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "rule": self.rule,
            "type": self.type,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "severity": self.severity,
            "action": self.action,
        }


# base64 values: the key name before one (see _key_before)
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_KEY_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def _key_before(text: str, lo: int, s: int) -> str | None:
    r"""The field name a value at ``s`` is assigned to: what the regex
    ``([A-Za-z_][A-Za-z0-9_.-]{0,60})["']?[ \t]*[:=][ \t]*["']?\Z`` searched in
    ``text[lo:s]`` would capture, read backwards from ``s`` in a few steps (the regex tried
    every start in the window: ~20 us a value, a second for 256 KiB of ``k: dGVzdA==``)."""
    j = s
    if j > lo and text[j - 1] in "\"'":
        j -= 1
    while j > lo and text[j - 1] in " \t":
        j -= 1
    if j <= lo or text[j - 1] not in ":=":
        return None
    j -= 1
    while j > lo and text[j - 1] in " \t":
        j -= 1
    if j > lo and text[j - 1] in "\"'":
        j -= 1
    k = j
    floor = max(lo, j - 61)
    while k > floor and text[k - 1] in _KEY_CHARS:
        k -= 1
    for p in range(k, j):  # the leftmost start the regex would take
        if text[p] in _KEY_FIRST:
            return text[p:j]
    return None


_B64_LONG = 40
_MAX_BLOB = 1 << 20
_MAX_BLOB_DEPTH = 1  # blobs inside decoded blobs: one level (base64 of base64)
_PRINTABLE = frozenset(range(32, 127)) | {9, 10, 13}


_PRINTABLE_BYTES = bytes(sorted(_PRINTABLE | set(range(0x80, 0x100))))


# gzip, and zlib with its usual compression levels: a compressed file as a base64 blob (a
# resource's `blob`, a tool's attachment)
_COMPRESSED_MAGIC = (b"\x1f\x8b\x08", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
MAX_INFLATE = 4 << 20  # decompressed bytes looked at: a bound for compression bombs


def is_compressed(raw: bytes) -> bool:
    return raw[:3] == _COMPRESSED_MAGIC[0] or raw[:2] in _COMPRESSED_MAGIC[1:]


def inflate(
    raw: bytes, limit: int = MAX_INFLATE, spent: list[int] | None = None
) -> tuple[bytes, bytes] | None:
    """(the content, trailing bytes) of gzip or zlib data: every member of a multi-member
    gzip file, as ``gzip -d`` reads them; what follows the last member (padding, junk) is
    returned apart. None when the data is broken, ends early, or holds more than ``limit``
    bytes. ``spent[0]`` grows by the bytes inflated, whatever the outcome."""
    out = bytearray()
    data = raw
    while True:
        d = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
        n = len(out)
        try:
            out += d.decompress(data, limit + 1 - n)
        except zlib.error:
            return None
        finally:
            if spent is not None:
                spent[0] += len(out) - n
        if len(out) > limit or not d.eof:
            return None
        data = d.unused_data
        if data[:3] != _COMPRESSED_MAGIC[0] or raw[:3] != _COMPRESSED_MAGIC[0]:
            return bytes(out), data


# Compressed blobs inflated per scan, all together: a message of many small compression
# bombs must not cost seconds of the event loop (each blob alone is bounded by MAX_INFLATE).
MAX_INFLATE_PER_SCAN = 2 * MAX_INFLATE


def _printable_ratio(b: bytes) -> float:
    if not b:
        return 0.0
    return 1.0 - len(b.translate(None, _PRINTABLE_BYTES)) / len(b)


_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# (looked for first: a UTF-32-LE mark starts with UTF-16-LE's)
_UTF32_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"))
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _utf16_of(head: bytes) -> tuple[str, bytes] | None:
    """(codec, byte order mark) when ``head`` starts UTF-16 or UTF-32 text: told by its
    mark, or by a zero in nearly every other byte and none in the others (mostly ASCII text,
    as Windows writes it), or three zeros in every four bytes."""
    for bom, codec in _UTF32_BOMS:
        if head.startswith(bom):
            return codec, bom
    for bom, codec in _UTF16_BOMS:
        if head.startswith(bom):
            return codec, bom
    n = len(head) // 4 * 4
    if n < 8:
        return None
    cols = [head[i:n:4] for i in range(4)]
    if not cols[0].count(0) and all(c.count(0) == len(c) for c in cols[1:] if c):
        return "utf-32-le", b""
    if not cols[3].count(0) and all(c.count(0) == len(c) for c in cols[:3] if c):
        return "utf-32-be", b""
    odd, even = head[1:n:2], head[0:n:2]
    if odd.count(0) * 10 >= len(odd) * 9 and even.count(0) == 0:
        return "utf-16-le", b""
    if even.count(0) * 10 >= len(even) * 9 and odd.count(0) == 0:
        return "utf-16-be", b""
    return None


def blob_text(raw: bytes) -> tuple[str, str, bytes] | None:
    """(text, codec, byte order mark) of a blob's bytes: UTF-8; else UTF-16 or UTF-32
    (Windows text files: PowerShell 5 writes them); else latin-1, for text in a legacy 8-bit
    charset (a Windows-1252 or ISO-8859 file is no UTF-8, and servers send exactly such
    files as blobs; latin-1 maps every byte to one character, so a redaction inside changes
    no other byte). Whether that text is printable enough to be text is the caller's
    business. UTF-16 or UTF-32 of ASCII text without a byte order mark is valid UTF-8 too (a
    zero byte is a character): it is told by its zeros first, and read as what it spells
    (read as UTF-8, half its characters were zeros and it was no text: a token passed)."""
    wide = _utf16_of(raw[:64]) if b"\x00" in raw[:64] else None
    if wide is not None and not wide[1] and _utf16_of(raw) != wide:
        # told by its zeros, the whole blob and not its head alone: a UTF-8 text under a
        # head of zero-padded ASCII was read as UTF-16 (garbage, or nothing for an odd
        # length), and a token after the head passed (C slices: ~1 ms a MB, only then)
        wide = None
    if wide is None:
        try:
            return raw.decode("utf-8"), "utf-8", b""
        except UnicodeDecodeError:
            pass
        wide = _utf16_of(raw[:64])
    if wide is not None:
        codec, bom = wide
        try:
            return raw[len(bom) :].decode(codec), codec, bom
        except UnicodeDecodeError:
            return None
    return raw.decode("latin-1"), "latin-1", b""


def _text_printable(text: str, codec: str, raw: bytes) -> bool:
    """95 % printable, counted on the bytes (UTF-16 text: on its UTF-8 form); text in an
    8-bit charset is also 90 % ASCII (random bytes, which every base64-looking word decodes
    to, are half high bytes)."""
    if codec.startswith(("utf-16", "utf-32")):
        raw = text.encode("utf-8", "surrogatepass")
    elif codec == "latin-1" and len(raw.translate(None, _HIGH_BYTES)) * 10 < len(raw) * 9:
        return False
    return _printable_ratio(raw) >= 0.95


def _legacy_text_head(head: bytes) -> bool:
    """Whether ``head`` may start text that is no UTF-8: UTF-16, or ASCII with a few bytes
    of an 8-bit charset (random bytes have about half of them high)."""
    if _utf16_of(head) is not None:
        return True
    return (
        len(head.translate(None, _PRINTABLE_BYTES)) <= 2
        and len(head) - len(head.translate(None, _HIGH_BYTES)) <= 3
    )


class ScanTimeout(NotInspected):
    """A message's scan ran past its time budget (``Engine.time_budget``): it was not
    inspected whole. The pipeline applies ``mcp_fail_mode`` to it."""


class Engine:
    """Compiled rules. Immutable after construction and safe to share across threads, but
    for ``finding_cap`` and ``capped``: those belong to the one thread that runs the
    gateway's pipeline (without a cap, as in the CLI, ``capped`` is never written)."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules: list[Rule] = list(ruleset.rules)
        self.sources = list(ruleset.sources)
        # per rule: validators of the value alone, then those that read the text around it
        self._validators: list[list[tuple[Callable[..., bool], dict]]] = []
        self._late_validators: list[list[tuple[Callable[..., bool], dict]]] = []
        self._ctx_validators: list[list[tuple[Callable[..., bool], dict]]] = []
        for r in self.rules:
            pure, late, ctx = [], [], []
            for name, params in r.validators:
                spec = V.REGISTRY[name]
                if spec.parts is not None:
                    pure.append((spec.parts[0], params))
                    ctx.append((spec.parts[1], params))
                elif spec.uses_context:
                    ctx.append((spec.fn, params))
                else:
                    (late if name in _LATE_VALIDATORS else pure).append((spec.fn, params))
            self._validators.append(pure)
            self._late_validators.append(late)
            self._ctx_validators.append(ctx)
        # per rule: (regex, start-bounded variant or None) and how far after a hit's end a
        # match may start (None: anywhere in the window)
        self._starts: list[int | None] = []
        self._confirmers: list[list[tuple[re.Pattern, re.Pattern | None, int]]] = []
        for r in self.rules:
            w = r.spec.window
            sa = None if w.start_after is None else min(w.start_after, w.after)
            self._starts.append(sa)
            span = w.before + (sa or 0) + 8
            self._confirmers.append(
                [
                    (rx, _start_bounded(rx, span) if sa is not None else None, span)
                    for rx in r.regexes
                ]
            )
        self._compile()
        self._compile_gates()
        self._local = threading.local()
        # Set by the gateway (mcp_max_findings): matches of a rule that does not change the
        # message (log, alert) confirmed per scanned text; the rest is not examined, and the
        # rule's id goes into ``capped`` (cleared by the caller). None (the CLI): no cap.
        self.finding_cap: int | None = None
        self.capped: set[str] = set()
        # per rule, what is left of its cap in the message being scanned (begin_message);
        # None: per text
        self._budgets: dict[int, list[int]] | None = None
        # Set by the gateway (mcp_max_scan_ms, in seconds here): one message's scan may take;
        # past them ScanTimeout is raised (checked before each confirmation). None: no limit.
        self.time_budget: float | None = None
        self.deadline: float | None = None  # (time.monotonic) of the message being scanned

    def begin_message(
        self, budgets: dict[int, list[int]] | None = None, deadline: float | None = None
    ) -> None:
        """The texts scanned from now on are one message's: a rule's cap counts them all
        (a message of 150,000 strings, one token each, is capped like one text of them).
        ``budgets`` (from ``budgets()``) carries on what is left of the caps: the
        elements of one batch share them, as they share a ``deadline`` (else one is set
        from ``time_budget``)."""
        self.capped.clear()
        if deadline is None and self.time_budget:
            deadline = time.monotonic() + self.time_budget
        self.deadline = deadline
        if self.finding_cap is None:
            self._budgets = None
        else:
            self._budgets = {ri: [b[0]] for ri, b in (budgets or {}).items()}

    def budgets(self) -> dict[int, list[int]]:
        """What is left of each rule's cap in the message being scanned (a copy)."""
        return {ri: [b[0]] for ri, b in (self._budgets or {}).items()}

    @classmethod
    def load(
        cls, paths: Sequence[str | Path] | None = None, *, time_regexes: bool = False
    ) -> Engine:
        return cls(load_rules(paths, time_regexes=time_regexes))

    # -- compilation -----------------------------------------------------------------
    def _compile(self) -> None:
        # One database, one pass over the message: a message without any candidate (the common
        # case) costs one Hyperscan scan and nothing else.
        groups: dict[int, list[tuple[bytes, int, int]]] = {}
        self._anchor_rule: list[int] = []  # hs id -> rule index
        self._anchor_expr: list[str] = []  # hs id -> its expression (for the tests' cross-check)
        self._dbs: list[hs.Database] = []
        if not self.rules:
            self._id_escape = self._id_b64 = self._id_uesc = self._id_unicode = -1
            self._control_db = -1
            self._id_pct = self._id_html = -1
            self._id_gates = 1 << 30
            return  # nothing to find: scan() returns at once
        # Personal-data rules first, whatever order the rule files came in: Hyperscan's
        # compiler is sensitive to the order of its expressions, and with the secrets pack
        # loaded first the main database came out twice as big (545 vs 249 KB) and 10-40 %
        # slower (measured over 8 shuffled orders: 138-260 MB/s on the same text).
        order = sorted(range(len(self.rules)), key=lambda ri: self.rules[ri].type not in PII_TYPES)
        for ri in order:
            rule = self.rules[ri]
            for anchor, som in self._anchors(rule):
                for expr in _split_caret(anchor):
                    # An anchor that cannot match ASCII text (the non-ASCII e-mail ones) goes
                    # with the other non-ASCII anchors, scanned only when the text is not
                    # ASCII: two of them in the main database cost it ~15 % on every message.
                    g = _NON_ASCII_GROUP if _needs_non_ascii(expr) else 0
                    hid = len(self._anchor_rule)
                    self._anchor_rule.append(ri)
                    self._anchor_expr.append(expr)
                    # No start-of-match tracking (expensive in Hyperscan): candidates are
                    # located by their end offset and confirmed on a window around it.
                    groups.setdefault(g, []).append(
                        (expr.encode(), hid, 0 if som else hs.HS_FLAG_PREFILTER)
                    )
        # internal: JSON escapes worth a decoded view (\u00XX in the ASCII range, \/, a
        # line break escaped twice: JSON carried in a JSON string carried as text, whose
        # lines the rules read only once one level is decoded; and a quote escaped three
        # times, past the \\{0,3}" the rules tolerate: a localStorage dump in a tool result)
        self._id_escape = len(self._anchor_rule)
        groups.setdefault(0, []).append(
            (
                rb"\\u00[0-7][0-9A-Fa-f]|\\/|\\\\[nrt]|\\{7}\"",
                self._id_escape,
                hs.HS_FLAG_SINGLEMATCH,
            )
        )
        # internal: is a base64 blob possible at all? (a run of 40, or a padded value of 6 or
        # more): only then is the base64 candidate search run
        self._id_b64 = self._id_escape + 1
        groups[0].append((rb"[A-Za-z0-9+/]{%d}" % _B64_LONG, self._id_b64, hs.HS_FLAG_SINGLEMATCH))
        groups[0].append(
            (
                rb"[A-Za-z0-9+/]{6}=(?:=|[^A-Za-z0-9+/=]|$)",
                self._id_b64 + 1,
                hs.HS_FLAG_SINGLEMATCH,
            )
        )
        # internal: a \u escape of a character beyond ASCII (scan_json then scans the
        # canonical serialization, where such characters are themselves)
        self._id_uesc = self._id_b64 + 2
        groups[0].append(
            (
                rb"\\u(?:00[89A-Fa-f]|0[1-9A-Fa-f]|[1-9A-Fa-f])",
                self._id_uesc,
                hs.HS_FLAG_SINGLEMATCH,
            )
        )
        # internal: characters a reader does not see, or sees as ASCII (the unicode view)
        self._id_unicode = self._id_uesc + 1
        # The control characters in a database of their own: Hyperscan scans one character
        # class alone at ~10 GB/s, but in the main database it cost ~25 % of its time on
        # every message (a 571 KB tool result: 2.9 -> 2.0 ms, plus 0.05 ms for this one).
        groups[_CONTROL_GROUP] = [(UNICODE_CONTROL, self._id_unicode, hs.HS_FLAG_SINGLEMATCH)]
        # The multi-byte ones in a database of their own, scanned only when the message is
        # not ASCII: in the main one, its many short literals slowed every non-ASCII text by
        # ~25 % (256 KiB: 1.4 -> 1.1 ms), and ASCII messages need no second pass.
        groups.setdefault(_NON_ASCII_GROUP, []).append(
            (UNICODE_MULTIBYTE, self._id_unicode, hs.HS_FLAG_SINGLEMATCH)
        )
        # internal: a percent escape. Without it a message whose only disguise was one
        # escaped character (ghp%5F...) had no hit at all, and the percent view was not built.
        self._id_pct = self._id_unicode + 1
        groups[0].append((rb"%[0-9A-Fa-f]{2}", self._id_pct, hs.HS_FLAG_SINGLEMATCH))
        # internal: an HTML character reference or a \x / \u{} escape of a token character
        self._id_html = self._id_pct + 1
        groups[0].append((ESCAPE_ANCHOR, self._id_html, hs.HS_FLAG_SINGLEMATCH))
        # internal: the scan stage's gates (a hex dump's first offset, Node's Buffer, a shell
        # prompt: see ScanStage), found in this same pass; a full-buffer search for each had
        # cost the stage ~15 % of its throughput
        self._id_gates = self._id_html + 1
        for k, expr in enumerate(GATES):
            groups[0].append((expr, self._id_gates + k, hs.HS_FLAG_SINGLEMATCH))
        self._control_db = sorted(groups).index(_CONTROL_GROUP)
        for g in sorted(groups):
            items = groups[g]
            db = hscache.database(
                [e for e, _, _ in items], [i for _, i, _ in items], [f for _, _, f in items]
            )
            self._dbs.append(db)

    def _compile_gates(self) -> None:
        """Per rule with a Hyperscan reading of its patterns: a database that tells, in one
        pass over a candidate's window, which of the rule's patterns can match there at all
        (prefilter mode: a superset of Python's matches). A rule of many patterns then runs
        only those: generic-secret-assignment has 14, and a code line ``token = f(x)`` woke
        all 14 searches over a 400-character window (~100 µs) to confirm nothing."""
        self._gates: list[tuple[hs.Database, frozenset[int]] | None] = []
        for rule in self.rules:
            w = rule.spec.window
            items = [
                (expr, k)
                for k, rx in enumerate(rule.regexes)
                if (expr := _gate_expr(rx.pattern)) is not None
            ]
            if not items or (len(rule.regexes) < 2 and w.before + w.after <= _GATE_WINDOW):
                self._gates.append(None)  # one pattern on a short window: searched at once
                continue
            db = _gate_db(items)
            if db is None:  # what Hyperscan cannot read is always searched
                items = [item for item in items if _gate_db([item]) is not None]
                db = _gate_db(items) if items else None
            self._gates.append(None if db is None else (db, frozenset(k for _, k in items)))

    def _gate_scratch(self, ri: int, db: hs.Database) -> hs.Scratch:
        s = getattr(self._local, "gates", None)
        if s is None:
            s = self._local.gates = {}
        scratch = s.get(ri)
        if scratch is None:
            scratch = s[ri] = hs.Scratch(db)
        return scratch

    def _gated(self, ri: int, win: str) -> frozenset[int] | None:
        """The patterns of rule ``ri`` that cannot match anywhere in ``win`` (None: all may)."""
        gate = self._gates[ri]
        if gate is None or not win.isascii() or _PY_ONLY_SPACE.search(win) is not None:
            return None  # Python's \w \d \s and case folding read more than ASCII there
        db, gated = gate
        found: list[int] = []
        try:
            db.scan(
                win.encode(),
                match_event_handler=_on_gate,
                context=found,
                scratch=self._gate_scratch(ri, db),
            )
        except hs.ScratchInUseError:
            db.scan(
                win.encode(), match_event_handler=_on_gate, context=found, scratch=hs.Scratch(db)
            )
        return gated.difference(found)

    @staticmethod
    def _anchors(rule: Rule) -> list[tuple[str, bool]]:
        spec = rule.spec
        if spec.prefilter:
            return [(p, True) for p in spec.prefilter]
        out: list[tuple[str, bool]] = []
        for p in spec.all_patterns():
            hp = re.sub(r"\(\?P<", "(?<", p)
            for flag, som in ((0, True), (hs.HS_FLAG_PREFILTER, False)):
                try:
                    hscache.check(hp.encode(), flag)
                except hs.error:
                    continue
                out.append((hp, som))
                break
            else:
                if not rule.keywords:
                    file, _, line = rule.source.rpartition(":")
                    raise ConfigError(
                        file,
                        int(line) if line.isdigit() else None,
                        f"rule {rule.id}: pattern",
                        "pattern cannot be prefiltered by Hyperscan: add `prefilter` or `keywords`",
                    )
        if len(out) < len(spec.all_patterns()) and rule.keywords:
            out.extend((_hs_literal(k), True) for k in spec.keywords)
        return out

    def _scratches(self) -> list[hs.Scratch]:
        s = getattr(self._local, "scratch", None)
        if s is None:
            s = self._local.scratch = [hs.Scratch(db) for db in self._dbs]
        return s

    # -- scanning --------------------------------------------------------------------
    def scan_text(self, text: str) -> list[Detection]:
        """Every detection in ``text`` (all rules, no scope), sorted by start offset."""
        return self.scan(text)

    def scan(
        self,
        text: str | None,
        allowed: Collection[int] | None = None,
        data: bytes | None = None,
        _hits: list[tuple[int, int, int]] | None = None,
    ) -> list[Detection]:
        """Detections in ``text`` for the rules whose index is in ``allowed`` (None: all).
        ``data`` may give ``text`` already encoded as UTF-8 (surrogates passed); with
        ``text=None`` it is decoded only if something is found to confirm."""
        hits = _hits
        if text is None:
            if not data or not self._dbs:
                return []
            hits = self._hits(data)
            if not hits:
                return []  # the common case: one Hyperscan pass and nothing else
            return self._scan_bytes(data, allowed, hits)
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace")
        if not text or not self._dbs:
            return []
        self._local.inflate_budget = [MAX_INFLATE_PER_SCAN]
        dets, b64, views = self._scan_raw(text, allowed, want_b64=True, data=data, hits=hits)
        if views or "%" in text or b64:
            # A decoded view shows the text's matches again: they are not counted twice
            # against the message's caps (each view has a cap of its own).
            budgets, self._budgets = self._budgets, None
            try:
                if views or "%" in text:
                    self._scan_views(text, allowed, dets, views)
                if b64:
                    dets.extend(self._scan_base64(text, b64, allowed))
            finally:
                self._budgets = budgets
        return _resolve(dets)

    def _scan_views(
        self,
        text: str,
        allowed,
        dets: list[Detection],
        views: int = _VIEW_JSON | _VIEW_UNICODE | _VIEW_ESCAPE,
    ) -> None:
        """Detections in the decoded views of ``text`` (``views``: the ones worth trying),
        mapped back to ``text``."""
        v1 = json_unescape_view(text) if views & _VIEW_JSON else None
        if v1 is not None:
            chain = [v1]
            v2 = json_unescape_view(v1.text)
            if v2 is not None:
                chain.append(v2)
            for depth in range(len(chain)):
                view = chain[depth]
                found, _, inner = self._scan_raw(view.text, allowed)
                maps = chain[: depth + 1]
                if inner & _VIEW_UNICODE:
                    # escaped characters that decode to invisible ones (\u200b, \u0000)
                    uv = unicode_view(view.text)
                    if uv is not None:
                        more, _, _ = self._scan_raw(uv.text, allowed)
                        for d in more:
                            s, e = uv.map_span(d.start, d.end)
                            for v in reversed(maps):
                                s, e = v.map_span(s, e)
                            dets.append(self._mapped(d, text, s, e, "unicode"))
                for d in found:
                    s, e = d.start, d.end
                    for v in reversed(maps):
                        s, e = v.map_span(s, e)
                    dets.append(self._mapped(d, text, s, e, "json"))
        pv = percent_view(text)
        if pv is not None:
            self._through(pv, text, allowed, dets, "url")
            # encoded twice (%255F: a URL carried in another URL's query, a redirect target)
            pv2 = percent_view(pv.text)
            if pv2 is not None:
                self._through(pv2, text, allowed, dets, "url", outer=pv)
        ev = escape_view(text) if views & _VIEW_ESCAPE else None
        if ev is not None:
            self._through(ev, text, allowed, dets, "escape")
        uv = unicode_view(text) if views & _VIEW_UNICODE else None
        if uv is not None:
            self._through(uv, text, allowed, dets, "unicode")

    def _through(self, view, text: str, allowed, dets: list[Detection], enc: str, outer=None):
        """Detections in ``view``, mapped back through it (then through ``outer``, the view
        it was made from) onto ``text``."""
        found, _, _ = self._scan_raw(view.text, allowed)
        for d in found:
            s, e = view.map_span(d.start, d.end)
            if outer is not None:
                s, e = outer.map_span(s, e)
            dets.append(self._mapped(d, text, s, e, enc))

    @staticmethod
    def _mapped(d: Detection, text: str, s: int, e: int, enc: str) -> Detection:
        value = text[s:e]
        same = value == d.value
        return Detection(
            d.rule, d.type, value, s, e, d.severity, d.action,
            encoding="" if same else enc,
            decoded=() if same else (d.value,),
            priority=d.priority,
            rank=1 if same else 2,
            ref=d.ref,
        )  # fmt: skip

    def scan_json(
        self,
        raw: bytes,
        allowed: Collection[int] | None,
        canonical: Callable[[], bytes | None],
        walk_instead: Callable[[int], bool] | None = None,
    ) -> list[Detection] | None:
        """Detections in a JSON text as it arrived (``raw``). Its escapes are decoded by the
        engine's views, except \\u escapes of non-ASCII characters: when ``raw`` holds one,
        ``canonical()`` (the same JSON serialized without them) is scanned instead. None when
        that serialization is not available, or when ``walk_instead(number of Hyperscan
        candidates)`` says so (the caller then scans the strings one by one)."""
        self._local.stage_gates = 0
        if not raw or not self._dbs:
            return []
        hits = self._hits(raw)
        gates = 0
        if hits:
            g0 = self._id_gates
            for h in hits:
                if h[0] >= g0:
                    gates |= 1 << (h[0] - g0)
            if gates:
                hits = [h for h in hits if h[0] < g0]
        self._local.stage_gates = gates
        if not hits:
            return []  # the common case: one Hyperscan pass and nothing else
        b64 = self._id_b64
        if all(h[0] == b64 for h in hits) and not _b64_candidates(raw, True, False):
            # Only a run of 40 base64 characters, none worth decoding: a git SHA, a hex id,
            # one letter repeated. Nothing else can match (no anchor, no escape hit).
            return []
        if walk_instead is not None and walk_instead(len(hits)):
            return None
        uesc = self._id_uesc
        if any(h[0] == uesc for h in hits):
            data = canonical()
            return None if data is None else self.scan(None, allowed, data=data)
        return self._scan_bytes(raw, allowed, hits)

    def gates(self) -> int:
        """The ``GATES`` (bit k: ``GATES[k]``) the last ``scan_json`` saw in its bytes."""
        return self._local.__dict__.get("stage_gates", -1)

    def _scan_bytes(self, data: bytes, allowed, hits) -> list[Detection]:
        text = bytes(data).decode("utf-8", "replace")
        if len(text.encode("utf-8", "surrogatepass")) != len(data):
            # not valid UTF-8: offsets from the decoded text instead
            return self.scan(text, allowed)
        return self.scan(text, allowed, data=data, _hits=hits)

    def _hits(self, data: bytes) -> list[tuple[int, int, int]]:
        """(Hyperscan id, 0, end offset in ``data``) of every anchor hit."""
        hits: list[tuple[int, int, int]] = []
        on_match = _on_match  # (a module function with the list as context: no closure)
        scratches = self._scratches()
        dbs = self._dbs
        skip = -1
        if isinstance(data, bytes | bytearray):
            if data.isascii():
                dbs = dbs[:-1]  # the last one finds only non-ASCII characters
            if len(data) <= _CONTROL_CHECK_MAX and not data.translate(None, _NOT_CONTROL):
                skip = self._control_db
        for k, (db, scratch) in enumerate(zip(dbs, scratches, strict=False)):
            if k == skip:
                continue
            try:
                db.scan(data, match_event_handler=on_match, context=hits, scratch=scratch)
            except hs.ScratchInUseError:  # re-entrant use on one thread: use a fresh scratch
                db.scan(data, match_event_handler=on_match, context=hits, scratch=hs.Scratch(db))
        return hits

    def _scan_raw(
        self,
        text: str,
        allowed,
        want_b64: bool = False,
        data: bytes | None = None,
        hits: list[tuple[int, int, int]] | None = None,
    ) -> tuple[list[Detection], list[tuple[int, int, bool]], int]:
        """Detections in ``text`` itself, base64 candidates (with ``want_b64``), and which
        decoded views are worth scanning (``_VIEW_*`` bits)."""
        if data is None:
            data = text.encode("utf-8", "surrogatepass")
        if hits is None:
            hits = self._hits(data)
        dets: list[Detection] = []
        b64: list[tuple[int, int, bool]] = []
        if not hits:
            return dets, b64, 0
        n = len(text)
        if len(data) != n:
            # non-ASCII: Hyperscan reports byte offsets, the confirmation works on characters
            hits = _to_char_offsets(data, hits)
        anchor_rule = self._anchor_rule
        id_escape = self._id_escape
        n_anchor = len(anchor_rule)
        views = 0
        b64_long = b64_padded = False
        windows: dict[int, list[tuple[int, int, int]]] = {}
        starts = self._starts
        deadline = self.deadline
        for k, (ri_hid, _frm, to) in enumerate(hits):
            if not k & 8191 and k and deadline is not None and time.monotonic() > deadline:
                self._out_of_time()  # (~0.15 s a MB of text that is all hits)
            if ri_hid >= n_anchor:
                if ri_hid == id_escape or ri_hid == self._id_uesc:
                    # (a \u escape beyond ASCII reaches here in plain text only: scan_json
                    # scans the canonical serialization instead, which has none)
                    views |= _VIEW_JSON
                elif ri_hid == self._id_unicode:
                    views |= _VIEW_UNICODE
                elif ri_hid == self._id_pct:
                    views |= _VIEW_PERCENT
                elif ri_hid == self._id_html:
                    views |= _VIEW_ESCAPE
                else:
                    b64_long = b64_long or ri_hid == self._id_b64
                    b64_padded = b64_padded or ri_hid == self._id_b64 + 1
                continue
            ri = anchor_rule[ri_hid]
            if allowed is not None and ri not in allowed:
                continue
            w = self.rules[ri].spec.window
            lo, hi = to - w.before, to + w.after  # only the end of a candidate is known
            sa = starts[ri]
            hi = min(n, hi)
            windows.setdefault(ri, []).append((max(0, lo), hi, hi if sa is None else to + sa))
        memo: dict = {}  # per value and rule: see _accept
        cap = self.finding_cap
        # Confirm each rule once per merged region: every position of the text is tried at
        # most once per rule however many candidates overlap, so the work stays linear.
        for ri, wins in windows.items():
            budget = None
            if cap is not None:
                # a customer export: 50,000 e-mail addresses took 4 s; 150,000 tokens (a
                # redact rule) 3-5 s. A rule that changes the message may find ten times
                # as many before the message is blocked whole (ScanStage._capped).
                if self._budgets is None:
                    budget = [cap if self.rules[ri].action in UNCHANGING else cap * 10]
                else:
                    budget = self._budgets.get(ri)
                    if budget is None:
                        limit = cap if self.rules[ri].action in UNCHANGING else cap * 10
                        budget = self._budgets[ri] = [limit]
                if budget[0] < 0:
                    # the rule's cap was reached in an earlier text of the message (or of
                    # its batch): this one's matches are not examined either
                    self.capped.add(self.rules[ri].id)
                    continue
            wins.sort()
            cur_lo, cur_hi, cur_s = wins[0]
            for lo, hi, smax in wins[1:]:
                if lo <= cur_hi:
                    if hi > cur_hi:
                        cur_hi = hi
                    if smax > cur_s:
                        cur_s = smax
                    continue
                self._confirm(text, ri, cur_lo, cur_hi, dets, cur_s, memo, budget)
                if budget is not None and budget[0] < 0:
                    break
                cur_lo, cur_hi, cur_s = lo, hi, smax
            else:
                self._confirm(text, ri, cur_lo, cur_hi, dets, cur_s, memo, budget)
        if want_b64 and (b64_long or b64_padded):
            b64 = _b64_candidates(data, b64_long, b64_padded)
            if b64 and len(data) != n:
                b64 = _b64_char_offsets(data, b64)
        return dets, b64, views

    def _confirm(
        self,
        text: str,
        ri: int,
        lo: int,
        hi: int,
        out: list[Detection],
        smax: int | None,
        memo: dict,
        budget: list[int] | None = None,
    ) -> None:
        """Matches of rule ``ri`` inside ``text[lo:hi]`` that start at or before ``smax``;
        at most ``budget[0]`` of them (decremented; -1 once one more was found), if given."""
        # Dense candidates that all fail confirmation (a hex dump, `password=changeme…`
        # lines) read at ~1 MB/s, and overlapping windows merge into one region confirmed
        # here: a 16 MiB message held the event loop ~15 s. Looked at for each region and
        # each candidate value (~50 ns against the value's ~20-40 us).
        deadline = self.deadline
        if deadline is not None and time.monotonic() > deadline:
            self._out_of_time()
        rule = self.rules[ri]
        base = max(0, lo - 8)  # a little context for look-behinds
        win = text[base:hi]
        escaped = "\\" in win
        if escaped:
            # Literal \n \t \r escapes (JSON carried as text) become backslash + the real
            # control character: same length, so offsets hold, but the letter no longer glues
            # the next token to a word ("...\nghp_x" still starts a token) and \s matches.
            win = win.replace("\\n", "\\\n").replace("\\r", "\\\r").replace("\\t", "\\\t")
        if rule.type in _CJK_BLIND_TYPES and not win.isascii():
            # Chinese, Japanese and Korean write no space between words: 電話番号は03-3896-7572です
            # must read like "is 03-3896-7572 ." to patterns whose boundaries are \w (which
            # these scripts are). One character for one: offsets hold.
            if rule.type == "phone_number":
                win = _CJK_PHONE_LABEL.sub(lambda m: "\u260e" * len(m.group()), win)
            win = _CJK.sub(" ", win)
        last = (hi if smax is None else min(smax, hi)) - base  # the last allowed start
        confirmers = self._confirmers[ri]
        skip = self._gated(ri, win) if len(confirmers) > 1 or hi - lo > _GATE_WINDOW else None
        for k, (rx, brx, span) in enumerate(confirmers):
            if skip and k in skip:
                continue
            has_value = "value" in rx.groupindex
            pos, end = lo - base, hi - base
            while pos < end and pos <= last:
                if brx is None:
                    m = rx.search(win, pos, end)
                    if m is None:
                        break
                    mstart = m.start()
                else:
                    # tries only the start positions pos .. pos + span (see _start_bounded)
                    m = brx.match(win, pos, end)
                    if m is None:
                        pos += span + 1
                        continue
                    mstart = m.start(_WHOLE)
                if mstart > last:
                    break
                if has_value:
                    vs, ve = m.span("value")
                else:
                    vs, ve = m.span(_WHOLE) if brx is not None else m.span()
                if vs < 0 or vs == ve:
                    pos = mstart + 1
                    continue
                vs += base
                ve += base
                if escaped and text[ve - 1] == "\\" and text[ve : ve + 1] in ("n", "r", "t"):
                    ve -= 1  # a literal \n escape after the value is no part of it
                    if ve <= vs:
                        pos = mstart + 1
                        continue
                if rule.type == "email" and not text[vs:ve].isascii():
                    vs, ve = _email_span(text, vs, ve)
                value = text[vs:ve]
                if "&" in value:
                    # an HTML-escaped quote or bracket ends a value (sk_live_&lt;your key&gt;,
                    # $STRIPE_KEY&quot;): the escape view reads the text with it decoded
                    q = _QUOTE_ENTITY.search(value)
                    if q is not None:
                        ve = vs + q.start()
                        value = text[vs:ve]
                        if not value:
                            pos = mstart + 1
                            continue
                if deadline is not None and time.monotonic() > deadline:
                    self._out_of_time()
                if self._accept(ri, rule, value, text, vs, ve, m, memo):
                    if budget is not None:
                        if budget[0] <= 0:  # one match more than the cap: say so, stop
                            budget[0] = -1
                            self.capped.add(rule.id)
                            return
                        budget[0] -= 1
                    out.append(
                        Detection(
                            rule.id,
                            rule.type,
                            value,
                            vs,
                            ve,
                            rule.severity,
                            rule.action,
                            priority=rule.priority,
                            ref=rule,
                        )  # fmt: skip
                    )
                    pos = max(m.end(), mstart + 1)
                else:
                    # a rejected match may hide an overlapping good one ("failed: url?token=x")
                    pos = mstart + 1

    def _out_of_time(self) -> None:
        raise ScanTimeout(
            f"not inspected: scanning took longer than {self.time_budget or 0:g} s "
            "(mcp_max_scan_ms)"
        )

    def _accept(
        self, ri: int, rule: Rule, value: str, text: str, vs: int, ve: int, m, memo: dict
    ) -> bool:
        # What depends on the value alone is decided once per value and rule in a scan: a
        # message repeating one value thousands of times (a log, a table) costs one check.
        key = (ri, value)
        ok = memo.get(key)
        if ok is None:
            ok = memo[key] = self._accept_value(ri, rule, value)
        if not ok:
            return False
        if self._ctx_validators[ri]:
            ctx = V.Ctx(text, vs, ve, m)
            for fn, params in self._ctx_validators[ri]:
                if not fn(value, ctx, **params):
                    return False
        if rule.allow_context:
            whole = m.group(_WHOLE) if _WHOLE in m.re.groupindex else m.group(0)
            for p in rule.allow_context:
                if p.search(whole):
                    return False
        if rule.keywords:
            w = rule.spec.window
            near = text[max(0, vs - w.before - 64) : ve + 64].lower()
            if not any(k in near for k in rule.keywords):
                return False
        return True

    def _accept_value(self, ri: int, rule: Rule, value: str) -> bool:
        if value in rule.allow_values:
            return False
        # All must pass, so the order is only cost: checksums and character classes first
        # (a word of prose has no digit), then the allowlist's patterns (one search of ~50
        # alternatives, ~3-5 us: code like ``token = page.with(103)`` is what it refuses),
        # then the entropy.
        for fn, params in self._validators[ri]:
            if not fn(value, None, **params):
                return False
        for p in rule.allow_patterns:
            if p.search(value):
                return False
        for fn, params in self._late_validators[ri]:
            if not fn(value, None, **params):
                return False
        if rule.allow_stopwords:
            lv = value.lower()
            if any(sw in lv for sw in rule.allow_stopwords):
                return False
        if not rule.placeholder_check:
            return True
        if V.is_placeholder(value):
            return False
        if value.startswith("eyJ") and V.is_demo_jwt(value):
            return False
        # A value that is only an encoding of a placeholder or a reference is one too: a
        # Kubernetes Secret's base64 of "YOUR_API_KEY" or of {{ .Values.db.password }}, a
        # URL's password=%24%7BDB_PASSWORD%7D.
        inner = _encoded_text(value)
        if inner is None:
            return True
        if inner in rule.allow_values or V.is_placeholder(inner):
            return False
        return not any(p.search(inner) for p in rule.allow_patterns)

    # -- base64 ---------------------------------------------------------------------
    def _blob_findings(
        self, blob: str, key: str | None, allowed, depth: int = 0
    ) -> tuple[int, str, list[Detection], str]:
        """(length taken, the blob, detections in ``key: <decoded blob>``, "base64", "gzip"
        or "hex"). A blob inside the decoded text (base64 of base64, hex of base64...) is
        decoded too, one level deep."""
        # compressed blobs are inflated at the top level only, within the scan's budget
        budget = self._local.__dict__.get("inflate_budget") if depth == 0 else None
        got = _decode_blob(blob, budget)
        if got is None and ("\n" in blob or ("\\" in blob and "\\n" in blob)):
            # a wrapped blob taken with one line too many (a word after it): without it
            blob = blob[: max(blob.rfind("\n"), blob.rfind("\\n"))]
            blob = blob.removesuffix("\\r").removesuffix("\r")
            got = _decode_blob(blob, budget)
        if got is None:
            return len(blob), blob, [], ""
        decoded, encoding = got
        if V._PLACEHOLDER_WHOLE.match(decoded.strip().lower()):
            return len(blob), blob, [], ""  # base64 of a placeholder (user:password)
        prefix = key + ": " if key else ""
        derived = prefix + decoded
        inner, b64, _ = self._scan_raw(derived, allowed, want_b64=depth < _MAX_BLOB_DEPTH)
        view_dets: list[Detection] = []
        self._scan_views(derived, allowed, view_dets)
        if b64:
            view_dets.extend(self._scan_base64(derived, b64, allowed, depth + 1))
        found = _resolve(inner + view_dets)
        return len(blob), blob, [d for d in found if d.end > len(prefix)], encoding

    def _scan_base64(
        self, text: str, hits: list[tuple[int, int, bool]], allowed, depth: int = 0
    ) -> list[Detection]:
        out: list[Detection] = []
        seen: set[int] = set()
        # the same blob under the same key is decoded and scanned once per message
        memo: dict[tuple[str, str | None], tuple[int, str, list[Detection], str]] = {}
        for s, e, keyed in hits:
            if s in seen:
                continue
            seen.add(s)
            key = _key_before(text, max(0, s - 80), s)
            if keyed and not key:
                continue
            blob = text[s:e]
            got = memo.get((blob, key))
            if got is None:
                got = memo[(blob, key)] = self._blob_findings(blob, key, allowed, depth)
            n, blob, found, encoding = got
            e = s + n
            if not found:
                continue
            prefix = key + ": " if key else ""
            best = min(found, key=lambda d: (-d.priority, d.start))
            out.append(
                Detection(
                    best.rule,
                    best.type,
                    blob,
                    s,
                    e,
                    best.severity,
                    max((d.action for d in found), key=_action_rank),
                    encoding=encoding,
                    decoded=tuple(d.value[max(0, len(prefix) - d.start) :] for d in found),
                    priority=best.priority,
                    rank=0,
                    ref=best.ref,
                )  # fmt: skip
            )
        return out


_QUOTE_ENTITY = re.compile(
    r"&(?:quot|apos|lt|gt|#0*(?:34|39|60|62)|#[xX]0*(?:22|27|3[cCeE]))(?:;|\Z)"
)


def _on_match(i: int, frm: int, to: int, _flags: int, hits: list) -> None:
    hits.append((i, frm, to))


# -- base64 candidates ------------------------------------------------------------------------
# Base64 characters map to "a", padding to "=", everything else to a space; then plain
# substring searches (C speed) find long runs and short padded values.
_B64_TABLE = bytes(
    (
        0x61
        if (chr(i).isascii() and chr(i).isalnum()) or chr(i) in "+/"
        else 0x3D
        if chr(i) == "="
        else 0x20
    )
    for i in range(256)
)
_LONG_NEEDLE = b"a" * _B64_LONG
_PADDED = re.compile(rb"=(?<=aaaaaa=)")  # literal '=' first: a fast scan, then a look-behind


def _b64_candidates(
    data: bytes, long: bool = True, padded: bool = True
) -> list[tuple[int, int, bool]]:
    """(start, end, keyed) of base64 runs worth decoding: >= 40 characters (``long``), or
    padded values of >= 6 characters (Kubernetes secret data, docker auths) right after
    ``:`` or ``=`` (``padded``). The engine asks only for the kinds Hyperscan saw."""
    if b"=" not in data and len(data) < _B64_LONG:
        return []
    tr = data.translate(_B64_TABLE)
    out: list[tuple[int, int, bool]] = []
    n = len(tr)
    spans = []
    i = tr.find(_LONG_NEEDLE) if long else -1
    while i >= 0:
        # i starts its run: each search begins at 0 or at a separator, and the first 40
        # base64 characters found cannot have one more before them (so no backward search,
        # which made this loop quadratic on big messages without separators)
        end = _run_end(tr, i + _B64_LONG, n)
        start = i
        if start > 0 and data[start - 1] == 0x5C and data[start] in b"nrt":
            start += 1  # the letter of a literal \n escape is not part of the blob
        spans.append((start, end))
        i = tr.find(_LONG_NEEDLE, end)
    # hex digests, ids: base64 of text mixes cases (a list of commits: dozens of SHAs,
    # dropped here before their heads are decoded and judged one by one in _text_heads)
    plain = [
        (start, end)
        for start, end in spans
        if not _one_case(run := data[start:end]) or _hex_text(run)
    ]
    if len(spans) >= 8:
        plain = _text_heads(data, tr, plain, spans)
    for start, end in plain:
        pad = end
        while pad < n and pad - end < 2 and tr[pad] == 0x3D:
            pad += 1
        out.append((start, pad, False))
    if len(out) > 1:
        out = _join_wrapped(data, tr, out)
    for m in _PADDED.finditer(tr) if padded else ():
        eq = m.start()
        lo = max(0, eq - _B64_LONG - 1)  # bounded: a longer run was taken above
        start = max(tr.rfind(b" ", lo, eq), tr.rfind(b"=", lo, eq)) + 1
        if start == 0 and lo > 0:
            continue
        if start > 0 and data[start - 1] == 0x5C and data[start] in b"nrt":
            start += 1
        if eq - start < _B64_LONG:  # long runs were taken above
            end = eq + 1
            if end < n and tr[end] == 0x3D:
                end += 1
            out.append((start, end, True))
    return out


_LINE_BREAKS = (b"\n", b"\r\n", b"\\n", b"\\r\\n")  # as they are, or JSON-escaped

_HEAD = 40  # base64 characters of a run checked in bulk: 30 decoded bytes
_HEAD_BYTES = _HEAD // 4 * 3
_utf8_prefix = codecs.utf_8_decode


def _one_case(run: bytes) -> bool:
    return run.isalnum() and (run.islower() or run.isupper() or run.isdigit())


def _text_heads(
    data: bytes, tr: bytes, spans: list[tuple[int, int]], every: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The runs whose first 40 characters may start base64 of text. Random words, digests
    and binary data separated by spaces make thousands of runs in a big message; checking
    each one apart cost ~10 us a run in Python (25 ms for 256 KiB of random words). Here all
    heads are decoded in one call, and a run is dropped only when its first 30 bytes hold 3
    or more non-printable ones: ``_decode_blob`` refuses such a blob anyway (it wants 95 %
    printable bytes in a head of 30 to 48 bytes that starts with these), and so when they
    cannot start UTF-8 text. A run that is not 40 whole base64 characters from its start, or
    that may continue a wrapped blob, is kept. (``every``: all the runs, ``spans`` among
    them, to tell which follow another.)"""
    # Only runs that may start a blob: a run right after another one across a line break
    # may be the next line of a wrapped blob, which starts anywhere in its bytes (inside a
    # UTF-8 character too) and is judged with its first line once joined.
    ends = {e for _, e in every}
    full = [
        sp
        for sp in spans
        if tr[sp[0] : sp[0] + _HEAD] == _LONG_NEEDLE
        and not any(
            sp[0] - len(b) in ends and data.startswith(b, sp[0] - len(b)) for b in _LINE_BREAKS
        )
    ]
    if not full:
        return spans
    try:
        dec = base64.b64decode(b"".join(data[s : s + _HEAD] for s, _ in full))
    except binascii.Error:  # not reachable: every head is whole base64 groups
        return spans
    if len(dec) != len(full) * _HEAD_BYTES:
        return spans
    drop = set()
    for k, (s, e) in enumerate(full):
        o = k * _HEAD_BYTES
        head = dec[o : o + _HEAD_BYTES]
        if is_compressed(head):
            continue  # a compressed file: decoded, inflated and judged by _decode_blob
        try:
            if len(head.translate(None, _PRINTABLE_BYTES)) <= 2:
                _utf8_prefix(head, "strict", False)  # a character may be cut at the end
                continue
        except UnicodeDecodeError:
            pass
        if _legacy_text_head(head):
            continue  # UTF-16, or text in an 8-bit charset: judged by _decode_blob
        if not _hex_text(data[s:e]):  # not base64 of text; hex of text is kept
            drop.add(s)
    return [sp for sp in spans if sp[0] not in drop] if drop else spans


def _join_wrapped(
    data: bytes, tr: bytes, runs: list[tuple[int, int, bool]]
) -> list[tuple[int, int, bool]]:
    """Base64 wrapped into lines (``base64 id_rsa``, MIME, PEM bodies: 64 or 76 columns) is
    one blob: runs that follow each other across a single line break, each but the last a
    multiple of 4 characters long and unpadded, are joined, with the short last line."""
    out: list[tuple[int, int, bool]] = []
    n = len(data)
    for s, e, keyed in sorted(runs):
        if out:
            ps, pe, pk = out[-1]
            if (
                data[pe:s] in _LINE_BREAKS
                and data[pe - 1 : pe] != b"="
                and _line_len(data, ps, pe) % 4 == 0
            ):
                out[-1] = (ps, e, pk)
                continue
        out.append((s, e, keyed))
    joined = []
    for s, e, keyed in out:
        # a short last line (under 40 characters, so not a run of its own) belongs to it,
        # unless the blob is padded (it ends there) or its last line is not a full group
        if data[e : e + 1] in (b"\n", b"\r", b"\\") and data[e - 1 : e] != b"=":
            br = next((b for b in _LINE_BREAKS if data.startswith(b, e)), None)
            if br is not None and _line_len(data, s, e) % 4 == 0:
                k = _run_end(tr, e + len(br), n)
                if k > e + len(br):
                    while k < n and data[k] == 0x3D and data[k - 2 : k] != b"==":
                        k += 1  # its padding
                    e = k
        joined.append((s, e, keyed))
    return joined


def _line_len(data: bytes, s: int, e: int) -> int:
    """Length of the last line of ``data[s:e]`` (lines broken as in _LINE_BREAKS)."""
    tail = data[s:e]
    esc = tail.rfind(b"\\n")
    cut = max(tail.rfind(b"\n"), esc + 1 if esc >= 0 else -1)
    return len(tail) - (cut + 1)


def _run_end(tr: bytes, i: int, n: int) -> int:
    """End of the run of base64 characters ("a" in ``tr``) that goes on at ``i``."""
    sp = tr.find(b" ", i)
    eq = tr.find(b"=", i, sp if sp >= 0 else n)
    if eq >= 0:
        return eq
    return sp if sp >= 0 else n


_HEX_DIGITS = b"0123456789abcdefABCDEF"
_ASCII_HIGH_NIBBLE = b"234567"  # hex of printable ASCII: every other digit is one of these


def _hex_text(run: bytes) -> bool:
    """Whether ``run`` may be text written in hex (``xxd -p``, ``.hex()``): an even number of
    hex digits whose first 20 bytes are printable UTF-8. Digests are not: their digits are
    random, so the every-other-digit test refuses almost all of them at C speed."""
    head = run[:_B64_LONG]
    if len(head) < _B64_LONG or len(run) % 2 or head.translate(None, _HEX_DIGITS):
        return False
    if len(head[::2].translate(None, _ASCII_HIGH_NIBBLE)) > 4:  # room for a few UTF-8 bytes
        return False
    raw = bytes.fromhex(head.decode("ascii"))
    if len(raw.translate(None, _PRINTABLE_BYTES)) > 1:
        return False
    try:
        _utf8_prefix(raw, "strict", False)
    except UnicodeDecodeError:
        return False
    return True


def _decode_hex(core: str) -> str | None:
    if len(core) < _B64_LONG or len(core) % 2:
        return None
    try:
        raw = bytes.fromhex(core)
        s = raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return s if _printable_ratio(raw) >= 0.95 else None


def _decode_blob(blob: str, inflate_budget: list[int] | None = None) -> tuple[str, str] | None:
    """(the decoded text, "base64", "gzip" (base64 of gzip or zlib data) or "hex"), or None
    when ``blob`` is not text so encoded. Compressed data is inflated only with an
    ``inflate_budget`` (bytes left, decremented)."""
    # wrapped into lines (see _join_wrapped). ("\\" first: one memchr, where the search for
    # the two characters "\\n" read a 35 KB image blob at ~0.5 GB/s, ~70 us, and ran twice
    # for every blob that is no text: ~5 % of the benchmark's engine time)
    if "\n" in blob or ("\\" in blob and "\\n" in blob):
        blob = blob.replace("\\r\\n", "").replace("\\n", "").replace("\r", "").replace("\n", "")
    core = blob.rstrip("=")
    if len(core) < 6 or len(blob) > _MAX_BLOB:
        return None
    if core.isalnum() and (core.islower() or core.isupper() or core.isdigit()):
        # hex digests, ids, words: base64 of text mixes cases; hex of text is decoded
        text = _decode_hex(core) if core == blob else None
        return None if text is None else (text, "hex")
    if len(blob) % 4:
        if "=" in blob or len(core) % 4 == 1:
            return None
        blob = core + "=" * (-len(core) % 4)
    head = blob[: min(len(blob), 64) // 4 * 4]
    encoding = "base64"
    try:
        first = base64.b64decode(head)
        raw = None
        if inflate_budget is not None and inflate_budget[0] > 0 and is_compressed(first):
            spent = [0]
            limit = min(MAX_INFLATE, inflate_budget[0])
            got = inflate(base64.b64decode(blob, validate=True), limit, spent)
            inflate_budget[0] -= spent[0]
            if got is not None:
                raw = got[0]
                encoding = "gzip"  # (or zlib: act tells them apart by the magic bytes)
            # else: too big, or not compressed data after all (text starting "x^" has the
            # magic of zlib): judged as plain base64 below
        if raw is None:
            if _printable_ratio(first) < 0.95 and _utf16_of(first) is None:
                return None
            raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None
    got = blob_text(raw)
    if got is None or not _text_printable(got[0], got[1], raw):
        return None
    return got[0], encoding


_ACTION_ORDER = {"log": 0, "alert": 1, "redact": 2, "block": 3}


# Kana, CJK ideographs, Hangul, and full-width forms (not the full-width digits and letters,
# which NFKC reads as ASCII in the unicode view); and the letters of the other scripts written
# without spaces between words, Thai, Lao, Myanmar and Khmer (not their digits): a number
# glued to them (เบอร์โทร083-845-1865ค่ะ) is one to a reader
_CJK = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff01-\uff0f\uff1a-\uff20\uff5b-\uff65"
    "\u0e01-\u0e4f\u0e81-\u0ecf\u1000-\u103f\u104a-\u108f\u1780-\u17dd]"
)
# numbers that no pattern needs a CJK character for (see _confirm)
_CJK_BLIND_TYPES = frozenset({"phone_number", "ipv4", "credit_card", "us_ssn", "iban"})
# ... except a phone label: it stays a label (as many U+260E as it has characters), so that
# 电话是13919494762 reads as a label and a number, not an undivided 11-digit number alone
_CJK_PHONE_LABEL = re.compile(
    "\u7535\u8bdd|\u624b\u673a|\u624b\u6a5f|\u96fb\u8a71|\u643a\u5e2f|\uc804\ud654|\ud734\ub300\ud3f0|\ud578\ub4dc\ud3f0"
    # (連絡先 and 연락처, "contact": a form's guardian or emergency contact is a number)
    "|\u9023\u7d61\u5148|\uc5f0\ub77d\ucc98"
)


def _email_span(text: str, vs: int, ve: int) -> tuple[int, int]:
    """An address glued to Chinese, Japanese or Korean text (メールアドレスはjane@acme.jpです,
    제 이메일은 a@b.com입니다): the span without the text around it. An address wholly in
    those scripts (用户@例子.公司) stays as it is."""
    v = text[vs:ve]
    at = v.rfind("@")
    if at <= 0:
        return vs, ve
    local, dom = v[:at], v[at + 1 :]
    cut = max((m.end() for m in _CJK.finditer(local)), default=0)
    if 0 < cut < len(local) and local[cut].isalnum():
        vs += cut  # a local part in Latin letters after CJK text
    first = _CJK.search(dom)
    if first is not None and first.start() > 0:
        head = dom[: first.start()]
        if head.isascii() and "." in head.strip(".") and head[-1].isalpha():
            ve -= len(dom) - first.start()  # a Latin domain, then the sentence goes on
    return vs, ve


_B64_VALUE = re.compile(r"[A-Za-z0-9+/]{4,}={0,2}\Z")


def _encoded_text(value: str) -> str | None:
    """The text ``value`` encodes, when it is wholly percent-encoded or wholly base64 of
    printable UTF-8 text; else None."""
    if "%" in value:
        inner = urllib.parse.unquote(value, errors="replace")
        return inner if inner != value and "\ufffd" not in inner else None
    if not _B64_VALUE.match(value):
        return None
    body = value.rstrip("=")
    if len(body) % 4 == 1:
        return None
    try:
        text = base64.b64decode(body + "=" * (-len(body) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if text.isprintable() and text.strip() else None


def _action_rank(a: str) -> int:
    return _ACTION_ORDER.get(a, 0)


_CONTINUATION = bytes(range(0x80, 0xC0))


def _to_char_offsets(data: bytes, hits: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Hits with their end offset in ``data`` (UTF-8) turned into an offset in the decoded
    text: bytes minus the continuation bytes before it, counted incrementally (linear)."""
    out = []
    prev_b = prev_c = 0
    for i, frm, to in sorted(hits, key=lambda h: h[2]):
        if to > prev_b:
            seg = data[prev_b:to]
            prev_c += len(seg.translate(None, _CONTINUATION))
            prev_b = to
        out.append((i, frm, prev_c))
    return out


def _b64_char_offsets(
    data: bytes, spans: list[tuple[int, int, bool]]
) -> list[tuple[int, int, bool]]:
    """Base64 candidates are ASCII: only where each starts needs mapping to characters."""
    out = []
    prev_b = prev_c = 0
    for s, e, keyed in sorted(spans):
        if s > prev_b:
            prev_c += len(data[prev_b:s].translate(None, _CONTINUATION))
            prev_b = s
        out.append((prev_c, prev_c + (e - s), keyed))
    return out


_WHOLE = "_gw_match"
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_NUMBERED_REF = re.compile(r"\\[1-9]|\(\?\([0-9]")


def _start_bounded(rx: re.Pattern, span: int) -> re.Pattern | None:
    """``rx`` as a pattern that, used with ``match(s, pos)``, finds the leftmost match of ``rx``
    starting in ``pos .. pos + span`` (group ``_gw_match``), and tries no later start: a
    failed ``search`` over a long window would try every position up to its end. None when
    the wrapping group would renumber a numbered back-reference."""
    p = rx.pattern
    if not isinstance(p, str) or _NUMBERED_REF.search(p):
        return None
    head = ""
    while (m := _GLOBAL_FLAGS.match(p)) is not None:  # global flags must stay in front
        head += m.group(0)
        p = p[m.end() :]
    try:
        brx = re.compile(f"{head}(?s:.{{0,{span}}}?)(?P<{_WHOLE}>{p})")
    except re.error:
        return None
    return brx


# Python's \s matches these ASCII characters too, Hyperscan's does not
_PY_ONLY_SPACE = re.compile("[\x1c-\x1f]")
_GATE_FLAGS = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH
_GATE_HEX = {"x": 2, "u": 4, "U": 8}


# value validators run after the allowlist's patterns: the costly ones
_LATE_VALIDATORS = frozenset({"entropy"})

_GATE_WINDOW = 512
# Repeats longer than this are read as unbounded by the gate (a superset): Hyperscan took
# 20 s to compile the packs' patterns with their {6,256} and {0,300} as they are, 1 s so.
_GATE_REPEAT = 16
_BOUNDED_REPEAT = re.compile(r"\{(\d+),(\d+)\}")
# an inline flag group that turns on case-insensitivity: (?i), (?ix), (?i:...)
_CASELESS = re.compile(r"\(\?[aLmsux]*i[aLmsux]*(?:-[imsx]+)?[:)]")
# what Python's re folds to an ASCII letter under IGNORECASE: ſ, Kelvin's K, İ, ı
_FOLDS_TO_ASCII = frozenset((0x17F, 0x212A, 0x130, 0x131))


def _gate_db(items: list[tuple[bytes, int]]) -> hs.Database | None:
    try:
        return hscache.database(
            [e for e, _ in items], [k for _, k in items], [_GATE_FLAGS] * len(items)
        )
    except hs.error:
        return None


def _unbound(m: re.Match) -> str:
    lo, hi = int(m.group(1)), int(m.group(2))
    return m.group(0) if hi <= _GATE_REPEAT else f"{{{min(lo, _GATE_REPEAT)},}}"


def _on_gate(i: int, _frm: int, _to: int, _flags: int, found: list) -> None:
    found.append(i)


def _gate_expr(pattern: str | bytes) -> bytes | None:
    """A Python pattern as Hyperscan (PCRE syntax) reads it, for ASCII text: named groups
    and back-references respelled, every character beyond ASCII (a ``\\u`` escape or
    itself) one byte that ASCII text never holds, so it matches nothing there but stays one
    unit under a quantifier; long repeats outside classes unbounded. None for a construct
    the two read differently (``{,n}`` is a repeat to Python and literal text to PCRE;
    ``[:alpha:]`` a class to PCRE only), and for a case-insensitive pattern holding one of
    the characters beyond ASCII that Python folds to an ASCII letter (``ſ``, Kelvin's ``K``,
    ``İ``, ``ı``), alone or in a range."""
    if not isinstance(pattern, str) or "{," in pattern or "[:" in pattern or "\\N" in pattern:
        return None
    folds = _CASELESS.search(pattern) is not None
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    prev_cp: int | None = None  # the last item of the class being read, as a code point
    range_lo: int | None = None  # after "x-" in a class
    while i < n:
        c = pattern[i]
        cp: int | None = None
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            width = _GATE_HEX.get(d)
            if width is not None:
                digits = pattern[i + 2 : i + 2 + width]
                if len(digits) != width or any(x not in "0123456789abcdefABCDEF" for x in digits):
                    return None
                cp = int(digits, 16)
                out.append("\\xff" if cp >= 0x80 else f"\\x{cp:02x}")
                i += 2 + width
            else:
                cp = ord(d) if not d.isalnum() or ord(d) >= 0x80 else None
                out.append("\\xff" if ord(d) >= 0x80 else pattern[i : i + 2])
                i += 2
        elif in_class:
            if c == "]":
                in_class, prev_cp, range_lo = False, None, None
                out.append(c)
                i += 1
                continue
            if c == "-" and prev_cp is not None and i + 1 < n and pattern[i + 1] != "]":
                range_lo, prev_cp = prev_cp, None
                out.append(c)
                i += 1
                continue
            cp = ord(c)
            out.append("\\xff" if cp >= 0x80 else c)
            i += 1
        elif c == "[":
            in_class, prev_cp, range_lo = True, None, None
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # first in a class: a literal
                out.append("\\]")
                i += 1
            continue
        elif c == "(" and pattern.startswith("(?P<", i):
            out.append("(?<")
            i += 4
            continue
        elif c == "(" and pattern.startswith("(?P=", i):
            j = pattern.find(")", i)
            if j < 0:
                return None
            out.append(f"\\k<{pattern[i + 4 : j]}>")
            i = j + 1
            continue
        elif c == "{" and (m := _BOUNDED_REPEAT.match(pattern, i)) is not None:
            out.append(_unbound(m))
            i = m.end()
            continue
        else:
            cp = ord(c)
            out.append("\\xff" if cp >= 0x80 else c)
            i += 1
        if folds and cp is not None:
            if cp in _FOLDS_TO_ASCII or (
                range_lo is not None and any(range_lo <= f <= cp for f in _FOLDS_TO_ASCII)
            ):
                return None
        if in_class:
            prev_cp, range_lo = (cp, None) if range_lo is None else (None, None)
    return "".join(out).encode("ascii")


def _split_caret(expr: str) -> list[str]:
    """``(?:^|A|B)rest`` as the two anchors ``^rest`` and ``(?:A|B)rest``: the same matches,
    but Hyperscan runs the pair faster than one pattern that may or may not be anchored (a
    2000-event stream's 1 KiB events: 5.1 -> 2.7 µs each for the whole database)."""
    if not expr.startswith("(?:^|"):
        return [expr]
    depth = 0
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a class: skip to its end (a ']' first in it is literal)
            j = i + 1
            if j < len(expr) and expr[j] == "^":
                j += 1
            if j < len(expr) and expr[j] == "]":
                j += 1
            while j < len(expr) and expr[j] != "]":
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                break
        i += 1
    else:
        return [expr]  # unbalanced: left to the compiler to report
    alts, rest = expr[5:i], expr[i + 1 :]
    if _top_level_caret(alts) or rest[:1] in ("*", "+", "?", "{"):
        return [expr]  # another ^ among the alternatives, or the group repeated: left alone
    parts = ["^" + rest, f"(?:{alts}){rest}"]
    for part in parts:  # a shape this reading did not foresee: keep the original
        try:
            hscache.check(part.encode(), hs.HS_FLAG_PREFILTER)
        except hs.error:
            return [expr]
    return parts


def _needs_non_ascii(expr: str) -> bool:
    """Whether every match of ``expr`` holds a byte beyond ASCII (read as Python's parser
    reads it; False when in doubt)."""
    try:
        py = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", expr)  # named groups as Python spells them
        tree = _sre_parser.parse(py.encode("utf-8", "surrogatepass"))
    except Exception:  # noqa: BLE001 - Hyperscan syntax Python does not read: keep it
        return False
    return _seq_needs(tree)


def _seq_needs(seq) -> bool:
    return any(_item_needs(op, av) for op, av in seq)


def _item_needs(op, av) -> bool:
    c = _sre_constants
    if op is c.LITERAL:
        return av >= 0x80
    if op is c.IN:
        return all((o is c.LITERAL and a >= 0x80) or (o is c.RANGE and a[0] >= 0x80) for o, a in av)
    if op is c.BRANCH:
        return all(_seq_needs(b) for b in av[1])
    if op is c.SUBPATTERN:
        return _seq_needs(av[-1])
    if op is c.ATOMIC_GROUP:
        return _seq_needs(av)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        return av[0] >= 1 and _seq_needs(av[2])
    return False  # look-arounds match nothing; classes with ASCII in them, categories


def _top_level_caret(alts: str) -> bool:
    return alts == "^" or alts.startswith("^|") or "|^|" in alts or alts.endswith("|^")


def _hs_literal(s: str) -> str:
    return "(?i)" + "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in s if ord(c) < 128)


UNCHANGING = frozenset(("log", "alert"))  # actions that leave the message as it is


def _resolve(dets: list[Detection]) -> list[Detection]:
    """One detection per value: the most specific (highest priority) wins, no overlaps.
    In start order."""
    if len(dets) <= 1:
        return dets
    by_start = sorted(dets, key=lambda d: (d.start, d.end))
    # Resolved one cluster of overlapping detections at a time: a message with 50,000
    # e-mail addresses made the sorted inserts below quadratic (0.8 s of 5 s).
    out: list[Detection] = []
    cluster = [by_start[0]]
    reach = by_start[0].end
    for d in by_start[1:]:
        if d.start < reach:
            cluster.append(d)
            if d.end > reach:
                reach = d.end
            continue
        out.extend(_resolve_cluster(cluster) if len(cluster) > 1 else cluster)
        cluster = [d]
        reach = d.end
    out.extend(_resolve_cluster(cluster) if len(cluster) > 1 else cluster)
    return out


def _resolve_cluster(dets: list[Detection]) -> list[Detection]:
    # The longer of two equally specific detections wins before the one found in the raw
    # text does: a secret with one escaped character in its body (sk_live_…\u0033S) is
    # found in the raw text up to the escape, and whole in the decoded view; keeping the
    # raw one would redact the first part and let the rest through.
    order = sorted(dets, key=lambda d: (-d.priority, -(d.end - d.start), d.rank, d.start))
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Detection] = []
    for d in order:
        i = bisect.bisect_left(starts, d.start)
        # overlap with the interval before or at i?
        if i > 0 and ends[i - 1] > d.start:
            continue
        if i < len(starts) and starts[i] < d.end:
            continue
        starts.insert(i, d.start)
        ends.insert(i, d.end)
        kept.insert(i, d)
    return kept
