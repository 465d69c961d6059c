"""A stdio MCP server from the mcp 2.x SDK (speaks 2026-07-28); run with the side venv."""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("modern-stdio")


@mcp.tool()
def echo(text: str) -> str:
    return text


@mcp.tool(name="grüße")
def gruesse(name: str) -> str:
    return f"hallo {name}"


if __name__ == "__main__":
    mcp.run("stdio")
