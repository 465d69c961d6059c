"""Session binding: an ``Mcp-Session-Id`` belongs to the identity that created it.

The binding is learnt when a server response carries a new ``Mcp-Session-Id`` (the
answer to ``initialize``), or on first sight of an unknown id (a gateway restarted
while sessions were open). A first-sight binding is provisional until the server
accepts the id: answered with an error (404 for an id it does not know), it is dropped
and not remembered, so made-up ids cannot fill the table and push real bindings out.
One identity holds at most ``max_per_identity`` bindings (its least recently used goes
first), so one caller cannot evict everyone else's. The same id presented by another
identity is refused with
HTTP 404, as for an unknown session, so a stolen or guessed session id is useless
without the credential that opened it; the refusal is logged at WARNING and recorded
by the audit stage. A session idle for ``sessions.idle_timeout`` seconds is forgotten
and its id refused afterwards (some clients never send DELETE); a DELETE ends it.

Everything runs on the event loop thread: an ``OrderedDict`` ordered by last use gives
O(1) touch and cheap expiry from the oldest end.

An id is the client's or the server's string, of any length (the spec sets none): one
longer than ``MAX_SID`` is kept by its SHA-256 digest. Kept whole, 1,000 made-up ids of
12 KB that a stateless server accepted took 17 MB, and the table holds
``max_sessions`` bound and as many ended ones.

An identity's own sessions (bound, and ended) are a plain string while it holds one, the
usual case and the one of a client that makes up a token per request: an ``OrderedDict``
each took ~400 bytes, and at the default caps (100,000 bound and as many ended, one per
made-up token) the tables held ~150 MB.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from ..message import session_key as sid_key

log = logging.getLogger("mcp_gateway.identity")

# An owner's sids, least recently used first: one sid as itself, several in an OrderedDict.
_Sids = str | OrderedDict


def _add(table: dict[str, _Sids], owner: str, sid: str) -> _Sids:
    """Add (or move to the end) ``sid`` among ``owner``'s; its sids after."""
    cur = table.get(owner)
    if cur is None or cur == sid:
        table[owner] = sid
        return sid
    if isinstance(cur, str):
        cur = table[owner] = OrderedDict(((cur, None), (sid, None)))
        return cur
    cur[sid] = None
    cur.move_to_end(sid)
    return cur


def _remove(table: dict[str, _Sids], owner: str, sid: str) -> None:
    cur = table.get(owner)
    if cur is None:
        return
    if isinstance(cur, str):
        if cur == sid:
            del table[owner]
        return
    cur.pop(sid, None)
    if len(cur) == 1:
        table[owner] = next(iter(cur))
    elif not cur:
        del table[owner]


def _oldest(sids: _Sids) -> str:
    return sids if isinstance(sids, str) else next(iter(sids))


def _count(sids: _Sids | None) -> int:
    if sids is None:
        return 0
    return 1 if isinstance(sids, str) else len(sids)


