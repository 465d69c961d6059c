#!/usr/bin/env python3
"""Dump every finding of the default packs over the scanner's test corpora: an oracle for
speed work on the engine, which must not change a single finding.

    scripts/env python scripts/scan_oracle.py OUT [--quick] [--inputs CAPTURED.jsonl]

Run it once on the tree before a change and once after (``PYTHONPATH=<tree>/addons``, the
tree's own copy of this script), then ``cmp`` the two dumps. It covers the labelled corpus
(tests/scan/corpus_gen.py, four seeds), the forty-first corpus (three seeds), the benchmark's
~20 MB of messages (two seeds: ``Engine.scan_text``, and the scan and act stages with the
redacted message's hash), its 1 KiB messages and its dense 256 KiB shapes; each text also as a
tool result through ``Engine.scan_json``. A line holds the rule, type, span, action,
encoding, priority, rank and hashes of the value and of the decoded values (never a value).

``--inputs`` adds what the test suite fed the engine, recorded by this file as a pytest
plugin (every top-level ``Engine.scan`` and ``Engine.scan_json`` call of an engine with the
default packs, once each, up to 1 MiB):

    CAPTURE_OUT=captured.jsonl PYTHONPATH=addons:scripts scripts/env pytest -q tests/scan \\
        -m "not e2e" -p scan_oracle
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import sys
import threading
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
_MAX_CAPTURED = 1 << 20


def _line(tag: str, d) -> str:
    value = hashlib.sha1(d.value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    decoded = hashlib.sha1(repr(d.decoded).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return (
        f"{tag} {d.rule} {d.type} {d.start} {d.end} {d.action} {d.encoding} {d.priority} "
        f"{d.rank} {value} {decoded}\n"
    )


def _tool_result(text: str) -> bytes:
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}}
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true", help="fewer seeds, 5 MB of messages")
    ap.add_argument("--inputs", help="inputs recorded from the test suite (JSON lines)")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "scan")]
    import bench_scan as bench
    import corpus_gen as cg
    import corpus_support_mobile as csm
    from mcp_gateway.act import ActStage
    from mcp_gateway.message import Exchange, Message
    from mcp_gateway.scan.engine import Engine
    from mcp_gateway.scan.stage import ScanStage

    engine = Engine.load(None)
    out = open(args.out, "w", encoding="utf-8")  # noqa: SIM115 - written to the end

    def dump(tag: str, dets) -> None:
        if dets is None:
            out.write(f"{tag} None\n")
            return
        for d in dets:
            out.write(_line(tag, d))
        out.write(f"{tag} n={len(dets)}\n")

    seeds = [cg.SEED, "s1"] if args.quick else [cg.SEED, "s1", "s2", "s3"]
    texts = [(f"cg/{seed}/{s['id']}", s["text"]) for seed in seeds for s in cg.generate(seed)]
    for seed in [csm.SEED] if args.quick else [csm.SEED, 7, 8]:
        texts += [(f"csm/{seed}/{i}", s["text"]) for i, s in enumerate(csm.generate(seed))]
    for tag, text in texts:
        dump(tag, engine.scan_text(text))
        raw = _tool_result(text)
        dump(f"{tag}/json", engine.scan_json(raw, None, lambda raw=raw: raw))

    ex = Exchange(flow_id="oracle", server="oracle:1")
    for seed in [1] if args.quick else [1, 2]:
        corpus = bench.make_corpus(5 if args.quick else 20, seed)
        for i, (raw, _d, _k) in enumerate(corpus):
            dump(f"bench/{seed}/{i}", engine.scan_text(raw.decode()))
        stage, act = ScanStage(engine), ActStage(b"oracle")
        small = bench.one_kib(random.Random(seed + 1), 2000)
        for part, items in (("stage", corpus), ("small", small)):
            for i, (raw, d, k) in enumerate(items):
                m = Message(orjson.loads(raw), d, k, ex, method="tools/call", name="x", raw=raw)
                stage.process(m)
                act.process(m)
                for f in m.findings:
                    out.write(
                        f"{part}/{seed}/{i} {f.rule} {f.type} {f.action} {f.location} "
                        f"{f.start} {f.end} {f.masked}\n"
                    )
                digest = hashlib.sha1(orjson.dumps(m.payload)).hexdigest()[:12]
                out.write(f"{part}/{seed}/{i} {m.action} {m.modified} {digest}\n")
    for seed in (1, 2):
        for name, text in bench.dense_shapes(random.Random(seed)).items():
            raw = _tool_result(text)
            dump(f"dense/{seed}/{name}", engine.scan_json(raw, None, lambda raw=raw: raw))
            dump(f"dense/{seed}/{name}/text", engine.scan_text(text))

    if args.inputs:
        with open(args.inputs, "rb") as fh:
            for i, line in enumerate(fh):
                r = orjson.loads(line)
                data = base64.b64decode(r["d"])
                allowed = None if r["a"] is None else frozenset(r["a"])
                if r["k"] == "scan":
                    text = data.decode("utf-8", "surrogatepass") if r["e"] == "s" else data
                    dump(f"cap/{i}", engine.scan(text, allowed))
                else:

                    def canonical(data: bytes = data) -> bytes | None:
                        try:
                            return orjson.dumps(orjson.loads(data))
                        except orjson.JSONDecodeError:
                            return None

                    dump(f"cap/{i}/json", engine.scan_json(data, allowed, canonical))
    out.close()
    return 0


# -- as a pytest plugin (-p scan_oracle): record the inputs the test suite scans ------------
_seen: set[str] = set()
_depth = threading.local()
_fh = None


def _record(kind: str, engine, payload, allowed) -> None:
    if getattr(_depth, "n", 0) or len(payload) > _MAX_CAPTURED:
        return  # (an inner call of a scan, or too big to keep)
    if [Path(s).name for s in engine.sources] != ["pii.yaml", "secrets.yaml"]:
        return  # a test's own rules
    text = isinstance(payload, str)
    data = payload.encode("utf-8", "surrogatepass") if text else bytes(payload)
    al = None if allowed is None else sorted(allowed)
    key = hashlib.sha1(kind.encode() + bytes([text]) + data + repr(al).encode()).hexdigest()
    if key in _seen:
        return
    _seen.add(key)
    row = {"k": kind, "e": "s" if text else "b", "d": base64.b64encode(data).decode(), "a": al}
    _fh.write(orjson.dumps(row) + b"\n")


def pytest_configure(config) -> None:  # pragma: no cover - a tool, not a test
    global _fh
    if not os.environ.get("CAPTURE_OUT"):
        return
    _fh = open(os.environ["CAPTURE_OUT"], "ab")  # noqa: SIM115 - closed at unconfigure
    from mcp_gateway.scan.engine import Engine

    scan, scan_json = Engine.scan, Engine.scan_json

    def nested(fn, *a):
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            return fn(*a)
        finally:
            _depth.n -= 1

    def scan_rec(self, text, allowed=None, data=None, _hits=None):
        if text is not None and _hits is None:
            _record("scan", self, text, allowed)
        return nested(scan, self, text, allowed, data, _hits)

    def scan_json_rec(self, raw, allowed, canonical, walk_instead=None):
        _record("json", self, raw, allowed)
        return nested(scan_json, self, raw, allowed, canonical, walk_instead)

    Engine.scan, Engine.scan_json = scan_rec, scan_json_rec


def pytest_unconfigure(config) -> None:  # pragma: no cover
    if _fh is not None:
        _fh.close()


if __name__ == "__main__":
    sys.exit(main())
