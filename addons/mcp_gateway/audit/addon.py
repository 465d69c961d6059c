"""``AuditAddon``: the mitmproxy addon that owns the audit writer and registers the stage.

Modelled on mitmproxy's ``addons/save.py``: typed options in ``load``, the file is opened
and validated in ``configure`` (an unusable database is an ``OptionsError`` at start-up),
``done`` writes everything still queued and closes it.  All hooks are synchronous.

mitmproxy calls ``done`` only once ``running`` was called: when start-up fails after the
options were configured (the port is taken, another addon's option is refused), mitmdump
exits with ``sys.exit(1)`` and no hook runs. The writer is then closed at interpreter exit,
so the trail records a ``stop`` like any clean shutdown instead of ending as a killed
gateway's does.

Once the proxy runs, a change of ``mcp_audit_db``, ``mcp_audit_queue_size`` or
``mcp_audit_process`` (mitmweb's options, ``ctx.options.update``) does not reopen the writer on
the event loop: closing a writer waits for its queue to be committed (up to 15 s) and opening
one starts a child process and checks the file (~0.1-1 s), and every client waited that long.
The new writer opens in a thread while the old one records; the stage then switches to it at
once and the old one is closed in a thread (each row goes to one of the two trails). On the
same file, the old writer ends its chain first, and rows arriving meanwhile wait in memory
(bounded by the queue size, ``mcp_audit_on_full`` beyond it) and go to the new writer first.
A new file that cannot be opened is logged, the old writer goes on, and the options are set
back.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from typing import Any

from mitmproxy import ctx, exceptions

from .proc import ProcessWriter, WriterProcessError
from .schema import default_db
from .stage import AuditStage
from .writer import DEFAULT_QUEUE_SIZE, AuditError, AuditWriter

log = logging.getLogger("mcp_gateway")

ON_FULL_CHOICES = ("block", "drop")
CLOSE_TIMEOUT = 15.0  # s: a switch waits so long for the old writer to end cleanly
_GONE_STEP = 1.0  # s: then it waits in such steps for one stuck on the disk to end


class _StuckWriter(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"the old writer of {path} is stuck on the disk")


def resolve_path(spec: str) -> str:
    return os.path.abspath(os.path.expanduser(spec))


def same_file(a: str | None, b: str | None) -> bool:
    """Whether two trail paths name one file: another spelling (a symlinked directory, a
    hard link) is the same trail, whose writer must end its chain before another opens it
    (two writers at once recorded the other's rows as `foreign`)."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # (not there yet: where each one leads)
        return os.path.realpath(a) == os.path.realpath(b)


_OPEN: weakref.WeakSet[AuditAddon] = weakref.WeakSet()  # addons holding a writer


@atexit.register
def _close_at_exit() -> None:
    """Close the writers ``done`` never closed (registered after ``logging`` was imported, so
    it runs before logging shuts down)."""
    for addon in list(_OPEN):
        if addon.writer is not None:
            try:
                addon._close()
            except Exception:  # noqa: BLE001 - interpreter exit: nothing else to do
                log.exception("mcp-gateway audit: closing the trail at exit failed")


class _Held:
    """Rows held in memory while the same file's writer is closed and opened again (a
    runtime change of the queue size or of thread vs process): bounded like the queue."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.rows: list[dict[str, Any]] = []
        self.dropped = self.refused = 0

    def submit(self, row: dict[str, Any], *, refused_if_full: bool = False) -> bool:
        if len(self.rows) < self.queue_size:
            self.rows.append(row)
            return True
        if refused_if_full:
            self.refused += 1
        else:
            self.dropped += 1
        return False

    def submit_many(self, rows: list[dict[str, Any]]) -> bool:
        if self.rows and len(self.rows) + len(rows) > self.queue_size:
            self.refused += len(rows)
            return False
        self.rows.extend(rows)
        return True

    def hand_to(self, writer: Any) -> None:
        """Everything held, to the writer that takes over (in order, before any new row)."""
        if self.rows and not writer.submit_many(self.rows):
            for row in self.rows:
                writer.submit(row)  # (a smaller queue: what does not fit is counted)
        if self.dropped or self.refused:
            writer.count_loss(dropped=self.dropped, refused=self.refused)
        self.rows = []


class AuditAddon:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.writer: AuditWriter | ProcessWriter | None = None
        self.stage: AuditStage | None = None
        self.path: str | None = None
        self._live = False  # the proxy runs: option changes reopen off the event loop
        self._switch: threading.Thread | None = None  # a reopen under way
        self._closing: list[threading.Thread] = []  # old writers being closed
        self._settings: tuple[str, int, bool] | None = None  # what the writer was opened with
        self._pending: tuple | None = None  # a finished reopen, for the loop to apply
        self._stopping = threading.Event()  # shutdown: a switch stops waiting

    def running(self) -> None:
        self._live = True

    def load(self, loader) -> None:
        loader.add_option(
            "mcp_audit_db",
            str,
            default_db(),
            """
            SQLite file of the audit trail (one row per MCP message, tamper-evident hash
            chain, head kept in <file>.head). Empty string disables auditing.
            """,
        )
        loader.add_option(
            "mcp_audit_queue_size",
            int,
            DEFAULT_QUEUE_SIZE,
            """
            Events the audit queue holds while the writer catches up (counting those sent to
            the writer's process and not yet committed). Stored payloads
            (mcp_audit_store_payloads) have a budget of their own, this many KiB, until
            written; one larger than that is taken when no other waits. Beyond either,
            mcp_audit_on_full applies.
            """,
        )
        loader.add_option(
            "mcp_audit_on_full",
            str,
            "block",
            """
            When the audit queue is full: "block" refuses the message with a JSON-RPC error
            (nothing passes unrecorded), "drop" forwards it and counts the loss in the audit.
            """,
        )
        loader.add_option(
            "mcp_audit_store_payloads",
            bool,
            False,
            """
            Store JSON-RPC params/results in the audit, after redaction (finding spans are
            masked). Off by default: only metadata is recorded.
            """,
        )
        loader.add_option(
            "mcp_audit_process",
            bool,
            True,
            """
            Write the audit from a child process (python -m mcp_gateway.audit.proc) rather
            than a thread of the proxy: the writer's Python work then no longer competes with
            the event loop for the GIL. Falls back to the thread if the child cannot start.
            """,
        )

    def configure(self, updated) -> None:
        opts = ctx.options
        if "mcp_audit_on_full" in updated and opts.mcp_audit_on_full not in ON_FULL_CHOICES:
            raise exceptions.OptionsError(
                f"mcp_audit_on_full must be one of {', '.join(ON_FULL_CHOICES)}, "
                f"not {opts.mcp_audit_on_full!r}"
            )
        if "mcp_audit_queue_size" in updated and opts.mcp_audit_queue_size < 1:
            raise exceptions.OptionsError(
                f"mcp_audit_queue_size must be at least 1, not {opts.mcp_audit_queue_size}"
            )
        if updated & {"mcp_audit_db", "mcp_audit_queue_size", "mcp_audit_process"}:
            spec = opts.mcp_audit_db
            path = resolve_path(spec) if spec else None
            w = self.writer
            if (
                path != self.path
                or (w is not None and w.queue_size != opts.mcp_audit_queue_size)
                or (w is not None and isinstance(w, ProcessWriter) != opts.mcp_audit_process)
            ):
                if self._switch is not None:
                    raise exceptions.OptionsError(
                        "mcp-gateway audit: the audit trail is being reopened; set the audit "
                        "options again once it is"
                    )
                try:
                    loop = asyncio.get_running_loop() if self._live else None
                except RuntimeError:
                    loop = None
                if loop is None:
                    self._reopen(path, opts.mcp_audit_queue_size)
                else:
                    self._reopen_off_loop(loop, path, opts.mcp_audit_queue_size)
                    return  # (the stage's options are set when it switches)
        if self.stage is not None:
            self.stage.on_full = opts.mcp_audit_on_full
            self.stage.store_payloads = opts.mcp_audit_store_payloads

    def _reopen(self, path: str | None, queue_size: int) -> None:
        detail = {
            "on_full": ctx.options.mcp_audit_on_full,
            "store_payloads": ctx.options.mcp_audit_store_payloads,
        }
        new = failed = None
        if path and same_file(path, self.path) and self.writer is not None:
            # The same file (a new queue size, or thread vs process): the old writer ends its
            # chain first. Opened before that, the new one would take the old one's last
            # rows for another process's and record a false `foreign` event. If the new one
            # fails to open, the old settings are opened again at once (mitmproxy then rolls
            # the options back), so the audit does not stop.
            old_size, old_proc = self.writer.queue_size, isinstance(self.writer, ProcessWriter)
            self._close()
            try:
                new = self._open_writer(path, queue_size, detail)
            except exceptions.OptionsError as e:
                failed = e
                try:
                    new = self._open_writer(path, old_size, detail, process=old_proc)
                except exceptions.OptionsError as e2:
                    log.error(
                        "mcp-gateway audit: cannot reopen %s (%s); messages are NOT audited "
                        "until mcp_audit_db or another audit option is set again",
                        path,
                        e2,
                    )
                    raise e from e2
        elif path:
            new = self._open_writer(path, queue_size, detail)
        self._close()
        self.path = path
        if new is None:
            log.info("mcp-gateway audit: disabled (mcp_audit_db is empty)")
            return
        self.writer = new
        self._settings = (ctx.options.mcp_audit_db, new.queue_size, isinstance(new, ProcessWriter))
        _OPEN.add(self)
        self.stage = AuditStage(
            new,
            on_full=ctx.options.mcp_audit_on_full,
            store_payloads=ctx.options.mcp_audit_store_payloads,
        )
        self.pipeline.add(self.stage)
        log.info("mcp-gateway audit: recording to %s", path)
        if failed is not None:
            raise failed  # (the old settings record; mitmproxy restores the options)

    def _reopen_off_loop(
        self, loop: asyncio.AbstractEventLoop, path: str | None, queue_size: int
    ) -> None:
        """The runtime switch (see the module's text): nothing here waits on the disk, a
        child process or a queue; a thread does, and the loop only swaps objects."""
        opts = ctx.options
        detail = {
            "on_full": opts.mcp_audit_on_full,
            "store_payloads": opts.mcp_audit_store_payloads,
        }
        process = opts.mcp_audit_process
        old, stage, settings = self.writer, self.stage, self._settings
        if path is None:
            if stage is not None:
                self.pipeline.remove(stage.name)
            self.stage = self.writer = None
            self.path = None
            self._settings = None
            if old is not None:
                self._close_later(old)
            log.info("mcp-gateway audit: disabled (mcp_audit_db is empty)")
            return
        same = same_file(path, self.path) and old is not None
        held = None
        if same and stage is not None:
            held = _Held(old.queue_size)
            stage.writer = held  # (rows wait here while the file changes hands)
        spec = opts.mcp_audit_db

        def work() -> None:
            new = err = None
            if same:
                old.close(timeout=CLOSE_TIMEOUT)
                # A writer still stuck on the disk past that timeout holds the file: a new
                # one opened beside it had the old one's rows land after its own `start`
                # when the disk came back (`foreign` events, a broken chain). The switch
                # waits for it (rows are held meanwhile, bounded), for as long as the disk
                # is stuck, or until shutdown.
                waited = 0.0
                gone = getattr(old, "gone", None) or (lambda _timeout: True)
                while not gone(_GONE_STEP):
                    waited += _GONE_STEP
                    if self._stopping.is_set():
                        self._pending = (path, spec, None, _StuckWriter(path), old, held, settings)
                        return
                    if waited % 60 < _GONE_STEP:
                        log.error(
                            "mcp-gateway audit: the old writer of %s has been stuck on the "
                            "disk for %d s; the switch waits for it (events held, up to %d)",
                            path,
                            waited,
                            held.queue_size if held is not None else 0,
                        )
            try:
                new = self._open_writer(path, queue_size, detail, process=process)
            except Exception as e:  # noqa: BLE001 - OptionsError, or anything opening raised
                err = e
                if same and settings is not None:
                    try:  # the old settings, at once, so the audit does not stop
                        new = self._open_writer(path, settings[1], detail, process=settings[2])
                    except Exception as e2:  # noqa: BLE001
                        log.error(
                            "mcp-gateway audit: cannot reopen %s (%s); messages are NOT "
                            "audited until mcp_audit_db or another audit option is set again",
                            path,
                            e2,
                        )
            self._pending = (path, spec, new, err, old, held, settings)
            try:
                loop.call_soon_threadsafe(self._apply_switch)
            except RuntimeError:
                pass  # (the loop is closed: done() applies it)

        self._switch = threading.Thread(target=work, name="mcp-audit-reopen", daemon=True)
        self._switch.start()

    def _apply_switch(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._switched(*pending)

    def _switched(self, path, spec, new, err, old, held, settings) -> None:
        """On the event loop: the new writer takes over (or, if it failed, the old settings
        are set back)."""
        self._switch = None
        same = old is not None and held is not None
        opts = ctx.options
        if err is not None:
            log.error("mcp-gateway audit: cannot switch the audit trail to %s: %s", path, err)
        if new is None and not same and err is not None:
            # a new file that cannot be opened: the old writer goes on as it was
            self._restore(settings)
            return
        stage = self.stage
        if new is None:  # the same file, reopened with neither setting: nothing records
            if stage is not None:
                self.pipeline.remove(stage.name)
            self.stage = self.writer = None
            self.path = None
            if held is not None and held.rows:
                log.error("mcp-gateway audit: %d rows held during the switch lost", len(held.rows))
            return
        if held is not None:
            held.hand_to(new)
        self.writer = new
        self.path = path
        self._settings = (spec, new.queue_size, isinstance(new, ProcessWriter))
        _OPEN.add(self)
        if stage is None:
            stage = self.stage = AuditStage(new)
            self.pipeline.add(stage)
        stage.writer = new
        stage.on_full = opts.mcp_audit_on_full
        stage.store_payloads = opts.mcp_audit_store_payloads
        if old is not None and not same:
            self._close_later(old)
        log.info("mcp-gateway audit: recording to %s", path)
        if err is not None:
            self._restore(settings)  # (reopened with the old settings)

    def _restore(self, settings: tuple[str, int, bool] | None) -> None:
        if settings is None:  # (the audit was off: it stays off, and says so)
            try:
                ctx.options.update(mcp_audit_db="")
            except exceptions.OptionsError as e:
                log.error("mcp-gateway audit: could not set the audit options back: %s", e)
            return
        spec, size, process = settings
        try:
            ctx.options.update(
                mcp_audit_db=spec, mcp_audit_queue_size=size, mcp_audit_process=process
            )
        except exceptions.OptionsError as e:
            log.error("mcp-gateway audit: could not set the audit options back: %s", e)

    def _close_later(self, old: Any) -> None:
        t = threading.Thread(
            target=old.close, kwargs={"timeout": 15}, name="mcp-audit-close", daemon=True
        )
        self._closing.append(t)
        t.start()

    def _wait_for_switches(self) -> None:
        t = self._switch
        if t is not None:
            self._stopping.set()  # (a switch waiting on a stuck writer gives up)
            t.join(40)  # (bounded: a close and two opens)
            self._apply_switch()  # (the loop may not run it any more)
            self._stopping.clear()
        for t in self._closing:
            t.join(20)
        self._closing = []

    @staticmethod
    def _open_writer(
        path: str, queue_size: int, detail: dict, process: bool | None = None
    ) -> AuditWriter | ProcessWriter:
        if ctx.options.mcp_audit_process if process is None else process:
            pw = ProcessWriter(path, queue_size=queue_size, start_detail=detail)
            try:
                pw.open()
                return pw
            except WriterProcessError as e:
                log.warning("mcp-gateway audit: %s; writing from a thread instead", e)
            except AuditError as e:
                # (its message says it all: chained, the start-up's traceback showed it twice)
                raise exceptions.OptionsError(str(e)) from None
        w = AuditWriter(path, queue_size=queue_size, start_detail=detail)
        try:
            w.open()
        except AuditError as e:
            raise exceptions.OptionsError(str(e)) from None
        return w

    def _close(self) -> None:
        self._wait_for_switches()
        if self.stage is not None:
            self.pipeline.remove(self.stage.name)
            self.stage = None
        if self.writer is not None:
            self.writer.close(timeout=15)  # bounded: a dead disk must not hang shutdown
            self.writer = None
        self.path = None

    def done(self) -> None:
        self._close()
