"""Token buckets: per identity, per consumer/role, per tool glob, per server; requests only."""

from __future__ import annotations

import pytest
from mcp_gateway.identity.config import ConfigError, load_config_text
from mcp_gateway.identity.identify import Identity
from mcp_gateway.identity.limits import LimitsStage
from mcp_gateway.message import Action, Direction, ErrorCode, Kind, Message


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _stage(text: str) -> tuple[LimitsStage, Clock]:
    clock = Clock()
    return LimitsStage(load_config_text(text).limits, clock=clock), clock


def _ident(consumer: str, roles: tuple[str, ...] = (), key_id: str | None = None) -> Identity:
    return Identity(consumer=consumer, roles=roles, kind="api_key", key_id=key_id or consumer)


def _call(stage, mkex, mkreq, ident, tool="echo", method="tools/call", server="127.0.0.1:8000"):
    ex = mkex(server=server)
    ex.identity = ident
    m = mkreq(ex, method=method, name=tool if method == "tools/call" else None)
    stage.process(m)
    return m


def test_n_plus_one_refused_with_retry_after_other_identity_unaffected(mkex, mkreq) -> None:
    stage, clock = _stage("limits:\n  default: 3/minute\n")
    alice, bob = _ident("alice"), _ident("bob")
    for _ in range(3):
        assert _call(stage, mkex, mkreq, alice).action is Action.PASS
    m = _call(stage, mkex, mkreq, alice)
    assert m.action is Action.BLOCK
    r = m.refusal
    assert (
        r.code == ErrorCode.RATE_LIMITED == -32064 and r.http_status == 429 and r.stage == "limits"
    )
    assert r.headers["Retry-After"] == "20"  # one token every 20 s
    assert r.message.startswith("rate limit exceeded: 3/minute")
    assert r.data == {"limit": "3/minute", "scope": "default", "retry_after": 20}
    assert _call(stage, mkex, mkreq, bob).action is Action.PASS
    clock.t += 19.0
    assert _call(stage, mkex, mkreq, alice).refusal.headers["Retry-After"] == "1"  # ceil
    clock.t += 1.0
    assert _call(stage, mkex, mkreq, alice).action is Action.PASS
    assert stage.limited_total == 2
    usage = {(u["consumer"], u["call"]): (u["admitted"], u["limited"]) for u in stage.usage()}
    assert usage[("alice", "echo")] == (4, 2) and usage[("bob", "echo")] == (1, 0)


def test_tool_glob_limit_only_for_matching_tools(mkex, mkreq) -> None:
    stage, clock = _stage('limits:\n  tools:\n    - match: "delete_*"\n      rate: 2/minute\n')
    a = _ident("alice")
    assert _call(stage, mkex, mkreq, a, "delete_repo").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "delete_user").action is Action.PASS
    m = _call(stage, mkex, mkreq, a, "delete_repo")
    assert m.action is Action.BLOCK and "tool delete_*" in m.refusal.message
    for _ in range(20):
        assert _call(stage, mkex, mkreq, a, "get_repo").action is Action.PASS
    assert _call(stage, mkex, mkreq, _ident("bob"), "delete_repo").action is Action.PASS


def test_tool_glob_limit_also_ignoring_case(mkex, mkreq) -> None:
    """A server that looks tools up ignoring case runs delete_repo for Delete_repo (the access
    policy reads names so): such a name draws from the delete_* bucket too (it stepped out of
    it through a real mitmdump, red-team round 32)."""
    stage, _ = _stage('limits:\n  tools:\n    - match: "delete_*"\n      rate: 2/minute\n')
    a = _ident("alice")
    assert _call(stage, mkex, mkreq, a, "delete_repo").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "Delete_repo").action is Action.PASS
    for name in ("DELETE_repo", "delete_user"):
        m = _call(stage, mkex, mkreq, a, name)
        assert m.action is Action.BLOCK and "tool delete_*" in m.refusal.message, name
    stage, _ = _stage('limits:\n  tools:\n    - match: "kill_*"\n      rate: 1/minute\n')
    assert _call(stage, mkex, mkreq, a, "k\u0131ll_task").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "KILL_task").action is Action.BLOCK
    assert _call(stage, mkex, mkreq, a, "skill_task").action is Action.PASS  # not the glob's


