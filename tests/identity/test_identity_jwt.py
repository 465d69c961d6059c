"""JWT bearer tokens against a JWKS file and a JWKS served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mcp_gateway.identity.config import JwtConfig, load_config_text
from mcp_gateway.identity.identify import IdentifyStage, State
from mcp_gateway.identity.jwt import Jwks, JwtRejected
from mcp_gateway.message import ErrorCode, Refusal


def _jwks_file(tmp_path: Path, doc: dict) -> Path:
    p = tmp_path / "jwks.json"
    p.write_text(json.dumps(doc))
    return p


def _cfg(**kw) -> JwtConfig:
    base = {
        "issuer": "https://issuer.test/",
        "audience": "mcp-gw",
        "leeway": 5,
        "min_refetch_interval": 0,
    }
    base.update(kw)
    return JwtConfig(**base)


def test_file_jwks_accepts_valid_rejects_bad(tmp_path, signer, other_signer, mkjwks) -> None:
    j = Jwks(_cfg(jwks_file=str(_jwks_file(tmp_path, mkjwks(signer)))))
    assert j.fetch() and j.loaded
    claims = j.verify(signer.token({"roles": ["reader"]}))
    assert claims["sub"] == "alice" and claims["roles"] == ["reader"]

    good = signer.token()
    head, body, sig = good.split(".")
    tampered_body = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    cases = {
        "tampered": f"{head}.{tampered_body}.{sig}",
        "expired": signer.token(exp=int(time.time()) - 60),
        "wrong audience": signer.token(aud="someone-else"),
        "wrong issuer": signer.token(iss="https://evil.test/"),
        "no exp": signer.token(exp=None),
        "signed by a key not in the JWKS (same kid)": other_signer.token(kid="k1"),
        "unknown kid": other_signer.token(),
        "garbage": "eyJhbGciOi.not.ajwt",
    }
    for what, tok in cases.items():
        with pytest.raises(JwtRejected) as ei:
            j.verify(tok)
        assert ei.value.status == 401, what


def test_leeway_allows_small_clock_skew(tmp_path, signer, mkjwks) -> None:
    j = Jwks(_cfg(jwks_file=str(_jwks_file(tmp_path, mkjwks(signer))), leeway=30))
    j.fetch()
    assert j.verify(signer.token(exp=int(time.time()) - 10))["sub"] == "alice"
    with pytest.raises(JwtRejected, match="expired"):
        j.verify(signer.token(exp=int(time.time()) - 100))


def test_unknown_kid_rereads_file_once(tmp_path, signer, other_signer, mkjwks) -> None:
    p = _jwks_file(tmp_path, mkjwks(signer))
    j = Jwks(_cfg(jwks_file=str(p), min_refetch_interval=3600))
    j.fetch()
    j.last_attempt = float("-inf")  # as if the start-up fetch were long ago
    p.write_text(json.dumps(mkjwks(signer, other_signer)))  # key rotation
    assert j.verify(other_signer.token())["sub"] == "alice"  # refetched at once
    # a second unknown kid within min_refetch_interval does not re-read again
    p.write_text(json.dumps(mkjwks(signer)))
    with pytest.raises(JwtRejected, match="unknown signing key"):
        j.verify(other_signer.token(kid="k3"))


def test_http_jwks(jwks_server, signer, other_signer, mkjwks) -> None:
    jwks_server.doc = mkjwks(signer)
    j = Jwks(_cfg(jwks_url=jwks_server.url))
    with pytest.raises(JwtRejected) as ei:  # not fetched yet: cannot verify -> 503, never accepted
        j.verify(signer.token())
    assert ei.value.status == 503
    assert j.fetch()
    assert j.verify(signer.token())["aud"] == "mcp-gw"
    with pytest.raises(JwtRejected, match="expired"):
        j.verify(signer.token(exp=int(time.time()) - 60))
    with pytest.raises(JwtRejected, match="audience"):
        j.verify(signer.token(aud="x"))
    # unknown kid: refused now, a background refetch is requested (rate-limited)
    jwks_server.doc = mkjwks(signer, other_signer)
    hits = jwks_server.hits
    with pytest.raises(JwtRejected, match="unknown signing key"):
        j.verify(other_signer.token())
    assert j.due(time.monotonic())
    assert j.fetch() and jwks_server.hits == hits + 1
    assert j.verify(other_signer.token())["sub"] == "alice"


def test_unreachable_jwks_is_503_not_forwarded(jwks_server, signer) -> None:
    jwks_server.fail = True
    j = Jwks(_cfg(jwks_url=jwks_server.url, fetch_timeout=2))
    assert not j.fetch()
    assert "HTTPError" in (j.error or "")
    with pytest.raises(JwtRejected) as ei:
        j.verify(signer.token())
    assert ei.value.status == 503 and "JWKS not available" in ei.value.reason
    # closed port
    j2 = Jwks(_cfg(jwks_url="http://127.0.0.1:1/jwks.json", fetch_timeout=2))
    assert not j2.fetch()


def test_identify_stage_jwt_identity_and_refusals(tmp_path, signer, mkjwks, mkex) -> None:
    p = _jwks_file(tmp_path, mkjwks(signer))
    cfg = load_config_text(
        f"""
