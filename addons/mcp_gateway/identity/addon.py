"""The identity addon: option ``mcp_config``, the identify and limits stages, the watcher.

    addons = [gw, IdentityAddon(gw.pipeline), ...]

``mcp_config`` is the path of the gateway's YAML configuration (empty: built-in
defaults). A bad file at start-up stops mitmdump with ``file:line: field: problem``.
While running, a watcher thread checks every half second (all I/O stays off the event
loop):

- the config file's mtime/size: a valid new version is applied without dropping
  connections (rate-limit buckets and session bindings are kept); a bad edit is
  logged and the previous configuration stays in force;
- the API key table (``PRAGMA data_version``): new and revoked keys take effect
  within about a second;
- the JWKS (every ``refresh_interval``, or at once after an unknown ``kid``);
- file:// and keyring:// upstream secrets (every few seconds).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
import time
from typing import Any

from mitmproxy import ctx, exceptions

from ..pipeline import Pipeline
from ..settle import Settle
from ..yamlconf import ConfigError
from . import logutil
from .config import GatewayConfig, default_keys_db, load_config
from .identify import IdentifyStage, State
from .limits import LimitsStage
from .logutil import problem
from .policy import PolicyStage

log = logging.getLogger("mcp_gateway.identity")

WATCH_INTERVAL = 0.5
# A changed file is applied once it has stayed the same this long: an editor or `curl … >`
# writes it in parts, and a part that stops before `auth:` is a valid configuration. One
# that would switch a protection off (authentication, limits, session binding) waits
# longer, and says so when applied.
SETTLE_SECONDS = 1.0
SETTLE_WEAKER_SECONDS = 5.0


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    # (the ctime too: a file that could not be read and was made readable with chmod keeps
    # its mtime and size, and would stay the bad version)
    return (st.st_mtime_ns, st.st_size, st.st_ino, stat.S_IFMT(st.st_mode), st.st_ctime_ns)


class IdentityAddon:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.path = ""
        self.state: State | None = None
        self.identify: IdentifyStage | None = None
        self.limits: LimitsStage | None = None
        self.policy: PolicyStage | None = None
        self._stat: tuple | None = None
        self._bad_stat: tuple | None = None
        self._settle = Settle()  # of an edit
        self.settle = (SETTLE_SECONDS, SETTLE_WEAKER_SECONDS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()

    # -- mitmproxy lifecycle (all synchronous) ------------------------------------------
    def load(self, loader: Any) -> None:
        loader.add_option(
            "mcp_config",
            str,
            "",
            """
            Path of the mcp-gateway YAML configuration: authentication (API keys, JWT),
            session binding, rate limits and upstream credentials. Empty: no
            authentication required, no limits. Edits are applied while running.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "mcp_config" not in updated:
            return
        path = ctx.options.mcp_config or ""
        st = _stat(path) if path else None
        try:
            cfg = load_config(path) if path else GatewayConfig()
        except ConfigError as e:
            raise exceptions.OptionsError(f"mcp_config: {e}") from None
        self.path = path
        self._stat = st
        self._bad_stat = None
        self._apply(self._build(cfg), initial=True)
        self._start_watcher()

    def running(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
            logutil.set_live(True)
            return
        # mitmdump exits on ERROR logs until start-up is over; problems found by the watcher
        # in that window (JWKS unreachable, secret missing) are warnings, errors afterwards
        self._loop.call_later(1.0, logutil.set_live, True)

    def done(self) -> None:
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._thread = None
        if self.state is not None:
            self.state.close()

    # -- flow hooks -----------------------------------------------------------------------
    def request(self, flow: Any) -> None:
        # Runs after the core's request hook (addon order): MCP exchanges have been handled
        # by the identify stage; any other request must not carry a gateway credential.
        ident = self.identify
        if ident is None or flow.response is not None or flow.error or not flow.live:
            return
        try:
            ident.strip_stray_credential(flow)
            ident.strip_query_keys(flow)
            ident.strip_keys_in_authorization(flow)
        except Exception:  # noqa: BLE001 - never break the flow
            log.exception("mcp-gateway: identity request hook failed (flow %s)", flow.id)

    def responseheaders(self, flow: Any) -> None:
        ident = self.identify
        if ident is None:
            return
        try:
            ident.after_send(flow)
            ident.learn(flow)
        except Exception:  # noqa: BLE001 - never break the flow
            log.exception("mcp-gateway: identity responseheaders failed (flow %s)", flow.id)

    def error(self, flow: Any) -> None:
        if self.identify is not None:
            try:
                self.identify.forget(flow)
            except Exception:  # noqa: BLE001
                log.exception("mcp-gateway: identity error hook failed (flow %s)", flow.id)

    # -- configuration ------------------------------------------------------------------
    def _default_db(self) -> str:
        # The gateway's database: the audit addon's mcp_audit_db when it is loaded and set,
        # else the audit default (~/.mitmproxy/mcp-gateway-audit.db or $MCP_GATEWAY_AUDIT_DB).
        try:
            v = ctx.options.mcp_audit_db
        except (AttributeError, KeyError):
            v = None
        if isinstance(v, str) and v:
            return os.path.expanduser(v)
        return default_keys_db()

    def _build(self, cfg: GatewayConfig, default_db: str | None = None) -> State:
        state = State(cfg, previous=self.state, default_db=default_db or self._default_db())
        # Loading at build time happens at start-up (configure) or in the watcher thread.
        if state.keys is not None and not state.keys.loaded:
            state.keys.refresh()
        if state.jwks is not None and not state.jwks.loaded:
            state.jwks.wake = self._wake
            if state.jwks.cfg.jwks_file:
                state.jwks.fetch()
        state.secrets.refresh_due(state.upstreams.refs)
        return state

    def _apply(self, state: State, initial: bool = False) -> None:
        previous = self.state
        self.state = state
        if self.identify is None:
            self.identify = IdentifyStage(state)
            self.limits = LimitsStage(state.cfg.limits)
            self.policy = PolicyStage(state.cfg.policy)
            self.pipeline.add(self.identify)
            self.pipeline.add(self.limits)
        else:
            self.identify.set_state(state)
            assert self.limits is not None and self.policy is not None
            self.limits.configure(state.cfg.limits)
            self.policy.configure(state.cfg.policy)
        # in the pipeline only with rules: every message would pay for a stage that does nothing
        if self.policy.enabled:
            if self.pipeline.get(self.policy.name) is not self.policy:
                self.pipeline.add(self.policy)
        elif self.pipeline.get(self.policy.name) is not None:
            self.pipeline.remove(self.policy.name)
        if previous is not None and previous is not state:
            previous.close(state)
        a = state.cfg.auth
        pol = state.cfg.policy
        log.info(
            "mcp-gateway: identity %s: auth %s (api keys %s, jwt %s), %d upstream credential(s), limits %s, policy %s",
            "configured" if initial else "reloaded",
            "required" if a.required else "optional",
            state.keys.db if state.keys else "off",
            state.jwks.source if state.jwks else "off",
            sum(1 for s in state.cfg.servers if s.credential),
            "on" if self.limits and self.limits.enabled else "off",
            f"{len(pol.rules)} rule(s), default {pol.default}"
            if pol.rules or pol.default == "deny"
            else "off",
        )
        self._wake.set()

    def reload(self, now: float | None = None) -> bool:
        """Re-read the config file if it changed and has settled (watcher thread). True if
        applied."""
        if not self.path:
            return False
        st = _stat(self.path)
        if st is None or st == self._stat or st == self._bad_stat:
            self._settle.forget()
            return False
        now = time.monotonic() if now is None else now
        waited = self._settle.waited(st, now, self.settle[0])
        if waited is None:
            return False  # changed since the last look: still being written?
        if st[3] != stat.S_IFREG:
            # A FIFO put in the file's place held the watcher in open() for good, and with
            # it key revocation, JWKS and secret refreshes: a revoked key kept working
            self._bad_stat = st
            problem(
                log,
                "mcp-gateway: %s is no longer a regular file; keeping the previous configuration",
                self.path,
            )
            return False
        if _blank(self.path):
            # An edit in progress (`curl … > gateway.yaml` truncates the file first): taken
            # as a configuration, it would switch authentication and limits off until the
            # writer finishes. Clearing the configuration on purpose takes `{}`.
            self._bad_stat = st
            problem(
                log,
                "mcp-gateway: %s is empty (an edit in progress? write {} to clear it); "
                "keeping the previous configuration",
                self.path,
            )
            return False
        try:
            cfg = load_config(self.path)
            weaker = _weakened(self.state.cfg if self.state else None, cfg)
            if weaker and waited < self.settle[1]:
                return False  # looked at again at the next tick
            state = self._build(cfg)
        except ConfigError as e:
            self._bad_stat = st
            problem(log, "mcp-gateway: %s; keeping the previous configuration", e)
            return False
        except Exception as e:  # noqa: BLE001
            self._bad_stat = st
            problem(
                log,
                "mcp-gateway: cannot apply %s (%r); keeping the previous configuration",
                self.path,
                e,
            )
            return False
        self._stat = st
        self._bad_stat = None
        self._settle.forget()
        if weaker:
            log.warning(
                "mcp-gateway: %s switches %s off (the file was unchanged for %.0f s)",
                self.path,
                " and ".join(weaker),
                waited,
            )
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(self._apply, state)
        else:
            self._apply(state)
        return True

    # -- the watcher thread ---------------------------------------------------------------
    def _start_watcher(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, name="mcp-gateway-identity", daemon=True
        )
        self._thread.start()

    def tick(self) -> None:
        """One round of the watcher's checks (also called directly by tests)."""
        self.reload()
        state = self.state
        if state is None:
            return
        if state.keys is not None:
            state.keys.refresh()
        if state.jwks is not None and state.jwks.due(time.monotonic()):
            state.jwks.fetch_in_background()
        state.secrets.refresh_due(state.upstreams.refs)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watcher must survive anything
                log.exception("mcp-gateway: identity watcher error")
            self._wake.wait(WATCH_INTERVAL)
            self._wake.clear()

    # -- introspection ----------------------------------------------------------------------
    def usage(self) -> list[dict]:
        return self.limits.usage() if self.limits else []


def _guards(cfg: GatewayConfig) -> set[str]:
    out = set()
    if cfg.auth.required:
        out.add("authentication")
    lim = cfg.limits
    if lim.default or lim.consumers or lim.roles or lim.tools or lim.servers:
        out.add("rate limits")
    if cfg.sessions.bind:
        out.add("session binding")
    if cfg.policy.rules or cfg.policy.default == "deny":
        out.add("the access policy")
    return out


def _weakened(old: GatewayConfig | None, new: GatewayConfig) -> list[str]:
    """The protections ``old`` had and ``new`` switches off."""
    if old is None:
        return []
    out = sorted(_guards(old) - _guards(new))
    if "the access policy" not in out:
        out.extend(_policy_weakened(old.policy, new.policy))
        if old.policy.hide and not new.policy.hide and "the access policy" in _guards(new):
            out.append("the access policy's hiding of what callers may not use (hide)")
    if "authentication" not in out:  # (authentication off says the most already)
        out.extend(_auth_loosened(old, new))
    jwt = _jwt_loosened(old.auth.jwt, new.auth.jwt)
    if jwt:
        out.append(f"JWT checks as they were ({', '.join(jwt)})")
    elif old.auth.jwt is not None and new.auth.jwt is None and not new.auth.required:
        # (a file cut inside auth, before jwt: a forged or expired JWT, refused with 401 so
        # far, went on to the server as an opaque token; with auth.required it is refused)
        out.append("JWT verification (off: any JWT, a forged or expired one too, goes on)")
    if "rate limits" not in out:
        looser = _limits_loosened(old.limits, new.limits)
        if looser:
            out.append(f"rate limits as they were ({', '.join(looser)})")
    return out


def _auth_loosened(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """What an edit of the API keys or the credential header lets through: keys off while a
    caller need not hold a gateway credential (a gateway key, a revoked one too, then goes
    on to the server as an opaque token, its caller unverified), keys read from another
    database (one where a key revoked here is not), or another header (a credential in the
    old one is read no more and goes on to the server; a file cut inside ``header:`` is a
    valid shorter name)."""
    out = []
    if old.auth.api_keys and not new.auth.api_keys and not new.auth.required:
        out.append("API keys (off: a gateway key, a revoked one too, goes on as an opaque token)")
    elif old.auth.api_keys and new.auth.api_keys and old.keys_db != new.keys_db:
        out.append(f"API keys as they were (keys from {new.keys_db or 'the audit database'})")
    if old.auth.header.lower() != new.auth.header.lower():
        out.append(
            f"the credential header {old.auth.header} (now {new.auth.header}: a credential in "
            f"{old.auth.header} goes on unread)"
        )
    return out


def _jwt_loosened(old, new) -> list[str]:
    """What a JWT edit accepts that ``old`` refused: the issuer or audience check gone or
    widened, another key set trusted, more algorithms, a longer leeway, fewer required
    claims. A file cut after ``jwks_url`` and before ``audience:`` is a valid configuration
    that takes that IdP's tokens for any application, and it applied after one second."""
    if old is None or new is None:
        return []  # (JWT verification off: JWTs are opaque tokens without roles then)
    out = []
    if old.issuer and new.issuer != old.issuer:
        out.append("issuer")

    def auds(v) -> set:
        return {v} if isinstance(v, str) else set(v or ())

    if old.audience and (not new.audience or not auds(new.audience) <= auds(old.audience)):
        out.append("audience")
    if (new.jwks_url, new.jwks_file) != (old.jwks_url, old.jwks_file):
        out.append("key set")
    if set(new.algorithms) - set(old.algorithms):
        out.append("algorithms")
    if new.leeway > old.leeway:
        out.append("leeway")
    if set(old.require) - set(new.require):
        out.append("required claims")
    return out


def _looser(old, new) -> bool:
    """Whether rate ``new`` lets more through than ``old`` (None: no limit)."""
    if old is None:
        return False
    return new is None or new.per_second > old.per_second or new.burst > old.burst


def _limits_loosened(old, new) -> list[str]:
    """What a limits edit lets through that ``old`` held back: a rate raised or gone (the
    default, a consumer's or role's, a tool's or server's, initialize's), methods newly
    exempt, unverified callers counted per token again, a coarser IPv6 network no more.
    A file cut short inside ``limits`` (before its tool limits) is such an edit."""
    out = []
    if _looser(old.default, new.default):
        out.append("default")
    for what in ("consumers", "roles"):
        o, n = getattr(old, what), getattr(new, what)
        out += [f"{what[:-1]} {k}" for k in o if _looser(o[k], n.get(k, new.default))]
        # a new entry replaces the default for its holders
        out += [f"{what[:-1]} {k}" for k in n if k not in o and _looser(old.default, n[k])]
    for what in ("tools", "servers"):
        n = {(e.match, getattr(e, "per", None)): e.rate for e in getattr(new, what)}
        out += [
            f"{what[:-1]} {e.match}"
            for e in getattr(old, what)
            if _looser(e.rate, n.get((e.match, getattr(e, "per", None))))
            # (a server's bucket per identity made one shared by everybody at no higher a
            # rate holds back more: no looser)
            and not (
                getattr(e, "per", None) == "identity"
                and (e.match, "total") in n
                and not _looser(e.rate, n[(e.match, "total")])
            )
            # (nor a glob renamed to one that matches all it did, at no higher a rate:
            # delete_* -> del*, which was read as a limit gone)
            and not any(
                _covers(m, e.match)
                and per in (getattr(e, "per", None), "total")
                and not _looser(e.rate, r)
                for (m, per), r in n.items()
            )
        ]
    exempt = [m for m in new.exempt if m not in old.exempt]
    if exempt:
        out.append(f"exempt {', '.join(exempt)}")
    if _looser(old.initialize, new.initialize):
        out.append("initialize")
    if old.unverified == "address" and new.unverified != "address":
        out.append("unverified callers per token")
    if new.ipv6_prefix > old.ipv6_prefix:
        out.append(f"ipv6_prefix {old.ipv6_prefix} -> {new.ipv6_prefix}")
    if len(out) > 10:
        out[10:] = ["..."]
    return out


def _covers(new: str, old: str) -> bool:
    """Whether glob ``new`` matches every name glob ``old`` does (decided for a ``new`` of
    literal text and ``*`` only, else False: no claim). Its literal pieces hold no wildcard,
    so each lies within one literal run of ``old``; matched in order against ``old``'s text,
    anchored at both ends as globs are, they stand in every name ``old`` matches."""
    if new == old:
        return True
    if "?" in new or "[" in new or "[" in old:
        return False  # (a piece "ab]" stands in the text of old's [ab], not in its names)
    pieces = new.lower().split("*")
    text = old.lower()
    if len(pieces) == 1:
        return False  # a literal name: it covers only itself (not equal: above)
    first, last = pieces[0], pieces[-1]
    if not text.startswith(first) or not text.endswith(last):
        return False
    if len(first) + len(last) > len(text):
        return False
    pos, end = len(first), len(text) - len(last)
    for piece in pieces[1:-1]:
        i = text.find(piece, pos, end)
        if i < 0:
            return False
        pos = i + len(piece)
    return True


def _policy_weakened(old, new) -> list[str]:
    """What a policy edit may let through that ``old`` refused: its default deny gone, deny
    rules gone, allow rules added or changed. A file written in parts stops anywhere: before
    its last deny rule, or inside an allow rule before its ``roles`` (an allow for everybody),
    and such a part stayed the policy after one second, however short the rest."""

    def key(r) -> str:
        return r.model_dump_json(exclude={"message"})

    parts = []
    if old.default == "deny" and new.default != "deny":
        parts.append("default deny")
    gone = {key(r) for r in old.rules if r.action == "deny"} - {
        key(r) for r in new.rules if r.action == "deny"
    }
    if gone:
        parts.append(f"{len(gone)} deny rule(s)")
    added = {key(r) for r in new.rules if r.action == "allow"} - {
        key(r) for r in old.rules if r.action == "allow"
    }
    if added:
        parts.append(f"allow rules as they were ({len(added)} new or changed)")
    return [f"the access policy's {' and '.join(parts)}"] if parts else []


def _blank(path: str) -> bool:
    """Whether a config file holds nothing but blank lines, comments and document markers."""
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return False
    for line in text.splitlines():
        s = line.strip().lstrip("\ufeff")
        if s and not s.startswith("#") and s not in ("---", "..."):
            return False
    return True
