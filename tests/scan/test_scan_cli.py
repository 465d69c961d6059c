"""mcp-gateway scan / rules check / rules list."""

import subprocess
import sys

import orjson
import pytest
from mcp_gateway.cli import main
from scan_helpers import github_token

MCP = [sys.executable, "-m", "mcp_gateway.cli"]


def run(args, stdin=b"", timeout=60):
    return subprocess.run(MCP + args, input=stdin, capture_output=True, timeout=timeout)


def test_scan_json_lines():
    tok = github_token()
    lines = [
        {"id": "a", "text": f"token {tok} mail bob@acme-corp.io"},
        {"id": 2, "text": "nothing to see"},
        {"id": "j", "text": '{"k": "\\u0067hp_' + tok[4:] + '"}'},
    ]
    r = run(["scan"], b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    assert r.returncode == 0, r.stderr
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 2, "j"]
    d = out[0]["detections"]
    assert [x["type"] for x in d] == ["github_token", "email"]
    assert d[0] == {
        "rule": "github-token", "type": "github_token", "value": tok, "start": 6, "end": 6 + len(tok),
        "severity": "critical", "action": "redact",
    }  # fmt: skip
    assert out[1]["detections"] == []
    j = out[2]["detections"][0]
    assert j["type"] == "github_token" and lines[2]["text"][j["start"] : j["end"]] == j["value"]


def test_scan_bad_input_line_is_reported_and_others_continue():
    r = run(["scan"], b'not json\n{"id": 1, "text": "x"}\n')
    assert r.returncode == 1
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert out[1] == {"id": 1, "detections": []}
    assert b"line 1" in r.stderr


def test_scan_bad_input_line_keeps_its_id_and_says_what_is_wrong():
    r = run(["scan"], b'{"id": 7}\n{"id": "x", "text": 5}\n[1]\n')
    assert r.returncode == 1
    out = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [o["id"] for o in out] == [7, "x", None]
    assert all(o["error"].endswith("invalid input") for o in out)
    err = r.stderr.decode()
    assert 'line 1: no "text"' in err and 'line 2: "text" must be a string' in err
    assert "line 3: expected an object" in err


def test_scan_keeps_a_big_integer_id_and_reads_lone_surrogates_as_the_gateway_does():
    # orjson read 123456789012345678901234567890 as 1.2345678901234568e+29, so the answer named
    # an id the caller never sent; a text with a lone surrogate (JavaScript's string cut inside
    # an emoji), which the gateway scans, was refused as invalid input
    import json

    tok = github_token()
    big = 123456789012345678901234567890
    r = run(
        ["scan"],
        f'{{"id": {big}, "text": "token {tok}"}}\n'.encode()
        + b'{"id": "\\ud83d", "text": "cut \\ud83d token '
        + tok.encode()
        + b'"}\n',
    )
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[0]["id"] == big and out[0]["detections"][0]["value"] == tok
    assert out[1]["id"] == "\ud83d" and out[1]["detections"][0]["value"] == tok


def test_scan_file_prints_table(tmp_path):
    f = tmp_path / "leak.txt"
    f.write_bytes(b"line one\nkey " + github_token().encode() + b"\n\xff\xfe binary \x00\n")
    r = run(["scan", str(f)])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "github_token" in out and "github-token" in out and "1 detection" in out
    assert github_token() not in out  # values are masked unless --show-values


def test_scan_fail_exits_1_on_findings_only(tmp_path):
    # for CI and pre-commit checks: without --fail a finding is not a failure
    leak, clean = tmp_path / "leak.txt", tmp_path / "clean.txt"
    leak.write_text("key " + github_token() + "\n")
    clean.write_text("nothing to see\n")
    assert run(["scan", str(leak)]).returncode == 0
    assert run(["scan", "--fail", str(leak)]).returncode == 1
    assert run(["scan", "--fail", str(clean)]).returncode == 0
    found = orjson.dumps({"id": 1, "text": "token " + github_token()}) + b"\n"
    quiet = b'{"id": 2, "text": "x"}\n'
    assert run(["scan", "--fail"], quiet + found + quiet).returncode == 1
    r = run(["scan", "--fail"], quiet + quiet)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


def test_scan_with_user_rules(tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: low\n    action: log\n    pattern: 'xx_[0-9]{8}'\n"
    )
    r = run(["scan", "--rules", str(rules)], b'{"id": 1, "text": "xx_12345678 bob@acme-corp.io"}\n')
    assert [d["rule"] for d in orjson.loads(r.stdout)["detections"]] == ["x"]


