"""Tamper evidence: the chain verifies, and every kind of edit is caught and located."""

from __future__ import annotations

import json
import logging
import os
import sqlite3

import orjson
import pytest
from audit_testlib import open_writer
from mcp_gateway.audit import chain, schema
from mcp_gateway.audit.cli import EXIT_BAD, EXIT_ERROR, EXIT_OK
from mcp_gateway.cli import main


def _verify(path, **kw):
    conn = sqlite3.connect(path)
    try:
        return chain.verify(conn, chain.head_path(path), **kw)
    finally:
        conn.close()


def _edit(path, sql, *params):
    c = sqlite3.connect(path)  # what an insider with the sqlite3 module would do
    c.execute(sql, params)
    c.commit()
    c.close()


def _cli_verify(path, capsys, *extra):
    rc = main(["audit", "verify", "--db", path, "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def test_intact_chain_verifies(audit_db, capsys):
    res = _verify(audit_db["path"])
    assert res.ok, res.problems
    assert res.counts == {"audit_events": 2, "messages": audit_db["messages"], "findings": 1}
    assert res.first_seq == 1 and res.last_seq == res.rows
    rc, out = _cli_verify(audit_db["path"], capsys)
    assert rc == EXIT_OK and out["ok"] is True
    assert main(["audit", "verify", "--db", audit_db["path"]]) == EXIT_OK
    assert "chain intact" in capsys.readouterr().out


def test_edited_message_row_is_named(audit_db, capsys):
    p = audit_db["path"]
    seq = (
        sqlite3.connect(p)
        .execute("SELECT seq FROM messages WHERE consumer='bob' ORDER BY seq LIMIT 1")
        .fetchone()[0]
    )
    _edit(p, "UPDATE messages SET consumer='mallory' WHERE seq=?", seq)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD
    first = out["problems"][0]
    assert (first["seq"], first["table"], first["what"]) == (seq, "messages", "edited")
    assert main(["audit", "verify", "--db", p]) == EXIT_BAD
    text = capsys.readouterr().out
    assert f"row seq {seq} (messages)" in text and "content edited" in text


def test_edited_finding_row_is_named(audit_db):
    p = audit_db["path"]
    fseq = sqlite3.connect(p).execute("SELECT seq FROM findings").fetchone()[0]
    _edit(p, "UPDATE findings SET severity='low' WHERE seq=?", fseq)
    res = _verify(p)
    assert not res.ok
    assert (res.problems[0].seq, res.problems[0].table, res.problems[0].what) == (
        fseq,
        "findings",
        "edited",
    )


def test_rehashed_row_breaks_the_next_link(audit_db):
    """An editor who also recomputes the edited row's hash is caught at the next row."""
    p = audit_db["path"]
    conn = sqlite3.connect(p)
    seq = 10
    cols = schema.MESSAGE_COLUMNS
    r = conn.execute(
        f"SELECT {', '.join(f'[{c}]' for c in cols)}, prev_hash FROM messages WHERE seq=?", (seq,)
    ).fetchone()
    values = list(r[:-1])
    i = list(cols).index("action")
    values[i] = "block"
    forged = chain.row_hash(r[-1], "messages", seq, values)
    conn.execute("UPDATE messages SET action='block', hash=? WHERE seq=?", (forged, seq))
    conn.commit()
    conn.close()
    res = _verify(p)
    assert not res.ok
    assert res.problems[0].seq == seq + 1
    assert res.problems[0].what == "broken-link"


def test_deleted_middle_row_is_a_gap(audit_db):
    p = audit_db["path"]
    _edit(p, "DELETE FROM messages WHERE seq=12")
    res = _verify(p)
    assert res.problems[0].what == "gap" and res.problems[0].seq == 13
    assert "12 missing" in res.problems[0].detail


def _truncate(p, keep: int) -> tuple[int, str]:
    """Delete every chained row after seq ``keep``; return the last seq and its hash."""
    conn = sqlite3.connect(p)
    last = max(r[0] for r in chain.iter_chain(conn))
    new_hash = next(r[4] for r in chain.iter_chain(conn) if r[0] == keep)
    for t in schema.CHAINED_TABLES:
        conn.execute(f"DELETE FROM [{t}] WHERE seq > ?", (keep,))
    conn.commit()
    conn.close()
    return last, new_hash


def test_deleted_last_rows_detected_by_the_head_file(audit_db, capsys):
    p = audit_db["path"]
    keep = 30
    last, new_hash = _truncate(p, keep)
    # a careful editor deletes the last rows AND fixes the head recorded in meta...
    _edit(p, "UPDATE meta SET value=? WHERE key='head_seq'", str(keep))
    _edit(p, "UPDATE meta SET value=? WHERE key='head_hash'", new_hash)
    # ...so that the chain alone is consistent: only the head file tells
    conn = sqlite3.connect(p)
    assert chain.verify(conn, None).ok
    conn.close()
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD
    assert out["problems"][0]["what"] == "truncated"
    assert f"records seq {last}" in out["problems"][0]["detail"]
    assert f"ends at seq {keep}" in out["problems"][0]["detail"]
    assert main(["audit", "verify", "--db", p]) == EXIT_BAD
    assert "rows missing at the end" in capsys.readouterr().out


def test_deleted_last_rows_detected_by_meta_without_head_file(audit_db):
    p = audit_db["path"]
    _truncate(p, 20)
    os.remove(chain.head_path(p))
    conn = sqlite3.connect(p)
    res = chain.verify(conn, None)
    assert res.problems[0].what == "truncated"


def test_meta_head_seq_that_is_not_a_number_is_a_problem_not_a_crash(audit_db, capsys):
    p = audit_db["path"]
    _edit(p, "UPDATE meta SET value='x' WHERE key='head_seq'")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and "not a number" in out["problems"][0]["detail"]


def test_missing_head_file_is_reported(audit_db, capsys):
    p = audit_db["path"]
    os.remove(chain.head_path(p))
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "head-missing"
    rc, out = _cli_verify(p, capsys, "--no-head")
    assert rc == EXIT_OK


def _head_one_row_behind(p, how):
    """The head file as a crash between a commit and the head file's update leaves it:
    naming the row before the last, and (``announced``) the batch that ends at the last."""
    h = chain.read_head(chain.head_path(p))
    conn = sqlite3.connect(p)
    prev_seq, prev_hash = conn.execute(
        "SELECT seq, hash FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT 1", (h["seq"],)
    ).fetchone()
    conn.close()
    x = chain.head_path(p) + ".x"
    hf = chain.HeadFile(x, p)
    hf.write(prev_seq, prev_hash)
    if how == "announced":
        hf.announce(h["seq"], h["hash"], (prev_seq, prev_hash))
    hf.close()
    if how == "legacy":  # a head file written before announcements
        data = chain.read_head(x)
        del data["pending"]
        with open(x, "w") as f:
            json.dump(data, f)
    os.replace(x, chain.head_path(p))
    return prev_seq


@pytest.mark.parametrize("how", ["announced", "legacy"])
def test_rows_after_the_head_file_are_fine(audit_db, how):
    """A crash between commit and head update leaves the DB one batch ahead: not an error,
    when that batch is the one the head file announced (or the head file is older than
    announcements)."""
    p = audit_db["path"]
    _head_one_row_behind(p, how)
    res = _verify(p)
    assert res.ok and res.warnings


def test_rows_after_the_head_file_that_were_not_announced_are_reported(audit_db, capsys):
    """After a crash (`kill -9`: the last row is no `stop` event), rows appended with correct
    hashes passed as the crash's leftover batch, with a warning and exit 0."""
    p = audit_db["path"]
    seq = _head_one_row_behind(p, "unannounced")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD
    assert (out["problems"][0]["seq"], out["problems"][0]["what"]) == (seq + 1, "appended")
    assert "did not announce" in out["problems"][0]["detail"]


def test_rewritten_chain_differs_from_head_file(audit_db):
    p = audit_db["path"]
    head = chain.read_head(chain.head_path(p))
    data = dict(head, hash="f" * 64)
    with open(chain.head_path(p), "w") as f:
        json.dump(data, f)
    res = _verify(p)
    assert res.problems[0].what == "head-mismatch"


def test_older_schema_is_said_plainly(audit_db, capsys):
    p = audit_db["path"]
    _edit(p, "UPDATE meta SET value='0' WHERE key='schema_version'")
    head = chain.read_head(chain.head_path(p))  # the head file of the release that wrote it
    with open(chain.head_path(p), "w") as f:
        json.dump(dict(head, schema_version=0), f)
    assert main(["audit", "verify", "--db", p]) == EXIT_ERROR
    out = capsys.readouterr().out
    assert "schema version 0" in out and "older" in out
    rc, js = _cli_verify(p, capsys)
    assert rc == EXIT_ERROR and js["problems"][0]["what"] == "schema"


def test_not_an_audit_database(tmp_path, capsys):
    p = str(tmp_path / "x.db")
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE t (a)")
    c.commit()
    c.close()
    assert main(["audit", "verify", "--db", p]) == EXIT_ERROR
    assert "not an mcp-gateway audit database" in capsys.readouterr().out


def test_missing_database_file(tmp_path, capsys):
    assert main(["audit", "verify", "--db", str(tmp_path / "nope.db")]) == EXIT_ERROR
    assert "no audit database" in capsys.readouterr().err


@pytest.mark.parametrize("value", [1, 1.0, "1", None, True, -0.0, 1e300, 2.5])
def test_coerce_makes_values_read_back_identically(tmp_path, value):
    """The hash is computed over coerced values; SQLite must return exactly those."""
    row = schema.coerce(
        schema.MESSAGE_COLUMNS, {"latency_ms": value, "size": value, "rpc_id": value, "time": 1.0}
    )
    conn = schema.connect(str(tmp_path / "c.db"))
    conn.execute("BEGIN")
    schema.create(conn)
    cols = list(schema.MESSAGE_COLUMNS)
    conn.execute(
        f"INSERT INTO messages (seq, {', '.join(f'[{c}]' for c in cols)}, prev_hash, hash) "
        f"VALUES (1, {', '.join('?' for _ in cols)}, '', '')",
        list(row.values()),
    )
    conn.execute("COMMIT")
    back = conn.execute(f"SELECT {', '.join(f'[{c}]' for c in cols)} FROM messages").fetchone()
    assert list(back) == list(row.values())
    assert [type(v) for v in back] == [type(v) for v in row.values()]
    # what is hashed: the canonical JSON (this is where -0.0 and 0.0 differ)
    assert orjson.dumps(list(back)) == orjson.dumps(list(row.values()))


def test_verify_while_the_gateway_writes(tmp_path):
    """One snapshot: a concurrent writer never produces a false gap or truncation."""
    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit.stage import message_row

    db = str(tmp_path / "live.db")
    w = open_writer(db, flush_interval=0.005, batch_rows=7)
    try:
        for round_ in range(15):
            for i in range(50):
                w.submit(message_row(request(exchange(flow_id=f"r{round_}-{i}"), i)))
            conn = sqlite3.connect(db)
            res = chain.verify(conn, chain.head_path(db))
            conn.close()
            assert res.ok, [str(p) for p in res.problems]
    finally:
        assert w.close()


def test_schema_version_edited_against_the_head_file_is_tampering(audit_db, capsys):
    """A row deleted and meta's schema_version set to another number: "cannot verify"
    (exit 2) would hide the deletion; the head file says this release wrote the chain."""
    p = audit_db["path"]
    seq = sqlite3.connect(p).execute("SELECT max(seq) FROM messages").fetchone()[0]
    _edit(p, "DELETE FROM messages WHERE seq=?", seq - 1)
    _edit(p, "UPDATE meta SET value='2' WHERE key='schema_version'")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "schema-edited"


def test_index_rebuilt_without_rows_is_reported(audit_db, capsys):
    """An index rebuilt to leave rows out, its SQL then restored: `audit log --consumer`
    would skip those rows while every row still hashes."""
    p = audit_db["path"]
    c = sqlite3.connect(p, isolation_level=None)
    c.execute("DROP INDEX idx_messages_consumer_time")
    c.execute(
        "CREATE INDEX idx_messages_consumer_time ON messages(consumer, time) "
        "WHERE consumer IS NOT 'bob'"
    )
    c.execute("PRAGMA writable_schema=ON")
    c.execute(
        "UPDATE sqlite_master SET sql='CREATE INDEX idx_messages_consumer_time ON "
        "messages(consumer, time)' WHERE name='idx_messages_consumer_time'"
    )
    c.execute("PRAGMA writable_schema=OFF")
    c.close()
    assert main(["audit", "log", "--db", p, "--consumer", "bob", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []  # what the edit achieves
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "structure"
    assert "idx_messages_consumer_time" in out["problems"][0]["detail"]


def test_redefined_view_and_trigger_are_reported(audit_db, capsys):
    p = audit_db["path"]
    _edit(p, "DROP VIEW blocked")
    _edit(p, "CREATE VIEW blocked AS SELECT * FROM messages WHERE 0")
    _edit(p, "CREATE TRIGGER t AFTER INSERT ON messages BEGIN SELECT 1; END")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD
    details = " ".join(x["detail"] for x in out["problems"])
    assert "view 'blocked' was redefined" in details and "unexpected trigger 't'" in details


def test_value_of_a_foreign_type_is_an_edit_not_a_crash(audit_db, capsys):
    p = audit_db["path"]
    seq = sqlite3.connect(p).execute("SELECT min(seq) FROM messages").fetchone()[0]
    _edit(p, "UPDATE messages SET method=CAST(method AS BLOB) WHERE seq=?", seq)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and (out["problems"][0]["seq"], out["problems"][0]["what"]) == (
        seq,
        "edited",
    )


def _append_forged_row(p):
    conn = sqlite3.connect(p, isolation_level=None)
    seq, prev = conn.execute(
        "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    vals = [1.0, "x", "c2s", "http", "s", None, None, "alice", None, None, None, "request"]
    vals += [None] * (len(schema.MESSAGE_COLUMNS) - len(vals))
    seq += 1
    h = chain.row_hash(prev, "messages", seq, vals)
    cols = ", ".join(f"[{c}]" for c in schema.MESSAGE_COLUMNS)
    conn.execute(
        f"INSERT INTO messages (seq, {cols}, prev_hash, hash) "
        f"VALUES ({', '.join('?' * (len(vals) + 3))})",
        [seq, *vals, prev, h],
    )
    conn.execute("UPDATE meta SET value=? WHERE key='head_seq'", (str(seq),))
    conn.execute("UPDATE meta SET value=? WHERE key='head_hash'", (h,))
    conn.close()
    return seq


def test_rows_appended_after_a_clean_stop_are_reported(audit_db, capsys):
    """The head file's row is the `stop` event: nothing after it is a crash's leftover."""
    p = audit_db["path"]
    last = (
        sqlite3.connect(p)
        .execute("SELECT event FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetchone()[0]
    )
    assert last == "stop"
    seq = _append_forged_row(p)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD
    assert (out["problems"][0]["seq"], out["problems"][0]["what"]) == (seq, "appended")


def test_a_gateway_starting_while_verify_runs_appends_nothing(tmp_path, monkeypatch):
    """verify reads the head file, then takes its snapshot: a gateway that restarts (or
    another one on the database commits) in between is no append after a clean stop."""
    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit.stage import message_row

    db = str(tmp_path / "a.db")
    w = open_writer(db)
    w.submit(message_row(request(exchange(flow_id="f1"), 1)))
    assert w.close()  # the head file names the `stop` event
    real, started = chain.read_head, []

    def read_then_a_gateway_starts(path):
        head = real(path)
        if not started:
            started.append(None)  # (the writer reads the head file too)
            started[0] = open_writer(db)  # its `start` event and a row are committed
            started[0].submit(message_row(request(exchange(flow_id="f2"), 2)))
            started[0].flush()
        return head

    monkeypatch.setattr(chain, "read_head", read_then_a_gateway_starts)
    conn = sqlite3.connect(db)
    try:
        res = chain.verify(conn, chain.head_path(db))
    finally:
        conn.close()
        assert started[0].close()
    assert res.ok, [str(p) for p in res.problems]
    assert any("while verify ran" in w for w in res.warnings)


@pytest.mark.parametrize(
    "edit, what, said",
    [
        ("DROP TABLE findings", "schema-edited", "table 'findings' is missing"),
        ("DROP TABLE audit_events", "schema-edited", "table 'audit_events' is missing"),
        ("ALTER TABLE messages DROP COLUMN payload", "schema-edited", "payload of table"),
        ("ALTER TABLE messages RENAME COLUMN consumer TO who", "schema-edited", "consumer of"),
        ("ALTER TABLE messages ADD COLUMN note TEXT DEFAULT 'ok'", "structure", "'note'"),
    ],
)
def test_a_dropped_renamed_or_added_column_or_table_is_an_edit(audit_db, capsys, edit, what, said):
    """A chained table or column dropped or renamed once made verify fail with a bare
    "database error: no such table" and exit 2 ("cannot be checked"); a column added (whose
    values no hash covers, but `audit export` shows) passed as intact."""
    p = audit_db["path"]
    _edit(p, edit)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD, out
    first = out["problems"][0]
    assert first["what"] == what and said in first["detail"], first
    assert main(["audit", "verify", "--db", p]) == EXIT_BAD
    assert said in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit",
    [
        "DROP TABLE meta",
        "DELETE FROM meta WHERE key='schema_version'",
        "UPDATE meta SET value='one' WHERE key='schema_version'",
    ],
)
def test_meta_spoiled_against_the_head_file_is_tampering(audit_db, capsys, edit):
    """Like another version number in meta (above): the head file says this release wrote
    the chain, so a `meta` dropped or spoiled is an edit (exit 1), not "cannot verify"."""
    p = audit_db["path"]
    _edit(p, edit)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "schema-edited", out
    # without the head file, it is still a file this release cannot read (exit 2)
    os.remove(chain.head_path(p))
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_ERROR and out["problems"][0]["what"] == "schema"


def test_every_audit_table_dropped_is_reported_against_the_head_file(audit_db, capsys):
    p = audit_db["path"]
    c = sqlite3.connect(p, isolation_level=None)
    for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='view'").fetchall():
        c.execute(f"DROP VIEW [{name}]")
    for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        c.execute(f"DROP TABLE [{name}]")
    c.close()
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "schema-edited", out
    assert "dropped" in out["problems"][0]["detail"]


def test_chain_head_deleted_from_meta_is_reported(audit_db, capsys):
    p = audit_db["path"]
    _edit(p, "DELETE FROM meta WHERE key IN ('head_seq', 'head_hash')")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "head-mismatch", out


def test_vacuum_is_no_edit(audit_db, capsys):
    p = audit_db["path"]
    _edit(p, "VACUUM")
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_OK, out


def test_rows_appended_after_a_kill_9_are_reported(tmp_path, capsys):
    """The database and head file as `kill -9` of the gateway leaves them (its last row a
    message, no `stop` event), then one forged row appended with a correct hash."""
    from audit_testlib import append_chained_row, exchange, open_writer, request
    from mcp_gateway.audit.stage import message_row

    live = str(tmp_path / "live.db")
    w = open_writer(live)
    try:
        for i in range(5):
            w.submit(message_row(request(exchange(flow_id=f"f{i}"), i)))
        assert w.flush()
        db = str(tmp_path / "crashed.db")
        src, dst = sqlite3.connect(live), sqlite3.connect(db)
        src.backup(dst)
        src.close()
        dst.close()
        with open(chain.head_path(live), "rb") as f:
            head = f.read()
        with open(chain.head_path(db), "wb") as f:
            f.write(head)
    finally:
        assert w.close()
    rc, out = _cli_verify(db, capsys)
    assert rc == EXIT_OK and not out["warnings"], out  # honest: the head names the last row
    seq = append_chained_row(db, "messages", t=1.0)
    rc, out = _cli_verify(db, capsys)
    assert rc == EXIT_BAD
    assert (out["problems"][0]["seq"], out["problems"][0]["what"]) == (seq + 1, "appended")


def test_a_long_database_path_keeps_the_head_file_readable(tmp_path):
    """The head file is one fixed-size record: with a long path, a record with an
    announcement and one without must both fit, or the longer one's end stays behind."""
    d = tmp_path / ("d" * 200) / ("e" * 200)
    d.mkdir(parents=True)
    db = str(d / "audit.db")
    hf = chain.HeadFile(chain.head_path(db), db)
    try:
        hf.announce(2, "b" * 64, (1, "a" * 64))
        assert chain.read_head(chain.head_path(db))["pending"] == [2, "b" * 64]
        hf.write(2, "b" * 64)
        head = chain.read_head(chain.head_path(db))
        assert (head["seq"], head["pending"]) == (2, None)
        assert head["db"].endswith("audit.db")
    finally:
        hf.close()


def test_a_database_reached_through_a_symlink_keeps_its_head_file_next_to_it(tmp_path, capsys):
    """The gateway pointed at a symlink (the default path linked to another disk) wrote
    `link.db.head`, and left the target's own head file behind: verifying the target by its
    real path then reported every row written through the link as appended."""
    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit.stage import message_row

    real = tmp_path / "data" / "audit.db"
    real.parent.mkdir()
    for i in range(2):  # a first run on the file itself, then one through the link
        path = real if i == 0 else tmp_path / "link.db"
        if i:
            path.symlink_to(real)
        w = open_writer(path)
        w.submit(message_row(request(exchange(flow_id=f"f{i}"), i)))
        assert w.close()
    assert not (tmp_path / "link.db.head").exists()
    assert chain.read_head(str(real) + ".head")["seq"] == 6  # start, row, stop twice
    for path in (real, tmp_path / "link.db"):
        rc, out = _cli_verify(str(path), capsys)
        assert rc == EXIT_OK and not out["warnings"], out


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_a_database_cut_short_or_deleted_is_broken_against_its_head_file(audit_db, capsys, how):
    """A trail file cut short ("database disk image is malformed") or deleted was "cannot
    verify" (exit 2) although its head file records the rows it held: a broken trail."""
    p = audit_db["path"]
    if how == "truncated":
        size = os.path.getsize(p)
        assert size > 3 * 4096
        os.truncate(p, size // 2)
    else:
        os.remove(p)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["ok"] is False, out
    assert (
        out["problems"][0]["what"] == "unreadable" and "records rows up to" in out["first_problem"]
    )
    assert main(["audit", "verify", "--db", p]) == EXIT_BAD
    assert "chain broken" in capsys.readouterr().out
    # without the head file there is nothing to hold it against: cannot verify, as before
    assert main(["audit", "verify", "--db", p, "--no-head"]) == EXIT_ERROR
    os.remove(chain.head_path(p))
    assert main(["audit", "verify", "--db", p]) == EXIT_ERROR


def test_a_head_file_in_the_format_before_announcements_is_said_plainly(audit_db, capsys, caplog):
    # a head file without `pending` (an older release's, or written by hand) over rows after
    # its seq: verify said only "committed after the last head update, e.g. before a crash",
    # its text "seq 34 — matches", and the next start moved the head file over them silently
    p = audit_db["path"]
    seq = _head_one_row_behind(p, "legacy")
    rc = main(["audit", "verify", "--db", p])
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    assert "format of releases before batch announcements" in out and "by hand" in out
    assert f"seq {seq} — 1 row(s) after it" in out and "matches" not in out
    caplog.set_level(logging.WARNING, logger="mcp_gateway")
    w = open_writer(p)
    assert w.close()
    assert "in the format before batch announcements" in caplog.text
    conn = sqlite3.connect(p)
    (detail,) = conn.execute(
        "SELECT detail FROM audit_events WHERE event='start' ORDER BY seq DESC"
    ).fetchone()
    conn.close()
    assert f"rows {seq + 1}-{seq + 1} after an old-format head" in detail


@pytest.mark.parametrize(
    "text, said",
    [
        ('{"seq": -5, "hash": "abc"}', "seq -5 is negative"),
        ('{"seq": 3, "hash": 5}', "hash 5 is not a string"),
        ("36 f38f9c98edb9ef5e\n", "not JSON"),
        ('[36, "f38f"]', 'expected a JSON object {"seq": N, "hash": …}'),
        ("", "(empty)"),
    ],
)
def test_a_hand_written_head_file_that_is_none_is_named(audit_db, capsys, text, said):
    # seq -5 was "matched" and every row passed as appended after it (exit 0); a bare
    # "seq hash" line said "unreadable head file: Extra data: line 1 column 4" without a path
    p = audit_db["path"]
    with open(chain.head_path(p), "w") as f:
        f.write(text)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "head-file"
    assert chain.head_path(p) in out["problems"][0]["detail"] and said in out["first_problem"]


def test_a_head_file_at_seq_0_holds_only_the_genesis_hash(audit_db, capsys):
    # {"seq": 0, "hash": <anything>} passed as "matches", every row after it as a crash's
    p = audit_db["path"]
    with open(chain.head_path(p), "w") as f:
        json.dump({"seq": 0, "hash": "ab" * 32, "pending": [3, "cd" * 32]}, f)
    rc, out = _cli_verify(p, capsys)
    assert rc == EXIT_BAD and out["problems"][0]["what"] == "head-mismatch"
    assert "seq 0 is the start of the chain" in out["problems"][0]["detail"]
    # a row the head file names that no table holds: no "(None)" for its table
    with open(chain.head_path(p), "w") as f:
        json.dump({"seq": 10_000, "hash": "ab" * 32, "pending": None}, f)
    rc, out = _cli_verify(p, capsys)
    assert out["first_problem"].startswith("row seq 10000: truncated")
