"""ScanStage + ActStage on hand-built messages (no proxy)."""

import base64
import json
import logging
import time

import orjson
import pytest
from mcp_gateway.act import ActStage
from mcp_gateway.correlate import CorrelateStage, Correlator
from mcp_gateway.message import Action, Direction, ErrorCode, Exchange, Kind, Message
from mcp_gateway.pipeline import ORDER_ACT, ORDER_SCAN, Pipeline
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.rules import RuleSet
from mcp_gateway.scan.stage import SPANS_KEY, ScanStage
from scan_helpers import github_token, jwt, pem

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


@pytest.fixture
def pipeline(engine):
    return Pipeline([ScanStage(engine), ActStage(b"test-key")])


def ex(**kw):
    kw.setdefault("flow_id", "f1")
    kw.setdefault("server", "tools.acme.io:443")
    return Exchange(**kw)


def req(params, method="tools/call", name="run", exchange=None, raw=None):
    payload = (
        orjson.loads(raw)
        if raw
        else {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    )
    return Message(
        payload,
        Direction.CLIENT_TO_SERVER,
        Kind.REQUEST,
        exchange or ex(),
        id=7,
        method=method,
        name=name,
    )


def result(res, method="tools/call", name="run", exchange=None):
    payload = {"jsonrpc": "2.0", "id": 7, "result": res}
    return Message(
        payload,
        Direction.SERVER_TO_CLIENT,
        Kind.RESULT,
        exchange or ex(),
        id=7,
        method=method,
        name=name,
    )


def reserialize(msg):
    """What the core does with a modified message: it must still be valid JSON-RPC."""
    back = orjson.loads(orjson.dumps(msg.payload))
    assert back["jsonrpc"] == "2.0" and back["id"] == 7
    return back


def test_stage_metadata(engine):
    st = ScanStage(engine)
    assert (st.name, st.order) == ("scan", ORDER_SCAN)
    a = ActStage()
    assert (a.name, a.order) == ("act", ORDER_ACT)


def test_secret_in_tool_arguments_is_redacted(pipeline):
    tok = github_token()
    m = req(
        {"name": "run", "arguments": {"cmd": f"git push https://{tok}@github.com/x.git", "n": 3}}
    )
    pipeline.run(m)
    assert [(f.rule, f.type, f.action, f.location) for f in m.findings] == [
        ("github-token", "github_token", "redact", "/params/arguments/cmd")
    ]
    f = m.findings[0]
    assert tok not in repr(f) and f.masked.startswith("ghp_") and len(f.masked) < 12
    assert m.action is Action.REDACT and m.modified
    out = reserialize(m)
    assert (
        out["params"]["arguments"]["cmd"]
        == "git push https://[REDACTED:github_token]@github.com/x.git"
    )
    assert tok not in orjson.dumps(m.payload).decode()
    assert f.start == len("git push https://") and f.end == f.start + len(tok)


def test_json_escaped_secret_found_after_json_parsing(pipeline):
    key = "sk-proj-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9KqW"
    raw = (
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run","arguments":'
        b'{"env":"OPENAI_API_KEY=\\u0073k-proj-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9KqW"}}}'
    )
    m = req(None, raw=raw)
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["openai_api_key"]
    assert key not in orjson.dumps(m.payload).decode()


def test_token_split_by_escaped_invisible_characters_is_redacted(pipeline):
    # \u200b escapes in the bytes as they arrived: the receiver decodes them to zero-width
    # spaces, which a model reads straight through
    tok = github_token()
    hidden = tok[:8] + "\\u200b" + tok[8:16] + "\\u2060" + tok[16:20] + "\\u0000" + tok[20:]
    raw = (
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run","arguments":'
        b'{"note":"token ' + hidden.encode() + b' ok"}}}'
    )
    m = req(None, raw=raw)
    m.raw = raw
    pipeline.run(m)
    assert [(f.type, f.action) for f in m.findings] == [("github_token", "redact")]
    note = reserialize(m)["params"]["arguments"]["note"]
    assert note == "token [REDACTED:github_token] ok"


def test_private_key_with_invisible_characters_is_still_blocked(pipeline):
    key = pem().replace("-----BEGIN", "-----\u200bBEGIN", 1)
    m = req({"name": "run", "arguments": {"key": key}})
    pipeline.run(m)
    assert m.stopped and m.refusal.code == ErrorCode.BLOCKED
    assert [f.type for f in m.findings] == ["private_key"]


def test_json_inside_a_string_is_redacted_and_stays_json(pipeline):
    tok = github_token()
    inner = orjson.dumps({"auth": {"token": tok.replace("ghp", "\\u0067hp")}}).decode()
    inner = inner.replace("\\\\u0067", "\\u0067")  # a JSON document whose string uses an escape
    m = result({"content": [{"type": "text", "text": inner}]})
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["github_token"]
    text = reserialize(m)["result"]["content"][0]["text"]
    assert orjson.loads(text) == {"auth": {"token": "[REDACTED:github_token]"}}


def test_base64_blob_is_re_encoded(pipeline):
    pw = "S3cr3t-Passw0rd!"
    blob = base64.b64encode(pw.encode()).decode()
    m = result(
        {"content": [{"type": "text", "text": f"kind: Secret\ndata:\n  password: {blob}\n"}]}
    )
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["generic_secret"]
    text = reserialize(m)["result"]["content"][0]["text"]
    new_blob = text.split("password: ")[1].strip()
    assert base64.b64decode(new_blob).decode() == "[REDACTED:generic_secret]"


@pytest.mark.parametrize("upper", [False, True])
def test_hex_encoded_token_is_redacted_and_stays_hex(pipeline, upper):
    # what `.hex()` or `xxd -p` makes of a secret: decoded, redacted inside, encoded again
    tok = github_token()
    blob = f"export GITHUB_TOKEN={tok}".encode().hex()
    blob = blob.upper() if upper else blob
    m = result({"content": [{"type": "text", "text": f"payload: {blob} (hex)"}]})
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["github_token"]
    text = reserialize(m)["result"]["content"][0]["text"]
    new_blob = text.split("payload: ")[1].split(" ")[0]
    assert new_blob.isupper() == upper
    assert bytes.fromhex(new_blob).decode() == "export GITHUB_TOKEN=[REDACTED:github_token]"


def test_private_key_from_client_is_blocked(pipeline):
    m = req({"name": "upload", "arguments": {"file": pem()}}, name="upload")
    pipeline.run(m)
    assert m.action is Action.BLOCK
    assert m.refusal.code == ErrorCode.BLOCKED
    assert m.refusal.message == "blocked by mcp-gateway rule private-key (private_key)"
    assert "PRIVATE" not in m.refusal.message and m.refusal.stage == "act"
    assert (
        "MII" not in orjson.dumps(m.payload).decode()
        or pem()[40:80] not in orjson.dumps(m.payload).decode()
    )


def test_private_key_in_result_is_redacted(pipeline):
    m = result({"content": [{"type": "text", "text": "id_rsa:\n" + pem() + "\n"}]})
    pipeline.run(m)
    assert [(f.rule, f.action) for f in m.findings] == [("private-key-in-result", "redact")]
    assert m.action is Action.REDACT
    assert reserialize(m)["result"]["content"][0]["text"] == "id_rsa:\n[REDACTED:private_key]\n"


def test_block_on_notification_drops_it(engine):
    p = Pipeline([ScanStage(engine), ActStage()])
    payload = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": pem()}}
    m = Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.NOTIFICATION, ex(), method="notifications/message"
    )
    p.run(m)
    assert m.action is Action.DROP


