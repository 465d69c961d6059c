"""The stage's row builder and the chain over arbitrary rows (hypothesis)."""

from __future__ import annotations

import re
import sqlite3
import time
from types import SimpleNamespace

import pytest
from audit_testlib import exchange, request, response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.stage import message_row
from mcp_gateway.audit.writer import AuditWriter


def test_identity_attributes_are_optional():
    ex = exchange()
    ex.identity = SimpleNamespace(consumer="svc", subject="sub-1")  # a JWT identity: no key_id
    r = message_row(request(ex, 1))
    assert (r["consumer"], r["key_id"], r["identity_kind"]) == ("svc", "sub-1", None)
    ex.identity = object()  # no attributes at all
    r = message_row(request(ex, 1))
    assert (r["consumer"], r["key_id"], r["identity_kind"]) == (None, None, None)


def test_error_classification():
    ex = exchange()
    assert message_row(response(ex, 1, error=True))["error"] == 1
    assert message_row(response(ex, 1, error=True))["error_code"] == -32601
    assert message_row(response(ex, 1, is_error=True))["error"] == 1
    assert message_row(response(ex, 1))["error"] == 0
    assert message_row(request(ex, 1))["error"] is None


def test_identifiers_a_client_chooses_are_cut_in_the_audit():
    # a 15 MB tool name made two 15 MB rows, a usage key and an index entry per call
    from mcp_gateway.audit.stage import ID_CAP, exchange_row

    long = "t" * 5_000_000
    ex = exchange(session="s" * 100_000)
    m = request(ex, 1, name=long)
    m.id = "i" * 100_000
    r = message_row(m)
    for col in ("name", "rpc_id", "session_id"):
        assert (
            len(r[col]) < ID_CAP + 64
            and r[col].startswith(("t", "i", "s"))
            and "characters, blake2b " in r[col]
        )
    assert re.search(r"…\[5000000 characters, blake2b [0-9a-f]{16}\]\Z", r["name"])
    assert message_row(request(exchange(), 1))["name"] == "echo"  # short ones as they are
    assert len(exchange_row(ex)["session_id"]) < ID_CAP + 64


def test_two_long_ids_with_one_prefix_stay_two_in_the_audit():
    # the sessions table is keyed by the recorded id: a cut that kept only the first
    # ID_CAP characters merged two sessions (and two clients' ids) into one
    a = message_row(request(exchange(session="s" * 600 + "a"), 1))["session_id"]
    b = message_row(request(exchange(session="s" * 600 + "b"), 1))["session_id"]
    assert a != b and a.startswith("s" * 100) and b.startswith("s" * 100)
    assert message_row(request(exchange(session="s" * 600 + "a"), 1))["session_id"] == a


def test_a_findings_location_is_cut_in_the_audit():
    """A location is a JSON pointer through the client's member names: 120 findings
    under 30 KB names made a 3.6 MB row (10 anonymous calls: a 48 MB audit database and
    the proxy 150 MB larger), up to mcp_max_findings of them per message."""
    from mcp_gateway.audit.stage import ID_CAP
    from mcp_gateway.message import Finding

    msg = request(exchange(), 1)
    deep = "/params/arguments/" + "k" * 30_000
    msg.findings = [
        Finding("github-token", "github_token", "critical", "redact", deep, 0, 40),
        Finding("github-token", "github_token", "critical", "redact", "/params/x", 0, 40),
    ]
    found = message_row(msg)["_findings"]
    assert len(found[0]["location"]) < ID_CAP + 64
    assert found[0]["location"].startswith("/params/arguments/kkk")
    assert f"…[{len(deep)} characters, blake2b " in found[0]["location"]
    assert found[1]["location"] == "/params/x"  # short ones as they are


def test_no_payload_unless_asked():
    ex = exchange()
    assert "payload" not in message_row(request(ex, 1))
    assert '"hello"' in message_row(request(ex, 1), store_payloads=True)["payload"]


def test_a_credential_in_a_header_or_the_url_does_not_withhold_the_payload():
    from mcp_gateway.message import Finding

    ex = exchange()
    msg = request(ex, 1)
    for where in ("header:authorization", "url:query"):
        msg.findings = [Finding("github-token", "github_token", "critical", "log", where, 0, 40)]
        stored = message_row(msg, store_payloads=True)["payload"]
        assert '"hello"' in stored and "withheld" not in stored, where
    msg.findings = [Finding("email", "email", "low", "log", "", 0, 0, "(more than 500 …)")]
    assert "withheld" in message_row(msg, store_payloads=True)["payload"]  # not examined


