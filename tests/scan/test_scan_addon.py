"""ScanAddon with mitmproxy's taddons: options, validation errors, wiring, reload."""

import logging

import orjson
import pytest
from mcp_gateway.act import ActStage
from mcp_gateway.message import Action, Direction, Exchange, Kind, Message
from mcp_gateway.pipeline import Pipeline
from mcp_gateway.scan.addon import ScanAddon
from mcp_gateway.scan.stage import ScanStage
from mitmproxy import exceptions
from mitmproxy.http import Headers
from mitmproxy.test import taddons, tflow
from scan_helpers import github_token, jwt


def msg(payload, flow=None, headers=None):
    ex = Exchange(flow_id="f", server="s:1", flow=flow, request_headers=headers)
    return Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=1, method="tools/call", name="x"
    )


def call(arguments):
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "x", "arguments": arguments},
    }


def test_defaults_register_scan_and_act():
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        assert isinstance(p.get("scan"), ScanStage)
        assert isinstance(p.get("act"), ActStage)
        assert [s.name for s in p.stages] == ["scan", "act"]
        m = msg(call({"t": github_token()}))
        p.run(m)
        assert m.action is Action.REDACT


BAD = """rules:
  - id: broken
    type: github_token
    severity: high
    action: redact
    pattern: 'ghp_[A-Z'
"""


def test_invalid_rules_raise_options_error_with_file_line_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError) as ei:
            tctx.configure(addon, mcp_rules=[str(bad)])
        assert f"{bad}:6: rules[0].pattern: invalid regular expression" in str(ei.value)
        with pytest.raises(exceptions.OptionsError, match="file not found"):
            tctx.configure(addon, mcp_rules=[str(tmp_path / "missing.yaml")])


def test_reload_swaps_engine_and_keeps_old_one_on_error(tmp_path):
    p = Pipeline()
    addon = ScanAddon(p)
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "rules:\n  - id: acme\n    type: custom_acme\n    severity: high\n    action: block\n"
        "    pattern: 'acme_[0-9]{8}'\n"
    )
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        stage = p.get("scan")
        tctx.configure(addon, mcp_rules=[str(mine)])
        assert p.get("scan") is stage  # same stage, new engine
        assert [r.id for r in stage.engine.rules] == ["acme"]
        m = msg(call({"k": "acme_12345678"}))
        p.run(m)
        assert m.action is Action.BLOCK and "acme" in m.refusal.message
        engine = stage.engine
        bad = tmp_path / "bad.yaml"
        bad.write_text(BAD)
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, mcp_rules=[str(bad)])
        assert stage.engine is engine  # the running engine stays


def _acme(pattern="acme_[0-9]{8}", action="block", extra=""):
    return (
        "rules:\n  - id: acme\n    type: custom_acme\n    severity: high\n"
        f"    action: {action}\n    pattern: '{pattern}'\n{extra}"
    )


def test_the_watcher_applies_settled_rule_edits_and_keeps_the_rules_on_a_bad_one(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mcp_gateway")
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme())
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)], mcp_max_findings=7)
        stage = p.get("scan")
        first = stage.engine
        assert addon.reload(now=100.0) is False  # nothing changed
        mine.write_text(_acme(pattern="acme_[0-9]{9}"))
        assert addon.reload(now=100.0) is False  # just written: may still be in progress
        assert addon.reload(now=100.5) is False and stage.engine is first
        assert addon.reload(now=101.1) is True
        assert stage.engine is not first and stage.engine.finding_cap == 7
        m = msg(call({"k": "acme_123456789"}))
        p.run(m)
        assert m.action is Action.BLOCK
        assert "scanning rules reloaded" in caplog.text
        # a bad edit: logged once, the running rules stay
        second = stage.engine
        mine.write_text(BAD)
        addon.reload(now=200.0)
        assert addon.reload(now=201.5) is False and stage.engine is second
        assert "keeping the running rules" in caplog.text and "rules[0].pattern" in caplog.text
        assert addon.reload(now=210.0) is False
        assert caplog.text.count("keeping the running rules") == 1
        # ... until it is mended
        mine.write_text(_acme(pattern="acme_[0-9]{10}"))
        addon.reload(now=300.0)
        assert addon.reload(now=301.5) is True and stage.engine is not second


