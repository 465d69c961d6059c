"""HTTP header helpers of the core addon: one pass over a message's headers, folded values
unfolded, repeated one-value MCP headers found, one Content-Type kept, event streams told
apart as clients tell them, reason phrases made standard, foreign upgrades removed."""

from __future__ import annotations

import re

from mitmproxy import http
from mitmproxy.net.http import status_codes, url


def header_map(headers: http.Headers) -> dict[str, str]:
    """All headers in one pass, lowercase names, first value wins; but the codings of
    several ``Content-Encoding`` lines are one list, in order, as receivers read them
    (httpx and fetch undo ``gzip`` + ``gzip`` twice, and ``identity`` + ``gzip`` once)."""
    out: dict[str, str] = {}
    for k, v in headers.fields:
        name = k.decode("latin-1").lower()
        if name not in out:
            out[name] = v.decode("utf-8", "surrogateescape")
        elif name == "content-encoding":
            out[name] = f"{out[name]}, {v.decode('utf-8', 'surrogateescape')}"
    return out


_FOLD = re.compile(rb"[ \t]*(?:\r\n|\r|\n)[ \t]*")


def unfold_headers(headers: http.Headers) -> bool:
    """Header values written over several lines (obs-fold: ``Name:`` CRLF `` value``) are
    kept by mitmproxy as they came, CR and LF included, and forwarded so; uvicorn (h11)
    joins the lines with a space and trims, and so would any reader of ``value``. The
    gateway would read another value than the server (a folded ``Mcp-Session-Id`` passed
    session binding, a folded ``Authorization`` read as anonymous). Each fold becomes one
    space and the value is trimmed, here and for the server (RFC 9112, 5.2, allows exactly
    this). True if a value changed."""
    fields = headers.fields
    for _, v in fields:
        if b"\r" in v or b"\n" in v:
            break
    else:
        return False
    headers.fields = tuple(
        (k, _FOLD.sub(b" ", v).strip(b" \t") if b"\r" in v or b"\n" in v else v) for k, v in fields
    )
    return True


def hget(headers: http.Headers, name: bytes) -> str | None:
    """One header by lowercase byte name, without mitmproxy's per-lookup conversions."""
    for k, v in headers.fields:
        if len(k) == len(name) and k.lower() == name:
            return v.decode("utf-8", "surrogateescape")
    return None


# MCP's request headers that hold one value. Servers read a repeated one differently
# (Starlette takes the first copy, Node joins the copies with ", "), so a request that
# repeats one means two things at once and is refused, as a URL naming two sessions is.
_SINGLETONS = {
    b"mcp-session-id": "Mcp-Session-Id",
    b"mcp-protocol-version": "MCP-Protocol-Version",
    b"mcp-method": "Mcp-Method",
    b"mcp-name": "Mcp-Name",
    b"last-event-id": "Last-Event-ID",
}


def repeated_singletons(headers: http.Headers) -> str | None:
    """The first of MCP's one-value request headers that ``headers`` holds more than once."""
    seen: set[bytes] = set()
    for k, _ in headers.fields:
        name = k.lower()
        if name in _SINGLETONS:
            if name in seen:
                return _SINGLETONS[name]
            seen.add(name)
    return None


def has_mcp_header(h: dict[str, str]) -> bool:
    return (
        "mcp-session-id" in h
        or "mcp-protocol-version" in h
        or "mcp-method" in h
        or "last-event-id" in h
    )


def one_content_type(headers: http.Headers) -> None:
    """An answer with several Content-Type fields goes on with the first only: the one the
    gateway reads it by. Clients differ (the SDKs join them and test for an event stream,
    others take the last), so a copy saying JSON behind one saying event stream would have
    shown some clients a body the gateway never inspected as what they read."""
    fields = headers.fields
    n = 0
    for k, _ in fields:
        if len(k) == 12 and k.lower() == b"content-type":
            n += 1
    if n > 1:
        seen = False
        out = []
        for k, v in fields:
            if len(k) == 12 and k.lower() == b"content-type":
                if seen:
                    continue
                seen = True
            out.append((k, v))
        headers.fields = tuple(out)


def is_event_stream(content_type: str | None) -> bool:
    """Whether a response is an event stream the way clients decide it: by its media type
    (the part before any parameter). A type that merely contains "text/event-stream"
    (``application/json; x=text/event-stream``) is JSON to the SDKs, and must be read as
    JSON here too, or its body would pass as an event stream with no events in it."""
    if not content_type:
        return False
    low = content_type.lower()
    # (the Python SDK tests the prefix, the TypeScript SDK the media type: either counts)
    return (
        low.startswith("text/event-stream") or low.split(";", 1)[0].strip() == "text/event-stream"
    )


def standard_reason(resp: http.Response) -> None:
    """An MCP answer's reason phrase becomes its status's standard one. It means nothing to
    HTTP, but clients put it in their errors ("Server error '500 …'"), which hosts show to
    the model: text a server could fill with anything, never scanned."""
    if resp.http_version.startswith("HTTP/2") or resp.http_version.startswith("HTTP/3"):
        return  # (no reason phrase there)
    std = status_codes.RESPONSES.get(resp.status_code, "")
    if resp.reason != std:
        resp.reason = std


