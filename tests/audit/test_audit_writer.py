"""The background writer: batching, flush on close, queue full in both modes, failures."""

from __future__ import annotations

import logging
import os
import sqlite3
import time

import pytest
from audit_testlib import (
    append_chained_row,
    exchange,
    finding,
    open_writer,
    request,
    response,
    rows,
    wait_for,
)
from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.stage import AUDIT_FULL_MESSAGE, AuditStage, message_row
from mcp_gateway.audit.writer import AuditError, open_database
from mcp_gateway.message import Action, ErrorCode


def _row(i: int) -> dict:
    ex = exchange(flow_id=f"f{i}")
    return message_row(request(ex, i))


def test_batches_by_row_count(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db, batch_rows=100, flush_interval=5.0)
    for i in range(250):
        assert w.submit(_row(i))
    assert w.flush(timeout=10)
    assert w.committed == 250
    # 250 rows with at most 100 per batch: at least three commits (plus the start event).
    assert w.batches >= 3
    seqs = [r[0] for r in rows(db, "SELECT seq FROM messages ORDER BY seq")]
    assert len(seqs) == 250
    assert seqs == list(range(seqs[0], seqs[0] + 250))
    assert w.close()


@pytest.mark.parametrize("n", [1, 5])
def test_commits_within_flush_interval_without_explicit_flush(tmp_path, n):
    # (a quiet proxy's rows do not wait for busy_interval either)
    db = tmp_path / "a.db"
    w = open_writer(db, batch_rows=10_000, flush_interval=0.1, busy_interval=30.0)
    for i in range(n):
        w.submit(_row(i))
    t0 = time.monotonic()
    assert wait_for(lambda: rows(db, "SELECT count(*) FROM messages")[0][0] == n, timeout=5)
    assert time.monotonic() - t0 < 2.0
    w.close()


def test_a_busy_proxy_gets_bigger_batches(tmp_path):
    # Rows arriving faster than 200 per flush_interval: a commit costs about as much as
    # ~250 rows, so the batch grows (to 1000 rows or busy_interval) instead of being
    # committed every flush_interval.
    db = tmp_path / "a.db"
    w = open_writer(db, batch_rows=10_000, flush_interval=0.2, busy_interval=30.0)
    w.flush(timeout=10)
    before = w.batches
    for chunk in range(16):  # 4000 rows, 250 at a time every ~0.1 s
        for i in range(250):
            assert w.submit(_row(chunk * 250 + i))
        time.sleep(0.1)
    assert wait_for(lambda: w.committed >= 4000, timeout=10)
    # four batches of 1000; flush_interval alone made six (a commit every ~0.25 s)
    assert w.batches - before <= 5
    assert w.close()


def test_close_writes_everything_and_a_stop_event(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=10.0, batch_rows=100_000)  # never flushes on its own
    for i in range(1234):
        w.submit(_row(i))
    assert w.close(timeout=30)
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 1234
    events = [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["start", "stop"]
    conn = schema.connect(str(db))
    res = chain.verify(conn, chain.head_path(str(db)))
    assert res.ok, res.problems
    assert res.rows == 1234 + 2


def test_findings_rows_follow_their_message(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db)
    m = request(exchange(), 7, args={"text": "AKIAIOSFODNN7EXAMPLE"})
    m.findings += [finding(start=0, end=4), finding(rule="other", start=4, end=8)]
    w.submit(message_row(m))
    w.close()
    ((mseq, nfind),) = rows(db, "SELECT seq, findings FROM messages")
    assert nfind == 2
    f = rows(db, "SELECT seq, message_seq, rule, masked, flow_id FROM findings ORDER BY seq")
    assert [r[0] for r in f] == [mseq + 1, mseq + 2]
    assert {r[1] for r in f} == {mseq}
    assert f[0][2:] == ("aws-key", "AKIA…MPLE", "flow-1")
    # the raw value is nowhere in the database
    raw = (
        db.read_bytes() + (tmp_path / "a.db-wal").read_bytes()
        if (tmp_path / "a.db-wal").exists()
        else db.read_bytes()
    )
    assert b"AKIAIOSFODNN7EXAMPLE" not in raw


def test_a_big_batch_is_written_in_chunks_with_its_findings_and_chain_intact(tmp_path):
    """The writer inserts a batch a chunk at a time (it sleeps between chunks so that the
    proxy's thread can take the GIL): findings still follow their message, in one
    transaction, and the chain verifies."""
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=10.0, batch_rows=100_000)
    for i in range(300):
        m = request(exchange(flow_id=f"f{i}"), i)
        if i % 3 == 0:
            m.findings.append(finding(start=0, end=4))
        w.submit(message_row(m))
    assert w.close(timeout=30)
    assert w.batches == 1
    msgs = dict(rows(db, "SELECT seq, flow_id FROM messages"))
    found = rows(db, "SELECT seq, message_seq, flow_id FROM findings ORDER BY seq")
    assert len(msgs) == 300 and len(found) == 100
    for seq, mseq, flow in found:
        assert seq == mseq + 1 and msgs[mseq] == flow
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok, res.problems