def test_rule_edits_that_find_less_wait_longer_and_say_so(tmp_path, caplog):
    mine = tmp_path / "mine.yaml"
    two = _acme() + (
        "  - id: beta\n    type: custom_beta\n    severity: high\n    action: redact\n"
        "    pattern: 'beta_[0-9]{8}'\n"
    )
    mine.write_text(two)
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        # the file cut short (an editor writing it in parts): one rule fewer, one weaker
        mine.write_text(_acme(action="log"))
        addon.reload(now=100.0)
        assert addon.reload(now=101.5) is False and stage.engine is first
        assert addon.reload(now=104.0) is False and stage.engine is first
        assert addon.reload(now=105.1) is True and stage.engine is not first
        assert [r.id for r in stage.engine.rules] == ["acme"]
        assert "drop 1 rule(s): beta" in caplog.text and "acme (block -> log)" in caplog.text


@pytest.mark.parametrize(
    "edit, said",
    [
        ("    allowlist: {values: [acme_12345678]}\n", "1 allowlist values added"),
        ("    allowlist: {patterns: ['^acme_1']}\n", "1 allowlist patterns added"),
        ("    allowlist: {stopwords: [acme]}\n", "1 allowlist stopwords added"),
        ("    allowlist: {context: ['test']}\n", "1 allowlist context added"),
        ("    scope: {direction: [c2s]}\n", "scope narrowed: direction"),
        ("    scope: {methods: ['tools/call']}\n", "scope narrowed: methods"),
        ("    scope: {tools: ['deploy_*']}\n", "scope narrowed: tools"),
        ("    scope: {servers: ['prod.internal:*']}\n", "scope narrowed: servers"),
        ("    keywords: [acme]\n", "keywords required"),
        ("    validators: [luhn]\n", "validators added"),
    ],
)
def test_rule_edits_that_let_more_through_wait_longer_and_say_so(tmp_path, caplog, edit, said):
    # an added allowlist entry or a narrowed scope lets through what the rule found, as a
    # dropped rule does; such an edit applied after one second, without a word, so a file
    # written in parts (an allowlist's first entries, a scope's first glob) stood
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme())
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        mine.write_text(_acme(extra=edit))
        addon.reload(now=100.0)
        assert addon.reload(now=101.5) is False and stage.engine is first
        assert addon.reload(now=104.0) is False and stage.engine is first
        assert addon.reload(now=105.1) is True and stage.engine is not first
        assert f"let more through in acme ({said})" in caplog.text


_ANCHORED = "    prefilter: ['acme_[0-9]', 'ACME_[0-9]']\n    window: {before: 64, after: 64}\n"


@pytest.mark.parametrize(
    "anchored, said",
    [
        (
            "    prefilter: ['acme_[0-9]']\n    window: {before: 64, after: 64}\n",
            "1 of its prefilters gone",
        ),
        ("    prefilter: ['acme_[0-9]', 'ACME_[0-9]']\n    window: {before: 8, after: 64}\n",
         "window narrowed"),
        ("    prefilter: ['acme_[0-9]', 'ACME_[0-9]']\n    window: {before: 64, after: 8}\n",
         "window narrowed"),
        (_ANCHORED.replace("after: 64}", "after: 64, start_after: 0}"), "window narrowed"),
    ],
)  # fmt: skip
def test_a_cut_prefilter_list_or_a_narrowed_window_waits_longer_and_says_so(
    tmp_path, caplog, anchored, said
):
    # a value only a dropped anchor woke, or lying outside the narrowed window, is no longer
    # confirmed: such an edit (a file written in parts) applied after one second, unsaid
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme(extra=_ANCHORED))
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        mine.write_text(_acme(extra=anchored))
        addon.reload(now=100.0)
        assert addon.reload(now=101.5) is False and stage.engine is first
        assert addon.reload(now=105.1) is True and stage.engine is not first
        assert f"let more through in acme ({said})" in caplog.text


