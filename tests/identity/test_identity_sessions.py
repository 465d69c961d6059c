"""Session binding: an Mcp-Session-Id belongs to the identity that created it."""

from __future__ import annotations

import logging
from pathlib import Path

from mcp_gateway.identity import sessions
from mcp_gateway.identity.config import load_config_text
from mcp_gateway.identity.identify import IdentifyStage, State
from mcp_gateway.identity.keys import create_key
from mcp_gateway.identity.sessions import SessionBindings
from mcp_gateway.message import ErrorCode
from mitmproxy import http


class Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def test_binding_owner_foreign_expiry_delete() -> None:
    clock = Clock()
    s = SessionBindings(idle_timeout=60, clock=clock)
    s.learn("sid-1", "key:a")
    assert s.check("sid-1", "key:a") is None
    assert s.check("sid-1", "key:b") == "foreign"
    assert s.owner("sid-1") == "key:a" and s.refused == 1
    clock.t += 59
    assert s.check("sid-1", "key:a") is None  # touched: idle time restarts
    clock.t += 61
    assert s.check("sid-1", "key:a") == "expired"
    assert s.check("sid-1", "key:a") == "expired"  # stays refused; the client must re-initialize
    # first sight of an unknown id binds it
    assert s.check("sid-2", "key:b") is None and s.owner("sid-2") == "key:b"
    s.end("sid-2")
    assert s.check("sid-2", "key:b") == "deleted"


def test_sweep_forgets_idle_sessions_in_bulk() -> None:
    clock = Clock()
    s = SessionBindings(idle_timeout=10, clock=clock)
    for i in range(100):
        s.learn(f"s{i}", "x")
    clock.t += 5
    s.check("s99", "x")
    clock.t += 6
    assert s.sweep() == 99 and len(s) == 1


def test_max_sessions_evicts_oldest() -> None:
    s = SessionBindings(idle_timeout=100, max_sessions=3, clock=Clock())
    for i in range(5):
        s.learn(f"s{i}", "x")
    assert len(s) == 3 and s.owner("s0") is None and s.owner("s4") == "x"


def _stage(tmp_path: Path, text: str = "") -> tuple[IdentifyStage, list[str]]:
    db = tmp_path / "gw.db"
    keys = [create_key(db, n, n, [])[0] for n in ("alice", "bob")]
    st = State(load_config_text(f"keys_db: {db}\n" + text))
    st.keys.refresh()
    return IdentifyStage(st), keys


def _respond(ex, sid: str | None, status: int = 200) -> None:
    headers = {"content-type": "application/json"}
    if sid:
        headers["mcp-session-id"] = sid
    ex.flow.response = http.Response.make(status, b"{}", headers)


def test_stage_session_reuse_by_another_identity_is_404(tmp_path, mkex, caplog) -> None:
    stage, (ka, kb) = _stage(tmp_path)
    init = mkex(auth=f"Bearer {ka}")
    stage.on_exchange(init)
    assert init.refusal is None
    _respond(init, "S-123456789-abcdef")
    stage.on_exchange_end(init)  # learnt from the initialize response
    ok = mkex(auth=f"Bearer {ka}", session="S-123456789-abcdef")
    stage.on_exchange(ok)
    assert ok.refusal is None
    with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
        hijack = mkex(auth=f"Bearer {kb}", session="S-123456789-abcdef", addr="10.9.9.9")
        stage.on_exchange(hijack)
    r = hijack.refusal
    assert r is not None and r.http_status == 404 and r.code == ErrorCode.FORBIDDEN
    assert "another identity" in r.message
    assert any(
        "bound to key:" in rec.message and "10.9.9.9" in rec.message for rec in caplog.records
    )
    # anonymous (no credential) is another identity too, also for a GET stream
    anon = mkex(session="S-123456789-abcdef", method="GET")
    stage.on_exchange(anon)
    assert anon.refusal is not None and anon.refusal.http_status == 404
    assert stage.refused["session"] == 2


def test_stage_delete_ends_binding(tmp_path, mkex) -> None:
    stage, (ka, kb) = _stage(tmp_path)
    ex = mkex(auth=f"Bearer {ka}", session="S1")  # first sight binds
    stage.on_exchange(ex)
    assert stage.sessions.owner("S1") == "key:" + ka.split("_")[1]
    foreign_delete = mkex(auth=f"Bearer {kb}", session="S1", method="DELETE")
    stage.on_exchange(foreign_delete)
    assert foreign_delete.refusal is not None  # bob cannot end alice's session
    d = mkex(auth=f"Bearer {ka}", session="S1", method="DELETE")
    stage.on_exchange(d)
    assert d.refusal is None
    _respond(d, None, 200)
    stage.on_exchange_end(d)
    assert stage.sessions.owner("S1") is None
    again = mkex(auth=f"Bearer {ka}", session="S1")
    stage.on_exchange(again)
    assert again.refusal is not None and again.refusal.http_status == 404


