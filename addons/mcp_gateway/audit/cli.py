"""``mcp-gateway audit log|stats|verify|export|metadata`` and ``mcp-gateway usage``.

Every command takes ``--db PATH`` (default: the addon's default, ``$MCP_GATEWAY_AUDIT_DB`` or
``~/.mitmproxy/mcp-gateway-audit.db``) and ``--json``.  The database is opened read-only,
so the commands are safe to run while the gateway writes.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .. import term
from . import chain, hist, schema
from .schema import MESSAGE_COLUMNS, SCHEMA_VERSION, default_db

EXIT_OK = 0
EXIT_BAD = 1  # verify: the chain is broken
EXIT_ERROR = 2  # cannot open / unsupported schema / usage error


class CliError(Exception):
    pass


class DbUnreadable(CliError):
    """The database is not there, or not a database any more (malformed, truncated): with a
    head file that records rows, ``verify`` reports that as a broken trail (exit 1)."""


# -- helpers ----------------------------------------------------------------------------


def _console():
    # Wide enough for the log table when piped (rich would assume 80 columns).
    return term.console(
        highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160
    )


def _err(msg: str, command: str = "audit") -> None:
    sys.stderr.write(f"mcp-gateway {command}: {msg}\n")


def open_ro(spec: str, live: bool = False) -> tuple[sqlite3.Connection, str]:
    path = os.path.abspath(os.path.expanduser(spec))
    if not os.path.exists(path):
        raise DbUnreadable(f"no audit database at {path} (use --db PATH or MCP_GATEWAY_AUDIT_DB)")
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not an audit database")
    # (as a URI, the path percent-encoded: a "#" or "?" in it once cut the path short there,
    # and SQLite created and read an empty file of that shorter name, mode=ro being lost)
    uri = Path(path).as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        # A database in WAL mode cannot be opened read-only where its -shm cannot be made
        # (a read-only mount, a directory the reader may not write: an archived trail, an
        # auditor's account). With no -wal holding rows yet to be checkpointed, the file is
        # the whole database: read it as immutable.
        wal = path + "-wal"
        if live:  # (an immutable file never shows the rows committed after it was opened)
            raise CliError(
                f"{path}: cannot follow the database ({e}): this account cannot open it for "
                "reading while it is written (SQLite needs to create its -shm file)"
            ) from e
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise CliError(
                f"{path}: cannot read the database ({e}); its -wal file holds rows that only a "
                "reader allowed to write next to it can see: copy the database with its -wal "
                "file to a writable directory and run this there"
            ) from e
        try:
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=5.0)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            raise CliError(f"{path}: cannot read the database ({e})") from e
    except sqlite3.DatabaseError as e:
        raise DbUnreadable(f"{path}: cannot read the database ({e})") from e
    return conn, path


def check_schema(conn: sqlite3.Connection, path: str) -> None:
    try:
        v = schema.read_version(conn)
    except schema.SchemaError as e:
        raise CliError(f"{path}: {e}") from e
    if v is None:
        raise CliError(f"{path}: empty database, no audit tables")
    if v != SCHEMA_VERSION:
        raise CliError(
            f"{path}: audit schema version {v}; this mcp-gateway reads version {SCHEMA_VERSION}"
        )


_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(s: str, now: float | None = None) -> float:
    """``15m``/``2h``/``7d`` ago, a unix timestamp, or an ISO date/time (naive = UTC)."""
    s = s.strip()
    m = _REL.match(s)
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise CliError(f"cannot read time {s!r}: use 15m, 2h, 7d, or 2026-11-21T10:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(t: float | None, ms: bool = True) -> str | None:
    if t is None:
        return None
    dt = datetime.fromtimestamp(t, UTC)
    return (
        dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if ms else dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def _match(col: str, value: str, where: list[str], params: list[Any]) -> None:
    if any(c in value for c in "*?["):
        where.append(f"[{col}] GLOB ?")
    else:
        where.append(f"[{col}] = ?")
    params.append(value)


def message_filter(args: argparse.Namespace) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for opt, col in (
        ("server", "server"),
        ("consumer", "consumer"),
        ("tool", "name"),
        ("method", "method"),
        ("decision", "action"),
    ):
        v = getattr(args, opt, None)
        if v:
            _match(col, v, where, params)
    flow = getattr(args, "flow", None)
    if flow and any(c in flow for c in "*?["):
        _match("flow_id", flow, where, params)
    elif flow:
        # the id, or the start of one as the log's table shows it (its first 8 characters):
        # a prefix only when no flow has that exact id
        where.append(
            "([flow_id] = ? OR (NOT EXISTS (SELECT 1 FROM messages WHERE flow_id = ?)"
            " AND substr([flow_id], 1, ?) = ?))"
        )
        params += [flow, flow, len(flow), flow]
    decision = getattr(args, "decision", None)
    if decision and decision != "pass":
        where.append("action != 'pass'")  # lets SQLite use the partial decision index
    if getattr(args, "since", None):
        where.append("time >= ?")
        params.append(parse_time(args.since))
    if getattr(args, "until", None):
        where.append("time < ?")
        params.append(parse_time(args.until))
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _dicts(cur: sqlite3.Cursor) -> list[dict]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur]


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


# -- audit log ---------------------------------------------------------------------------

_DECISION_STYLE = {"pass": "green", "redact": "yellow", "block": "bold red", "drop": "red"}


def cmd_log(args: argparse.Namespace) -> int:
    conn, path = open_ro(args.db, live=args.follow)
    check_schema(conn, path)
    where, params = message_filter(args)
    cols = ", ".join(f"[{c}]" for c in MESSAGE_COLUMNS if c != "payload")
    if args.payloads:
        cols += ", payload"
    sql = f"SELECT seq, {cols}, hash FROM messages{where} ORDER BY seq DESC LIMIT ?"
    rows = _dicts(conn.execute(sql, [*params, args.limit if args.limit > 0 else -1]))
    rows.reverse()
    for r in rows:
        r["utc"] = iso(r["time"])
    if args.follow:
        return _follow(conn, args, rows, cols, where, params)
    if args.json:
        _emit_json(rows)
        return EXIT_OK
    from rich.table import Table

    t = Table(title=f"audit log: {path}", header_style="bold")
    t.add_column("seq", justify="right", no_wrap=True)
    t.add_column("time (UTC)", no_wrap=True)
    t.add_column("", no_wrap=True)
    t.add_column("server", overflow="fold")
    t.add_column("consumer", overflow="fold")
    t.add_column("message", overflow="fold")
    t.add_column("id", overflow="fold")
    t.add_column("ms", justify="right", no_wrap=True)
    t.add_column("decision", no_wrap=True)
    t.add_column("find", justify="right", no_wrap=True)
    t.add_column("flow", no_wrap=True)
    for r in rows:
        t.add_row(*_cells(r))
    con = _console()
    con.print(t)
    if not rows:
        con.print("[dim]no matching messages[/dim]")
    return EXIT_OK


def _cells(r: dict) -> list:
    """One message row as the log shows it (every value from the wire as plain text: a tool
    named "[/x]" is no markup)."""
    dec = r["action"] or ""
    if r["refusal_code"] is not None:
        dec = f"{dec} {r['refusal_code']}"
    what = term.text(" ".join(x for x in (r["method"], r["name"]) if x) or (r["http_method"] or ""))
    kind = r["kind"] or ""
    if kind != "request":
        what.append(f" ({term.plain(kind)})", style="red" if r["error"] else "dim")
    return [
        str(r["seq"]),
        (r["utc"] or "")[5:23].replace("T", " "),
        "→" if r["direction"] == "c2s" else "←",
        term.text(r["server"] or ""),
        term.text(r["consumer"] or ""),
        what,
        term.text(r["rpc_id"] or ""),
        f"{r['latency_ms']:.1f}" if r["latency_ms"] is not None else "",
        term.text(dec, _DECISION_STYLE.get(r["action"] or "", "")),
        str(r["findings"] or ""),
        term.text((r["flow_id"] or "")[:8]),
    ]


FOLLOW_INTERVAL = 0.5  # seconds between looks at the database (the writer commits per 0.1 s)


def _wait(seconds: float) -> None:  # (replaced by the tests)
    time.sleep(seconds)


def _follow(conn, args, rows: list[dict], cols: str, where: str, params: list) -> int:
    """``audit log --follow``: the last rows, then each matching row as it is committed, one
    line each (one JSON object a line with --json), until interrupted."""
    from rich.text import Text

    con = _console()

    def emit(batch: list[dict]) -> None:
        for r in batch:
            if args.json:
                sys.stdout.write(json.dumps(r, default=str) + "\n")
            else:
                line = Text()
                for i, c in enumerate(_cells(r)):
                    line.append("  " if i else "")
                    line.append(c if isinstance(c, Text) else Text(c))
                con.print(line)
        sys.stdout.flush()

    emit(rows)
    last = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
    cond = f"{where} AND" if where else " WHERE"
    sql = f"SELECT seq, {cols}, hash FROM messages{cond} seq > ? AND seq <= ? ORDER BY seq"
    try:
        while True:
            _wait(FOLLOW_INTERVAL)
            top = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()[0]
            if top <= last:
                continue
            new = _dicts(conn.execute(sql, [*params, last, top]))
            for r in new:
                r["utc"] = iso(r["time"])
            emit(new)
            last = top
    except KeyboardInterrupt:
        return EXIT_OK


# -- audit stats -------------------------------------------------------------------------


def _merged_hist(conn: sqlite3.Connection) -> dict:
    return dict(conn.execute("SELECT bucket, sum(count) FROM usage_latency GROUP BY bucket"))


def collect_stats(conn: sqlite3.Connection, path: str) -> dict:
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    by_kind = dict(conn.execute("SELECT kind, count(*) FROM messages GROUP BY kind").fetchall())
    by_action = dict(
        conn.execute("SELECT action, count(*) FROM messages GROUP BY action").fetchall()
    )
    h = _merged_hist(conn)
    p50, p95, p99 = hist.percentiles(h, (0.5, 0.95, 0.99))
    lat = conn.execute(
        "SELECT sum(latency_count), sum(latency_sum), max(latency_max) FROM usage"
    ).fetchone()
    try:
        head_file = chain.read_head(chain.head_path(path))
        head_err = None
    except (ValueError, OSError) as e:
        head_file, head_err = None, str(e)
    meta_seq = schema.get_meta(conn, "head_seq")
    meta_hash = schema.get_meta(conn, "head_hash")
    stats = {
        "db": path,
        "db_bytes": os.path.getsize(path),
        "schema_version": int(schema.get_meta(conn, "schema_version") or 0),
        "first": iso(one("SELECT min(time) FROM messages")),
        "last": iso(one("SELECT max(time) FROM messages")),
        "messages": one("SELECT count(*) FROM messages"),
        "by_kind": by_kind,
        "by_decision": by_action,
        "requests": one("SELECT count(*) FROM messages WHERE kind='request' AND direction='c2s'"),
        "blocks": by_action.get("block", 0),
        "drops": by_action.get("drop", 0),
        "redactions": by_action.get("redact", 0),
        "errors": one("SELECT count(*) FROM messages WHERE error=1"),
        "faults": one("SELECT count(*) FROM messages WHERE faults IS NOT NULL"),
        "sessions": one("SELECT count(*) FROM sessions"),
        "consumers": one("SELECT count(DISTINCT consumer) FROM messages"),
        "servers": one("SELECT count(DISTINCT server) FROM messages"),
        "findings": one("SELECT count(*) FROM findings"),
        "findings_by_rule": dict(
            conn.execute(
                "SELECT rule, count(*) n FROM findings GROUP BY rule ORDER BY n DESC"
            ).fetchall()
        ),
        "findings_by_type": dict(
            conn.execute(
                "SELECT type, count(*) n FROM findings GROUP BY type ORDER BY n DESC"
            ).fetchall()
        ),
        "findings_by_severity": dict(
            conn.execute(
                "SELECT severity, count(*) n FROM findings GROUP BY severity ORDER BY n DESC"
            ).fetchall()
        ),
        "latency_ms": {
            "responses": lat[0] or 0,
            "avg": round(lat[1] / lat[0], 3) if lat[0] else None,
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "max": lat[2],
        },
        "audit_dropped": one(
            "SELECT coalesce(sum(count), 0) FROM audit_events WHERE event='dropped'"
        ),
        "audit_refused": one(
            "SELECT coalesce(sum(count), 0) FROM audit_events WHERE event='refused'"
        ),
        # events a shutdown could not write (database locked, disk full), recorded at the
        # next start
        "audit_lost": one("SELECT coalesce(sum(count), 0) FROM audit_events WHERE event='lost'"),
        "gateway_starts": one("SELECT count(*) FROM audit_events WHERE event='start'"),
        "head": {
            "seq": int(meta_seq) if meta_seq else 0,
            "hash": meta_hash,
            "head_file": chain.head_path(path),
            "head_file_seq": head_file.get("seq") if head_file else None,
            "head_file_hash": head_file.get("hash") if head_file else None,
            "head_file_error": head_err,
        },
    }
    return stats


def cmd_stats(args: argparse.Namespace) -> int:
    conn, path = open_ro(args.db)
    check_schema(conn, path)
    s = collect_stats(conn, path)
    if args.json:
        _emit_json(s)
        return EXIT_OK
    from rich.table import Table

    con = _console()
    con.print(
        f"[bold]audit stats[/bold]: {path} ({s['db_bytes'] / 1e6:.1f} MB, schema v{s['schema_version']})"
    )
    con.print(f"from {s['first'] or '-'} to {s['last'] or '-'}")
    t = Table(show_header=False, box=None, padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    lat = s["latency_ms"]
    fmt = lambda v: "-" if v is None else f"{v:.1f} ms"  # noqa: E731
    for k, v in (
        ("messages", s["messages"]),
        ("client requests", s["requests"]),
        ("blocked", s["blocks"]),
        ("dropped (notifications)", s["drops"]),
        ("redacted", s["redactions"]),
        ("errors", s["errors"]),
        ("stage faults", s["faults"]),
        ("sessions / consumers / servers", f"{s['sessions']} / {s['consumers']} / {s['servers']}"),
        ("findings", s["findings"]),
        ("latency p50 / p95 / p99", f"{fmt(lat['p50'])} / {fmt(lat['p95'])} / {fmt(lat['p99'])}"),
        (
            "audit losses: dropped / refused / lost",
            f"{s['audit_dropped']} / {s['audit_refused']} / {s['audit_lost']}",
        ),
        ("gateway starts", s["gateway_starts"]),
    ):
        style = (
            "red"
            if k.startswith("audit losses")
            and (s["audit_dropped"] or s["audit_refused"] or s["audit_lost"])
            else ""
        )
        t.add_row(k, f"[{style}]{v}[/]" if style else str(v))
    con.print(t)
    for title, key in (
        ("findings by rule", "findings_by_rule"),
        ("findings by type", "findings_by_type"),
    ):
        if s[key]:
            ft = Table(title=title, title_justify="left", header_style="bold")
            ft.add_column(title.split()[-1])
            ft.add_column("n", justify="right")
            for name, n in list(s[key].items())[:25]:
                ft.add_row(term.text(name), str(n))
            con.print(ft)
    h = s["head"]
    con.print(f"[bold]chain head[/bold]: seq {h['seq']} hash {h['hash']}")
    if h["head_file_error"]:
        con.print(term.text(f"head file {h['head_file']}: {h['head_file_error']}", "red"))
    elif h["head_file_seq"] is None:
        con.print(f"[yellow]head file {h['head_file']} missing[/yellow]")
    else:
        con.print(f"head file: seq {h['head_file_seq']} hash {h['head_file_hash']}")
    con.print(
        "[dim]keep a copy of the head hash elsewhere; `mcp-gateway audit verify` checks the chain[/dim]"
    )
    return EXIT_OK


# -- audit verify ------------------------------------------------------------------------


def _unreadable_against_head(args: argparse.Namespace, error: DbUnreadable) -> int | None:
    """A database that is gone or no longer one (truncated: "database disk image is
    malformed") was "cannot verify" (exit 2), even with a head file that records the rows it
    held; like a schema edited against the head file, that is a broken trail (exit 1)."""
    if args.no_head:
        return None
    path = os.path.abspath(os.path.expanduser(args.db))
    head_file = args.head or chain.head_path(path)
    try:
        head = chain.read_head(head_file)
    except (ValueError, OSError):
        head = None
    if not head or int(head["seq"]) <= 0:
        return None
    detail = f"{error}, but the head file {head_file} records rows up to seq {head['seq']}"
    args.exit_status = EXIT_BAD  # (the answer stands if the report meets a closed pipe)
    if args.json:
        _emit_json(
            {
                "ok": False,
                "db": path,
                "head_file": head,
                "problems": [{"seq": None, "table": None, "what": "unreadable", "detail": detail}],
                "first_problem": f"database: unreadable: {detail}",
                "warnings": [],
            }
        )
    else:
        con = _console()
        con.print(f"[bold red]✘ chain broken[/bold red] in {path}: 1 problem(s)")
        con.print("  first bad row: ", term.text(f"database: unreadable: {detail}", "bold"), sep="")
    return EXIT_BAD


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        conn, path = open_ro(args.db)
    except DbUnreadable as e:
        rc = _unreadable_against_head(args, e)
        if rc is None:
            raise
        return rc
    if args.head and not args.no_head and not os.path.lexists(args.head):
        # a path typed by hand (a copy kept off the machine): exit 1 said "chain broken"
        raise CliError(f"no head file at {args.head} (to verify without one: --no-head)")
    head = None if args.no_head else (args.head or chain.head_path(path))
    res = chain.verify(conn, head, require_head=not args.no_head)
    # (the answer stands if the report cannot be printed: `verify | head -1`)
    args.exit_status = EXIT_ERROR if res.unsupported else EXIT_OK if res.ok else EXIT_BAD
    if args.json:
        out = res.to_json()
        out["db"] = path
        _emit_json(out)
    else:
        con = _console()
        if res.unsupported:
            con.print(
                term.text(f"✘ cannot verify {path}", "bold red"),
                term.text(f": {res.problems[0].detail}"),
                sep="",
            )
        elif res.ok:
            counts = ", ".join(f"{n} {t}" for t, n in res.counts.items())
            con.print(
                f"[bold green]✔ chain intact[/bold green]: {res.rows} rows"
                + (f" (seq {res.first_seq}..{res.last_seq}: {counts})" if res.rows else "")
            )
            con.print(f"  head: seq {res.last_seq} hash {res.last_hash}")
            if res.head:
                hseq = res.head["seq"]
                behind = (res.last_seq or 0) - hseq
                con.print(
                    f"  head file {head}: seq {hseq} — "
                    + ("matches" if behind <= 0 else f"{behind} row(s) after it")
                )
        else:
            con.print(
                f"[bold red]✘ chain broken[/bold red] in {path}: {len(res.problems)} problem(s)"
            )
            con.print("  first bad row: ", term.text(res.problems[0], "bold"), sep="")
            for p in res.problems[1:10]:
                con.print("  ", term.text(p), sep="")
        for w in res.warnings:
            con.print(term.text(f"  warning: {w}", "yellow"))
    if res.unsupported:
        return EXIT_ERROR
    return EXIT_OK if res.ok else EXIT_BAD


# -- audit export ------------------------------------------------------------------------

_EXPORT_TABLES = ("messages", "findings", "audit_events", "sessions", "usage", "usage_latency")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(v: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (a tool name, id or method a
    client chose: ``=HYPERLINK("https://…?"&B2, "x")``) gets a leading ``'``, as OWASP
    advises for CSV exports; numbers (``-5``) stay as they are."""
    if isinstance(v, str) and v.startswith(_FORMULA_START) and not _NUMBER.fullmatch(v):
        return "'" + v
    return v


def _open_output(spec: str, db: str):
    """``--output`` opened for writing, or a CliError saying why not (it was a traceback).
    The trail itself, its -wal or its head file are refused: opening one of them for
    writing emptied it before a row was read."""
    target = os.path.abspath(os.path.expanduser(spec))
    for own in (db, db + "-wal", db + "-shm", chain.head_path(db)):
        with contextlib.suppress(OSError):
            if os.path.samefile(target, own):
                raise CliError(f"--output {spec} is the audit trail's own file ({own})")
    try:
        return open(target, "w", newline="")
    except OSError as e:
        raise CliError(f"cannot write --output {spec}: {e.strerror or e}") from e


def cmd_export(args: argparse.Namespace) -> int:
    conn, path = open_ro(args.db)
    check_schema(conn, path)
    table = args.table
    where, params = message_filter(args)
    if table == "messages":
        cur = conn.execute(f"SELECT * FROM messages{where} ORDER BY seq", params)
    elif table == "findings" and where:
        # a finding is selected by its message (the filters are the messages' columns)
        cur = conn.execute(
            f"SELECT * FROM findings WHERE message_seq IN (SELECT seq FROM messages{where}) "
            "ORDER BY seq",
            params,
        )
    elif where:
        # (the filters were ignored: every row came out, as if the selection had been made)
        raise CliError(f"--table {table} takes no filters (they select messages and findings)")
    else:
        order = "seq" if table in ("findings", "audit_events") else "rowid"
        cur = conn.execute(f"SELECT * FROM [{table}] ORDER BY {order}")
    cols = [d[0] for d in cur.description]
    out = _open_output(args.output, path) if args.output else sys.stdout
    n = 0
    try:
        if args.format == "csv":
            fields = cols + (["utc"] if "time" in cols else [])
            w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in cur:
                d = {c: csv_cell(v) for c, v in zip(cols, r, strict=True)}
                if "time" in d:
                    d["utc"] = iso(d["time"])
                w.writerow(d)
                n += 1
        else:
            fcur = conn.cursor()
            for r in cur:
                d = dict(zip(cols, r, strict=True))
                if "time" in d:
                    d["utc"] = iso(d["time"])
                if table == "messages" and d.get("findings"):
                    d["findings_list"] = _dicts(
                        fcur.execute(
                            "SELECT seq, rule, type, severity, action, location, start, end, "
                            "masked FROM findings WHERE message_seq=? ORDER BY seq",
                            (d["seq"],),
                        )
                    )
                out.write(orjson.dumps(d).decode() + "\n")
                n += 1
    finally:
        if args.output:
            out.close()
    if args.output:
        if args.json:
            _emit_json({"output": args.output, "rows": n, "table": table, "format": args.format})
        else:
            sys.stderr.write(f"exported {n} {table} rows to {args.output} ({args.format})\n")
    return EXIT_OK


# -- audit metadata (Datasette) ---------------------------------------------------------


def cmd_metadata(args: argparse.Namespace) -> int:
    from .datasette import metadata

    path = os.path.abspath(os.path.expanduser(args.db))
    _emit_json(metadata(path))
    return EXIT_OK


# -- usage ------------------------------------------------------------------------------


def _hour(spec: str) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H", time.gmtime(parse_time(spec)))
    except (OverflowError, OSError, ValueError):
        raise CliError(f"time {spec!r} is out of range") from None


def collect_usage(conn: sqlite3.Connection, args: argparse.Namespace) -> list[dict]:
    where: list[str] = []
    params: list[Any] = []
    if args.consumer:
        _match("consumer", args.consumer, where, params)
    if args.server:
        _match("server", args.server, where, params)
    if args.tool:
        # a glob as in every other filter (`--tool 'delete_*'`, as limits.tools match)
        op = "GLOB" if any(c in args.tool for c in "*?[") else "="
        where.append(f"(name {op} ? OR (name = '' AND method {op} ?))")
        params += [args.tool, args.tool]
    if args.since:
        where.append("hour >= ?")
        params.append(_hour(args.since))
    if args.until:
        where.append("hour <= ?")
        params.append(_hour(args.until))
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    tool = "CASE WHEN name != '' THEN name ELSE method END"
    sql = (
        f"SELECT consumer, server, {tool} AS tool, sum(calls), sum(blocked), sum(responses), "
        "sum(errors), sum(latency_count), sum(latency_sum), max(latency_max) "
        f"FROM usage{cond} GROUP BY 1, 2, 3"
    )
    groups: dict[tuple, dict] = {}
    for r in conn.execute(sql, params):
        groups[(r[0], r[1], r[2])] = {
            "consumer": r[0] or None,
            "server": r[1] or None,
            "tool": r[2] or None,
            "calls": r[3],
            "blocked": r[4],
            "responses": r[5],
            "errors": r[6],
            "_n": r[7] or 0,
            "_sum": r[8] or 0.0,
            "max_ms": r[9] or 0.0,
            "_h": {},
        }
    hsql = (
        f"SELECT consumer, server, {tool}, bucket, sum(count) FROM usage_latency{cond} "
        "GROUP BY 1, 2, 3, 4"
    )
    for c, sv, t, b, n in conn.execute(hsql, params):
        g = groups.get((c, sv, t))
        if g is not None:
            g["_h"][b] = n
    out = []
    for g in sorted(
        groups.values(), key=lambda g: (-g["calls"], str(g["consumer"]), str(g["tool"]))
    ):
        n, s, h = g.pop("_n"), g.pop("_sum"), g.pop("_h")
        g["avg_ms"] = round(s / n, 3) if n else None
        g["p50_ms"], g["p95_ms"] = hist.percentiles(h, (0.5, 0.95))
        if not n:
            g["max_ms"] = None
        out.append(g)
    return out


def cmd_usage(args: argparse.Namespace) -> int:
    conn, path = open_ro(args.db)
    check_schema(conn, path)
    rows = collect_usage(conn, args)
    if args.json:
        _emit_json(rows)
        return EXIT_OK
    from rich.table import Table

    title = f"usage{' of ' + args.consumer if args.consumer else ''}: {path}"
    t = Table(title=title, header_style="bold")
    for c in ("consumer", "server", "tool"):
        t.add_column(c, overflow="fold")
    for c in ("calls", "blocked", "errors", "p50 ms", "p95 ms", "avg ms"):
        t.add_column(c, justify="right")
    f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for r in rows:
        t.add_row(
            term.text(r["consumer"]) if r["consumer"] else term.text("(unidentified)", "dim"),
            term.text(r["server"] or ""),
            term.text(r["tool"] or ""),
            str(r["calls"]),
            f"[red]{r['blocked']}[/red]" if r["blocked"] else "0",
            f"[red]{r['errors']}[/red]" if r["errors"] else "0",
            f(r["p50_ms"]),
            f(r["p95_ms"]),
            f(r["avg_ms"]),
        )
    con = _console()
    con.print(t)
    if not rows:
        con.print("[dim]no usage recorded[/dim]")
    return EXIT_OK


# -- registration -----------------------------------------------------------------------


def _wrap(fn, command: str = "audit"):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CliError as e:
            _err(str(e), command)
            return EXIT_ERROR
        except sqlite3.Error as e:
            _err(f"database error: {e}", command)
            return EXIT_ERROR

    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=default_db(),
        metavar="PATH",
        help="audit database (default: $MCP_GATEWAY_AUDIT_DB or %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")


