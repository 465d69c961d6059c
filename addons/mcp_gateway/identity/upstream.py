"""No token passthrough: swap the client's gateway credential for the upstream's own.

When a client authenticated with a gateway credential (an API key or a JWT the gateway
accepted), that credential is removed from the request, and the credential configured
for the upstream server (``servers:`` in the config) is injected: a header (bearer, a
raw API key header, basic, a template such as ``Token {secret}``) or a query parameter.

Secrets come from references, resolved off the request path where possible:

- ``env://NAME``: the gateway's environment (re-read every second by the watcher);
- ``file:///path``: the file's content (one trailing newline removed), cached and
  re-read by the watcher thread every few seconds;
- ``keyring://service/name``: the OS keyring through the ``keyring`` library, cached
  the same way.

A reference that cannot be resolved refuses the request (HTTP 502, JSON-RPC
``UPSTREAM_CREDENTIAL``) with a log line naming the reference, never the value. Secrets
are never logged; once the request has been sent, the injected value is replaced in
the flow by ``[mcp-gateway: <ref>]`` so that saved flows and mitmweb do not keep it.
"""

from __future__ import annotations

import base64
import fnmatch
import logging
import threading
import time
import urllib.parse
from typing import Any

from .. import secretref
from ..headers import other_vhost
from ..message import ErrorCode, Refusal
from .config import Credential, ServerConfig
from .logutil import problem

log = logging.getLogger("mcp_gateway.identity")

FILE_TTL = 5.0  # seconds a file:// or keyring:// value is reused before the watcher re-reads it
ENV_TTL = 1.0  # env:// values are re-read by the watcher every second


class SecretError(Exception):
    """A reference could not be resolved. ``str()`` names the reference, never a value."""


def _check(ref: str, value: str | None) -> str:
    if value is None or value == "":
        raise SecretError(f"secret reference {ref} is not set")
    if any(c in value for c in "\r\n\x00"):
        raise SecretError(
            f"secret reference {ref} holds a line break or NUL; refusing to put it in a header"
        )
    return value


def resolve(ref: str) -> str:
    """Resolve a reference now (may do I/O: file read, keyring call); header-safe values only."""
    try:
        value = secretref.resolve(ref)
    except secretref.SecretRefError as e:
        raise SecretError(f"secret reference {e}") from None
    return _check(ref, value)


class SecretCache:
    """Resolved secrets by reference, kept fresh by the watcher thread (no I/O on the loop)."""

    def __init__(self) -> None:
        self._cache: dict[
            str, tuple[str | None, str | None, float]
        ] = {}  # ref -> (value, error, when)
        self._lock = threading.Lock()

    def get(self, ref: str) -> str:
        hit = self._cache.get(ref)
        if hit is None:
            self.refresh(ref)  # first use: resolve now (the watcher keeps it fresh afterwards)
            hit = self._cache[ref]
        value, error, _ = hit
        if value is None:
            raise SecretError(error or f"secret reference {ref} is not set")
        return value

    def refresh(self, ref: str) -> None:
        try:
            value, error = resolve(ref), None
        except SecretError as e:
            value, error = None, str(e)
        with self._lock:
            old = self._cache.get(ref)
            self._cache[ref] = (value, error, time.monotonic())
        if error and (old is None or old[1] != error):
            problem(log, "mcp-gateway: %s", error)

    def refresh_due(self, refs: set[str]) -> None:
        """Called by the watcher thread: re-resolve cached non-env references."""
        now = time.monotonic()
        for ref in refs:
            hit = self._cache.get(ref)
            ttl = ENV_TTL if ref.startswith("env://") else FILE_TTL
            if hit is None or now - hit[2] >= ttl:
                self.refresh(ref)


def credential_value(cred: Credential, secret: str) -> str:
    if cred.type == "bearer":
        return f"Bearer {secret}"
    if cred.type == "basic":
        raw = f"{cred.username}:{secret}" if cred.username is not None else secret
        return "Basic " + base64.b64encode(raw.encode()).decode("ascii")
    if cred.type == "template":
        return (cred.template or "{secret}").replace("{secret}", secret)
    return secret  # header, query


def placeholder(cred: Credential) -> str:
    return f"[mcp-gateway: {cred.ref}]"


