"""The core benchmark runs end to end (--quick) and prints its ratio lines.

No timing thresholds here: the numbers depend on the machine; scripts/bench_core.py itself
prints whether the targets were met.
"""

from __future__ import annotations

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