auth:
  api_keys: false
  jwt:
    jwks_file: {p}
    issuer: https://issuer.test/
    audience: mcp-gw
    consumer_claim: client_id
    roles_claim: realm_access.roles
"""
    )
    st = State(cfg)
    st.jwks.fetch()
    stage = IdentifyStage(st)
    ex = mkex(
        auth="Bearer "
        + signer.token({"client_id": "agent-7", "realm_access": {"roles": ["reader", "ops"]}})
    )
    stage.on_exchange(ex)
    assert ex.refusal is None
    ident = ex.identity
    assert (ident.kind, ident.consumer, ident.roles, ident.subject) == (
        "jwt",
        "agent-7",
        ("reader", "ops"),
        "alice",
    )
    assert ident.key == "jwt:https://issuer.test/|alice"
    # the gateway credential is not passed through
    assert "authorization" not in ex.flow.request.headers

    ex = mkex(auth="Bearer " + signer.token({"client_id": "agent-7"}, exp=int(time.time()) - 600))
    stage.on_exchange(ex)
    r = ex.refusal
    assert isinstance(r, Refusal) and r.http_status == 401 and r.code == ErrorCode.UNAUTHORIZED
    assert r.headers["WWW-Authenticate"].startswith(
        'Bearer realm="mcp-gateway", error="invalid_token"'
    )
    assert "expired" in r.message and ex.identity is None

    ex = mkex(auth="Bearer " + signer.token())  # no client_id claim
    stage.on_exchange(ex)
    assert ex.refusal is not None and "consumer claim" in ex.refusal.message


def test_a_connection_admitted_with_a_jwt_is_refused_once_it_expires(
    tmp_path, signer, mkjwks, mkex, monkeypatch
) -> None:
    """A WebSocket connection admitted with a JWT: past the token's exp (and the leeway)
    its messages are refused; it kept working for as long as the socket stayed open."""
    p = _jwks_file(tmp_path, mkjwks(signer))
    cfg = load_config_text(
        f"""
auth:
  api_keys: false
  jwt:
    jwks_file: {p}
    issuer: https://issuer.test/
    audience: mcp-gw
    consumer_claim: client_id
    leeway: 5
