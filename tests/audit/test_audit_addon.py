"""AuditAddon with mitmproxy's taddons: options, validation, stage wiring, done() flush."""

from __future__ import annotations

import os
import sqlite3

import orjson
import pytest
from audit_testlib import exchange, finding, request, rows
from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.addon import AuditAddon
from mcp_gateway.message import Action
from mcp_gateway.pipeline import ORDER_AUDIT, Pipeline
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow


@pytest.fixture(autouse=True)
def default_db(tmp_path, monkeypatch):
    """taddons configures every option at registration: keep the default DB out of $HOME."""
    p = tmp_path / "default" / "audit.db"
    monkeypatch.setenv("MCP_GATEWAY_AUDIT_DB", str(p))
    return p


@pytest.fixture
def addon():
    a = AuditAddon(Pipeline())
    yield a
    a.done()


def test_options_and_defaults(addon, default_db):
    with taddons.context(addon) as tctx:
        o = tctx.options
        assert o.mcp_audit_db == str(default_db)  # $MCP_GATEWAY_AUDIT_DB, else ~/.mitmproxy/...
        assert o.mcp_audit_queue_size == 50_000
        assert o.mcp_audit_on_full == "block"
        assert o.mcp_audit_store_payloads is False
        # (the option bounds stored payloads too, in KiB, as the README says: its help said
        # only "events", and `mitmdump --options` readers never learnt of the budget)
        help_ = " ".join(o._options["mcp_audit_queue_size"].help.split())
        assert "KiB" in help_ and "mcp_audit_store_payloads" in help_


def test_configure_registers_the_stage_and_done_flushes(addon, tmp_path):
    db = tmp_path / "sub" / "audit.db"  # missing directories are created
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        stage = addon.pipeline.get("audit")
        assert stage is not None and stage.order == ORDER_AUDIT and stage.always is True
        for i in range(25):
            addon.pipeline.run(request(exchange(flow_id=f"f{i}"), i))
        addon.done()
    assert addon.pipeline.get("audit") is None
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 25
    assert [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")] == [
        "start",
        "stop",
    ]
    assert chain.verify(sqlite3.connect(db), chain.head_path(str(db))).ok


def test_blocked_messages_are_recorded(addon, tmp_path):
    """always=True: a message an earlier stage blocked still reaches the audit."""
    db = tmp_path / "a.db"

    class Blocker:
        name, order = "policy", 300

        def process(self, msg):
            msg.block(-32063, "forbidden tool", stage="policy")

    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        addon.pipeline.add(Blocker())
        m = addon.pipeline.run(request(exchange(), 1))
        assert m.action is Action.BLOCK
        addon.done()
    r = rows(db, "SELECT action, refusal_code, refusal_message, refusal_stage FROM messages")
    assert r == [("block", -32063, "forbidden tool", "policy")]


def test_flow_id_and_http_status_come_from_the_flow(addon, tmp_path):
    db = tmp_path / "a.db"
    f = tflow.tflow(resp=True)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        ex = exchange(flow_id=f.id, flow=f)
        addon.pipeline.run(request(ex, 1))
        addon.done()
    assert rows(db, "SELECT flow_id, status FROM messages") == [(f.id, 200)]


def test_exchange_without_messages_gets_a_row(addon, tmp_path):
    from mcp_gateway.message import Refusal

    db = tmp_path / "a.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        ex = exchange(flow_id="get-stream", http_method="GET")
        ex.refusal = Refusal(-32062, "missing credential", 401, stage="identify")
        addon.pipeline.start_exchange(ex)
        addon.pipeline.end_exchange(ex)
        ex2 = exchange(flow_id="post")
        addon.pipeline.run(request(ex2, 1))
        addon.pipeline.end_exchange(ex2)  # had a message: no extra row
        addon.done()
    r = rows(db, "SELECT flow_id, kind, http_method, action, refusal_code FROM messages")
    assert r == [
        ("get-stream", "exchange", "GET", "block", -32062),
        ("post", "request", "POST", "pass", None),
    ]


def _file_parent(p):
    (p / "f").write_text("x")
    return str(p / "f" / "a.db")


def _directory(p):
    (p / "d").mkdir()
    return str(p / "d")


def _corrupt(p):
    (p / "c.db").write_bytes(b"garbage" * 500)
    return str(p / "c.db")


