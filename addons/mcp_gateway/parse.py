"""Parse stage: bytes -> structured JSON-RPC messages, and the MCP-specific checks.

Everything here is pure (no mitmproxy objects) so that the HTTP adapters, the SSE
adapter, the CLI and the tests share it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import orjson

from .message import Direction, ErrorCode, Exchange, Kind, Message

# Methods of every MCP revision (2024-11-05 ... 2026-07-28). A JSON-RPC message whose method
# starts with one of these is MCP; anything else JSON-RPC is "unknown method" but still parsed.
MCP_METHOD_PREFIXES = (
    "initialize",
    "ping",
    "notifications/",
    "tools/",
    "resources/",
    "prompts/",
    "completion/",
    "logging/",
    "sampling/",
    "elicitation/",
    "roots/",
    "tasks/",
    "server/",
    "subscriptions/",
)

# Request methods whose params name the thing acted on, and where the name lives.
_NAME_PARAM = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "resources/subscribe": "uri",
    "resources/unsubscribe": "uri",
}

MODERN_VERSIONS = ("2026-07-28",)

# Nesting deeper than this is refused before orjson sees it (orjson itself stops at 1024).
MAX_DEPTH = 512
MAX_BATCH = 1000  # default of mcp_max_batch
MAX_CONTAINERS = 200_000  # objects and arrays a request may hold to be inspected
# ... and a server's answer: a tool's result may be a large table (250,000 rows of
# [id, name] are 5 MB); walking a million containers holds the event loop ~0.5 s, and the
# server, not an anonymous client, chose them
MAX_ANSWER_CONTAINERS = 1_000_000


class ParseError(ValueError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Uninspectable(ParseError):
    """Valid JSON that the gateway will not inspect: blocked or passed per mcp_fail_mode,
    never refused as "not JSON"."""


class TooDeep(Uninspectable):
    """JSON nested deeper than MAX_DEPTH: valid JSON that some receivers read (JavaScript's
    ``JSON.parse`` has no such limit)."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.PARSE_ERROR, f"Parse error: JSON nested deeper than {MAX_DEPTH}")


class TooManyContainers(Uninspectable):
    """JSON with more objects and arrays than MAX_CONTAINERS: the depth check walks every
    container in Python (~0.6 us each), so 16 MB of ``[[],[],…]`` (5.6 million lists) held
    the event loop for 3-4 s, before authentication. MCP messages hold a few hundred."""

    def __init__(self, limit: int = MAX_CONTAINERS) -> None:
        super().__init__(
            ErrorCode.TOO_LARGE, f"JSON with more than {limit} objects and arrays; not inspected"
        )


class TooManyElements(Uninspectable):
    """A batch of more elements than mcp_max_batch: each element costs the proxy's event
    loop ~0.1 ms, so one body of 100,000 kept every other client waiting for seconds."""

    def __init__(self, n: int, limit: int) -> None:
        super().__init__(
            ErrorCode.TOO_LARGE,
            f"batch of {n} elements exceeds mcp_max_batch ({limit}); not inspected",
        )


def is_mcp_method(method: Any) -> bool:
    return isinstance(method, str) and method.startswith(MCP_METHOD_PREFIXES)


def classify(obj: Any) -> Kind:
    """The JSON-RPC 2.0 kind of one decoded value, read as leniently as the MCP SDKs read
    it: a message that a receiver acts on must never be classed as invalid and so skip the
    scanner. The SDKs ignore members they do not expect, so
    - a request whose id is not a string or an integer (null, true, an object) is read as a
      notification, and one whose id is a float with no fraction (``1.0``) as a request;
    - a message with a ``result`` is a response, whatever ``error`` (even ``null``) or
      non-string ``method`` stands next to it;
    - a message naming an MCP method is a request or a notification whatever its
      ``jsonrpc`` says, or without one: the Java SDK (``JSONRPC.deserializeJsonRpcMessage``,
      and Spring AI's servers on it) reads a message by its ``method`` and ``id`` alone, and
      ran a ``tools/call`` sent without ``"jsonrpc": "2.0"`` that the gateway had passed on
      as no JSON-RPC: unauthenticated, unscanned, past the policy, the limits and the audit."""
    if not isinstance(obj, dict):
        return Kind.INVALID
    method = obj.get("method")
    if obj.get("jsonrpc") != "2.0" and not (
        is_mcp_method(method)
        # (an answer with a usable id, as the Java SDK reads a client's answer to its
        # sampling or elicitation request)
        or (
            "method" not in obj and _valid_id(obj.get("id")) and ("result" in obj or "error" in obj)
        )
    ):
        return Kind.INVALID
    if isinstance(method, str):
        if "id" not in obj:
            return Kind.NOTIFICATION
        i = obj["id"]
        if _valid_id(i) or (isinstance(i, float) and i.is_integer()):
            return Kind.REQUEST
        return Kind.NOTIFICATION
    if "id" in obj:
        if "result" in obj:
            return Kind.RESULT
        if "error" in obj:
            return Kind.ERROR
    return Kind.INVALID


def _valid_id(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))


def _name_path(method: str | None, params: Any) -> tuple[Any, str, str] | None:
    """(container, key, JSON pointer) of the name a request acts on."""
    if method is None or not isinstance(params, dict):
        return None
    key = _NAME_PARAM.get(method)
    if key is not None:
        return params, key, f"/params/{key}"
    if method == "completion/complete":
        ref = params.get("ref")
        if isinstance(ref, dict):
            # the servers read a reference by its type: a ref/resource is its uri whatever
            # name stands beside it (a harmless name took a template's completion out of the
            # rules scoped to the resource), a ref/prompt its name
            kind = ref.get("type")
            if kind == "ref/resource":
                key = "uri"
            elif kind == "ref/prompt":
                key = "name"
            else:
                key = "name" if ref.get("name") else "uri"
            return ref, key, f"/params/ref/{key}"
    return None


def target_name(method: str | None, params: Any) -> str | None:
    """Tool/prompt name or resource URI a request acts on."""
    hit = _name_path(method, params)
    if hit is None:
        return None
    v = hit[0].get(hit[1])
    return v if isinstance(v, str) else None