def test_rules_check(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: low\n    action: log\n    pattern: 'xx_[0-9]{8}'\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: low\n    action: log\n    pattern: 'xx_[0-9]{8}'\n    validators: [nope]\n"
    )
    assert main(["rules", "check", str(good)]) == 0
    assert main(["rules", "check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{bad}:7: rules[0].validators[0]: unknown validator 'nope'" in err
        or f"{bad}:7: rules[0].validators" in err
    )
    assert main(["rules", "check", "rules/"]) == 0


def test_rules_check_times_a_users_regexes(tmp_path, capsys, monkeypatch):
    from mcp_gateway.scan import slowcheck

    monkeypatch.setenv("MCP_GATEWAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(slowcheck, "TIMEOUT", 0.5)
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: low\n    action: log\n"
        "    pattern: 'xx_[0-9]{8}'\n    allowlist:\n      context: ['=\\s*\\s*\\s*\\s*\\s*;']\n"
    )
    assert main(["rules", "check", str(slow)]) == 1
    err = capsys.readouterr().err
    assert f"{slow}:8: rules[0].allowlist.context[0]: pattern is slow" in err


def test_rules_list(capsys):
    assert main(["rules", "list"]) == 0
    out = capsys.readouterr().out
    for rid in ("github-token", "private-key", "email", "credit-card", "generic-secret-assignment"):
        assert rid in out


def test_rules_check_merges_paths_in_order(tmp_path, capsys):
    # a user file that only overrides or disables shipped rules by id is valid on top of the
    # shipped packs (as `--set mcp_rules=rules/ --set mcp_rules=FILE` loads it), not alone
    over = tmp_path / "over.yaml"
    over.write_text("rules:\n  - id: email\n    enabled: false\n  - id: ipv4\n    action: redact\n")
    assert main(["rules", "check", "rules/", str(over)]) == 0
    out = capsys.readouterr().out
    assert f"{over}: OK" in out
    assert main(["rules", "check", str(over)]) == 1
    assert f"{over}:4: rules[1].type: Field required" in capsys.readouterr().err


def test_rules_check_of_a_directory_names_every_bad_file(tmp_path, capsys):
    # a directory reported its first bad file only: the next was found once that one was
    # mended, one round trip per mistake
    d = tmp_path / "mine"
    d.mkdir()
    rule = "rules:\n  - id: {id}\n    type: custom_x\n    severity: low\n    action: log\n"
    (d / "a.yaml").write_text(rule.format(id="a") + "    pattern: 'a_['\n")
    (d / "b.yaml").write_text(rule.format(id="b") + "    pattern: 'b_[0-9]{8}'\n")
    (d / "c.yaml").write_text(rule.format(id="c").replace("low", "lo") + "    pattern: 'c'\n")
    assert main(["rules", "check", str(d)]) == 1
    err = capsys.readouterr().err
    assert f"{d / 'a.yaml'}:6: rules[0].pattern: invalid regular expression" in err
    assert f"{d / 'c.yaml'}:4: rules[0].severity" in err
    assert "b.yaml" not in err


def test_rules_check_names_every_bad_rule_of_a_file(tmp_path, capsys):
    # a file reported its first bad rule only: the next was found once that one was mended
    rule = "  - id: {id}\n    type: custom_x\n    severity: {sev}\n    action: log\n"
    f = tmp_path / "mine.yaml"
    f.write_text(
        "rules:\n"
        + rule.format(id="a", sev="low") + "    pattern: 'a_['\n"  # line 2, pattern line 6
        + rule.format(id="b", sev="low") + "    pattern: 'b_[0-9]{8}'\n"  # fine
        + rule.format(id="c", sev="lo") + "    pattern: 'c_[0-9]{8}'\n"  # line 14: severity
        + rule.format(id="d", sev="low") + "    pattern: 'd_[0-9]{8}'\n"
        + "    validators: [nope]\n"  # line 22
    )  # fmt: skip
    assert main(["rules", "check", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:6: rules[0].pattern: invalid regular expression" in err
    assert f"{f}:14: rules[2].severity" in err
    assert f"{f}:22: rules[3].validators" in err
    assert "rules[1]" not in err
    # the gateway itself still refuses such a file at its first problem
    from mcp_gateway.scan.rules import load_rules
    from mcp_gateway.yamlconf import ConfigError

    with pytest.raises(ConfigError, match=r":6: rules\[0\]\.pattern"):
        load_rules([str(f)])


def _into_a_closed_pipe(argv, stdin=b"") -> subprocess.CompletedProcess:
    """The CLI with its stdout a pipe whose reader is already gone (`| head -1` once head
    has its line, `| grep -q`)."""
    import os

    import mcp_gateway

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mcp_gateway.__file__)))
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            MCP + argv, input=stdin, stdout=w, stderr=subprocess.PIPE, env=env, timeout=60
        )
    finally:
        os.close(w)


def test_scan_fail_keeps_its_status_into_a_closed_pipe(tmp_path):
    # `mcp-gateway scan --fail FILE | head -1` in CI: the finding decided exit 1, but the
    # table hit the closed pipe and main answered the BrokenPipeError with 0
    leak = tmp_path / "leak.txt"
    leak.write_text("key " + github_token() + "\n")
    assert _into_a_closed_pipe(["scan", "--fail", str(leak)]).returncode == 1
    found = orjson.dumps({"id": 1, "text": "token " + github_token()}) + b"\n"
    assert _into_a_closed_pipe(["scan", "--fail"], found).returncode == 1
    assert _into_a_closed_pipe(["scan"], b"not json\n").returncode == 1  # invalid input
    clean = tmp_path / "clean.txt"
    clean.write_text("nothing to see\n")
    assert _into_a_closed_pipe(["scan", "--fail", str(clean)]).returncode == 0