_text = st.text(max_size=20)
_value = st.one_of(st.none(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False), _text)
_row = st.fixed_dictionaries(
    {
        "time": st.floats(0, 4e9, allow_nan=False),
        "flow_id": _text,
        "server": _text,
        "consumer": st.one_of(st.none(), _text),
        "kind": st.sampled_from(["request", "result", "error", "notification"]),
        "direction": st.sampled_from(["c2s", "s2c"]),
        "method": st.one_of(st.none(), _text),
        "name": st.one_of(st.none(), _text),
        "rpc_id": _value,
        "latency_ms": _value,
        "size": _value,
        "status": _value,
        "action": st.sampled_from(["pass", "block"]),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, min_size=1, max_size=30), data=st.data())
def test_any_rows_verify_and_any_edit_is_found(tmp_path_factory, rows, data):
    db = str(tmp_path_factory.mktemp("h") / "a.db")
    w = AuditWriter(db)
    w.open()
    for r in rows:
        assert w.submit(dict(r))
    assert w.close()
    conn = sqlite3.connect(db)
    res = chain.verify(conn, chain.head_path(db))
    assert res.ok, [str(p) for p in res.problems]
    # change one column of one message row to a different value: found at that row
    seqs = [s for (s,) in conn.execute("SELECT seq FROM messages")]
    seq = data.draw(st.sampled_from(seqs))
    col = data.draw(st.sampled_from(["server", "consumer", "action", "flow_id", "method"]))
    old = conn.execute(f"SELECT [{col}] FROM messages WHERE seq=?", (seq,)).fetchone()[0]
    conn.execute(f"UPDATE messages SET [{col}] = ? WHERE seq=?", (f"{old}x", seq))
    conn.commit()
    res = chain.verify(conn, chain.head_path(db))
    conn.close()
    assert not res.ok
    assert (res.problems[0].seq, res.problems[0].what) == (seq, "edited")
    assert schema.SCHEMA_VERSION == res.schema_version


def test_unstorable_values_do_not_kill_the_writer(tmp_path):
    db = str(tmp_path / "a.db")
    w = AuditWriter(db)
    w.open()
    w.submit({"time": 1.0, "flow_id": "big", "size": 2**70, "name": "bad\ud800name"})
    w.submit({"time": 2.0, "flow_id": "nan", "latency_ms": float("nan")})
    assert w.flush()
    w.submit({"time": 3.0, "flow_id": "after"})
    assert w.close() and w.running is False
    conn = sqlite3.connect(db)
    got = conn.execute("SELECT flow_id, size, name, latency_ms FROM messages ORDER BY seq")
    assert got.fetchall() == [
        ("big", None, "bad?name", None),
        ("nan", None, None, None),
        ("after", None, None, None),
    ]
    assert chain.verify(conn, chain.head_path(db)).ok


def test_a_batch_that_cannot_be_stored_is_counted_not_fatal(tmp_path, monkeypatch):
    from mcp_gateway.audit import writer as wmod

    db = str(tmp_path / "a.db")
    w = AuditWriter(db)
    w.open()
    assert w.flush()
    real = wmod.chain.row_hash
    calls = {"n": 0}

    def broken(prev, table, seq, values):
        if table == "messages" and "poison" in values:
            calls["n"] += 1
            raise RuntimeError("boom")
        return real(prev, table, seq, values)

    monkeypatch.setattr(wmod.chain, "row_hash", broken)
    w.submit({"time": 1.0, "flow_id": "poison"})
    assert w.flush()
    monkeypatch.setattr(wmod.chain, "row_hash", real)
    w.submit({"time": 2.0, "flow_id": "fine"})
    assert w.close()
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT flow_id FROM messages")] == ["fine"]
    assert conn.execute("SELECT count FROM audit_events WHERE event='dropped'").fetchone() == (1,)
    assert chain.verify(conn, chain.head_path(db)).ok


def test_only_a_protocol_version_is_recorded_as_one():
    """The MCP-Protocol-Version header is the client's to write: a credential sent there is
    not copied into the sessions table."""
    ex = exchange()
    ex.protocol_version = "2025-06-18"
    assert message_row(request(ex, 1))["_protocol_version"] == "2025-06-18"
    ex.protocol_version = "ghp_Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0abc123"
    assert message_row(request(ex, 1))["_protocol_version"] == "[not a protocol version]"


