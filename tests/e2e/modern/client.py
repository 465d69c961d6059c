"""Drive a server with the mcp 2.x client; prints one JSON line of observations."""

import asyncio
import json
import sys
import time

from mcp.client.client import Client


async def main(url: str, mode: str) -> None:
    out: dict = {}
    async with Client(url, mode=mode) as c:
        out["version"] = c._session.protocol_version if c._session else None  # noqa: SLF001
        out["tools"] = sorted(t.name for t in (await c.list_tools()).tools)
        out["echo"] = (await c.call_tool("echo", {"text": "hi"})).content[0].text
        stamps: list[float] = []
        t0 = time.monotonic()

        async def prog(progress, total, message):
            stamps.append(round(time.monotonic() - t0, 3))

        r = await c.call_tool("slow", {"steps": 3, "delay": 0.4}, progress_callback=prog)
        out["slow"] = r.content[0].text
        out["progress"] = stamps
        out["end"] = round(time.monotonic() - t0, 3)
        out["leak"] = (await c.call_tool("leak", {})).content[0].text
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
