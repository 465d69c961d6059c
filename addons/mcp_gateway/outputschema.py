"""Redacted tool results that still pass their tool's ``outputSchema``.

A tool that declares an ``outputSchema`` returns ``structuredContent``, and the SDK clients
validate it: the Python SDK raises ``Invalid structured content returned by tool …`` and
the TypeScript SDK throws, so a redaction that breaks a ``pattern``, a ``maxLength``
shorter than the placeholder, an ``enum`` or a ``format`` turns the whole result into an
exception in the agent. The secret did not pass, but neither did anything else.

So the act stage remembers the output schemas of each server's tools as its ``tools/list``
answers pass (what the client caches and validates with, after any redaction of the list
itself), and when it redacts inside the ``structuredContent`` of a ``tools/call`` result of
such a tool, checks the result against the schema before and after (``jsonschema``, as the
Python SDK does, with formats checked, as the TypeScript SDK's Ajv does). When the
redaction is what broke it, the structured copy is withheld and the result is marked
``isError`` (both SDKs validate no error result without ``structuredContent``); the text
content, redacted, stays, and a text block says what happened. A result that did not
validate before is left alone: that is between the server and its client.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from typing import Any

import orjson

log = logging.getLogger("mcp_gateway")

MAX_SERVERS = 256
MAX_TOOLS = 2048  # per server
# A schema is the server's to write: one larger than this is not kept (its tool's results
# are not judged), and all of them together take no more than MAX_BYTES (as JSON): the
# servers learned longest ago are forgotten first.
MAX_SCHEMA_BYTES = 64 << 10
MAX_SERVER_BYTES = 4 << 20  # one server's share: it cannot push the others' schemas out
# A result larger than this is not judged (the copy and the validation cost the event loop
# ~1 ms per 10 KB of structured content): it goes on redacted, as it did before.
MAX_RESULT_BYTES = 1 << 20
MAX_BYTES = 32 << 20
WITHHELD_NOTE = (
    "mcp-gateway: the structured result was withheld: a value redacted in it no longer "
    "matches the tool's output schema (the redacted text is above)"
)


class ToolSchemas:
    """The output schemas of each server's tools, from the ``tools/list`` answers seen, kept
    as compact JSON (a parsed schema takes ten times its size in Python objects: a hostile
    server's 2 MB answers grew the proxy by 23 MB each) and parsed again when a redaction
    needs one."""

    def __init__(self) -> None:
        self._by_server: OrderedDict[str, OrderedDict[str, bytes]] = OrderedDict()
        self._server_bytes: dict[str, int] = {}
        self._bytes = 0

    def _drop(self, server: str, tool: str) -> None:
        known = self._by_server.get(server)
        raw = known.pop(tool, None) if known is not None else None
        if raw is not None:
            self._bytes -= len(raw)
            self._server_bytes[server] -= len(raw)

    def _drop_server(self, server: str) -> None:
        for raw in self._by_server.pop(server, {}).values():
            self._bytes -= len(raw)
        self._server_bytes.pop(server, None)

    def learn(self, server: str, result: Any) -> None:
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return
        known = self._by_server.get(server)
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            name = tool["name"]
            schema = tool.get("outputSchema")
            raw = _compact(schema) if isinstance(schema, dict) else None
            self._drop(server, name)
            if raw is None or len(raw) > MAX_SCHEMA_BYTES:
                continue  # (no schema, or too big to judge with)
            if known is None:
                known = self._by_server[server] = OrderedDict()
                self._server_bytes[server] = 0
                if len(self._by_server) > MAX_SERVERS:
                    self._drop_server(next(iter(self._by_server)))
            known[name] = raw
            self._bytes += len(raw)
            self._server_bytes[server] += len(raw)
            # the tools learned longest ago go first: this server's past its share, then the
            # servers learned longest ago past the total
            while len(known) > MAX_TOOLS or self._server_bytes[server] > MAX_SERVER_BYTES:
                self._drop(server, next(iter(known)))
            while self._bytes > MAX_BYTES and next(iter(self._by_server)) != server:
                self._drop_server(next(iter(self._by_server)))
        if known is not None and not known:
            self._drop_server(server)

    def get(self, server: str, tool: str | None) -> dict | None:
        known = self._by_server.get(server)
        raw = known.get(tool) if known is not None and tool is not None else None
        return orjson.loads(raw) if raw is not None else None


def _compact(schema: dict) -> bytes | None:
    try:
        return orjson.dumps(schema)
    except (TypeError, orjson.JSONEncodeError):
        try:  # (integers beyond 64 bits)
            return json.dumps(schema, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError):
            return None


# -- the schema's regexes, matched in linear time ------------------------------------------
# jsonschema matches ``pattern``, ``patternProperties`` (and the additional and unevaluated
# properties they decide) with Python's ``re``, which backtracks: a server's schema with
# ``"pattern": "^(a|aa)+$"`` and a structured result holding fifty a's and a "!" held the
# proxy's event loop for hours (the validation runs on it, for every client and server).
# While the guard validates, those searches run in Hyperscan instead (no backtracking; the
# engine's own prefilter library); a regex Hyperscan cannot compile (back-references,
# lookarounds, huge bounded repeats) makes the schema one the guard does not judge.
class _Unjudgeable(Exception):
    pass


_HS_CACHE: OrderedDict[str, Any] = OrderedDict()
_HS_CACHE_MAX = 512
_HS_MAX_PATTERN = 4096
_HS_COMPILES = 64  # new regexes compiled by one validation at most
_active = threading.local()


def _hs_db(pattern: str):
    if pattern in _HS_CACHE:
        _HS_CACHE.move_to_end(pattern)
        db = _HS_CACHE[pattern]
    else:
        budget = getattr(_active, "compiles", 0)
        if budget <= 0 or len(pattern) > _HS_MAX_PATTERN:
            raise _Unjudgeable(pattern)
        _active.compiles = budget - 1
        import hyperscan as hs

        flags = hs.HS_FLAG_UTF8 | hs.HS_FLAG_UCP | hs.HS_FLAG_ALLOWEMPTY | hs.HS_FLAG_SINGLEMATCH
        try:
            db = hs.Database(mode=hs.HS_MODE_BLOCK)
            db.compile(expressions=[pattern.encode("utf-8")], ids=[0], elements=1, flags=[flags])
        except Exception:  # noqa: BLE001 - hs.error, or a pattern that is no valid UTF-8
            db = None
        _HS_CACHE[pattern] = db
        if len(_HS_CACHE) > _HS_CACHE_MAX:
            _HS_CACHE.popitem(last=False)
    if db is None:
        raise _Unjudgeable(pattern)
    return db


def _search(pattern, string, flags=0):
    if not getattr(_active, "on", False):
        return re.search(pattern, string, flags)
    if flags or not isinstance(pattern, str) or not isinstance(string, str):
        raise _Unjudgeable(pattern)
    if not pattern:
        return True
    hits: list[int] = []
    _hs_db(pattern).scan(
        string.encode("utf-8", "replace"), match_event_handler=lambda *a: hits.append(1)
    )
    return bool(hits)


class _LinearRe:
    """What jsonschema's keyword modules see as ``re``: ``search`` as above (only while the
    guard validates: any other use in the process gets Python's), the rest Python's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    search = staticmethod(_search)


_patched = False


def _patch_jsonschema() -> None:
    global _patched
    if _patched:
        return
    import importlib

    for mod in ("jsonschema._keywords", "jsonschema._utils", "jsonschema._legacy_keywords"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if getattr(m, "re", None) is re:
            m.re = _LinearRe()
    _patched = True


# -- a bound on the work of one validation -------------------------------------------------
# The schema and the result are the server's: besides regexes, jsonschema's own algorithms can
# be made slow. ``uniqueItems`` compares objects pairwise (6,000 small objects: 31 s), and
# ``anyOf``/``oneOf`` over many branches times many items multiplies. So every keyword's work
# starts only before a deadline (VALIDATE_BUDGET seconds after the validation started; past it
# the schema is not judged and the result is left as it is), and ``uniqueItems`` is checked in
# linear time (canonical JSON of each element, 1 and 1.0 alike, true and 1 apart, as
# jsonschema compares them).
VALIDATE_BUDGET = 0.05
_BUDGETED: dict[type, type] = {}


def _canon(x: Any) -> Any:
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, dict):
        return {k: _canon(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_canon(v) for v in x]
    return x


def _unique_items(validator, unique, instance, schema):
    if not unique or not validator.is_type(instance, "array"):
        return
    import jsonschema
    import orjson

    seen: set[bytes] = set()
    for item in instance:
        try:
            key = orjson.dumps(_canon(item), option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            raise _Unjudgeable("uniqueItems") from None
        if key in seen:
            yield jsonschema.ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


def _budgeted(cls: type) -> type:
    """``cls`` with every keyword checking the deadline first (and the linear uniqueItems)."""
    got = _BUDGETED.get(cls)
    if got is not None:
        return got
    import jsonschema

    def timed(fn):
        def keyword(validator, value, instance, schema):
            if time.monotonic() > _active.deadline:
                raise _Unjudgeable("time")
            return fn(validator, value, instance, schema)

        return keyword

    kws = {k: timed(fn) for k, fn in cls.VALIDATORS.items()}
    if "uniqueItems" in kws:
        kws["uniqueItems"] = timed(_unique_items)
    got = _BUDGETED[cls] = jsonschema.validators.extend(cls, kws)
    return got


def _valid(schema: dict, instance: Any) -> bool | None:
    """Whether ``instance`` validates (None: the schema cannot be used, or judging it took
    longer than VALIDATE_BUDGET)."""
    import jsonschema

    _patch_jsonschema()
    _active.on, _active.compiles = True, _HS_COMPILES
    _active.deadline = time.monotonic() + VALIDATE_BUDGET
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = _budgeted(cls)(schema, format_checker=cls.FORMAT_CHECKER)
        return v.is_valid(instance)
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot use: not ours to judge
        return None
    finally:
        _active.on = False


class Guard:
    """Snapshot before a redaction, check after it (see the module's docstring)."""

    __slots__ = ("result", "schema", "before")

    def __init__(self, result: dict, schema: dict) -> None:
        self.result = result
        self.schema = schema
        self.before = copy.deepcopy(result.get("structuredContent"))

    @classmethod
    def for_result(
        cls, schemas: ToolSchemas, server: str, tool: str | None, payload: Any, size: int = 0
    ):
        if size > MAX_RESULT_BYTES:
            return None  # (copying and validating it would hold the event loop too long)
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict) or "structuredContent" not in result:
            return None
        if result.get("isError") is True:
            return None  # (the clients do not validate an error result)
        schema = schemas.get(server, tool)
        return cls(result, schema) if schema is not None else None

    def check(self, tool: str | None) -> bool:
        """After the redaction: withhold the structured copy if the redaction broke it.
        True when it was withheld."""
        after = self.result.get("structuredContent")
        if after == self.before:
            return False
        if _valid(self.schema, after) is not False or _valid(self.schema, self.before) is not True:
            return False
        del self.result["structuredContent"]
        self.result["isError"] = True
        content = self.result.get("content")
        if not isinstance(content, list):
            content = self.result["content"] = []
        content.append({"type": "text", "text": WITHHELD_NOTE})
        log.warning(
            "mcp-gateway: structuredContent of %s withheld: its redaction no longer matches the "
            "tool's output schema (result marked isError)",
            tool,
        )
        return True