def test_more_prefilters_a_wider_window_or_none_apply_at_once(tmp_path, caplog):
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme(extra=_ANCHORED))
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        for n, extra in enumerate(
            [
                _ANCHORED.replace("'ACME_[0-9]'", "'ACME_[0-9]', 'Acme_[0-9]'"),
                _ANCHORED.replace("'ACME_[0-9]'", "'ACME_[0-9]', 'Acme_[0-9]'").replace(
                    "before: 64", "before: 128"
                ),
                "",  # no prefilter: the pattern itself is the anchor
            ]
        ):
            before = stage.engine
            mine.write_text(_acme(extra=extra))
            addon.reload(now=100.0 + 10 * n)
            assert addon.reload(now=101.5 + 10 * n) is True and stage.engine is not before
        assert "let more through" not in caplog.text


def test_rule_edits_that_find_as_much_or_more_apply_at_once(tmp_path, caplog):
    scoped = "    scope: {tools: ['deploy_*']}\n    allowlist: {values: [acme_00000000]}\n"
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme(extra=scoped))
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        # a wider scope, an allowlist entry gone, a stronger action: as soon as settled
        for n, extra in enumerate(
            ["    scope: {tools: ['deploy_*', 'drop_*']}\n", "    scope: {tools: ['*']}\n", ""]
        ):
            before = stage.engine
            mine.write_text(_acme(extra=extra))
            addon.reload(now=100.0 + 10 * n)
            assert addon.reload(now=101.5 + 10 * n) is True and stage.engine is not before
        assert "let more through" not in caplog.text


def test_a_watcher_load_overtaken_by_the_option_is_dropped(tmp_path):
    mine, other = tmp_path / "mine.yaml", tmp_path / "other.yaml"
    mine.write_text(_acme())
    other.write_text(_acme(pattern="other_[0-9]{8}"))
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        engine, sig, gen = stage.engine, addon._signature, addon._gen
        tctx.configure(addon, mcp_rules=[str(other)])
        now = stage.engine
        addon._swap(engine, sig, gen, [], 1.0)  # a load that began before the option was set
        assert stage.engine is now


def test_the_watcher_thread_runs_between_running_and_done(tmp_path, monkeypatch):
    import time

    from mcp_gateway.scan import addon as addon_mod

    monkeypatch.setattr(addon_mod, "WATCH_INTERVAL", 0.05)
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme())
    p = Pipeline()
    addon = ScanAddon(p)
    addon.settle = (0.1, 0.5)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        addon.running()
        try:
            mine.write_text(_acme(pattern="acme_[0-9]{9}"))
            deadline = time.monotonic() + 30
            while stage.engine is first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert stage.engine is not first
        finally:
            addon.done()
        assert addon._thread is None


def test_directory_option_and_redact_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MCP_GATEWAY_REDACT_KEY", raising=False)
    (tmp_path / "a.yaml").write_text(
        "rules:\n  - id: h\n    type: custom_h\n    severity: low\n    action: redact\n"
        "    pattern: 'hh_[0-9]{8}'\n    redaction: hash\n"
    )
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(tmp_path)], mcp_redact_key="k1")
        m1 = msg(call({"k": "hh_12345678"}))
        p.run(m1)
        tctx.configure(addon, mcp_redact_key="k2")
        m2 = msg(call({"k": "hh_12345678"}))
        p.run(m2)
        a, b = m1.payload["params"]["arguments"]["k"], m2.payload["params"]["arguments"]["k"]
        assert a.startswith("[HMAC:custom_h:") and b.startswith("[HMAC:custom_h:") and a != b


def test_real_flow_is_marked_and_headers_object_is_read():
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        f = tflow.tflow()
        t = jwt()
        m = msg(
            call({"card": "4539 5787 6362 1486"}),
            flow=f,
            headers=Headers(authorization=f"Bearer {t}"),
        )
        p.run(m)
        assert {x.location for x in m.findings} == {
            "/params/arguments/card",
            "header:authorization",
        }
        assert f.marked == ":warning:" and "credit-card" in f.comment


def test_max_findings_option_reaches_the_engine_and_is_validated():
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        assert p.get("scan").engine.finding_cap == 500  # the default
        tctx.configure(addon, mcp_max_findings=0)
        assert p.get("scan").engine.finding_cap is None  # 0: no cap
        tctx.configure(addon, mcp_max_findings=20)
        assert p.get("scan").engine.finding_cap == 20
        with pytest.raises(exceptions.OptionsError, match="mcp_max_findings"):
            tctx.configure(addon, mcp_max_findings=-1)


