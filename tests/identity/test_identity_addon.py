"""IdentityAddon: the mcp_config option, start-up errors, hot reload, live revocation."""

from __future__ import annotations

import contextlib
import logging
import time

import pytest
from mcp_gateway.identity.addon import IdentityAddon
from mcp_gateway.identity.keys import create_key, revoke_key
from mcp_gateway.message import Action
from mcp_gateway.pipeline import Pipeline
from mitmproxy import exceptions, http
from mitmproxy.test import taddons


def _wait(cond, timeout: float = 3.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def _driven(tmp_path, text: str):
    """An addon on a config file, its watcher stopped: the test drives tick() itself (an
    edit is applied at the first look: no settling time)."""
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(text)
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        a.done()
        a.settle = (0.0, 0.0)
        yield cfg, p, a


def test_defaults_register_the_identity_stages() -> None:
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config="")
        assert [s.name for s in p.stages] == ["identify", "limits"]  # no policy: no stage
        assert a.state.cfg.auth.required is False
        a.done()


def test_bad_config_is_an_options_error_naming_file_line_field(tmp_path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("limits:\n  default: lots\n")
    a = IdentityAddon(Pipeline())
    with taddons.context(a) as tctx:
        with pytest.raises(
            exceptions.OptionsError, match=rf"{cfg}:2: limits.default: invalid rate"
        ):
            tctx.configure(a, mcp_config=str(cfg))
        with pytest.raises(exceptions.OptionsError, match="file not found"):
            tctx.configure(a, mcp_config=str(tmp_path / "missing.yaml"))
        a.done()


def test_reload_applies_good_edits_and_keeps_old_config_on_bad_ones(
    tmp_path, mkex, mkreq, caplog
) -> None:
    with _driven(tmp_path, "limits:\n  default: 100/minute\n") as (cfg, p, a):
        stage = a.identify

        def call(token: str = "same-token") -> Action:
            ex = mkex(auth=f"Bearer {token}")
            p.start_exchange(ex)
            return p.run(mkreq(ex)).action

        assert call() is Action.PASS
        cfg.write_text("limits:\n  default: 1/minute\n")
        a.tick()
        assert (
            a.identify is stage
        )  # same stage objects: nothing re-registered, no connection dropped
        # (the call before the edit took this minute's one token: its bucket goes on)
        assert call() is Action.BLOCK
        assert call("other-token") is Action.PASS and call("other-token") is Action.BLOCK
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
            cfg.write_text("limits:\n  default: 1/minute\n  bogus: true\n")
            a.tick()
            a.tick()  # logged once per bad version
        errs = [r for r in caplog.records if "keeping the previous configuration" in r.getMessage()]
        assert len(errs) == 1 and f"{cfg}:3: limits.bogus" in errs[0].getMessage()
        assert a.state.cfg.limits.default.count == 1  # old config still in force
        cfg.write_text("auth:\n  required: true\n")
        a.tick()
        ex = mkex()
        assert p.start_exchange(ex) is not None and ex.refusal.http_status == 401


def test_an_emptied_config_is_an_edit_in_progress_not_a_new_config(tmp_path, mkex, caplog):
    # `curl … > gateway.yaml` truncates the file first: auth must not switch off meanwhile
    with _driven(tmp_path, "auth:\n  required: true\n") as (cfg, p, a):
        for blank in ("", "# being rewritten\n", "---\n\n"):
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                cfg.write_text(blank)
                a.tick()
            assert "is empty" in caplog.text and a.state.cfg.auth.required is True
            ex = mkex()
            assert p.start_exchange(ex) is not None and ex.refusal.http_status == 401
        cfg.write_text("{}\n")  # cleared on purpose
        a.tick()
        assert a.state.cfg.auth.required is False


def test_revocation_takes_effect_within_a_second_without_restart(tmp_path, mkex) -> None:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"keys_db: {db}\nauth:\n  required: true\n")
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))  # starts the watcher thread
        try:
            ex = mkex(auth=f"Bearer {key}")
            assert p.start_exchange(ex) is None and ex.identity.consumer == "alice"
            revoke_key(db, rec.id)  # what `mcp-gateway keys revoke` does, from another connection

            def refused() -> bool:
                e = mkex(auth=f"Bearer {key}")
                return p.start_exchange(e) is not None and e.refusal.http_status == 401

            assert _wait(refused) < 1.5
            # and a key created while running is accepted without restart
            key2, _ = create_key(db, "b", "bob", [])

            def accepted() -> bool:
                e = mkex(auth=f"Bearer {key2}")
                return p.start_exchange(e) is None

            assert _wait(accepted) < 1.5
        finally:
            a.done()
        assert a._thread is None


