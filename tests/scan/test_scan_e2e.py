"""Issue 3 end to end: a real `mitmdump -s addons/gateway.py`, FastMCP servers and the MCP SDK.

Reuses the shared harness of tests/e2e/conftest.py (its fixtures are imported below, since a
conftest only serves its own directory).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import types
from mcp.shared.exceptions import McpError

_spec = importlib.util.spec_from_file_location(
    "mcp_gateway_e2e_harness", Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
)
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)

# fixtures of the shared harness
mcp_server_factory = harness.mcp_server_factory
mitmdump_factory = harness.mitmdump_factory
_shared_mitmdumps = harness._shared_mitmdumps
mcp_session = harness.mcp_session

pytestmark = pytest.mark.e2e

PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBq8Zl3Wc1Rv9Tn4Xk2Jm7Hs5Ld0Fg3Pb6Nc9Vy1Qw8AAAAJgPq2Mz\n"
    "D6tjMwAAAAtzc2gtZWQyNTUxOQAAACBq8Zl3Wc1Rv9Tn4Xk2Jm7Hs5Ld0Fg3Pb6Nc9\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
OPENAI = "sk-proj-Qw3rT7yU1iO5pA9sD2fG6hJ0kL4zX8cV3bN7mQ1wE5rT9yU2"


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("transport", ["streamable", "json", "sse"])
async def test_private_key_in_tool_arguments_is_blocked(
    mitmdump_factory, mcp_server_factory, mcp_session, transport
):
    # "sse" is the legacy HTTP+SSE transport: its clients wait for every answer on the GET
    # stream, so the refusal must arrive there (and promptly: the session times out in 30 s)
    server = mcp_server_factory(transport, fresh=True)
    md = mitmdump_factory(shared=True)
    client = "sse" if transport == "sse" else "streamable"
    async with mcp_session(server.url, proxy=md.proxy_url, transport=client, timeout=10) as s:
        with pytest.raises(
            McpError, match=r"blocked by mcp-gateway rule private-key \(private_key\)"
        ):
            await s.call_tool("echo", {"text": f"please store\n{PEM}"})
        # the server never saw it
        assert all("PRIVATE KEY" not in json.dumps(c) for c in server.calls())
        assert text_of(await s.call_tool("echo", {"text": "harmless"})) == "harmless"


async def test_blocked_error_names_rule_not_secret(mitmdump_factory, mcp_server_factory):
    server = mcp_server_factory("json")
    md = mitmdump_factory(shared=True)
    body = {
        "jsonrpc": "2.0",
        "id": 41,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": PEM}},
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=10) as c:
        r = c.post(server.url, json=body, headers=headers)
    assert r.status_code == 200
    err = r.json()
    assert err["id"] == 41 and err["error"]["code"] == -32061
    assert "private-key" in err["error"]["message"] and "BEGIN" not in r.text


@pytest.mark.parametrize(
    ("transport", "on_get_stream"),
    [("streamable", False), ("streamable", True), ("sse", False)],
    ids=["post-stream", "get-stream", "legacy-sse"],
)
async def test_secret_in_server_request_is_refused_to_the_server(
    mitmdump_factory, mcp_server_factory, mcp_session, transport, on_get_stream, tmp_path
):
    # The server asks the client's LLM (sampling) with a private key in the prompt, and the
    # user's rules block private keys from servers too. The client must not see the request,
    # and the server must get an answer: its SDK waits for one without a timeout, so without
    # it the tool call hangs.
    server = mcp_server_factory(transport, fresh=True)
    rules = tmp_path / "strict.yaml"
    rules.write_text("rules:\n  - id: private-key-in-result\n    action: block\n")
    root = Path(__file__).resolve().parents[2]
    md = mitmdump_factory(
        extra_args=["--set", f"mcp_rules={root / 'rules'}", "--set", f"mcp_rules={rules}"]
    )
    asked = []

    async def sampling(_ctx, params):
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="ok"), model="m"
        )

    client = "sse" if transport == "sse" else "streamable"
    t0 = time.monotonic()
    async with mcp_session(
        server.url, proxy=md.proxy_url, transport=client, sampling_callback=sampling, timeout=20
    ) as s:
        args = {"prompt": "summarize this", "on_get_stream": on_get_stream, "leak": "key"}
        res = await s.call_tool("sample", args)
        assert res.isError, res
        assert "blocked by mcp-gateway rule private-key-in-result" in text_of(res)
        assert "PRIVATE KEY" not in text_of(res)
        assert asked == []  # the client never got the request
        # the session goes on: a harmless sampling request still round-trips
        res = await s.call_tool("sample", {"prompt": "hello", "on_get_stream": on_get_stream})
        assert text_of(res) == "sampled[m]: ok"
    assert time.monotonic() - t0 < 15  # answered, not timed out
    assert any("summarize this" in json.dumps(c) for c in server.calls())


@pytest.mark.parametrize("transport", ["streamable", "json"])
async def test_secret_in_tool_result_is_redacted(
    mitmdump_factory, mcp_server_factory, mcp_session, transport
):
    server = mcp_server_factory(transport)
    md = mitmdump_factory(shared=True)
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        out = text_of(await s.call_tool("leak", {"kind": "all"}))
    assert "ghp_" not in out and "AKIAQ3EGUIF5ZK7XVJ2M" not in out
    assert "[REDACTED:github_token]" in out and "[REDACTED:aws_access_key_id]" in out
    assert "jane.doe@example.org" in out  # personal data is logged, not rewritten


async def test_a_token_cut_across_text_blocks_or_a_soft_line_break_is_redacted(
    mitmdump_factory, mcp_server_factory, mcp_session
):
    """Red-team round 33: a tool returning its output in 16-character text blocks, and a raw
    e-mail in quoted-printable (its token across a "=" soft line break), reached the official
    Python SDK client whole through a real mitmdump; the model reads both joined."""
    server = mcp_server_factory("streamable")
    md = mitmdump_factory(shared=True)
    token = "ghp_Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0"
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        chunks = await s.call_tool("leak_chunks", {"size": 16})
        mail = text_of(await s.call_tool("leak_mail", {}))
    joined = "".join(c.text for c in chunks.content if isinstance(c, types.TextContent))
    assert len(chunks.content) > 3
    assert joined == "GITHUB_TOKEN=[REDACTED:github_token]\nok"
    # FastMCP's copy of the blocks in structuredContent ({"result": [...]}) too
    copy = "".join(b["text"] for b in chunks.structuredContent["result"])
    assert copy == joined
    unfolded = mail.replace("=\r\n", "")
    assert token[:12] not in unfolded and token[-12:] not in unfolded
    assert unfolded.endswith("keep it safe: GITHUB_TOKEN=3D[REDACTED:github_token]")


async def test_a_token_cut_at_a_terminal_s_width_is_redacted(
    mitmdump_factory, mcp_server_factory, mcp_session
):
    """Red-team round 34: a terminal tool's pane as ``tmux capture-pane`` without ``-J``
    returns it, a token cut by the pane's width: it reached the Python SDK client in two lines
    that a model reads as one word."""
    server = mcp_server_factory("streamable")
    md = mitmdump_factory(shared=True)
    token = "ghp_Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0"
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        out = text_of(await s.call_tool("leak_terminal", {"width": 80}))
    flat = out.replace("\n", "")
    assert token[:8] not in flat and token[-8:] not in flat, out
    assert "echo GITHUB_TOKEN=[REDACTED:github_token]" in out
    assert out.startswith("dev@box:~/src/app$ git status\nnothing to commit\n")
    assert out.endswith("\ndev@box:~$")


async def test_a_token_in_a_hex_dump_is_redacted(mitmdump_factory, mcp_server_factory, mcp_session):
    """Red-team round 34: ``xxd .env`` from a shell tool showed the token 16 characters a
    line in its text column and whole in its hex column; it reached the client unread."""
    server = mcp_server_factory("streamable")
    md = mitmdump_factory(shared=True)
    token = "ghp_Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0"
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        out = text_of(await s.call_tool("leak_dump", {}))
    assert "[REDACTED:github_token]" in out, out
    assert token[4:16].encode().hex() not in out.replace(" ", "")
    assert "Xv9Rt4Wp7Yk3" not in "".join(ln[-16:] for ln in out.splitlines())
    assert out.startswith("$ xxd .env\n00000000: ") and out.endswith("\n$ ")


@pytest.mark.parametrize("transport", ["streamable", "json"])
async def test_redaction_that_breaks_the_output_schema_still_returns_a_result(
    mitmdump_factory, mcp_server_factory, mcp_session, transport
):
    # the tool's outputSchema says ^ghp_…$: the SDK client validates structuredContent and
    # raised on the redacted copy; the gateway now withholds that copy and marks the result
    # an error (the text, redacted, stays), as it learnt the schema from tools/list
    server = mcp_server_factory(transport)
    md = mitmdump_factory(shared=True)
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["issue_token"].outputSchema["properties"]["token"]["pattern"]
        res = await s.call_tool("issue_token", {})
        plain = await s.call_tool("leak", {"kind": "github"})  # no pattern: left structured
    assert res.isError is True and res.structuredContent is None
    texts = [c.text for c in res.content if isinstance(c, types.TextContent)]
    assert "ghp_" not in json.dumps(texts) and "[REDACTED:github_token]" in texts[0]
    assert "output schema" in texts[-1]
    assert plain.isError is False
    assert plain.structuredContent == {"result": "GITHUB_TOKEN=[REDACTED:github_token]"}


async def test_json_escaped_secret_in_arguments_is_caught(mitmdump_factory, mcp_server_factory):
    server = mcp_server_factory("json", fresh=True)
    md = mitmdump_factory(shared=True)
    escaped = "\\u0073\\u006b" + OPENAI[2:]  # "sk" written as JSON escapes
    raw = (
        '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo",'
        f'"arguments":{{"text":"key={escaped}"}}}}}}'
    ).encode()
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with httpx.Client(proxy=md.proxy_url, trust_env=False, timeout=10) as c:
        # a stateful server wants a session: initialize first
        init = {
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        }  # fmt: skip
        r = c.post(server.url, json=init, headers=headers)
        sid = r.headers.get("mcp-session-id")
        if sid:
            headers["mcp-session-id"] = sid
        c.post(
            server.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=headers,
        )
        r = c.post(server.url, content=raw, headers=headers)
    assert r.status_code == 200, r.text
    assert OPENAI not in r.text
    seen = json.dumps(server.calls())
    assert OPENAI not in seen and OPENAI[8:] not in seen
    assert "[REDACTED:openai_api_key]" in seen or "[REDACTED:openai_api_key]" in r.text


async def test_an_edited_rule_file_applies_while_the_session_goes_on(
    mitmdump_factory, mcp_server_factory, mcp_session, tmp_path
):
    # as the YAML configuration is: a user adds a rule to their file and the running gateway
    # takes it, without a restart and without dropping the client's session
    server = mcp_server_factory("streamable")
    mine = tmp_path / "mine.yaml"
    mine.write_text("rules: []\n")
    root = Path(__file__).resolve().parents[2]
    md = mitmdump_factory(
        extra_args=["--set", f"mcp_rules={root / 'rules'}", "--set", f"mcp_rules={mine}"]
    )
    async with mcp_session(server.url, proxy=md.proxy_url) as s:
        assert text_of(await s.call_tool("echo", {"text": "ticket TCK-20931"})) == (
            "ticket TCK-20931"
        )
        mine.write_text(
            "rules:\n  - id: ticket-id\n    type: custom_ticket\n    severity: low\n"
            "    action: redact\n    pattern: 'TCK-[0-9]{5}'\n"
        )
        md.wait_log("scanning rules reloaded", timeout=60)
        assert text_of(await s.call_tool("echo", {"text": "ticket TCK-20931"})) == (
            "ticket [REDACTED:custom_ticket]"
        )
        # a broken edit: the running rules stay, and say why
        mine.write_text(
            "rules:\n  - id: ticket-id\n    type: custom_ticket\n    severity: low\n"
            "    action: redact\n    pattern: 'TCK-[0-9'\n"
        )
        log = md.wait_log("keeping the running rules", timeout=60)
        assert "mine.yaml:6: rules[0].pattern: invalid regular expression" in log
        assert text_of(await s.call_tool("echo", {"text": "ticket TCK-20931"})) == (
            "ticket [REDACTED:custom_ticket]"
        )
