"""``AuditAddon``: the mitmproxy addon that owns the audit writer and registers the stage.

Modelled on mitmproxy's ``addons/save.py``: typed options in ``load``, the file is opened
and validated in ``configure`` (an unusable database is an ``OptionsError`` at start-up),
``done`` writes everything still queued and closes it.  All hooks are synchronous.

mitmproxy calls ``done`` only once ``running`` was called: when start-up fails after the
options were configured (the port is taken, another addon's option is refused), mitmdump
exits with ``sys.exit(1)`` and no hook runs. The writer is then closed at interpreter exit,
so the trail records a ``stop`` like any clean shutdown instead of ending as a killed
gateway's does.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref

from mitmproxy import ctx, exceptions

from .proc import ProcessWriter, WriterProcessError
from .schema import default_db
from .stage import AuditStage
from .writer import DEFAULT_QUEUE_SIZE, AuditError, AuditWriter

log = logging.getLogger("mcp_gateway")

ON_FULL_CHOICES = ("block", "drop")


def resolve_path(spec: str) -> str:
    return os.path.abspath(os.path.expanduser(spec))


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


class AuditAddon:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.writer: AuditWriter | ProcessWriter | None = None
        self.stage: AuditStage | None = None
        self.path: str | None = None

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
                self._reopen(path, opts.mcp_audit_queue_size)
        if self.stage is not None:
            self.stage.on_full = opts.mcp_audit_on_full
            self.stage.store_payloads = opts.mcp_audit_store_payloads

    def _reopen(self, path: str | None, queue_size: int) -> None:
        detail = {
            "on_full": ctx.options.mcp_audit_on_full,
            "store_payloads": ctx.options.mcp_audit_store_payloads,
        }
        new = failed = None
        if path and path == self.path and self.writer is not None:
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
        if self.stage is not None:
            self.pipeline.remove(self.stage.name)
            self.stage = None
        if self.writer is not None:
            self.writer.close(timeout=15)  # bounded: a dead disk must not hang shutdown
            self.writer = None
        self.path = None

    def done(self) -> None:
        self._close()
