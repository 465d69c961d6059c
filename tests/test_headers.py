"""HTTP header helpers (headers.py), on mitmproxy's Headers."""

from mcp_gateway.headers import (
    drop_foreign_upgrade,
    has_mcp_header,
    header_map,
    hget,
    is_event_stream,
    one_content_type,
    repeated_singletons,
    standard_reason,
    unfold_headers,
)
from mitmproxy import http
from mitmproxy.test import tutils


def H(*fields: tuple[bytes, bytes]) -> http.Headers:
    return http.Headers(fields)


def test_header_map_first_value_wins_but_codings_add_up():
    h = header_map(
        H(
            (b"Mcp-Session-Id", b"s-1"),
            (b"mcp-session-id", b"s-2"),
            (b"Content-Encoding", b"gzip"),
            (b"content-encoding", b"br"),
        )
    )
    assert h["mcp-session-id"] == "s-1"
    assert h["content-encoding"] == "gzip, br"  # (as httpx and fetch undo them)


def test_hget_reads_one_header_by_lowercase_name():
    h = H((b"X-One", b"1"), (b"Accept", b"text/event-stream"))
    assert hget(h, b"accept") == "text/event-stream"
    assert hget(h, b"x-two") is None


def test_folded_values_become_one_line():
    h = H((b"Mcp-Session-Id", b"abc\r\n def"), (b"X", b"plain"))
    assert unfold_headers(h) is True
    assert h["mcp-session-id"] == "abc def" and h["x"] == "plain"
    assert unfold_headers(h) is False  # (nothing left to unfold)


def test_a_repeated_one_value_mcp_header_is_named():
    assert repeated_singletons(H((b"mcp-name", b"a"), (b"Mcp-Name", b"b"))) == "Mcp-Name"
    assert repeated_singletons(H((b"accept", b"a"), (b"accept", b"b"))) is None


def test_mcp_headers_tell_an_mcp_request():
    assert has_mcp_header({"mcp-protocol-version": "2025-11-25"})
    assert not has_mcp_header({"content-type": "application/json"})


def test_only_the_first_content_type_goes_on():
    h = H(
        (b"content-type", b"text/event-stream"),
        (b"X", b"1"),
        (b"Content-Type", b"application/json"),
    )
    one_content_type(h)
    assert h.get_all("content-type") == ["text/event-stream"] and h["x"] == "1"


def test_event_stream_media_types():
    assert is_event_stream("text/event-stream")
    assert is_event_stream("Text/Event-Stream; charset=utf-8")
    assert is_event_stream(" text/event-stream")
    assert is_event_stream("text/event-streamx")  # the Python SDK's prefix test says so
    assert not is_event_stream("application/json; x=text/event-stream")
    assert not is_event_stream(None)


def test_a_reason_phrase_becomes_the_standard_one():
    resp = tutils.tresp(status_code=500, reason=b"ghp_secret in here")
    standard_reason(resp)
    assert resp.reason == "Internal Server Error"


def test_upgrades_other_than_websocket_are_dropped():
    h = H(
        (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAAQAAP__"),
        (b"Connection", b"Upgrade, HTTP2-Settings, keep-alive"),
    )
    drop_foreign_upgrade(h)
    assert "upgrade" not in h and "http2-settings" not in h
    assert h["connection"] == "keep-alive"
    ws = H((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"))
    drop_foreign_upgrade(ws)
    assert ws["upgrade"] == "websocket" and ws["connection"] == "Upgrade"
