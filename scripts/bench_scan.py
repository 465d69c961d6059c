#!/usr/bin/env python3
"""Benchmark the scanner on ~20 MB of realistic MCP messages generated in memory.

    scripts/env python scripts/bench_scan.py [--mb 20] [--rules PATH ...] [--seed 1] [--dense]

Prints (CPU time of the scanning process, best of --rounds rounds, median alongside):
  * engine throughput: Engine.scan_text over each message's JSON text (MB/s)
  * stage throughput: ScanStage.process + ActStage.process over each decoded message, with
    the bytes it arrived as (what the gateway runs; JSON parsing is the core's and is not
    counted) (MB/s)
  * cost per 1 KiB message: ScanStage.process on 1 KiB tools/call requests and results (µs)
Messages are a mix of tool calls, tool results (source code, logs, JSON API responses,
markdown, CSV), tools/list schemas and resource reads; about 3% carry a secret or personal data.

--dense adds the worst shapes seen so far: 256 KiB tool results made of one dense shape (random
words, a repeated card number, `key: <base64>` lines, distinct IPv4 addresses, IBANs, phone
numbers, e-mail addresses), with the CPU time of one engine scan of each (ms).
"""

from __future__ import annotations

import argparse
import base64
import gc
import random
import statistics
import string
import sys
import time

import orjson
from mcp_gateway.act import ActStage
from mcp_gateway.message import Direction, Exchange, Kind, Message
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.stage import ScanStage

WORDS = (
    "the of and to in is for on that with as this by be are from at or an it not which have "
    "request response server client tool result error value config file path user data cache "
    "build deploy test module function return import class async await string number list "
    "table index query search page token limit offset status update create delete version"
).split()


