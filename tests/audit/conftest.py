"""Fixtures for the audit tests; the helpers live in audit_testlib.py (importable by name)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from audit_testlib import populate  # noqa: E402


@pytest.fixture
def audit_db(tmp_path):
    path = tmp_path / "audit.db"
    info = populate(path)
    info["path"] = str(path)
    return info
