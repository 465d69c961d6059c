"""The audit database schema (version 1), created with sqlite-utils.

Chained tables (every row carries ``seq``, ``prev_hash`` and ``hash``; one sequence runs
across all three, see :mod:`.chain`):

- ``messages``: one row per JSON-RPC message (plus one row per MCP HTTP exchange that
  carried no JSON-RPC message, e.g. a refused GET stream or a DELETE).
- ``findings``: one row per detection, pointing at its message by ``message_seq``; only the
  masked value is stored, never the raw secret.
- ``audit_events``: the gateway's own events: ``start``, ``stop``, ``dropped`` (events lost
  because the queue was full, ``mcp_audit_on_full=drop``) and ``refused`` (messages refused
  because they could not be recorded, ``mcp_audit_on_full=block``).

Derived tables (summaries kept by the writer in the same transaction; not chained, they
can be recomputed from ``messages``): ``sessions`` and ``usage`` (hourly buckets with a
latency histogram, so that ``usage`` and ``stats`` stay fast on large databases).

``meta`` holds the schema version and the chain head.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 1

# The default database lives next to mitmproxy's own state (CA certificates), not in the
# current directory: an audit trail must not split into one file per working directory, and
# `mcp-gateway audit ...` finds it from anywhere. MCP_GATEWAY_AUDIT_DB overrides the default
# for both the addon and the CLI (handy for tests and containers).
DEFAULT_DB = "~/.mitmproxy/mcp-gateway-audit.db"


def default_db() -> str:
    return os.environ.get("MCP_GATEWAY_AUDIT_DB") or DEFAULT_DB


GENESIS_HASH = "0" * 64

# Column order matters: it is the canonical order used for hashing.  The type decides the
# SQLite column affinity *and* the coercion applied before hashing, so that a value reads
# back exactly as it was hashed (an int written into a REAL column would come back as a
# float and no longer hash the same).
MESSAGE_COLUMNS: dict[str, type] = {
    "time": float,  # unix epoch seconds (UTC)
    "flow_id": str,  # mitmproxy flow.id: open the exact bytes in a `-w flows.mitm` capture
    "direction": str,  # c2s | s2c
    "transport": str,  # http | sse | legacy-sse | websocket
    "server": str,
    "session_id": str,
    "client_addr": str,
    "consumer": str,
    "key_id": str,
    "identity_kind": str,
    "http_method": str,
    "kind": str,  # request | notification | result | error | invalid | exchange
    "method": str,
    "name": str,  # tool / prompt name or resource uri
    "rpc_id": str,
    "status": int,  # HTTP status, when known
    "latency_ms": float,
    "size": int,
    "action": str,  # the decision: pass | redact | block | drop
    "error": int,  # 1: JSON-RPC error response or a tool result with isError
    "error_code": int,  # JSON-RPC error code of an error response
    "refusal_code": int,
    "refusal_message": str,
    "refusal_stage": str,
    "faults": str,  # comma-separated stages that failed on the message (fail-open)
    "findings": int,  # number of rows in `findings` for this message
    "modified": int,
    "inspected": int,
    "batch_index": int,
    "sse_event_id": str,
    "payload": str,  # JSON, only with mcp_audit_store_payloads (after redaction)
}

FINDING_COLUMNS: dict[str, type] = {
    "message_seq": int,
    "time": float,
    "flow_id": str,
    "rule": str,
    "type": str,
    "severity": str,
    "action": str,
    "location": str,
    "start": int,
    "end": int,
    "masked": str,
}

EVENT_COLUMNS: dict[str, type] = {
    "time": float,
    "event": str,  # start | stop | dropped | refused | reopened | rewritten | foreign | lost
    "count": int,
    "detail": str,
}

CHAINED_TABLES: dict[str, dict[str, type]] = {
    "messages": MESSAGE_COLUMNS,
    "findings": FINDING_COLUMNS,
    "audit_events": EVENT_COLUMNS,
}

# Tables other mcp-gateway components keep in the same database file (not audit data, not
# chained): mcp_gateway.identity's API key store.
SIBLING_TABLES = {"api_keys", "sqlite_sequence", "sqlite_stat1"}

_SQL_TYPE = {float: "FLOAT", int: "INTEGER", str: "TEXT"}

# No index on flow_id, on purpose: mitmproxy's flow ids are random UUIDs, so such an index
# costs one random page write per message (measured: the writer sustains ~1.6x more events/s
# without it).  Going from a row to its bytes needs no index; going from a flow to its rows
# scans (~1M rows/s), or uses the time index when --since/--until narrow it.
# No index on session_id either, for the same reason: with many sessions open, every message
# lands on a different page of it (bench_audit with 50 sessions: ~25 % more events/s per
# writer CPU without it), and no CLI query uses it. A session's rows: the `sessions` table
# gives its first and last time, and the time index narrows the scan to them.
INDEXES: dict[str, list[list[str]]] = {
    "messages": [
        ["time"],
        ["server", "time"],
        ["consumer", "time"],
        ["name"],
        ["method"],
    ],
    "findings": [["message_seq"], ["rule"], ["type"]],
    "audit_events": [["event"]],
}

VIEWS = {
    # Human-friendly times for Datasette and ad-hoc sqlite3 queries.
    "messages_log": """
        SELECT seq, strftime('%Y-%m-%dT%H:%M:%fZ', time, 'unixepoch') AS utc, flow_id,
               direction, server, consumer, kind, method, name, rpc_id, status,
               latency_ms, size, action, error, refusal_code, refusal_message, findings
        FROM messages ORDER BY seq
    """,
    "blocked": """
        SELECT seq, strftime('%Y-%m-%dT%H:%M:%fZ', time, 'unixepoch') AS utc, flow_id,
               server, consumer, method, name, refusal_code, refusal_message, refusal_stage
        FROM messages WHERE action IN ('block', 'drop') ORDER BY seq
    """,
}


USAGE_KEY = ("hour", "consumer", "server", "method", "name")


class SchemaError(Exception):
    """The file is not an audit database this version can write or verify."""


def _convert(typ: type, v: Any) -> Any:
    try:
        v = typ(v)
    except (TypeError, ValueError, OverflowError):
        return None
    if typ is int and not -(2**63) <= v < 2**63:
        return None  # SQLite INTEGER is 64-bit
    if typ is float:
        v += 0.0  # no negative zero (see coerce_values)
    return v


def coerce_values(spec: tuple[tuple[str, type], ...], row: dict[str, Any]) -> list[Any]:
    """The values of ``row`` for the columns of ``spec`` (``tuple(COLUMNS.items())``), in
    order, each coerced to its column type (bool/int/enum -> int/float/str; junk -> None)."""
    get = row.get
    out: list[Any] = []
    app = out.append
    for col, typ in spec:
        v = get(col)
        if v is not None:
            if v.__class__ is not typ:
                v = _convert(typ, v)
            elif typ is float:
                v += 0.0  # -0.0 -> 0.0: SQLite stores it as integer 0, so it reads back 0.0
        app(v)
    return out


def coerce(columns: dict[str, type], row: dict[str, Any]) -> dict[str, Any]:
    """Return ``row`` restricted to ``columns``, each value coerced to its column type."""
    return dict(zip(columns, coerce_values(tuple(columns.items()), row), strict=True))


def create_private(path: str) -> None:
    """Create ``path`` empty, readable by its owner only, unless it exists (SQLite reads an
    empty file as a new database, and creates its -wal and -shm with the main file's mode).
    The trail holds session ids, who called which tool, findings and maybe payloads, and
    the same file may hold the API key table: under the usual umask 022 SQLite made it
    0644, readable by every local user. An existing file keeps the mode its owner chose."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def connect(path: str, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in autocommit mode; transactions are opened explicitly."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    return conn


def read_version(conn: sqlite3.Connection) -> int | None:
    """The schema version of an existing database; None for an empty (new) file.

    Raises SchemaError if the file holds tables but is not an audit database.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables:
        if tables <= SIBLING_TABLES:
            # Other gateway components keep their tables in the same file (the identity
            # addon's api_keys): no audit schema yet, so this is a new audit.
            return None
        raise SchemaError(
            "not an mcp-gateway audit database (it has tables but no `meta` table): "
            + ", ".join(sorted(tables)[:8])
        )
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        raise SchemaError("not an mcp-gateway audit database (no schema_version in `meta`)")
    try:
        return int(row[0])
    except ValueError:
        raise SchemaError(f"unreadable audit schema version {row[0]!r}") from None


def create(conn: sqlite3.Connection) -> None:
    """Create every table, index and view (idempotent). Caller holds a write transaction."""
    db = sqlite_utils.Database(conn)
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
    for table, cols in CHAINED_TABLES.items():
        spec: dict[str, Any] = {"seq": int}
        spec.update({c: _SQL_TYPE[t] for c, t in cols.items()})
        spec.update({"prev_hash": str, "hash": str})
        db[table].create(spec, pk="seq", not_null={"prev_hash", "hash"}, if_not_exists=True)
        for idx in INDEXES.get(table, []):
            db[table].create_index(idx, if_not_exists=True)
    db["sessions"].create(
        {
            "server": str,
            "session_id": str,
            "first_seen": float,
            "last_seen": float,
            "consumer": str,
            "client_addr": str,
            "protocol_version": str,
            "messages": int,
            "first_flow_id": str,
        },
        pk=("server", "session_id"),
        if_not_exists=True,
    )
    db["sessions"].create_index(["last_seen"], if_not_exists=True)
    db["usage"].create(
        {
            "hour": str,  # YYYY-MM-DDTHH (UTC)
            "consumer": str,
            "server": str,
            "method": str,
            "name": str,
            "calls": int,  # client requests
            "blocked": int,  # client requests the gateway refused
            "responses": int,
            "errors": int,  # error responses and tool results with isError
            "latency_count": int,
            "latency_sum": float,
            "latency_max": float,
        },
        pk=USAGE_KEY,
        if_not_exists=True,
    )
    db["usage"].create_index(["consumer", "hour"], if_not_exists=True)
    # latency histogram per usage row: bucket i covers [0.01 ms * 2**(i/8), ...) (see .hist)
    db["usage_latency"].create(
        {**{k: str for k in USAGE_KEY}, "bucket": int, "count": int},
        pk=(*USAGE_KEY, "bucket"),
        if_not_exists=True,
    )
    # Decisions other than "pass" are rare: a partial index finds them without taxing every
    # insert (the CLI adds the matching `action != 'pass'` term to its queries).
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_messages_decision ON messages(action, time) "
        "WHERE action != 'pass'"
    )
    for name, sql in VIEWS.items():
        db.create_view(name, sql, ignore=True)
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('hash_algorithm', 'sha256')")
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('created', strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
    )


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )
