"""Tamper evidence: one hash chain over every chained row, and the head file.

Every row of ``messages``, ``findings`` and ``audit_events`` has a ``seq`` taken from one
sequence shared by the three tables (1, 2, 3, ... without gaps; a message's findings follow
it), a ``prev_hash`` (the ``hash`` of row ``seq - 1``, or 64 zeros for row 1) and

    hash = sha256(prev_hash + canonical(table, seq, columns))

where ``canonical`` is the compact JSON array ``[table, seq, value, value, ...]`` of the
row's columns in schema order (``schema.CHAINED_TABLES``).  Verification walks the rows in
``seq`` order and recomputes every hash, so it is well defined across the three tables:

- a changed value                -> "content edited" at that row;
- a row replaced with a forged
  hash                           -> "broken link" at the next row;
- rows deleted in the middle     -> "gap in sequence";
- rows deleted at the end        -> detected against the head: the last ``seq``/``hash``,
  kept in ``meta`` (same transaction) and, out of reach of a plain SQL edit, in the head
  file ``<db>.head`` that the writer replaces atomically after every committed batch;
- rows appended at the end    -> the writer announces each batch in the head file before
  committing it (``pending``): rows after the head file's row other than the announced
  batch (a crash's leftover) were added by someone else.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import schema
from .schema import CHAINED_TABLES, GENESIS_HASH, SCHEMA_VERSION


def canonical(table: str, seq: int, values: list[Any]) -> bytes:
    return orjson.dumps([table, seq, *values])


def row_hash(prev_hash: str, table: str, seq: int, values: list[Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(table, seq, values)).hexdigest()


# -- head file --------------------------------------------------------------------------


def head_path(db_path: str) -> str:
    """``<db>.head`` next to the database file itself: through a symlink (the default path
    linked to another disk), SQLite keeps its -wal next to the target, and the head file
    belongs there too. Next to the link, the target's own head file went stale: verifying
    the file by its real path reported the rows written through the link as appended."""
    return os.path.realpath(db_path) + ".head"


def read_head(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    if not raw.strip():
        raise ValueError(f"{path}: not a head file (empty)")
    try:
        data = json.loads(raw)
    except ValueError as e:  # (JSONDecodeError, UnicodeDecodeError: once named no file)
        raise ValueError(f"{path}: not a head file (not JSON: {e})") from None
    if not isinstance(data, dict) or "seq" not in data or "hash" not in data:
        raise ValueError(
            f'{path}: not a head file (expected a JSON object {{"seq": N, "hash": …}})'
        )
    if isinstance(data["seq"], bool) or not isinstance(data["seq"], int):
        raise ValueError(f"{path}: not a head file (seq {data['seq']!r} is not a number)")
    if data["seq"] < 0:
        # (a hand-written seq -5 was "matched", and every row passed as written after it)
        raise ValueError(f"{path}: not a head file (seq {data['seq']} is negative)")
    if not isinstance(data["hash"], str):
        raise ValueError(f"{path}: not a head file (hash {data['hash']!r} is not a string)")
    p = data.get("pending")
    if p is not None and not (
        isinstance(p, list)
        and len(p) == 2
        and isinstance(p[0], int)
        and not isinstance(p[0], bool)
        and isinstance(p[1], str)
    ):
        raise ValueError(f"{path}: not a head file (pending {p!r} is not [seq, hash])")
    u = data.get("unwritten")
    if u is not None and not (
        isinstance(u, list) and len(u) == 2 and isinstance(u[0], int) and isinstance(u[1], str)
    ):
        raise ValueError(f"{path}: not a head file (unwritten {u!r} is not [count, time])")
    return data


def announced(head: dict, seq: int, hash_: str | None) -> bool | None:
    """Whether row ``seq`` (hash ``hash_``), after the head file's row, ends the batch the
    head file announced before its commit (see :meth:`HeadFile.announce`). None for a head
    file written before announcements (no ``pending`` key): rows after it cannot be told."""
    if "pending" not in head:
        return None
    p = head["pending"]
    return p is not None and p[0] == seq and p[1] == hash_


class HeadFile:
    """The head file, kept open by the writer and rewritten in place after each commit.

    One ``pwrite`` of a fixed-size record (JSON padded with spaces) at offset 0: a process
    kill cannot tear it, and it costs a fraction of a rename (which is what mattered at ten
    commits a second).  It never moves backwards: a record of a later row, from another
    gateway process sharing the database, is kept."""

    SIZE = 512

    def __init__(self, path: str, db_path: str) -> None:
        self.path = path
        self.db_path = os.path.abspath(db_path)
        self._fd: int | None = None
        # Set when the database no longer matches the head file (its end was rewritten):
        # the head file then stays as it is, so that later commits do not bless the forgery
        # and ``verify`` keeps reporting it.
        self.frozen = False

    def _file(self) -> int:
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:  # deleted meanwhile
            self.close()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def _current(self, fd: int) -> dict | None:
        try:
            current = json.loads(os.pread(fd, self.SIZE, 0) or b"null")
        except (ValueError, TypeError):
            return None
        return current if isinstance(current, dict) else None

    def _put(self, fd: int, record: dict) -> None:
        record = {
            **record,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "db": self.db_path,
            "schema_version": SCHEMA_VERSION,
        }
        data = json.dumps(record).encode()
        if len(data) >= self.SIZE:
            # a long path: records of different lengths would leave the end of a longer one
            # behind a shorter one (unreadable); the path is only informative, so it is cut
            over = len(data) - self.SIZE + 2
            record["db"] = "…" + self.db_path[over + 1 :]
            data = json.dumps(record).encode()
        os.pwrite(fd, data + b" " * (self.SIZE - 1 - len(data)) + b"\n", 0)

    def write(self, seq: int, hash_: str) -> None:
        """Row ``seq`` (hash ``hash_``) is committed: the head moves to it."""
        if self.frozen:
            return
        fd = self._file()
        current = self._current(fd)
        pending = None
        if current is not None:
            try:
                if int(current.get("seq", 0)) > seq:
                    return
                p = current.get("pending")
                if p and int(p[0]) > seq:
                    pending = [int(p[0]), str(p[1])]  # another gateway's batch on its way
            except (ValueError, TypeError, IndexError, KeyError):
                pass
        self._put(fd, {"seq": seq, "hash": hash_, "pending": pending})

    def announce(self, seq: int, hash_: str, committed: tuple[int, str]) -> None:
        """A batch ending at row ``seq`` (hash ``hash_``) is about to be committed, after
        ``committed`` (the last row committed before it). Written before the commit, so
        that a crash between the commit and :meth:`write` leaves these rows named: any
        other row after the head file's is someone else's (``verify`` reports it). Called
        inside the write transaction, so no other writer's batch is in flight."""
        if self.frozen:
            return
        fd = self._file()
        current = self._current(fd)
        head = {"seq": committed[0], "hash": committed[1]}
        try:
            if current is not None and int(current.get("seq", 0)) > committed[0]:
                head = {"seq": int(current["seq"]), "hash": str(current.get("hash"))}
        except (ValueError, TypeError):
            pass
        self._put(fd, {**head, "pending": [seq, hash_]})

    def note_unwritten(self, count: int) -> None:
        """A shutdown that could not write ``count`` events: kept in the head file (a later
        head update drops it) until the next start records it in the trail."""
        if self.frozen or (self._fd is None and not os.path.exists(self.path)):
            return  # (a head file found missing at start stays missing: see the writer)
        fd = self._file()
        current = self._current(fd)
        if current is None or "seq" not in current:
            return
        try:
            before = current.get("unwritten") or [0]
            count = max(count, int(before[0]))  # the proxy's count holds its writer's
        except (ValueError, TypeError, IndexError):
            pass
        record = {k: current.get(k) for k in ("seq", "hash", "pending")}
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._put(fd, {**record, "unwritten": [count, when]})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_head(path: str, seq: int, hash_: str, db_path: str) -> None:
    """Write the head file once (see :class:`HeadFile`)."""
    h = HeadFile(path, db_path)
    try:
        h.write(seq, hash_)
    finally:
        h.close()


