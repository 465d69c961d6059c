"""What a message's value becomes once the pipeline decided on it: the JSON-RPC error for a
stopped message, the errors answering a refused client batch, and the rebuilt body or event
(redacted values in place, blocked ones replaced by their errors, dropped ones left out).
Shared by the HTTP hooks, the event stream and the WebSocket handler."""

from __future__ import annotations

from typing import Any

from .message import Action, ErrorCode, Kind, Message, error_response

UNCHANGED = object()  # rebuild(): send the original bytes


def refusal_error(m: Message, with_data: bool = False) -> dict:
    """The JSON-RPC error answering a stopped message (its refusal, or a bare "blocked")."""
    r = m.refusal
    if r is None:
        return error_response(m.id, ErrorCode.BLOCKED, "blocked")
    return error_response(m.id, r.code, r.message, r.data if with_data else None)


def blocked_by_rule(msgs: list[Message]) -> bool:
    """Whether a scanning rule (not a limit, a session or a credential) stopped one of them."""
    return any(
        m.stopped and m.refusal is not None and m.refusal.code == ErrorCode.BLOCKED for m in msgs
    )


def batch_answers(msgs: list[Message]) -> list[dict]:
    """The gateway's answer to a client batch with a refused element: an error for every
    request in it (its refusal, with its ``data`` as a single request's has it: the policy
    rule, a limit's ``retry_after``; "not forwarded" for those refused with it)."""
    return [refusal_error(m, with_data=True) for m in msgs if m.kind is Kind.REQUEST]


def rebuild(value: Any, batch: bool, msgs: list[Message], answered: bool = False) -> Any:
    """The value to send after the pipeline's decisions, or UNCHANGED (send the original bytes).
    With ``answered``, blocked server requests are left out (the server got their errors)."""
    if not any(m.modified or m.stopped for m in msgs):
        return UNCHANGED
    out = []
    for m in msgs:
        if m.action is Action.DROP:
            continue
        if m.action is Action.BLOCK:
            if answered and m.kind is Kind.REQUEST:
                continue
            out.append(refusal_error(m))
        else:
            out.append(m.payload)
    if batch:
        return out or None
    return out[0] if out else None
