#!/usr/bin/env python3
"""Latency of the stdio shim: client stdio -> `mcp-gateway stdio` -> mitmdump -> bridge -> child.

Compares, on the same path, plain mitmdump with mitmdump running the gateway's addons
(`-s addons/gateway.py`), and shows the direct path (`--direct`, no proxy) for reference.
The child is a minimal stdio JSON-RPC echo server, so the numbers measure the path, not a
server. Each sample is one `tools/call` round trip (request + response = 2 messages);
configurations are run in alternating rounds to spread machine noise.

    scripts/env python scripts/bench_shim.py [--calls 300] [--rounds 3] [--size 200]

Target (issue 6): the gateway's addons add at most 1 ms per message over plain mitmdump.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent

ECHO_SERVER = r"""
import sys, json
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    m = json.loads(line)
    if "id" not in m or "method" not in m:
        continue
    if m["method"] == "initialize":
        r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
             "serverInfo": {"name": "bench-echo", "version": "1"}}
    elif m["method"] == "tools/call":
        text = m["params"]["arguments"]["text"]
        r = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        r = {}
    out.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}).encode() + b"\n")
    out.flush()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self, tmp: Path, gateway: bool) -> None:
        self.port = free_port()
        cmd = [
            str(BIN / "mitmdump"),
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--set",
            f"confdir={tmp / 'conf'}",
            "-q",
        ]
        if gateway:
            cmd += [
                "-s",
                str(ROOT / "addons" / "gateway.py"),
                "--set",
                f"mcp_audit_db={tmp / f'audit-{self.port}.db'}",
            ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"mitmdump exited ({'gateway' if gateway else 'plain'})")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                time.sleep(0.5)
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit("mitmdump did not start")

    def cpu_seconds(self) -> float:
        """utime + stime of the mitmdump process (robust against a busy machine)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def run_once(gateway_url: str | None, calls: int, size: int, warmup: int) -> list[float]:
    args = ["stdio", "--name", "bench"]
    args += (
        ["--gateway", gateway_url]
        if gateway_url
        else ["--gateway", f"http://127.0.0.1:{free_port()}", "--direct"]
    )
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "mcp_gateway.shim.cli",
        *args,
        "--",
        PY,
        "-c",
        ECHO_SERVER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=2**26,
        cwd=ROOT,
    )
    assert proc.stdin and proc.stdout

    async def rpc(id_: int, method: str, params: dict) -> dict:
        proc.stdin.write(
            orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}) + b"\n"
        )
        await proc.stdin.drain()
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                raise SystemExit("the shim closed stdout")
            msg = orjson.loads(line)
            if msg.get("id") == id_:
                if "error" in msg:
                    raise SystemExit(f"error from the shim: {msg['error']}")
                return msg

    try:
        await rpc(
            0,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        text = "lorem ipsum dolor sit amet " * (size // 27 + 1)
        params = {"name": "echo", "arguments": {"text": text[:size]}}
        samples: list[float] = []
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            await rpc(i + 1, "tools/call", params)
            if i >= warmup:
                samples.append((time.perf_counter() - t0) * 1000)
        return samples
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--calls", type=int, default=300, help="measured calls per round and configuration"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--size", type=int, default=200, help="bytes of text echoed per call")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-shim-"))
    results: dict[str, list[float]] = {"direct": [], "plain mitmdump": [], "gateway": []}
    cpu = {"plain mitmdump": 0.0, "gateway": 0.0}
    proxies: dict[str, Proxy] = {}
    try:
        # (inside the try: a gateway that fails to start must not leave plain mitmdump behind)
        proxies["plain mitmdump"] = plain = Proxy(tmp, gateway=False)
        proxies["gateway"] = gw = Proxy(tmp, gateway=True)
        for r in range(a.rounds):
            order = [
                ("direct", None),
                ("plain mitmdump", f"http://127.0.0.1:{plain.port}"),
                ("gateway", f"http://127.0.0.1:{gw.port}"),
            ]
            if r % 2:
                order.reverse()
            for name, url in order:
                before = proxies[name].cpu_seconds() if name in proxies else 0.0
                results[name] += asyncio.run(run_once(url, a.calls, a.size, a.warmup))
                if name in proxies:
                    cpu[name] += proxies[name].cpu_seconds() - before
    finally:
        for proxy in proxies.values():
            proxy.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the proxies' confdirs, logs and audit files
    print(
        f"stdio client -> shim -> [proxy] -> bridge -> echo child; {a.rounds}x{a.calls} calls, "
        f"{a.size}-byte payload; ms per round trip (request + response)"
    )
    print(f"{'path':<16}{'median':>9}{'mean':>9}{'p90':>9}{'p99':>9}")
    for name, xs in results.items():
        print(
            f"{name:<16}{statistics.median(xs):9.3f}{statistics.fmean(xs):9.3f}"
            f"{pct(xs, 90):9.3f}{pct(xs, 99):9.3f}"
        )
    d_med = statistics.median(results["gateway"]) - statistics.median(results["plain mitmdump"])
    d_mean = statistics.fmean(results["gateway"]) - statistics.fmean(results["plain mitmdump"])
    print(
        f"gateway addons over plain mitmdump: median {d_med:+.3f} ms per round trip "
        f"= {d_med / 2:+.3f} ms per message (mean {d_mean / 2:+.3f} ms per message); "
        f"target <= 1 ms per message: {'met' if d_med / 2 <= 1.0 else 'NOT met'}"
    )
    n = a.rounds * (a.calls + a.warmup + 1) * 2  # messages through each proxy
    c_plain = cpu["plain mitmdump"] / n * 1000
    c_gw = cpu["gateway"] / n * 1000
    print(
        f"proxy CPU per message: plain mitmdump {c_plain:.3f} ms, gateway {c_gw:.3f} ms, "
        f"difference {c_gw - c_plain:+.3f} ms (clock-tick resolution; robust on a busy machine)"
    )
    shim_cost = statistics.median(results["direct"])
    print(f"the shim itself (direct path, no proxy): median {shim_cost:.3f} ms per round trip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
