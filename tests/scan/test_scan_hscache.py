import hyperscan as hs
import pytest
from mcp_gateway.scan import hscache

EXPRS = [rb"ghp_[A-Za-z0-9]{36}", rb"(?i)password\s*="]


class NoCompile:
    """The hyperscan module, but compiling fails the test."""

    def __getattr__(self, name):
        return getattr(hs, name)

    def Database(self, *a, **k):  # noqa: N802
        pytest.fail("compiled again")


def matches(db, data: bytes) -> list:
    out: list = []
    on = lambda i, f, t, fl, ctx: out.append((i, t))  # noqa: E731
    db.scan(data, match_event_handler=on, scratch=hs.Scratch(db))
    return out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCP_GATEWAY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(hscache, "_ok", None)
    return tmp_path


def test_a_compiled_database_is_loaded_from_the_cache_the_next_time(cache, monkeypatch):
    data = b"x PASSWORD = ghp_" + b"a" * 36
    first = hscache.database(EXPRS, [1, 2], [0, 0])
    files = list(cache.rglob("*.hsdb"))
    assert len(files) == 1
    monkeypatch.setattr(hscache, "hs", NoCompile())
    again = hscache.database(EXPRS, [1, 2], [0, 0])
    assert matches(again, data) == matches(first, data) and matches(first, data)


def test_what_it_was_compiled_from_names_the_file(cache):
    hscache.database(EXPRS, [1, 2], [0, 0])
    hscache.database(EXPRS, [1, 2], [0, hs.HS_FLAG_SINGLEMATCH])
    hscache.database(EXPRS[:1], [1], [0])
    assert len(list(cache.rglob("*.hsdb"))) == 3


def test_a_broken_file_is_compiled_again_and_rewritten(cache):
    hscache.database(EXPRS, [1, 2], [0, 0])
    (f,) = cache.rglob("*.hsdb")
    f.write_bytes(b"not a database")
    db = hscache.database(EXPRS, [1, 2], [0, 0])
    assert matches(db, b"password=") and f.read_bytes() != b"not a database"


def test_no_cache_when_the_directory_is_empty_or_unusable(tmp_path, monkeypatch):
    monkeypatch.setenv("MCP_GATEWAY_CACHE_DIR", "")
    assert matches(hscache.database(EXPRS, [1, 2], [0, 0]), b"password=")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MCP_GATEWAY_CACHE_DIR", str(blocker / "sub"))  # cannot be made
    assert matches(hscache.database(EXPRS, [1, 2], [0, 0]), b"password=")
    assert list(tmp_path.rglob("*.hsdb")) == []


def test_check_remembers_successes_only(cache, monkeypatch):
    hscache.check(rb"abc\d+", 0)
    with pytest.raises(hs.error):
        hscache.check(rb"(?<=a)b", 0)  # a look-behind: not in Hyperscan's normal mode
    monkeypatch.setattr(hscache, "_ok", None)  # a new process: read from the file
    monkeypatch.setattr(hscache, "hs", NoCompile())
    hscache.check(rb"abc\d+", 0)
    with pytest.raises(pytest.fail.Exception):
        hscache.check(rb"(?<=a)b", 0)  # a failure is not remembered: compiled again


def test_a_directory_others_may_write_to_is_not_used(cache):
    hscache.database(EXPRS, [1, 2], [0, 0])
    (d,) = [p for p in cache.iterdir() if p.is_dir()]
    assert d.stat().st_mode & 0o777 == 0o700
    d.chmod(0o777)
    for f in d.glob("*.hsdb"):
        f.write_bytes(b"planted")
    assert matches(hscache.database(EXPRS, [1, 2], [0, 0]), b"password=")
    assert all(f.read_bytes() == b"planted" for f in d.glob("*.hsdb"))  # not even rewritten


def test_what_a_killed_write_left_behind_is_removed_once_old(cache, monkeypatch):
    import os
    import time

    hscache.database(EXPRS, [1, 2], [0, 0])
    (d,) = [p for p in cache.iterdir() if p.is_dir()]
    old, fresh = d / ".tmp-old", d / ".tmp-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    monkeypatch.setattr(hscache, "_swept", set())
    hscache.database(EXPRS, [1, 2], [0, 0])
    assert not old.exists() and fresh.exists()  # (a write in progress is left alone)


def test_a_database_unused_for_a_month_is_removed_and_one_in_use_is_kept(cache, monkeypatch):
    import os
    import time

    hscache.database(EXPRS, [1, 2], [0, 0])
    (used,) = cache.rglob("*.hsdb")
    hscache.database(EXPRS[:1], [1], [0])
    (unused,) = set(cache.rglob("*.hsdb")) - {used}
    long_ago = time.time() - 40 * 86400
    for f in (used, unused):
        os.utime(f, (long_ago, long_ago))
    hscache.database(EXPRS, [1, 2], [0, 0])  # loaded: its time is refreshed
    assert used.stat().st_mtime > long_ago + 86400
    monkeypatch.setattr(hscache, "_swept", set())  # a later start sweeps again
    hscache.database(EXPRS, [1, 2], [0, 0])
    assert used.exists() and not unused.exists()


def test_another_build_s_directory_is_removed_once_unused_for_a_month(cache, monkeypatch):
    """An upgrade of Hyperscan or its binding starts a new directory; the old one's
    databases are swept as they age, and the emptied directory goes with them."""
    import os
    import time

    long_ago = time.time() - 40 * 86400
    old = cache / "hyperscan-0123456789ab"
    old.mkdir(mode=0o700)
    stale, recent = old / "a.hsdb", old / "b.hsdb"
    stale.write_bytes(b"x")
    recent.write_bytes(b"y")
    (old / "compiles.txt").write_text("x\n")
    os.utime(stale, (long_ago, long_ago))
    os.utime(old, (long_ago, long_ago))
    hscache.database(EXPRS, [1, 2], [0, 0])
    assert not stale.exists() and recent.exists()  # (another process may still use it)
    os.utime(recent, (long_ago, long_ago))
    os.utime(old, (long_ago, long_ago))
    monkeypatch.setattr(hscache, "_swept", set())  # a later start sweeps again
    hscache.database(EXPRS, [1, 2], [0, 0])
    assert not old.exists()
    assert len(list(cache.glob("hyperscan-*"))) == 1  # this build's own stays