def test_everything_the_receiver_sees_is_scanned(pipeline):
    tok = github_token()
    cases = [
        result({"tools": [{"name": "x", "description": f"use token {tok}", "inputSchema": {}}]}, method="tools/list"),
        result({"contents": [{"uri": "file:///a", "text": f"T={tok}"}]}, method="resources/read"),
        result({"messages": [{"role": "user", "content": {"type": "text", "text": tok}}]}, method="prompts/get"),
        Message(
            {"jsonrpc": "2.0", "id": 7, "error": {"code": -1, "message": f"bad token {tok}"}},
            Direction.SERVER_TO_CLIENT, Kind.ERROR, ex(), id=7, method="tools/call",
        ),
        Message(
            {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": {"line": tok}}},
            Direction.SERVER_TO_CLIENT, Kind.NOTIFICATION, ex(), method="notifications/message",
        ),
    ]  # fmt: skip
    for m in cases:
        pipeline.run(m)
        assert [f.type for f in m.findings] == ["github_token"], m.payload
        assert tok not in orjson.dumps(m.payload).decode()


def test_location_is_a_json_pointer(pipeline):
    tok = github_token()
    m = req({"name": "run", "arguments": {"a/b": [{"x~y": f"k {tok}"}]}})
    pipeline.run(m)
    assert m.findings[0].location == "/params/arguments/a~1b/0/x~0y"


def test_pii_is_logged_not_modified(pipeline):
    m = result(
        {
            "content": [
                {"type": "text", "text": "Customer: alice.smith@acme-corp.io, +44 20 7946 0958"}
            ]
        }
    )
    before = orjson.dumps(m.payload)
    pipeline.run(m)
    assert sorted(f.type for f in m.findings) == ["email", "phone_number"]
    assert {f.action for f in m.findings} == {"log"}
    assert m.action is Action.PASS and not m.modified
    assert orjson.dumps(m.payload) == before


class FakeFlow:
    marked = ""
    comment = ""


def test_alert_logs_and_marks_the_flow(pipeline, caplog):
    flow = FakeFlow()
    m = result(
        {"content": [{"type": "text", "text": "card 4539 5787 6362 1486"}]}, exchange=ex(flow=flow)
    )
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        pipeline.run(m)
    assert [f.action for f in m.findings] == ["alert"]
    assert m.action is Action.PASS
    assert flow.marked == ":warning:" and "credit-card" in flow.comment
    assert any("credit-card" in r.getMessage() for r in caplog.records)
    assert not any("4539" in r.getMessage() for r in caplog.records)


def test_many_alerts_of_one_rule_are_one_log_line_with_a_count(pipeline, caplog):
    rows = [{"type": "text", "text": f"row {i}: card 4539 5787 6362 1486"} for i in range(500)]
    m = result({"content": rows}, exchange=ex(flow=FakeFlow()))
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        pipeline.run(m)
    assert len(m.findings) == 500  # every finding is still handed on (audit)
    lines = [r.getMessage() for r in caplog.records if "credit-card" in r.getMessage()]
    assert len(lines) == 1, lines
    assert " x500 at /result/content/" in lines[0] and "and 497 more" in lines[0]


def test_a_redaction_is_logged_at_info_and_commented_not_marked(pipeline, caplog):
    """An agent whose answer changed on the way is explained in the proxy's log (round 24:
    redactions showed only in the audit); a redaction is no alarm, so no mark."""
    flow = FakeFlow()
    tok = github_token()
    m = result({"content": [{"type": "text", "text": f"token {tok}"}]}, exchange=ex(flow=flow))
    with caplog.at_level(logging.INFO, logger="mcp_gateway"):
        pipeline.run(m)
    assert m.modified
    lines = [r for r in caplog.records if "github-token" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert "redact github-token" in lines[0].getMessage() and tok not in lines[0].getMessage()
    assert flow.marked == "" and flow.comment == "mcp-gateway redact: github-token"


def test_block_marks_flow_no_entry(pipeline):
    flow = FakeFlow()
    m = req({"name": "x", "arguments": {"k": pem()}}, exchange=ex(flow=flow))
    pipeline.run(m)
    assert flow.marked == ":no_entry:" and "private-key" in flow.comment


def test_authorization_header_scanned_for_client_requests_only(pipeline):
    t = jwt()
    e = ex(request_headers={"Authorization": f"Bearer {t}"})
    m = req({"name": "x", "arguments": {}}, exchange=e)
    pipeline.run(m)
    assert [(f.type, f.location, f.action) for f in m.findings] == [
        ("jwt", "header:authorization", "log")
    ]
    assert m.action is Action.PASS  # the credential for this server is recorded, never rewritten
    m2 = req({"name": "x", "arguments": {}}, exchange=e)  # same exchange (batch): once
    pipeline.run(m2)
    assert m2.findings == []
    r = result({"content": []}, exchange=ex(request_headers={"Authorization": f"Bearer {t}"}))
    pipeline.run(r)
    assert r.findings == []


def test_request_url_query_is_scanned_and_recorded_never_rewritten(pipeline):
    tok = github_token(seed=4)
    e = ex(request_headers={}, path=f"/mcp?access_token={tok}&x=1")
    m = req({"name": "x", "arguments": {}}, exchange=e)
    pipeline.run(m)
    assert [(f.type, f.location, f.action, f.start) for f in m.findings] == [
        ("github_token", "url:query", "log", len("access_token="))
    ]
    assert m.action is Action.PASS and not m.modified
    # percent-encoded, too
    e = ex(request_headers={}, path=f"/mcp?t={tok[:3]}%5F{tok[4:]}")
    m = req({"name": "x", "arguments": {}}, exchange=e)
    pipeline.run(m)
    assert [(f.type, f.location) for f in m.findings] == [("github_token", "url:query")]


def test_scope_direction_method_tool_server(tmp_path):
    rule = tmp_path / "scoped.yaml"
    rule.write_text(
        """rules:
  - id: acme-key
    type: custom_acme
    severity: high
    action: redact
    pattern: 'acme_[a-z0-9]{16}'
    scope: {direction: [c2s], methods: ['tools/*'], tools: ['deploy*'], servers: ['*.acme.io:*']}
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    val = "acme_0123456789abcdef"

    def run(m):
        p.run(m)
        return [f.rule for f in m.findings]

    assert run(req({"name": "deploy_prod", "arguments": {"k": val}}, name="deploy_prod")) == [
        "acme-key"
    ]
    assert run(req({"name": "read", "arguments": {"k": val}}, name="read")) == []
    assert run(req({"k": val}, method="prompts/get", name="deploy")) == []
    assert run(result({"k": val}, name="deploy")) == []
    other = ex(server="evil.example.net:443")
    assert (
        run(req({"name": "deploy", "arguments": {"k": val}}, name="deploy", exchange=other)) == []
    )
    # a loopback server named by its client (Mcp-Gateway-Server): its address still counts
    named = ex(server="innocent", address="db.acme.io:5432")
    call = req({"name": "deploy", "arguments": {"k": val}}, name="deploy", exchange=named)
    assert run(call) == ["acme-key"]


def crm_pipeline(tmp_path, scope: str) -> Pipeline:
    """Scan and act stages with one redacting rule for CUST-nnnnnn account numbers, scoped
    as ``scope`` says (a flow mapping: direction, methods, tools)."""
    rule = tmp_path / "scoped.yaml"
    rule.write_text(
        "rules:\n  - id: crm-account\n    type: custom_crm\n    severity: high\n"
        f"    action: redact\n    pattern: 'CUST-[0-9]{{6}}'\n    scope: {scope}\n"
    )
    return Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])


def test_an_unknown_answer_replayed_on_a_resumed_stream_meets_every_scoped_rule(tmp_path):
    """A server replays answers on a stream resumed with Last-Event-ID; one whose request
    the gateway no longer remembers (a client can push it out with answers of its own) may
    be any tool's answer, so rules scoped to a tool or a method read it. Elsewhere an
    unknown answer meets only the rules without such a scope."""
    p = crm_pipeline(tmp_path, "{direction: [s2c], methods: ['tools/call'], tools: ['crm_*']}")
    text = {"content": [{"type": "text", "text": "account CUST-123456"}]}
    resumed = ex(flow_id="g", session_id="S1", request_headers={"last-event-id": "ev-3"})
    m = result(dict(text), method=None, name=None, exchange=resumed)
    p.run(m)
    assert [f.rule for f in m.findings] == ["crm-account"]
    m = result(dict(text), method=None, name=None, exchange=ex(flow_id="h", session_id="S1"))
    p.run(m)
    assert m.findings == []
    m = result(dict(text), name="echo", exchange=resumed)  # (known: its own tool's rules)
    p.run(m)
    assert m.findings == []


def test_an_error_without_id_meets_the_rules_of_the_tool_it_answers(tmp_path):
    """The TypeScript SDK's server refuses a request it will not serve with HTTP 400 and
    ``"id": null`` (its client quotes the body in the error it throws): on the answer of a
    POST that carried one crm_* call, the rules scoped to crm_* read that error too."""
    scan = crm_pipeline(tmp_path, "{direction: [s2c], tools: ['crm_*']}")
    p = Pipeline([CorrelateStage(), *scan.stages])
    post = ex(flow_id="p")
    p.run(req({"name": "crm_export", "arguments": {}}, name="crm_export", exchange=post))
    err = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32000, "message": "Bad Request: no row for CUST-123456"},
    }
    m = Message(err, Direction.SERVER_TO_CLIENT, Kind.ERROR, post)
    p.run(m)
    assert m.name == "crm_export"
    assert m.payload["error"]["message"] == "Bad Request: no row for [REDACTED:custom_crm]"


def test_a_message_that_may_be_any_tool_s_meets_every_tool_scope(tmp_path):
    """A legacy progress notification whose token two calls in flight gave (correlate sets
    any_name): a rule scoped to crm_* reads it, as it reads crm_export's own progress."""
    p = crm_pipeline(tmp_path, "{direction: [s2c], tools: ['crm_*']}")

    def progress(any_name):
        m = Message(
            payload={"jsonrpc": "2.0", "method": "notifications/progress",
                     "params": {"progressToken": "T", "progress": 1, "message": "row CUST-654321"}},
            direction=Direction.SERVER_TO_CLIENT, kind=Kind.NOTIFICATION,
            exchange=ex(flow_id="g"), method="notifications/progress", any_name=any_name,
        )  # fmt: skip
        p.run(m)
        return [f.rule for f in m.findings]

    assert progress(True) == ["crm-account"]
    assert progress(False) == []


def test_a_2026_input_required_exchange_meets_the_rules_of_what_it_carries(tmp_path):
    """2026-07-28 multi round-trip: an elicitation (or sampling) request travels inside the
    tool's input_required result, and the user's answer inside the retried tools/call's
    inputResponses. Rules scoped to elicitation/create skipped both."""
    rule = tmp_path / "elicit.yaml"
    rule.write_text(
        """rules:
  - id: no-password-phishing
    type: custom_phish
    severity: high
    action: block
    pattern: '(?i)banking password'
    scope: {direction: [s2c], methods: ['elicitation/create']}
  - id: typed-account
    type: custom_crm
    severity: high
    action: redact
    pattern: 'CUST-[0-9]{6}'
    scope: {direction: [c2s], methods: ['elicitation/create'], tools: ['open_*']}
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    ask = {
        "resultType": "input_required",
        "inputRequests": {
            "who": {
                "method": "elicitation/create",
                "params": {"message": "enter your online banking password", "requestedSchema": {}},
            }
        },
        "requestState": "st-1",
    }
    m = result(ask, name="open_account")
    p.run(m)
    assert [f.rule for f in m.findings] == ["no-password-phishing"]
    # (a sampling request only: not an elicitation)
    msg = {"role": "user", "content": {"type": "text", "text": "banking password"}}
    sampling = {"method": "sampling/createMessage", "params": {"messages": [msg]}}
    m = result({"inputRequests": {"s": sampling}}, name="open_account")
    p.run(m)
    assert m.findings == []
    answer = {
        "name": "open_account",
        "arguments": {},
        "inputResponses": {"who": {"action": "accept", "content": {"account": "CUST-654321"}}},
        "requestState": "st-1",
    }
    m = req(answer, name="open_account")
    p.run(m)
    assert m.payload["params"]["inputResponses"]["who"]["content"]["account"] == (
        "[REDACTED:custom_crm]"
    )
    m = req(answer, name="close_account")  # (the rule's tool scope still holds)
    p.run(m)
    assert m.findings == []
    m = req({"name": "open_account", "arguments": {"a": "CUST-654321"}}, name="open_account")
    p.run(m)
    assert m.findings == []  # an ordinary call is not an elicitation answer
    # a hostile server's inputRequests entry whose method is no string: the rules still read
    # the result (a list there raised TypeError, unhashable: the whole result went unscanned
    # in mcp_fail_mode=open, refused as an internal error in closed)
    phish = {"method": "elicitation/create", "params": {"message": "your banking password"}}
    hostile = {"inputRequests": {"x": {"method": ["elicitation/create"]}, "who": phish}}
    m = result(hostile, name="open_account")
    p.run(m)
    assert [f.rule for f in m.findings] == ["no-password-phishing"]


@pytest.mark.parametrize(
    "uri",
    [
        "file:///srv/secrets/a.txt",
        "FILE:///srv/secrets/a.txt",
        "file://localhost/srv/secrets/a.txt",
        "file:///srv/public/../secrets/a.txt",
        "file:///srv/./secrets/a.txt",
        "file:\\\\\\srv\\secrets\\a.txt",
        "file:///srv/sec\trets/a.txt",
        " file:///srv/secrets/a.txt",
        "file:///srv//secrets/a.txt",  # a template capturing slashes opens the same file
        # macOS and Windows file systems ignore case: the same file there
        "file:///srv/SECRETS/a.txt",
        "file:///Srv/Secrets/A.TXT",
        "file:///srv/public/../Secrets/a.txt",
        # padded past 2 KB (not cached) and past 64 KB (not normalised: every scope applies)
        "file:///srv/public/" + "a/../" * 500 + "../secrets/a.txt",
        "file:///srv/" + "./" * 1100 + "secrets/a.txt",
        "file:///srv/public/" + "a/../" * 14000 + "../secrets/a.txt",
        # percent-encoded: the mcp 2.x SDK's resource templates decode what they capture
        # (file:///srv/{+path} reads secrets/a.txt in both, {name} reads secrets/a.txt in
        # the second), and its JSON-RPC layer hands them the URI as sent
        "file:///srv/%73ecrets/a.txt",
        "file:///srv/secrets%2Fa.txt",
        "file:///srv/%53ECRETS%2fa.txt",
        "file:///srv/public/..%2Fsecrets/a.txt",
        # a server that opens the path reads it whatever host, query or fragment the URI
        # names (red-team round 32)
        "file://127.0.0.1/srv/secrets/a.txt",
        "file://u@host./srv/secrets/a.txt",
        "file:///srv/secrets/a.txt?x=1",
        "file:///srv/secrets/a.txt#top",
    ],
)
def test_a_resource_scope_matches_the_uri_as_the_server_reads_it(tmp_path, uri):
    # the SDK servers parse the URI (WHATWG) before looking the resource up: each of these
    # is file:///srv/secrets/a.txt to them, and a rule scoped to it must apply
    rule = tmp_path / "scoped.yaml"
    rule.write_text(
        """rules:
  - id: no-secrets-dir
    type: custom_dir
    severity: high
    action: block
    pattern: '.+'
    scope: {methods: ['resources/read'], tools: ['file:///srv/secrets/*']}
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    m = req({"uri": uri}, method="resources/read", name=uri)
    p.run(m)
    assert m.action is Action.BLOCK
    m = req(
        {"uri": "file:///srv/public/a.txt"},
        method="resources/read",
        name="file:///srv/public/a.txt",
    )
    p.run(m)
    assert m.action is Action.PASS


def test_a_file_scope_written_percent_encoded_still_ignores_case(tmp_path):
    """A file: scope is also matched ignoring case (macOS and Windows), as the URI is
    written: the percent-decoded names added beside it took its place there, so a scope
    written with %20 (as the URI is sent) no longer applied to the same path in capitals."""
    rule = tmp_path / "scoped.yaml"
    rule.write_text(
        """rules:
  - id: no-docs-dir
    type: custom_dir
    severity: high
    action: block
    pattern: '.+'
    scope: {methods: ['resources/read'], tools: ['file:///Users/*/My%20Docs/*']}
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    for uri in ("file:///Users/ana/My%20Docs/a.txt", "file:///Users/ana/MY%20DOCS/a.txt"):
        m = req({"uri": uri}, method="resources/read", name=uri)
        p.run(m)
        assert m.action is Action.BLOCK, uri


@pytest.mark.parametrize(
    "tool",
    [
        "crm_export",
        "CRM_export",
        "Crm_Export",
        "CRM_EXPORT",
        # width- and accent-insensitive lookups (a tool table under MySQL 8's default
        # collation): red-team round 33
        "ｃｒｍ_export",
        "crm\u0301_export",
    ],
)
def test_a_tool_scope_also_matches_the_name_ignoring_case(tmp_path, tool):
    """A server that looks tools up ignoring case (the access policy reads names so) runs
    crm_export for CRM_export: its arguments and its result went past a rule scoped to
    crm_* unredacted, through a real mitmdump (red-team round 32)."""
    rule = tmp_path / "scoped.yaml"
    rule.write_text(
        """rules:
  - id: crm-email
    type: custom_crm_email
    severity: high
    action: redact
    pattern: '[a-z]+@customer[.]example'
    scope: {tools: ['crm_*']}
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    m = req({"name": tool, "arguments": {"q": "alice@customer.example"}}, name=tool)
    p.run(m)
    assert m.action is Action.REDACT and "alice@" not in orjson.dumps(m.payload).decode()
    m = result({"content": [{"type": "text", "text": "alice@customer.example"}]}, name=tool)
    p.run(m)
    assert m.action is Action.REDACT
    other = req({"name": "echo", "arguments": {"q": "alice@customer.example"}}, name="echo")
    p.run(other)
    assert other.action is Action.PASS  # still scoped


def test_redaction_styles(tmp_path):
    rule = tmp_path / "styles.yaml"
    rule.write_text(
        """rules:
  - id: p
    type: custom_p
    severity: low
    action: redact
    pattern: 'pp_[a-z0-9]{16}'
    redaction: {style: partial, keep_prefix: 3, keep_suffix: 4}
  - id: h
    type: custom_h
    severity: low
    action: redact
    pattern: 'hh_[a-z0-9]{16}'
    redaction: hash
"""
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage(b"k1")])
    m = req({"name": "x", "arguments": {"a": "pp_0123456789abcdef", "b": "hh_0123456789abcdef"}})
    p.run(m)
    args = m.payload["params"]["arguments"]
    assert args["a"] == "pp_************cdef"
    assert args["b"].startswith("[HMAC:custom_h:") and "0123" not in args["b"]
    m2 = req({"name": "x", "arguments": {"b": "hh_0123456789abcdef"}})
    p.run(m2)
    assert m2.payload["params"]["arguments"]["b"] == args["b"]  # stable: correlatable
    p3 = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage(b"other-key")])
    m3 = req({"name": "x", "arguments": {"b": "hh_0123456789abcdef"}})
    p3.run(m3)
    assert m3.payload["params"]["arguments"]["b"] != args["b"]  # keyed


def test_redact_key_from_environment(monkeypatch):
    monkeypatch.setenv("MCP_GATEWAY_REDACT_KEY", "from-env")
    a, b = ActStage(), ActStage(b"from-env")
    assert a._key == b._key
    monkeypatch.delenv("MCP_GATEWAY_REDACT_KEY")
    assert ActStage()._key != ActStage()._key  # random per instance/process


def test_spans_do_not_leak_into_scratch(pipeline):
    e = ex()
    m = req({"name": "x", "arguments": {"k": github_token()}}, exchange=e)
    pipeline.run(m)
    assert e.scratch.get(SPANS_KEY) == {}


def test_engine_swap_is_atomic(engine, tmp_path):
    stage = ScanStage(engine)
    p = Pipeline([stage, ActStage()])
    rule = tmp_path / "only.yaml"
    rule.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: low\n    action: log\n    pattern: 'xx_[0-9]{8}'\n"
    )
    stage.engine = Engine.load([str(rule)])
    m = req({"name": "x", "arguments": {"a": github_token(), "b": "xx_12345678"}})
    p.run(m)
    assert [f.rule for f in m.findings] == ["x"]


def test_big_and_odd_payloads_do_not_crash(pipeline):
    weird = {
        "a": None,
        "b": True,
        "c": 1.5,
        "d": [[[["deep"]]]],
        "e": "\udcff\x00binary\x7f",
        "n": 4539578763621486,
    }
    m = req({"name": "x", "arguments": weird})
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["credit_card"]  # long integers are scanned too
    m = result({"content": [{"type": "text", "text": "x" * 2_000_000}]})
    pipeline.run(m)
    assert m.findings == [] and m.action is Action.PASS


def test_many_findings_use_exact_offsets(pipeline):
    rows = [
        {"name": f"user{i}", "email": f"user{i}.x@acme-corp.io", "note": "ok"} for i in range(300)
    ]
    rows[150]["token"] = github_token()
    m = result(
        {"content": [{"type": "text", "text": "export"}], "structuredContent": {"rows": rows}}
    )
    pipeline.run(m)
    emails = [f for f in m.findings if f.type == "email"]
    assert len(emails) == 300
    assert {f.location for f in emails} == {
        f"/result/structuredContent/rows/{i}/email" for i in range(300)
    }
    assert (
        m.payload["result"]["structuredContent"]["rows"][150]["token"] == "[REDACTED:github_token]"
    )


def test_the_bytes_a_message_arrived_as_are_scanned(pipeline):
    key = "sk-proj-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9KqW"
    # as received: pretty-printed, non-ASCII, an escaped solidus; the scan reads these bytes
    raw = (
        '{\n  "jsonrpc": "2.0", "id": 7,\n  "result": {"content": [{"type": "text",\n'
        f'   "text": "ünïcødé ✓ https:\\/\\/x.io OPENAI_API_KEY={key} done"}}]}}\n}}'
    ).encode()
    m = result(None)
    m.payload = orjson.loads(raw)
    m.raw = raw
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["openai_api_key"]
    text = m.payload["result"]["content"][0]["text"]
    assert key not in text and text.startswith("ünïcødé ✓ https://x.io OPENAI_API_KEY=")
    # a \u escape in the bytes: the canonical serialization is scanned instead
    raw2 = raw.replace(b"OPENAI_API_KEY=sk", b"OPENAI_API_KEY=\\u0073k")
    m2 = result(None)
    m2.payload = orjson.loads(raw2)
    m2.raw = raw2
    pipeline.run(m2)
    assert [f.type for f in m2.findings] == ["openai_api_key"]
    assert key not in orjson.dumps(m2.payload).decode()


def test_a_secret_disguised_by_one_percent_escape_is_redacted(pipeline):
    """The only thing hiding the token is %5F: no anchor hit on the raw message at all, so
    the percent-decoded view must be built anyway (it was not: the token went through)."""
    tok = github_token()
    url = "https://api.example.com/x?access=" + tok.replace("_", "%5F")
    m = req({"name": "fetch", "arguments": {"url": url}})
    pipeline.run(m)
    assert [f.rule for f in m.findings] == ["github-token"]
    out = m.payload["params"]["arguments"]["url"]
    assert tok[4:] not in out and out.startswith("https://api.example.com/x?access=")


@pytest.mark.parametrize(
    "hide",
    [
        pytest.param(lambda t: t.replace("_", "&#95;"), id="decimal-reference"),
        pytest.param(lambda t: t.replace("_", "&#x5F;"), id="hex-reference"),
        pytest.param(lambda t: t.replace("_", "&lowbar;"), id="named-reference"),
        pytest.param(lambda t: "".join(f"&#{ord(c)};" for c in t), id="all-references"),
        pytest.param(lambda t: t.replace("_", "\\x5f"), id="backslash-x"),
        pytest.param(lambda t: t.replace("_", "\\u{5f}"), id="backslash-u-braces"),
        # HTML converted to Markdown (mcp-server-fetch's markdownify, turndown) escapes "_"
        pytest.param(lambda t: t.replace("_", "\\_"), id="markdown-escape"),
        # a reference to an invisible character, or a <wbr>, inside it: a page shows the token
        # whole (red-team round 32: each went through a real mitmdump)
        pytest.param(lambda t: t[:12] + "&shy;" + t[12:], id="shy"),
        pytest.param(lambda t: t[:12] + "&#173;" + t[12:], id="shy-decimal"),
        pytest.param(lambda t: t[:12] + "&#x200B;" + t[12:], id="zero-width-hex"),
        pytest.param(lambda t: t[:12] + "&ZeroWidthSpace;" + t[12:], id="zero-width-named"),
        pytest.param(lambda t: "&zwj;".join(t), id="zwj-between-all"),
        pytest.param(lambda t: t[:12] + "<wbr>" + t[12:20] + "<WBR/>" + t[20:], id="wbr"),
        # every character the unicode view drops, and references without their ";" (as
        # browsers read them in a page's text); each went unseen (review of round 32)
        pytest.param(lambda t: t[:12] + "&#847;" + t[12:], id="combining-grapheme-joiner"),
        pytest.param(lambda t: t[:12] + "&#x180E;" + t[12:], id="mongolian-separator"),
        pytest.param(lambda t: t[:12] + "&#xfe0f;" + t[12:], id="variation-selector"),
        pytest.param(lambda t: t[:12] + "&#x202E;" + t[12:], id="bidi-override"),
        pytest.param(lambda t: t[:12] + "&#xE0001;" + t[12:], id="language-tag"),
        pytest.param(lambda t: t[:12] + "&#113824;" + t[12:], id="shorthand-format"),
        pytest.param(lambda t: t[:12] + "&#8203" + t[12:], id="zero-width-no-semicolon"),
        pytest.param(lambda t: t[:12] + "&shy" + t[12:], id="shy-no-semicolon"),
    ],
)
def test_a_token_hidden_by_html_references_or_escapes_is_redacted(pipeline, hide):
    # a browser, a model or a string literal reads these as the token itself
    tok = github_token()
    hidden = hide(tok)
    m = req({"name": "post", "arguments": {"html": f"<p>key: <b>{hidden}</b> &amp; more</p>"}})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["github_token"]
    html = m.payload["params"]["arguments"]["html"]
    assert html == "<p>key: <b>[REDACTED:github_token]</b> &amp; more</p>"


def test_a_markdown_escaped_token_in_a_fetched_page_is_redacted(pipeline):
    """mcp-server-fetch turns a page into Markdown, whose converter writes every "_" as "\\_":
    the model reads ``ghp\\_…`` as the token, which reached it unredacted."""
    tok = github_token()
    hidden = tok.replace("_", "\\_")
    page = f"Leaked in CI log: export GITHUB\\_TOKEN={hidden} by mistake."
    m = result({"content": [{"type": "text", "text": page}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["github_token"]
    text = reserialize(m)["result"]["content"][0]["text"]
    assert text == "Leaked in CI log: export GITHUB\\_TOKEN=[REDACTED:github_token] by mistake."


@pytest.mark.parametrize("brk", ["=\r\n", "=\n"], ids=["crlf", "lf"])
def test_a_token_across_a_quoted_printable_soft_line_break_is_redacted(pipeline, engine, brk):
    """An e-mail's raw source (a mail server's tool returns it so) breaks lines at 76
    characters with "=": a token across such a break reached the model, which joins the
    lines, unread (red-team round 33)."""
    import quopri

    tok = github_token()
    body = "Subject: CI\r\n\r\nHere is the deploy token for the pipeline, keep it: " + tok
    qp = quopri.encodestring(body.encode()).decode().replace("=\r\n", brk)
    tail = qp.rsplit(brk, 1)[1]
    assert tok not in qp and tok.endswith(tail) and len(tail) > 4  # broken inside the token
    # the JSON text (escaped line breaks) and a string alone (the walk over many findings)
    assert [d.type for d in engine.scan_text(qp)] == ["github_token"]
    m = result({"content": [{"type": "text", "text": qp}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["github_token"]
    text = m.payload["result"]["content"][0]["text"]
    assert text.endswith("keep it: [REDACTED:github_token]") and tail not in text


@pytest.mark.parametrize("cut", [4, 11, 39])
def test_a_token_cut_across_two_text_blocks_is_redacted(pipeline, cut):
    """A tool that returns its output in fixed-size chunks, one text block each: hosts hand
    the blocks to the model one after the other, and a token cut between two of them
    reached it unread (red-team round 33). Both parts go; the reader sees one placeholder."""
    tok = github_token()
    blocks = [
        {"type": "text", "text": "log line 1\nexport GH=" + tok[:cut]},
        {"type": "text", "text": tok[cut:] + "\nlog line 2"},
        {"type": "text", "text": "done"},
    ]
    m = result({"content": blocks, "isError": False})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [(f.type, f.location) for f in m.findings] == [
        ("github_token", "/result/content/0/text"),
        ("github_token", "/result/content/1/text"),
    ]
    assert m.action is Action.REDACT
    content = reserialize(m)["result"]["content"]
    assert [c["text"] for c in content] == [
        "log line 1\nexport GH=[REDACTED:github_token]",
        "\nlog line 2",
        "done",
    ]


@pytest.mark.parametrize("size", [8, 16, 32])
def test_a_token_cut_across_many_small_text_blocks_is_redacted(pipeline, size):
    """Chunks smaller than the token: it spans three blocks or more (a live FastMCP tool
    returning 32-character chunks kept the last part of its token when only pairs of blocks
    were read)."""
    tok = github_token()
    out = "build log...\nexport GH_TOKEN=" + tok + "\nok\n"
    blocks = [{"type": "text", "text": out[i : i + size]} for i in range(0, len(out), size)]
    m = result({"content": blocks})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    joined = "".join(c["text"] for c in reserialize(m)["result"]["content"])
    assert joined.count("[REDACTED:") == 1 and not any(tok[i : i + 5] in joined for i in range(36))
    assert joined.endswith("\nok\n")


def test_fastmcps_copy_of_the_blocks_in_structured_content_is_read_joined_too(pipeline):
    """FastMCP returns a tool's list of blocks in structuredContent as well, wrapped as
    {"result": [...]}: the copy kept the token whole-but-split after content was redacted
    (live, through a real mitmdump)."""
    tok = github_token()
    out = "export GH_TOKEN=" + tok + "\nok"
    blocks = [{"type": "text", "text": out[i : i + 16]} for i in range(0, len(out), 16)]
    copy = [dict(b, annotations=None) for b in blocks]
    m = result({"content": blocks, "structuredContent": {"result": copy}})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    res = reserialize(m)["result"]
    for got in (res["content"], res["structuredContent"]["result"]):
        assert "".join(b["text"] for b in got) == "export GH_TOKEN=[REDACTED:github_token]\nok"


def test_a_long_block_between_keeps_its_middle(pipeline):
    """A block longer than the window is read by its two ends, each with its neighbour: a
    token cut at either end is found, its middle is left to its own scan, never joined."""
    tok, tok2 = github_token(seed=5), github_token(seed=6)
    long = tok[20:] + " middle " + "x" * 2000 + " end " + tok2[:9]
    blocks = [
        {"type": "text", "text": "a " + tok[:20]},
        {"type": "text", "text": long},
        {"type": "text", "text": tok2[9:] + " b"},
    ]
    m = result({"content": blocks})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.location for f in m.findings] == [f"/result/content/{i}/text" for i in (0, 1, 1, 2)]
    texts = [c["text"] for c in reserialize(m)["result"]["content"]]
    assert texts[0] == "a [REDACTED:github_token]"
    assert texts[1] == " middle " + "x" * 2000 + " end [REDACTED:github_token]"
    assert texts[2] == " b"


def test_a_token_cut_across_a_clients_text_blocks_is_redacted(pipeline):
    """The same join in a client's message to a server: a sampling answer's content list
    (the model's words, which a prompt injection may have filled with the user's token)."""
    tok = github_token(prefix="ghs")
    m = Message(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "result": {
                "role": "assistant",
                "model": "m",
                "content": [{"type": "text", "text": tok[:20]}, {"type": "text", "text": tok[20:]}],
            },
        },
        Direction.CLIENT_TO_SERVER,
        Kind.RESULT,
        ex(),
        id=7,
        method="sampling/createMessage",
    )
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert m.action is Action.REDACT
    content = reserialize(m)["result"]["content"]
    assert [c["text"] for c in content] == ["[REDACTED:github_token]", ""]


def test_text_blocks_that_only_meet_are_left_alone(pipeline):
    tok = github_token()
    blocks = [
        {"type": "text", "text": "ghp_"},  # a prefix alone, then prose
        {"type": "text", "text": "is the prefix of classic GitHub tokens, see the docs"},
        {"type": "text", "text": "key: " + tok},  # whole in its block: found once, there
        {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
        {"type": "text", "text": "end"},
    ]
    m = result({"content": blocks})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.location for f in m.findings] == ["/result/content/2/text"]
    texts = [c.get("text") for c in reserialize(m)["result"]["content"]]
    assert texts == [
        "ghp_",
        "is the prefix of classic GitHub tokens, see the docs",
        "key: [REDACTED:github_token]",
        None,
        "end",
    ]


def test_quoted_printable_breaks_that_hide_nothing_are_left_alone(engine):
    mail = (
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nHello team, the release note=\r\n"
        "s are attached; AKIA numbers and ghp tokens are not in th=\r\nis mail. a=3Db=\r\n"
        "c, x=\r\n\r\nend, base64 pad QUJD=\nREVG next\r\n"
    )
    assert engine.scan_text(mail * 20) == []


def test_the_invisible_spans_are_those_the_unicode_view_drops():
    from mcp_gateway.scan import views

    drops = {
        c
        for c in range(1, 0x20000)
        if views._UNICODE.fullmatch(chr(c)) and not views._unicode_text(chr(c))
    }
    assert drops == set(views._INVISIBLE_CODES)


def test_invisible_references_and_wbr_that_hide_nothing_are_left_alone(engine):
    page = "hyphen&shy;ation, a<wbr>b, <wbr> alone, &#8203; &zwj; &NoBreak; in prose.\n"
    assert engine.scan_text(page * 20) == []


def test_markdown_escapes_that_hide_nothing_are_left_alone(engine):
    md = (
        "\\- item and \\* bullet, my\\_snake\\_case\\_name, 1\\. first, a\\*b\\*c, "
        "api\\.example\\.com, `^ghp\\_[A-Za-z0-9]{36}$`, C:\\\\Users\\\\dev\\\\.config, "
        "commit 3f9a1c2e8b7d6f5a4c3b2a1908f7e6d5c4b3a291, token\\_store\\_v2.py\n"
    )
    assert engine.scan_text(md * 20) == []


def test_html_that_hides_nothing_is_left_alone(engine):
    page = "<p>Tom &amp; Jerry&#39;s &lt;b&gt; &quot;caf&eacute;&quot; &#x27;x&#x27;&nbsp;ok</p>"
    assert engine.scan_text(page * 50) == []
    assert engine._hits(page.encode()) == []  # no escape view is even built for it


def test_a_token_percent_encoded_twice_is_redacted(pipeline):
    # a URL carried in another URL's query (a redirect target) is encoded twice
    tok = github_token()
    inner = "https://api.example.com/x?access=" + tok.replace("_", "%5F")
    url = "https://login.example.com/?next=" + inner.replace("%", "%25").replace(":", "%3A")
    m = req({"name": "fetch", "arguments": {"url": url}})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.rule for f in m.findings] == ["github-token"]
    out = m.payload["params"]["arguments"]["url"]
    assert tok[4:] not in out and out.startswith("https://login.example.com/?next=https%3A")


def test_base64_of_base64_is_seen_through_and_redacted(pipeline):
    # one more level of base64 (or hex of base64) hides nothing; three levels are not tried
    tok = github_token()
    inner = base64.b64encode(f"t={tok}".encode())
    for blob in (base64.b64encode(inner).decode(), inner.hex()):
        m = result({"content": [{"type": "text", "text": f"blob: {blob}"}]})
        pipeline.run(m)
        assert [f.type for f in m.findings] == ["github_token"], blob
        text = reserialize(m)["result"]["content"][0]["text"]
        new_blob = text.removeprefix("blob: ")
        outer = bytes.fromhex(new_blob) if blob == inner.hex() else base64.b64decode(new_blob)
        assert outer.decode() == "[REDACTED:github_token]"


def test_log_rule_matches_are_capped_per_message_and_the_cap_is_recorded():
    eng = Engine.load()
    eng.finding_cap = 50
    p = Pipeline([ScanStage(eng), ActStage(b"test-key")])
    emails = " ".join(f"user{i}@example-corp{i % 7}.com" for i in range(400))
    tokens = " ".join(github_token(seed=i) for i in range(60))
    m = result({"content": [{"type": "text", "text": emails + " " + tokens}]})
    p.run(m)
    by_rule: dict[str, list] = {}
    for f in m.findings:
        by_rule.setdefault(f.rule, []).append(f)
    email = by_rule["email"]
    assert len(email) == 51  # 50 examined, then one that says the rest were not
    assert email[-1].location == "" and "mcp_max_findings" in email[-1].masked
    # a redact rule may find ten times as many: every token is gone
    assert len(by_rule["github-token"]) == 60
    text = m.payload["result"]["content"][0]["text"]
    assert "ghp_" not in text and text.count("[REDACTED:github_token]") == 60
    assert "user399@example-corp" in text  # logged, not changed
    # without a cap (the CLI) every match is reported
    eng.finding_cap = None
    m = result({"content": [{"type": "text", "text": emails}]})
    ScanStage(eng).process(m)
    assert len(m.findings) == 400


@pytest.mark.parametrize("shape", ["one string", "a string each"])
def test_a_message_with_more_secrets_than_a_redact_rule_may_find_is_blocked_whole(shape):
    """Redacting 150,000 tokens of one 6 MB request took the event loop 3-5 s (and wrote
    150,000 audit rows). A redact rule finds ten times mcp_max_findings in one message, its
    strings all counted together; past that the message is blocked, not half redacted."""
    eng = Engine.load()
    eng.finding_cap = 5
    p = Pipeline([ScanStage(eng), ActStage(b"test-key")])
    toks = [github_token(seed=i) for i in range(200)]

    def message(n):
        if shape == "one string":
            return req({"name": "echo", "arguments": {"text": " ".join(toks[:n])}})
        return req({"name": "echo", "arguments": {"items": toks[:n]}})

    m = message(50)  # at the cap: redacted
    p.run(m)
    assert m.action is not Action.BLOCK and "ghp_" not in orjson.dumps(m.payload).decode()
    assert len(m.findings) == 50
    m = message(200)
    t0 = time.process_time()
    p.run(m)
    assert m.action is Action.BLOCK and "github-token" in m.refusal.message
    assert len(m.findings) == 51 and m.findings[-1].action == "block"
    assert "mcp_max_findings" in m.findings[-1].masked
    # the next message starts with the whole cap again
    m = message(3)
    p.run(m)
    assert m.action is not Action.BLOCK and len(m.findings) == 3
    assert time.process_time() - t0 < 5


def test_a_decoded_view_does_not_count_the_texts_matches_twice():
    eng = Engine.load()
    eng.finding_cap = 5  # a redact rule may find 50
    p = Pipeline([ScanStage(eng), ActStage(b"k")])
    toks = " ".join(github_token(seed=i) for i in range(30))
    m = req({"name": "echo", "arguments": {"text": toks, "url": "https://x.test/a%20b"}})
    p.run(m)
    assert m.action is not Action.BLOCK and "ghp_" not in orjson.dumps(m.payload).decode()


def test_the_elements_of_one_batch_share_the_caps():
    """A batch of 1000 elements, each just under a redact rule's cap, held the event loop
    like one message of them all."""
    eng = Engine.load()
    eng.finding_cap = 5  # a redact rule may find 50
    p = Pipeline([ScanStage(eng), ActStage(b"k")])
    shared = ex()
    outcome = []
    for i in range(3):
        toks = " ".join(github_token(seed=100 * i + k) for k in range(30))
        m = req({"name": "echo", "arguments": {"text": toks}}, exchange=shared)
        m.batch_index = i
        p.run(m)
        outcome.append(m.action is Action.BLOCK)
    assert outcome == [False, True, True]
    m = req({"name": "echo", "arguments": {"text": github_token(seed=999)}}, exchange=ex())
    p.run(m)  # another body: the whole cap again
    assert m.action is not Action.BLOCK and len(m.findings) == 1


def test_upstream_credentials_the_gateway_injected_never_reach_a_client():
    """A server that echoes its request headers (or quotes its URL in an error) would show
    the client the credential the gateway put there for it, which the client never had."""
    from mcp_gateway import secretref

    secretref.remember_injected(
        "up-4711-plain-value", "Bearer up-4711-plain-value", "up-4711/plain", "up-4711%2Fplain"
    )
    try:
        for eng in (Engine.load(), Engine(RuleSet([], []))):  # also with no rules at all
            p = Pipeline([ScanStage(eng), ActStage(b"k")])
            headers = {"authorization": "Bearer up-4711-plain-value", "host": "x"}
            m = result({"content": [{"type": "text", "text": orjson.dumps(headers).decode()}]})
            m.raw = orjson.dumps(m.payload)
            p.run(m)
            text = m.payload["result"]["content"][0]["text"]
            assert "up-4711" not in text and "[REDACTED:generic_secret]" in text
            assert {f.rule for f in m.findings} >= {"upstream-credential"}
            # written as JSON in a string writes it (PHP: "\\/"), and a URL in lower-case hex
            for shown in (
                '{"x-tenant": "up-4711\\/plain"}',
                "GET /mcp?key=up-4711%2fplain",
                "GET /mcp?key=up-4711%2Fplain",
            ):
                m = result({"content": [{"type": "text", "text": shown}]})
                p.run(m)
                assert "4711" not in m.payload["result"]["content"][0]["text"], shown
            # not in what the client sends: it is the client's own business
            m = req({"name": "echo", "arguments": {"t": "up-4711-plain-value"}})
            p.run(m)
            assert "upstream-credential" not in {f.rule for f in m.findings}
    finally:
        secretref.forget_injected()


def test_redaction_of_many_values_in_one_string_and_of_overlapping_spans():
    from mcp_gateway.scan.stage import Span

    act = ActStage(b"k")
    toks = [github_token(seed=i) for i in range(3000)]
    m = result(
        {"content": [{"type": "text", "text": "\n".join(f"t{i} {t}" for i, t in enumerate(toks))}]}
    )
    Pipeline([ScanStage(Engine.load()), act]).run(m)
    text = m.payload["result"]["content"][0]["text"]
    assert text.split("\n")[:2] == ["t0 [REDACTED:github_token]", "t1 [REDACTED:github_token]"]
    assert text.count("[REDACTED:github_token]") == 3000 and "ghp_" not in text

    # two spans that overlap (two rules' values located in one string): the union goes,
    # never the tail of one of them
    box = {"s": "aaaSECRETbbb ccc"}

    def span(s, e):
        return Span(box, "s", s, e, box["s"][s:e], "", (), None, "t", "redact", "/s")

    assert act._scrub(None, [span(6, 12), span(3, 9)])
    assert box["s"] == "aaa[REDACTED:t] ccc"


@pytest.mark.parametrize("fmt", ["gzip", "zlib", "plain"])
@pytest.mark.parametrize("lead", [0, 1, 2])
def test_compressed_and_plain_blobs_are_redacted_and_stay_valid_base64(pipeline, fmt, lead):
    """A resource's `blob` holding a gzip or zlib file is inflated and scanned; the redacted
    blob is compressed again in the same format. The base64 stays strictly valid whatever
    its new length (an unpadded result once broke strict decoders)."""
    import gzip
    import zlib

    tok = github_token()
    doc = ("#" * lead + "[deploy]\nuser = ci\ntoken = " + tok + "\n").encode()
    pack, unpack = {
        "gzip": (lambda d: gzip.compress(d, mtime=0), gzip.decompress),
        "zlib": (zlib.compress, zlib.decompress),
        "plain": (lambda d: d, lambda d: d),
    }[fmt]
    blob = base64.b64encode(pack(doc)).decode()
    m = result({"contents": [{"uri": "file:///etc/deploy.conf.gz", "blob": blob}]})
    pipeline.run(m)
    out = unpack(base64.b64decode(m.payload["result"]["contents"][0]["blob"], validate=True))
    assert out == doc.replace(tok.encode(), b"[REDACTED:github_token]")
    assert [(f.rule, f.location) for f in m.findings] == [
        ("github-token", "/result/contents/0/blob")
    ]


@pytest.mark.parametrize("codec", ["cp1252", "latin-1", "utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("fmt", ["gzip", "plain"])
def test_a_text_blob_in_another_charset_is_redacted_in_that_charset(pipeline, codec, fmt):
    """A text file that is no UTF-8 (Windows-1252, Latin-1, UTF-16 as PowerShell 5 writes
    it) is what servers send as a blob; it once passed unread, its credentials and all. Its
    secrets are redacted, and the blob stays valid base64 of the same charset, every other
    byte as it was."""
    import gzip

    tok = github_token()
    text = f"; Zugangsdaten für den Dienst\n[deploy]\ntoken = {tok}\nuser = ci\n"
    doc = text.encode(codec)
    pack, unpack = {
        "gzip": (lambda d: gzip.compress(d, mtime=0), gzip.decompress),
        "plain": (lambda d: d, lambda d: d),
    }[fmt]
    blob = base64.b64encode(pack(doc)).decode()
    m = result({"contents": [{"uri": "file:///c.ini", "mimeType": "text/plain", "blob": blob}]})
    pipeline.run(m)
    out = unpack(base64.b64decode(m.payload["result"]["contents"][0]["blob"], validate=True))
    assert out == text.replace(tok, "[REDACTED:github_token]").encode(codec)
    assert [(f.rule, f.location) for f in m.findings] == [
        ("github-token", "/result/contents/0/blob")
    ]


def test_binary_blobs_are_still_no_text(pipeline):
    # random bytes and a PNG: not read as 8-bit text (no findings, the blob unchanged)
    import random

    rnd = random.Random(7)
    for data in (
        bytes(rnd.randrange(256) for _ in range(3000)),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rnd.randrange(256) for _ in range(500)),
    ):
        blob = base64.b64encode(data).decode()
        m = result({"contents": [{"uri": "file:///a.bin", "blob": blob}]})
        pipeline.run(m)
        assert m.payload["result"]["contents"][0]["blob"] == blob and not m.findings


def test_a_compression_bomb_is_not_inflated_past_the_bound(pipeline):
    import gzip

    from mcp_gateway.scan.engine import MAX_INFLATE, inflate

    bomb = gzip.compress(b"a" * (MAX_INFLATE + 1), mtime=0)
    assert inflate(bomb) is None and inflate(bomb[:-8]) is None  # too big; cut short
    assert inflate(gzip.compress(b"fine") + b"\0\0") == (b"fine", b"\0\0")
    blob = base64.b64encode(bomb).decode()
    m = result({"contents": [{"uri": "file:///a.gz", "blob": blob}]})
    pipeline.run(m)
    assert m.payload["result"]["contents"][0]["blob"] == blob and not m.findings


def test_many_compressed_blobs_share_one_inflate_budget(engine, monkeypatch):
    """Each blob is bounded by MAX_INFLATE, and all of them in one scan by
    MAX_INFLATE_PER_SCAN: 100 small bombs cost 30 s before. Blobs inside inflated text are
    not inflated again."""
    import gzip

    from mcp_gateway.scan import engine as E

    inflated: list[int] = []
    real = E.inflate

    def counting(raw, limit=E.MAX_INFLATE, spent=None):
        mine = [0]
        got = real(raw, limit, mine)
        inflated.append(mine[0])
        if spent is not None:
            spent[0] += mine[0]
        return got

    monkeypatch.setattr(E, "inflate", counting)
    monkeypatch.setattr(E, "MAX_INFLATE", 1 << 16)
    monkeypatch.setattr(E, "MAX_INFLATE_PER_SCAN", 1 << 18)
    bombs = [
        base64.b64encode(gzip.compress(f"{i:06d}\n".encode() + b"a" * 60000, mtime=0)).decode()
        for i in range(40)
    ]
    inner = base64.b64encode(gzip.compress(" ".join(bombs[:3]).encode(), mtime=0)).decode()
    m = result({"contents": [{"uri": f"file:///{i}.gz", "blob": b} for i, b in enumerate(bombs)]
                + [{"uri": "file:///nested.gz", "blob": inner}]})  # fmt: skip
    ScanStage(engine).process(m)
    assert sum(inflated) <= (1 << 18) + (1 << 16)
    assert len(inflated) <= 6


def test_text_that_starts_like_zlib_data_is_still_decoded(pipeline):
    # "x^" is 78 5e, a zlib header: not inflatable, so it is read as the text it is
    tok = github_token()
    blob = base64.b64encode(f"x^2 + y^2; token = {tok}\n".encode()).decode()
    m = result({"contents": [{"uri": "file:///notes.txt", "blob": blob}]})
    pipeline.run(m)
    assert [f.rule for f in m.findings] == ["github-token"]
    out = base64.b64decode(m.payload["result"]["contents"][0]["blob"]).decode()
    assert out == "x^2 + y^2; token = [REDACTED:github_token]\n"


def test_every_member_of_a_multi_member_gzip_file_is_scanned_and_kept(pipeline):
    import gzip

    tok = github_token()
    blob = base64.b64encode(
        gzip.compress(b"header\n", mtime=0) + gzip.compress(f"token={tok}\n".encode(), mtime=0)
    ).decode()
    m = result({"contents": [{"uri": "file:///two.gz", "blob": blob}]})
    pipeline.run(m)
    out = gzip.decompress(base64.b64decode(m.payload["result"]["contents"][0]["blob"]))
    assert out == b"header\ntoken=[REDACTED:github_token]\n"


def test_a_secret_in_a_member_name_is_blocked_however_many_candidates(pipeline):
    """Past 32 findings or many candidates the stage walks the strings; member names must be
    scanned there too (a name cannot be rewritten, so the message is blocked)."""
    import uuid

    tok = github_token()
    noise = "\n".join(str(uuid.UUID(int=i * 7919 + 17)) for i in range(300))
    m = result(
        {
            "content": [{"type": "text", "text": noise}],
            "structuredContent": {"env": {f"t {tok}": True}},
        }
    )
    pipeline.run(m)
    assert [(f.rule, f.action, f.location) for f in m.findings] == [
        ("github-token", "block", f"/result/structuredContent/env/t ghp_…{tok[-2:]}")
    ]  # (the location masks the name: the audit records it)
    assert m.stopped


def test_exactly_the_cap_of_matches_is_not_reported_as_capped():
    eng = Engine.load()
    eng.finding_cap = 5
    for n, want in ((5, 5), (6, 6)):
        m = result(
            {
                "content": [
                    {
                        "type": "text",
                        "text": " ".join(f"u{i}@corp{i}.com" for i in range(n)),
                    }
                ]
            }
        )
        ScanStage(eng).process(m)
        assert len(m.findings) == want, n
        assert ("mcp_max_findings" in m.findings[-1].masked) == (n > 5)


def _echoed(text, sc_text=None, key="result"):
    """A FastMCP tool result: the text as a content block and again as structuredContent."""
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": {key: text if sc_text is None else sc_text},
        "isError": False,
    }


def test_a_long_result_echoed_in_structured_content_is_scanned_once_and_redacted_twice(
    pipeline, engine, monkeypatch
):
    token = github_token()
    text = "log line ünïcødé\n" * 400 + f"deploy with {token}\n" + "tail\n" * 100
    scanned: list[bytes] = []
    real = engine._hits
    monkeypatch.setattr(engine, "_hits", lambda data: scanned.append(bytes(data)) or real(data))
    m = result(_echoed(text))
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    # one Hyperscan pass, over a text that holds the copy once
    assert len(scanned) == 1 and scanned[0].count(b"deploy with") == 1
    assert {f.location for f in m.findings} == {
        "/result/content/0/text",
        "/result/structuredContent/result",
    }
    res = reserialize(m)["result"]
    assert token not in orjson.dumps(res).decode()
    assert res["content"][0]["text"] == res["structuredContent"]["result"]
    assert "deploy with [REDACTED:github_token]" in res["content"][0]["text"]


def test_an_echoed_result_with_many_candidates_is_redacted_in_both_copies(pipeline):
    token = github_token()
    lines = [f"user{i}.x@acme-corp.io" for i in range(600)]
    lines[300] += f" key {token}"
    m = result(_echoed("\n".join(lines)))
    pipeline.run(m)
    emails = {f.location for f in m.findings if f.type == "email"}
    assert emails == {"/result/content/0/text", "/result/structuredContent/result"}
    assert sum(f.type == "email" for f in m.findings) == 1200
    res = reserialize(m)["result"]
    assert token not in orjson.dumps(res).decode()
    assert res["content"][0]["text"] == res["structuredContent"]["result"]


@pytest.mark.parametrize(
    "shape",
    ["different text", "other key", "short text"],
)
def test_structured_content_that_is_not_an_exact_echo_is_scanned_itself(pipeline, shape):
    token = github_token()
    text = "plain output line\n" * 400
    if shape == "different text":
        res = _echoed(text, sc_text=text + f"token {token}")
    elif shape == "other key":  # the key is context a rule may need: never skipped
        res = _echoed(text, key="api_token")
        res["structuredContent"]["api_token"] = text + token
    else:
        res = _echoed(f"token {token}")
    m = result(res)
    pipeline.run(m)
    assert any(f.type == "github_token" for f in m.findings)
    assert token not in orjson.dumps(m.payload).decode()


def _acme_pipeline(tmp_path, action="redact"):
    rule = tmp_path / "acme.yaml"
    rule.write_text(
        f"""rules:
  - id: acme-key
    type: custom_acme
    severity: high
    action: {action}
    pattern: 'acme_[a-z0-9]{{16}}'
"""
    )
    return Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])


def test_protocol_identifiers_are_recorded_never_rewritten(tmp_path):
    # A progress token, a cursor or a task id is an opaque value the peer hands back: rewriting
    # one loses the client its progress notifications or its next page, and hides nothing.
    p = _acme_pipeline(tmp_path)
    tok, other = "acme_0123456789abcdef", "acme_fedcba9876543210"
    m = req({"name": "run", "arguments": {"k": other}, "_meta": {"progressToken": tok}})
    p.run(m)
    assert sorted((f.location, f.action) for f in m.findings) == [
        ("/params/_meta/progressToken", "log"),
        ("/params/arguments/k", "redact"),
    ]
    assert m.payload["params"]["_meta"]["progressToken"] == tok
    assert m.payload["params"]["arguments"]["k"] == "[REDACTED:custom_acme]"

    n = Message(
        {"jsonrpc": "2.0", "method": "notifications/progress",
         "params": {"progressToken": tok, "progress": 1, "message": f"step {other}"}},
        Direction.SERVER_TO_CLIENT, Kind.NOTIFICATION, ex(), method="notifications/progress",
    )  # fmt: skip
    p.run(n)
    assert n.payload["params"]["progressToken"] == tok
    assert n.payload["params"]["message"] == "step [REDACTED:custom_acme]"

    r = result({"tools": [], "nextCursor": tok}, method="tools/list")
    p.run(r)
    assert r.payload["result"]["nextCursor"] == tok and not r.modified
    assert [(f.location, f.action) for f in r.findings] == [("/result/nextCursor", "log")]
    r = result({"resultType": "input_required", "requestState": tok}, method="tools/call")
    p.run(r)
    assert r.payload["result"]["requestState"] == tok and not r.modified
    for params in (
        {"cursor": tok},
        {"taskId": tok},
        {"requestId": tok, "reason": "x"},
        {"name": "run", "requestState": tok},
    ):
        m = req(params, method="tasks/list", name=None)
        p.run(m)
        assert m.payload["params"] == params and not m.modified
        assert [f.action for f in m.findings] == ["log"]
    m = req(None, raw=orjson.dumps({"jsonrpc": "2.0", "id": tok, "method": "ping"}))
    p.run(m)
    assert m.payload["id"] == tok and not m.modified


def test_an_event_subscriptions_webhook_secret_reaches_the_server(pipeline):
    """MCP Events (SEP-3415: ChatGPT, the AI SDK's ``experimental_events``): ``events/subscribe``
    hands the server ``delivery.secret``, a Standard Webhooks key (``whsec_`` + base64 of 24-64
    random bytes) the client made for this subscription, which the server signs its deliveries
    with. It read as a Stripe webhook secret and was redacted: the AI SDK's subscribe failed
    (a server checking the key refused ``[REDACTED:stripe_key]=``), and a server that took it
    would have signed every delivery with the placeholder, which the client rejects."""
    secret = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()
    tok = github_token()
    params = {
        "name": "ticket.created",
        "arguments": {"project": tok},
        "delivery": {"mode": "webhook", "url": "https://app.example/hooks/mcp", "secret": secret},
    }
    m = req(params, method="events/subscribe", name=None)
    pipeline.run(m)
    assert m.payload["params"]["delivery"]["secret"] == secret
    assert m.payload["params"]["arguments"]["project"] == "[REDACTED:github_token]"
    assert {(f.location, f.action) for f in m.findings} == {
        ("/params/delivery/secret", "log"),
        ("/params/arguments/project", "redact"),
    }
    # only there: the same member of another method, and a tool's argument, are redacted
    for method, p in (
        ("events/unsubscribe", {"name": "x", "delivery": {"secret": secret}}),
        ("tools/call", {"name": "run", "arguments": {"delivery": {"secret": secret}}}),
    ):
        m = req(p, method=method, name=None)
        pipeline.run(m)
        assert secret not in orjson.dumps(m.payload).decode(), method


def test_a_block_rule_still_blocks_in_a_protocol_field(tmp_path):
    p = _acme_pipeline(tmp_path, action="block")
    m = req({"name": "run", "arguments": {}, "_meta": {"progressToken": "acme_0123456789abcdef"}})
    p.run(m)
    assert m.action is Action.BLOCK


def test_identifiers_holding_a_secret_travel_unchanged_but_are_masked_in_the_audit(pipeline):
    """A secret as the JSON-RPC id, the method, the session id or the server's name cannot
    be rewritten (that breaks the protocol), but the audit must not record it."""
    from mcp_gateway.audit.stage import MASKED_ID, message_row

    tok = github_token()
    e = ex(session_id=tok, server=tok, request_headers={"mcp-session-id": tok})
    payload = {"jsonrpc": "2.0", "id": tok, "method": f"tools/{tok}", "params": {}}
    m = Message(payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, e, id=tok, method=f"tools/{tok}")
    pipeline.run(m)
    assert m.payload["id"] == tok and not m.stopped  # forwarded as it came
    row = message_row(m)
    assert tok not in orjson.dumps(row).decode()
    assert row["rpc_id"] == row["method"] == row["session_id"] == row["server"] == MASKED_ID
    # the answer in the same exchange too
    r = Message(
        {"jsonrpc": "2.0", "id": tok, "result": {}},
        Direction.SERVER_TO_CLIENT,
        Kind.RESULT,
        e,
        id=tok,
        method=f"tools/{tok}",
    )
    pipeline.run(r)
    assert tok not in orjson.dumps(message_row(r)).decode()


def test_a_session_id_or_event_id_a_server_hands_out_is_masked_in_the_audit(pipeline):
    """The server assigns the session id (Mcp-Session-Id on its answer to initialize) and
    each event's SSE id: the client sent neither, so they were never scanned."""
    from mcp_gateway.audit.stage import MASKED_ID, message_row

    tok = github_token()
    e = ex(session_id=tok)  # learned from the server's answer
    r = Message(
        {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18"}},
        Direction.SERVER_TO_CLIENT,
        Kind.RESULT,
        e,
        id=1,
        method="initialize",
    )
    r.sse_event_id = f"ev-{tok}"
    pipeline.run(r)
    row = message_row(r)
    assert tok not in orjson.dumps(row).decode()
    assert row["session_id"] == row["sse_event_id"] == MASKED_ID
    assert sorted(f.location for f in r.findings) == ["header:mcp-session-id", "sse:id"]
    assert not r.modified and not r.stopped  # the client needs both back unchanged


def test_a_long_session_id_holding_a_secret_is_remembered_by_its_digest(pipeline):
    """A client's session id is a string of any length, and one holding a secret was kept
    whole to mask it in the audit: 10,000 made-up 12 KB ids took 120 MB. A long one is kept
    by its digest, and only that id is masked (not another with the same start)."""
    from mcp_gateway.audit.stage import MASKED_ID, message_row
    from mcp_gateway.scan import stage as scan_stage

    sid = f"s-{github_token()}-" + "x" * 12_000
    m = req({"name": "run", "arguments": {}}, exchange=ex(session_id=sid))
    m.exchange.request_headers = {"mcp-session-id": sid}
    pipeline.run(m)
    assert [f.location for f in m.findings] == ["header:mcp-session-id"]
    assert sid not in scan_stage._SECRET_SESSIONS
    assert all(len(k) <= 256 for k in scan_stage._SECRET_SESSIONS)
    assert scan_stage.is_secret_session(sid)
    assert message_row(m)["session_id"] == MASKED_ID
    assert not scan_stage.is_secret_session(sid + "y")
    assert not scan_stage.is_secret_session(sid[:-1])


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("resources/subscribe", {"uri": "x://{tok}"}, "x://{tok}"),
        ("resources/unsubscribe", {"uri": "x://{tok}"}, "x://{tok}"),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "{tok}"}}, "{tok}"),
        ("completion/complete", {"ref": {"type": "ref/resource", "uri": "x://{tok}"}}, "x://{tok}"),
    ],
)
def test_a_secret_in_any_name_a_message_carries_is_masked(pipeline, method, params, name):
    """The name a request carries for the audit and the logs (a subscribed URI, a completion's
    prompt or resource) never holds the raw secret, whatever the method."""
    tok = github_token()
    params = orjson.loads(orjson.dumps(params).decode().replace("{tok}", tok))
    m = req(params, method=method, name=name.replace("{tok}", tok))
    pipeline.run(m)
    assert m.findings and tok not in m.name and m.name.startswith(name.split("{")[0])


