"""Settle: a file's signature must stay the same for a while before it is read."""

from mcp_gateway.settle import Settle


def test_a_signature_is_read_once_unchanged_long_enough() -> None:
    s = Settle()
    assert s.waited("a", 10.0, 1.0) is None  # just seen
    assert s.waited("a", 10.5, 1.0) is None
    assert s.waited("a", 11.0, 1.0) == 1.0
    assert s.waited("b", 11.5, 1.0) is None  # changed again: the wait starts over
    assert s.waited("b", 12.0, 1.0) is None
    assert s.waited("b", 12.6, 5.0) is None  # a longer wait for the same signature
    assert s.waited("b", 16.5, 5.0) == 5.0
    s.forget()
    assert s.waited("b", 20.0, 1.0) is None
    # no wait wanted: read at once
    assert Settle().waited("c", 1.0, 0.0) == 0.0