def words(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


def code(r: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        ind = "    " * r.randint(0, 3)
        kind = r.random()
        if kind < 0.3:
            out.append(
                f"{ind}def {r.choice(WORDS)}_{r.choice(WORDS)}(self, {r.choice(WORDS)}: str) -> int:"
            )
        elif kind < 0.6:
            out.append(
                f"{ind}{r.choice(WORDS)} = {r.choice(WORDS)}.{r.choice(WORDS)}({r.randint(0, 999)})"
            )
        elif kind < 0.8:
            out.append(f"{ind}# {words(r, 8)}")
        else:
            out.append(f'{ind}return f"{{{r.choice(WORDS)}}} {words(r, 4)}"')
    return "\n".join(out)


def logs(r: random.Random, lines: int) -> str:
    lv = ("INFO", "DEBUG", "WARN", "ERROR")
    return "\n".join(
        f"2025-0{r.randint(1, 9)}-1{r.randint(0, 9)}T12:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(100, 999)}Z "
        f"{r.choice(lv)} [{r.choice(WORDS)}-service] {words(r, 10)} id={r.getrandbits(64):x} "
        f"latency_ms={r.randint(1, 900)}"
        for _ in range(lines)
    )


def api_json(r: random.Random, items: int) -> str:
    return orjson.dumps(
        {
            "items": [
                {
                    "id": r.randint(1, 10**9),
                    "name": words(r, 3),
                    "sha": f"{r.getrandbits(160):040x}",
                    "created_at": "2025-03-04T05:06:07Z",
                    "tags": [r.choice(WORDS) for _ in range(3)],
                    "description": words(r, 20),
                    "url": f"https://api.github.com/repos/acme/{r.choice(WORDS)}/issues/{r.randint(1, 9999)}",
                }
                for _ in range(items)
            ],
            "total_count": items,
            "incomplete_results": False,
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def markdown(r: random.Random, paras: int) -> str:
    return "\n\n".join(
        f"## {words(r, 3).title()}\n\n{words(r, 60)}\n\n- {words(r, 6)}\n- {words(r, 6)}"
        for _ in range(paras)
    )


def csv(r: random.Random, rows: int) -> str:
    return "\n".join(
        ",".join(
            [str(r.randint(1, 99999)), r.choice(WORDS), f"{r.random() * 1000:.2f}", "2025-01-01"]
        )
        for _ in range(rows)
    )


def secret(r: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return r.choice(
        [
            "AKIA" + "".join(r.choice(string.ascii_uppercase + "234567") for _ in range(16)),
            "sk-proj-" + "".join(r.choice(alnum) for _ in range(48)),
            f"password: {''.join(r.choice(alnum) for _ in range(14))}",
            f"contact {r.choice(WORDS)}.{r.choice(WORDS)}@acme-corp.io",
            "postgres://app:"
            + "".join(r.choice(alnum) for _ in range(16))
            + "@db.internal:5432/prod",
        ]
    )


def tool_result(r: random.Random, text: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": r.randint(1, 10**6),
        "result": {"content": [{"type": "text", "text": text}], "isError": False},
    }


def tool_call(r: random.Random) -> dict:
    args = {
        "query": words(r, 8),
        "path": f"/srv/{r.choice(WORDS)}/{r.choice(WORDS)}.py",
        "limit": r.randint(1, 100),
    }
    return {
        "jsonrpc": "2.0",
        "id": r.randint(1, 10**6),
        "method": "tools/call",
        "params": {"name": r.choice(WORDS), "arguments": args},
    }


def tools_list(r: random.Random) -> dict:
    tools = []
    for _ in range(r.randint(5, 30)):
        tools.append(
            {
                "name": f"{r.choice(WORDS)}_{r.choice(WORDS)}",
                "description": words(r, 30),
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        w: {"type": "string", "description": words(r, 8)}
                        for w in r.sample(WORDS, 4)
                    },
                    "required": r.sample(WORDS, 2),
                },
            }
        )
    return {"jsonrpc": "2.0", "id": r.randint(1, 10**6), "result": {"tools": tools}}


def resource(r: random.Random) -> dict:
    if r.random() < 0.2:
        blob = base64.b64encode(r.randbytes(r.randint(2000, 40000))).decode()
        content = {"uri": "file:///img.png", "mimeType": "image/png", "blob": blob}
    else:
        content = {
            "uri": f"file:///src/{r.choice(WORDS)}.py",
            "mimeType": "text/x-python",
            "text": code(r, r.randint(20, 300)),
        }
    return {"jsonrpc": "2.0", "id": r.randint(1, 10**6), "result": {"contents": [content]}}


def message(r: random.Random) -> tuple[dict, Direction, Kind]:
    x = r.random()
    if x < 0.35:
        m, d, k = tool_call(r), Direction.CLIENT_TO_SERVER, Kind.REQUEST
    elif x < 0.45:
        m, d, k = tools_list(r), Direction.SERVER_TO_CLIENT, Kind.RESULT
    elif x < 0.55:
        m, d, k = resource(r), Direction.SERVER_TO_CLIENT, Kind.RESULT
    else:
        gen = r.choice([lambda: code(r, r.randint(10, 200)), lambda: logs(r, r.randint(5, 120)),
                        lambda: api_json(r, r.randint(1, 30)), lambda: markdown(r, r.randint(1, 12)),
                        lambda: csv(r, r.randint(10, 300))])  # fmt: skip
        m, d, k = tool_result(r, gen()), Direction.SERVER_TO_CLIENT, Kind.RESULT
    if r.random() < 0.03:
        target = m.get("params", {}).get("arguments") or m.get("result", {})
        target["note"] = f"{words(r, 5)} {secret(r)} {words(r, 5)}"
    return m, d, k


def make_corpus(mb: float, seed: int) -> list[tuple[bytes, Direction, Kind]]:
    r = random.Random(seed)
    out, total = [], 0
    while total < mb * 1_000_000:
        m, d, k = message(r)
        raw = orjson.dumps(m)
        out.append((raw, d, k))
        total += len(raw)
    return out


def one_kib(r: random.Random, n: int) -> list[tuple[bytes, Direction, Kind]]:
    out = []
    while len(out) < n:
        if r.random() < 0.5:
            m = tool_call(r)
            m["params"]["arguments"]["query"] = words(r, 150)
            d, k = Direction.CLIENT_TO_SERVER, Kind.REQUEST
        else:
            m = tool_result(r, logs(r, 7))
            d, k = Direction.SERVER_TO_CLIENT, Kind.RESULT
        raw = orjson.dumps(m)
        if len(raw) > 1024:
            raw = raw  # keep; sizes are reported below
        out.append((raw, d, k))
    return out


def dense_shapes(r: random.Random, n: int = 256 * 1024) -> dict[str, str]:
    def fill(make) -> str:
        parts, size = [], 0
        while size < n:
            parts.append(make())
            size += len(parts[-1]) + 1
        return " ".join(parts)[:n]

    def iban() -> str:
        bban = f"{r.randrange(10**8):08d}{r.randrange(10**10):010d}"
        check = 98 - int(bban + "131400") % 97  # DE: D=13, E=14
        return f"DE{check:02d}{bban}"

    b64 = base64.b64encode(b"Zq8Lm2Xv9Rt4Wp7Y").decode()
    return {
        "random words": fill(lambda: "".join(r.choices(string.ascii_letters + string.digits, k=r.randint(20, 90)))),
        "one card": fill(lambda: "4556 7375 8689 9855"),
        "key: base64": fill(lambda: f"db_password: {b64}\n"),
        "distinct ipv4": fill(lambda: f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"),
        "distinct iban": fill(iban),
        "distinct phone": fill(lambda: f"+1 415 555 {r.randrange(10000):04d}"),
        "distinct email": fill(lambda: f"user{r.randrange(10**6)}@corp{r.randrange(99)}.com"),
    }  # fmt: skip


def timed(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dense", action="store_true", help="also time dense 256 KiB messages")
    args = ap.parse_args(argv)
    gc.disable()  # collected explicitly between timed loops

    t = time.process_time()
    engine = Engine.load(args.rules or None)
    print(
        f"rules: {len(engine.rules)} from {', '.join(engine.sources)} (compiled in {(time.process_time() - t) * 1000:.0f} ms)"
    )
    corpus = make_corpus(args.mb, args.seed)
    total = sum(len(raw) for raw, _, _ in corpus)
    print(
        f"corpus: {len(corpus)} messages, {total / 1e6:.1f} MB, mean {total / len(corpus) / 1024:.1f} KiB"
    )

    texts = [raw.decode() for raw, _, _ in corpus]
    stage = ScanStage(engine)
    act = ActStage(b"bench")
    ex = Exchange(flow_id="bench", server="bench:1")

    def run_stages(items: list[tuple[bytes, Direction, Kind]]) -> tuple[float, list[Message]]:
        """CPU seconds of scan + act over fresh messages made from ``items``."""
        msgs = [
            Message(orjson.loads(raw), d, k, ex, method="tools/call", name="x", raw=raw)
            for raw, d, k in items
        ]
        gc.collect()  # the corpus is a large heap: no collector pauses in the loop
        t = time.process_time()
        for m in msgs:
            stage.process(m)
            act.process(m)
        return time.process_time() - t, msgs

    eng_rates, stage_rates, findings = [], [], 0
    for _ in range(args.rounds):
        gc.collect()  # the corpus is a large heap: no collector pauses in the loop
        t = time.process_time()
        for s in texts:
            engine.scan_text(s)
        eng_rates.append(total / (time.process_time() - t) / 1e6)

        dt, msgs = run_stages(corpus)
        stage_rates.append(total / dt / 1e6)
        findings = sum(len(m.findings) for m in msgs)

    r = random.Random(args.seed + 1)
    small = one_kib(r, 5000)
    sizes = [len(raw) for raw, _, _ in small]
    per_msg = []
    for _ in range(args.rounds):
        dt, msgs = run_stages(small)
        per_msg.append(dt / len(msgs) * 1e6 * 1024 / statistics.mean(sizes))

    # CPU-bound and deterministic: the best round is the cost, slower rounds are other load
    # (shared cores, frequency changes); the median is shown for comparison.
    def rates(xs: list[float]) -> str:
        return f"{max(xs):7.1f} MB/s  (median {statistics.median(xs):.0f}; rounds: {', '.join(f'{x:.0f}' for x in xs)})"

    if args.dense:
        for name, text in dense_shapes(random.Random(args.seed)).items():
            raw = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": [
                {"type": "text", "text": text}]}})  # fmt: skip
            best = min(
                timed(lambda raw=raw: engine.scan_json(raw, None, lambda: raw)) for _ in range(3)
            )
            n = len(engine.scan_json(raw, None, lambda raw=raw: raw) or ())
            print(
                f"dense {name:16s} {len(raw) / 1024:5.0f} KiB {best * 1e3:8.1f} ms  ({n} findings)"
            )
    print(f"engine.scan_text: {rates(eng_rates)}")
    print(f"scan+act stage:   {rates(stage_rates)}; {findings} findings in the corpus")
    print(
        f"per 1 KiB message: {min(per_msg):6.1f} µs  (median {statistics.median(per_msg):.1f}; scan+act; {len(small)} messages, mean {statistics.mean(sizes):.0f} B)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
