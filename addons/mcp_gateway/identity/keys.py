"""Gateway-issued API keys, stored as salted hashes in the ``api_keys`` SQLite table.

A key looks like ``mgw_<id>_<secret>``: ``id`` is 12 hex characters (shown by
``keys list``), ``secret`` is 256 random bits, base64url. Only
``pbkdf2-sha256(secret, per-key salt)`` is stored. The secret has 256 bits of entropy,
so the key derivation does not need to be slow to resist offline guessing; 10,000
iterations (about 3 ms) keeps a flood of wrong keys from stalling the event loop.

The gateway never reads SQLite on the request path: :class:`KeyStore` keeps an
in-memory snapshot that :meth:`KeyStore.refresh` (called about once a second from the
identity watcher thread) reloads when ``PRAGMA data_version`` says another connection
(``mcp-gateway keys revoke``) changed the database. A verified key is cached by the
SHA-256 of the presented key, and every use re-checks the snapshot, so revocation
takes effect within about a second, without a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .logutil import problem

log = logging.getLogger("mcp_gateway.identity")

PREFIX = "mgw_"
ITERATIONS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    consumer TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '',
    algo TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created REAL NOT NULL,
    revoked REAL
)
"""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    consumer: str
    roles: tuple[str, ...]
    algo: str
    salt: bytes
    hash: bytes
    created: float
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "consumer": self.consumer,
            "roles": list(self.roles),
            "created": self.created,
            "revoked": self.revoked,
            "status": "active" if self.active else "revoked",
        }


class KeyRejected(Exception):
    """A presented key was refused; ``str()`` is safe to show (never contains the key)."""


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def split_key(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX):
        return None
    parts = token[len(PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    kid, secret = parts
    if len(kid) != 12 or any(c not in "0123456789abcdef" for c in kid):
        return None
    return kid, secret


def _derive(secret: str, salt: bytes, algo: str) -> bytes:
    name, _, iters = algo.partition("$")
    if name != "pbkdf2-sha256":
        raise ValueError(f"unknown key hash algorithm {algo!r}")
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, int(iters))


def fast_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=2.0, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 2000")
    return conn


def _row(r: tuple) -> KeyRecord:
    roles = tuple(x for x in (r[3] or "").split(",") if x)
    return KeyRecord(r[0], r[1], r[2], roles, r[4], bytes(r[5]), bytes(r[6]), r[7], r[8])


_COLS = "id, name, consumer, roles, algo, salt, hash, created, revoked"


# -- administration (CLI) -----------------------------------------------------------
def create_key(
    db: str | Path, name: str, consumer: str, roles: list[str] | tuple[str, ...]
) -> tuple[str, KeyRecord]:
    """Create a key; returns (the full key, shown once; its record)."""
    roles = tuple(r.strip() for r in roles if r.strip())
    for r in roles:
        if "," in r:
            raise ValueError(f"role {r!r} contains a comma")
    if not name.strip() or not consumer.strip():
        raise ValueError("name and consumer must not be empty")
    kid = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = os.urandom(16)
    algo = f"pbkdf2-sha256${ITERATIONS}"
    digest = _derive(secret, salt, algo)
    rec = KeyRecord(kid, name, consumer, roles, algo, salt, digest, time.time(), None)
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    # A new file is made readable by its owner only (SQLite would make it 0644 under the
    # usual umask, and the -wal/-shm after it); an existing one keeps its mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = _connect(db)
    try:
        with conn:
            conn.execute(SCHEMA)
            conn.execute(
                f"INSERT INTO api_keys ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    rec.id,
                    rec.name,
                    rec.consumer,
                    ",".join(roles),
                    algo,
                    salt,
                    digest,
                    rec.created,
                    None,
                ),
            )
    finally:
        conn.close()
    return f"{PREFIX}{kid}_{secret}", rec


def list_keys(db: str | Path) -> list[KeyRecord]:
    if not Path(db).exists():
        return []
    conn = _connect(db, readonly=True)
    try:
        try:
            rows = conn.execute(f"SELECT {_COLS} FROM api_keys ORDER BY created").fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            raise
    finally:
        conn.close()
    return [_row(r) for r in rows]


