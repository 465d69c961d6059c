"""HTTP header helpers (headers.py), on mitmproxy's Headers."""

from mcp_gateway.headers import (
    drop_foreign_upgrade,
    has_mcp_header,
    header_map,
    hget,
    is_event_stream,
    one_content_type,
    repeated_singletons,
    same_origin_relative,
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


def test_a_url_naming_the_upstream_becomes_relative_as_clients_read_it():
    def rel(url: str, scheme: str = "http", host: str = "127.0.0.1", port: int = 8000):
        return same_origin_relative(url, scheme, host, port)

    assert rel("http://127.0.0.1:8000/mcp/") == "/mcp/"
    assert rel("HTTP://127.0.0.1:8000") == "/"
    assert rel("http://127.0.0.1:8000?x=1") == "/?x=1"
    assert rel("//127.0.0.1:8000/mcp/") == "/mcp/"  # scheme-relative
    assert rel("http:\\\\127.0.0.1:8000\\mcp/?a#f") == "/mcp/?a#f"  # fetch: \ is /
    assert rel("http:/127.0.0.1:8000/mcp") == "/mcp"  # any number of slashes
    assert rel(" http://127.0.0.1:8000/m\tc\np \x00") == "/mcp"  # tabs, breaks, C0 trimmed
    assert rel("http://user:pw@127.0.0.1:8000/mcp") == "/mcp"  # userinfo names no origin
    assert rel("https://mcp.example.com/mcp", "https", "mcp.example.com", 443) == "/mcp"
    assert rel("https://MCP.example.com.:443/mcp", "https", "mcp.example.com", 443) == "/mcp"
    assert rel("http://[::1]:8000/mcp", host="::1") == "/mcp"
    # a path that starts with // stays a path (as //host/… it would name another host)
    assert rel("http://127.0.0.1:8000//evil.example/x") == "/.//evil.example/x"
    # other origins, and references that are relative already, are left alone
    for other in (
        "http://127.0.0.1:8001/mcp/",
        "https://127.0.0.1:8000/mcp/",
        "http://localhost:8000/mcp/",
        "https://auth.example.com/authorize",
        "//auth.example.com/x",
        "/mcp/",
        "mcp/",
        "http:mcp/",  # relative to the client's own URL (same scheme)
        "mailto:x@example.com",
        "http://127.0.0.1:x/",
    ):
        assert rel(other) is None, other
    # a scheme-relative reference and ``https:host`` are read with the client's own scheme
    up = ("https", "mcp.example.com", 443)
    assert same_origin_relative("//mcp.example.com/mcp/", *up, "http") is None  # http:80
    assert same_origin_relative("//mcp.example.com/mcp/", *up, "https") == "/mcp/"
    assert same_origin_relative("https:mcp.example.com/mcp/", *up, "http") == "/mcp/"
    assert same_origin_relative("https:mcp/", *up, "https") is None  # relative to its URL
