"""Config validation: errors name file, line and field; the shipped example is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_gateway.identity.config import GatewayConfig, load_config, load_config_text
from mcp_gateway.yamlconf import ConfigError

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "addons"
    / "mcp_gateway"
    / "identity"
    / "example-config.yaml"
)


def test_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.auth.required is True
    assert cfg.auth.jwt is not None and cfg.auth.jwt.roles_claim == "realm_access.roles"
    assert cfg.limits.default is not None and cfg.limits.default.count == 60
    assert cfg.limits.roles["reader"].burst == 20
    assert [s.credential.type for s in cfg.servers if s.credential] == [
        "bearer",
        "header",
        "basic",
        "template",
        "query",
    ]
    # keys_db relative to the file
    assert cfg.keys_db == str(EXAMPLE.parent / "gateway-keys.db")


def test_empty_config_is_defaults() -> None:
    cfg = load_config_text("")
    assert cfg == GatewayConfig()
    assert cfg.auth.required is False and cfg.auth.header == "Authorization"
    assert cfg.limits.default is None and cfg.sessions.bind is True


@pytest.mark.parametrize(
    "text, line, field, problem",
    [
        ("auth:\n  required: maybe\n", 2, "auth.required", "boolean"),
        (
            "limits:\n  default: 60/minute\n  tools:\n    - match: x\n      rate: 5/fortnight\n",
            5,
            "limits.tools[0].rate",
            "invalid rate",
        ),
        (
            "limits:\n  roles:\n    reader: {rate: 5/minute, burst: 0}\n",
            3,
            "limits.roles.reader",
            "burst",
        ),
        ("sessions:\n  idle_timeout: -1\n", 2, "sessions.idle_timeout", "greater than 0"),
        ("auth:\n  jwt:\n    issuer: x\n", 2, "auth.jwt", "exactly one of jwks_url or jwks_file"),
        (
            "auth:\n  jwt:\n    jwks_file: /x\n    algorithms: [HS256]\n",
            2,
            "auth.jwt",
            "not allowed",
        ),
        (
            "servers:\n  - match: a\n  - match: b\n    credential:\n      type: template\n      ref: env://X\n",
            4,
            "servers[1].credential",
            "template",
        ),
        (
            "servers:\n  - match: a\n    credential: {ref: 'http://nope'}\n",
            3,
            "servers[0].credential.ref",
            "env://NAME",
        ),
        (
            "servers:\n  - match: a\n    credential: {type: query, ref: env://X}\n",
            3,
            "servers[0].credential",
            "param",
        ),
        ("auth:\n  header: 'bad header'\n", 2, "auth.header", "header name"),
        ("unknown_section: 1\n", 1, "unknown_section", "Extra inputs"),
    ],
)
def test_errors_name_file_line_field(
    tmp_path: Path, text: str, line: int, field: str, problem: str
) -> None:
    p = tmp_path / "gw.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    e = ei.value
    assert (e.line, e.field) == (line, field), str(e)
    assert problem in e.problem
    assert str(e).startswith(f"{p}:{line}: {field}: ")


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = tmp_path / "gw.yaml"
    p.write_text("auth:\n  required: [true\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert ei.value.line is not None and "invalid YAML" in str(ei.value)


def test_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "gw.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)


def test_rate_forms() -> None:
    cfg = load_config_text(
        "limits:\n  default: 100/10s\n  consumers:\n    a: 2/hour\n    b: {rate: 1/second, burst: 3}\n"
    )
    assert (cfg.limits.default.count, cfg.limits.default.period) == (100, 10.0)
    assert cfg.limits.consumers["a"].period == 3600.0 and cfg.limits.consumers["a"].burst == 2
    assert cfg.limits.consumers["b"].burst == 3
    assert str(cfg.limits.consumers["b"]) == "1/second (burst 3)"