class SessionBindings:
    SWEEP_EVERY = 1.0  # seconds between expiry sweeps (amortized on the request path)

    def __init__(
        self,
        idle_timeout: float = 3600.0,
        max_sessions: int = 100_000,
        clock=time.monotonic,
        max_per_identity: int = 10_000,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.max_per_identity = max_per_identity
        self.clock = clock
        self._bound: OrderedDict[str, tuple[str, float]] = OrderedDict()  # sid -> (owner, last use)
        self._owned: dict[str, _Sids] = {}  # owner -> its sids, by last use
        self._provisional: set[str] = set()  # bound on first sight, not yet accepted
        self._ended: OrderedDict[str, str] = OrderedDict()  # sid -> why (expired / deleted)
        # owner -> its ended sids, oldest first: one identity's ended sessions push out its
        # own first (ending its own sessions in bulk must not make another's id look new,
        # which whoever presented it first would then own)
        self._ended_by: dict[str, _Sids] = {}
        self._ender: dict[str, str] = {}  # sid -> the identity whose session it was
        self._next_sweep = 0.0
        self._open: dict[str, int] = {}  # sid -> exchanges in progress (GET streams, long calls)
        self.refused = 0  # counter: requests refused for presenting another identity's session

    def __len__(self) -> int:
        return len(self._bound)

    def owner(self, sid: str) -> str | None:
        sid = sid_key(sid)
        hit = self._bound.get(sid)
        return hit[0] if hit else None

    def configure(
        self, idle_timeout: float, max_sessions: int, max_per_identity: int = 10_000
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.max_per_identity = max_per_identity

    def is_provisional(self, sid: str) -> bool:
        sid = sid_key(sid)
        return sid in self._provisional

    def settle(self, sid: str, accepted: bool) -> None:
        """The server answered an exchange of a first-sight binding: ``accepted`` keeps it,
        an error answer (404: an id the server does not know) drops it without a trace."""
        sid = sid_key(sid)
        if sid not in self._provisional:
            return
        self._provisional.discard(sid)
        if not accepted:
            hit = self._bound.pop(sid, None)
            if hit is not None:
                self._disown(sid, hit[0])

    def check(self, sid: str, who: str) -> str | None:
        """Touch ``sid`` for ``who``. Returns None if allowed, else the reason to refuse."""
        sid = sid_key(sid)
        now = self.clock()
        if now >= self._next_sweep:
            self.sweep(now)
        hit = self._bound.get(sid)
        if hit is None:
            ended = self._ended.get(sid)
            if ended is not None:
                return ended
            self._bind(sid, who, now)
            self._provisional.add(sid)
            return None
        owner, last = hit
        if now - last > self.idle_timeout and sid not in self._open:
            self._end(sid, "expired")
            return "expired"
        if owner != who:
            self.refused += 1
            return "foreign"
        self._bound[sid] = (owner, now)
        self._bound.move_to_end(sid)
        mine = self._owned.get(owner)
        if isinstance(mine, OrderedDict) and sid in mine:
            mine.move_to_end(sid)
        return None

    def learn(self, sid: str, who: str) -> None:
        """A server response announced ``sid`` for a request made by ``who``."""
        sid = sid_key(sid)
        now = self.clock()
        hit = self._bound.get(sid)
        if hit is not None:
            if hit[0] != who:
                # The server handed out an id that is already bound elsewhere: keep the
                # first owner (never let a response re-assign a session), but say so.
                log.warning(
                    "mcp-gateway: server re-announced session %s for another identity; keeping the first owner",
                    short(sid),
                )
            else:
                self._provisional.discard(sid)  # the server speaks of it: accepted
            return
        self._forget_end(sid)
        self._bind(sid, who, now)
        self._provisional.discard(sid)

    def hold(self, sid: str) -> None:
        """An exchange of ``sid`` is in progress: the session is not idle until release."""
        sid = sid_key(sid)
        self._open[sid] = self._open.get(sid, 0) + 1

    def release(self, sid: str) -> None:
        sid = sid_key(sid)
        n = self._open.get(sid, 0) - 1
        if n > 0:
            self._open[sid] = n
        else:
            self._open.pop(sid, None)
            hit = self._bound.get(sid)
            if hit is not None:  # idle time counts from the end of the last exchange
                self._bound[sid] = (hit[0], self.clock())
                self._bound.move_to_end(sid)

    def release_all(self) -> None:
        self._open.clear()

    def end(self, sid: str) -> None:
        sid = sid_key(sid)
        if sid in self._bound:
            self._end(sid, "deleted")

    def _bind(self, sid: str, who: str, now: float) -> None:
        self._bound[sid] = (who, now)
        self._bound.move_to_end(sid)
        mine = _add(self._owned, who, sid)
        while _count(mine) > self.max_per_identity:  # its own oldest, not someone else's
            self._end(_oldest(mine), "expired")
            mine = self._owned.get(who)
        while len(self._bound) > self.max_sessions:
            self._end(next(iter(self._bound)), "expired")

    def _disown(self, sid: str, owner: str) -> None:
        self._provisional.discard(sid)
        _remove(self._owned, owner, sid)

    def _end(self, sid: str, why: str) -> None:
        hit = self._bound.pop(sid, None)
        if hit is not None:
            self._disown(sid, hit[0])
        self._remember_end(sid, why, hit[0] if hit is not None else "")

    def _remember_end(self, sid: str, why: str, owner: str) -> None:
        self._forget_end(sid)
        self._ended[sid] = why
        self._ender[sid] = owner
        mine = _add(self._ended_by, owner, sid)
        while _count(mine) > self.max_per_identity:  # its own oldest, not someone else's
            self._forget_end(_oldest(mine))
            mine = self._ended_by.get(owner)
        while len(self._ended) > self.max_sessions:
            self._forget_end(next(iter(self._ended)))

    def _forget_end(self, sid: str) -> None:
        if self._ended.pop(sid, None) is None:
            return
        owner = self._ender.pop(sid, "")
        _remove(self._ended_by, owner, sid)

    def sweep(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        self._next_sweep = now + self.SWEEP_EVERY
        n = 0
        limit = now - self.idle_timeout
        busy = []
        while self._bound:
            sid, (owner, last) = next(iter(self._bound.items()))
            if last >= limit:
                break
            if sid in self._open:  # a stream is open: not idle; look at it again later
                del self._bound[sid]  # (still owned: put back below)
                busy.append((sid, owner))
                continue
            self._end(sid, "expired")
            n += 1
        for sid, owner in busy:
            self._bound[sid] = (owner, now)
        return n


def short(sid: str) -> str:
    """A session id shortened for logs."""
    if sid.startswith("\x00"):  # a digest (session_key)
        return sid[1:16] + "…"
    return sid if len(sid) <= 12 else sid[:8] + "…"
