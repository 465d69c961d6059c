"""A 2026-07-28 (stateless) MCP server from the mcp 2.x SDK; run in the side virtualenv."""

import asyncio
import sys
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

mcp = MCPServer("modern")


@mcp.tool()
def echo(text: str) -> str:
    return text


@mcp.tool()
def leak() -> str:
    return "deploy key: ghp_" + "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0" + "21XlvR"  # valid CRC32 checksum


@mcp.tool()
def tagged(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    """Its argument is mirrored into an Mcp-Param-Region header by 2026-07-28 clients."""
    return f"region={region}"


@mcp.tool()
async def slow(ctx: Context, steps: int = 3, delay: float = 0.4) -> str:
    for i in range(steps):
        await ctx.report_progress(i + 1, steps)
        await asyncio.sleep(delay)
    return "done"


if __name__ == "__main__":
    mcp.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
