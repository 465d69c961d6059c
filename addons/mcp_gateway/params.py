"""2026-07-28 ``Mcp-Param-*`` and ``Mcp-Name`` headers: keep them in step with what the
pipeline did to the body.

A client mirrors tool arguments whose schema carries ``x-mcp-header`` into ``Mcp-Param-<Name>``
headers, and the server refuses a request whose headers and body disagree (400, -32020). When
the act stage redacts such an argument, the header still carries the secret: it would reach the
server in clear and make it refuse the call. So the core keeps the arguments as they arrived
(:func:`snapshot`), and after the act stage :class:`ParamHeaderStage` rewrites every header that
mirrored a changed argument to the argument's new value. A header finding (the scan stage scans
these headers too) that this does not resolve refuses the request: a secret never travels in a
header the gateway could not rewrite.
"""

from __future__ import annotations

import copy
from typing import Any

from .message import ErrorCode, Message
from .parse import (
    MCP_PARAM_PREFIX,
    NAME_BEARING,
    decode_header_value,
    encode_header_value,
    render_header_scalar,
)
from .pipeline import ORDER_PARAMS

SNAPSHOT_KEY = "params.before"


def snapshot(headers: dict[str, str], batch: bool, msgs: list[Message]) -> None:
    """Keep the arguments of a single tools/call that carries ``Mcp-Param-*`` headers as they
    arrived (a copy, on the exchange), for :class:`ParamHeaderStage`."""
    if batch or len(msgs) != 1 or not any(k.startswith(MCP_PARAM_PREFIX) for k in headers):
        return
    payload = msgs[0].payload
    p = payload.get("params") if isinstance(payload, dict) else None
    args = p.get("arguments") if isinstance(p, dict) else None
    if isinstance(args, dict):
        msgs[0].exchange.scratch[SNAPSHOT_KEY] = copy.deepcopy(args)


class ParamHeaderStage:
    name = "params"
    order = ORDER_PARAMS

    def process(self, msg: Message) -> None:
        before = msg.exchange.scratch.pop(SNAPSHOT_KEY, None)
        flow = msg.exchange.flow
        if msg.stopped or flow is None:
            return
        if msg.modified and msg.exchange.header("mcp-name") is not None:
            self._follow_name(msg, flow.request.headers)
        changed = (
            self._follow_body(msg, flow.request.headers, before)
            if before is not None and msg.modified
            else set()
        )
        # (without a snapshot: any other request or notification, arguments that are no
        # object, a batch; nothing was rewritten, so every header finding refuses it)
        for f in msg.findings:
            where = f.location.removeprefix("header:")
            if where.startswith(MCP_PARAM_PREFIX) and f.action in ("redact", "block"):
                if where not in changed:
                    msg.block(
                        ErrorCode.BLOCKED,
                        f"blocked by mcp-gateway rule {f.rule} ({f.type}) in header {where}",
                        stage=self.name,
                    )
                    return

    @staticmethod
    def _follow_name(msg: Message, headers: Any) -> None:
        """``Mcp-Name`` mirrors the tool name or resource URI: when the act stage redacted
        that (a token in a URI's query), the header follows, or it would carry the secret to
        the server and no longer match the body."""
        key = NAME_BEARING.get(msg.method or "")
        p = msg.payload.get("params") if isinstance(msg.payload, dict) else None
        new = p.get(key) if key is not None and isinstance(p, dict) else None
        if isinstance(new, str) and decode_header_value(headers.get("mcp-name", "")) != new:
            headers["mcp-name"] = encode_header_value(new)

    @staticmethod
    def _follow_body(msg: Message, headers: Any, before: dict) -> set[str]:
        """Rewrite the headers that mirrored a changed argument; their lower-case names."""
        p = msg.payload.get("params") if isinstance(msg.payload, dict) else None
        args = p.get("arguments") if isinstance(p, dict) else None
        changed: set[str] = set()
        for name in [k for k in headers if k.lower().startswith(MCP_PARAM_PREFIX)]:
            value = decode_header_value(headers[name])
            if value is None:
                continue
            for path in _mirror_paths(before, value):
                new = render_header_scalar(_value_at(args, path))
                if new == value:
                    continue
                if new is None:
                    del headers[name]
                else:
                    headers[name] = encode_header_value(new)
                changed.add(name.lower())
                break
        return changed


def _mirror_paths(args: Any, value: str, path: tuple = (), depth: int = 0) -> list[tuple]:
    """Paths (keys from the arguments' root) of the scalars a header ``value`` mirrors."""
    out: list[tuple] = []
    if isinstance(args, dict) and depth < 32:
        for k, v in args.items():
            out += _mirror_paths(v, value, (*path, k), depth + 1)
    elif path and render_header_scalar(args) == value:
        out.append(path)
    return out


def _value_at(args: Any, path: tuple) -> Any:
    for k in path:
        if not isinstance(args, dict):
            return None
        args = args.get(k)
    return args
