"""A tiny stdio MCP server for the shim tests (run: python fixture_server.py)."""

import asyncio
import os
import subprocess
import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel

mcp = FastMCP("shim-fixture")

# Fake credentials in well-known shapes (an AWS-style key id, a GitHub-style
# token with a fixed fake body); the gateway's rules should redact it.
FAKE_SECRET = "AKIA" + "Q3ZR7XWJ5M2TBN4K"
FAKE_GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5" + "0Zb5Hm"  # valid CRC32 tail


@mcp.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool()
def fake_secret() -> str:
    """Return a text that contains a fake secret."""
    return f"config: aws_access_key_id={FAKE_SECRET} github_token={FAKE_GITHUB}"


@mcp.tool()
async def ask_llm(prompt: str, ctx: Context) -> str:
    """Ask the client's model (sampling) and return its answer."""
    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
        max_tokens=50,
    )
    content = result.content
    return f"model said: {content.text if isinstance(content, TextContent) else content}"


class Answer(BaseModel):
    color: str


@mcp.tool()
async def ask_user(question: str, ctx: Context) -> str:
    """Ask the user (elicitation) and return the answer."""
    result = await ctx.elicit(question, schema=Answer)
    if result.action == "accept":
        return f"user chose {result.data.color}"
    return f"user {result.action}"


@mcp.tool()
async def roots(ctx: Context) -> str:
    """List the client's roots (a server->client request)."""
    result = await ctx.session.list_roots()
    return ",".join(str(r.uri) for r in result.roots)


@mcp.tool()
def crash() -> str:
    """Kill this server process (exit code 3) in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


@mcp.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@mcp.tool()
def spawn_grandchild() -> int:
    """Start a long-running grandchild process; return its pid."""
    p = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    return p.pid


@mcp.tool()
def big(n: int) -> str:
    """Return n bytes of text."""
    return "x" * n


@mcp.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "done"


@mcp.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report progress steps, then answer."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps)
    return f"{steps} steps"


_background: set = set()


@mcp.tool()
async def later_notice(delay: float, ctx: Context) -> str:
    """Send a log notification `delay` seconds after answering (no request in flight then)."""
    session = ctx.session

    async def later() -> None:
        await asyncio.sleep(delay)
        await session.send_log_message(level="info", data="later notice")

    task = asyncio.get_running_loop().create_task(later())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return "scheduled"


@mcp.tool()
def noise() -> str:
    """Write a non-JSON line to stdout, then answer."""
    print("this is not JSON; token ghp_R8x2Lq0vT5mN9bK3wY7cZ1dF6hJ4sA0pQe", flush=True)
    return "ok"


if __name__ == "__main__":
    if "--crash-at-start" in sys.argv:
        sys.exit(5)
    mcp.run("stdio")
