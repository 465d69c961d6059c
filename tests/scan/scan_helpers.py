"""Format-valid fake secrets for the scanner's unit tests (checksums computed, never real)."""

from __future__ import annotations

import base64
import binascii
import json
import random
import string

from mcp_gateway.scan.validators import base62

ALNUM = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = ALNUM, seed: int | None = None) -> str:
    r = random.Random(seed)
    return "".join(r.choice(alphabet) for _ in range(n))


def github_token(prefix: str = "ghp", seed: int = 1) -> str:
    body = rnd(30, seed=seed)
    return f"{prefix}_{body}{base62(binascii.crc32(body.encode()))}"


def npm_token(seed: int = 2) -> str:
    body = rnd(30, seed=seed)
    return f"npm_{body}{base62(binascii.crc32(body.encode()))}"


def bad_crc(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def luhn_complete(partial: str) -> str:
    for d in "0123456789":
        cand = partial + d
        total = 0
        for i, c in enumerate(reversed(cand)):
            v = int(c)
            if i % 2 == 1:
                v *= 2
                if v > 9:
                    v -= 9
            total += v
        if total % 10 == 0:
            return cand
    raise AssertionError


def iban(country: str = "DE", bban: str = "500105175407324931") -> str:
    num = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(num) % 97
    return f"{country}{check:02d}{bban}"


def b64url(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def jwt(seed: int = 3) -> str:
    head = b64url({"alg": "RS256", "typ": "JWT", "kid": rnd(8, seed=seed)})
    body = b64url({"sub": rnd(12, seed=seed + 1), "iat": 1700000000, "iss": "https://auth.acme.io"})
    return f"{head}.{body}.{rnd(43, ALNUM + '-_', seed=seed + 2)}"


def pem(kind: str = "RSA ", nl: str = "\n", seed: int = 4) -> str:
    lines = [rnd(64, ALNUM + "+/", seed=seed + i) for i in range(6)]
    return nl.join(
        [f"-----BEGIN {kind}PRIVATE KEY-----", *lines, f"-----END {kind}PRIVATE KEY-----"]
    )
