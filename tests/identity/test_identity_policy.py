"""The access policy: first matching rule decides, default otherwise; list answers filtered."""

from __future__ import annotations

import pytest
from mcp_gateway.identity.config import ConfigError, load_config_text
from mcp_gateway.identity.identify import Identity
from mcp_gateway.identity.policy import PolicyStage
from mcp_gateway.message import Action, Direction, ErrorCode, Kind, Message

CONF = """
policy:
  rules:
    - action: allow
      roles: [admin]
      tools: ["delete_*", "drop_*"]
    - action: deny
      tools: ["delete_*", "drop_*"]
      message: destructive tools need the admin role
    - action: deny
      consumers: ["anon:*", "token:*"]
      methods: ["tools/call"]
      servers: ["billing.internal:*"]
    - action: deny
      resources: ["file:///srv/secrets/*"]
    - action: deny
      prompts: [internal-*]
"""


def _stage(text: str = CONF) -> PolicyStage:
    return PolicyStage(load_config_text(text).policy)


def _who(consumer: str = "alice", roles=(), kind: str = "api_key") -> Identity:
    return Identity(consumer=consumer, roles=tuple(roles), kind=kind, key_id=consumer)


def _req(stage, mkex, mkreq, ident, method="tools/call", name="echo", server="127.0.0.1:8000"):
    ex = mkex(server=server)
    ex.identity = ident
    m = mkreq(ex, method=method, name=name)
    stage.process(m)
    return m


def test_first_matching_rule_decides(mkex, mkreq) -> None:
    st = _stage()
    admin, bob = _who("root", ["admin"]), _who("bob", ["reader"])
    assert _req(st, mkex, mkreq, admin, name="delete_repo").action is Action.PASS
    m = _req(st, mkex, mkreq, bob, name="delete_repo")
    assert m.action is Action.BLOCK
    r = m.refusal
    assert r.code == ErrorCode.FORBIDDEN == -32063 and r.stage == "policy" and r.http_status is None
    assert r.message == "forbidden by mcp-gateway policy: destructive tools need the admin role"
    assert r.data == {"policy": 1}
    assert _req(st, mkex, mkreq, bob, name="echo").action is Action.PASS
    assert st.refused_total == 1


def test_names_are_read_as_servers_may_read_them(mkex, mkreq) -> None:
    st = _stage()
    bob = _who("bob")
    # a tool name in another case (a server that matches names ignoring case)
    assert _req(st, mkex, mkreq, bob, name="DELETE_repo").action is Action.BLOCK
    # a resource URI as the SDK servers resolve it
    for uri in (
        "file:///srv/secrets/a.txt",
        "file:///srv/%73ecrets/a.txt",
        "FILE:///srv/secrets/a.txt",
        "file:///srv/public/../secrets/a.txt",
        "file:///SRV/Secrets/a.txt",
    ):
        m = _req(st, mkex, mkreq, bob, method="resources/read", name=uri)
        assert m.action is Action.BLOCK, uri
    ok = _req(st, mkex, mkreq, bob, method="resources/read", name="file:///srv/public/a.txt")
    assert ok.action is Action.PASS
    assert _req(st, mkex, mkreq, bob, method="prompts/get", name="internal-x").action is (
        Action.BLOCK
    )
    # a tools selector does not match a prompt of the same name, nor other methods
    assert _req(st, mkex, mkreq, bob, method="prompts/get", name="delete_x").action is (Action.PASS)


