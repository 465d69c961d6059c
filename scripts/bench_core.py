"""Benchmark: direct vs plain mitmdump vs the gateway (mitmdump -s addons/gateway.py), one run.

    scripts/env python scripts/bench_core.py [--quick] [--json] [--duration S] [--gateway-script P]

Everything runs on 127.0.0.1: two FastMCP servers from tests/e2e/servers/everything.py (one
answering with application/json, one with text/event-stream), and regular-mode (forward proxy)
mitmdump processes. The client is a raw one (httpx, one keep-alive connection per client thread,
hand-written JSON-RPC POSTs after one initialize), so the SDK is not the bottleneck.

Workloads (each run for --duration seconds per route after a short warm-up, the routes
interleaved in 5 rounds so that other load on the machine hits them alike):
  seq_json_1k    sequential tools/call, 1 KiB result, application/json answers
  seq_sse_1k     sequential tools/call, 1 KiB result, text/event-stream answers
  conc8_json_1k  8 concurrent clients (own sessions), 1 KiB result, JSON answers
  conc8_sse_1k   8 concurrent clients, 1 KiB result, SSE answers
  seq_json_256k  sequential tools/call, 256 KiB result, JSON answers
  seq_sse_256k   sequential tools/call, 256 KiB result, SSE answers
  sse_2000       one POST answered by an SSE stream of 2000 notifications/progress events
                 (~1 KiB each) plus the result: time to first event and events/s (median of 11
                 interleaved runs)

Routes: direct (no proxy); plain (mitmdump, no script: it buffers SSE bodies, so for the SSE
workloads the plain baseline is mitmdump -s scripts/bench_plain_stream.py, which only sets
flow.response.stream = True for text/event-stream); gateway (mitmdump -s addons/gateway.py).
Also reported: each proxy's CPU time per request (from /proc/<pid>/stat) and peak memory
(VmHWM from /proc/<pid>/status), its child processes included (the gateway's audit writer
runs in one). Targets: gateway >= 0.9x plain throughput on every workload,
time to first event within 1 ms of plain.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SERVER = ROOT / "tests" / "e2e" / "servers" / "everything.py"
PLAIN_STREAM = ROOT / "scripts" / "bench_plain_stream.py"
ACCEPT = "application/json, text/event-stream"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"port {port} not listening after {timeout}s:\n{log.read_text(errors='replace')}")


@dataclass
class Proc:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        """The process and its children (the gateway's audit writer runs in one)."""
        out = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue
        return out

    def cpu_seconds(self) -> float:
        """utime + stime of the process and its children, so that work moved into a child
        (the audit writer) is still counted."""
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            except (OSError, IndexError, ValueError):
                if pid == self.proc.pid:
                    return float("nan")
        return total

    def peak_rss_mib(self) -> float:
        """VmHWM of the process plus its children's."""
        total = 0.0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                if pid == self.proc.pid:
                    return float("nan")
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(tmp: Path, transport: str) -> Proc:
    port = free_port()
    log = tmp / f"server-{transport}.log"
    with open(log, "wb") as f:
        p = subprocess.Popen(
            [sys.executable, str(SERVER), "--transport", transport, "--port", str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    wait_port(port, p, log)
    return Proc(f"server-{transport}", port, p, log)


def start_mitmdump(tmp: Path, name: str, scripts: list[Path], sets: list[str] = ()) -> Proc:
    port = free_port()
    confdir = tmp / f"confdir-{name}"
    confdir.mkdir()
    log = tmp / f"mitmdump-{name}.log"
    args = [str(VENV_BIN / "mitmdump"), "--listen-host", "127.0.0.1", "-p", str(port)]
    args += ["--set", f"confdir={confdir}", "--set", "flow_detail=0"]
    for s in scripts:
        args += ["-s", str(s)]
        own_db = any(kv.startswith("mcp_audit_db=") for kv in sets)
        if Path(s).name == "gateway.py" and not own_db:  # keep it out of ~/.mitmproxy
            args += ["--set", f"mcp_audit_db={confdir / 'audit.db'}"]
    for kv in sets:
        args += ["--set", kv]
    with open(log, "wb") as f:
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT)
    wait_port(port, p, log)
    time.sleep(0.5)
    text = log.read_text(errors="replace")
    if scripts and any(m in text for m in ("Traceback", "Error loading script", "Addon error")):
        p.terminate()
        sys.exit(f"mitmdump {name}: script failed to load:\n{text[-3000:]}")
    return Proc(name, port, p, log)


# ----------------------------------------------------------------------------- raw MCP client


def first_json(resp_body: bytes, content_type: str) -> dict:
    if content_type.startswith("text/event-stream"):
        for line in resp_body.splitlines():
            if line.startswith(b"data:") and line[5:].strip():
                return json.loads(line[5:])
        raise ValueError("no data in SSE answer")
    return json.loads(resp_body)


class RawClient:
    """One keep-alive connection, one MCP session, hand-written JSON-RPC."""

    def __init__(self, url: str, proxy: str | None):
        self.url = url
        self.http = httpx.Client(proxy=proxy, trust_env=False, timeout=30)
        self.headers = {"content-type": "application/json", "accept": ACCEPT}
        self.next_id = 1

    def initialize(self) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        }
        r = self.http.post(self.url, content=json.dumps(body), headers=self.headers)
        r.raise_for_status()
        first_json(r.content, r.headers.get("content-type", ""))["result"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        if sid := r.headers.get("mcp-session-id"):
            self.headers["mcp-session-id"] = sid
        note = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
        self.http.post(self.url, content=note, headers=self.headers).raise_for_status()

    def call(self, tool: str, args: dict) -> bytes:
        rid = self.next_id
        self.next_id += 1
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": rid,
                "method": "tools/call",
                "params": {"name": tool, "arguments": args},
            }
        )
        r = self.http.post(self.url, content=body, headers=self.headers)
        if r.status_code != 200 or b'"result"' not in r.content:
            raise RuntimeError(f"bad answer {r.status_code}: {r.content[:300]!r}")
        return r.content

    def close(self) -> None:
        self.http.close()


