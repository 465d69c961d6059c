"""What a decided message becomes (outcome.py)."""

from mcp_gateway.message import Direction, ErrorCode, Exchange, Kind, Message
from mcp_gateway.outcome import UNCHANGED, batch_answers, rebuild, refusal_error


def msg(kind=Kind.REQUEST, id=1, payload=None):
    ex = Exchange(flow_id="f", server="s:1")
    payload = payload if payload is not None else {"jsonrpc": "2.0", "id": id, "method": "x"}
    return Message(
        payload=payload, direction=Direction.CLIENT_TO_SERVER, kind=kind, exchange=ex, id=id
    )


def test_an_untouched_message_is_sent_as_it_came():
    assert rebuild({"a": 1}, False, [msg()]) is UNCHANGED


def test_a_blocked_message_becomes_its_error_with_its_id():
    m = msg(id=7)
    m.block(ErrorCode.BLOCKED, "blocked by rule r1", stage="scan")
    err = refusal_error(m)
    assert err["id"] == 7 and err["error"]["code"] == ErrorCode.BLOCKED
    assert rebuild(m.payload, False, [m]) == err


def test_a_refused_batch_answers_every_request_in_it():
    a, b, n = msg(id=1), msg(id=2), msg(kind=Kind.NOTIFICATION, id=None)
    a.block(ErrorCode.BLOCKED, "blocked by rule r1", stage="scan")
    answers = batch_answers([a, b, n])
    assert [x["id"] for x in answers] == [1, 2]  # (a notification gets no answer)


def test_a_refused_batch_element_carries_its_refusals_data():
    # a single request's refusal names the policy rule or the limit's retry_after in its
    # data; the same request in a batch got the message only
    a, b = msg(id=1), msg(id=2)
    a.block(ErrorCode.FORBIDDEN, "forbidden by mcp-gateway policy: no", data={"policy": 0})
    b.block(ErrorCode.RATE_LIMITED, "rate limited", data={"retry_after": 12}, stage="limits")
    answers = batch_answers([a, b])
    assert [x["error"].get("data") for x in answers] == [{"policy": 0}, {"retry_after": 12}]


def test_a_blocked_server_request_answered_at_the_server_is_left_out():
    m = msg(id=3)
    m.block(ErrorCode.BLOCKED, "blocked", stage="scan")
    keep = msg(kind=Kind.NOTIFICATION, id=None, payload={"jsonrpc": "2.0", "method": "n"})
    assert rebuild([m.payload, keep.payload], True, [m, keep], answered=True) == [keep.payload]