def test_tool_glob_limit_also_in_width_and_accent_insensitive_readings(mkex, mkreq) -> None:
    """A tool table under MySQL 8's default collation runs delete_repo for ｄｅｌｅｔｅ_repo and
    dëlete_repo: they draw from the delete_* bucket too (red-team round 33)."""
    stage, _ = _stage('limits:\n  tools:\n    - match: "delete_*"\n      rate: 2/minute\n')
    a = _ident("alice")
    assert _call(stage, mkex, mkreq, a, "ｄｅｌｅｔｅ_repo").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "d\u00eblete_repo").action is Action.PASS
    m = _call(stage, mkex, mkreq, a, "delete_repo")
    assert m.action is Action.BLOCK and "tool delete_*" in m.refusal.message


def test_responses_and_notifications_and_server_requests_not_counted(mkex, mkreq) -> None:
    stage, _ = _stage("limits:\n  default: 1/hour\n")
    a = _ident("alice")
    ex = mkex()
    ex.identity = a
    # the client answering a server->client request (sampling): a RESULT in direction c2s
    for i in range(5):
        resp = Message(
            {"jsonrpc": "2.0", "id": i, "result": {}},
            Direction.CLIENT_TO_SERVER,
            Kind.RESULT,
            ex,
            id=i,
        )
        stage.process(resp)
        assert resp.action is Action.PASS
        note = Message(
            {"jsonrpc": "2.0", "method": "notifications/progress"},
            Direction.CLIENT_TO_SERVER,
            Kind.NOTIFICATION,
            ex,
            method="notifications/progress",
        )
        stage.process(note)
        assert note.action is Action.PASS
        s2c = Message(
            {"jsonrpc": "2.0", "id": i, "method": "sampling/createMessage"},
            Direction.SERVER_TO_CLIENT,
            Kind.REQUEST,
            ex,
            id=i,
            method="sampling/createMessage",
        )
        stage.process(s2c)
        assert s2c.action is Action.PASS
    # initialize and ping are exempt
    assert _call(stage, mkex, mkreq, a, method="initialize").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, method="ping").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, method="tools/list").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, method="tools/list").action is Action.BLOCK


def test_a_request_sent_without_a_usable_id_is_counted(mkex, mkreq) -> None:
    """{"id": null, "method": "tools/call"} is a notification to the SDKs, but a lenient
    server may run it: it draws from the same bucket as the request it names."""
    stage, _ = _stage("limits:\n  default: 1/hour\n")
    ex = mkex()
    ex.identity = _ident("alice")

    def null_id_call() -> Message:
        m = Message(
            {"jsonrpc": "2.0", "id": None, "method": "tools/call", "params": {"name": "echo"}},
            Direction.CLIENT_TO_SERVER,
            Kind.NOTIFICATION,
            ex,
            method="tools/call",
            name="echo",
        )
        stage.process(m)
        return m

    assert null_id_call().action is Action.PASS
    m = null_id_call()
    assert m.stopped and m.refusal.code == ErrorCode.RATE_LIMITED  # (a notification: dropped)
    assert _call(stage, mkex, mkreq, ex.identity).action is Action.BLOCK


def test_consumer_overrides_role_overrides_default(mkex, mkreq) -> None:
    stage, _ = _stage(
        "limits:\n  default: 1/minute\n  consumers:\n    vip: 5/minute\n  roles:\n    reader: 2/minute\n    writer: 3/minute\n"
    )

    def admitted(ident) -> int:
        return sum(_call(stage, mkex, mkreq, ident).action is Action.PASS for _ in range(10))

    assert admitted(_ident("nobody")) == 1
    assert admitted(_ident("r", ("reader",))) == 2
    assert admitted(_ident("rw", ("reader", "writer"))) == 3  # the most generous role
    assert admitted(_ident("vip", ("reader",))) == 5