# ----------------------------------------------------------------------------- workloads


@dataclass
class Result:
    workload: str
    route: str
    value: float  # req/s or events/s
    unit: str
    p50_ms: float | None = None
    ttfe_ms: float | None = None
    requests: int = 0
    proxy_cpu_ms_per_req: float | None = None
    extra: dict = field(default_factory=dict)


class CallLoad:
    """`clients` threads, each with its own connection and session, calling big(n_bytes)."""

    def __init__(self, url: str, proxy: str | None, clients: int, n_bytes: int):
        self.n_bytes = n_bytes
        self.raws = [RawClient(url, proxy) for _ in range(clients)]
        for c in self.raws:
            c.initialize()
        self.count = 0
        self.elapsed = 0.0
        self.latencies: list[float] = []

    def run(self, duration: float, record: bool = True) -> None:
        clients = len(self.raws)
        lat: list[list[float]] = [[] for _ in self.raws]
        errors: list[BaseException] = []
        barrier = threading.Barrier(clients + 1)
        stop_at = [0.0]

        def worker(i: int) -> None:
            c = self.raws[i]
            barrier.wait()
            try:
                while (t := time.perf_counter()) < stop_at[0]:
                    c.call("big", {"n_bytes": self.n_bytes})
                    lat[i].append(time.perf_counter() - t)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        stop_at[0] = t0 + duration
        barrier.wait()
        for t in threads:
            t.join(duration + 60)
        elapsed = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"client error: {errors[0]!r}")
        if record:
            self.elapsed += elapsed
            for xs in lat:
                self.latencies += xs
                self.count += len(xs)

    def close(self) -> None:
        for c in self.raws:
            c.close()