URI_METHODS = frozenset(
    {"resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete"}
)


_URI_MAX = 2048  # a client chooses the URI: the cache below must not hold megabytes
# normalised afresh, uncached, up to this (linear: about 16 ms for 64 KB of dot segments)
URI_NORMALISED_MAX = 64 * 1024


def served_uri_of(uri: str) -> str | None:
    """``served_uri``, cached for a URI short enough; a longer one is normalised afresh (a
    client pads dot segments past 2 KB: file:///srv/public/a/../a/../…/../secrets/x is
    file:///srv/secrets/x to the server, and matched as written it stepped out of a rule
    scoped to file:///srv/secrets/*); None over ``URI_NORMALISED_MAX`` (the scan stage
    applies every resource scope to such a URI)."""
    if len(uri) <= _URI_MAX:
        return served_uri(uri)
    if len(uri) <= URI_NORMALISED_MAX:
        return served_uri.__wrapped__(uri)
    return None


def served_aliases(uri: str) -> list[str]:
    """The other names a resource URI has for the servers (none over ``URI_NORMALISED_MAX``,
    where every scope applies): as they parse it (``served_uri_of``), and percent-decoded,
    since the mcp 2.x SDK's resource templates decode what they capture from the URI it is
    sent (``file:///srv/{+path}`` reads ``file:///srv/%73ecrets/a`` as secrets/a, ``{name}``
    reads ``secrets%2Fa`` so too), where matched as written it stepped out of a rule scoped
    to ``file:///srv/secrets/*``."""
    out: list[str] = []
    if len(uri) > URI_NORMALISED_MAX:
        return out
    seen = {uri}
    forms = [uri]
    if "%" in uri:
        forms.append(unquote(uri, errors="surrogateescape"))
    for form in forms:
        for a in (form, served_uri_of(form)):
            if a is not None and a not in seen:
                seen.add(a)
                out.append(a)
    for a in [uri, *out]:
        for b in _bare_forms(a):
            if b not in seen:
                seen.add(b)
                out.append(b)
    return out


def _bare_forms(uri: str) -> tuple[str, ...]:
    """What a server that fetches or opens the resource reaches with ``uri``, when that is
    another name for it: without userinfo (``https://u@internal.example/admin/x`` fetches
    ``https://internal.example/admin/x``), the host without its trailing dot
    (``internal.example.`` resolves to the same host), a ``file:`` URI's path whatever host it
    names (``file://127.0.0.1/srv/secrets/a``: a server that opens the path reads
    ``/srv/secrets/a``); then also without query and fragment (which name no other file, nor
    another path of a site). Each passed a deny rule on ``https://internal.example/admin/*``
    or ``file:///srv/secrets/*`` (red-team round 32). Empty when none applies."""
    if "://" not in uri:
        return ()
    try:
        parts = urlsplit(uri)
    except ValueError:
        return ()
    scheme, netloc = parts.scheme.lower(), parts.netloc
    host = netloc.rpartition("@")[2]
    if scheme == "file":
        host = ""
    elif not host.endswith("]"):
        name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
        host = name.rstrip(".") + colon + port
    out = []
    if host != netloc:
        out.append(urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)))
    if "?" in uri or "#" in uri:
        out.append(urlunsplit((parts.scheme, host, parts.path, "", "")))
    return tuple(out)


def fold_name(name: str) -> str:
    """A tool or prompt name (or a glob) as a server that looks names up ignoring case reads
    it: each character's simple case fold, as Java's ``equalsIgnoreCase``, Go's
    ``strings.EqualFold`` and .NET's ``OrdinalIgnoreCase`` compare them. ``str.lower`` is not
    that: ``execute_ſql`` (a long s) and ``kıll_task`` (a dotless i) are ``execute_sql`` and
    ``kill_task`` to those lookups, and passed a deny rule on them folded with ``lower``."""
    if name.isascii():
        return name.lower()
    return "".join(map(_fold_char, name))


def fold_readings(name: str) -> tuple[str, ...]:
    """``fold_name`` of a name, then of its NFKC form and of that without its accents and
    invisible characters, and without trailing spaces, when they differ. A server that keeps
    its tools in a database table looks them up under the table's collation: MySQL 8's
    default (``utf8mb4_0900_ai_ci``) ignores width, accents and characters Unicode's
    collation ignores (a zero-width space, a soft hyphen), SQL Server's (``…_CI_AS``) width,
    and SQL Server and MySQL's older ``PAD SPACE`` collations trailing spaces, so
    ``ｄｅｌｅｔｅ_repo``, ``dëlete_repo``, ``delete\u200b_repo`` and ``delete_repo `` run
    ``delete_repo`` there. The SDKs' own lookups (dicts, maps) read none of these, so the
    readings only add refusals and scopes: deny rules, tool limits and tool-scoped scan
    rules match any of them (the name as written is still judged first, so under a default
    deny a spelling that no allow rule names as written is refused)."""
    folded = fold_name(name)
    if name.isascii():
        bare = folded.rstrip(" ")
        return (folded,) if bare == folded or not bare else (folded, bare)
    nfkc = unicodedata.normalize("NFKC", name)
    bare = "".join(
        c
        for c in unicodedata.normalize("NFKD", nfkc)
        if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    ).rstrip(" ")
    return tuple(dict.fromkeys(r for r in (folded, fold_name(nfkc), fold_name(bare)) if r))


@functools.lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    # upper, then lower, one character each way (simple mappings): ſ -> S -> s, ı -> I -> i,
    # the Kelvin sign -> k, ς -> Σ -> σ; İ lowers to i and a combining dot: its i counts
    up = c.upper()
    if len(up) != 1:
        up = c  # ß -> SS is a full mapping, which these lookups do not apply
    low = up.lower()
    return low if len(low) == 1 else low[0]


