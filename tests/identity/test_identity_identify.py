"""Identity sources and the 401 answers of the identify stage."""

from __future__ import annotations

from pathlib import Path

from mcp_gateway.identity.config import load_config_text
from mcp_gateway.identity.identify import IdentifyStage, Identity, State, extract_token
from mcp_gateway.identity.keys import create_key, revoke_key
from mcp_gateway.message import ErrorCode
from mcp_gateway.pipeline import Pipeline


def _stage(tmp_path: Path, text: str = "") -> tuple[IdentifyStage, str, str]:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "ci", "agent-1", ["reader", "writer"])
    st = State(load_config_text(f"keys_db: {db}\n{text}"))
    st.keys.refresh()
    return IdentifyStage(st), key, rec.id


def test_extract_token() -> None:
    assert extract_token("Bearer abc", "Authorization") == "abc"
    assert extract_token("bearer   abc ", "Authorization") == "abc"
    # the first word, as the TypeScript SDK reads it: a suffix is no new identity
    assert extract_token("Bearer abc x5", "Authorization") == "abc"
    assert extract_token("Bearer abc\tjunk", "Authorization") == "abc"
    assert extract_token("Basic dXNlcjpwdw==", "Authorization") is None
    assert extract_token("", "Authorization") is None
    assert extract_token("raw-key", "X-Api-Key") == "raw-key"
    assert extract_token("Bearer k", "X-Api-Key") == "k"
    # any whitespace after the scheme, as the Go SDK's strings.Fields reads it: such a
    # caller was anonymous, and a gateway key so written went on to the server
    assert extract_token("Bearer\tabc", "Authorization") == "abc"
    assert extract_token("Bearer\u00a0abc", "Authorization") == "abc"
    assert extract_token("Bearer", "Authorization") is None


def test_api_key_identity(tmp_path, mkex) -> None:
    stage, key, kid = _stage(tmp_path)
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    i = ex.identity
    assert isinstance(i, Identity) and ex.refusal is None
    assert (i.kind, i.consumer, i.roles, i.key_id, i.name) == (
        "api_key",
        "agent-1",
        ("reader", "writer"),
        kid,
        "ci",
    )
    assert i.key == f"key:{kid}" and i.authenticated
    assert len(i.token_hash) == 16 and i.token_hash not in key
    assert key not in repr(i) and key not in repr(i.as_dict())


def test_invalid_and_revoked_keys_get_401_even_when_auth_optional(tmp_path, mkex) -> None:
    stage, key, kid = _stage(tmp_path)
    for bad in (key[:-3] + "xyz", "mgw_garbage", "MGW" + key[3:]):  # (a key mangled in case)
        ex = mkex(auth=f"Bearer {bad}")
        stage.on_exchange(ex)
        r = ex.refusal
        assert r is not None and r.http_status == 401 and r.code == ErrorCode.UNAUTHORIZED == -32062
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="mcp-gateway"')
        assert bad not in r.message and ex.identity is None
    revoke_key(tmp_path / "gw.db", kid)
    stage.state.keys.refresh()
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is not None and "revoked" in ex.refusal.message


def test_a_connection_admitted_with_a_key_revoked_since_is_refused(tmp_path, mkex) -> None:
    """A WebSocket connection is one exchange, admitted at its handshake: a key revoked
    while it is open kept working on it. ``reauthenticate`` tells the credential no longer
    holds (the exchange's headers no longer carry it: it was swapped at the handshake)."""
    stage, key, kid = _stage(tmp_path)
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None and ex.identity.kind == "api_key"
    assert stage.reauthenticate(ex) is None
    anon = mkex()
    stage.on_exchange(anon)
    revoke_key(tmp_path / "gw.db", kid)
    stage.state.keys.refresh()
    r = stage.reauthenticate(ex)
    assert r is not None and r.code == ErrorCode.UNAUTHORIZED and "revoked" in r.message
    assert stage.reauthenticate(anon) is None  # (nothing to revoke)


