"""Logging of operational problems (a JWKS that cannot be fetched, a missing secret...).

mitmdump exits if anything is logged at ERROR before start-up has finished (its
``errorcheck`` addon). A missing secret or an unreachable JWKS is not a reason to refuse
to start: requests that need them are refused, with a clear answer. So such problems are
logged at WARNING until the gateway is running, and at ERROR afterwards.
"""

from __future__ import annotations

import logging

_live = False


def set_live(value: bool) -> None:
    global _live
    _live = value


def problem(log: logging.Logger, msg: str, *args: object) -> None:
    log.log(logging.ERROR if _live else logging.WARNING, msg, *args)
