"""``mcp-gateway stdio`` and ``mcp-gateway bridge``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from .bridge import DEFAULT_MAX_MESSAGE_BYTES, Bridge
from .refs import RefError, parse_env_assignments

DEFAULT_GATEWAY = "http://127.0.0.1:8080"


def log(msg: str) -> None:
    """stderr, robust against a non-blocking or closed stderr."""
    data = (msg.rstrip("\n") + "\n").encode("utf-8", "replace")
    with contextlib.suppress(OSError):
        view = memoryview(data)
        for _ in range(1000):
            try:
                n = os.write(2, view)
            except BlockingIOError:
                import time

                time.sleep(0.001)
                continue
            view = view[n:]
            if not view:
                break


def _positive(kind, zero: bool = False, minimum: float | None = None):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        low = minimum if minimum is not None else 0
        if v < low or (v == 0 and not zero and minimum is None):
            raise argparse.ArgumentTypeError(
                f"must be {'at least ' + str(low) if minimum else 'positive'}: {text}"
            )
        return v

    return parse


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= v <= 65535:
        # (bind() said it with a traceback: "OverflowError: bind(): port must be 0-65535")
        raise argparse.ArgumentTypeError(f"must be 0..65535 (0: a free one): {text}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=REF",
        help="environment variable for the server; REF is env://NAME, file:///path, "
        "keyring://service/name or a literal value (repeatable; values are never printed)",
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=300.0,
        metavar="SECONDS",
        help="per-request timeout; an unanswered request gets a JSON-RPC error (default 300)",
    )
    p.add_argument(
        "--restart",
        dest="restart",
        action="store_true",
        default=True,
        help="restart the server when it crashes, with exponential backoff (default)",
    )
    p.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="do not restart a crashed server; the shim exits instead",
    )
    p.add_argument(
        "--max-restarts",
        type=_positive(int, zero=True),
        default=5,
        metavar="N",
        help="give up after N restarts without a stable minute (default 5)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=_positive(int, minimum=1024),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        metavar="N",
        help=f"largest JSON-RPC message accepted either way (default {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARGS...]",
        help="the stdio MCP server to run",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stdio",
        help="run a stdio MCP server behind the gateway (use it as the client's command)",
        description="Start COMMAND as a child stdio MCP server and relay this process's stdio "
        "to it through the gateway, so the gateway's rules, limits and audit see every message "
        "with NAME as the server's name.",
    )
    p.add_argument(
        "--name", help="the server's name in rules and audit (default: the command's basename)"
    )
    p.add_argument(
        "--gateway",
        default=DEFAULT_GATEWAY,
        metavar="URL",
        help=f"the running gateway (an HTTP proxy; default {DEFAULT_GATEWAY})",
    )
    p.add_argument(
        "--api-key",
        metavar="REF",
        help="credential for a gateway that requires one, sent as `Authorization: Bearer "
        "<value>`; REF as for --env (env://NAME, file:///path, keyring://service/name)",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=REF",
        help="extra header on every request to the gateway (repeatable; REF as for --env)",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="if the gateway is unreachable, connect directly (traffic NOT inspected)",
    )
    _common(p)
    p.set_defaults(func=cmd_stdio)

    b = subparsers.add_parser(
        "bridge",
        help="expose a stdio MCP server as a loopback streamable-HTTP endpoint",
        description="Start COMMAND as a child stdio MCP server and serve it at "
        "http://HOST:PORT/mcp (streamable HTTP) for clients that speak HTTP themselves.",
    )
    b.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    b.add_argument(
        "--port", type=_port, default=0, help="port (default: a free one, printed on stderr)"
    )
    b.add_argument(
        "--token",
        help="require this bearer token (Authorization: Bearer T); "
        "or --token-ref env://NAME / file:///path",
    )
    b.add_argument("--token-ref", metavar="REF", help="read the bearer token from a reference")
    b.add_argument("--name", help="name used in log lines (default: the command's basename)")
    _common(b)
    b.set_defaults(func=cmd_bridge)


def _command(args) -> list[str] | None:
    cmd = list(args.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        log(
            f"mcp-gateway {args.command_name}: no server command given (usage: ... -- COMMAND ARGS...)"
        )
        return None
    return cmd


def _child_env(args) -> dict[str, str] | None:
    try:
        extra = parse_env_assignments(args.env)
    except RefError as e:
        log(f"mcp-gateway: {e}")
        return None
    return {**os.environ, **extra}


def _spawn_error(cmd: list[str], e: OSError) -> int:
    if isinstance(e, FileNotFoundError):
        log(f"mcp-gateway: cannot start the MCP server: command not found: {cmd[0]!r}")
        return 127
    log(f"mcp-gateway: cannot start the MCP server {cmd[0]!r}: {e.strerror or e}")
    return 126


def _child_spec(args, command_name: str) -> tuple[list[str], dict[str, str]] | None:
    """The child's command and environment, or None after reporting a usage error."""
    args.command_name = command_name
    cmd = _command(args)
    if cmd is None:
        return None
    env = _child_env(args)
    if env is None:
        return None
    return cmd, env


