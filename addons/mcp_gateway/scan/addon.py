"""The mitmproxy addon that plugs scanning into the gateway's pipeline.

    gw = Gateway(); addons = [gw, ..., ScanAddon(gw.pipeline), ...]

Options:
    mcp_rules       rule files or directories (empty: the shipped packs under rules/)
    mcp_max_findings  matches of one log/alert rule examined per message, ten times as
                      many for a redact/block rule, past which the message is blocked (0: all)
    mcp_max_scan_ms  milliseconds one message's scan may take, past which it was not
                      inspected and mcp_fail_mode decides (0: no limit)
    mcp_redact_key  key for `hash` redaction (empty: $MCP_GATEWAY_REDACT_KEY, else random)

A bad rule file is refused in ``configure`` with an OptionsError naming file, line and field;
on a reload the running engine stays in place until the new one compiled, then is swapped
in one assignment, so in-flight messages finish with the engine they started with.

While running, a watcher thread looks at the rule files (path, mtime, size, inode, ctime;
a directory's YAML files) every second. An edit that has stayed the same for a second is compiled in
that thread (Hyperscan compiles without the GIL: the event loop goes on) and swapped in on
the event loop; one that would drop a rule, weaken its action or let more through (an
allowlist entry added, a scope narrowed) waits five seconds first (an editor writes a file
in parts) and says so; a bad edit is logged and the running rules
stay.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from mitmproxy import ctx, exceptions

from ..act import ActStage
from ..identity.logutil import problem
from ..settle import Settle
from ..yamlconf import ConfigError
from .engine import Engine, _action_rank
from .stage import ScanStage

DEFAULT_MAX_FINDINGS = 500  # ~10 ms of confirmation work per rule and text
# Ordinary messages scan at ~75 MB/s (16 MiB: ~0.2 s); dense candidates that all fail
# confirmation at ~1 MB/s, so a crafted 16 MiB message held the event loop ~15 s.
DEFAULT_MAX_SCAN_MS = 5000
WATCH_INTERVAL = 1.0
# as for the configuration file (identity.addon): applied once unchanged this long, and
# longer when the new rules would find less
SETTLE_SECONDS = 1.0
SETTLE_WEAKER_SECONDS = 5.0

log = logging.getLogger("mcp_gateway")


class ScanAddon:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.stage: ScanStage | None = None
        self.act = ActStage()
        self._signature: tuple | None = None
        self._paths: list[str] = []
        self._gen = 0  # counts loads by configure: a watcher's load started before is dropped
        self._bad: tuple | None = None  # signature of files that failed to load
        self._unreadable = False  # a rule file is missing or unreadable (logged once)
        self._settle = Settle()  # of an edit
        self.settle = (SETTLE_SECONDS, SETTLE_WEAKER_SECONDS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

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
            "mcp_max_scan_ms", int, DEFAULT_MAX_SCAN_MS,
            "Milliseconds the scan of one message (a batch's elements together) may take. Past "
            "them the message was not inspected whole and mcp_fail_mode decides: closed "
            "answers -32065, open passes it on unchanged. The event loop is held meanwhile. "
            "0: no limit.",
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
        if "mcp_max_scan_ms" in updated and ctx.options.mcp_max_scan_ms < 0:
            raise exceptions.OptionsError(
                f"mcp_max_scan_ms: must be 0 (no limit) or more, not {ctx.options.mcp_max_scan_ms}"
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
            self._paths = paths
            self._gen += 1
            self._bad = None
            self._settle.forget()
            _bound(engine)
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
        if updated & {"mcp_max_findings", "mcp_max_scan_ms"} and self.stage is not None:
            _bound(self.stage.engine)
        if "mcp_redact_key" in updated:
            self.act.set_key(ctx.options.mcp_redact_key or None)

    def running(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name="mcp-gateway-rules", daemon=True
            )
            self._thread.start()

    def done(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._thread = None

    # -- the watcher thread ---------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the watcher must survive anything
                log.exception("mcp-gateway: rule watcher error")

    def reload(self, now: float | None = None) -> bool:
        """Load the rule files again if they changed and have settled (watcher thread); the
        new engine is swapped in on the event loop. True if one was loaded."""
        stage, gen, paths = self.stage, self._gen, self._paths
        if stage is None:
            return False
        sig = _signature(paths)
        if sig is None:
            # a rule file deleted or made unreadable while running: its rules stay, said once
            # (it went unnoticed: nothing was logged until the file came back)
            if not self._unreadable:
                self._unreadable = True
                problem(
                    log,
                    "mcp-gateway: mcp_rules: %s; keeping the running rules",
                    _why_unreadable(paths),
                )
            self._settle.forget()
            return False
        self._unreadable = False
        if sig == self._signature or sig == self._bad:
            self._settle.forget()
            return False
        now = time.monotonic() if now is None else now
        waited = self._settle.waited(sig, now, self.settle[0])
        if waited is None:
            return False  # changed since the last look: still being written?
        try:
            engine = Engine.load(paths or None, time_regexes=True)
        except (ConfigError, OSError) as e:
            self._bad = sig
            problem(log, "mcp-gateway: mcp_rules: %s; keeping the running rules", e)
            return False
        except Exception as e:  # noqa: BLE001
            self._bad = sig
            problem(log, "mcp-gateway: cannot load the rules (%r); keeping the running rules", e)
            return False
        weaker = _weakened(stage.engine, engine)
        if weaker and waited < self.settle[1]:
            return False  # (compiled again at the next look: Hyperscan's cache has it)
        if _signature(paths) != sig:
            return False  # written to while it compiled: the next look takes the new version
        self._settle.forget()
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(self._swap, engine, sig, gen, weaker, waited)
        else:
            self._swap(engine, sig, gen, weaker, waited)
        return True

    def _swap(self, engine: Engine, sig: tuple, gen: int, weaker: list[str], waited: float):
        stage = self.stage
        if stage is None or gen != self._gen:
            return  # the option was set meanwhile: its rules stand
        _bound(engine)
        stage.engine = engine  # atomic swap
        self._signature = sig
        self._bad = None
        log.info(
            "mcp-gateway: %d scanning rules reloaded from %s",
            len(engine.rules), ", ".join(engine.sources),
        )  # fmt: skip
        if weaker:
            log.warning(
                "mcp-gateway: the new rules %s (the files were unchanged for %.0f s)",
                "; ".join(weaker), waited,
            )  # fmt: skip


def _bound(engine: Engine) -> None:
    """The options' bounds of one message's scan, set on an engine before it is used."""
    engine.finding_cap = ctx.options.mcp_max_findings or None
    engine.time_budget = (ctx.options.mcp_max_scan_ms / 1000) or None


def _weakened(old: Engine, new: Engine) -> list[str]:
    """What ``new`` finds less than ``old``: rules gone, actions weakened, and rules that
    let more through (some of its patterns or prefilters gone, allowlist entries added, a scope or its
    window narrowed, keywords or validators required, more of a value kept in its redaction). An editor writing the file in parts
    can stop inside an allowlist (the first half of a pattern list) or a scope, and such a
    part applied after one second like any edit."""
    now = {r.id: r for r in new.rules}
    gone = [r.id for r in old.rules if r.id not in now]
    weaker = [
        f"{r.id} ({r.action} -> {now[r.id].action})"
        for r in old.rules
        if r.id in now and _action_rank(now[r.id].action) < _action_rank(r.action)
    ]
    narrower = []
    for r in old.rules:
        n = now.get(r.id)
        why = _lets_through(r, n) if n is not None else []
        if why:
            narrower.append(f"{r.id} ({', '.join(why)})")
    out = []
    if gone:
        out.append(
            f"drop {len(gone)} rule(s): {', '.join(gone[:10])}{' ...' if len(gone) > 10 else ''}"
        )
    if weaker:
        out.append(f"weaken {', '.join(weaker[:10])}{' ...' if len(weaker) > 10 else ''}")
    if narrower:
        more = " ..." if len(narrower) > 10 else ""
        out.append(f"let more through in {', '.join(narrower[:10])}{more}")
    return out


_ALLOWED = ("values", "patterns", "stopwords", "context")


def _lets_through(old, new) -> list[str]:
    """What in rule ``new`` lets through what ``old`` found (empty: nothing known)."""
    why = []
    for i, kind in enumerate(_ALLOWED):
        added = len(new.allowed[i] - old.allowed[i]) if old.allowed and new.allowed else 0
        if added:
            why.append(f"{added} allowlist {kind} added")
    # a list of patterns cut short (the rule stays, with fewer of them); a pattern added or
    # changed is read as a deliberate edit (it may find more)
    op = {p for p in (old.spec.pattern, *old.spec.patterns) if p}
    np = {p for p in (new.spec.pattern, *new.spec.patterns) if p}
    if np < op:
        why.append(f"{len(op - np)} of its patterns gone")
    # the prefilter anchors cut short (none at all is the patterns themselves as anchors:
    # they find every match) or the window around a hit narrowed: matches found before are
    # no longer confirmed
    of, nf = set(old.spec.prefilter), set(new.spec.prefilter)
    if nf and nf < of:
        why.append(f"{len(of - nf)} of its prefilters gone")
    ow, nw = old.spec.window, new.spec.window
    if (
        nw.before < ow.before
        or nw.after < ow.after
        or (
            nw.start_after is not None
            and (ow.start_after is None or nw.start_after < ow.start_after)
        )
    ):
        why.append("window narrowed")
    a, b = old.spec.scope, new.spec.scope
    narrowed = [] if set(a.direction) <= set(b.direction) else ["direction"]
    narrowed += [
        f for f in ("methods", "tools", "servers") if not _covers(getattr(a, f), getattr(b, f))
    ]
    if narrowed:
        why.append(f"scope narrowed: {', '.join(narrowed)}")
    ok, nk = set(old.keywords), set(new.keywords)
    if nk and not (ok and nk >= ok):  # any keyword must occur: fewer (or new) ones narrow
        why.append("keywords required")
    ov = {repr(v) for v in old.spec.validators}
    if any(repr(v) not in ov for v in new.spec.validators):
        why.append("validators added")
    ro, rn = old.spec.redaction, new.spec.redaction
    if rn.style == "partial" and (
        ro.style != "partial" or rn.keep_prefix > ro.keep_prefix or rn.keep_suffix > ro.keep_suffix
    ):
        why.append("redaction keeps more of the value")
    return why


def _covers(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether a scope's globs ``new`` match at least what ``old`` matched (empty: all)."""
    if not new or "*" in new:
        return True
    return bool(old) and set(old) <= set(new)


def _signature(paths: list[str]) -> tuple | None:
    """Identity of the rule files (path, mtime, size, inode, ctime): reloading the same files
    is a no-op. The ctime and inode tell apart what mtime and size do not: a file that could
    not be read was made readable (``chmod``), or put back with its old mtime (``cp -p``,
    ``mv`` of a backup); known only by mtime and size it stayed the bad version for good."""
    from .rules import _expand, default_paths

    try:
        files = _expand(paths) if paths else default_paths()
        out = []
        for f in files:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns))
        return tuple(out)
    except OSError:
        return None


def _why_unreadable(paths: list[str]) -> str:
    from .rules import _expand, default_paths

    try:
        for f in _expand(paths) if paths else default_paths():
            f.stat()
    except OSError as e:
        return f"cannot read {getattr(e, 'filename', None) or 'a rule file'}: {e.strerror or e}"
    return "a rule file cannot be read"


__all__ = ["ScanAddon"]