def _lock(db) -> sqlite3.Connection:
    """Hold the write lock from another connection, as a stuck process would."""
    c = sqlite3.connect(str(db), isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    return c


def test_queue_full_drop_mode_counts_the_loss_in_the_audit(tmp_path, caplog):
    db = tmp_path / "a.db"
    w = open_writer(db, queue_size=5, busy_timeout=0.2, batch_rows=5)
    assert w.flush()
    st = AuditStage(w, on_full="drop")
    locker = _lock(db)
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    msgs = []
    for i in range(60):
        m = request(exchange(flow_id=f"f{i}"), i)
        st.process(m)
        msgs.append(m)
        time.sleep(0.002)
    # drop mode: every message goes on, none was refused
    assert all(m.action is Action.PASS for m in msgs)
    assert w.total_dropped > 0
    # the writer could not commit: a loud line names the database and the error
    assert wait_for(lambda: any("cannot write to" in r.getMessage() for r in caplog.records), 5)
    locker.execute("ROLLBACK")
    locker.close()
    assert w.close(timeout=20)
    recorded = rows(db, "SELECT count(*) FROM messages")[0][0]
    dropped = rows(db, "SELECT coalesce(sum(count),0) FROM audit_events WHERE event='dropped'")[0][
        0
    ]
    assert dropped == w.total_dropped
    assert recorded + dropped == 60  # nothing lost silently
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok, res.problems


def test_queue_full_block_mode_refuses_and_counts(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db, queue_size=3, busy_timeout=0.2, batch_rows=3)
    assert w.flush()
    st = AuditStage(w, on_full="block")
    locker = _lock(db)
    msgs = []
    for i in range(40):
        m = request(exchange(flow_id=f"f{i}"), i)
        st.process(m)
        msgs.append(m)
        time.sleep(0.002)
    refused = [m for m in msgs if m.action is Action.BLOCK]
    assert refused, "a full queue in block mode must refuse messages"
    assert refused[0].refusal.code == ErrorCode.INTERNAL_ERROR
    assert refused[0].refusal.message == AUDIT_FULL_MESSAGE
    assert refused[0].refusal.stage == "audit"
    # a full queue also refuses server->client responses (they are replaced by an error)
    resp = response(exchange(flow_id="fr"), 1)
    for _ in range(10):
        st.process(resp)
    assert resp.action is Action.BLOCK
    locker.execute("ROLLBACK")
    locker.close()
    assert w.close(timeout=20)
    rec = rows(db, "SELECT coalesce(sum(count),0) FROM audit_events WHERE event='refused'")[0][0]
    assert rec == w.total_refused >= len(refused)
    passed = [m for m in msgs if m.action is Action.PASS]
    stored = rows(db, "SELECT count(*) FROM messages WHERE flow_id LIKE 'f%' AND kind='request'")
    assert stored[0][0] == len(passed)


def test_recovers_after_a_failure_and_chain_stays_intact(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db, busy_timeout=0.1)
    assert w.flush()
    locker = _lock(db)
    for i in range(20):
        w.submit(_row(i))
    assert wait_for(lambda: w.failing, 5)
    locker.execute("ROLLBACK")
    locker.close()
    assert w.flush(timeout=10)
    assert not w.failing
    assert w.close()
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 20
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_two_writers_on_one_database_share_one_chain(tmp_path):
    db = tmp_path / "a.db"
    w1, w2 = open_writer(db), open_writer(db)
    for i in range(300):
        (w1 if i % 2 else w2).submit(_row(i))
    assert w1.close() and w2.close()
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok, res.problems
    assert res.counts["messages"] == 300


def test_head_file_follows_each_commit(tmp_path):
    db = tmp_path / "a.db"
    w = open_writer(db)
    w.submit(_row(1))
    w.flush()
    head = chain.read_head(chain.head_path(str(db)))
    seq, h = rows(db, "SELECT seq, hash FROM messages ORDER BY seq DESC LIMIT 1")[0]
    assert head["seq"] == seq and head["hash"] == h
    w.close()


@pytest.mark.parametrize(
    "setup, expect",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"this is not sqlite" * 100), "corrupt or not a SQLite"),
    ],
)
def test_open_database_errors(tmp_path, setup, expect):
    p = tmp_path / "x.db"
    setup(p)
    with pytest.raises(AuditError, match=expect):
        open_database(str(p))


