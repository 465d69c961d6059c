"""What the blind rounds' corpus generators share (corpus_apac_latam.py, corpus_benchmarks.py):
one seeded random source, labelled values written as markers and turned into spans once the
message is serialised, the MCP message shapes a text is carried in, and a few format-valid
value makers.

A generator binds a ``Kit``'s methods to module names and calls ``reset(seed)`` at the start of
``generate``; ``reset`` seeds the same ``random.Random`` again, so a module's ``R = kit.R``
stays its random source and a seed gives the same corpus as before the kit existed."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
import sys
import uuid

_dumps = json.dumps

ALNUM = string.ascii_letters + string.digits
UP = string.ascii_uppercase
LO = string.ascii_lowercase
DIG = string.digits
HEX = "0123456789abcdef"
B62 = DIG + UP + LO

MARK = re.compile("\u27ea(\\d+)\u27eb")  # a labelled value's marker: ⟪index⟫


def J(obj, **kw):
    kw.setdefault("ensure_ascii", False)
    return _dumps(obj, **kw)


def esc(v, depth):
    """A value as it stands ``depth`` JSON string levels deep."""
    for _ in range(depth):
        v = J(v, ensure_ascii=False)[1:-1]
    return v


def luhn(partial):
    """``partial`` and the check digit that makes it pass Luhn."""
    for c in DIG:
        s = partial + c
        t = 0
        for i, ch in enumerate(reversed(s)):
            v = int(ch)
            if i % 2:
                v *= 2
                v -= 9 if v > 9 else 0
            t += v
        if t % 10 == 0:
            return s
    raise AssertionError


def bad_luhn(n):
    return n[:-1] + str((int(n[-1]) + 1) % 10)


def bad_iban(i):
    return i[:2] + f"{(int(i[2:4]) + 1) % 100:02d}" + i[4:]


def b64u(o):
    return base64.urlsafe_b64encode(J(o, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _base62(n, w=6):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s.rjust(w, "0")


class Kit:
    """One generator's state: its random source, the labels of the message being written and
    the samples so far (``add`` names them ``{prefix}-0000``, …)."""

    def __init__(self, prefix: str, seed: int | str, sse_share: float = 0.12):
        self.prefix = prefix
        self.sse_share = sse_share
        self.R = random.Random(seed)
        self.labels: list[tuple[str, str, int]] = []
        self.samples: list[dict] = []

    def reset(self, seed: int | str) -> None:
        self.R.seed(seed)  # (the same sequence as random.Random(seed))
        self.labels = []
        self.samples = []

    # ------------------------------------------------------------------ random values
    def rs(self, n, alpha=ALNUM):
        return "".join(self.R.choice(alpha) for _ in range(n))

    def mixed(self, n, alpha=ALNUM):
        while True:
            v = self.rs(n, alpha)
            if any(c in UP for c in v) and any(c in LO for c in v) and any(c in DIG for c in v):
                return v

    def hexs(self, n):
        return self.rs(n, HEX)

    def pick(self, *xs):
        return self.R.choice(xs)

    def github_token(self, prefix="ghp"):
        body = self.rs(30)
        return f"{prefix}_{body}{_base62(binascii.crc32(body.encode()))}"

    def uid(self):
        return str(uuid.UUID(int=self.R.getrandbits(128), version=4))

    # ------------------------------------------------------------------ markers and spans
    def L(self, typ, value, depth=1):
        """A labelled value; depth = how many JSON string levels it sits in (1: a plain string)."""
        self.labels.append((typ, value, depth))
        return f"\u27ea{len(self.labels) - 1}\u27eb"

    def build(self, obj, sse=False):
        raw = J(obj, ensure_ascii=False)
        if sse:
            raw = f"event: message\nid: {self.R.randint(1, 9999)}\ndata: {raw}\n\n"
        out, labels, pos, last = [], [], 0, 0
        for m in MARK.finditer(raw):
            out.append(raw[last : m.start()])
            pos += m.start() - last
            typ, value, depth = self.labels[int(m.group(1))]
            v = esc(value, depth)
            labels.append({"type": typ, "start": pos, "end": pos + len(v)})
            out.append(v)
            pos += len(v)
            last = m.end()
        out.append(raw[last:])
        return "".join(out), labels

    # ------------------------------------------------------------------ message shapes
    def result(self, text, structured=None):
        r = {"content": [{"type": "text", "text": text}]}
        if structured is not None:
            r["structuredContent"] = structured
        return {"jsonrpc": "2.0", "id": self.R.randint(2, 900), "result": r}

    def call(self, name, args):
        return {
            "jsonrpc": "2.0",
            "id": self.R.randint(2, 900),
            "method": "tools/call",
            "params": {"name": name, "arguments": args},
        }

    def resource(self, uri, text, mime="text/plain"):
        return {
            "jsonrpc": "2.0",
            "id": self.R.randint(2, 900),
            "result": {"contents": [{"uri": uri, "mimeType": mime, "text": text}]},
        }

    def add(self, cat, obj, benign=None, note="", sse=None):
        if sse is None:
            sse = self.R.random() < self.sse_share
        text, labels = self.build(obj, sse=sse)
        self.labels = []
        self.samples.append(
            {
                "id": f"{self.prefix}-{len(self.samples):04d}",
                "category": cat,
                "text": text,
                "labels": labels,
                "benign": (not labels) if benign is None else benign,
                "note": note,
            }
        )

    def wrap(self, cat, text, tool="read_file", args=None, note=""):
        """A text in one of the message shapes: a tool result, a resource, a tool call's argument."""
        k = self.R.randint(0, 5)
        if k <= 2:
            obj = self.result(text)
        elif k == 3:
            obj = self.resource(f"file:///srv/{cat}/{self.R.randint(100, 999)}.txt", text)
        elif k == 4:
            obj = self.call(tool, dict(args or {}, content=text))
        else:
            obj = self.result(text, structured={"text": text, "lines": text.count("\n") + 1})
        self.add(cat, obj, note=note)

    # ------------------------------------------------------------------ running
    def run(self, seed, templates) -> list[dict]:
        """The corpus of ``seed``: each template called its number of times, in order."""
        self.reset(seed)
        for fn, n in templates:
            for _ in range(n):
                fn()
        return self.samples


def main(generate, default_seed, default_out) -> None:
    """``python GENERATOR.py [OUT.jsonl] [SEED]``: write the corpus as JSON lines."""
    samples = generate(int(sys.argv[2]) if len(sys.argv) > 2 else default_seed)
    out = sys.argv[1] if len(sys.argv) > 1 else default_out
    with open(out, "w") as fh:
        for s in samples:
            fh.write(J(s) + "\n")
    print(
        len(samples),
        "samples,",
        sum(1 for s in samples if s["benign"]),
        "benign,",
        sum(len(s["labels"]) for s in samples),
        "labels",
    )