_DECISIONS = ("pass", "redact", "block", "drop")


def _decision(v: str) -> str:
    """A decision the gateway records, or a glob: `--decision blocked` matched nothing and
    the table said "no matching messages", as if nothing had been blocked."""
    if v in _DECISIONS or any(c in v for c in "*?["):
        return v
    raise argparse.ArgumentTypeError(
        f"unknown decision {v!r}: the gateway records {', '.join(_DECISIONS)} (or give a glob)"
    )


def _limit(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {v!r}") from None
    if n < 0:  # (-1 listed everything, as 0 does: a typo for a count)
        raise argparse.ArgumentTypeError(f"{n} is negative: give N rows, or 0 for all")
    return n


def _filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (exact match, or a glob with * ? [])")
    g.add_argument("--server", help="upstream host:port")
    g.add_argument("--consumer", help="consumer (identity)")
    g.add_argument("--tool", help="tool / prompt name or resource uri")
    g.add_argument("--method", help="JSON-RPC method, e.g. tools/call")
    g.add_argument("--decision", type=_decision, help="pass, redact, block or drop")
    g.add_argument(
        "--flow",
        metavar="FLOW_ID",
        help="mitmproxy flow id (as in -w captures), or its start as the table shows it",
    )
    g.add_argument("--since", help="15m, 2h, 7d, or an ISO time (UTC unless it has an offset)")
    g.add_argument("--until", help="same forms as --since")


def register(subparsers) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="query, verify and export the audit trail",
        description="Query, verify and export the tamper-evident audit trail (SQLite).",
    )
    # no subcommand: a usage error (exit 2, as `rules` answers), the help on stderr
    audit.set_defaults(func=lambda a: (audit.print_help(sys.stderr), EXIT_ERROR)[1])
    sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")

    p = sub.add_parser("log", help="recorded messages, newest last")
    _common(p)
    _filters(p)
    p.add_argument(
        "--limit", type=_limit, default=50, help="the newest N messages (default 50; 0: all)"
    )
    p.add_argument("--payloads", action="store_true", help="include stored payloads (--json)")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="then print each matching message as it is recorded, one a line (with --json: "
        "one JSON object a line), until Ctrl-C, as tail -f does",
    )
    p.set_defaults(func=_wrap(cmd_log))

    p = sub.add_parser("stats", help="totals, findings, latency percentiles, losses, chain head")
    _common(p)
    p.set_defaults(func=_wrap(cmd_stats))

    p = sub.add_parser(
        "verify",
        help="check the hash chain; exit 0 if intact, 1 if not, 2 if it cannot be checked",
    )
    _common(p)
    p.add_argument("--head", metavar="FILE", help="head file to check against (default: DB.head)")
    p.add_argument(
        "--no-head", action="store_true", help="verify the chain alone (no truncation check)"
    )
    p.set_defaults(func=_wrap(cmd_verify))

    p = sub.add_parser("export", help="export rows as JSON lines or CSV")
    _common(p)
    _filters(p)
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--table", choices=_EXPORT_TABLES, default="messages")
    p.set_defaults(func=_wrap(cmd_export))

    p = sub.add_parser("metadata", help="Datasette metadata with canned queries (JSON)")
    _common(p)
    p.set_defaults(func=_wrap(cmd_metadata))

    u = subparsers.add_parser(
        "usage",
        help="calls, errors and latency per consumer, server and tool",
        description="Usage from the audit trail: calls, blocked, errors, p50/p95 latency "
        "per consumer, server and tool (percentiles within about ±5%).",
    )
    u.add_argument("consumer", nargs="?", help="only this consumer (glob allowed)")
    _common(u)
    u.add_argument("--server", help="upstream host:port (glob allowed)")
    u.add_argument("--tool", help="tool name, or method for calls without a name (glob allowed)")
    u.add_argument("--since", help="15m, 2h, 7d, or an ISO time (hour granularity)")
    u.add_argument("--until", help="same forms as --since")
    u.set_defaults(func=_wrap(cmd_usage, "usage"))  # (its errors said "mcp-gateway audit:")
