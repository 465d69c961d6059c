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