def test_other_bearer_and_anonymous(tmp_path, mkex) -> None:
    stage, _, _ = _stage(tmp_path)
    ex1, ex2 = mkex(auth="Bearer tok-A"), mkex(auth="Bearer tok-A", addr="10.1.1.1")
    stage.on_exchange(ex1)
    stage.on_exchange(ex2)
    assert (
        ex1.identity.kind == "bearer" and ex1.identity.key == ex2.identity.key
    )  # same token, same identity
    assert ex1.identity.consumer.startswith("token:")
    ex3 = mkex(auth="Bearer tok-B")
    stage.on_exchange(ex3)
    assert ex3.identity.key != ex1.identity.key
    anon = mkex(addr="192.0.2.5")
    stage.on_exchange(anon)
    assert (anon.identity.kind, anon.identity.consumer, anon.identity.key) == (
        "anonymous",
        "anon:192.0.2.5",
        "anon:192.0.2.5",
    )


def test_required_auth(tmp_path, mkex) -> None:
    stage, key, _ = _stage(tmp_path, "auth:\n  required: true\n  realm: corp\n")
    ex = mkex()
    stage.on_exchange(ex)
    r = ex.refusal
    assert r.http_status == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="corp"'
    assert "authentication required" in r.message
    ex = mkex(auth="Bearer not-a-gateway-token")
    stage.on_exchange(ex)
    assert ex.refusal.http_status == 401 and "not a gateway credential" in ex.refusal.message
    ex = mkex(auth="Basic dXNlcjpwdw==")
    stage.on_exchange(ex)
    assert ex.refusal is not None
    ex = mkex(auth=f"Bearer {key}", method="GET")
    stage.on_exchange(ex)
    assert ex.refusal is None and ex.identity.kind == "api_key"


def test_a_refused_credential_is_told_from_the_headers_alone(tmp_path, mkex) -> None:
    # (a chunked body is refused on this before mitmproxy reads it)
    stage, key, _ = _stage(tmp_path, "auth:\n  required: true\n")
    assert stage.authenticate(mkex()).http_status == 401
    assert stage.authenticate(mkex(auth="Bearer mgw_wrong")).http_status == 401
    ex = mkex(auth=f"Bearer {key}")
    assert stage.authenticate(ex) is None and ex.refusal is None  # nothing else decided yet
    stage, _, _ = _stage(tmp_path / "optional")
    assert stage.authenticate(mkex()) is None  # anonymous allowed


def test_refusal_blocks_every_message_of_the_exchange(tmp_path, mkex, mkreq) -> None:
    stage, _, _ = _stage(tmp_path, "auth:\n  required: true\n")
    p = Pipeline([stage])
    ex = mkex()
    assert p.start_exchange(ex) is not None
    m = p.run(mkreq(ex))
    assert m.stopped and m.refusal.http_status == 401 and m.refusal.stage == "identify"


def test_the_refusal_log_line_leaves_the_query_out(tmp_path, mkex, caplog) -> None:
    """/mcp?api_key=… carries a credential: the 401 warning names the path only."""
    import logging

    stage, _, _ = _stage(tmp_path, "auth:\n  required: true\n")
    ex = mkex()
    ex.path = "/mcp?api_key=S3cr3tQueryValue987xyz"
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        stage.on_exchange(ex)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines and "/mcp " in lines[0] and "S3cr3t" not in lines[0]


