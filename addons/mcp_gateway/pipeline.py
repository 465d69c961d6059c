"""The one message pipeline: ordered stages over every JSON-RPC message.

parse (done by the adapters in :mod:`mcp_gateway.parse`) -> correlate -> identify ->
policy/limits -> scan -> act -> audit.

A stage is any object with a ``name``, an ``order`` and a ``process(msg)`` method; it may
also implement ``on_exchange(ex)``, called once per MCP HTTP exchange before any of its
messages (authentication and session binding live there, so GET streams and DELETEs are
covered even though they carry no JSON-RPC body), and ``on_exchange_end(ex)``.

Faults: a stage that raises never takes the proxy down. With ``fail_mode="closed"`` the
message is blocked with a JSON-RPC internal error naming the stage; with ``"open"`` the
fault is recorded on the message and it goes on.  Stages with ``always = True`` (correlate,
audit) also see messages that an earlier stage blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .message import ErrorCode, Exchange, Message, NotInspected, Refusal

log = logging.getLogger("mcp_gateway")

# Conventional stage orders; keep gaps so that addons can slot in between.
ORDER_CORRELATE = 100
ORDER_IDENTIFY = 200
ORDER_POLICY = 300
ORDER_LIMITS = 350
ORDER_SCAN = 400
ORDER_ACT = 500
ORDER_PARAMS = 600  # after act: Mcp-Param-* headers follow the redacted body
ORDER_AUDIT = 900


@runtime_checkable
class Stage(Protocol):
    name: str
    order: int

    def process(self, msg: Message) -> None: ...


class Pipeline:
    def __init__(self, stages: Iterable[Stage] = (), fail_mode: str = "closed") -> None:
        self.fail_mode = fail_mode
        self._stages: list[Stage] = []
        for s in stages:
            self.add(s)

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    def add(self, stage: Stage) -> None:
        self._stages = [s for s in self._stages if s.name != stage.name]
        self._stages.append(stage)
        self._stages.sort(key=lambda s: s.order)

    def remove(self, name: str) -> None:
        self._stages = [s for s in self._stages if s.name != name]

    def get(self, name: str) -> Stage | None:
        for s in self._stages:
            if s.name == name:
                return s
        return None

    # -- exchange level -------------------------------------------------------------
    def start_exchange(self, ex: Exchange) -> Refusal | None:
        """Run every stage's ``on_exchange``; returns the refusal if one refused."""
        for stage in self._stages:
            hook = getattr(stage, "on_exchange", None)
            if hook is None:
                continue
            if ex.refusal is not None and not getattr(stage, "always", False):
                continue
            try:
                hook(ex)
            except Exception as e:  # noqa: BLE001 - a stage must never take the proxy down
                log.exception("mcp-gateway: stage %s failed on exchange %s", stage.name, ex.flow_id)
                if self.fail_mode == "closed" and ex.refusal is None:
                    ex.refusal = Refusal(
                        ErrorCode.INTERNAL_ERROR,
                        f"gateway internal error in stage {stage.name}: {type(e).__name__}",
                        http_status=500,
                        stage=stage.name,
                    )
        return ex.refusal

    def authenticate(self, ex: Exchange) -> Refusal | None:
        """Ask the stages that can tell it from the request's headers alone whether its
        credential is refused (the identify stage); the first refusal, or None. (A stage
        that fails is skipped: the exchange is decided again, whole, with the body.)"""
        return self._first_refusal("authenticate", ex)

    def reauthenticate(self, ex: Exchange) -> Refusal | None:
        """For an exchange admitted earlier that carries on (a WebSocket connection, an
        event stream): the refusal of a credential no longer valid (revoked, expired), else
        None."""
        return self._first_refusal("reauthenticate", ex)

    def recheck(self, ex: Exchange, what: str, flow_id: str) -> None:
        """An exchange admitted with a gateway credential that carries on (``what``: a
        WebSocket connection, an event stream): once its key is revoked or its JWT expired,
        it takes the refusal, and every later message of it is refused. It went on for as
        long as the client or the server kept it open."""
        ident = ex.identity
        if ex.refusal is not None or ident is None or not ident.authenticated:
            return
        r = self.reauthenticate(ex)
        if r is not None:
            ex.refusal = r
            log.warning(
                "mcp-gateway: %s %s: its credential no longer holds (%s); refusing the rest of it",
                what,
                flow_id,
                r.message,
            )

    def _first_refusal(self, hook_name: str, ex: Exchange) -> Refusal | None:
        for stage in self._stages:
            hook = getattr(stage, hook_name, None)
            if hook is None:
                continue
            try:
                r = hook(ex)
            except Exception as e:  # noqa: BLE001 - a stage must never take the proxy down
                log.exception(
                    "mcp-gateway: stage %s failed (%s) on %s", stage.name, hook_name, ex.flow_id
                )
                if hook_name == "reauthenticate" and self.fail_mode == "closed":
                    # (nothing decides a connection or stream admitted earlier again: skipped,
                    # the failure kept a revoked key working on it)
                    return Refusal(
                        ErrorCode.INTERNAL_ERROR,
                        f"gateway internal error in stage {stage.name}: {type(e).__name__}",
                        http_status=500,
                        stage=stage.name,
                    )
                continue
            if r is not None:
                return r
        return None

    def announce_session(self, ex: Exchange, sid: str) -> None:
        """The server named the session of an exchange in flight (a legacy stream's
        ``endpoint`` event): stages with ``on_session`` learn it."""
        for stage in self._stages:
            hook = getattr(stage, "on_session", None)
            if hook is None:
                continue
            try:
                hook(ex, sid)
            except Exception:  # noqa: BLE001
                log.exception(
                    "mcp-gateway: stage %s failed learning a session of %s", stage.name, ex.flow_id
                )

    def end_exchange(self, ex: Exchange) -> None:
        for stage in self._stages:
            hook = getattr(stage, "on_exchange_end", None)
            if hook is None:
                continue
            try:
                hook(ex)
            except Exception:  # noqa: BLE001
                log.exception(
                    "mcp-gateway: stage %s failed ending exchange %s", stage.name, ex.flow_id
                )

    # -- message level --------------------------------------------------------------
    def run(self, msg: Message) -> Message:
        self._begin(msg)
        for stage in self._stages:
            self._step(stage, msg)
        self._end(msg)
        return msg

    def run_all(self, msgs: Iterable[Message]) -> list[Message]:
        return [self.run(m) for m in msgs]

    def run_batch(self, msgs: list[Message]) -> list[Message]:
        """A client's batch, which the gateway answers as a whole when one element is
        refused (forwarding the rest would mean merging its errors into the server's
        answer). The stages before audit run on every element; if one was refused, the
        others are refused with "not forwarded" (their charges undone); only then do the
        last stages run, so the audit trail records what happened to each. A stage with
        ``process_batch`` (audit: room for every row, or none) gets the batch at once."""
        late = [s for s in self._stages if s.order >= ORDER_AUDIT]
        early = [s for s in self._stages if s.order < ORDER_AUDIT]
        for m in msgs:
            self._begin(m)
            for stage in early:
                self._step(stage, m)
        self._refuse_siblings(msgs)
        for stage in late:
            hook = getattr(stage, "process_batch", None)
            if hook is None:
                for m in msgs:
                    self._step(stage, m)
                continue
            todo = msgs if getattr(stage, "always", False) else [m for m in msgs if not m.stopped]
            try:
                hook(todo)
            except Exception as e:  # noqa: BLE001
                log.exception("mcp-gateway: stage %s failed on a batch", stage.name)
                for m in todo:
                    self._fault(stage, m, e)
        self._refuse_siblings(msgs)
        for m in msgs:
            self._end(m)
        return msgs

    @staticmethod
    def _refuse_siblings(msgs: list[Message]) -> None:
        first = next((m for m in msgs if m.stopped), None)
        if first is None:
            return
        text = f"not forwarded: batch element {first.batch_index} was refused"
        for m in msgs:
            if not m.stopped:
                m.block(ErrorCode.NOT_FORWARDED, text, stage="batch")

    def _begin(self, msg: Message) -> None:
        r = msg.exchange.refusal
        if r is not None and msg.refusal is None:
            msg.block(
                r.code, r.message, http_status=r.http_status, headers=r.headers, stage=r.stage
            )

    def _step(self, stage: Stage, msg: Message) -> None:
        if msg.stopped and not getattr(stage, "always", False):
            return
        try:
            stage.process(msg)
        except NotInspected as e:
            # a bound, not a fault of the gateway: one line, no traceback
            log.warning(
                "mcp-gateway: %s %s (flow %s) %s; %s",
                msg.kind,
                msg.method,
                msg.exchange.flow_id,
                e,
                "blocked (mcp_fail_mode=closed)"
                if self.fail_mode == "closed"
                else "passed on (mcp_fail_mode=open)",
            )
            self._fault(stage, msg, e)
        except Exception as e:  # noqa: BLE001 - a stage must never take the proxy down
            log.exception(
                "mcp-gateway: stage %s failed on %s %s (flow %s)",
                stage.name,
                msg.kind,
                msg.method,
                msg.exchange.flow_id,
            )
            self._fault(stage, msg, e)

    def _fault(self, stage: Stage, msg: Message, e: Exception) -> None:
        msg.faults.append(stage.name)
        if self.fail_mode == "closed" and not getattr(stage, "always", False):
            if isinstance(e, NotInspected):
                msg.block(ErrorCode.TOO_LARGE, f"message {e}", stage=stage.name)
                return
            msg.block(
                ErrorCode.INTERNAL_ERROR,
                f"gateway internal error in stage {stage.name}: {type(e).__name__}",
                stage=stage.name,
            )

    def _end(self, msg: Message) -> None:
        if msg.refunds is not None and msg.stopped:
            self._refund(msg)  # charged by one stage, refused by a later one

    @staticmethod
    def _refund(msg: Message) -> None:
        try:
            msg.refund()
        except Exception:  # noqa: BLE001
            log.exception("mcp-gateway: refund failed (flow %s)", msg.exchange.flow_id)