def test_open_database_unwritable_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(AuditError, match="cannot create the directory"):
        open_database(str(f / "sub" / "a.db"))


def test_open_database_other_schema_and_foreign_db(tmp_path):
    p = tmp_path / "old.db"
    open_database(str(p)).close()  # a version-1 database
    c = sqlite3.connect(str(p))
    c.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    c.commit()
    c.close()
    with pytest.raises(AuditError, match="schema version 0"):
        open_database(str(p))
    q = tmp_path / "other.db"
    c = sqlite3.connect(str(q))
    c.execute("CREATE TABLE customers (id INTEGER)")
    c.commit()
    c.close()
    with pytest.raises(AuditError, match="not an mcp-gateway audit database"):
        open_database(str(q))


def test_shares_the_file_with_the_identity_key_store(tmp_path):
    """mcp_gateway.identity keeps api_keys in the same database file."""
    p = tmp_path / "gw.db"
    c = sqlite3.connect(str(p))
    c.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY, hash TEXT)")
    c.commit()
    c.close()
    open_database(str(p)).close()
    tables = {r[0] for r in rows(p, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"api_keys", "messages", "meta"} <= tables


def test_open_database_locked(tmp_path):
    p = tmp_path / "a.db"
    open_database(str(p)).close()
    locker = _lock(p)
    try:
        with pytest.raises(AuditError, match="locked by another process"):
            open_database(str(p), timeout=0.2)
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_disk_full_is_loud_counted_and_recovers(tmp_path, caplog):
    """SQLITE_FULL (here: max_page_count on the writer's connection) while traffic flows."""
    db = tmp_path / "a.db"
    w = open_writer(db, queue_size=20, batch_rows=20)
    assert w.flush()
    pages = w._conn.execute("PRAGMA page_count").fetchone()[0]
    w._conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is full now
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    st = AuditStage(w, on_full="drop")
    for i in range(300):
        st.process(request(exchange(flow_id=f"f{i}", consumer=f"c{i}"), i, args={"t": "x" * 200}))
        time.sleep(0.001)
    assert wait_for(lambda: any("full" in r.getMessage() for r in caplog.records), 5)
    assert w.failing and "full" in w.last_error
    assert w.total_dropped > 0
    w._conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    assert w.close(timeout=20)
    recorded = rows(db, "SELECT count(*) FROM messages")[0][0]
    dropped = rows(db, "SELECT coalesce(sum(count),0) FROM audit_events WHERE event='dropped'")
    assert recorded + dropped[0][0] == 300
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def _cut_after(db, seq: int, head_seq: str) -> None:
    """Delete every chained row after ``seq`` by hand, and set meta's head_seq."""
    c = sqlite3.connect(str(db))
    for t in schema.CHAINED_TABLES:
        c.execute(f"DELETE FROM [{t}] WHERE seq > ?", (seq,))
    c.execute("UPDATE meta SET value=? WHERE key='head_seq'", (head_seq,))
    c.commit()
    c.close()


def test_start_creates_the_head_file_and_flags_a_truncated_database(tmp_path, caplog):
    db = tmp_path / "a.db"
    w = open_writer(db)
    assert chain.read_head(chain.head_path(str(db)))["seq"] == 0  # exists before any commit
    for i in range(10):
        w.submit(_row(i))
    assert w.close()
    head = chain.read_head(chain.head_path(str(db)))
    _cut_after(db, 5, head_seq="5")
    caplog.set_level(logging.ERROR, logger="mcp_gateway")
    w = open_writer(db)
    assert any("rows are missing at the end" in r.getMessage() for r in caplog.records)
    assert w.close()
    # the evidence is kept: the head file was not moved back, and verify still fails
    assert chain.read_head(chain.head_path(str(db)))["seq"] == head["seq"]
    start = rows(db, "SELECT detail FROM audit_events WHERE event='start' ORDER BY seq")[-1][0]
    assert "ahead of the database" in start
    assert not chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


@pytest.mark.parametrize("meta", [None, "x"], ids=["meta-left-as-it-was", "meta-not-a-number"])
def test_start_flags_rows_deleted_from_the_end_whatever_meta_says(tmp_path, caplog, meta):
    """Deleting the last rows without touching meta, or spoiling meta, is reported at start
    (and the gateway still starts)."""
    db = tmp_path / "a.db"
    w = open_writer(db)
    for i in range(10):
        w.submit(_row(i))
    assert w.close()
    c = sqlite3.connect(str(db))
    for t in schema.CHAINED_TABLES:
        c.execute(f"DELETE FROM [{t}] WHERE seq > 5")
    if meta is not None:
        c.execute("UPDATE meta SET value=? WHERE key='head_seq'", (meta,))
    c.commit()
    c.close()
    caplog.set_level(logging.ERROR, logger="mcp_gateway")
    w = open_writer(db)
    assert any("mcp-gateway audit" in r.getMessage() for r in caplog.records)
    assert w.close()
    assert not chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def _shut_down_while_locked(db) -> float:
    """Five events submitted while another connection holds the database locked past the
    shutdown's wait: close() reports failure, the writer's thread gives up instead of
    retrying forever. The seconds close() took."""
    w = open_writer(db, busy_timeout=0.1)
    assert w.flush()
    locker = _lock(db)
    try:
        for i in range(5):
            w.submit(_row(i))
        thread = w._thread
        t0 = time.monotonic()
        assert w.close(timeout=1.0) is False
        took = time.monotonic() - t0
        thread.join(5)
        assert not thread.is_alive()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    return took


def test_close_is_bounded_when_the_database_stays_locked(tmp_path, caplog):
    assert _shut_down_while_locked(tmp_path / "a.db") < 3
    assert any("could not write" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("how", ["deleted", "replaced", "main file only"])
def test_database_deleted_or_replaced_while_running_starts_a_new_one(tmp_path, caplog, how):
    # SQLite would go on writing into the old file: every later row would be lost with it.
    # ("rm audit.db" leaves -wal and -shm: read as the new file's, they failed every write.)
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    other = sqlite3.connect(str(db))  # another process's connection keeps the -wal in place
    other.execute("SELECT count(*) FROM messages").fetchall()
    for i in range(5):
        w.submit(_row(i))
    assert w.flush(timeout=10)
    if how == "main file only":
        assert (tmp_path / "a.db-wal").exists()
    for suffix in ("", ".head") if how == "main file only" else ("", "-wal", "-shm", ".head"):
        p = tmp_path / f"a.db{suffix}"
        if p.exists():
            p.unlink()
    if how == "replaced":
        db.write_bytes(b"")  # an empty file in its place: a new database
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        for i in range(5, 12):
            w.submit(_row(i))
        assert w.flush(timeout=10)
    assert "was deleted or replaced while the gateway ran" in caplog.text
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 7
    events = [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["reopened"]
    assert w.close()
    other.close()
    conn = schema.connect(str(db))
    res = chain.verify(conn, chain.head_path(str(db)))
    assert res.ok, res.problems


def test_a_replaced_end_of_the_chain_is_not_blessed_at_the_next_start(tmp_path, caplog):
    """Rows after the head file's row are accepted (a crash leaves them), but only when the
    row the head file records is still there as it was: a chain whose end was replaced by
    rows running past the head is reported, and the head file stays where it was."""
    import shutil

    db, forged = tmp_path / "a.db", tmp_path / "forged.db"
    w = open_writer(db)
    for i in range(10):
        w.submit(_row(i))
    assert w.close()
    head = chain.read_head(chain.head_path(str(db)))
    # the forger: cut the end, then chain more rows than there were (no head file of ours)
    shutil.copy(db, forged)
    _cut_after(forged, 5, head_seq="0")
    w = open_writer(forged)
    for i in range(20):
        w.submit(_row(100 + i))
    assert w.close()
    shutil.copy(forged, db)  # only the database is writable to the forger
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"a.db{suffix}").unlink(missing_ok=True)
    caplog.set_level(logging.ERROR, logger="mcp_gateway")
    w = open_writer(db)
    w.submit(_row(999))
    assert w.close()
    assert any("missing or differs" in r.getMessage() for r in caplog.records)
    assert chain.read_head(chain.head_path(str(db))) == head  # left as it was
    assert not chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_a_chain_rewritten_while_the_gateway_runs_is_not_blessed(tmp_path, caplog):
    """A forger who can write the database but not the head file edits the trail while the
    gateway runs: cuts the end and sets meta to the new last row. The next batch must not
    chain onto the forgery and move the head file forward to bless it."""
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    for i in range(10):
        w.submit(_row(i))
    assert w.flush(timeout=10)
    head = chain.read_head(chain.head_path(str(db)))
    c = sqlite3.connect(str(db))
    for t in schema.CHAINED_TABLES:
        c.execute(f"DELETE FROM [{t}] WHERE seq > 5")
    (h5,) = c.execute("SELECT hash FROM messages WHERE seq = 5").fetchone()
    c.execute("UPDATE meta SET value='5' WHERE key='head_seq'")
    c.execute("UPDATE meta SET value=? WHERE key='head_hash'", (h5,))
    c.commit()
    c.close()
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        for i in range(10, 13):
            w.submit(_row(i))
        assert w.flush(timeout=10)
    assert w.close()
    assert "the audit trail was edited while the gateway ran" in caplog.text
    assert chain.read_head(chain.head_path(str(db))) == head  # left at the true end
    events = [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert "rewritten" in events
    assert not chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_a_database_swapped_for_a_forged_copy_while_running_is_reported(tmp_path):
    import shutil

    db, forged = tmp_path / "a.db", tmp_path / "forged.db"
    w = open_writer(db, flush_interval=0.05)
    for i in range(10):
        w.submit(_row(i))
    assert w.flush(timeout=10)
    head = chain.read_head(chain.head_path(str(db)))
    f = open_writer(forged)  # a chain of the forger's making, without row 9
    for i in range(8):
        f.submit(_row(i))
    assert f.close()
    shutil.copy(forged, tmp_path / "swap.db")
    (tmp_path / "swap.db").replace(db)  # the head file stays: only the database is writable
    for p in tmp_path.glob("a.db-*"):  # (the old -wal would be read as the new file's)
        p.unlink()
    for i in range(3):
        w.submit(_row(100 + i))
    assert w.flush(timeout=10)
    assert w.close()
    assert chain.read_head(chain.head_path(str(db))) == head
    assert not chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_rows_appended_by_someone_else_are_named_in_the_trail(tmp_path, caplog):
    """A correctly hashed row appended by hand after the writer's last one is built upon
    (another gateway on the same file does the same), so verify cannot tell: the writer
    names the rows it did not write in an event chained right after them."""
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    for i in range(3):
        w.submit(_row(i))
    assert w.flush(timeout=10)
    other = open_writer(db)  # the forger's writer: correct hashes, no key needed
    other.submit({**_row(99), "method": "tools/call", "name": "delete_repo"})
    assert other.close(record_stop=False)
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        w.submit(_row(4))
        assert w.flush(timeout=10)
    assert w.close()
    assert "written by another process" in caplog.text
    (detail,) = rows(db, "SELECT detail FROM audit_events WHERE event='foreign'")[0]
    (fake,) = rows(db, "SELECT seq FROM messages WHERE name='delete_repo'")[0]
    first, last = (int(x) for x in detail.split()[1].split("-"))
    assert first <= fake <= last
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database is locked"),  # retried with back-off
        TypeError("a value the hash cannot take"),  # written again, sanitized
    ],
)
def test_foreign_rows_are_named_once_when_the_batch_is_written_again(tmp_path, monkeypatch, error):
    """A batch that fails after its events were made is written again: the event its
    first try made (said only once) must be in the second, and only there."""
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    w.submit(_row(0))
    assert w.flush(timeout=10)
    other = open_writer(db)
    other.submit(_row(1))
    assert other.close(record_stop=False)
    real = schema.set_meta
    fails = [1]

    def flaky(conn, key, value):
        if key == "head_seq" and fails:
            fails.pop()
            raise error
        return real(conn, key, value)

    monkeypatch.setattr(schema, "set_meta", flaky)
    w.submit(_row(2))
    assert w.flush(timeout=10)
    assert w.close()
    assert not fails  # (the failure happened)
    assert len(rows(db, "SELECT seq FROM audit_events WHERE event='foreign'")) == 1
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_a_database_replaced_by_a_directory_then_removed_keeps_the_head_file(tmp_path, caplog):
    # The first reopen found a directory at the path and froze the head file (a swap); the
    # next, the path gone, deleted that frozen head file, and none was written again: verify
    # said "head-missing" for the rest of the run and the old chain's end was lost.
    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    for i in range(5):
        w.submit(_row(i))
    assert w.flush(timeout=10)
    for suffix in ("", "-wal", "-shm"):
        p = tmp_path / f"a.db{suffix}"
        if p.exists():
            p.unlink()
    db.mkdir()
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        for i in range(5, 8):
            w.submit(_row(i))
        w.flush(timeout=1.0)  # (cannot be written while a directory stands there)
        db.rmdir()
        for i in range(8, 12):
            w.submit(_row(i))
        assert w.flush(timeout=10)
    assert w.close()
    assert chain.head_path(str(db)) and (tmp_path / "a.db.head").exists()
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert [p.what for p in res.problems if p.what.startswith("head")] in (
        [],
        ["head-mismatch"],  # (the swap, truthfully: the chain the head file ends was replaced)
    ), [str(p) for p in res.problems]


def _start_names_foreign_row(db, seq: int, caplog, says: str) -> None:
    """The next start logs an error that ``says`` so and records row ``seq`` in a
    `foreign` event of the trail."""
    caplog.set_level(logging.ERROR, logger="mcp_gateway")
    w = open_writer(db)
    assert any(says in r.getMessage() for r in caplog.records)
    assert w.close()
    events = rows(db, "SELECT event, detail FROM audit_events ORDER BY seq")
    assert ("foreign", f"rows {seq}-{seq} were not written by this gateway") in [
        (e, d.split(" (pid")[0]) for e, d in events if d
    ]


def test_start_records_rows_appended_after_a_clean_stop(tmp_path, caplog):
    """Rows after the `stop` event the head file records were added while no gateway ran:
    the next start names them in a `foreign` event instead of adopting them silently."""
    db = tmp_path / "a.db"
    w = open_writer(db)
    for i in range(3):
        w.submit(_row(i))
    assert w.close()
    seq = append_chained_row(db, "audit_events")
    _start_names_foreign_row(db, seq + 1, caplog, "after the `stop` event")


def test_new_database_and_head_file_are_private(tmp_path):
    import os
    import stat

    db = tmp_path / "a.db"
    old = os.umask(0o022)
    try:
        w = open_writer(db)
        w.submit(_row(0))
        assert w.close()
    finally:
        os.umask(old)
    for p in (db, chain.head_path(str(db))):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p


def _crashed_copy(live, db) -> None:
    """The database and head file as a `kill -9` of the gateway leaves them (no `stop`)."""
    src, dst = sqlite3.connect(str(live)), sqlite3.connect(str(db))
    src.backup(dst)
    src.close()
    dst.close()
    with open(chain.head_path(str(live)), "rb") as f:
        head = f.read()
    with open(chain.head_path(str(db)), "wb") as f:
        f.write(head)


def test_a_crash_between_commit_and_head_update_is_no_append(tmp_path, monkeypatch, caplog):
    """The batch committed last, its head file update lost with the process: it was
    announced in the head file before its commit, so `verify` and the next start take it
    for what it is."""
    live, db = tmp_path / "live.db", tmp_path / "a.db"
    w = open_writer(live)
    try:
        w.submit(_row(1))
        assert w.flush()
        monkeypatch.setattr(chain.HeadFile, "write", lambda self, seq, hash_: None)
        for i in range(2, 5):
            w.submit(_row(i))
        assert w.flush()
        _crashed_copy(live, db)
        monkeypatch.undo()
    finally:
        assert w.close()
    head = chain.read_head(chain.head_path(str(db)))
    last = rows(db, "SELECT max(seq) FROM messages")[0][0]
    assert head["seq"] < last and head["pending"][0] == last
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok and res.warnings, [str(p) for p in res.problems]
    caplog.set_level(logging.ERROR, logger="mcp_gateway")
    w = open_writer(db)
    assert w.close()
    assert not [r for r in caplog.records if "announced" in r.getMessage()]
    assert "foreign" not in [e for (e,) in rows(db, "SELECT event FROM audit_events")]
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_start_records_rows_appended_after_a_crash(tmp_path, caplog):
    """After a `kill -9` the last row is no `stop` event, and rows appended then (correct
    hashes, meta set to match) passed as a crash's leftover batch: the next start moved the
    head file over them without a trace."""
    live, db = tmp_path / "live.db", tmp_path / "a.db"
    w = open_writer(live)
    try:
        for i in range(3):
            w.submit(_row(i))
        assert w.flush()
        _crashed_copy(live, db)
    finally:
        assert w.close()
    seq = append_chained_row(db, "messages")
    _start_names_foreign_row(db, seq + 1, caplog, "no gateway announced")


def test_two_writers_on_one_file_log_their_foreign_rows_once_a_minute(tmp_path, caplog):
    """Each names the other's rows in the trail at every batch; the log got one warning
    per batch (ten a second under traffic)."""
    db = tmp_path / "a.db"
    w1, w2 = open_writer(db), open_writer(db)
    with caplog.at_level(logging.WARNING, logger="mcp_gateway"):
        for i in range(10):
            for w in (w1, w2):
                w.submit(_row(i))
                assert w.flush(timeout=10)
    assert w1.close() and w2.close()
    logged = [r for r in caplog.records if "written by another process" in r.getMessage()]
    events = rows(db, "SELECT count(*) FROM audit_events WHERE event='foreign'")[0][0]
    assert events >= 18  # every run of the other's rows is still named in the trail
    assert 1 <= len(logged) <= 2, [r.getMessage() for r in logged]
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


def test_events_a_shutdown_could_not_write_are_recorded_at_the_next_start(tmp_path, caplog):
    """The database locked (or the disk full) for longer than the shutdown waits: the
    events were lost with a log line only, the trail ended without a `stop` as after a
    crash, `verify` passed, and the next start said nothing."""
    db = tmp_path / "a.db"
    _shut_down_while_locked(db)
    # the loud line counts the batch being retried ("0 events queued" once)
    assert "retrying, 5 events queued" in caplog.text
    head = chain.read_head(chain.head_path(str(db)))
    assert head["unwritten"][0] == 5
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok and any("could not write" in x for x in res.warnings), res.warnings
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    w = open_writer(db)
    said = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert said and said[0].levelno == logging.WARNING  # (an error stops mitmdump at start)
    assert w.close()
    assert rows(db, "SELECT count FROM audit_events WHERE event='lost'") == [(5,)]
    assert "unwritten" not in chain.read_head(chain.head_path(str(db)))
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok and not res.warnings, res.warnings


def test_stats_count_the_events_a_shutdown_lost(tmp_path, capsys):
    from mcp_gateway.cli import main

    db = tmp_path / "a.db"
    assert open_writer(db).close()
    chain.note_unwritten(chain.head_path(str(db)), str(db), 7)
    assert open_writer(db).close()  # records the `lost` event
    capsys.readouterr()
    assert main(["audit", "stats", "--db", str(db), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["audit_lost"] == 7
    assert main(["audit", "stats", "--db", str(db)]) == 0
    assert "dropped / refused / lost" in capsys.readouterr().out


def test_verify_repeats_the_incidents_the_trail_records(tmp_path, capsys):
    """A correctly hashed row appended while the gateway ran is named in a `foreign` event,
    but `verify` said only "chain intact": whoever checks the trail with it (a cron job)
    never heard of the append. It stays exit 0 (verify cannot tell) with a warning."""
    from mcp_gateway.cli import main

    db = tmp_path / "a.db"
    w = open_writer(db, flush_interval=0.05)
    w.submit(_row(0))
    assert w.flush(timeout=10)
    other = open_writer(db)  # the forger's writer: correct hashes, no key needed
    other.submit({**_row(99), "method": "tools/call", "name": "delete_repo"})
    assert other.close(record_stop=False)
    w.submit(_row(1))
    assert w.flush(timeout=10)
    assert w.close()
    (fake,) = rows(db, "SELECT seq FROM messages WHERE name='delete_repo'")[0]
    (ev,) = rows(db, "SELECT seq FROM audit_events WHERE event='foreign'")[0]
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok
    said = [x for x in res.warnings if "`foreign`" in x]
    assert len(said) == 1 and f"seq {ev}" in said[0], res.warnings
    capsys.readouterr()
    assert main(["audit", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "chain intact" in out and "warning: the trail records 1 `foreign` event" in out
    assert fake < ev


def test_a_head_file_deleted_with_the_end_of_the_chain_is_not_made_again_at_start(tmp_path, caplog):
    """Rows deleted from the end (meta set to match) and the head file deleted while no
    gateway ran: `verify` reported the missing head file, but the next start wrote a new
    one at the shortened end without a word, and `verify` passed from then on."""
    db = tmp_path / "a.db"
    w = open_writer(db)
    for i in range(10):
        w.submit(_row(i))
    assert w.close()
    conn = sqlite3.connect(db)
    keep, kept_hash = conn.execute("SELECT seq, hash FROM messages WHERE seq = 5").fetchone()
    for t in schema.CHAINED_TABLES:
        conn.execute(f"DELETE FROM [{t}] WHERE seq > ?", (keep,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(keep),))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (kept_hash,))
    conn.commit()
    conn.close()
    head = chain.head_path(str(db))
    os.remove(head)
    assert not chain.verify(schema.connect(str(db)), head).ok
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        w = open_writer(db)
    assert any(
        "head file" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records
    )
    w.submit(_row(20))
    assert w.close()
    assert not os.path.exists(head)
    res = chain.verify(schema.connect(str(db)), head)
    assert not res.ok and res.problems[0].what == "head-missing"
    (detail,) = rows(db, "SELECT detail FROM audit_events WHERE event='start' ORDER BY seq DESC")[0]
    assert "missing" in detail


def test_a_new_database_still_gets_its_head_file(tmp_path, caplog):
    db = tmp_path / "a.db"
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        w = open_writer(db)
        w.submit(_row(1))
        assert w.close()
    assert not caplog.records
    assert chain.verify(schema.connect(str(db)), chain.head_path(str(db))).ok


@pytest.mark.parametrize("spoil", ["last-row-deleted", "head-file-unreadable"])
def test_rows_deleted_from_the_end_are_not_blessed_once_new_rows_reach_the_head(
    tmp_path, caplog, spoil
):
    """The head file never moved backwards, but it moved forwards over a truncation: with
    the last row (the `stop` event) deleted and meta set to match, the next start's `start`
    event took its seq, the head file was rewritten to it, and `verify` passed. With the
    head file spoiled (unreadable), the first commit rewrote it at the shortened end."""
    db = tmp_path / "a.db"
    w = open_writer(db)
    for i in range(5):
        w.submit(_row(i))
    assert w.close()
    head_file = chain.head_path(str(db))
    head = chain.read_head(head_file)
    conn = sqlite3.connect(db)
    keep = head["seq"] - (1 if spoil == "last-row-deleted" else 3)
    (kept_hash,) = [r[4] for r in chain.iter_chain(conn) if r[0] == keep]
    for t in schema.CHAINED_TABLES:
        conn.execute(f"DELETE FROM [{t}] WHERE seq > ?", (keep,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(keep),))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (kept_hash,))
    conn.commit()
    conn.close()
    if spoil == "head-file-unreadable":
        with open(head_file, "w") as f:
            f.write("garbage\n")
    assert not chain.verify(schema.connect(str(db)), head_file).ok
    with caplog.at_level(logging.ERROR, logger="mcp_gateway"):
        for _ in range(3):  # a few starts: their rows go past the head file's seq
            w = open_writer(db)
            w.submit(_row(9))
            assert w.close()
    assert caplog.records
    res = chain.verify(schema.connect(str(db)), head_file)
    assert not res.ok, res.warnings
