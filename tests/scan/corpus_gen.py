"""Deterministic generator of a labelled corpus for the secret / personal-data scanner.

The corpus stands in for the independent held-out corpus the scanner is judged on, so it is built
without looking at the rules: realistic MCP content (tool arguments, tool results such as logs,
config files, API responses, stack traces, e-mails, CRM records, SQL rows, shell history, CI output,
prompts and resource contents) as the plain strings the scanner sees.

Every secret is synthetic but format-valid (lengths, alphabets, checksums: GitHub/npm CRC32 in
base62, Luhn, IBAN mod-97, SSN issuing rules, JWT headers that decode to JSON with ``alg``).

A sample is ``{"id", "text", "labels": [{"type", "start", "end"}], "benign"}``. A label covers
exactly the secret value (for ``key=value`` the value only; PEM: the whole BEGIN..END block;
url_credentials: the password; basic_auth: the base64 credentials; jwt: the whole token;
slack_webhook: the whole URL). ``benign`` samples carry no label at all.

Labelling decisions (see detection-types.md; documented here because the vocabulary leaves them
open):

* Documentation examples (AWS ``AKIAIOSFODNN7EXAMPLE`` and friends, the jwt.io token, Stripe's
  published ``sk_test_4eC39HqLyjWDarjtT1zdp7dc``, the Azurite development key, famous test cards,
  sample SSNs and IBANs) are benign. So are placeholders, masked values and template references
  (``sk-xxxx``, ``YOUR_API_KEY``, ``<token>``, ``${DB_PASSWORD}``, ``{{ .Values.x }}``,
  ``${{ secrets.X }}``, ``****4242``, ``[REDACTED]``) and well-known default words used as
  placeholders (``changeme``, ``password``, ``secret``, ``admin``, ``example``).
* Tokens whose checksum does not verify (``ghp_``/``npm_`` with a wrong CRC32) are benign.
* IPv4: every address of a real host is labelled, public or private (10/8, 172.16/12,
  192.168/16: internal topology is sensitive too). The corpus never uses loopback, ``0.0.0.0``,
  broadcast, TEST-NET documentation ranges or CIDR blocks, because no stable expectation exists for
  them. Dotted version strings with an explicit version context (``Version=4.0.0.0`` in .NET
  assembly names, ``version 2.4.1.3``) and OIDs are benign.
* E-mail: every address is labelled except Google Cloud service accounts and no-reply senders
  (automated, not a person's: the rules do not report them). The
  corpus avoids reserved example domains (``example.com``) and ``git@github.com`` style SSH
  remotes. ``name@1.2.3`` (package versions) and ``@scope/pkg`` are benign.
* Phone numbers: formatted national / international numbers are labelled; fictional 555-01xx
  numbers are never used. Bare digit runs (timestamps, ids) are benign.
* Twilio account SIDs (``AC…``), AWS unique ids (``AIDA…``/``AROA…``), Stripe object ids and
  publishable keys, Slack channel/user/team ids, UUIDs, hashes, integrity strings, key ids
  (``private_key_id``, ``kid``) are public identifiers and benign.
* A known token used as a URL password, a bearer token or a config value is labelled with its
  own specific type, never ``url_credentials`` / ``generic_secret``.
* Kubernetes ``data:`` values are base64: a ``client-key-data`` blob is labelled ``private_key``
  and a base64 ``password:`` value is labelled ``generic_secret`` (the whole base64 value).

Run ``python tests/scan/corpus_gen.py OUT.jsonl [SEED]`` to write the corpus as JSON lines (the
input format of ``mcp-gateway scan``).
"""

from __future__ import annotations

import base64
import random
import re
import string
import sys
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import NamedTuple

import orjson

SEED = "mcp-gateway-scan-corpus-v1"

SECRET_TYPES = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "stripe_key",
    "openai_api_key",
    "anthropic_api_key",
    "google_api_key",
    "private_key",
    "azure_storage_key",
    "twilio_api_key",
    "sendgrid_api_key",
    "npm_token",
    "pypi_token",
    "jwt",
    "context7_api_key",
    "generic_secret",
    "url_credentials",
    "basic_auth",
)
PII_TYPES = ("email", "credit_card", "us_ssn", "iban", "phone_number", "ipv4")
ALL_TYPES = SECRET_TYPES + PII_TYPES

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
B62 = DIGITS + UPPER + LOWER  # the base62 alphabet GitHub and npm checksums use
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# --------------------------------------------------------------------------------------------
# Documents with labelled spans
# --------------------------------------------------------------------------------------------


class L(NamedTuple):
    """A labelled value inside a document."""

    type: str
    value: str


class Doc:
    """A text built from plain segments and labelled values; offsets are computed on build."""

    def __init__(self, *parts: str | L | Doc) -> None:
        self.segs: list[str | L] = []
        for p in parts:
            self.add(p)

    def add(self, part: str | L | Doc) -> Doc:
        if isinstance(part, Doc):
            self.segs.extend(part.segs)
        elif isinstance(part, L | str):
            if part != "":
                self.segs.append(part)
        else:  # pragma: no cover - programming error
            raise TypeError(type(part))
        return self

    def __iadd__(self, part: str | L | Doc) -> Doc:
        return self.add(part)

    def map(self, fn: Callable[[str], str]) -> Doc:
        """Apply a concatenation-preserving transform (like JSON escaping) to every segment."""
        out = Doc()
        for s in self.segs:
            out.add(L(s.type, fn(s.value)) if isinstance(s, L) else fn(s))
        return out

    def build(self) -> tuple[str, list[dict]]:
        chunks: list[str] = []
        labels: list[dict] = []
        pos = 0
        for s in self.segs:
            if isinstance(s, L):
                labels.append({"type": s.type, "start": pos, "end": pos + len(s.value)})
                chunks.append(s.value)
                pos += len(s.value)
            else:
                chunks.append(s)
                pos += len(s)
        return "".join(chunks), labels

    @property
    def labels(self) -> list[L]:
        return [s for s in self.segs if isinstance(s, L)]


_PH = re.compile(r"«(\w+)»")


def fill(template: str, **values: str | L | Doc) -> Doc:
    """Build a Doc from a template with «name» placeholders (braces stay free for JSON/YAML)."""
    doc = Doc()
    pos = 0
    for m in _PH.finditer(template):
        doc.add(template[pos : m.start()])
        doc.add(values[m.group(1)])
        pos = m.end()
    doc.add(template[pos:])
    return doc


def join(parts: Iterable[str | L | Doc], sep: str = "\n") -> Doc:
    doc = Doc()
    for i, p in enumerate(parts):
        if i:
            doc.add(sep)
        doc.add(p)
    return doc


def json_str(s: str) -> str:
    """JSON string escaping without the quotes (concatenation-preserving)."""
    return orjson.dumps(s).decode()[1:-1]


def json_escape(doc: Doc) -> Doc:
    return doc.map(json_str)


def plain(x: str | L | Doc) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, L):
        return x.value
    return x.build()[0]


# --------------------------------------------------------------------------------------------
# Small random helpers
# --------------------------------------------------------------------------------------------


def rstr(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """A random string that contains upper case, lower case and digits (like real keys)."""
    while True:
        s = rstr(rng, alphabet, n)
        if (
            any(c.isupper() for c in s)
            and any(c.islower() for c in s)
            and sum(c.isdigit() for c in s) >= 2
        ):
            return s


def ruuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hexs(rng: random.Random, n: int) -> str:
    return rstr(rng, HEX, n)


def b64bytes(rng: random.Random, n: int, url: bool = False, pad: bool = True) -> str:
    raw = rng.randbytes(n)
    s = base64.urlsafe_b64encode(raw).decode() if url else base64.b64encode(raw).decode()
    return s if pad else s.rstrip("=")


def b64url_json(obj: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).decode().rstrip("=")


def ts(rng: random.Random, year: int = 2025) -> str:
    return (
        f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
    )


def ts_log(rng: random.Random) -> str:
    return (
        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        f".{rng.randint(0, 999):03d}"
    )


def epoch(rng: random.Random) -> int:
    return rng.randint(1_700_000_000, 1_790_000_000)


def pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


# --------------------------------------------------------------------------------------------
# Checksums and validators (also used by test_corpus_gen.py)
# --------------------------------------------------------------------------------------------


def base62(n: int, width: int = 6) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def crc32_base62(body: str) -> str:
    return base62(zlib.crc32(body.encode()))


def github_checksum_ok(token: str) -> bool:
    """ghp_/gho_/ghs_/ghu_/ghr_/npm_ + 30 base62 + 6-char base62 CRC32 of the 30 characters."""
    prefix, _, rest = token.partition("_")
    return len(rest) == 36 and crc32_base62(rest[:30]) == rest[30:]


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    for d in DIGITS:
        if luhn_ok(partial + d):
            return partial + d
    raise AssertionError("unreachable")


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


def iban_make(country: str, bban: str) -> str:
    s = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in s)) % 97
    return f"{country}{check:02d}{bban}"


def ssn_ok(ssn: str) -> bool:
    d = ssn.replace("-", "").replace(" ", "")
    if len(d) != 9 or not d.isdigit():
        return False
    area, group, serial = int(d[:3]), int(d[3:5]), int(d[5:])
    return area not in (0, 666) and area < 900 and group != 0 and serial != 0


def jwt_header(token: str) -> dict:
    head = token.split(".")[0]
    return orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


# --------------------------------------------------------------------------------------------
# Documented examples and placeholders (hard negatives)
# --------------------------------------------------------------------------------------------

AWS_DOC_KEYS = [
    ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
]
JWT_IO_SAMPLE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
    "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
TEST_CARDS = [
    "4111111111111111",
    "4242424242424242",
    "5555555555554444",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "4012888888881881",
    "4000056655665556",
    "5200828282828210",
    "4000000000000002",
    "4000000000009995",
    "30569309025904",
]
SAMPLE_SSNS = ["078-05-1120", "123-45-6789", "219-09-9999"]
EXAMPLE_IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "GB82WEST12345698765432",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB29 NWBK 6016 1331 9268 19",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "ES91 2100 0418 4502 0005 1332",
    "CH93 0076 2011 6238 5295 7",
    "BE68 5390 0754 7034",
]
STRIPE_DOC_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PLACEHOLDERS = [
    "YOUR_API_KEY",
    "your-api-key-here",
    "<token>",
    "<your-token>",
    "${API_KEY}",
    "${DB_PASSWORD}",
    "$SECRET_KEY",
    "{{ .Values.apiKey }}",
    "${{ secrets.API_TOKEN }}",
    "changeme",
    "[REDACTED]",
    "********",
    "xxxxxxxxxxxxxxxx",
    "REPLACE_ME",
    "<redacted>",
    "TODO",
    "null",
    "%(api_key)s",
    "{api_key}",
    "os.environ['API_KEY']",
    "example",
    "secret",
    "password",
    "***",
]


# --------------------------------------------------------------------------------------------
# Value generators: secrets
# --------------------------------------------------------------------------------------------


def gh_token(rng: random.Random, prefix: str | None = None) -> str:
    prefix = prefix or pick(rng, ["ghp_", "ghp_", "ghp_", "gho_", "ghs_", "ghu_", "ghr_"])
    body = mixed(rng, B62, 30)
    return prefix + body + crc32_base62(body)


def gh_token_badcrc(rng: random.Random) -> str:
    body = mixed(rng, B62, 30)
    good = crc32_base62(body)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    return "ghp_" + body + bad


def gh_fine_pat(rng: random.Random) -> str:
    return "github_pat_11" + rstr(rng, UPPER + DIGITS, 20) + "_" + mixed(rng, ALNUM, 59)


def npm_token(rng: random.Random) -> str:
    body = mixed(rng, B62, 30)
    return "npm_" + body + crc32_base62(body)


def aws_key_id(rng: random.Random, prefix: str = "AKIA") -> str:
    while True:
        s = rstr(rng, B32, 16)
        if sum(c.isdigit() for c in s) >= 2 and "EXAMPLE" not in s:
            return prefix + s


def aws_secret(rng: random.Random) -> str:
    while True:
        s = mixed(rng, ALNUM + "/+", 40)
        if "/" in s or "+" in s or rng.random() < 0.3:
            return s


def aws_session_token(rng: random.Random) -> str:
    if rng.random() < 0.7:
        head = "IQoJb3JpZ2luX2Vj" + rstr(rng, "EFGH", 1)
    else:
        head = "FwoGZXIvYXdzE" + rstr(rng, "ABCDEFGHIJ", 1)
    n = rng.choice([280, 356, 420, 560, 640, 812])
    return head + rstr(rng, B64, n) + pick(rng, ["", "=", "=="])


def gitlab_token(rng: random.Random) -> str:
    return "glpat-" + mixed(rng, ALNUM + "-_", 20)


def slack_token(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return (
            f"xoxb-{rstr(rng, DIGITS, rng.choice([11, 12, 13]))}-"
            f"{rstr(rng, DIGITS, 13)}-{mixed(rng, ALNUM, 24)}"
        )
    if kind < 0.85:
        return (
            f"xoxp-{rstr(rng, DIGITS, 11)}-{rstr(rng, DIGITS, 12)}-"
            f"{rstr(rng, DIGITS, 13)}-{hexs(rng, 32)}"
        )
    if kind < 0.93:
        return f"xapp-1-A{rstr(rng, UPPER + DIGITS, 10)}-{rstr(rng, DIGITS, 13)}-{hexs(rng, 64)}"
    return f"xoxe.xoxp-1-{mixed(rng, ALNUM, 140)}"


def slack_webhook(rng: random.Random) -> str:
    return (
        f"https://hooks.slack.com/services/T{rstr(rng, UPPER + DIGITS, rng.choice([8, 10]))}/"
        f"B{rstr(rng, UPPER + DIGITS, rng.choice([8, 10]))}/{mixed(rng, ALNUM, 24)}"
    )


def stripe_key(rng: random.Random) -> str:
    prefix = pick(rng, ["sk_live_", "sk_live_", "rk_live_", "sk_test_", "sk_test_", "rk_test_"])
    if rng.random() < 0.6:
        return prefix + "51" + mixed(rng, ALNUM, 97)
    return prefix + mixed(rng, ALNUM, 24)


def openai_key(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        n = rng.choice([74, 58])
        return f"sk-proj-{mixed(rng, B64URL, n)}T3BlbkFJ{mixed(rng, B64URL, n)}"
    if kind < 0.7:
        return f"sk-svcacct-{mixed(rng, B64URL, 74)}T3BlbkFJ{mixed(rng, B64URL, 74)}"
    if kind < 0.8:
        return f"sk-admin-{mixed(rng, B64URL, 58)}T3BlbkFJ{mixed(rng, B64URL, 58)}"
    return f"sk-{mixed(rng, ALNUM, 20)}T3BlbkFJ{mixed(rng, ALNUM, 20)}"


def anthropic_key(rng: random.Random) -> str:
    kind = pick(rng, ["api03", "api03", "api03", "admin01"])
    return f"sk-ant-{kind}-{mixed(rng, B64URL, 93)}AA"


def google_key(rng: random.Random) -> str:
    return "AIza" + mixed(rng, ALNUM + "-_", 35)


def twilio_key(rng: random.Random) -> str:
    return "SK" + hexs(rng, 32)


def twilio_sid(rng: random.Random) -> str:
    return "AC" + hexs(rng, 32)


def sendgrid_key(rng: random.Random) -> str:
    return f"SG.{mixed(rng, B64URL, 22)}.{mixed(rng, B64URL, 43)}"


def pypi_token(rng: random.Random) -> str:
    return "pypi-AgEIcHlwaS5vcmc" + mixed(rng, B64URL, rng.choice([140, 160, 180, 200]))


def context7_key(rng: random.Random) -> str:
    return "ctx7sk-" + ruuid(rng)


def azure_key(rng: random.Random) -> str:
    return b64bytes(rng, 64)


def jwt_token(rng: random.Random, issuer: str | None = None) -> str:
    alg = pick(rng, ["HS256", "HS256", "RS256", "RS256", "ES256", "HS512", "PS256"])
    header: dict = {"alg": alg, "typ": "JWT"}
    if alg.startswith(("RS", "ES", "PS")) and rng.random() < 0.8:
        header = {"alg": alg, "kid": mixed(rng, B64URL, 27), "typ": "JWT"}
    if rng.random() < 0.3:
        header = dict(reversed(list(header.items())))
    now = epoch(rng)
    payload = {
        "iss": issuer
        or pick(
            rng,
            [
                "https://auth.northwind-apps.io/",
                "https://login.microsoftonline.com/" + ruuid(rng) + "/v2.0",
                "https://accounts.google.com",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_" + mixed(rng, ALNUM, 9),
                "kubernetes/serviceaccount",
                "https://api.linear-tools.dev",
            ],
        ),
        "sub": pick(rng, [ruuid(rng), str(rng.randint(10**8, 10**12)), "auth0|" + hexs(rng, 24)]),
        "aud": pick(rng, ["api://default", "mcp-gateway", "https://api.acme-internal.net", "web"]),
        "iat": now,
        "exp": now + pick(rng, [300, 900, 3600, 86400]),
    }
    if rng.random() < 0.5:
        payload["scope"] = pick(rng, ["read:repo write:repo", "openid profile", "admin", "tools:*"])
    if rng.random() < 0.3:
        payload["jti"] = ruuid(rng)
    sig_len = {"HS256": 32, "HS512": 64, "RS256": 256, "PS256": 256, "ES256": 64}[alg]
    return f"{b64url_json(header)}.{b64url_json(payload)}.{b64bytes(rng, sig_len, url=True, pad=False)}"


PEM_KINDS = {
    "RSA PRIVATE KEY": ("MIIEpAIBAAKCAQEA", 1588, 64),
    "PRIVATE KEY": ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 1620, 64),
    "EC PRIVATE KEY": ("MHcCAQEEI", 164, 64),
    "OPENSSH PRIVATE KEY": (
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
        328,
        70,
    ),
    "ENCRYPTED PRIVATE KEY": ("MIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI", 1732, 64),
    "DSA PRIVATE KEY": ("MIIBuwIBAAKBgQD", 888, 64),
}


def pem_body(rng: random.Random, head: str, total: int, width: int) -> list[str]:
    pad = rng.choice([0, 0, 1, 2])
    body = head + rstr(rng, B64, total - len(head) - pad) + "=" * pad
    return [body[i : i + width] for i in range(0, len(body), width)]


def private_key_pem(rng: random.Random, kind: str | None = None, nl: str = "\n") -> str:
    kind = kind or pick(
        rng,
        [
            "RSA PRIVATE KEY",
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "DSA PRIVATE KEY",
        ],
    )
    head, total, width = PEM_KINDS[kind]
    if kind == "RSA PRIVATE KEY" and rng.random() < 0.3:  # 4096-bit
        head, total = "MIIJKAIBAAKCAgEA", 3164
    lines = pem_body(rng, head, total, width)
    return nl.join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"])


def public_pem(rng: random.Random, kind: str | None = None, nl: str = "\n") -> str:
    kind = kind or pick(rng, ["PUBLIC KEY", "CERTIFICATE", "CERTIFICATE", "RSA PUBLIC KEY"])
    heads = {
        "PUBLIC KEY": ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 392),
        "CERTIFICATE": ("MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ", 1240),
        "RSA PUBLIC KEY": ("MIIBCgKCAQEA", 360),
        "CERTIFICATE REQUEST": ("MIICvDCCAaQCAQAwdzELMAkGA1UEBhMCVVMx", 1080),
    }
    head, total = heads[kind]
    lines = pem_body(rng, head, total, 64)
    return nl.join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"])


def ssh_public_key(rng: random.Random) -> str:
    host = pick(
        rng, ["deploy@build-01", "ci-runner", "jenkins@agent7", "ops-laptop", "root@bastion"]
    )
    if rng.random() < 0.5:
        return f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{rstr(rng, B64, 43)} {host}"
    return f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{rstr(rng, B64, 338)}= {host}"


def password(rng: random.Random) -> str:
    """Passwords as people and generators write them (no quotes, backslashes or spaces)."""
    kind = rng.random()
    words = [
        "Harbor", "Falcon", "Maple", "Quartz", "Summit", "Copper", "Velvet", "Orbit", "Cedar",
        "Lantern", "Tundra", "Mosaic", "Pepper", "Nimbus", "Saffron", "Bramble",
    ]  # fmt: skip
    if kind < 0.35:
        return mixed(rng, ALNUM, rng.choice([16, 20, 24, 32]))
    if kind < 0.55:
        return mixed(rng, ALNUM + "!@#%^*-_=+", rng.choice([14, 18, 22]))
    if kind < 0.75:
        return (
            f"{pick(rng, words)}{pick(rng, ['-', '_', '.', ''])}{pick(rng, words).lower()}"
            f"{rng.randint(10, 9999)}{pick(rng, ['!', '#', '$', '@', '?', ''])}"
        )
    if kind < 0.9:
        return f"{pick(rng, words)}{rng.randint(1990, 2026)}{pick(rng, ['!', '#', '@', '*'])}"
    return b64bytes(rng, rng.choice([18, 24, 33]), url=True, pad=False)


def url_password(rng: random.Random) -> str:
    if rng.random() < 0.2:
        p = password(rng)
        return re.sub(r"[^A-Za-z0-9._~-]", lambda m: f"%{ord(m.group()):02X}", p)
    return mixed(rng, ALNUM + "-_.~", rng.choice([12, 16, 20, 24, 32]))


def opaque_token(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return hexs(rng, rng.choice([32, 40, 64]))
    if kind < 0.7:
        return mixed(rng, ALNUM, rng.choice([32, 40, 48]))
    return mixed(rng, B64URL, rng.choice([43, 64, 86]))


# --------------------------------------------------------------------------------------------
# Value generators: personal data
# --------------------------------------------------------------------------------------------

FIRST = [
    "Olivia", "Liam", "Amara", "Noah", "Priya", "Mateo", "Chen", "Sofia", "Jonas", "Fatima",
    "Lucas", "Ingrid", "Kwame", "Yuki", "Elena", "Tomasz", "Aisha", "Diego", "Hannah", "Ravi",
    "Marta", "Oskar", "Leila", "Samuel", "Chloe", "Arjun", "Beatriz", "Henrik", "Zoe", "Malik",
]  # fmt: skip
LAST = [
    "Okafor", "Lindqvist", "Martinez", "Nakamura", "Schneider", "Patel", "Dubois", "Kowalski",
    "Hughes", "Rossi", "Nguyen", "Fischer", "Haddad", "Johansson", "Moreau", "Silva", "Brennan",
    "Kim", "Adeyemi", "Van der Berg", "Horvat", "Castillo", "Weber", "Ivanova", "Reid", "Osei",
]  # fmt: skip
COMPANY_DOMAINS = [
    "northwind-traders.com", "globex.io", "initech.co", "acmecorp.net", "umbrella-health.org",
    "brightline.dev", "kestrel-labs.ai", "harborfreight-logistics.com", "veridian.eu",
    "contoso-retail.de", "fjordsoft.no", "mapleleaf-bank.ca", "tessellate.studio",
]  # fmt: skip
FREE_DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "protonmail.com", "icloud.com",
                "hotmail.fr", "web.de", "gmx.net", "yahoo.co.jp", "uol.com.br", "qq.com",
                "libero.it", "mail.ru", "fastmail.fm"]  # fmt: skip
STREETS = ["Elm Street", "Harbour Road", "Kastanienallee", "Rue de la Paix", "Maple Avenue",
           "Calle Mayor", "Oak Lane", "Via Roma", "King's Road", "Birch Crescent"]  # fmt: skip
