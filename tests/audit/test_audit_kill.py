"""kill -9 while events are being written: the database opens cleanly, the chain verifies,
and at most about one second (in practice one batch) of events is missing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from mcp_gateway.audit import chain

WRITER = textwrap.dedent(
    """
    import sys, time
    from mcp_gateway.audit.writer import AuditWriter

    w = AuditWriter(sys.argv[1], flush_interval=0.1)
    w.open()
    w.flush()
    print("ready", flush=True)
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


def test_kill_9_loses_at_most_a_second(tmp_path):
    db = str(tmp_path / "audit.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline()  # bounded by the pytest timeout; the child is fast
        assert line.strip() == b"ready", proc.stderr.read()
        time.sleep(1.5)
        t_kill = time.time()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n, last = conn.execute("SELECT count(*), max(time) FROM messages").fetchone()
    assert n > 1000, "the writer should have committed most of 1.5 s of events"
    assert t_kill - last <= 1.0, f"{t_kill - last:.3f} s of events missing"
    res = chain.verify(conn, chain.head_path(db))
    assert res.ok, [str(p) for p in res.problems]
    # the chain holds findings too; no stop event (it was killed)
    assert res.counts["findings"] > 0
    events = [r[0] for r in conn.execute("SELECT event FROM audit_events")]
    assert events == ["start"]
    conn.close()
