"""A FastMCP server (official SDK) with resumable streams: one in-memory event store for all
sessions, as the SDK's interface has it (``EventStore`` takes no session) and its example store
does. For the tests of resumption across identities.

Run:  python tests/e2e/servers/eventstore.py --transport streamable --port P

Tool ``note(name)``: logs "working" (an event of its own, before the answer) and answers
"private note of NAME".
"""

from __future__ import annotations

import argparse
import uuid
from collections import deque

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.streamable_http import EventMessage, EventStore


class Store(EventStore):
    """Events by id, replayed after an id within its stream (a POST's stream is its request's
    id, in every session alike)."""

    def __init__(self) -> None:
        self.events: deque = deque(maxlen=10_000)
        self.by_id: dict = {}

    async def store_event(self, stream_id, message):
        eid = str(uuid.uuid4())
        entry = (eid, stream_id, message)
        self.events.append(entry)
        self.by_id[eid] = entry
        return eid

    async def replay_events_after(self, last_event_id, send_callback):
        hit = self.by_id.get(last_event_id)
        if hit is None:
            return None
        stream, after = hit[1], False
        for eid, s, m in list(self.events):
            if after and s == stream and m is not None:
                await send_callback(EventMessage(m, eid))
            if eid == last_event_id:
                after = True
        return stream


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", default="streamable", choices=["streamable"])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    mcp = FastMCP("eventstore", event_store=Store(), host="127.0.0.1", port=args.port)

    @mcp.tool()
    async def note(name: str, ctx: Context) -> str:
        await ctx.info("working")
        return f"private note of {name}"

    mcp.run("streamable-http")


if __name__ == "__main__":
    main()