CITIES = ["Springfield", "Leeds", "Berlin", "Lyon", "Toronto", "Madrid", "Austin", "Bologna",
          "Dublin", "Utrecht", "Denver", "Krakow"]  # fmt: skip


def person(rng: random.Random) -> tuple[str, str]:
    return pick(rng, FIRST), pick(rng, LAST)


def email_for(rng: random.Random, first: str, last: str, domain: str | None = None) -> str:
    last_ = last.lower().replace(" ", "")
    first_ = first.lower()
    local = pick(
        rng,
        [
            f"{first_}.{last_}",
            f"{first_[0]}{last_}",
            f"{first_}_{last_}{rng.randint(1, 99)}",
            f"{first_}{rng.randint(70, 2005)}",
            f"{first_}.{last_}+{pick(rng, ['billing', 'mcp', 'news', 'jira'])}",
            f"{last_}.{first_[0]}",
        ],
    )
    domain = domain or pick(rng, COMPANY_DOMAINS + FREE_DOMAINS)
    if rng.random() < 0.05:
        local = local.capitalize()
    return f"{local}@{domain}"


def email(rng: random.Random) -> str:
    if rng.random() < 0.12:
        # (no "noreply": an automated sender is no person, not reported; see the README)
        local = pick(
            rng, ["support", "billing", "security", "finance", "ops-alerts", "hr", "sales"]
        )
        return f"{local}@{pick(rng, COMPANY_DOMAINS)}"
    return email_for(rng, *person(rng))


def card_number(rng: random.Random, brand: str | None = None) -> str:
    brand = brand or pick(
        rng, ["visa", "visa", "visa", "mc", "mc", "amex", "discover", "jcb", "diners"]
    )
    if brand == "visa":
        prefix, n = "4", 16
    elif brand == "mc":
        prefix = str(rng.randint(51, 55)) if rng.random() < 0.7 else str(rng.randint(2221, 2720))
        n = 16
    elif brand == "amex":
        prefix, n = pick(rng, ["34", "37"]), 15
    elif brand == "discover":
        prefix, n = pick(rng, ["6011", "65", "644", "649"]), 16
    elif brand == "jcb":
        prefix, n = str(rng.randint(3528, 3589)), 16
    else:
        prefix, n = pick(rng, ["36", "300", "305", "38"]), 14
    while True:
        num = luhn_complete(prefix + rstr(rng, DIGITS, n - len(prefix) - 1))
        if num not in TEST_CARDS and len(set(num)) > 4:
            return num