def test_stage_idle_expiry_from_config(tmp_path, mkex) -> None:
    stage, (ka, _) = _stage(tmp_path, "sessions:\n  idle_timeout: 0.2\n")
    import time

    ex = mkex(auth=f"Bearer {ka}", session="S9")
    stage.on_exchange(ex)
    assert ex.refusal is None
    _respond(ex, None)
    stage.on_exchange_end(ex)
    time.sleep(0.3)
    ex = mkex(auth=f"Bearer {ka}", session="S9")
    stage.on_exchange(ex)
    assert ex.refusal is not None and "expired" in ex.refusal.message


def test_binding_can_be_disabled(tmp_path, mkex) -> None:
    stage, (ka, kb) = _stage(tmp_path, "sessions:\n  bind: false\n")
    for k in (ka, kb):
        ex = mkex(auth=f"Bearer {k}", session="S5")
        stage.on_exchange(ex)
        assert ex.refusal is None


def test_open_stream_keeps_session_alive() -> None:
    clock = Clock()
    s = SessionBindings(idle_timeout=60, clock=clock)
    s.learn("sid", "key:a")
    s.hold("sid")  # a GET stream stays open for a long time
    clock.t += 600
    assert s.sweep() == 0 and s.owner("sid") == "key:a"
    assert s.check("sid", "key:a") is None
    s.release("sid")
    clock.t += 59
    assert s.check("sid", "key:a") is None
    clock.t += 61
    assert s.check("sid", "key:a") == "expired"


def test_stage_holds_session_during_exchange(tmp_path, mkex) -> None:
    stage, (ka, _) = _stage(tmp_path, "sessions:\n  idle_timeout: 0.2\n")
    import time

    stream = mkex(auth=f"Bearer {ka}", session="S7", method="GET")
    stage.on_exchange(stream)
    assert stream.refusal is None
    time.sleep(0.3)
    post = mkex(auth=f"Bearer {ka}", session="S7")
    stage.on_exchange(post)
    assert post.refusal is None  # the GET stream is still open
    _respond(post, None)
    stage.on_exchange_end(post)
    _respond(stream, None)
    stage.on_exchange_end(stream)
    time.sleep(0.3)
    late = mkex(auth=f"Bearer {ka}", session="S7")
    stage.on_exchange(late)
    assert late.refusal is not None and "expired" in late.refusal.message


def test_a_header_does_not_hide_the_legacy_session_of_the_url(tmp_path, mkex) -> None:
    """A legacy (HTTP+SSE) server routes by the URL's session_id and ignores the header:
    another identity adding its own Mcp-Session-Id must still be refused."""
    stage, (ka, kb) = _stage(tmp_path)
    owner = mkex(auth=f"Bearer {ka}")
    owner.legacy_session = "f7ea9dcb88d24b89a2d4316009380061"
    stage.on_exchange(owner)
    assert owner.refusal is None
    hijack = mkex(auth=f"Bearer {kb}", session="my-own-random-session")
    hijack.legacy_session = "f7ea9dcb88d24b89a2d4316009380061"
    stage.on_exchange(hijack)
    assert hijack.refusal is not None and hijack.refusal.http_status == 404


def test_one_identity_cannot_push_out_anyone_elses_sessions() -> None:
    s = SessionBindings(idle_timeout=100, max_sessions=10, clock=Clock(), max_per_identity=3)
    s.learn("victim", "key:v")
    for i in range(50):
        s.learn(f"a{i}", "key:a")
    assert s.owner("victim") == "key:v"
    assert [s.owner(f"a{i}") for i in (46, 47, 48, 49)] == [None, "key:a", "key:a", "key:a"]
    assert s.check("a46", "key:a") == "expired"  # its own oldest went first


