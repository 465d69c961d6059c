"""Helpers shared by the shim tests (imported by path: tests run with --import-mode=importlib)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = str(HERE / "servers" / "fixture_server.py")
PY = sys.executable
SHIM = [PY, "-m", "mcp_gateway.shim.cli"]
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait until none of the pids is alive; return the survivors."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def descendants(pid: int) -> list[int]:
    """All descendants of pid (a /proc scan, no psutil)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def kill_quietly(pids: list[int]) -> None:
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, 9)


class Mitmdump:
    """A real mitmdump on a free loopback port; ``scripts`` are -s addons."""

    def __init__(
        self,
        tmp: Path,
        scripts: list[str] = (),
        options: dict[str, str] | None = None,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.tmp = tmp
        self.log = tmp / f"mitmdump-{self.port}.log"
        cmd = [
            str(Path(PY).parent / "mitmdump"),
            "--listen-host",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--set",
            f"confdir={tmp / 'mitmconf'}",
        ]
        for s in scripts:
            cmd += ["-s", s]
        for k, v in (options or {}).items():
            cmd += ["--set", f"{k}={v}"]
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("mitmdump did not start listening within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()


class RawShim:
    """The shim as a subprocess driven with raw JSON lines (asyncio)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = bytearray()
        self._err_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        while True:
            chunk = await self.proc.stderr.read(65536)
            if not chunk:
                return
            self.stderr += chunk

    @classmethod
    async def start(cls, *shim_args: str, server: list[str] | None = None) -> RawShim:
        server = server if server is not None else [PY, FIXTURE]
        proc = await asyncio.create_subprocess_exec(
            *SHIM,
            "stdio",
            *shim_args,
            "--",
            *server,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**27,
            cwd=ROOT,
        )
        return cls(proc)

    async def send(self, obj) -> None:
        data = obj if isinstance(obj, bytes) else orjson.dumps(obj)
        self.proc.stdin.write(data + b"\n")
        await self.proc.stdin.drain()

    async def recv(self, timeout: float = 20.0):
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, "the shim closed stdout"
        return orjson.loads(line)

    async def recv_id(self, id_, timeout: float = 20.0):
        """Read until the response for id_ (other messages are collected in .others)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            msg = await self.recv(max(0.1, deadline - asyncio.get_running_loop().time()))
            if "method" not in msg and msg.get("id") == id_:
                return msg

    async def initialize(self) -> dict:
        await self.send(INIT)
        resp = await self.recv_id(0)
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return resp

    async def call(self, id_, tool: str, args: dict | None = None, timeout: float = 20.0) -> dict:
        await self.send(
            {
                "jsonrpc": "2.0",
                "id": id_,
                "method": "tools/call",
                "params": {"name": tool, "arguments": args or {}},
            }
        )
        return await self.recv_id(id_, timeout)

    async def close(self) -> tuple[int, str]:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._err_task, 5)
        return self.proc.returncode, self.stderr.decode("utf-8", "replace")
