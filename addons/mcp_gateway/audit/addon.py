"""``AuditAddon``: the mitmproxy addon that owns the audit writer and registers the stage.

Modelled on mitmproxy's ``addons/save.py``: typed options in ``load``, the file is opened
and validated in ``configure`` (an unusable database is an ``OptionsError`` at start-up),
``done`` writes everything still queued and closes it.  All hooks are synchronous.
"""

from __future__ import annotations

import logging
import os

from mitmproxy import ctx, exceptions

from .schema import default_db
from .stage import AuditStage
from .writer import DEFAULT_QUEUE_SIZE, AuditError, AuditWriter

log = logging.getLogger("mcp_gateway")

ON_FULL_CHOICES = ("block", "drop")


def resolve_path(spec: str) -> str:
    return os.path.abspath(os.path.expanduser(spec))


class AuditAddon:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.writer: AuditWriter | None = None
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
            "Events the audit queue holds while the writer thread catches up.",
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
        if "mcp_audit_db" in updated or "mcp_audit_queue_size" in updated:
            spec = opts.mcp_audit_db
            path = resolve_path(spec) if spec else None
            if path != self.path or (
                self.writer is not None and self.writer.queue.maxsize != opts.mcp_audit_queue_size
            ):
                self._reopen(path, opts.mcp_audit_queue_size)
        if self.stage is not None:
            self.stage.on_full = opts.mcp_audit_on_full
            self.stage.store_payloads = opts.mcp_audit_store_payloads

    def _reopen(self, path: str | None, queue_size: int) -> None:
        new = None
        if path:
            new = AuditWriter(
                path,
                queue_size=queue_size,
                start_detail={
                    "on_full": ctx.options.mcp_audit_on_full,
                    "store_payloads": ctx.options.mcp_audit_store_payloads,
                },
            )
            try:
                new.open()
            except AuditError as e:
                raise exceptions.OptionsError(str(e)) from e
        self._close()
        self.path = path
        if new is None:
            log.info("mcp-gateway audit: disabled (mcp_audit_db is empty)")
            return
        self.writer = new
        self.stage = AuditStage(
            new,
            on_full=ctx.options.mcp_audit_on_full,
            store_payloads=ctx.options.mcp_audit_store_payloads,
        )
        self.pipeline.add(self.stage)
        log.info("mcp-gateway audit: recording to %s", path)

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
