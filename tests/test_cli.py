"""The mcp-gateway command: a command or subcommand left out is a usage error."""

from __future__ import annotations

import pytest
from mcp_gateway.cli import main


@pytest.mark.parametrize("argv", [[], ["audit"], ["keys"], ["rules"]])
def test_a_missing_command_is_a_usage_error_with_the_help_on_stderr(argv, capsys) -> None:
    # `mcp-gateway`, `audit` and `keys` alone exited 0 (`rules` alone 2): a script calling
    # `mcp-gateway audit $SUB` with $SUB unset went on as if the command had run
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: mcp-gateway")


def test_help_is_still_an_answer(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["audit", "--help"])
    assert e.value.code == 0 and "verify" in capsys.readouterr().out