def test_names_are_folded_as_lookups_that_ignore_case_fold_them(mkex, mkreq) -> None:
    """Java's equalsIgnoreCase, Go's EqualFold and .NET's OrdinalIgnoreCase fold a long s to s,
    a dotless i to i and the Kelvin sign to k; str.lower does not, so execute_ſql passed a
    deny rule on execute_sql (red-team round 32, through a real mitmdump)."""
    st = _stage(
        "policy:\n  rules:\n    - action: deny\n"
        "      tools: [execute_sql, kill_task]\n      prompts: [secret_*]\n"
    )
    bob = _who("bob")
    for name in (
        "execute_\u017fql",
        "k\u0131ll_task",
        "\u212aill_task",
        "EXECUTE_SQL",
        "K\u0130LL_TASK",
    ):
        assert _req(st, mkex, mkreq, bob, name=name).action is Action.BLOCK, name
    m = _req(st, mkex, mkreq, bob, method="prompts/get", name="\u017fecret_x")
    assert m.action is Action.BLOCK
    for name in ("execute_sq", "kill_tasks", "exеcute_sql"):  # others (a Cyrillic e)
        assert _req(st, mkex, mkreq, bob, name=name).action is Action.PASS, name
    # under a default deny, an allow rule still lets the name it names through
    st = _stage(
        "policy:\n  default: deny\n  rules:\n    - action: allow\n      tools: [list_ſtuff]\n"
    )
    assert _req(st, mkex, mkreq, bob, name="list_ſtuff").action is Action.PASS
    assert _req(st, mkex, mkreq, bob, name="list_stuff").action is Action.BLOCK


def test_names_are_also_read_as_width_and_accent_insensitive_lookups_read_them(mkex, mkreq) -> None:
    """A server that keeps its tools in a database table looks them up under the table's
    collation: MySQL 8's default ignores width and accents, SQL Server's width, so a
    fullwidth or accented spelling runs the ASCII tool there (red-team round 33; the SDKs'
    dict and map lookups do not, so these readings only add refusals). An allow rule does
    not let a spelling through that it does not name as written."""
    st = _stage(
        "policy:\n  rules:\n    - action: deny\n      tools: [execute_sql, delete_*]\n"
        "      prompts: [secret_*]\n"
    )
    bob = _who("bob")
    for name in (
        "ｅｘｅｃｕｔｅ_sql",
        "ＥＸＥＣＵＴＥ＿ＳＱＬ",
        "exécute_sql",  # é
        "exécute_sql",  # e and a combining acute accent
        "ﬀ",  # (ff ligature: a name of its own, not denied)
        "ｄｅｌｅｔｅ_repo",
        "dëlète_repo",
        "execute_sql ",  # (SQL Server and PAD SPACE collations ignore trailing spaces)
        "execute\u200b_sql",  # (Unicode's collation ignores a zero-width space)
        "exe\u00adcute_sql",  # and a soft hyphen
    ):
        expect = Action.PASS if name == "ﬀ" else Action.BLOCK
        assert _req(st, mkex, mkreq, bob, name=name).action is expect, name
    m = _req(st, mkex, mkreq, bob, method="prompts/get", name="ｓｅｃｒｅｔ_x")
    assert m.action is Action.BLOCK
    st = _stage("policy:\n  default: deny\n  rules:\n    - action: allow\n      tools: [read_*]\n")
    assert _req(st, mkex, mkreq, bob, name="read_x").action is Action.PASS
    assert _req(st, mkex, mkreq, bob, name="ｒｅａｄ_x").action is Action.BLOCK


def test_a_resource_uri_is_also_read_as_a_fetching_server_reaches_it(mkex, mkreq) -> None:
    """Userinfo, a host's trailing dot, a file: URI's host, a query or a fragment name the same
    page or file to a server that fetches or opens the URI: each passed a deny rule through a
    real mitmdump (red-team round 32)."""
    st = _stage(
        "policy:\n  rules:\n    - action: deny\n      resources:\n"
        '        - "https://internal.example/admin/*"\n        - "file:///srv/secrets/*"\n'
        '        - "https://internal.example/export"\n'
    )
    bob = _who("bob")
    for uri in (
        "https://u@internal.example/admin/x",
        "https://u:pw@INTERNAL.example./admin/x",
        "https://internal.example./admin/x",
        "https://internal.example/export?all=1",
        "https://internal.example/export#x",
        "file://127.0.0.1/srv/secrets/a",
        "file://fileserver./srv/secrets/a",
        "file:///srv/secrets/a#x",
    ):
        m = _req(st, mkex, mkreq, bob, method="resources/read", name=uri)
        assert m.action is Action.BLOCK, uri
    for uri in (
        "https://internal.example/public/x",
        "https://u@internal.example/public/x",
        "https://internal.example/exports",
        "file://127.0.0.1/srv/public/a",
        "https://admin.example/internal.example/admin/x",
    ):
        m = _req(st, mkex, mkreq, bob, method="resources/read", name=uri)
        assert m.action is Action.PASS, uri


