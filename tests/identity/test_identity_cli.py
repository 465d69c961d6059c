"""`mcp-gateway keys create|list|revoke`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mcp_gateway.cli import main
from mcp_gateway.identity.keys import KeyStore


def test_create_list_revoke(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "gw.db")
    assert main(["keys", "create", "My Agent", "agent-1", "reader,writer", "--db", db]) == 0
    out = capsys.readouterr().out
    key = [ln for ln in out.splitlines() if ln.startswith("mgw_")][0]
    kid = key.split("_")[1]
    assert "only time the key is shown" in out
    store = KeyStore(db)
    store.refresh()
    assert store.verify(key).roles == ("reader", "writer")

    assert main(["keys", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "id": kid,
            "name": "My Agent",
            "consumer": "agent-1",
            "roles": ["reader", "writer"],
            "created": listed[0]["created"],
            "revoked": None,
            "status": "active",
        }
    ]
    assert main(["keys", "list", "--db", db]) == 0
    table = capsys.readouterr().out
    assert kid in table and "agent-1" in table and key not in table and "mgw_" not in table

    assert main(["keys", "revoke", kid, "--db", db]) == 0
    assert "Revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "ffffffffffff", "--db", db]) == 1
    assert main(["keys", "list", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "revoked"


def test_create_json_and_console_script(tmp_path: Path) -> None:
    db = str(tmp_path / "gw.db")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_gateway.cli",
            "keys",
            "create",
            "n",
            "c",
            "",
            "--db",
            db,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["key"].startswith("mgw_" + d["id"] + "_") and d["roles"] == []


def test_list_missing_db_is_empty(tmp_path: Path, capsys) -> None:
    assert main(["keys", "list", "--db", str(tmp_path / "none.db")]) == 0
    assert "no API keys" in capsys.readouterr().out
    assert not (tmp_path / "none.db").exists()


def test_a_key_created_in_a_new_database_says_where_the_gateway_reads_keys(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # a mistyped --db created a new database and a key the gateway never sees: its client
    # got 401 "unknown API key" with nothing to say why
    monkeypatch.setenv("MCP_GATEWAY_AUDIT_DB", str(tmp_path / "audit.db"))
    typo = tmp_path / "audti.db"
    assert main(["keys", "create", "n", "c", "r", "--db", str(typo)]) == 0
    err = capsys.readouterr().err
    assert f"note: {typo} did not exist and was created" in err
    assert str(tmp_path / "audit.db") in err
    assert main(["keys", "create", "n", "c", "r", "--db", str(typo)]) == 0  # now it exists
    assert "note:" not in capsys.readouterr().err
    assert main(["keys", "create", "n", "c", "r"]) == 0  # the gateway's own: nothing to say
    assert "note:" not in capsys.readouterr().err
    assert main(["keys", "list", "--db", str(tmp_path / "none.db")]) == 0
    assert "(no such file)" in capsys.readouterr().out


def test_db_from_config_and_default_env(tmp_path: Path, capsys, monkeypatch) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("keys_db: keys.db\n")
    assert main(["keys", "create", "n", "c", "r", "--config", str(cfg)]) == 0
    assert (tmp_path / "keys.db").exists()
    capsys.readouterr()
    monkeypatch.setenv("MCP_GATEWAY_AUDIT_DB", str(tmp_path / "audit.db"))
    assert main(["keys", "create", "n", "c", "r"]) == 0
    assert (tmp_path / "audit.db").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys_db: [1]\n")
    assert main(["keys", "list", "--config", str(bad)]) == 2
    assert "bad.yaml:1: keys_db" in capsys.readouterr().err