@pytest.mark.parametrize("method", ["resources/read", "resources/subscribe"])
def test_a_secret_in_the_name_of_a_message_without_an_id_is_masked(pipeline, method):
    # sent with no id (or "id": null) it is a notification, recorded with its name all
    # the same: that name held the raw token
    tok = github_token()
    uri = f"https://files.example.net/x?access_token={tok}"
    payload = {"jsonrpc": "2.0", "method": method, "params": {"uri": uri}}
    m = Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.NOTIFICATION, ex(), method=method, name=uri
    )
    pipeline.run(m)
    assert m.findings and tok not in m.name and m.name.startswith("https://files.example.net/x?")


def test_a_clean_session_id_is_scanned_once_per_engine(tmp_path, engine, monkeypatch):
    # the session id and the server's name come again with every request: a clean one is not
    # scanned again by the same engine, but a new rule set looks at it afresh
    stage = ScanStage(engine)
    p = Pipeline([stage, ActStage(b"k")])
    sid = "acme_0123456789abcdef"
    scanned: list[str] = []
    real = Engine.scan

    def spy(self, text, *a, **k):
        scanned.append(text)
        return real(self, text, *a, **k)

    monkeypatch.setattr(Engine, "scan", spy)
    for _ in range(3):
        m = req({"name": "run", "arguments": {}}, exchange=ex(session_id=sid))
        m.exchange.request_headers = {"mcp-session-id": sid}
        p.run(m)
        assert not m.findings
    assert scanned.count(sid) == 1
    # a rule set that finds it (a reload swaps the engine)
    stage.engine = _acme_pipeline(tmp_path).stages[0].engine
    m = req({"name": "run", "arguments": {}}, exchange=ex(session_id=sid))
    m.exchange.request_headers = {"mcp-session-id": sid}
    p.run(m)
    assert [f.location for f in m.findings] == ["header:mcp-session-id"]