@functools.lru_cache(maxsize=4096)
def served_uri(uri: str) -> str | None:
    """A resource URI as the SDK servers read it before looking the resource up: WHATWG URL
    parsing (pydantic's AnyUrl, on rust-url, in the Python SDK; ``new URL()`` in the
    TypeScript SDK) lowercases the scheme, drops ``file://localhost``, resolves ``.`` and
    ``..``, reads backslashes as slashes in ``file:`` and web URLs, drops tabs and line
    breaks, trims spaces. None when it is no URL they accept."""
    if ":" not in uri:
        return None
    try:
        from pydantic import AnyUrl

        served = str(AnyUrl(uri))
    except Exception:  # noqa: BLE001 - (ValidationError) not a URL: the server refuses it
        return None
    if "//" in served.split("://", 1)[-1]:
        # file:///srv//secrets/x is file:///srv/secrets/x to a server that opens the path
        # (a template capturing slashes, {+path}): empty path segments read as one
        head, sep, rest = served.partition("://")
        served = head + sep + re.sub(r"/{2,}", "/", rest)
    return served


def target_pointer(method: str | None, params: Any) -> str | None:
    """Where ``target_name`` found the name, as a finding's location (``/params/name``)."""
    hit = _name_path(method, params)
    return hit[2] if hit is not None else None


_ID_PEEK = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


def peek_id(prefix: bytes) -> Any:
    """The JSON-RPC id of a message too large to parse, from its first bytes (best effort:
    the first ``"id"`` key met, or None)."""
    m = _ID_PEEK.search(prefix[:65536])
    if not m:
        return None
    try:
        return orjson.loads(m.group(1))
    except orjson.JSONDecodeError:
        return None


# the top-level id at the very end of a message: ..."id": 7}  (then an event's line breaks)
_TRAILING_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\\r\n]|\\.){0,200}"|-?\d{1,40})\s*\}\s*$')


def trailing_id(data: bytes) -> Any:
    """The id written last in a message (``…, "id": 9}``, as the TypeScript SDK writes its
    answers), read from its last 512 bytes; None when it ends otherwise."""
    m = _TRAILING_ID.search(data[-512:])
    if m is None:
        return None
    try:
        return orjson.loads(m.group(1))
    except orjson.JSONDecodeError:
        return None


_WS_RUN = re.compile(rb"[ \t\r\n]*+")
_STR_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.S)
_NUM_TOKEN = re.compile(rb"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?")
_LIT_TOKEN = re.compile(rb"true|false|null")
_NEST_MARK = re.compile(rb'[\[\]{}"]')
_NO_ID = object()


def _str_end(buf: bytes, pos: int, budget: list[int] | None = None) -> int:
    """Where the JSON string opening at ``pos`` ends (after its closing quote), or -1, as
    ``_STR_TOKEN`` reads it, but by ``find`` (the regex read a 20 MB string in 0.75 s);
    -2 when the ``budget`` runs out (each escape spends one)."""
    i, q = pos + 1, -1
    while True:
        if q < i:  # (found again only once passed: linear in the string's length)
            q = buf.find(b'"', i)
            if q < 0:
                return -1
        e = buf.find(b"\\", i, q)
        if e < 0:
            return q + 1
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                return -2
        i = e + 2  # (the escaped character, a quote or a backslash among them, skipped)


def _value_end(buf: bytes, pos: int, budget: list[int] | None = None) -> int:
    """Where the JSON value at ``pos`` ends, or -1 when it does not end within ``buf`` (or
    is no value). Containers are skipped by their brackets, strings read whole; with a
    ``budget`` (a count of brackets and strings left, spent here), -1 also when it runs
    out (-2 then)."""
    c = buf[pos : pos + 1]
    if c == b'"':
        return _str_end(buf, pos, budget)
    if c in (b"{", b"["):
        depth = 0
        while True:
            if budget is not None:
                budget[0] -= 1
                if budget[0] < 0:
                    return -2
            m = _NEST_MARK.search(buf, pos)
            if m is None:
                return -1
            mark = m.group()
            if mark == b'"':
                pos = _str_end(buf, m.start(), budget)
                if pos < 0:
                    return pos
                continue
            depth += 1 if mark in (b"{", b"[") else -1
            pos = m.end()
            if depth == 0:
                return pos
    m = _NUM_TOKEN.match(buf, pos) or _LIT_TOKEN.match(buf, pos)
    if m is None or m.end() >= len(buf):
        return -1  # (a number at the prefix's end may go on beyond it)
    return m.end()


HEAD_ID_BUDGET = 50_000  # members, brackets, strings and escapes read (~0.1 s at most)


def head_id(content: bytes, limit: int = 65536, budget: int | None = None) -> Any:
    """The id of a JSON-RPC request too large to parse, read exactly from its first
    ``limit`` bytes: the top-level object's members are read in order (each member before
    the id parsed whole: a value is skipped by its brackets and strings, so an "id" inside
    params or a string is never taken), whatever their order, and the id is taken only when
    it is a string or a number and no other top-level member of that name (or its case
    variant, which receivers read apart) is met within the prefix. None otherwise, and for a
    batch. A member written after the prefix is not seen (another "id" there would be a
    duplicate that the sender itself wrote). With a ``budget``, the reading goes on past
    ``limit`` through the whole of ``content`` while it has skipped fewer brackets and
    strings than that (a body of millions of small values is not walked in Python: None)."""
    buf = content if budget is not None else content[:limit]
    spent = [budget] if budget is not None else None
    pos = 3 if buf[:3] == b"\xef\xbb\xbf" else 0
    pos = _WS_RUN.match(buf, pos).end()
    if buf[pos : pos + 1] != b"{":
        return None
    pos += 1
    found: Any = _NO_ID
    while True:
        if spent is not None:
            # (a member spends one: a million of "a":1 spent nothing, 2.5 s in Python)
            spent[0] -= 1
            if spent[0] < 0:
                return None
        pos = _WS_RUN.match(buf, pos).end()
        if buf[pos : pos + 1] == b"}":
            break
        if buf[pos : pos + 1] != b'"':
            break
        key_end = _str_end(buf, pos, spent)
        if key_end == -2:
            return None  # (the budget ran out: not read for certain)
        if key_end < 0:
            break
        try:
            name = orjson.loads(buf[pos:key_end])
        except orjson.JSONDecodeError:
            return None
        pos = _WS_RUN.match(buf, key_end).end()
        if buf[pos : pos + 1] != b":":
            return None
        pos = _WS_RUN.match(buf, pos + 1).end()
        end = _value_end(buf, pos, spent)
        if end == -2:
            return None  # (the budget ran out: not read for certain)
        if name.lower() == "id":
            if name != "id" or found is not _NO_ID or end < 0:
                return None  # (a duplicate, a case variant, or cut off by the prefix)
            token = buf[pos:end]
            if token[:1] != b'"' and _NUM_TOKEN.fullmatch(token) is None:
                return None  # (null, an object: no id to answer with)
            try:
                found = orjson.loads(token)
            except orjson.JSONDecodeError:
                return None
            if isinstance(found, float) and found.is_integer():
                found = int(found)  # (servers answer 8.0 as 8)
        elif end < 0:
            break  # a member not whole within the prefix: what follows is not read
        pos = _WS_RUN.match(buf, end).end()
        if buf[pos : pos + 1] != b",":
            break
        pos += 1
    return None if found is _NO_ID else found


