"""An MCP test server (FastMCP, official SDK) for the end-to-end tests and the benchmark.

Run:  python tests/e2e/servers/everything.py --transport streamable|json|stateless|stateless-json|sse --port P
          [--gzip] [--certfile cert.pem --keyfile key.pem]

Transports:
  streamable      Streamable HTTP on /mcp, FastMCP's default: every request answered with SSE.
  json            Streamable HTTP on /mcp with json_response=True (application/json answers).
  stateless       Streamable HTTP on /mcp, stateless_http=True (no Mcp-Session-Id), SSE answers.
  stateless-json  stateless and json_response: the cheapest shape, no session at all.
  sse             Legacy 2024-11-05 HTTP+SSE: GET /sse (endpoint event) + POST /messages/?session_id=.

Tools: echo, add, big, digest, slow_progress, burst, sample, elicit, leak, count,
last_request_headers, received.

Debug endpoints (plain HTTP, no MCP, for tests to read what the server really got; call
them directly, not through the gateway):
  GET /_debug/requests   every HTTP request seen: [{method, path, query, headers, body}]
                         (body decoded as UTF-8 with replacement, cut at 64 KiB)
  GET /_debug/calls      every tool call: [{tool, arguments}]
  GET /_debug/reset      forget both lists

Batch endpoint (FastMCP has none): POST /batch/mcp[?sse=1|array] takes a JSON-RPC batch of
tools/call echo/add and answers a JSON array (or SSE events); see `batch` below.

Benchmark endpoint (a fast synthetic MCP responder, so the server is not the bottleneck):
  POST /bench/stream     JSON-RPC tools/call body; params.arguments {"events": N, "size": S};
                         answers text/event-stream with N notifications/progress events of about
                         S bytes each, then the JSON-RPC result, as fast as possible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import zlib
from typing import Any

import anyio
import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import WebSocketRoute

MAX_LOG = 2000  # bounded request log
MAX_BODY = 64 * 1024

REQUESTS: list[dict[str, Any]] = []
CALLS: list[dict[str, Any]] = []


# ----------------------------------------------------------------------------- fake secrets

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


def github_token(body: str = "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0") -> str:
    """A `ghp_` token whose last 6 characters are the base62 CRC32 of the 30-char body."""
    assert len(body) == 30
    return "ghp_" + body + _base62(zlib.crc32(body.encode()), 6)


FAKE_SECRETS = {
    "aws_access_key_id": "AKIAQ3EGUIF5ZK7XVJ2M",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lm2Xv9R",
    "github_token": github_token(),
    "email": "jane.doe@example.org",
    # blocked by the default rules (private-key), in both directions
    "private_key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACBq8Zl3Wc1Rv9Tn4Xk2Jm7Hs5Ld0Fg3Pb6Nc9Vy1Qw8AAAAJgPq2Mz\n"
        "-----END OPENSSH PRIVATE KEY-----"
    ),
}


def leak_text(kind: str) -> str:
    if kind == "aws":
        return (
            f"aws_access_key_id = {FAKE_SECRETS['aws_access_key_id']}\n"
            f"aws_secret_access_key = {FAKE_SECRETS['aws_secret_access_key']}\n"
        )
    if kind == "github":
        return f"GITHUB_TOKEN={FAKE_SECRETS['github_token']}"
    if kind == "email":
        return f"contact: {FAKE_SECRETS['email']}"
    if kind == "key":
        return FAKE_SECRETS["private_key"]
    if kind == "all":
        return "\n".join(leak_text(k) for k in ("aws", "github", "email"))
    if kind == "none":
        return "nothing secret here"
    raise ValueError(f"unknown leak kind {kind!r} (aws, github, email, key, all, none)")


# ----------------------------------------------------------------------------- payloads

_BLOCK = 'line {:08d} "quoted" \\ back, ünïcødé ✓ tab\there\n'


def big_payload(n_bytes: int) -> str:
    """Deterministic text of exactly n_bytes UTF-8 bytes (quotes, backslashes, non-ASCII)."""
    parts: list[str] = []
    size = 0
    i = 0
    while size < n_bytes:
        s = _BLOCK.format(i)
        parts.append(s)
        size += len(s.encode())
        i += 1
    data = "".join(parts).encode()[:n_bytes]
    # never cut inside a multi-byte character: pad the tail with ASCII
    text = data.decode("utf-8", errors="ignore")
    return text + "x" * (n_bytes - len(text.encode()))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------- the server


class IssuedToken(BaseModel):
    """A structured result whose schema a redaction breaks (a pattern)."""

    token: str = Field(pattern=r"^ghp_[A-Za-z0-9]{36}$")
    scopes: str = "repo"


class Contact(BaseModel):
    name: str = Field(description="Your name")
    ok: bool = Field(default=True, description="Proceed?")


def build(transport: str) -> FastMCP:
    mcp = FastMCP(
        "everything",
        json_response=transport in ("json", "stateless-json"),
        stateless_http=transport in ("stateless", "stateless-json"),
        log_level="WARNING",
    )

    def seen(tool: str, **arguments: Any) -> None:
        CALLS.append({"tool": tool, "arguments": arguments})
        del CALLS[:-MAX_LOG]

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        seen("echo", text=text)
        return text

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        seen("add", a=a, b=b)
        return a + b

    @mcp.tool()
    def big(n_bytes: int = 5_000_000) -> str:
        """A deterministic text of exactly n_bytes bytes; `digest` gives its sha256."""
        seen("big", n_bytes=n_bytes)
        return big_payload(n_bytes)

    @mcp.tool()
    def digest(n_bytes: int = 5_000_000) -> str:
        """sha256 hex of big(n_bytes)'s text, computed on the server."""
        seen("digest", n_bytes=n_bytes)
        return sha256_text(big_payload(n_bytes))

    @mcp.tool()
    async def slow_progress(ctx: Context, steps: int = 3, delay: float = 0.4) -> str:
        """Send a progress notification, then sleep `delay`, `steps` times; then answer."""
        seen("slow_progress", steps=steps, delay=delay)
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}/{steps}")
            await anyio.sleep(delay)
        return f"done after {steps} steps"

    @mcp.tool()
    async def burst(ctx: Context, events: int = 100) -> str:
        """Send `events` progress notifications back to back, then answer."""
        seen("burst", events=events)
        for i in range(events):
            await ctx.report_progress(i + 1, events)
        return f"sent {events}"

    @mcp.tool()
    async def sample(ctx: Context, prompt: str, on_get_stream: bool = False, leak: str = "") -> str:
        """Ask the client's LLM (sampling/createMessage) and return its text.

        on_get_stream=True sends the request without related_request_id, so streamable HTTP
        servers deliver it on the standalone GET stream instead of the POST's SSE stream.
        leak="key" (or another leak kind) appends the server's own fake secret to the prompt.
        """
        seen("sample", prompt=prompt, on_get_stream=on_get_stream, leak=leak)
        text = f"{prompt}\n{leak_text(leak)}" if leak else prompt
        result = await ctx.session.create_message(
            [SamplingMessage(role="user", content=TextContent(type="text", text=text))],
            max_tokens=64,
            related_request_id=None if on_get_stream else ctx.request_id,
        )
        content = result.content
        text = content.text if isinstance(content, TextContent) else str(content)
        return f"sampled[{result.model}]: {text}"

    @mcp.tool()
    async def elicit(ctx: Context, question: str = "Who are you?") -> str:
        """Ask the user (elicitation/create) for a name; return what came back."""
        seen("elicit", question=question)
        res = await ctx.elicit(question, Contact)
        if res.action == "accept":
            return f"accepted: name={res.data.name} ok={res.data.ok}"
        return f"{res.action}"

    @mcp.tool()
    def leak(kind: str = "all") -> str:
        """Return fake secrets: aws, github, email, key (a private key), all, none."""
        seen("leak", kind=kind)
        return leak_text(kind)

    @mcp.tool()
    def leak_chunks(size: int = 16) -> list[TextContent]:
        """The GitHub leak as text blocks of ``size`` characters (output read in chunks)."""
        seen("leak_chunks", size=size)
        out = leak_text("github") + "\nok"
        return [TextContent(type="text", text=out[i : i + size]) for i in range(0, len(out), size)]

    @mcp.tool()
    def leak_mail() -> str:
        """A raw e-mail carrying the GitHub leak in quoted-printable, lines cut at 76."""
        import quopri

        seen("leak_mail")
        body = "Subject: CI\r\n\r\nThe deploy token for the pipeline, keep it safe: " + leak_text(
            "github"
        )
        return quopri.encodestring(body.encode()).decode()

    @mcp.tool()
    def leak_terminal(width: int = 80) -> str:
        """A terminal pane as ``tmux capture-pane -p`` without ``-J`` returns it: the GitHub
        leak echoed after a long command line, cut at the pane's ``width``."""
        seen("leak_terminal", width=width)
        line = "dev@box:~/src/app$ ./deploy.sh --target staging && echo " + (leak_text("github"))
        rows = [line[i : i + width] for i in range(0, len(line), width)]
        return "\n".join(
            ["dev@box:~/src/app$ git status", "nothing to commit", *rows, "dev@box:~$"]
        )

    @mcp.tool()
    def leak_dump() -> str:
        """``xxd`` of a .env file holding the GitHub leak, as a shell tool returns it."""
        seen("leak_dump")
        data = ("# deploy settings\n" + leak_text("github") + "\nDEBUG=1\n").encode()
        rows = []
        for off in range(0, len(data), 16):
            chunk = data[off : off + 16]
            hexed = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
            shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            rows.append(f"{off:08x}: {hexed:<39}  {shown}")
        return "$ xxd .env\n" + "\n".join(rows) + "\n$ "

    @mcp.tool()
    def issue_token() -> IssuedToken:
        """A fake GitHub token as a structured result whose outputSchema has a pattern."""
        seen("issue_token")
        return IssuedToken(token=FAKE_SECRETS["github_token"])

    @mcp.tool()
    def count() -> int:
        """How many tool calls this server process has seen (this one included)."""
        seen("count")
        return len(CALLS)

    @mcp.tool()
    def last_request_headers(ctx: Context) -> dict[str, str]:
        """The HTTP headers of the request that carried this call (lower-case names)."""
        seen("last_request_headers")
        req = ctx.request_context.request
        if req is None:
            return {}
        return {k.lower(): v for k, v in req.headers.items()}

    @mcp.tool()
    def received() -> list[dict[str, Any]]:
        """Every tool call's arguments seen so far (before this one)."""
        out = list(CALLS)
        seen("received")
        return out

    @mcp.custom_route("/_debug/requests", methods=["GET"])
    async def debug_requests(request: Request) -> Response:
        return JSONResponse(REQUESTS)

    @mcp.custom_route("/_debug/calls", methods=["GET"])
    async def debug_calls(request: Request) -> Response:
        return JSONResponse(CALLS)

    @mcp.custom_route("/_debug/reset", methods=["GET"])
    async def debug_reset(request: Request) -> Response:
        REQUESTS.clear()
        CALLS.clear()
        return JSONResponse({"ok": True})

    @mcp.custom_route("/batch/mcp", methods=["POST"])
    async def batch(request: Request) -> Response:
        """A minimal 2025-03-26-style endpoint that accepts JSON-RPC batches (FastMCP does not).

        Knows tools/call for echo and add; answers a JSON array (or, with ?sse=1, an SSE
        stream with one event per response, or with ?sse=array one event holding the array).
        """
        body = json.loads(await request.body())
        msgs = body if isinstance(body, list) else [body]
        out = []
        for m in msgs:
            if not isinstance(m, dict) or "id" not in m or "method" not in m:
                continue  # notifications and responses get no answer
            params = m.get("params") or {}
            args = params.get("arguments") or {}
            seen(params.get("name", "?"), **args)
            if m["method"] == "tools/call" and params.get("name") == "echo":
                text = str(args.get("text", ""))
            elif m["method"] == "tools/call" and params.get("name") == "add":
                text = str(int(args.get("a", 0)) + int(args.get("b", 0)))
            else:
                out.append(
                    {"jsonrpc": "2.0", "id": m["id"], "error": {"code": -32601, "message": "nope"}}
                )
                continue
            result = {"content": [{"type": "text", "text": text}], "isError": False}
            out.append({"jsonrpc": "2.0", "id": m["id"], "result": result})
        if not out:
            return Response(status_code=202)
        mode = request.query_params.get("sse")
        if mode:
            items = [out] if mode == "array" else out
            data = b"".join(
                b"event: message\ndata: " + json.dumps(x).encode() + b"\n\n" for x in items
            )
            return Response(data, media_type="text/event-stream")
        return JSONResponse(out if isinstance(body, list) else out[0])

    @mcp.custom_route("/bench/stream", methods=["POST"])
    async def bench_stream(request: Request) -> Response:
        body = json.loads(await request.body())
        args = (body.get("params") or {}).get("arguments") or {}
        n = int(args.get("events", 2000))
        size = int(args.get("size", 200))
        rid = body.get("id")
        pad = "x" * max(0, size - 110)

        def events():
            for i in range(n):
                msg = {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": rid, "progress": i + 1, "total": n, "message": pad},
                }
                yield b"event: message\r\ndata: " + json.dumps(msg).encode() + b"\r\n\r\n"
            res = {
                "jsonrpc": "2.0",
                "id": rid,
                "result": {"content": [{"type": "text", "text": f"sent {n}"}], "isError": False},
            }
            yield b"event: message\r\ndata: " + json.dumps(res).encode() + b"\r\n\r\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    return mcp