def test_who_and_where(mkex, mkreq) -> None:
    st = _stage()
    anon = Identity(consumer="anon:10.0.0.7", kind="anonymous", client_addr="10.0.0.7")
    token = Identity(consumer="token:ab12", kind="bearer", token_hash="ab12")
    for who in (anon, token):
        m = _req(st, mkex, mkreq, who, server="billing.internal:443")
        assert m.action is Action.BLOCK and m.refusal.data == {"policy": 2}
        # another server, and tools/list on this one, are allowed
        assert _req(st, mkex, mkreq, who, server="docs.internal:443").action is Action.PASS
        assert (
            _req(
                st, mkex, mkreq, who, method="tools/list", name=None, server="billing.internal:443"
            ).action
            is Action.PASS
        )
    # a verified consumer is not anon:* or token:*
    assert _req(st, mkex, mkreq, _who("alice"), server="billing.internal:443").action is (
        Action.PASS
    )


def test_default_deny_never_refuses_initialize_ping_or_notifications(mkex, mkreq) -> None:
    st = _stage(
        "policy:\n  default: deny\n  rules:\n"
        "    - {action: allow, roles: [agent], methods: ['tools/list', 'tools/call']}\n"
    )
    agent, other = _who("a", ["agent"]), _who("o")
    assert _req(st, mkex, mkreq, agent, name="anything").action is Action.PASS
    m = _req(st, mkex, mkreq, other, name="anything")
    assert m.action is Action.BLOCK and m.refusal.data == {"policy": "default"}
    assert "tools/call anything is not allowed for o" in m.refusal.message
    assert _req(st, mkex, mkreq, agent, method="resources/list", name=None).action is (Action.BLOCK)
    for method in ("initialize", "ping"):
        assert _req(st, mkex, mkreq, other, method=method, name=None).action is Action.PASS
    ex = mkex()
    ex.identity = other
    note = Message(
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        Direction.CLIENT_TO_SERVER,
        Kind.NOTIFICATION,
        ex,
        method="notifications/initialized",
    )
    st.process(note)
    assert note.action is Action.PASS
    # an answer to a server's request (sampling) is not a request of the client's
    answer = Message(
        {"jsonrpc": "2.0", "id": 3, "result": {}},
        Direction.CLIENT_TO_SERVER,
        Kind.RESULT,
        ex,
        id=3,
        method="sampling/createMessage",
    )
    st.process(answer)
    assert answer.action is Action.PASS


def test_list_answers_leave_out_what_the_caller_may_not_use(mkex) -> None:
    st = _stage()
    tools = [{"name": n, "inputSchema": {}} for n in ("echo", "delete_repo", "drop_table")]

    def listed(ident, method="tools/list", member="tools", entries=tools):
        ex = mkex()
        ex.identity = ident
        payload = {"jsonrpc": "2.0", "id": 1, "result": {member: [dict(e) for e in entries]}}
        m = Message(payload, Direction.SERVER_TO_CLIENT, Kind.RESULT, ex, id=1, method=method)
        st.process(m)
        return m

    m = listed(_who("bob"))
    assert [t["name"] for t in m.payload["result"]["tools"]] == ["echo"] and m.modified
    m = listed(_who("root", ["admin"]))
    assert len(m.payload["result"]["tools"]) == 3 and not m.modified
    res = [{"uri": "file:///srv/secrets/k"}, {"uri": "file:///srv/public/k"}]
    m = listed(_who("bob"), "resources/list", "resources", res)
    assert m.payload["result"]["resources"] == [{"uri": "file:///srv/public/k"}]
    prompts = [{"name": "internal-ops"}, {"name": "summary"}]
    m = listed(_who("bob"), "prompts/list", "prompts", prompts)
    assert m.payload["result"]["prompts"] == [{"name": "summary"}]
    # hide: false leaves answers alone
    st.configure(load_config_text(CONF + "  hide: false\n").policy)
    assert len(listed(_who("bob")).payload["result"]["tools"]) == 3


