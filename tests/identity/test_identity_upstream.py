"""No token passthrough: the gateway credential is swapped for the upstream's own."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import keyring
import keyring.backend
import pytest
from mcp_gateway.identity.config import load_config_text
from mcp_gateway.identity.identify import IdentifyStage, State
from mcp_gateway.identity.keys import create_key
from mcp_gateway.identity.upstream import SecretError, resolve
from mcp_gateway.message import ErrorCode
from mitmproxy import http

SECRET = "upstream-s3cr3t-value"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def mem_keyring():
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    try:
        yield kr
    finally:
        keyring.set_keyring(old)


def _setup(tmp_path: Path, servers_yaml: str, extra: str = "") -> tuple[IdentifyStage, str]:
    db = tmp_path / "gw.db"
    key, _ = create_key(db, "a", "alice", ["reader"])
    st = State(load_config_text(f"keys_db: {db}\n{extra}servers:\n{servers_yaml}"))
    st.keys.refresh()
    return IdentifyStage(st), key


def test_resolve_env_file_keyring(tmp_path, monkeypatch, mem_keyring) -> None:
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    assert resolve("env://MGW_T_TOKEN") == SECRET
    f = tmp_path / "secret.txt"
    f.write_text(SECRET + "\n")
    assert resolve(f"file://{f}") == SECRET
    mem_keyring.set_password("mcp-gateway", "github", SECRET)
    assert resolve("keyring://mcp-gateway/github") == SECRET
    for ref in (
        "env://MGW_T_NOT_SET",
        f"file://{tmp_path}/missing",
        "keyring://mcp-gateway/nobody",
    ):
        with pytest.raises(SecretError) as ei:
            resolve(ref)
        assert ref in str(ei.value)
    f.write_text("a\nb\n")
    with pytest.raises(SecretError, match="line break"):
        resolve(f"file://{f}")


@pytest.mark.parametrize(
    "cred, header, expected",
    [
        ("{type: bearer, ref: env://MGW_T_TOKEN}", "Authorization", f"Bearer {SECRET}"),
        ("{type: header, header: X-API-Key, ref: env://MGW_T_TOKEN}", "X-API-Key", SECRET),
        (
            "{type: basic, username: svc, ref: env://MGW_T_TOKEN}",
            "Authorization",
            "Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode(),
        ),
        (
            "{type: template, template: 'Token {secret}', ref: env://MGW_T_TOKEN}",
            "Authorization",
            f"Token {SECRET}",
        ),
    ],
)
def test_header_injection_env(tmp_path, monkeypatch, mkex, cred, header, expected) -> None:
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    stage, key = _setup(tmp_path, f'  - match: "127.0.0.1:*"\n    credential: {cred}\n')
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None and ex.identity.kind == "api_key"
    sent = ex.flow.request.headers
    assert sent[header] == expected
    assert key not in str(sent.fields) and "mgw_" not in str(sent.fields)
    # what later stages (audit) see: no secret
    assert SECRET not in str(ex.request_headers.fields)
    assert "mgw_" not in str(ex.request_headers.fields)
    # after sending, the flow keeps a placeholder only (mitmweb, saved flows)
    ex.flow.response = http.Response.make(200, b"{}", {"content-type": "application/json"})
    stage.on_exchange_end(ex)
    assert SECRET not in str(ex.flow.request.headers.fields)
    assert ex.flow.request.headers[header] == "[mcp-gateway: env://MGW_T_TOKEN]"
    assert SECRET not in repr(ex.flow.get_state())


def test_query_injection_file(tmp_path, mkex) -> None:
    f = tmp_path / "k"
    f.write_text(SECRET)
    stage, key = _setup(
        tmp_path,
        f'  - match: "127.0.0.1"\n    credential: {{type: query, param: key, ref: "file://{f}"}}\n',
    )
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None
    assert ex.flow.request.query["key"] == SECRET and "authorization" not in ex.flow.request.headers
    stage.after_send(ex.flow)
    assert ex.flow.request.query["key"] == f"[mcp-gateway: file://{f}]"


def test_what_an_echoing_server_could_show_is_remembered_for_redaction(tmp_path, mkex) -> None:
    """The scan stage redacts these in every server-to-client message (a server echoing its
    request's URL shows a query credential percent-encoded)."""
    from mcp_gateway import secretref

    f = tmp_path / "k"
    f.write_text("up+sec/ret=value 4711")
    stage, key = _setup(
        tmp_path,
        f'  - match: "127.0.0.1"\n    credential: {{type: query, param: key, ref: "file://{f}"}}\n',
    )
    stage.on_exchange(mkex(auth=f"Bearer {key}"))
    shown = secretref.injected()
    assert "up+sec/ret=value 4711" in shown
    assert "up%2Bsec%2Fret%3Dvalue%204711" in shown and "up%2Bsec%2Fret%3Dvalue+4711" in shown
    assert key not in shown


def test_keyring_injection(tmp_path, mkex, mem_keyring) -> None:
    mem_keyring.set_password("mcp-gateway", "local", SECRET)
    stage, key = _setup(
        tmp_path, '  - match: "127.0.0.1:*"\n    credential: {ref: "keyring://mcp-gateway/local"}\n'
    )
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None and ex.flow.request.headers["authorization"] == f"Bearer {SECRET}"


def test_missing_reference_refuses_502_never_forwards(tmp_path, monkeypatch, mkex, caplog) -> None:
    monkeypatch.delenv("MGW_T_ABSENT", raising=False)
    stage, key = _setup(
        tmp_path,
        '  - match: "127.0.0.1:*"\n    name: local\n    credential: {ref: env://MGW_T_ABSENT}\n',
    )
    with caplog.at_level(logging.WARNING, logger="mcp_gateway.identity"):
        ex = mkex(auth=f"Bearer {key}")
        stage.on_exchange(ex)
    r = ex.refusal
    assert r is not None and r.http_status == 502 and r.code == ErrorCode.UPSTREAM_CREDENTIAL
    assert "local" in r.message
    assert any("env://MGW_T_ABSENT" in rec.getMessage() for rec in caplog.records)
    assert key not in caplog.text


def test_no_server_entry_strips_gateway_key_only(tmp_path, mkex) -> None:
    stage, key = _setup(tmp_path, '  - match: "other.example:*"\n    credential: {ref: env://X}\n')
    ex = mkex(auth=f"Bearer {key}")
    stage.on_exchange(ex)
    assert ex.refusal is None and "authorization" not in ex.flow.request.headers


def test_foreign_bearer_and_anonymous_are_not_given_upstream_credentials(
    tmp_path, monkeypatch, mkex
) -> None:
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    stage, _ = _setup(
        tmp_path, '  - match: "127.0.0.1:*"\n    credential: {ref: env://MGW_T_TOKEN}\n'
    )
    ex = mkex(auth="Bearer some-oauth-token-for-the-server")
    stage.on_exchange(ex)
    assert ex.identity.kind == "bearer"
    assert (
        ex.flow.request.headers["authorization"] == "Bearer some-oauth-token-for-the-server"
    )  # untouched
    ex = mkex()
    stage.on_exchange(ex)
    assert ex.identity.kind == "anonymous" and "authorization" not in ex.flow.request.headers


def test_custom_client_header_is_removed(tmp_path, monkeypatch, mkex) -> None:
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    stage, key = _setup(
        tmp_path,
        '  - match: "127.0.0.1:*"\n    credential: {ref: env://MGW_T_TOKEN}\n',
        extra="auth:\n  header: X-Gateway-Key\n",
    )
    ex = mkex(extra={"X-Gateway-Key": key})
    stage.on_exchange(ex)
    assert ex.identity is not None and ex.identity.kind == "api_key"
    h = ex.flow.request.headers
    assert "x-gateway-key" not in h and h["authorization"] == f"Bearer {SECRET}"


def test_a_server_name_from_the_shim_header_never_picks_a_credential(tmp_path, monkeypatch, mkex):
    # Mcp-Gateway-Server is the client's to set (for loopback destinations): a client naming
    # its own listener "github" must not be handed github's upstream credential.
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    stage, key = _setup(
        tmp_path,
        '  - name: github\n    match: "api.github-mcp.example.com:443"\n'
        "    credential: {ref: env://MGW_T_TOKEN}\n",
    )
    for name in ("github", "api.github-mcp.example.com:443"):
        ex = mkex(auth=f"Bearer {key}", server="127.0.0.1:4444")
        ex.server, ex.address = name, "127.0.0.1:4444"  # as core sets them for the header
        stage.on_exchange(ex)
        assert ex.refusal is None
        assert SECRET not in str(ex.flow.request.headers.fields), name
    # the real destination still gets it
    ex = mkex(auth=f"Bearer {key}", server="api.github-mcp.example.com:443")
    stage.on_exchange(ex)
    assert ex.flow.request.headers["authorization"] == f"Bearer {SECRET}"


def test_no_credential_for_a_host_header_naming_another_server(tmp_path, monkeypatch, mkex) -> None:
    """Red-team round 30: in regular proxy mode an absolute-form request (POST
    http://127.0.0.1:8000/mcp) goes to the URL's host with the client's Host header, which
    mitmproxy keeps (RFC 9112 3.2.2 has a proxy replace it); inside a CONNECT tunnel the
    request goes to the tunnel's host whatever its Host header says. The credential was
    matched by the address alone, while a shared front end (an ingress, a CDN, a virtual
    host) serves the Host header's site: servers[127.0.0.1]'s secret went to Host:
    evil.example. Such a request is refused (421), its gateway key removed, nothing injected."""
    monkeypatch.setenv("MGW_T_TOKEN", SECRET)
    stage, key = _setup(
        tmp_path,
        '  - match: "127.0.0.1:*"\n    credential: {type: bearer, ref: env://MGW_T_TOKEN}\n'
        '  - match: "*.internal:*"\n    credential: {type: bearer, ref: env://MGW_T_TOKEN}\n',
    )
    for host in ("evil.example", "evil.example:8000", "localhost:8000"):
        ex = mkex(auth=f"Bearer {key}", extra={"Host": host})
        stage.on_exchange(ex)
        assert ex.refusal is not None and ex.refusal.http_status == 421, host
        sent = str(ex.flow.request.headers.fields)
        assert SECRET not in sent and "mgw_" not in sent
    # the address itself, however it is spelt, and another name the same entry matches
    for server, host in (
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("127.0.0.1:8000", None),
        ("a.internal:80", "A.Internal"),
        ("a.internal:80", "b.internal:80"),
    ):
        ex = mkex(auth=f"Bearer {key}", server=server, extra={"Host": host} if host else None)
        stage.on_exchange(ex)
        assert ex.refusal is None, (server, host)
        assert ex.flow.request.headers["Authorization"] == f"Bearer {SECRET}"
    # HTTP/2: a Host field beside the :authority is what an HTTP/1 server reads
    ex = mkex(auth=f"Bearer {key}", extra={"Host": "evil.example"})
    ex.flow.request.http_version = "HTTP/2.0"
    ex.flow.request.authority = "127.0.0.1:8000"
    stage.on_exchange(ex)
    assert ex.refusal is not None and ex.refusal.http_status == 421
    # a gateway key without an upstream credential for that server: only removed, as before
    stage2, key2 = _setup(tmp_path / "x", '  - match: "other:*"\n    name: other\n')
    ex = mkex(auth=f"Bearer {key2}", extra={"Host": "evil.example"})
    stage2.on_exchange(ex)
    assert ex.refusal is None and "mgw_" not in str(ex.flow.request.headers.fields)