def drop_foreign_upgrade(headers) -> None:
    """Remove an ``Upgrade`` to anything but a WebSocket (``H2C``, two fields): the server
    would switch protocols on a connection the gateway can then no longer read."""
    values = [v.strip().lower() for v in headers.get_all("upgrade")]
    if values and all(v == "websocket" for v in values):
        return
    del headers["upgrade"]
    if "http2-settings" in headers:
        del headers["http2-settings"]
    conn = [
        t.strip()
        for v in headers.get_all("connection")
        for t in v.split(",")
        if t.strip() and t.strip().lower() not in ("upgrade", "http2-settings")
    ]
    if "connection" in headers:
        del headers["connection"]
    if conn:
        headers["connection"] = ", ".join(conn)


def other_vhost(flow) -> str | None:
    """The ``host:port`` a request's Host header names when it is not the address the
    request goes to, in regular (or upstream) proxy mode; None otherwise. (Reverse mode is
    the operator's choice of server: mitmproxy sets the Host header to it, or keeps the one
    naming the gateway with keep_host_header. In transparent modes the address is the
    destination's, as the client resolved the Host header's name.)"""
    mode = type(getattr(flow.client_conn, "proxy_mode", None)).__name__
    if mode not in ("RegularMode", "UpstreamMode"):
        return None
    req = flow.request
    # (an HTTP/2 request may carry a Host field beside its :authority: sent on over HTTP/1,
    # the field is the one the server reads)
    names = [v for v in (*req.headers.get_all("host"), req.data.authority) if v]
    for hh in names:
        if isinstance(hh, bytes):
            hh = hh.decode("utf-8", "surrogateescape")
        try:
            host, port = url.parse_authority(hh, check=False)
        except ValueError:
            return hh  # (names nothing the entry matches)
        if port is None:
            port = url.default_port(req.scheme) or req.port
        host = host.lower().rstrip(".")
        if host != req.host.lower().rstrip(".") or port != req.port:
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return None


_DEFAULT_PORT = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_URL_JUNK = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(33)))
_ABSOLUTE = re.compile(r"(?i)^([a-z][a-z0-9+.-]*):(.*)$", re.S)


def url_origin(url: str, client_scheme: str) -> tuple[str, str, int, str] | None:
    """The origin ``url`` (a redirect's ``Location``) takes a client to, as (scheme, host,
    port, the rest: path, query, fragment), or None when it takes it nowhere else (a path
    relative to where it is, another scheme than http(s), a bad port). Read as clients read
    it: httpx and WHATWG URL parsers (fetch) drop tabs and line breaks, trim spaces and control
    characters, take a backslash for a slash in an http(s) URL and any number of slashes after
    ``http:``; userinfo names no origin; a scheme-relative ``//host/…`` keeps the client's
    scheme, and so is ``http:x`` relative to the client's own URL when its scheme is the
    client's."""
    text = _URL_JUNK.sub("", url).strip(_C0_AND_SPACE)
    m = _ABSOLUTE.match(text)
    client_scheme = client_scheme.lower()
    if m:
        given = m.group(1).lower()
        if given not in _DEFAULT_PORT:
            return None
        rest = m.group(2).replace("\\", "/")
        if not rest.startswith("/") and given == client_scheme:
            return None  # ``http:x``: relative to the client's own URL, as WHATWG reads it
    else:
        given = client_scheme
        rest = text.replace("\\", "/")
        if not rest.startswith("//"):
            return None  # a path: already relative
    rest = rest.lstrip("/")
    end = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if i != -1:
            end = min(end, i)
    authority, tail = rest[:end], rest[end:]
    authority = authority.rsplit("@", 1)[-1]
    if authority.startswith("["):
        h, _, p = authority[1:].partition("]")
        p = p[1:] if p.startswith(":") else ""
    else:
        h, _, p = authority.partition(":")
    try:
        port = int(p) if p else _DEFAULT_PORT[given]
    except ValueError:
        return None
    return given, h.lower().rstrip("."), port, tail


def same_origin_relative(
    url: str, scheme: str, host: str, port: int, client_scheme: str | None = None
) -> str | None:
    """``url`` (a redirect's ``Location``) as a reference relative to whatever origin the
    client used, when it names the origin ``scheme://host:port`` (the upstream of a reverse
    gateway; the client reached the gateway with ``client_scheme``, by default the same);
    None when it names another origin or none (already relative). The result never starts
    with ``//`` (a scheme-relative reference to another host): a path that does is written
    ``/.//…``, the same path to every URL parser."""
    o = url_origin(url, client_scheme or scheme)
    if o is None:
        return None
    given, h, got_port, tail = o
    if given != scheme.lower() or h != host.lower().rstrip(".").strip("[]") or got_port != port:
        return None  # another origin
    if not tail.startswith("/"):
        tail = "/" + tail
    if tail.startswith("//"):
        tail = "/." + tail
    return tail