@pytest.mark.parametrize(
    "make, expect",
    [
        (_file_parent, "cannot create the directory"),
        (_directory, "is a directory"),
        (_corrupt, "corrupt"),
    ],
)
def test_bad_paths_are_options_errors(addon, tmp_path, default_db, make, expect):
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match=expect) as e:
            tctx.configure(addon, mcp_audit_db=make(tmp_path))
        # one message at start-up, not the writer's error and then the same text again
        assert e.value.__cause__ is None and e.value.__suppress_context__
        # the option is rolled back and the previous database stays in use
        assert tctx.options.mcp_audit_db == str(default_db)
        assert addon.path == str(default_db) and addon.pipeline.get("audit") is not None


def test_unwritable_directory(addon, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with taddons.context(addon) as tctx:
            with pytest.raises(exceptions.OptionsError, match="not writable"):
                tctx.configure(addon, mcp_audit_db=str(d / "a.db"))
    finally:
        d.chmod(0o700)


def test_locked_database_is_an_options_error(addon, tmp_path):
    db = tmp_path / "a.db"
    from mcp_gateway.audit.writer import open_database

    open_database(str(db)).close()
    locker = sqlite3.connect(str(db), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with taddons.context(addon) as tctx:
            with pytest.raises(exceptions.OptionsError, match="locked"):
                tctx.configure(addon, mcp_audit_db=str(db))
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def test_newer_schema_is_an_options_error(addon, tmp_path):
    db = tmp_path / "a.db"
    from mcp_gateway.audit.writer import open_database

    c = open_database(str(db))
    schema.set_meta(c, "schema_version", "7")
    c.close()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="schema version 7"):
            tctx.configure(addon, mcp_audit_db=str(db))


@pytest.mark.parametrize("opt, value", [("mcp_audit_on_full", "wait"), ("mcp_audit_queue_size", 0)])
def test_invalid_option_values(addon, opt, value):
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match=opt):
            tctx.configure(addon, **{opt: value})


def test_empty_path_disables_and_switching_reopens(addon, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(a))
        addon.pipeline.run(request(exchange(flow_id="one"), 1))
        tctx.configure(addon, mcp_audit_db="")
        assert addon.pipeline.get("audit") is None and addon.writer is None
        addon.pipeline.run(request(exchange(flow_id="unrecorded"), 2))
        tctx.configure(addon, mcp_audit_db=str(b), mcp_audit_on_full="drop")
        assert addon.stage.on_full == "drop"
        addon.pipeline.run(request(exchange(flow_id="two"), 3))
        addon.done()
    assert rows(a, "SELECT flow_id FROM messages") == [("one",)]
    assert rows(b, "SELECT flow_id FROM messages") == [("two",)]


def test_store_payloads_stores_redacted_payloads_only_when_asked(addon, tmp_path):
    db = tmp_path / "a.db"
    secret = "AKIAIOSFODNN7EXAMPLE"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        addon.pipeline.run(request(exchange(flow_id="off"), 1, args={"text": "plain"}))
        tctx.configure(addon, mcp_audit_store_payloads=True)
        addon.pipeline.run(request(exchange(flow_id="on"), 2, args={"text": "plain"}))
        # a finding the act stage did not redact (action "log", or a blocked message):
        # the stored copy is masked anyway, the forwarded payload is untouched
        m = request(exchange(flow_id="secret"), 3, args={"text": f"key={secret} end"})
        m.findings.append(finding(start=4, end=24))
        addon.pipeline.run(m)
        assert secret in m.payload["params"]["arguments"]["text"]
        addon.done()
    got = dict(rows(db, "SELECT flow_id, payload FROM messages"))
    assert got["off"] is None
    assert orjson.loads(got["on"])["params"]["arguments"] == {"text": "plain"}
    stored = orjson.loads(got["secret"])
    assert stored["params"]["arguments"]["text"] == "key=AKIA…MPLE end"
    for p in (db, tmp_path / "a.db-wal"):
        if p.exists():
            assert secret.encode() not in p.read_bytes()


def test_unlocatable_finding_withholds_the_payload(addon, tmp_path):
    db = tmp_path / "a.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db), mcp_audit_store_payloads=True)
        m = request(exchange(), 1, args={"text": "x"})
        m.findings.append(finding(location="/params/nowhere"))
        addon.pipeline.run(m)
        addon.done()
    (payload,) = rows(db, "SELECT payload FROM messages")[0]
    assert "withheld" in orjson.loads(payload)


