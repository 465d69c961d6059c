"""The ``mcp-gateway`` console command.

Each concern owns its subcommands in its own module, which exposes
``register(subparsers)``; subcommand modules are imported lazily so that
``mcp-gateway --help`` stays fast and one broken module cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, one-line summary) — the module's register() adds its subcommands.
SUBCOMMAND_MODULES: list[str] = [
    "mcp_gateway.scan.cli",  # scan, rules
    "mcp_gateway.audit.cli",  # audit, usage
    "mcp_gateway.identity.cli",  # keys
    "mcp_gateway.shim.cli",  # stdio, bridge
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-gateway",
        description="MCP security gateway: run it with `mitmdump -s addons/gateway.py`; "
        "these subcommands manage rules, keys, the audit trail and the stdio shim.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                continue  # that concern is not built yet
            raise
        mod.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mcp-gateway {version('mcp-gateway')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "mcp-gateway (source)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:  # no command: a usage error, as argparse's own are (exit 2)
        parser.print_help(sys.stderr)
        return 2
    try:
        rc = func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader stopped reading (`| head`, `| grep -q`): the command's own answer
        # where it had one (verify's 0/1/2 is decided before its report is printed), and
        # no second error at the interpreter's last flush of the closed pipe
        _quiet_stdout()
        return int(getattr(args, "exit_status", 0) or 0)
    return int(rc or 0)


def _quiet_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
