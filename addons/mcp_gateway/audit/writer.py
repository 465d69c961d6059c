"""The background writer: a bounded queue in front of one SQLite connection.

The proxy's event loop only ever calls :meth:`AuditWriter.submit` (a non-blocking
``put_nowait``).  A daemon thread takes rows off the queue and commits them in batches
(every ``flush_interval`` seconds, or ``busy_interval`` while rows come in fast, or
``batch_rows`` rows, whichever comes first) in one ``BEGIN IMMEDIATE`` transaction per
batch: chained rows, findings, session and usage summaries and the chain head in ``meta``.
After the commit it replaces the head file.

The chain state (last seq and hash) is read inside each write transaction, so several
gateway processes may share one database file without breaking the chain.

Losses are never silent: a full queue increments a counter that the next batch records as a
chained ``dropped`` (or ``refused``) row in ``audit_events``; a failing commit (disk full,
database locked) is logged loudly on the "mcp_gateway" logger and retried with back-off,
while the queue fills and ``mcp_audit_on_full`` decides what happens to the traffic.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from . import chain, hist, schema
from .schema import (
    EVENT_COLUMNS,
    FINDING_COLUMNS,
    GENESIS_HASH,
    MESSAGE_COLUMNS,
    SCHEMA_VERSION,
)

log = logging.getLogger("mcp_gateway")

DEFAULT_QUEUE_SIZE = 50_000  # ~1 KiB a row: ~50 MiB at most, ~15 s of a 3000 events/s burst
_POLL = 0.05  # seconds between queue drains while a batch is being collected (each wake-up contends for the GIL with the proxy)
# Rows are linked and inserted _YIELD_ROWS at a time, with a short real sleep between the
# chunks. Releasing the GIL does not hand it over: the writer releases it around every
# SQLite step and takes it back at once, usually before the proxy's thread, woken, gets to
# run; that thread then waits for Python's switch interval (5 ms). A sleep gives it time to
# take the GIL, so a batch of thousands of rows holds it for one chunk at a time. (Costs
# ~20 % of the writer's capacity when saturated: bench_audit 20-26k -> 15-21k events/s,
# still several times what the proxy can carry.)
_YIELD_ROWS = 64
_YIELD_SLEEP = 0.0001
# A commit costs about as much as ~250 rows, whatever its size (the pages of the table and of
# its indexes go to the WAL once a commit): batches of 250 rows cost ~45 us a row, of 1000
# ~37 (in-process), and in a running gateway streaming 3000 events/s the proxy's CPU per
# event went from ~305 to ~270-290 us with bigger batches. So while rows arrive faster
# than _BUSY_ROWS per ``flush_interval``, the batch grows to _BUSY_BATCH rows or
# ``busy_interval`` seconds; a quiet proxy still has its rows committed within
# ``flush_interval``.
_BUSY_ROWS = 200
_BUSY_BATCH = 1000
_MSG_COLS = list(MESSAGE_COLUMNS)
_FIND_COLS = list(FINDING_COLUMNS)
_EVENT_COLS = list(EVENT_COLUMNS)
_MSG_SPEC = tuple(MESSAGE_COLUMNS.items())
_FIND_SPEC = tuple(FINDING_COLUMNS.items())
_EVENT_SPEC = tuple(EVENT_COLUMNS.items())
_I = {c: i for i, c in enumerate(_MSG_COLS)}
_I_TIME, _I_FLOW, _I_SERVER, _I_SESSION = _I["time"], _I["flow_id"], _I["server"], _I["session_id"]
_I_CONSUMER, _I_CLIENT, _I_KIND, _I_DIR = (
    _I["consumer"],
    _I["client_addr"],
    _I["kind"],
    _I["direction"],
)
_I_METHOD, _I_NAME, _I_ACTION, _I_ERROR = _I["method"], _I["name"], _I["action"], _I["error"]
_I_LATENCY = _I["latency_ms"]


class AuditError(Exception):
    """The audit database cannot be used (path, lock, corruption, schema)."""


class _Marker:
    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


PAYLOAD_BYTES_PER_ROW = 1024  # the queue holds at most queue_size KiB of stored payloads


def payload_size(item: Any) -> int:
    """The size of a row's stored payload (``mcp_audit_store_payloads``), the part of a row
    that has no bound of its own: up to ``mcp_max_message_bytes`` (16 MiB) each, where every
    other column is cut at 512 characters."""
    if type(item) is dict:
        p = item.get("payload")
        if type(p) is str:
            return len(p)
    return 0


class RowQueue:
    """The bounded hand-off between the proxy and the writer thread: a deque (an append or
    a pop is one atomic step under the GIL) instead of ``queue.Queue``, whose lock and
    condition cost ~4 us per row on both sides. Nobody blocks on it: the writer polls.
    Rows beyond ``maxsize`` are refused; markers (flush, close) are always taken.

    Stored payloads are bounded too, by ``maxbytes``: counted from the put until the writer
    has committed (or dropped) the row, so the batch being written or retried counts. A
    count of rows alone let 40 results of 5 MB, queued while the database was locked, take
    1.4 GB (proxy and writer process). A row with a payload larger than the whole budget is
    taken when no other payload is held."""

    __slots__ = ("_items", "maxsize", "maxbytes", "_in", "_out")

    def __init__(self, maxsize: int, maxbytes: int | None = None) -> None:
        self.maxsize = maxsize
        self.maxbytes = maxsize * PAYLOAD_BYTES_PER_ROW if maxbytes is None else maxbytes
        self._items: collections.deque = collections.deque()
        # payload bytes put (by the producer) and released (by the writer thread): each
        # counter has one writer, so no lock is needed
        self._in = 0
        self._out = 0

    def held(self) -> int:
        """Payload bytes queued or in the writer's uncommitted batch."""
        return self._in - self._out

    def room_for(self, n: int) -> bool:
        held = self._in - self._out
        return not n or held <= 0 or held + n <= self.maxbytes

    def put_nowait(self, row: Any) -> None:
        n = payload_size(row)
        if len(self._items) >= self.maxsize or not self.room_for(n):
            raise queue.Full
        self._in += n
        self._items.append(row)

    def put_marker(self, marker: Any) -> None:
        self._in += payload_size(marker)  # (a marker weighs nothing; a forced row does)
        self._items.append(marker)

    put_forced = put_marker  # past maxsize: a batch taken whole (see submit_many)

    def release(self, rows: list) -> None:
        """The writer thread is done with ``rows`` (committed, or dropped)."""
        self._out += sum(payload_size(r) for r in rows)

    def get_nowait(self) -> Any:
        try:
            return self._items.popleft()
        except IndexError:
            raise queue.Empty from None

    def qsize(self) -> int:
        return len(self._items)