class Upstreams:
    """Finds the server entry of an exchange and swaps credentials on its flow."""

    def __init__(self, servers: list[ServerConfig], secrets: SecretCache) -> None:
        self.servers = servers
        self.secrets = secrets
        self._match_cache: dict[str, ServerConfig | None] = {}
        self.refs = {s.credential.ref for s in servers if s.credential}

    def match(self, server: str) -> ServerConfig | None:
        try:
            return self._match_cache[server]
        except KeyError:
            pass
        s = server.lower()
        host = s.rsplit(":", 1)[0] if ":" in s and not s.endswith("]") else s
        found = None
        for entry in self.servers:
            pat = entry.match.lower()
            if (
                fnmatch.fnmatchcase(s, pat)
                or fnmatch.fnmatchcase(host, pat)
                or (entry.name and entry.name.lower() == s)
            ):
                found = entry
                break
        if len(self._match_cache) > 10_000:
            self._match_cache.clear()
        self._match_cache[server] = found
        return found

    def swap(
        self, flow: Any, client_header: str, server: str
    ) -> tuple[Refusal | None, tuple | None]:
        """Remove the client's gateway credential; inject the upstream's.

        Returns (refusal or None, (credential, location) to mask after sending or None).
        """
        headers = flow.request.headers
        entry = self.match(server)
        cred = entry.credential if entry is not None else None
        secret = None
        if cred is not None:
            try:
                secret = self.secrets.get(cred.ref)
            except SecretError as e:
                label = entry.name or entry.match
                problem(
                    log,
                    "mcp-gateway: upstream credential for %s (%s) unavailable: %s; request refused",
                    server,
                    label,
                    e,
                )
                strip_fields(headers, (client_header.lower().encode(),))
                return (
                    Refusal(
                        ErrorCode.UPSTREAM_CREDENTIAL,
                        f"gateway cannot obtain the credential for upstream {label}",
                        http_status=502,
                        stage="identify",
                    ),
                    None,
                )
        if cred is None:
            strip_fields(headers, (client_header.lower().encode(),))
            return None, None
        vhost = other_vhost(flow)
        if vhost is not None and self.match(vhost) is not entry:
            # The request goes to this entry's address, but a shared front end (an ingress,
            # a CDN, a virtual host) serves the site its Host header names: in regular proxy
            # mode, an absolute-form request (POST http://trusted/mcp) keeps the client's Host
            # header, and one in a CONNECT tunnel goes to the tunnel's host whatever its Host
            # header says. Injected, the credential went to Host: evil.example.
            label = entry.name or entry.match
            log.warning(
                "mcp-gateway: request to %s (%s) names another server in its Host header (%s); "
                "refused (421), no credential injected",
                server,
                label,
                vhost[:200],
            )
            strip_fields(headers, (client_header.lower().encode(),))
            return (
                Refusal(
                    ErrorCode.INVALID_REQUEST,
                    f"Misdirected Request: the Host header names another server than {label}",
                    http_status=421,
                    stage="identify",
                ),
                None,
            )
        value = credential_value(cred, secret)
        # what an echoing server could show the client: the secret, the header's value,
        # for basic the base64 of user:secret, and as a URL shows it (percent-encoded)
        secretref.remember_injected(
            secret,
            value,
            value.partition(" ")[2] if " " in value else "",
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote(secret),  # ("/" left as it is)
            urllib.parse.quote_plus(secret, safe=""),
        )
        if cred.type == "query":
            strip_fields(headers, (client_header.lower().encode(),))
            flow.request.query[cred.param] = value
        else:
            # one pass over the raw fields: drop the client's credential and any header of
            # the injected name, append the injected one
            strip_fields(
                headers,
                (client_header.lower().encode(), cred.header.lower().encode()),
                (cred.header.encode(), value.encode("utf-8", "surrogateescape")),
            )
        return None, (cred,)

    @staticmethod
    def mask(flow: Any, cred: Credential) -> None:
        """Replace an injected secret in the (already sent) flow by a placeholder."""
        try:
            if cred.type == "query":
                if cred.param in flow.request.query:
                    flow.request.query[cred.param] = placeholder(cred)
            else:
                headers = flow.request.headers
                name = cred.header.lower().encode()
                ph = placeholder(cred).encode()
                headers.fields = tuple(
                    (k, ph) if k.lower() == name else (k, v) for k, v in headers.fields
                )
        except Exception:  # noqa: BLE001
            log.exception(
                "mcp-gateway: could not mask the injected credential of flow %s",
                getattr(flow, "id", "?"),
            )


def strip_fields(
    headers: Any, names: tuple[bytes, ...], add: tuple[bytes, bytes] | None = None
) -> None:
    """Remove headers (lowercase byte names) in one pass over mitmproxy's raw fields."""
    fields = headers.fields
    kept = tuple(f for f in fields if f[0].lower() not in names)
    if add is not None:
        kept += (add,)
    if len(kept) != len(fields) or add is not None:
        headers.fields = kept