def top_level_id(content: bytes) -> Any:
    """The id to answer a request too large to parse with: written last at the top level
    (``…, "id": 9}``: receivers take the last of duplicate members) or read exactly from its
    first bytes (``head_id``); None for a batch or when neither reads it for certain."""
    start = _WS_RUN.match(content, 3 if content[:3] == b"\xef\xbb\xbf" else 0).end()
    if content[start : start + 1] != b"{":
        return None
    ident = trailing_id(content)
    if ident is not None:
        return ident
    # (the whole body, held in memory already: an id after a large params is read too,
    # within a budget; a body of countless small values past the first 64 KiB is not)
    return head_id(content, budget=HEAD_ID_BUDGET if len(content) > 65536 else None)


def is_request_head(raw: bytes) -> bool:
    """Whether an event too large to parse opens like a request: ``"method"`` before any
    ``"result"`` or ``"error"`` (a notification has no id, which the caller checks)."""
    head = raw[:4096]
    method = head.find(b'"method"')
    if method < 0:
        return False
    found = [i for i in (head.find(b'"result"'), head.find(b'"error"')) if i >= 0]
    return not found or method < min(found)


def outer_id(content: bytes) -> Any:
    """The id of a JSON-RPC message too large to parse: written last (``…, "id": 9}``), or
    a top-level member within its first bytes (``head_id``: never one inside another
    member); else None."""
    ident = trailing_id(content)
    if ident is not None:
        return ident
    return head_id(content)  # (read member by member: not a "_meta": {"id": 5} before it)