def test_a_name_of_megabytes_is_not_kept_in_the_scope_cache(engine):
    stage = ScanStage(engine)
    long_name = "t" * 5000
    m = req({"name": long_name, "arguments": {}}, name=long_name)
    Pipeline([stage, ActStage(b"k")]).run(m)
    cache = engine.__dict__.get("_scope_cache", {})
    assert not any(long_name in k for k in cache)


def test_every_copy_of_a_secret_is_redacted_even_glued_to_other_characters(pipeline):
    """The detection's own occurrence cannot be told from the others after a scan of the
    serialized message, and a copy glued to other characters is the secret too: keeping
    copies inside words whole (to spare ``OAuth2Client`` for a false ``password: Client``)
    leaked ``mysql -pSECRET``, ``%3DSECRET`` and CJK sentences (review of round 24's fix)."""
    code = (
        "export MYSQL_PWD=Zq8vK2mP9xL4\nmysql -uroot -pZq8vK2mP9xL4 prod\n密码是Zq8vK2mP9xL4已更新"
    )
    m = req({"name": "run", "arguments": {"code": code, "url": "q=pw%3DZq8vK2mP9xL4"}})
    pipeline.run(m)
    assert "Zq8vK2mP9xL4" not in orjson.dumps(reserialize(m)).decode()


