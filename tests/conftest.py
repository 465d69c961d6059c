"""Suite-wide fixtures.

* No test may touch the user's real gateway database (~/.mitmproxy/...).
* ``mcp2_python``: a Python with the mcp 2.x SDK (the 2026-07-28 era), which cannot share a
  virtualenv with the 1.x SDK the rest of the suite uses; installed once into ``.venv/mcp2``.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# tests run with --import-mode=importlib: make the shared helper modules importable
sys.path.insert(0, str(Path(__file__).parent))

MCP2 = "mcp==2.3.0"


@pytest.fixture(scope="session", autouse=True)
def _private_default_audit_db():
    with tempfile.TemporaryDirectory(prefix="mcp-gateway-tests-") as d:
        # (and the Hyperscan cache: the run's own, shared with the gateways it starts)
        env = {
            "MCP_GATEWAY_AUDIT_DB": os.path.join(d, "default-audit.db"),
            "MCP_GATEWAY_CACHE_DIR": os.path.join(d, "cache"),
        }
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="session")
def mcp2_python() -> Path:
    side = Path(sys.prefix) / "mcp2"
    py = side / "bin" / "python"
    stamp = side / "installed"
    if not (py.exists() and stamp.exists() and stamp.read_text() == MCP2):
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(side)], check=True, timeout=120
        )
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", MCP2],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            pytest.fail(
                f"could not install {MCP2} into {side}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
            )
        stamp.write_text(MCP2)
    return py


@pytest.fixture(autouse=True)
def _forget_injected_upstream_credentials():
    """The upstream credentials the gateway injected are remembered process-wide (they
    are redacted in every server-to-client message): a test's must not leak into the next."""
    yield
    from mcp_gateway import secretref

    secretref.forget_injected()