def note_unwritten(path: str, db_path: str, count: int) -> None:
    """Record in the head file that ``count`` events were not written before a shutdown
    (see :meth:`HeadFile.note_unwritten`); never raises."""
    if count <= 0:
        return
    h = HeadFile(path, db_path)
    try:
        h.note_unwritten(count)
    except OSError:
        pass
    finally:
        h.close()


# -- verification -----------------------------------------------------------------------


@dataclass
class Problem:
    seq: int | None
    table: str | None
    what: str  # edited | broken-link | gap | duplicate | truncated | head-mismatch | schema
    detail: str

    def __str__(self) -> str:
        if self.seq is None:
            where = "database"
        else:  # (a row the head file names need not be in any table: "row seq 39 (None)")
            where = f"row seq {self.seq}" + (f" ({self.table})" if self.table else "")
        return f"{where}: {self.what}: {self.detail}"


@dataclass
class VerifyResult:
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    head: dict | None = None
    schema_version: int | None = None
    unsupported: bool = False  # schema too old/new to verify

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unsupported

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "counts": self.counts,
            "schema_version": self.schema_version,
            "head_file": self.head,
            "problems": [
                {"seq": p.seq, "table": p.table, "what": p.what, "detail": p.detail}
                for p in self.problems
            ],
            "first_problem": str(self.problems[0]) if self.problems else None,
            "warnings": self.warnings,
        }