def queued(w) -> int:
    """Rows waiting in a writer that was not started."""
    return w.queue.qsize() if hasattr(w, "queue") else len(w._frames)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_batch_without_room_for_every_row_is_refused_whole(tmp_path, kind):
    # rows already queued for some elements would say they passed, while the gateway
    # answers the batch as a whole and forwards none of it
    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.stage import AUDIT_FULL_MESSAGE, AuditStage
    from mcp_gateway.audit.writer import AuditWriter
    from mcp_gateway.message import Action, ErrorCode

    cls = AuditWriter if kind == "thread" else ProcessWriter
    w = cls(str(tmp_path / "a.db"), queue_size=3)  # not started: rows stay queued
    ex = exchange()
    assert w.submit(message_row(request(ex, 99, method="ping", name=None)))
    msgs = [request(ex, i, method="ping", name=None) for i in range(3)]
    AuditStage(w).process_batch(msgs)
    assert queued(w) == 1 and w._refused == 3
    assert {(x.action, x.refusal.code, x.refusal.message) for x in msgs} == {
        (Action.BLOCK, ErrorCode.INTERNAL_ERROR, AUDIT_FULL_MESSAGE)
    }
    msgs = [request(ex, i, method="ping", name=None) for i in range(2)]
    AuditStage(w).process_batch(msgs)
    assert queued(w) == 3 and all(x.action is Action.PASS for x in msgs)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_batch_larger_than_the_whole_queue_is_taken_when_it_is_empty(tmp_path, kind):
    """mcp_audit_queue_size below mcp_max_batch: such a batch could never fit, so it was
    refused every time; an empty queue takes it whole."""
    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.stage import AuditStage
    from mcp_gateway.audit.writer import AuditWriter
    from mcp_gateway.message import Action

    cls = AuditWriter if kind == "thread" else ProcessWriter
    w = cls(str(tmp_path / "a.db"), queue_size=2)
    ex = exchange()
    msgs = [request(ex, i, method="ping", name=None) for i in range(5)]
    AuditStage(w).process_batch(msgs)
    assert all(x.action is Action.PASS for x in msgs) and w._refused == 0
    assert queued(w) == 5
    assert not w.submit(message_row(request(ex, 9, method="ping", name=None)))


def _with_payload(i: int, size: int) -> dict:
    row = message_row(request(exchange(), i, method="ping", name=None))
    row["payload"] = "x" * size
    return row


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_stored_payloads_are_bounded_in_bytes_not_only_in_rows(tmp_path, kind):
    """mcp_audit_queue_size counted rows only: with mcp_audit_store_payloads, 40 results of
    5 MB queued while the database was locked took 1.4 GB (proxy and writer process), and
    the default 50,000 rows of up to 16 MiB each had no practical bound. Payloads now have
    a budget of queue_size KiB; one larger than it is taken when no other is held."""
    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.writer import AuditWriter

    cls = AuditWriter if kind == "thread" else ProcessWriter
    w = cls(str(tmp_path / "a.db"), queue_size=100)  # not started: rows stay queued
    assert w.submit(_with_payload(1, 60 * 1024))
    assert not w.submit(_with_payload(2, 60 * 1024))  # 120 KiB > 100 KiB
    assert not w.submit_many([_with_payload(3, 30 * 1024), _with_payload(4, 30 * 1024)])
    assert w.submit(_with_payload(5, 30 * 1024))  # 90 KiB
    for i in range(10):  # rows without a payload are counted as before
        assert w.submit(message_row(request(exchange(), 10 + i, method="ping", name=None)))
    assert queued(w) == 12 and w._dropped == 1 and w._refused == 2
    big = cls(str(tmp_path / "b.db"), queue_size=100)
    assert big.submit(_with_payload(1, 500 * 1024))  # larger than the budget, nothing held
    assert not big.submit(_with_payload(2, 1))


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_payloads_held_while_the_database_is_locked_are_released_once_written(tmp_path, kind):
    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.writer import AuditWriter

    db = str(tmp_path / "a.db")
    cls = AuditWriter if kind == "thread" else ProcessWriter
    w = cls(db, queue_size=100, flush_interval=0.05)
    w.open()
    try:
        assert w.flush()
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        accepted = 0
        for i in range(50):  # 50 x 10 KiB against a budget of 100 KiB
            accepted += w.submit(_with_payload(i, 10 * 1024))
            time.sleep(0.01)
        assert 5 <= accepted <= 10, accepted
        lock.execute("COMMIT")
        lock.close()
        assert w.flush(20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not w.submit(_with_payload(99, 60 * 1024)):
            time.sleep(0.05)  # (the process writer hears of the commit a moment later)
        assert w.flush(20)
    finally:
        assert w.close()
    conn = sqlite3.connect(db)
    n = conn.execute("SELECT count(*) FROM messages WHERE payload IS NOT NULL").fetchone()[0]
    assert n >= accepted + 1
    assert chain.verify(conn, chain.head_path(db)).ok
