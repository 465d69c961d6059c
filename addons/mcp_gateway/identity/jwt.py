"""JWT bearer tokens verified against a JWKS (URL or file) with PyJWT.

The JWKS is fetched off the event loop: once when the configuration is applied (a file
is read at once, a URL in the watcher thread) and again every ``refresh_interval``
seconds. On the request path only the in-memory key set is used. A token whose ``kid``
is unknown triggers one re-fetch (at most every ``min_refetch_interval`` seconds): a
file is re-read at once, a URL is re-fetched in the background, and the token is refused
with 401 meanwhile. A JWKS that could never be loaded answers 503: the gateway cannot
tell a good token from a bad one, so nothing is forwarded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

import jwt as pyjwt

from .config import JwtConfig
from .logutil import problem

log = logging.getLogger("mcp_gateway.identity")


class JwtRejected(Exception):
    """The token was refused. ``status`` is 401 (bad token) or 503 (cannot verify)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def claim(claims: dict, path: str) -> Any:
    cur: Any = claims
    if path in claims:
        return claims[path]
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def roles_from(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(x for x in value.replace(",", " ").split() if x)
    if isinstance(value, list | tuple):
        return tuple(str(x) for x in value if isinstance(x, str | int))
    return ()


class Jwks:
    """The key set and its refresh policy. Thread-safe swap of an immutable dict."""

    def __init__(self, cfg: JwtConfig) -> None:
        self.cfg = cfg
        self.source = cfg.jwks_url or cfg.jwks_file or ""
        self.keys: dict[str | None, Any] = {}  # kid -> PyJWK (None: keys without kid)
        self.loaded = False
        self.error: str | None = None
        self.last_ok = 0.0
        self.last_attempt = float("-inf")
        self._refetch = threading.Event()
        self._fetch_lock = threading.Lock()
        self._bg = False
        self.wake: threading.Event | None = None  # set by the watcher to be woken early

    # -- fetching (watcher thread, or configure for files) ---------------------------
    def _read(self) -> dict:
        if self.cfg.jwks_file:
            with open(self.cfg.jwks_file, encoding="utf-8") as f:
                return json.load(f)
        req = urllib.request.Request(
            self.cfg.jwks_url or "", headers={"Accept": "application/json"}
        )
        # The JWKS URL comes from the operator's configuration, not from traffic.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=self.cfg.fetch_timeout) as resp:  # noqa: S310
            body = resp.read(1_000_001)
            if len(body) > 1_000_000:
                raise ValueError("JWKS larger than 1 MB")
            return json.loads(body)

    def fetch(self) -> bool:
        with self._fetch_lock:
            self.last_attempt = time.monotonic()
            self._refetch.clear()
            try:
                data = self._read()
                if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
                    raise ValueError('not a JWKS (no "keys" list)')
                keys: dict[str | None, Any] = {}
                for jwk in data["keys"]:
                    try:
                        k = pyjwt.PyJWK.from_dict(jwk)
                    except (pyjwt.PyJWTError, ValueError, TypeError, KeyError) as e:
                        log.warning(
                            "mcp-gateway: skipping unusable JWK %s from %s: %s",
                            jwk.get("kid") if isinstance(jwk, dict) else "?",
                            self.source,
                            e,
                        )
                        continue
                    keys[jwk.get("kid")] = k
                if not keys:
                    raise ValueError("no usable keys")
            except Exception as e:  # noqa: BLE001 - every failure is reported the same way
                msg = f"{type(e).__name__}: {e}"
                if msg != self.error:
                    problem(log, "mcp-gateway: cannot load JWKS from %s: %s", self.source, msg)
                self.error = msg
                return False
            changed = set(keys) != set(self.keys)
            self.keys = keys
            self.loaded = True
            self.last_ok = time.monotonic()
            if self.error or changed:
                log.info(
                    "mcp-gateway: JWKS from %s: %d key(s) %s",
                    self.source,
                    len(keys),
                    sorted(str(k) for k in keys),
                )
            self.error = None
            return True

    def fetch_in_background(self) -> bool:
        """Fetch in a thread of its own (a slow JWKS must not delay key revocation checks)."""
        if self._bg or self._fetch_lock.locked():
            return False
        self._bg = True

        def run() -> None:
            try:
                self.fetch()
            finally:
                self._bg = False

        threading.Thread(target=run, name="mcp-gateway-jwks", daemon=True).start()
        return True

    def due(self, now: float) -> bool:
        if self._refetch.is_set():
            return True
        if not self.loaded:
            return now - self.last_attempt >= min(5.0, self.cfg.refresh_interval)
        return now - self.last_ok >= self.cfg.refresh_interval

    def request_refetch(self) -> bool:
        """Ask for a re-fetch (unknown kid). Returns True if one was (or will be) done."""
        now = time.monotonic()
        if now - self.last_attempt < self.cfg.min_refetch_interval:
            return False
        if self.cfg.jwks_file:
            return self.fetch()  # a local file: cheap enough to re-read at once
        self.last_attempt = now
        self._refetch.set()
        if self.wake is not None:
            self.wake.set()
        return True

    # -- verification (event loop) ---------------------------------------------------
    def verify(self, token: str) -> dict:
        cfg = self.cfg
        if not self.loaded:
            raise JwtRejected(
                f"cannot verify the token: JWKS not available ({self.error or 'not loaded yet'})",
                503,
            )
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError as e:
            raise JwtRejected(f"malformed token: {e}") from None
        alg = header.get("alg")
        if alg not in cfg.algorithms:
            raise JwtRejected(f"token algorithm {alg!r} not accepted")
        kid = header.get("kid")
        key = self.keys.get(kid)
        if key is None and kid is None and len(self.keys) == 1:
            key = next(iter(self.keys.values()))
        if key is None:
            if self.request_refetch() and cfg.jwks_file:
                key = self.keys.get(kid)
            if key is None:
                raise JwtRejected(f"unknown signing key id {kid!r}")
        try:
            return pyjwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway,
                options={"require": list(cfg.require), "verify_aud": cfg.audience is not None},
            )
        except pyjwt.ExpiredSignatureError:
            raise JwtRejected("token expired") from None
        except pyjwt.InvalidAudienceError:
            raise JwtRejected("token audience not accepted") from None
        except pyjwt.InvalidIssuerError:
            raise JwtRejected("token issuer not accepted") from None
        except pyjwt.ImmatureSignatureError:
            raise JwtRejected("token not yet valid") from None
        except pyjwt.InvalidSignatureError:
            raise JwtRejected("token signature invalid") from None
        except pyjwt.MissingRequiredClaimError as e:
            raise JwtRejected(f"token lacks the required claim {e.claim!r}") from None
        except pyjwt.PyJWTError as e:
            raise JwtRejected(f"invalid token: {e}") from None