def format_card(rng: random.Random, num: str, style: str | None = None) -> str:
    style = style or pick(rng, ["plain", "plain", "space", "space", "dash"])
    if style == "plain":
        return num
    sep = " " if style == "space" else "-"
    if len(num) == 15:
        groups = [num[:4], num[4:10], num[10:]]
    elif len(num) == 14:
        groups = [num[:4], num[4:10], num[10:]]
    else:
        groups = [num[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


def luhn_fail(rng: random.Random) -> str:
    while True:
        num = card_number(rng, "visa")
        bad = num[:-1] + str((int(num[-1]) + rng.randint(1, 9)) % 10)
        if not luhn_ok(bad):
            return bad


def ssn(rng: random.Random, style: str = "dash") -> str:
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        s = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        dashed = f"{s[:3]}-{s[3:5]}-{s[5:]}"
        if dashed in SAMPLE_SSNS or len(set(s)) < 4:
            continue
        if style == "dash":
            return dashed
        if style == "space":
            return f"{s[:3]} {s[3:5]} {s[5:]}"
        return s


def ssn_invalid(rng: random.Random) -> str:
    kind = rng.randint(0, 3)
    g, sr = rng.randint(1, 99), rng.randint(1, 9999)
    if kind == 0:
        return f"000-{g:02d}-{sr:04d}"
    if kind == 1:
        return f"666-{g:02d}-{sr:04d}"
    if kind == 2:
        return f"{rng.randint(900, 999)}-{rng.randint(70, 99):02d}-{sr:04d}"
    return f"{rng.randint(100, 599):03d}-00-{sr:04d}"


IBAN_SPECS: dict[str, Callable[[random.Random], str]] = {
    "DE": lambda r: rstr(r, DIGITS, 18),
    "GB": lambda r: rstr(r, UPPER, 4) + rstr(r, DIGITS, 14),
    "FR": lambda r: rstr(r, DIGITS, 23),
    "NL": lambda r: rstr(r, UPPER, 4) + rstr(r, DIGITS, 10),
    "ES": lambda r: rstr(r, DIGITS, 20),
    "IT": lambda r: rstr(r, UPPER, 1) + rstr(r, DIGITS, 22),
    "BE": lambda r: rstr(r, DIGITS, 12),
    "CH": lambda r: rstr(r, DIGITS, 17),
    "AT": lambda r: rstr(r, DIGITS, 16),
    "PL": lambda r: rstr(r, DIGITS, 24),
    "SE": lambda r: rstr(r, DIGITS, 20),
    "IE": lambda r: rstr(r, UPPER, 4) + rstr(r, DIGITS, 14),
}


def iban(rng: random.Random, country: str | None = None) -> str:
    country = country or pick(rng, list(IBAN_SPECS))
    return iban_make(country, IBAN_SPECS[country](rng))


def format_iban(rng: random.Random, value: str, spaced: bool | None = None) -> str:
    spaced = rng.random() < 0.5 if spaced is None else spaced
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if spaced else value


def iban_bad(rng: random.Random) -> str:
    good = iban(rng)
    while True:
        i = rng.randrange(4, len(good))
        if good[i].isdigit():
            bad = good[:i] + str((int(good[i]) + rng.randint(1, 9)) % 10) + good[i + 1 :]
            if not iban_ok(bad):
                return bad


US_AREA_CODES = [
    "201", "206", "212", "213", "214", "303", "305", "310", "312", "404", "408", "415", "425",
    "469", "480", "503", "508", "512", "602", "617", "646", "650", "702", "713", "718", "720",
    "737", "773", "786", "805", "818", "832", "857", "908", "914", "917", "919", "929", "978",
]  # fmt: skip


def _nanp(rng: random.Random) -> tuple[str, str, str]:
    while True:
        nxx = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if nxx[1:] != "11" and nxx != "555":
            return pick(rng, US_AREA_CODES), nxx, f"{rng.randint(0, 9999):04d}"


def phone(rng: random.Random) -> str:
    kind = rng.randint(0, 14)
    if kind == 14:  # E.164 without separators, as CRMs and Twilio store them
        return pick(
            rng,
            [
                "+1" + "".join(_nanp(rng)),
                f"+44{rng.randint(7400, 7999)}{rng.randint(100000, 999999)}",
                f"+49{rng.randint(151, 179)}{rng.randint(1000000, 99999999)}",
            ],
        )
    if kind <= 5:
        a, b, c = _nanp(rng)
        return pick(
            rng,
            [
                f"({a}) {b}-{c}",
                f"{a}-{b}-{c}",
                f"{a}.{b}.{c}",
                f"+1 {a} {b} {c}",
                f"+1-{a}-{b}-{c}",
                f"+1 ({a}) {b}-{c}",
                f"1-{a}-{b}-{c}",
            ],
        )
    if kind == 6:
        return pick(
            rng,
            [
                f"+44 20 {rng.randint(3000, 8999)} {rng.randint(1000, 9999)}",
                f"+44 7{rng.randint(400, 999)} {rng.randint(100000, 999999)}",
                f"020 {rng.randint(3000, 8999)} {rng.randint(1000, 9999)}",
                f"07{rng.randint(400, 999)} {rng.randint(100000, 999999)}",
            ],
        )
    if kind == 7:
        return pick(
            rng,
            [
                f"+49 30 {rng.randint(1000000, 99999999)}",
                f"+49 1{rng.randint(51, 79)} {rng.randint(1000000, 99999999)}",
                f"030 {rng.randint(100000, 9999999)}",
                f"+49 (0)89 {rng.randint(100000, 9999999)}",
            ],
        )
    if kind == 8:
        d = [f"{rng.randint(10, 99)}" for _ in range(4)]
        return pick(
            rng,
            [f"+33 {rng.randint(1, 7)} {' '.join(d)}", f"0{rng.randint(1, 7)} {' '.join(d)}"],
        )
    if kind == 9:
        return f"+91 {rng.randint(70000, 99999)} {rng.randint(10000, 99999)}"
    if kind == 10:
        return f"+61 {rng.randint(2, 4)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    if kind == 11:
        return f"+34 {rng.randint(600, 699)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    if kind == 12:
        return f"+31 6 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    if rng.random() < 0.5:
        return f"+1 {'-'.join(_nanp(rng))}"
    return pick(
        rng,
        [
            f"+81 3-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"+81 90-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"+55 11 9{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+52 55 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+39 06 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+46 8 {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(10, 99)}",
            f"+41 44 {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            f"+353 1 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
        ],
    )


PUBLIC_FIRST_OCTETS = [3, 13, 18, 23, 31, 34, 35, 44, 46, 52, 54, 62, 66, 73, 78, 81, 85, 88,
                       91, 94, 98, 104, 107, 109, 142, 151, 176, 185, 188, 195, 209, 212, 217]  # fmt: skip


def ipv4(rng: random.Random, private: bool | None = None) -> str:
    private = rng.random() < 0.4 if private is None else private
    if private:
        kind = rng.randint(0, 2)
        if kind == 0:
            return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        if kind == 1:
            return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
    return (
        f"{pick(rng, PUBLIC_FIRST_OCTETS)}.{rng.randint(0, 255)}."
        f"{rng.randint(0, 255)}.{rng.randint(2, 254)}"
    )


def L_ipv4(ip: str) -> L | str:
    """A public address is personal data; a private one (10/8, 172.16/12, 192.168/16) is the
    same on every site and identifies no one: plain text, not a label."""
    a, b = (int(x) for x in ip.split(".")[:2])
    private = a == 10 or (a == 172 and 16 <= b <= 31) or (a, b) == (192, 168)
    return ip if private else L("ipv4", ip)


# --------------------------------------------------------------------------------------------
# Benign content: realistic MCP traffic with nothing to find (also used as surrounding filler)
# --------------------------------------------------------------------------------------------

SERVICES = ["orders-api", "billing-worker", "search-indexer", "auth-service", "mcp-fs",
            "notifications", "inventory-sync", "gateway", "reports-cron", "ledger"]  # fmt: skip
REPOS = ["acme/platform", "kestrel-labs/agent-tools", "globex/checkout", "initech/tps-reports",
         "brightline/infra", "veridian/data-pipeline", "northwind/storefront"]  # fmt: skip
PATHS = ["src/app.py", "src/handlers/orders.ts", "lib/auth/session.go", "cmd/server/main.go",
         "tests/test_api.py", "web/src/components/Table.tsx", "infra/main.tf",
         "deploy/k8s/deployment.yaml", "docs/setup.md", "scripts/migrate.sh"]  # fmt: skip
WORDS = (
    "the request was retried after a transient failure and the worker resumed processing "
    "of the queue while metrics were flushed to the collector and the cache was warmed "
    "before traffic shifted to the new revision which passed its readiness checks"
).split()


def sentence(rng: random.Random, n: int | None = None) -> str:
    n = n or rng.randint(6, 14)
    start = rng.randrange(len(WORDS) - n)
    s = " ".join(WORDS[start : start + n])
    return s[0].upper() + s[1:] + "."


def sha(rng: random.Random, n: int = 40) -> str:
    return hexs(rng, n)


def bn_ls(rng: random.Random) -> str:
    lines = [f"total {rng.randint(20, 400)}"]
    names = ["README.md", "pyproject.toml", "src", "tests", ".github", "Dockerfile", ".env.example",
             "package.json", "node_modules", "docs", "Makefile", ".gitignore", "uv.lock"]  # fmt: skip
    for name in rng.sample(names, rng.randint(5, 11)):
        d = "d" if "." not in name or name.startswith(".git") else "-"
        lines.append(
            f"{d}rw{'x' if d == 'd' else '-'}r-xr-x  {rng.randint(1, 9)} dev  staff  "
            f"{rng.randint(96, 90000):>6} {pick(rng, ['Jan', 'Mar', 'Jun', 'Oct'])} "
            f"{rng.randint(1, 28):>2} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} {name}"
        )
    return "\n".join(lines)


def bn_python(rng: random.Random) -> str:
    return pick(
        rng,
        [
            'import getpass\n\n\ndef login(client, username: str) -> Session:\n    password = getpass.getpass("Password: ")\n    token = client.authenticate(username=username, password=password)\n    return Session(token=token, ttl=3600)\n',
            "class Settings(BaseSettings):\n    database_url: str\n    api_key: SecretStr\n    password: str | None = None\n    token_ttl: int = 3600\n\n    model_config = SettingsConfigDict(env_file='.env')\n",
            'def get_secret(name: str) -> str:\n    """Read a secret from the environment; never log it."""\n    value = os.environ.get(name)\n    if not value:\n        raise RuntimeError(f"missing secret {name}")\n    return value\n\nAPI_KEY = get_secret("API_KEY")\n',
            "@app.post('/reset-password')\nasync def reset_password(req: ResetRequest, db=Depends(get_db)):\n    user = await db.users.find(req.user_id)\n    if not user:\n        raise HTTPException(404)\n    user.password_hash = hasher.hash(req.new_password)\n    await db.commit()\n    return {'ok': True}\n",
            f"def retry(fn, attempts={rng.randint(2, 6)}, backoff={rng.choice([0.5, 1.0, 2.0])}):\n    for i in range(attempts):\n        try:\n            return fn()\n        except TransientError:\n            time.sleep(backoff * 2 ** i)\n    raise RetryExhausted(fn.__name__)\n",
            "const client = new ApiClient({\n  baseUrl: process.env.API_BASE_URL,\n  apiKey: process.env.API_KEY,\n  timeoutMs: 10_000,\n});\n\nexport async function listOrders(cursor?: string) {\n  return client.get('/v1/orders', { params: { cursor, limit: 50 } });\n}\n",
            'func NewStore(cfg Config) (*Store, error) {\n\tpassword := os.Getenv("DB_PASSWORD")\n\tif password == "" {\n\t\treturn nil, errors.New("DB_PASSWORD is not set")\n\t}\n\tdsn := fmt.Sprintf("postgres://%s:%s@%s/%s", cfg.User, password, cfg.Host, cfg.Name)\n\treturn open(dsn)\n}\n',
            "def verify(token: str, jwks: dict) -> dict:\n    header = jwt.get_unverified_header(token)\n    key = jwks[header['kid']]\n    return jwt.decode(token, key, algorithms=['RS256'], audience='api://default')\n",
        ],
    )


def bn_github_issues(rng: random.Random) -> str:
    repo = pick(rng, REPOS)
    items = []
    for _ in range(rng.randint(2, 5)):
        n = rng.randint(10, 4000)
        items.append(
            {
                "number": n,
                "title": pick(
                    rng,
                    [
                        "Flaky test in CI",
                        "Add retry to webhook sender",
                        "Crash when config file is empty",
                        "Bump lodash to 4.17.21",
                        "Docs: explain token rotation",
                        "Support password-less login",
                        "Memory leak in SSE reader",
                    ],
                ),  # fmt: skip
                "state": pick(rng, ["open", "closed"]),
                "html_url": f"https://github.com/{repo}/issues/{n}",
                "user": {"login": pick(rng, ["octo-dev", "mhughes", "dependabot[bot]", "rsilva"])},
                "labels": [pick(rng, ["bug", "enhancement", "docs", "ci"])],
                "comments": rng.randint(0, 30),
                "created_at": ts(rng),
                "node_id": "I_kwDO" + mixed(rng, B64URL, 16),
            }
        )
    return orjson.dumps(items, option=orjson.OPT_INDENT_2).decode()


def bn_git_log(rng: random.Random) -> str:
    msgs = ["fix: handle empty config", "feat(auth): rotate signing keys", "chore(deps): bump pydantic",
            "refactor: split scanner stages", "docs: token setup", "test: cover SSE reconnect",
            "ci: cache uv downloads", "Merge pull request #412 from acme/fix-timeouts"]  # fmt: skip
    if rng.random() < 0.5:
        return "\n".join(f"{sha(rng, 7)} {pick(rng, msgs)}" for _ in range(rng.randint(4, 12)))
    out = []
    for _ in range(rng.randint(2, 4)):
        out.append(
            f"commit {sha(rng)}\nDate:   {ts_log(rng)[:19]} +0000\n\n    {pick(rng, msgs)}\n"
            f"\n {pick(rng, PATHS)} | {rng.randint(1, 90)} {'+' * rng.randint(1, 8)}{'-' * rng.randint(0, 5)}"
        )
    return "\n\n".join(out)


def bn_npm(rng: random.Random) -> str:
    if rng.random() < 0.5:
        pkgs = ["lodash", "react", "zod", "express", "undici", "@types/node", "typescript"]
        parts = []
        for p in rng.sample(pkgs, 3):
            v = f"{rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
            parts.append(
                f'    "node_modules/{p}": {{\n      "version": "{v}",\n'
                f'      "resolved": "https://registry.npmjs.org/{p}/-/{p.split("/")[-1]}-{v}.tgz",\n'
                f'      "integrity": "sha512-{b64bytes(rng, 64)}",\n      "license": "MIT"\n    }}'
            )
        return '{\n  "packages": {\n' + ",\n".join(parts) + "\n  }\n}"
    return (
        f"added {rng.randint(50, 900)} packages, and audited {rng.randint(900, 1500)} packages in {rng.randint(2, 40)}s\n\n"
        f"{rng.randint(50, 200)} packages are looking for funding\n  run `npm fund` for details\n\n"
        f"found 0 vulnerabilities\nnpm notice New minor version of npm available! 10.{rng.randint(1, 9)}.0 -> 10.{rng.randint(10, 12)}.1\n"
        f"+ lodash@4.17.21\n+ zod@3.{rng.randint(20, 25)}.{rng.randint(0, 9)}"
    )


def bn_pip(rng: random.Random) -> str:
    pk = ["requests", "urllib3", "certifi", "idna", "pydantic", "orjson", "httpx"]
    lines = []
    for p in rng.sample(pk, 4):
        v = f"{rng.randint(1, 3)}.{rng.randint(0, 32)}.{rng.randint(0, 9)}"
        lines.append(
            f"{p}=={v} \\\n    --hash=sha256:{sha(rng, 64)} \\\n    --hash=sha256:{sha(rng, 64)}"
        )
    if rng.random() < 0.5:
        return "\n".join(lines)
    return (
        "Collecting httpx>=0.27\n  Downloading httpx-0.28.1-py3-none-any.whl (73 kB)\n"
        f"Requirement already satisfied: idna in ./.venv/lib/python3.12/site-packages (3.{rng.randint(4, 10)})\n"
        "Installing collected packages: h11, httpcore, httpx\n"
        "Successfully installed h11-0.14.0 httpcore-1.0.7 httpx-0.28.1"
    )


def bn_docker(rng: random.Random) -> str:
    if rng.random() < 0.5:
        lines = ["REPOSITORY                 TAG       IMAGE ID       CREATED        SIZE"]
        for _ in range(rng.randint(3, 6)):
            lines.append(
                f"{pick(rng, ['ghcr.io/acme/api', 'postgres', 'redis', 'nginx', 'python']):<26} "
                f"{pick(rng, ['latest', '16-alpine', '7.2', '3.12-slim', 'v2.14.1']):<9} "
                f"{sha(rng, 12)}   {rng.randint(2, 9)} days ago   {rng.randint(40, 900)}MB"
            )
        return "\n".join(lines)
    return (
        f"#5 [2/6] RUN pip install --no-cache-dir -r requirements.txt\n#5 DONE {rng.randint(3, 90)}.{rng.randint(0, 9)}s\n"
        f"#8 exporting layers\n#8 writing image sha256:{sha(rng, 64)} done\n"
        f"#8 naming to ghcr.io/acme/{pick(rng, SERVICES)}:{sha(rng, 7)} done\n"
        f"digest: sha256:{sha(rng, 64)} size: {rng.randint(1500, 4000)}"
    )


def bn_pytest(rng: random.Random) -> str:
    n = rng.randint(20, 400)
    f = rng.randint(0, 3)
    out = f"============================= test session starts ==============================\nplatform linux -- Python 3.12.{rng.randint(1, 8)}, pytest-8.3.{rng.randint(1, 5)}, pluggy-1.5.0\ncollected {n} items\n\n"
    out += f"tests/test_api.py {'.' * rng.randint(10, 40)}{'F' * f}\n"
    if f:
        out += (
            "\n=================================== FAILURES ===================================\n"
            "___________________________ test_token_refresh ___________________________\n\n"
            "    def test_token_refresh(client):\n        resp = client.post('/token/refresh')\n"
            ">       assert resp.status_code == 200\nE       assert 401 == 200\n"
            "E        +  where 401 = <Response [401 Unauthorized]>.status_code\n\n"
            "tests/test_api.py:88: AssertionError\n"
        )
    out += f"========================= {n - f} passed, {f} failed in {rng.randint(1, 90)}.{rng.randint(10, 99)}s ========================="
    return out


def bn_traceback(rng: random.Random) -> str:
    kind = rng.randint(0, 2)
    if kind == 0:
        return (
            "Traceback (most recent call last):\n"
            f'  File "/app/{pick(rng, PATHS)}", line {rng.randint(10, 400)}, in handle\n    result = await self.client.fetch(url, timeout=self.timeout)\n'
            f'  File "/app/.venv/lib/python3.12/site-packages/httpx/_client.py", line {rng.randint(1000, 1800)}, in send\n    raise exc\n'
            "httpx.ConnectTimeout: timed out while connecting to api.northwind-apps.io:443"
        )
    if kind == 1:
        return (
            'Exception in thread "main" java.lang.IllegalStateException: password must not be null\n'
            f"\tat com.acme.auth.CredentialStore.load(CredentialStore.java:{rng.randint(20, 300)})\n"
            f"\tat com.acme.auth.AuthModule.configure(AuthModule.java:{rng.randint(20, 300)})\n"
            "\tat com.google.inject.spi.Elements$RecordingBinder.install(Elements.java:340)\n"
            "\tat com.acme.Main.main(Main.java:17)"
        )
    return (
        "System.IO.FileNotFoundException: Could not load file or assembly 'Newtonsoft.Json, "
        "Version=13.0.0.0, Culture=neutral, PublicKeyToken=30ad4fe6b2a6aeed' or one of its dependencies.\n"
        "   at Acme.Billing.InvoiceService.Render(Invoice invoice)\n"
        "   at System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccessAndDebuggerNotification(Task task)\n"
        "=== Pre-bind state information ===\nLOG: DisplayName = System.Text.Json, Version=8.0.0.0, "
        "Culture=neutral, PublicKeyToken=cc7b13ffcd2ddd51\n"
        f"LOG: Appbase = file:///C:/inetpub/{pick(rng, SERVICES)}/"
    )


def bn_k8s(rng: random.Random) -> str:
    svc = pick(rng, SERVICES)
    if rng.random() < 0.5:
        return (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {svc}\n  labels:\n    app: {svc}\n"
            f"spec:\n  replicas: {rng.randint(1, 6)}\n  template:\n    spec:\n      containers:\n"
            f"        - name: {svc}\n          image: ghcr.io/acme/{svc}@sha256:{sha(rng, 64)}\n"
            "          env:\n            - name: DB_PASSWORD\n              valueFrom:\n"
            f"                secretKeyRef:\n                  name: {svc}-db\n                  key: password\n"
            "            - name: API_KEY\n              valueFrom:\n                secretKeyRef:\n"
            f"                  name: {svc}-api\n                  key: api-key\n"
            f"            - name: LOG_LEVEL\n              value: info\n"
        )
    lines = ["NAME                                READY   STATUS    RESTARTS   AGE"]
    for _ in range(rng.randint(3, 7)):
        lines.append(
            f"{pick(rng, SERVICES)}-{hexs(rng, 10)}-{rstr(rng, LOWER + DIGITS, 5):<10} "
            f"1/1     {pick(rng, ['Running', 'Running', 'Pending', 'CrashLoopBackOff'])}   "
            f"{rng.randint(0, 9)}          {rng.randint(1, 40)}d"
        )
    return "\n".join(lines)


def bn_sql_products(rng: random.Random) -> str:
    rows = [
        " id  |        sku        |        name         | price  | stock",
        "-----+-------------------+---------------------+--------+-------",
    ]
    names = [
        "USB-C cable 2m",
        "Desk lamp",
        "Ergonomic chair",
        "Notebook A5",
        "Monitor arm",
        "Webcam HD",
    ]
    for _ in range(rng.randint(3, 8)):
        rows.append(
            f" {rng.randint(100, 999)} | SKU-{rng.randint(10000, 99999)}-{rstr(rng, UPPER, 2)}    | "
            f"{pick(rng, names):<19} | {rng.randint(3, 400)}.{rng.randint(0, 99):02d} | {rng.randint(0, 500)}"
        )
    rows.append(f"({len(rows) - 2} rows)")
    return "\n".join(rows)


def bn_orders_json(rng: random.Random) -> str:
    orders = []
    for _ in range(rng.randint(2, 4)):
        orders.append(
            {
                "order_id": f"ORD-{rng.randint(2023, 2025)}-{rng.randint(100000, 999999)}",
                "status": pick(rng, ["shipped", "pending", "refunded"]),
                "total": {"amount": rng.randint(500, 90000), "currency": pick(rng, ["USD", "EUR"])},
                "tracking_number": "1Z" + rstr(rng, UPPER + DIGITS, 16),
                "created_at": ts(rng),
                "items": rng.randint(1, 6),
            }
        )
    return orjson.dumps(
        {"data": orders, "next_cursor": b64url_json({"offset": rng.randint(1, 9) * 50})}
    ).decode()


def bn_stripe(rng: random.Random) -> str:
    obj = {
        "id": "pi_" + mixed(rng, ALNUM, 24),
        "object": "payment_intent",
        "amount": rng.randint(500, 50000),
        "currency": "usd",
        "customer": "cus_" + mixed(rng, ALNUM, 14),
        "payment_method": "pm_" + mixed(rng, ALNUM, 24),
        "latest_charge": "ch_" + mixed(rng, ALNUM, 24),
        "status": pick(rng, ["succeeded", "requires_action", "processing"]),
        "client_secret": None,
        "livemode": True,
        "payment_method_details": {
            "card": {
                "brand": pick(rng, ["visa", "mastercard", "amex"]),
                "last4": f"{rng.randint(0, 9999):04d}",
                "exp_month": rng.randint(1, 12),
                "exp_year": rng.randint(2026, 2031),
                "fingerprint": mixed(rng, ALNUM, 16),
            }
        },
        "created": epoch(rng),
    }
    if rng.random() < 0.4:
        obj["publishable_key"] = "pk_live_" + mixed(rng, ALNUM, 99)
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()


def bn_slack_history(rng: random.Random) -> str:
    msgs = []
    for _ in range(rng.randint(2, 5)):
        msgs.append(
            {
                "type": "message",
                "user": "U0" + rstr(rng, UPPER + DIGITS, 9),
                "text": pick(
                    rng,
                    [
                        "deploy finished :rocket:",
                        "can someone review the token rotation PR?",
                        "standup in 5",
                        "password reset flow is broken on staging",
                        "the API key for staging was rotated, check the vault",
                    ],
                ),  # fmt: skip
                "ts": f"{epoch(rng)}.{rng.randint(100000, 999999)}",
                "team": "T0" + rstr(rng, UPPER + DIGITS, 8),
            }
        )
    return orjson.dumps(
        {"ok": True, "channel": "C0" + rstr(rng, UPPER + DIGITS, 9), "messages": msgs}
    ).decode()


def bn_weather(rng: random.Random) -> str:
    return orjson.dumps(
        {
            "location": pick(rng, CITIES),
            "temperature_c": round(rng.uniform(-10, 35), 1),
            "conditions": pick(rng, ["clear", "light rain", "overcast", "snow"]),
            "humidity": rng.randint(20, 95),
            "wind_kph": rng.randint(0, 60),
            "observed_at": ts(rng),
        }
    ).decode()


def bn_time(rng: random.Random) -> str:
    return orjson.dumps(
        {
            "timezone": pick(rng, ["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
            "datetime": ts(rng).replace("Z", "+01:00"),
            "is_dst": rng.random() < 0.5,
        }
    ).decode()


def bn_search(rng: random.Random) -> str:
    out = []
    for i in range(rng.randint(3, 5)):
        topic = pick(rng, ["rotating API keys", "JWT validation", "PostgreSQL connection pooling",
                           "OAuth client credentials flow", "SSE reconnect semantics"])  # fmt: skip
        out.append(
            f"{i + 1}. **{topic.title()}** - https://docs.{pick(rng, COMPANY_DOMAINS)}/guides/"
            f"{topic.replace(' ', '-').lower()}\n   {sentence(rng)}"
        )
    return "\n".join(out)


def bn_tool_schema(rng: random.Random) -> str:
    tools = [
        {
            "name": "connect_database",
            "description": "Open a connection. The password is read from the server's keychain.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "host": {"type": "string"},
                    "username": {"type": "string"},
                    "password": {
                        "type": "string",
                        "description": "Database password",
                        "writeOnly": True,
                    },
                },
                "required": ["host", "username"],
            },
        },
        {
            "name": "call_api",
            "description": "Call an HTTP API with an optional bearer token",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "api_key": {"type": "string", "description": "API key, e.g. YOUR_API_KEY"},
                    "token": {"type": "string"},
                },
            },
        },
        {
            "name": "read_file",
            "description": "Read a file from the workspace",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    ]
    return orjson.dumps({"tools": rng.sample(tools, rng.randint(1, 3))}).decode()


def bn_prompt(rng: random.Random) -> str:
    return pick(
        rng,
        [
            "Summarize the failing tests in the last CI run and suggest a fix.",
            f"Refactor {pick(rng, PATHS)} so the retry logic is shared, keep behaviour identical.",
            "Rotate the staging API key: create a new one in the dashboard, update the vault entry, then revoke the old key.",
            "Why does the password reset email take 10 minutes to arrive? Check the queue metrics.",
            f"Find all callers of get_secret() in {pick(rng, REPOS)} and list them with line numbers.",
            "Write a migration that adds a NOT NULL column `token_hash` with a default.",
            "Explain the difference between the publishable key and the secret key in Stripe.",
            "Draft release notes for v2.15.0 from the merged pull requests.",
        ],
    )


def bn_logs(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(4, 12)):
        lines.append(
            f"{ts_log(rng)} {pick(rng, ['INFO', 'INFO', 'WARN', 'DEBUG', 'ERROR'])} "
            f"[{pick(rng, SERVICES)}] request_id={ruuid(rng)} "
            + pick(
                rng,
                [
                    f"GET /v1/orders/{rng.randint(1000, 99999)} 200 {rng.randint(2, 900)}ms",
                    f"token refreshed for session {hexs(rng, 16)} (ttl=3600s)",
                    "password policy check passed (min_length=12)",
                    f"cache miss key=user:{rng.randint(1, 99999)}:profile",
                    f"retrying upstream call attempt={rng.randint(1, 5)} backoff={rng.randint(100, 4000)}ms",
                    "api key validated via introspection endpoint",
                    f"trace_id={hexs(rng, 32)} span_id={hexs(rng, 16)} exported",
                ],
            )
        )
    return "\n".join(lines)


def bn_json_log(rng: random.Random) -> str:
    return "\n".join(
        orjson.dumps(
            {
                "ts": ts(rng),
                "level": pick(rng, ["info", "warn", "error"]),
                "msg": pick(
                    rng,
                    [
                        "tool call completed",
                        "session initialized",
                        "upstream timeout",
                        "auth ok",
                        "rate limited",
                    ],
                ),  # fmt: skip
                "mcp_session_id": ruuid(rng),
                "tool": pick(rng, ["read_file", "search", "run_query", "create_issue"]),
                "duration_ms": rng.randint(1, 3000),
                "trace_id": hexs(rng, 32),
            }
        ).decode()
        for _ in range(rng.randint(2, 6))
    )


def bn_terraform(rng: random.Random) -> str:
    acct = str(rng.randint(10**11, 10**12 - 1))
    return (
        "Terraform will perform the following actions:\n\n"
        f"  # aws_iam_role.{pick(rng, ['lambda_exec', 'ecs_task', 'ci_deploy'])} will be created\n"
        '  + resource "aws_iam_role" "this" {\n'
        f'      + arn                   = "arn:aws:iam::{acct}:role/{pick(rng, SERVICES)}"\n'
        f'      + assume_role_policy    = jsonencode({{Version = "2012-10-17"}})\n'
        "      + id                    = (known after apply)\n"
        f'      + tags                  = {{ "team" = "platform" }}\n    }}\n\n'
        '  ~ resource "aws_db_instance" "main" {\n'
        "      ~ password            = (sensitive value)\n"
        f'      ~ engine_version      = "15.{rng.randint(2, 6)}" -> "16.{rng.randint(1, 4)}"\n    }}\n\n'
        f"Plan: {rng.randint(1, 9)} to add, {rng.randint(0, 5)} to change, 0 to destroy."
    )


def bn_iam(rng: random.Random) -> str:
    acct = str(rng.randint(10**11, 10**12 - 1))
    name = pick(rng, ["ci-deployer", "data-reader", "ops-admin"])
    return orjson.dumps(
        {
            "User": {
                "Path": "/",
                "UserName": name,
                "UserId": "AIDA" + rstr(rng, B32, 17),
                "Arn": f"arn:aws:iam::{acct}:user/{name}",
                "CreateDate": ts(rng),
            },
            "AttachedRole": {
                "RoleId": "AROA" + rstr(rng, B32, 17),
                "Arn": f"arn:aws:iam::{acct}:role/{name}-role",
            },
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def bn_image(rng: random.Random) -> str:
    png = base64.b64encode(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(rng.randint(120, 900))
    ).decode()
    return pick(
        rng,
        [
            f'<img alt="chart" src="data:image/png;base64,{png}">',
            orjson.dumps({"type": "image", "mimeType": "image/png", "data": png}).decode(),
            f"![screenshot](data:image/png;base64,{png})",
        ],
    )


def bn_hashes(rng: random.Random) -> str:
    files = [
        "dist/app-2.14.1.tar.gz",
        "dist/app-2.14.1-py3-none-any.whl",
        "SHA256SUMS",
        "checksums.txt",
    ]
    if rng.random() < 0.5:
        return "\n".join(f"{sha(rng, 64)}  {f}" for f in files[: rng.randint(2, 4)])
    return (
        f'ETag: "{sha(rng, 32)}"\nx-amz-version-id: {mixed(rng, ALNUM + "._", 32)}\n'
        f"x-amz-request-id: {rstr(rng, UPPER + DIGITS, 16)}\ncontent-md5: {b64bytes(rng, 16)}\n"
        f"x-checksum-sha256: {b64bytes(rng, 32)}"
    )


def bn_uuids(rng: random.Random) -> str:
    return orjson.dumps(
        {
            "workspace_id": ruuid(rng),
            "project_id": ruuid(rng),
            "api_key_id": "key_" + rstr(rng, "0123456789ABCDEFGHJKMNPQRSTVWXYZ", 26),
            "request_id": ruuid(rng),
            "idempotency_key": ruuid(rng),
            "etag": sha(rng, 32),
        }
    ).decode()


def bn_public_keys(rng: random.Random) -> str:
    kind = rng.randint(0, 3)
    if kind == 0:
        return "# ~/.ssh/authorized_keys\n" + "\n".join(
            ssh_public_key(rng) for _ in range(rng.randint(1, 3))
        )
    if kind == 1:
        return public_pem(rng)
    if kind == 2:
        return orjson.dumps(
            {
                "keys": [
                    {
                        "kty": "RSA",
                        "use": "sig",
                        "alg": "RS256",
                        "kid": mixed(rng, B64URL, 27),
                        "e": "AQAB",
                        "n": b64bytes(rng, 256, url=True, pad=False),
                    }  # fmt: skip
                ]
            }
        ).decode()
    return (
        "Certificate chain\n 0 s:CN = api.northwind-apps.io\n   i:C = US, O = Let's Encrypt, CN = R11\n"
        + public_pem(rng, "CERTIFICATE")
    )


def bn_workflow(rng: random.Random) -> str:
    return (
        "name: release\non:\n  push:\n    tags: ['v*']\njobs:\n  publish:\n    runs-on: ubuntu-latest\n"
        "    permissions:\n      id-token: write\n      contents: read\n    steps:\n"
        f"      - uses: actions/checkout@{sha(rng)}\n"
        "      - run: npm publish\n        env:\n          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}\n"
        "      - run: twine upload dist/*\n        env:\n          TWINE_USERNAME: __token__\n"
        "          TWINE_PASSWORD: ${{ secrets.PYPI_API_TOKEN }}\n"
        '      - name: notify\n        run: curl -X POST -d @payload.json "$SLACK_WEBHOOK_URL"\n'
    )


def bn_compose(rng: random.Random) -> str:
    return (
        "services:\n  db:\n    image: postgres:16-alpine\n    environment:\n"
        "      POSTGRES_USER: ${POSTGRES_USER}\n      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in .env}\n"
        "    volumes:\n      - pgdata:/var/lib/postgresql/data\n  api:\n"
        f"    image: ghcr.io/acme/{pick(rng, SERVICES)}:{sha(rng, 7)}\n    env_file: .env\n"
        "    environment:\n      DATABASE_URL: postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@db:5432/app\n"
        '      REDIS_URL: redis://redis:6379/0\n    ports:\n      - "8080:8080"\n'
    )


def bn_env_example(rng: random.Random) -> str:
    specific = {
        "OPENAI_API_KEY": ["sk-xxxxxxxxxxxxxxxxxxxxxxxx", "sk-..."],
        "SLACK_BOT_TOKEN": ["xoxb-your-bot-token"],
        "DATABASE_URL": [
            "postgres://user:password@localhost:5432/app",
            "postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:5432/app",
            "mysql://USER:PASSWORD@HOST/DB",
        ],
        "SECRET_KEY": ["<generate with openssl rand -hex 32>"],
        "GITHUB_TOKEN": ["ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
    }
    lines = ["# Copy to .env and fill in real values. Never commit .env!"]
    for name in rng.sample(
        ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "STRIPE_SECRET_KEY", "DATABASE_URL", "SECRET_KEY",
         "GITHUB_TOKEN", "SLACK_BOT_TOKEN", "AWS_SECRET_ACCESS_KEY", "SENDGRID_API_KEY", "JWT_SECRET"],
        rng.randint(3, 7),
    ):  # fmt: skip
        options = specific.get(name, []) + PLACEHOLDERS[:14] + [""]
        if name == "DATABASE_URL" and rng.random() < 0.7:
            options = specific[name]
        lines.append(f"{name}={pick(rng, options)}")
    lines.append("STRIPE_PUBLISHABLE_KEY=pk_test_" + mixed(rng, ALNUM, 24))
    return "\n".join(lines)


def bn_masked(rng: random.Random) -> str:
    return pick(rng, masked_options(rng))


def masked_options(rng: random.Random) -> list[str]:
    return [
        "github.com\n  ✓ Logged in to github.com account octo-dev (keyring)\n  - Active account: true\n  - Git operations protocol: https\n  - Token: gho_************************************\n  - Token scopes: 'gist', 'read:org', 'repo'",
        f"Error code: 401 - {{'error': {{'message': 'Incorrect API key provided: sk-proj-********************************{mixed(rng, ALNUM, 4)}. You can find your API key at https://platform.openai.com/account/api-keys.', 'type': 'invalid_request_error', 'code': 'invalid_api_key'}}}}",
        f"Payment method: Visa ending in {rng.randint(1000, 9999)} (exp {rng.randint(1, 12):02d}/{rng.randint(26, 31)})\nCard: **** **** **** {rng.randint(1000, 9999)}",
        f"Config loaded: api_key=[REDACTED] db_password=[REDACTED] region=eu-west-1 workers={rng.randint(2, 16)}",
        f"AWS_ACCESS_KEY_ID=****************{rstr(rng, B32, 4)}\nAWS_SECRET_ACCESS_KEY=****************************************",
        "Authorization: Bearer ***\nX-Api-Key: <redacted>\nCookie: session=<redacted>",
        f"Account number: XXXX-XXXX-{rng.randint(1000, 9999)}   SSN: ***-**-{rng.randint(1000, 9999)}",
        f'stripe.api_key = "sk_live_...{mixed(rng, ALNUM, 4)}"  # truncated in logs',
    ]


def bn_docs_examples(rng: random.Random) -> str:
    return pick(rng, docs_options(rng))


def docs_options(rng: random.Random) -> list[str]:
    aws_id, aws_sec = pick(rng, AWS_DOC_KEYS)
    return [
        f"To configure the CLI, run `aws configure` and enter your keys, for example:\n\n```\nAWS Access Key ID [None]: {aws_id}\nAWS Secret Access Key [None]: {aws_sec}\nDefault region name [None]: us-west-2\nDefault output format [None]: json\n```",
        f"[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {aws_sec}\n# The values above are the examples from the AWS documentation.",
        f'Paste a token into the debugger, e.g. the sample:\n\n{JWT_IO_SAMPLE}\n\nThe header decodes to {{"alg": "HS256", "typ": "JWT"}}.',
        f"Use these test card numbers in test mode:\n| Brand | Number |\n|---|---|\n| Visa | {pick(rng, ['4242 4242 4242 4242', '4111 1111 1111 1111', '4242424242424242'])} |\n| Mastercard | 5555 5555 5555 4444 |\n| Amex | 3782 822463 10005 |\n| Discover | 6011 1111 1111 1117 |\nAny future expiry date and any 3-digit CVC will work.",
        f"The SSN field must match ^\\d{{3}}-\\d{{2}}-\\d{{4}}$, e.g. {pick(rng, SAMPLE_SSNS)}. Numbers beginning with 9 are ITINs.",
        f"IBAN format: country code, two check digits and the BBAN, e.g. {pick(rng, EXAMPLE_IBANS)}.",
        f"curl https://api.stripe.com/v1/charges \\\n  -u {STRIPE_DOC_KEY}: \\\n  -d amount=2000 -d currency=usd -d source=tok_visa",
        f"For local development the storage emulator uses the well-known account devstoreaccount1 with key {AZURITE_KEY}",
        'Set `OPENAI_API_KEY=sk-...` in your shell, or pass `api_key="sk-xxxx"` to the client.',
        "Slack incoming webhooks look like https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX - create one under Apps > Incoming Webhooks.",
        "Generate a key with `ssh-keygen -t ed25519` and paste the private key into the secret:\n\n```\n-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n```",
        'Authorization header: `Authorization: Basic <base64(username:password)>`; the server answers `WWW-Authenticate: Basic realm="api"` when it is missing.',
        "Example request:\n\n    GET /v1/me HTTP/1.1\n    Authorization: Bearer <access_token>\n    Accept: application/json",
        "Personal access tokens look like `ghp_` followed by 36 characters, e.g. ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx. Twilio account SIDs look like ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.",
        f'Fixture tokens (not valid, checksum fails):\nGH_TEST_TOKEN = "{gh_token_badcrc(rng)}"',
    ]


def bn_numbers(rng: random.Random) -> str:
    """Hard negatives for the PII validators: numbers that look like PII but fail the rules."""
    return pick(
        rng,
        [
            f"Order number: {format_card(rng, luhn_fail(rng), 'space')} (reference only)",
            f"Invoice {rng.randint(2024, 2025)}-{rng.randint(1000, 9999)} total EUR {rng.randint(100, 9999)},{rng.randint(0, 99):02d}; "
            f"IBAN check failed for {format_iban(rng, iban_bad(rng), True)}",
            f"Rejected tax id {ssn_invalid(rng)}: area/group not issued",
            f"ISBN 978-{rng.randint(0, 1)}-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}-{rng.randint(0, 9)}; "
            f"published {rng.randint(1990, 2024)}; {rng.randint(100, 900)} pages",
            f"Build {rng.randint(1000, 9999)} took {rng.randint(1, 59)}m{rng.randint(0, 59)}s; artifact size {rng.randint(1, 999)},{rng.randint(100, 999)} bytes; "
            f"unix time {epoch(rng)}",
            f"Version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} released; "
            f"previous build {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}",
            f"SNMP OID 1.3.6.1.4.1.{rng.randint(1000, 60000)}.{rng.randint(1, 9)}.{rng.randint(1, 9)} returned {rng.randint(0, 100)}",
            f"Shipment tracking {rstr(rng, DIGITS, 22)} - {rng.randint(1, 9)} parcels, {rng.randint(1, 60)}.{rng.randint(0, 9)} kg",
            f"Card token tok_{mixed(rng, ALNUM, 24)}, fingerprint {mixed(rng, ALNUM, 16)}, last4 {rng.randint(1000, 9999)}",
            f"Coordinates {rng.uniform(-80, 80):.6f}, {rng.uniform(-170, 170):.6f}; elevation {rng.randint(0, 3000)} m",
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2020, 2025)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} "
            f"duration 00:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}; cost $1,{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
        ],
    )


def bn_email_text(rng: random.Random) -> str:
    return (
        f"Subject: {pick(rng, ['Q3 planning', 'Incident review: API latency', 'Your invoice is ready', 'Password reset requested'])}\n\n"
        f"Hi team,\n\n{sentence(rng)} {sentence(rng)}\n\n"
        "If you did not request a password reset, you can ignore this message; your password will not change.\n\n"
        f"Thanks,\n{pick(rng, FIRST)}"
    )


def bn_markdown(rng: random.Random) -> str:
    return (
        f"# {pick(rng, SERVICES)}\n\n## Configuration\n\n| Variable | Description |\n|---|---|\n"
        "| `API_KEY` | API key used for outbound calls (required) |\n"
        "| `DB_PASSWORD` | Database password, read from the secret store |\n"
        "| `TOKEN_TTL` | Lifetime of issued tokens in seconds (default 3600) |\n\n"
        f"## Running\n\n```sh\nexport API_KEY=$(vault kv get -field=api_key secret/{pick(rng, SERVICES)})\nmake run\n```\n\n{sentence(rng)}"
    )


def bn_shell_history(rng: random.Random) -> str:
    cmds = [
        "git status",
        "git pull --rebase",
        "kubectl get pods -n prod",
        "docker compose up -d",
        "export AWS_PROFILE=staging",
        "aws sts get-caller-identity",
        "read -s DB_PASSWORD && export DB_PASSWORD",
        "gh auth login --with-token < ~/.secrets/gh",
        "op read op://Engineering/Stripe/credential",
        "vault kv get secret/app/api",
        "npm ci && npm test",
        "pytest -x -q",
        "ssh bastion",
        "curl -sS https://api.northwind-apps.io/health | jq .",
    ]
    return "\n".join(f"{rng.randint(100, 2000)}  {c}" for c in rng.sample(cmds, rng.randint(5, 10)))


def bn_calendar(rng: random.Random) -> str:
    return orjson.dumps(
        {
            "events": [
                {
                    "id": hexs(rng, 26),
                    "summary": pick(
                        rng, ["Sprint planning", "1:1", "Security review", "Customer call"]
                    ),
                    "start": ts(rng),
                    "attendees": [
                        f"{pick(rng, FIRST)} {pick(rng, LAST)}" for _ in range(rng.randint(1, 4))
                    ],
                    "conference": f"https://meet.{pick(rng, COMPANY_DOMAINS)}/{rstr(rng, LOWER, 3)}-{rstr(rng, LOWER, 4)}-{rstr(rng, LOWER, 3)}",
                }
                for _ in range(rng.randint(1, 3))
            ]
        }
    ).decode()


def bn_metrics_csv(rng: random.Random) -> str:
    rows = ["date,requests,errors,p50_ms,p99_ms"]
    for d in range(1, rng.randint(5, 12)):
        rows.append(
            f"2025-06-{d:02d},{rng.randint(1000, 900000)},{rng.randint(0, 900)},{rng.randint(2, 90)},{rng.randint(100, 3000)}"
        )
    return "\n".join(rows)


def bn_config_benign(rng: random.Random) -> str:
    return (
        "server:\n  host: localhost\n  port: 8443\n  tls:\n    cert_file: /etc/ssl/certs/server.crt\n"
        "    key_file: /etc/ssl/private/server.key\nauth:\n  type: oidc\n  issuer: https://auth.northwind-apps.io/\n"
        f"  client_id: {ruuid(rng)}\n  client_secret_file: /run/secrets/oidc_client_secret\n"
        "  token_ttl: 1h\n  password_min_length: 12\nlimits:\n"
        f"  requests_per_minute: {rng.randint(60, 6000)}\n  max_body_mb: {rng.randint(1, 50)}\n"
    )


def bn_sentry(rng: random.Random) -> str:
    posthog = f"NEXT_PUBLIC_POSTHOG_KEY=phc_{mixed(rng, ALNUM, 43)}\n" if rng.random() < 0.4 else ""
    sentry = f"https://{hexs(rng, 32)}@o{rng.randint(100000, 999999)}.ingest.sentry.io/{rng.randint(1000000, 9999999)}"
    return (
        f"SENTRY_DSN={sentry if rng.random() < 0.5 else ''}\n"
        f"{posthog}"
        f"STRIPE_PUBLISHABLE_KEY=pk_live_{mixed(rng, ALNUM, 99)}\n"
        f"TWILIO_ACCOUNT_SID={twilio_sid(rng)}\n"
        f"PUBLIC_URL=https://app.{pick(rng, COMPANY_DOMAINS)}"
    )


def bn_cursor(rng: random.Random) -> str:
    return orjson.dumps(
        {
            "results": [
                {"id": ruuid(rng), "score": round(rng.random(), 4)}
                for _ in range(rng.randint(1, 3))
            ],
            "next_page_token": b64url_json({"after": ruuid(rng), "limit": 25}),
            "state": base64.b64encode(orjson.dumps({"v": 1, "pos": rng.randint(1, 999)})).decode(),
        }
    ).decode()


BENIGN_GENERATORS: dict[str, tuple[Callable[[random.Random], str], int]] = {
    # name: (generator, weight)
    "ls": (bn_ls, 3),
    "code": (bn_python, 6),
    "github_issues": (bn_github_issues, 4),
    "git_log": (bn_git_log, 4),
    "npm": (bn_npm, 4),
    "pip": (bn_pip, 3),
    "docker": (bn_docker, 3),
    "pytest": (bn_pytest, 4),
    "traceback": (bn_traceback, 4),
    "k8s": (bn_k8s, 4),
    "sql": (bn_sql_products, 3),
    "orders": (bn_orders_json, 4),
    "stripe": (bn_stripe, 3),
    "slack": (bn_slack_history, 3),
    "weather": (bn_weather, 2),
    "time": (bn_time, 2),
    "search": (bn_search, 4),
    "tool_schema": (bn_tool_schema, 3),
    "prompt": (bn_prompt, 6),
    "logs": (bn_logs, 6),
    "json_log": (bn_json_log, 4),
    "terraform": (bn_terraform, 2),
    "iam": (bn_iam, 2),
    "image": (bn_image, 3),
    "hashes": (bn_hashes, 3),
    "uuids": (bn_uuids, 3),
    "public_keys": (bn_public_keys, 4),
    "workflow": (bn_workflow, 2),
    "compose": (bn_compose, 2),
    "env_example": (bn_env_example, 4),
    "masked": (bn_masked, 4),
    "docs_examples": (bn_docs_examples, 8),
    "numbers": (bn_numbers, 6),
    "email_text": (bn_email_text, 3),
    "markdown": (bn_markdown, 3),
    "shell_history": (bn_shell_history, 3),
    "calendar": (bn_calendar, 2),
    "metrics": (bn_metrics_csv, 2),
    "config": (bn_config_benign, 2),
    "public_ids": (bn_sentry, 3),
    "cursor": (bn_cursor, 2),
}


def benign_filler(rng: random.Random) -> str:
    names = list(BENIGN_GENERATORS)
    weights = [BENIGN_GENERATORS[n][1] for n in names]
    return BENIGN_GENERATORS[rng.choices(names, weights)[0]][0](rng)


# --------------------------------------------------------------------------------------------
# Config-style carriers: key = value documents in many syntaxes
# --------------------------------------------------------------------------------------------

Item = tuple[str, "str | L | Doc"]

FILLER_KV: list[Callable[[random.Random], tuple[str, str]]] = [
    lambda r: ("NODE_ENV", pick(r, ["production", "staging"])),
    lambda r: ("PORT", str(pick(r, [3000, 8080, 8000, 5000]))),
    lambda r: ("LOG_LEVEL", pick(r, ["info", "debug", "warn"])),
    lambda r: ("AWS_REGION", pick(r, ["us-east-1", "eu-west-1", "ap-southeast-2"])),
    lambda r: (
        "S3_BUCKET",
        f"{pick(r, ['acme', 'globex', 'kestrel'])}-prod-{pick(r, ['assets', 'exports', 'logs'])}",
    ),
    lambda r: ("REDIS_HOST", "redis.internal"),
    lambda r: (
        "DB_HOST",
        pick(r, ["db-primary.internal", "postgres", "orders-db.cluster-ro.internal"]),
    ),
    lambda r: ("DB_NAME", pick(r, ["orders", "app", "billing"])),
    lambda r: ("DB_USER", pick(r, ["app_rw", "svc_orders", "reporting"])),
    lambda r: ("FEATURE_NEW_CHECKOUT", pick(r, ["true", "false"])),
    lambda r: ("TZ", "UTC"),
    lambda r: ("CACHE_TTL_SECONDS", str(r.randint(30, 3600))),
    lambda r: ("APP_VERSION", f"2.{r.randint(0, 20)}.{r.randint(0, 9)}"),
    lambda r: ("PUBLIC_URL", f"https://app.{pick(r, COMPANY_DOMAINS)}"),
    lambda r: ("GIT_SHA", sha(r)),
    lambda r: ("BUILD_ID", ruuid(r)),
    lambda r: ("TOKEN_TTL", str(pick(r, [900, 3600, 86400]))),
    lambda r: ("PASSWORD_MIN_LENGTH", str(pick(r, [10, 12, 14]))),
    lambda r: ("MAX_UPLOAD_MB", str(r.randint(5, 100))),
    lambda r: ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317"),
    lambda r: ("STRIPE_PUBLISHABLE_KEY", "pk_live_" + mixed(r, ALNUM, 99)),
    lambda r: ("TWILIO_ACCOUNT_SID", twilio_sid(r)),
    lambda r: ("SENTRY_ENVIRONMENT", "production"),
    lambda r: ("AUTH_ISSUER", "https://auth.northwind-apps.io/"),
    lambda r: ("OAUTH_CLIENT_ID", ruuid(r)),
    lambda r: ("SESSION_COOKIE_NAME", "sid"),
]


def filler_items(rng: random.Random, n: int) -> list[Item]:
    seen: dict[str, Item] = {}
    for f in rng.sample(FILLER_KV, n):
        k, v = f(rng)
        seen[k] = (k, v)
    return list(seen.values())


def snake(name: str) -> str:
    return name.lower()


def camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(p.capitalize() for p in rest)


def kv_doc(rng: random.Random, items: list[Item], style: str | None = None) -> Doc:
    """Render items in one config syntax. Labelled values keep their label."""
    style = style or pick(rng, ["env", "env", "env_quoted", "export", "yaml", "yaml", "json", "toml",
                                "python", "k8s_env", "compose", "ini"])  # fmt: skip
    lines: list[Doc] = []
    for name, v in items:
        if style == "env":
            lines.append(fill("«k»=«v»", k=name, v=v))
        elif style == "env_quoted":
            lines.append(fill('«k»="«v»"', k=name, v=v))
        elif style == "export":
            q = pick(rng, ["", '"', "'"])
            lines.append(fill(f"export «k»={q}«v»{q}", k=name, v=v))
        elif style == "yaml":
            q = pick(rng, ["", '"', "'"])
            lines.append(fill(f"  «k»: {q}«v»{q}", k=snake(name), v=v))
        elif style == "json":
            lines.append(fill('  "«k»": "«v»"', k=pick(rng, [snake(name), camel(name)]), v=v))
        elif style == "toml":
            lines.append(fill('«k» = "«v»"', k=snake(name), v=v))
        elif style == "python":
            lines.append(fill("«k» = '«v»'", k=name, v=v))
        elif style == "k8s_env":
            lines.append(fill('        - name: «k»\n          value: "«v»"', k=name, v=v))
        elif style == "compose":
            lines.append(fill("      - «k»=«v»", k=name, v=v))
        else:  # ini
            lines.append(fill("«k» = «v»", k=snake(name), v=v))
    header = {
        "yaml": pick(rng, ["app:\n", "config:\n", "settings:\n", "production:\n"]),
        "json": "{\n",
        "toml": pick(rng, ["[app]\n", "[service]\n", "[default]\n"]),
        "python": "# settings/production.py\nimport os\n\n",
        "k8s_env": "      containers:\n      - name: app\n        env:\n",
        "compose": "services:\n  app:\n    environment:\n",
        "ini": pick(rng, ["[main]\n", "[credentials]\n", "[server]\n"]),
    }.get(style, "")
    footer = "\n}" if style == "json" else ""
    return Doc(header, join(lines, ",\n" if style == "json" else "\n"), footer)


def config_with(rng: random.Random, secret_items: list[Item], style: str | None = None,
                fillers: tuple[int, int] = (2, 6)) -> Doc:  # fmt: skip
    items = filler_items(rng, rng.randint(*fillers))
    for it in secret_items:
        items.insert(rng.randint(0, len(items)), it)
    return kv_doc(rng, items, style)


FILE_HEADERS = [
    "$ cat deploy/app.conf\n",
    "$ kubectl exec deploy/api -- cat /etc/app/config\n",
    "Contents of the configuration file:\n\n",
    "File changed in this commit:\n---\n",
    "```\n",
    "Here is the configuration file:\n\n",
    "",
    "",
    "",
    "",
]


def as_file(rng: random.Random, doc: Doc) -> Doc:
    head = pick(rng, FILE_HEADERS)
    tail = "\n```" if head == "```\n" else ""
    return Doc(head, doc, tail)


# --------------------------------------------------------------------------------------------
# Positive carriers, one group per type (each returns a Doc with at least one label)
# --------------------------------------------------------------------------------------------

GEN_SECRET_NAMES = [
    "DB_PASSWORD", "POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "REDIS_PASSWORD", "SECRET_KEY",
    "DJANGO_SECRET_KEY", "JWT_SECRET", "SESSION_SECRET", "API_KEY", "API_SECRET", "CLIENT_SECRET",
    "OAUTH_CLIENT_SECRET", "AUTH_TOKEN", "ACCESS_TOKEN", "WEBHOOK_SECRET", "ENCRYPTION_KEY",
    "DATADOG_API_KEY", "SMTP_PASSWORD", "LDAP_BIND_PASSWORD", "NEXTAUTH_SECRET", "ADMIN_PASSWORD",
    "ALGOLIA_ADMIN_KEY", "MAILGUN_API_KEY", "PRIVATE_TOKEN", "APP_SECRET", "RABBITMQ_PASSWORD",
    "DB_PASS", "SMTP_PASS", "MYSQL_PWD", "REDIS_AUTH", "ADMIN_PASSWD", "CONSUMER_SECRET",
]  # fmt: skip


def gen_value(rng: random.Random, name: str) -> str:
    if "PASSWORD" in name:
        return password(rng)
    if name == "DATADOG_API_KEY":
        return hexs(rng, 32)
    if name == "MAILGUN_API_KEY":
        return "key-" + hexs(rng, 32)
    if name == "DJANGO_SECRET_KEY" and rng.random() < 0.5:
        return "django-insecure-" + rstr(rng, LOWER + DIGITS + "!@#%^*(-_=+)", 50)
    return pick(rng, [opaque_token(rng), password(rng), b64bytes(rng, 32)])


def c_generic(rng: random.Random) -> Doc:
    kind = rng.randint(0, 13)
    if kind <= 3:
        names = rng.sample(GEN_SECRET_NAMES, rng.randint(1, 3))
        items = [(n, L("generic_secret", gen_value(rng, n))) for n in names]
        return as_file(rng, config_with(rng, items))
    if kind == 4:
        tok = opaque_token(rng)
        return fill(
            "«method» «path» HTTP/1.1\nHost: api.«dom»\nAuthorization: Bearer «tok»\nAccept: application/json\nUser-Agent: mcp-http/1.3",
            method=pick(rng, ["GET", "POST", "DELETE"]), path=pick(rng, ["/v1/orders", "/api/v2/users/me", "/graphql"]),
            dom=pick(rng, COMPANY_DOMAINS), tok=L("generic_secret", tok),
        )  # fmt: skip
    if kind == 5:
        tok = opaque_token(rng)
        return fill(
            'curl -sS -H "«hdr»: «tok»" https://api.«dom»/v2/«res»?limit=50',
            hdr=pick(rng, ["X-API-Key", "X-Api-Key", "api-key", "X-Auth-Token"]),
            tok=L("generic_secret", tok), dom=pick(rng, COMPANY_DOMAINS), res=pick(rng, ["events", "invoices", "reports"]),
        )  # fmt: skip
    if kind == 6:
        pw = password(rng)
        user = pick(rng, ["sa", "app_user", "reporting"])
        return fill(
            "Server=tcp:«host»,1433;Initial Catalog=«db»;Persist Security Info=False;User ID=«user»;Password=«pw»;Encrypt=True;Connection Timeout=30;",
            host=pick(rng, ["sql-prod-01.database.windows.net", "mssql.internal"]), db=pick(rng, ["orders", "crm"]),
            user=user, pw=L("generic_secret", pw),
        )  # fmt: skip
    if kind == 7:
        at, rt = opaque_token(rng), opaque_token(rng)
        obj = Doc(
            '{"access_token": "',
            L("generic_secret", at),
            '", "token_type": "Bearer", "expires_in": ',
            str(pick(rng, [3600, 7200])),
            ', "refresh_token": "',
            L("generic_secret", rt),
            f'", "scope": "{pick(rng, ["read write", "offline_access", "repo"])}"}}',
        )
        return obj
    if kind == 8:
        cs = mixed(rng, ALNUM + "~._-", 40)
        return fill(
            'oauth:\n  provider: «prov»\n  client_id: «cid»\n  client_secret: «cs»\n  redirect_uri: https://app.«dom»/callback\n  scopes: [openid, profile]',
            prov=pick(rng, ["azure-ad", "okta", "auth0", "google"]), cid=ruuid(rng), cs=L("generic_secret", cs),
            dom=pick(rng, COMPANY_DOMAINS),
        )  # fmt: skip
    if kind == 9:
        pw = password(rng)
        return fill(
            "«n»  «cmd»",
            n=str(rng.randint(100, 2000)),
            cmd=pick(
                rng,
                [
                    fill(
                        "PGPASSWORD=«pw» psql -h db-primary.internal -U app_rw orders",
                        pw=L("generic_secret", pw),
                    ),
                    fill(
                        "mysql -h mysql.internal -u root --password=«pw» -e 'show databases'",
                        pw=L("generic_secret", pw),
                    ),
                    fill(
                        "docker login registry.internal --username ci --password «pw»",
                        pw=L("generic_secret", pw),
                    ),
                    fill("redis-cli -h cache.internal -a «pw» INFO", pw=L("generic_secret", pw)),
                ],
            ),
        )
    if kind == 10:
        sk = gen_value(rng, "SECRET_KEY")
        return fill(
            "# settings.py\nDEBUG = False\nALLOWED_HOSTS = ['app.«dom»']\nSECRET_KEY = '«sk»'\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'app'}}",
            dom=pick(rng, COMPANY_DOMAINS), sk=L("generic_secret", sk),
        )  # fmt: skip
    if kind == 11:
        pw = password(rng)
        return Doc(
            '{"name": "',
            pick(rng, ["prod-db", "analytics", "crm"]),
            '", "engine": "postgres", "host": "',
            pick(rng, ["db-primary.internal", "analytics.cluster.internal"]),
            '", "port": 5432, "username": "',
            pick(rng, ["app_rw", "admin", "etl"]),
            '", "password": "',
            L("generic_secret", pw),
            '", "sslmode": "require"}',
        )
    if kind == 12:
        tok = opaque_token(rng)
        return fill(
            "Use api_key=«tok» when calling the «svc» endpoint and summarise the results.",
            tok=L("generic_secret", tok), svc=pick(rng, ["reporting", "billing", "search"]),
        )  # fmt: skip
    # k8s Secret with base64 data
    pw = base64.b64encode(password(rng).encode()).decode()
    tok = base64.b64encode(opaque_token(rng).encode()).decode()
    return fill(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: «svc»-credentials\n  namespace: prod\ntype: Opaque\ndata:\n  username: «user»\n  password: «pw»\n  api-token: «tok»",
        svc=pick(rng, SERVICES), user=base64.b64encode(pick(rng, ["app", "svc_user", "admin"]).encode()).decode(),
        pw=L("generic_secret", pw), tok=L("generic_secret", tok),
    )  # fmt: skip


def c_aws(rng: random.Random) -> Doc:
    kid = aws_key_id(rng, "AKIA")
    sec = aws_secret(rng)
    kind = rng.randint(0, 6)
    K, S = L("aws_access_key_id", kid), L("aws_secret_access_key", sec)
    if kind == 0:
        prof = pick(rng, ["default", "prod", "ci-deployer", "data"])
        return fill(
            "[«p»]\naws_access_key_id = «k»\naws_secret_access_key = «s»\nregion = «r»\n",
            p=prof,
            k=K,
            s=S,
            r=pick(rng, ["us-east-1", "eu-central-1"]),
        )
    if kind == 1:
        return as_file(
            rng, config_with(rng, [("AWS_ACCESS_KEY_ID", K), ("AWS_SECRET_ACCESS_KEY", S)])
        )
    if kind == 2:
        return fill(
            "import boto3\n\ns3 = boto3.client(\n    's3',\n    aws_access_key_id='«k»',\n    aws_secret_access_key='«s»',\n    region_name='«r»',\n)\n",
            k=K, s=S, r=pick(rng, ["us-west-2", "eu-west-1"]),
        )  # fmt: skip
    if kind == 3:
        return fill(
            'provider "aws" {\n  region     = "«r»"\n  access_key = "«k»"\n  secret_key = "«s»"\n}\n',
            k=K,
            s=S,
            r="us-east-1",
        )
    if kind == 4:
        user = pick(rng, ["ci-deployer", "backup-bot", "etl"])
        return Doc(
            '{\n    "AccessKey": {\n        "UserName": "',
            user,
            '",\n        "AccessKeyId": "',
            K,
            '",\n        "Status": "Active",\n        "SecretAccessKey": "',
            S,
            f'",\n        "CreateDate": "{ts(rng)}"\n    }}\n}}',
        )
    if kind == 5:
        return fill(
            "User name,Password,Access key ID,Secret access key,Console login link\n«u»,,«k»,«s»,https://«acct».signin.aws.amazon.com/console\n",
            u=pick(rng, ["deploy", "terraform"]), k=K, s=S, acct=str(rng.randint(10**11, 10**12 - 1)),
        )  # fmt: skip
    return fill(
        "«n»  export AWS_ACCESS_KEY_ID=«k»\n«m»  export AWS_SECRET_ACCESS_KEY=«s»\n«o»  aws s3 ls s3://«b»/",
        n=str(rng.randint(100, 900)), m=str(rng.randint(901, 950)), o=str(rng.randint(951, 999)),
        k=K, s=S, b=pick(rng, ["acme-prod-exports", "globex-backups"]),
    )  # fmt: skip


def c_aws_session(rng: random.Random) -> Doc:
    kid, sec, tok = aws_key_id(rng, "ASIA"), aws_secret(rng), aws_session_token(rng)
    K, S, T = (
        L("aws_access_key_id", kid),
        L("aws_secret_access_key", sec),
        L("aws_session_token", tok),
    )
    kind = rng.randint(0, 3)
    if kind == 0:
        role = pick(rng, ["OrganizationAccountAccessRole", "ci-deploy", "ReadOnly"])
        acct = str(rng.randint(10**11, 10**12 - 1))
        return Doc(
            '{\n    "Credentials": {\n        "AccessKeyId": "',
            K,
            '",\n        "SecretAccessKey": "',
            S,
            '",\n        "SessionToken": "',
            T,
            f'",\n        "Expiration": "{ts(rng)}"\n    }},\n'
            f'    "AssumedRoleUser": {{\n        "AssumedRoleId": "AROA{rstr(rng, B32, 17)}:session",\n'
            f'        "Arn": "arn:aws:sts::{acct}:assumed-role/{role}/session"\n    }}\n}}',
        )
    if kind == 1:
        return fill(
            "[«p»]\naws_access_key_id = «k»\naws_secret_access_key = «s»\naws_session_token = «t»\n",
            p=pick(rng, ["default", "sso-admin"]),
            k=K,
            s=S,
            t=T,
        )
    if kind == 2:
        return as_file(
            rng,
            config_with(
                rng,
                [("AWS_ACCESS_KEY_ID", K), ("AWS_SECRET_ACCESS_KEY", S), ("AWS_SESSION_TOKEN", T)],
                style=pick(rng, ["env", "export", "env_quoted"]),
            ),  # fmt: skip
        )
    return fill(
        "x-amz-security-token: «t»\nx-amz-date: 20250611T101500Z\nhost: «b».s3.amazonaws.com",
        t=T,
        b=pick(rng, ["acme-prod-exports", "globex-backups"]),
    )


def c_github(rng: random.Random) -> Doc:
    tok = gh_fine_pat(rng) if rng.random() < 0.15 else gh_token(rng)
    T = L("github_token", tok)
    repo = pick(rng, REPOS)
    kind = rng.randint(0, 7)
    if kind == 0:
        return fill(
            "$ git remote -v\norigin\thttps://x-access-token:«t»@github.com/«r».git (fetch)\norigin\thttps://x-access-token:«t2»@github.com/«r».git (push)",
            t=T, t2=L("github_token", tok), r=repo,
        )  # fmt: skip
    if kind == 1:
        return fill(
            'curl -H "Authorization: «sch» «t»" -H "Accept: application/vnd.github+json" https://api.github.com/repos/«r»/pulls?state=open',
            sch=pick(rng, ["token", "Bearer"]),
            t=T,
            r=repo,
        )
    if kind == 2:
        return fill(
            "github.com:\n    user: «u»\n    oauth_token: «t»\n    git_protocol: https\n",
            u=pick(rng, ["octo-dev", "mhughes", "rsilva"]),
            t=T,
        )
    if kind == 3:
        return as_file(
            rng,
            config_with(
                rng, [(pick(rng, ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "RENOVATE_TOKEN"]), T)]
            ),
        )
    if kind == 4:
        return fill(
            "//npm.pkg.github.com/:_authToken=«t»\n@«scope»:registry=https://npm.pkg.github.com\n",
            t=T,
            scope=repo.split("/")[0],
        )
    if kind == 5:
        return fill(
            "Please push the branch using my token «t» and open a PR against main in «r».",
            t=T,
            r=repo,
        )
    if kind == 6:
        return fill(
            "Run actions/checkout@v4\n  with:\n    repository: «r»\n    token: «t»\n    ssh-strict: true\nSyncing repository: «r»\n",
            r=repo,
            t=T,
        )
    return Doc(
        '{"mcpServers": {"github": {"command": "docker", "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "',
        T,
        '"}}}}',
    )


