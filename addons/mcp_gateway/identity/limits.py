"""Per-identity rate limits: token buckets, checked on client requests only.

Which buckets a request draws from:

- the identity's base bucket: ``limits.consumers[consumer]`` if set, else the most
  generous ``limits.roles[role]`` among the identity's roles, else ``limits.default``
  (no base bucket if none applies);
- for ``tools/call``: one bucket per matching ``limits.tools`` glob (``delete_*``...);
- one bucket per matching ``limits.servers`` glob, per identity or shared (``per: total``).

A request is admitted only if every bucket has a token; then each gives one. Otherwise
it is refused with JSON-RPC error ``-32064`` (``RATE_LIMITED``), HTTP 429 and
``Retry-After`` (whole seconds until the emptiest bucket has a token again), and no
bucket is charged. Responses (including the client's answers to server->client
requests) and notifications are never counted; ``initialize`` and ``ping`` are exempt by
default (``limits.exempt``), but once any limit is set ``initialize`` draws from a bucket of
its own (``limits.initialize``): each one opens a session the server holds.

Anonymous callers over IPv6 are counted by their network (``limits.ipv6_prefix``, /64 by
default), not by address: one host commonly holds a whole /64. A caller known only by a
bearer token the gateway does not verify is counted by that token, or with
``limits.unverified: address`` by its address like an anonymous caller.

Single event-loop thread: plain dicts, no locks, O(1) per request after the first
request of a (consumer, roles) / tool / server combination (rule lookups are cached).

The buckets are a table of at most ``MAX_BUCKETS``, kept in order of last use (each draw,
refused ones too, moves a bucket to the end). A bucket that has refilled is dropped by the
collection (recreated, it is the same). Past ``MAX_BUCKETS`` the least recently used
per-identity bucket is forgotten at once (never a shared one): identities are made up at
will (every bearer token and address is one), and a limited identity that paused while
others filled the table came back to a full bucket. So a forgotten bucket that was not full
leaves its debt behind: the tokens it lacked, in one of ``DEBT_SLOTS`` slots chosen by its
key's hash (a slot keeps the larger count, what is left of an older one counted at the
slowest refill rate it holds). A bucket made anew starts from its burst less what its slot
still lacks, counted at its own rate: never from more than it would have had, so an
identity pushed out of the table gets no fresh allowance. Another key that lands in the same
slot may start with fewer tokens than its burst (never more), by at most that count, until
those tokens have come back at its own rate: after a flood of made-up tokens that each took
one, a caller starts one token short; one with a burst of one waits a refill period.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import logging
import math
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache, partial

from ..message import Direction, ErrorCode, Kind, Message
from ..parse import fold_name, fold_readings
from ..pipeline import ORDER_LIMITS
from .config import LimitsConfig, Rate
from .identify import client_host

log = logging.getLogger("mcp_gateway.identity")

MAX_BUCKETS = 200_000
DEBT_SLOTS = 1 << 16  # debts of forgotten buckets (a float each: 512 KiB)
MAX_COUNTERS = 100_000
_MAX_WHAT = 256  # a longer method or tool name is counted under its start and a digest


def _short(what: str) -> str:
    """A counter's method or tool name, bounded: the peer's string can be megabytes long,
    and up to MAX_COUNTERS of them are kept for the whole run."""
    if len(what) <= _MAX_WHAT:
        return what
    digest = hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{what[:200]}…#{digest}"


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str  # "default", "consumer:alice", "role:reader", "tool:delete_*", "server:host:*"
    rate: Rate
    shared: bool = False  # one bucket for everybody (servers with per: total)
    # one string for every bucket of this rule (made per call, each bucket held a copy)
    bucket_key: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        r = self.rate
        object.__setattr__(self, "bucket_key", f"{self.scope}|{r.count}/{r.period}/{r.burst}")


class LimitsStage:
    name = "limits"
    order = ORDER_LIMITS

    def __init__(self, cfg: LimitsConfig | None = None, clock=time.monotonic) -> None:
        self.clock = clock
        # (rule, who) -> [tokens, last], least recently used first
        self._buckets: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        # slot -> tokens a forgotten bucket lacked, and when (see the module's text)
        self._debt = array("d", bytes(8 * DEBT_SLOTS))
        self._debt_at = array("d", bytes(8 * DEBT_SLOTS))
        self._debt_rate = array("d", bytes(8 * DEBT_SLOTS))  # the slowest refill it holds
        # usage counters: (consumer, server, method or tool) -> [admitted, limited]
        self.counts: dict[tuple[str, str, str], list[int]] = {}
        self.limited_total = 0
        self.admitted_total = 0
        self._next_gc = 0.0
        self._warned = False
        self.configure(cfg or LimitsConfig())

    def configure(self, cfg: LimitsConfig) -> None:
        old = getattr(self, "cfg", None)
        self.cfg = cfg
        if old is not None and self._buckets:
            self._carry_over(_rates(old), _rates(cfg))
        self.exempt = frozenset(cfg.exempt)
        self._base_cache: dict[tuple[str, tuple[str, ...]], tuple[Rule, ...]] = {}
        self._tool_cache: dict[str, tuple[Rule, ...]] = {}
        self._server_cache: dict[str, tuple[Rule, ...]] = {}
        self.enabled = bool(cfg.default or cfg.consumers or cfg.roles or cfg.tools or cfg.servers)
        self._init_rules: tuple[Rule, ...] | None = (
            (Rule("initialize", cfg.initialize),) if cfg.initialize and self.enabled else None
        )
        self._v6 = cfg.ipv6_prefix
        self._unverified_by_address = cfg.unverified == "address"
        # one rule object (one bucket key string) for every caller on the default rate
        self._default_rule = Rule("default", cfg.default) if cfg.default is not None else None

    def _carry_over(self, old: dict[str, str], new: dict[str, str]) -> None:
        """Buckets of a rule whose rate was edited go on under the new rate, lacking what they
        lacked (a bucket is keyed by its rule's rate too: an edit made every caller a new,
        full bucket, so tightening 2/minute to 1/minute gave everyone one more call at once,
        and every edit of a 1/day limit a day's allowance). Once per edit that changes a
        rate; O(buckets)."""
        changed = {scope: spec for scope, spec in new.items() if old.get(scope, spec) != spec}
        if not changed:
            return
        now = self.clock()
        moved: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        for (bk, who), b in self._buckets.items():
            scope, _, spec = bk.rpartition("|")
            target = changed.get(scope)
            rate = _rate_of(bk)
            if target is None or target == spec or rate is None:
                moved[(bk, who)] = b
                continue
            per_s, burst = rate
            lacks = burst - min(burst, b[0] + (now - b[1]) * per_s)
            nk = (f"{scope}|{target}", who)
            new_burst = _rate_of(nk[0])[1]  # type: ignore[index]
            tokens = max(0.0, new_burst - lacks)
            if nk in moved:  # (a bucket already under the new rate: the emptier one)
                tokens = min(tokens, moved[nk][0])
            moved[nk] = [tokens, now]
        self._buckets = moved

    # -- rule lookup (cached) ------------------------------------------------------
    def _base(self, consumer: str, roles: tuple[str, ...]) -> tuple[Rule, ...]:
        k = (consumer, roles)
        hit = self._base_cache.get(k)
        if hit is not None:
            return hit
        cfg = self.cfg
        rule: Rule | None = None
        if consumer in cfg.consumers:
            rule = Rule(f"consumer:{consumer}", cfg.consumers[consumer])
        else:
            best = None
            for r in roles:
                rate = cfg.roles.get(r)
                if rate is not None and (best is None or rate.per_second > best[1].per_second):
                    best = (r, rate)
            if best is not None:
                rule = Rule(f"role:{best[0]}", best[1])
            elif cfg.default is not None:
                rule = self._default_rule
        out = (rule,) if rule else ()
        if len(self._base_cache) > 10_000:
            self._base_cache.clear()
        self._base_cache[k] = out
        return out

    def _tools(self, tool: str) -> tuple[Rule, ...]:
        hit = self._tool_cache.get(tool)
        if hit is None:
            # (also ignoring case, as the access policy reads the name: a server that looks
            # tools up so runs delete_repo for Delete_repo, which stepped out of a
            # delete_* bucket)
            # (and in NFKC: ｄｅｌｅｔｅ_repo, which a width-insensitive lookup runs)
            readings = fold_readings(tool)
            hit = tuple(
                Rule(f"tool:{t.match}", t.rate)
                for t in self.cfg.tools
                if fnmatch.fnmatchcase(tool, t.match)
                or any(fnmatch.fnmatchcase(f, fold_name(t.match)) for f in readings)
            )
            if len(self._tool_cache) > 10_000:
                self._tool_cache.clear()
            if len(tool) <= _MAX_WHAT:  # (a client's name of megabytes is not kept)
                self._tool_cache[tool] = hit
        return hit

    def _servers(self, server: str) -> tuple[Rule, ...]:
        hit = self._server_cache.get(server)
        if hit is None:
            s = server.lower()
            host = s.rsplit(":", 1)[0] if ":" in s else s
            hit = tuple(
                Rule(f"server:{e.match}", e.rate, shared=e.per == "total")
                for e in self.cfg.servers
                if fnmatch.fnmatchcase(s, e.match.lower())
                or fnmatch.fnmatchcase(host, e.match.lower())
            )
            if len(self._server_cache) > 10_000:
                self._server_cache.clear()
            self._server_cache[server] = hit
        return hit

    # -- the stage -----------------------------------------------------------------
    def process(self, msg: Message) -> None:
        if msg.direction is not Direction.CLIENT_TO_SERVER:
            return
        method = msg.method or ""
        if msg.kind is not Kind.REQUEST and not (
            # a request sent without a usable id ("id": null): the SDKs read a notification,
            # but a lenient server may run it, so it is counted like the request it names
            msg.kind is Kind.NOTIFICATION and not method.startswith("notifications/")
        ):
            return
        exempt = method in self.exempt
        if exempt and (method != "initialize" or self._init_rules is None):
            return
        ex = msg.exchange
        ident = ex.identity
        if ident is not None:
            who, consumer, roles = ident.key, ident.consumer, ident.roles
            anon = ident.kind == "anonymous"
        else:  # no identify stage (e.g. a pipeline without it): the client address
            who = consumer = "anon:" + client_host(ex.client_addr)
            roles = ()
            anon = True
        tool = msg.name if method == "tools/call" and isinstance(msg.name, str) else None
        if not self.enabled:
            self._count(consumer, ex.server, tool or method, limited=False)
            return
        if exempt:  # initialize: its own bucket only, and not metered
            rules = self._init_rules
        else:
            base_of = consumer
            if self._unverified_by_address and ident is not None and ident.kind == "bearer":
                # counted as the anonymous caller at its address: that caller's base rate too
                # (limits.consumers may name "anon:10.0.0.5"), as well as its buckets
                base_of = "anon:" + client_host(ident.client_addr)
            rules = self._base(base_of, roles)
            if method == "initialize" and self._init_rules is not None:
                rules = rules + self._init_rules
            if tool is not None and self.cfg.tools:
                rules = rules + self._tools(tool)
            if self.cfg.servers:
                rules = rules + self._servers(ex.server)
                if ex.address is not None:  # named by the shim's header: its address too
                    rules = rules + tuple(r for r in self._servers(ex.address) if r not in rules)
                if ex.vhost is not None:  # the site its Host header names (a shared front end)
                    rules = rules + tuple(r for r in self._servers(ex.vhost) if r not in rules)
        if not rules:
            self._count(consumer, ex.server, tool or method, limited=False)
            return
        if anon and ":" in who:  # IPv6: the caller's network, not its address
            who = anon_network(who, self._v6)
        init_who = who
        if ident is not None and ident.kind == "bearer":
            # a token the gateway does not verify is made up at will, each a fresh identity
            # with full buckets: sessions are counted by the caller's network, and with
            # limits.unverified: address everything else too
            by_address = anon_network("anon:" + client_host(ident.client_addr), self._v6)
            if self._unverified_by_address:
                who = init_who = by_address
            elif method == "initialize":
                init_who = by_address
        init_rule = self._init_rules[0] if self._init_rules is not None else None
        now = self.clock()
        if now >= self._next_gc:
            self._gc(now)
        buckets = self._buckets
        worst: tuple[float, Rule] | None = None
        drawn: list[list[float]] = []
        for rule in rules:
            bk = (rule.bucket_key, "*" if rule.shared else init_who if rule is init_rule else who)
            b = buckets.get(bk)
            rate = rule.rate
            per_s = rate.count / rate.period
            if b is None:
                b = buckets[bk] = [self._fresh(bk, rate.burst, per_s, now), now]
                if len(buckets) > MAX_BUCKETS:
                    self._evict(now)
            else:
                buckets.move_to_end(bk)
                tokens = b[0] + (now - b[1]) * per_s
                b[0] = tokens if tokens < rate.burst else float(rate.burst)
                b[1] = now
            if b[0] < 1.0:
                wait = (1.0 - b[0]) / per_s
                if worst is None or wait > worst[0]:
                    worst = (wait, rule)
            drawn.append(b)
        if worst is not None:
            wait, rule = worst
            retry = max(1, math.ceil(wait))
            self.limited_total += 1
            self._count(consumer, ex.server, tool or method, limited=True)
            what = rule.scope.replace(":", " ", 1) if rule.scope != "default" else "default limit"
            msg.block(
                ErrorCode.RATE_LIMITED,
                f"rate limit exceeded: {rule.rate} ({what}) for {consumer}; retry after {retry} s",
                http_status=self.cfg.http_status,
                headers={"Retry-After": str(retry)},
                data={"limit": str(rule.rate), "scope": rule.scope, "retry_after": retry},
                stage=self.name,
            )
            return
        for b in drawn:
            b[0] -= 1.0
        if exempt:
            refund = partial(self._refund_exempt, drawn)
            if msg.refunds is None:
                msg.refunds = [refund]
            else:
                msg.refunds.append(refund)
            return
        self.admitted_total += 1
        what = tool or method
        self._count(consumer, ex.server, what, limited=False)
        # a request refused after all (by the scanner, or with the rest of its batch) is
        # not charged: its tokens go back
        refund = partial(self._refund, drawn, consumer, ex.server, what)
        if msg.refunds is None:
            msg.refunds = [refund]
        else:
            msg.refunds.append(refund)

    def _refund(self, drawn: list[list[float]], consumer: str, server: str, what: str) -> None:
        for b in drawn:
            b[0] += 1.0  # (at most back to where it was: the burst caps it on the next draw)
        self.admitted_total -= 1
        c = self.counts.get((consumer, server, _short(what)))
        if c is not None and c[0] > 0:
            c[0] -= 1

    @staticmethod
    def _refund_exempt(drawn: list[list[float]]) -> None:
        for b in drawn:
            b[0] += 1.0

    def _count(self, consumer: str, server: str, what: str, limited: bool) -> None:
        k = (consumer, server, _short(what))
        c = self.counts.get(k)
        if c is None:
            if len(self.counts) >= MAX_COUNTERS:
                return
            c = self.counts[k] = [0, 0]
        c[1 if limited else 0] += 1

    def usage(self) -> list[dict]:
        """Counters for metering: one row per (consumer, server, method or tool)."""
        return [
            {"consumer": c, "server": s, "call": w, "admitted": v[0], "limited": v[1]}
            for (c, s, w), v in sorted(self.counts.items())
        ]

    def _gc(self, now: float) -> None:
        self._next_gc = now + 60.0
        if len(self._buckets) < MAX_BUCKETS // 2:
            return
        # drop buckets that have refilled completely: recreating them gives the same state
        full = []
        for k, b in self._buckets.items():
            rate = _rate_of(k[0])
            if rate is None or b[0] + (now - b[1]) * rate[0] >= rate[1]:
                full.append(k)
        for k in full:
            del self._buckets[k]

    def _fresh(self, bk: tuple[str, str], burst: float, per_s: float, now: float) -> float:
        """The tokens of a bucket made anew: its burst, less the debt a forgotten bucket
        left in its slot (see the module's text)."""
        slot = hash(bk) & (DEBT_SLOTS - 1)
        lacked = self._debt[slot]
        if lacked <= 0.0:
            return float(burst)
        lacks = lacked - (now - self._debt_at[slot]) * per_s
        return float(burst) if lacks <= 0.0 else max(0.0, float(burst) - lacks)

    def _evict(self, now: float) -> None:
        """Forget the least recently used per-identity bucket, never a shared one: clearing
        them all let anyone who made enough identities reset everyone's limits, shared ones
        included. One that was not full leaves its debt in its slot."""
        buckets = self._buckets
        for _ in range(len(buckets)):  # (bounded: shared buckets are moved to the end)
            k, b = buckets.popitem(last=False)
            if k[1] == "*":
                buckets[k] = b
                continue
            rate = _rate_of(k[0])
            if rate is not None:
                per_s, burst = rate
                lacks = burst - (b[0] + (now - b[1]) * per_s)
                if lacks > 0.0:
                    # a count of tokens, not a time: read at another rule's rate, a time
                    # (1/day's day) emptied a 1000/day caller's bucket; a count costs it
                    # what the forgotten one lacked. The slot keeps the larger count as of
                    # now (what is left of an older one, at the slowest rate it holds:
                    # never less than any of its debts still lacks)
                    slot = hash(k) & (DEBT_SLOTS - 1)
                    old, rate_old = self._debt[slot], self._debt_rate[slot]
                    if old > 0.0:
                        old -= (now - self._debt_at[slot]) * rate_old
                    if old > 0.0:
                        per_s = min(per_s, rate_old)
                    self._debt[slot] = max(old, lacks)
                    self._debt_at[slot] = now
                    self._debt_rate[slot] = per_s
            if not self._warned:
                self._warned = True
                log.warning(
                    "mcp-gateway: more than %d rate-limit buckets; the least recently used "
                    "are forgotten (their debts are kept: no fresh allowance)",
                    MAX_BUCKETS,
                )
            return


def _rates(cfg: LimitsConfig) -> dict[str, str]:
    """Every rule's scope and its rate as its bucket keys spell it (see ``Rule``)."""
    out: dict[str, Rate] = {}
    if cfg.default is not None:
        out["default"] = cfg.default
    for k, r in cfg.consumers.items():
        out[f"consumer:{k}"] = r
    for k, r in cfg.roles.items():
        out[f"role:{k}"] = r
    twice = set()
    for scope, r in [(f"tool:{t.match}", t.rate) for t in cfg.tools] + [
        (f"server:{e.match}", e.rate) for e in cfg.servers
    ]:
        if scope in out:
            twice.add(scope)  # (two rules of one glob: which bucket is whose is not told)
        out[scope] = r
    if cfg.initialize is not None:
        out["initialize"] = cfg.initialize
    return {k: f"{r.count}/{r.period}/{r.burst}" for k, r in out.items() if k not in twice}


@lru_cache(maxsize=4096)
def anon_network(who: str, prefix: int) -> str:
    """An anonymous IPv6 principal (``anon:2001:db8::5``) as its network
    (``anon:2001:db8::/64``); an IPv4-mapped address as the IPv4 address."""
    host = who[5:] if who.startswith("anon:") else who
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return who
    if ip.ipv4_mapped is not None:
        return f"anon:{ip.ipv4_mapped}"
    if prefix >= 128:
        return f"anon:{ip}"
    return f"anon:{ipaddress.IPv6Network((ip, prefix), strict=False)}"


def _rate_of(bucket_key: str) -> tuple[float, float] | None:
    """(tokens per second, burst) from a bucket key."""
    try:
        spec = bucket_key.rsplit("|", 1)[1]
        count, period, burst = spec.split("/")
        return float(count) / float(period), float(burst)
    except (IndexError, ValueError):
        return None
