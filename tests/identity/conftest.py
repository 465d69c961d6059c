"""Helpers for the identity tests: RSA keys and JWKS, token minting, exchanges, a JWKS server."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp_gateway.message import Direction, Exchange, Kind, Message
from mitmproxy.test import tflow


@dataclass
class Signer:
    kid: str
    key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict:
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        d.update(kid=self.kid, alg="RS256", use="sig")
        return d

    def token(self, claims: dict | None = None, *, kid: str | None = None, **overrides: Any) -> str:
        now = int(time.time())
        body = {
            "sub": "alice",
            "iss": "https://issuer.test/",
            "aud": "mcp-gw",
            "iat": now,
            "exp": now + 300,
        }
        body.update(claims or {})
        body.update(overrides)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer("k1")


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer("k2")


def jwks_doc(*signers: Signer) -> dict:
    return {"keys": [s.jwk() for s in signers]}


class JwksServer:
    def __init__(self) -> None:
        self.doc: dict = {"keys": []}
        self.hits = 0
        self.fail = False
        self.delay = 0.0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                if outer.delay:
                    time.sleep(outer.delay)
                if outer.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                body = json.dumps(outer.doc).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.timeout = 5
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    s = JwksServer()
    try:
        yield s
    finally:
        s.close()


def make_exchange(
    *,
    auth: str | None = None,
    session: str | None = None,
    method: str = "POST",
    server: str = "127.0.0.1:8000",
    addr: str = "10.0.0.7",
    extra: dict[str, str] | None = None,
    with_flow: bool = True,
) -> Exchange:
    f = tflow.tflow()
    f.request.method = method
    f.request.host = server.rsplit(":", 1)[0]
    f.request.port = int(server.rsplit(":", 1)[1])
    f.request.path = "/mcp"
    h = f.request.headers
    if auth is not None:
        h["Authorization"] = auth
    if session is not None:
        h["mcp-session-id"] = session
    for k, v in (extra or {}).items():
        h[k] = v
    return Exchange(
        flow_id=f.id,
        server=server,
        http_method=method,
        path="/mcp",
        session_id=session,
        client_addr=addr,
        request_headers=h,
        flow=f if with_flow else None,
    )


def request_msg(
    ex: Exchange, method: str = "tools/call", name: str | None = "echo", mid: int = 1
) -> Message:
    payload: dict = {"jsonrpc": "2.0", "id": mid, "method": method}
    if name is not None:
        payload["params"] = {"name": name, "arguments": {}}
    return Message(
        payload, Direction.CLIENT_TO_SERVER, Kind.REQUEST, ex, id=mid, method=method, name=name
    )


@pytest.fixture
def mkex():
    return make_exchange


@pytest.fixture
def mkreq():
    return request_msg


@pytest.fixture
def mkjwks():
    return jwks_doc
