"""The audit writer in a process of its own (the default; ``mcp_audit_process``).

In the proxy's process the writer thread held the GIL for ~40 us of Python per row (linking
the hash chain, coercing values, binding SQLite parameters), and every time the event loop
let the GIL go (each Hyperscan scan does) the writer could take it for milliseconds. Streaming
2000 events, that was about a third of the gateway's CPU per event on the event loop's thread.

Here the proxy only serializes each row (orjson, ~2 us) onto an in-memory deque; a feeder
thread writes the deque to a pipe every ``flush_interval / 2`` seconds; a child process
(``python -m mcp_gateway.audit.proc``, in a session of its own) runs
:class:`~.writer.AuditWriter` on the other end (a subclass that only adds the sequence
bookkeeping below).

Nothing is lost silently, whatever dies:

- Every row (and every count of rows lost to a full queue) gets a sequence number. The proxy
  keeps what it sent until the child reports it committed: the child writes the last number
  it committed into ``meta`` in the same transaction as the rows, and reports it after each
  batch. The proxy's queue (``queue_size``) counts both what waits and what is in flight;
  beyond it a row is dropped or refused (``mcp_audit_on_full``) and counted, and the count
  travels like a row.
- If the child dies (killed, out of memory, a crashed writer thread), the proxy logs it,
  starts another one, and sends it again everything the dead one had not committed (the new
  one reads from ``meta`` what was, so nothing is written twice). If no child can be started
  (three tries), the proxy falls back to a writer thread and hands it the same rows.
- The child never drops: when its own queue is full it stops reading the pipe, so the pipe
  and then the proxy's queue fill up and ``mcp_audit_on_full`` applies.
- A clean shutdown writes everything: ``close`` sends a stop after the last row and waits for
  the child to commit and write its ``stop`` event (a child that dies meanwhile is replaced
  and the rest sent again, within the timeout). What could not be written is logged with
  its count.
- If the proxy is killed (``kill -9``), the child reads the end of the pipe, commits every
  row it was sent (a line cut in half is skipped) and exits without a ``stop`` event (the
  stop was not clean): what is lost is what the proxy had not yet sent, normally the last
  ``flush_interval / 2`` seconds.

Log records of the child come back over its stdout and are logged again by the proxy on the
"mcp_gateway" logger, so they show in mitmdump's output and in mitmweb's event log.

The pipe's lines start with a tag: ``R<seq> <row json>``, ``L<seq> <[dropped, refused,
first]>``, ``F<id>`` (flush), ``S<id> <timeout>`` (stop). The child answers JSON lines:
``ready`` (with the last committed seq), ``error``, ``c`` (committed up to), ``ack``, ``log``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import orjson

from ..childenv import child_env
from . import chain, schema
from .writer import (
    DEFAULT_QUEUE_SIZE,
    PAYLOAD_BYTES_PER_ROW,
    AuditError,
    AuditWriter,
    _Marker,
    _sanitize,
    payload_size,
)

log = logging.getLogger("mcp_gateway")

_START_TIMEOUT = 20.0  # seconds for the child to import, open the database and say ready
_RESTART_EVERY = 1.0  # seconds between attempts to start a child that died
_RESTART_TRIES = 3  # failed starts in a row before falling back to a writer thread
_CHUNK = 4096  # lines written to the pipe in one go
_NICE = 5
_CHILD_QUEUE = 10_000  # rows (two of the writer's biggest batches)
_BACKLOG = 1_000  # rows waiting in the proxy beyond which each is stored compactly
_META_PREFIX = "process_writer_seq:"


class WriterProcessError(AuditError):
    """The child could not be started at all (no usable interpreter, import failure): the
    addon then falls back to the writer thread. A database problem is an AuditError."""


def _frame(row: dict[str, Any]) -> bytes | None:
    """One row as JSON; None if it cannot be serialized even after cleaning."""
    try:
        return orjson.dumps(row)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:  # lone surrogates, integers beyond 64 bits, NaN
        return orjson.dumps(_sanitize(row), default=str)
    except (orjson.JSONEncodeError, TypeError, ValueError):
        return None


def _committed_in(path: str, key: str) -> int:
    """The last sequence number a child of this writer committed to ``path`` (0: none)."""
    try:
        conn = schema.connect(path, timeout=2.0)
        try:
            return int(schema.get_meta(conn, key) or 0)
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, OSError):
        return 0


class ProcessWriter:
    """Same interface as :class:`~.writer.AuditWriter`; the writing happens in a child."""

    def __init__(
        self,
        path: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_interval: float = 0.1,
        start_detail: dict | None = None,
    ) -> None:
        self.path = path
        self.queue_size = max(1, queue_size)
        self.flush_interval = flush_interval
        self._start_detail = dict(start_detail or {})
        self._key = _META_PREFIX + uuid.uuid4().hex
        # (seq, kind, body, payload size) waiting to be sent (seq 0: not numbered yet, body the JSON or the
        # control's line; numbered: sent before, body the line) -- kind R row, L loss count,
        # F flush, S stop -- and the rows and loss counts sent but not committed yet
        self._frames: collections.deque[tuple[int, bytes, bytes, int]] = collections.deque()
        self._inflight: collections.deque[tuple[int, bytes, bytes, int]] = collections.deque()
        # the stored payloads (mcp_audit_store_payloads) of those rows, bounded like
        # RowQueue's (see there): a count of rows alone did not bound them
        self.queue_bytes = self.queue_size * PAYLOAD_BYTES_PER_ROW
        self._held = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._dropped = 0
        self._refused = 0
        self._first_loss: float | None = None
        self.clock = time.time
        self.total_dropped = 0
        self.total_refused = 0
        self._acks: dict[int, threading.Event] = {}
        self._sent_to: dict[int, subprocess.Popen] = {}  # control id -> the child it went to
        self._ack_ok: dict[int, bool] = {}
        self._next_id = 0
        self._proc: subprocess.Popen | None = None
        self._start_error: str | None = None
        self._db_error = False
        self._feeder: threading.Thread | None = None
        self._closing = False
        self._stopped = False  # the child acknowledged the stop: do not replace it
        self._closed = False  # close() is over: never start a child again
        self._fallback: AuditWriter | None = None
        self._stuck: subprocess.Popen | None = None  # a killed child still alive
        self.committed = 0  # rows committed, as the children reported them
        self._last_db_error = -1e9
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------
    def open(self) -> None:
        self._spawn()
        self._feeder = threading.Thread(
            target=self._feed, name="mcp-gateway-audit-feeder", daemon=True
        )
        self._feeder.start()

    def _spawn(self) -> None:
        cfg = {
            "path": self.path,
            # The proxy's queue is the bound; the child's only has to hold a couple of
            # batches, and rows wait more compactly as the proxy's lines than as its dicts.
            "queue_size": min(self.queue_size, _CHILD_QUEUE),
            "flush_interval": self.flush_interval,
            "key": self._key,
            "start_detail": {**self._start_detail, "pid": os.getpid()},
        }
        env = child_env()
        ready = threading.Event()
        self._start_error = None
        self._db_error = False
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_gateway.audit.proc", orjson.dumps(cfg).decode()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
                start_new_session=True,  # out of the terminal's reach: Ctrl-C, SIGHUP
            )
        except OSError as e:
            raise WriterProcessError(f"cannot start the audit writer process: {e}") from e
        holder: dict[str, int] = {}
        threading.Thread(
            target=self._read,
            args=(proc, ready, holder),
            name="mcp-gateway-audit-reader",
            daemon=True,
        ).start()
        if not ready.wait(_START_TIMEOUT) or self._start_error is not None:
            err = self._start_error
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if err is None or not self._db_error:
                raise WriterProcessError(
                    "the audit writer process did not start: "
                    + (err or f"no answer within {_START_TIMEOUT:.0f} s")
                )
            raise AuditError(err)
        if self._closed:  # close() gave up meanwhile: this child is not wanted
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            raise WriterProcessError("the writer was closed")
        # what a dead predecessor sent but did not commit goes again, in order, first
        done = holder.get("committed", 0)
        with self._lock:
            again = [f for f in self._inflight if f[0] > done]  # numbered: sent first
            self._held -= sum(f[3] for f in self._inflight if f[0] <= done)  # committed
            self._inflight.clear()
            self._frames.extendleft(reversed(again))
        self._proc = proc

    @property
    def running(self) -> bool:
        if self._fallback is not None:
            return self._fallback.running
        return self._feeder is not None and self._feeder.is_alive() and not self._closing

    # -- the proxy's side ----------------------------------------------------------------
    def submit(self, row: dict[str, Any], *, refused_if_full: bool = False) -> bool:
        """Hand one row to the writer without blocking. False if the queue was full."""
        fb = self._fallback
        if fb is not None:
            return fb.submit(row, refused_if_full=refused_if_full)
        n = payload_size(row)
        if len(self._frames) + len(self._inflight) < self.queue_size and self._room_for(n):
            frame = _frame(row)
            if frame is not None:
                with self._lock:
                    fb = self._fallback
                    if fb is None:
                        self._held += n
                        if len(self._frames) > _BACKLOG:
                            # an exact-size copy: orjson's buffer is larger than its result,
                            # ~4 KiB a row in a long backlog (the feeder copies the others
                            # into the lines it sends)
                            frame = b"%b" % frame
                        self._frames.append((0, b"R", frame, n))
                        return True
                return fb.submit(row, refused_if_full=refused_if_full)
            log.error("mcp-gateway audit: a row could not be serialized; counted as dropped")
            refused_if_full = False
        if refused_if_full:
            self.count_loss(refused=1)
        else:
            self.count_loss(dropped=1)
        return False

    def submit_many(self, rows: list[dict[str, Any]]) -> bool:
        """Hand a batch's rows to the writer all at once, or none of them (counted refused).
        A batch larger than the whole queue is taken when the queue is empty."""
        fb = self._fallback
        if fb is not None:
            return fb.submit_many(rows)
        queued = len(self._frames) + len(self._inflight)
        sizes = [payload_size(row) for row in rows]
        if (queued and self.queue_size - queued < len(rows)) or not self._room_for(sum(sizes)):
            self.count_loss(refused=len(rows))
            return False
        frames = []
        for row, n in zip(rows, sizes, strict=True):
            frame = _frame(row)
            if frame is None:
                log.error("mcp-gateway audit: a row could not be serialized; counted as dropped")
                self.count_loss(dropped=1)
                continue
            frames.append((0, b"R", frame, n))
        with self._lock:
            fb = self._fallback
            if fb is None:
                self._held += sum(f[3] for f in frames)
                self._frames.extend(frames)
                return True
        return fb.submit_many(rows)

    def _room_for(self, n: int) -> bool:
        """Room for a payload of ``n`` more bytes (one larger than the whole budget when no
        other is held)."""
        held = self._held
        return not n or held <= 0 or held + n <= self.queue_bytes

    count_loss = AuditWriter.count_loss  # the same counters: sent to the child by _send

    def _control(self, line: bytes) -> tuple[int, threading.Event]:
        with self._lock:
            self._next_id += 1
            cid = self._next_id
            ev = self._acks[cid] = threading.Event()
            self._frames.append((0, line[:1], line.replace(b"{id}", str(cid).encode()), 0))
        self._wake.set()
        return cid, ev

    def _answer(self, cid: int, ev: threading.Event, timeout: float) -> bool | None:
        """The child's answer to control ``cid``: True or False, or None when there was
        none (the time ran out, or the child died: see ``_read``)."""
        ev.wait(timeout)
        with self._lock:
            self._acks.pop(cid, None)
            self._sent_to.pop(cid, None)
            return self._ack_ok.pop(cid, None)

    def _ask(self, line: bytes, deadline: float) -> bool:
        """Send control ``line`` until a child answers it (one that dies first is replaced
        and sent everything again, then the control) or ``deadline`` passes."""
        while self._fallback is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cid, ev = self._control(line.replace(b"{left}", b"%.1f" % max(1.0, left - 2)))
            answer = self._answer(cid, ev, left)
            if answer is not None:
                return answer
        return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed."""
        if self._fallback is not None:
            return self._fallback.flush(timeout)
        if not self.running:
            return False
        ok = self._ask(b"F{id}\n", time.monotonic() + timeout)
        fb = self._fallback
        return fb.flush(timeout) if fb is not None else ok

    def close(self, timeout: float = 30.0) -> bool:
        """Write everything still queued plus a ``stop`` event, then end the child."""
        if self._fallback is not None:
            self._closing = self._closed = True
            return self._fallback.close(timeout)
        if self._feeder is None:
            return True
        deadline = time.monotonic() + timeout
        self._closing = True
        clean = self._ask(b"S{id} {left}\n", deadline)
        if self._fallback is not None:  # no child could be started: a thread took over
            self._closed = True
            return self._fallback.close(max(1.0, deadline - time.monotonic()))
        self._closed = True
        self._wake.set()
        self._feeder.join(max(0.5, deadline - time.monotonic()))
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=max(0.5, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                if proc.poll() is None:  # (killed in the middle of a write to a stuck disk)
                    self._stuck = proc
        if not clean:
            with self._lock:
                lost = sum(1 for f in (*self._inflight, *self._frames) if f[1] == b"R")
            log.error(
                "mcp-gateway audit: the writer process did not finish writing to %s before "
                "shutdown; up to %d events were not written",
                self.path, lost,
            )  # fmt: skip
            chain.note_unwritten(chain.head_path(self.path), self.path, lost)
        self._feeder = None
        self._proc = None
        return clean

    def gone(self, timeout: float) -> bool:
        """After a ``close`` that timed out: wait up to ``timeout`` for the child (killed, but
        alive while a write to a stuck disk lasts) to end. True once none holds the file."""
        if self._fallback is not None:
            return self._fallback.gone(timeout)
        proc = self._stuck
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            self._stuck = None
        return True

    # -- threads -----------------------------------------------------------------------
    def _feed(self) -> None:
        """Write the queue to the child's pipe; start a new child when one died."""
        interval = self.flush_interval / 2
        failures = 0
        stop_sent = False
        while not self._closed and not self._stopped:
            self._wake.wait(interval)
            self._wake.clear()
            if self._closed or self._stopped:
                break
            proc = self._proc
            if proc is None or proc.poll() is not None:
                why = self._restart(proc)
                if why is not None:
                    # a child that cannot run at all: after a few tries, a thread instead; a
                    # database that cannot be written now (locked, disk full): retried
                    failures += why == "process"
                    if failures >= _RESTART_TRIES:
                        if self._fall_back():
                            return
                        failures = 0
                    time.sleep(_RESTART_EVERY)
                    self._wake.set()
                    continue
                failures = 0
                stop_sent = False
                proc = self._proc
                assert proc is not None
            if stop_sent:
                continue  # the child is writing its last batch; nothing more goes to it
            try:
                while (self._frames or self._dropped or self._refused) and not stop_sent:
                    stop_sent = self._send(proc)
            except OSError:  # the child died under us: the next round replaces it
                self._wake.set()
                continue
            if stop_sent:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

    def _send(self, proc: subprocess.Popen) -> bool:
        """One chunk of the queue to the child; True if it held the stop. Rows and loss
        counts are numbered as they go, so the numbers rise in the order the child reads
        them (rows sent again to a new child keep theirs and go first)."""
        out = []
        stop = False
        with self._lock:
            frames, inflight = self._frames, self._inflight
            loss = self._dropped or self._refused
            for _ in range(_CHUNK):
                f = frames[0] if frames else None
                if loss and (f is None or not f[0]):
                    self._seq += 1
                    body = orjson.dumps([self._dropped, self._refused, self._first_loss])
                    self._dropped = self._refused = 0
                    self._first_loss = None
                    loss = False
                    line = b"L%d %b\n" % (self._seq, body)
                    inflight.append((self._seq, b"L", line, 0))  # a loss count is chained too
                    out.append(line)
                if f is None:
                    break
                frames.popleft()
                seq, kind, body, n = f
                if seq:  # sent before, to a child that died: the line as it was
                    inflight.append(f)
                    out.append(body)
                elif kind == b"R" or kind == b"L":
                    self._seq += 1
                    seq = self._seq
                    line = b"%b%d %b\n" % (kind, seq, body)
                    # kept until the child has committed it, as the line (an exact-size copy)
                    inflight.append((seq, kind, line, n))
                    out.append(line)
                else:
                    out.append(body)
                    self._sent_to[int(body[1:].split(b" ", 1)[0])] = proc
                    if kind == b"S":
                        stop = True
                        break
        if out:
            proc.stdin.write(b"".join(out))  # blocks while the child catches up
            proc.stdin.flush()
        return stop

    def _restart(self, old: subprocess.Popen | None) -> str | None:
        """Start a child in place of ``old``: None if done, else why not ("process": it
        cannot run; "database": it could not open the database; "closed")."""
        if old is not None and old is self._proc:
            with self._lock:
                pending = sum(1 for f in self._inflight if f[1] == b"R")
            log.error(
                "mcp-gateway audit: the writer process for %s exited (code %s); starting a "
                "new one and sending it again the %d events not yet committed",
                self.path, old.returncode, pending,
            )  # fmt: skip
            self._proc = None
        if self._closed:
            return "closed"
        try:
            self._spawn()
        except WriterProcessError as e:
            log.error("mcp-gateway audit: cannot restart the writer process: %s", e)
            return "process"
        except AuditError as e:
            now = time.monotonic()
            if now - self._last_db_error > 10:
                self._last_db_error = now
                log.error("mcp-gateway audit: cannot restart the writer process: %s", e)
            return "database"
        self.restarts += 1
        return None

    def _fall_back(self) -> bool:
        """No child can be started: a writer thread in this process takes over, with every
        row not yet committed."""
        w = AuditWriter(
            self.path,
            queue_size=self.queue_size,
            flush_interval=self.flush_interval,
            start_detail={**self._start_detail, "fallback": "the writer process failed"},
        )
        try:
            w.open()
        except AuditError as e:
            log.error("mcp-gateway audit: no writer thread for %s either: %s", self.path, e)
            return False
        if self._closed:
            w.close(5.0)
            return False
        done = _committed_in(self.path, self._key)
        with self._lock:  # from here on, submit() hands rows to the thread
            frames = [*self._inflight, *self._frames]
            self._inflight.clear()
            self._frames.clear()
            acks = list(self._acks.values())
            self._acks.clear()
            self._sent_to.clear()
            w.count_loss(self._dropped, self._refused, self._first_loss)
            self._dropped = self._refused = 0
            self._held = 0
            self._fallback = w
        for seq, kind, body, _n in frames:
            if (seq and seq <= done) or kind not in (b"R", b"L"):
                continue
            item = orjson.loads(body.split(b" ", 1)[1] if seq else body)  # a line, or JSON
            if kind == b"R":
                w.queue.put_forced(item)  # past the bound: these were accepted already
            else:
                w.count_loss(*item)
        log.error(
            "mcp-gateway audit: no writer process could be started for %s; writing from a "
            "thread of the proxy instead",
            self.path,
        )
        for ev in acks:
            ev.set()
        return True

    def _read(self, proc: subprocess.Popen, ready: threading.Event, holder: dict) -> None:
        """The child's answers: ready or error, commits, acknowledgements, log records."""
        for line in proc.stdout:
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(msg, dict):
                continue
            if "c" in msg:
                done = int(msg["c"])
                with self._lock:
                    inflight = self._inflight
                    while inflight and inflight[0][0] <= done:
                        f = inflight.popleft()
                        self._held -= f[3]
                        if f[1] == b"R":
                            self.committed += 1
            elif "ack" in msg:
                with self._lock:
                    ok = bool(msg.get("ok"))
                    if ok and msg.get("stop"):
                        self._stopped = True  # whichever stop it answers: it is done
                    ev = self._acks.get(msg["ack"])
                    if ev is not None:
                        self._ack_ok[msg["ack"]] = ok
                        ev.set()
            elif "log" in msg:
                log.log(int(msg["log"]), "%s", msg.get("msg", ""))
            elif "ready" in msg:
                holder["committed"] = int(msg.get("committed") or 0)
                ready.set()
            elif "error" in msg:
                self._start_error = str(msg["error"])
                self._db_error = True
                ready.set()
        if not ready.is_set():
            self._start_error = self._start_error or "the audit writer process exited at start"
            ready.set()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # reap it
        if not self._stopped:
            # what the dead child had been asked cannot be answered any more (controls still
            # queued go to the next one)
            with self._lock:
                acks = [
                    self._acks[cid]
                    for cid, to in list(self._sent_to.items())
                    if to is proc and cid in self._acks
                ]
            for ev in acks:
                ev.set()
        self._wake.set()  # the feeder notices the exit


# -- the child ---------------------------------------------------------------------------


class _LineLog(logging.Handler):
    def __init__(self, send) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.exc_info:
                msg += "\n" + logging.Formatter().formatException(record.exc_info)
            self.send({"log": record.levelno, "msg": msg})
        except Exception:  # noqa: BLE001 - logging must never kill the writer
            pass


class _ChildWriter(AuditWriter):
    """Records in ``meta``, with each batch, the last sequence number it took (rows and
    loss counts alike), and reports it once committed."""

    def __init__(self, *a: Any, key: str, report, taken: int = 0, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._key = key
        self._report = report
        self._taken = taken  # writer thread only
        self._final = False

    def _take(self, item: Any, pending: list, markers: list) -> bool:
        if isinstance(item, _Marker) and item.stop and self._record_stop:
            self._final = True  # a clean stop: no other child will need the mark
        if isinstance(item, dict):
            self._taken = max(self._taken, item.pop("_n", 0))
            loss = item.get("_loss")
            if loss is not None:
                self.count_loss(*loss)
                return False
        return super()._take(item, pending, markers)

    def _meta_updates(self) -> dict[str, str | None]:
        return {self._key: None if self._final else str(self._taken)}

    def _commit(self, conn: sqlite3.Connection, rows: list[dict]) -> None:
        taken = self._taken
        super()._commit(conn, rows)
        self._report({"c": taken})


def main(argv: list[str] | None = None) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # the proxy ends us by closing the pipe
    with contextlib.suppress(OSError, AttributeError):
        # Background work: on a busy machine the proxy, its clients and servers go first
        # (a niceness of 5 still gives the writer a quarter of a core against a busy one,
        # several times what it needs at the proxy's top rate).
        os.nice(_NICE)
    cfg = orjson.loads((argv or sys.argv[1:])[0])
    out = sys.stdout.buffer
    out_lock = threading.Lock()

    def send(obj: dict) -> None:
        with out_lock:
            try:
                out.write(orjson.dumps(obj) + b"\n")
                out.flush()
            except (OSError, ValueError):
                pass  # the proxy is gone: the rows still get written

    log.handlers[:] = [_LineLog(send)]
    log.setLevel(logging.INFO)
    log.propagate = False
    # the last number committed by this writer's earlier children: the first batch of this
    # one must not write a lower one
    done = _committed_in(cfg["path"], cfg["key"]) if os.path.exists(cfg["path"]) else 0
    w = _ChildWriter(
        cfg["path"],
        key=cfg["key"],
        report=send,
        taken=done,
        queue_size=cfg["queue_size"],
        flush_interval=cfg["flush_interval"],
        start_detail={**cfg.get("start_detail", {}), "writer_pid": os.getpid()},
    )
    try:
        w.open()
    except AuditError as e:
        send({"error": str(e)})
        return 1
    except Exception as e:  # noqa: BLE001 - say why instead of a bare exit code
        send({"error": f"{type(e).__name__}: {e}"})
        return 1
    send({"ready": True, "committed": done})

    def put(item: dict) -> bool:
        while True:  # never drop here: a full queue stops the reading (back-pressure)
            try:
                w.queue.put_nowait(item)
                return True
            except queue.Full:
                if not w.running:
                    return False
                time.sleep(0.01)

    stop: tuple[int, float] | None = None
    try:
        stop = _read_pipe(w, send, put)
    except Exception:  # noqa: BLE001 - whatever happened, write what was received
        log.exception("mcp-gateway audit: the writer process failed reading its pipe")
    if not w.running:
        # the writer thread died: exit, and the proxy sends what was not committed to a new
        # process
        log.error("mcp-gateway audit: the writer process's thread stopped; exiting")
        w.close(1.0, record_stop=False)
        return 3
    # without a stop the pipe ended: the proxy is gone (killed); write everything it sent,
    # without a `stop` event (the stop was not clean)
    ok = w.close(stop[1] if stop else 28.0, record_stop=stop is not None)
    if stop is not None:
        send({"ack": stop[0], "ok": ok, "stop": True})
    return 0


def _read_pipe(w: AuditWriter, send, put) -> tuple[int, float] | None:
    """Rows and controls from the proxy until the stop (returned) or the pipe's end."""
    for line in sys.stdin.buffer:
        tag = line[:1]
        try:
            if tag == b"R" or tag == b"L":
                head, _, body = line.partition(b" ")
                n = int(head[1:])
                item = orjson.loads(body)
                item = item if tag == b"R" else {"_loss": item}
                if not isinstance(item, dict):
                    continue
                item["_n"] = n
                if not put(item):
                    return None
            elif tag == b"F":
                ok = w.flush(10.0)
                send({"ack": int(line[1:]), "ok": ok})
            elif tag == b"S":
                head, _, t = line.partition(b" ")
                return int(head[1:]), float(t or 28.0)
        except (ValueError, TypeError, orjson.JSONDecodeError):
            continue  # a line cut short: the proxy died while writing it
        if not w.running:
            return None
    return None


if __name__ == "__main__":
    sys.exit(main())