def c_gitlab(rng: random.Random) -> Doc:
    T = L("gitlab_token", gitlab_token(rng))
    kind = rng.randint(0, 4)
    proj = pick(rng, ["platform/api", "data/etl", "infra/terraform"])
    if kind == 0:
        return fill(
            "git clone https://oauth2:«t»@gitlab.«dom»/«p».git",
            t=T,
            dom=pick(rng, COMPANY_DOMAINS),
            p=proj,
        )
    if kind == 1:
        return fill(
            'curl --header "PRIVATE-TOKEN: «t»" "https://gitlab.com/api/v4/projects/«id»/pipelines?status=failed"',
            t=T,
            id=str(rng.randint(1000, 9999999)),
        )
    if kind == 2:
        return as_file(
            rng,
            config_with(
                rng,
                [
                    (
                        pick(
                            rng,
                            [
                                "GITLAB_TOKEN",
                                "GL_TOKEN",
                                "GITLAB_PRIVATE_TOKEN",
                                "DANGER_GITLAB_API_TOKEN",
                            ],
                        ),
                        T,
                    )
                ],
            ),
        )
    if kind == 3:
        return fill(
            '[[runners]]\n  name = "«n»"\n  url = "https://gitlab.com/"\n  executor = "docker"\n[runners.custom_build_dir]\n# api token used by the release job\nrelease_token = "«t»"',
            n=pick(rng, ["docker-runner-01", "k8s-runner"]), t=T,
        )  # fmt: skip
    return Doc(
        '{"mcpServers": {"gitlab": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-gitlab"], "env": {"GITLAB_PERSONAL_ACCESS_TOKEN": "',
        T,
        '", "GITLAB_API_URL": "https://gitlab.com/api/v4"}}}}',
    )