def test_addon_hooks_mask_injected_secret_and_learn_sessions(tmp_path, monkeypatch, mkex) -> None:
    monkeypatch.setenv("MGW_ADDON_SECRET", "zzz-upstream-secret")
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f'keys_db: {db}\nservers:\n  - match: "127.0.0.1:*"\n    credential: {{ref: env://MGW_ADDON_SECRET}}\n'
    )
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        a.done()
        ex = mkex(auth=f"Bearer {key}")
        assert p.start_exchange(ex) is None
        f = ex.flow
        assert f.request.headers["authorization"] == "Bearer zzz-upstream-secret"
        f.response = http.Response.make(200, b"", {"mcp-session-id": "sess-42"})
        a.responseheaders(f)  # the request has gone upstream
        assert f.request.headers["authorization"] == "[mcp-gateway: env://MGW_ADDON_SECRET]"
        assert a.identify.sessions.owner("sess-42") == f"key:{rec.id}"
        p.end_exchange(ex)
        assert not a.identify._pending and not a.identify._masks


@contextlib.contextmanager
def _keyed(tmp_path):
    """An addon whose config names a keys database holding one key: (pipeline, addon, key)."""
    db = tmp_path / "gw.db"
    key, _ = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"keys_db: {db}\n")
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        a.done()
        yield p, a, key


def test_gateway_key_never_forwarded_on_non_mcp_requests(tmp_path, mkex) -> None:
    from mitmproxy.test import tflow

    with _keyed(tmp_path) as (p, a, key):
        f = tflow.tflow()  # a request the MCP core did not take (e.g. a plain REST call)
        f.request.headers["Authorization"] = f"Bearer {key}"
        a.request(f)
        assert "authorization" not in f.request.headers
        g = tflow.tflow()
        g.request.headers["Authorization"] = "Bearer someone-elses-token"
        a.request(g)
        assert g.request.headers["authorization"] == "Bearer someone-elses-token"
        # an MCP exchange in progress is left to the identify stage
        ex = mkex(auth="Bearer other")
        p.start_exchange(ex)
        ex.flow.request.headers["Authorization"] = f"Bearer {key}"
        a.request(ex.flow)
        assert ex.flow.request.headers["authorization"] == f"Bearer {key}"


def test_gateway_key_in_a_url_query_is_removed_before_it_goes_on(tmp_path, mkex) -> None:
    # the gateway reads keys from the Authorization header only: one put in the query
    # (?access_token=mgw_…) went on to the server, which could replay it at the gateway
    from mitmproxy.test import tflow

    with _keyed(tmp_path) as (p, a, key):
        f = tflow.tflow()
        f.request.path = f"/mcp?session=abc&access_token={key}&x=1"
        a.request(f)
        assert dict(f.request.query) == {"session": "abc", "x": "1"}
        # an MCP exchange too (the identify stage only looks at the header)
        ex = mkex(auth="Bearer other")
        p.start_exchange(ex)
        ex.flow.request.path = f"/mcp?api_key={key.upper()}"
        a.request(ex.flow)
        assert "api_key" not in ex.flow.request.query
        g = tflow.tflow()
        g.request.path = "/search?q=mgw_is_a_word"  # (not a key's shape)
        a.request(g)
        assert g.request.path == "/search?q=mgw_is_a_word"
        h = tflow.tflow()
        h.request.path = "/search?q=hello&page=2"
        a.request(h)
        assert h.request.path == "/search?q=hello&page=2"  # (untouched: not even re-encoded)
        # percent-encoded, as the server decodes it (red-team round 30)
        for spelt in (key.replace("_", "%5F"), "%6D" + key[1:]):
            e = tflow.tflow()
            e.request.path = f"/mcp?a=1&key={spelt}"
            a.request(e)
            assert dict(e.request.query) == {"a": "1"}, spelt
        k = tflow.tflow()
        k.request.path = "/search?q=50%25&page=2"
        a.request(k)
        assert k.request.path == "/search?q=50%25&page=2"


