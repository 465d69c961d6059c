"""The mitmproxy addon that plugs scanning into the gateway's pipeline.

    gw = Gateway(); addons = [gw, ..., ScanAddon(gw.pipeline), ...]

Options:
    mcp_rules       rule files or directories (empty: the shipped packs under rules/)
    mcp_max_findings  matches of one log/alert rule examined per message, ten times as
                      many for a redact/block rule, past which the message is blocked (0: all)
    mcp_redact_key  key for `hash` redaction (empty: $MCP_GATEWAY_REDACT_KEY, else random)

A bad rule file is refused in ``configure`` with an OptionsError naming file, line and field;
on a reload the running engine stays in place until the new one compiled, then is swapped
in one assignment, so in-flight messages finish with the engine they started with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions

from ..act import ActStage
from ..yamlconf import ConfigError
from .engine import Engine
from .stage import ScanStage

DEFAULT_MAX_FINDINGS = 500  # ~10 ms of confirmation work per rule and text

log = logging.getLogger("mcp_gateway")


class ScanAddon:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.stage: ScanStage | None = None
        self.act = ActStage()
        self._signature: tuple | None = None

    def load(self, loader) -> None:
        loader.add_option(
            "mcp_rules", Sequence[str], [],
            "Scanning rule files or directories, applied in order (a later rule with the same id "
            "overrides or disables an earlier one). Empty: the shipped packs.",
        )  # fmt: skip
        loader.add_option(
            "mcp_max_findings", int, DEFAULT_MAX_FINDINGS,
            "Matches of one log or alert rule examined per message (a batch's elements "
            "together); the rest are not examined and the message gets one more finding "
            "that says so. A redact or block rule may find ten times as many; past that the "
            "message is blocked whole. 0: no cap.",
        )  # fmt: skip
        loader.add_option(
            "mcp_redact_key", str, "",
            "Key for `hash` redaction (HMAC-SHA256). Empty: $MCP_GATEWAY_REDACT_KEY, else a "
            "random per-process key.",
        )  # fmt: skip

    def configure(self, updated) -> None:
        if "mcp_max_findings" in updated and ctx.options.mcp_max_findings < 0:
            raise exceptions.OptionsError(
                f"mcp_max_findings: must be 0 (no cap) or more, not {ctx.options.mcp_max_findings}"
            )
        if "mcp_rules" in updated or self.stage is None:
            paths = list(ctx.options.mcp_rules or [])
            sig = _signature(paths)
            if self.stage is not None and sig is not None and sig == self._signature:
                return self._configure_key(updated)  # unchanged files (e.g. a rollback)
            try:
                engine = Engine.load(paths or None, time_regexes=True)
            except ConfigError as e:
                raise exceptions.OptionsError(f"mcp_rules: {e}") from None
            except OSError as e:
                raise exceptions.OptionsError(f"mcp_rules: {e}") from None
            self._signature = sig
            engine.finding_cap = ctx.options.mcp_max_findings or None
            if self.stage is None:
                self.stage = ScanStage(engine)
            else:
                self.stage.engine = engine  # atomic swap
            self.pipeline.add(self.stage)
            self.pipeline.add(self.act)
            log.info(
                "mcp-gateway: %d scanning rules loaded from %s",
                len(engine.rules), ", ".join(engine.sources),
            )  # fmt: skip
        self._configure_key(updated)

    def _configure_key(self, updated) -> None:
        if "mcp_max_findings" in updated and self.stage is not None:
            self.stage.engine.finding_cap = ctx.options.mcp_max_findings or None
        if "mcp_redact_key" in updated:
            self.act.set_key(ctx.options.mcp_redact_key or None)

    def done(self) -> None:
        pass


def _signature(paths: list[str]) -> tuple | None:
    """Identity of the rule files (path, mtime, size): reloading the same files is a no-op."""
    from .rules import _expand, default_paths

    try:
        files = _expand(paths) if paths else default_paths()
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return None


__all__ = ["ScanAddon"]
