"""The child stdio MCP server: start, read, write, stop, restart.

No orphans:

* the child runs in its own process group (``setsid``), so stopping it signals the whole
  tree (``npx`` -> ``sh`` -> ``node``): SIGTERM, a short grace period, then SIGKILL;
* a tiny reaper (``/bin/sh``, its own session) waits on a pipe that only the shim holds:
  when the shim dies in any way, even by SIGKILL, it stops the child's whole group;
* on Linux the child also gets ``PR_SET_PDEATHSIG`` (SIGTERM), a second line of defence;
* when a child exits by itself, what is left of its group is killed before any restart;
* every live group is also killed from an ``atexit`` hook, and the child's stdin is a pipe
  held only by the shim, so a dead shim means EOF on the server's stdin.

The child's stderr is inherited: it goes straight to the shim's stderr.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

READ_CHUNK = 256 * 1024
# A server whose stdout ended but which still runs can never answer again: every request
# waited out --timeout (300 s by default), with nothing in the log saying why. It gets this
# long to exit by itself (a server shutting down closes stdout first), then it is stopped, and
# its exit is handled as a crash: requests in flight fail at once, and it is restarted.
STDOUT_EOF_GRACE = 2.0
EXIT_POLL = 0.25  # s: how often an exit hidden by pipes held open is looked for
_PR_SET_PDEATHSIG = 1

_live_groups: set[int] = set()


def _kill_live_groups() -> None:  # atexit: last resort, synchronous
    for pgid in list(_live_groups):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    _live_groups.clear()


atexit.register(_kill_live_groups)


def _make_preexec() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the forked child, before exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the shim died between fork and prctl
            os._exit(1)

    return preexec


# Sits in its own session with the read end of a pipe only the shim holds; when the shim
# dies in any way (even SIGKILL, even on macOS) the read returns and it stops the child's
# whole process group, grandchildren included.
_REAPER_SCRIPT = 'read _; kill -TERM -"$1" 2>/dev/null; sleep 1; kill -KILL -"$1" 2>/dev/null'


def _start_reaper(pgid: int) -> tuple[subprocess.Popen, int] | None:
    if not os.path.exists("/bin/sh"):  # pragma: no cover
        return None
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _REAPER_SCRIPT, "mcp-gateway-reaper", str(pgid)],
            stdin=r,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:  # pragma: no cover
        os.close(w)
        return None
    finally:
        os.close(r)
    return proc, w


class ChildUnavailable(Exception):
    """The child is not running and will not come back (or not in time)."""


class ChildProcess:
    """One run of the command. Lines of stdout go to ``on_line`` (without the newline)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        on_line: Callable[[bytes], None],
        on_oversize: Callable[[bytes, int], None],
        max_line: int,
        room: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.on_line = on_line
        self.on_oversize = on_oversize
        self.max_line = max_line
        self.room = room  # awaited before each read: the reader's backpressure
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self._reader: asyncio.Task | None = None
        self._reaper: tuple[subprocess.Popen, int] | None = None
        self._write_lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        """Spawn the command; raises OSError (FileNotFoundError, PermissionError...)."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # inherited: the child's stderr is our stderr
            env=self.env,
            start_new_session=True,
            preexec_fn=_make_preexec(),
        )
        _live_groups.add(self.proc.pid)
        self._reaper = _start_reaper(self.proc.pid)
        self.started_at = time.monotonic()
        self._reader = asyncio.create_task(self._read_stdout(), name=f"child-stdout-{self.pid}")

    async def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        stream = self.proc.stdout
        buf = bytearray()
        discarding = 0  # > 0: inside an oversized line, bytes dropped so far
        prefix = b""
        while True:
            if self.room is not None:
                await self.room()
            try:
                chunk = await stream.read(READ_CHUNK)
            except (ConnectionError, OSError):
                chunk = b""
            if not chunk:
                break
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    piece = chunk[start:]
                    if discarding:
                        discarding += len(piece)
                    else:
                        buf += piece
                        if len(buf) > self.max_line:
                            prefix = bytes(buf[:512])
                            discarding = len(buf)
                            buf.clear()
                    break
                piece = chunk[start:nl]
                start = nl + 1
                if discarding:
                    self._oversize(prefix, discarding + len(piece))
                    discarding = 0
                    continue
                if buf:
                    buf += piece
                    if len(buf) > self.max_line:
                        self._oversize(bytes(buf[:512]), len(buf))
                    else:
                        self._line(bytes(buf))
                    buf.clear()
                elif len(piece) > self.max_line:
                    self._oversize(piece[:512], len(piece))
                else:
                    self._line(piece)
        if buf and not discarding:
            self._line(bytes(buf))
        await self._stdout_ended()

    async def _stdout_ended(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), STDOUT_EOF_GRACE)
            return
        print(
            f"mcp-gateway: the MCP server (pid {proc.pid}) closed its stdout but is still "
            f"running after {STDOUT_EOF_GRACE:g}s: it can never answer again; stopping it",
            file=sys.stderr,
            flush=True,
        )
        self._killpg(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
        self._killpg(signal.SIGKILL)

    def _line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            try:
                self.on_line(line)
            except Exception as e:  # never let a routing bug kill the reader
                print(f"mcp-gateway: internal error routing a message: {e!r}", file=sys.stderr)

    def _oversize(self, prefix: bytes, size: int) -> None:
        try:
            self.on_oversize(prefix, size)
        except Exception as e:  # pragma: no cover
            print(f"mcp-gateway: internal error: {e!r}", file=sys.stderr)

    async def write(self, data: bytes, stall_timeout: float | None = None) -> None:
        """Write one framed message (``data`` ends with a newline).

        A server that stops reading its stdin for ``stall_timeout`` seconds is broken (a
        message may be half written): it is killed, and the supervisor restarts it."""
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            raise ChildUnavailable("the MCP server process is not running")
        async with self._write_lock:
            try:
                self.proc.stdin.write(data)
                await asyncio.wait_for(self.proc.stdin.drain(), stall_timeout)
            except TimeoutError:  # before OSError: TimeoutError is one
                self._killpg(signal.SIGKILL)
                raise ChildUnavailable(
                    f"the MCP server stopped reading its stdin for {stall_timeout:g}s; killed it"
                ) from None
            except (ConnectionError, OSError) as e:
                raise ChildUnavailable(f"cannot write to the MCP server process ({e})") from None

    async def wait(self) -> int:
        """Wait until the process exited and its stdout was fully read; the exit code."""
        assert self.proc is not None
        rc = await self._exited()
        # a crashed launcher (npx, sh...) may leave its children behind: not across restarts
        self._killpg(signal.SIGKILL)
        if self._reader is not None:
            # the group may hold stdout open (a grandchild); do not wait for it forever
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        self._forget()
        return rc

    async def _exited(self) -> int:
        """The exit code, as soon as the process exited. asyncio's ``Process.wait()`` returns
        only once its pipes are closed too (Python 3.12): a server that died while a child of
        its own (a launcher's, a helper daemon) held its stdout open was not seen gone, its
        requests waited out ``--timeout`` (300 s) and it was never restarted. The exit is
        also read from ``returncode``, which asyncio sets when it reaps the process."""
        proc = self.proc
        assert proc is not None
        waiter = asyncio.ensure_future(proc.wait())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=EXIT_POLL)
                if done:
                    return waiter.result()
                if proc.returncode is not None:
                    return proc.returncode
        finally:
            if not waiter.done():
                waiter.cancel()

    def _forget(self) -> None:
        if self.proc is not None:
            _live_groups.discard(self.proc.pid)
        reaper, self._reaper = self._reaper, None
        if reaper is not None:  # disarm it first: closing its pipe would fire it
            proc, fd = reaper
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(1.0)
            with contextlib.suppress(OSError):
                os.close(fd)

    def _killpg(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float = 0.5, term_grace: float = 1.0) -> None:
        """Close stdin, wait ``grace``, SIGTERM the group, wait, SIGKILL the group."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                self._killpg(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), term_grace)
                except TimeoutError:
                    pass
        # whatever is left of the group (grandchildren) goes now
        self._killpg(signal.SIGKILL)
        if proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 2.0)
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._forget()

    def kill_now(self) -> None:
        """Synchronous SIGKILL of the whole group (signal handlers, atexit)."""
        self._killpg(signal.SIGKILL)
        self._forget()


