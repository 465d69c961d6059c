"""Long-lived streams through a real mitmdump: idle MCP streams are not cut by tcp_timeout."""

import time

import anyio
import pytest

pytestmark = pytest.mark.e2e


async def _progress_times(mcp_session, url, delay):
    stamps: list[float] = []
    t0 = time.monotonic()

    async def on_progress(progress, total, message):
        stamps.append(time.monotonic() - t0)

    async with mcp_session(url, timeout=30) as s:
        result = await s.call_tool(
            "slow_progress", {"steps": 2, "delay": delay}, progress_callback=on_progress
        )
    return result, stamps


async def test_idle_sse_stream_survives_tcp_timeout(mitmdump_factory, mcp_server, mcp_session):
    gw = mitmdump_factory(mode=f"reverse:{mcp_server.base}", options={"tcp_timeout": 1})
    result, stamps = await _progress_times(mcp_session, gw.url_for(mcp_server), delay=2.5)
    assert not result.isError
    assert len(stamps) == 2 and stamps[1] - stamps[0] > 2.0  # the stream sat idle > tcp_timeout


async def test_without_holding_the_stream_is_cut(mitmdump_factory, mcp_server, mcp_session):
    """Control: the same call dies when the gateway lets mitmproxy's idle timeout apply."""
    gw = mitmdump_factory(
        mode=f"reverse:{mcp_server.base}", options={"tcp_timeout": 1, "mcp_hold_streams": False}
    )
    # mitmproxy cuts the idle stream; the SDK client then never gets its result (it waits
    # until our bound, or reports a transport error): either way the call must not complete,
    # while the same call through the holding gateway completes in about 5 s.
    with pytest.raises(BaseException):  # noqa: B017 - a timeout or a transport error
        with anyio.fail_after(12):
            await _progress_times(mcp_session, gw.url_for(mcp_server), delay=2.5)
