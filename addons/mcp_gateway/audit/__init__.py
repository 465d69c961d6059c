"""The audit trail: every MCP message in SQLite, hash-chained, queryable.

Wire it with ``AuditAddon(pipeline)`` (:mod:`.addon`); the CLI lives in :mod:`.cli`.
Names are imported lazily so that the CLI does not pay for importing mitmproxy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuditAddon": ".addon",
    "AuditStage": ".stage",
    "AuditWriter": ".writer",
    "AuditError": ".writer",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(name)