def c_slack(rng: random.Random) -> Doc:
    T = L("slack_token", slack_token(rng))
    kind = rng.randint(0, 4)
    if kind == 0:
        return fill(
            'from slack_sdk import WebClient\n\nclient = WebClient(token="«t»")\nclient.chat_postMessage(channel="«c»", text="Deploy finished")',
            t=T,
            c="C0" + rstr(rng, UPPER + DIGITS, 9),
        )
    if kind == 1:
        return as_file(
            rng,
            config_with(
                rng,
                [
                    (
                        pick(
                            rng,
                            [
                                "SLACK_BOT_TOKEN",
                                "SLACK_TOKEN",
                                "SLACK_USER_TOKEN",
                                "SLACK_APP_TOKEN",
                            ],
                        ),
                        T,
                    )
                ],
            ),
        )
    if kind == 2:
        return fill(
            'curl -X POST -H "Authorization: Bearer «t»" -H "Content-type: application/json" --data \'{"channel":"«c»","text":"hi"}\' https://slack.com/api/chat.postMessage',
            t=T,
            c="C0" + rstr(rng, UPPER + DIGITS, 9),
        )
    if kind == 3:
        return Doc(
            '{"mcpServers": {"slack": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"], "env": {"SLACK_BOT_TOKEN": "',
            T,
            f'", "SLACK_TEAM_ID": "T0{rstr(rng, UPPER + DIGITS, 8)}"}}}}}}',
        )
    return fill("The bot token is «t» - use it to read #incidents and summarise the last 24h.", t=T)