def test_slow_jwks_does_not_delay_revocation(tmp_path, mkex, jwks_server, signer, mkjwks) -> None:
    jwks_server.doc = mkjwks(signer)
    jwks_server.delay = 4.0  # every JWKS fetch hangs for 4 s
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"keys_db: {db}\nauth:\n  jwt:\n    jwks_url: {jwks_server.url}\n    fetch_timeout: 10\n"
    )
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        try:
            _wait(lambda: jwks_server.hits >= 1)  # a fetch is hanging now
            revoke_key(db, rec.id)

            def refused() -> bool:
                e = mkex(auth=f"Bearer {key}")
                return p.start_exchange(e) is not None

            assert _wait(refused) < 1.5
            # a JWT meanwhile: the JWKS is not loaded yet -> 503, not accepted
            e = mkex(auth=f"Bearer {signer.token()}")
            assert p.start_exchange(e) is not None and e.refusal.http_status == 503
        finally:
            a.done()


def test_an_edit_is_applied_once_it_has_settled(tmp_path, caplog) -> None:
    """`curl … > gateway.yaml` writes the file in parts, and a part that stops before
    `auth:` is a valid configuration: a change waits until the file has stayed the same
    for a second, and one that switches a protection off waits five."""
    full = "keys_db: x.db\nlimits:\n  default: 100/minute\nauth:\n  required: true\n"
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        cfg.write_text("keys_db: x.db\nlimits:\n  default: 100/minute\n")  # cut short
        assert not a.reload(now=100.0)  # just changed
        assert not a.reload(now=100.6)
        assert not a.reload(now=103.0)  # settled, but it would switch authentication off
        assert a.state.cfg.auth.required is True
        cfg.write_text(full + "sessions:\n  idle_timeout: 600\n")  # the writer goes on
        assert not a.reload(now=103.5)
        assert a.reload(now=104.6)  # the same protections: one second is enough
        assert a.state.cfg.auth.required is True
        cfg.write_text("{}\n")  # off on purpose: applied once unchanged for five seconds
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
            assert not a.reload(now=200.0)
            assert not a.reload(now=204.0)
            assert a.reload(now=205.1)
        assert a.state.cfg.auth.required is False
        assert "switches authentication and rate limits off" in caplog.text


def test_an_alias_bomb_edit_is_refused_at_once_and_the_old_config_kept(tmp_path, mkex, caplog):
    # nine levels of ten aliases: 10**9 values; the watcher used to expand them for minutes,
    # gigabytes deep, inside the gateway's process
    bomb = "\n".join(
        ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
        + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
        + ["auth: {required: false}", "x: *a8", ""]
    )
    with _driven(tmp_path, "auth:\n  required: true\n") as (cfg, p, a):
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
            cfg.write_text(bomb)
            t = time.monotonic()
            a.tick()
            assert time.monotonic() - t < 5
        assert "values once aliases are expanded; keeping the previous configuration" in caplog.text
        ex = mkex()
        assert p.start_exchange(ex) is not None and ex.refusal.http_status == 401