def test_the_writer_runs_in_a_child_process_unless_told_otherwise(
    addon, tmp_path, monkeypatch, caplog
):
    import sys

    from mcp_gateway.audit.proc import ProcessWriter
    from mcp_gateway.audit.writer import AuditWriter

    db = tmp_path / "audit.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db))
        assert isinstance(addon.writer, ProcessWriter) and addon.writer.running
        tctx.configure(addon, mcp_audit_process=False)
        assert isinstance(addon.writer, AuditWriter) and addon.writer.running
        # a child that cannot start (a frozen mitmdump binary has no `python -m`): the thread
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        tctx.configure(addon, mcp_audit_process=True)
        assert isinstance(addon.writer, AuditWriter) and addon.writer.running
        assert any("writing from a thread instead" in r.getMessage() for r in caplog.records)
        addon.done()
    events = [e for (e,) in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    # each writer ends its chain before the next one starts: no false `foreign` event
    assert events == ["start", "stop"] * 3
    assert chain.verify(sqlite3.connect(db), chain.head_path(str(db))).ok


def test_a_failed_reopen_of_the_same_file_rolls_back_to_the_old_writer(
    addon, tmp_path, monkeypatch
):
    from mcp_gateway.audit.writer import AuditError, AuditWriter

    db = tmp_path / "audit.db"
    real_open, calls = AuditWriter.open, []

    def open_once_failing(self):
        calls.append(self.queue_size)
        if len(calls) == 2:  # the reopen with the new queue size
            raise AuditError("disk gone")
        real_open(self)

    monkeypatch.setattr(AuditWriter, "open", open_once_failing)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db), mcp_audit_process=False)
        addon.pipeline.run(request(exchange(flow_id="one"), 1))
        with pytest.raises(exceptions.OptionsError, match="disk gone"):
            tctx.options.update(mcp_audit_queue_size=10)
        assert tctx.options.mcp_audit_queue_size == 50_000  # rolled back, writer open again
        assert addon.writer is not None and addon.writer.running
        assert addon.writer.queue_size == 50_000
        addon.pipeline.run(request(exchange(flow_id="two"), 2))
        addon.done()
    assert rows(db, "SELECT flow_id FROM messages ORDER BY seq") == [("one",), ("two",)]


def test_a_reopen_that_cannot_open_the_file_at_all_says_so(addon, tmp_path, monkeypatch, caplog):
    from mcp_gateway.audit.writer import AuditError, AuditWriter

    db = tmp_path / "audit.db"
    real_open, calls = AuditWriter.open, []

    def failing_from_the_second_call(self):
        calls.append(self.queue_size)
        if len(calls) >= 2:
            raise AuditError("disk gone")
        real_open(self)

    monkeypatch.setattr(AuditWriter, "open", failing_from_the_second_call)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db), mcp_audit_process=False)
        with pytest.raises(exceptions.OptionsError, match="disk gone"):
            tctx.options.update(mcp_audit_queue_size=10)
        assert calls[1:3] == [10, 50_000]  # the new settings, then the old ones again
        assert "messages are NOT audited" in caplog.text
        addon.done()


def test_a_trail_done_never_closed_is_closed_at_interpreter_exit(tmp_path):
    # mitmproxy skips `done` when start-up fails after configure (a port in use): the
    # writer is closed at exit, with its `stop` event
    from mcp_gateway.audit import addon as mod

    db = tmp_path / "audit.db"
    a = AuditAddon(Pipeline())
    with taddons.context(a) as tctx:
        tctx.configure(a, mcp_audit_db=str(db))
        a.pipeline.run(request(exchange(flow_id="f1"), 1))
        assert a in mod._OPEN
        mod._close_at_exit()
        assert a.writer is None
        mod._close_at_exit()  # (nothing left to close: no second stop)
    assert rows(db, "SELECT count(*) FROM messages")[0][0] == 1
    assert [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")] == [
        "start",
        "stop",
    ]
    assert chain.verify(sqlite3.connect(db), chain.head_path(str(db))).ok