def iter_chain(conn: sqlite3.Connection) -> Iterator[tuple[int, str, list[Any], str, str]]:
    """Yield (seq, table, values, prev_hash, hash) over the chained tables in seq order."""

    def rows(table: str, cols: dict) -> Iterator[tuple[int, str, list[Any], str, str]]:
        sql = (
            f"SELECT seq, {', '.join(f'[{c}]' for c in cols)}, prev_hash, hash "
            f"FROM [{table}] ORDER BY seq"
        )
        for r in conn.execute(sql):
            yield (r[0], table, list(r[1:-2]), r[-2], r[-1])

    cursors = [rows(t, c) for t, c in CHAINED_TABLES.items()]
    yield from heapq.merge(*cursors, key=lambda t: t[0])


_EVENT_INDEX = list(schema.EVENT_COLUMNS).index("event")


def _event_of(values: list[Any]) -> Any:
    return values[_EVENT_INDEX] if len(values) > _EVENT_INDEX else None


def _normal(sql: str | None) -> str:
    return " ".join((sql or "").split())


def _structure_problems(conn: sqlite3.Connection) -> list[Problem]:
    """What the chain does not cover but the CLI and Datasette read through: indexes that
    no longer match their table (rebuilt without some rows, their SQL then restored with
    ``PRAGMA writable_schema``: ``audit log --decision block`` or ``--consumer`` would skip
    those rows while every row still hashes), the views' definitions, and triggers (a
    gateway's database has none)."""
    out: list[Problem] = []
    bad = [r[0] for r in conn.execute("PRAGMA integrity_check(10)")]
    if bad != ["ok"]:
        out.append(
            Problem(
                None,
                None,
                "structure",
                "SQLite integrity check failed (an index no longer matches its table, so "
                "queries that use it show other rows than the chain holds): "
                + "; ".join(str(b) for b in bad[:5]),
            )
        )
    objs = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')"
    ).fetchall()
    for typ, name, sql in objs:
        if typ == "trigger":
            out.append(Problem(None, None, "structure", f"unexpected trigger {name!r}"))
        elif name in schema.VIEWS:
            body = _normal(sql).split(" AS ", 1)[-1]
            if body != _normal(schema.VIEWS[name]):
                out.append(
                    Problem(
                        None,
                        None,
                        "structure",
                        f"view {name!r} was redefined: {_normal(sql)[:200]}",
                    )
                )
    return out


def _edited_meta(why: str, head_file: str | None) -> str:
    return (
        f"{why}; but the head file {head_file} records audit schema version {SCHEMA_VERSION}, "
        "the one this mcp-gateway writes: the database's `meta` table was edited"
    )


def _column_problems(conn: sqlite3.Connection) -> list[Problem]:
    """The chained tables as the writer made them: a table or column dropped or renamed
    (the chain can no longer be read: once a bare "database error", exit 2, as if the file
    could not be checked), or a column added (its values are in no hash, yet `audit export`
    and Datasette show them with the row)."""
    out: list[Problem] = []
    for table, cols in CHAINED_TABLES.items():
        have = [r[1] for r in conn.execute(f"PRAGMA table_info([{table}])")]
        if not have:
            out.append(
                Problem(
                    None, table, "schema-edited", f"table {table!r} is missing (dropped or renamed)"
                )
            )
            continue
        want = ["seq", *cols, "prev_hash", "hash"]
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        if missing:
            out.append(
                Problem(
                    None,
                    table,
                    "schema-edited",
                    f"column(s) {', '.join(missing)} of table {table!r} are missing (dropped or "
                    "renamed)",
                )
            )
        if extra:
            out.append(
                Problem(
                    None,
                    table,
                    "structure",
                    f"column(s) {', '.join(repr(c) for c in extra[:5])} were added to table "
                    f"{table!r}: their values are in no hash, yet exports show them with the rows",
                )
            )
    return out


