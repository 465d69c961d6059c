"""Access policy: who may make which requests, from ``policy`` in the gateway configuration.

Rules are read in order and the first that matches a client request decides (``allow`` or
``deny``); when none matches, ``policy.default`` does (``allow`` unless set). A rule matches
when the caller is one it names (a ``consumers`` glob or one of its ``roles``; neither:
everybody) and the request is one it names: every selector given must match (``methods``,
``tools`` for ``tools/call``, ``prompts`` for ``prompts/get``, ``resources`` for
``resources/read``/``subscribe``/``unsubscribe``, ``servers``). A refused request never
reaches the server: the client gets JSON-RPC error ``-32063`` (HTTP 200, as for a scanning
rule's block, so that clients treat it as the call's ordinary error), and it costs no rate-limit
token (this stage runs before the limits). ``initialize`` and ``ping`` are never refused, nor
are notifications and the client's answers to server requests.

Names are read as the servers may read them: a tool or prompt name also ignoring case, a
resource URI also as the servers resolve it (percent-decoded, ``FILE:``, ``/./``, ignoring
case for ``file:``); the request is refused if any of these readings is. With
``policy.hide`` (default on), answers to ``tools/list``, ``prompts/list``, ``resources/list``
and ``resources/templates/list`` leave out what the caller could not use, so an agent is not
offered tools it would be refused; a ``completion/complete`` of a prompt or resource template
so left out is refused, and a 2026-07-28 list answer marked ``cacheScope: public`` (which a
shared cache may serve to every caller) is marked ``private``, as is a ``resources/read``
answer: both hold what this caller may see.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence

from ..message import Direction, ErrorCode, Kind, Message
from ..parse import (
    URI_NORMALISED_MAX,
    fold_name,
    fold_readings,
    repeats_members,
    served_aliases,
)
from ..pipeline import ORDER_POLICY
from .config import PolicyConfig, PolicyRule
from .identify import client_host

log = logging.getLogger("mcp_gateway")

NEVER_REFUSED = frozenset({"initialize", "ping"})
# which selector names the thing a request acts on
_TARGETS = {
    "tools/call": "tools",
    "prompts/get": "prompts",
    "resources/read": "resources",
    "resources/subscribe": "resources",
    "resources/unsubscribe": "resources",
}
# list answers filtered with ``hide``: (member holding the entries, their key, as which request)
_LISTS = {
    "tools/list": ("tools", "name", "tools/call"),
    "prompts/list": ("prompts", "name", "prompts/get"),
    "resources/list": ("resources", "uri", "resources/read"),
    # a template is judged by its URI template, as a completion of it is
    "resources/templates/list": ("resourceTemplates", "uriTemplate", "resources/read"),
}
# what a prompt or resource template is used with, for the completions of one left out
_USED_WITH = {"prompts": "prompts/get", "resources": "resources/read"}


def _any(value: str, globs: Sequence[str], fold: bool) -> bool:
    if fold:  # (as a lookup ignoring case reads the name: execute_ſql is execute_sql)
        # (and in NFKC, as a width-insensitive lookup reads it: ｄｅｌｅｔｅ_repo)
        values = fold_readings(value)
        return any(fnmatch.fnmatchcase(v, fold_name(g)) for g in globs for v in values)
    return any(fnmatch.fnmatchcase(value, g) for g in globs)


class PolicyStage:
    name = "policy"
    order = ORDER_POLICY

    def __init__(self, cfg: PolicyConfig | None = None) -> None:
        self.configure(cfg or PolicyConfig())
        self.refused_total = 0

    def configure(self, cfg: PolicyConfig) -> None:
        self.cfg = cfg
        self.enabled = bool(cfg.rules) or cfg.default == "deny"

    # -- deciding --------------------------------------------------------------------------
    def decide(
        self,
        consumer: str,
        roles: Sequence[str],
        method: str,
        name: str | None,
        servers: Sequence[str],
        target: str | None = None,
    ) -> PolicyRule | None:
        """The rule that refuses this request (None: allowed). A refusal by the default is
        a rule of its own (``action: deny``, no selector). ``servers``: where the request
        goes first, then the names the client gave it (which only deny rules match).
        ``target``: the selector that names ``name`` (default: the method's)."""
        if target is None:
            target = _TARGETS.get(method)
        for fold in (False, True):
            for names in _readings(target, name):
                rule = self._first(consumer, roles, method, names, servers, fold, target)
                if rule is not None and rule.action == "deny":
                    return rule
        return None

    def _first(self, consumer, roles, method, name, servers, fold, target) -> PolicyRule | None:
        for rule in self.cfg.rules:
            if _matches(rule, consumer, roles, method, name, servers, fold, target):
                return rule
        return _DEFAULT_DENY if self.cfg.default == "deny" else None

    # -- the stage -------------------------------------------------------------------------
    def process(self, msg: Message) -> None:
        if not self.enabled:
            return
        if msg.direction is Direction.CLIENT_TO_SERVER:
            self._request(msg)
        elif msg.kind is Kind.RESULT:
            if self.cfg.hide and msg.method in _LISTS:
                self._hide(msg)
            elif msg.method == "resources/read":
                _private(msg)

    def _who(self, msg: Message) -> tuple[str, tuple[str, ...]]:
        ident = msg.exchange.identity
        if ident is None:
            return "anon:" + client_host(msg.exchange.client_addr or ""), ()
        return ident.consumer, tuple(ident.roles)

    @staticmethod
    def _servers(msg: Message) -> tuple[str, ...]:
        """Where the request goes first (the address), then the names the client gave it
        (the shim's ``Mcp-Gateway-Server``, a regular-mode Host header naming another site)."""
        ex = msg.exchange
        real = ex.address or ex.server
        return tuple(dict.fromkeys(s for s in (real, ex.server, ex.vhost) if s))

    def _request(self, msg: Message) -> None:
        if msg.raw is not None and not msg.modified and repeats_members(msg.raw, msg.payload):
            # {"name": "delete_repo", "name": "echo"}, {"method": "tools/call", "method":
            # "ping"}: judged on the copy the parser kept (the last, as the SDK servers read
            # it); a server that reads the first must not get the other, so the message goes
            # on as judged, each member once
            msg.modified = True
        method = msg.method
        if not isinstance(method, str) or method in NEVER_REFUSED:
            return
        if msg.kind is not Kind.REQUEST and not (
            # a request with "id": null, which a lenient server may run (as the limits count it)
            msg.kind is Kind.NOTIFICATION and not method.startswith("notifications/")
        ):
            return
        consumer, roles = self._who(msg)
        name = msg.name if isinstance(msg.name, str) else None
        servers = self._servers(msg)
        completed = _completed(msg, method)
        rule = self.decide(consumer, roles, method, name, servers, completed)
        what = f"{method} {name}" if name is not None and len(name) <= 200 else method
        text = None
        if rule is None and self.cfg.hide and completed is not None and name is not None:
            # the completions of a prompt or resource template that hide leaves out of the
            # caller's lists (a rule on prompts/get alone): answered, they told the caller it
            # exists and offered its argument values
            used = _USED_WITH[completed]
            rule = self.decide(consumer, roles, used, name, servers, completed)
            if rule is not None and not rule.message:
                shown = name if len(name) <= 200 else name[:200] + "…"
                text = f"{used} {shown} is not allowed for {consumer}"
        if rule is None:
            return
        self.refused_total += 1
        text = rule.message or text or f"{what} is not allowed for {consumer}"
        which = "the default" if rule is _DEFAULT_DENY else f"rule {_index(self.cfg, rule)}"
        log.warning(
            "mcp-gateway: policy refused %s for %s on %s (%s)",
            what, consumer, msg.exchange.server, which,
        )  # fmt: skip
        msg.block(
            ErrorCode.FORBIDDEN,
            f"forbidden by mcp-gateway policy: {text}",
            data={"policy": "default" if rule is _DEFAULT_DENY else _index(self.cfg, rule)},
            stage=self.name,
        )

    def _hide(self, msg: Message) -> None:
        result = msg.payload.get("result") if isinstance(msg.payload, dict) else None
        if not isinstance(result, dict):
            return
        _private(msg)
        member, key, as_method = _LISTS[msg.method]  # type: ignore[index]
        entries = result.get(member)
        if not isinstance(entries, list):
            return
        consumer, roles = self._who(msg)
        servers = self._servers(msg)
        kept = [
            e
            for e in entries
            if not (
                isinstance(e, dict)
                and isinstance(e.get(key), str)
                and self.decide(consumer, roles, as_method, e[key], servers) is not None
            )
        ]
        if len(kept) != len(entries):
            result[member] = kept
            msg.modified = True


_DEFAULT_DENY = PolicyRule(action="deny")


def _private(msg: Message) -> None:
    """A 2026-07-28 answer marked ``cacheScope: "public"`` may be cached by a shared cache
    (a gateway, a caching proxy) and served across authorization contexts: a list filtered
    for this caller, or a resource this caller may read, served so to another caller would
    step past the policy. Such an answer is marked ``private``."""
    result = msg.payload.get("result") if isinstance(msg.payload, dict) else None
    if isinstance(result, dict) and result.get("cacheScope") == "public":
        result["cacheScope"] = "private"
        msg.modified = True


def _completed(msg: Message, method: str) -> str | None:
    """The selector naming what a ``completion/complete`` completes the arguments of (its
    ref: a prompt's name, a resource template's URI, as parse reads it), so that a rule on
    that prompt or resource also rules its completions; None for other methods."""
    if method != "completion/complete":
        return None
    params = msg.payload.get("params") if isinstance(msg.payload, dict) else None
    ref = params.get("ref") if isinstance(params, dict) else None
    if not isinstance(ref, dict):
        return None
    kind = ref.get("type")
    if kind == "ref/resource":
        return "resources"
    if kind == "ref/prompt":
        return "prompts"
    return "prompts" if ref.get("name") else "resources"


def _index(cfg: PolicyConfig, rule: PolicyRule) -> int:
    for i, r in enumerate(cfg.rules):
        if r is rule:
            return i
    return -1


class _Unknown(str):
    """The reading of a resource URI too long to resolve (over ``URI_NORMALISED_MAX``): it
    may name any resource, so every ``resources`` glob of a deny rule matches it and none of
    an allow rule (as the scan stage applies every resource scope to it)."""

    __slots__ = ()


def _readings(target: str | None, name: str | None) -> list[str | None]:
    """The names a server may read for ``name``: as written, and for a resource URI as the
    servers resolve it (a URI too long to resolve: any resource, ``_Unknown``)."""
    if name is None or target != "resources":
        return [name]
    if len(name) > URI_NORMALISED_MAX:
        # file:///srv/public/x/../x/../…/../secrets/key padded past 64 KiB is
        # file:///srv/secrets/key to the server; read as written only, it passed a deny rule
        # on file:///srv/secrets/* (and an allow rule on file:///srv/public/* let it through
        # a default deny)
        return [name, _Unknown()]
    return [name, *served_aliases(name)]


def _matches(
    rule: PolicyRule,
    consumer: str,
    roles: Sequence[str],
    method: str,
    name: str | None,
    servers: Sequence[str],
    fold: bool,
    target: str | None,
) -> bool:
    if rule.consumers or rule.roles:
        if not (
            (rule.consumers and _any(consumer, rule.consumers, False))
            or any(r in rule.roles for r in roles)
        ):
            return False
    if rule.methods and not _any(method, rule.methods, False):
        return False
    if rule.tools or rule.prompts or rule.resources:
        globs = getattr(rule, target) if target is not None else None
        if not globs or name is None:
            return False
        if isinstance(name, _Unknown):
            if rule.action != "deny":
                return False
        elif not _any(name, globs, fold):
            return False
    if rule.servers:
        if rule.action != "deny":
            # an allow rule goes by where the request goes only: the other names are the
            # client's (Mcp-Gateway-Server: docs.internal:1 to a loopback server, or a Host
            # header naming docs.internal in regular mode, passed an allow rule on
            # docs.internal:* under a default deny). A deny rule matches any of them.
            servers = servers[:1]
        if not any(_any(s.lower(), [g.lower() for g in rule.servers], False) for s in servers):
            hosts = [s.lower().rsplit(":", 1)[0] for s in servers if ":" in s]
            if not any(_any(h, [g.lower() for g in rule.servers], False) for h in hosts):
                return False
    return True


__all__ = ["PolicyStage", "NEVER_REFUSED"]