def test_no_policy_is_off_and_bad_rules_name_their_line() -> None:
    st = PolicyStage()
    assert not st.enabled
    with pytest.raises(ConfigError) as e:
        load_config_text("policy:\n  rules:\n    - action: allow\n      tool: [x]\n", "gw.yaml")
    assert "gw.yaml:4: policy.rules[0].tool" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config_text("policy:\n  default: block\n", "gw.yaml")
    assert "gw.yaml:2: policy.default" in str(e.value)


def test_a_resource_uri_too_long_to_resolve_may_name_any_resource(mkex, mkreq) -> None:
    # file:///srv/public/x/../x/../…/../secrets/key padded past 64 KiB is file:///srv/secrets/key
    # to the SDK servers (pydantic's AnyUrl resolves the dot segments); matched as written only,
    # it passed the deny rule and read the secret through a real mitmdump
    huge = "file:///srv/public/" + "x/../" * 14_000 + "../secrets/key"
    bob = _who("bob")
    m = _req(_stage(), mkex, mkreq, bob, method="resources/read", name=huge)
    assert m.action is Action.BLOCK and m.refusal.data == {"policy": 3}
    # nor does an allow rule on what it seems to name let it through a default deny
    st = _stage(
        "policy:\n  default: deny\n  rules:\n"
        "    - {action: allow, resources: ['file:///srv/public/*']}\n"
    )
    m = _req(st, mkex, mkreq, bob, method="resources/read", name=huge)
    assert m.action is Action.BLOCK and m.refusal.data == {"policy": "default"}
    ok = _req(st, mkex, mkreq, bob, method="resources/read", name="file:///srv/public/a")
    assert ok.action is Action.PASS
    # a rule without a resources selector still reads it as any request (here: allows it)
    st = _stage("policy:\n  default: deny\n  rules:\n    - {action: allow, consumers: [bob]}\n")
    assert _req(st, mkex, mkreq, bob, method="resources/read", name=huge).action is Action.PASS


def test_an_allow_rule_on_servers_goes_by_where_the_request_goes(mkex, mkreq) -> None:
    # the shim's Mcp-Gateway-Server name (trusted for loopback upstreams) and a regular-mode
    # Host header naming another site are the client's: through a real mitmdump,
    # "Mcp-Gateway-Server: docs.internal:1" to 127.0.0.1 passed an allow rule on
    # docs.internal:* under default deny and the server ran the call
    st = _stage(
        "policy:\n  default: deny\n  rules:\n"
        "    - {action: deny, servers: ['billing.internal:*'], tools: [pay]}\n"
        "    - {action: allow, servers: ['docs.internal:*']}\n"
    )
    bob = _who("bob")
    for named in ("server", "vhost"):
        ex = mkex(server="127.0.0.1:9000")
        ex.identity = bob
        if named == "server":
            ex.server, ex.address = "docs.internal:1", "127.0.0.1:9000"
        else:
            ex.vhost = "docs.internal:80"
        m = mkreq(ex, method="tools/call", name="echo")
        st.process(m)
        assert m.action is Action.BLOCK and m.refusal.data == {"policy": "default"}, named
        # a deny rule still matches a name the client gave
        ex = mkex(server="docs.internal:443")
        ex.identity = bob
        if named == "server":
            ex.server, ex.address = "billing.internal:443", "docs.internal:443"
        else:
            ex.vhost = "billing.internal:443"
        m = mkreq(ex, method="tools/call", name="pay")
        st.process(m)
        assert m.action is Action.BLOCK and m.refusal.data == {"policy": 0}, named
    # where the request really goes
    assert _req(st, mkex, mkreq, bob, server="docs.internal:443").action is Action.PASS
    ex = mkex(server="127.0.0.1:9000")
    ex.identity = bob
    ex.server, ex.address = "docs", "docs.internal:8000"  # a shim name for a real address
    m = mkreq(ex, method="tools/call", name="echo")
    st.process(m)
    assert m.action is Action.PASS


