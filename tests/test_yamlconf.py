"""yamlconf: hostile YAML is a ConfigError naming the file (and line), never a traceback or a
hang: tags PyYAML cannot construct, alias bombs, recursive aliases, deep nesting."""

from __future__ import annotations

import time

import pytest
from mcp_gateway.cli import main
from mcp_gateway.yamlconf import ConfigError, load_yaml, load_yaml_text

BOMB = "\n".join(
    ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    + ["rules: *a8", ""]
)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('p: !!python/object:os.system "ls"\n', 1, "could not determine a constructor"),
        ("a: 1\nb: !!timestamp 2020-13-45\n", 2, "month must be in 1..12"),
        ("a:\n  - !!float abc\n", 2, "could not convert"),
        ("a: !!int 0xZZ\n", 1, "invalid"),
        ("a: &a [*a]\n", 1, "an alias refers to a value that holds it"),
        ("a: &a {b: *a}\n", 1, "an alias refers to a value that holds it"),
        # (a tag on a mapping or a sequence, which the loader builds itself, is read too)
        ("a:\n  b: !!python/object/apply:os.system\n    - ls\n", 2, "could not determine"),
        ("a: !!python/object:builtins.dict {b: 1}\n", 1, "could not determine a constructor"),
        ("a: !local [1]\n", 1, "could not determine a constructor for the tag '!local'"),
        ("a: !!str {b: 1}\n", 1, "expected a scalar for the tag"),
    ],
)
def test_a_value_yaml_cannot_build_is_a_config_error_with_its_line(text, line, problem) -> None:
    with pytest.raises(ConfigError, match=problem) as e:
        load_yaml_text(text, "x.yaml")
    assert e.value.path == "x.yaml" and e.value.line == line


def test_an_alias_bomb_is_refused_quickly() -> None:
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="values once aliases are expanded"):
        load_yaml_text(BOMB, "bomb.yaml")
    assert time.perf_counter() - t < 5


def test_deep_nesting_is_a_config_error() -> None:
    for text in ("a: " + "[" * 20000 + "]" * 20000, "a: " + "{b: " * 3000 + "1" + "}" * 3000):
        with pytest.raises(ConfigError, match="nested too deeply"):
            load_yaml_text(text, "deep.yaml")


def test_explicit_collection_tags_the_safe_loader_knows_still_load() -> None:
    data, _ = load_yaml_text("a: !!map {b: !!seq [1, 2]}\nc: !!set {x}\n", "ok.yaml")
    assert data == {"a": {"b": [1, 2]}, "c": {"x": None}}


def test_aliases_used_in_moderation_still_load(tmp_path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text("base: &b [1, 2, 3]\nx: *b\ny: *b\nz: &m {k: v}\nw: *m\n")
    data, _ = load_yaml(f)
    assert data == {
        "base": [1, 2, 3],
        "x": [1, 2, 3],
        "y": [1, 2, 3],
        "z": {"k": "v"},
        "w": {"k": "v"},
    }


def test_rules_check_reports_hostile_yaml_with_exit_1(tmp_path, capsys) -> None:
    files = []
    for name, text in {
        "tag.yaml": 'rules:\n  - id: x\n    pattern: !!python/object:os.system "ls"\n',
        "tagged-list.yaml": "rules: !!python/object/apply:os.system\n  - {id: x}\n",
        "bomb.yaml": BOMB,
        "rec.yaml": "rules: &a [*a]\n",
        "deep.yaml": "rules: " + "[" * 20000 + "]" * 20000,
    }.items():
        (tmp_path / name).write_text(text)
        files.append(str(tmp_path / name))
    for f in files:
        assert main(["rules", "check", f]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f) and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        # (libyaml said "found character that cannot start any token", "found undefined
        # alias", "found unknown escape character": not which, nor that it was a tab)
        ("a:\n\tb: 1\n", 2, "found character '\\\\t' that cannot start any token"),
        ("a: 1\nb: *nope\n", 2, "found undefined alias 'nope'"),
        ('a: "\\q"\n', 1, "found unknown escape character 'q'"),
        ("a:\n  b: 1\n c: 2\n", 3, "expected <block end>, but found"),
    ],
)
def test_a_yaml_error_says_what_pyyaml_says(text, line, problem) -> None:
    with pytest.raises(ConfigError, match=problem) as e:
        load_yaml_text(text, "x.yaml")
    assert e.value.line == line