def test_a_credential_header_given_twice_is_refused_and_removed(tmp_path, mkex) -> None:
    """Authorization: Bearer <opaque> then Authorization: Bearer mgw_<key>: the gateway read
    the first copy (an unverified caller, forwarded unchanged) and the request went on with
    both, the gateway key to the server, which may read the last copy (or all of them)."""
    stage, key, _ = _stage(tmp_path)
    for first, second in (
        ("Bearer opaque-123", f"Bearer {key}"),
        ("Basic dXNlcjpwdw==", f"Bearer {key}"),
        (f"Bearer {key}", "Bearer opaque-123"),
        ("Bearer a", "Bearer b"),
    ):
        ex = mkex()
        ex.flow.request.headers.fields += (
            (b"Authorization", first.encode()),
            (b"authorization", second.encode()),
        )
        assert stage.authenticate(ex) is not None, (first, second)
        assert not ex.flow.request.headers.get_all("authorization"), (first, second)
        ex = mkex()
        ex.flow.request.headers.fields += (
            (b"Authorization", first.encode()),
            (b"authorization", second.encode()),
        )
        stage.on_exchange(ex)
        r = ex.refusal
        assert r is not None and ex.identity is None, (first, second)
        assert (r.code, r.http_status) == (ErrorCode.INVALID_REQUEST, 400)
        assert "more than once" in r.message
        assert not ex.flow.request.headers.get_all("authorization"), (first, second)
    # the core's lowercase map (first value wins) as the exchange's headers: the same
    ex = mkex()
    ex.flow.request.headers.fields += (
        (b"authorization", b"Bearer opaque-123"),
        (b"authorization", f"Bearer {key}".encode()),
    )
    ex.request_headers = {
        k.decode().lower(): v.decode() for k, v in ex.flow.request.headers.fields[::-1]
    }
    stage.on_exchange(ex)
    assert ex.refusal is not None and ex.refusal.http_status == 400
    # one copy, as always: admitted
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None and ex.identity.kind == "api_key"


def test_a_gateway_key_in_a_second_header_of_a_non_mcp_request_is_removed(tmp_path) -> None:
    from mitmproxy.test import tflow

    stage, key, _ = _stage(tmp_path)
    f = tflow.tflow()
    f.request.headers.fields += (
        (b"Authorization", b"Bearer opaque-123"),
        (b"Authorization", f"Bearer {key}".encode()),
    )
    stage.strip_stray_credential(f)
    assert key not in repr(f.request.headers.fields)
    # another token alone is the server's, and stays
    f = tflow.tflow()
    f.request.headers["Authorization"] = "Bearer opaque-123"
    stage.strip_stray_credential(f)
    assert f.request.headers["Authorization"] == "Bearer opaque-123"


def _event(ex, eid: str, mid: int = 7):
    from mcp_gateway.message import Direction, Kind, Message

    payload = {"jsonrpc": "2.0", "id": mid, "result": {"content": []}}
    return Message(payload, Direction.SERVER_TO_CLIENT, Kind.RESULT, ex, id=mid, sse_event_id=eid)


def test_a_stream_resumed_from_another_identitys_event_is_refused(tmp_path, mkex) -> None:
    """The SDK servers keep one event store for all sessions (its interface takes no session):
    bob, in his own session, resumed a stream with Last-Event-ID naming an event of alice's
    stream, and the server replayed alice's tool result to him (live: FastMCP 1.x with an
    event store, through the gateway)."""
    db = tmp_path / "gw.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    st = State(load_config_text(f"keys_db: {db}\n"))
    st.keys.refresh()
    stage = IdentifyStage(st)
    p = Pipeline()
    p.add(stage)

    def exchange(key, sid, last=None, method="POST"):
        ex = mkex(auth=f"Bearer {key}", session=sid, method=method,
                  extra={"last-event-id": last} if last else None)  # fmt: skip
        p.start_exchange(ex)
        return ex

    a_ex = exchange(alice, "sa")
    for eid in ("a-1", "a-2"):
        assert not p.run(_event(a_ex, eid)).stopped  # delivered to alice
    b_ex = exchange(bob, "sb")
    assert not p.run(_event(b_ex, "b-1")).stopped
    # bob resumes from alice's event: refused before it reaches the server
    ex = exchange(bob, "sb", last="a-1", method="GET")
    assert ex.refusal is not None and ex.refusal.http_status == 404, ex.refusal
    assert "another identity" in ex.refusal.message
    # from his own: admitted, but an event of alice's the server replays there is refused
    # (a store keyed by stream, a stream being a request id, replays another session's)
    ex = exchange(bob, "sb", last="b-1", method="GET")
    assert ex.refusal is None
    m = p.run(_event(ex, "a-2"))
    assert m.stopped and "another identity" in m.refusal.message
    assert not p.run(_event(ex, "b-2")).stopped  # (new to the gateway: his)
    # alice resumes from her own: as always
    ex = exchange(alice, "sa", last="a-1", method="GET")
    assert ex.refusal is None and not p.run(_event(ex, "a-2")).stopped
    # an id a server counts (1, 2, 3…) delivered to both is either's
    assert not p.run(_event(a_ex, "1")).stopped and not p.run(_event(b_ex, "1")).stopped
    ex = exchange(bob, "sb", last="1", method="GET")
    assert ex.refusal is None and not p.run(_event(ex, "1")).stopped
    # and given to eight identities, nobody's
    for i in range(8):
        e = mkex(auth=f"Bearer tok{i}")
        p.start_exchange(e)
        p.run(_event(e, "2"))
    ex = exchange(bob, "sb", last="2", method="GET")
    assert ex.refusal is None