def _sent_tools_call(g, arguments: dict | None = None):
    """A tools/call through the gateway's request hooks, ready for its answer."""
    from mitmproxy.test import tutils

    params: dict = {"name": "x"}
    if arguments is not None:
        params["arguments"] = arguments
    req = tutils.treq(
        method=b"POST",
        path=b"/mcp",
        headers=((b"content-type", b"application/json"),),
        content=orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}),
    )
    f = tflow.tflow(req=req)
    g.requestheaders(f)
    g.request(f)
    return f


def _gateway_with_scan():
    from mcp_gateway.core import Gateway

    g = Gateway()
    addon = ScanAddon(g.pipeline)
    return g, addon


@pytest.mark.parametrize(
    ("status", "ctype", "body"),
    [
        (500, "text/plain", "internal error, debug token {tok}"),
        (502, "text/html; charset=utf-8", "<html><body>upstream said {tok}</body></html>"),
        (200, "application/json", '{{"error": "debug token {tok}"}}'),  # JSON, not JSON-RPC
        (200, "text/plain; token={tok}", "ok"),  # the TypeScript SDK shows the type
        # an error as an event stream: the TypeScript SDK quotes the whole body, comments
        # and id / event / retry lines included
        (500, "text/event-stream", ": debug token {tok}\n\n"),
        (502, "text/event-stream", "id: {tok}\nevent: {tok}\nretry: {tok}\ndata: x\n\n"),
    ],
)
def test_answers_without_jsonrpc_are_scanned_as_text(status, ctype, body):
    # The TypeScript SDK client throws "Error POSTing to endpoint: <body>" and "Unexpected
    # content type: <type>": text a host hands to the model.
    from mitmproxy.test import tutils

    tok = github_token()
    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon)
        f = _sent_tools_call(g)
        f.response = tutils.tresp(
            status_code=status,
            headers=((b"content-type", ctype.format(tok=tok).encode()),),
            content=body.format(tok=tok).encode(),
        )
        g.responseheaders(f)
        g.response(f)
        sent = bytes(f.response.content) + str(f.response.headers).encode()
        assert tok.encode() not in sent
        assert b"REDACTED" in sent
        assert f.response.status_code == status


def test_events_of_an_mcp_stream_without_jsonrpc_are_scanned_as_text():
    from mcp_gateway.stream import SSEStream
    from mitmproxy.test import tutils

    tok = github_token()
    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon)
        f = _sent_tools_call(g)
        f.response = tutils.tresp(headers=((b"content-type", b"text/event-stream"),), content=None)
        g.responseheaders(f)
        assert isinstance(f.response.stream, SSEStream)
        body = f'data: debug token {tok}\n\ndata: {{"token": "{tok}"}}\n\n'.encode()
        out = b"".join([*f.response.stream(body), *f.response.stream(b"")])
        assert tok.encode() not in out
        assert out.count(b"[REDACTED:github_token]") == 2
        assert out.startswith(b"data: debug token [REDACTED:github_token]\n\n")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_target_is_scanned(status):
    # the TypeScript SDK does not follow a redirected POST: it throws "Redirect to <target>
    # not followed", path included, and hosts hand that to the model
    from mitmproxy.test import tutils

    tok = github_token()
    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon)
        f = _sent_tools_call(g)
        loc = f"https://api.example.net/bot{tok}/sendMessage"
        f.response = tutils.tresp(status_code=status, headers=((b"location", loc.encode()),))
        f.response.content = b""
        g.responseheaders(f)
        g.response(f)
        assert f.response.headers["location"] == (
            "https://api.example.net/bot[REDACTED:github_token]/sendMessage"
        )
        # a plain redirect is left alone
        f = _sent_tools_call(g)
        f.response = tutils.tresp(status_code=status, headers=((b"location", b"/mcp/"),))
        g.responseheaders(f)
        assert f.response.headers["location"] == "/mcp/"