class Supervisor:
    """Keeps one child running: restarts a crashed child with exponential backoff.

    ``on_exit(returncode, restarting)`` is called when a child ended (after its stdout was
    drained); ``on_restart(child)`` after a restarted child was spawned and before it is
    marked ready (the bridge replays ``initialize`` there with :meth:`write_direct`).
    """

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        *,
        on_line: Callable[[bytes], None],
        on_oversize: Callable[[bytes, int], None],
        on_exit: Callable[[int, bool], None],
        on_restart: Callable[[], Awaitable[None]] | None = None,
        on_give_up: Callable[[str], None] | None = None,
        room: Callable[[], Awaitable[None]] | None = None,
        max_line: int = 64 * 1024 * 1024,
        restart: bool = True,
        max_restarts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.on_line = on_line
        self.on_oversize = on_oversize
        self.on_exit = on_exit
        self.on_restart = on_restart
        self.on_give_up = on_give_up
        self.room = room
        self.max_line = max_line
        self.restart = restart
        self.max_restarts = max_restarts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.child: ChildProcess | None = None
        self.ready = asyncio.Event()
        self.dead_reason: str | None = None
        self.restarts = 0  # restarts since the last stable period
        self.total_restarts = 0
        self._watcher: asyncio.Task | None = None
        self._closing = False
        self.dead = asyncio.Event()
        self._renew_lock = asyncio.Lock()

    def _new_child(self) -> ChildProcess:
        return ChildProcess(
            self.argv, self.env, self.on_line, self.on_oversize, self.max_line, self.room
        )

    async def start(self) -> None:
        """First start; raises OSError if the command cannot be executed."""
        child = self._new_child()
        await child.start()
        self.child = child
        self.ready.set()
        self._watcher = asyncio.create_task(self._watch(), name="child-watch")

    async def _watch(self) -> None:
        while not self._closing:
            child = self.child
            assert child is not None
            rc = await child.wait()
            self.ready.clear()
            if self._closing:
                return
            ran = time.monotonic() - child.started_at
            if ran >= self.stable_after:
                self.restarts = 0
            will_restart = self.restart and self.restarts < self.max_restarts
            self.on_exit(rc, will_restart)
            if not will_restart:
                why = _describe_exit(rc)
                if self.restart:
                    why += f"; gave up after {self.restarts} restarts"
                self._give_up(why)
                return
            delay = min(self.backoff_max, self.backoff_initial * (2**self.restarts))
            self.restarts += 1
            self.total_restarts += 1
            self.log(
                f"mcp-gateway: MCP server {_describe_exit(rc)}; restarting in {delay:.1f}s "
                f"(restart {self.restarts} of at most {self.max_restarts})"
            )
            await asyncio.sleep(delay)
            if self._closing:
                return
            child = self._new_child()
            try:
                await child.start()
            except OSError as e:
                self._give_up(f"cannot restart {self.argv[0]!r}: {e.strerror or e}")
                return
            self.child = child
            if self.on_restart is not None:
                try:
                    await self.on_restart()
                except Exception as e:
                    self.log(f"mcp-gateway: re-initializing the restarted server failed: {e}")
            if child.proc is not None and child.proc.returncode is None:
                self.ready.set()

    async def renew(self) -> None:
        """Replace a running child with a fresh one: not a crash (no backoff, no ``on_exit``,
        no ``on_restart`` replay). For a new client session on a server that keeps one
        session per process (the Go SDK refuses a second ``initialize``). Renewals run one
        at a time: two that overlapped each started a child, and the first ran on unwatched."""
        async with self._renew_lock:
            await self._renew()

    async def _renew(self) -> None:
        self._closing = True
        self.ready.clear()
        old, watcher = self.child, self._watcher
        if old is not None:
            await old.stop()
        if watcher is not None and not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        self._closing = False
        try:
            await self.start()
        except OSError as e:
            self._give_up(f"cannot restart {self.argv[0]!r}: {e.strerror or e}")

    def _give_up(self, why: str) -> None:
        self.dead_reason = why
        self.dead.set()
        if self.on_give_up is not None:
            self.on_give_up(why)

    async def write(self, data: bytes, timeout: float | None = None) -> None:
        """Write once the child is ready; raises ChildUnavailable."""
        if not self.ready.is_set():
            if self.dead_reason is not None:
                raise ChildUnavailable(f"the MCP server is not running ({self.dead_reason})")
            ready = asyncio.create_task(self.ready.wait())
            dead = asyncio.create_task(self.dead.wait())
            try:
                await asyncio.wait(
                    {ready, dead}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                ready.cancel()
                dead.cancel()
            if not self.ready.is_set():
                if self.dead_reason is not None:
                    raise ChildUnavailable(f"the MCP server is not running ({self.dead_reason})")
                raise ChildUnavailable("the MCP server is restarting and did not come back in time")
        await self.write_direct(data, stall_timeout=timeout)

    async def write_direct(self, data: bytes, stall_timeout: float | None = None) -> None:
        if self.child is None:
            raise ChildUnavailable("the MCP server process is not running")
        await self.child.write(data, stall_timeout)

    async def close(self) -> None:
        self._closing = True
        self.ready.clear()
        if self.child is not None:
            await self.child.stop()
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher

    def kill_now(self) -> None:
        self._closing = True
        if self.child is not None:
            self.child.kill_now()


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return f"was killed by {name}"
    return f"exited with code {rc}"