# events a writer chains when someone else changed the trail under it: the chain around
# them hashes correctly, so without these warnings `verify` said only "chain intact"
_INCIDENTS = {
    "foreign": "rows written by another process (another gateway on this database, or an "
    "append with correct hashes): verify cannot tell them from the gateway's own",
    "reopened": "the database file was deleted or replaced while the gateway ran: the rows "
    "before went with the old file",
    "rewritten": "the chain was edited while the gateway ran",
}


def _incidents(conn: sqlite3.Connection, res: VerifyResult) -> None:
    """A warning for each kind of incident the trail records (see ``_INCIDENTS``)."""
    try:
        found = conn.execute(
            "SELECT event, count(*), min(seq), max(seq), sum(coalesce(count, 0)) "
            "FROM audit_events WHERE event IN (?, ?, ?) GROUP BY event ORDER BY min(seq)",
            tuple(_INCIDENTS),
        ).fetchall()
    except sqlite3.Error:
        return  # (a missing or broken table is a problem reported already)
    for event, n, first, last, rows in found:
        where = f"seq {first}" if n == 1 else f"seq {first}..{last}"
        what = f"{n} `{event}` event(s) at {where}"
        if event == "foreign":
            what += f", naming {rows} row(s)"
        res.warnings.append(
            f"the trail records {what}: {_INCIDENTS[event]} "
            "(`mcp-gateway audit export --table audit_events` shows them)"
        )


def verify(
    conn: sqlite3.Connection,
    head_file: str | None,
    *,
    require_head: bool = True,
    max_problems: int = 50,
) -> VerifyResult:
    """Verify the chain in one read snapshot (safe while a gateway is writing).

    The head file is read first: the writer replaces it only after a commit, so every row it
    names is in the snapshot taken afterwards."""
    head: dict | None = None
    head_error: str | None = None
    if head_file is not None:
        try:
            head = read_head(head_file)
        except (ValueError, OSError) as e:
            head_error = f"unreadable head file: {e}"
    own_txn = not conn.in_transaction
    if own_txn:
        conn.execute("BEGIN")
    try:
        res = _verify(conn, head_file, head, head_error, require_head, max_problems)
        if head_file is not None and head is not None:
            _appended_by_a_writer(res, head_file, int(head["seq"]))
        _incidents(conn, res)
        return res
    finally:
        if own_txn and conn.in_transaction:
            conn.execute("ROLLBACK")


def _appended_by_a_writer(res: VerifyResult, head_file: str, hseq: int) -> None:
    """Rows after the row the head file named when it was read (a `stop`, or a row after
    which no batch was announced), but the head file has moved past it since, or now
    announces the snapshot's last row: a gateway (restarted, or another one on the
    database) committed them between that read and the snapshot. No append."""
    appended = [p for p in res.problems if p.what == "appended"]
    if not appended:
        return
    try:
        now = read_head(head_file)
    except (ValueError, OSError):
        return
    if now is None or not (
        int(now["seq"]) > hseq or announced(now, res.last_seq or 0, res.last_hash) is True
    ):
        return
    res.problems = [p for p in res.problems if p.what != "appended"]
    res.warnings.append(
        f"rows after the head file's seq {hseq} were committed by a gateway while verify ran "
        f"(the head file now records seq {now['seq']}); they chain correctly"
    )