class Recorder:
    """ASGI wrapper that logs every HTTP request (method, path, headers, body) into REQUESTS."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # the handshake's headers (no body)
            REQUESTS.append(
                {
                    "method": "WEBSOCKET",
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "headers": {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                    },
                    "body": "",
                }
            )
            del REQUESTS[:-MAX_LOG]
            return await self.app(scope, receive, send)
        if scope["type"] != "http" or scope["path"].startswith("/_debug/"):
            return await self.app(scope, receive, send)
        entry = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            "body": "",
        }
        REQUESTS.append(entry)
        del REQUESTS[:-MAX_LOG]
        chunks: list[bytes] = []
        size = 0

        async def recv():
            nonlocal size
            message = await receive()
            if message["type"] == "http.request" and size < MAX_BODY:
                b = message.get("body", b"")
                chunks.append(b[: MAX_BODY - size])
                size += len(b)
                entry["body"] = b"".join(chunks).decode("utf-8", errors="replace")
            return message

        return await self.app(scope, recv, send)


def _websocket_endpoint(mcp: FastMCP):
    """One MCP session per WebSocket connection (subprotocol "mcp")."""
    from mcp.server.websocket import websocket_server

    async def endpoint(websocket) -> None:
        async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (r, w):
            server = mcp._mcp_server
            await server.run(r, w, server.create_initialization_options())

    return endpoint


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--transport",
        choices=["streamable", "json", "stateless", "stateless-json", "sse", "websocket"],
        default="streamable",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--gzip", action="store_true", help="gzip JSON answers (GZipMiddleware)")
    p.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--keyfile", help="private key for --certfile (PEM)")
    p.add_argument(
        "--http2", action="store_true", help="serve with hypercorn, offering h2 (needs --certfile)"
    )
    args = p.parse_args(argv)
    mcp = build(args.transport)
    app = mcp.sse_app() if args.transport == "sse" else mcp.streamable_http_app()
    if args.transport == "websocket":  # the SDK 1.x's WebSocket transport, at /ws
        app.router.routes.append(WebSocketRoute("/ws", endpoint=_websocket_endpoint(mcp)))
    if args.gzip:
        from starlette.middleware.gzip import GZipMiddleware

        app = GZipMiddleware(app, minimum_size=200)
    if args.http2:  # uvicorn speaks HTTP/1.1 only
        import asyncio

        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        cfg = Config()
        cfg.bind = [f"{args.host}:{args.port}"]
        cfg.certfile, cfg.keyfile = args.certfile, args.keyfile
        cfg.alpn_protocols = ["h2", "http/1.1"]
        cfg.loglevel = os.environ.get("E2E_SERVER_LOG_LEVEL", "warning").upper()
        asyncio.run(serve(Recorder(app), cfg))
        return
    uvicorn.run(
        Recorder(app),
        host=args.host,
        port=args.port,
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
        log_level=os.environ.get("E2E_SERVER_LOG_LEVEL", "warning"),
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
