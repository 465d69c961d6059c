"""Rule packs: YAML files validated with pydantic, merged in order.

A pack file looks like::

    allowlist:                 # optional, applies to every rule
      values: [AKIAIOSFODNN7EXAMPLE]
    rules:
      - id: github-pat
        description: GitHub classic personal access token
        type: github_token     # from the detection-type vocabulary
        severity: critical     # info | low | medium | high | critical
        action: redact         # log | alert | redact | block
        pattern: '(?<![A-Za-z0-9])ghp_[A-Za-z0-9]{36}(?![A-Za-z0-9])'
        prefilter: ['ghp_[A-Za-z0-9]{36}']   # optional Hyperscan anchor(s)
        keywords: []           # optional: a keyword must occur in the same string
        validators: [token_crc32]
        allowlist: {values: [], patterns: [], stopwords: [], context: []}
        scope: {direction: [c2s, s2c], methods: ['tools/*'], tools: ['*'], servers: ['*']}
        redaction: placeholder # or {style: partial, keep_suffix: 4} or hash

Files are applied in order: a rule whose ``id`` already exists is updated field by field
(``enabled: false`` switches it off); a new id must give the required fields.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Literal

import hyperscan as hs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..parse import fold_name, fold_readings
from ..yamlconf import ConfigError, _fmt, line_for, load_yaml, validate
from . import hscache
from . import validators as V

SHIPPED_RULES_DIR = Path(__file__).resolve().parents[3] / "rules"

SECRET_TYPES = frozenset(
    """aws_access_key_id aws_secret_access_key aws_session_token github_token gitlab_token
    slack_token slack_webhook stripe_key openai_api_key anthropic_api_key google_api_key
    private_key azure_storage_key twilio_api_key sendgrid_api_key npm_token pypi_token jwt
    context7_api_key generic_secret url_credentials basic_auth""".split()
)
PII_TYPES = frozenset("email credit_card us_ssn iban phone_number ipv4".split())
TYPES = SECRET_TYPES | PII_TYPES

SEVERITIES = ("info", "low", "medium", "high", "critical")
ACTIONS = ("log", "alert", "redact", "block")
ACTION_RANK = {a: i for i, a in enumerate(ACTIONS)}

Severity = Literal["info", "low", "medium", "high", "critical"]
ActionName = Literal["log", "alert", "redact", "block"]
DirectionName = Literal["c2s", "s2c"]

# Default specificity: a provider token beats a JWT beats a URL password beats a generic
# context match; personal data sits below every credential.
_DEFAULT_PRIORITY = {t: 100 for t in SECRET_TYPES} | {
    "jwt": 80,
    "aws_secret_access_key": 90,
    "url_credentials": 50,
    "basic_auth": 50,
    "generic_secret": 20,
    "email": 30,
    "credit_card": 40,
    "us_ssn": 40,
    "iban": 40,
    "phone_number": 10,
    "ipv4": 10,
}


@functools.lru_cache(maxsize=4096)
def _check_regex(p: str) -> str:
    # (cached: the shipped packs hold ~500 distinct patterns checked ~8,600 times, since
    # the global allowlist's patterns are checked with every rule, which held start-up
    # and every reload ~3 s in the regex parser; a pattern that fails is not cached)
    try:
        compiled = re.compile(p)
    except re.error as e:
        raise ValueError(f"invalid regular expression: {e}") from None
    if compiled.groups and "value" not in compiled.groupindex and compiled.groupindex:
        pass
    problem = _backtracking_risk(p)
    if problem:
        raise ValueError(f"pattern may backtrack catastrophically: {problem}")
    return p


def _backtracking_risk(p: str) -> str | None:
    """Reject nested unbounded repeats such as ``(a+)+`` or ``(\\w*)*`` (exponential in ``re``)."""
    try:
        tree = sre_parse.parse(p)
    except Exception:  # noqa: BLE001 - already compiled fine; be permissive
        return None
    MAXR = sre_parse.MAXREPEAT

    def walk(seq, inside_unbounded: bool) -> str | None:
        for op, av in seq:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                lo, hi, sub = av
                unbounded = hi is MAXR or hi > 1000
                if unbounded and _has_unbounded(sub) and not _has_separator(sub):
                    return "a repeated group contains another unbounded repeat"
                if unbounded and name != "POSSESSIVE_REPEAT" and _ambiguous_branch(sub):
                    return (
                        "a repeated alternation whose branches can match the same text "
                        "(such as (?:a|a)* or (?:a|aa)*)"
                    )
                r = walk(sub, inside_unbounded or (unbounded and name != "POSSESSIVE_REPEAT"))
                if r:
                    return r
            elif name == "SUBPATTERN":
                r = walk(av[-1], inside_unbounded)
                if r:
                    return r
            elif name == "BRANCH":
                for b in av[1]:
                    r = walk(b, inside_unbounded)
                    if r:
                        return r
            elif name in ("ASSERT", "ASSERT_NOT"):
                r = walk(av[1], False)
                if r:
                    return r
        return None

    return walk(tree, False)


def _items(seq):
    for op, av in seq:
        name = str(op)
        yield name, av
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            yield from _items(av[2])
        elif name == "SUBPATTERN":
            yield from _items(av[-1])
        elif name == "BRANCH":
            for b in av[1]:
                yield from _items(b)


def _has_unbounded(seq) -> bool:
    MAXR = sre_parse.MAXREPEAT
    return any(
        n in ("MAX_REPEAT", "MIN_REPEAT") and (av[1] is MAXR or av[1] > 1000)
        for n, av in _items(seq)
    )


_ANY = None  # a first-character set that may be anything


def _chars(items) -> set | None:
    """The characters an IN class matches, or None (negated, or too wide to list)."""
    out: set = set()
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            return _ANY
        if name == "LITERAL":
            out.add(av)
        elif name == "RANGE":
            if av[1] - av[0] > 1024:
                return _ANY
            out.update(range(av[0], av[1] + 1))
        elif name == "CATEGORY":
            cat = str(av)
            if "NOT" in cat:
                return _ANY
            if "DIGIT" in cat:
                out.update(range(48, 58))
            elif "SPACE" in cat:
                out.update((9, 10, 11, 12, 13, 32))
            else:  # word
                out.update(range(48, 58), range(65, 91), range(97, 123), (95,))
                out.add("word")  # (and every letter beyond ASCII)
        else:
            return _ANY
    return out


def _nullable(seq) -> bool:
    for op, av in seq:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if av[0] == 0 or _nullable(av[2]):
                continue
            return False
        if name in ("SUBPATTERN", "ATOMIC_GROUP"):
            if _nullable(av[-1]):
                continue
            return False
        if name == "BRANCH":
            if any(_nullable(b) for b in av[1]):
                continue
            return False
        return False
    return True


def _first(seq) -> set | None:
    """The characters a match of ``seq`` can start with (None: any)."""
    out: set = set()
    for op, av in seq:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "LITERAL":
            f: set | None = {av}
        elif name == "IN":
            f = _chars(av)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            f = _first(av[2])
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            f = _first(av[-1])
        elif name == "BRANCH":
            f = set()
            for b in av[1]:
                fb = _first(b)
                if fb is _ANY:
                    return _ANY
                f |= fb
        else:
            return _ANY
        if f is _ANY:
            return _ANY
        out |= f
        if not _nullable([(op, av)]):
            return out
    return out


def _overlap(a: set | None, b: set | None) -> bool:
    if a is _ANY or b is _ANY:
        return True
    return bool(a & b) or ("word" in a and "word" in b)


def _ambiguous_branch(body) -> bool:
    """Inside an unbounded repeat: an alternation two of whose branches can start the same
    way, or whose empty branch lets the next iteration start where another branch would:
    the same text then splits into exponentially many iterations. Possessive repeats and
    atomic groups do not backtrack into themselves and are not searched."""
    whole = _first(body)
    for op, av in body:
        name = str(op)
        if name == "BRANCH":
            alts = av[1]
            firsts = [_first(b) for b in alts]
            nullable = [_nullable(b) for b in alts]
            if sum(nullable) >= 2:
                return True
            for i in range(len(alts)):
                for j in range(i + 1, len(alts)):
                    if _overlap(firsts[i], firsts[j]) and not (nullable[i] or nullable[j]):
                        return True
            if any(nullable) and any(
                _overlap(f, whole) for f, n in zip(firsts, nullable, strict=True) if not n
            ):
                return True
            for b in alts:
                if _ambiguous_branch(b):
                    return True
        elif name in ("SUBPATTERN",):
            if _ambiguous_branch(av[-1]):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            if _ambiguous_branch(av[2]):
                return True
    return False


def _has_separator(seq) -> bool:
    """A literal at the group's own level separates iterations (``(?:\\.[a-z]+)+`` is fine)."""
    for op, av in seq:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL"):
            return True
        if name == "SUBPATTERN" and _has_separator(av[-1]):
            return True
    return False