def c_slack_webhook(rng: random.Random) -> Doc:
    W = L("slack_webhook", slack_webhook(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return fill(
            "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"Build «b» failed\"}' «w»",
            b=str(rng.randint(100, 9999)),
            w=W,
        )
    if kind == 1:
        return as_file(
            rng,
            config_with(
                rng, [(pick(rng, ["SLACK_WEBHOOK_URL", "ALERT_WEBHOOK", "SLACK_WEBHOOK"]), W)]
            ),
        )
    if kind == 2:
        return fill(
            "receivers:\n  - name: slack-oncall\n    slack_configs:\n      - api_url: «w»\n        channel: '#oncall'\n        send_resolved: true",
            w=W,
        )
    return fill("notify:\n  on_failure: «w»\n", w=W)


def c_stripe(rng: random.Random) -> Doc:
    key = stripe_key(rng)
    T = L("stripe_key", key)
    kind = rng.randint(0, 4)
    if kind == 0:
        pk = (
            "pk_live_" + mixed(rng, ALNUM, 99)
            if "live" in key
            else "pk_test_" + mixed(rng, ALNUM, 99)
        )
        return as_file(
            rng, config_with(rng, [("STRIPE_SECRET_KEY", T), ("STRIPE_PUBLISHABLE_KEY", pk)])
        )
    if kind == 1:
        return fill(
            "curl https://api.stripe.com/v1/customers/cus_«c» \\\n  -u «t»:",
            c=mixed(rng, ALNUM, 14),
            t=T,
        )
    if kind == 2:
        return fill(
            'import stripe\n\nstripe.api_key = "«t»"\nintent = stripe.PaymentIntent.retrieve("pi_«p»")',
            t=T,
            p=mixed(rng, ALNUM, 24),
        )
    if kind == 3:
        return fill(
            "2025-06-11 10:22:01 ERROR stripe request failed key=«t» status=429 retry_after=2", t=T
        )
    return Doc(
        '{"mcpServers": {"stripe": {"command": "npx", "args": ["-y", "@stripe/mcp", "--tools=all", "--api-key=',
        T,
        '"]}}}',
    )


def c_openai(rng: random.Random) -> Doc:
    T = L("openai_api_key", openai_key(rng))
    kind = rng.randint(0, 4)
    if kind == 0:
        return as_file(
            rng, config_with(rng, [(pick(rng, ["OPENAI_API_KEY", "OPENAI_KEY", "LLM_API_KEY"]), T)])
        )
    if kind == 1:
        return fill(
            'from openai import OpenAI\n\nclient = OpenAI(api_key="«t»")\nresp = client.responses.create(model="gpt-4.1", input="ping")',
            t=T,
        )
    if kind == 2:
        return fill('curl https://api.openai.com/v1/models -H "Authorization: Bearer «t»"', t=T)
    if kind == 3:
        return fill("My OpenAI key is «t», can you check why the embeddings call returns 429?", t=T)
    return Doc(
        '{"model": "gpt-4o-mini", "api_base": "https://api.openai.com/v1", "api_key": "',
        T,
        '", "temperature": 0.2}',
    )


def c_anthropic(rng: random.Random) -> Doc:
    T = L("anthropic_api_key", anthropic_key(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return as_file(
            rng, config_with(rng, [(pick(rng, ["ANTHROPIC_API_KEY", "CLAUDE_API_KEY"]), T)])
        )
    if kind == 1:
        return fill(
            'curl https://api.anthropic.com/v1/messages \\\n  -H "x-api-key: «t»" \\\n  -H "anthropic-version: 2023-06-01" \\\n  -H "content-type: application/json"',
            t=T,
        )
    if kind == 2:
        return fill('import anthropic\n\nclient = anthropic.Anthropic(api_key="«t»")', t=T)
    return Doc(
        '{"mcpServers": {"agent": {"command": "uvx", "args": ["my-agent-mcp"], "env": {"ANTHROPIC_API_KEY": "',
        T,
        '"}}}}',
    )


def c_google(rng: random.Random) -> Doc:
    T = L("google_api_key", google_key(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        proj = pick(rng, ["acme-prod", "storefront-7f3a", "globex-mobile"])
        return fill(
            'const firebaseConfig = {\n  apiKey: "«t»",\n  authDomain: "«p».firebaseapp.com",\n  projectId: "«p»",\n  storageBucket: "«p».appspot.com",\n  messagingSenderId: "«m»",\n  appId: "1:«m»:web:«a»"\n};',
            t=T, p=proj, m=str(rng.randint(10**11, 10**12 - 1)), a=hexs(rng, 22),
        )  # fmt: skip
    if kind == 1:
        return fill(
            "GET https://maps.googleapis.com/maps/api/geocode/json?address=«a»&key=«t» 200 OK",
            a=pick(rng, CITIES),
            t=T,
        )
    if kind == 2:
        return as_file(
            rng,
            config_with(
                rng,
                [
                    (
                        pick(
                            rng,
                            [
                                "GOOGLE_API_KEY",
                                "GOOGLE_MAPS_API_KEY",
                                "GEMINI_API_KEY",
                                "YOUTUBE_API_KEY",
                            ],
                        ),
                        T,
                    )
                ],
            ),
        )
    return fill(
        'curl "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?key=«t»" -d @req.json',
        t=T,
    )


def c_private_key(rng: random.Random) -> Doc:
    kind = rng.randint(0, 6)
    if kind <= 1:
        pem = private_key_pem(rng)
        head = pick(
            rng,
            [
                "$ cat ~/.ssh/id_rsa\n",
                "$ cat deploy/tls/server.key\n",
                "",
                "Contents of certs/client.key:\n",
            ],
        )
        return Doc(head, L("private_key", pem), "\n")
    if kind == 2:  # GCP service-account JSON with \n escapes
        pem = private_key_pem(rng, "PRIVATE KEY", nl="\\n") + "\\n"
        proj = pick(rng, ["acme-prod", "data-platform-311", "globex-ml"])
        sa = pick(rng, ["etl-runner", "terraform", "mcp-bot"])
        return Doc(
            f'{{\n  "type": "service_account",\n  "project_id": "{proj}",\n  "private_key_id": "{hexs(rng, 40)}",\n  "private_key": "',
            L("private_key", pem[:-2]),
            '\\n",\n  "client_email": "',
            # a service account is no person: not an e-mail finding (see the README)
            f"{sa}@{proj}.iam.gserviceaccount.com",
            f'",\n  "client_id": "{rng.randint(10**20, 10**21 - 1)}",\n  "token_uri": "https://oauth2.googleapis.com/token"\n}}',
        )
    if kind == 3:  # nested JSON inside a JSON string: double-escaped
        pem = private_key_pem(
            rng, pick(rng, ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"]), nl="\\\\n"
        )
        return Doc(
            '{"secret_name": "prod/tls", "secret_string": "{\\"cert\\": \\"see acm\\", \\"key\\": \\"',
            L("private_key", pem),
            '\\"}", "version_id": "',
            ruuid(rng),
            '"}',
        )
    if kind == 4:
        pem = private_key_pem(rng, pick(rng, ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"]))
        cert = public_pem(rng, "CERTIFICATE")
        indent = "    "
        return Doc(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-tls\ndata:\n  tls.crt: |\n",
            "\n".join(indent + ln for ln in cert.splitlines()),
            "\n  tls.key: |\n",
            indent,
            L("private_key", ("\n" + indent).join(pem.splitlines())),
            "\n",
        )
    if kind == 5:  # kubeconfig: base64 client-key-data, token, server ip
        key_b64 = base64.b64encode(
            private_key_pem(rng, "RSA PRIVATE KEY").encode() + b"\n"
        ).decode()
        cert_b64 = base64.b64encode(public_pem(rng, "CERTIFICATE").encode() + b"\n").decode()
        ip = ipv4(rng, private=True)
        return Doc(
            f"apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {cert_b64}\n    server: https://",
            L_ipv4(ip),
            f":6443\n  name: {pick(rng, ['prod', 'staging'])}\ncontexts: []\nusers:\n- name: admin\n  user:\n",
            f"    client-certificate-data: {cert_b64}\n    client-key-data: ",
            L("private_key", key_b64),
            "\n",
        )
    pem = private_key_pem(rng, "OPENSSH PRIVATE KEY")
    return Doc(
        "Here is the deploy key, add it to the runner:\n\n",
        L("private_key", pem),
        "\n\nand the public half: ",
        ssh_public_key(rng),
    )


def c_azure(rng: random.Random) -> Doc:
    acct = pick(rng, ["stprodlogs01", "acmeexports", "globexbackup", "mcpartifacts"])
    K = L("azure_storage_key", azure_key(rng))
    cs = fill(
        "DefaultEndpointsProtocol=https;AccountName=«a»;AccountKey=«k»;EndpointSuffix=core.windows.net",
        a=acct,
        k=K,
    )
    kind = rng.randint(0, 3)
    if kind == 0:
        return as_file(
            rng,
            config_with(
                rng,
                [("AZURE_STORAGE_CONNECTION_STRING", cs)],
                style=pick(rng, ["env", "env_quoted", "export"]),
            ),
        )
    if kind == 1:
        return Doc(
            '{\n  "Logging": {"LogLevel": {"Default": "Information"}},\n  "ConnectionStrings": {\n    "Storage": "',
            cs,
            '"\n  }\n}',
        )
    if kind == 2:
        return fill(
            'from azure.storage.blob import BlobServiceClient\n\nclient = BlobServiceClient.from_connection_string("«cs»")',
            cs=cs,
        )
    return fill(
        'az storage blob list --container-name exports --connection-string "«cs»" --output table',
        cs=cs,
    )


def c_twilio(rng: random.Random) -> Doc:
    K = L("twilio_api_key", twilio_key(rng))
    sid = twilio_sid(rng)
    kind = rng.randint(0, 2)
    if kind == 0:
        items = [("TWILIO_ACCOUNT_SID", sid), ("TWILIO_API_KEY", K)]
        if rng.random() < 0.6:
            items.append(("TWILIO_API_SECRET", L("generic_secret", mixed(rng, ALNUM, 32))))
        return as_file(rng, config_with(rng, items))
    sec = L("generic_secret", mixed(rng, ALNUM, 32))
    if kind == 1:
        return fill(
            'from twilio.rest import Client\n\nclient = Client(username="«k»", password="«sec»", account_sid="«sid»")',
            k=K, sec=sec, sid=sid,
        )  # fmt: skip
    return Doc(
        '{"twilio": {"account_sid": "', sid, '", "api_key_sid": "', K, '", "api_key_secret": "', sec,
        '", "messaging_service_sid": "MG', hexs(rng, 32), '"}}',
    )  # fmt: skip


def c_sendgrid(rng: random.Random) -> Doc:
    T = L("sendgrid_api_key", sendgrid_key(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return as_file(rng, config_with(rng, [("SENDGRID_API_KEY", T)]))
    if kind == 1:
        return as_file(
            rng,
            config_with(
                rng,
                [
                    ("SMTP_HOST", "smtp.sendgrid.net"),
                    ("SMTP_USERNAME", "apikey"),
                    ("SMTP_PASSWORD", T),
                ],
                fillers=(1, 3),
            ),
        )
    if kind == 2:
        return fill(
            'curl --request POST --url https://api.sendgrid.com/v3/mail/send --header "Authorization: Bearer «t»" --header "Content-Type: application/json"',
            t=T,
        )
    return fill('sg = SendGridAPIClient("«t»")\nresponse = sg.send(message)', t=T)


def c_npm(rng: random.Random) -> Doc:
    T = L("npm_token", npm_token(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return fill(
            "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=«t»\nalways-auth=true\n",
            t=T,
        )
    if kind == 1:
        return as_file(rng, config_with(rng, [(pick(rng, ["NPM_TOKEN", "NODE_AUTH_TOKEN"]), T)]))
    if kind == 2:
        return fill(
            '$ echo "//registry.npmjs.org/:_authToken=«t»" > ~/.npmrc && npm publish --access public\n+ @«s»/cli@«v»',
            t=T,
            s=pick(rng, ["acme", "kestrel"]),
            v=f"1.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        )
    return fill("Publish failed? try again with NPM_TOKEN «t» from the release vault.", t=T)


def c_pypi(rng: random.Random) -> Doc:
    T = L("pypi_token", pypi_token(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return fill(
            "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = «t»\n",
            t=T,
        )
    if kind == 1:
        return as_file(
            rng,
            config_with(
                rng,
                [(pick(rng, ["TWINE_PASSWORD", "PYPI_TOKEN", "UV_PUBLISH_TOKEN"]), T)],
                fillers=(1, 3),
            ),
        )
    if kind == 2:
        return fill(
            "$ twine upload -u __token__ -p «t» dist/*\nUploading distributions to https://upload.pypi.org/legacy/",
            t=T,
        )
    return fill("uv publish --token «t»", t=T)


def c_context7(rng: random.Random) -> Doc:
    T = L("context7_api_key", context7_key(rng))
    kind = rng.randint(0, 3)
    if kind == 0:
        return Doc(
            '{"mcpServers": {"context7": {"command": "npx", "args": ["-y", "@upstash/context7-mcp", "--api-key", "',
            T,
            '"]}}}',
        )
    if kind == 1:
        return fill(
            'claude mcp add --header "CONTEXT7_API_KEY: «t»" --transport http context7 https://mcp.context7.com/mcp',
            t=T,
        )
    if kind == 2:
        return as_file(rng, config_with(rng, [("CONTEXT7_API_KEY", T)]))
    return fill(
        "GET https://context7.com/api/v2/search?query=next.js\nAuthorization: Bearer «t»", t=T
    )


def c_jwt(rng: random.Random) -> Doc:
    T = L("jwt", jwt_token(rng))
    kind = rng.randint(0, 6)
    if kind == 0:
        return fill(
            "POST /mcp HTTP/1.1\nHost: tools.«d»\nAuthorization: Bearer «t»\nContent-Type: application/json\nMcp-Session-Id: «s»",
            d=pick(rng, COMPANY_DOMAINS),
            t=T,
            s=ruuid(rng),
        )
    if kind == 1:
        rt = opaque_token(rng)
        return Doc(
            '{"access_token": "',
            T,
            '", "id_token": "',
            L("jwt", jwt_token(rng)),
            '", "refresh_token": "',
            L("generic_secret", rt),
            '", "token_type": "Bearer", "expires_in": 3600}',
        )
    if kind == 2:
        return fill(
            "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: «t»\n", t=T
        )
    if kind == 3:
        return fill("Set-Cookie: session=«t»; Path=/; HttpOnly; Secure; SameSite=Lax", t=T)
    if kind == 4:
        return fill(
            "«ts» DEBUG [auth-service] verifying token=«t» aud=api://default", ts=ts_log(rng), t=T
        )
    if kind == 5:
        return as_file(
            rng,
            config_with(
                rng, [(pick(rng, ["ACCESS_TOKEN", "AUTH_TOKEN", "SERVICE_TOKEN", "API_TOKEN"]), T)]
            ),
        )
    return fill("Decode this token and tell me when it expires: «t»", t=T)


def c_url_creds(rng: random.Random) -> Doc:
    pw = url_password(rng)
    P = L("url_credentials", pw)
    host_ip = rng.random() < 0.2
    host: str | L = L_ipv4(ipv4(rng)) if host_ip else pick(
        rng, ["db-primary.internal", "postgres.prod.svc.cluster.local", "cluster0.x7k2p.mongodb.net",
              "redis-12345.c1.eu-west-1-2.ec2.cloud.redislabs.com", "mq.internal", "pypi.internal.acme.net"]
    )  # fmt: skip
    user = pick(rng, ["app", "admin", "svc_orders", "etl", "readonly", "deploy"])
    kind = rng.randint(0, 5)
    if kind == 0:
        url = fill(
            "postgresql://«u»:«p»@«h»:5432/«db»?sslmode=require",
            u=user,
            p=P,
            h=host,
            db=pick(rng, ["orders", "app"]),
        )
        return as_file(rng, config_with(rng, [("DATABASE_URL", url)]))
    if kind == 1:
        return fill("mongodb+srv://«u»:«p»@«h»/?retryWrites=true&w=majority", u=user, p=P, h=host)
    if kind == 2:
        return fill(
            "«ts» INFO connecting to redis://«u»:«p»@«h»:6379/0",
            ts=ts_log(rng),
            u=pick(rng, ["default", ""]),
            p=P,
            h=host,
        )
    if kind == 3:
        h2 = L(host.type, host.value) if isinstance(host, L) else host
        return fill(
            "[global]\nindex-url = https://«u»:«p»@«h»/simple\ntrusted-host = «h2»",
            u=user,
            p=P,
            h=host,
            h2=h2,
        )
    if kind == 4:
        return fill(
            "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server failed\n[SQL: SELECT 1]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)\nengine url: postgresql+psycopg2://«u»:«p»@«h»/app",
            u=user,
            p=P,
            h=host,
        )
    # a known token as URL password: most specific type wins
    choice = rng.randint(0, 2)
    if choice == 0:
        return fill(
            "https://«u»:«t»@github.com/«r».git",
            u=pick(rng, ["x-access-token", "octo-dev"]),
            t=L("github_token", gh_token(rng)),
            r=pick(rng, REPOS),
        )
    if choice == 1:
        return fill(
            "https://gitlab-ci-token:«t»@gitlab.com/«p».git",
            t=L("gitlab_token", gitlab_token(rng)),
            p="platform/api",
        )
    return fill("amqps://«u»:«p»@«h»:5671/vhost", u=user, p=P, h=host)


def c_basic(rng: random.Random) -> Doc:
    user = pick(rng, ["admin", "api", "svc-reporting", "jenkins", "grafana"])
    cred = base64.b64encode(f"{user}:{password(rng)}".encode()).decode()
    C = L("basic_auth", cred)
    kind = rng.randint(0, 3)
    if kind == 0:
        return fill(
            "GET /api/v1/export HTTP/1.1\nHost: «h»\nAuthorization: Basic «c»\nAccept: */*",
            h=f"reports.{pick(rng, COMPANY_DOMAINS)}",
            c=C,
        )
    if kind == 1:
        return fill(
            'curl -H "Authorization: Basic «c»" https://jenkins.«d»/job/deploy/buildWithParameters',
            c=C,
            d=pick(rng, COMPANY_DOMAINS),
        )
    if kind == 2:
        return Doc(
            '{"url": "https://es.internal:9200/_search", "method": "POST", "headers": {"Content-Type": "application/json", "Authorization": "Basic ',
            C,
            '"}}',
        )
    return fill(
        "CONNECT api.«d»:443 HTTP/1.1\nProxy-Authorization: Basic «c»\n",
        d=pick(rng, COMPANY_DOMAINS),
        c=C,
    )


# --------------------------------------------------------------------------------------------
# Personal-data carriers. ``focus`` is the type the sample must contain; others are optional.
# --------------------------------------------------------------------------------------------


def _maybe(rng: random.Random, focus: str, t: str, p: float = 0.5) -> bool:
    return focus == t or rng.random() < p


def L_email(rng: random.Random, first: str | None = None, last: str | None = None) -> L:
    return L("email", email_for(rng, first, last) if first and last else email(rng))


def L_phone(rng: random.Random) -> L:
    return L("phone_number", phone(rng))


def L_card(rng: random.Random) -> L:
    return L("credit_card", format_card(rng, card_number(rng)))


def L_ssn(rng: random.Random) -> L:
    return L("us_ssn", ssn(rng, pick(rng, ["dash", "dash", "dash", "space"])))


def L_iban(rng: random.Random) -> L:
    return L("iban", format_iban(rng, iban(rng)))


def L_ip(rng: random.Random, private: bool | None = None) -> L:
    return L_ipv4(ipv4(rng, private))


def p_crm(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    parts: list[Doc | str] = [
        f'{{"id": "{rng.randint(10**9, 10**10)}", "properties": {{"firstname": "{first}", "lastname": "{last}"'
    ]
    if _maybe(rng, focus, "email", 0.8):
        parts.append(Doc(', "email": "', L_email(rng, first, last), '"'))
    if _maybe(rng, focus, "phone_number", 0.6):
        parts.append(Doc(', "phone": "', L_phone(rng), '"'))
    parts.append(
        f', "company": "{pick(rng, ["Globex", "Initech", "Umbrella Health", "Kestrel Labs"])}"'
    )
    if _maybe(rng, focus, "ipv4", 0.2):
        parts.append(Doc(', "hs_ip_address": "', L_ip(rng, False), '"'))
    if focus == "iban" or (focus == "email" and rng.random() < 0.1):
        parts.append(Doc(', "payout_iban": "', L_iban(rng), '"'))
    parts.append(
        f', "lifecyclestage": "{pick(rng, ["lead", "customer", "opportunity"])}", "createdate": "{ts(rng)}"}}, "archived": false}}'
    )
    return Doc(*parts)


def _table(rows: list[list[str | L]], header: list[str]) -> Doc:
    widths = [len(h) for h in header]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(plain(c)))
    doc = Doc(" " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + "\n")
    doc.add("-" + "-+-".join("-" * w for w in widths) + "-\n")
    for r in rows:
        line = Doc(" ")
        for i, c in enumerate(r):
            if i:
                line.add(" | ")
            line.add(c)
            line.add(" " * (widths[i] - len(plain(c))))
        doc.add(line)
        doc.add("\n")
    doc.add(f"({len(rows)} rows)")
    return doc


def _pii_cell(rng: random.Random, t: str, first: str, last: str, formatted: bool) -> L:
    if t == "email":
        return L_email(rng, first, last)
    if t == "phone_number":
        return L_phone(rng)
    if t == "us_ssn":
        return L("us_ssn", ssn(rng))
    if t == "credit_card":
        return L_card(rng) if formatted else L("credit_card", card_number(rng))
    if t == "iban":
        return L_iban(rng) if formatted else L("iban", iban(rng))
    return L_ip(rng)


def p_sql(rng: random.Random, focus: str) -> Doc:
    cols = ["id", "full_name"]
    want = {"email": _maybe(rng, focus, "email", 0.7), "phone_number": _maybe(rng, focus, "phone_number", 0.5),
            "us_ssn": _maybe(rng, focus, "us_ssn", 0.15), "credit_card": focus == "credit_card",
            "iban": focus == "iban", "ipv4": focus == "ipv4"}  # fmt: skip
    names = {"email": "email", "phone_number": "phone", "us_ssn": "ssn", "credit_card": "card_number",
             "iban": "iban", "ipv4": "last_login_ip"}  # fmt: skip
    cols += [names[k] for k, v in want.items() if v]
    cols.append("created_at")
    rows = []
    for _ in range(rng.randint(1, 4)):
        first, last = person(rng)
        row: list[str | L] = [str(rng.randint(1000, 99999)), f"{first} {last}"]
        for k, v in want.items():
            if not v:
                continue
            row.append(_pii_cell(rng, k, first, last, formatted=False))
        row.append(ts_log(rng)[:19])
        rows.append(row)
    query = f"SELECT {', '.join(cols)} FROM customers WHERE {pick(rng, ['id > 4000', 'created_at > now() - interval 1 day', 'status = active'])} LIMIT 5;\n"
    return Doc(query, _table(rows, cols))


def p_email_msg(rng: random.Random, focus: str) -> Doc:
    f1, l1 = person(rng)
    f2, l2 = person(rng)
    dom = pick(rng, COMPANY_DOMAINS)
    doc = Doc(
        "From: ",
        f"{f1} {l1} <",
        L_email(rng, f1, l1),
        ">\nTo: ",
        f"{f2} {l2} <",
        L("email", email_for(rng, f2, l2, dom)),
        ">\n",
    )
    if rng.random() < 0.3:
        doc.add(Doc("Cc: ", L("email", email(rng)), "\n"))
    doc.add(f"Date: Tue, {rng.randint(1, 28)} Oct 2025 {rng.randint(8, 18)}:{rng.randint(10, 59)}:00 +0000\nSubject: "
            f"{pick(rng, ['Re: contract renewal', 'Refund request', 'Updated bank details', 'Call tomorrow?'])}\n\n")  # fmt: skip
    doc.add(f"Hi {f2},\n\n{sentence(rng)}\n")
    if focus == "iban" or rng.random() < 0.1:
        doc.add(
            Doc(
                "Please send the refund to my account ",
                L_iban(rng),
                f" (BIC {rstr(rng, UPPER, 6)}2X).\n",
            )
        )
    if focus == "credit_card":
        doc.add(
            Doc(
                "You can charge the card ",
                L_card(rng),
                f", exp {rng.randint(1, 12):02d}/{rng.randint(26, 31)}.\n",
            )
        )
    if focus == "us_ssn":
        doc.add(Doc("For the background check my SSN is ", L_ssn(rng), ".\n"))
    doc.add(
        f"\nBest regards,\n{f1} {l1}\n{pick(rng, ['Account Manager', 'Head of Finance', 'CTO'])}\n"
    )
    if _maybe(rng, focus, "phone_number", 0.6):
        doc.add(
            Doc(pick(rng, ["Tel: ", "Mobile: ", "Phone: ", "M: ", "Direct: "]), L_phone(rng), "\n")
        )
    return doc


def p_git_authors(rng: random.Random, focus: str) -> Doc:
    doc = Doc()
    for i in range(rng.randint(1, 3)):
        first, last = person(rng)
        if i:
            doc.add("\n\n")
        doc.add(Doc(f"commit {sha(rng)}\nAuthor: {first} {last} <", L_email(rng, first, last),
                    f">\nDate:   {ts_log(rng)[:19]} +0200\n\n    {pick(rng, ['fix: retry on 429', 'feat: export CSV', 'chore: bump deps'])}\n"))  # fmt: skip
        if rng.random() < 0.3:
            f2, l2 = person(rng)
            doc.add(Doc(f"\n    Co-authored-by: {f2} {l2} <", L_email(rng, f2, l2), ">\n"))
    return doc


def p_signup(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    doc = Doc(
        f'{{"event": "user.created", "id": "evt_{mixed(rng, ALNUM, 24)}", "data": {{"user_id": "{ruuid(rng)}", "name": "{first} {last}"'
    )
    if _maybe(rng, focus, "email", 0.8):
        doc.add(Doc(', "email": "', L_email(rng, first, last), '"'))
    if _maybe(rng, focus, "phone_number", 0.4):
        doc.add(Doc(', "phone_number": "', L_phone(rng), '"'))
    if _maybe(rng, focus, "ipv4", 0.6):
        doc.add(Doc(', "signup_ip": "', L_ip(rng, False), '"'))
    doc.add(
        f', "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)", "created_at": "{ts(rng)}"}}}}'
    )
    return doc


def p_vcard(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    doc = Doc(
        f"BEGIN:VCARD\nVERSION:3.0\nN:{last};{first};;;\nFN:{first} {last}\nORG:{pick(rng, ['Globex', 'Initech'])}\n"
    )
    doc.add(Doc("TEL;TYPE=CELL:", L_phone(rng), "\n"))
    if _maybe(rng, focus, "phone_number", 0.3):
        doc.add(Doc("TEL;TYPE=WORK:", L_phone(rng), "\n"))
    if _maybe(rng, focus, "email", 0.8):
        doc.add(Doc("EMAIL;TYPE=INTERNET:", L_email(rng, first, last), "\n"))
    doc.add(
        f"ADR;TYPE=HOME:;;{rng.randint(1, 300)} {pick(rng, STREETS)};{pick(rng, CITIES)};;{rng.randint(10000, 99999)};\nEND:VCARD"
    )
    return doc


def p_ticket(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    body = Doc(f"Hello, this is {first}. ")
    if focus == "credit_card" or rng.random() < 0.15:
        body.add(
            Doc(
                "I was charged twice on my card ",
                L_card(rng),
                " - please refund one of the payments. ",
            )
        )
    if focus == "iban" or rng.random() < 0.1:
        body.add(Doc("Alternatively wire it to ", L_iban(rng), ". "))
    if _maybe(rng, focus, "phone_number", 0.4):
        body.add(Doc("Call me back at ", L_phone(rng), " any time after 5pm. "))
    if focus == "us_ssn":
        body.add(Doc("The account is under my SSN ", L_ssn(rng), ". "))
    body.add("Thanks!")
    doc = Doc(
        f'{{"ticket": {{"id": {rng.randint(10000, 999999)}, "subject": "{pick(rng, ["Double charge", "Refund", "Cannot log in", "Update details"])}", "description": "'
    )
    doc.add(json_escape(body))
    doc.add('", "requester": {"name": "' + f"{first} {last}" + '"')
    if _maybe(rng, focus, "email", 0.7):
        doc.add(Doc(', "email": "', L_email(rng, first, last), '"'))
    doc.add(
        f'}}, "status": "{pick(rng, ["new", "open", "pending"])}", "priority": "normal", "tags": ["billing"]}}}}'
    )
    return doc


def p_access_log(rng: random.Random, focus: str) -> Doc:
    doc = Doc()
    for i in range(rng.randint(2, 6)):
        if i:
            doc.add("\n")
        path = pick(
            rng,
            ["/api/v1/orders", "/login", "/mcp", "/static/app.js", "/health", "/api/v1/users/me"],
        )
        doc.add(Doc(L_ip(rng, rng.random() < 0.3), f" - - [{rng.randint(1, 28):02d}/Jun/2025:{rng.randint(0, 23):02d}:{rng.randint(10, 59)}:{rng.randint(10, 59)} +0000] "
                    f"\"{pick(rng, ['GET', 'POST'])} {path} HTTP/1.1\" {pick(rng, [200, 200, 204, 301, 401, 404, 500])} {rng.randint(0, 90000)} \"-\" \"{pick(rng, ['curl/8.5.0', 'Mozilla/5.0', 'python-httpx/0.28.1'])}\""))  # fmt: skip
    return doc


def p_sshd(rng: random.Random, focus: str) -> Doc:
    doc = Doc()
    host = pick(rng, ["bastion", "web-01", "db-02"])
    for i in range(rng.randint(2, 5)):
        if i:
            doc.add("\n")
        user = pick(rng, ["root", "admin", "ubuntu", "invalid user test", "deploy"])
        what = pick(
            rng,
            [
                "Failed password for",
                "Accepted publickey for",
                "Connection closed by authenticating user",
            ],
        )
        doc.add(Doc(f"Jun {rng.randint(1, 28):2d} {rng.randint(0, 23):02d}:{rng.randint(10, 59)}:{rng.randint(10, 59)} {host} sshd[{rng.randint(1000, 99999)}]: {what} {user} from ",
                    L_ip(rng, rng.random() < 0.3), f" port {rng.randint(1024, 65535)} ssh2"))  # fmt: skip
    return doc


def p_netstat(rng: random.Random, focus: str) -> Doc:
    doc = Doc("State  Recv-Q Send-Q Local Address:Port   Peer Address:Port Process\n")
    local = ipv4(rng, True)
    for i in range(rng.randint(2, 5)):
        if i:
            doc.add("\n")
        doc.add(Doc("ESTAB  0      0      ", L_ipv4(local), f":{pick(rng, [22, 443, 5432, 6379])}      ",
                    L_ip(rng), f":{rng.randint(1024, 65535)}  users:((\"{pick(rng, ['sshd', 'postgres', 'nginx'])}\",pid={rng.randint(100, 9999)},fd={rng.randint(3, 40)}))"))  # fmt: skip
    return doc


def p_dns(rng: random.Random, focus: str) -> Doc:
    name = f"{pick(rng, ['api', 'mail', 'vpn', 'app'])}.{pick(rng, COMPANY_DOMAINS)}"
    doc = Doc(f"; <<>> DiG 9.18.28 <<>> {name}\n;; ANSWER SECTION:\n")
    for _ in range(rng.randint(1, 3)):
        doc.add(Doc(f"{name}.\t{pick(rng, [60, 300, 3600])}\tIN\tA\t", L_ip(rng, False), "\n"))
    doc.add(f";; Query time: {rng.randint(1, 90)} msec\n;; SERVER: ")
    doc.add(L_ip(rng, True))
    doc.add("#53(")
    return Doc(doc, "udp)")


def p_request_log(rng: random.Random, focus: str) -> Doc:
    doc = Doc()
    for i in range(rng.randint(1, 4)):
        if i:
            doc.add("\n")
        doc.add(Doc(f'{{"ts": "{ts(rng)}", "method": "POST", "path": "/mcp", "status": {pick(rng, [200, 202, 401])}, "client_ip": "',
                    L_ip(rng), f'", "session": "{ruuid(rng)}", "latency_ms": {rng.randint(1, 900)}}}'))  # fmt: skip
    return doc


def p_hr(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    doc = Doc(
        f"Employee record #{rng.randint(1000, 9999)}\nName: {first} {last}\nDate of birth: {rng.randint(1960, 2002)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\n"
    )
    if _maybe(rng, focus, "us_ssn", 0.8):
        s = ssn(rng, pick(rng, ["dash", "dash", "space", "plain"]))
        doc.add(Doc(pick(rng, ["SSN: ", "Social Security Number: ", "ssn="]), L("us_ssn", s), "\n"))
    doc.add(f"Address: {rng.randint(1, 999)} {pick(rng, STREETS)}, {pick(rng, CITIES)}\n")
    if _maybe(rng, focus, "phone_number", 0.6):
        doc.add(Doc("Phone: ", L_phone(rng), "\n"))
    if _maybe(rng, focus, "email", 0.6):
        doc.add(Doc("Personal email: ", L_email(rng, first, last), "\n"))
    if _maybe(rng, focus, "iban", 0.3):
        doc.add(Doc("Salary account (IBAN): ", L_iban(rng), "\n"))
    doc.add(
        f"Start date: 2023-{rng.randint(1, 12):02d}-01\nDepartment: {pick(rng, ['Finance', 'Engineering', 'Sales'])}"
    )
    return doc


def p_kyc(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    doc = Doc(
        f'{{"applicant": {{"first_name": "{first}", "last_name": "{last}", "dob": "{rng.randint(1960, 2002)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"'
    )
    doc.add(Doc(', "ssn": "', L("us_ssn", ssn(rng, pick(rng, ["dash", "plain"]))), '"'))
    if _maybe(rng, focus, "email", 0.5):
        doc.add(Doc(', "email": "', L_email(rng, first, last), '"'))
    if _maybe(rng, focus, "phone_number", 0.4):
        doc.add(Doc(', "phone": "', L_phone(rng), '"'))
    doc.add(
        f'}}, "check": {{"id": "chk_{mixed(rng, ALNUM, 20)}", "result": "{pick(rng, ["clear", "consider"])}"}}}}'
    )
    return doc


def p_payment_log(rng: random.Random, focus: str) -> Doc:
    num = card_number(rng)
    doc = Doc(
        f"{ts_log(rng)} DEBUG [checkout] charge request amount={rng.randint(100, 90000)} currency=usd card_number="
    )
    doc.add(L("credit_card", num))
    doc.add(f" exp={rng.randint(1, 12):02d}/{rng.randint(26, 31)} cvc=*** ")
    if _maybe(rng, focus, "email", 0.5):
        doc.add(Doc("customer_email=", L("email", email(rng)), " "))
    if _maybe(rng, focus, "ipv4", 0.3):
        doc.add(Doc("ip=", L_ip(rng, False), " "))
    doc.add(
        f"\n{ts_log(rng)} INFO [checkout] charge ok id=ch_{mixed(rng, ALNUM, 24)} last4={num[-4:]}"
    )
    return doc


def p_csv(rng: random.Random, focus: str) -> Doc:
    cols = ["name"]
    opts = {"email": _maybe(rng, focus, "email", 0.8), "phone_number": _maybe(rng, focus, "phone_number", 0.5),
            "credit_card": focus == "credit_card", "us_ssn": focus == "us_ssn", "iban": focus == "iban"}  # fmt: skip
    hdr = {
        "email": "email",
        "phone_number": "phone",
        "credit_card": "card",
        "us_ssn": "ssn",
        "iban": "iban",
    }
    cols += [hdr[k] for k, v in opts.items() if v]
    doc = Doc(",".join(cols) + "\n")
    for _ in range(rng.randint(2, 5)):
        first, last = person(rng)
        row: list[str | L] = [f"{first} {last}"]
        for k, v in opts.items():
            if v:
                row.append(_pii_cell(rng, k, first, last, formatted=True))
        doc.add(join(row, ","))
        doc.add("\n")
    return doc


def p_invoice(rng: random.Random, focus: str) -> Doc:
    dom = pick(rng, COMPANY_DOMAINS)
    doc = Doc(f"INVOICE {rng.randint(2024, 2025)}-{rng.randint(1000, 9999)}\n{pick(rng, ['Veridian GmbH', 'Fjordsoft AS', 'Kestrel Labs Ltd'])}\n"
              f"Amount due: EUR {rng.randint(100, 90000)}.{rng.randint(0, 99):02d}\nPayment within 30 days to:\nIBAN: ")  # fmt: skip
    doc.add(L_iban(rng))
    doc.add(f"\nBIC: {rstr(rng, UPPER, 6)}{rstr(rng, UPPER + DIGITS, 2)}\n")
    if _maybe(rng, focus, "email", 0.5):
        doc.add(
            Doc(
                "Questions: ",
                L("email", f"{pick(rng, ['billing', 'accounts', 'finance'])}@{dom}"),
                "\n",
            )
        )
    if _maybe(rng, focus, "phone_number", 0.4):
        doc.add(Doc("Phone: ", L_phone(rng), "\n"))
    return doc


def p_sepa(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    return Doc(
        f'{{"payout": {{"id": "po_{mixed(rng, ALNUM, 24)}", "amount": {rng.randint(100, 90000)}, "currency": "eur", '
        f'"beneficiary": {{"name": "{first} {last}", "iban": "',
        L("iban", iban(rng)),
        f'", "bic": "{rstr(rng, UPPER, 6)}2X"}}, "status": "{pick(rng, ["paid", "pending"])}"}}}}',
    )


def p_prompt(rng: random.Random, focus: str) -> Doc:
    first, last = person(rng)
    if focus == "credit_card":
        return Doc(f"Update the payment method for {first} {last} to card ", L_card(rng),
                   f" exp {rng.randint(1, 12):02d}/{rng.randint(26, 31)} and retry the failed invoice.")  # fmt: skip
    if focus == "us_ssn":
        return Doc(
            f"Look up the tax file for {first} {last}, SSN ",
            L_ssn(rng),
            ", and summarise the last filing.",
        )
    if focus == "iban":
        return Doc(
            f"Pay supplier {last} GmbH EUR {rng.randint(100, 9000)} to ",
            L_iban(rng),
            " with reference INV-",
            str(rng.randint(1000, 9999)),
            ".",
        )
    if focus == "phone_number":
        return Doc(f"Text {first} at ", L_phone(rng), " that the delivery is delayed until Friday.")
    if focus == "ipv4":
        return Doc(
            "Why can't I reach the database at ",
            L_ip(rng, True),
            " from the app server? ping times out.",
        )
    return Doc(f"Send the Q3 report to {first} (", L_email(rng, first, last), ") and cc me.")


PII_CARRIERS: dict[str, list[Callable[[random.Random, str], Doc]]] = {
    "email": [
        p_crm,
        p_sql,
        p_email_msg,
        p_git_authors,
        p_signup,
        p_vcard,
        p_ticket,
        p_hr,
        p_csv,
        p_prompt,
    ],
    "phone_number": [
        p_crm,
        p_sql,
        p_email_msg,
        p_vcard,
        p_ticket,
        p_hr,
        p_csv,
        p_kyc,
        p_prompt,
        p_signup,
    ],
    "credit_card": [p_payment_log, p_ticket, p_csv, p_sql, p_email_msg, p_prompt],
    "us_ssn": [p_hr, p_kyc, p_sql, p_csv, p_email_msg, p_prompt, p_ticket],
    "iban": [p_invoice, p_sepa, p_ticket, p_csv, p_email_msg, p_prompt, p_hr, p_crm, p_sql],
    "ipv4": [
        p_access_log,
        p_sshd,
        p_netstat,
        p_dns,
        p_request_log,
        p_signup,
        p_sql,
        p_prompt,
        p_crm,
    ],
}


# --------------------------------------------------------------------------------------------
# Mixed documents: several secret types (and personal data) in one realistic message
# --------------------------------------------------------------------------------------------

ENV_SECRETS: list[tuple[str, str, Callable[[random.Random], str]]] = [
    ("GITHUB_TOKEN", "github_token", gh_token),
    ("OPENAI_API_KEY", "openai_api_key", openai_key),
    ("ANTHROPIC_API_KEY", "anthropic_api_key", anthropic_key),
    ("STRIPE_SECRET_KEY", "stripe_key", stripe_key),
    ("SLACK_BOT_TOKEN", "slack_token", slack_token),
    ("SLACK_WEBHOOK_URL", "slack_webhook", slack_webhook),
    ("SENDGRID_API_KEY", "sendgrid_api_key", sendgrid_key),
    ("GOOGLE_MAPS_API_KEY", "google_api_key", google_key),
    ("NPM_TOKEN", "npm_token", npm_token),
    ("GITLAB_TOKEN", "gitlab_token", gitlab_token),
    ("TWILIO_API_KEY", "twilio_api_key", twilio_key),
    ("CONTEXT7_API_KEY", "context7_api_key", context7_key),
    ("PYPI_TOKEN", "pypi_token", pypi_token),
    ("SESSION_SECRET", "generic_secret", lambda r: opaque_token(r)),
    ("DB_PASSWORD", "generic_secret", password),
    ("JWT_SECRET", "generic_secret", lambda r: b64bytes(r, 48)),
    ("SERVICE_TOKEN", "jwt", jwt_token),
]


def m_env(rng: random.Random) -> Doc:
    chosen = rng.sample(ENV_SECRETS, rng.randint(3, 7))
    items: list[Item] = [(n, L(t, g(rng))) for n, t, g in chosen]
    if rng.random() < 0.4:
        items += [("AWS_ACCESS_KEY_ID", L("aws_access_key_id", aws_key_id(rng))),
                  ("AWS_SECRET_ACCESS_KEY", L("aws_secret_access_key", aws_secret(rng)))]  # fmt: skip
    if rng.random() < 0.3:
        user = pick(rng, ["app", "orders"])
        items.append(
            (
                "DATABASE_URL",
                fill(
                    "postgres://«u»:«p»@db-primary.internal:5432/«u»",
                    u=user,
                    p=L("url_credentials", url_password(rng)),
                ),
            )
        )
    rng.shuffle(items)
    return as_file(rng, config_with(rng, items, fillers=(3, 8)))


def m_incident(rng: random.Random) -> Doc:
    """An incident write-up / chat dump mixing leaked secrets and personal data."""
    first, last = person(rng)
    n, t, g = pick(rng, ENV_SECRETS)
    lines = [
        Doc(
            f"## Incident {rng.randint(100, 999)}: {pick(rng, ['leaked credential in logs', 'failed payouts', 'webhook storm'])}\n"
        ),
        Doc(f"Reported by {first} {last} (", L_email(rng, first, last), f") at {ts(rng)}.\n"),
        Doc(
            f"The {pick(rng, SERVICES)} pod logged its environment on startup, including {n}=",
            L(t, g(rng)),
            ".\n",
        ),
    ]
    if rng.random() < 0.5:
        lines.append(Doc("Traffic came from ", L_ip(rng, False), " and ", L_ip(rng, False), ".\n"))
    if rng.random() < 0.4:
        lines.append(Doc("On-call: ", L_phone(rng), "\n"))
    lines.append(
        Doc(
            f"Action items: rotate the key, add a scanner rule, purge logs older than {rng.randint(1, 30)} days.\n"
        )
    )
    return Doc(*lines)


def m_shell(rng: random.Random) -> Doc:
    """Shell history with secrets typed on the command line, among ordinary commands."""
    base = rng.randint(100, 1500)
    cmds: list[Doc | str] = [
        pick(rng, ["git status", "ls -la", "kubectl get pods -n prod", "make test", "cd ~/src/api"])
        for _ in range(rng.randint(2, 5))
    ]
    options: list[Callable[[], Doc]] = [
        lambda: fill("export OPENAI_API_KEY=«t»", t=L("openai_api_key", openai_key(rng))),
        lambda: fill("gh auth login --with-token <<< «t»", t=L("github_token", gh_token(rng))),
        lambda: fill('curl -H "Authorization: Bearer «t»" https://api.«d»/v1/me', t=L("generic_secret", opaque_token(rng)), d=pick(rng, COMPANY_DOMAINS)),
        lambda: fill("psql postgresql://admin:«p»@«h»:5432/app", p=L("url_credentials", url_password(rng)), h=L_ip(rng, True)),
        lambda: fill("ssh -i ~/.ssh/id_ed25519 ubuntu@«h»", h=L_ip(rng, False)),
        lambda: fill("npm config set //registry.npmjs.org/:_authToken «t»", t=L("npm_token", npm_token(rng))),
        lambda: fill("export AWS_ACCESS_KEY_ID=«k» AWS_SECRET_ACCESS_KEY=«s»", k=L("aws_access_key_id", aws_key_id(rng)), s=L("aws_secret_access_key", aws_secret(rng))),
        lambda: fill("stripe login --api-key «t»", t=L("stripe_key", stripe_key(rng))),
    ]  # fmt: skip
    for f in rng.sample(options, rng.randint(1, 3)):
        cmds.insert(rng.randint(0, len(cmds)), f())
    return join([Doc(f"{base + i:>5}  ", c) for i, c in enumerate(cmds)])


MIXED_CARRIERS = [m_env, m_env, m_incident, m_shell]


# --------------------------------------------------------------------------------------------
# Harder positives: unusual syntaxes, query strings, CRLF files, punctuation, prose
# --------------------------------------------------------------------------------------------

WP_SALT = UPPER + LOWER + DIGITS + "!@#$%^&*()-_=+[]{}|;:,.<>?/~`"


def t_query(rng: random.Random) -> Doc:
    dom = pick(rng, COMPANY_DOMAINS)
    kind = rng.randint(0, 4)
    if kind == 0:
        return fill(
            "GET /v1/export?format=csv&«p»=«t»&page=«n» HTTP/1.1",
            p=pick(rng, ["api_key", "apikey", "access_token", "auth_token"]),
            t=L("generic_secret", opaque_token(rng)),
            n=str(rng.randint(1, 9)),
        )
    if kind == 1:
        return fill(
            "fetch failed: https://api.«d»/v2/reports?access_token=«t»&since=2025-06-01 (status 503)",
            d=dom,
            t=L("generic_secret", opaque_token(rng)),
        )
    if kind == 2:
        return fill("wss://stream.«d»/socket?token=«t»&v=2", d=dom, t=L("jwt", jwt_token(rng)))
    if kind == 3:
        return fill(
            "https://api.github.com/repos/«r»/tarball?access_token=«t»",
            r=pick(rng, REPOS),
            t=L("github_token", gh_token(rng)),
        )
    return fill(
        '{"url": "https://hooks.«d»/ingest?secret=«t»", "method": "POST"}',
        d=dom,
        t=L("generic_secret", opaque_token(rng)),
    )


def t_wordpress(rng: random.Random) -> Doc:
    pw = L("generic_secret", password(rng))
    salts = [
        L("generic_secret", rstr(rng, ALNUM, 1) + rstr(rng, WP_SALT, 62) + rstr(rng, ALNUM, 1))
        for _ in range(2)
    ]
    return fill(
        "<?php\n/** The name of the database for WordPress */\ndefine( 'DB_NAME', 'wp_prod' );\n"
        "define( 'DB_USER', 'wp_user' );\ndefine( 'DB_PASSWORD', '«pw»' );\ndefine( 'DB_HOST', 'localhost' );\n\n"
        "define( 'AUTH_KEY',         '«s1»' );\ndefine( 'SECURE_AUTH_KEY',  '«s2»' );\n$table_prefix = 'wp_';\n",
        pw=pw,
        s1=salts[0],
        s2=salts[1],
    )


def t_spring(rng: random.Random) -> Doc:
    return fill(
        "server.port=8080\nspring.datasource.url=jdbc:postgresql://db-primary.internal:5432/orders\n"
        "spring.datasource.username=orders\nspring.datasource.password=«pw»\n"
        "spring.mail.host=smtp.«d»\nspring.mail.password=«mp»\njwt.secret=«js»\nmanagement.endpoints.web.exposure.include=health\n",
        pw=L("generic_secret", password(rng)),
        d=pick(rng, COMPANY_DOMAINS),
        mp=L("generic_secret", password(rng)),
        js=L("generic_secret", b64bytes(rng, 48)),
    )


def t_xml(rng: random.Random) -> Doc:
    if rng.random() < 0.5:
        return fill(
            "<settings>\n  <servers>\n    <server>\n      <id>nexus-releases</id>\n      <username>deploy</username>\n"
            "      <password>«pw»</password>\n    </server>\n  </servers>\n</settings>",
            pw=L("generic_secret", password(rng)),
        )
    return fill(
        '<configuration>\n  <appSettings>\n    <add key="Environment" value="Production" />\n'
        '    <add key="PaymentsApiKey" value="«k»" />\n  </appSettings>\n  <connectionStrings>\n'
        '    <add name="Default" connectionString="Server=sql01;Database=Orders;User Id=app;Password=«pw»;" />\n'
        "  </connectionStrings>\n</configuration>",
        k=L("generic_secret", opaque_token(rng)),
        pw=L("generic_secret", password(rng)),
    )


def t_docker_run(rng: random.Random) -> Doc:
    return fill(
        "docker run -d --name db -e POSTGRES_USER=app -e POSTGRES_PASSWORD=«pw» -p 5432:5432 postgres:16\n"
        "docker run --rm -e OPENAI_API_KEY=«ok» ghcr.io/acme/agent:latest",
        pw=L("generic_secret", password(rng)),
        ok=L("openai_api_key", openai_key(rng)),
    )


def t_crlf(rng: random.Random) -> Doc:
    doc = config_with(
        rng,
        [
            ("STRIPE_SECRET_KEY", L("stripe_key", stripe_key(rng))),
            ("DB_PASSWORD", L("generic_secret", password(rng))),
        ],
        style=pick(rng, ["env", "env_quoted", "ini"]),
    )
    return doc.map(lambda x: x.replace("\n", "\r\n"))


def t_prose(rng: random.Random) -> Doc:
    n, t, g = pick(rng, [e for e in ENV_SECRETS if e[1] not in ("generic_secret", "jwt")])
    v = L(t, g(rng))
    return pick(
        rng,
        [
            fill("Here's the key you asked for («v»).", v=v),
            fill("Token:«v»; expires in 30 days.", v=v),
            fill("APIキー：«v»（本番環境用）", v=v),
            fill("Der Schlüssel für die Staging-Umgebung ist «v». Bitte nicht weitergeben.", v=v),
            fill("| env | key |\n|---|---|\n| prod | `«v»` |\n| dev | (see vault) |", v=v),
            fill("> **Note**: I used `«v»` for the test call, rotate it afterwards.", v=v),
        ],
    )


def t_google_oauth(rng: random.Random) -> Doc:
    cid = f"{rng.randint(10**11, 10**12 - 1)}-{rstr(rng, LOWER + DIGITS, 32)}.apps.googleusercontent.com"
    return Doc(
        '{"installed": {"client_id": "',
        cid,
        '", "project_id": "acme-tools", "auth_uri": "https://accounts.google.com/o/oauth2/auth", '
        '"token_uri": "https://oauth2.googleapis.com/token", "client_secret": "',
        L("generic_secret", "GOCSPX-" + mixed(rng, B64URL, 28)),
        '", "redirect_uris": ["http://localhost"]}}',
    )


def t_vendor_key(rng: random.Random) -> Doc:
    """Vendor keys without a distinctive prefix: found only by their variable name."""
    name = pick(
        rng,
        ["MAILCHIMP_API_KEY", "NEW_RELIC_LICENSE_KEY", "TERRAFORM_CLOUD_TOKEN", "ALGOLIA_API_KEY"],
    )
    if name == "MAILCHIMP_API_KEY":
        value = hexs(rng, 32) + "-us" + str(rng.randint(1, 21))
    elif name == "NEW_RELIC_LICENSE_KEY":
        value = hexs(rng, 36) + "NRAL"
    elif name == "TERRAFORM_CLOUD_TOKEN":
        value = mixed(rng, ALNUM, 14) + ".atlasv1." + mixed(rng, ALNUM, 67)
    else:
        value = hexs(rng, 32)
    return as_file(rng, config_with(rng, [(name, L("generic_secret", value))]))


def t_repr(rng: random.Random) -> Doc:
    return fill(
        "«ts» DEBUG connecting with params {'host': 'db-primary.internal', 'user': 'etl', 'password': '«pw»', 'connect_timeout': 10}",
        ts=ts_log(rng),
        pw=L("generic_secret", password(rng)),
    )


def t_printenv(rng: random.Random) -> Doc:
    items: list[Item] = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/home/app"),
        ("HOSTNAME", f"{pick(rng, SERVICES)}-{hexs(rng, 10)}-{rstr(rng, LOWER + DIGITS, 5)}"),
        ("KUBERNETES_SERVICE_HOST", L_ip(rng, True)),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("PYTHONUNBUFFERED", "1"),
    ]
    for n, t, g in rng.sample(ENV_SECRETS, 2):
        items.append((n, L(t, g(rng))))
    rng.shuffle(items)
    return Doc("$ printenv\n", kv_doc(rng, items, "env"))


def t_pii_forms(rng: random.Random) -> Doc:
    first, last = person(rng)
    kind = rng.randint(0, 4)
    if kind == 0:
        return Doc(
            '<p>Contact <a href="mailto:', L_email(rng, first, last), f'">{first}</a> or call <a href="tel:',
            L("phone_number", "+1" + "".join(_nanp(rng))), '">us</a>.</p>',
        )  # fmt: skip
    if kind == 1:
        return Doc(
            '{"order": ', str(rng.randint(10000, 99999)), ', "pan": ', L("credit_card", card_number(rng)),
            ', "exp": "', f"{rng.randint(1, 12):02d}/{rng.randint(26, 31)}", '", "name": "', f"{first} {last}", '"}',
        )  # fmt: skip
    if kind == 2:
        return Doc(
            "X-Forwarded-For: ", L_ip(rng, False), ", ", L_ip(rng, True), "\nX-Real-IP: ", L_ip(rng, False),
            "\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36",
        )  # fmt: skip
    if kind == 3:
        return Doc(
            "<Document><CstmrCdtTrfInitn><PmtInf><DbtrAcct><Id><IBAN>", L("iban", iban(rng)),
            "</IBAN></Id></DbtrAcct><CdtTrfTxInf><Cdtr><Nm>", f"{first} {last}",
            "</Nm></Cdtr><CdtrAcct><Id><IBAN>", L("iban", iban(rng)), "</IBAN></Id></CdtrAcct></CdtTrfTxInf></PmtInf></CstmrCdtTrfInitn></Document>",
        )  # fmt: skip
    return Doc(
        f"Applicant: {first} {last}\nSSN: ", L("us_ssn", ssn(rng)), "\nEmail: ", L_email(rng, first, last),
        "\nPhone: ", L_phone(rng), f"\nZIP: {rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
    )  # fmt: skip


TRICKY_CARRIERS = [
    t_query, t_query, t_wordpress, t_spring, t_xml, t_docker_run, t_crlf, t_prose, t_prose,
    t_google_oauth, t_vendor_key, t_repr, t_printenv, t_pii_forms, t_pii_forms,
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Harder negatives
# --------------------------------------------------------------------------------------------


def bn_tricky(rng: random.Random) -> str:
    kind = rng.randint(0, 17)
    if kind == 0:
        return (
            "def connect(settings):\n    return Client(\n        username=settings.user,\n        password=settings.password,\n"
            "        api_key=settings.API_KEY,\n        token=token,\n        secret=os.getenv('CLIENT_SECRET'),\n    )\n"
            "headers = {'Authorization': f'Bearer {access_token}'}\nsecret = secrets.token_urlsafe(32)\n"
        )
    if kind == 1:
        lines = "\n".join("          " + hexs(rng, 80) for _ in range(4))
        return (
            f"db_user: app\ndb_password: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n{lines}\n"
        )
    if kind == 2:
        return "\n".join(
            f"{pick(rng, ['-rw-r--r--'])}  1 dev staff {rng.randint(900, 90000):>6} Jun {rng.randint(1, 28):>2} {name}"
            for name in [
                "logo.png",
                "logo@2x.png",
                "logo@3x.png",
                "icon-192@2x.png",
                "hero@2x.webp",
            ]
        )
    if kind == 3:
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{rng.randint(110, 131)}.0.{rng.randint(5000, 6999)}.{rng.randint(10, 200)} Safari/537.36\n"
            f"OS build 10.0.{rng.randint(17000, 26000)}.{rng.randint(1, 5000)}; Edge WebView2 {rng.randint(110, 131)}.0.{rng.randint(1000, 3000)}.{rng.randint(10, 99)}"
        )
    if kind == 4:
        imei = luhn_complete("35" + rstr(rng, DIGITS, 12))
        return f"Device: Pixel 8\nIMEI: {imei}\nABA routing number: {pick(rng, ['021000021', '026009593', '121000358'])}\nBIC: DEUTDEFF500\nVAT ID: DE{rstr(rng, DIGITS, 9)}"
    if kind == 5:
        sig = "\n".join(rstr(rng, B64, 64) for _ in range(3))
        return (
            f"commit {sha(rng)}\ngpg: Signature made Tue Jun 10 10:21:44 2025 UTC\ngpg:                using RSA key {rstr(rng, '0123456789ABCDEF', 40)}\n"
            f'gpg: Good signature from "Release Bot" [ultimate]\n\n-----BEGIN PGP SIGNATURE-----\n\n{sig}\n=abcd\n-----END PGP SIGNATURE-----'
        )
    if kind == 6:
        return f"256 SHA256:{b64bytes(rng, 32, pad=False)} deploy@build-01 (ED25519)\n3072 SHA256:{b64bytes(rng, 32, pad=False)} ci-runner (RSA)"
    if kind == 7:
        acct = str(rng.randint(10**11, 10**12 - 1))
        return orjson.dumps(
            {
                "KeyMetadata": {
                    "AWSAccountId": acct,
                    "KeyId": ruuid(rng),
                    "Arn": f"arn:aws:kms:eu-west-1:{acct}:key/{ruuid(rng)}",
                    "KeyState": "Enabled",
                    "KeyUsage": "ENCRYPT_DECRYPT",
                }
            }
        ).decode()
    if kind == 8:
        return pick(
            rng,
            [
                "Password must be at least 12 characters and contain a digit.",
                "password: N/A (SSO only)",
                "Password: (set via the identity provider)",
                "The API key is stored in 1Password under 'Prod / Payments'.",
                "Forgot your password? Use the reset link on the login page.",
                "token: none\napi_key: null\npassword: ~",
            ],
        )
    if kind == 9:
        return (
            'def test_login(client):\n    resp = client.post("/login", json={"username": "alice", "password": "test"})\n'
            '    assert resp.status_code == 200\n\n\ndef test_api_key_required(client):\n    resp = client.get("/v1/me", headers={"X-API-Key": "test-key"})\n'
            '    assert resp.status_code == 401\n\nFAKE_TOKEN = "dummy-token"\nPASSWORD = "password"\n'
        )
    if kind == 10:
        return orjson.dumps(
            {
                "model": "claude-sonnet-4",
                "usage": {
                    "input_tokens": rng.randint(100, 90000),
                    "output_tokens": rng.randint(10, 4000),
                },
                "max_tokens": pick(rng, [1024, 4096, 8192]),
                "token_type": "Bearer",
                "expires_in": 3600,
                "api_key_header": "X-API-Key",
                "token_endpoint": "https://auth.northwind-apps.io/oauth2/token",
                "primary_key": "id",
                "cache_key": f"v2:orders:{rng.randint(1, 99999)}",
            }
        ).decode()
    if kind == 11:
        return orjson.dumps(
            {
                "_id": hexs(rng, 24),
                "ulid": "01J" + rstr(rng, "0123456789ABCDEFGHJKMNPQRSTVWXYZ", 23),
                "nanoid": mixed(rng, B64URL, 21),
                "snowflake": str(rng.randint(10**17, 10**18)),
                "eth_address": "0x" + hexs(rng, 40),
                "ipfs_cid": "bafybei" + rstr(rng, "abcdefghijklmnopqrstuvwxyz234567", 52),
                "thumbnail": "/9j/4AAQSkZJRgABAQAAAQABAAD/" + rstr(rng, B64, 300),
            }
        ).decode()
    if kind == 12:
        return (
            f"Support: call 911 in an emergency, otherwise open a ticket. Office hours 09:00-17:30, ext. {rng.randint(100, 999)}.\n"
            f"Ship to: {rng.randint(1, 999)} {pick(rng, STREETS)}, {pick(rng, CITIES)} {rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}\n"
            f"Ports 30000-32767 are reserved; build 2025.06.{rng.randint(10, 28)}-{rng.randint(1, 9)}"
        )
    if kind == 13:
        return (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n"
            "  password: ENC[AES256_GCM,data:" + b64bytes(rng, 12) + ",iv:" + b64bytes(rng, 32) + ",tag:" + b64bytes(rng, 16) + ",type:str]\n"
            "sops:\n  kms:\n    - arn: arn:aws:kms:eu-west-1:" + str(rng.randint(10**11, 10**12 - 1)) + ":alias/sops\n"
            "  lastmodified: \"" + ts(rng) + "\"\n  version: 3.9.1\n"
        )  # fmt: skip
    if kind == 14:
        return (
            "-----BEGIN SSH SIGNATURE-----\n"
            + "\n".join(rstr(rng, B64, 70) for _ in range(4))
            + "\n-----END SSH SIGNATURE-----"
        )
    if kind == 15:
        return (
            'resource "aws_db_instance" "main" {\n  username = "app"\n  password = var.db_password\n}\n\n'
            'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n\n'
            'data "aws_secretsmanager_secret_version" "api" {\n  secret_id = "prod/api-key"\n}\n'
        )
    if kind == 16:
        return f"Tracking: {rstr(rng, DIGITS, 12)} (FedEx), invoice {rng.randint(10**9, 10**10)}, customer no. {rng.randint(10**7, 10**8)}\nAmount: 1.234.567,89 EUR; rate 0.0{rng.randint(1, 9)}%"
    return f"Password reset link: https://app.{pick(rng, COMPANY_DOMAINS)}/reset?uid={ruuid(rng)}&expires={epoch(rng)}"


BENIGN_GENERATORS["tricky"] = (bn_tricky, 14)


# --------------------------------------------------------------------------------------------
# More carriers: credential files and code in other languages
# --------------------------------------------------------------------------------------------


def t_credfiles(rng: random.Random) -> Doc:
    kind = rng.randint(0, 9)
    host = pick(
        rng, ["api.northwind-apps.io", "ftp.globex.io", "registry.internal", "nexus.acmecorp.net"]
    )
    if kind == 0:
        return fill(
            "machine «h»\n  login «u»\n  password «p»\n",
            h=host,
            u=pick(rng, ["deploy", "ci", "svc"]),
            p=L("generic_secret", password(rng)),
        )
    if kind == 1:
        return fill(
            "# ~/.pgpass\ndb-primary.internal:5432:orders:app_rw:«p»\n*:5432:*:reporting:«q»\n",
            p=L("generic_secret", password(rng)),
            q=L("generic_secret", password(rng)),
        )
    if kind == 2:
        return fill(
            "$ cat ~/.git-credentials\nhttps://«u»:«t»@github.com\n",
            u=pick(rng, ["octo-dev", "rsilva"]),
            t=L("github_token", gh_token(rng)),
        )
    if kind == 3:
        return fill(
            '$env:OPENAI_API_KEY = "«k»"\n$env:DB_PASSWORD = "«p»"\npython .\\agent.py',
            k=L("openai_api_key", openai_key(rng)),
            p=L("generic_secret", password(rng)),
        )
    if kind == 4:
        return fill(
            'package config\n\nconst (\n\tapiBaseURL = "https://api.«d»"\n\tapiKey     = "«k»"\n)\n',
            d=pick(rng, COMPANY_DOMAINS),
            k=L("generic_secret", opaque_token(rng)),
        )
    if kind == 5:
        return fill(
            "const stripe = require('stripe')(process.env.STRIPE_KEY || '«k»');\nconst app = express();",
            k=L("stripe_key", stripe_key(rng)),
        )
    if kind == 6:
        return Doc(
            '{"info": {"name": "Orders API"}, "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "',
            L("generic_secret", opaque_token(rng)),
            '", "type": "string"}]}, "item": [{"name": "List orders", "request": {"method": "GET", "url": "{{baseUrl}}/v1/orders"}}]}',
        )
    if kind == 7:
        return Doc(
            '{"log": {"entries": [{"request": {"method": "GET", "url": "https://api.',
            pick(rng, COMPANY_DOMAINS),
            '/v1/me", "headers": [{"name": "Authorization", "value": "Bearer ',
            L("jwt", jwt_token(rng)),
            '"}, {"name": "Accept", "value": "application/json"}]}, "response": {"status": 200}}]}}',
        )
    if kind == 8:
        return fill(
            'db_password      = "«p»"\nregion           = "eu-west-1"\ninstance_type    = "t3.medium"\ndatadog_api_key  = "«k»"\n',
            p=L("generic_secret", password(rng)),
            k=L("generic_secret", hexs(rng, 32)),
        )
    return Doc(
        '{"cells": [{"cell_type": "code", "source": ["import openai\\n", "openai.api_key = \\"',
        L("openai_api_key", openai_key(rng)),
        '\\"\\n"], "outputs": []}], "nbformat": 4}',
    )


def bn_more(rng: random.Random) -> str:
    kind = rng.randint(0, 15)
    if kind == 0:
        mods = [
            "golang.org/x/net v0.30.0",
            "github.com/google/uuid v1.6.0",
            "gopkg.in/yaml.v3 v3.0.1",
        ]
        return "\n".join(
            f"{m} h1:{b64bytes(rng, 32)}\n{m}/go.mod h1:{b64bytes(rng, 32)}" for m in mods
        )
    if kind == 1:
        return (
            f'[[package]]\nname = "serde"\nversion = "1.0.{rng.randint(100, 220)}"\n'
            f'source = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{sha(rng, 64)}"\n'
        )
    if kind == 2:
        return (
            f"diff --git a/{pick(rng, PATHS)} b/{pick(rng, PATHS)}\nindex {sha(rng, 7)}..{sha(rng, 7)} 100644\n"
            "--- a/src/app.py\n+++ b/src/app.py\n@@ -12,7 +12,7 @@ def create_app():\n"
            "-    api_key = os.environ['API_KEY']\n+    api_key = settings.api_key.get_secret_value()\n"
            "     client = Client(api_key=api_key, timeout=10)\n"
        )
    if kind == 3:
        return (
            '{"version": 3, "file": "app.min.js", "sources": ["src/app.ts"], "names": ["fetchOrders", "token"], '
            f'"mappings": "{";".join(",".join(rstr(rng, B64[:52], rng.randint(4, 8)) for _ in range(6)) for _ in range(5))}"}}'
        )
    if kind == 4:
        return (
            '@font-face{font-family:"Inter";src:url(data:font/woff2;base64,'
            + b64bytes(rng, rng.randint(200, 600))
            + ') format("woff2")}'
        )
    if kind == 5:
        return "\n".join(
            f'http_requests_total{{method="{pick(rng, ["GET", "POST"])}",code="{pick(rng, [200, 404, 500])}",handler="/v1/{pick(rng, ["orders", "users", "mcp"])}"}} {rng.randint(1, 10**7)}'
            for _ in range(rng.randint(3, 8))
        )
    if kind == 6:
        return (
            "FROM python:3.12-slim@sha256:"
            + sha(rng, 64)
            + "\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n"
            'ARG API_KEY\nENV API_KEY=${API_KEY}\nUSER 10001\nCMD ["python", "-m", "app"]'
        )
    if kind == 7:
        return orjson.dumps(
            {
                "key": f"PROJ-{rng.randint(100, 9999)}",
                "fields": {
                    "summary": pick(
                        rng,
                        [
                            "Rotate API keys quarterly",
                            "Password policy update",
                            "Token expiry too short",
                        ],
                    ),
                    "status": {"name": pick(rng, ["In Progress", "Done", "To Do"])},
                    "assignee": {
                        "displayName": f"{pick(rng, FIRST)} {pick(rng, LAST)}",
                        "accountId": f"5b10a2844c20165700ede{rng.randint(10, 99)}",
                    },
                    "created": ts(rng),
                },
            }
        ).decode()
    if kind == 8:
        return (
            "CREATE TABLE api_keys (\n  id uuid PRIMARY KEY,\n  user_id bigint NOT NULL,\n  key_hash bytea NOT NULL,\n"
            "  key_prefix varchar(8) NOT NULL,\n  last_used_at timestamptz,\n  password_changed_at timestamptz\n);\n"
            "CREATE INDEX api_keys_prefix_idx ON api_keys (key_prefix);"
        )
    if kind == 9:
        return (
            f"{ts_log(rng)[:19]} kernel: [{rng.randint(1000, 99999)}.{rng.randint(100000, 999999)}] oom-kill:constraint=CONSTRAINT_MEMCG,"
            f"task={pick(rng, SERVICES)},pid={rng.randint(1000, 99999)},uid=10001\n"
            f"{ts_log(rng)[:19]} systemd[1]: {pick(rng, SERVICES)}.service: Main process exited, code=killed, status=9/KILL"
        )
    if kind == 10:
        return (
            '<div class="card" data-id="' + ruuid(rng) + '" data-track="' + hexs(rng, 16) + '">\n'
            '  <form method="post" action="/login">\n    <input type="email" name="email" placeholder="you@company" required>\n'
            '    <input type="password" name="password" autocomplete="current-password">\n'
            '    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">\n  </form>\n</div>'
        )
    if kind == 11:
        return (
            f'{{"name": "@acme/{pick(rng, SERVICES)}", "version": "{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 20)}", '
            '"scripts": {"build": "tsc -p .", "test": "vitest run"}, "dependencies": {"zod": "^3.23.8", "undici": "^6.19.0"}, '
            '"publishConfig": {"registry": "https://npm.pkg.github.com"}}'
        )
    if kind == 12:
        return (
            "Python 3.12.4 (main, Jun  6 2024) [GCC 12.2.0] on linux\n>>> import secrets\n>>> len(secrets.token_hex(16))\n32\n"
            f">>> hashlib.sha256(b'hello').hexdigest()\n'{sha(rng, 64)}'\n>>> uuid.uuid4()\nUUID('{ruuid(rng)}')"
        )
    if kind == 13:
        return (
            f"LAST SEEN   TYPE      REASON      OBJECT                         MESSAGE\n"
            f'{rng.randint(1, 59)}s         Normal    Pulled      pod/{pick(rng, SERVICES)}-{hexs(rng, 10)}   Successfully pulled image "ghcr.io/acme/api@sha256:{sha(rng, 64)}"\n'
            f"{rng.randint(1, 59)}m         Warning   BackOff     pod/{pick(rng, SERVICES)}-{hexs(rng, 10)}   Back-off restarting failed container"
        )
    if kind == 14:
        return (
            "openapi: 3.1.0\ncomponents:\n  securitySchemes:\n    ApiKeyAuth:\n      type: apiKey\n      in: header\n      name: X-API-Key\n"
            "    BearerAuth:\n      type: http\n      scheme: bearer\n      bearerFormat: JWT\n"
            "  examples:\n    token:\n      value:\n        access_token: <access-token>\n        token_type: Bearer\n        expires_in: 3600\n"
        )
    return (
        '[submodule "vendor/protos"]\n\tpath = vendor/protos\n\turl = https://github.com/acme/protos.git\n'
        f"# pinned at {sha(rng)}\n"
        "User-agent: *\nDisallow: /admin\nSitemap: https://www.northwind-traders.com/sitemap.xml"
    )


BENIGN_GENERATORS["more"] = (bn_more, 14)
TRICKY_CARRIERS += [t_credfiles, t_credfiles, t_credfiles]


# --------------------------------------------------------------------------------------------
# Tool-argument values (the scanner often sees one bare JSON string), encodings
# --------------------------------------------------------------------------------------------

BARE_VALUES: list[tuple[str, Callable[[random.Random], str]]] = [
    ("github_token", gh_token),
    ("openai_api_key", openai_key),
    ("anthropic_api_key", anthropic_key),
    ("stripe_key", stripe_key),
    ("slack_token", slack_token),
    ("slack_webhook", slack_webhook),
    ("gitlab_token", gitlab_token),
    ("npm_token", npm_token),
    ("google_api_key", google_key),
    ("sendgrid_api_key", sendgrid_key),
    ("jwt", jwt_token),
    ("private_key", private_key_pem),
    ("aws_access_key_id", aws_key_id),
    ("context7_api_key", context7_key),
    ("pypi_token", pypi_token),
    ("email", email),
    ("phone_number", phone),
    ("iban", lambda r: format_iban(r, iban(r))),
    ("credit_card", lambda r: format_card(r, card_number(r))),
    ("ipv4", lambda r: ipv4(r, False)),  # (a private address is no finding)
]


def t_bare(rng: random.Random) -> Doc:
    """A tool argument such as {"token": "..."} reaches the scanner as the bare string."""
    t, g = pick(rng, BARE_VALUES)
    return Doc(L(t, g(rng)), pick(rng, ["", "", "", "\n"]))


def t_b64_blob(rng: random.Random) -> Doc:
    """A Kubernetes Secret whose neutral key holds a base64 file with one known token inside.

    The label covers the whole base64 value with the type of the token inside it."""
    n, t, g = pick(rng, [e for e in ENV_SECRETS if e[1] not in ("generic_secret",)])
    inner = f"# app config\n{n}={g(rng)}\nLOG_LEVEL=info\n"
    blob = base64.b64encode(inner.encode()).decode()
    return fill(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: «svc»-env\ntype: Opaque\ndata:\n  app.env: «b»\n",
        svc=pick(rng, SERVICES),
        b=L(t, blob),
    )


def t_json_unicode(rng: random.Random) -> Doc:
    """Known tokens partly written as JSON \\u escapes inside a JSON document (evasion)."""
    n, t, g = pick(
        rng, [e for e in ENV_SECRETS if e[1] not in ("generic_secret", "jwt", "slack_webhook")]
    )
    value = g(rng)
    k = rng.randint(1, 3)
    escaped = "".join(f"\\u{ord(c):04x}" for c in value[:k]) + value[k:]
    return Doc('{"', n.lower(), '": "', L(t, escaped), '", "note": "rotated ', ts(rng)[:10], '"}')


def bn_bare(rng: random.Random) -> str:
    return pick(
        rng,
        [
            f"/srv/{pick(rng, SERVICES)}/{pick(rng, PATHS)}",
            f"SELECT id, status, total FROM orders WHERE created_at > now() - interval '{rng.randint(1, 30)} days' LIMIT 100",
            pick(
                rng,
                [
                    "how do I rotate an API key?",
                    "jwt expiry best practice",
                    "postgres password auth failed",
                    "list open PRs",
                ],
            ),
            ruuid(rng),
            sha(rng),
            sha(rng, 64),
            f"https://github.com/{pick(rng, REPOS)}/pull/{rng.randint(1, 5000)}",
            f"feature/{pick(rng, ['token-rotation', 'password-reset', 'sse-retry'])}",
            f"*/{rng.randint(2, 30)} * * * *",
            r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
            str(rng.randint(0, 10**9)),
            ts(rng),
            "main",
            f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 30)}",
            "pk_live_" + mixed(rng, ALNUM, 99),
            "cus_" + mixed(rng, ALNUM, 14),
            twilio_sid(rng),
            "sha512-" + b64bytes(rng, 64),
            pick(rng, PLACEHOLDERS),
            f"arn:aws:s3:::{pick(rng, ['acme', 'globex'])}-prod-exports/{rng.randint(2024, 2025)}/",
            '{"query": "status:open label:bug", "per_page": 50}',
        ],
    )


BENIGN_GENERATORS["bare"] = (bn_bare, 14)


def bn_numeric(rng: random.Random) -> str:
    """Numeric-heavy tool output: nothing here is a phone number, card, SSN or address."""
    kind = rng.randint(0, 7)
    if kind == 0:
        rows = ["USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND"]
        for _ in range(rng.randint(3, 7)):
            rows.append(
                f"app      {rng.randint(1000, 99999):>7} {rng.uniform(0, 99):4.1f} {rng.uniform(0, 30):4.1f} "
                f"{rng.randint(100000, 9999999):>7} {rng.randint(10000, 999999):>6} ?        Ssl  "
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}   {rng.randint(0, 99)}:{rng.randint(0, 59):02d} "
                f"{pick(rng, ['python -m app', 'node dist/server.js', 'postgres: writer', '/usr/bin/redis-server'])}"
            )
        return "\n".join(rows)
    if kind == 1:
        rows = ["Filesystem      Size  Used Avail Use% Mounted on"]
        for mnt in ["/", "/var/lib/docker", "/data", "/boot/efi"]:
            rows.append(
                f"/dev/nvme0n1p{rng.randint(1, 9)}  {rng.randint(10, 2000)}G  {rng.randint(1, 900)}G  {rng.randint(1, 900)}G  {rng.randint(1, 99)}% {mnt}"
            )
        return "\n".join(rows)
    if kind == 2:
        return "Date        Open     High     Low      Close    Volume\n" + "\n".join(
            f"2025-06-{d:02d}  {rng.uniform(100, 300):.2f}  {rng.uniform(100, 300):.2f}  {rng.uniform(100, 300):.2f}  "
            f"{rng.uniform(100, 300):.2f}  {rng.randint(10**6, 10**8):,}"
            for d in range(2, rng.randint(5, 12))
        )
    if kind == 3:
        return "\n".join(
            f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2025  {pick(rng, ['Miete', 'Gehalt', 'Strom', 'Versicherung'])}"
            f"  {pick(rng, ['-', ''])}{rng.randint(1, 9)} {rng.randint(100, 999)},{rng.randint(0, 99):02d} EUR"
            for _ in range(rng.randint(3, 7))
        )
    if kind == 4:
        return (
            f"Tcp:\n    {rng.randint(10**5, 10**7)} active connection openings\n    {rng.randint(10**5, 10**7)} passive connection openings\n"
            f"    {rng.randint(0, 9999)} failed connection attempts\n    {rng.randint(10**7, 10**9)} segments received\n"
            f"    {rng.randint(10**7, 10**9)} segments sent out\n    {rng.randint(0, 99999)} segments retransmitted"
        )
    if kind == 5:
        return "\n".join(
            f'{{"sensor": "th-{rng.randint(100, 999)}", "ts": {epoch(rng)}{rng.randint(100, 999)}, "temp": {rng.uniform(-5, 40):.3f}, '
            f'"lat": {rng.uniform(-60, 60):.6f}, "lon": {rng.uniform(-120, 120):.6f}, "seq": {rng.randint(10**8, 10**9)}}}'
            for _ in range(rng.randint(2, 5))
        )
    if kind == 6:
        return (
            f"Case #{rng.randint(10**7, 10**8)} opened {rng.randint(1, 28)}/{rng.randint(1, 12)}/2025 {rng.randint(0, 23)}:{rng.randint(10, 59)}\n"
            f"Ticket INC-2025-{rng.randint(100000, 999999)}; SLA {rng.randint(1, 72)} h; ISO week 2025-W{rng.randint(10, 52)}\n"
            f"Invoice total: USD {rng.randint(1, 99)},{rng.randint(100, 999)},{rng.randint(100, 999)}.{rng.randint(10, 99)}"
        )
    return (
        f"              total        used        free      shared  buff/cache   available\n"
        f"Mem:       {rng.randint(10**6, 10**8):>8}    {rng.randint(10**6, 10**7):>8}    {rng.randint(10**5, 10**7):>8}"
        f"      {rng.randint(1000, 99999):>6}    {rng.randint(10**6, 10**7):>8}    {rng.randint(10**6, 10**7):>8}\n"
        f"Swap:      {rng.randint(10**6, 10**7):>8}           0    {rng.randint(10**6, 10**7):>8}\n"
        f" {rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)} up {rng.randint(1, 400)} days,  {rng.randint(0, 23)}:{rng.randint(10, 59)},  2 users,  load average: 0.{rng.randint(10, 99)}, 0.{rng.randint(10, 99)}, 0.{rng.randint(10, 99)}"
    )


BENIGN_GENERATORS["numeric"] = (bn_numeric, 8)
TRICKY_CARRIERS += [t_bare, t_bare, t_bare, t_b64_blob, t_json_unicode]


def t_more_secrets(rng: random.Random) -> Doc:
    kind = rng.randint(0, 7)
    if kind == 0:
        return fill(
            'import { S3Client } from "@aws-sdk/client-s3";\n\nconst s3 = new S3Client({\n  region: "eu-west-1",\n'
            '  credentials: {\n    accessKeyId: "«k»",\n    secretAccessKey: "«s»",\n  },\n});',
            k=L("aws_access_key_id", aws_key_id(rng)),
            s=L("aws_secret_access_key", aws_secret(rng)),
        )
    if kind == 1:
        secret = rstr(rng, ALNUM, 3) + "8Q~" + mixed(rng, ALNUM + "-_.~", 31)
        return as_file(
            rng,
            config_with(
                rng,
                [
                    ("AZURE_TENANT_ID", ruuid(rng)),
                    ("AZURE_CLIENT_ID", ruuid(rng)),
                    ("AZURE_CLIENT_SECRET", L("generic_secret", secret)),
                ],
                fillers=(0, 2),
            ),
        )
    if kind == 2:
        return fill(
            "spring.datasource.url=jdbc:mysql://mysql.internal:3306/orders?user=app&password=«p»&useSSL=true",
            p=L("generic_secret", mixed(rng, ALNUM, 20)),
        )
    if kind == 3:
        return fill(
            "Driver={ODBC Driver 18 for SQL Server};Server=tcp:sql01.internal,1433;Database=crm;Uid=svc_crm;Pwd=«p»;Encrypt=yes;",
            p=L("generic_secret", password(rng)),
        )
    if kind == 4:
        scheme = pick(rng, ["ApiKey", "Token", "token"])
        return fill(
            "«m» /«path» HTTP/1.1\nHost: «h»\nAuthorization: «sch» «t»\nContent-Type: application/json",
            m=pick(rng, ["GET", "POST"]),
            path=pick(rng, ["_cluster/health", "api/v1/projects/", "v2/tickets"]),
            h=pick(rng, ["es.internal:9200", "api.northwind-apps.io", "desk.globex.io"]),
            sch=scheme,
            t=L("generic_secret", b64bytes(rng, 30) if scheme == "ApiKey" else hexs(rng, 40)),
        )
    if kind == 5:
        pem = private_key_pem(rng, pick(rng, ["RSA PRIVATE KEY", "PRIVATE KEY"]), nl="\r\n")
        return Doc("C:\\> type C:\\certs\\server.key\r\n", L("private_key", pem), "\r\n")
    if kind == 6:
        first, last = person(rng)
        return Doc(
            f"{first} {last}\n{pick(rng, ['Sales Director', 'Support Lead'])}\nOffice: ",
            L("phone_number", "({}) {}-{}".format(*_nanp(rng))),
            f" ext. {rng.randint(10, 999)}\nMobile: ",
            L_phone(rng),
            "\n",
            L("email", email_for(rng, first, last, "mail.eu." + pick(rng, COMPANY_DOMAINS))),
        )
    return Doc(
        '{"Users": [{"Email": "',
        L("email", email_for(rng, *person(rng)).upper()),
        '", "Phone": "',
        L_phone(rng),
        '", "LastLoginIp": "',
        L_ip(rng, False),
        '"}]}',
    )


TRICKY_CARRIERS += [t_more_secrets, t_more_secrets, t_more_secrets]


# --------------------------------------------------------------------------------------------
# Framing: how a document reaches the scanner (plain, with filler, JSON-embedded, ...)
# --------------------------------------------------------------------------------------------

JSON_WRAPPERS = [
    ('{"path": "«p»", "encoding": "utf-8", "content": "', '", "truncated": false}'),
    ('{"stdout": "', '", "stderr": "", "exit_code": 0}'),
    ('{"type": "text", "text": "', '"}'),
    ('{"result": {"output": "', '", "duration_ms": 41}}'),
    ('{"file": {"name": "config", "body": "', '"}, "sha": "«sha»"}'),
]


def frame(rng: random.Random, doc: Doc, allow_embed: bool = True) -> Doc:
    r = rng.random()
    if r < 0.52:
        return doc
    if r < 0.72:
        filler = benign_filler(rng)
        return Doc(filler, "\n\n", doc) if rng.random() < 0.5 else Doc(doc, "\n\n", filler)
    if r < 0.80:
        intro = pick(rng, ["I found these settings in the repository:", "Output of the last command:",
                           "Tool result (read_file):", "Here's what the log shows:"])  # fmt: skip
        return Doc(
            intro,
            "\n\n```\n",
            doc,
            "\n```\n\n",
            pick(rng, ["Shall I continue?", "", "Let me know what to change."]),
        )
    backslash = any("\\" in lab.value for lab in doc.labels)
    if not allow_embed or backslash:
        return doc
    head, tail = pick(rng, JSON_WRAPPERS)
    head = head.replace(
        "«p»", pick(rng, [".env", "config/settings.yaml", "deploy/values.yaml", "notes.md"])
    )
    tail = tail.replace("«sha»", sha(rng))
    if r < 0.97:
        return Doc(head, json_escape(doc), tail)
    # JSON inside a JSON string (double escaped)
    inner = Doc(head, json_escape(doc), tail)
    return Doc(
        '{"jsonrpc": "2.0", "id": ',
        str(rng.randint(1, 999)),
        ', "result": {"content": [{"type": "text", "text": "',
        json_escape(inner),
        '"}]}}',
    )


# --------------------------------------------------------------------------------------------
# Corpus assembly
# --------------------------------------------------------------------------------------------

SECRET_PLAN: list[tuple[str, Callable[[random.Random], Doc], int]] = [
    ("aws", c_aws, 40),
    ("aws-session", c_aws_session, 35),
    ("github", c_github, 50),
    ("gitlab", c_gitlab, 35),
    ("slack", c_slack, 40),
    ("slack-webhook", c_slack_webhook, 35),
    ("stripe", c_stripe, 45),
    ("openai", c_openai, 50),
    ("anthropic", c_anthropic, 40),
    ("google", c_google, 40),
    ("private-key", c_private_key, 60),
    ("azure", c_azure, 35),
    ("twilio", c_twilio, 35),
    ("sendgrid", c_sendgrid, 35),
    ("npm", c_npm, 35),
    ("pypi", c_pypi, 35),
    ("jwt", c_jwt, 55),
    ("context7", c_context7, 35),
    ("generic", c_generic, 100),
    ("url-credentials", c_url_creds, 60),
    ("basic-auth", c_basic, 40),
]
PII_PLAN = {
    "email": 60,
    "phone_number": 60,
    "credit_card": 50,
    "us_ssn": 50,
    "iban": 45,
    "ipv4": 50,
}
MIXED_COUNT = 100
TRICKY_COUNT = 340
BENIGN_COUNT = 1500


def _sample(sid: str, doc: Doc) -> dict:
    text, labels = doc.build()
    return {"id": sid, "text": text, "labels": labels, "benign": not labels}


def _rng(group: str, i: int, seed: str) -> random.Random:
    return random.Random(f"{seed}/{group}/{i}")


def generate(seed: str = SEED) -> list[dict]:
    """The whole corpus, identical on every call and every machine for a given seed.

    Another seed gives a corpus with the same templates and proportions but fresh values, a
    cheap check that rules generalise beyond the values of the default corpus."""
    out: list[dict] = []
    for group, carrier, n in SECRET_PLAN:
        for i in range(n):
            rng = _rng(group, i, seed)
            out.append(_sample(f"{group}-{i:03d}", frame(rng, carrier(rng))))
    for t, n in PII_PLAN.items():
        carriers = PII_CARRIERS[t]
        for i in range(n):
            rng = _rng(t, i, seed)
            doc = carriers[i % len(carriers)](rng, t)
            out.append(_sample(f"{t}-{i:03d}", frame(rng, doc)))
    for i in range(MIXED_COUNT):
        rng = _rng("mixed", i, seed)
        out.append(_sample(f"mixed-{i:03d}", frame(rng, pick(rng, MIXED_CARRIERS)(rng))))
    for i in range(TRICKY_COUNT):
        rng = _rng("tricky", i, seed)
        carrier = TRICKY_CARRIERS[i % len(TRICKY_CARRIERS)]
        out.append(_sample(f"tricky-{carrier.__name__[2:]}-{i:03d}", frame(rng, carrier(rng))))
    # every documented example and masked form once, then random benign traffic
    rng = _rng("catalogue", 0, seed)
    catalogue = docs_options(rng) + masked_options(rng)
    for i, text in enumerate(catalogue):
        out.append(_sample(f"benign-catalogue-{i:04d}", Doc(text)))
    names = list(BENIGN_GENERATORS)
    weights = [BENIGN_GENERATORS[n][1] for n in names]
    for i in range(len(catalogue), BENIGN_COUNT):
        rng = _rng("benign", i, seed)
        name = rng.choices(names, weights)[0]
        doc = Doc(BENIGN_GENERATORS[name][0](rng))
        if rng.random() < 0.15:
            doc = Doc(doc, "\n\n", benign_filler(rng))
        out.append(_sample(f"benign-{name}-{i:04d}", frame(rng, doc)))
    return out


def type_counts(samples: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(ALL_TYPES, 0)
    for s in samples:
        for lab in s["labels"]:
            counts[lab["type"]] += 1
    return counts


def main(argv: list[str]) -> int:
    samples = generate(argv[2] if len(argv) > 2 else SEED)
    if len(argv) > 1:
        with open(argv[1], "wb") as f:
            for s in samples:
                f.write(orjson.dumps(s) + b"\n")
    pos = sum(not s["benign"] for s in samples)
    print(f"{len(samples)} samples: {pos} with labels, {len(samples) - pos} benign")
    for t, n in type_counts(samples).items():
        print(f"  {t:<24} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