def test_burst_and_refill(mkex, mkreq) -> None:
    stage, clock = _stage("limits:\n  default: {rate: 60/minute, burst: 2}\n")
    a = _ident("a")
    assert [_call(stage, mkex, mkreq, a).action for _ in range(3)] == [
        Action.PASS,
        Action.PASS,
        Action.BLOCK,
    ]
    clock.t += 1.0
    assert _call(stage, mkex, mkreq, a).action is Action.PASS


def test_server_limits_per_identity_and_total(mkex, mkreq) -> None:
    stage, _ = _stage(
        'limits:\n  servers:\n    - match: "paid.example:*"\n      rate: 2/minute\n      per: total\n'
        '    - match: "127.0.0.1:*"\n      rate: 1/minute\n'
    )
    a, b = _ident("a"), _ident("b")
    assert _call(stage, mkex, mkreq, a, server="paid.example:443").action is Action.PASS
    assert _call(stage, mkex, mkreq, b, server="paid.example:443").action is Action.PASS
    m = _call(stage, mkex, mkreq, a, server="paid.example:443")  # shared bucket empty
    assert m.action is Action.BLOCK and "server paid.example:*" in m.refusal.message
    assert _call(stage, mkex, mkreq, a, server="127.0.0.1:9").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, server="127.0.0.1:9").action is Action.BLOCK
    assert _call(stage, mkex, mkreq, b, server="127.0.0.1:9").action is Action.PASS  # per identity


def test_refused_request_does_not_charge_other_buckets(mkex, mkreq) -> None:
    stage, _ = _stage(
        'limits:\n  default: 3/minute\n  tools:\n    - match: "delete_*"\n      rate: 1/minute\n'
    )
    a = _ident("a")
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.BLOCK  # tool bucket empty
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.BLOCK
    # the default bucket was charged once only: two more calls fit
    assert _call(stage, mkex, mkreq, a, "get").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "get").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "get").action is Action.BLOCK


def test_no_limits_configured_counts_only(mkex, mkreq) -> None:
    stage, _ = _stage("")
    for _ in range(100):
        assert _call(stage, mkex, mkreq, _ident("a")).action is Action.PASS
    assert stage.usage() == [
        {"consumer": "a", "server": "127.0.0.1:8000", "call": "echo", "admitted": 100, "limited": 0}
    ]


def test_reconfigure_keeps_unchanged_buckets(mkex, mkreq) -> None:
    stage, _ = _stage("limits:\n  default: 2/minute\n")
    a = _ident("a")
    _call(stage, mkex, mkreq, a)
    _call(stage, mkex, mkreq, a)
    stage.configure(
        load_config_text(
            "limits:\n  default: 2/minute\n  tools:\n    - match: x\n      rate: 1/second\n"
        ).limits
    )
    assert _call(stage, mkex, mkreq, a).action is Action.BLOCK  # same default rule, same bucket
    stage.configure(load_config_text("limits:\n  default: 10/minute\n").limits)
    assert _call(stage, mkex, mkreq, a).action is Action.PASS  # a changed rate starts afresh


def test_hot_path_is_cheap(mkex, mkreq) -> None:
    import time

    stage, _ = _stage(
        'limits:\n  default: 1000000/second\n  tools:\n    - match: "delete_*"\n      rate: 1000000/second\n'
    )
    a = _ident("a")
    ex = mkex()
    ex.identity = a
    msgs = [mkreq(ex, name="delete_x") for _ in range(20_000)]
    t = time.process_time()
    for m in msgs:
        stage.process(m)
    per = (time.process_time() - t) / len(msgs)
    assert all(m.action is Action.PASS for m in msgs)
    assert per < 30e-6, per


def test_http_status_200_option(mkex, mkreq) -> None:
    stage, _ = _stage("limits:\n  default: 1/minute\n  http_status: 200\n")
    a = _ident("a")
    _call(stage, mkex, mkreq, a)
    m = _call(stage, mkex, mkreq, a)
    assert m.action is Action.BLOCK and m.refusal.http_status == 200
    assert m.refusal.headers["Retry-After"] == "60" and m.refusal.code == -32064