def _check_hs(expr: str) -> str:
    try:
        hscache.check(expr.encode(), 0)
    except hs.error as e:
        raise ValueError(f"prefilter not supported by Hyperscan: {e}") from None
    return expr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _glob_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class Scope(_Strict):
    direction: list[DirectionName] = Field(default_factory=lambda: ["c2s", "s2c"])
    methods: list[str] = Field(default_factory=list)  # globs on the JSON-RPC method
    tools: list[str] = Field(default_factory=list)  # globs on the tool/prompt name or resource uri
    servers: list[str] = Field(default_factory=list)  # globs on the server "host:port" / name

    _v = field_validator("direction", "methods", "tools", "servers", mode="before")(
        classmethod(lambda cls, v: _glob_list(v))
    )


class Redaction(_Strict):
    style: Literal["placeholder", "partial", "hash"] = "placeholder"
    keep_prefix: int = Field(default=0, ge=0, le=16)
    keep_suffix: int = Field(default=4, ge=0, le=16)
    placeholder: str = "[REDACTED:{type}]"

    @field_validator("placeholder")
    @classmethod
    def _ph(cls, v: str) -> str:
        if "\\" in v or '"' in v:
            raise ValueError("placeholder must not contain quotes or backslashes")
        return v


class Allowlist(_Strict):
    values: list[str] = Field(default_factory=list)  # exact values (case-sensitive)
    patterns: list[str] = Field(default_factory=list)  # regexes searched in the value
    stopwords: list[str] = Field(default_factory=list)  # case-insensitive substrings of the value
    context: list[str] = Field(default_factory=list)  # regexes searched in the whole match

    @field_validator("patterns", "context")
    @classmethod
    def _re(cls, v: list[str]) -> list[str]:
        for p in v:
            _check_regex(p)
        return v


