"""User-written rule regexes, timed on hostile input before they are used.

The scanner confirms Hyperscan's candidates with Python's ``re``, which backtracks: a
pattern such as ``\\s*\\s*\\s*\\s*x`` or ``(.*a){12}`` is polynomial of a high degree in the
text it is tried on, and a few hundred characters hold the proxy's event loop for minutes.
Loading a rule file refuses the shapes known to be exponential (nested unbounded repeats,
ambiguous alternations: see ``rules._backtracking_risk``), but bounded repeats, adjacent
overlapping repeats and lookarounds escape any such check.

So every regex of a rule file that is not one of the shipped packs (patterns, allowlist
patterns and contexts, the validators' regexes) is also run, before the file is used, over
"pumps" made of its own text: each literal run of the pattern between separators (``""``,
space, newline, ``=``, ``:``, a quote, a backslash, a token-like word…) repeated to ~2,000
characters, in a child process that is killed when one pump has run ``TIMEOUT`` seconds.
A regex that takes more than ``LIMIT`` on one pump is refused with the file, line and field
named. (A quadratic regex, a few milliseconds on each of its ~2,000 pumps, is not: it is
timed for ``BUDGET`` seconds of CPU at most, and passes.) A
regex found fast is remembered (by its hash and the Python version) in the gateway's cache
directory, so that a restart does not time it again. The shipped packs' regexes are timed
on the same pumps (700 characters long) by the test suite
(tests/scan/test_scan_slow_inputs.py), not at start-up.

This is a test, not a proof: a regex slow only on input unlike its own text can pass.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

LIMIT = 0.1  # seconds of CPU on one pump: a linear regex takes microseconds
TIMEOUT = 2.0  # seconds one pump may run before the child is killed (the regex is slow)
BUDGET = 3.0  # seconds of CPU spent on one regex's pumps at most (then it passes)
STARTUP = 30.0  # seconds the child may take to start (else nothing is timed: a warning)
PUMP_CHARS = 2000
_SEPS = ["", " ", "\n", "  ", "=", ":", "\n  ", "\\n  ", '"', "\t", "/", "\\", "Xk9mP2vLqR7t"]
_MAX_LITERALS = 8


def literals(pattern: str) -> list[str]:
    """The pattern's runs of literal characters (a lone one doubled) and a character of each
    class, in order (at most eight; ``["a"]`` if none)."""
    import re._parser as sre  # (the parser of the ``re`` that runs the pattern)

    out: list[str] = []

    def walk(seq) -> None:
        run: list[str] = []
        for op, av in seq:
            name = str(op)
            if name == "LITERAL":
                run.append(chr(av))
                continue
            if run:
                out.append("".join(run) * (2 if len(run) == 1 else 1))
            run = []
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                walk(av[2])
            elif name == "SUBPATTERN":
                walk(av[-1])
            elif name == "BRANCH":
                for b in av[1]:
                    walk(b)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1])
            elif name == "IN":
                # a class: one of its characters stands for it (`[ \t]+`, `\s*`, `\d{3}`)
                for iop, iav in av:
                    if str(iop) == "LITERAL":
                        out.append(chr(iav) * 2)
                        break
                    if str(iop) == "RANGE":
                        out.append(chr(iav[0]) * 2)
                        break
                    if str(iop) == "CATEGORY":
                        out.append(_CATEGORY_SAMPLE.get(str(iav), "a") * 2)
                        break
        if run:
            out.append("".join(run) * (2 if len(run) == 1 else 1))

    try:
        walk(sre.parse(pattern))
    except Exception:  # noqa: BLE001 - (compiled fine elsewhere; time the default pump)
        pass
    seen: dict[str, None] = dict.fromkeys(out)
    return list(seen)[:_MAX_LITERALS] or ["a"]


_CATEGORY_SAMPLE = {
    "CATEGORY_DIGIT": "1",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}


def pumps(pattern: str, chars: int = PUMP_CHARS):
    """Texts of ~``chars`` characters: each separator repeated alone (what ``\\s*\\s*``
    chains backtrack over); a literal of the pattern between two separators, repeated; and
    one literal repeated, then a separator or ``!`` (where an almost-match fails), also
    after another literal."""
    lits = literals(pattern)
    for sep in _SEPS:
        if sep:
            yield sep * max(1, chars // len(sep))
    for lit, a, b in itertools.product(lits, _SEPS, _SEPS):
        unit = a + lit + b
        yield unit * max(1, chars // len(unit))
    # one long run, then something that ends it (where a match that almost succeeded
    # fails), alone and after another piece of the pattern (`=` before `\\s*\\s*…;`)
    ends = [*_SEPS[1:], "!"]
    for lit, end in itertools.product(lits, ends):
        yield lit * max(1, chars // len(lit)) + end
    for head, lit, end in itertools.product(lits, lits, ends):
        if head != lit:
            yield head + lit * max(1, chars // len(lit)) + end


def worst_time(
    pattern: str,
    flags: int = 0,
    limit: float = LIMIT,
    chars: int = PUMP_CHARS,
    budget: float | None = None,
    progress=None,
) -> float:
    """The longest CPU time one search of ``pattern`` took on one of its pumps (stops at
    the first over ``limit``, or once ``budget`` seconds were spent in all); ``progress()``
    is called after each pump."""
    rx = re.compile(pattern, flags)
    worst = spent = 0.0
    for text in pumps(pattern, chars):
        t0 = time.process_time()
        rx.search(text)
        took = time.process_time() - t0
        worst, spent = max(worst, took), spent + took
        if progress is not None:
            progress()
        if worst > limit or (budget is not None and spent > budget):
            break
    return worst


# -- the remembered verdicts --------------------------------------------------------------
_FAST_FILE = "regex-fast.txt"
_FAST_MAX_BYTES = 1 << 20


# Bump when the pumps change in a way the constants do not show: verdicts of earlier pumps
# are then not trusted.
_PUMPS_VERSION = 2


def _key(pattern: str, flags: int) -> str:
    raw = repr((_PUMPS_VERSION, sys.version, PUMP_CHARS, LIMIT, _SEPS, pattern, flags))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _cache_file() -> Path | None:
    from .hscache import _dir  # the gateway's private cache directory, or None

    d = _dir()
    return d / _FAST_FILE if d is not None else None


def _known_fast() -> set[str]:
    f = _cache_file()
    if f is None:
        return set()
    try:
        if f.stat().st_size > _FAST_MAX_BYTES:
            f.unlink()
            return set()
        return set(f.read_text("ascii").split())
    except (OSError, UnicodeDecodeError):
        return set()


def _remember(keys: list[str]) -> None:
    f = _cache_file()
    if f is None or not keys:
        return
    try:
        with open(f, "a", encoding="ascii") as out:
            out.write("".join(k + "\n" for k in keys))
    except OSError:
        pass


# -- the child process --------------------------------------------------------------------
def _spawn() -> subprocess.Popen:
    from ..childenv import child_env

    return subprocess.Popen(
        [sys.executable, "-m", "mcp_gateway.scan.slowcheck"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_env(),
        close_fds=True,
    )


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    try:
        proc.kill()
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes | None:
    """The child's next line, without the ``+`` it writes after pumps as it goes; None when
    ``timeout`` seconds passed without one (one pump ran that long)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            raise OSError("the regex timing process exited")
        deadline = time.monotonic() + timeout  # it is making progress
        line += chunk.replace(b"+", b"")
    return line