def test_a_server_renamed_by_the_shim_header_is_still_limited_by_its_address(mkex, mkreq) -> None:
    stage, _ = _stage(
        'limits:\n  servers:\n    - match: "127.0.0.1:*"\n      rate: 2/minute\n      per: total\n'
    )
    a = _ident("a")
    actions = []
    for name in ("files", "x1", "x2", "github"):
        ex = mkex(server="127.0.0.1:4444")
        ex.server, ex.address = name, "127.0.0.1:4444"  # Mcp-Gateway-Server: <name>
        ex.identity = a
        m = mkreq(ex, method="tools/call", name="echo")
        stage.process(m)
        actions.append(m.action)
    assert actions == [Action.PASS, Action.PASS, Action.BLOCK, Action.BLOCK]


def test_many_identities_cannot_reset_a_shared_limit_or_an_active_one(mkex, mkreq, monkeypatch):
    # past MAX_BUCKETS every bucket was cleared: anyone able to make enough identities (auth
    # optional: every address and bearer token is one) reset everyone's limits
    from mcp_gateway.identity import limits

    monkeypatch.setattr(limits, "MAX_BUCKETS", 40)
    stage, clock = _stage(
        'limits:\n  default: 1/day\n  servers:\n    - match: "paid.example:*"\n'
        "      rate: 1/day\n      per: total\n"
    )
    victim = _ident("victim")
    assert _call(stage, mkex, mkreq, victim, server="paid.example:443").action is Action.PASS
    for i in range(60):  # one fresh identity each, all while the victim stays active
        clock.t += 61.0  # (the collection runs at most once a minute)
        _call(stage, mkex, mkreq, _ident(f"sybil{i}"))
        assert _call(stage, mkex, mkreq, victim).action is Action.BLOCK
    assert len(stage._buckets) <= 41  # (plus the one made after the last collection)
    # the shared server bucket is still empty for everyone
    m = _call(stage, mkex, mkreq, _ident("late"), server="paid.example:443")
    assert m.action is Action.BLOCK and "paid.example" in m.refusal.message


def _anon(addr: str) -> Identity:
    return Identity(consumer=f"anon:{addr}", kind="anonymous", client_addr=addr)


def test_anonymous_ipv6_callers_share_buckets_by_their_network(mkex, mkreq) -> None:
    # one host commonly holds a whole /64: each of its 2^64 addresses was a fresh identity
    stage, _ = _stage("limits:\n  default: 2/minute\n")
    net = "2001:db8:28:1::"
    for i in range(2):
        assert _call(stage, mkex, mkreq, _anon(f"{net}{i + 1:x}")).action is Action.PASS
    for i in range(2, 6):
        m = _call(stage, mkex, mkreq, _anon(f"{net}{i:x}:{i:x}"))
        assert m.action is Action.BLOCK and m.refusal.code == ErrorCode.RATE_LIMITED
    # another /64, an IPv4 caller and a key are their own
    assert _call(stage, mkex, mkreq, _anon("2001:db8:28:2::1")).action is Action.PASS
    assert _call(stage, mkex, mkreq, _anon("192.0.2.7")).action is Action.PASS
    assert _call(stage, mkex, mkreq, _ident("alice")).action is Action.PASS
    # an IPv4-mapped address is its IPv4 address
    assert _call(stage, mkex, mkreq, _anon("::ffff:192.0.2.7")).action is Action.PASS
    assert _call(stage, mkex, mkreq, _anon("::ffff:192.0.2.7")).action is Action.BLOCK
    # the audit and usage still name the address
    assert {u["consumer"] for u in stage.usage()} >= {"anon:2001:db8:28:1::1"}
    # ipv6_prefix: 128 is per address again
    stage, _ = _stage("limits:\n  default: 1/minute\n  ipv6_prefix: 128\n")
    for i in range(3):
        assert _call(stage, mkex, mkreq, _anon(f"{net}{i + 1:x}")).action is Action.PASS


