"""Entry script: `mitmdump -s addons/gateway.py`. It only assembles the addons."""

from mcp_gateway.assemble import build_addons

addons = build_addons()