class Window(_Strict):
    """Where a match may lie relative to the END of a prefilter hit: it may start up to
    ``before`` characters before it and end up to ``after`` characters after it. When the
    prefilter always matches inside the match (a key name, a token prefix), ``start_after: 0``
    says a match never starts after the hit's end, so confirmation tries far fewer start
    positions; unset, a match may start anywhere in the window."""

    before: int = Field(default=256, ge=0, le=65536)
    after: int = Field(default=256, ge=0, le=65536)
    start_after: int | None = Field(default=None, ge=0, le=65536)


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    description: str = ""
    type: str
    severity: Severity
    action: ActionName
    pattern: str | None = None
    patterns: list[str] = Field(default_factory=list)
    prefilter: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    validators: list[str | dict[str, Any]] = Field(default_factory=list)
    allowlist: Allowlist = Field(default_factory=Allowlist)
    scope: Scope = Field(default_factory=Scope)
    redaction: Redaction = Field(default_factory=Redaction)
    window: Window = Field(default_factory=Window)
    priority: int | None = None
    placeholder_check: bool | None = None  # default: on for secret types
    enabled: bool = True

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in TYPES and not re.fullmatch(r"custom_[a-z0-9_]+", v):
            raise ValueError(
                f"unknown type {v!r}: use one of the detection types ({', '.join(sorted(TYPES))}) "
                "or a custom_* name"
            )
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        return None if v is None else _check_regex(v)

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for p in v:
            _check_regex(p)
        return v

    @field_validator("prefilter", mode="before")
    @classmethod
    def _prefilter(cls, v: Any) -> Any:
        v = _glob_list(v)
        if isinstance(v, list):
            for p in v:
                if isinstance(p, str):
                    _check_hs(p)
        return v

    @field_validator("validators")
    @classmethod
    def _validators(cls, v: list) -> list:
        for spec in v:
            name, params = V.resolve(spec)
            param = V.REGEX_PARAMS.get(name)
            if param is not None and params.get(param):
                problem = _backtracking_risk(params[param])
                if problem:
                    raise ValueError(
                        f"validator {name!r}: {param} may backtrack catastrophically: {problem}"
                    )
        return v

    @field_validator("redaction", mode="before")
    @classmethod
    def _redaction(cls, v: Any) -> Any:
        return {"style": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _has_pattern(self) -> RuleSpec:
        if not self.enabled:
            return self
        if not self.pattern and not self.patterns:
            raise ValueError("a rule needs `pattern` or `patterns`")
        return self

    def all_patterns(self) -> list[str]:
        return ([self.pattern] if self.pattern else []) + list(self.patterns)


class PartialRule(_Strict):
    """A rule entry as written in a file, before merging (everything but ``id`` optional)."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class PackFile(_Strict):
    allowlist: Allowlist = Field(default_factory=Allowlist)
    rules: list[dict[str, Any]] = Field(default_factory=list)


# -- compiled rule -----------------------------------------------------------------------
@dataclass(slots=True)
class Rule:
    """A validated, enabled rule ready for the engine."""

    spec: RuleSpec
    source: str  # "file:line"
    regexes: list[re.Pattern]
    validators: list[tuple[str, dict[str, Any]]]
    allow_values: frozenset[str]
    allow_patterns: list[re.Pattern]
    allow_stopwords: tuple[str, ...]
    allow_context: list[re.Pattern]
    keywords: tuple[str, ...]
    priority: int
    placeholder_check: bool
    # the allowlist as written (values, patterns, stopwords, context; the file's own with the
    # rule's), for telling a reload that lets more through
    allowed: tuple[frozenset[str], ...] = ()
    _scope_cache: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def severity(self) -> str:
        return self.spec.severity

    @property
    def action(self) -> str:
        return self.spec.action

    @property
    def description(self) -> str:
        return self.spec.description

    def in_scope(
        self,
        direction: str | None,
        method: str | None,
        name: str | None,
        server: str | None,
        address: str | tuple[str, ...] | None = None,
        any_target: bool = False,
        fold: bool = False,
        any_name: bool = False,
    ) -> bool:
        """Whether the rule applies (``any_target``: whatever its method and tool scope, for
        an answer whose request is not known, replayed on a resumed stream; ``any_name``: whatever
        its tool scope, for a resource URI too long to normalise). ``server`` is the server's name (its host:port, or the
        name a loopback upstream gives itself with Mcp-Gateway-Server, as the shim's --name
        does); ``address`` its host:port when that name differs. A ``servers`` scope matches
        either: a client naming the server otherwise cannot step out of a rule scoped to the
        address."""
        sc = self.spec.scope
        if direction is not None and direction not in sc.direction:
            return False
        if not any_target:
            if sc.methods and not _glob_any(method or "", sc.methods):
                return False
            if (
                sc.tools
                and not any_name
                and not (
                    _glob_any_folded(name or "", sc.tools)
                    if fold
                    else _glob_any(name or "", sc.tools)
                )
            ):
                return False
        if sc.servers and not _glob_any(server or "", sc.servers):
            if address is None or not any(
                _glob_any(a, sc.servers)
                for a in (address if isinstance(address, tuple) else (address,))
            ):
                return False
        return True


def _glob_any(value: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, g) for g in globs)


def _glob_any_folded(value: str, globs: Sequence[str]) -> bool:
    """Ignoring case (a tool or prompt name, which a server may look up so; a file: URI,
    whose file system may ignore it), each character folded as those lookups fold it."""
    values = fold_readings(value)  # (and in NFKC: see fold_readings)
    return any(fnmatch.fnmatchcase(v, fold_name(g)) for g in globs for v in values)


@dataclass(slots=True)
class RuleSet:
    rules: list[Rule]
    sources: list[str]


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            out.extend(
                sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
            )
        else:
            out.append(p)
    return out


def default_paths() -> list[Path]:
    return _expand([SHIPPED_RULES_DIR])


def load_rules(
    paths: Sequence[str | Path] | None = None,
    *,
    time_regexes: bool = False,
    problems: list[ConfigError] | None = None,
) -> RuleSet:
    """Load and merge rule files (None/empty: the shipped packs). Raises ConfigError.
    With ``time_regexes``, the regexes of files other than the shipped packs are also timed
    on hostile input (see :mod:`.slowcheck`) and a slow one is refused.

    With a ``problems`` list (``rules check``), a rule that fails validation is appended
    there and left out instead of ending the load, so every bad rule of a file is named in
    one run; a file that cannot be read as a rule pack at all still raises."""
    files = _expand(paths) if paths else default_paths()
    users: list[tuple[Path, Any, dict]] = []  # (file, data, lines) of files not shipped
    if not files:
        raise ConfigError(
            str(paths[0]) if paths else str(SHIPPED_RULES_DIR), None, "", "no rule files found"
        )
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, tuple[Path, dict, tuple]] = {}  # id -> (file, lines, loc) of the last writer
    first: dict[str, str] = {}
    bad: set[str] = set()  # ids of rules that failed (with ``problems``): left out
    g_allow = Allowlist()
    for f in files:
        data, lines = load_yaml(f)
        if data is None:
            continue
        if isinstance(data, list):  # a bare list of rules is accepted too
            data = {"rules": data}
            lines = {("rules", *k): v for k, v in lines.items()}  # (errors name their line)
        pack = validate(PackFile, data, lines, f)
        if time_regexes and not _shipped(f):
            users.append((f, data, lines))
        g_allow = Allowlist(
            values=g_allow.values + pack.allowlist.values,
            patterns=g_allow.patterns + pack.allowlist.patterns,
            stopwords=g_allow.stopwords + pack.allowlist.stopwords,
            context=g_allow.context + pack.allowlist.context,
        )
        for i, raw in enumerate(pack.rules):
            loc = ("rules", i)
            try:
                _merge_rule(raw, loc, f, lines, merged, origin, first)
            except ConfigError as e:
                if problems is None:
                    raise
                problems.append(e)
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    bad.add(raw["id"])
    rules: list[Rule] = []
    for rid, raw in merged.items():
        f, lines, loc = origin[rid]
        if rid in bad or raw.get("enabled", True) is False:
            continue
        try:
            spec = validate(RuleSpec, raw, lines, f, base=loc)
            rules.append(_compile(spec, first[rid], g_allow))
        except ConfigError as e:
            if problems is None:
                raise
            problems.append(e)
    if users:
        # a rule disabled in the end is not timed; one disabled where its pattern is written
        # and enabled by a later file (`- {id: x, enabled: true}`) is
        off = {rid for rid, raw in merged.items() if raw.get("enabled", True) is False}
        try:
            _time_user_regexes(users, off | bad)
        except ConfigError as e:
            if problems is None:
                raise
            problems.append(e)
    return RuleSet(rules, [str(f) for f in files])


def _merge_rule(
    raw: Any,
    loc: tuple,
    f: Path,
    lines: dict,
    merged: dict[str, dict[str, Any]],
    origin: dict[str, tuple[Path, dict, tuple]],
    first: dict[str, str],
) -> None:
    """Merge one rule entry of file ``f`` into ``merged`` (a later file overrides fields of
    a rule of the same id) and validate the result there, so that an error points at the
    file that introduced the problem."""
    validate(PartialRule, raw, lines, f, base=loc)
    rid = raw["id"]
    if rid in merged:
        upd = dict(merged[rid])
        for k, v in raw.items():
            if isinstance(v, dict) and isinstance(upd.get(k), dict) and k != "redaction":
                upd[k] = {**upd[k], **v}
            else:
                upd[k] = v
        merged[rid] = upd
    else:
        merged[rid] = dict(raw)
        first[rid] = f"{f}:{line_for(lines, loc) or 0}"
    origin[rid] = (f, lines, loc)
    if merged[rid].get("enabled", True) is not False:
        validate(RuleSpec, merged[rid], lines, f, base=loc)


def _shipped(f: Path) -> bool:
    try:
        return f.resolve().parent == SHIPPED_RULES_DIR.resolve()
    except OSError:
        return False


def _regex_fields(data: Any, off: frozenset | set = frozenset()) -> list[tuple[tuple, str, int]]:
    """(location, regex, flags) of every regular expression a rule file holds: patterns,
    allowlist patterns and contexts, validators' regex parameters (the rules whose ids are
    in ``off``, disabled once all files are merged, aside)."""
    out: list[tuple[tuple, str, int]] = []

    def allowlist(al: Any, base: tuple) -> None:
        if isinstance(al, dict):
            for key in ("patterns", "context"):
                for j, p in enumerate(al.get(key) or []):
                    if isinstance(p, str):
                        out.append(((*base, key, j), p, 0))

    if not isinstance(data, dict):
        return out
    allowlist(data.get("allowlist"), ("allowlist",))
    for i, rule in enumerate(data.get("rules") or []):
        if not isinstance(rule, dict) or rule.get("id") in off:
            continue
        base = ("rules", i)
        if isinstance(rule.get("pattern"), str):
            out.append(((*base, "pattern"), rule["pattern"], 0))
        for j, p in enumerate(rule.get("patterns") or []):
            if isinstance(p, str):
                out.append(((*base, "patterns", j), p, 0))
        allowlist(rule.get("allowlist"), (*base, "allowlist"))
        for j, v in enumerate(rule.get("validators") or []):
            if not isinstance(v, dict) or len(v) != 1:
                continue
            name, raw = next(iter(v.items()))
            param = V.REGEX_PARAMS.get(name)
            if param is None:
                continue
            loc: tuple = (*base, "validators", j, name)
            if isinstance(raw, dict):
                raw, loc = raw.get(param), (*loc, param)
            if isinstance(raw, str) and raw:
                out.append((loc, raw, V.REGEX_FLAGS.get(name, 0)))
    return out


def _time_user_regexes(users: list[tuple[Path, Any, dict]], off: set[str]) -> None:
    from . import slowcheck

    where: dict[tuple[str, int], tuple[Path, dict, tuple]] = {}
    for f, data, lines in users:
        for loc, p, flags in _regex_fields(data, off):
            where.setdefault((p, flags), (f, lines, loc))
    slow = slowcheck.first_slow(list(where))
    if slow is None:
        return
    item, t = slow
    f, lines, loc = where[item]
    took = f"over {slowcheck.TIMEOUT:g} s" if t is None else f"{t:.2f} s"
    raise ConfigError(
        f,
        line_for(lines, loc),
        _fmt(loc),
        f"pattern is slow on text made of its own pieces ({took} for "
        f"{slowcheck.PUMP_CHARS} characters): it may backtrack catastrophically on hostile "
        "input; avoid adjacent repeats that can match the same characters (\\s*\\s*, "
        "\\d+\\d+) and repeats of repeats, or make them possessive (++, *+)",
    )


_LEADING_FLAGS = re.compile(r"\(\?([ims]+)\)")
# what cannot go into an alternation unchanged: named groups (two could clash), numbered
# back-references and conditionals (renumbered), global flags (only allowed first)
_APART = re.compile(r"\(\?P|\(\?<(?![=!])|\\[1-9]|\\g<|\(\?\(|\(\?[aiLmsux]+\)")


def any_of(patterns: list[str]) -> list[re.Pattern]:
    """Patterns whose searches, together, find a match exactly when one of ``patterns``
    would: those that can be joined are one alternation, one search in C instead of one
    call each (a value tried against the generic allowlist's 45 patterns: 4-8 us, joined
    1-2.5 us). A leading (?i), (?m) or (?s) becomes a scoped group; a pattern with named
    groups, back-references or other global flags is kept apart."""
    alone: list[re.Pattern] = []
    joined: list[tuple[str, str]] = []
    for p in patterns:
        m = _LEADING_FLAGS.match(p)
        body = f"(?{m.group(1)}:{p[m.end() :]})" if m is not None else p
        if _APART.search(body):
            alone.append(re.compile(p))
        else:
            joined.append((p, body))
    if len(joined) > 1:
        try:
            return [re.compile("|".join(f"(?:{b})" for _, b in joined)), *alone]
        except re.error:
            pass
    return [re.compile(p) for p, _ in joined] + alone


def _compile(spec: RuleSpec, source: str, g: Allowlist) -> Rule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regexes = [re.compile(p) for p in spec.all_patterns()]
    al = spec.allowlist
    return Rule(
        spec=spec,
        source=source,
        regexes=regexes,
        validators=[V.resolve(v) for v in spec.validators],
        allow_values=frozenset(al.values + g.values),
        allow_patterns=any_of(al.patterns + g.patterns),
        allow_stopwords=tuple(s.lower() for s in al.stopwords + g.stopwords),
        allow_context=any_of(al.context + g.context),
        keywords=tuple(k.lower() for k in spec.keywords),
        allowed=(
            frozenset(al.values + g.values),
            frozenset(al.patterns + g.patterns),
            frozenset(s.lower() for s in al.stopwords + g.stopwords),
            frozenset(al.context + g.context),
        ),
        priority=spec.priority
        if spec.priority is not None
        else _DEFAULT_PRIORITY.get(spec.type, 50),
        placeholder_check=(
            spec.placeholder_check
            if spec.placeholder_check is not None
            else spec.type in SECRET_TYPES
        ),
    )