def test_initialize_has_a_bucket_of_its_own_while_exempt_from_the_others(mkex, mkreq) -> None:
    # each initialize opens a session the server holds; exempt from limits.default, it was
    # not limited at all
    stage, _ = _stage("limits:\n  default: 2/minute\n  initialize: 3/minute\n")
    a = _anon("192.0.2.9")
    init = [_call(stage, mkex, mkreq, a, method="initialize").action for _ in range(5)]
    assert init == [Action.PASS] * 3 + [Action.BLOCK] * 2
    # the default bucket was not drawn on, and initialize is not metered
    assert _call(stage, mkex, mkreq, a).action is Action.PASS
    assert _call(stage, mkex, mkreq, a).action is Action.PASS
    assert {u["call"] for u in stage.usage() if u["admitted"]} == {"echo"}
    # the default: 60/minute
    stage, _ = _stage("limits:\n  default: 2/minute\n")
    acts = [_call(stage, mkex, mkreq, a, method="initialize").action for _ in range(61)]
    assert acts.count(Action.PASS) == 60 and acts[-1] is Action.BLOCK
    # null turns it off; and with no limit set at all, nothing is limited
    for text in ("limits:\n  default: 2/minute\n  initialize: null\n", "limits: {}\n"):
        stage, _ = _stage(text)
        acts = [_call(stage, mkex, mkreq, a, method="initialize").action for _ in range(100)]
        assert set(acts) == {Action.PASS}
    # not exempt: it draws from both
    stage, _ = _stage("limits:\n  default: 5/minute\n  initialize: 1/minute\n  exempt: [ping]\n")
    assert _call(stage, mkex, mkreq, a, method="initialize").action is Action.PASS
    m = _call(stage, mkex, mkreq, a, method="initialize")
    assert m.action is Action.BLOCK and m.refusal.data["scope"] == "initialize"


def test_made_up_bearer_tokens_share_the_initialize_bucket_of_their_network(mkex, mkreq) -> None:
    # authentication optional: every bearer token is an identity of its own, so a caller
    # making one up per initialize opened server sessions without end, bucket or not
    stage, _ = _stage("limits:\n  default: 100/minute\n  initialize: 3/minute\n")

    def tok(i: int, addr: str) -> Identity:
        return Identity(
            consumer=f"token:{i:016x}", kind="bearer", token_hash=f"{i:016x}", client_addr=addr
        )

    acts = [
        _call(stage, mkex, mkreq, tok(i, f"2001:db8:28:1::{i + 1:x}"), method="initialize").action
        for i in range(6)
    ]
    assert acts == [Action.PASS] * 3 + [Action.BLOCK] * 3
    # the same host without a token shares it; another network, and other calls, do not
    assert (
        _call(stage, mkex, mkreq, _anon("2001:db8:28:1::99"), method="initialize").action
        is Action.BLOCK
    )
    assert (
        _call(stage, mkex, mkreq, tok(7, "[2001:db8:28:2::1]:5555"), method="initialize").action
        is Action.PASS
    )
    assert _call(stage, mkex, mkreq, tok(8, "2001:db8:28:1::1")).action is Action.PASS


def test_unverified_address_counts_made_up_bearer_tokens_by_their_address(mkex, mkreq) -> None:
    def tok(i: int, addr: str) -> Identity:
        return Identity(
            consumer=f"token:{i:016x}", kind="bearer", token_hash=f"{i:016x}", client_addr=addr
        )

    conf = "limits:\n  default: 3/minute\n  tools: [{match: 'delete_*', rate: 1/minute}]\n"
    # the default (token): a token made up per request is a fresh identity each time
    stage, _ = _stage(conf)
    acts = {_call(stage, mkex, mkreq, tok(i, "192.0.2.5:4000")).action for i in range(10)}
    assert acts == {Action.PASS}
    # address: every bucket is the address's, shared with the caller sending no token there
    stage, _ = _stage(conf + "  unverified: address\n")
    acts = [_call(stage, mkex, mkreq, tok(i, f"192.0.2.5:{4000 + i}")).action for i in range(5)]
    assert acts == [Action.PASS] * 3 + [Action.BLOCK] * 2
    m = _call(stage, mkex, mkreq, _anon("192.0.2.5"))
    assert m.action is Action.BLOCK and m.refusal.data["scope"] == "default"
    # the refusal and the usage still name the token the caller sent
    m = _call(stage, mkex, mkreq, tok(99, "192.0.2.5:4999"))
    assert "token:0000000000000063" in m.refusal.message
    assert {u["consumer"] for u in stage.usage()} >= {"token:0000000000000000"}
    # tool buckets too, and over IPv6 by network
    v6 = [tok(i, f"[2001:db8:28:1::{i + 1:x}]:5000") for i in range(2)]
    assert _call(stage, mkex, mkreq, v6[0], tool="delete_all").action is Action.PASS
    m = _call(stage, mkex, mkreq, v6[1], tool="delete_all")
    assert m.action is Action.BLOCK and m.refusal.data["scope"] == "tool:delete_*"
    # another address, and a verified identity, keep their own buckets
    assert _call(stage, mkex, mkreq, tok(1, "192.0.2.6:4000")).action is Action.PASS
    assert _call(stage, mkex, mkreq, _ident("alice")).action is Action.PASS


