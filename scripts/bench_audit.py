#!/usr/bin/env python3
"""Benchmark the audit writer: sustained events/s and queue latency.

    scripts/env python scripts/bench_audit.py [--events 200000] [--rate 0] [--db PATH]

Real messages (tools/call requests and results, one in ten with a finding) go through the
real ``AuditStage.process`` -> bounded queue -> writer thread -> SQLite (WAL, hash chain,
sessions and usage summaries, head file).  The producer never lets the queue overflow: when
``submit`` reports a full queue it waits, so "sustained" is what the writer really commits.

Two phases per run:

1. saturation: the producer pushes as fast as the writer commits. Reports sustained events/s
   (first submit to last commit), CPU per event of the whole process (producer + writer;
   on a shared, loaded machine wall-clock events/s understates the writer, CPU does not),
   and the producer's wall time per message (what the proxy's event loop pays, GIL waits
   included).
2. paced at ``--rate`` events/s (default 2000, i.e. more than mitmdump proxies on this box):
   submit->commit latency percentiles (dominated by the 100 ms batch interval).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid

from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.stage import AuditStage
from mcp_gateway.audit.writer import DEFAULT_QUEUE_SIZE, AuditWriter
from mcp_gateway.message import Direction, Exchange, Finding, Kind, Message


class TimedWriter(AuditWriter):
    """Records submit->commit latency of every row."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.latencies: list[float] = []
        self.commit_cpu = 0.0  # CPU seconds the writer thread spent committing

    def submit(self, row, *, refused_if_full=False):
        row["_t0"] = time.perf_counter()
        return super().submit(row, refused_if_full=refused_if_full)

    def _commit(self, conn, rows):
        c0 = time.thread_time()
        super()._commit(conn, rows)
        self.commit_cpu += time.thread_time() - c0
        now = time.perf_counter()
        self.latencies.extend(now - r["_t0"] for r in rows)


def make_messages(n: int) -> list[Message]:
    out = []
    ex = None
    for i in range(n):
        if i % 2 == 0:  # one HTTP exchange (mitmproxy flow, random UUID) per request/response
            ex = Exchange(
                flow_id=str(uuid.uuid4()),
                server=f"127.0.0.1:{8000 + i % 3}",
                session_id=f"s{i % 50}",
                client_addr="127.0.0.1:5000",
                protocol_version="2025-06-18",
            )
        rid = i // 2
        if i % 2 == 0:
            m = Message(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "hello world"}},
                },
                Direction.CLIENT_TO_SERVER,
                Kind.REQUEST,
                ex,
                size=120,
                id=rid,
                method="tools/call",
                name=f"tool{i % 7}",
            )
            if i % 10 == 0:
                m.findings.append(
                    Finding(
                        "aws-key",
                        "secret.aws_access_key",
                        "high",
                        "redact",
                        "/params/arguments/text",
                        0,
                        5,
                        "AKIA…MPLE",
                    )
                )
        else:
            m = Message(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "result": {"content": [{"type": "text", "text": "hello world"}]},
                },
                Direction.SERVER_TO_CLIENT,
                Kind.RESULT,
                ex,
                size=150,
                id=rid,
                method="tools/call",
                name=f"tool{(i - 1) % 7}",
                latency_ms=1.0 + i % 50,
            )
        out.append(m)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(args, rate: float, events: int) -> dict:
    d = None if args.db else tempfile.mkdtemp(prefix="bench-audit-")
    path = args.db or os.path.join(d, "audit.db")
    msgs = make_messages(events)
    w = TimedWriter(path, queue_size=args.queue_size, batch_rows=args.batch_rows)
    w.open()
    w.flush()
    st = AuditStage(w, on_full="drop")
    produce = 0.0
    waits = 0
    interval = 1.0 / rate if rate else 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    next_t = t0
    for m in msgs:
        if interval:
            next_t += interval
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while w.queue.qsize() >= w.queue.maxsize:  # backpressure: one producer
            waits += 1
            time.sleep(0.005)  # let the writer run (fewer GIL hand-offs)
        a = time.perf_counter()
        st.process(m)
        produce += time.perf_counter() - a
    assert w.flush(timeout=300)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    w.close()
    conn = schema.connect(path)
    t = time.perf_counter()
    res = chain.verify(conn, chain.head_path(path))
    verify_s = time.perf_counter() - t
    conn.close()
    lat = w.latencies
    out = {
        "rate": rate or "max",
        "events": events,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(events / elapsed),
        "cpu_us_per_event": round(cpu / events * 1e6, 1),
        "events_per_cpu_s": round(events / cpu),
        "writer_cpu_us_per_event": round(w.commit_cpu / events * 1e6, 1),
        "producer_us_per_event": round(produce / events * 1e6, 2),
        "queue_full_waits": waits,
        "batches": w.batches,
        "latency_ms_p50": round(pct(lat, 0.5) * 1e3, 1),
        "latency_ms_p95": round(pct(lat, 0.95) * 1e3, 1),
        "latency_ms_p99": round(pct(lat, 0.99) * 1e3, 1),
        "latency_ms_max": round(max(lat) * 1e3, 1),
        "db_mb": round(os.path.getsize(path) / 1e6, 1),
        "verify_ok": res.ok,
        "verify_rows_per_s": round(res.rows / verify_s),
    }
    if d is not None:
        shutil.rmtree(d, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="events in the saturation phase")
    ap.add_argument("--rate", type=float, default=2000.0, help="events/s of the paced phase")
    ap.add_argument("--paced-events", type=int, default=20_000)
    ap.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE)
    ap.add_argument("--batch-rows", type=int, default=5000, help="writer batch size (default 5000)")
    ap.add_argument("--db", help="database path (default: a fresh temporary file)")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    sat = []
    for _ in range(args.runs):
        r = run(args, 0.0, args.events)
        sat.append(r)
        print("saturation: " + " ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    if args.rate and args.paced_events:
        r = run(args, args.rate, args.paced_events)
        print("paced:      " + " ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    eps = sorted(r["events_per_s"] for r in sat)
    cpu = sorted(r["events_per_cpu_s"] for r in sat)
    print(
        f"RESULT sustained events/s (median of {len(sat)}) = {eps[len(eps) // 2]}; "
        f"events per CPU-second = {cpu[len(cpu) // 2]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
