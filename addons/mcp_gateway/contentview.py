"""An "MCP" content view for mitmweb and the mitmproxy console.

Splits a JSON body or an SSE stream into JSON-RPC messages and shows each one with its kind,
method, tool name and the gateway's decision (from ``flow.metadata["mcp"]``), as YAML-ish text.
Registered by :func:`mcp_gateway.assemble.build_addons`.
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy import contentviews

from .parse import classify, decode_json, looks_like_json
from .sse import SSEParser


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _head(obj: Any) -> str:
    kind = classify(obj).value
    parts = [kind]
    if isinstance(obj, dict):
        if "method" in obj:
            parts.append(str(obj["method"]))
        params = obj.get("params")
        if isinstance(params, dict) and isinstance(params.get("name"), str):
            parts.append(params["name"])
        if "id" in obj:
            parts.append(f"id={obj['id']!r}")
    return " ".join(parts)


class MCPContentview(contentviews.Contentview):
    name = "MCP"
    syntax_highlight = "yaml"

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        out: list[str] = []
        flow = metadata.flow
        summaries = flow.metadata.get("mcp") if flow is not None else None
        if summaries:
            out.append("# mcp-gateway decisions")
            for s in summaries:
                line = f"- {s.get('direction')} {s.get('kind')} {s.get('method') or ''} {s.get('name') or ''}".rstrip()
                line += f" -> {s.get('action')}"
                if s.get("latency_ms") is not None:
                    line += f" ({s['latency_ms']} ms)"
                if s.get("refusal"):
                    line += f": {s['refusal']['message']}"
                for f in s.get("findings", ()):
                    line += f"\n    finding {f['rule']} ({f['type']}) at {f['location']} -> {f['action']}"
                out.append(line)
            out.append("")
        if "event-stream" in (metadata.content_type or ""):
            parser = SSEParser()
            events = parser.feed(data) + parser.close()
            for ev in events:
                if ev.data is None or not ev.data.strip():
                    if ev.comments or ev.id or ev.retry is not None:
                        out.append(f"# event id={ev.id!r} retry={ev.retry} comments={ev.comments}")
                    continue
                out.append(f"# event {ev.type}" + (f" id={ev.id}" if ev.id else ""))
                out.append(self._value(ev.data))
        else:
            out.append(self._value(data))
        return "\n".join(out)

    @staticmethod
    def _value(data: bytes | str) -> str:
        try:
            value = decode_json(data)
        except ValueError:
            return data if isinstance(data, str) else data.decode("utf-8", "replace")
        items = value if isinstance(value, list) else [value]
        return "\n".join(f"## {_head(v)}\n{_pretty(v)}" for v in items)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        flow = metadata.flow
        if flow is not None and flow.metadata.get("mcp"):
            return 2
        ctype = metadata.content_type or ""
        if "json" in ctype and data and looks_like_json(data) and b'"jsonrpc"' in data[:4096]:
            return 1.5
        return -1


def register() -> None:
    contentviews.add(MCPContentview)
