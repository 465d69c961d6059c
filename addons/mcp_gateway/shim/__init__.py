"""The stdio shim: local stdio MCP servers behind the gateway.

* :mod:`.child`      - the child process (process group, reaper, death signal, restarts).
* :mod:`.http11`     - a minimal asyncio HTTP/1.1 server (no third-party web framework).
* :mod:`.bridge`     - serves one stdio child as a loopback streamable-HTTP endpoint ``/mcp``.
* :mod:`.httpclient` - a minimal keep-alive HTTP/1.1 client (through a proxy or direct).
* :mod:`.relay`      - the client's stdio <-> that endpoint, through the gateway as an HTTP proxy.
* :mod:`.refs`       - ``env://``, ``file://``, ``keyring://`` references for the child's environment.
* :mod:`.cli`        - ``mcp-gateway stdio`` and ``mcp-gateway bridge``.
"""
