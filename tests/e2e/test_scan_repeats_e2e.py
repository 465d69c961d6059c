"""Red-team round 31, through a real mitmdump in front of the official SDK's FastMCP server:
what the receiver gets when a message names a member twice."""

from __future__ import annotations

import json
import zlib

import httpx
import pytest

pytestmark = pytest.mark.e2e

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _github_token(body: str = "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2") -> str:
    n, out = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return "ghp_" + body + out.rjust(6, "0")


def test_a_token_in_a_member_named_twice_does_not_reach_the_server(
    mitmdump_factory, mcp_server_factory
):
    """``{"text": "ghp_…", "text": "café"}``: the gateway's parser and the server's keep the
    last copy, and the \\u escape made the scanner read the message as parsed, so the first
    copy, with the token, went on in the bytes the server got (where parsers that take a
    member's first copy read it). The request now reaches the server as it was scanned."""
    server = mcp_server_factory("stateless-json")
    md = mitmdump_factory(gateway=True, mode=f"reverse:{server.base}", shared=True)
    tok = _github_token()
    body = (
        b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo",'
        b'"arguments":{"text":"' + tok.encode() + b'","text":"caf\\u00e9"}}}'
    )
    server.reset()
    with httpx.Client(trust_env=False, timeout=30) as c:
        r = c.post(
            md.url_for(server),
            content=body,
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-11-25",
            },
        )
    assert r.status_code == 200, r.text
    assert json.loads(r.content)["result"]["content"][0]["text"] == "café"
    got = [q for q in server.requests() if q["method"] == "POST"]
    assert got, "the request did not reach the server"
    assert tok not in got[-1]["body"]
    assert json.loads(got[-1]["body"])["params"]["arguments"] == {"text": "café"}
