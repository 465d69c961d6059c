"""Assemble the gateway's addons in pipeline order; used by addons/gateway.py."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from . import contentview, term
from .core import Gateway

log = logging.getLogger("mcp_gateway")

# (module, class): each concern's addon takes the shared pipeline in its constructor.
CONCERNS = [
    ("mcp_gateway.identity.addon", "IdentityAddon"),
    ("mcp_gateway.scan.addon", "ScanAddon"),
    ("mcp_gateway.audit.addon", "AuditAddon"),
]


def build_addons() -> list:
    contentview.register()
    gw = Gateway()
    addons: list = [gw]
    for modname, clsname in CONCERNS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name and modname.startswith(e.name):
                continue  # not built yet
            raise
        addons.append(getattr(mod, clsname)(gw.pipeline))
    addons.append(RepeatedOptionGuard())  # last: its load runs once every option exists
    term.guard_loggers()  # names and methods in log lines cannot drive the terminal
    return addons


class RepeatedOptionGuard:
    """``--set mcp_fail_mode=closed --set mcp_fail_mode=closed`` must stop start-up.

    mitmproxy keeps ``--set`` values of options a script has not added yet, and applies them
    once the script's ``load`` hooks have run; a single-valued option given twice then fails
    inside the script loader without a word, and mitmdump runs on as a plain proxy, with no
    scanning and no audit. This addon loads last, finds such values of the gateway's options,
    logs an error (mitmdump and mitmweb exit on an error logged at start-up) and keeps the
    last value so that the rest of the start-up goes on to report it."""

    def load(self, loader) -> None:
        try:
            opts = loader.master.options
            known = opts._options  # mitmproxy internals, guarded
            deferred = opts.deferred
        except AttributeError:
            return
        for name, value in list(deferred.items()):
            values = getattr(value, "val", None)
            spec = getattr(known.get(name), "typespec", None)
            if not name.startswith("mcp_") or not isinstance(values, list) or len(values) < 2:
                continue
            if spec is None or spec == Sequence[str]:
                continue  # a list option (mcp_rules): repeating it is how it is used
            log.error(
                "mcp-gateway: option %s is given %d times (%s); give it once",
                name,
                len(values),
                ", ".join(repr(v) for v in values),
            )
            deferred[name] = type(value)(values[-1:])