def test_one_identity_ending_its_sessions_cannot_make_anothers_ended_id_new() -> None:
    """An ended id is refused as long as it is remembered; were it forgotten, it would look
    new and be bound to whoever presented it first. Flushing that memory with one's own
    initialize + DELETE cycles pushes out one's own ended ids only."""
    clock = Clock()
    s = SessionBindings(idle_timeout=100, max_sessions=10, clock=clock, max_per_identity=3)
    s.learn("victim", "key:v")
    clock.t += 101
    assert s.check("victim", "key:v") == "expired"
    for i in range(50):
        s.learn(f"a{i}", "key:a")
        s.end(f"a{i}")
    assert s.check("victim", "key:m") == "expired" and s.owner("victim") is None
    assert s.check("a49", "key:a") == "deleted"  # its own recent ones are still known
    assert s.check("a0", "key:a") is None  # its own oldest went first
    assert len(s._ended) <= 10 and sum(map(sessions._count, s._ended_by.values())) == len(s._ended)


def test_made_up_session_ids_answered_404_are_not_kept(tmp_path, mkex) -> None:
    """A flood of made-up ids (cheap DELETE, GET or POST requests the server answers 404)
    neither fills the table nor pushes out real bindings, which would hand a victim's id
    to whoever presents it once it has been forgotten."""
    stage, (ka, kb) = _stage(tmp_path, "sessions:\n  max_sessions: 20\n")
    init = mkex(auth=f"Bearer {ka}")
    stage.on_exchange(init)
    _respond(init, "S-victim")
    stage.on_exchange_end(init)
    for i in range(100):
        ex = mkex(auth=f"Bearer {kb}", session=f"S-made-up-{i}", method="DELETE")
        stage.on_exchange(ex)
        assert ex.refusal is None  # first sight: the server is asked
        _respond(ex, None, 404)
        stage.on_exchange_end(ex)
    assert len(stage.sessions) == 1 and stage.sessions.owner("S-victim").startswith("key:")
    steal = mkex(auth=f"Bearer {kb}", session="S-victim")
    stage.on_exchange(steal)
    assert steal.refusal is not None and steal.refusal.http_status == 404
    mine = mkex(auth=f"Bearer {ka}", session="S-victim")
    stage.on_exchange(mine)
    assert mine.refusal is None
    # a first-sight id the server accepts (a gateway restarted with sessions open) stays
    ex = mkex(auth=f"Bearer {kb}", session="S-after-restart")
    stage.on_exchange(ex)
    _respond(ex, None, 200)
    stage.on_exchange_end(ex)
    other = mkex(auth=f"Bearer {ka}", session="S-after-restart")
    stage.on_exchange(other)
    assert other.refusal is not None and "another identity" in other.refusal.message


def test_both_ids_of_a_legacy_request_with_a_header_are_settled(tmp_path, mkex) -> None:
    """A legacy request carrying a URL session and an Mcp-Session-Id binds both on first
    sight; an error answer must drop both, or the second stays bound for good."""
    stage, (ka, kb) = _stage(tmp_path)
    ex = mkex(auth=f"Bearer {ka}", session="hdr-made-up")
    ex.legacy_session = "url-made-up"
    stage.on_exchange(ex)
    assert ex.refusal is None
    _respond(ex, None, 404)
    stage.on_exchange_end(ex)
    assert len(stage.sessions) == 0
    for sid in ("hdr-made-up", "url-made-up"):
        other = mkex(auth=f"Bearer {kb}", session=sid)
        stage.on_exchange(other)
        assert other.refusal is None, sid  # not kept for the identity that made it up


def test_a_first_sight_id_is_dropped_when_its_companion_is_refused(tmp_path, mkex) -> None:
    """The URL id is bound on first sight, then the header id (another identity's) is
    refused: the exchange never reaches the server, so the URL id must not stay bound."""
    stage, (ka, kb) = _stage(tmp_path)
    init = mkex(auth=f"Bearer {kb}")
    stage.on_exchange(init)
    _respond(init, "bob-session")
    stage.on_exchange_end(init)
    ex = mkex(auth=f"Bearer {ka}", session="bob-session")
    ex.legacy_session = "url-made-up"
    stage.on_exchange(ex)
    assert ex.refusal is not None
    stage.on_exchange_end(ex)
    other = mkex(auth=f"Bearer {kb}", session="url-made-up")
    stage.on_exchange(other)
    assert other.refusal is None


def test_a_first_sight_id_is_not_kept_when_the_gateway_answered(tmp_path, mkex) -> None:
    """A request the gateway blocks itself is answered 200 with a JSON-RPC error: the
    server never saw its session id, so a made-up id must not stay bound to the sender
    (who would otherwise own it when the server later hands it out)."""
    stage, (ka, kb) = _stage(tmp_path)
    ex = mkex(auth=f"Bearer {ka}", session="made-up-by-a")
    stage.on_exchange(ex)
    assert ex.refusal is None  # first sight: would be asked of the server
    _respond(ex, None, 200)
    ex.flow.metadata["mcp_gateway_answered"] = True
    stage.on_exchange_end(ex)
    other = mkex(auth=f"Bearer {kb}", session="made-up-by-a")
    stage.on_exchange(other)
    assert other.refusal is None


