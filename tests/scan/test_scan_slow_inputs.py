"""Inputs that once made the confirmation regexes slow (red-team round 21): one message of a
few hundred bytes to a few hundred KB held the proxy's event loop for seconds (or, for the
CodeBuild check, for a time doubling with every line). Each case is timed against a generous
bound (CPU time, a shared VM) and must still find what it found before."""

import hashlib
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
    # HTML tables: rows of ~400 password cells, each counting the cells before it again
    # (~0.7 s), and header rows of 1,900 unclosed <td>, each read 2,000 characters on (~0.5 s)
    (
        "html-wide-rows",
        _rep(
            "<table><tr><th>User</th><th>Password</th></tr><tr>"
            + "<td>Ab3#xY9zQw</td>" * 400
            + "</tr>",
            200_000,
        ),
    ),
    (
        "html-unclosed-header-cells",
        _rep(
            "<table><tr><th>User</th><th>Password</th>"
            + "<td>" * 1900
            + "</tr><tr><td>u</td><td>Ab3#xY9zQw</td></tr>",
            200_000,
        ),
    ),
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


# -- every regex of the shipped rules, on inputs built from its own literals -----------------
# The load-time check is static and misses bounded shapes ({0,30} of two adjacent repeats
# that can match the same characters: the CodeBuild check above). This runs each pattern,
# allowlist, context and validator regex of rules/*.yaml over pumps of its own pieces (the
# ones mcp_gateway.scan.slowcheck times a user's rule files on at start-up, ~700 characters
# each here), in a child process, and fails on a regex that takes long on any of them (the
# CodeBuild check never finished).

_REGEX_KEYS = {
    "pattern", "patterns", "prefilter", "keywords", "column", "key", "not_after",
    "not_before", "context", "values", "near", "before", "after",
}  # fmt: skip


def _rule_regexes() -> list[str]:
    import re
    from pathlib import Path

    import yaml

    found: set[str] = set()

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in _REGEX_KEYS and any(c in node for c in "\\[(?*+{"):
            found.add(node)

    rules = Path(__file__).resolve().parents[2] / "rules"
    for f in sorted(rules.glob("*.yaml")):
        walk(yaml.safe_load(f.read_text()))
    out = []
    for p in sorted(found):
        try:
            re.compile(p)
        except re.error:
            continue  # (a value that is no regex: an allowlisted literal)
        out.append(p)
    return out


def _pump_worker(conn) -> None:
    from mcp_gateway.scan.slowcheck import worst_time

    while True:
        p = conn.recv()
        if p is None:
            return
        conn.send(worst_time(p, 0, limit=0.25, chars=700))


def test_no_rule_regex_is_slow_on_pumps_of_its_own_literals():
    import multiprocessing

    regexes = _rule_regexes()
    assert len(regexes) > 300  # (every pack's patterns were found)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    worker = ctx.Process(target=_pump_worker, args=(child,), daemon=True)
    worker.start()
    slow = []
    try:
        for p in regexes:
            parent.send(p)
            if not parent.poll(20.0):  # (a linear regex takes milliseconds for all its pumps)
                pytest.fail(f"a rule regex did not finish its pumps in 20 s: {p[:300]!r}")
            worst = parent.recv()
            if worst > 0.25:
                slow.append((round(worst, 3), p[:200]))
    finally:
        worker.kill()
        worker.join(5)
    assert not slow, slow


def _tables(n: int) -> str:
    # n small Markdown tables with a Password column; the passwords are hashes of their
    # number with a # inside (found only as the column's cells, not by their shape)
    def pw(i: int) -> str:
        h = hashlib.sha256(str(i).encode()).hexdigest()
        return f"{h[:5]}#{h[5:9].upper()}%{h[9:13]}"

    return "".join(f"| User | Password |\n|---|---|\n| u | {pw(i)} |\n" for i in range(n))


def test_many_small_tables_cost_linear_time(engine):
    """Each table's header searched the rest of the text for the blank line that ends its
    table: thousands of small tables in one tool result were quadratic (10,000: 15 s). Four
    times the tables may cost about four times the CPU, not sixteen (best of two runs)."""
    small, large = _tables(1000), _tables(4000)
    assert len(engine.scan_text(small)) == 1000  # (every cell found)
    t_small = min(_cpu(engine, small) for _ in range(2))
    t_large = min(_cpu(engine, large) for _ in range(2))
    assert t_large < 6.5 * t_small, (t_small, t_large)


def test_lines_of_token_characters_cut_by_one_other_are_measured_in_linear_time():
    """Review of round 34: the search for the run before a line's end at a terminal's width
    was tried from every position of a line of token characters with one other near its
    end: 60 KB of such lines took 50 ms (a server's message of up to 64 KiB is read so)."""
    import time

    from mcp_gateway.scan.views import wrap_view

    def best(text):
        out = []
        for _ in range(3):
            t0 = time.perf_counter()
            wrap_view(text)
            out.append(time.perf_counter() - t0)
        return min(out)

    hard = "\n".join(["a" * 244 + "!" + "b" * 11] * 234)
    easy = "\n".join(["ab " * 85 + "a"] * 234)
    assert len(hard) == len(easy)
    assert best(hard) < 4 * best(easy) + 0.005