def test_one_identitys_flood_of_events_does_not_push_out_anothers(tmp_path, mkex, monkeypatch):
    from mcp_gateway.identity import identify

    monkeypatch.setattr(identify, "MAX_EVENTS", 50)
    monkeypatch.setattr(identify, "MAX_EVENTS_PER_IDENTITY", 10)
    db = tmp_path / "gw.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    st = State(load_config_text(f"keys_db: {db}\n"))
    st.keys.refresh()
    stage = IdentifyStage(st)
    p = Pipeline()
    p.add(stage)

    def exchange(key, sid, last=None, method="POST"):
        ex = mkex(auth=f"Bearer {key}", session=sid, method=method,
                  extra={"last-event-id": last} if last else None)  # fmt: skip
        p.start_exchange(ex)
        return ex

    a_ex = exchange(alice, "sa")
    p.run(_event(a_ex, "a-1"))
    b_ex = exchange(bob, "sb")
    for i in range(1000):  # bob's stream of a thousand events
        p.run(_event(b_ex, f"b-{i}"))
    assert len(stage._events) <= 11 and len(stage._event_owners) == 2
    ex = exchange(bob, "sb", last="a-1", method="GET")
    assert ex.refusal is not None and ex.refusal.http_status == 404
    # his own recent events still resume
    assert exchange(bob, "sb", last="b-999", method="GET").refusal is None
    # many identities: the table stays bounded, and the bookkeeping with it
    for i in range(200):
        e = mkex(auth=f"Bearer tok{i}")
        p.start_exchange(e)
        p.run(_event(e, f"t-{i}"))
    assert len(stage._events) <= 50 and set(stage._from) <= set(stage._events)
    assert sum(len(m) for m in stage._event_owners.values()) == sum(
        len(o) for o in stage._events.values()
    )


def test_a_task_made_for_another_identity_is_refused(tmp_path, mkex, mkreq) -> None:
    """A server whose own tasks/result handler serves any session's task (the SDK warns that
    one calling TaskResultHandler.handle() decides access itself): bob, in his own session,
    read alice's task result by naming her taskId."""
    from mcp_gateway.message import Direction, Kind, Message

    db = tmp_path / "gw.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    st = State(load_config_text(f"keys_db: {db}\n"))
    st.keys.refresh()
    stage = IdentifyStage(st)
    p = Pipeline()
    p.add(stage)

    def exchange(key, sid):
        ex = mkex(auth=f"Bearer {key}", session=sid)
        p.start_exchange(ex)
        return ex

    def request(ex, method, tid, mid=3):
        payload = {"jsonrpc": "2.0", "id": mid, "method": method, "params": {"taskId": tid}}
        return Message(payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=mid, method=method)

    a_ex = exchange(alice, "sa")
    created = {"jsonrpc": "2.0", "id": 1, "result": {"task": {"taskId": "t-alice", "status": "working"}}}  # fmt: skip
    assert not p.run(Message(created, Direction.SERVER_TO_CLIENT, Kind.RESULT, a_ex, id=1)).stopped
    b_ex = exchange(bob, "sb")
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        m = p.run(request(b_ex, method, "t-alice"))
        assert m.stopped and "another identity" in m.refusal.message, method
        assert not p.run(request(exchange(alice, "sa"), method, "t-alice")).stopped, method
    # a task the gateway never saw made (another gateway, before a restart): the server's to judge
    assert not p.run(request(b_ex, "tasks/result", "t-unknown")).stopped


