"""Helpers for the audit tests: realistic messages pushed through the real stage.

(Imported by name: tests/audit/conftest.py puts this directory on sys.path.)
"""

from __future__ import annotations

import sqlite3
import time
from types import SimpleNamespace

from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.stage import AuditStage
from mcp_gateway.audit.writer import AuditWriter
from mcp_gateway.message import Direction, Exchange, Finding, Kind, Message


def identity(consumer: str | None, key_id: str = "k1", kind: str = "api_key"):
    if consumer is None:
        return None
    return SimpleNamespace(consumer=consumer, key_id=key_id, kind=kind)


def exchange(
    flow_id: str = "flow-1",
    server: str = "127.0.0.1:8000",
    consumer: str | None = "alice",
    session: str | None = "sess-1",
    **kw,
) -> Exchange:
    return Exchange(
        flow_id=flow_id,
        server=server,
        session_id=session,
        identity=identity(consumer),
        client_addr="127.0.0.1:50000",
        protocol_version="2025-06-18",
        **kw,
    )


def request(
    ex: Exchange,
    rid: int,
    method: str = "tools/call",
    name: str | None = "echo",
    t: float | None = None,
    args: dict | None = None,
) -> Message:
    params: dict = {}
    if method == "tools/call":
        params = {"name": name, "arguments": args or {"text": "hello"}}
    payload = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    m = Message(
        payload,
        Direction.CLIENT_TO_SERVER,
        Kind.REQUEST,
        ex,
        size=80,
        id=rid,
        method=method,
        name=name,
    )
    if t is not None:
        m.time = t
    return m


def response(
    ex: Exchange,
    rid: int,
    method: str = "tools/call",
    name: str | None = "echo",
    latency: float = 5.0,
    error: bool = False,
    is_error: bool = False,
    t: float | None = None,
) -> Message:
    if error:
        payload = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "nope"}}
        kind = Kind.ERROR
    else:
        payload = {
            "jsonrpc": "2.0",
            "id": rid,
            "result": {"content": [{"type": "text", "text": "ok"}], "isError": is_error},
        }
        kind = Kind.RESULT
    m = Message(
        payload,
        Direction.SERVER_TO_CLIENT,
        kind,
        ex,
        size=120,
        id=rid,
        method=method,
        name=name,
        latency_ms=latency,
    )
    if t is not None:
        m.time = t
    return m


def finding(
    location: str = "/params/arguments/text",
    start: int = 0,
    end: int = 5,
    rule: str = "aws-key",
    type_: str = "secret.aws_access_key",
) -> Finding:
    return Finding(
        rule=rule,
        type=type_,
        severity="high",
        action="redact",
        location=location,
        start=start,
        end=end,
        masked="AKIA…MPLE",
    )


def open_writer(path, **kw) -> AuditWriter:
    w = AuditWriter(str(path), **kw)
    w.open()
    return w


def populate(path) -> dict:
    """A small but varied audit: two consumers, two servers, findings, blocks, errors."""
    w = open_writer(path)
    st = AuditStage(w, on_full="block")
    base = 1_790_000_000.0  # 2026-09-21T...Z, fixed so that --since/--until are testable
    n = 0
    for i in range(10):
        ex = exchange(flow_id=f"flow-a{i}", consumer="alice")
        st.process(request(ex, i, t=base + i))
        st.process(response(ex, i, latency=10.0 + i, t=base + i + 0.01))
        n += 2
    for i in range(5):
        ex = exchange(
            flow_id=f"flow-b{i}", consumer="bob", server="10.0.0.2:9000", session="sess-2"
        )
        st.process(request(ex, i, name="search", t=base + 100 + i))
        st.process(
            response(
                ex,
                i,
                name="search",
                latency=100.0,
                error=(i == 0),
                is_error=(i == 1),
                t=base + 100 + i + 0.1,
            )
        )
        n += 2
    # a blocked request with a finding
    ex = exchange(flow_id="flow-blocked", consumer="bob", server="10.0.0.2:9000", session="sess-2")
    m = request(ex, 99, name="exfil", args={"text": "AKIAIOSFODNN7EXAMPLE"}, t=base + 200)
    m.findings.append(finding(start=0, end=20))
    m.block(-32061, "blocked by rule aws-key", stage="act")
    st.process(m)
    n += 1
    # a notification and a tools/list round trip without identity
    ex = exchange(flow_id="flow-anon", consumer=None, session=None)
    st.process(
        Message(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            Direction.CLIENT_TO_SERVER,
            Kind.NOTIFICATION,
            ex,
            method="notifications/initialized",
            time=base + 300,
        )
    )
    st.process(request(ex, 1, method="tools/list", name=None, t=base + 301))
    n += 2
    assert w.close()
    return {"messages": n, "base": base}


def rows(path, sql, *params):
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(pred, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def append_chained_row(db, last_from: str = "messages", t: float = 0.0) -> int:
    """Append one message row that chains correctly (as anyone who can write the file can)
    after the last row of ``last_from``, and move the database's own head to it; the
    row's seq is one past the returned one."""
    c = sqlite3.connect(str(db), isolation_level=None)
    seq, prev = c.execute(f"SELECT seq, hash FROM {last_from} ORDER BY seq DESC LIMIT 1").fetchone()
    vals = [t, "forged"] + [None] * (len(schema.MESSAGE_COLUMNS) - 2)
    h = chain.row_hash(prev, "messages", seq + 1, vals)
    cols = ", ".join(f"[{x}]" for x in schema.MESSAGE_COLUMNS)
    c.execute(
        f"INSERT INTO messages (seq, {cols}, prev_hash, hash) VALUES "
        f"({', '.join('?' * (len(vals) + 3))})",
        [seq + 1, *vals, prev, h],
    )
    c.execute("UPDATE meta SET value=? WHERE key='head_seq'", (str(seq + 1),))
    c.execute("UPDATE meta SET value=? WHERE key='head_hash'", (h,))
    c.close()
    return seq