def stream_once(http: httpx.Client, url: str, rid: int, events: int, size: int):
    """POST /bench/stream once; return (ttfe seconds, total seconds, events counted)."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": "stream", "arguments": {"events": events, "size": size}},
        }
    )
    headers = {"content-type": "application/json", "accept": ACCEPT}
    buf = bytearray()
    t_first = None
    t0 = time.perf_counter()
    with http.stream("POST", url, content=body, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"stream: HTTP {r.status_code}")
        for chunk in r.iter_raw():
            buf += chunk
            if t_first is None and (b"\n\n" in buf or b"\r\n\r\n" in buf):
                t_first = time.perf_counter()
    t_end = time.perf_counter()
    text = bytes(buf).replace(b"\r\n", b"\n")
    counted = text.count(b"\ndata: ") + text.startswith(b"data: ")
    if counted != events + 1:
        raise RuntimeError(f"stream: got {counted} events, expected {events + 1}")
    return t_first - t0, t_end - t0, counted


# ----------------------------------------------------------------------------- main


WORKLOADS = [
    # name, server, clients, n_bytes
    ("seq_json_1k", "json", 1, 1024),
    ("seq_sse_1k", "sse", 1, 1024),
    ("conc8_json_1k", "json", 8, 1024),
    ("conc8_sse_1k", "sse", 8, 1024),
    ("seq_json_256k", "json", 1, 256 * 1024),
    ("seq_sse_256k", "sse", 1, 256 * 1024),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="direct vs plain mitmdump vs gateway")
    ap.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--duration", type=float, help="seconds per workload and route")
    ap.add_argument(
        "--gateway-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --set option for the gateway mitmdump (repeatable)",
    )
    ap.add_argument(
        "--gateway-script",
        type=Path,
        default=ROOT / "addons" / "gateway.py",
        help="script for the gateway route (default addons/gateway.py)",
    )
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help="run only this workload (repeatable): seq_json_1k ... seq_sse_256k, sse_2000",
    )
    args = ap.parse_args(argv)
    known = [w[0] for w in WORKLOADS] + ["sse_2000"]
    for w in args.only:
        if w not in known:
            ap.error(f"unknown workload {w!r}; one of {', '.join(known)}")
    duration = args.duration or (0.3 if args.quick else 4.0)
    warmup = 0.1 if args.quick else 1.0
    events = 200 if args.quick else 2000
    runs = 3 if args.quick else 11
    rounds = 2 if args.quick else 5

    results: list[Result] = []
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="bench-core-") as td:
        tmp = Path(td)
        try:
            # start the five processes in parallel (start-up is most of a --quick run)
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                futures = [
                    pool.submit(start_server, tmp, "json"),
                    pool.submit(start_server, tmp, "streamable"),
                    pool.submit(start_mitmdump, tmp, "plain", []),
                    pool.submit(start_mitmdump, tmp, "plain-stream", [PLAIN_STREAM]),
                    pool.submit(
                        start_mitmdump, tmp, "gateway", [args.gateway_script], args.gateway_set
                    ),
                ]
            procs += [f.result() for f in futures if f.exception() is None]
            json_srv, sse_srv, plain, plain_stream, gateway = [f.result() for f in futures]
            servers = {"json": json_srv, "sse": sse_srv}

            def routes(sse: bool):
                yield "direct", None, None
                if sse:
                    yield "plain", plain_stream, plain_stream.port
                else:
                    yield "plain", plain, plain.port
                yield "gateway", gateway, gateway.port

            # Routes are interleaved in `rounds` slices per workload so that load from
            # elsewhere on the machine hits all of them alike.
            for name, srv, clients, n_bytes in WORKLOADS:
                if args.only and name not in args.only:
                    continue
                url = f"http://127.0.0.1:{servers[srv].port}/mcp"
                loads = []
                for route, proc, port in routes(srv == "sse"):
                    proxy = f"http://127.0.0.1:{port}" if port else None
                    load = CallLoad(url, proxy, clients, n_bytes)
                    load.run(warmup, record=False)
                    loads.append((route, proc, load, 0.0))
                for _ in range(rounds):
                    for i, (route, proc, load, cpu) in enumerate(loads):
                        before = proc.cpu_seconds() if proc else 0.0
                        load.run(duration / rounds)
                        after = proc.cpu_seconds() if proc else 0.0
                        loads[i] = (route, proc, load, cpu + after - before)
                for route, proc, load, cpu in loads:
                    load.close()
                    n = load.count
                    results.append(
                        Result(
                            name,
                            route,
                            n / load.elapsed,
                            "req/s",
                            p50_ms=statistics.median(load.latencies) * 1000,
                            requests=n,
                            proxy_cpu_ms_per_req=cpu * 1000 / n if proc and n else None,
                        )
                    )
                    if not args.json:
                        print(
                            f"  {name:<14} {route:<8} {n / load.elapsed:9.1f} req/s",
                            file=sys.stderr,
                        )

            url = f"http://127.0.0.1:{servers['json'].port}/bench/stream"
            wname = f"sse_{events}"
            stream_routes = []
            stream_wanted = not args.only or "sse_2000" in args.only
            for route, proc, port in routes(True) if stream_wanted else ():
                proxy = f"http://127.0.0.1:{port}" if port else None
                http = httpx.Client(proxy=proxy, trust_env=False, timeout=30)
                stream_once(http, url, 999, events, 1024)  # warm-up
                stream_routes.append((route, proc, http, [], [], [0.0, 0]))
            for run in range(runs):
                for _route, proc, http, ttfes, totals, cpu in stream_routes:
                    before = proc.cpu_seconds() if proc else 0.0
                    ttfe, total, counted = stream_once(http, url, 1000 + run, events, 1024)
                    cpu[0] += (proc.cpu_seconds() - before) if proc else 0.0
                    cpu[1] += counted
                    ttfes.append(ttfe * 1000)
                    totals.append(counted / total)
            for route, proc, http, ttfes, rates, cpu in stream_routes:
                http.close()
                rate = statistics.median(rates)
                results.append(
                    Result(
                        wname,
                        route,
                        rate,
                        "events/s",
                        ttfe_ms=statistics.median(ttfes),
                        requests=cpu[1],
                        extra={"proxy_cpu_us_per_event": cpu[0] * 1e6 / cpu[1] if proc else None},
                    )
                )
                if not args.json:
                    print(f"  {wname:<14} {route:<8} {rate:9.0f} ev/s", file=sys.stderr)

            memory = {
                "plain": plain.peak_rss_mib(),
                "plain-stream": plain_stream.peak_rss_mib(),
                "gateway": gateway.peak_rss_mib(),
            }
        finally:
            for p in reversed(procs):
                p.stop()

    report(results, memory, args, duration, events)
    return 0


def report(results: list[Result], memory: dict, args, duration: float, events: int) -> None:
    by = {(r.workload, r.route): r for r in results}
    names = list(dict.fromkeys(r.workload for r in results))
    ratios = {}
    for w in names:
        g, p = by[(w, "gateway")], by[(w, "plain")]
        ratios[w] = g.value / p.value if p.value else float("nan")
    sw = f"sse_{events}"
    ttfe_delta = (
        by[(sw, "gateway")].ttfe_ms - by[(sw, "plain")].ttfe_ms if (sw, "plain") in by else None
    )
    if args.json:
        print(
            json.dumps(
                {
                    "results": [r.__dict__ for r in results],
                    "ratios_gateway_over_plain": ratios,
                    "ttfe_gateway_minus_plain_ms": ttfe_delta,
                    "cpu_ratios_plain_over_gateway": cpu_ratios(by, names),
                    "peak_rss_mib": memory,
                    "duration_s": duration,
                    "quick": args.quick,
                },
                indent=2,
            )
        )
        return
    print()
    print(
        f"mcp-gateway core benchmark ({'quick' if args.quick else 'full'}: {duration:g} s per "
        f"workload and route; loopback, regular proxy mode; {os.cpu_count()} CPUs shared by "
        "client, server and proxy)"
    )
    print("plain = mitmdump without scripts; for SSE workloads plain = mitmdump -s ")
    print("        scripts/bench_plain_stream.py (only sets flow.response.stream for SSE,")
    print("        since plain mitmdump would buffer the stream)")
    print()
    hdr = f"{'workload':<15}{'unit':<9}{'direct':>10}{'plain':>10}{'gateway':>10}{'gw/plain':>10}"
    hdr += f"{'p50 plain':>11}{'p50 gw':>9}{'cpu/req plain':>15}{'cpu/req gw':>12}"
    print(hdr)
    print("-" * len(hdr))
    for w in names:
        d, p, g = by[(w, "direct")], by[(w, "plain")], by[(w, "gateway")]
        line = f"{w:<15}{d.unit:<9}{d.value:>10.1f}{p.value:>10.1f}{g.value:>10.1f}"
        line += f"{ratios[w]:>9.2f}x"
        if p.p50_ms is not None:
            line += f"{p.p50_ms:>9.2f}ms{g.p50_ms:>7.2f}ms"
            line += f"{p.proxy_cpu_ms_per_req:>13.2f}ms{g.proxy_cpu_ms_per_req:>10.2f}ms"
        else:
            pe, ge = p.extra["proxy_cpu_us_per_event"], g.extra["proxy_cpu_us_per_event"]
            line += f"{'':>20}{pe:>13.1f}us{ge:>10.1f}us"
        print(line)
    print()
    if ttfe_delta is not None:
        d, p, g = by[(sw, "direct")], by[(sw, "plain")], by[(sw, "gateway")]
        print(
            f"time to first event ({sw}, median of runs): direct {d.ttfe_ms:.2f} ms, "
            f"plain {p.ttfe_ms:.2f} ms, gateway {g.ttfe_ms:.2f} ms"
        )
    print("peak memory (VmHWM): " + ", ".join(f"{k} {v:.1f} MiB" for k, v in memory.items()))
    print()
    for w in names:
        ok = "OK" if round(ratios[w], 2) >= 0.9 else "BELOW TARGET"
        print(f"ratio gateway/plain {w}: {ratios[w]:.2f}x (target >= 0.90x) {ok}")
    if ttfe_delta is not None:
        ok = "OK" if round(ttfe_delta, 2) <= 1.0 else "ABOVE TARGET"
        print(f"ttfe gateway-plain {sw}: {ttfe_delta:+.2f} ms (target <= +1.00 ms) {ok}")
    print()
    print("proxy CPU per request (or event), plain/gateway: the throughput ratio if the proxy")
    print("were the only bottleneck; steadier than wall-clock ratios on a busy machine. The")
    print("gateway's CPU and memory include its audit writer's process.")
    for w, r in cpu_ratios(by, names).items():
        print(f"cpu ratio plain/gateway {w}: {r:.2f}x")


def cpu_ratios(by: dict, names: list[str]) -> dict[str, float]:
    out = {}
    for w in names:
        p, g = by[(w, "plain")], by[(w, "gateway")]
        if p.proxy_cpu_ms_per_req is not None:
            pc, gc = p.proxy_cpu_ms_per_req, g.proxy_cpu_ms_per_req
        else:
            pc, gc = p.extra["proxy_cpu_us_per_event"], g.extra["proxy_cpu_us_per_event"]
        out[w] = pc / gc if gc else float("nan")
    return out


if __name__ == "__main__":
    sys.exit(main())
