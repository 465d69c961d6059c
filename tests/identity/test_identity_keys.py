"""API keys: created once, stored hashed, verified from memory, revoked without restart."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from mcp_gateway.identity.keys import (
    KeyRejected,
    KeyStore,
    create_key,
    list_keys,
    revoke_key,
    split_key,
)


def test_create_stores_only_a_salted_hash(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "CI agent", "agent-1", ["reader", "writer"])
    kid, secret = split_key(key)
    assert key.startswith("mgw_") and kid == rec.id and len(secret) >= 40
    rows = sqlite3.connect(db).execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    dump = repr(rows).encode()
    assert secret.encode() not in dump and key.encode() not in dump
    # two keys with the same... everything get different salts
    key2, rec2 = create_key(db, "CI agent", "agent-1", ["reader"])
    assert rec2.salt != rec.salt and rec2.id != rec.id
    assert [r.id for r in list_keys(db)] == [rec.id, rec2.id]


def test_verify_valid_wrong_malformed_unknown(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", ["admin"])
    store = KeyStore(db)
    assert store.refresh()
    got = store.verify(key)
    assert (got.id, got.consumer, got.roles) == (rec.id, "alice", ("admin",))
    assert store.verify(key).id == rec.id  # cached path
    kid, secret = split_key(key)
    with pytest.raises(KeyRejected, match="invalid API key"):
        store.verify(f"mgw_{kid}_{secret[:-2]}xx")
    with pytest.raises(KeyRejected, match="malformed"):
        store.verify("mgw_nothex_abc")
    with pytest.raises(KeyRejected, match="unknown"):
        store.verify(f"mgw_{'0' * 12}_{secret}")
    store.close()


def test_revocation_seen_by_a_running_store_without_restart(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    store = KeyStore(db)
    store.refresh()
    assert store.verify(key).id == rec.id  # now cached as valid
    assert not store.refresh()  # nothing changed: no reload
    assert revoke_key(db, rec.id).revoked is not None  # another connection, like the CLI
    assert store.refresh()  # PRAGMA data_version moved
    with pytest.raises(KeyRejected, match="revoked"):
        store.verify(key)
    store.close()


def test_key_created_after_start_is_accepted_after_refresh(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    store = KeyStore(db)
    assert not store.refresh()  # no database yet: no keys, nothing created
    assert not db.exists()
    key, _ = create_key(db, "late", "bob", [])
    with pytest.raises(KeyRejected):
        store.verify(key)
    store.refresh()
    assert store.verify(key).consumer == "bob"
    store.close()


def test_revoke_unknown_and_by_full_key(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    key, rec = create_key(db, "a", "alice", [])
    assert revoke_key(db, "000000000000") is None
    assert revoke_key(db, key).id == rec.id  # the full key works too
    assert not list_keys(db)[0].active


def test_verification_is_fast_after_first_use(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    key, _ = create_key(db, "a", "alice", [])
    store = KeyStore(db)
    store.refresh()
    store.verify(key)
    t = time.perf_counter()
    for _ in range(10_000):
        store.verify(key)
    per_call = (time.perf_counter() - t) / 10_000
    assert per_call < 50e-6, per_call
    store.close()