def test_an_accepted_acknowledgement_is_not_audited():
    # The legacy HTTP+SSE transport answers every POST with 202 "Accepted": no client reads
    # it, and it is no message; an audit row for each (kind "invalid") doubled the trail.
    from mitmproxy.test import tutils

    g, addon = _gateway_with_scan()
    seen = []
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon)
        g.pipeline.add(_Recorder(seen))
        f = _sent_tools_call(g)
        assert [m.kind.value for m in seen] == ["request"]
        f.response = tutils.tresp(
            status_code=202, headers=((b"content-type", b"text/plain"),), content=b"Accepted"
        )
        g.responseheaders(f)
        g.response(f)
        assert bytes(f.response.content) == b"Accepted"
        assert [m.kind.value for m in seen] == ["request"]
        # an error page is still a message the client shows, and is recorded
        f = _sent_tools_call(g)
        f.response = tutils.tresp(
            status_code=500, headers=((b"content-type", b"text/plain"),), content=b"oops"
        )
        g.responseheaders(f)
        g.response(f)
        assert [m.kind.value for m in seen] == ["request", "request", "invalid"]


class _Recorder:
    name = "recorder"
    order = 10_000
    always = True

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def process(self, msg) -> None:
        self.seen.append(msg)


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json, x-debug={tok}",
        "application/json-{tok}",
        "text/event-stream; x={tok}",
    ],
)
def test_an_answers_content_type_that_clients_would_quote_is_scanned(ctype):
    # The TypeScript SDK reads the media type strictly and throws "Unexpected content type:
    # <the header>" (hosts hand that to the model); the gateway read such a body as JSON or
    # events and never looked at the header.
    from mitmproxy.test import tutils

    tok = github_token()
    g, addon = _gateway_with_scan()
    seen = []
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon)
        g.pipeline.add(_Recorder(seen))
        f = _sent_tools_call(g)
        body = b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}'
        f.response = tutils.tresp(
            headers=((b"content-type", ctype.format(tok=tok).encode()),), content=body
        )
        g.responseheaders(f)
        g.response(f)
        assert tok not in f.response.headers.get("content-type", "")
        assert "[REDACTED:github_token]" in f.response.headers["content-type"]
        assert any(x.rule == "github-token" for m in seen for x in m.findings)
        # a plain type, with a charset, is left alone
        f = _sent_tools_call(g)
        f.response = tutils.tresp(
            headers=((b"content-type", b"application/json; charset=utf-8"),), content=body
        )
        g.responseheaders(f)
        g.response(f)
        assert f.response.headers["content-type"] == "application/json; charset=utf-8"


ACME = (
    "rules:\n  - id: acme\n    type: custom_acme\n    severity: high\n    action: {action}\n"
    "    pattern: 'acme_[0-9]{{8}}'\n"
)


def _acme_rules(tmp_path, action: str) -> str:
    rules = tmp_path / "acme.yaml"
    rules.write_text(ACME.format(action=action))
    return str(rules)


def test_the_content_type_scan_is_not_cut_short_by_another_messages_cap(tmp_path):
    # the header's first scan ran under the finding caps another message had left: after one
    # that used up a rule's cap, the header was not looked at
    from mitmproxy.test import tutils

    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon, mcp_rules=[_acme_rules(tmp_path, "redact")], mcp_max_findings=2)
        f = _sent_tools_call(g)
        many = " ".join(f"acme_{i:08d}" for i in range(30))
        _sent_tools_call(g, {"t": many})  # another client's call, past the cap
        f.response = tutils.tresp(
            headers=((b"content-type", b"application/json, x=acme_12345678"),),
            content=b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}',
        )
        g.responseheaders(f)
        g.response(f)
        assert "acme_12345678" not in f.response.headers.get("content-type", "")


def test_the_content_type_of_a_plain_answer_is_scanned_once(tmp_path):
    from mitmproxy.test import tutils

    g, addon = _gateway_with_scan()
    seen = []
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon, mcp_rules=[_acme_rules(tmp_path, "log")])
        g.pipeline.add(_Recorder(seen))
        f = _sent_tools_call(g)
        f.response = tutils.tresp(
            status_code=500, headers=((b"content-type", b"text/plain; x=acme_12345678"),),
            content=b"oops",
        )  # fmt: skip
        g.responseheaders(f)
        g.response(f)
        assert len([x for m in seen for x in m.findings if x.rule == "acme"]) == 1


