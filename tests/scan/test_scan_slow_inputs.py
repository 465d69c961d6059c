"""Inputs that once made the confirmation regexes slow (red-team round 21): one message of a
few hundred bytes to a few hundred KB held the proxy's event loop for seconds (or, for the
CodeBuild check, for a time doubling with every line). Each case is timed against a generous
bound (CPU time, a shared VM) and must still find what it found before."""

import time

import pytest
from mcp_gateway.scan.engine import Engine


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def _rep(s: str, n: int) -> str:
    return (s * (n // len(s) + 1))[:n]


def _cpu(engine, text: str) -> float:
    t0 = time.process_time()
    engine.scan_text(text)
    return time.process_time() - t0


SLOW = [
    # PEM headers without an END line: each rescanned 16 KiB twice (~10 ms per KB)
    ("pem-headers", _rep("-----BEGIN PRIVATE KEY-----\n", 200_000)),
    ("pem-headers-escaped", _rep("-----BEGIN RSA PRIVATE KEY-----\\n", 200_000)),
    # JWK members: each "kty" (or "d") searched 3,000 characters for its partner (~15 ms per KB)
    ("jwk-kty", _rep('"kty"' * 3000 + '"d":"' + "a" * 30 + '"\n', 200_000)),
    ("jwk-d", _rep('"d":"aaaaaaaaaaaaaaaaaaaaaaaaa" ', 400_000)),
    # the CodeBuild not_after check: exponential in the number of indented lines (1 KB: 43 s)
    ("codebuild", _rep("  DB_PASSWORD=Xk9mP2vLqR7t parameter-store:\n", 10_000)),
    ("codebuild-escaped", _rep("  DB_PASSWORD=Xk9mP2vLqR7t parameter-store:\\n", 10_000)),
    ("codebuild-crlf", _rep("  DB_PASSWORD=Xk9mP2vLqR7t secrets-manager:\r\n", 10_000)),
]


@pytest.mark.parametrize("text", [t for _, t in SLOW], ids=[n for n, _ in SLOW])
def test_no_slow_confirmation(engine, text):
    engine.scan_text(text[:2000])  # warm up (caches, compiled validators)
    # before: 1-3 s (the CodeBuild case: never ending); after: 10-60 ms
    assert _cpu(engine, text) < 0.4


def test_small_codebuild_message_is_fast(engine):
    # 24 lines of 44 bytes: 43 s before, milliseconds after
    text = "  DB_PASSWORD=Xk9mP2vLqR7t parameter-store:\n" * 24
    assert _cpu(engine, text) < 0.2


def _values(engine, text):
    return [d.value for d in engine.scan_text(text) if d.type == "private_key"]


def test_pem_key_still_found_whole():
    engine = Engine.load()
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,AB12\n\n"
        + "MIIEpAIBAAKCAQEA7Vq3k9Xq2LmZ8xPq4Tn0Yb6sRw1UeJ5cHv8KdFgM2oNi\n" * 6
        + "-----END RSA PRIVATE KEY-----"
    )
    assert _values(engine, "cat id_rsa\n" + key + "\n$ ") == [key]
    # two keys side by side: two findings, each its own block
    two = key + "\n" + key.replace("RSA ", "EC ")
    assert _values(engine, two) == [key, key.replace("RSA ", "EC ")]
    # a key without its END line (a truncated read) is still one
    cut = key.rsplit("\n", 1)[0]
    assert [v[:31] for v in _values(engine, cut)] == ["-----BEGIN RSA PRIVATE KEY-----"]


def test_jwk_still_found(engine):
    d = "Xk9mP2vLqR7tWq7pLm2Vz8sRw1UeJ5cHv8KdFgM2oNiAbCdEf"
    assert d in _values(engine, '{"kty": "RSA", "n": "abc", "e": "AQAB", "d": "' + d + '"}')
    # sorted members: "d" before "kty"
    assert d in _values(engine, '{"d": "' + d + '", "dp": "x", "e": "AQAB", "kty": "RSA"}')
    assert d in _values(engine, '{\\"kty\\": \\"oct\\", \\"k\\": \\"' + d + '\\"}')


def test_codebuild_parameter_names_still_allowed(engine):
    text = (
        "version: 0.2\nenv:\n  parameter-store:\n"
        "    LOGIN_PASSWORD: /CodeBuild/dockerLoginPassword\n"
        "    DB_PASSWORD: /prod/db/Passw0rd9\n"
        "  secrets-manager:\n    API_TOKEN: prod/api:token9Xz\n"
    )
    assert [d.value for d in engine.scan_text(text) if d.type == "generic_secret"] == []