def _verify(
    conn: sqlite3.Connection,
    head_file: str | None,
    head: dict | None,
    head_error: str | None,
    require_head: bool,
    max_problems: int,
) -> VerifyResult:
    res = VerifyResult()
    ours = head is not None and head.get("schema_version") == SCHEMA_VERSION
    try:
        version = schema.read_version(conn)
    except schema.SchemaError as e:
        if ours:
            # `meta` dropped, or its schema_version deleted or spoiled: the head file says
            # this release wrote the chain, so this is an edit, not a foreign file
            res.problems.append(
                Problem(None, None, "schema-edited", _edited_meta(str(e), head_file))
            )
            return res
        res.unsupported = True
        res.problems.append(Problem(None, None, "schema", str(e)))
        return res
    res.schema_version = version
    if version is None:
        if ours and int(head["seq"]) > 0:  # type: ignore[index]
            res.problems.append(
                Problem(
                    None,
                    None,
                    "schema-edited",
                    f"the database holds no audit tables, but the head file {head_file} records "
                    f"row {head['seq']} of an audit this mcp-gateway wrote: the audit tables "  # type: ignore[index]
                    "were dropped",
                )
            )
            return res
        res.unsupported = True
        res.problems.append(Problem(None, None, "schema", "empty database: no audit tables"))
        return res
    if version != SCHEMA_VERSION and ours:
        # The head file, out of reach of an SQL edit, says this release wrote the chain: a
        # database that now claims another schema had its `meta` edited (which would turn
        # "broken" into "cannot verify", exit 2, whatever else was changed).
        res.problems.append(
            Problem(
                None,
                None,
                "schema-edited",
                f"meta says audit schema version {version}, but the head file {head_file} "
                f"records version {SCHEMA_VERSION}, the one this mcp-gateway writes: the "
                "database's schema version was edited",
            )
        )
        return res
    if version != SCHEMA_VERSION:
        res.unsupported = True
        age = "an older" if version < SCHEMA_VERSION else "a newer"
        res.problems.append(
            Problem(
                None,
                None,
                "schema",
                f"this database uses audit schema version {version}, {age} schema than the "
                f"one this mcp-gateway verifies (version {SCHEMA_VERSION}); verify it with "
                f"the mcp-gateway release that wrote it",
            )
        )
        return res

    def problem(p: Problem) -> None:
        if len(res.problems) < max_problems:
            res.problems.append(p)

    prev_seq = 0
    prev_hash = GENESIS_HASH
    hashes_at: dict[int, str] = {}
    if head_error:
        problem(Problem(None, None, "head-file", head_error))
    columns = _column_problems(conn)
    for p in columns:
        problem(p)
    if any(p.what == "schema-edited" for p in columns):
        return res  # the chain cannot be read without its tables and columns
    for p in _structure_problems(conn):
        problem(p)
    res.head = head
    head_seq = int(head["seq"]) if head else None
    head_is_stop = False
    for seq, table, values, stored_prev, stored_hash in iter_chain(conn):
        res.rows += 1
        res.counts[table] = res.counts.get(table, 0) + 1
        if res.first_seq is None:
            res.first_seq = seq
        if seq == prev_seq:
            problem(Problem(seq, table, "duplicate", f"seq {seq} appears twice"))
        elif seq != prev_seq + 1:
            missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
            problem(
                Problem(
                    seq,
                    table,
                    "gap",
                    f"gap in sequence: row(s) {missing} missing before this row (deleted)",
                )
            )
        elif stored_prev != prev_hash:
            problem(
                Problem(
                    seq,
                    table,
                    "broken-link",
                    f"prev_hash {stored_prev[:16]}… does not match the hash of row "
                    f"{prev_seq} ({prev_hash[:16]}…): a row before it was replaced or rehashed",
                )
            )
        try:
            computed = row_hash(stored_prev or "", table, seq, values)
        except (TypeError, AttributeError, UnicodeEncodeError, orjson.JSONEncodeError):
            # a BLOB or another type the writer never stores (an edit): name the row, do
            # not die with a traceback (and no JSON for `verify --json`)
            computed = "(a value of a type the writer never stores)"
        if computed != stored_hash:
            problem(
                Problem(
                    seq,
                    table,
                    "edited",
                    f"content edited: stored hash {str(stored_hash)[:16]}…, content hashes to "
                    f"{computed[:16]}…",
                )
            )
        if seq == head_seq:
            hashes_at[seq] = stored_hash
            head_is_stop = table == "audit_events" and _event_of(values) == "stop"
        prev_seq, prev_hash = seq, stored_hash
    res.last_seq = prev_seq or None
    res.last_hash = prev_hash if prev_seq else None

    meta_seq = schema.get_meta(conn, "head_seq")
    meta_hash = schema.get_meta(conn, "head_hash")
    if prev_seq and (meta_seq is None or meta_hash is None):
        # every batch the writer commits sets both, in the same transaction as its rows
        problem(
            Problem(
                prev_seq,
                None,
                "head-mismatch",
                "meta holds no chain head (head_seq/head_hash deleted), though the chain has rows",
            )
        )
    if meta_seq is not None:
        try:
            meta_seq = int(meta_seq)
        except (TypeError, ValueError):
            problem(
                Problem(
                    prev_seq, None, "head-mismatch", f"meta head_seq {meta_seq!r} is not a number"
                )
            )
            meta_seq = prev_seq  # (reported; the hash below is still compared)
    if meta_seq is not None and int(meta_seq) != prev_seq:
        if int(meta_seq) > prev_seq:
            problem(
                Problem(
                    int(meta_seq),
                    None,
                    "truncated",
                    f"rows missing at the end: meta records head seq {meta_seq} but the last "
                    f"row is seq {prev_seq}",
                )
            )
        else:
            problem(Problem(prev_seq, None, "head-mismatch", f"meta head_seq is {meta_seq}"))
    elif meta_hash is not None and prev_seq and meta_hash != prev_hash:
        problem(Problem(prev_seq, None, "head-mismatch", "meta head_hash differs from last row"))

    if head is not None and head.get("unwritten"):
        n, when = head["unwritten"]
        res.warnings.append(
            f"the head file records {n} event(s) the gateway could not write before its "
            f"shutdown at {when} (database locked or disk full): they are missing from the "
            "trail (the next start records them as a `lost` event)"
        )
    if head is not None:
        hseq, hhash = int(head["seq"]), str(head["hash"])
        if hseq > prev_seq:
            problem(
                Problem(
                    hseq,
                    None,
                    "truncated",
                    f"rows missing at the end: the head file records seq {hseq} "
                    f"(hash {hhash[:16]}…) but the database ends at seq {prev_seq}",
                )
            )
        elif hseq == 0 and hhash != GENESIS_HASH:
            # the chain's start: only the genesis hash comes before row 1 (a hand-written
            # {"seq": 0, "hash": …} passed as "matches", every row as written after it)
            problem(
                Problem(
                    None,
                    None,
                    "head-mismatch",
                    f"the head file records seq 0 with hash {hhash[:16]}…, but seq 0 is the "
                    f"start of the chain, whose hash is {GENESIS_HASH[:16]}…",
                )
            )
        elif hseq in hashes_at and hashes_at[hseq] != hhash:
            problem(
                Problem(
                    hseq,
                    None,
                    "head-mismatch",
                    f"row hash {hashes_at[hseq][:16]}… differs from the head file's "
                    f"{hhash[:16]}…: the chain was rewritten",
                )
            )
        elif hseq < prev_seq and head_is_stop:
            # The head file's row is the `stop` event of a clean shutdown, written last and
            # recorded in the head file before the process ended: nothing that follows it
            # can be a crash's leftover batch. The chain has no key, so anyone with write
            # access to the database can append rows that chain correctly.
            problem(
                Problem(
                    hseq + 1,
                    None,
                    "appended",
                    f"{prev_seq - hseq} row(s) after the head file's seq {hseq}, which is the "
                    "`stop` event of a clean shutdown: they were added to the database after "
                    "the gateway stopped",
                )
            )
        elif hseq < prev_seq and announced(head, prev_seq, prev_hash) is False:
            # The writer announces every batch in the head file before committing it: rows
            # after the head file's that do not end where the announced batch ends are no
            # crash's leftover (after a `kill -9`, appended rows used to pass as one, with a
            # warning, and the next start adopted them).
            p = head.get("pending")
            problem(
                Problem(
                    hseq + 1,
                    None,
                    "appended",
                    f"{prev_seq - hseq} row(s) after the head file's seq {hseq}, which the "
                    "gateway did not announce before committing them ("
                    + (f"the batch it announced ends at seq {p[0]}" if p else "it announced none")
                    + "): they were added to the database by someone else (unless the "
                    "gateway could not update the head file: its log then says `cannot update "
                    "head file`)",
                )
            )
        elif hseq < prev_seq and "pending" not in head:
            # a head file in the format before batch announcements: an older release's (then
            # these are the batch a crash left), or one written by hand
            res.warnings.append(
                f"{prev_seq - hseq} row(s) after the head file's seq {hseq}: they chain "
                "correctly, but the head file is in the format of releases before batch "
                "announcements (no `pending` member: an older mcp-gateway's, or written by hand), "
                "so they cannot be told from rows appended while no gateway ran (a crash's last "
                "batch would look the same); the next start accepts them and says so in its "
                "`start` event"
            )
        elif hseq < prev_seq:
            res.warnings.append(
                f"{prev_seq - hseq} row(s) after the head file's seq {hseq}, the batch the "
                "gateway announced before committing it (committed after the last head "
                "update, e.g. before a crash); they chain correctly"
            )
    elif head_file is not None and not res.problems:
        msg = (
            f"head file {head_file} is missing: rows removed from the end of the database "
            "cannot be detected"
        )
        if require_head and prev_seq:
            problem(Problem(None, None, "head-missing", msg + " (use --no-head to skip)"))
        else:
            res.warnings.append(msg)
    return res
