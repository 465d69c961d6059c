"""Values from the wire on an operator's terminal: never markup, never control sequences.

Tool names, methods, ids, server names and scanned text are chosen by clients and servers.
Printed as rich markup, ``[/x]`` crashes the CLI and ``[link=…]get_weather[/link]`` shows a
forged name; printed raw, ESC and OSC sequences clear the screen or retitle the window, and
bidirectional overrides reorder what the operator reads. Every such value goes out through
``plain`` (a string) or ``text`` (a rich Text, never parsed as markup), with each control or
reordering character written as a visible escape (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

# C0 and C1 controls, DEL, and the bidirectional marks and overrides
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def plain(value: Any) -> str:
    """``value`` as a string with its control and reordering characters escaped."""
    s = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


def text(value: Any, style: str = "") -> Any:
    """A rich Text of ``plain(value)``: shown as it is, whatever brackets it holds."""
    from rich.text import Text

    return Text(plain(value), style=style)


def console(**kw: Any) -> Any:
    """A rich Console for the CLI. Rich ends the process with ``SystemExit(1)`` when stdout
    is a closed pipe (``mcp-gateway audit verify | head -1``), and 1 means "chain broken" to
    ``verify`` (and "errors" to ``rules check``): an intact trail read through ``head`` or
    ``grep -q`` exited 1. This one raises ``BrokenPipeError`` instead (stdout then points at
    /dev/null, so the interpreter's last flush is quiet), which the commands answer with
    their own exit status."""
    import os
    import sys

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
            raise BrokenPipeError

    return _Console(**kw)


class SafeLogFilter(logging.Filter):
    """Formats a record's message and escapes it, so that a name or method quoted in a log
    line cannot write control sequences to the terminal mitmdump logs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: leave it to the handler
            return True
        safe = plain(msg)
        if safe != msg or record.args:
            record.msg, record.args = safe, None
        return True


def guard_loggers(prefix: str = "mcp_gateway") -> None:
    """Attach ``SafeLogFilter`` to the package's loggers (a filter on a parent logger does
    not see its children's records, so each logger gets one). Idempotent."""
    names = [
        n for n in logging.Logger.manager.loggerDict if n == prefix or n.startswith(prefix + ".")
    ]
    for name in [prefix, *names]:
        lg = logging.getLogger(name)
        if not any(isinstance(f, SafeLogFilter) for f in lg.filters):
            lg.addFilter(SafeLogFilter())
