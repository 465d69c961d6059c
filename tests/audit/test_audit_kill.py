"""kill -9 while events are being written: the database opens cleanly, the chain verifies,
and only the last moments of events are missing: one batch with the writer thread, what
the proxy had not yet sent with the writer's process (which commits everything it got)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from audit_testlib import wait_for
from mcp_gateway.audit import chain

WRITER = textwrap.dedent(
    """
    import sys, time
    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.writer import AuditWriter

    cls = ProcessWriter if sys.argv[2] == "process" else AuditWriter
    w = cls(sys.argv[1], flush_interval=0.1)
    w.open()
    w.flush()
    child = w._proc.pid if sys.argv[2] == "process" else 0
    print("ready", child, flush=True)
    i = 0
    while True:  # until SIGKILL; ~5000 events/s
        for _ in range(50):
            i += 1
            w.submit({"time": time.time(), "flow_id": f"f{i}", "direction": "c2s",
                      "server": "127.0.0.1:8000", "kind": "request", "method": "tools/call",
                      "name": "echo", "rpc_id": i, "size": 100, "action": "pass",
                      "_findings": [{"rule": "r", "type": "t", "severity": "low",
                                     "action": "log", "location": "/params", "masked": "x…y"}]
                      if i % 10 == 0 else ()})
        time.sleep(0.01)
    """
)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"  # a zombie has exited
    except OSError:
        return True


@pytest.mark.parametrize(
    ("writer", "min_rows", "max_missing"),
    [
        ("thread", 1000, 1.0),  # the batch being collected (a busy stream's: up to 0.5 s)
        ("process", 3000, 0.3),  # what the proxy had not sent (every 50 ms)
    ],
)
def test_kill_9_loses_only_the_last_moments(tmp_path, writer, min_rows, max_missing):
    db = str(tmp_path / "audit.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, db, writer], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline().split()  # bounded by the pytest timeout
        assert line[:1] == [b"ready"], proc.stderr.read()
        child = int(line[1])
        time.sleep(1.5)
        t_kill = time.time()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        if child:  # the writer's process commits what it got, then exits
            assert wait_for(lambda: _gone(child), 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n, last = conn.execute("SELECT count(*), max(time) FROM messages").fetchone()
    assert n > min_rows, "the writer should have committed most of 1.5 s of events"
    assert t_kill - last <= max_missing, f"{t_kill - last:.3f} s of events missing"
    res = chain.verify(conn, chain.head_path(db))
    assert res.ok, [str(p) for p in res.problems]
    # the chain holds findings too; no stop event (it was killed)
    assert res.counts["findings"] > 0
    events = [r[0] for r in conn.execute("SELECT event FROM audit_events")]
    assert events == ["start"]
    conn.close()