def test_a_rule_file_that_could_not_be_read_is_read_again_once_made_readable(tmp_path, monkeypatch):
    # chmod 000, then chmod 644 back: the file's mtime and size are those of the version
    # that could not be read; known by them only, it was never read again
    import os
    import time

    from mcp_gateway.scan import addon as mod

    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme())
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        mine.write_text(_acme(pattern="acme_[0-9]{9}"))
        real = mod.Engine.load

        def unreadable(*a, **kw):
            raise PermissionError(13, "Permission denied", str(mine))

        monkeypatch.setattr(mod.Engine, "load", unreadable)
        addon.reload(now=100.0)
        assert addon.reload(now=101.5) is False and stage.engine is first
        monkeypatch.setattr(mod.Engine, "load", real)
        addon.reload(now=102.0)
        assert addon.reload(now=103.5) is False and stage.engine is first  # not tried again
        before = mine.stat().st_ctime_ns
        for _ in range(200):  # (the file clock is coarse: chmod until the ctime moves)
            os.chmod(mine, 0o644)
            if mine.stat().st_ctime_ns != before:
                break
            time.sleep(0.01)
        addon.reload(now=104.0)
        assert addon.reload(now=105.5) is True and stage.engine is not first
        m = msg(call({"k": "acme_123456789"}))
        p.run(m)
        assert m.action is Action.BLOCK


def test_a_rule_file_deleted_while_running_keeps_the_rules_and_says_so(tmp_path, caplog):
    """A named rule file deleted (or made unreadable) while the gateway runs: its rules stay,
    and it is logged once (nothing was said until the file came back)."""
    caplog.set_level(logging.INFO, logger="mcp_gateway")
    mine = tmp_path / "mine.yaml"
    mine.write_text(_acme())
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        mine.unlink()
        assert addon.reload(now=100.0) is False and addon.reload(now=105.0) is False
        assert stage.engine is first
        assert caplog.text.count("keeping the running rules") == 1
        assert "cannot read" in caplog.text and "mine.yaml" in caplog.text
        m = msg(call({"k": "acme_12345678"}))
        p.run(m)
        assert m.action is Action.BLOCK  # (the running rules)
        mine.write_text(_acme(pattern="acme_[0-9]{9}"))
        addon.reload(now=200.0)
        assert addon.reload(now=201.5) is True and stage.engine is not first
        mine.unlink()
        addon.reload(now=300.0)
        assert caplog.text.count("keeping the running rules") == 2  # (again, once)


def test_a_rule_whose_pattern_list_was_cut_short_waits_and_says_so(tmp_path, caplog):
    # an editor writing the file in parts can stop inside a rule's own list of patterns: the
    # rule stays, with fewer of its patterns, and found less after one second, silently
    both = (
        "rules:\n  - id: acme\n    type: custom_acme\n    severity: high\n    action: block\n"
        "    patterns:\n      - 'acme_[0-9]{8}'\n      - 'acme-live-[a-z]{12}'\n"
    )
    first_only = both.rsplit("      - ", 1)[0]
    mine = tmp_path / "mine.yaml"
    mine.write_text(both)
    p = Pipeline()
    addon = ScanAddon(p)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_rules=[str(mine)])
        stage = p.get("scan")
        first = stage.engine
        mine.write_text(first_only)
        addon.reload(now=100.0)
        assert addon.reload(now=101.5) is False and stage.engine is first
        assert addon.reload(now=104.0) is False and stage.engine is first
        assert addon.reload(now=105.1) is True and stage.engine is not first
        assert "let more through in acme (1 of its patterns gone)" in caplog.text
        # a pattern added or changed is no loosening: applied once settled
        caplog.clear()
        mine.write_text(both)
        addon.reload(now=200.0)
        assert addon.reload(now=201.1) is True
        mine.write_text(both.replace("{12}", "{10,12}"))
        addon.reload(now=300.0)
        assert addon.reload(now=301.1) is True
        assert "let more through" not in caplog.text


