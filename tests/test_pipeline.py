from mcp_gateway.message import Action, Direction, ErrorCode, Exchange, Kind, Message
from mcp_gateway.pipeline import Pipeline


class S:
    def __init__(self, name, order, fn, always=False):
        self.name, self.order, self.fn, self.always = name, order, fn, always

    def process(self, msg):
        self.fn(msg)


def m(kind=Kind.REQUEST):
    return Message(
        payload={},
        direction=Direction.CLIENT_TO_SERVER,
        kind=kind,
        exchange=Exchange(flow_id="f", server="s"),
        id=1,
    )


def test_stages_run_in_order_and_blocked_messages_skip_all_but_always():
    seen = []
    p = Pipeline(
        [
            S("audit", 900, lambda x: seen.append("audit"), always=True),
            S("scan", 400, lambda x: seen.append("scan")),
            S(
                "limits",
                350,
                lambda x: (seen.append("limits"), x.block(ErrorCode.RATE_LIMITED, "slow down")),
            ),
        ]
    )
    msg = p.run(m())
    assert seen == ["limits", "audit"]
    assert msg.action is Action.BLOCK and msg.refusal.code == ErrorCode.RATE_LIMITED


def test_notifications_are_dropped_not_blocked():
    msg = m(Kind.NOTIFICATION)
    msg.block(ErrorCode.BLOCKED, "x")
    assert msg.action is Action.DROP


def test_strongest_action_wins():
    msg = m()
    msg.mark_modified()
    msg.block(ErrorCode.BLOCKED, "b")
    msg.mark_modified()
    assert msg.action is Action.BLOCK


def test_replacing_a_stage_by_name():
    p = Pipeline([S("a", 1, lambda x: None)])
    p.add(S("a", 2, lambda x: None))
    assert [s.order for s in p.stages] == [2]


def test_exchange_fault_fails_closed_or_open():
    class Bad:
        name, order = "auth", 200

        def on_exchange(self, ex):
            raise ValueError("x")

        def process(self, msg):
            pass

    ex = Exchange(flow_id="f", server="s")
    assert Pipeline([Bad()]).start_exchange(ex).code == ErrorCode.INTERNAL_ERROR
    ex = Exchange(flow_id="f", server="s")
    assert Pipeline([Bad()], fail_mode="open").start_exchange(ex) is None


def _batch(n):
    ex = Exchange(flow_id="f", server="s")
    return [
        Message(
            payload={},
            direction=Direction.CLIENT_TO_SERVER,
            kind=Kind.REQUEST,
            exchange=ex,
            id=i,
            batch_index=i,
        )
        for i in range(n)
    ]


def test_a_refused_batch_element_refuses_the_others_before_audit_sees_them():
    refunded, seen = [], []

    def charge(x):
        x.refunds = [lambda: refunded.append(x.id)]

    def scan(x):
        if x.id == 1:
            x.block(ErrorCode.BLOCKED, "blocked by rule r")

    p = Pipeline(
        [
            S("limits", 350, charge),
            S("scan", 400, scan),
            S("audit", 900, lambda x: seen.append((x.id, x.action, x.refusal.code)), always=True),
        ]
    )
    msgs = p.run_batch(_batch(3))
    assert seen == [
        (0, Action.BLOCK, ErrorCode.NOT_FORWARDED),
        (1, Action.BLOCK, ErrorCode.BLOCKED),
        (2, Action.BLOCK, ErrorCode.NOT_FORWARDED),
    ]
    assert msgs[0].refusal.message == "not forwarded: batch element 1 was refused"
    assert sorted(refunded) == [0, 1, 2]  # nothing was forwarded: every charge undone


def test_a_batch_stage_gets_the_batch_at_once_and_its_refusal_covers_all():
    class Whole:
        name, order, always = "audit", 900, True

        def __init__(self):
            self.calls = []

        def process(self, msg):  # pragma: no cover - process_batch is used for a batch
            raise AssertionError("called per message")

        def process_batch(self, msgs):
            self.calls.append(len(msgs))
            msgs[2].block(ErrorCode.INTERNAL_ERROR, "no room")

    w = Whole()
    msgs = Pipeline([w]).run_batch(_batch(3))
    assert w.calls == [3]
    assert [x.refusal.code for x in msgs] == [ErrorCode.NOT_FORWARDED] * 2 + [
        ErrorCode.INTERNAL_ERROR
    ]


def test_a_stage_failing_to_reauthenticate_refuses_per_fail_mode():
    """An open WebSocket connection or event stream is checked again at each message and
    decided by nothing else: a stage that raised there was skipped, so under
    fail_mode=closed the connection went on with a credential nobody had checked."""

    class Broken:
        name, order = "identify", 100

        def reauthenticate(self, ex):
            raise RuntimeError("key store gone")

        def authenticate(self, ex):
            raise RuntimeError("key store gone")

    ex = Exchange(flow_id="f", server="s")
    r = Pipeline([Broken()], fail_mode="closed").reauthenticate(ex)
    assert r is not None and r.code == ErrorCode.INTERNAL_ERROR and r.http_status == 500
    assert Pipeline([Broken()], fail_mode="open").reauthenticate(ex) is None
    # (authenticate is decided again, whole, with the body: skipped there)
    assert Pipeline([Broken()], fail_mode="closed").authenticate(ex) is None
