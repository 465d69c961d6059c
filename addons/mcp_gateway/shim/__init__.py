"""The stdio shim: local stdio MCP servers behind the gateway.

* :mod:`.child`  - the child process (process group, death signal, restarts with backoff).
* :mod:`.http11` - a minimal asyncio HTTP/1.1 server (no third-party web framework).
* :mod:`.bridge` - serves one stdio child as a loopback streamable-HTTP endpoint ``/mcp``.
* :mod:`.relay`  - the client's stdio <-> that endpoint, through the gateway as an HTTP proxy.
* :mod:`.cli`    - ``mcp-gateway stdio`` and ``mcp-gateway bridge``.
"""