def test_a_fifo_in_the_configs_place_does_not_stop_revocation(tmp_path, mkex, caplog) -> None:
    # the watcher opened it to see whether it was blank, and waited in open() for a writer for
    # good: key revocation (and JWKS and secret refreshes) stopped with it
    import os

    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"keys_db: {db}\nauth:\n  required: true\n")
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        a.settle = (0.0, 0.0)
        try:
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                cfg.unlink()
                os.mkfifo(cfg)
                _wait(lambda: "is no longer a regular file" in caplog.text)
            revoke_key(db, rec.id)

            def refused() -> bool:
                e = mkex(auth=f"Bearer {key}")
                return p.start_exchange(e) is not None and e.refusal.http_status == 401

            assert _wait(refused) < 1.5
            assert a.state.cfg.auth.required is True
        finally:
            if a._thread is not None and a._thread.is_alive():
                # (the unfixed watcher is stuck in open(): a writer lets it go)
                with contextlib.suppress(OSError):
                    fd = os.open(cfg, os.O_WRONLY | os.O_NONBLOCK)
                    os.close(fd)
            a.done()


def test_a_config_file_over_16_mib_is_refused(tmp_path) -> None:
    from mcp_gateway.identity.config import load_config
    from mcp_gateway.yamlconf import ConfigError

    cfg = tmp_path / "gw.yaml"
    with cfg.open("w") as f:
        f.write("auth:\n  required: true\n")
        f.write(("#" * 1023 + "\n") * (17 * 1024))
    with pytest.raises(ConfigError, match="larger than 16 MiB"):
        load_config(cfg)


