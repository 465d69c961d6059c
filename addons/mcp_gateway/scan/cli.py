"""``mcp-gateway scan`` and ``mcp-gateway rules {check,list}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import term
from ..parse import decode_json, encode_json
from ..yamlconf import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan text for secrets and personal data",
        description='Without FILE: read JSON lines {"id": ..., "text": ...} on stdin and write '
        'one JSON line {"id": ..., "detections": [...]} per input. With FILE: scan it as '
        "plain text and print a table.",
    )
    p.add_argument("file", nargs="?", help="a file to scan as plain text")
    p.add_argument(
        "--rules", action="append", default=[], metavar="PATH",
        help="rule file or directory (repeatable; default: the shipped packs)",
    )  # fmt: skip
    p.add_argument("--show-values", action="store_true", help="show matched values in the table")
    p.add_argument(
        "--fail", action="store_true",
        help="exit 1 when anything is found (for CI and pre-commit checks)",
    )  # fmt: skip
    p.set_defaults(func=cmd_scan)

    r = subparsers.add_parser("rules", help="validate and list scanning rules")
    rsub = r.add_subparsers(dest="rules_command", metavar="{check,list}")
    c = rsub.add_parser(
        "check",
        help="validate rule files (exit 1 on errors)",
        description="Each PATH is checked on top of the PATHs before it, merged as the "
        "gateway merges repeated --set mcp_rules=PATH: to check a file that overrides or "
        "disables shipped rules by id, name the shipped packs first (rules check rules/ FILE).",
    )
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.set_defaults(func=cmd_check)
    ls = rsub.add_parser("list", help="print the active rules")
    ls.add_argument("--rules", action="append", default=[], metavar="PATH")
    ls.set_defaults(func=cmd_list)
    r.set_defaults(func=lambda args: (r.print_help(sys.stderr), 2)[1])


def _engine(paths):
    from .engine import Engine

    return Engine.load(paths or None)


def cmd_scan(args) -> int:
    try:
        engine = _engine(args.rules)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.file:
        try:
            raw = Path(args.file).read_bytes()
        except OSError as e:
            print(f"error: {args.file}: {e.strerror or e}", file=sys.stderr)
            return 2
        text = raw.decode("utf-8", "replace")
        dets = engine.scan_text(text)
        rc = 1 if args.fail and dets else 0
        args.exit_status = rc  # (the answer stands if the table meets a closed pipe)
        _table(args.file, text, dets, args.show_values)
        return rc
    out = sys.stdout.buffer
    rc = 0
    for lineno, line in enumerate(sys.stdin.buffer, 1):
        line = line.strip()
        if not line:
            continue
        ident = None
        try:
            # As the gateway reads JSON: an id beyond 64 bits stays that integer (orjson made it
            # a float, so the answer named another id), and a text with a lone surrogate (a
            # JavaScript string cut inside an emoji) is scanned, not refused
            obj = decode_json(line)
            if not isinstance(obj, dict):
                raise TypeError('expected an object {"id": ..., "text": ...}')
            ident = obj.get("id")  # (kept in the error line, so it can be matched)
            if not isinstance(obj.get("text"), str):
                raise TypeError('"text" must be a string' if "text" in obj else 'no "text"')
            text = obj["text"]
        except (ValueError, TypeError) as e:
            print(f"error: stdin line {lineno}: {e}", file=sys.stderr)
            rc = args.exit_status = 1  # (before the write: the reader may be gone)
            out.write(encode_json({"id": ident, "error": f"line {lineno}: invalid input"}) + b"\n")
            continue
        dets = engine.scan_text(text)
        if args.fail and dets:
            rc = args.exit_status = 1  # (before the write: the reader may be gone)
        out.write(encode_json({"id": ident, "detections": [d.to_dict() for d in dets]}) + b"\n")
        out.flush()
    return rc


def _mask(value: str) -> str:
    from .stage import mask

    return mask(value)


def _table(name: str, text: str, dets, show_values: bool) -> None:
    from rich.table import Table

    console = term.console(width=None if sys.stdout.isatty() else 200)
    console.print(f"{name}: {len(dets)} detection(s)", markup=False, highlight=False)
    t = Table()
    for col in ("line", "col", "type", "rule", "severity", "action", "value"):
        t.add_column(col)
    for d in dets:
        line = text.count("\n", 0, d.start) + 1
        col = d.start - (text.rfind("\n", 0, d.start) + 1) + 1
        v = d.value if show_values else _mask(d.value)
        value = term.text(v.replace("\n", "\\n")[:80])  # scanned text: never markup
        t.add_row(str(line), str(col), d.type, d.rule, d.severity, d.action, value)
    console.print(t)  # (a second Console cut the piped table at 80 columns)


def cmd_check(args) -> int:
    # Each path on top of the valid ones before it, as `--set mcp_rules=` merges them: a
    # file that only overrides or disables shipped rules by id (`- {id: ipv4, action:
    # redact}`) is checked with `rules check rules/ FILE`; alone it lacks the required fields.
    errors = 0
    ok: list[str] = []
    for p in args.paths:
        try:
            rs = _checked([*ok, p])
            ok.append(p)
            print(
                f"{p}: OK ({len(rs.rules)} rules{' with the files before it' if ok[:-1] else ''})"
            )
        except _Problems as e:
            found = _each_file(p, ok) if Path(p).is_dir() else []
            for err in found or e.errors:
                print(f"{err}", file=sys.stderr)
            errors += 1
            args.exit_status = 1  # (stands if stdout closes: `rules check … | head`)
    return 1 if errors else 0


class _Problems(Exception):
    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__(errors)
        self.errors = errors


def _checked(paths: list[str]):
    """The rule set of ``paths`` as the gateway would load it, or :class:`_Problems` with
    every bad rule of them: a file with three mistakes reported its first only, one round
    trip per mistake."""
    from .engine import Engine
    from .rules import load_rules

    problems: list[ConfigError] = []
    try:
        rs = load_rules(paths, time_regexes=True, problems=problems)
        if not problems:
            Engine(rs)
    except ConfigError as e:
        problems.append(e)
    if problems:
        raise _Problems(problems)
    return rs


def _each_file(directory: str, before: list[str]) -> list[ConfigError]:
    """The problems of each rule file of ``directory``, each checked on top of the files
    before it (as the gateway merges them): a directory reported only its first bad file,
    and the next was found only once that one was mended."""
    from .rules import _expand

    out: list[ConfigError] = []
    good = list(before)
    for f in _expand([directory]):
        try:
            _checked([*good, str(f)])
            good.append(str(f))
        except _Problems as e:
            out.extend(e.errors)
    return out


def cmd_list(args) -> int:
    from rich.table import Table

    try:
        engine = _engine(args.rules)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t = Table(title=f"{len(engine.rules)} active rules")
    for col in ("id", "type", "severity", "action", "scope", "redaction", "description"):
        t.add_column(col)
    for r in engine.rules:
        sc = r.spec.scope
        scope = ",".join(sc.direction)
        if sc.methods:
            scope += " methods=" + ",".join(sc.methods)
        if sc.tools:
            scope += " tools=" + ",".join(sc.tools)
        if sc.servers:
            scope += " servers=" + ",".join(sc.servers)
        t.add_row(
            *(term.text(x) for x in (r.id, r.type, r.severity, r.action, scope)),
            term.text(r.spec.redaction.style),
            term.text(r.description),  # "[brackets]" in a user's description are text
        )
    term.console(width=None if sys.stdout.isatty() else 200).print(t)
    return 0


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience
    parser = argparse.ArgumentParser(prog="mcp-gateway")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)
