"""The core benchmark runs end to end (--quick) and prints its ratio lines.

No timing thresholds here: the numbers depend on the machine; scripts/bench_core.py itself
prints whether the targets were met.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench_core.py"
WORKLOADS = [
    "seq_json_1k",
    "seq_sse_1k",
    "conc8_json_1k",
    "conc8_sse_1k",
    "seq_json_256k",
    "seq_sse_256k",
    "sse_200",
]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=ROOT,
    )


def test_bench_quick_prints_ratios():
    p = run()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for w in WORKLOADS:
        assert re.search(rf"^ratio gateway/plain {w}: \d+\.\d\dx ", p.stdout, re.M), p.stdout
        assert re.search(rf"^cpu ratio plain/gateway {w}: \d+\.\d\dx", p.stdout, re.M)
    assert re.search(r"^ttfe gateway-plain sse_200: [+-]\d+\.\d\d ms", p.stdout, re.M)
    assert re.search(r"^peak memory \(VmHWM\): .*gateway \d+\.\d MiB", p.stdout, re.M)
    assert "bench_plain_stream.py" in p.stdout  # says how the SSE baseline was made


def script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=200,
        cwd=ROOT,
        env=env,
    )


def test_the_other_benchmarks_run_and_print_their_results(tmp_path):
    """Each benchmark in the README runs (tiny sizes) and prints the line it promises."""
    p = script("bench_scan.py", "--mb", "0.3", "--rounds", "1", "--dense")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert re.search(r"^dense one card +\d+ KiB +\d+\.\d ms +\(\d+ findings\)", p.stdout, re.M)
    assert re.search(r"^engine\.scan_text: +\d+\.\d MB/s", p.stdout, re.M), p.stdout
    assert re.search(r"^per 1 KiB message: +\d+\.\d µs", p.stdout, re.M), p.stdout
    tmp = {**os.environ, "TMPDIR": str(tmp_path)}
    p = script("bench_audit.py", "--events", "2000", "--paced-events", "200", env=tmp)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert re.search(r"^RESULT sustained events/s \(median of 1\) = \d+", p.stdout, re.M)
    assert "verify_ok=True" in p.stdout
    assert list(tmp_path.iterdir()) == []  # its temporary databases and directories are gone
    p = script("bench_shim.py", "--calls", "10", "--rounds", "1", "--warmup", "2")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert re.search(r"^gateway addons over plain mitmdump: median [+-]\d", p.stdout, re.M)