def test_a_server_whose_event_ids_collide_is_not_checked(tmp_path, mkex) -> None:
    """The Go SDK (v0.2-v0.3) numbers event ids per session, ``<stream>_<index>`` with
    streams counted from 0 in each session, and replays from a store keyed by session: every
    session's first answer is ``1_0``. Bob's stream was cut after ``1_1``; resumed, the
    server replayed his own ``1_2``, which alice had been given in her session, and the
    gateway refused bob's own answer (and every later one alice had had too). Ids that two
    identities were given live say the server's ids are not unique: its resumptions are
    not checked; another server's still are."""
    db = tmp_path / "gw.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    st = State(load_config_text(f"keys_db: {db}\n"))
    st.keys.refresh()
    stage = IdentifyStage(st)
    p = Pipeline()
    p.add(stage)
    go, py = "127.0.0.1:8001", "127.0.0.1:8000"

    def exchange(key, sid, last=None, method="POST", server=go):
        ex = mkex(auth=f"Bearer {key}", session=sid, method=method, server=server,
                  extra={"last-event-id": last} if last else None)  # fmt: skip
        p.start_exchange(ex)
        return ex

    a_ex = exchange(alice, "ga")
    for eid in ("0_0", "1_0", "1_1", "1_2", "1_3"):
        assert not p.run(_event(a_ex, eid)).stopped
    # (and alice on the other server, whose ids are unique)
    pa = exchange(alice, "pa", server=py)
    assert not p.run(_event(pa, "uuid-a1")).stopped
    b_ex = exchange(bob, "gb")
    for eid in ("1_0", "1_1"):
        assert not p.run(_event(b_ex, eid)).stopped
    ex = exchange(bob, "gb", last="1_1", method="GET")
    assert ex.refusal is None
    for eid in ("1_2", "1_3"):  # his own, replayed
        m = p.run(_event(ex, eid))
        assert not m.stopped, m.refusal
    # the other server: still checked
    ex = exchange(bob, "pb", last="uuid-a1", method="GET", server=py)
    assert ex.refusal is not None and ex.refusal.http_status == 404
    pb = exchange(bob, "pb", server=py)
    assert not p.run(_event(pb, "uuid-b1")).stopped
    ex = exchange(bob, "pb", last="uuid-b1", method="GET", server=py)
    assert ex.refusal is None and p.run(_event(ex, "uuid-a1")).stopped


def test_a_credential_header_repeated_identically_is_one(tmp_path, mkex) -> None:
    """A proxy or client library that writes the same Authorization twice (the same bytes)
    gave no second caller: it was refused 400 all the same. Identical copies are one now
    (the extra removed, so that one copy alone goes on, swapped or masked as usual); two
    different values are still refused."""
    stage, key, _ = _stage(tmp_path)
    for value in (f"Bearer {key}", "Bearer opaque-123"):
        ex = mkex()
        ex.flow.request.headers.fields += (
            (b"Authorization", value.encode()),
            (b"authorization", value.encode()),
        )
        stage.on_exchange(ex)
        assert ex.refusal is None, (value, ex.refusal)
        assert ex.identity.kind == ("api_key" if "mgw_" in value else "bearer")
        got = ex.flow.request.headers.get_all("authorization")
        assert len(got) <= 1 and key not in repr(got), got
    # (differing copies: refused, as before)
    ex = mkex()
    ex.flow.request.headers.fields += (
        (b"Authorization", f"Bearer {key}".encode()),
        (b"authorization", f"Bearer  {key}".encode()),
    )
    stage.on_exchange(ex)
    assert ex.refusal is not None and ex.refusal.http_status == 400