def _dense_rejected(n: int) -> str:
    """Text dense in candidates that all fail confirmation (placeholder passwords): ~1 MB/s,
    the engine's slowest kind of input."""
    return "\n".join(f"password=changeme{i % 65536}" for i in range(n // 24))


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_scan_past_mcp_max_scan_ms_is_decided_by_the_fail_mode(mode, caplog):
    # a 16 MiB tools/call of such lines held the event loop (every other client) ~15 s
    import time

    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(g, mcp_fail_mode=mode)
        tctx.configure(addon, mcp_max_scan_ms=50)
        text = _dense_rejected(2_000_000)
        t0 = time.monotonic()
        f = _sent_tools_call(g, {"notes": text})
        took = time.monotonic() - t0
        assert took < 1.0  # (the whole scan: 1.5-3 s)
        if mode == "closed":
            assert f.response is not None
            err = orjson.loads(f.response.content)["error"]
            assert err["code"] == -32065 and "mcp_max_scan_ms" in err["message"]
        else:
            assert f.response is None
            assert orjson.loads(f.request.content)["params"]["arguments"]["notes"] == text
        assert "mcp_max_scan_ms" in caplog.text and "Traceback" not in caplog.text
        # the next message has its own time
        f = _sent_tools_call(g, {"q": "hello"})
        assert f.response is None
        # 0: no limit
        tctx.configure(addon, mcp_max_scan_ms=0)
        assert addon.stage.engine.time_budget is None


def test_mcp_max_scan_ms_is_a_whole_number_of_milliseconds_set_like_any_option():
    from mitmproxy import exceptions

    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="mcp_max_scan_ms"):
            tctx.configure(addon, mcp_max_scan_ms=-1)
        # as `--set mcp_max_scan_ms=250` gives it (a float option could not be set so:
        # mitmproxy parses no float from the command line)
        tctx.options.set("mcp_max_scan_ms=250")
        assert addon.stage.engine.time_budget == 0.25


def test_a_batchs_elements_share_the_scan_time():
    # each element of a batch had its own budget: 100 dense elements, 100 budgets
    from mitmproxy.test import tutils

    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(addon, mcp_max_scan_ms=50)
        engine = addon.stage.engine
        deadlines = []
        begin = engine.begin_message

        def recording(budgets=None, deadline=None):
            begin(budgets, deadline)
            deadlines.append(engine.deadline)

        engine.begin_message = recording
        text = _dense_rejected(100_000)  # ~0.1 s each: more than the budget
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "tools/call",
             "params": {"name": "x", "arguments": {"notes": text}}}
            for i in range(5)
        ]  # fmt: skip
        req = tutils.treq(
            method=b"POST",
            path=b"/mcp",
            headers=((b"content-type", b"application/json"),),
            content=orjson.dumps(batch),
        )
        f = tflow.tflow(req=req)
        g.requestheaders(f)
        g.request(f)
        assert len(deadlines) >= 5 and len(set(deadlines)) == 1 and deadlines[0] is not None
        errors = orjson.loads(f.response.content)
        assert [e["error"]["code"] for e in errors] == [-32065] * 5
        # the next body has time of its own
        f = _sent_tools_call(g, {"q": "hello"})
        assert f.response is None and len(set(deadlines)) == 2


def test_a_scan_out_of_time_keeps_its_findings_masked_and_leaves_nothing_behind(monkeypatch):
    # the stage stopped where the time ran out: the findings made so far kept the member
    # names they were found in unmasked (the audit shows locations), and the next message
    # inherited the matched values and an expired deadline
    from mcp_gateway.scan.engine import ScanTimeout
    from scan_helpers import github_token

    tok = github_token()
    seen = []
    g, addon = _gateway_with_scan()
    with taddons.context(g, addon) as tctx:
        tctx.configure(g, mcp_fail_mode="open")
        g.pipeline.add(_Recorder(seen))
        stage = addon.stage

        def late(*_a, **_k):
            raise ScanTimeout("not inspected: scanning took longer than 5 s (mcp_max_scan_ms)")

        monkeypatch.setattr(stage, "_scan_joins", late)  # (after the findings are located)
        _sent_tools_call(g, {"env": {tok: "set"}})
        (msg,) = [m for m in seen if m.findings]
        assert "scan" in msg.faults
        assert all(tok not in f.location and tok not in f.masked for f in msg.findings)
        assert stage._values == set() and stage.engine.deadline is None