def test_unverified_address_takes_the_addresss_base_rate_too(mkex, mkreq) -> None:
    stage, _ = _stage(
        "limits:\n  default: 2/minute\n  consumers: {'anon:192.0.2.5': 5/minute}\n"
        "  unverified: address\n"
    )

    def tok(i: int) -> Identity:
        return Identity(
            consumer=f"token:{i:04x}", kind="bearer", token_hash=f"{i:04x}",
            client_addr="192.0.2.5:4000",
        )  # fmt: skip

    acts = [_call(stage, mkex, mkreq, tok(i)).action for i in range(7)]
    assert acts == [Action.PASS] * 5 + [Action.BLOCK] * 2
    m = _call(stage, mkex, mkreq, tok(99))
    assert m.refusal.data["scope"] == "consumer:anon:192.0.2.5"
    assert "token:0063" in m.refusal.message  # still named by its token


def test_unverified_must_be_token_or_address() -> None:
    with pytest.raises(ConfigError) as e:
        load_config_text("limits:\n  default: 3/minute\n  unverified: both\n")
    assert "unverified" in str(e.value)


def test_a_server_reached_through_another_address_is_limited_by_its_host_header(mkex, mkreq):
    """Red-team round 30: a shared front end (an ingress, a CDN, a virtual host) serves the
    site a request's Host header names; in regular proxy mode an absolute-form request goes
    to the URL's host with the client's Host header (mitmproxy keeps it). POST
    http://free.example/mcp with Host: paid.example was counted as free.example's and
    escaped paid.example's shared limit (core sets Exchange.vhost)."""
    stage, _ = _stage(
        'limits:\n  servers:\n    - match: "paid.example:*"\n      rate: 2/minute\n      per: total\n'
    )
    actions = []
    for i in range(4):
        ex = mkex(server="free.example:80")
        ex.vhost = "paid.example:80"
        ex.identity = _ident(f"caller{i}")
        m = mkreq(ex, method="tools/call", name="echo")
        stage.process(m)
        actions.append(m.action)
    assert actions == [Action.PASS, Action.PASS, Action.BLOCK, Action.BLOCK]


def test_a_limited_identity_pushed_out_of_a_full_table_gets_no_fresh_allowance(
    mkex, mkreq, monkeypatch
):
    """The table of buckets is bounded: past MAX_BUCKETS the least recently used bucket is
    forgotten. A limited identity that paused while others (made up at will: every bearer
    token and address is one) filled the table came back to a full bucket: a limit of
    1/day gave a second call. An evicted bucket that was not full leaves its debt behind,
    and the identity starts again from it, never from a full burst. The table never holds
    more than MAX_BUCKETS, between collections too."""
    from mcp_gateway.identity import limits

    monkeypatch.setattr(limits, "MAX_BUCKETS", 40)
    stage, clock = _stage("limits:\n  default: 1/day\n")
    victim = _ident("victim")
    assert _call(stage, mkex, mkreq, victim).action is Action.PASS
    assert _call(stage, mkex, mkreq, victim).action is Action.BLOCK
    for i in range(500):  # the victim pauses; fresh identities fill the table
        clock.t += 1.0
        _call(stage, mkex, mkreq, _ident(f"sybil{i}"))
        assert len(stage._buckets) <= 40
    m = _call(stage, mkex, mkreq, victim)
    assert m.action is Action.BLOCK, "an evicted limited bucket came back full"
    # a day later it has refilled, as it would have in the table
    clock.t += 86_400.0
    assert _call(stage, mkex, mkreq, victim).action is Action.PASS