"""
    )
    st = State(cfg)
    st.jwks.fetch()
    stage = IdentifyStage(st)
    exp = int(time.time()) + 100
    ex = mkex(auth="Bearer " + signer.token({"client_id": "agent-7"}, exp=exp))
    stage.on_exchange(ex)
    assert ex.refusal is None and stage.reauthenticate(ex) is None
    monkeypatch.setattr(time, "time", lambda: exp + 4.0)  # (within the leeway)
    assert stage.reauthenticate(ex) is None
    monkeypatch.setattr(time, "time", lambda: exp + 6.0)
    r = stage.reauthenticate(ex)
    assert r is not None and r.code == ErrorCode.UNAUTHORIZED and "expired" in r.message


def test_a_gateway_jwt_in_the_url_query_is_removed_before_it_goes_on(
    tmp_path, signer, other_signer, mkjwks
) -> None:
    # ?access_token=<JWT> (RFC 6750 2.3): the gateway reads credentials from the header
    # only, and a JWT it accepts went on to the server in the query, where the server could
    # collect it and replay it at the gateway (as a gateway API key there once did)
    from mitmproxy.test import tflow

    p = _jwks_file(tmp_path, mkjwks(signer))
    cfg = load_config_text(
        f"auth:\n  api_keys: false\n  jwt:\n    jwks_file: {p}\n"
        "    issuer: https://issuer.test/\n    audience: mcp-gw\n"
    )
    st = State(cfg)
    st.jwks.fetch()
    stage = IdentifyStage(st)
    ours = signer.token()
    for path in (f"/mcp?access_token={ours}&x=1", f"/mcp?x=1&t={ours.replace('.', '%2E')}"):
        f = tflow.tflow()
        f.request.path = path
        stage.strip_query_keys(f)
        assert dict(f.request.query) == {"x": "1"}, path
    # a JWT the gateway does not accept (another issuer's key, another audience) is the
    # server's: it stays, as in the Authorization header
    for theirs in (other_signer.token(), signer.token(aud="the-server")):
        f = tflow.tflow()
        f.request.path = f"/mcp?access_token={theirs}&x=1"
        stage.strip_query_keys(f)
        assert f.request.path == f"/mcp?access_token={theirs}&x=1"
    f = tflow.tflow()
    f.request.path = "/search?q=hello"
    stage.strip_query_keys(f)
    assert f.request.path == "/search?q=hello"


def test_a_gateway_jwt_in_the_query_is_removed_when_it_cannot_be_checked_yet(
    tmp_path, signer, mkjwks, monkeypatch
) -> None:
    """A JWT the gateway will accept but could not verify at that moment went on in the
    query: before its key set loaded (or while its URL failed: 503), or valid only from a
    little later (nbf, a client's clock ahead). The server could keep it and replay it at
    the gateway minutes later. Removed: signed by our key but not yet valid, or not checkable
    and naming our issuer and audience."""
    from mitmproxy.test import tflow

    p = _jwks_file(tmp_path, mkjwks(signer))
    cfg = load_config_text(
        f"auth:\n  api_keys: false\n  jwt:\n    jwks_file: {p}\n"
        "    issuer: https://issuer.test/\n    audience: mcp-gw\n"
    )

    def stripped(stage, token) -> bool:
        f = tflow.tflow()
        f.request.path = f"/mcp?access_token={token}&x=1"
        stage.strip_query_keys(f)
        return dict(f.request.query) == {"x": "1"}

    st = State(cfg)
    stage = IdentifyStage(st)  # (key set not loaded yet: verify says 503)
    assert stripped(stage, signer.token())
    assert not stripped(stage, signer.token(iss="https://elsewhere.test/"))
    assert not stripped(stage, signer.token(aud="the-server"))
    st.jwks.fetch()
    assert stripped(stage, signer.token(nbf=int(time.time()) + 600))
    assert not stripped(stage, signer.token(aud="the-server", nbf=int(time.time()) + 600))


def test_a_gateway_jwt_of_a_non_mcp_request_is_removed_when_it_cannot_be_checked_yet(
    tmp_path, signer, mkjwks
) -> None:
    # (the same for the Authorization header of a request that is not MCP)
    from mitmproxy.test import tflow

    p = _jwks_file(tmp_path, mkjwks(signer))
    cfg = load_config_text(
        f"auth:\n  api_keys: false\n  jwt:\n    jwks_file: {p}\n"
        "    issuer: https://issuer.test/\n    audience: mcp-gw\n"
    )
    stage = IdentifyStage(State(cfg))  # (key set not loaded yet)
    for token, gone in ((signer.token(), True), (signer.token(aud="the-server"), False)):
        f = tflow.tflow()
        f.request.headers["Authorization"] = f"Bearer {token}"
        stage.strip_stray_credential(f)
        assert ("authorization" not in f.request.headers) is gone