def test_a_credential_header_of_two_values_joined_by_a_comma_is_refused(tmp_path, mkex) -> None:
    """Two copies of Authorization merged into one line by a proxy (RFC 9110 5.3 lets a
    recipient join a repeated field with commas): "Bearer opaque, Bearer mgw_<key>" made an
    unverified caller of the first word and the line went on whole, the gateway key to the
    server. Refused as two copies are; one value with a comma of its own (Digest's list, a
    Bearer token and a comma with no second credential) is not."""
    stage, key, _ = _stage(tmp_path)
    for raw in (
        f"Bearer opaque-123, Bearer {key}",
        f"Bearer opaque-123,Bearer {key}",
        f"Basic dXNlcjpwdw==, Bearer {key}",
    ):
        ex = mkex(auth=raw)
        stage.on_exchange(ex)
        r = ex.refusal
        assert r is not None and r.http_status == 400 and "more than once" in r.message, raw
        assert key not in repr(ex.flow.request.headers.fields), raw
    for raw in ('Digest username="u", realm="r", nonce="n"', "Bearer opaque,123"):
        ex = mkex(auth=raw)
        stage.on_exchange(ex)
        assert ex.refusal is None, raw


def test_a_gateway_key_joined_after_a_comma_in_a_non_mcp_request_is_removed(tmp_path) -> None:
    from mitmproxy.test import tflow

    stage, key, _ = _stage(tmp_path)
    f = tflow.tflow()
    f.request.headers["Authorization"] = f"Bearer opaque-123, Bearer {key}"
    stage.strip_stray_credential(f)
    assert key not in repr(f.request.headers.fields)
    f = tflow.tflow()
    f.request.headers["Authorization"] = 'Digest username="u", realm="r"'
    stage.strip_stray_credential(f)
    assert f.request.headers["Authorization"] == 'Digest username="u", realm="r"'


def test_another_server_giving_out_an_identitys_event_or_task_id_gives_no_right_to_it(
    tmp_path, mkex, mkreq
) -> None:
    """Event and task ids were remembered across all servers: a server of the caller's own
    (any host, in regular proxy mode) that sent him alice's event id, or answered him with
    her task id, made him one of its owners, and he resumed her stream, or read her task, at
    the real server. An id is remembered with the address of the server that gave it."""
    db = tmp_path / "gw.db"
    alice, _ = create_key(db, "a", "alice", [])
    bob, _ = create_key(db, "b", "bob", [])
    st = State(load_config_text(f"keys_db: {db}\n"))
    st.keys.refresh()
    stage = IdentifyStage(st)
    p = Pipeline()
    p.add(stage)
    real, evil = "127.0.0.1:8000", "127.0.0.1:9999"

    def exchange(key, sid, last=None, method="POST", server=real):
        ex = mkex(auth=f"Bearer {key}", session=sid, method=method, server=server,
                  extra={"last-event-id": last} if last else None)  # fmt: skip
        p.start_exchange(ex)
        return ex

    from mcp_gateway.message import Direction, Kind, Message

    a_ex = exchange(alice, "sa")
    assert not p.run(_event(a_ex, "uuid-a1")).stopped
    task = {"jsonrpc": "2.0", "id": 3, "result": {"task": {"taskId": "task-a"}}}
    p.run(Message(task, Direction.SERVER_TO_CLIENT, Kind.RESULT, a_ex, id=3))
    # bob's own server hands him the same ids
    e_ex = exchange(bob, "se", server=evil)
    assert not p.run(_event(e_ex, "uuid-a1")).stopped
    p.run(Message(task, Direction.SERVER_TO_CLIENT, Kind.RESULT, e_ex, id=3))
    # at the real server: still alice's (under any spelling of its address)
    for server in (real, "localhost:8000"):
        ex = exchange(bob, "sb", last="uuid-a1", method="GET", server=server)
        assert ex.refusal is not None and ex.refusal.http_status == 404, server
    b_ex = exchange(bob, "sb")
    get = {"jsonrpc": "2.0", "id": 4, "method": "tasks/result", "params": {"taskId": "task-a"}}
    m = p.run(
        Message(get, Direction.CLIENT_TO_SERVER, Kind.REQUEST, b_ex, id=4, method="tasks/result")
    )
    assert m.stopped
