"""ProcessWriter: the audit writer in a child process (mcp_audit_process, the default)."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest
from audit_testlib import exchange, finding, request, rows, wait_for
from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.proc import ProcessWriter, WriterProcessError
from mcp_gateway.audit.stage import AuditStage
from mcp_gateway.audit.writer import AuditError
from mcp_gateway.message import Action


def _verify(db) -> None:
    res = chain.verify(schema.connect(str(db)), chain.head_path(str(db)))
    assert res.ok, res.problems


def _open(db, **kw) -> ProcessWriter:
    w = ProcessWriter(str(db), **kw)
    w.open()
    return w


def test_rows_are_written_by_a_child_process_and_close_writes_everything(tmp_path):
    db = tmp_path / "a.db"
    w = _open(db)
    st = AuditStage(w, on_full="block")
    for i in range(300):
        m = request(exchange(flow_id=f"f{i}"), i)
        if i % 10 == 0:
            m.findings.append(finding(start=0, end=4))
        st.process(m)
    assert w.flush() and w.committed == 300
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 300
    assert rows(db, "SELECT count(*) FROM findings")[0][0] == 30
    for i in range(300, 400):  # after the flush, without one: close() still writes them
        st.process(request(exchange(flow_id=f"f{i}"), i))
    assert w.close()
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 400
    events = rows(db, "SELECT event, detail FROM audit_events ORDER BY seq")
    assert [e for e, _ in events] == ["start", "stop"]
    import orjson

    detail = orjson.loads(events[0][1])
    assert detail["pid"] == os.getpid() and detail["writer_pid"] != os.getpid()
    # the sequence mark a replacement child would need is gone after a clean stop
    assert rows(db, "SELECT count(*) FROM meta WHERE key LIKE 'process_writer_seq:%'") == [(0,)]
    _verify(db)


def test_rows_orjson_refuses_are_cleaned_not_lost(tmp_path):
    db = tmp_path / "a.db"
    w = _open(db)
    row = {"time": time.time(), "flow_id": "f", "direction": "c2s", "kind": "request"}
    assert w.submit({**row, "name": "lone \ud800 surrogate", "size": 2**70})
    assert w.close()
    assert rows(db, "SELECT name, size FROM messages") == [("lone ? surrogate", None)]


def test_full_queue_losses_are_counted_in_the_chain(tmp_path, caplog):
    # SQLite locked: the child's queue fills, it stops reading, the pipe fills, then the
    # proxy's deque: the rows beyond it are dropped, counted, and recorded once it unlocks.
    db = tmp_path / "a.db"
    w = _open(db, queue_size=5)
    assert w.flush()
    st = AuditStage(w, on_full="drop")
    locker = sqlite3.connect(str(db), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    msgs = []
    for i in range(2000):
        m = request(exchange(flow_id=f"f{i}"), i, args={"text": "x" * 300})
        st.process(m)
        msgs.append(m)
        if i % 50 == 0:
            time.sleep(0.01)
    assert all(m.action is Action.PASS for m in msgs)
    assert w.total_dropped > 0
    # the child's log records reach the proxy's logger
    assert wait_for(lambda: any("cannot write to" in r.getMessage() for r in caplog.records), 10)
    locker.execute("ROLLBACK")
    locker.close()
    assert w.close(timeout=30)
    recorded = rows(db, "SELECT count(*) FROM messages")[0][0]
    dropped = rows(db, "SELECT coalesce(sum(count),0) FROM audit_events WHERE event='dropped'")
    assert dropped[0][0] == w.total_dropped
    assert recorded + w.total_dropped == 2000  # nothing lost silently
    _verify(db)


def test_a_database_problem_is_an_audit_error_naming_it(tmp_path):
    db = tmp_path / "other.db"
    c = sqlite3.connect(str(db))
    c.execute("CREATE TABLE customers (id INTEGER)")
    c.commit()
    c.close()
    with pytest.raises(AuditError) as e:
        _open(db)
    assert not isinstance(e.value, WriterProcessError)
    assert "not an mcp-gateway audit database" in str(e.value)


def test_a_child_that_cannot_start_is_a_writer_process_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(WriterProcessError):
        _open(tmp_path / "a.db")


def test_a_dead_child_is_replaced_and_the_loss_is_logged(tmp_path, caplog):
    db = tmp_path / "a.db"
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    w = _open(db)
    st = AuditStage(w, on_full="block")
    for i in range(10):
        st.process(request(exchange(flow_id=f"a{i}"), i))
    assert w.flush()
    first = w._proc  # noqa: SLF001
    first.kill()
    first.wait(timeout=10)
    assert wait_for(lambda: w.restarts == 1, 15)
    assert any("writer process" in r.getMessage() for r in caplog.records)
    for i in range(10):
        st.process(request(exchange(flow_id=f"b{i}"), i))
    assert w.flush()
    assert w.close()
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 20
    assert [e for (e,) in rows(db, "SELECT event FROM audit_events ORDER BY seq")] == [
        "start",
        "start",
        "stop",
    ]
    _verify(db)


def _row(i: int) -> dict:
    return {
        "time": time.time(), "flow_id": f"f{i}", "direction": "c2s", "server": "s:1",
        "kind": "request", "method": "tools/call", "name": "echo", "rpc_id": i, "size": 10,
        "action": "pass",
    }  # fmt: skip


def test_rows_a_dying_child_had_not_committed_are_sent_to_the_next_one(tmp_path, caplog):
    # The child batches for 2 s: the 100 rows are in it, uncommitted, when it is killed.
    db = tmp_path / "a.db"
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    w = _open(db, flush_interval=2.0)
    for i in range(100):
        w.submit(_row(i))
    assert wait_for(lambda: not w._frames and len(w._inflight) == 100, 10)  # noqa: SLF001
    w._proc.kill()  # noqa: SLF001
    for i in range(100, 110):
        w.submit(_row(i))
    assert w.flush(timeout=20)
    assert w.close()
    assert rows(db, "SELECT count(*), count(DISTINCT flow_id) FROM messages") == [(110, 110)]
    # (the 10 rows after the kill may have gone into the dead child's pipe too)
    msgs = [r.getMessage() for r in caplog.records if "sending it again the" in r.getMessage()]
    assert len(msgs) == 1 and re.search(r"again the 1[01]0 events", msgs[0]), msgs
    _verify(db)


def test_rows_committed_before_the_child_died_are_not_written_twice(tmp_path):
    db = tmp_path / "a.db"
    w = _open(db)
    for i in range(50):
        w.submit(_row(i))
    assert w.flush()
    # the commit is reported, but pretend the report was lost: the same numbers stay "in
    # flight", as the lines a new child would be sent (marked, to see them if they were)
    import orjson

    dup = [
        (n + 1, b"R", b"R%d %b\n" % (n + 1, orjson.dumps({**_row(n), "flow_id": "dup"})), 0)
        for n in range(50)
    ]
    with w._lock:  # noqa: SLF001
        w._inflight.extend(dup)  # noqa: SLF001
    w._proc.kill()  # noqa: SLF001
    assert wait_for(lambda: w.restarts == 1, 15)
    assert w.flush(timeout=20) and w.close()
    assert rows(db, "SELECT count(*) FROM messages WHERE flow_id='dup'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM messages") == [(50,)]


def test_a_child_that_dies_during_close_is_replaced_and_close_still_writes_everything(tmp_path):
    import threading

    db = tmp_path / "a.db"
    w = _open(db)
    assert w.flush()
    locker = sqlite3.connect(str(db), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the final commit waits on the lock
    for i in range(100):
        w.submit(_row(i))
    res: dict = {}
    t = threading.Thread(target=lambda: res.update(clean=w.close(timeout=20)))
    t.start()
    time.sleep(1.0)
    w._proc.kill()  # noqa: SLF001
    locker.execute("ROLLBACK")
    locker.close()
    t.join(30)
    assert res == {"clean": True}
    assert rows(db, "SELECT count(*) FROM messages") == [(100,)]
    _verify(db)


def test_when_no_child_can_be_started_a_thread_takes_over_with_every_row(tmp_path, monkeypatch):
    db = tmp_path / "a.db"
    w = _open(db)
    assert w.flush()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    w._proc.kill()  # noqa: SLF001
    for i in range(500):
        w.submit(_row(i))
    assert wait_for(lambda: w._fallback is not None, 20)  # noqa: SLF001
    for i in range(500, 510):
        w.submit(_row(i))
    assert w.flush() and w.close()
    assert rows(db, "SELECT count(*) FROM messages") == [(510,)]
    _verify(db)


def test_a_line_cut_short_by_the_proxys_death_does_not_cost_the_rest(tmp_path):
    import orjson

    db = str(tmp_path / "a.db")
    cfg = {"path": db, "queue_size": 50_000, "flush_interval": 0.1, "key": "k", "start_detail": {}}
    p = subprocess.Popen(
        [sys.executable, "-m", "mcp_gateway.audit.proc", orjson.dumps(cfg).decode()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert b"ready" in p.stdout.readline()
        lines = b"".join(b"R%d %b\n" % (i + 1, orjson.dumps(_row(i))) for i in range(2000))
        p.stdin.write(lines + b"L2001 [3,0")  # the proxy killed in the middle of a line
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    assert rows(db, "SELECT count(*) FROM messages") == [(2000,)]
    assert [e for (e,) in rows(db, "SELECT event FROM audit_events ORDER BY seq")] == ["start"]
    assert rows(db, "SELECT value FROM meta WHERE key='k'") == [("2000",)]


def test_a_child_killed_before_it_read_the_stop_is_replaced_once(tmp_path):
    # The pipe is full (the database locked), so the stop is still queued in the proxy
    # when the child dies: only what it was sent fails, and one new child finishes.
    import threading

    db = tmp_path / "a.db"
    w = _open(db, queue_size=2000)
    assert w.flush()
    locker = sqlite3.connect(str(db), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    for i in range(300):
        w.submit({**_row(i), "name": "x" * 2000})  # ~600 KB: more than the pipe holds
    time.sleep(0.5)
    res: dict = {}
    t = threading.Thread(target=lambda: res.update(clean=w.close(timeout=20)))
    t.start()
    time.sleep(0.3)
    w._proc.kill()  # noqa: SLF001
    time.sleep(0.3)
    locker.execute("ROLLBACK")
    locker.close()
    t.join(40)
    assert res == {"clean": True} and w.restarts == 1
    assert rows(db, "SELECT count(*), count(DISTINCT flow_id) FROM messages") == [(300, 300)]
    assert [e for (e,) in rows(db, "SELECT event FROM audit_events ORDER BY seq")] == [
        "start",
        "start",
        "stop",
    ]


def test_a_locked_database_at_restart_is_waited_for_not_given_up(tmp_path):
    db = tmp_path / "a.db"
    w = _open(db, queue_size=200)
    assert w.flush()
    locker = sqlite3.connect(str(db), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    w._proc.kill()  # noqa: SLF001
    time.sleep(8)  # a few failed starts: the database, not the child, is the problem
    assert w._fallback is None and w.running  # noqa: SLF001
    locker.execute("ROLLBACK")
    locker.close()
    for i in range(100):
        assert w.submit(_row(i))
    assert w.flush(timeout=20) and w.close()
    assert rows(db, "SELECT count(*) FROM messages") == [(100,)]


def test_rm_of_the_main_file_only_starts_a_new_database_that_is_written(tmp_path):
    # `rm audit.db` leaves -wal and -shm: read as the new file's, every write failed.
    db = tmp_path / "a.db"
    w = _open(db, flush_interval=0.05)
    st = AuditStage(w, on_full="block")
    other = sqlite3.connect(str(db))  # the proxy's own (api keys live in the same file)
    other.execute("SELECT count(*) FROM messages").fetchall()
    for i in range(5):
        st.process(request(exchange(flow_id=f"f{i}"), i))
    assert w.flush(timeout=10)
    assert (tmp_path / "a.db-wal").exists()
    db.unlink()
    for i in range(5, 15):
        st.process(request(exchange(flow_id=f"f{i}"), i))
    assert w.flush(timeout=10)
    assert w.close()
    other.close()
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 10
    events = [e for (e,) in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["reopened", "stop"]
    _verify(db)


def test_events_the_child_could_not_write_before_shutdown_are_noted(tmp_path):
    """The proxy's count (what it sent and what it still held) goes to the head file, and
    the next start records it in the trail."""
    db = tmp_path / "a.db"
    w = _open(db)
    assert w.flush()
    locker = sqlite3.connect(str(db), isolation_level=None, timeout=10)
    locker.execute("BEGIN IMMEDIATE")
    try:
        for i in range(20):
            assert w.submit(_row(i))
        assert w.close(timeout=4.0) is False
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    head = chain.read_head(chain.head_path(str(db)))
    assert head["unwritten"][0] == 20, head
    w = _open(db)
    assert w.close()
    assert rows(db, "SELECT count FROM audit_events WHERE event='lost'") == [(20,)]
    assert rows(db, "SELECT count(*) FROM messages") == [(0,)]
