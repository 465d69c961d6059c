"""A redaction inside a tool result's structuredContent that breaks the tool's outputSchema."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import orjson
import pytest
from mcp_gateway.act import ActStage
from mcp_gateway.message import Direction, Exchange, Kind, Message
from mcp_gateway.outputschema import MAX_TOOLS, WITHHELD_NOTE, Guard, ToolSchemas
from mcp_gateway.pipeline import Pipeline
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.stage import ScanStage

sys.path.insert(0, str(Path(__file__).parent / "scan"))
from scan_helpers import github_token  # noqa: E402

TOKEN = github_token()
PATTERN = {
    "type": "object",
    "properties": {"token": {"type": "string", "pattern": "^ghp_[A-Za-z0-9]{36}$"}},
    "required": ["token"],
}


def tools_list(*tools) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "result": {"tools": list(tools)}}


def tool(name: str, schema: dict | None) -> dict:
    t = {"name": name, "inputSchema": {"type": "object"}}
    if schema is not None:
        t["outputSchema"] = schema
    return t


def call_result(structured, text: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {"content": [{"type": "text", "text": text}], "structuredContent": structured},
    }


def test_schemas_learn_forget_and_bound():
    s = ToolSchemas()
    s.learn("a:1", tools_list(tool("t", PATTERN), tool("u", None))["result"])
    assert s.get("a:1", "t") == PATTERN and s.get("a:1", "u") is None
    assert s.get("b:1", "t") is None and s.get("a:1", None) is None
    s.learn("a:1", {"tools": [tool("t", None)]})  # a later list without it: forgotten
    assert s.get("a:1", "t") is None
    s.learn("a:1", {"tools": [tool(f"t{i}", PATTERN) for i in range(MAX_TOOLS + 5)]})
    assert s.get("a:1", "t0") is None and s.get("a:1", f"t{MAX_TOOLS + 4}") == PATTERN
    for bad in (None, [], {"tools": "x"}, {"tools": [1, {"name": 2}]}):
        s.learn("a:1", bad)  # never raises


@pytest.mark.parametrize(
    "schema,before,after,withheld",
    [
        (PATTERN, {"token": TOKEN}, {"token": "[REDACTED:github_token]"}, True),
        # a maxLength shorter than the placeholder
        (
            {"type": "object", "properties": {"k": {"type": "string", "maxLength": 20}}},
            {"k": "AKIAQ3EGUIF5ZK7XVJ2M"},
            {"k": "[REDACTED:aws_access_key_id]"},
            True,
        ),
        # a format the TypeScript SDK checks
        (
            {"type": "object", "properties": {"m": {"type": "string", "format": "email"}}},
            {"m": "jane.doe@corp.example"},
            {"m": "[REDACTED:email]"},
            True,
        ),
        # still valid after the redaction: left structured
        ({"type": "object"}, {"token": TOKEN}, {"token": "[REDACTED:github_token]"}, False),
        # invalid before: between the server and its client
        (PATTERN, {"token": "nope"}, {"token": "[REDACTED:x]"}, False),
        # nothing redacted in the structured copy
        (PATTERN, {"token": TOKEN}, {"token": TOKEN}, False),
        # a schema jsonschema cannot use
        ({"type": "no-such-type"}, {"token": TOKEN}, {"token": "[R]"}, False),
    ],
)
def test_guard(schema, before, after, withheld):
    payload = call_result(before, "text " + TOKEN)
    schemas = ToolSchemas()
    schemas.learn("s", {"tools": [tool("t", schema)]})
    g = Guard.for_result(schemas, "s", "t", payload)
    assert g is not None
    payload["result"]["structuredContent"] = copy.deepcopy(after)
    assert g.check("t") is withheld
    res = payload["result"]
    if withheld:
        assert "structuredContent" not in res and res["isError"] is True
        assert res["content"][-1] == {"type": "text", "text": WITHHELD_NOTE}
    else:
        assert res["structuredContent"] == after and "isError" not in res


def test_guard_only_for_a_known_schema_and_a_structured_non_error_result():
    schemas = ToolSchemas()
    schemas.learn("s", {"tools": [tool("t", PATTERN)]})
    assert Guard.for_result(schemas, "s", "other", call_result({"token": TOKEN}, "x")) is None
    assert Guard.for_result(schemas, "s", "t", {"jsonrpc": "2.0", "id": 1, "result": {}}) is None
    err = call_result({"token": TOKEN}, "x")
    err["result"]["isError"] = True
    assert Guard.for_result(schemas, "s", "t", err) is None


def _message(payload, method: str, name: str | None, ex: Exchange) -> Message:
    return Message(
        payload=payload,
        direction=Direction.SERVER_TO_CLIENT,
        kind=Kind.RESULT,
        exchange=ex,
        id=payload["id"],
        method=method,
        name=name,
    )


def test_pipeline_withholds_what_the_redaction_broke():
    act = ActStage()
    p = Pipeline([ScanStage(Engine.load()), act])
    ex = Exchange(flow_id="f", server="127.0.0.1:9")
    p.run(
        _message(
            tools_list(tool("issue", PATTERN), tool("free", {"type": "object"})),
            "tools/list",
            None,
            ex,
        )
    )
    broken = _message(call_result({"token": TOKEN}, "token " + TOKEN), "tools/call", "issue", ex)
    p.run(broken)
    res = broken.payload["result"]
    assert broken.modified and res["isError"] is True and "structuredContent" not in res
    assert res["content"][0]["text"] == "token [REDACTED:github_token]"
    fine = _message(call_result({"token": TOKEN}, "token " + TOKEN), "tools/call", "free", ex)
    p.run(fine)
    assert fine.payload["result"]["structuredContent"] == {"token": "[REDACTED:github_token]"}
    assert "isError" not in fine.payload["result"]
    # another server's tool of the same name: its schema is not known
    other = Exchange(flow_id="g", server="127.0.0.1:10")
    m = _message(call_result({"token": TOKEN}, "t"), "tools/call", "issue", other)
    p.run(m)
    assert m.payload["result"]["structuredContent"] == {"token": "[REDACTED:github_token]"}


def test_a_schemas_backtracking_pattern_cannot_stall_the_proxy():
    """The server writes the schema and the result: Python's re on ``^(a|aa)+$`` and fifty
    a's and a "!" ran for hours on the event loop. Patterns are matched in linear time."""
    import time

    rx = "^(a|aa)+$"
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": rx}, "t": {"type": "string"}},
        "patternProperties": {rx: {"type": "string"}},
    }
    schemas = ToolSchemas()
    schemas.learn("s", {"tools": [tool("t", schema)]})
    for structured in ({"a": "a" * 60 + "!", "t": TOKEN}, {"a" * 60 + "!": "x", "t": TOKEN}):
        payload = call_result(structured, "x")
        g = Guard.for_result(schemas, "s", "t", payload)
        payload["result"]["structuredContent"] = {**structured, "t": "[REDACTED:github_token]"}
        t0 = time.process_time()
        g.check("t")
        assert time.process_time() - t0 < 1.0
    # the same judgement as Python's re where both can match: a pattern broken by the
    # redaction still withholds; one Hyperscan cannot compile leaves the result alone
    for rx, withheld in (("^(a|aa)+$", True), ("^(a)\\1$", False)):
        s = {"type": "object", "properties": {"a": {"type": "string", "pattern": rx}}}
        schemas.learn("s", {"tools": [tool("u", s)]})
        payload = call_result({"a": "aa"}, "x")
        g = Guard.for_result(schemas, "s", "u", payload)
        payload["result"]["structuredContent"] = {"a": "[REDACTED:x]"}
        assert g.check("u") is withheld


