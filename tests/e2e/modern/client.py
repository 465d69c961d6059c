"""Drive a server with the mcp 2.x client; prints one JSON line of observations."""

import asyncio
import json
import sys
import time

from mcp.client.client import Client
from mcp.shared.exceptions import MCPError

TOKEN = "ghp_" + "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0" + "21XlvR"  # valid CRC32 checksum
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBq8Zl3Wc1Rv9Tn4Xk2Jm7Hs5Ld0Fg3Pb6Nc9Vy1Qw8AAAAJgPq2Mz\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


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
        # an argument mirrored into an Mcp-Param-* header, holding a secret
        out["tagged"] = (await c.call_tool("tagged", {"region": f"{TOKEN}:x"})).content[0].text
        try:
            await c.call_tool("echo", {"text": PEM})
            out["blocked"] = None
        except MCPError as e:
            out["blocked"] = [e.error.code, e.error.message]
        out["after"] = (await c.call_tool("echo", {"text": "still here"})).content[0].text
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