def gateway_url(value: str) -> str | None:
    """The gateway as an http:// URL (``host:port`` is taken as ``http://host:port``), or
    None when it cannot be one."""
    url = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname or port is None and ":" in parts.netloc:
        return None
    return url


def cmd_stdio(args) -> int:
    gateway = gateway_url(args.gateway)
    if gateway is None:
        log(
            f"mcp-gateway stdio: --gateway {args.gateway!r} is not an http:// proxy address "
            "(for example 127.0.0.1:8080 or http://127.0.0.1:8080)"
        )
        return 2
    args.gateway = gateway
    spec = _child_spec(args, "stdio")
    if spec is None:
        return 2
    cmd, env = spec
    name = args.name or os.path.basename(cmd[0]) or cmd[0]
    try:
        headers = _gateway_headers(args)
    except RefError as e:
        log(f"mcp-gateway stdio: {e}")
        return 2
    return _run(_stdio_main(args, cmd, env, name, headers))


def _gateway_headers(args) -> dict[str, str]:
    from .refs import resolve_ref

    headers: dict[str, str] = {}
    for n, item in enumerate(args.header, 1):
        hname, sep, ref = item.partition("=")
        hname = hname.strip()
        if not sep or not hname or any(c in hname for c in " :\r\n"):
            raise RefError(f"--header argument #{n}: expected NAME=REF")
        value = resolve_ref(ref)
        if "\r" in value or "\n" in value:
            raise RefError(f"--header {hname}: the value contains a line break")
        headers[hname.lower()] = value
    if args.api_key:
        if not args.api_key.startswith(("env://", "file://", "keyring://")):
            log(
                "mcp-gateway stdio: WARNING: --api-key is a literal value: `ps` shows it to "
                "every local user; use env://NAME, file:///path or keyring://service/name"
            )
        value = resolve_ref(args.api_key).strip()
        if "\r" in value or "\n" in value:
            raise RefError("--api-key: the value contains a line break")
        headers["authorization"] = f"Bearer {value}"
    return headers


def cmd_bridge(args) -> int:
    spec = _child_spec(args, "bridge")
    if spec is None:
        return 2
    cmd, env = spec
    token = args.token
    if args.token_ref:
        from .refs import resolve_ref

        try:
            token = resolve_ref(args.token_ref)
        except RefError as e:
            log(f"mcp-gateway bridge: {e}")
            return 2
    name = args.name or os.path.basename(cmd[0]) or cmd[0]
    return _run(_bridge_main(args, cmd, env, name, token))


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 130


def _install_signals(stop: asyncio.Event, on_signal) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)


