"""Drive a stdio server command with the mcp 2.x client; prints one JSON line."""

import asyncio
import json
import sys

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


async def main() -> None:
    mode = sys.argv[1]
    params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:])
    async with Client(params, mode=mode) as c:
        out = {"version": c._session.protocol_version if c._session else None}  # noqa: SLF001
        out["tools"] = sorted(t.name for t in (await c.list_tools()).tools)
        out["echo"] = (await c.call_tool("echo", {"text": "hi"})).content[0].text
        out["gruss"] = (await c.call_tool("grüße", {"name": "Welt"})).content[0].text
    print(json.dumps(out))


asyncio.run(asyncio.wait_for(main(), 60))
