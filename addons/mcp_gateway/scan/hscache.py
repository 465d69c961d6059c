"""Hyperscan compiles, kept on disk between runs.

Hyperscan compiles the shipped packs in several seconds on a small VM (each prefilter once
alone, to check the rule files and name a bad one; the engine's databases; the per-rule
gates): most of the gateway's start-up. A compiled database is stored in the cache
directory under a hash of everything it was compiled from (the Hyperscan build, the mode,
the expressions, their ids and flags) and loaded instead of compiled when present; that a
single expression compiles is remembered the same way, as one hash a line. Only successes
are stored. A file that cannot be read or loaded is compiled again and rewritten; a
directory that cannot be written is not used. (Like ``__pycache__``, whoever can write
there can change what the gateway runs: it is the user's own cache directory.)

``MCP_GATEWAY_CACHE_DIR``: the directory (default ``$XDG_CACHE_HOME/mcp-gateway``, else
``~/.cache/mcp-gateway``); set but empty: no cache. Its ``hyperscan-…`` directory is made
private (0700) and not used when another user owns it or others may write to it. A
database not loaded for 30 days is removed (the rule files it was compiled from changed).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

import hyperscan as hs

__all__ = ["check", "database"]

_lock = threading.Lock()
_ok: set[str] | None = None  # hashes of expressions known to compile (the ok file's)
_ok_dir: Path | None = None
_build: str | None = None


def _hs_build() -> str:
    """The Hyperscan library and binding this process runs (databases are tied to them)."""
    global _build
    if _build is None:
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(expressions=[b"x"], ids=[0], elements=1, flags=[0])
        _build = f"{getattr(hs, '__version__', '?')}|{db.info().decode(errors='replace')}"
    return _build


def _dir() -> Path | None:
    env = os.environ.get("MCP_GATEWAY_CACHE_DIR")
    tag = hashlib.sha256(_hs_build().encode()).hexdigest()[:12]
    try:
        if env is not None:
            if not env.strip():
                return None
            base = Path(env).expanduser()
        else:
            xdg = os.environ.get("XDG_CACHE_HOME")
            base = (Path(xdg) if xdg else Path.home() / ".cache") / "mcp-gateway"
        d = base / f"hyperscan-{tag}"
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except (OSError, RuntimeError):  # (RuntimeError: no home directory to be found)
        return None
    # only a directory of this user's that nobody else can write: what is loaded from it
    # is run
    if st.st_uid != os.getuid() or st.st_mode & 0o022 or not os.access(d, os.W_OK | os.X_OK):
        return None
    if d not in _swept:
        _swept.add(d)
        _sweep(d)
    return d


_swept: set[Path] = set()
_TMP_MAX_AGE = 3600.0  # seconds: a write that old was killed half-way
# A database not loaded for this long belongs to rules no longer in use (every edit of a
# rule file makes new ones): removed. One that is loaded has its time refreshed (daily).
_DB_MAX_AGE = 30 * 86400.0
_TOUCH_AFTER = 86400.0
_OK_MAX_BYTES = 4 << 20  # the list of expressions known to compile: started afresh past it


def _sweep(d: Path) -> None:
    """Remove what killed writes left behind, databases long unused, and an overgrown list
    of checked expressions (once per directory and process); and the directories of other
    Hyperscan builds (an upgrade of the library or its binding) once nothing in them was
    loaded for as long."""
    now = time.time()
    _sweep_files(d, now)
    try:
        if (d / "compiles.txt").stat().st_size > _OK_MAX_BYTES:
            (d / "compiles.txt").unlink()
    except OSError:
        pass
    try:
        siblings = [p for p in d.parent.glob("hyperscan-*") if p != d]
    except OSError:
        return
    uid = os.getuid()
    for other in siblings:
        try:
            st = other.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
                continue  # (a link, or another user's: not ours to clean)
            _sweep_files(other, now)
            if not any(other.glob("*.hsdb")) and now - st.st_mtime > _DB_MAX_AGE:
                for f in other.iterdir():
                    f.unlink()
                other.rmdir()
        except OSError:
            continue


def _sweep_files(d: Path, now: float) -> None:
    for pattern, max_age in ((".tmp-*", _TMP_MAX_AGE), ("*.hsdb", _DB_MAX_AGE)):
        try:
            for f in d.glob(pattern):
                try:
                    if now - f.stat().st_mtime > max_age:
                        f.unlink()
                except OSError:
                    pass
        except OSError:
            pass


def _touch(path: Path) -> None:
    """Mark a database as in use (see _DB_MAX_AGE)."""
    try:
        if time.time() - path.stat().st_mtime > _TOUCH_AFTER:
            os.utime(path)
    except OSError:
        pass


def _key(*parts: object) -> str:
    return hashlib.sha256(repr((_hs_build(), *parts)).encode("utf-8", "surrogatepass")).hexdigest()


def _write(path: Path, data: bytes) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # a full disk, a read-only directory: compiled again next time


def database(
    expressions: list[bytes], ids: list[int], flags: list[int], mode: int = hs.HS_MODE_BLOCK
) -> hs.Database:
    """``hs.Database(mode).compile(...)`` of these, from the cache when it holds it.
    Raises ``hs.error`` as the compile does."""
    d = _dir()
    path = d / f"{_key(mode, expressions, ids, flags)}.hsdb" if d is not None else None
    if path is not None:
        try:
            db = hs.loadb(path.read_bytes(), mode)
            _touch(path)
            return db
        except FileNotFoundError:
            pass
        except Exception:  # noqa: BLE001 (unreadable, or no database of this build)
            pass  # compiled and rewritten
    db = hs.Database(mode=mode)
    db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags)
    if path is not None:
        _write(path, hs.dumpb(db))
    return db


def check(expression: bytes, flags: int = 0) -> None:
    """Whether Hyperscan compiles ``expression`` alone: returns, or raises ``hs.error``."""
    global _ok, _ok_dir
    key = _key("check", expression, flags)
    with _lock:
        d = _dir()
        if _ok is None or _ok_dir != d:
            _ok, _ok_dir = set(), d
            if d is not None:
                try:
                    _ok.update((d / "compiles.txt").read_text("ascii").split())
                except (OSError, UnicodeDecodeError):
                    pass
        if key in _ok:
            return
    hs.Database(mode=hs.HS_MODE_BLOCK).compile(
        expressions=[expression], ids=[0], elements=1, flags=[flags]
    )
    with _lock:
        _ok.add(key)
        if d is not None:
            try:
                with open(d / "compiles.txt", "a", encoding="ascii") as f:
                    f.write(key + "\n")  # (one short line: appends do not interleave)
            except OSError:
                pass
