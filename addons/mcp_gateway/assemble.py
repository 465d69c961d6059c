"""Assemble the gateway's addons in pipeline order; used by addons/gateway.py."""

from __future__ import annotations

import importlib
import logging

from . import contentview
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
    return addons