def _ask(proc: subprocess.Popen, pattern: str, flags: int, timeout: float) -> float | None:
    """The child's worst time for one regex; None when one of its pumps ran longer than
    ``timeout``."""
    import json

    assert proc.stdin is not None
    proc.stdin.write(json.dumps([pattern, flags]).encode() + b"\n")
    proc.stdin.flush()
    line = _read_line(proc, timeout)
    return None if line is None else float(line)


def first_slow(
    items: list[tuple[str, int]], *, limit: float = LIMIT, timeout: float = TIMEOUT
) -> tuple[tuple[str, int], float | None] | None:
    """The first (pattern, flags) of ``items`` that is slow on its pumps, with its worst time
    (None: it did not finish within ``timeout``); None when every one is fast, or when no
    child process could be run (a warning then says why, and nothing is refused)."""
    import logging

    known = _known_fast()
    todo = list(dict.fromkeys(i for i in items if _key(*i) not in known))
    if not todo:
        return None
    fast: list[str] = []
    proc: subprocess.Popen | None = None
    found = None
    try:
        proc = _spawn()
        if _read_line(proc, STARTUP) != b"ready\n":  # (its imports are no pump's time)
            raise OSError(f"the regex timing process did not start in {STARTUP:g} s")
        for pattern, flags in todo:
            t = _ask(proc, pattern, flags, timeout)
            if t is None or t > limit:
                found = ((pattern, flags), t)
                break
            fast.append(_key(pattern, flags))
    except (OSError, ValueError) as e:
        logging.getLogger("mcp_gateway").warning(
            "mcp-gateway: could not time the rule files' regexes on hostile input: %s", e
        )
    finally:
        _stop(proc)
        _remember(fast)
    return found


def _main() -> None:
    import json

    last = [time.monotonic()]

    def progress() -> None:  # a "+" now and then: the parent's clock restarts on each
        now = time.monotonic()
        if now - last[0] > 0.05:
            last[0] = now
            sys.stdout.write("+")
            sys.stdout.flush()

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin.buffer:
        pattern, flags = json.loads(line)
        try:
            t = worst_time(pattern, flags, budget=BUDGET, progress=progress)
        except re.error:
            t = 0.0  # (refused elsewhere with its own error)
        sys.stdout.write(f"{t:.6f}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _main()