def test_schemas_memory_is_bounded():
    from mcp_gateway import outputschema as O

    s = ToolSchemas()
    huge = {"type": "object", "enum": ["x" * 100] * (O.MAX_SCHEMA_BYTES // 100)}
    s.learn("a:1", {"tools": [tool("t", huge)]})
    assert s.get("a:1", "t") is None  # too big to keep
    big = {"type": "object", "enum": ["x" * 100] * (O.MAX_SCHEMA_BYTES // 120)}
    size = len(orjson.dumps(big))
    # one server cannot take more than its share, whatever it lists: its oldest tools go
    n = O.MAX_SERVER_BYTES // size + 20
    s.learn("one:1", {"tools": [tool(f"t{j}", big) for j in range(n)]})
    assert s._server_bytes["one:1"] <= O.MAX_SERVER_BYTES
    assert s.get("one:1", f"t{n - 1}") == big and s.get("one:1", "t0") is None
    # many servers: the total is bounded, the servers learned longest ago go first
    servers = O.MAX_BYTES // O.MAX_SERVER_BYTES + 3
    for i in range(servers):
        s.learn(f"s{i}:1", {"tools": [tool(f"t{j}", big) for j in range(n)]})
    assert s._bytes <= O.MAX_BYTES
    assert s._bytes == sum(len(r) for k in s._by_server.values() for r in k.values())
    assert s.get(f"s{servers - 1}:1", f"t{n - 1}") == big
    assert s.get("one:1", f"t{n - 1}") is None and s.get("s0:1", f"t{n - 1}") is None


def test_jsonschemas_own_algorithms_cannot_stall_the_proxy():
    """uniqueItems compared objects pairwise (6,000 small objects: 31 s on the event loop),
    and many anyOf branches times many items multiply: the work is bounded, the duplicate
    check linear, and a result too big to copy and judge is left as it is."""
    import time

    from mcp_gateway import outputschema as O

    unique = {"type": "object", "properties": {"rows": {"type": "array", "uniqueItems": True}}}
    t0 = time.process_time()
    assert O._valid(unique, {"rows": [{"i": i} for i in range(6000)]}) in (True, None)
    assert time.process_time() - t0 < 1.0
    assert O._valid(unique, {"rows": [{"i": 1}, {"i": 1.0}]}) is False  # equal, as jsonschema
    assert O._valid(unique, {"rows": [{"i": 1}, {"i": True}]}) is True  # not equal
    # a redaction that makes two rows equal breaks uniqueItems: withheld
    schemas = ToolSchemas()
    schemas.learn("s", {"tools": [tool("t", unique)]})
    payload = call_result({"rows": [{"k": TOKEN}, {"k": github_token("Aa" * 15)}]}, "x")
    g = Guard.for_result(schemas, "s", "t", payload)
    payload["result"]["structuredContent"] = {"rows": [{"k": "[R]"}, {"k": "[R]"}]}
    assert g.check("t") is True
    branches = [{"type": "object", "required": [f"k{j}"]} for j in range(300)]
    many = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"anyOf": [*branches, {}]}}},
    }
    t0 = time.process_time()
    assert O._valid(many, {"rows": [{"x": i} for i in range(3000)]}) is None  # over budget
    assert time.process_time() - t0 < 1.0
    big = call_result({"token": TOKEN}, "x")
    assert Guard.for_result(schemas, "s", "t", big, size=O.MAX_RESULT_BYTES + 1) is None
