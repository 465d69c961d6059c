"""``mcp-gateway keys``: create, list and revoke gateway API keys.

    mcp-gateway keys create NAME CONSUMER ROLES [--db PATH]   # ROLES: comma-separated ("" for none)
    mcp-gateway keys list [--db PATH] [--json]
    mcp-gateway keys revoke ID [--db PATH]

The key is printed once, at creation; only a salted hash is stored. A running gateway
picks up new and revoked keys within about a second.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable

from .. import term
from ..yamlconf import ConfigError
from .config import DEFAULT_DB, default_keys_db, load_config
from .keys import create_key, list_keys, revoke_key


class _Usage(Exception):
    pass


def _db(args: argparse.Namespace) -> str:
    """--db, else keys_db of --config, else the gateway's default database."""
    if args.db:
        return os.path.expanduser(args.db)
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as e:
            raise _Usage(str(e)) from None
        if cfg.keys_db:
            return cfg.keys_db
    return default_keys_db()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "keys",
        help="create, list and revoke gateway API keys",
        description="Gateway API keys (mgw_...) for named consumers with roles. Stored as salted "
        "hashes in the api_keys table of the gateway's SQLite database.",
    )
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION")
    # no action: its own help and the usage-error status, as `rules` and `audit` answer
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    db_help = (
        "SQLite database holding the keys (default: keys_db of --config, else "
        f"$MCP_GATEWAY_AUDIT_DB or {DEFAULT_DB}, the gateway's database)"
    )
    cfg_help = "the gateway config file (mcp_config): use its keys_db"

    c = sub.add_parser("create", help="create a key and print it once")
    c.add_argument("name", metavar="NAME", help='a label for the key, e.g. "CI agent"')
    c.add_argument(
        "consumer", metavar="CONSUMER", help="the consumer (limits, audit, usage are per consumer)"
    )
    c.add_argument(
        "roles", metavar="ROLES", help='comma-separated roles, e.g. "reader,writer" ("" for none)'
    )
    c.add_argument("--db", default=None, help=db_help)
    c.add_argument("--config", default=None, metavar="PATH", help=cfg_help)
    c.add_argument("--json", action="store_true", help="print the key and its record as JSON")
    c.set_defaults(func=cmd_create)

    ls = sub.add_parser("list", help="list keys (never shows the secret)")
    ls.add_argument("--db", default=None, help=db_help)
    ls.add_argument("--config", default=None, metavar="PATH", help=cfg_help)
    ls.add_argument("--json", action="store_true", help="JSON output")
    ls.set_defaults(func=cmd_list)

    r = sub.add_parser("revoke", help="revoke a key (effective within about a second)")
    r.add_argument("id", metavar="ID", help="the key id shown by `keys list` (or the key itself)")
    r.add_argument("--db", default=None, help=db_help)
    r.add_argument("--config", default=None, metavar="PATH", help=cfg_help)
    r.set_defaults(func=cmd_revoke)


def _with_db(cmd: Callable[[argparse.Namespace, str], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``cmd`` with the key database resolved; a bad --config is a usage error (2)."""

    @functools.wraps(cmd)
    def run(args: argparse.Namespace) -> int:
        try:
            db = _db(args)
        except _Usage as e:
            _console(stderr=True).print(f"[red]error:[/] {e}")
            return 2
        return cmd(args, db)

    return run


def _console(stderr: bool = False):
    return term.console(stderr=stderr, highlight=False, soft_wrap=True)


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


@_with_db
def cmd_create(args: argparse.Namespace, db: str) -> int:
    roles = [r for r in args.roles.split(",") if r.strip()]
    existed = os.path.exists(db)
    try:
        key, rec = create_key(db, args.name, args.consumer, roles)
    except (ValueError, sqlite3.Error) as e:
        _console(stderr=True).print(f"[red]error:[/] {e}")
        return 1
    if not existed and args.db and os.path.realpath(db) != os.path.realpath(default_keys_db()):
        # a mistyped --db made a new database, and a key the gateway never sees (its
        # clients then got 401 "unknown API key" with nothing to say why)
        _console(stderr=True).print(
            term.text(
                f"note: {db} did not exist and was created; the gateway reads its keys from "
                f"keys_db in its config, else from its audit database ({default_keys_db()}): "
                "give the same file here (--db, or --config gateway.yaml)",
                "yellow",
            )
        )
    if args.json:
        print(json.dumps({"key": key, **rec.public()}))
        return 0
    con = _console()
    con.print(
        f"Created key [bold]{rec.id}[/] for consumer [bold]{rec.consumer}[/] roles [bold]{','.join(rec.roles) or '-'}[/] in {db}"
    )
    con.print("This is the only time the key is shown; store it now:", style="yellow")
    # plain print, so that copying or piping the key never picks up markup
    print(key)
    return 0


@_with_db
def cmd_list(args: argparse.Namespace, db: str) -> int:
    try:
        recs = list_keys(db)
    except sqlite3.Error as e:
        _console(stderr=True).print(f"[red]error:[/] cannot read {db}: {e}")
        return 1
    if args.json:
        print(json.dumps([r.public() for r in recs]))
        return 0
    from rich.table import Table

    con = _console()
    if not recs:
        con.print(
            term.text(f"no API keys in {db}" + ("" if os.path.exists(db) else " (no such file)"))
        )
        return 0
    t = Table(title=f"API keys in {db}")
    for col in ("ID", "NAME", "CONSUMER", "ROLES", "CREATED", "STATUS"):
        t.add_column(col)
    for r in recs:
        status = "[green]active[/]" if r.active else f"[red]revoked {_fmt_time(r.revoked)}[/]"
        cells = (r.id, r.name, r.consumer, ",".join(r.roles), _fmt_time(r.created))
        t.add_row(*(term.text(c) for c in cells), status)
    con.print(t)
    return 0


@_with_db
def cmd_revoke(args: argparse.Namespace, db: str) -> int:
    try:
        rec = revoke_key(db, args.id)
    except sqlite3.Error as e:
        _console(stderr=True).print(f"[red]error:[/] cannot update {db}: {e}")
        return 1
    if rec is None:
        _console(stderr=True).print(f"[red]error:[/] no key {args.id!r} in {db}")
        return 1
    _console().print(
        term.text(
            f"Revoked key {rec.id} ({rec.name}, consumer {rec.consumer}) at {_fmt_time(rec.revoked)}"
        )
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(prog="mcp-gateway")
    register(ap.add_subparsers())
    a = ap.parse_args()
    sys.exit(a.func(a))