async def _until(cond, timeout: float = 30.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
async def test_a_runtime_switch_does_not_block_the_loop_nor_lose_a_row(addon, tmp_path, process):
    """Once the proxy runs, a change of mcp_audit_db (mitmweb's options, ctx.options.update)
    closed the old writer (waiting for its queue) and opened the new one (a child process,
    the file's checks) on the event loop: every client waited. The switch now happens in a
    thread while rows keep coming; each lands in one of the two trails."""
    import asyncio
    import time

    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(a), mcp_audit_process=process)
        getattr(addon, "running", lambda: None)()  # (the proxy runs)
        n = 0
        t0 = time.monotonic()
        tctx.configure(addon, mcp_audit_db=str(b))
        took = time.monotonic() - t0
        assert took < 0.05, took  # (opening a child alone takes ~0.3 s)
        while addon.path != str(b):  # rows keep coming while the new writer opens
            addon.pipeline.run(request(exchange(flow_id=f"f{n}"), n))
            n += 1
            await asyncio.sleep(0.005)
        for _ in range(20):
            addon.pipeline.run(request(exchange(flow_id=f"f{n}"), n))
            n += 1
        # the same file with another queue size: the old writer ends its chain first, rows
        # wait in memory meanwhile and go to the new one first
        t0 = time.monotonic()
        tctx.configure(addon, mcp_audit_queue_size=1234)
        assert time.monotonic() - t0 < 0.05
        while addon.writer is None or addon.writer.queue_size != 1234:
            addon.pipeline.run(request(exchange(flow_id=f"f{n}"), n))
            n += 1
            await asyncio.sleep(0.005)
        addon.done()
    got = [r[0] for r in rows(a, "SELECT flow_id FROM messages ORDER BY seq")]
    got += [r[0] for r in rows(b, "SELECT flow_id FROM messages ORDER BY seq")]
    assert sorted(got) == sorted(f"f{i}" for i in range(n)) and n > 20
    assert [r[0] for r in rows(a, "SELECT event FROM audit_events ORDER BY seq")] == [
        "start",
        "stop",
    ]
    events = [r[0] for r in rows(b, "SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["start", "stop", "start", "stop"], events
    for db in (a, b):
        assert chain.verify(sqlite3.connect(db), chain.head_path(str(db))).ok


async def test_a_runtime_switch_to_a_file_that_cannot_open_keeps_the_old_trail(
    addon, tmp_path, caplog
):
    a = tmp_path / "a.db"
    bad = tmp_path / "dir.db"
    bad.mkdir()  # a directory: cannot be opened
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(a), mcp_audit_process=False)
        getattr(addon, "running", lambda: None)()  # (the proxy runs)
        tctx.configure(addon, mcp_audit_db=str(bad))
        await _until(lambda: addon._switch is None and tctx.options.mcp_audit_db == str(a))
        assert "cannot switch the audit trail" in caplog.text
        assert addon.path == str(a) and addon.pipeline.get("audit") is not None
        addon.pipeline.run(request(exchange(flow_id="after"), 1))
        # from no audit at all to a file that cannot be opened: the option goes back to off
        tctx.configure(addon, mcp_audit_db="")
        assert addon.pipeline.get("audit") is None
        tctx.configure(addon, mcp_audit_db=str(bad))
        await _until(lambda: addon._switch is None and tctx.options.mcp_audit_db == "")
        assert addon.pipeline.get("audit") is None
        addon.done()
    assert rows(a, "SELECT flow_id FROM messages") == [("after",)]


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
async def test_a_runtime_switch_to_another_name_of_the_same_file_keeps_one_chain(
    addon, tmp_path, process
):
    """A runtime switch to another spelling of the trail in use (a symlinked directory) is
    the same file: the old writer must end its chain before the new one opens it. Taken
    for another file, both wrote to it at once."""
    import asyncio

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    a, a2 = real / "a.db", tmp_path / "link" / "a.db"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(a), mcp_audit_process=process)
        getattr(addon, "running", lambda: None)()  # (the proxy runs)
        n = 0
        tctx.configure(addon, mcp_audit_db=str(a2))
        for _ in range(3000):
            addon.pipeline.run(request(exchange(flow_id=f"f{n}"), n))
            n += 1
            if n % 20 == 0:
                await asyncio.sleep(0.002)
            if addon._switch is None and n > 200:
                break
        for _ in range(50):
            addon.pipeline.run(request(exchange(flow_id=f"f{n}"), n))
            n += 1
        addon.done()
    got = sorted(r[0] for r in rows(a, "SELECT flow_id FROM messages"))
    assert got == sorted(f"f{i}" for i in range(n))
    events = [r[0] for r in rows(a, "SELECT event FROM audit_events ORDER BY seq")]
    assert "foreign" not in events, events
    assert chain.verify(sqlite3.connect(a), chain.head_path(str(a))).ok