def test_long_session_ids_are_kept_by_their_digest() -> None:
    """A session id is the peer's string, of any length: 1,000 made-up 12 KB ids that a
    stateless server accepted took 17 MB, and the table holds max_sessions bound and as
    many ended ones. A long one is kept by its digest, and still binds exactly."""
    clock = Clock()
    s = SessionBindings(idle_timeout=100, max_sessions=10, clock=clock, max_per_identity=5)
    long_a = "a" * 100_000
    long_b = "a" * 99_999 + "b"  # the same start, another id
    s.learn(long_a, "key:a")
    assert s.owner(long_a) == "key:a" and s.owner(long_b) is None
    assert s.check(long_a, "key:a") is None and s.check(long_a, "key:m") == "foreign"
    assert s.check(long_b, "key:m") is None and s.is_provisional(long_b)
    s.settle(long_b, accepted=False)
    assert s.owner(long_b) is None
    s.hold(long_a)
    clock.t += 101
    assert s.check(long_a, "key:a") is None  # held open: not idle
    s.release(long_a)
    s.end(long_a)
    assert s.check(long_a, "key:a") == "deleted"
    for i in range(20):
        s.learn(f"{i:04d}" + "x" * 50_000, f"key:{i % 3}")
    kept = [*s._bound, *s._ended, *s._provisional, *s._open]
    assert kept and max(map(len, kept)) < 200
    assert s.owner("x" * 256) is None  # (an id of the limit's length is kept as it is)
    s.learn("x" * 256, "key:z")
    assert "x" * 256 in s._bound


def test_a_legacy_session_announced_on_a_stream_belongs_to_its_opener(tmp_path, mkex) -> None:
    """A legacy (HTTP+SSE) server hands the session to whoever opened GET /sse, in its
    `endpoint` event. Bound on first sight only, it belonged to whoever POSTed to it first:
    another identity that learnt the id took it before its owner's first request."""
    stage, (ka, kb) = _stage(tmp_path)
    sid = "f7ea9dcb88d24b89a2d4316009380061"
    stream = mkex(auth=f"Bearer {ka}", method="GET")
    stage.on_exchange(stream)
    stage.on_session(stream, sid)
    hijack = mkex(auth=f"Bearer {kb}")
    hijack.legacy_session = sid
    stage.on_exchange(hijack)
    assert hijack.refusal is not None and hijack.refusal.http_status == 404
    owner = mkex(auth=f"Bearer {ka}")
    owner.legacy_session = sid
    stage.on_exchange(owner)
    assert owner.refusal is None
    # held while the stream is open, released when it ends
    assert sid in stage.sessions._open
    stage.on_exchange_end(owner)
    _respond(stream, None)
    stage.on_exchange_end(stream)
    assert sid not in stage.sessions._open and stage.sessions.owner(sid) is not None


def test_one_session_per_identity_costs_no_container_each() -> None:
    """A client that makes up a bearer token per request is a new identity each time, with
    one session: an OrderedDict per identity (bound, and again once ended) took ~400 bytes,
    and the tables at their default caps ~150 MB. One sid is kept as itself."""
    import gc
    import tracemalloc

    owners = [f"bearer:{i:032x}" for i in range(20_000)]
    sids = [f"{i:040x}" for i in range(20_000)]
    s = SessionBindings(max_sessions=10_000)
    gc.collect()
    tracemalloc.start()
    try:
        for sid, who in zip(sids, owners, strict=True):
            s._bind(sid, who, 0.0)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(s) == 10_000 and len(s._ended) == 10_000
    assert used / 20_000 < 300, used / 20_000  # (bytes a session, bound or ended: ~150)
    # and the tables still behave: an identity's own oldest goes first, all accounted for
    s.configure(idle_timeout=3600.0, max_sessions=10_000, max_per_identity=2)
    for sid in ("a", "b", "c"):
        s._bind(sid, "alice", 1.0)
    assert s.owner("a") is None and s.owner("b") == "alice" and s.owner("c") == "alice"
    s.end("b")
    s.end("c")
    assert s._owned.get("alice") is None and sessions._count(s._ended_by["alice"]) == 2