def test_a_token_known_by_its_shape_is_redacted_wherever_it_appears(pipeline):
    tok = github_token()
    m = req({"name": "run", "arguments": {"a": f"token {tok}", "b": f"x{tok}y"}})
    pipeline.run(m)
    back = reserialize(m)
    assert tok not in orjson.dumps(back).decode()


def test_secret_as_a_member_name_blocks_even_when_its_copies_in_values_are_redacted(pipeline):
    # A map keyed by tokens: the copy in a value is redacted, but the member name cannot be
    # rewritten and would still carry the token to the server.
    tok = github_token()
    m = req({"name": "run", "arguments": {"tokens": {tok: {"note": f"use {tok}"}}}})
    pipeline.run(m)
    assert m.action is Action.BLOCK
    assert ("github-token", "block") in [(f.rule, f.action) for f in m.findings]


def test_locations_never_show_what_the_findings_hide(pipeline):
    # A member name on a finding's path that holds a found value (a map keyed by e-mail
    # addresses or tokens) is masked in the location, which the audit and the logs record.
    tok = github_token()
    mail = "alice.smith@corp-mail.com"
    m = req({"name": "run", "arguments": {"users": {mail: {"note": f"use {tok}"}}}})
    pipeline.run(m)
    locs = [f.location for f in m.findings]
    assert "/params/arguments/users/alic…om/note" in locs
    assert not any(mail in loc or tok in loc for loc in locs)
    m = req({"name": "run", "arguments": {"tokens": {tok: {"note": "hello"}}}})
    pipeline.run(m)
    assert m.action is Action.BLOCK
    assert [f.location for f in m.findings] == ["/params/arguments/tokens/ghp_…" + tok[-2:]]


