"""The audit writer in a process of its own (the default; ``mcp_audit_process``).

In the proxy's process the writer thread held the GIL for ~40 us of Python per row (linking
the hash chain, coercing values, binding SQLite parameters), and every time the event loop
let the GIL go (each Hyperscan scan does) the writer could take it for milliseconds. Streaming
2000 events, that was about half of the gateway's CPU per event on the event loop's thread.

Here the proxy only serializes each row (orjson, ~2 us) onto an in-memory deque; a feeder
thread writes the deque to a pipe every ``flush_interval / 2`` seconds; a child process
(``python -m mcp_gateway.audit.proc``) runs the unchanged :class:`~.writer.AuditWriter` on
the other end. What stays the same:

- the interface (``open``, ``submit``, ``flush``, ``close``, ``running``): the stage and the
  addon do not know which writer they have;
- bounded memory and no silent loss: the deque holds at most ``queue_size`` rows; beyond it a
  row is dropped or refused (``mcp_audit_on_full``) and the count is sent to the child, which
  records it in the chain like the thread writer does. The child never drops: when its own
  queue is full it stops reading the pipe, so the pipe and then the deque fill up;
- a clean shutdown writes everything: ``close`` sends a stop after the last row and waits for
  the child to commit and write its ``stop`` event.

And what is better: if the proxy is killed (``kill -9``), the child reads the end of the pipe,
commits every row it was sent and exits (no ``stop`` event: the stop was not clean), so at
most the last ``flush_interval / 2`` seconds are lost instead of a whole batch. The child
ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): it ends when the pipe
does. If the child dies, the proxy logs it, starts another one and goes on; rows already in
the dead child's pipe are lost with it, and the log says how many were sent since its last
acknowledged commit. Log records of the child are re-logged by the proxy on the
"mcp_gateway" logger, so they show in mitmdump's output and mitmweb's event log.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from .writer import DEFAULT_QUEUE_SIZE, AuditError, AuditWriter, _sanitize

log = logging.getLogger("mcp_gateway")

_START_TIMEOUT = 20.0  # seconds for the child to import, open the database and say ready
_RESTART_EVERY = 2.0  # seconds between attempts to start a child that died
_CHUNK = 4096  # frames written to the pipe in one go
_NICE = 5


class WriterProcessError(AuditError):
    """The child could not be started at all (no usable interpreter, import failure): the
    addon then falls back to the writer thread. A database problem is an AuditError."""


def _frame(row: dict[str, Any]) -> bytes | None:
    """One row as one JSON line; None if it cannot be serialized even after cleaning."""
    try:
        return orjson.dumps(row)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:  # lone surrogates, integers beyond 64 bits, NaN
        return orjson.dumps(_sanitize(row), default=str)
    except (orjson.JSONEncodeError, TypeError, ValueError):
        return None


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
        self._frames: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._dropped = 0
        self._refused = 0
        self._first_loss: float | None = None
        self.clock = time.time
        self.total_dropped = 0
        self.total_refused = 0
        self._acks: dict[int, threading.Event] = {}
        self._ack_ok: dict[int, bool] = {}
        self._next_id = 0
        self._proc: subprocess.Popen | None = None
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._db_error = False  # the child started and refused the database
        self._feeder: threading.Thread | None = None
        self._closing = False
        self._sent_since_ack = 0  # rows written to the current child since its last ack
        self.committed = 0  # message rows the child reported committed
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
            "queue_size": self.queue_size,
            "flush_interval": self.flush_interval,
            "start_detail": {**self._start_detail, "pid": os.getpid()},
        }
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])  # the dir holding mcp_gateway
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        ready = threading.Event()
        self._ready = ready
        self._start_error = None
        self._db_error = False
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_gateway.audit.proc", orjson.dumps(cfg).decode()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
            )
        except OSError as e:
            raise WriterProcessError(f"cannot start the audit writer process: {e}") from e
        threading.Thread(
            target=self._read, args=(proc, ready), name="mcp-gateway-audit-reader", daemon=True
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
        self._proc = proc
        self._sent_since_ack = 0

    @property
    def running(self) -> bool:
        return (
            self._feeder is not None
            and self._feeder.is_alive()
            and self._proc is not None
            and not self._closing
        )

    # -- the proxy's side ----------------------------------------------------------------
    def submit(self, row: dict[str, Any], *, refused_if_full: bool = False) -> bool:
        """Hand one row to the writer without blocking. False if the queue was full."""
        if len(self._frames) < self.queue_size:
            frame = _frame(row)
            if frame is not None:
                self._frames.append(frame)
                return True
            log.error("mcp-gateway audit: a row could not be serialized; counted as dropped")
            refused_if_full = False
        if refused_if_full:
            self.count_loss(refused=1)
        else:
            self.count_loss(dropped=1)
        return False

    count_loss = AuditWriter.count_loss  # the same counters: sent to the child by _send

    def _control(self, kind: str, **kw: Any) -> tuple[int, threading.Event]:
        with self._lock:
            self._next_id += 1
            cid = self._next_id
            ev = self._acks[cid] = threading.Event()
        self._frames.append(orjson.dumps({"_ctl": kind, "id": cid, **kw}))
        self._wake.set()
        return cid, ev

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed."""
        if not self.running:
            return False
        cid, ev = self._control("flush", timeout=timeout)
        ok = ev.wait(timeout)
        return ok and self._ack_ok.pop(cid, False)

    def close(self, timeout: float = 30.0) -> bool:
        """Write everything still queued plus a ``stop`` event, then end the child."""
        if self._feeder is None:
            return True
        deadline = time.monotonic() + timeout
        cid, ev = self._control("stop", timeout=max(1.0, timeout - 2))
        self._closing = True
        self._wake.set()
        self._feeder.join(max(0.0, deadline - time.monotonic()))
        clean = ev.wait(max(0.0, deadline - time.monotonic())) and self._ack_ok.pop(cid, False)
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=max(0.5, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                clean = False
                log.error(
                    "mcp-gateway audit: the writer process did not finish writing to %s before "
                    "shutdown; stopping it",
                    self.path,
                )
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._feeder = None
        self._proc = None
        return clean

    # -- threads -----------------------------------------------------------------------
    def _feed(self) -> None:
        """Write the deque to the child's pipe; start a new child if it died."""
        interval = self.flush_interval / 2
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            proc = self._proc
            if proc is None or proc.poll() is not None:
                if not self._restart():
                    if self._closing:
                        self._fail_pending()
                        return
                    time.sleep(_RESTART_EVERY)
                    continue
                proc = self._proc
                assert proc is not None
            try:
                while self._frames:
                    self._send(proc)
                    if self._closing and not self._frames:
                        break
            except OSError:  # the child died under us: its reader reports it
                continue
            if self._closing and not self._frames:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                return

    def _send(self, proc: subprocess.Popen) -> None:
        out = []
        with self._lock:
            if self._dropped or self._refused:
                out.append(
                    orjson.dumps(
                        {
                            "_ctl": "loss",
                            "dropped": self._dropped,
                            "refused": self._refused,
                            "first": self._first_loss,
                        }
                    )
                )
                self._dropped = self._refused = 0
                self._first_loss = None
        rows = 0
        frames = self._frames
        for _ in range(_CHUNK):
            try:
                f = frames.popleft()
            except IndexError:
                break
            out.append(f)
            rows += not f.startswith(b'{"_ctl"')
        if not out:
            return
        self._sent_since_ack += rows
        proc.stdin.write(b"\n".join(out) + b"\n")  # blocks while the child catches up
        proc.stdin.flush()

    def _restart(self) -> bool:
        old = self._proc
        if old is not None:
            lost = self._sent_since_ack
            log.error(
                "mcp-gateway audit: the writer process for %s exited (code %s); up to %d "
                "events sent to it since its last commit may be lost; starting a new one",
                self.path, old.returncode, lost,
            )  # fmt: skip
            self._proc = None
        try:
            self._spawn()
        except AuditError as e:
            log.error("mcp-gateway audit: cannot restart the writer process: %s", e)
            return False
        self.restarts += 1
        return True

    def _fail_pending(self) -> None:
        with self._lock:
            acks = list(self._acks.values())
            self._acks.clear()
        for ev in acks:
            ev.set()

    def _read(self, proc: subprocess.Popen, ready: threading.Event) -> None:
        """The child's answers: ready or error, acknowledgements, log records."""
        for line in proc.stdout:
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(msg, dict):
                continue
            if "ack" in msg:
                self.committed = msg.get("committed", self.committed)
                self._sent_since_ack = 0
                with self._lock:
                    ev = self._acks.pop(msg["ack"], None)
                if ev is not None:
                    self._ack_ok[msg["ack"]] = bool(msg.get("ok"))
                    ev.set()
            elif "log" in msg:
                log.log(int(msg["log"]), "%s", msg.get("msg", ""))
            elif "ready" in msg:
                ready.set()
            elif "error" in msg:
                self._start_error = str(msg["error"])
                self._db_error = True
                ready.set()
        if not ready.is_set():
            self._start_error = self._start_error or "the audit writer process exited at start"
            ready.set()
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


def main(argv: list[str] | None = None) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
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
    w = AuditWriter(
        cfg["path"],
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
    send({"ready": True})
    stop: dict | None = None
    for line in sys.stdin.buffer:
        if line.startswith(b'{"_ctl"'):
            ctl = orjson.loads(line)
            kind = ctl.get("_ctl")
            if kind == "loss":  # the proxy's losses, recorded like our own
                first = ctl.get("first")
                w.count_loss(
                    int(ctl.get("dropped") or 0),
                    int(ctl.get("refused") or 0),
                    float(first) if isinstance(first, int | float) else None,
                )
            elif kind == "flush":
                ok = w.flush(float(ctl.get("timeout") or 10.0))
                send({"ack": ctl.get("id"), "ok": ok, "committed": w.committed})
            elif kind == "stop":
                stop = ctl
                break
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        while True:  # never drop here: a full queue stops the reading (back-pressure)
            try:
                w.queue.put_nowait(row)
                break
            except queue.Full:
                if not w.running:
                    w.submit(row)  # counted as dropped
                    break
                time.sleep(0.01)
    if stop is not None:
        ok = w.close(float(stop.get("timeout") or 28.0))
        send({"ack": stop.get("id"), "ok": ok, "committed": w.committed})
        return 0
    # The pipe ended without a stop: the proxy is gone (killed). Write everything it sent,
    # without a `stop` event: the stop was not clean.
    w.close(28.0, record_stop=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
