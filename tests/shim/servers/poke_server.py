"""A stdio MCP server that answers initialize and ping, leaves subscriptions/listen open
(no answer: long-lived), and logs a message whenever the client sends notifications/poke."""

import json
import sys

for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    method = m.get("method")
    if method == "initialize":
        out = {
            "jsonrpc": "2.0",
            "id": m["id"],
            "result": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"logging": {}},
                "serverInfo": {"name": "poke", "version": "1"},
            },
        }
    elif method == "ping":
        out = {"jsonrpc": "2.0", "id": m["id"], "result": {}}
    elif method == "notifications/poke":
        n = (m.get("params") or {}).get("n")
        out = {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": f"poke-{n}"},
        }
    else:
        continue
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