def _sql_insert(table: str, cols: list[str]) -> str:
    allcols = ["seq", *cols, "prev_hash", "hash"]
    return (
        f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in allcols)}) "
        f"VALUES ({', '.join('?' for _ in allcols)})"
    )


_INSERT_MSG = _sql_insert("messages", _MSG_COLS)
_INSERT_FIND = _sql_insert("findings", _FIND_COLS)
_INSERT_EVENT = _sql_insert("audit_events", _EVENT_COLS)

_UPSERT_SESSION = """
INSERT INTO sessions (server, session_id, first_seen, last_seen, consumer, client_addr,
                      protocol_version, messages, first_flow_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(server, session_id) DO UPDATE SET
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen),
    consumer = coalesce(consumer, excluded.consumer),
    client_addr = coalesce(client_addr, excluded.client_addr),
    protocol_version = coalesce(excluded.protocol_version, protocol_version),
    messages = messages + excluded.messages
"""


def open_database(path: str, timeout: float = 2.0) -> sqlite3.Connection:
    """Open (creating if needed) the audit database and check that it can be written.

    Raises AuditError with a message fit for an OptionsError.
    """
    if os.path.isdir(path):
        raise AuditError(f"audit database {path!r} is a directory, not a file")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise AuditError(f"cannot create the directory of audit database {path!r}: {e}") from e
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise AuditError(f"audit database {path!r} is not writable")
    if not os.access(parent, os.W_OK):
        raise AuditError(
            f"directory {parent!r} of audit database is not writable "
            "(SQLite needs it for the WAL and the head file)"
        )
    try:
        schema.create_private(path)
    except OSError as e:
        raise AuditError(f"cannot create audit database {path!r}: {e}") from e
    try:
        conn = schema.connect(path, timeout=timeout)
    except sqlite3.Error as e:
        raise AuditError(f"cannot open audit database {path!r}: {e}") from e
    try:
        version = schema.read_version(conn)
        if version is not None and version != SCHEMA_VERSION:
            raise AuditError(
                f"audit database {path!r} uses schema version {version}; this mcp-gateway "
                f"writes version {SCHEMA_VERSION}. Point mcp_audit_db to a new file (keep the "
                "old one for the record)."
            )
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            mode = conn.execute("PRAGMA journal_mode=wal").fetchone()[0]
            if mode != "wal":
                raise AuditError(f"audit database {path!r}: cannot enable WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            schema.create(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except schema.SchemaError as e:
        conn.close()
        raise AuditError(f"audit database {path!r}: {e}") from e
    except AuditError:
        conn.close()
        raise
    except sqlite3.DatabaseError as e:
        conn.close()
        text = str(e)
        if "locked" in text or "busy" in text:
            raise AuditError(
                f"audit database {path!r} is locked by another process ({text}); "
                "stop it or choose another mcp_audit_db"
            ) from e
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            raise AuditError(
                f"audit database {path!r} is corrupt or not a SQLite file ({text}); move it "
                "away and start a new one"
            ) from e
        raise AuditError(f"audit database {path!r} cannot be written: {text}") from e
    return conn


def _meta_seq_ok(conn: sqlite3.Connection) -> bool:
    try:
        int(schema.get_meta(conn, "head_seq") or 0)
    except ValueError:
        return False
    return True


def _chain_tail(conn: sqlite3.Connection) -> tuple[int, str]:
    """The seq and hash the next row links to: meta's head, unless meta was spoiled by hand
    (not a number, or behind the last row: reusing a seq would fail every later commit);
    then the last row itself. The audit goes on either way; ``verify`` reports the edit."""
    last = (0, GENESIS_HASH)
    for t in schema.CHAINED_TABLES:
        r = conn.execute(f"SELECT seq, hash FROM [{t}] ORDER BY seq DESC LIMIT 1").fetchone()
        if r is not None and r[0] > last[0]:
            last = (r[0], r[1])
    try:
        seq = int(schema.get_meta(conn, "head_seq") or 0)
    except ValueError:
        return last
    if seq < last[0]:
        return last
    return seq, schema.get_meta(conn, "head_hash") or GENESIS_HASH


def _row_hash(conn: sqlite3.Connection, seq: int) -> str | None:
    """The hash of the chained row ``seq`` (None if no table has it)."""
    if seq == 0:
        return GENESIS_HASH
    for t in schema.CHAINED_TABLES:
        r = conn.execute(f"SELECT hash FROM [{t}] WHERE seq = ?", (seq,)).fetchone()
        if r is not None:
            return r[0]
    return None


class AuditWriter:
    """Owns the queue, the writer thread and its SQLite connection."""

    def __init__(
        self,
        path: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_interval: float = 0.1,
        busy_interval: float = 0.5,
        batch_rows: int = 5000,
        busy_timeout: float = 5.0,
        start_detail: dict | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.head_file = chain.head_path(path)
        self._head = chain.HeadFile(self.head_file, path)
        self.queue = RowQueue(max(1, queue_size))
        self.queue_size = self.queue.maxsize
        self._record_stop = True
        self.flush_interval = flush_interval
        self.busy_interval = max(busy_interval, flush_interval)
        self.batch_rows = batch_rows
        self.busy_timeout = busy_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._dropped = 0  # lost: queue full in drop mode (not yet recorded)
        self._refused = 0  # refused: queue full in block mode (not yet recorded)
        self._first_loss: float | None = None
        self._events: list[dict[str, Any]] = []  # audit_events rows waiting for a commit
        self._thread: threading.Thread | None = None
        self._stuck: threading.Thread | None = None  # a closed writer's thread still running
        self._conn: sqlite3.Connection | None = None
        self._ident: tuple[int, int] | None = None  # the database file's (device, inode)
        self._stopping = False
        self._idle = threading.Event()  # set by flush()/close(): wake an idle writer now
        self._abandon = False
        # stats, for tests and the benchmark
        self.committed = 0  # message rows committed
        self.batches = 0
        self.total_dropped = 0
        self.total_refused = 0
        self.failing = False
        self.last_error: str | None = None
        self._last_error_log = 0.0
        self._last_loss_log = -1e9
        self._unlogged = [0, 0]
        self._start_detail = start_detail or {}
        # (seq, hash) of the last row this writer committed: before each batch it must still
        # be there as it was. Someone who rewrote the database's chain while the gateway ran
        # (edited rows, hashed again, meta set to match) would otherwise have the next batch
        # chained onto the forgery and the head file moved forward to bless it.
        self._last: tuple[int, str] | None = None
        self._noted = 0  # the last seq already named in a `foreign` event (a retried batch)
        self._last_foreign_log = -1e9
        self._pending_rows = 0  # rows of the batch being committed (or retried)
        self._unlogged_foreign = 0

    # -- lifecycle (synchronous, called from configure/done) ---------------------------
    def open(self) -> None:
        self._conn = self._connect()
        detail = {"pid": os.getpid(), **self._start_detail}
        try:
            self._check_head(detail)
        except AuditError:
            self._conn.close()
            self._head.close()
            raise
        self._events.append(
            {"time": self.clock(), "event": "start", "count": None, "detail": _json(detail)}
        )
        self._thread = threading.Thread(target=self._run, name="mcp-gateway-audit", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        conn = open_database(self.path)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        # 32 MiB of page cache keeps the index pages hot between batches.
        conn.execute("PRAGMA cache_size = -32768")
        self._ident = _file_id(self.path)
        return conn

    def _follow_file(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """The database file deleted or replaced under the writer (``rm``, a restore):
        SQLite would go on writing into the old file, and every row from then on would be
        lost with it. Say so loudly and start a new database at the path, whose first rows
        record what happened."""
        if _file_id(self.path) == self._ident:
            return conn
        now = time.monotonic()
        if now - self._last_error_log > 10:
            log.error(
                "mcp-gateway audit: %s was deleted or replaced while the gateway ran; rows "
                "written before went with the old file; starting a new audit database there",
                self.path,
            )
            self._last_error_log = now
        # The old connection goes first: as the file's last one it takes its -wal and -shm
        # with it. Left next to a new file of the same name (``rm audit.db`` removes the main
        # file only), SQLite would read them as the new file's and fail every write with a
        # disk I/O error, or apply the old file's pages to it.
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        # (a head file frozen by an earlier try, when another file or a directory stood at
        # the path, stays frozen and in place: it is the old chain's end, the swap's evidence)
        replaced = self._head.frozen or (
            os.path.exists(self.path) and os.path.exists(self.head_file)
        )
        if not os.path.exists(self.path):
            for suffix in ("-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path + suffix)  # still another process's: orphans now
        try:
            self._head.close()
            if replaced:
                # Another file put in its place (a forged copy, or a restore): the head file
                # stays, recording the old chain's end, so that `verify` reports the swap
                # instead of blessing whatever chain the new file holds.
                self._head.frozen = True
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.head_file)  # the head of a chain that is no longer there
            new = self._connect()
        except (AuditError, sqlite3.Error, OSError) as e:
            self._fail(e)
            return conn  # (closed) retried with the next batch
        self._last = None  # another chain
        self._events.append(
            {
                "time": self.clock(),
                "event": "reopened",
                "count": None,
                "detail": (
                    "the database file was replaced by another while the gateway ran; the "
                    "head file keeps the old chain's end"
                    if replaced
                    else "the database file was deleted while the gateway ran"
                )
                + "; rows written before went with the old file",
            }
        )
        return new

    def _check_head(self, detail: dict) -> None:
        """At start: the head file exists from now on, and a database that ends before the
        head file's row (truncated, or restored from an old backup) is reported loudly and
        noted in the ``start`` event.  The head file is never moved backwards."""
        conn = self._conn
        assert conn is not None
        if not _meta_seq_ok(conn):
            log.error(
                "mcp-gateway audit: %s: meta head_seq is not a number (edited); the chain goes "
                "on from its last row; `mcp-gateway audit verify` will report it",
                self.path,
            )
            detail["head_file"] = "meta head_seq is not a number"
        seq, hash_ = _chain_tail(conn)
        try:
            head = chain.read_head(self.head_file)
        except (ValueError, OSError) as e:
            log.error("mcp-gateway audit: unreadable head file %s: %s", self.head_file, e)
            detail["head_file"] = f"unreadable: {e}"
            # left as it is: rewritten at the next commit, a head file spoiled together with
            # rows deleted from the end named the shortened end, and `verify` passed
            self._head.frozen = True
            return
        unwritten = head.get("unwritten") if head is not None else None
        if unwritten:
            # the last shutdown could not write everything (database locked, disk full): the
            # head file kept the count; the trail records it now, where the gap is (a warning:
            # an error logged at start-up would make mitmdump exit, and this is no tampering)
            log.warning(
                "mcp-gateway audit: %d event(s) could not be written to %s before the "
                "shutdown at %s; recorded in the trail as `lost`",
                unwritten[0],
                self.path,
                unwritten[1],
            )
            self._events.append(
                {
                    "time": self.clock(),
                    "event": "lost",
                    "count": unwritten[0],
                    "detail": f"events the gateway could not write before its shutdown at "
                    f"{unwritten[1]} (database locked or disk full): missing from the trail",
                }
            )
        # rows deleted from the end leave meta as it was: the last row counts too
        last = max(
            (
                conn.execute(f"SELECT max(seq) FROM [{t}]").fetchone()[0] or 0
                for t in chain.CHAINED_TABLES
            ),
            default=0,
        )
        if head is None and max(seq, last) > 0:
            # A chain without its head file: rows deleted from its end (meta set to match)
            # cannot be told any more. Written now, a new head file at the database's end
            # blessed such a deletion: `verify` reported it until the next start, and never
            # again after it. Not written, so `verify` keeps reporting the missing file.
            log.error(
                "mcp-gateway audit: %s holds rows up to seq %d but its head file %s is "
                "missing: rows removed from the end can no longer be detected; the head file "
                "is not created again (`mcp-gateway audit verify` keeps reporting it): check "
                "the trail (verify --no-head), then move it aside or put its head file back",
                self.path,
                max(seq, last),
                self.head_file,
            )
            detail["head_file"] = "missing"
            self._head.frozen = True
            return
        if head is not None and int(head["seq"]) > min(seq, last):
            seq = min(seq, last)
            log.error(
                "mcp-gateway audit: %s ends at row %d but its head file %s records row %d: "
                "rows are missing at the end (truncated or restored from an old copy); "
                "`mcp-gateway audit verify` will report it",
                self.path,
                seq,
                self.head_file,
                head["seq"],
            )
            detail["head_file"] = f"ahead of the database: seq {head['seq']} > {seq}"
            # For good: the head file only refuses to move backwards, so once this run's
            # rows reached its seq (the `start` event alone, with the last row deleted), the
            # next commit wrote the new chain's end into it and `verify` passed.
            self._head.frozen = True
            return
        if (
            head is not None
            and int(head["seq"]) < seq
            and _row_hash(conn, int(head["seq"])) != (head.get("hash"))
        ):
            # Rows after the head file's are normal after a crash (the head is written after
            # the commit), but the row it records must still be there as it was: otherwise the
            # end of the chain was replaced, and moving the head forward would bless the forgery.
            log.error(
                "mcp-gateway audit: row %s of %s, which its head file %s records, is missing or "
                "differs: the chain was rewritten after it; the head file is left as it is; "
                "`mcp-gateway audit verify` will report it",
                head["seq"],
                self.path,
                self.head_file,
            )
            detail["head_file"] = f"row {head['seq']} differs from the head file"
            self._head.frozen = True
            return
        if head is not None and int(head["seq"]) == seq and head.get("hash") != hash_:
            log.error(
                "mcp-gateway audit: the last row of %s does not match its head file %s: "
                "the chain was rewritten; the head file is left as it is from now on; "
                "`mcp-gateway audit verify` will report it",
                self.path,
                self.head_file,
            )
            detail["head_file"] = "hash differs from the database's last row"
            self._head.frozen = True
            return
        after = head is not None and int(head["seq"]) < seq
        # Rows after the head file's row are a crash's leftover batch only when the head file
        # announced them (the writer names each batch there before committing it). After
        # the `stop` event of a clean shutdown there is no such batch. Either way they were
        # added while no gateway ran (the chain has no key: anyone who can write the file can
        # append rows that chain); moving the head file over them would adopt them without
        # a trace, so the trail says so instead.
        stopped = (
            after
            and conn.execute(
                "SELECT 1 FROM audit_events WHERE seq = ? AND event = 'stop'", (int(head["seq"]),)
            ).fetchone()
            is not None
        )
        if stopped or (after and chain.announced(head, seq, _row_hash(conn, seq)) is False):
            where, when, note = (
                ("after the `stop` event", "stopped", "after a clean stop")
                if stopped
                else ("after the row", "not running", "not announced")
            )
            log.error(
                "mcp-gateway audit: %s holds %d row(s) %s its head file records (seq %s)%s: "
                "they were added while the gateway was %s; recorded in the trail as `foreign`",
                self.path,
                seq - int(head["seq"]),
                where,
                head["seq"],
                "" if stopped else " that no gateway announced",
                when,
            )
            detail["head_file"] = f"rows {int(head['seq']) + 1}-{seq} {note}"
            self._foreign(int(head["seq"]) + 1, seq)
        elif after and chain.announced(head, seq, _row_hash(conn, seq)) is None:
            # a head file in the format before announcements (an older release's, or written
            # by hand): its rows after cannot be told from an append; accepted, as a crash's
            # last batch of that release, but not without a word (the head file moved over
            # them and `verify`'s warning was gone)
            log.warning(
                "mcp-gateway audit: %s holds %d row(s) after the row its head file %s records "
                "(seq %s), which is in the format before batch announcements: accepted as a "
                "crash's last batch (they cannot be told from rows appended meanwhile)",
                self.path,
                seq - int(head["seq"]),
                self.head_file,
                head["seq"],
            )
            detail["head_file"] = f"rows {int(head['seq']) + 1}-{seq} after an old-format head"
        try:
            self._head.write(seq, hash_)
        except OSError as e:
            raise AuditError(f"cannot write the head file {self.head_file}: {e}") from e
        if _row_hash(conn, seq) == hash_:
            self._last = (seq, hash_)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, row: dict[str, Any], *, refused_if_full: bool = False) -> bool:
        """Hand one row to the writer without blocking. False if the queue was full."""
        try:
            self.queue.put_nowait(row)
            return True
        except queue.Full:
            if refused_if_full:
                self.count_loss(refused=1)
            else:
                self.count_loss(dropped=1)
            return False

    def submit_many(self, rows: list[dict[str, Any]]) -> bool:
        """Hand a batch's rows to the writer all at once, or none of them (counted refused).
        A batch larger than the whole queue is taken when the queue is empty: it could never
        fit otherwise (its size is bounded by mcp_max_batch)."""
        q = self.queue
        need = sum(payload_size(r) for r in rows)
        if (q.qsize() and q.maxsize - q.qsize() < len(rows)) or not q.room_for(need):
            self.count_loss(refused=len(rows))
            return False
        for row in rows:
            q.put_forced(row)
        return True

    def count_loss(self, dropped: int = 0, refused: int = 0, first: float | None = None) -> None:
        """Count rows that never reached the queue: ``submit`` on a full one, or the losses
        of a proxy that a :class:`~.proc.ProcessWriter` sends over (which counts its own
        with this same function). The next batch records them as chained events."""
        with self._lock:
            self._dropped += dropped
            self._refused += refused
            self.total_dropped += dropped
            self.total_refused += refused
            if self._first_loss is None:
                self._first_loss = first if first is not None else self.clock()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed."""
        if not self.running:
            return False
        m = _Marker()
        self.queue.put_marker(m)
        self._idle.set()
        return m.done.wait(timeout)

    def close(self, timeout: float = 30.0, record_stop: bool = True) -> bool:
        """Write everything still queued plus a ``stop`` event (unless ``record_stop`` is
        false: the process writing for a proxy that was killed), then close. True if clean."""
        if self._thread is None:
            return True
        self._record_stop = record_stop
        m = _Marker(stop=True)
        clean = True
        deadline = time.monotonic() + timeout
        self.queue.put_marker(m)
        self._stopping = True
        self._idle.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            clean = False
            self._abandon = True
            lost = self._pending_rows + sum(
                1 for x in list(self.queue._items) if not isinstance(x, _Marker)
            )
            log.error(
                "mcp-gateway audit: could not write %d queued events to %s before shutdown "
                "(last error: %s)",
                lost,
                self.path,
                self.last_error,
            )
            chain.note_unwritten(self.head_file, self.path, lost)
            self._stuck = self._thread  # (still holds the file: see gone)
        self._thread = None
        return clean and m.done.is_set()

    def gone(self, timeout: float) -> bool:
        """After a ``close`` that timed out: wait up to ``timeout`` for the thread, stuck on
        the disk, to end (it writes what it holds if the disk comes back). True once no
        thread of this writer holds the file."""
        t = self._stuck
        if t is not None:
            t.join(timeout)
            if t.is_alive():
                return False
            self._stuck = None
        return True

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        pending: list[dict] = []
        markers: list[_Marker] = []
        stop = stop_recorded = False
        backoff = 0.0
        try:
            while True:
                if not pending and not markers and not self._events and not self._has_losses():
                    # Idle: poll too. A get() blocked on an empty queue is woken by the next
                    # put(), so the first message after a pause would pull this thread onto
                    # the GIL while the proxy is still handling that message (measured:
                    # +0.5 ms on the time to first event of a stream).
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        if self._stopping:
                            break
                        self._idle.wait(_POLL)
                        self._idle.clear()
                        continue
                    stop = self._take(item, pending, markers) or stop
                # Collect for up to flush_interval (busy_interval while busy) or batch_rows.
                # Poll (sleep + drain)
                # rather than block in get(): a blocked get() is woken by every put(), and
                # that per-event thread hand-off is what the proxy's event loop would pay.
                started = time.monotonic()
                deadline = started + self.flush_interval
                # While a commit keeps failing, take nothing more: the queue fills up and
                # mcp_audit_on_full applies (memory stays bounded by queue + one batch).
                while not stop and not markers and not backoff:
                    while len(pending) < self.batch_rows:
                        try:
                            item = self.queue.get_nowait()
                        except queue.Empty:
                            break
                        if self._take(item, pending, markers):
                            stop = True
                            break
                    if stop or markers or len(pending) >= self.batch_rows:
                        break
                    now = time.monotonic()
                    if now >= started + self.flush_interval:
                        n = len(pending)
                        if n < _BUSY_ROWS or n >= _BUSY_BATCH:
                            break
                        # busy: a bigger batch, up to busy_interval after the first row
                        deadline = started + self.busy_interval
                        if now >= deadline:
                            break
                    time.sleep(min(_POLL, deadline - now))
                if stop:  # drain everything that was queued before the stop marker
                    while True:
                        try:
                            item = self.queue.get_nowait()
                        except queue.Empty:
                            break
                        self._take(item, pending, markers)
                    if not stop_recorded and self._record_stop:
                        stop_recorded = True
                        self._events.append(
                            {"time": self.clock(), "event": "stop", "count": None, "detail": None}
                        )
                self._pending_rows = len(pending)
                try:
                    conn = self._follow_file(conn)
                    self._commit(conn, pending)
                except (sqlite3.Error, OSError) as e:
                    self._fail(e)
                    if self._abandon:  # close() gave up waiting: do not linger
                        log.error(
                            "mcp-gateway audit: giving up on %s: %d events not written",
                            self.path,
                            len(pending) + self.queue.qsize(),
                        )
                        break
                    backoff = min(2.0, backoff * 2 or 0.1)
                    time.sleep(backoff)
                    continue
                except Exception:  # noqa: BLE001 - never die on one bad batch
                    log.exception(
                        "mcp-gateway audit: %d events could not be stored; counted as dropped",
                        len(pending),
                    )
                    with self._lock:
                        self._dropped += len(pending)
                        self.total_dropped += len(pending)
                        if self._first_loss is None:
                            self._first_loss = self.clock()
                    self.queue.release(pending)
                    pending = []
                    continue
                backoff = 0.0
                self._pending_rows = 0
                self.queue.release(pending)
                if self.failing:
                    log.warning("mcp-gateway audit: writing to %s again", self.path)
                    self.failing = False
                pending = []
                for m in markers:
                    m.done.set()
                markers = []
                if stop:
                    break
        except Exception:  # noqa: BLE001 - never die silently
            log.exception("mcp-gateway audit: writer thread crashed; events are no longer recorded")
        finally:
            for m in markers:
                m.done.set()
            try:
                conn.close()
            except sqlite3.Error:
                pass
            self._head.close()

    def _take(self, item: Any, pending: list, markers: list) -> bool:
        if isinstance(item, _Marker):
            markers.append(item)
            return item.stop
        pending.append(item)
        return False

    def _meta_updates(self) -> dict[str, str | None]:
        """Extra ``meta`` values written in each batch's transaction, None to delete one (the
        process writer's child records there how far it got: see proc.py)."""
        return {}

    def _has_losses(self) -> bool:
        return bool(self._dropped or self._refused)

    def _loss_log(self, dropped: int, refused: int) -> None:
        self._unlogged[0] += dropped
        self._unlogged[1] += refused
        now = time.monotonic()
        if now - self._last_loss_log >= 10:
            log.warning(
                "mcp-gateway audit: queue full (writer behind or failing): %d events dropped, "
                "%d messages refused since the last report; recorded in audit_events "
                "(raise mcp_audit_queue_size?)",
                *self._unlogged,
            )
            self._unlogged = [0, 0]
            self._last_loss_log = now

    def _fail(self, e: BaseException) -> None:
        self.last_error = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if not self.failing or now - self._last_error_log > 10:
            log.error(
                "mcp-gateway audit: cannot write to %s: %s; retrying, %d events queued "
                "(when the queue is full, traffic is handled per mcp_audit_on_full)",
                self.path,
                self.last_error,
                # the batch being retried too (with a writer process, the child's batch was
                # the whole count, and this said "0 events queued" while the disk was full)
                self.queue.qsize() + self._pending_rows,
            )
            self._last_error_log = now
        self.failing = True

    # -- one batch ---------------------------------------------------------------------
    def _rewritten(self, seq: int) -> dict[str, Any]:
        """Row ``seq``, the last this writer committed, is gone or differs: the chain was
        rewritten while the gateway ran. The head file stays at the true end from now on
        (``verify`` reports the rewrite), and an event records it in the chain."""
        log.error(
            "mcp-gateway audit: row %d of %s, the last this gateway wrote, is missing or "
            "differs: the audit trail was edited while the gateway ran; the head file %s is "
            "left as it is; `mcp-gateway audit verify` will report it",
            seq,
            self.path,
            self.head_file,
        )
        self._head.frozen = True
        self._last = None  # said once
        ev = {
            "time": self.clock(),
            "event": "rewritten",
            "count": None,
            "detail": f"row {seq}, the last this gateway wrote, was missing or differed: the "
            "chain was edited while the gateway ran",
        }
        self._events.insert(0, ev)  # (kept for a retry if this batch's commit fails)
        return ev

    def _foreign(self, first: int, last: int) -> dict[str, Any]:
        """Rows ``first``..``last`` came after this writer's last one, written by someone
        else: another gateway on the same database (set ``mcp_audit_db`` per instance), or
        a hand-made append with a hash of its own. The chain holds them, so ``verify`` cannot
        tell; an event chained right after them says they are not this gateway's."""
        # Logged at most once a minute: two gateways on one file (which the options advise
        # against) made one such line per batch, ten a second, each writer naming the other's.
        self._unlogged_foreign += 1
        now = time.monotonic()
        if now - self._last_foreign_log >= 60:
            more = self._unlogged_foreign - 1
            log.warning(
                "mcp-gateway audit: rows %d-%d of %s were written by another process (another "
                "gateway on this database, or an edit); recorded in the trail%s",
                first,
                last,
                self.path,
                f" (and {more} more such runs of rows since the last report)" if more else "",
            )
            self._last_foreign_log = now
            self._unlogged_foreign = 0
        ev = {
            "time": self.clock(),
            "event": "foreign",
            "count": last - first + 1,
            "detail": f"rows {first}-{last} were not written by this gateway (pid {os.getpid()})",
        }
        self._events.insert(0, ev)  # (kept for a retry if this batch's commit fails)
        self._noted = last  # (and named once)
        return ev

    def _commit(self, conn: sqlite3.Connection, rows: list[dict]) -> None:
        with self._lock:
            dropped, refused, first = self._dropped, self._refused, self._first_loss
            self._dropped = self._refused = 0
            self._first_loss = None
        losses: list[dict[str, Any]] = []
        now = self.clock()
        if dropped:
            losses.append(
                {
                    "time": now,
                    "event": "dropped",
                    "count": dropped,
                    "detail": f"queue full since {_iso(first)}: events not recorded "
                    "(mcp_audit_on_full=drop)",
                }
            )
        if refused:
            losses.append(
                {
                    "time": now,
                    "event": "refused",
                    "count": refused,
                    "detail": f"queue full since {_iso(first)}: messages refused with a "
                    "JSON-RPC error because they could not be recorded (mcp_audit_on_full=block)",
                }
            )
        try:
            # self._events is read again for the retry: the failed try may have added a
            # `rewritten` or `foreign` event there, which is said only once
            try:
                self._write(conn, rows, [*self._events, *losses])
            except (sqlite3.Error, OSError):
                raise  # the database or the disk: retried with back-off by the caller
            except Exception:  # noqa: BLE001 - a value SQLite or the hash cannot take
                log.exception(
                    "mcp-gateway audit: a batch held an unstorable value; storing it sanitized"
                )
                rows[:] = [_sanitize(r) for r in rows]
                self._write(conn, rows, [*self._events, *losses])
        except BaseException:
            with self._lock:  # put the loss counts back: they are recorded by the next try
                self._dropped += dropped
                self._refused += refused
                if first is not None and (self._first_loss is None or first < self._first_loss):
                    self._first_loss = first
            raise
        self._events = []
        if dropped or refused:  # logged once committed: a retried batch must not count twice
            self._loss_log(dropped, refused)
        self.committed += len(rows)
        self.batches += 1

    def _write(self, conn: sqlite3.Connection, rows: list[dict], events: list[dict]) -> None:
        if not rows and not events:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            seq, prev = _chain_tail(conn)
            tail = (seq, prev)
            last = self._last
            if last is not None and _row_hash(conn, last[0]) != last[1]:
                events = [self._rewritten(last[0]), *events]
            elif last is not None and seq > max(last[0], self._noted):
                events = [self._foreign(max(last[0], self._noted) + 1, seq), *events]
            ev_out: list[tuple] = []
            msg_out: list[tuple] = []
            find_out: list[tuple] = []

            def link(table: str, vals: list, out: list[tuple]) -> int:
                """Append one row to the chain; its seq."""
                nonlocal seq, prev
                seq += 1
                h = chain.row_hash(prev, table, seq, vals)
                out.append((seq, *vals, prev, h))
                prev = h
                return seq

            # a `stop` event comes after the last rows of its batch in the chain's order
            stops = [ev for ev in events if ev.get("event") == "stop"]
            for ev in events:
                if ev.get("event") != "stop":
                    link("audit_events", schema.coerce_values(_EVENT_SPEC, ev), ev_out)
            sessions: dict[tuple, list] = {}
            usage: dict[tuple, dict] = {}
            hours: dict[int, str] = {}
            if ev_out:
                conn.executemany(_INSERT_EVENT, ev_out)
                ev_out = []
            for i, r in enumerate(rows):
                findings = r.get("_findings") or ()
                r["findings"] = len(findings)
                vals = schema.coerce_values(_MSG_SPEC, r)
                msg_seq = link("messages", vals, msg_out)
                for f in findings:
                    fd = dict(f)
                    fd["message_seq"] = msg_seq
                    fd["time"] = vals[_I_TIME]
                    fd["flow_id"] = vals[_I_FLOW]
                    link("findings", schema.coerce_values(_FIND_SPEC, fd), find_out)
                _summarize(vals, r.get("_protocol_version"), sessions, usage, hours)
                if len(msg_out) >= _YIELD_ROWS and i + 1 < len(rows):
                    conn.executemany(_INSERT_MSG, msg_out)
                    if find_out:
                        conn.executemany(_INSERT_FIND, find_out)
                    msg_out, find_out = [], []
                    time.sleep(_YIELD_SLEEP)  # let the proxy's event loop take the GIL
            for ev in stops:
                link("audit_events", schema.coerce_values(_EVENT_SPEC, ev), ev_out)
            if msg_out:
                conn.executemany(_INSERT_MSG, msg_out)
            if find_out:
                conn.executemany(_INSERT_FIND, find_out)
            if ev_out:
                conn.executemany(_INSERT_EVENT, ev_out)
            if sessions:
                conn.executemany(_UPSERT_SESSION, [tuple(v) for v in sessions.values()])
            if usage:
                _upsert_usage(conn, usage)
            for key, value in self._meta_updates().items():
                if value is None:
                    conn.execute("DELETE FROM meta WHERE key=?", (key,))
                else:
                    schema.set_meta(conn, key, value)
            schema.set_meta(conn, "head_seq", str(seq))
            schema.set_meta(conn, "head_hash", prev)
            try:  # the head file names the batch before it is committed (see announce)
                self._head.announce(seq, prev, tail)
            except OSError as e:
                log.error("mcp-gateway audit: cannot update head file %s: %s", self.head_file, e)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._last = (seq, prev)
        try:
            self._head.write(seq, prev)
        except OSError as e:
            log.error("mcp-gateway audit: cannot update head file %s: %s", self.head_file, e)


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_INT64 = (-(2**63), 2**63 - 1)


def _clean(v: Any, typ: type) -> Any:
    if v is None:
        return None
    if typ is int:
        return v if _INT64[0] <= v <= _INT64[1] else None
    if typ is str:
        return v.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    if typ is float:
        return v if v == v else None  # NaN reads back as NULL
    return v


def _sanitize(row: dict) -> dict:
    """A copy of ``row`` that SQLite and orjson accept whatever the input was."""
    out = dict(row)
    for col, v in zip(_MSG_COLS, schema.coerce_values(_MSG_SPEC, row), strict=True):
        out[col] = _clean(v, MESSAGE_COLUMNS[col])
    findings = []
    for f in row.get("_findings") or ():
        fd = dict(f)
        for col, typ in FINDING_COLUMNS.items():
            if col in fd:
                fd[col] = _clean(schema.coerce_values(((col, typ),), fd)[0], typ)
        findings.append(fd)
    out["_findings"] = findings
    return out


def _summarize(v: list, protocol_version: Any, sessions: dict, usage: dict, hours: dict) -> None:
    """Fold one message row (values in column order) into the batch's session and usage
    summaries."""
    t = v[_I_TIME] or 0.0
    sid = v[_I_SESSION]
    if sid is not None:
        pv = str(protocol_version) if protocol_version else None
        key = (v[_I_SERVER] or "", sid)
        s = sessions.get(key)
        if s is None:
            sessions[key] = [
                key[0], sid, t, t, v[_I_CONSUMER], v[_I_CLIENT], pv, 1, v[_I_FLOW]
            ]  # fmt: skip
        else:
            if t < s[2]:
                s[2] = t
            if t > s[3]:
                s[3] = t
            s[4] = s[4] or v[_I_CONSUMER]
            s[6] = s[6] or pv
            s[7] += 1
    kind, direction = v[_I_KIND], v[_I_DIR]
    is_call = kind == "request" and direction == "c2s"
    if not is_call and not (direction == "s2c" and kind in ("result", "error")):
        return
    h = int(t // 3600)
    hour = hours.get(h)
    if hour is None:
        hour = hours[h] = time.strftime("%Y-%m-%dT%H", time.gmtime(h * 3600))
    key = (hour, v[_I_CONSUMER] or "", v[_I_SERVER] or "", v[_I_METHOD] or "", v[_I_NAME] or "")
    u = usage.get(key)
    if u is None:
        u = usage[key] = {"calls": 0, "blocked": 0, "responses": 0, "errors": 0, "hist": {}}
        u.update(latency_count=0, latency_sum=0.0, latency_max=0.0)
    if is_call:
        u["calls"] += 1
        if v[_I_ACTION] in ("block", "drop"):
            u["blocked"] += 1
    else:
        u["responses"] += 1
        if v[_I_ERROR]:
            u["errors"] += 1
        lat = v[_I_LATENCY]
        if lat is not None:
            u["latency_count"] += 1
            u["latency_sum"] += lat
            if lat > u["latency_max"]:
                u["latency_max"] = lat
            hist.add(u["hist"], lat)


_UPSERT_USAGE = """
INSERT INTO usage (hour, consumer, server, method, name, calls, blocked, responses, errors,
                   latency_count, latency_sum, latency_max)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(hour, consumer, server, method, name) DO UPDATE SET
    calls = calls + excluded.calls,
    blocked = blocked + excluded.blocked,
    responses = responses + excluded.responses,
    errors = errors + excluded.errors,
    latency_count = latency_count + excluded.latency_count,
    latency_sum = latency_sum + excluded.latency_sum,
    latency_max = max(latency_max, excluded.latency_max)
"""
_UPSERT_LATENCY = """
INSERT INTO usage_latency (hour, consumer, server, method, name, bucket, count)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(hour, consumer, server, method, name, bucket) DO UPDATE SET
    count = count + excluded.count
"""


def _upsert_usage(conn: sqlite3.Connection, usage: dict) -> None:
    """Add the batch's counts (arithmetic upserts: several writers may share the file)."""
    conn.executemany(
        _UPSERT_USAGE,
        [
            (*key, u["calls"], u["blocked"], u["responses"], u["errors"], u["latency_count"],
             u["latency_sum"], u["latency_max"])
            for key, u in usage.items()
        ],
    )  # fmt: skip
    lat = [(*key, b, n) for key, u in usage.items() for b, n in u["hist"].items()]
    if lat:
        conn.executemany(_UPSERT_LATENCY, lat)


def _iso(t: float | None) -> str:
    if t is None:
        return "?"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()
