"""Plain-mitmdump baseline for SSE: stream text/event-stream responses, nothing else.

mitmdump buffers every response body by default, which holds back SSE events until the stream
ends. The benchmark (scripts/bench_core.py) and the e2e control tests load this script into a
*plain* mitmdump (`mitmdump -s scripts/bench_plain_stream.py`) so that its SSE numbers are a
fair baseline for the gateway, which streams SSE itself.
"""

from mitmproxy import http


def responseheaders(flow: http.HTTPFlow) -> None:
    if flow.response and flow.response.headers.get("content-type", "").startswith(
        "text/event-stream"
    ):
        flow.response.stream = True
