"""Suite-wide: no test may touch the user's real gateway database (~/.mitmproxy/...)."""

import os
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_default_audit_db():
    with tempfile.TemporaryDirectory(prefix="mcp-gateway-tests-") as d:
        old = os.environ.get("MCP_GATEWAY_AUDIT_DB")
        os.environ["MCP_GATEWAY_AUDIT_DB"] = os.path.join(d, "default-audit.db")
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("MCP_GATEWAY_AUDIT_DB", None)
            else:
                os.environ["MCP_GATEWAY_AUDIT_DB"] = old
