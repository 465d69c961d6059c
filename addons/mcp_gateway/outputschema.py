"""Redacted tool results that still pass their tool's ``outputSchema``.

A tool that declares an ``outputSchema`` returns ``structuredContent``, and the SDK clients
validate it: the Python SDK raises ``Invalid structured content returned by tool …`` and
the TypeScript SDK throws, so a redaction that breaks a ``pattern``, a ``maxLength``
shorter than the placeholder, an ``enum`` or a ``format`` turns the whole result into an
exception in the agent. The secret did not pass, but neither did anything else.

So the act stage remembers the output schemas of each server's tools as its ``tools/list``
answers pass (what the client caches and validates with, after any redaction of the list
itself), and when it redacts inside the ``structuredContent`` of a ``tools/call`` result of
such a tool, checks the result against the schema before and after (``jsonschema``, as the
Python SDK does, with formats checked, as the TypeScript SDK's Ajv does). When the
redaction is what broke it, the structured copy is withheld and the result is marked
``isError`` (both SDKs validate no error result without ``structuredContent``); the text
content, redacted, stays, and a text block says what happened. A result that did not
validate before is left alone: that is between the server and its client.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from typing import Any

log = logging.getLogger("mcp_gateway")

MAX_SERVERS = 256
MAX_TOOLS = 2048  # per server
WITHHELD_NOTE = (
    "mcp-gateway: the structured result was withheld: a value redacted in it no longer "
    "matches the tool's output schema (the redacted text is above)"
)


class ToolSchemas:
    """The output schemas of each server's tools, from the ``tools/list`` answers seen."""

    def __init__(self) -> None:
        self._by_server: OrderedDict[str, OrderedDict[str, dict]] = OrderedDict()

    def learn(self, server: str, result: Any) -> None:
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return
        known = self._by_server.get(server)
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            schema = tool.get("outputSchema")
            if not isinstance(schema, dict):
                if known is not None:
                    known.pop(tool["name"], None)
                continue
            if known is None:
                known = self._by_server[server] = OrderedDict()
                if len(self._by_server) > MAX_SERVERS:
                    self._by_server.popitem(last=False)
            known[tool["name"]] = schema
            known.move_to_end(tool["name"])
            if len(known) > MAX_TOOLS:
                known.popitem(last=False)

    def get(self, server: str, tool: str | None) -> dict | None:
        known = self._by_server.get(server)
        return known.get(tool) if known is not None and tool is not None else None


def _valid(schema: dict, instance: Any) -> bool | None:
    """Whether ``instance`` validates (None: the schema itself cannot be used)."""
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        v = cls(schema, format_checker=cls.FORMAT_CHECKER)
        return v.is_valid(instance)
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot use: not ours to judge
        return None


class Guard:
    """Snapshot before a redaction, check after it (see the module's docstring)."""

    __slots__ = ("result", "schema", "before")

    def __init__(self, result: dict, schema: dict) -> None:
        self.result = result
        self.schema = schema
        self.before = copy.deepcopy(result.get("structuredContent"))

    @classmethod
    def for_result(cls, schemas: ToolSchemas, server: str, tool: str | None, payload: Any):
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict) or "structuredContent" not in result:
            return None
        if result.get("isError") is True:
            return None  # (the clients do not validate an error result)
        schema = schemas.get(server, tool)
        return cls(result, schema) if schema is not None else None

    def check(self, tool: str | None) -> bool:
        """After the redaction: withhold the structured copy if the redaction broke it.
        True when it was withheld."""
        after = self.result.get("structuredContent")
        if after == self.before:
            return False
        if _valid(self.schema, after) is not False or _valid(self.schema, self.before) is not True:
            return False
        del self.result["structuredContent"]
        self.result["isError"] = True
        content = self.result.get("content")
        if not isinstance(content, list):
            content = self.result["content"] = []
        content.append({"type": "text", "text": WITHHELD_NOTE})
        log.warning(
            "mcp-gateway: structuredContent of %s withheld: its redaction no longer matches the "
            "tool's output schema (result marked isError)",
            tool,
        )
        return True
