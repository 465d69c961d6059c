"""Values from the wire on the operator's terminal: no markup, no control sequences."""

from __future__ import annotations

import io
import logging

from mcp_gateway import term
from rich.console import Console


def test_plain_escapes_controls_and_reordering():
    assert term.plain("get_weather") == "get_weather"
    assert term.plain("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert term.plain("x\u202eevil") == "x\\u202eevil"
    assert term.plain("\x9b31m") == "\\x9b31m"
    assert term.plain(42) == "42"


def test_text_is_never_markup():
    out = io.StringIO()
    con = Console(file=out, width=200, color_system=None)
    con.print(term.text("[/x]"), term.text("[link=https://evil.example]get_weather[/link]"))
    assert out.getvalue().split() == ["[/x]", "[link=https://evil.example]get_weather[/link]"]


def test_log_lines_are_escaped():
    log = logging.getLogger("mcp_gateway.test_term")
    term.guard_loggers()
    seen: list[str] = []

    class H(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    h = H()
    log.addHandler(h)
    try:
        log.warning("tool %s blocked", "\x1b]0;pwned\x07x")
    finally:
        log.removeHandler(h)
    assert seen == ["tool \\x1b]0;pwned\\x07x blocked"]