def test_a_context_only_secret_in_a_member_name_blocks_on_the_string_walk_too(pipeline):
    # Past 32 detections the stage walks the strings and scans member names on their own,
    # without the key that makes this value a secret: the value found in "password" must
    # still be looked for in the names.
    sec = "Xk9mP2vLqR7tZ8wQ"
    mails = {f"mail{i}": f"person{i}.name@corp-mail{i}.com" for i in range(40)}
    for extra in ({}, mails):
        m = req({"name": "run", "arguments": {"password": sec, "cache": {sec: 1}, **extra}})
        pipeline.run(m)
        assert m.action is Action.BLOCK, len(extra)
        assert ("generic-secret-assignment", "block") in [(f.rule, f.action) for f in m.findings]
        assert not any(sec in f.location for f in m.findings)


def test_masking_locations_stays_linear_with_many_findings():
    # 10,000 tokens in one result: every location is checked against every found value.
    # A loop over both took a minute; the index by head takes a fraction of a second.
    from scan_helpers import npm_token

    eng = Engine.load()
    eng.finding_cap = 500
    p = Pipeline([ScanStage(eng), ActStage(b"k")])
    items = [{"tok": github_token(seed=i)} for i in range(5000)]
    items += [{"tok": npm_token(seed=i)} for i in range(5000)]
    m = result({"content": [{"type": "text", "text": "ok"}], "structuredContent": {"items": items}})
    t0 = time.process_time()
    p.run(m)
    assert len(m.findings) == 10000
    assert time.process_time() - t0 < 10


def test_member_names_are_searched_in_linear_time_for_values_sharing_their_start():
    # 3,000 addresses sharing their first characters and one 300 KB member name made of
    # them: a scan of the name's positions in Python took 49 s.
    mails = [f"aaaaaa.n{i}@corp-mail.com" for i in range(3000)]
    big = "aaaaaa" * 50000
    eng = Engine.load()
    p = Pipeline([ScanStage(eng), ActStage(b"k")])
    m = result(
        {
            "content": [{"type": "text", "text": "ok"}],
            "structuredContent": {"m": mails, big + mails[7]: {"x": "bob.smith@corp-mail.com"}},
        }
    )
    t0 = time.process_time()
    p.run(m)
    assert time.process_time() - t0 < 10
    locs = [f.location for f in m.findings if f.location.endswith("/x")]
    assert locs and mails[7] not in locs[0] and locs[0].endswith("aaaa…/x")  # masked


@pytest.mark.parametrize(
    "scope",
    [
        "{direction: [s2c], methods: ['tools/call'], tools: ['crm_*']}",
        "{direction: [s2c], tools: ['crm_*']}",
    ],
)
def test_a_task_result_the_gateway_did_not_see_created_meets_every_scoped_rule(tmp_path, scope):
    """Red-team round 30: a task's result is its tool's answer (correlate names it after the
    tools/call that made the task), but a tasks/result for a task the gateway did not see
    created named no tool, and the rules scoped to the tool skipped it. A stateless Python
    SDK server ignores Mcp-Session-Id and its task ids carry no session scope, so a client
    made the crm_export task without a session and read its result, unredacted, naming
    another (or after pushing the task out of the gateway's memory, or across a restart). Like an answer replayed on a resumed stream whose request
    is unknown, it may be any tool's: every rule reads it, whatever its method and tool scope."""
    p = Pipeline([CorrelateStage(), *crm_pipeline(tmp_path, scope).stages])

    def call(session, rid, name):
        post = ex(flow_id=f"c{rid}", session_id=session)
        p.run(req({"name": name, "arguments": {}, "task": {}}, name=name, exchange=post))
        made = {"jsonrpc": "2.0", "id": 7, "result": {"task": {"taskId": f"T-{name}"}}}
        p.run(Message(made, Direction.SERVER_TO_CLIENT, Kind.RESULT, post, id=7))

    def task_result(session, rid, task_id, log=False):
        post = ex(flow_id=f"r{rid}", session_id=session)
        ask = {"jsonrpc": "2.0", "id": rid, "method": "tasks/result", "params": {"taskId": task_id}}
        p.run(Message(ask, C2S, Kind.REQUEST, post, id=rid, method="tasks/result"))
        if log:  # the tool's log message on the tasks/result stream
            data = {"level": "info", "data": "exporting CUST-123456"}
            note = {"jsonrpc": "2.0", "method": "notifications/message", "params": data}
            m = Message(note, S2C, Kind.NOTIFICATION, post, method="notifications/message")
            p.run(m)
            return m.payload["params"]["data"]
        text = {"content": [{"type": "text", "text": "account CUST-123456"}]}
        m = Message({"jsonrpc": "2.0", "id": rid, "result": text}, S2C, Kind.RESULT, post, id=rid)
        p.run(m)
        return m.payload["result"]["content"][0]["text"]

    call("S1", 1, "crm_export")
    call("S1", 2, "echo")
    assert task_result("S1", 3, "T-crm_export") == "account [REDACTED:custom_crm]"
    assert task_result("S1", 4, "T-echo") == "account CUST-123456"  # (its own tool's scope)
    # another session (a stateless server ignores it), a task never seen, a restart
    assert task_result("S2", 5, "T-crm_export") == "account [REDACTED:custom_crm]"
    assert task_result(None, 6, "T-crm_export") == "account [REDACTED:custom_crm]"
    if "methods" not in scope:  # (a rule scoped to tools/call reads the result only)
        assert task_result("S2", 8, "T-crm_export", log=True) == "exporting [REDACTED:custom_crm]"


def test_an_unknown_answer_on_a_legacy_stream_meets_every_scoped_rule(tmp_path):
    """Red-team round 30: on the legacy HTTP+SSE transport every answer comes on the GET
    stream, apart from its request, and is named after it from the correlator's memory,
    which is bounded (by entries and bytes, for every server and session together). An
    answer whose request it no longer holds (a client pushed it out with requests of its own
    that no answer frees, or sent it in a way the gateway did not read) went out under no
    tool, past the rules scoped to crm_*. Like an unknown answer replayed on a resumed
    stream, it may be any request's: every rule reads it."""
    scan = crm_pipeline(tmp_path, "{direction: [s2c], methods: ['tools/call'], tools: ['crm_*']}")
    c = Correlator(max_entries=3)
    p = Pipeline([CorrelateStage(c), *scan.stages])
    p.run(req({"name": "crm_export", "arguments": {}}, name="crm_export",
              exchange=ex(flow_id="p0", legacy_session="L")))  # fmt: skip
    for i in range(5):  # requests the server holds (another session's, another server's)
        m = req(
            {"name": "slow", "arguments": {}},
            name="slow",
            exchange=ex(flow_id=f"q{i}", session_id=f"X{i}"),
        )
        p.run(m)
    stream = ex(flow_id="g", legacy_session="L", http_method="GET")

    def text():
        return {"content": [{"type": "text", "text": "account CUST-123456"}]}

    m = result(text(), method=None, name=None, exchange=stream)
    p.run(m)
    assert m.payload["result"]["content"][0]["text"] == "account [REDACTED:custom_crm]"
    # an answer the gateway knows keeps its own tool's scope
    p.run(
        req(
            {"name": "echo", "arguments": {}},
            name="echo",
            exchange=ex(flow_id="p1", legacy_session="L"),
        )
    )
    m = result(text(), method=None, name=None, exchange=stream)
    p.run(m)
    assert m.name == "echo" and m.payload["result"]["content"][0]["text"] == "account CUST-123456"