async def test_a_same_file_switch_waits_for_an_old_writer_stuck_on_the_disk(
    addon, tmp_path, monkeypatch, caplog
):
    """A runtime change of the queue size reopens the same file: the old writer is closed,
    then the new one opened. A disk stuck longer than the close's timeout left the old
    writer's thread alive, and the new writer opened the file beside it: when the disk came
    back, the old one wrote its rows after the new one's `start` (a `foreign` event, the
    chain broken). The switch now waits until the old writer is gone."""
    import asyncio
    import threading

    from mcp_gateway.audit import addon as addon_mod
    from mcp_gateway.audit.writer import AuditWriter

    monkeypatch.setattr(addon_mod, "CLOSE_TIMEOUT", 0.3)
    db = tmp_path / "a.db"
    release, stuck = threading.Event(), threading.Event()
    real_commit = AuditWriter._commit

    def slow_disk(self, conn, pending):
        if self.queue_size == 50_000 and any(r.get("flow_id") == "one" for r in pending):
            stuck.set()
            release.wait(10)  # (bounded: the disk comes back)
        return real_commit(self, conn, pending)

    monkeypatch.setattr(AuditWriter, "_commit", slow_disk)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, mcp_audit_db=str(db), mcp_audit_process=False)
        getattr(addon, "running", lambda: None)()  # (the proxy runs)
        addon.pipeline.run(request(exchange(flow_id="one"), 1))
        await _until(stuck.is_set)
        tctx.options.update(mcp_audit_queue_size=1000)
        await asyncio.sleep(1.0)  # (past the close's timeout)
        addon.pipeline.run(request(exchange(flow_id="two"), 2))
        release.set()
        await _until(lambda: addon._switch is None)
        assert addon.writer is not None and addon.writer.queue_size == 1000
        addon.pipeline.run(request(exchange(flow_id="three"), 3))
        addon.done()
    got = sorted(r[0] for r in rows(db, "SELECT flow_id FROM messages"))
    assert got == ["one", "three", "two"]
    events = [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert "foreign" not in events, events
    assert events == ["start", "stop", "start", "stop"], events
    assert chain.verify(sqlite3.connect(db), chain.head_path(str(db))).ok


async def test_shutdown_during_a_switch_waiting_on_a_stuck_writer_opens_no_second_writer(
    addon, tmp_path, monkeypatch, caplog
):
    """Shutdown while the switch waits for an old writer stuck on the disk: the switch gives
    up (shutdown is not held up for ever) and no second writer opens the file; the rows
    held for the new writer are said lost."""
    import asyncio
    import threading
    import time

    from mcp_gateway.audit import addon as addon_mod
    from mcp_gateway.audit.writer import AuditWriter

    monkeypatch.setattr(addon_mod, "CLOSE_TIMEOUT", 0.3)
    monkeypatch.setattr(addon_mod, "_GONE_STEP", 0.2)
    db = tmp_path / "a.db"
    release, stuck = threading.Event(), threading.Event()
    real_commit = AuditWriter._commit
    opened = []
    real_open = AuditWriter.open

    def slow_disk(self, conn, pending):
        if any(r.get("flow_id") == "one" for r in pending):
            stuck.set()
            release.wait(10)
        return real_commit(self, conn, pending)

    def counting_open(self):
        opened.append(self.queue_size)
        return real_open(self)

    monkeypatch.setattr(AuditWriter, "_commit", slow_disk)
    monkeypatch.setattr(AuditWriter, "open", counting_open)
    try:
        with taddons.context(addon) as tctx:
            tctx.configure(addon, mcp_audit_db=str(db), mcp_audit_process=False)
            getattr(addon, "running", lambda: None)()
            addon.pipeline.run(request(exchange(flow_id="one"), 1))
            await _until(stuck.is_set)
            tctx.options.update(mcp_audit_queue_size=1000)
            await asyncio.sleep(0.8)
            addon.pipeline.run(request(exchange(flow_id="two"), 2))
            t = time.monotonic()
            addon.done()
            assert time.monotonic() - t < 5
            assert opened == [50_000]  # the new writer never opened beside the stuck one
            assert "1 rows held during the switch lost" in caplog.text
    finally:
        release.set()
    await _until(lambda: ("stop",) in rows(db, "SELECT event FROM audit_events"))
    events = [r[0] for r in rows(db, "SELECT event FROM audit_events ORDER BY seq")]
    assert events == ["start", "stop"], events
    assert rows(db, "SELECT flow_id FROM messages") == [("one",)]
