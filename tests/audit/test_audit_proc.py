"""ProcessWriter: the audit writer in a child process (mcp_audit_process, the default)."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
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


PROXY = textwrap.dedent(
    """
    import sys, time
    from mcp_gateway.audit.proc import ProcessWriter

    w = ProcessWriter(sys.argv[1])
    w.open()
    w.flush()
    print(w._proc.pid, flush=True)
    i = 0
    while True:  # until SIGKILL; ~5000 events/s
        for _ in range(50):
            i += 1
            w.submit({"time": time.time(), "flow_id": f"f{i}", "direction": "c2s",
                      "server": "127.0.0.1:8000", "kind": "request", "method": "tools/call",
                      "name": "echo", "rpc_id": i, "size": 100, "action": "pass"})
        time.sleep(0.01)
    """
)


def test_kill_9_of_the_proxy_loses_at_most_one_hand_off(tmp_path):
    # The child reads the end of the pipe, commits everything it was sent and exits without
    # a `stop` event (the stop was not clean).
    db = str(tmp_path / "audit.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", PROXY, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()
        child = int(line)
        time.sleep(1.5)
        t_kill = time.time()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert wait_for(lambda: not os.path.exists(f"/proc/{child}") or _zombie(child), 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n, last = conn.execute("SELECT count(*), max(time) FROM messages").fetchone()
    assert n > 3000
    assert t_kill - last <= 0.3, f"{t_kill - last:.3f} s of events missing"
    events = [e for (e,) in conn.execute("SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["start"]
    conn.close()
    _verify(db)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