def test_a_server_scope_matches_the_site_the_host_header_names(tmp_path):
    """Red-team round 30: a shared front end serves the site a request's Host header names,
    and in regular proxy mode an absolute-form request goes to the URL's host with the
    client's Host header: POST http://free.example/mcp with Host: paid.example stepped out of
    the rules scoped to paid.example (core sets Exchange.vhost)."""
    rule = tmp_path / "paid.yaml"
    rule.write_text(
        "rules:\n  - id: paid-deny\n    type: custom_deny\n    severity: high\n"
        "    action: block\n    pattern: '.+'\n    scope: {servers: ['paid.example:*']}\n"
    )
    p = Pipeline([ScanStage(Engine.load([str(rule)])), ActStage()])
    m = req({"name": "run", "arguments": {"a": "x"}}, exchange=ex(server="free.example:80"))
    p.run(m)
    assert m.action is Action.PASS
    e = ex(server="free.example:80", flow_id="f2")
    e.vhost = "paid.example:80"
    m = req({"name": "run", "arguments": {"a": "x"}}, exchange=e)
    p.run(m)
    assert m.action is Action.BLOCK


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_an_ascii_text_blob_in_utf16_or_utf32_without_mark_is_redacted(pipeline, codec):
    """UTF-16 (or UTF-32) of ASCII text is valid UTF-8 as well, a zero byte being a
    character: read as UTF-8, half its characters were zeros, it was judged no text, and the
    token in it passed (only text with a character beyond ASCII, invalid as UTF-8, was read
    as UTF-16). It is read as what it spells, and redacted in its own charset."""
    tok = github_token()
    text = f"[deploy]\ntoken = {tok}\nuser = ci\n"
    doc = text.encode(codec)
    m = result({"contents": [{"uri": "file:///c.ini", "blob": base64.b64encode(doc).decode()}]})
    pipeline.run(m)
    out = base64.b64decode(m.payload["result"]["contents"][0]["blob"], validate=True)
    assert out == text.replace(tok, "[REDACTED:github_token]").encode(codec)
    assert [(f.rule, f.location) for f in m.findings] == [
        ("github-token", "/result/contents/0/blob")
    ]


@pytest.mark.parametrize("extra", [b"", b"."], ids=["even", "odd"])
def test_a_utf8_text_blob_under_a_utf16_looking_head_is_redacted(pipeline, extra):
    """A UTF-8 text whose first 64 bytes look like UTF-16 (a header of ASCII padded with
    zeros) is still UTF-8 text: told by its head alone, it was read as UTF-16 (garbage, or
    no text at all for an odd length) and the token after the head passed; read as UTF-8,
    as before UTF-16 without a mark was told first, it is found and redacted."""
    tok = github_token()
    head = "MAGIC-HEADER-v1-----------------".encode("utf-16-le")  # 64 bytes
    doc = head + b"[deploy]\ntoken = " + tok.encode() + b"\n" + b"user = ci\n" * 80 + extra
    m = result({"contents": [{"uri": "file:///c.bin", "blob": base64.b64encode(doc).decode()}]})
    pipeline.run(m)
    out = base64.b64decode(m.payload["result"]["contents"][0]["blob"], validate=True)
    assert out == doc.replace(tok.encode(), b"[REDACTED:github_token]")
    assert [(f.rule, f.location) for f in m.findings] == [
        ("github-token", "/result/contents/0/blob")
    ]


def _with_repeat(tok: str, extra: bytes) -> bytes:
    """A tool result whose text block names ``text`` twice: the token first, where readers
    that take a member's first copy read it, then a harmless copy, which Python's ``json``,
    orjson, pydantic and ``JSON.parse`` keep."""
    return (
        b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"'
        + tok.encode()
        + b'","text":"safe"}]'
        + extra
        + b"}}"
    )


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b',"note":"caf\\u00e9"', id="non-ascii-escape"),
        pytest.param(
            b',"structuredContent":{"ids":['
            + b",".join(b'"AKIA%016d"' % i for i in range(2000))
            + b"]}",
            id="many-candidates",
        ),
    ],
)
def test_a_member_named_twice_goes_on_as_scanned(pipeline, extra):
    """The scanner reads a message's bytes as they arrived, where a member's first copy,
    which the parser drops, is found (and blocks); but a message with a \\u escape of a
    non-ASCII character, or with many candidates, is scanned as parsed: the token in the
    first copy went to the client unseen, in bytes forwarded as they were, and readers that
    take the first copy (gjson, simdjson, a log of the traffic) read it. Such a message goes
    on as it was scanned, each member once."""
    tok = github_token()
    raw = _with_repeat(tok, extra)
    m = result(None)
    m.payload = orjson.loads(raw)
    m.raw = raw
    pipeline.run(m)
    assert m.modified and not m.stopped
    assert m.payload["result"]["content"] == [{"type": "text", "text": "safe"}]
    assert tok.encode() not in orjson.dumps(m.payload)


def test_a_message_without_repeated_members_keeps_its_bytes(pipeline):
    # (the same shapes without the repeat: nothing to rewrite, the bytes go on as they came)
    for raw in (
        b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"caf\\u00e9 '
        b'a:b \\u003a"}],"x":{"k:\\u003a":"v"}}}',
        b'{"jsonrpc":"2.0","id":7,"result":{"content":[],"structuredContent":{"ids":['
        + b",".join(b'"AKIA%016d"' % i for i in range(2000))
        + b"]}}}",
    ):
        m = result(None)
        m.payload = orjson.loads(raw)
        m.raw = raw
        pipeline.run(m)
        assert not m.modified and m.action is Action.PASS


def test_a_value_redacted_in_a_uris_host_leaves_a_valid_uri(pipeline):
    """A resource's ``uri`` is validated by the SDK clients (the Python SDK's ``AnyUrl``):
    ``s3://[REDACTED:aws_access_key_id]/b`` is no URL (brackets in a host are IPv6's), and
    the client refused the whole tool result. A placeholder in a host is written host-safe;
    elsewhere in the URI (userinfo, path, query) it stays as it is."""
    from mcp.types import CallToolResult

    key = "AKIAQ3EGUIF5ZK7XVJ2M"
    tok = github_token()
    m = result(
        {
            "content": [
                {"type": "resource_link", "name": "a", "uri": f"s3://{key}/backup.tar"},
                {"type": "resource_link", "name": "b", "uri": f"https://{tok}@github.com/x.git"},
                {"type": "resource_link", "name": "c", "uri": f"https://h.io/a?k={tok}"},
            ]
        }
    )
    pipeline.run(m)
    uris = [b["uri"] for b in reserialize(m)["result"]["content"]]
    assert uris == [
        "s3://REDACTED-aws_access_key_id/backup.tar",
        "https://[REDACTED:github_token]@github.com/x.git",
        "https://h.io/a?k=[REDACTED:github_token]",
    ]
    CallToolResult.model_validate(m.payload["result"])  # (raised before)


def test_the_scope_cache_keeps_one_copy_of_each_set_of_rules(engine):
    """A client inventing a tool name a call fills the scope cache (4096 entries); each entry
    held its own frozenset of the rules in scope (8 KB for 130 rules: 34 MB in all), though
    they are all the same few sets."""
    import tracemalloc

    engine.__dict__.pop("_scope_cache", None)  # (a module's engine: start from empty)
    stage = ScanStage(engine)
    p = Pipeline([stage, ActStage(b"k")])
    m = req({"name": "warm", "arguments": {}}, name="warm")
    p.run(m)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            name = f"tool_{i:05d}"
            m = req({"name": name, "arguments": {}}, name=name)
            p.run(m)
        grew = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    cache = engine.__dict__["_scope_cache"]
    assert len(cache) > 2000
    sets = {id(v) for v in cache.values() if v is not None}
    assert any(v is not None for v in cache.values())  # the test means something
    assert len(sets) <= 4, len(sets)
    assert grew < 4 << 20, grew  # (copies: ~17 MB)


def test_an_empty_assignment_before_a_line_break_is_no_soft_break(engine):
    """``KEY=`` then a line break ends an empty assignment (.env, INI, an Ansible inventory):
    only a line as long as quoted-printable fills them is joined to the next."""
    tok = github_token()
    env = "A_PASSWORD=\nGITHUB_TOKEN_SUFFIX=" + tok[4:] + "\nghp_=\n" + tok[4:] + "\n"
    assert [d.type for d in engine.scan_text(env)] == []
    line = "x" * (75 - len("ghp_ab")) + "ghp_ab="
    assert len(line) == 76
    assert [d.type for d in engine.scan_text(line.replace("ghp_ab", tok[:6]) + "\n" + tok[6:])] == [
        "github_token"
    ]