def test_completions_follow_the_rules_on_their_prompt_or_resource(mkex) -> None:
    # completion/complete runs the completion handler of the prompt or resource template its
    # ref names (a prompt's argument values, a template's parameters): a deny rule on
    # prompts or resources passed it while refusing prompts/get and resources/read
    from mcp_gateway.parse import target_name

    st = _stage()
    bob = _who("bob")

    def complete(ref: dict) -> Message:
        ex = mkex()
        ex.identity = bob
        params = {"ref": ref, "argument": {"name": "topic", "value": "a"}}
        payload = {"jsonrpc": "2.0", "id": 9, "method": "completion/complete", "params": params}
        m = Message(
            payload,
            Direction.CLIENT_TO_SERVER,
            Kind.REQUEST,
            ex,
            id=9,
            method="completion/complete",
            name=target_name("completion/complete", params),
        )
        st.process(m)
        return m

    m = complete({"type": "ref/prompt", "name": "internal-notes"})
    assert m.action is Action.BLOCK and m.refusal.data == {"policy": 4}
    assert complete({"type": "ref/prompt", "name": "INTERNAL-notes"}).action is Action.BLOCK
    m = complete({"type": "ref/resource", "uri": "file:///srv/secrets/{name}"})
    assert m.action is Action.BLOCK and m.refusal.data == {"policy": 3}
    m = complete({"type": "ref/resource", "uri": "file:///srv/%73ecrets/{name}", "name": "x"})
    assert m.action is Action.BLOCK
    # others pass; a tools rule does not read a prompt of a tool's name
    assert complete({"type": "ref/prompt", "name": "greeting"}).action is Action.PASS
    assert complete({"type": "ref/prompt", "name": "delete_x"}).action is Action.PASS
    assert complete({"type": "ref/resource", "uri": "file:///srv/public/{n}"}).action is (
        Action.PASS
    )


def test_a_request_naming_a_member_twice_goes_on_as_judged(mkex) -> None:
    import orjson

    st = _stage()
    ex = mkex()
    ex.identity = _who("bob")
    raw = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
        b'"params":{"name":"delete_repo","name":"echo","arguments":{}}}'
    )
    payload = orjson.loads(raw)
    m = Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=1, method="tools/call",
        name="echo", raw=raw,
    )  # fmt: skip
    st.process(m)
    # allowed as echo, the copy the parser kept; re-serialized so that no server reads the other
    assert m.action is Action.PASS and m.modified
    once = orjson.dumps(payload)
    m2 = Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=1, method="tools/call",
        name="echo", raw=once,
    )  # fmt: skip
    st.process(m2)
    assert m2.action is Action.PASS and not m2.modified  # forwarded byte-identical
    # the method named twice: judged as ping (never refused), sent on as ping
    raw = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","method":"ping"}'
    m3 = Message(
        orjson.loads(raw), Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=2, method="ping",
        raw=raw,
    )  # fmt: skip
    st.process(m3)
    assert m3.action is Action.PASS and m3.modified


HIDDEN_BY_METHOD = """
policy:
  rules:
    - {action: deny, methods: ["prompts/get"], prompts: ["internal-*"]}
    - {action: deny, methods: ["resources/read"], resources: ["file:///srv/secrets/*"]}
"""


def _answer(st, mkex, ident, method, result) -> Message:
    ex = mkex()
    ex.identity = ident
    payload = {"jsonrpc": "2.0", "id": 1, "result": result}
    m = Message(payload, Direction.SERVER_TO_CLIENT, Kind.RESULT, ex, id=1, method=method)
    st.process(m)
    return m


def _complete(st, mkex, ident, ref: dict) -> Message:
    from mcp_gateway.parse import target_name

    ex = mkex()
    ex.identity = ident
    params = {"ref": ref, "argument": {"name": "topic", "value": "a"}}
    payload = {"jsonrpc": "2.0", "id": 9, "method": "completion/complete", "params": params}
    m = Message(
        payload,
        Direction.CLIENT_TO_SERVER,
        Kind.REQUEST,
        ex,
        id=9,
        method="completion/complete",
        name=target_name("completion/complete", params),
    )
    st.process(m)
    return m