def test_a_lone_surrogate_is_a_config_error_not_a_traceback() -> None:
    # (libyaml is handed UTF-8: the text's encoding raised UnicodeEncodeError)
    with pytest.raises(ConfigError, match="unacceptable character #xd800"):
        load_yaml_text("a: \ud800\n", "x.yaml")


def test_what_only_pyyaml_reads_is_still_refused() -> None:
    # libyaml refuses a surrogate escape; PyYAML built a string that is no text
    with pytest.raises(ConfigError, match="invalid Unicode character escape"):
        load_yaml_text('a: "\\ud800"\n', "x.yaml")


def test_an_unknown_field_is_named_with_the_fields_known_there() -> None:
    # "Extra inputs are not permitted" alone, and a misspelt required field reported as
    # "severity: Field required" at the rule's first line, sent the reader to the docs
    from mcp_gateway.identity.config import load_config_text

    def error(text: str) -> str:
        with pytest.raises(ConfigError) as e:
            load_config_text(text, "gw.yaml")
        return str(e.value)

    e = error("policy:\n  rules:\n    - {action: deny, tool: [x]}\n")
    assert e.startswith("gw.yaml:3: policy.rules[0].tool: Extra inputs are not permitted")
    assert "did you mean 'tools'?" in e and "known: action, consumers, roles, methods" in e
    e = error("auth:\n  require: true\n")
    assert "gw.yaml:2: auth.require:" in e and "did you mean 'required'?" in e
    # a required field misspelt: the misspelling is named, at its own line
    e = error("limits:\n  tools:\n    - match: x\n      rates: 5/minute\n")
    assert e.startswith("gw.yaml:4: limits.tools[0].rates:") and "did you mean 'rate'?" in e
    e = error("x: 1\n")
    assert "unknown field 'x'" in e and "did you mean" not in e


def test_an_unknown_field_of_a_rule_file_is_named_the_same_way(tmp_path) -> None:
    from mcp_gateway.scan.rules import load_rules

    f = tmp_path / "mine.yaml"
    f.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severty: high\n    action: redact\n"
        "    pattern: 'x_[0-9]{8}'\n    scope: {tool: [deploy]}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_rules([f])
    assert str(e.value).startswith(f"{f}:4: rules[0].severty: Extra inputs are not permitted")
    assert "did you mean 'severity'?" in str(e.value)
    f.write_text(f.read_text().replace("severty", "severity"))
    with pytest.raises(ConfigError) as e:
        load_rules([f])
    assert f"{f}:7: rules[0].scope.tool" in str(e.value)
    assert "known: direction, methods, tools, servers" in str(e.value)


def test_a_value_that_should_be_a_mapping_says_what_goes_there(tmp_path) -> None:
    # "Input should be a valid dictionary or instance of AuthConfig": a class name the reader
    # never wrote, and not what belongs there
    from mcp_gateway.identity.config import load_config_text
    from mcp_gateway.scan.rules import load_rules

    with pytest.raises(ConfigError) as e:
        load_config_text("auth: true\n", "gw.yaml")
    assert str(e.value) == (
        "gw.yaml:1: auth: expected a mapping (required, header, realm, api_keys, jwt), got true"
    )
    with pytest.raises(ConfigError) as e:
        load_config_text("policy:\n  rules:\n    - deny\n", "gw.yaml")
    assert "gw.yaml:3: policy.rules[0]: expected a mapping (action, consumers" in str(e.value)
    assert "got the text 'deny'" in str(e.value) and "PolicyRule" not in str(e.value)
    f = tmp_path / "notes.txt"
    f.write_text("just some notes\n")
    with pytest.raises(ConfigError) as e:
        load_rules([f])
    assert str(e.value).startswith(f"{f}:1: expected a mapping (allowlist, rules), got the text")
    f.write_text(
        "rules:\n  - id: x\n    type: custom_x\n    severity: high\n    action: redact\n"
        "    pattern: a\n    scope: [x]\n"
    )
    with pytest.raises(ConfigError) as e:
        load_rules([f])
    assert (
        "rules[0].scope: expected a mapping (direction, methods, tools, servers), got a list"
        in (str(e.value))
    )