def _ignore_signals() -> None:
    """Done, on a signal: a second one (Claude Code sends SIGTERM 0.1 s after SIGINT) is
    ignored. asyncio.run's closing loop puts the default actions back, so one arriving between
    then and the exit killed the shim (exit -15 instead of 130), its work already done."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)


def _stop_on_fatal(stop: asyncio.Event) -> tuple[list[str], Callable[[str], None]]:
    """A fatal child failure: let the errors for requests in flight reach the client, then stop."""
    fatal: list[str] = []
    loop = asyncio.get_running_loop()

    def on_fatal(why: str) -> None:
        fatal.append(why)
        loop.call_later(1.0, stop.set)

    return fatal, on_fatal


def _make_bridge(args, cmd, env, name, token, on_fatal, **listen) -> Bridge:
    return Bridge(
        cmd,
        env,
        token=token,
        timeout=args.timeout,
        max_message_bytes=args.max_message_bytes,
        restart=args.restart,
        max_restarts=args.max_restarts,
        name=name,
        on_fatal=on_fatal,
        log=log,
        **listen,
    )


async def _stdio_main(
    args, cmd: list[str], env: dict[str, str], name: str, headers: dict[str, str]
) -> int:
    from .relay import Relay, open_stdin

    stop = asyncio.Event()
    fatal, on_fatal = _stop_on_fatal(stop)
    bridge = _make_bridge(args, cmd, env, name, secrets.token_urlsafe(32), on_fatal)
    try:
        await bridge.start()
    except OSError as e:
        return _spawn_error(cmd, e)
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        signalled.append(sig)
        stop.set()

    _install_signals(stop, on_signal)
    relay = Relay(
        bridge.url,
        token=bridge.token,
        name=name,
        gateway=args.gateway,
        direct_fallback=args.direct,
        timeout=args.timeout,
        max_message_bytes=args.max_message_bytes,
        log=log,
        extra_headers=headers,
    )
    try:
        read = await open_stdin()
        await relay.run(read, stop)
    finally:
        relay.closing = True
        try:
            # end the session while the bridge still answers, on a signal too: Claude Code
            # ends its stdio servers with SIGINT and SIGTERM and never closes their stdin,
            # and without the DELETE each of its sessions stayed open at the gateway
            if not fatal:
                await relay.end_session()
        finally:
            # then stop the server, whatever happened: nothing may outlive the shim
            await bridge.close()
            await relay.close(delete_session=False)
            if signalled:
                _ignore_signals()
    if fatal:
        return 1
    return 128 + signalled[0] if signalled else 0


async def _bridge_main(args, cmd, env, name, token) -> int:
    stop = asyncio.Event()
    fatal, on_fatal = _stop_on_fatal(stop)
    try:
        bridge = _make_bridge(args, cmd, env, name, token, on_fatal, host=args.host, port=args.port)
    except ValueError as e:
        log(f"mcp-gateway bridge: {e}")
        return 2
    try:
        await bridge.start()
    except OSError as e:
        if e.errno is not None and bridge.sup.child is not None:  # listening failed
            await bridge.close()
            log(f"mcp-gateway bridge: cannot listen on {args.host}:{args.port}: {e.strerror or e}")
            return 1
        return _spawn_error(cmd, e)
    _install_signals(stop, lambda sig: stop.set())
    log(
        f"mcp-gateway bridge: serving {name!r} at {bridge.url}"
        + (" (bearer token required)" if token else "")
    )
    if not token:
        log(
            "mcp-gateway bridge: WARNING: no --token-ref: every local user and process can "
            f"call this server at {bridge.url} directly, without the gateway (no inspection, "
            "no audit); set one with --token-ref env://NAME"
        )
    elif args.token and not args.token_ref:
        log(
            "mcp-gateway bridge: WARNING: --token puts the token on the command line, where "
            "`ps` shows it to every local user; use --token-ref env://NAME or file:///path"
        )
    try:
        await stop.wait()
    finally:
        await bridge.close()
    return 1 if fatal else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m mcp_gateway.shim.cli stdio|bridge ...`` (the same as ``mcp-gateway``)."""
    parser = argparse.ArgumentParser(prog="mcp-gateway")
    register(parser.add_subparsers(dest="command_group", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