def revoke_key(db: str | Path, key_id: str) -> KeyRecord | None:
    """Revoke by id (or by the full key). Returns the record, None if unknown."""
    parts = split_key(key_id)
    if parts:
        key_id = parts[0]
    if not Path(db).exists():
        return None
    conn = _connect(db)
    try:
        with conn:
            conn.execute(SCHEMA)
            conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), key_id),
            )
            r = conn.execute(f"SELECT {_COLS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    finally:
        conn.close()
    return _row(r) if r else None


# -- verification (gateway) ---------------------------------------------------------
class KeyStore:
    """In-memory snapshot of ``api_keys`` plus a verification cache."""

    CACHE_TTL = 600.0  # seconds a verified key stays verified (revocation is checked on every use)
    NEG_TTL = 10.0  # seconds a wrong key is remembered as wrong
    MAX_CACHE = 50_000

    def __init__(self, db: str | Path) -> None:
        self.db = os.path.expanduser(str(db))
        self._keys: dict[str, KeyRecord] = {}
        self._ok: dict[bytes, tuple[str, float]] = {}  # sha256(key) -> (key id, verified until)
        self._bad: dict[bytes, float] = {}  # sha256(key) -> remembered until
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._lock = threading.Lock()
        self.loaded = False
        self.error: str | None = None

    # called from the watcher thread (and once at configure time)
    def refresh(self) -> bool:
        """Reload the snapshot if the database changed. Returns True if reloaded."""
        with self._lock:
            try:
                if self._conn is None:
                    if not Path(self.db).exists():
                        if self._keys:
                            self._keys = {}
                            return True
                        return False
                    self._conn = _connect(self.db, readonly=True)
                    self._version = None
                v = self._conn.execute("PRAGMA data_version").fetchone()[0]
                if v == self._version and self.loaded:
                    return False
                try:
                    rows = self._conn.execute(f"SELECT {_COLS} FROM api_keys").fetchall()
                except sqlite3.OperationalError as e:
                    if "no such table" not in str(e):
                        raise
                    rows = []
                self._keys = {r.id: r for r in map(_row, rows)}
                self._version = v
                self.loaded = True
                if self.error:
                    log.info("mcp-gateway: key store %s readable again", self.db)
                self.error = None
                return True
            except sqlite3.Error as e:
                if self.error != str(e):
                    problem(log, "mcp-gateway: cannot read API keys from %s: %s", self.db, e)
                self.error = str(e)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def get(self, key_id: str) -> KeyRecord | None:
        return self._keys.get(key_id)

    def verify(self, token: str, fast: bytes | None = None) -> KeyRecord:
        """The record of a valid, active key; raises KeyRejected with a safe reason."""
        fast = fast or fast_hash(token)
        now = time.monotonic()
        hit = self._ok.get(fast)
        if hit is not None and hit[1] > now:
            rec = self._keys.get(hit[0])
            if rec is None:
                raise KeyRejected("unknown API key")
            if not rec.active:
                raise KeyRejected(f"API key {rec.id} is revoked")
            return rec
        bad = self._bad.get(fast)
        if bad is not None and bad > now:
            raise KeyRejected("invalid API key")
        parts = split_key(token)
        if parts is None:
            raise KeyRejected("malformed API key")
        kid, secret = parts
        rec = self._keys.get(kid)
        if rec is None:  # not cached as bad: it may be a key created a moment ago
            raise KeyRejected("unknown API key")
        if not rec.active:
            raise KeyRejected(f"API key {rec.id} is revoked")
        try:
            digest = _derive(secret, rec.salt, rec.algo)
        except ValueError:
            raise KeyRejected(f"API key {rec.id} has an unsupported hash") from None
        if not hmac.compare_digest(digest, rec.hash):
            self._remember_bad(fast, now)
            raise KeyRejected("invalid API key")
        if len(self._ok) >= self.MAX_CACHE:
            self._ok.clear()
        self._ok[fast] = (rec.id, now + self.CACHE_TTL)
        return rec

    def _remember_bad(self, fast: bytes, now: float) -> None:
        if len(self._bad) >= self.MAX_CACHE:
            self._bad.clear()
        self._bad[fast] = now + self.NEG_TTL