@pytest.mark.parametrize("sep", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_base64_values_padding_at_a_lines_end_keeps_the_next_line(pipeline, sep):
    """``KEY=<base64>=`` then a line break, in a line as long as quoted-printable fills them:
    the padding was read as a soft break, the next line joined to the value, and the
    redaction of the value took ``DEBUG=true`` with it (review 8). Quoted-printable writes
    every "=" as "=3D", so a line or a next line with a bare "=" is none of its."""
    import random

    value = base64.b64encode(random.Random(3).randbytes(50)).decode()  # one "=" of padding
    assert value.endswith("=") and not value.endswith("==")
    line = "CLIENT_SECRET=" + value
    assert 70 <= len(line) <= 100
    env = "# config" + sep + line + sep + "DEBUG=true" + sep + "LOG_LEVEL=info" + sep
    m = result({"content": [{"type": "text", "text": env}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [f.type for f in m.findings] == ["generic_secret"]
    text = reserialize(m)["result"]["content"][0]["text"]
    assert text == sep.join(
        ["# config", "CLIENT_SECRET=[REDACTED:generic_secret]", "DEBUG=true", "LOG_LEVEL=info", ""]
    )


@pytest.mark.parametrize(
    ("first", "second", "kind"),
    [
        ("The password is Xk9mP2vLqR7t", "Next step: restart the service", "generic_secret"),
        ("DB_PASSWORD=Xk9mP2vLqR7t", "OK", "generic_secret"),
        ("email: jane.doe@gmail.com", "Thanks", "email"),
    ],
)
def test_a_value_whole_in_one_block_does_not_take_the_next_blocks_words(
    pipeline, first, second, kind
):
    """A value found whole in its block, read on into the next block by the join ("…is
    Xk9mP2vLqR7t" + "Next step"), was recorded again across both and its redaction deleted
    the next block's first word ("OK" went whole; review 8). It is the block's own finding,
    once, and the next block is left as it is."""
    m = result({"content": [{"type": "text", "text": first}, {"type": "text", "text": second}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert [(f.type, f.location) for f in m.findings] == [(kind, "/result/content/0/text")]
    assert reserialize(m)["result"]["content"][1]["text"] == second


@pytest.mark.parametrize("cut", [8, 20, 30])
def test_a_token_cut_after_a_generic_find_in_its_first_block_is_still_read_whole(pipeline, cut):
    """``GITHUB_TOKEN=ghp_…`` cut in two: the first block's own scan finds its part as a
    generic secret; the token's own rule still reads it joined, so its second part goes too
    (a joined match is left out only when the same rule found the value in its block)."""
    tok = github_token()
    blocks = [
        {"type": "text", "text": "GITHUB_TOKEN=" + tok[:cut]},
        {"type": "text", "text": tok[cut:] + "\nok"},
    ]
    m = result({"content": blocks})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert "github_token" in [f.type for f in m.findings]
    texts = [c["text"] for c in reserialize(m)["result"]["content"]]
    assert texts[1] == "\nok" and tok[:cut] not in texts[0]


def _pane(line: str, width: int, before=("dev@box:~$ git status", "nothing to commit")) -> str:
    """A terminal pane as ``tmux capture-pane -p`` without ``-J`` returns it."""
    rows = [line[i : i + width] for i in range(0, len(line), width)]
    return "\n".join([*before, *rows, "dev@box:~$ "])


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("col", [1, 8, 20, 35])
@pytest.mark.parametrize("crlf", [False, True])
def test_a_token_cut_at_a_terminal_s_width_is_redacted(pipeline, width, col, crlf):
    """Red-team round 34: a shell tool returning its pane as ``tmux capture-pane`` without
    ``-J`` prints it, a token cut where the terminal's width ends a line: the model reads
    the two lines as one word, and the token went on unread."""
    tok = github_token()
    pre = "dev@box:~/app$ echo GITHUB_TOKEN="
    line = pre + "x" * (width - len(pre) - col - 1) + " " + tok + " done"  # col characters left
    text = _pane(line, width)
    if crlf:
        text = text.replace("\n", "\r\n")
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert "github_token" in [f.type for f in m.findings]
    out = reserialize(m)["result"]["content"][0]["text"]
    assert tok[:col] + "\n" not in out and tok[col:] not in out
    assert "[REDACTED:github_token] done" in out
    assert out.startswith("dev@box:~$ git status") and out.endswith("dev@box:~$ ")


def test_a_token_cut_in_a_pane_of_no_usual_width_is_left_alone(pipeline):
    """Only the usual widths count (a narrow split pane's cut is not read joined): log lines
    of one common length, each next one starting with a timestamp, were read joined."""
    tok = github_token()
    text = _pane("echo " + "x" * 50 + " GITHUB_TOKEN=" + tok + " ok", 47)
    m = result({"content": [{"type": "text", "text": text}]})
    pipeline.run(m)
    assert "github_token" not in [f.type for f in m.findings]
    logs = "\n".join(
        f"2025-01-1{i}T12:00:0{i}Z INFO [svc] request done latency_ms={i}23" for i in range(9)
    )
    m = result({"content": [{"type": "text", "text": logs}]})
    pipeline.run(m)
    assert reserialize(m)["result"]["content"][0]["text"] == logs


@pytest.mark.parametrize(
    "text",
    [
        # the longest line, once, ending a token found whole: the next line's word stays
        "log line\n" * 3 + "deploy with {tok}\n" + "tail and more\n",
        # a paragraph wrapped by an editor at 80: words, no token across the breaks
        (
            "The configuration of this service is described in the following document and\n"
            "isn't hard to read at all; really, the important part is the section about the\n"
            "ReadMe123Configuration and the tokens, which is about eighty columns wide too.\n"
        )
        * 2,
        # a token whole at the end of a full 80-column line, the next line a word
        "x" * 39 + " GITHUB_TOKEN={tok}\n" + "Deployment1 finished\n" + "y" * 80 + "\nok",
    ],
)
def test_lines_that_only_meet_at_a_terminal_s_width_are_left_alone(pipeline, text):
    tok = github_token()
    text = text.format(tok=tok)
    m = result({"content": [{"type": "text", "text": text}]})
    pipeline.run(m)
    out = reserialize(m)["result"]["content"][0]["text"]
    assert out == text.replace(tok, "[REDACTED:github_token]")


def test_a_private_key_s_lines_are_not_read_as_a_terminal_s(pipeline):
    """PEM bodies (64 columns) are joined by the base64 reader, not read again here."""
    key = pem()
    m = result({"content": [{"type": "text", "text": key + "\n" + key}]})
    pipeline.run(m)
    assert {f.type for f in m.findings} == {"private_key"}
    assert len(m.findings) == 2


def _xxd(data: bytes, cols: int = 16, hexdump: bool = False) -> str:
    """``xxd`` (or ``hexdump -C``) of ``data``, as the tools print it."""
    out = []
    for off in range(0, len(data), cols):
        chunk = data[off : off + cols]
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        if hexdump:
            h = (
                " ".join(f"{b:02x}" for b in chunk[:8])
                + "  "
                + " ".join(f"{b:02x}" for b in chunk[8:])
            )
            out.append(f"{off:08x}  {h:<49} |{shown}|")
        else:
            h = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
            out.append(f"{off:08x}: {h:<{cols // 2 * 5 - 1}}  {shown}")
    return "\n".join(out)


@pytest.mark.parametrize(("hexdump", "cols"), [(False, 16), (False, 32), (True, 16)])
def test_a_token_in_a_hex_dump_is_redacted(pipeline, hexdump, cols):
    """Red-team round 34: ``xxd .env`` through a shell tool shows the token 16 characters a
    line in its text column (a model reads them joined) and whole in its hex column; neither
    was read. The dump lines that hold it are replaced by the placeholder."""
    tok = github_token()
    data = f"# deploy settings\nexport GITHUB_TOKEN={tok}\nexport DEBUG=1\n".encode()
    dump = _xxd(data, cols, hexdump)
    text = "$ xxd .env\n" + dump + "\n$ "
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert "github_token" in [f.type for f in m.findings]
    out = reserialize(m)["result"]["content"][0]["text"]
    assert "[REDACTED:github_token]" in out
    assert tok.encode().hex() not in out.replace(" ", "")
    shown = "".join(
        ln.split("|")[1] if hexdump else ln[-cols:]
        for ln in out.splitlines()[1:-1]
        if ln.startswith("0")
    )
    assert tok[8:24] not in shown
    assert out.startswith("$ xxd .env\n00000000") and out.endswith("\n$ ")


def test_hex_dumps_are_followed_from_their_zero_offset_line():
    # both line patterns ran over the whole of every text that held eight zeros anywhere
    # (a numbered log's `line 00000000`): a 256 KiB tool result's scan took twice as long
    from mcp_gateway.scan.stage import _dumps

    data = b"GITHUB_TOKEN=abc\nDEBUG=1\n" * 3
    for hexdump in (False, True):
        dump = _xxd(data, 16, hexdump)
        log = "line 00000000 started\n" + "line 00000001 x\n" * 50
        text = log + "$ xxd f\r\n" + dump.replace("\n", "\r\n") + "\r\n$ "
        ((first, last, lines),) = _dumps(text)
        assert text[first:last].rstrip("\r") == dump.replace("\n", "\r\n")
        assert b"".join(b for _s, _e, b in lines) == data
        # not at a line's start, or one line alone: no dump
        assert _dumps("x 00000000: 6768 705f  ghp_\n00000010: 6768  gh") == []
        assert _dumps(dump.splitlines()[0]) == []


def test_a_hex_dump_without_a_secret_is_left_alone(pipeline):
    text = _xxd(b"hello world, nothing secret here at all, just text\n" * 4) + "\n"
    m = result({"content": [{"type": "text", "text": text}]})
    pipeline.run(m)
    assert m.findings == [] and reserialize(m)["result"]["content"][0]["text"] == text


@pytest.mark.parametrize("indent", [None, 2])
def test_a_token_in_a_node_buffer_in_a_json_text_is_redacted_as_numbers(pipeline, indent):
    """Red-team round 34: a Node tool returning ``JSON.stringify`` of a file read without an
    encoding gives ``{"type": "Buffer", "data": [71, 73, …]}``, which a client revives with
    ``Buffer.from(data)``: the token went on as numbers, unread. Its bytes are redacted as
    the placeholder's numbers, so the text stays JSON and the Buffer the file's."""
    tok = github_token()
    data = f"GITHUB_TOKEN={tok}\nDEBUG=1\n".encode()
    text = json.dumps({"file": {"type": "Buffer", "data": list(data)}}, indent=indent)
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert "github_token" in [f.type for f in m.findings]
    out = json.loads(reserialize(m)["result"]["content"][0]["text"])
    assert bytes(out["file"]["data"]) == b"GITHUB_TOKEN=[REDACTED:github_token]\nDEBUG=1\n"


def test_a_token_in_a_node_buffer_in_structured_content_is_redacted_as_numbers(pipeline):
    """In the message's own arrays (``structuredContent``) the numbers are rewritten as in a
    JSON text: the placeholder's bytes. (Review of round 34: the result was blocked, the
    agent lost the tool's answer where a redaction does.)"""
    tok = github_token()
    buf = {"type": "Buffer", "data": list(f"token {tok}\nok".encode())}
    m = result({"content": [{"type": "text", "text": "read"}], "structuredContent": {"f": buf}})
    pipeline.run(m)
    assert [(f.type, f.action, f.location, f.start, f.end) for f in m.findings] == [
        ("github_token", "redact", "/result/structuredContent/f/data", 6, 6 + len(tok))
    ]
    assert m.action is Action.REDACT
    data = reserialize(m)["result"]["structuredContent"]["f"]["data"]
    assert bytes(data) == b"token [REDACTED:github_token]\nok"


def test_a_private_key_in_a_node_buffer_in_structured_content_is_redacted(pipeline):
    key = pem()
    buf = {"type": "Buffer", "data": list(("id_rsa:\n" + key + "\n").encode())}
    m = result({"content": [{"type": "text", "text": "read"}], "structuredContent": {"f": buf}})
    pipeline.run(m)
    assert "private_key" in [f.type for f in m.findings]
    data = bytes(reserialize(m)["result"]["structuredContent"]["f"]["data"]).decode()
    assert data.startswith("id_rsa:\n[REDACTED:private_key]") and key.splitlines()[1] not in data


def test_a_buffer_s_numbers_changed_under_the_act_stage_are_left_alone(engine):
    """The act stage never guesses: an array whose bytes are no longer the value's."""
    tok = github_token()
    buf = {"type": "Buffer", "data": list(f"token {tok}".encode())}
    m = result({"content": [{"type": "text", "text": "read"}], "structuredContent": {"f": buf}})
    ScanStage(engine).process(m)
    buf["data"] = buf["data"][:10]
    ActStage(b"k").process(m)
    assert buf["data"] == list(f"token {tok}".encode())[:10]


def test_a_node_buffer_without_a_secret_is_left_alone(pipeline):
    buf = {"type": "Buffer", "data": list(b"hello world, nothing secret here")}
    text = json.dumps(buf)
    m = result({"content": [{"type": "text", "text": text}], "structuredContent": {"f": buf}})
    pipeline.run(m)
    assert m.findings == [] and not m.modified


# Bytes of random binary data (an image's compressed body) that, read as latin-1, hold "pW\x0e="
# and "Pw=" with random characters after them: the generic-secret-assignment rule read them
# as a password (about twice in a MB of random bytes).
_BINARY_PW = bytes.fromhex(
    "60e67a209b0fb014a458d12b459b46db5a6ad6b34cf43e8fc3eb6f160ed0897a04461b2c70570e3d7edd53b7"
    "b756462f0d4e4632ebb814f1"
    "1d19af0ff4d33eb587ca77ae42ed0a408cc3bd13aac70824dc132aa50ad63b632590c35e7b50773d324ffdf2"
    "caebcca14e4570b6d1d79358e50c226c67215bfa08"
)
_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _BINARY_PW + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_an_image_s_node_buffer_is_not_read_as_a_password(pipeline):
    """Review of round 34: a Node tool's image (``{type: Buffer, data: […]}``) was read as
    latin-1, and its random bytes as ``pW=…``: the result was blocked (structuredContent)
    or its numbers rewritten (a JSON text). Bytes are read as a reader shows them."""
    buf = {"type": "Buffer", "data": list(_PNG)}
    m = result({"content": [{"type": "text", "text": "read"}], "structuredContent": {"f": buf}})
    pipeline.run(m)
    assert m.findings == [] and m.action is not Action.BLOCK
    text = json.dumps(buf)
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert m.findings == [] and reserialize(m)["result"]["content"][0]["text"] == text


def test_a_hex_dump_of_an_image_is_not_read_as_a_password(pipeline):
    text = "$ xxd logo.png\n" + _xxd(_PNG) + "\n$ "
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert "generic_secret" not in [f.type for f in m.findings]
    assert reserialize(m)["result"]["content"][0]["text"] == text


def test_a_large_binary_buffer_is_not_scanned_a_text_one_is():
    """A 1 MB image's Buffer cost 1.7 s (structuredContent) to 2.6 s (a JSON text) of
    scanning, ~60 times the message's own scan: a large binary one is not read."""
    from mcp_gateway.scan.stage import _buffer_text

    noise = (_BINARY_PW * 2000)[:100_000]
    assert _buffer_text(list(noise)) is None
    assert _buffer_text(list(noise[:4000])) is not None  # a small one still is
    tok = github_token()
    txt = (b"x = 1\n" * 20_000) + f"GITHUB_TOKEN={tok}\n".encode()
    assert tok in _buffer_text(list(txt))
    assert _buffer_text([1, 256, 3]) is None and _buffer_text([1, -1]) is None


def test_a_large_binary_buffer_in_a_json_text_is_left_alone(pipeline, monkeypatch):
    """Its million numbers are not listed: the first ones tell a binary file."""
    from mcp_gateway.scan import stage as stage_mod

    listed = []
    real = stage_mod._NUMBER

    class Spy:
        def findall(self, text, a, b):
            listed.append(b - a)
            return real.findall(text, a, b)

        def finditer(self, *args):
            return real.finditer(*args)

    monkeypatch.setattr(stage_mod, "_NUMBER", Spy())
    text = json.dumps({"type": "Buffer", "data": list((_BINARY_PW * 3000)[:200_000])})
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    assert m.findings == [] and not m.modified
    assert listed and max(listed) <= 16384


def test_a_token_in_a_buffer_of_utf8_text_keeps_its_byte_offsets(pipeline):
    """Non-ASCII bytes are one character each (a space): the numbers redacted are the
    token's own."""
    tok = github_token()
    data = f"café — Grüße\nGITHUB_TOKEN={tok}\nDEBUG=1\n".encode()
    text = json.dumps({"type": "Buffer", "data": list(data)})
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    out = json.loads(reserialize(m)["result"]["content"][0]["text"])
    assert (
        bytes(out["data"])
        == "café — Grüße\nGITHUB_TOKEN=[REDACTED:github_token]\nDEBUG=1\n".encode()
    )


@pytest.mark.parametrize("col", [4, 10, 16])
def test_an_aws_key_id_without_a_digit_cut_at_a_terminal_s_width_is_redacted(pipeline, col):
    """Review of round 34: a cut run had to hold a digit or both cases, and one AWS key id
    in 28 (AKIA and 16 of A-Z2-7) has no digit: it went on in two parts."""
    key = "AKIATTITFZCHMPFKZIKF"
    pre = "dev@box:~/app$ aws configure get aws_access_key_id; echo "
    line = pre + "x" * (80 - len(pre) - col - 1) + " " + key + " done"
    text = _pane(line, 80)
    m = result({"content": [{"type": "text", "text": text}]})
    m.raw = orjson.dumps(m.payload)
    pipeline.run(m)
    out = reserialize(m)["result"]["content"][0]["text"]
    assert key[:col] + "\n" not in out and "[REDACTED:aws_access_key_id] done" in out
