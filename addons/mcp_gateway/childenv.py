"""The environment of the gateway's helper processes (``python -m mcp_gateway.…``)."""

from __future__ import annotations

import os
from pathlib import Path


def child_env() -> dict[str, str]:
    """This process's environment, with the directory holding this ``mcp_gateway`` first on
    ``PYTHONPATH`` when it is a checkout (not site-packages): the child runs the same code
    as the proxy, whatever the working directory or another copy on the path."""
    env = dict(os.environ)
    pkg_root = Path(__file__).resolve().parents[1]  # the directory holding mcp_gateway
    if pkg_root.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pkg_root), env.get("PYTHONPATH")) if p)
    return env