def test_hide_leaves_resource_templates_out_and_refuses_their_completions(mkex) -> None:
    # resources/templates/list went on whole: a template the caller may not read was offered
    # (and its completions answered), beside a resources/list that left its resources out
    bob = _who("bob")
    for conf in (CONF, HIDDEN_BY_METHOD):
        st = _stage(conf)
        templates = [
            {"uriTemplate": "file:///srv/secrets/{name}", "name": "secret"},
            {"uriTemplate": "file:///srv/%73ecrets/{name}", "name": "secret, escaped"},
            {"uriTemplate": "file:///srv/public/{name}", "name": "public"},
        ]
        m = _answer(st, mkex, bob, "resources/templates/list", {"resourceTemplates": templates})
        assert [t["name"] for t in m.payload["result"]["resourceTemplates"]] == ["public"]
        assert m.modified
        ref = {"type": "ref/resource", "uri": "file:///srv/secrets/{name}"}
        assert _complete(st, mkex, bob, ref).action is Action.BLOCK
        ref = {"type": "ref/resource", "uri": "file:///srv/public/{name}"}
        assert _complete(st, mkex, bob, ref).action is Action.PASS
    # hide: false leaves the answer alone
    st = _stage(HIDDEN_BY_METHOD + "  hide: false\n")
    m = _answer(st, mkex, bob, "resources/templates/list", {"resourceTemplates": templates})
    assert len(m.payload["result"]["resourceTemplates"]) == 3 and not m.modified


def test_hide_refuses_the_completions_of_a_prompt_it_leaves_out(mkex) -> None:
    # a rule on prompts/get alone left internal-ops out of prompts/list, yet its completions
    # were answered: the caller learnt the prompt exists and was offered its argument values
    st = _stage(HIDDEN_BY_METHOD)
    bob = _who("bob")
    prompts = [{"name": "internal-ops"}, {"name": "summary"}]
    m = _answer(st, mkex, bob, "prompts/list", {"prompts": prompts})
    assert m.payload["result"]["prompts"] == [{"name": "summary"}]
    m = _complete(st, mkex, bob, {"type": "ref/prompt", "name": "internal-ops"})
    assert m.action is Action.BLOCK and m.refusal.code == ErrorCode.FORBIDDEN
    assert m.refusal.data == {"policy": 0}
    assert "prompts/get internal-ops is not allowed for bob" in m.refusal.message
    assert _complete(st, mkex, bob, {"type": "ref/prompt", "name": "INTERNAL-ops"}).action is (
        Action.BLOCK
    )
    assert _complete(st, mkex, bob, {"type": "ref/prompt", "name": "summary"}).action is (
        Action.PASS
    )
    # without hide, a rule naming prompts/get alone leaves completions alone, as it says
    st = _stage(HIDDEN_BY_METHOD + "  hide: false\n")
    m = _complete(st, mkex, bob, {"type": "ref/prompt", "name": "internal-ops"})
    assert m.action is Action.PASS


def test_a_public_cache_scope_becomes_private_on_answers_the_policy_shaped(mkex) -> None:
    # 2026-07-28 list and read answers carry cacheScope; "public" lets a shared cache serve
    # the answer across authorization contexts: a list filtered for bob, or a resource bob
    # may read, served so to others
    st = _stage()
    bob, root = _who("bob"), _who("root", ["admin"])
    tools = [{"name": "echo", "inputSchema": {}}, {"name": "delete_repo", "inputSchema": {}}]
    for who in (bob, root):
        res = {"tools": [dict(t) for t in tools], "cacheScope": "public", "ttlMs": 60000}
        res["resultType"] = "complete"
        m = _answer(st, mkex, who, "tools/list", res)
        assert m.payload["result"]["cacheScope"] == "private" and m.modified
    m = _answer(st, mkex, bob, "tools/list", {"tools": tools, "cacheScope": "private"})
    assert m.payload["result"]["cacheScope"] == "private"
    contents = {"contents": [{"uri": "file:///srv/public/a", "text": "x"}], "cacheScope": "public"}
    m = _answer(st, mkex, bob, "resources/read", contents)
    assert m.payload["result"]["cacheScope"] == "private" and m.modified
    m = _answer(st, mkex, bob, "tools/call", {"content": [], "cacheScope": "public"})
    assert m.payload["result"]["cacheScope"] == "public" and not m.modified
    # no policy: nothing is per caller, nothing changes
    contents["cacheScope"] = "public"
    m = _answer(PolicyStage(), mkex, bob, "resources/read", contents)
    assert m.payload["result"]["cacheScope"] == "public" and not m.modified