_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*+[{\[]")


def looks_like_json(body: bytes) -> bool:
    """Whether the first byte after any JSON whitespace (and a UTF-8 byte order mark) opens
    an object or an array. All of the whitespace: JSON allows any amount, and a check that
    gave up after a few bytes let a padded body past the scanner."""
    return _JSON_START.match(body) is not None


def may_name_jsonrpc(data: bytes | bytearray) -> bool:
    """Whether a body or event not (yet) known as MCP may hold a "jsonrpc" member as some
    receiver reads it: the name as it is, with \\u escapes that may spell it
    ("\\u006asonrpc"), or in another case, Go's fold of "s" (the long s, U+017F) included:
    ``"JSONRPC"`` is ``jsonrpc`` to mcp-go (client and server), and such a message, on an
    exchange without an MCP header, went on untouched where the gateway refuses its case
    variants."""
    if b'"jsonrpc"' in data or b"\\u" in data:
        return True
    low = data.lower()
    return b'"jsonrpc"' in low or b'"j\xc5\xbfonrpc"' in low


# "method": "<an MCP method>", its slash escaped or not; matched in lower case (a reader
# that ignores the case of member names)
_MCP_METHOD_VALUE = re.compile(
    rb'"method"[ \t\r\n]*:[ \t\r\n]*"(?:'
    + b"|".join(re.escape(p.encode()).replace(b"/", rb"\\?/") for p in MCP_METHOD_PREFIXES)
    + rb")"
)


def names_mcp_method(data: bytes | bytearray) -> bool:
    """Whether a body or message in which ``may_name_jsonrpc`` finds nothing (no \\u escape
    either) names an MCP method as a receiver reads it: the Java SDK runs one without any
    jsonrpc member. JSON of another kind that names a method (an access log's "GET", the
    Chrome DevTools Protocol's "Page.navigate") does not."""
    low = data.lower()
    return b'"method"' in low and _MCP_METHOD_VALUE.search(low) is not None


# The same as lenient parsers read a body: Gson (``Gson.fromJson`` reads leniently unless
# told otherwise) and Json.NET (Newtonsoft's defaults), JSON5, kotlinx's ``isLenient``:
# names and strings in single quotes (or names without any), ``=`` or ``=>`` for ``:``,
# comments (``//``, ``/* */``, ``#``) between the tokens, and Gson's ``)]}'`` prefix before
# the document. ``method`` is matched as a whole word (``"http_method": "tools/x"`` is not it).
_GAP = rb"(?>[ \t\r\n]++|/\*.*?\*/|//[^\n]*+|#[^\n]*+)*+"  # (atomic: linear on any body)
_LENIENT_MCP_METHOD = re.compile(
    rb"(?<![a-z0-9_$])[\"'`]?method[\"'`]?"
    + _GAP
    + rb"(?:=>|[:=])"
    + _GAP
    + rb"[\"'`]?(?:"
    + b"|".join(re.escape(p.encode()).replace(b"/", rb"\\?/") for p in MCP_METHOD_PREFIXES)
    + rb")",
    re.S,
)
_U_ESCAPE = re.compile(rb"\\u([0-9a-f]{4})")
# what such a parser takes for a document's start: an object or array after whitespace and
# comments, and Gson's ")]}'" prefix (text that only mentions a method stays text)
_LENIENT_START = re.compile(rb"(?:\xef\xbb\xbf)?+[ \t\r\n]*+(?:\)\]\}')?+" + _GAP + rb"[{\[]", re.S)


def lenient_opens_document(data: bytes | bytearray) -> bool:
    """Whether ``data`` starts an object or an array as a lenient parser reads a document
    (whitespace, comments and Gson's ``)]}'`` prefix before it)."""
    return _LENIENT_START.match(data) is not None


def lenient_names_mcp_method(data: bytes | bytearray) -> bool:
    """Whether a body that is no JSON to the gateway (single quotes, names without quotes,
    comments, a ``)]}'`` prefix) but opens an object or array to a lenient JSON parser names
    an MCP method (in quotes or not: ``{method: initialize}``) as such a parser reads it: a
    server on Gson or Json.NET runs ``{method: 'tools/call', params: {name: 'delete_repo'}}``,
    which passed a reverse gateway under ``auth.required`` unauthenticated, unscanned and
    unaudited. Matched in lower case, with ``\\u`` escapes decoded (both parsers read them
    in names and strings alike)."""
    if not _LENIENT_START.match(data):
        return False  # (first, on the bytes as they are: any upload comes here)
    low = bytes(data).lower()
    if b"method" not in low and b"\\u" not in low:
        return False
    if b"\\u" in low:
        low = _U_ESCAPE.sub(
            lambda m: chr(int(m.group(1), 16)).encode("utf-8", "replace"), low
        ).lower()
    return _LENIENT_MCP_METHOD.search(low) is not None


_WALK_FIRST = 256  # containers walked before the bracket count is consulted
_COUNT_MAX = 8192  # bodies up to this size are walked with a small budget only
_WALK_SMALL = 16


def _brackets_ok(body: bytes | str) -> bool:
    """Cheap gate: a body with at most MAX_DEPTH brackets cannot nest deeper (two C passes)."""
    raw = body.encode() if isinstance(body, str) else body
    return raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH


_CONTAINERS = (dict, list)  # (a tuple: ``dict | list`` builds a union at every call)


def _depth_over(value: Any, limit: int = MAX_DEPTH, budget: int | None = None) -> bool | None:
    """Whether a decoded value nests deeper than ``limit`` (the outermost container is level
    1): a walk over its containers only, so a large text costs nothing and a large JSON
    document one step per object or array, never one per byte. With a ``budget``, None once
    more containers than that were visited without an answer."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    if budget is not None:
        budget -= 1  # (the outermost container)
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if budget is not None:
            # (containers counted as they are met, not as they are visited: one list of 5
            # million empty lists was iterated whole before the budget was looked at again)
            for c in node.values() if isinstance(node, dict) else node:
                if isinstance(c, _CONTAINERS):
                    if depth + 1 > limit:
                        return True
                    budget -= 1
                    if budget < 0:
                        return None
                    stack.append((c, depth + 1))
            continue
        for c in node.values() if isinstance(node, dict) else node:
            if isinstance(c, _CONTAINERS):
                stack.append((c, depth + 1))
    return False


def _decode_leniently(body: bytes | str, error: str, lenient_utf8: bool) -> Any:
    """The second try of decode_json, after orjson refused ``body`` with ``error``."""
    low = error.lower()
    if "recursion" in low or "depth" in low:
        raise TooDeep() from None
    text = body
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            if not lenient_utf8:
                raise ParseError(
                    ErrorCode.PARSE_ERROR, "Parse error: body is not valid UTF-8"
                ) from None
            text = bytes(body).decode("utf-8-sig", "replace")
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    except ValueError:
        raise ParseError(ErrorCode.PARSE_ERROR, f"Parse error: {error}") from None


def encode_json(value: Any) -> bytes:
    """orjson.dumps, or for what orjson refuses (lone surrogates, integers beyond 64 bits:
    values only the standard library's parser produces) the standard library, ASCII-only."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# 19 digits in a row. Python's regex engine takes ~25 us a KiB to look for them; a
# translation and a substring search in C ~0.7 us (0.5 ms for a 750 KB tool result, a fifth
# of the gateway's work on it); Hyperscan ~0.07 us.
_DIGITS_TO_0 = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 19
_BIG_INT_STR = re.compile(r"[0-9]{19}")
_HS_MIN = 2048  # smaller bodies: the translation costs less than a Hyperscan call


class _DigitRun:
    """A Hyperscan database for one pattern, a run of 19 digits; a scratch per thread."""

    def __init__(self) -> None:
        import threading

        import hyperscan

        self.hs = hyperscan
        self.db = hyperscan.Database()
        self.db.compile(expressions=[rb"[0-9]{19}"], ids=[1], flags=[hyperscan.HS_FLAG_SINGLEMATCH])
        self.local = threading.local()

    def search(self, data: bytes) -> bool:
        sc = getattr(self.local, "scratch", None)
        if sc is None:
            sc = self.local.scratch = self.hs.Scratch(self.db)
        found: list[int] = []
        try:
            self.db.scan(data, match_event_handler=_stop_at_first, context=found, scratch=sc)
        except self.hs.ScanTerminated:  # (raised when the callback stops the scan: a match)
            return True
        return bool(found)


def _stop_at_first(_id: int, _frm: int, to: int, _flags: int, found: list) -> int:
    found.append(to)
    return 1  # (non-zero: stop scanning)


_digit_run: _DigitRun | None | bool = None  # built on first use; False: unavailable


def _has_big_int(body: bytes | str | bytearray | memoryview) -> bool:
    """Whether a body may hold an integer beyond 64 bits (a run of 19 digits anywhere)."""
    global _digit_run
    if isinstance(body, str):
        return _BIG_INT_STR.search(body) is not None
    data = bytes(body)
    if len(data) >= _HS_MIN:
        if _digit_run is None:
            try:
                _digit_run = _DigitRun()
            except Exception:  # noqa: BLE001 - no Hyperscan: the translation below
                _digit_run = False
        if _digit_run:
            try:
                return _digit_run.search(data)
            except Exception:  # noqa: BLE001 - (a scratch in use: a re-entrant call)
                pass
    return data.translate(_DIGITS_TO_0).find(_RUN) >= 0


# A string, and the strings after it with no opening bracket between them (one match for
# a run of them: a match per string cost 0.8 s on 16 MB of ""). A string left open runs to
# the end: without that, each escaped quote after the last unescaped one started a match
# that scanned to the end and failed, quadratic in them (280 KB: 10 s).
_STR = rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)'
_JSON_STRING = re.compile(_STR + rb'(?:[^"\[{]*+' + _STR + rb")*+", re.S)


def _check_containers(body: bytes | bytearray, limit: int) -> None:
    """TooManyContainers before any parsing when the body holds more objects and arrays
    than ``limit`` (brackets outside strings, counted in C): building 5 million empty
    lists took orjson 0.5 s and walking them for the depth check 3 s more."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    bare = _JSON_STRING.sub(b"", body)
    if bare.count(b"[") + bare.count(b"{") > limit:
        raise TooManyContainers(limit)


def decode_json(body: bytes | str, lenient_utf8: bool = False) -> Any:
    """orjson.loads with the gateway's errors: invalid UTF-8, bad JSON, too deep.

    The gateway must never parse less than the receiver does: what orjson refuses but
    common JSON parsers accept is read with the standard library instead. That is lone
    surrogate escapes (``"\\ud83d"``, which JavaScript writes for a string cut in the middle
    of an emoji), NaN and Infinity, and a byte order mark. With ``lenient_utf8`` (server
    answers, which JavaScript clients decode with replacement characters), invalid UTF-8 is
    read the same way instead of being refused. A server's answer (``lenient_utf8``) may
    also hold more objects and arrays (MAX_ANSWER_CONTAINERS) than a request."""
    limit = MAX_ANSWER_CONTAINERS if lenient_utf8 else MAX_CONTAINERS
    if isinstance(body, bytes | bytearray) and len(body) > limit:
        _check_containers(body, limit)
    try:
        value = orjson.loads(body)  # orjson itself refuses nesting deeper than 1024
    except orjson.JSONDecodeError as e:
        value = _decode_leniently(body, str(e), lenient_utf8)
    else:
        if _has_big_int(body):
            # orjson reads an integer beyond 64 bits as a float: a redaction elsewhere in
            # the message would send 1.8446744073709552e+19 for 18446744073709551616
            value = _decode_leniently(body, "integer beyond 64 bits", lenient_utf8)
    if isinstance(value, dict | list):
        # Two ways to know: count the brackets (two C passes: ~1-2.5 us per 1 KiB message,
        # ~0.15 ms per 256 KiB) and walk the containers only when there are too many; or walk
        # the containers first (most messages have a handful: a progress notification two).
        # Every body is walked first, a small one with a small budget, and counted only when
        # the walk runs out of it.
        budget = _WALK_FIRST if len(body) > _COUNT_MAX else _WALK_SMALL
        deep = _depth_over(value, budget=budget)
        if deep is None and not _brackets_ok(body):
            deep = _depth_over(value, budget=limit)
            if deep is None:
                raise TooManyContainers(limit)
        if deep:
            raise TooDeep()
    return value


# an escaped colon: ``\\u003a`` after an even number of backslashes (none, or escaped ones)
_COLON_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u003[aA]")


def repeats_members(raw: bytes | bytearray, value: Any) -> bool:
    """Whether the JSON text ``raw``, which parsed to ``value``, may name a member twice in
    one object (``{"text": "ghp_…", "text": "safe"}``). The parser kept the last copy, as
    Python's ``json``, pydantic, ``JSON.parse`` and Go read it, and the scanner may have read
    only what was kept; readers that take the first copy (gjson, simdjson, a log of the
    bytes) read the other. Told in C, without a second parse: bytes equal to ``value``
    serialized again name each member once (the SDKs' serializers write what orjson writes;
    ~10 us for 256 KiB); else each member has one colon outside strings, and the strings
    hold the same colons in ``value``'s serialization as in ``raw`` (``\\u003a`` counted
    as one, not ``\\\\u003a``), so ``raw`` holds more only when members were dropped."""
    if not isinstance(value, dict | list):
        return False
    canonical = encode_json(value)
    if canonical == raw:
        return False
    n, c = raw.count(b":"), canonical.count(b":")
    if n > c:
        return True
    if b"\\u003" not in raw:
        return False
    if n + raw.count(b"\\u003a") + raw.count(b"\\u003A") <= c:
        return False
    # (counted again, only the escapes: ``\\\\u003a`` is a backslash and the text u003a, and
    # re-serialized as if it hid a member, a message went on with other bytes than it came)
    return n + len(_COLON_ESCAPE.findall(raw)) > c


@dataclass(slots=True)
class Parsed:
    """A body split into messages. ``batch`` is True when the body was a JSON array."""

    messages: list[Message]
    batch: bool


def build_messages(
    value: Any,
    size: int,
    direction: Direction,
    ex: Exchange,
    raw: bytes | None = None,
    max_batch: int = MAX_BATCH,
) -> Parsed:
    """Turn a decoded JSON value (object or batch array) into Messages. ``raw`` are the
    bytes ``value`` was decoded from; a single message keeps them (``Message.raw``).
    A batch of more than ``max_batch`` elements raises :class:`TooManyElements`."""
    if isinstance(value, list):
        if not value:
            raise ParseError(ErrorCode.INVALID_REQUEST, "Invalid Request: empty batch")
        if len(value) > max_batch:
            raise TooManyElements(len(value), max_batch)
        per = max(1, size // len(value))
        msgs = [_one(v, per, direction, ex, i) for i, v in enumerate(value)]
        if raw is not None and repeats_members(raw, value):
            # (its elements are scanned as parsed, not as the bytes: see repeats_members)
            for m in msgs:
                m.modified = True  # sent as parsed, each member once
        return Parsed(msgs, True)
    msg = _one(value, size, direction, ex, None)
    msg.raw = raw
    return Parsed([msg], False)


# Members the gateway decides on, per level of a message. JSON-RPC member names are
# case-sensitive, but Go's encoding/json (mcp-go, the Go SDK before 1.3.1, GHSA-wvj2-96wp-fq3f)
# and .NET's web defaults match them ignoring case, and Go also reads "ſ" (U+017F) as "s" and
# "K" (U+212A) as "k": {"name": "echo", "Name": "delete_all"} calls delete_all there.
_ENVELOPE_KEYS = ("jsonrpc", "id", "method", "params", "result", "error")
_PARAMS_KEYS = (
    "name", "uri", "arguments", "_meta", "ref", "argument", "requestId", "protocolVersion", "cursor"
)  # fmt: skip
_REF_KEYS = ("type", "name", "uri")
_META_KEYS = ("progressToken",)


def _fold(k: str) -> str:
    """A member name as Go's encoding/json compares it (str.lower maps U+212A to k)."""
    f = k.lower()
    return f.replace("\u017f", "s") if "\u017f" in f else f


def _level(keys: tuple[str, ...]) -> tuple[frozenset[str], dict[str, str], frozenset[int]]:
    # (the folds keep a name's length: only names of a protocol member's length can match)
    return frozenset(keys), {k.lower(): k for k in keys}, frozenset(len(k) for k in keys)


_LEVELS = {
    "": _level(_ENVELOPE_KEYS),
    "params": _level(_PARAMS_KEYS),
    "ref": _level(_REF_KEYS),
    "_meta": _level(_META_KEYS),
}


def _variant(obj: dict, level: str) -> tuple[str, str] | None:
    """The first member of ``obj`` that is not one of the level's protocol members but
    differs from one only in case (as Go folds it), with that member's name."""
    exact, folded, lengths = _LEVELS[level]
    for k in obj:
        if k in exact or len(k) not in lengths or not isinstance(k, str):
            continue
        canon = folded.get(_fold(k))
        if canon is not None:
            return k, canon
    return None


def case_variant(obj: Any) -> tuple[str, str] | None:
    """(member, the protocol member it stands for) when a message holds a member that a
    case-insensitive reader takes for a JSON-RPC or MCP member (``Method``, ``NAME``,
    ``paramſ``); None for the messages every client sends."""
    if not isinstance(obj, dict):
        return None
    hit = _variant(obj, "")
    if hit is not None:
        return hit
    params = obj.get("params")
    if isinstance(params, dict):
        hit = _variant(params, "params")
        if hit is not None:
            return hit
        for level in ("ref", "_meta"):
            inner = params.get(level)
            if isinstance(inner, dict):
                hit = _variant(inner, level)
                if hit is not None:
                    return hit
    return None


def _as_read_ignoring_case(obj: dict) -> dict:
    """``obj`` as a case-insensitive reader takes it: each protocol member from the last
    member that folds to it (Go's encoding/json assigns every match, in order)."""
    out: dict = {}
    folded = _LEVELS[""][1]
    for k, v in obj.items():
        canon = folded.get(_fold(k)) if isinstance(k, str) else None
        out[canon or k] = v
    params = out.get("params")
    if isinstance(params, dict):
        folded = _LEVELS["params"][1]
        out["params"] = {
            (folded.get(_fold(k)) or k) if isinstance(k, str) else k: v for k, v in params.items()
        }
    return out


def _one(obj: Any, size: int, direction: Direction, ex: Exchange, index: int | None) -> Message:
    variant = case_variant(obj)
    if variant is not None:
        return _case_variant_message(obj, variant, size, direction, ex, index)
    return _read_one(obj, size, direction, ex, index)


def _read_one(
    obj: Any, size: int, direction: Direction, ex: Exchange, index: int | None
) -> Message:
    kind = classify(obj)
    msg = Message(
        payload=obj, direction=direction, kind=kind, exchange=ex, size=size, batch_index=index
    )
    if kind is Kind.INVALID:
        if isinstance(obj, dict):
            i = obj.get("id")
            msg.id = i if _valid_id(i) else None
        return msg
    if kind is not Kind.NOTIFICATION:
        msg.id = obj.get("id")
    if kind in (Kind.REQUEST, Kind.NOTIFICATION):
        msg.method = obj["method"]
        msg.name = target_name(msg.method, obj.get("params"))
    return msg


def _case_variant_message(
    obj: dict,
    variant: tuple[str, str],
    size: int,
    direction: Direction,
    ex: Exchange,
    index: int | None,
) -> Message:
    """A message with a member that differs from a protocol member only in case: read as a
    case-insensitive receiver reads it (its kind, method, name and id), and refused, since
    the gateway and such a receiver would act on different messages. Its payload stays as
    it came: every string in it is still scanned."""
    msg = _read_one(_as_read_ignoring_case(obj), size, direction, ex, index)
    msg.payload = obj
    key, canon = variant
    msg.block(
        ErrorCode.INVALID_REQUEST,
        f"Invalid Request: member {key[:40]!r} differs from {canon!r} only in case; "
        "JSON-RPC member names are case-sensitive",
        http_status=400,
        stage="parse",
    )
    return msg


def parse_body(body: bytes, direction: Direction, ex: Exchange) -> Parsed:
    return build_messages(decode_json(body), len(body), direction, ex)


def is_mcp_payload(value: Any, bare: bool = True) -> bool:
    """Does a decoded body look like MCP JSON-RPC (by content, not by path)? Without
    ``bare``, a message without ``"jsonrpc": "2.0"`` counts only with a method that has a
    slash (see ``marks_mcp``)."""
    items = value if isinstance(value, list) else (value,)
    for obj in items:
        if case_variant(obj) is not None:
            obj = _as_read_ignoring_case(obj)
        k = classify(obj)
        if (
            k in (Kind.REQUEST, Kind.NOTIFICATION)
            and is_mcp_method(obj["method"])
            and (bare or obj.get("jsonrpc") == "2.0" or "/" in obj["method"])
        ):
            return True
    return False


def marks_mcp(obj: Any, bare: bool) -> bool:
    """Whether one decoded message makes a channel not (yet) known to speak MCP (a
    WebSocket, an event stream) one: any JSON-RPC 2.0 message, or one naming an MCP method
    without ``"jsonrpc": "2.0"`` (the Java SDK runs it, see ``classify``). Not an answer
    without it: ``{"id": 1, "result": …}`` is also how the Chrome DevTools Protocol and
    other WebSocket APIs answer, and such an answer holding a ``\\u`` escape made their
    connection an MCP one (refused under ``auth.required``, scanned and redacted). Nor,
    unless ``bare``, a bare ``ping`` or ``initialize`` without it: JSON-RPC 1.0 services
    name their methods so (bitcoind's ``ping``); a message naming them does nothing that
    the gateway must see before a channel is known (a session it opens is bound on first
    use, and every later request carries its header)."""
    if not isinstance(obj, dict):
        return False
    if case_variant(obj) is not None:
        obj = _as_read_ignoring_case(obj)
    k = classify(obj)
    if k is Kind.INVALID:
        return False
    if obj.get("jsonrpc") == "2.0":
        return True
    return k in (Kind.REQUEST, Kind.NOTIFICATION) and (bare or "/" in obj["method"])


# -- headers -------------------------------------------------------------------------

_B64_HEADER = re.compile(r"=\?base64\?(.*)\?=")
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
MCP_PARAM_PREFIX = "mcp-param-"


def decode_header_value(v: str) -> str | None:
    """2026-07-28 header values: ``=?base64?...?=`` holds UTF-8 in canonical base64, anything
    else is the value itself. None for a malformed sentinel, which matches no body value
    (read exactly as the MCP SDKs read it, so the gateway never accepts what the server
    would refuse)."""
    m = _B64_HEADER.fullmatch(v)
    if not m:
        return v
    payload = m.group(1)
    try:
        raw = base64.b64decode(payload, validate=True)
        if base64.b64encode(raw).decode("ascii") != payload:
            return None  # not canonical: the encoder never writes it
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def encode_header_value(v: str) -> str:
    """The inverse: printable ASCII without edge whitespace as is, anything else base64
    (so is a value that starts like the sentinel, which would otherwise be decoded)."""
    if _HEADER_SAFE.fullmatch(v) and v == v.strip(" \t") and not v.startswith("=?"):
        return v
    return "=?base64?" + base64.b64encode(v.encode("utf-8")).decode("ascii") + "?="


def render_header_scalar(value: Any) -> str | None:
    """How a client mirrors an argument into an ``Mcp-Param-*`` header (None: it does not)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def check_mirrored_headers(ex: Exchange, msgs: list[Message]) -> str | None:
    """2026-07-28: ``Mcp-Method``/``Mcp-Name`` must match the body. Returns the problem or None.

    Policy is always decided from the body; a request whose headers disagree with it is refused
    (400, -32020) so that no intermediary further along is misled by them. ``Mcp-Name`` belongs
    to tools/call, prompts/get and resources/read only; on other methods it is ignored, as the
    servers ignore it.
    """
    hm = ex.header("mcp-method")
    hn = ex.header("mcp-name")
    modern = (ex.protocol_version or "") in MODERN_VERSIONS
    if hm is None and hn is None and not modern:
        return None
    reqs = [m for m in msgs if m.kind in (Kind.REQUEST, Kind.NOTIFICATION)]
    if len(msgs) != 1 or len(reqs) != 1:
        if hm is not None or hn is not None:
            return "Mcp-Method/Mcp-Name headers require a body with exactly one request or notification"
        return None
    msg = reqs[0]
    if hm is None:
        return f"missing Mcp-Method header (body method {msg.method!r})" if modern else None
    method = decode_header_value(hm)
    if method != msg.method:
        # (the header's value is not quoted: the refusal is audited, and the value may be
        # anything, a credential included)
        return f"Mcp-Method header does not match body method {msg.method!r}"
    if msg.method not in NAME_BEARING:
        return None
    if hn is not None:
        name = decode_header_value(hn)
        if name != (msg.name or ""):
            # neither value is repeated: a name or URI may carry a credential, and this text
            # goes to the client and into the audit trail
            where = "uri" if NAME_BEARING[msg.method] == "uri" else "name"
            return f"Mcp-Name header does not match body name (params.{where} of {msg.method})"
    elif modern:
        return f"missing Mcp-Name header for {msg.method}"
    return None


class AmbiguousSession(ValueError):
    """A legacy URL that names more than one session."""


# (Go's ``Query().Get`` is case-sensitive: the Go SDK reads ``sessionid`` only. Unknown to
# the gateway, its sessions went uncorrelated: a refused request was answered in the POST,
# whose body a legacy client never reads, and the client waited for ever.)
_LEGACY_SESSION_KEYS = frozenset(("session_id", "sessionId", "sessionid"))


def legacy_session_from_url(url: str) -> str | None:
    """``/messages/?session_id=...`` (Python SDK), ``/message?sessionId=...`` (TS SDK) or
    ``/sse?sessionid=...`` (the official Go SDK, as in ``mcp-grafana``), in one spelling per session: the Python SDK reads the id as a UUID (``UUID(hex=…)``:
    upper case, dashes, braces and a ``urn:uuid:`` prefix all name the same session), so
    such an id is reduced to its 32 hex digits, or session binding could be passed by
    spelling another client's session differently. AmbiguousSession when the URL gives
    several different ids (servers disagree on which one counts: the first, the last)."""
    try:
        q = parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return None
    # (Express's query parser reads sessionId[]=… and sessionId[0]=… as sessionId, and the
    # TypeScript SDK's examples look the session up with it)
    values = {
        _canonical_session(v)
        for key, vs in q.items()
        if key.partition("[")[0] in _LEGACY_SESSION_KEYS
        for v in vs
    }
    if len(values) > 1:
        raise AmbiguousSession("the URL names more than one session")
    return values.pop() if values else None


def _canonical_session(v: str) -> str:
    try:
        return uuid.UUID(hex=v).hex
    except ValueError:
        return v
