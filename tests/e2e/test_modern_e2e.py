"""The 2026-07-28 protocol era through the gateway, with the mcp 2.x SDK on both ends.

mcp 2.x cannot share a virtualenv with the 1.x SDK the rest of the suite uses; the
``mcp2_python`` fixture (tests/conftest.py) installs it once into a side virtualenv.
"""

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import clean_env, pick_free_port, stop_process, wait_port

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent / "modern"


@pytest.fixture(scope="module")
def modern_server(mcp2_python, tmp_path_factory):
    port = pick_free_port()
    log = tmp_path_factory.mktemp("modern") / "server.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [str(mcp2_python), str(HERE / "server.py"), str(port)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    try:
        wait_port(port, proc, 30, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def run_client(py: Path, url: str, mode: str, env: dict | None = None) -> dict:
    r = subprocess.run(
        [str(py), str(HERE / "client.py"), url, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(**(env or {})),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_modern_and_handshake_eras_through_reverse_gateway(
    mcp2_python, modern_server, mitmdump_factory, mode
):
    gw = mitmdump_factory(mode=f"reverse:{modern_server}")
    out = run_client(mcp2_python, f"{gw.base}/mcp", mode)
    assert out["version"] == ("2026-07-28" if mode != "legacy" else "2025-11-25")
    assert (
        out["tools"] == ["echo", "leak", "slow", "tagged"]
        and out["echo"] == "hi"
        and out["slow"] == "done"
    )
    # progress streamed, not delivered at the end with the result
    assert len(out["progress"]) == 3 and out["end"] - out["progress"][0] > 0.6
    # the gateway's default rules redact the GitHub token in the tool result
    assert "ghp_" not in out["leak"] and "REDACTED" in out["leak"]
    # ... and in an argument that 2026-07-28 clients also mirror into an Mcp-Param-* header:
    # the header follows the body, so the server's header == body check passes
    assert out["tagged"] == "region=[REDACTED:github_token]:x"
    # a block is a JSON-RPC error with the gateway's own code (not the SDK's -32001 timeout)
    assert out["blocked"] == [-32061, "blocked by mcp-gateway rule private-key (private_key)"]
    assert out["after"] == "still here"


def test_modern_era_through_forward_proxy(mcp2_python, modern_server, mitmdump_factory):
    gw = mitmdump_factory()
    env = {"HTTP_PROXY": gw.proxy_url, "HTTPS_PROXY": gw.proxy_url, "NO_PROXY": ""}
    out = run_client(mcp2_python, f"{modern_server}/mcp", "2026-07-28", env)
    assert out["version"] == "2026-07-28" and out["echo"] == "hi"
    assert "ghp_" not in out["leak"]