def test_the_policy_stage_joins_the_pipeline_with_rules_and_leaves_without(tmp_path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("policy:\n  rules:\n    - {action: deny, tools: [x]}\n")
    p = Pipeline()
    a = IdentityAddon(p)
    a.settle = (0.0, 0.0)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        # the watcher stopped: it applied an edit itself between the write and reload()
        # below on a loaded machine, and reload() then found nothing new
        a.done()
        # before the limits: a refused request costs no token
        assert [s.name for s in p.stages] == ["identify", "policy", "limits"]
        cfg.write_text("policy:\n  default: allow\n  hide: true\n")
        assert a.reload() is True
        assert [s.name for s in p.stages] == ["identify", "limits"]
        cfg.write_text("policy:\n  default: deny\n")
        assert a.reload() is True
        assert [s.name for s in p.stages] == ["identify", "policy", "limits"]


def test_a_policy_edit_that_lets_more_through_waits_like_one_that_switches_it_off(
    tmp_path, caplog
) -> None:
    # the policy stayed on, so a file cut short before its last deny rule, or inside an allow
    # rule before its roles (an allow for everybody), was applied after one second
    head = "policy:\n  default: deny\n  rules:\n    - action: allow\n"
    full = head + "      roles: [admin]\n      tools: [add]\n    - {action: deny, tools: [add]}\n"
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        for part in (
            head + "      roles: [admin]\n      tools: [add]\n",  # the deny rule cut off
            head,  # inside the allow rule: everybody
            full.replace("default: deny", "default: allow"),
        ):
            cfg.write_text(part)
            assert not a.reload(now=100.0)
            assert not a.reload(now=103.0), part  # settled, but it lets more through
            assert len(a.state.cfg.policy.rules) == 2  # the running policy stays
        cfg.write_text(full)
        assert not a.reload(now=110.0)
        assert a.reload(now=111.1)
        # a stricter edit needs one second only
        cfg.write_text(full + "    - {action: deny, tools: [echo]}\n")
        assert not a.reload(now=120.0)
        assert a.reload(now=121.1)
        # and a weaker one applies after five, saying so
        cfg.write_text(head)
        with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
            assert not a.reload(now=200.0)
            assert not a.reload(now=204.0)
            assert a.reload(now=205.1)
        assert "switches the access policy's 2 deny rule(s) and allow rules as they were" in (
            caplog.text
        )


def test_an_edit_that_loosens_limits_or_stops_hiding_waits_and_says_so(tmp_path, caplog) -> None:
    # limits stayed on and the policy too, so a file cut short inside limits (before its
    # tool limits), a rate raised or hide switched off applied after one second, silently
    limits = "limits:\n  default: 100/minute\n  exempt: [initialize, ping]\n"
    tools = "  tools:\n    - {match: 'delete_*', rate: 5/minute}\n"
    policy = "policy:\n  rules:\n    - {action: deny, tools: [drop_*]}\n"
    full = limits + tools + policy
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        for part, said in (
            (limits + policy, "rate limits as they were (tool delete_*)"),
            (full.replace("100/minute", "1000/minute"), "rate limits as they were (default)"),
            (full.replace("5/minute", "{rate: 5/minute, burst: 50}"), "(tool delete_*)"),
            (full.replace("ping]", "ping, tools/call]"), "(exempt tools/call)"),
            (limits + tools + "  consumers: {bot: 1000/minute}\n" + policy, "(consumer bot)"),
            (full + "  hide: false\n", "hiding of what callers may not use"),
        ):
            cfg.write_text(part)
            assert not a.reload(now=100.0)
            assert not a.reload(now=103.0), part  # settled, but it lets more through
            assert a.state.cfg.limits.tools and a.state.cfg.limits.default.count == 100
            assert a.state.cfg.policy.hide and a.state.cfg.limits.exempt == ["initialize", "ping"]
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                assert a.reload(now=105.1), part
            assert said in caplog.text, part
            cfg.write_text(full)
            assert not a.reload(now=200.0)
            assert a.reload(now=205.1)
        # a stricter edit needs one second only
        cfg.write_text(full.replace("100/minute", "50/minute"))
        assert not a.reload(now=300.0)
        assert a.reload(now=301.1)


def test_a_server_limit_made_shared_by_everybody_is_a_stricter_edit(tmp_path) -> None:
    # per: identity -> per: total at the same rate: one bucket for all callers holds back
    # more, but was taken for a limit gone (five seconds and a warning "server ... loosened")
    per_id = "limits:\n  servers:\n    - {match: 'up*', rate: 10/minute}\n"
    total = "limits:\n  servers:\n    - {match: 'up*', rate: 10/minute, per: total}\n"
    with _driven(tmp_path, per_id) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        cfg.write_text(total)
        assert not a.reload(now=100.0)
        assert a.reload(now=101.1)
        assert a.state.cfg.limits.servers[0].per == "total"
        # and back, one bucket per caller: looser, it waits
        cfg.write_text(per_id)
        assert not a.reload(now=200.0)
        assert not a.reload(now=203.0)
        assert a.reload(now=205.1)
        assert a.state.cfg.limits.servers[0].per == "identity"


def test_an_edit_that_loosens_the_jwt_checks_waits_and_says_so(tmp_path, caplog) -> None:
    # a file cut after jwks_url and before audience: is valid, and took the IdP's tokens
    # for any application after one second, silently
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    head = f"auth:\n  jwt:\n    jwks_file: {jwks}\n"
    full = head + "    issuer: https://idp.example/\n    audience: mcp-gateway\n"
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        for part, said in (
            (head + "    issuer: https://idp.example/\n", "audience"),
            (head, "issuer, audience"),
            (full.replace("mcp-gateway", "[mcp-gateway, other-app]"), "audience"),
            (full + "    leeway: 600\n", "leeway"),
            (full + "    require: []\n", "required claims"),
            (full + "    algorithms: [RS256, EdDSA]\n", "algorithms"),
            # cut before jwt: a forged or expired JWT (401 so far) goes on unverified
            ("auth:\n  required: false\n", None),
        ):
            cfg.write_text(part)
            assert not a.reload(now=100.0)
            assert not a.reload(now=103.0), part  # settled, but it accepts more
            assert a.state.cfg.auth.jwt.audience == "mcp-gateway"
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                assert a.reload(now=105.1), part
            if said is None:
                assert "JWT verification (off: any JWT" in caplog.text, part
            else:
                assert f"JWT checks as they were ({said})" in caplog.text, part
            cfg.write_text(full)
            assert not a.reload(now=200.0)
            assert a.reload(now=205.1)
        # a stricter edit needs one second only
        cfg.write_text(full + "    leeway: 5\n")
        assert not a.reload(now=300.0)
        assert a.reload(now=301.1)
        # JWTs off while every caller must hold a gateway credential refuses them: stricter
        cfg.write_text("auth:\n  required: true\n")
        assert not a.reload(now=400.0)
        assert a.reload(now=401.1)


def _change_ctime(path) -> None:
    """chmod the file (mode unchanged) until its ctime moves: the coarse file clock may give
    a write and a chmod right after it the same time."""
    before = path.stat().st_ctime_ns
    for _ in range(200):
        path.chmod(path.stat().st_mode & 0o7777)
        if path.stat().st_ctime_ns != before:
            return
        time.sleep(0.01)
    raise AssertionError("the file's ctime did not move")


def test_a_config_that_could_not_be_read_is_read_again_once_made_readable(
    tmp_path, mkex, monkeypatch
) -> None:
    # chmod 000 on the file, then chmod 644 back: mtime, size and inode are the same as when
    # it could not be read, and known by those only it stayed the bad version for good
    import mcp_gateway.identity.addon as mod
    from mcp_gateway.yamlconf import ConfigError

    with _driven(tmp_path, "{}\n") as (cfg, p, a):
        real = mod.load_config
        cfg.write_text("auth:\n  required: true\n")
        monkeypatch.setattr(
            mod,
            "load_config",
            lambda path: (_ for _ in ()).throw(
                ConfigError(path, None, "", "cannot read: Permission denied")
            ),
        )
        a.tick()
        assert a.state.cfg.auth.required is False  # could not be read: the old config stays
        monkeypatch.setattr(mod, "load_config", real)
        a.tick()
        assert a.state.cfg.auth.required is False  # nothing changed since: not tried again
        _change_ctime(cfg)  # made readable
        a.tick()
        assert a.state.cfg.auth.required is True
        ex = mkex()
        assert p.start_exchange(ex) is not None and ex.refusal.http_status == 401


def test_an_edit_of_the_api_keys_or_the_credential_header_waits_and_says_so(
    tmp_path, caplog
) -> None:
    # api_keys off without auth.required: a gateway key (a revoked one too) goes on to the
    # server as an opaque token; another keys database: keys revoked here may not be there;
    # another header (a file cut inside "header: X-Api-Key" is a valid shorter name): a
    # credential in the old one goes on unread. Each applied after one second, silently.
    db = tmp_path / "keys.db"
    full = f"keys_db: {db}\nauth:\n  header: X-Api-Key\n  api_keys: true\n"
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        for part, said in (
            (full.replace("api_keys: true", "api_keys: false"), "API keys (off"),
            (full.replace(str(db), str(tmp_path / "old.db")), "API keys as they were"),
            ("auth:\n  header: X-Api-Key\n", "API keys as they were"),  # cut before keys_db
            (full.replace("X-Api-Key", "X-A"), "the credential header X-Api-Key (now X-A"),
            (full.replace("  header: X-Api-Key\n", ""), "the credential header X-Api-Key"),
        ):
            cfg.write_text(part)
            assert not a.reload(now=100.0)
            assert not a.reload(now=103.0), part  # settled, but it lets more through
            assert a.state.cfg.auth.header == "X-Api-Key" and a.state.cfg.auth.api_keys
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                assert a.reload(now=105.1), part
            assert said in caplog.text, part
            cfg.write_text(full)
            assert not a.reload(now=200.0)
            assert a.reload(now=205.1)
        # stricter or the same: one second
        for part in (
            full.replace("api_keys: true", "api_keys: false\n  required: true"),
            full.replace("X-Api-Key", "x-api-key"),  # (header names ignore case)
        ):
            cfg.write_text(part)
            assert not a.reload(now=300.0)
            assert a.reload(now=301.1), part
            cfg.write_text(full)
            assert not a.reload(now=400.0)
            assert a.reload(now=405.1)


def test_a_limit_glob_renamed_to_one_covering_it_is_no_limit_gone(tmp_path, caplog) -> None:
    # delete_* -> del* at the same rate still holds every delete_ tool back: it waited five
    # seconds with the warning "rate limits as they were (tool delete_*)"
    tools = "limits:\n  tools:\n    - {match: 'delete_*', rate: 5/minute}\n"
    servers = "  servers:\n    - {match: 'up.example:*', rate: 10/minute}\n"
    full = tools + servers
    with _driven(tmp_path, full) as (cfg, p, a):
        a.settle = (1.0, 5.0)
        for stricter in (
            full.replace("'delete_*'", "'del*'"),
            full.replace("'delete_*'", "'*'"),
            full.replace("'delete_*'", "'*_*'"),
            full.replace("'delete_*', rate: 5/minute", "'DEL*', rate: 2/minute"),
            full.replace("'up.example:*'", "'up.*'"),
            full.replace("'up.example:*', rate: 10/minute", "'*', rate: 10/minute, per: total"),
        ):
            cfg.write_text(stricter)
            assert not a.reload(now=100.0)
            assert a.reload(now=101.1), stricter
            cfg.write_text(full)
            assert not a.reload(now=200.0)
            assert a.reload(now=205.1)
        for looser, said in (
            (full.replace("'delete_*'", "'delete_a*'"), "tool delete_*"),  # narrower
            (full.replace("'delete_*'", "'del?te_*'"), "tool delete_*"),  # (no claim made)
            (full.replace("'delete_*'", "'*_repo'"), "tool delete_*"),
            (full.replace("'delete_*', rate: 5/minute", "'del*', rate: 6/minute"), "delete_*"),
            (full.replace("'up.example:*'", "'up.example:443'"), "server up.example:*"),
        ):
            cfg.write_text(looser)
            assert not a.reload(now=300.0)
            assert not a.reload(now=303.0), looser
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
                assert a.reload(now=305.1), looser
            assert said in caplog.text, looser
            cfg.write_text(full)
            assert not a.reload(now=400.0)
            assert a.reload(now=405.1)


def test_covers() -> None:
    from mcp_gateway.identity.addon import _covers

    yes = [("del*", "delete_*"), ("*", "x"), ("*_*", "delete_*"), ("*te_*", "delete_*"),
           ("d*e*_*", "delete_*"), ("up.*", "up.example:*"), ("a*", "a?c"), ("x", "x")]  # fmt: skip
    no = [("delete_a*", "delete_*"), ("del?te_*", "delete_*"), ("*_repo", "delete_*"),
          ("x", "x*"), ("ab*", "a*"), ("a*b", "a*"), ("*ab]*", "x[ab]y"), ("a*a", "a"),
          ("up.example:443", "up.example:*")]  # fmt: skip
    for new, old in yes:
        assert _covers(new, old), (new, old)
    for new, old in no:
        assert not _covers(new, old), (new, old)


def test_a_gateway_key_in_authorization_is_removed_when_the_gateway_reads_another_header(
    tmp_path, mkex
) -> None:
    # auth.header: X-Api-Key: Authorization is the server's and went on unread, a gateway key
    # in it too (a client not yet moved to the new header)
    from mitmproxy.test import tflow

    db = tmp_path / "gw.db"
    key, _ = create_key(db, "a", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"keys_db: {db}\nauth:\n  header: X-Api-Key\n")
    p = Pipeline()
    a = IdentityAddon(p)
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_config=str(cfg))
        a.done()
        for value in (f"Bearer {key}", f"bearer  {key}"):
            f = tflow.tflow()
            f.request.headers["Authorization"] = value
            f.request.headers["X-Other"] = "1"
            a.request(f)
            assert "authorization" not in f.request.headers, value
            assert f.request.headers["X-Other"] == "1"
        # an MCP exchange too (the identify stage reads X-Api-Key only)
        ex = mkex(extra={"X-Api-Key": key, "Authorization": f"Bearer {key}"})
        p.start_exchange(ex)
        a.request(ex.flow)
        assert key not in repr(ex.flow.request.headers.fields)
        # the server's own token stays, and so does a word that only starts like a key
        for value in ("Bearer upstream-token", "Bearer mgw_is_a_word"):
            f = tflow.tflow()
            f.request.headers["Authorization"] = value
            a.request(f)
            assert f.request.headers["Authorization"] == value