def test_a_forgotten_buckets_debt_costs_another_rule_its_tokens_not_its_burst(
    mkex, mkreq, monkeypatch
):
    """A debt left in a slot was the time the forgotten bucket would be full again, read at
    the next key's own rate: after a flood of made-up identities on a 1/day default (each
    took one token), a 1000/day consumer sharing a slot found a day's debt, a thousand of
    its tokens, and was refused its first call. The debt is the tokens lacked: it starts
    one short. Its own bucket pushed out and made anew still gets no more than it had."""
    from mcp_gateway.identity import limits

    monkeypatch.setattr(limits, "MAX_BUCKETS", 40)
    monkeypatch.setattr(limits, "DEBT_SLOTS", 1)  # (every key shares the one slot)
    stage, clock = _stage("limits:\n  default: 1/day\n  consumers:\n    vip: 1000/day\n")
    for i in range(100):
        clock.t += 1.0
        _call(stage, mkex, mkreq, _ident(f"sybil{i}"))
    vip = _ident("vip")
    passed = sum(_call(stage, mkex, mkreq, vip).action is Action.PASS for _ in range(1000))
    assert passed == 999
    # pushed out while it lacks them all, the vip comes back to no more than it left
    for i in range(100):
        _call(stage, mkex, mkreq, _ident(f"late{i}"))
    assert not any("vip" in str(k) for k in stage._buckets)
    assert _call(stage, mkex, mkreq, vip).action is Action.BLOCK
    clock.t += 86.4 * 2  # two of its tokens back (1000 a day)
    assert sum(_call(stage, mkex, mkreq, vip).action is Action.PASS for _ in range(5)) == 2


def test_an_edited_rate_carries_what_each_bucket_lacked(mkex, mkreq) -> None:
    # a bucket is keyed by its rule's rate too, so every edit of a rate made every caller a
    # new, full bucket: tightening a tool's 2/minute to 1/minute gave one more call at once
    text = "limits:\n  default: 100/minute\n  tools:\n    - {match: 'delete_*', rate: 2/minute}\n"
    stage, clock = _stage(text)
    a, b = _ident("a"), _ident("b")
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.PASS
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.BLOCK
    assert _call(stage, mkex, mkreq, b, "delete_x").action is Action.PASS
    stage.configure(load_config_text(text.replace("2/minute", "1/minute")).limits)
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.BLOCK  # lacks 2 of 1
    assert _call(stage, mkex, mkreq, b, "delete_x").action is Action.BLOCK  # lacks 1 of 1
    clock.t += 60.0
    assert _call(stage, mkex, mkreq, b, "delete_x").action is Action.PASS  # refilled
    assert _call(stage, mkex, mkreq, a, "delete_x").action is Action.PASS
    # and the same for the default, a consumer's rate and a burst
    text = "limits:\n  default: 1/day\n  consumers: {c: 2/hour}\n"
    stage, clock = _stage(text)
    c = _ident("c")
    assert _call(stage, mkex, mkreq, a).action is Action.PASS
    assert _call(stage, mkex, mkreq, c).action is Action.PASS
    assert _call(stage, mkex, mkreq, c).action is Action.PASS
    stage.configure(load_config_text(text.replace("2/hour", "1/hour")).limits)
    text = text.replace("2/hour", "1/hour")
    stage.configure(load_config_text(text.replace("1/day", "2/day")).limits)  # raised by one
    assert _call(stage, mkex, mkreq, a).action is Action.PASS  # the one more token
    assert _call(stage, mkex, mkreq, a).action is Action.BLOCK
    assert _call(stage, mkex, mkreq, c).action is Action.BLOCK
    # a caller new to the edited rule starts full, as before
    assert _call(stage, mkex, mkreq, _ident("d")).action is Action.PASS
