"""Validators: checks that confirm a regex candidate is a real secret or real personal data.

Each validator is ``fn(value, ctx, **params) -> bool`` (True = keep the candidate). ``ctx`` gives
the surrounding text for validators that look at context. Rule files name validators either as a
plain string (``luhn``) or as a one-key mapping with parameters (``entropy: {min: 3.5}`` or the
shorthand ``entropy: 3.5`` for the first parameter). Unknown names or parameters are rejected
when the rule file is loaded.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Ctx:
    text: str
    start: int
    end: int
    match: re.Match | None = None


@dataclass(frozen=True, slots=True)
class ValidatorSpec:
    fn: Callable[..., bool]
    params: dict[str, type]  # name -> type (int, float, str, bool, list)
    defaults: dict[str, Any]
    # reads the text around the value (ctx): its verdict cannot be reused for the same value
    # found elsewhere. The others are functions of the value and their params alone.
    uses_context: bool = False
    # (value part, context part) of a validator that does both: the engine decides the value
    # part once per value
    parts: tuple[Callable[..., bool], Callable[..., bool]] | None = None


REGISTRY: dict[str, ValidatorSpec] = {}


def validator(
    name: str,
    *,
    uses_context: bool = False,
    parts: tuple[Callable[..., bool], Callable[..., bool]] | None = None,
    **params: tuple[type, Any],
):
    def deco(fn):
        REGISTRY[name] = ValidatorSpec(
            fn,
            {k: v[0] for k, v in params.items()},
            {k: v[1] for k, v in params.items()},
            uses_context or parts is not None,
            parts,
        )
        return fn

    return deco


# -- checksums ---------------------------------------------------------------------------
@validator("luhn")
def luhn(value: str, ctx: Ctx | None = None) -> bool:
    digits = [ord(c) - 48 for c in value if "0" <= c <= "9"]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_BRANDS = (
    # (prefix ranges, allowed lengths)
    ((("4", "4"),), (13, 16, 19)),  # Visa
    ((("51", "55"), ("2221", "2720")), (16,)),  # Mastercard
    ((("34", "34"), ("37", "37")), (15,)),  # American Express
    ((("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")), (16, 19)),  # Discover
    # JCB: 3528-3589, and the rest of 35 (test-data generators such as Faker use it);
    # 15 digits: the old 1800 and 2131 ranges
    ((("35", "35"),), (16, 19)),
    ((("1800", "1800"), ("2131", "2131")), (15,)),
    ((("300", "305"), ("36", "36"), ("38", "39")), (14, 16, 19)),  # Diners
    ((("62", "62"), ("81", "81")), (16, 19)),  # UnionPay
    (
        (
            ("50", "50"),
            ("56", "58"),
            ("0604", "0604"),
            ("6304", "6304"),
            ("6390", "6390"),
            ("67", "67"),
        ),
        (12, 13, 14, 15, 16, 17, 18, 19),
    ),  # Maestro
    ((("2200", "2204"),), (16,)),  # Mir
    # RuPay (its 81/82 ranges left out: loyalty and gift cards there pass Luhn too)
    ((("60", "60"), ("6521", "6522"), ("508", "508")), (16,)),
    ((("9792", "9792"),), (16,)),  # Troy
    (
        (("636297", "636297"), ("636368", "636368"), ("504175", "504175"), ("5067", "5067")),
        (16,),
    ),  # Elo
    ((("9409", "9410"),), (16,)),  # BC Card
    ((("1", "1"),), (15,)),  # UATP (unseparated: only with a card word, see card_context)
)


@validator("card_brand")
def card_brand(value: str, ctx: Ctx | None = None) -> bool:
    digits = "".join(c for c in value if c.isdigit())
    n = len(digits)
    for ranges, lengths in _BRANDS:
        if n not in lengths:
            continue
        for lo, hi in ranges:
            p = digits[: len(lo)]
            if lo <= p <= hi:
                return True
    return False


_CARD_WORDS = re.compile(
    r"card|\bcc\b|\bpan\b|visa|master|amex|maestro|unionpay|discover|jcb|diners|payment"
    # (not "credited" / "debited": a bank account's transfer, "Salary credited to A/c …")
    r"|credit(?!ed\b)|debit(?!ed\b)|billing|checkout|paid\s+with|pay\s+with|charged\s+to"
    # other languages: カード番号, 卡号, número do cartão, tarjeta, carte, Karte, carta, kaart
    r"|\u30ab\u30fc\u30c9|\u5361|cart\u00e3o|cartao|tarjeta|\bcarte\b|karte|\bcarta\b|kaart"
    r"|\bkarta\b|\bkort\b|\bkartu\b|\uce74\ub4dc",
    re.IGNORECASE,
)


def _line_before(ctx: Ctx, n: int) -> str:
    """Up to ``n`` characters before the value, from the start of its line (a line break or
    its JSON escape)."""
    before = ctx.text[max(0, ctx.start - n) : ctx.start]
    nl, esc = before.rfind("\n"), before.rfind("\\n")
    return before[max(nl + 1, esc + 2 if esc >= 0 else 0) :]


# Right before an unseparated number on its line: an id's name (trace_id=, "order_id": ) or the
# id tuple of a log line ([api,8125676514728360934,1667106451466013])
_ID_BEFORE = re.compile(
    r"(?:(?:trace|span|parent|request|correlation|transaction|txn|order|invoice|shipment|tracking"
    r"|session|message|event|object|build|job|run|snowflake)[_.-]?id|\bid"
    # any name ending in _id or Id / Ref (variant_id, "customerId", <AcctSvcrRef>, <TxId>)
    r"|[a-z0-9]_id|(?-i:[a-z](?:Ref|Id|ID))"
    # an SGML / XML element named in capitals for an id (OFX's <FITID>, <TRNUID>, <SRVRTID>)
    # (not an account's or a card's: in a credit-card statement <ACCTID> is the card number)
    r"|(?-i:<(?!ACCTID|CARDID|CCACCTID)[A-Z][A-Z0-9]{0,20}ID)"
    # a payment's reference on a statement line (Ref 3531635587702635)
    # (then the field's quoting, JSON-escaped too: \"id\": \"340919396192320\")
    r"|\b(?:ref|reference|referenz|r\u00e9f\u00e9rence|referencia|riferimento|verwendungszweck)"
    # and the Nordic and Dutch payment references, which carry a Luhn check digit of their
    # own (a Swedish OCR number, a Norwegian KID, a Finnish viitenumero): OCR 4329150615998258
    r"|\b(?:ocr|kid)(?:[ -]?(?:nummer|nr|no|number|referens))?|\bviite(?:numero)?"
    r"|\b(?:betalings)?kenmerk|\breferens(?:nummer)?|\breferanse(?:nummer)?"
    # a process's or thread's id (Apache's error log: [pid 70364:tid 375283695916899]); not
    # the word thread alone ("posted it in the thread: 4532…" is a card)
    r"|\b(?:pid|ppid|tid|tgid|lwp|thread[ _-]?id)"
    # an order's, an invoice's or a booking's number (Order number: 4539148803436467)
    r"|\b(?:order|invoice|confirmation|booking|reservation|receipt|shipment|tracking"
    r"|transaction|txn)[ _.-]?(?:number|num|no|nr|#)\.?"
    # a national id's or family register's name (Indonesia's NIK and KK are 16 digits, and
    # pass Luhn one time in ten: NIK 4240685962111902)
    r"|\b(?:nik|no\.?\s?kk|npwp|nisn|aadhaa?r|nric|cpf|cnpj|curp|my\s?number)"
    r"|\u500b\u4eba\u756a\u53f7|\u8eab\u4efd\u8bc1\u53f7(?:\u7801)?)"
    r"(?:\W{0,4}|\\{1,3}[\"']\s{0,3}[:=]\s{0,3}\\{1,3}[\"']?)\Z"
    r"|\[[A-Za-z][\w.-]*,(?:\d+,)?\Z"
    # a quantity's name (a JSON field, a metric: "bytes_sent": 4539…, eth0_rx_bytes 4998…) and
    # a Prometheus sample after its labels (…_total{device="eth0"} 4998…)
    r"|(?:bytes|count|total|size|length|duration|offset|seq|sequence|counter|sum|bucket|nanos"
    r"|micros|millis|_ms|_ns|_us|seconds|timestamp|epoch)(?:[_.-][a-z]{1,12})?[\"']?\s{0,3}[:=]?"
    r"\s{0,3}\Z"
    r"|\}\s\Z",
    re.IGNORECASE,
)


# a phone number's field or link: phone=4915112345678, wa.me/4915112345678
_PHONE_BEFORE = re.compile(
    r"\b(?:(?:tele)?phone|tel|mobile|cell|fax|whatsapp|msisdn|sms)(?:[_.-]?(?:no|number|num))?"
    r"\W{0,4}\Z|\bwa\.me/\Z",
    re.IGNORECASE,
)


def _in_url(text: str, i: int) -> bool:
    """Whether position ``i`` lies in a URL that starts within the 300 characters before it
    (no whitespace or quote in between)."""
    seg = text[max(0, i - 300) : i]
    cut = max(seg.rfind(c) for c in " \t\n\"'<>")
    return "://" in seg[cut + 1 :]


_BARCODE_BEFORE = re.compile(
    r"\b(?:ean|gtin|upc|barcode|isbn)(?:[-_ ]?13)?\W{0,4}\Z", re.IGNORECASE
)


@validator("card_context", uses_context=True)
def card_context(value: str, ctx: Ctx | None = None) -> bool:
    """An unseparated number is no card right after an id's name or inside a log line's id
    tuple (Datadog and Sleuth trace and span ids are 16 to 19 digits: one in twenty passes the
    brand and Luhn checks); and one of 12 to 15 (but an Amex's) or 17 to 19 digits needs a
    card word within the 80 characters before it or its expiry date after it."""
    if ctx is None:
        return True
    if not value.isdigit():
        # 12 digits in groups (a Maestro card, or 5018 2345 6789 of anything else)
        return sum(c.isdigit() for c in value) != 12 or _card_said(ctx)
    before = _line_before(ctx, 40)
    if _ID_BEFORE.search(before) or _PHONE_BEFORE.search(before):
        return False
    if ctx.start and ctx.text[ctx.start - 1] == "/":
        if _in_url(ctx.text, ctx.start):
            return False  # an id in a URL's path (a Sentry DSN's project id)
        if ctx.start > 1 and ctx.text[ctx.start - 2].isalnum() and not _card_said(ctx):
            return False  # and in a relative path or a slug: "slug": "submit/501301925635001"
    if len(value) == 15 and value[:2] not in ("34", "37"):
        # 15 digits are an Amex card; from 1 (UATP), 1800 / 2131 (old JCB) or a Maestro
        # range (63…, 57…) they are far more often an id: a SIM's IMSI (MCC 639, Kenya), a
        # NACHA trace number, unless a card word says so
        return _card_said(ctx)
    if len(value) <= 13:
        # an EAN-13 barcode passes Luhn one time in ten, and German ones start with 40-44
        # like a Visa (13-digit Visa cards are long gone); 12 digits are a Maestro card or
        # any id: a card word or an expiry date must say so
        if _BARCODE_BEFORE.search(before):
            return False
        return _card_said(ctx)
    if len(value) == 14:
        # 14 digits are a Diners Club card (or a Maestro one), and as often an Indian bank's
        # account number: HDFC's are 14 digits from 50100 (a Maestro prefix), and one in ten
        # passes Luhn, in every payroll export of an Indian employer
        return _card_said(ctx)
    if len(value) <= 16:
        return True
    return _card_said(ctx)


# right after a card number: its expiry date (4425 4447 7628 9561 684 04/34, exp 12/27)
_EXPIRY_AFTER = re.compile(
    r"[ \t,;|]{1,3}(?:exp\w*[.:]?\s{0,2})?(?:0[1-9]|1[0-2])/(?:\d\d|20\d\d)(?!\d|/)", re.I
)


def _card_said(ctx: Ctx) -> bool:
    """A card word within the 80 characters before the number, or its expiry date after it."""
    if _CARD_WORDS.search(ctx.text, max(0, ctx.start - 80), ctx.start) is not None:
        return True
    return _EXPIRY_AFTER.match(ctx.text, ctx.end, ctx.end + 24) is not None


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


@validator("iban_mod97")
def iban_mod97(value: str, ctx: Ctx | None = None) -> bool:
    s = "".join(c for c in value if c.isalnum()).upper()
    want = _IBAN_LENGTHS.get(s[:2])
    if want is None or not s[2:4].isdigit():
        return False
    if len(s) != want and not 15 <= len(s) <= 34:
        # (a length wrong for its country but passing mod-97 is still reported: test-data
        # generators write such IBANs, GB02FITS9800356129142, and a reader takes them for one)
        return False
    if "XXXX" in s:
        return False  # masked (EE61 XXXX XXXX XXXX 90): mod-97 passes once in 97
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


@validator("ssn")
def ssn(value: str, ctx: Ctx | None = None) -> bool:
    d = "".join(c for c in value if c.isdigit())
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area == "000" or area == "666" or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int = 6) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


@validator("token_crc32", checksum_len=(int, 6))
def token_crc32(value: str, ctx: Ctx | None = None, checksum_len: int = 6) -> bool:
    """GitHub (ghp_/gho_/ghu_/ghs_/ghr_) and npm (npm_) tokens: the last 6 characters are the
    base62 CRC32 of the random part between the prefix and the checksum."""
    i = value.find("_")
    if i < 0:
        return False
    body, check = value[i + 1 : -checksum_len], value[-checksum_len:]
    if not body:
        return False
    return base62(binascii.crc32(body.encode("ascii", "replace"))) == check


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


@validator("bech32")
def bech32(value: str, ctx: Ctx | None = None) -> bool:
    """A bech32 or bech32m string (BIP 173 / 350: Nostr's nsec1…, age's keys) whose checksum
    holds: a made-up or mistyped value fails it."""
    v = value.lower()
    i = v.rfind("1")
    if i < 1 or len(v) - i < 7:
        return False
    hrp, data = v[:i], v[i + 1 :]
    chk = 1
    for x in (
        [ord(c) >> 5 for c in hrp]
        + [0]
        + [ord(c) & 31 for c in hrp]
        + [_BECH32.find(c) for c in data]
    ):
        if x < 0:
            return False
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ x
        for k in range(5):
            if (top >> k) & 1:
                chk ^= _BECH32_GEN[k]
    return chk in (1, 0x2BC830A3)


def _b64url_json(seg: str) -> Any:
    pad = "=" * (-len(seg) % 4)
    try:
        return orjson.loads(base64.urlsafe_b64decode(seg + pad))
    except (ValueError, binascii.Error):
        return None


@validator("jwt")
def jwt(value: str, ctx: Ctx | None = None) -> bool:
    """Three base64url segments; the header decodes to a JSON object with ``alg``. An unsecured
    JWT (RFC 7519 section 6: ``alg: none`` and an empty signature) is none: anyone can write
    one, so it proves nothing (an OpenID example's unsigned id_token, the Firebase Auth
    emulator's tokens)."""
    parts = value.split(".")
    if len(parts) != 3:
        return False
    header = _b64url_json(parts[0])
    if not isinstance(header, dict) or "alg" not in header:
        return False
    if not parts[2] and str(header["alg"]).lower() == "none":
        return False
    payload = _b64url_json(parts[1])
    return isinstance(payload, dict) and not _public_jwt(payload)


def is_demo_jwt(value: str) -> bool:
    """A JWT published as a documented example, the same on every machine: the keys of
    ``supabase start`` (``iss: supabase-demo``); or an unsecured one (``alg: none``, no
    signature), which anyone can write. Every rule drops it, not only ``jwt``: a key-name
    rule sees it under ``apikey:``, ``SUPABASE_ANON_KEY=`` or ``"idToken":``, the bearer rule
    after ``Bearer``."""
    if not value.startswith("eyJ") or value.count(".") != 2:
        return False
    head, body, sig = value.split(".")
    if not sig:
        header = _b64url_json(head)
        if isinstance(header, dict) and str(header.get("alg")).lower() == "none":
            return True
    payload = _b64url_json(body)
    return isinstance(payload, dict) and payload.get("iss") == "supabase-demo"


def _public_jwt(payload: dict) -> bool:
    """A token that is public by design: Supabase's anon key (shipped to every browser, like a
    publishable key; row-level security guards the data) and the local-development keys
    of ``supabase start`` (``iss: supabase-demo``, the same on every machine and in the
    docs). A project's service_role key is a secret."""
    iss = payload.get("iss")
    if iss == "supabase-demo":
        return True
    return iss == "supabase" and payload.get("role") == "anon"


# -- statistical ------------------------------------------------------------------------
def shannon(value: str) -> float:
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


@validator("entropy", min=(float, 3.0))
def entropy(value: str, ctx: Ctx | None = None, min: float = 3.0) -> bool:  # noqa: A002
    return shannon(value) >= min


_ASCII_DIGIT = re.compile(r"[0-9]")


def _classes_by_character(value: str) -> dict[str, bool]:
    return {
        "lower": any(c.islower() for c in value),
        "upper": any(c.isupper() for c in value),
        "digit": any(c.isdigit() for c in value),
        "symbol": any(not c.isalnum() for c in value),
    }


def _classes(value: str) -> dict[str, bool]:
    """Which of lower/upper/digit/symbol ``value`` holds. An ASCII value is told by one call
    in C a class (a word of prose was four generator passes, ~3 us: the most common way the
    charset validator is reached)."""
    if not value.isascii():
        return _classes_by_character(value)
    return {
        "lower": value != value.upper(),
        "upper": value != value.lower(),
        "digit": _ASCII_DIGIT.search(value) is not None,
        "symbol": value != "" and not value.isalnum(),
    }


@validator("charset", min_classes=(int, 2), require=(str, ""))
def charset(value: str, ctx: Ctx | None = None, min_classes: int = 2, require: str = "") -> bool:
    """At least ``min_classes`` of lower/upper/digit/symbol; ``require`` names classes that must
    be present, e.g. ``digit`` or ``lower,upper``."""
    has = _classes(value)
    if sum(has.values()) < min_classes:
        return False
    return all(has.get(r.strip(), False) for r in require.split(",") if r.strip())


# words, also joined by hyphens, dots or apostrophes: Vertraulich, im-Tresor, l'accueil
_WORDS_ONLY = re.compile(r"[^\W\d_]+(?:[-.'\u2019][^\W\d_]+)*")
_NOT_ALNUM = re.compile(r"[\W_]+")


@validator("not_word")
def not_word(value: str, ctx: Ctx | None = None) -> bool:
    """Not a word: a digit, or (eight characters or more) two capitals after the first letter
    of a part (``ejZmfhJEgMWE``, ``ZnG-XpwJbmCSKOZP``) or a symbol that does not just join
    words (``OHbLsFM*gUJMsQE``).
    ``Vertraulich``, ``im-Tresor`` and ``iPhone`` are words."""
    if _ASCII_DIGIT.search(value) or any(c.isdigit() for c in value):
        return True
    if len(value) < 8:
        return False
    if any(sum(c.isupper() for c in part[1:]) >= 2 for part in _NOT_ALNUM.split(value)):
        return any(c.islower() for c in value)
    return not _WORDS_ONLY.fullmatch(value) and any(not c.isalnum() for c in value)


@validator("bitlocker_key")
def bitlocker_key(value: str, ctx: Ctx | None = None) -> bool:
    """Eight groups of six digits, each a multiple of 11 below 720896 (11 * 65536): what a
    BitLocker recovery password is made of. (One random group in eleven passes.)"""
    groups = value.split("-")
    return len(groups) == 8 and all(
        g.isdigit() and int(g) % 11 == 0 and int(g) < 720896 for g in groups
    )


@validator("length", min=(int, 0), max=(int, 1 << 30))
def length(value: str, ctx: Ctx | None = None, min: int = 0, max: int = 1 << 30) -> bool:  # noqa: A002
    return min <= len(value) <= max


# -- placeholders -------------------------------------------------------------------------
# Matched against the lower-cased value, in two parts: the shapes of the whole value, tried
# once at its start, and the telltale substrings, searched. (One case-insensitive pattern
# with both tried every alternative at every position: 16 us a token, 2.5x this.)
_PLACEHOLDER_WHOLE = re.compile(
    r"""(?x)
    (?: \$\{.*\} | \$\(.*\) | \{\{.*\}\} | <[^<>]*> | %[a-z_]+% | \$[a-z_][a-z0-9_]*
    | \[[a-z _:-]*\] | \{[a-z_][\w.]*\} | %\([a-z_]+\)s | %s
    | __[a-z][\w.]*__ | @@?[a-z][\w.-]*@@? | \#\{.*\}
    | &lt;.*&gt; | env:[a-z_][a-z0-9_]* | \\u20[01][0-9a-f] | [\u2012-\u2015-]+
    | changeit | hunter2 | letmein | qwerty\d{0,3} | password\d{0,3}!? | secret\d{0,3}
    | admin\d{0,3} | test\d{0,3} | testing\d{0,3} | 123456\d*
    | (?:user|username):(?:pass|password) | aladdin:open\ sesame
    | (?:client|app|api|consumer|access|secret)[_-]?(?:secret|key|id|token)(?:[_-]?key)?
    | \*\*[a-z][a-z0-9_.-]{0,40}\*\*
    )\n?\Z
    """
)
_PLACEHOLDER_PART = re.compile(
    r"""(?x)
    x{4,} | \*{3,} | •{3,} | …  | \.\.\. | _{4,} | -{4,} | 0{8,}
    | your[_\-\s.]?(?:[a-z]{2,12}[_\-\s.])?(?:api|secret|access|own|real|actual|app|key|token|pass|client|org|account|bot)
    | ^your[_\-.][a-z0-9_.-]{0,40}[_\-.]here$
    | example | redacted | placeholder | changeme | change[_-]me | replace[_-]?(?:me|with|this)
    | put[_\-\s]your | unique[_\-\s]phrase
    | dummy | not[_-]?a[_-]?real | insert[_-]?(?:your|here) | (?:^|[^a-z0-9])fake(?:[^a-z0-9]|$)
    | ^(?:process\.env|os\.environ|env)[.\[]
    | \$\{[a-z_][\w.:-]{0,60}\} | \{\{[^{}]{1,60}\}\} | <[a-z][a-z0-9 _.-]{2,40}>
    """
)
_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiop", "asdfghjkl")
# eight characters in a row of one of them
_SEQUENCE_RE = re.compile(
    "|".join(sorted({q[i : i + 8] for q in _SEQUENCES for i in range(len(q) - 7)}))
)


def is_placeholder(value: str) -> bool:
    low = value.lower()
    if _PLACEHOLDER_WHOLE.match(low) or _PLACEHOLDER_PART.search(low):
        return True
    if len(set(low)) < max(4, min(8, len(value) // 4)):
        return True
    return _SEQUENCE_RE.search(low) is not None


@validator("not_placeholder")
def not_placeholder(value: str, ctx: Ctx | None = None) -> bool:
    return not is_placeholder(value)


# -- context ------------------------------------------------------------------------------
# (a comma, semicolon, quote or bracket ends the URL: a CSV's Website,Username columns
# put https://portal.azure.com,chloe@… right before an address)
# (no backslash: a URL's userinfo holds none, and JSON carried as text writes its line
# breaks as \r\n, "Origin: https://app.example\r\n\r\nemail=ana@…" is two lines)
_URL_USERINFO_BEFORE = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s/@,;\"'<>\\]*\Z", re.I)
# the target of ssh / scp / sftp / rsync / git clone (user@host) is a login, not an address
_LOGIN_TARGET_BEFORE = re.compile(
    r"\b(?:ssh|sftp|mosh|scp|rsync|git\s+clone|ssh-copy-id)(?:\s+-{1,2}[\w-]+(?:[ =][^\s@-]\S*)?)*"
    r"(?:\s+[^\s@]+)?\s+\Z",
    re.I,
)


@validator("not_url_userinfo", uses_context=True)
def not_url_userinfo(value: str, ctx: Ctx | None = None) -> bool:
    """An e-mail-shaped ``user:password@host`` inside a URL, a SIP URI's ``user@host``, or the
    ``user@host`` target of ssh / scp / sftp / rsync / git clone, is not an e-mail address."""
    if ctx is None:
        return True
    before = ctx.text[max(0, ctx.start - 200) : ctx.start]
    # a SIP / H.323 URI's user@host (client_uri=sip:8622189@telnyx.com, <sips:bob@biloxi.com>)
    # is an account of a telephone system, not a mailbox
    if before[-6:].lower().endswith(_URI_NO_MAILBOX):
        return False
    # substring tests first (C speed): the anchored searches below try every start
    if "://" in before and _URL_USERINFO_BEFORE.search(before):
        return False
    near = before[-120:].lower()
    if not any(w in near for w in _LOGIN_WORDS):
        return True
    return not _LOGIN_TARGET_BEFORE.search(before, max(0, len(before) - 120))


_LOGIN_WORDS = ("ssh", "sftp", "mosh", "scp", "rsync", "git")
_URI_NO_MAILBOX = ("sip:", "sips:", "h323:")


# A mail header that holds message ids, not addresses (Message-ID: <CA…@mail.gmail.com>),
# as a header line or as a Gmail API {"name": "Message-ID", "value": "<…>"} pair; then only
# ids in angle brackets up to the value's own "<".
_MSGID_HEADER = re.compile(
    r"(?i)(?:message-id|in-reply-to|references|resent-message-id|content-id|x-ms-exchange"
    r"-[\w-]*message-id|original-message-id|msg-?id)(?:\\{0,3}[\"'])?\s{0,3}"
    r"(?::|,(?:\s|\\[nrt]){0,40}(?:\\{0,3}[\"'])?value(?:\\{0,3}[\"'])?\s{0,3}:)\s{0,3}(?:\\{0,3}[\"'])?"
    r"(?:\s{0,3}<[^<>\s]{1,250}>(?:\s|\\[nrt])*)*<\Z"
)


_ICAL_UID = re.compile(r"(?:^|(?<=\n)|(?<=\\n))UID(?:;[^:\n\\]{1,80})?:\Z")


@validator("not_message_id", uses_context=True)
def not_message_id(value: str, ctx: Ctx | None = None) -> bool:
    """The ``local@domain`` id in a Message-ID / In-Reply-To / References header is no
    e-mail address (it names a message), nor is an iCalendar event's ``UID:`` (Google
    Calendar's ``…@google.com``), nor the value of a field that names one (``"iCalUID"``,
    ``"internetMessageId"``, ``"inReplyTo"``). HTML-escaped brackets (``&lt;…&gt;``) count as
    brackets."""
    if ctx is None or ctx.start == 0:
        return True
    text, start = ctx.text, ctx.start
    if text[start - 1] == ":" and _ICAL_UID.search(text, max(0, start - 100), start):
        return False
    if text[start - 1] != "<":
        if not text.endswith("&lt;", 0, start):
            return not _id_field_before(text, start)
        before = text[max(0, start - 2000) : start].replace("&lt;", "<").replace("&gt;", ">")
    else:
        before = text[max(0, start - 2000) : start]
    low = before.lower()
    if "id" not in low and "references" not in low and "in-reply-to" not in low:
        return True
    k = max(
        low.rfind(w)
        for w in ("message-id", "in-reply-to", "references", "content-id", "msg-id", "msgid")
    )
    if k < 0:
        return not _id_field_before(text, start)
    return _MSGID_HEADER.search(before, max(0, k - 40)) is None


@validator("basic_credentials")
def basic_credentials(value: str, ctx: Ctx | None = None) -> bool:
    """Base64 that decodes to printable ``user:password``."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        s = raw.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    if ":" not in s or not s.isprintable():
        return False
    if s.lower() in _DOC_CREDENTIALS:
        return False
    user, _, pw = s.partition(":")
    if not pw or _FILLER_PASSWORD.fullmatch(pw):
        # an API key as the user and no password (Stripe's and Segment's "KEY:", Chargebee,
        # Recurly), or a filler the service ignores (BambooHR's and Freshdesk's "KEY:x",
        # Toggl's "TOKEN:api_token"): the key is the credential
        return _api_key_user(user)
    return not is_placeholder(pw) and pw.lower() not in ("password", "pass", "secret")


_FILLER_PASSWORD = re.compile(r"(?i)x{1,3}|api_token")


_HEX_KEY = re.compile(r"[0-9a-f]{32,128}|[0-9A-F]{32,128}")


def _api_key_user(user: str) -> bool:
    if _HEX_KEY.fullmatch(user):
        # a hex key's letters are 16: its entropy is at most 4, and one random 40-digit key
        # in twenty falls under 3.5 (BambooHR's are 40 hex digits)
        return shannon(user) >= 3.0 and not is_placeholder(user)
    return (
        len(user) >= 20
        and not any(c.isspace() for c in user)
        and shannon(user) >= 3.5
        and charset(user, None, min_classes=2)
        and not is_placeholder(user)
    )


@validator("sasl_plain")
def sasl_plain(value: str, ctx: Ctx | None = None) -> bool:
    """Base64 of SASL PLAIN's ``authzid NUL authcid NUL password`` (or of a password alone,
    as AUTH LOGIN sends it) whose password is no placeholder: ``NUL alice NUL password`` is
    the textbook example."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        s = raw.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return True  # not text: judged by the other validators
    pw = s.rsplit("\0", 1)[-1]
    if not pw:
        return False
    low = pw.lower()
    return not is_placeholder(pw) and low not in ("password", "pass", "secret", "passwd")


# user:password pairs quoted in RFC 7617, MDN and HTTP tutorials (compared case-insensitively)
_DOC_CREDENTIALS = frozenset(
    (
        "aladdin:open sesame",
        "aladdin:opensesame",
        "test:123\u00a3",
        "username:password",
        "s6bhdrkqt3:gx1fbat3bv",  # RFC 6749's client (czZCaGRSa3F0MzpnWDFmQmF0M2JW)
        "s6bhdrkqt3:7fjfp0zbr1kt",  # OpenID Connect Core's client
    )
)


def _ipv4_value(value: str, ctx: Ctx | None = None) -> bool:
    parts = value.split(".")
    if len(parts) != 4:
        return False
    try:
        o = [int(p) for p in parts]
    except ValueError:
        return False
    if any(x > 255 for x in o) or any(len(p) > 1 and p[0] == "0" for p in parts):
        return False
    if (o[0], o[1], o[2]) in _DOC_NETS:
        return False  # RFC 5737's documentation networks: example values, like example.com
    if value.startswith(_OID_PREFIXES):
        return False
    if o[0] == 10 or (o[0], o[1] & 0xF0) == (172, 16) or (o[0], o[1]) in _LOCAL_NETS:
        return False  # private and link-local networks: the same on every site, no one's
    if o[0] == 100 and 64 <= o[1] < 128:
        return False  # carrier-grade NAT (RFC 6598): shared by a provider's customers
    if o[1] == o[2] == o[3] == 0:
        return False  # a /8 network (Chrome/126.0.0.0: every reduced User-Agent), no host
    return not (o[0] in (0, 127, 255) or o[0] >= 224)  # public resolvers are addresses


_DOC_NETS = frozenset({(192, 0, 2), (198, 51, 100), (203, 0, 113)})
_LOCAL_NETS = frozenset({(192, 168), (169, 254)})
# X.500 attribute types and certificate extensions (2.5.4.11 is organizationalUnitName),
# PKCS and SNMP object ids: written like addresses, never used as one
_OID_PREFIXES = ("2.5.4.", "2.5.29.", "1.2.840.", "1.3.6.1.")


# right after the number, a version's pre-release or build suffix: 5.15.0.91-generic,
# 2.0.0.1-SNAPSHOT, 1.2.3.4~ubuntu1, 4.2.1.0+build7 (an address's range or port is no letter:
# 203.0.113.5-203.0.113.9, 81.6.38.169:443)
# (after a hyphen, a suffix's known word only: an address is written with a host's or a
# site's name after one too, 81.6.38.169-gw1, 81.6.38.169-Frankfurt)
_VERSION_AFTER = re.compile(
    r"[~+][A-Za-z]|-(?:generic|lowlatency|snapshot|release|rc|alpha|beta|dev|pre|preview"
    r"|nightly|final|stable|lts|ga|hotfix|patch|build|ubuntu|debian|deb|el|fc|amzn|oem|kvm"
    r"|raspi|hwe|azure|aws|gcp|amd64|arm64|aarch64|x86_64|i386|i686|noarch|dirty|jre|jdk"
    r"|bin|src|[bmpru]\d|g[0-9a-f]{7})(?![A-Za-z])",
    re.IGNORECASE,
)


def _not_version(value: str, ctx: Ctx | None = None) -> bool:
    if ctx is None:
        return True
    if _VERSION_AFTER.match(ctx.text, ctx.end):
        return False
    before = _line_before(ctx, 48)
    if _VERSION_BEFORE.search(before):
        return False
    low = before.lower()
    if any(w in low for w in _DEPENDENCY_WORDS):
        return not _DEPENDENCY_BEFORE.search(before)
    return True


@validator("ipv4_public", parts=(_ipv4_value, _not_version))
def ipv4_public(value: str, ctx: Ctx | None = None) -> bool:
    """A public address: not 0.0.0.0, loopback, private, link-local, carrier-grade NAT,
    documentation, netmasks, multicast or broadcast; not part of a version string (``v1.2.3.4``, ``version 1.2.3.4``) or an OID."""
    return _ipv4_value(value) and _not_version(value, ctx)


# Right before the number, whole words only: "server 10.0.0.5", "resolver 8.8.8.8",
# "failover to …", "build server 10.0.0.5", "android 10…" are addresses. A version
# (``v1.2.3.4``, ``version: 1.2.3.4``, ``AssemblyVersion("…")``, ``<Version>…``, the second of
# "version from 13.4.27.14 to 18.14.22.5" or of oldVersion="0.0.0.0-5.0.0.0", a ``==`` pin, an
# image's tag, a package's version), an OID, or the number of a section, table, figure,
# release, build or firmware is not.
_Q = r"[\s\"'\\=:>(\[{]*"  # spaces, quotes (JSON-escaped too), =, :, an opening bracket
_VERSION_BEFORE = re.compile(
    r"(?:\bv"
    r"|version" + _Q + r"(?:(?:from|is|to|of|was|now|=)\s+)?"
    r"|version\b[^\n]{0,30}?\d+(?:\.\d+)+"
    + _Q
    + r"(?:to|->|=>|\u2192|and|vs\.?|or|-)"
    + _Q
    + r"|\bver\.?\s*"
    r"|\boid" + _Q + r"|==\s*"
    r"|[\w.-]*/[\w./-]*:"  # an image's tag: ghcr.io/acme/api:14.19.135.154
    r"|[A-Za-z][\w.]*-"  # a package's version: linux-image-5.15.0.103-generic
    # a product token: Chrome/126.0.6478.126, Edg/126.0.2592.87, okhttp/4.12.0.1
    r"|\b(?:[A-Z][A-Za-z-]*|curl|wget|okhttp|node|python-requests|python-httpx|axios|aiohttp"
    r"|go-http-client|dalvik)/"
    r"|(?:\b(?:section|sect|sec|table|tbl|figure|fig|chapter|clause|paragraph|para|article"
    r"|appendix|annex|release|build|firmware|fw|revision|rev|rv|patch|kernel|bios|driver"
    r"|edition)\.?|\u00a7)[\s:#]*"
    # a key's value (firmware=1.19.10.158, "build": "2.1.7.180"), and the words in other
    # languages: versión, versão, versione, versie, wersja, sürüm, バージョン, ファームウェア, 版本,
    # 固件, 버전, 펌웨어, الإصدار
    r"|\b(?:build|firmware|fw|release|revision|rev|kernel|bios|driver|ver)\\{0,3}[\"']?\s{0,3}[=:]"
    r"\s{0,3}\\{0,3}[\"']?"
    r"|(?:\b(?:versi(?:\u00f3n|\u00e3o|one|e)|wersj[ai]|s\u00fcr\u00fcm(?:\u00fc)?)"
    r"|\u30d0\u30fc\u30b8\u30e7\u30f3|\u30d5\u30a1\u30fc\u30e0(?:\u30a6\u30a7\u30a2)?|\u7248\u672c\u53f7?|\u56fa\u4ef6"
    r"|\ubc84\uc804|\ud38c\uc6e8\uc5b4|\u0627\u0644\u0625\u0635\u062f\u0627\u0631)[\s:#=\uff1a]*"
    r")\Z",
    re.IGNORECASE,
)


# a dependency line (gem 'rails', '7.1.3.2') and an upgrade ("Upgrade lib to 3.6.9.14"):
# searched only when one of their words is there
_DEPENDENCY_BEFORE = re.compile(
    r"(?:\bgem\s+['\"][\w.-]+['\"]\s*,\s*['\"](?:[~>=<]+\s*)?"
    # (within one sentence: "PIN 550052. Login attempt from 81.6.38.169" is a code and an
    # address; a dot inside a name or a version, foo.bar, is no sentence's end)
    r"|\b(?:upgrade|upgraded|upgrading|bump|bumped|bumping|downgrade|downgraded|pin|pinned)"
    r"\b(?:[^\n.!?]|[.!?](?!\s)){0,40}?\b(?:to|from|at)\s+"
    # release notes: "regression since 4.1.8.34", "minimum 1.4.9.0", "requires 2.0.0.1"
    r"|\b(?:since|minimum|maximum|requires?|required|at\s+least)\s*[:=]?\s*v?)\Z",
    re.IGNORECASE,
)
_DEPENDENCY_WORDS = ("gem", "grad", "bump", "pin", "since", "mum", "requir", "least")
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_CPF_SHAPE = re.compile(r"^\d{3}\.\d{3}\.\d{3}-\d{2}$")  # a Brazilian CPF: 005.306.542-40
_NANP_SHAPE = re.compile(r"^\(\d{3}\) ?\d{3}-\d{4}$")  # (415) 555-0132: no area code starts with 0
_DATE_START = re.compile(
    r"(?:19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d(?!\d)"
)
_EXTENSION = re.compile(r"\s?(?:x|ext\.?|extension)\s?\d{1,6}$", re.IGNORECASE)
_FICTION = re.compile(r"(?<!\d)555[ .-]?01\d\d$")


# ARCEP's numbers for fiction (France: 01 99 00 xx xx, 02 61 91, 03 53 01, 04 65 71, 05 36 49,
# 06 39 98): reserved, never assigned to anyone, and rare outside French scripts. (Ofcom's drama
# ranges, 01632 960xxx, 07700 900xxx, 0161 496 0xxx…, are reported: they are every UK number
# that Faker's en_GB generator writes, and test data stands for real customers' numbers.)
_FR_FICTION_PAIRS = ("19900", "26191", "35301", "46571", "53649", "63998")


def _reserved_national(value: str, digits: str) -> bool:
    """A French number from a range reserved for fiction, written internationally
    (+33 1 99 00 12 34) or nationally (01 99 00 12 34)."""
    v = value.lstrip()
    if v.startswith(("+33", "0033")):
        nsn = digits[2:] if v.startswith("+") else digits[4:]
        nsn = nsn[1:] if nsn.startswith("0") else nsn
        return len(nsn) == 9 and nsn[:5] in _FR_FICTION_PAIRS
    if v.startswith(("0", "(0")) and not v.startswith("00"):
        # nationally, only with the country's own grouping of two digits
        nsn = digits[1:]
        first = re.match(r"\(?(\d+)", v).group(1)
        return (
            len(nsn) == 9 and nsn[:5] in _FR_FICTION_PAIRS and (len(first) == 2 or first == digits)
        )
    return False


def _fictional(value: str, digits: str) -> bool:
    """555-0100 to 555-0199, reserved for fiction and examples: written with separators
    (555-0127, +44 555 0123) or as a North American number without them (+17335550151,
    18005550199, the URL-encoded From=%2B1... of a webhook); the magic numbers of Twilio's
    test credentials, +15005550006; France's numbers for fiction (+33 1 99 00 12 34)."""
    if _FICTION.search(value):
        return True
    if _reserved_national(value, digits):
        return True
    if value.startswith("+") and not value.startswith("+1"):
        return False
    nanp = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(nanp) == 10 and nanp.startswith("500555000"):
        return True  # Twilio's documented test numbers, +1 500 555 0000 to 0009
    return len(nanp) == 10 and nanp[0] in "23456789" and nanp[3:8] == "55501"


_AU_LOCAL_RATE = re.compile(r"^1[38]00[ -]?\d{3}[ -]?\d{3}$")
_DATE_LIKE = re.compile(
    r"^(?:19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d$"
)


_IPV4_SHAPE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# a group of its own that counts up from 1 (12345, 1234567): what documentation and templates
# write for a subscriber number. Not inside a longer group: 4915112345678 is a number.
_PLACEHOLDER_GROUP = re.compile(r"(?<!\d)(?:123456789|12345678|1234567|123456|12345)(?!\d)")
# ... or split into two groups of four after the prefix (five for a mobile's leading 9), as
# the forms and guides of Japan, Korea and Brazil write their example numbers: 090-1234-5678,
# 010-1234-5678, +55 11 91234-5678 (a number that really ends so is one in a hundred million;
# 612 345 678, 06 12 34 56 78 and 06 30 123 4567 are numbers)
_PLACEHOLDER_TAIL = re.compile(r"(?<!\d)9?1234[ .-]5678\Z")
# the example numbers of a country's documentation: China Mobile's 138 0013 8000
_FAMOUS_PHONES = ("13800138000",)
_IBAN_HEAD_BEFORE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: [A-Z0-9]{4}){1,7} \Z")
# the number goes on in mask characters: +44 20 7946 0XXX, 0171 23••••• (a masked number);
# not one bullet after a space, a separator: "Tel: +44 20 7946 0958 • jane@example.org"
_MASKED_TAIL = re.compile(r"[ .-]?\d{0,4}(?:[Xx]{2}|[\u2022\u25cf]{2})|\d{0,4}[\u2022\u25cf]")


@validator("phone", uses_context=True)
def phone(value: str, ctx: Ctx | None = None) -> bool:
    """7-15 digits, not a date, not a version, not one long undivided number without context;
    after a phone label (``tel 21734250``), any such number."""
    value = _EXTENSION.sub("", value)  # 678.493.2879x217, (415) 555-0132 ext. 12
    digits = "".join(c for c in value if c.isdigit())
    if not 7 <= len(digits) <= 15:
        return False
    if _DATE_LIKE.match(value.strip()):
        return False
    if len(set(digits)) < 3:
        return False
    if len(digits) - len(digits.rstrip("0")) >= 7:
        return False  # a placeholder: an area code, then zeros (069 0000 0000)
    if _SSN_SHAPE.match(value) or _IPV4_SHAPE.match(value) or _CPF_SHAPE.match(value):
        return False
    if _PLACEHOLDER_GROUP.search(value):
        return False  # a textbook number: +49 30 12345-0, (030) 123456-78, 0171 1234567
    if "1234" in value and _PLACEHOLDER_TAIL.search(value.rstrip()):
        return False  # the same in groups: 090-1234-5678, +971 50 123 4567
    if digits.endswith(_FAMOUS_PHONES):
        return False
    if _reserved_national(value, digits):
        return False  # France's numbers for fiction: 01 99 00 12 34
    if ctx is not None and _IBAN_HEAD_BEFORE.search(ctx.text, max(0, ctx.start - 40), ctx.start):
        return False  # the tail of an IBAN written in groups (NL91 ABNA 0417 1643 00)
    if ctx is not None and _MASKED_TAIL.match(ctx.text, ctx.end):
        return False  # masked: the rest of the number is X or bullets
    m = ctx.match if ctx is not None else None
    if m is not None and "label" in m.re.groupindex and m.group("label") is not None:
        # Phone: 81 71 72 95, tel (044) 2174300; not "at 2024-11-21 10:30"
        return not _fictional(value, digits) and not _DATE_START.match(value)
    if (value.startswith("(0") and not _NANP_SHAPE.match(value)) or value.startswith("0 ("):
        return 9 <= len(digits) <= 12  # an area code with its trunk 0 in parentheses
    if value.startswith("(") and value.find(")") == 3:
        return 9 <= len(digits) <= 11  # a two-digit area code: Brazil, Australia, Poland
    if _fictional(value, digits):
        return False  # 555-0100 to 555-0199: reserved for fiction and examples
    if _AU_LOCAL_RATE.match(value):
        return True  # Australia's 1300 / 1800 numbers (a NANP area code never starts with 1)
    if value.startswith("00"):  # international prefix written as 00
        return 11 <= len(digits) <= 17
    if digits[0] == "0" and not value.startswith(("+", "(")):
        return 9 <= len(digits) <= 12  # national format with a trunk prefix
    if value.startswith("+"):
        return len(digits) >= 8
    nanp = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(nanp) == 10:
        # NANP: an area code does not start with 0 or 1. (Nor does an exchange, but fake and
        # example numbers written by people break that rule: 555-123-4567 is a phone number
        # to anyone reading it.)
        return nanp[0] not in "01"
    return len(digits) >= 9


# E.164 country codes (ITU-T), with the lengths of the national number after them where they
# are fixed; elsewhere 6 to 12 digits
_E164_FIXED = {
    cc: tuple(range(int(lo), int(hi or lo) + 1))
    for cc, lo, hi in re.findall(
        r"(\d+):(\d+)(?:-(\d+))?",
        """1:10 7:10 20:9-10 27:9 30:10 31:9 32:8-9 33:9 34:9 36:8-9 39:6-11 40:9 41:9 43:4-13
        44:9-10 45:8 46:7-9 47:8 48:9 49:6-13 51:8-9 52:10 54:10-11 55:10-11 56:9 57:10
        60:8-10 61:9 62:8-12 63:10 64:8-10 65:8 66:8-9 81:9-10 82:8-10 84:9-10 86:10-11 90:10
        91:10 92:10 94:9 351:9 353:7-9 358:6-10 380:9 420:9 852:8 966:9 971:8-9 972:8-9""",
    )
}
_E164_CODES = frozenset(
    """20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63
    64 65 66 81 82 84 86 90 91 92 93 94 95 98 211 212 213 216 218 220 221 222 223 224 225 226
    227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 248 249 250
    251 252 253 254 255 256 257 258 260 261 262 263 264 265 266 267 268 269 290 291 297 298 299
    350 351 352 353 354 355 356 357 358 359 370 371 372 373 374 375 376 377 378 380 381 382 383
    385 386 387 389 420 421 423 500 501 502 503 504 505 506 507 508 509 590 591 592 593 594 595
    596 597 598 599 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 689 690
    691 692 850 852 853 855 856 880 886 960 961 962 963 964 965 966 967 968 970 971 972 973 974
    975 976 977 992 993 994 995 996 998""".split()
)


@validator("e164")
def e164(value: str, ctx: Ctx | None = None) -> bool:
    """Digits written without their ``+`` that form an international number: a known country
    code, and a national number of that country's length (WhatsApp's ``wa_id``, an SMS API's
    ``to`` and ``recipient``). Not the numbers reserved for fiction (+1 555 01xx)."""
    digits = value.lstrip("+")
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
        return False
    if _fictional("+" + digits, digits):
        return False
    if len(set(digits)) < 4:
        return False
    if digits[0] in "17":
        return len(digits) == 11 and (digits[0] == "7" or digits[1] not in "01")
    for n in (2, 3):
        cc = digits[:n]
        if cc in _E164_FIXED:
            return len(digits) - n in _E164_FIXED[cc]
        if cc in _E164_CODES:
            return 6 <= len(digits) - n <= 12
    return False


# Right before a number, the name of a reference: Ref. 0692 1216 5242, AWB 024-83176052
_REFERENCE_BEFORE = re.compile(
    r"\b(?:ref|reference|awb|invoice|inv|order|tracking|ticket|case|acct|account|policy|serial"
    # a parcel's number (parcel 1800065040 is no toll-free number)
    r"|parcel|shipment|waybill|consignment"
    r"|s/n|sku|lot|batch|part|model|meter|z\u00e4hlernummer|kundennummer|rechnungsnummer"
    r"|facture|factura|fattura|factuur|factuurnummer|factuurnr|rechnung|n\u00b0"
    r"|auftragsnummer|bestellnummer|vertragsnummer|referenz|r\u00e9f\u00e9rence|n\u00ba|nr"
    # part, article and file numbers in other languages: Teilenr. 028 2175 7683, Art.-Nr.,
    # num\u00e9ro de dossier : 0941-4906-6743, expediente, pedido, commande, ordine, pratica
    r"|teilenr|teilenummer|artikelnr|artikelnummer|art\.?-nr|best\.?-nr|bestellnr|kundennr|vertragsnr"
    r"|dossier|expediente|pedido|commande|bestelling|ordine|pratica"
    # No. / No: / No 123, not the Portuguese or Spanish "no" (me liguem no +55 …)
    r"|(?-i:No|NO)|no(?=[.:#])"
    # tax and form numbers: an EIN is NN-NNNNNNN, and a W-2's control number 5-4
    r"|ein|tin|fein|itin|vat|identification\s+number|control\s+(?:number|no)"
    # a purchase order (PO 0073-8847-381, P.O. #…)
    r"|(?-i:PO|P\.O\.)|purchase\s+order"
    # product, drug and device codes: NDC 08783-1104-18 (a National Drug Code's 5-4-2),
    # PZN, UPC / EAN / GTIN, ISBN, a prescription's Rx#, a prescriber's NPI / DEA, an IMEI
    r"|ndc|pzn|upc|ean|gtin|isbn|issn|rx|npi|dea|mrn|imei|iccid|imsi|asin|vin"
    # health-service numbers: the NHS number is 3-3-4 digits (NHS number: 485 777 3456)
    r"|nhs|medicare"
    r"|tax\s+id)"
    # (the name may go on: Case number, order no., ticket ID)
    r"\b(?:[\s_-]{1,2}(?:number|num|nr|id)\b)?[.:#\s)-]{0,4}(?:\d{1,3}\s)?"
    # (not Indonesian "No HP" / "No WA": the number of a mobile)
    r"(?:(?!(?i:hp|wa|telp?)\s)[A-Z]{1,4}\s)?\Z",
    re.IGNORECASE,
)


# The names of references, case and ticket numbers and company tax numbers in other languages
# and scripts: Referencia 0135 0494 47, Aktenzeichen, SIREN 035 410 754, NIP, Vergi No, 工单号,
# お問い合わせ番号, 문의 번호, 사업자등록번호 (a Korean business number is 3-2-5 digits), رقم الطلب;
# not 電話番号, 手机号, 전화번호: those name a phone. Matched on the reversed text at its start
# (one attempt, not a search from every position: _REFERENCE_BEFORE's search already costs
# the most of a phone number's confirmation in dense text)
_REFERENCE_NAMES = (
    "r\u00e9f referencia refer\u00eancia riferimento referentie kenmerk referans protocolo"
    " protocollo sygnatura aktenzeichen az. vorgangsnummer ticketnummer sendungsnummer"
    " inventarnummer seriennummer personalnummer mitgliedsnummer versichertennummer siren"
    " siret tva nif cif nip regon krs cnpj p.iva p._iva partita_iva codice_fiscale kvk"
    " btw-nummer btwnummer btw-nr rsin steuernummer steuer-id steuerid ust-idnr ustidnr ust-id"
    " ustid vergi vergi_no vergi_numaras\u0131 tc_kimlik tc_kimlik_no gstin abn acn arbn uen"
    # Vietnamese codes (mã: code), citizen ids: Mã yêu cầu 0742-6088-0501, Mã đơn hàng …
    " m\u00e3_y\u00eau_c\u1ea7u m\u00e3_\u0111\u01a1n_h\u00e0ng m\u00e3_v\u1eadn_\u0111\u01a1n"
    " m\u00e3_s\u1ed1_thu\u1ebf m\u00e3_kh\u00e1ch_h\u00e0ng m\u00e3_\u0111\u1eb7t_ph\u00f2ng"
    " m\u00e3_tra_c\u1ee9u m\u00e3_h\u1ed3_s\u01a1 cccd cmnd"
    # a bank account's number (not an IBAN): Kontonummer 072-186668-47, numéro de compte …
    " kontonummer kontonr konto-nr rekeningnummer rekeningnr num\u00e9ro_de_compte"
    " n\u00b0_de_compte n\u00famero_de_cuenta numero_di_conto numero_del_conto"
    " n\u00famero_de_conta n.\u00ba_de_conta"
).split()
_REFERENCE_NAMES_SCRIPTS = (
    "\u5de5\u5355\u53f7 \u8ba2\u5355\u53f7 \u5355\u53f7 \u7f16\u53f7 \u5de5\u53f7 \u6848\u53f7 \u7a0e\u53f7"
    " \u53d1\u7968\u53f7\u7801 \u4fe1\u7528\u4ee3\u7801 \u6ce8\u6587\u756a\u53f7 \u554f\u3044\u5408\u308f\u305b\u756a\u53f7"
    " \u7ba1\u7406\u756a\u53f7 \u8acb\u6c42\u66f8\u756a\u53f7 \u4f1d\u7968\u756a\u53f7 \u767b\u9332\u756a\u53f7"
    " \u6cd5\u4eba\u756a\u53f7 \u4f1a\u54e1\u756a\u53f7 \u9867\u5ba2\u756a\u53f7 \u793e\u54e1\u756a\u53f7"
    " \u88fd\u9020\u756a\u53f7 \u53d7\u4ed8\u756a\u53f7 \u4e88\u7d04\u756a\u53f7 \ubb38\uc758_\ubc88\ud638"
    " \uc8fc\ubb38_\ubc88\ud638 \uc1a1\uc7a5_\ubc88\ud638 \uc6b4\uc1a1\uc7a5_\ubc88\ud638"
    " \uc0ac\uc5c5\uc790_\ub4f1\ub85d_\ubc88\ud638 \uace0\uac1d_\ubc88\ud638 \uad00\ub9ac_\ubc88\ud638"
    " \uc608\uc57d_\ubc88\ud638 \uc811\uc218_\ubc88\ud638 \uacc4\uc88c_\ubc88\ud638 \uccad\uad6c\uc11c_\ubc88\ud638"
    " \u0631\u0642\u0645_\u0627\u0644\u0637\u0644\u0628 \u0631\u0642\u0645_\u0627\u0644\u062a\u0630\u0643\u0631\u0629"
    " \u0631\u0642\u0645_\u0627\u0644\u0645\u0644\u0641 \u0631\u0642\u0645_\u0627\u0644\u0634\u062d\u0646\u0629"
    " \u0631\u0642\u0645_\u0627\u0644\u0641\u0627\u062a\u0648\u0631\u0629 \u0627\u0644\u0645\u0631\u062c\u0639"
    # national ids the vocabulary has no type for (a Japanese My Number is 4-4-4 digits):
    # 個人番号, マイナンバー, 身份证号(码), 주민등록번호
    " \u500b\u4eba\u756a\u53f7 \u30de\u30a4\u30ca\u30f3\u30d0\u30fc \u8eab\u4efd\u8bc1\u53f7"
    " \u8eab\u4efd\u8bc1\u53f7\u7801 \uc8fc\ubbfc\ub4f1\ub85d_\ubc88\ud638"
).split()


def _reversed_names(names: list[str]) -> str:
    """An alternation of ``names`` written backwards, longest first ("_" is an optional space,
    as in 문의 번호 and 문의번호)."""
    out = []
    for n in sorted(names, key=len, reverse=True):
        out.append("".join(r"\s?" if c == "_" else re.escape(c) for c in reversed(n)))
    return "|".join(out)


# (reversed: an optional number of up to three digits, the separators, then the name; a name
# in Latin letters is a whole word. Not "BTW" alone, even in capitals: it is "by the way" as
# often, and "BTW 0412 345 678 is my new mobile" was silent; BTW-nummer, BTW-nr name the VAT)
_REFERENCE_REVERSED = re.compile(
    r"(?:\s\d{1,3})?[.:#\s)\uff1a-]{0,4}(?:(?:"
    + _reversed_names(_REFERENCE_NAMES)
    + r")(?!\w)|"
    + _reversed_names(_REFERENCE_NAMES_SCRIPTS)
    + ")",
    re.IGNORECASE,
)


# (every space the expression's \s reads: French puts a no-break space before its colon,
# "SIREN\u00a0: 035 410 754", Japanese an ideographic one, U+3000)
_REFERENCE_SEPARATORS = ".:#)-\uff1a" + "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _reference_named(before: str) -> bool:
    """``before`` ends with one of _REFERENCE_NAMES (and separators, perhaps a short number):
    only a letter there is worth the regular expression (a list of numbers has a digit)."""
    t = before.rstrip(_REFERENCE_SEPARATORS)
    if t[-1:].isdigit():
        u = t.rstrip("0123456789")
        if len(t) - len(u) > 3 or not u[-1:].isspace():
            return False
        t = u.rstrip(_REFERENCE_SEPARATORS)
    if not t[-1:].isalpha():
        return False
    return _REFERENCE_REVERSED.match(before[::-1]) is not None


# ... unless that "No." is a phone's: Phone no. (203) 473-6595, Tel. No: 0612 345 678
_PHONE_NO_BEFORE = re.compile(
    r"\b(?:phone|tel|telephone|mobile|mob|cell|fax|contact|ph)\.?[\s_-]?(?:no|nr)\b[.:#\s]{0,4}\Z",
    re.IGNORECASE,
)


# Right before a value, the name of its field: a JSON / YAML / form key ("orderId": ",
# \"orderId\": \", order_no=) or an XML element (<cbc:BuyerReference>)
_FIELD_BEFORE = re.compile(
    r"(?:<(?:[A-Za-z][\w-]{0,20}:)?(?P<tag>[A-Za-z][\w.-]{0,60})(?:\s[^<>\n]{0,80})?>"
    r"|(?<![\w.-])(?P<key>[A-Za-z][\w.-]{0,60})\\{0,3}[\"']?\s{0,3}(?::|=>?)\s{0,3}"
    r"\\{0,3}[\"']?)\s{0,2}\Z"
)
# ... that names an id or a reference, not a phone number: orderId, order_id, BuyerReference,
# trackingNumber, invoice_no, sku (and a WhatsApp phone_number_id is an id too)
_ID_FIELD = re.compile(
    r"(?:^|[_.-])(?i:id|ids|uuid|guid|ref|reference|sku|ean|gtin|upc|isbn|ndc|asin)\Z"
    # a company's or a taxpayer's number (Australia's ABN, ACN, ARBN, TFN; an EIN, an NPI):
    # "fund_abn": "…", "acn": "051 775 556"
    r"|(?:^|[_.-])(?i:abn|acn|arbn|tfn|ein|npi)\Z"
    r"|[a-z0-9](?:Id|ID|Ids|IDs|Uuid|UUID|Ref|Reference|Sku|SKU)\Z"
    r"|(?i:order|invoice|tracking|shipment|ticket|case|account|acct"
    r"|customer|policy|claim|serial|batch|lot|part|model|booking|reservation|confirmation"
    r"|parcel|package|waybill|consignment|transaction|txn|payment|receipt|contract|item"
    r"|product|article|registration|licen[cs]e|patient|record|employee|member|voucher|coupon"
    r"|buyer|seller|purchase[_.-]?order)(?i:[_.-]?(?:number|num|no|nr|code|ref|reference))\Z"
)
# (RADIUS Calling-Station-Id / Called-Station-Id, a caller id and WhatsApp's wa_id are numbers)
_CALLER_ID = re.compile(
    r"(?i)(?:call(?:er|ee|ing|ed)?(?:[_.-]?station)?|wa)[_.-]?id\Z|(?:^|[_.-])(?:ani|dnis)\Z"
)


def _id_field(ctx: Ctx) -> bool:
    """The value is the whole value of a field that names an id or a reference."""
    m = _FIELD_BEFORE.search(_line_before(ctx, 96))
    if m is None:
        return False
    name = m.group("tag") or m.group("key")
    return _ID_FIELD.search(name) is not None and _CALLER_ID.search(name) is None


@validator("not_reference", uses_context=True)
def not_reference(value: str, ctx: Ctx | None = None) -> bool:
    """Not right after the name of a reference number (an order, an invoice, a waybill, a
    meter, a drug's NDC), nor the value of a field named as an id or a reference
    (``"orderId": "01-51191-39345"``, ``<cbc:BuyerReference>05-71756-55<``) unless written
    with its international ``+``: those are numbers that look like phone numbers."""
    if ctx is None:
        return True
    before = _line_before(ctx, 32)
    if (
        _REFERENCE_BEFORE.search(before) is not None or _reference_named(before)
    ) and _PHONE_NO_BEFORE.search(before) is None:
        return False
    return value.startswith("+") or not _id_field(ctx)


# -- a value's column in a table --------------------------------------------------------
_CELL_DELIMITERS = ("\t", "|", "\u2502", ",", ";")  # in this order on a tie
_CELL_EDGE = frozenset("\t|\u2502,;\n\r")
_BLANK_LINE = re.compile(r"(?>\r\n|\n|\r|\\r\\n|\\n|\\r)[ \t]*(?>\r\n|\n|\r|\\r\\n|\\n|\\r)")
_ESCAPES = (("\\r\\n", "\n"), ("\\n", "\n"), ("\\r", "\n"), ("\\t", "\t"), ('\\"', '"'))
_TABLE_LOOKBACK = 8000  # characters before the value searched for its header
# a line of source code read as a comma-separated row: an indented line of a list or of a
# call's arguments that goes on below ("    'pp_Indent', 'pp_IntCh', 'pp_IntFmt',"), a method
# call (self.assertEqual(out, expected)) or an assignment (password, salt, rounds = vector)
# (linear: the call's names start at a word's start and are bounded, the line is cut; an
# unanchored [A-Za-z_]\w*\. took 13 s on 100 KB of letters)
_CODE_LINE = re.compile(
    r"^[ \t]+\S.*,[ \t]*(?:#.*|//.*)?$"
    r"|(?<![\w.])[A-Za-z_]\w{0,80}+\.[A-Za-z_]\w{0,80}+\("
    r"|^[ \t]*[A-Za-z_][\w.]{0,80}+(?:[ \t]*,[ \t]*[A-Za-z_][\w.]{0,80}+)*[ \t]*=[ \t]"
)
_CODE_LINE_MAX = 1000  # characters of a line looked at (code lines are shorter)
_LINE_MAX = 2000  # characters of a table's row


def _unescape_lines(text: str) -> str:
    """JSON carried as text: its \\n, \\t and \\" escapes as the characters they stand
    for, so that the lines and cells of a table inside a JSON string can be read."""
    if "\\" in text:
        for a, b in _ESCAPES:
            text = text.replace(a, b)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_start(text: str, i: int, lo: int) -> int:
    """Where the line holding ``text[i]`` starts (after a real or an escaped line break, or
    at ``lo``); -1 if it starts before ``lo``."""
    a = max(text.rfind("\n", lo, i), text.rfind("\r", lo, i))
    b = max(text.rfind("\\n", lo, i), text.rfind("\\r", lo, i))
    if a < 0 and b < 0:
        return -1
    return max(a + 1, b + 2 if b >= 0 else 0)


def _line_end(text: str, i: int, hi: int) -> int:
    ends = [j for j in (text.find(c, i, hi) for c in ("\n", "\r", "\\n", "\\r")) if j >= 0]
    return min(ends) if ends else hi


def _edge(text: str, i: int, step: int) -> bool:
    """Whether a cell ends at ``i`` going by ``step`` (-1: before the value, +1: after it):
    past spaces and quotes (also escaped), a delimiter, a line break (also escaped), or the
    text's end."""
    n = len(text)
    while 0 <= i < n:
        c = text[i]
        if c == "\\":
            if step > 0 and text[i + 1 : i + 2] in ("n", "r", "t"):
                return True  # an escaped line break or tab after the value
        elif c == '"' and step > 0 and text[i - 1] != "\\":
            return True  # the end of a JSON string (or of a quoted cell)
        elif c not in " \"'`":
            break
        i += step
    else:
        return True
    c = text[i]
    if c in _CELL_EDGE:
        return True
    return step < 0 and c in "nrt" and i > 0 and text[i - 1] == "\\"


def _cells(line: str, delim: str) -> list[str]:
    if delim in ",;" and '"' in line:
        try:
            return next(csv.reader([line], delimiter=delim), [])
        except csv.Error:
            pass
    return line.split(delim)


# pg_dump's data section: COPY table (col, col, …) FROM stdin; then one tab-separated row a line
_COPY_HEADER = re.compile(r"\s*COPY\s+[^\s(]{1,200}\s*\(([^()\n]{1,4000})\)\s+FROM\s+stdin\b", re.I)


def _header_cells(line: str, delim: str) -> list[str]:
    """A header row's cells. Confluence and Jira wiki tables mark header cells with a
    double bar (``|| Host || Password ||``) and the rows' cells with one; pg_dump names a
    COPY block's tab-separated columns in its COPY line; a Zeek log (http.log, ftp.log) names
    its tab-separated columns after ``#fields``, a cell the rows do not have."""
    if delim == "|" and line.lstrip(" \t\"'`").startswith("||"):
        return line.split("||")
    if delim == "\t" and line.startswith("#fields\t"):
        return line.split("\t")[1:]
    if delim == "\t" and "COPY" in line[:40].upper():
        m = _COPY_HEADER.match(line)
        if m is not None:
            return [c.strip().strip('"') for c in m.group(1).split(",")]
    return _cells(line, delim)


class _TableCache:
    """What ``column_header`` learns about one text, kept while the engine confirms the
    candidates of that text (one text at a time): where header words are, and where the
    table below each ends. Without it a 5,000-row CSV cost ~0.25 ms per row."""

    __slots__ = ("key", "hits", "ends", "heads")

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.hits: list[int] = []
        # header word -> (the first blank line after its line, or -1 if none up to: where
        # it was searched to)
        self.ends: dict[int, tuple[int, int]] = {}
        self.heads: dict[tuple[int, str, bool], list[str]] = {}

    def of(self, text: str, word: re.Pattern) -> _TableCache:
        key = (id(text), len(text), text[:48], text[-48:], word.pattern)
        if key != self.key:
            self.key = key
            self.hits = [m.start() for m in word.finditer(text.lower())]
            self.ends = {}
            self.heads = {}
        return self


_TABLES = threading.local()  # one cache per thread: engines may scan on several


def column_header(ctx: Ctx, header: re.Pattern, word: re.Pattern) -> bool:
    """Whether the value of ``ctx`` is a whole cell of a table (CSV, TSV, Markdown, psql or
    box-drawing output; also inside a JSON string) whose column's header matches ``header``.
    ``word`` finds (in lower case) where such a header may be: the nearest one above the
    value is its table's, if no blank line lies between them."""
    text, s, e = ctx.text, ctx.start, ctx.end
    if _after_tag(text, s) and _html_column(text, s, e, header):
        return True  # a cell of an HTML table
    # (else read as a text table's cell: a CSV row's first cell follows the line break after
    # the row above, which may end in a '>': "alice,<alice@example.org>")
    if not (_edge(text, s - 1, -1) and _edge(text, e, 1)):
        return False  # not a whole cell (the common case: an id in JSON, a number in text)
    ls = _line_start(text, s, max(0, s - _LINE_MAX))
    if ls < 0:
        return False  # no line break near: not a table's row
    cache = getattr(_TABLES, "cache", None)
    if cache is None:
        cache = _TABLES.cache = _TableCache()
    tables = cache.of(text, word)
    hits = tables.hits
    k = bisect.bisect_left(hits, ls)
    near = [h for h in hits[max(0, k - 6) : k] if h >= ls - _TABLE_LOOKBACK]
    if not near:
        return False
    le = _line_end(text, e, min(len(text), e + _LINE_MAX))
    in_json = ls >= 2 and text[ls - 2] == "\\"  # the row follows an escaped line break
    if in_json:
        q = _unescaped_quote(text[e:le], last=False)  # where the JSON string ends
        le = e + q if q >= 0 else le
    row = _unescape_lines(text[ls:s]) + "\x00" + _unescape_lines(text[e:le])
    counts = [(row.count(d), -i, d) for i, d in enumerate(_CELL_DELIMITERS)]
    n, _, delim = max(counts)
    if n == 0:
        return False
    if delim == "," and _CODE_LINE.search(row.replace("\x00", text[s:e])[:_CODE_LINE_MAX]):
        return False  # a line of code, not a table's row
    cells = _cells(row, delim)
    index = next((i for i, c in enumerate(cells) if "\x00" in c), None)
    if index is None or cells[index].strip().strip("\"'`").strip() != "\x00":
        return False  # the value is not the whole cell
    if sum(1 for c in cells if c.strip()) < 2:
        return False  # one value a line: a list (pretty-printed JSON), not a table
    for hp in reversed(near):  # "ssn" inside a word of a row above: try a few
        if in_json and _unescaped_quote(text[hp:ls], last=False) >= 0:
            continue  # in another JSON string than the value
        # Whether a blank line lies between the header's line and the value's: searched
        # only that far, and on from there for a later value (searched to the text's end for
        # each header, thousands of small tables in one text cost seconds: 10,000 took 15 s)
        blank, seen = tables.ends.get(hp, (-1, -1))
        if blank < 0 and seen < ls:
            start = _line_end(text, hp, min(len(text), hp + _LINE_MAX)) if seen < 0 else seen - 8
            m = _BLANK_LINE.search(text, max(start, hp), min(len(text), ls + 8))
            blank, seen = (m.start(), len(text)) if m else (-1, ls)
            tables.ends[hp] = (blank, seen)
        if 0 <= blank < ls:
            return False  # the table with that header ended above the value
        got = tables.heads.get((hp, delim, in_json))
        if got is None:
            he = _line_end(text, hp, ls)
            hs = _line_start(text, hp, max(0, hp - _LINE_MAX))
            hs = hs if hs >= 0 else max(0, hp - _LINE_MAX)
            if in_json:
                q = _unescaped_quote(text[hs:hp], last=True)  # the JSON string opens there
                hs = hs + q + 1 if q >= 0 else hs
            hline = _unescape_lines(text[hs:he])
            code = delim == "," and _CODE_LINE.search(hline[:_CODE_LINE_MAX])
            got = [] if code else _header_cells(hline, delim)
            tables.heads[(hp, delim, in_json)] = got
        if sum(1 for c in got if c.strip()) < 2:
            continue  # a line with one word: no table's header
        if index < len(got) and header.match(got[index].strip().strip("\"'`*").strip()):
            return True
    return False


# -- a value's column in an HTML table -------------------------------------------------
# <table><tr><th>User</th><th>Password</th></tr><tr><td>alice</td><td>VALUE</td></tr>: also
# with attributes, <thead>/<tbody>, line breaks between the tags (escaped too: JSON carried
# as text) and the inline elements an editor wraps a cell's text in (Confluence's storage
# format puts a <p> in every cell)
_INLINE = r"(?:p|span|code|strong|b|em|i|u|kbd|tt|samp|div|font|mark|small)"
_GAP = r"(?:\s++|\\[nrt])"
_HTML_CELL_BEFORE = re.compile(
    r"(?i)<t[dh](?:\s[^<>]{0,200})?>(?:" + _GAP + r"|<" + _INLINE + r"(?:\s[^<>]{0,100})?>){0,12}"
)
_HTML_CELL_AFTER = re.compile(r"(?i)(?:" + _GAP + r"|</" + _INLINE + r"\s*>){0,12}</t[dh]\s*>")
_HTML_CELL_OPEN = re.compile(r"(?i)<t[dh](?=[\s>])([^<>]{0,400})>")
# (a cell's text reads up to the next cell's tag, not on through 2,000 characters from each
# <td> of a header row whose cells are never closed: 2,000 <td> cost 4M steps each table)
_HTML_CELL = re.compile(
    r"(?is)<t[dh](?=[\s>])([^<>]{0,400})>((?:[^<]|<(?!/?t[dh]\b)){0,2000}+)</t[dh]\s*>"
)
_HTML_TAG = re.compile(r"<[^<>]{0,400}>")
_HTML_COLSPAN = re.compile(r"(?i)colspan\s*=\s*\\{0,3}[\"']?(\d{1,2})")
_HTML_CELL_LOOKBACK = 600  # characters between a cell's <td> and its value (attributes, tags)
_HTML_ROW_MAX = 8000  # characters of a row before the value's cell
_HTML_HEADERS = threading.local()  # (text, table start) -> its first row's cells


def _after_tag(text: str, s: int) -> bool:
    """Whether the value at ``s`` follows a tag (past spaces and escaped line breaks)."""
    j = s - 1
    lo = max(0, s - _HTML_CELL_LOOKBACK)
    while j >= lo:
        c = text[j]
        if c in " \t\r\n":
            j -= 1
        elif c in "nrt" and j > 0 and text[j - 1] == "\\":
            j -= 2
        else:
            return c == ">"
    return False


def _rfind_ci(text: str, what: str, lo: int, hi: int) -> int:
    return max(text.rfind(what, lo, hi), text.rfind(what.upper(), lo, hi))


def _find_ci(text: str, what: str, lo: int, hi: int) -> int:
    found = [i for i in (text.find(what, lo, hi), text.find(what.upper(), lo, hi)) if i >= 0]
    return min(found) if found else -1


def _spans(attrs: str) -> int:
    m = _HTML_COLSPAN.search(attrs)
    return max(1, min(int(m.group(1)), 50)) if m else 1


def _html_cache(text: str) -> dict:
    """What the HTML column check learned about ``text`` (one text at a time, per thread):
    its tables' first rows, its rows' cell tags."""
    cache = getattr(_HTML_HEADERS, "cache", None)
    key = (id(text), len(text), text[:48], text[-48:])
    if cache is None or cache[0] != key:
        cache = _HTML_HEADERS.cache = (key, {})
    return cache[1]


def _html_header_cells(text: str, table: int) -> tuple[int, list[str]] | None:
    """The first row of the table opened at ``table`` (its header: <th> cells or the first
    row): where its ``</tr`` is, and its cells as plain text, a cell repeated for its
    colspan; None without one. (Found whatever value asks first: a cell of the header row
    itself may, and must not leave the table without a header for the rows below.)"""
    cache = _html_cache(text)
    got = cache.get(table, False)
    if got is not False:
        return got
    got = None
    # (a value's row is within _TABLE_LOOKBACK of its table's start: so is the first row)
    tr = _find_ci(text, "<tr", table, min(len(text), table + _TABLE_LOOKBACK))
    if tr >= 0:
        end = _find_ci(text, "</tr", tr, min(len(text), tr + _HTML_ROW_MAX))
        if end > 0:
            cells: list[str] = []
            for m in _HTML_CELL.finditer(text, tr, end):
                cell = _HTML_TAG.sub(" ", m.group(2))
                cell = re.sub(r"\\[nrt]|&nbsp;|\s+", " ", cell).strip(" \"'`*:")
                cells.extend([cell] * _spans(m.group(1)))
            got = (end, cells)
    cache[table] = got
    return got


def _html_cells_before(text: str, tr: int, cell: int) -> int:
    """How many cells (colspan counted) of the row opened at ``tr`` open before ``cell``.
    The row's cell tags are read once per text (cached): counted again for each value, a
    row of 500 short cells cost 500 x 500 matches (1 MB of such rows: 3.6 s)."""
    cache = _html_cache(text)
    got = cache.get(("row", tr))
    if got is None:
        # (a value's cell is within _HTML_ROW_MAX of its row's <tr: so are the cells before)
        starts, counts, n = [], [], 0
        for c in _HTML_CELL_OPEN.finditer(text, tr, min(len(text), tr + _HTML_ROW_MAX + 1)):
            starts.append(c.start())
            n += _spans(c.group(1))
            counts.append(n)
        got = cache[("row", tr)] = (starts, counts)
    starts, counts = got
    k = bisect.bisect_left(starts, cell)  # the cells that open before the value's
    return counts[k - 1] if k else 0


def _html_column(text: str, s: int, e: int, header: re.Pattern) -> bool:
    """Whether the value at ``s:e`` is the whole text of an HTML table's cell, in a body row,
    whose column's header cell (in the table's first row) matches ``header``."""
    lo = max(0, s - _HTML_CELL_LOOKBACK)
    cell = max(_rfind_ci(text, "<td", lo, s), _rfind_ci(text, "<th", lo, s))
    if cell < 0:
        return False
    m = _HTML_CELL_BEFORE.match(text, cell, s)
    if m is None or m.end() != s or _HTML_CELL_AFTER.match(text, e) is None:
        return False  # not the whole cell
    lo = max(0, cell - _HTML_ROW_MAX)
    tr = _rfind_ci(text, "<tr", lo, cell)
    if tr < 0 or _rfind_ci(text, "</tr", tr, cell) >= 0:
        return False
    index = _html_cells_before(text, tr, cell)
    table = _rfind_ci(text, "<table", max(0, s - _TABLE_LOOKBACK), tr)
    if table < 0 or _rfind_ci(text, "</table", table, tr) >= 0:
        return False  # no table's start near, or a table inside a cell above
    head = _html_header_cells(text, table)
    if head is None or head[0] >= tr:
        return False  # the value's row is the first (or no row ends before it)
    got = head[1]
    if index >= len(got) or sum(1 for c in got if c) < 2:
        return False  # no header for its column
    return header.match(got[index]) is not None


def _unescaped_quote(text: str, last: bool) -> int:
    """The index of the last (or first) ``"`` in ``text`` not escaped by a backslash; -1."""
    i = text.rfind('"') if last else text.find('"')
    while i >= 0:
        k = i
        while k > 0 and text[k - 1] == "\\":
            k -= 1
        if (i - k) % 2 == 0:
            return i
        i = text.rfind('"', 0, i) if last else text.find('"', i + 1)
    return -1


_SSN_WORD = re.compile(r"ssn|ss#|ss[ _-]?no|social[ _-]?security")
_SSN_HEADER = re.compile(
    r"(?i)(?:ssn|ss#|ss[ _-]?no|social[ _-]?security(?:[ _-]?(?:number|no\.?|num|nr|#))?"
    r"|ssn[ _-]?(?:number|no|num))\Z"
)


_COLUMN_CACHE: dict[str, tuple[re.Pattern, re.Pattern]] = {}


@validator("column", uses_context=True, header=(str, ""))
def column(value: str, ctx: Ctx | None = None, header: str = "") -> bool:
    """The value is a whole cell of a table whose column's header matches ``header`` (a
    regex matched against the whole header cell, case-insensitive)."""
    if ctx is None or not header:
        return False
    rx = _COLUMN_CACHE.get(header)
    if rx is None:
        rx = _COLUMN_CACHE[header] = (
            re.compile(f"(?i)(?:{header})\\Z"),
            re.compile(f"(?i){header}"),
        )
    return column_header(ctx, rx[0], rx[1])


@validator("not_column", uses_context=True, header=(str, ""))
def not_column(value: str, ctx: Ctx | None = None, header: str = "") -> bool:
    """The value is not a whole cell of a column whose header matches ``header``: a
    ``DIGEST`` or ``SHA256`` column beside a secret's name holds its hash (``supabase
    secrets list``), not the secret."""
    return ctx is None or not header or not column(value, ctx, header)


# a National Drug Code as written on labels and formularies: 4-4-2, 5-3-2, 5-4-1, 5-4-2
_NDC_SHAPE = re.compile(r"\d{4,5}-\d{3,4}-\d{1,2}\Z")
_NDC_HEADER = r"(?:ndc|upc|gtin|ean|sku)(?:[ _-]?(?:code|number|no|nr|num|id|10|11))?"


@validator("not_ndc_column", uses_context=True)
def not_ndc_column(value: str, ctx: Ctx | None = None) -> bool:
    """A drug code's shape (0230-7486-53, 08451-114-83) is not a whole cell of a formulary's
    NDC (or UPC, GTIN, EAN, SKU) column: read with its leading 0 it looks like a national
    phone number. Other values are not looked at (the column is searched only for these)."""
    return ctx is None or not _NDC_SHAPE.match(value) or not column(value, ctx, _NDC_HEADER)


# a header row of aligned CLI output: upper-case column names apart by two spaces or more
# (NAME  TYPE  VALUE  WRITE-ONLY)
_ALIGNED_HEADER = re.compile(
    r"[ \t]*[A-Z][A-Z0-9_-]*(?: [A-Z][A-Z0-9_-]*)?(?:[ \t]{2,}[A-Z][A-Z0-9_-]*(?: [A-Z][A-Z0-9_-]*)?)+[ \t]*\Z"
)
_ALIGNED_CELL = re.compile(r"\S+(?: \S+)*")
_ALIGNED_LINES = 60  # rows searched upwards for the header


def _previous_line(text: str, ls: int) -> tuple[int, int] | None:
    """(start, end) of the line before the line that starts at ``ls``; None at the top."""
    if ls >= 2 and text[ls - 2 : ls] in ("\\n", "\\r"):
        pe = ls - 2
    elif ls >= 1 and text[ls - 1] in "\n\r":
        pe = ls - 1
    else:
        return None
    if pe >= 1 and text[pe - 1] == "\r":
        pe -= 1
    elif pe >= 2 and text[pe - 2 : pe] == "\\r":
        pe -= 2
    lo = max(0, pe - _LINE_MAX)
    ps = _line_start(text, pe, lo)
    return (lo if ps < 0 else ps), pe


_ALIGNED_CACHE: dict[str, re.Pattern] = {}


@validator("aligned_column", uses_context=True, header=(str, ""))
def aligned_column(value: str, ctx: Ctx | None = None, header: str = "") -> bool:
    """For a match with a ``mid`` group (a cell between a secret's name and the value, as
    ``spacectl stack environment list`` prints a TYPE column): the value sits under a
    column of aligned CLI output whose header matches ``header`` (its name starts where the
    value starts). Matches without that group pass."""
    m = ctx.match if ctx is not None else None
    if m is None or "mid" not in m.re.groupindex or m.group("mid") is None:
        return True
    rx = _ALIGNED_CACHE.get(header)
    if rx is None:
        rx = _ALIGNED_CACHE[header] = re.compile(f"(?i)(?:{header})\\Z")
    text, s = ctx.text, ctx.start
    ls = _line_start(text, s, max(0, s - _LINE_MAX))
    if ls < 0:
        ls = 0 if s <= _LINE_MAX else -1
    if ls < 0:
        return False
    col = s - ls
    for _ in range(_ALIGNED_LINES):
        prev = _previous_line(text, ls)
        if prev is None:
            return False
        ls, le = prev
        line = text[ls:le]
        if not line.strip():
            return False  # a blank line: the table began below it
        if _ALIGNED_HEADER.match(line):
            cell = next((c for c in _ALIGNED_CELL.finditer(line) if c.start() == col), None)
            return cell is not None and rx.match(cell.group()) is not None
    return False


_NOT_AFTER_CACHE: dict[str, re.Pattern] = {}


@validator("not_after", uses_context=True, pattern=(str, ""), chars=(int, 200))
def not_after(value: str, ctx: Ctx | None = None, pattern: str = "", chars: int = 200) -> bool:
    """The ``chars`` characters before the value do not match ``pattern`` (a regex, anchor
    it with ``\\Z``): a public id under a secret's name that its neighbours give away
    (Typeform's response ``token`` right after the ``form_id``)."""
    if ctx is None or not pattern:
        return True
    rx = _NOT_AFTER_CACHE.get(pattern)
    if rx is None:
        rx = _NOT_AFTER_CACHE[pattern] = re.compile(pattern)
    return rx.search(ctx.text, max(0, ctx.start - chars), ctx.start) is None


@validator("ssn_column", uses_context=True)
def ssn_column(value: str, ctx: Ctx | None = None) -> bool:
    """A number written without separators is an SSN only as a whole cell of a table's SSN
    column (a nine-digit number alone is as often an id)."""
    if ctx is None:
        return False
    return column_header(ctx, _SSN_HEADER, _SSN_WORD)


_KEY_CACHE: dict[str, re.Pattern] = {}


@validator("key", uses_context=True, pattern=(str, ""))
def key(value: str, ctx: Ctx | None = None, pattern: str = "") -> bool:
    """The pattern's ``key`` group (the field name before the value) must match ``pattern``
    (searched, case-insensitive). Patterns without a ``key`` group pass."""
    m = ctx.match if ctx is not None else None
    if m is None or "key" not in m.re.groupindex or m.group("key") is None or not pattern:
        return True
    rx = _KEY_CACHE.get(pattern)
    if rx is None:
        rx = _KEY_CACHE[pattern] = re.compile(pattern, re.I)
    return rx.search(m.group("key")) is not None


# The validators' parameters that are regular expressions (and the flags they run with).
REGEX_PARAMS = {
    "key": "pattern",
    "column": "header",
    "not_column": "header",
    "aligned_column": "header",
    "not_after": "pattern",
}
REGEX_FLAGS = {"key": re.I, "column": re.I, "not_column": re.I, "aligned_column": re.I}


def resolve(spec: str | dict) -> tuple[str, dict[str, Any]]:
    """Turn a rule file's validator entry into (name, params); raises ValueError when unknown."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, raw = next(iter(spec.items()))
        v = REGISTRY.get(name)
        if v is None:
            raise ValueError(f"unknown validator {name!r} (known: {', '.join(sorted(REGISTRY))})")
        if isinstance(raw, dict):
            params = dict(raw)
        elif raw is None:
            params = {}
        elif v.params:
            params = {next(iter(v.params)): raw}
        else:
            raise ValueError(f"validator {name!r} takes no parameters")
    else:
        raise ValueError("a validator is a name or a one-key mapping {name: params}")
    v = REGISTRY.get(name)
    if v is None:
        raise ValueError(f"unknown validator {name!r} (known: {', '.join(sorted(REGISTRY))})")
    out = dict(v.defaults)
    for k, val in params.items():
        t = v.params.get(k)
        if t is None:
            raise ValueError(f"validator {name!r} has no parameter {k!r}")
        if t is float and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, t) or (t is int and isinstance(val, bool)):
            raise ValueError(f"validator {name!r}: {k} must be {t.__name__}")
        out[k] = val
    param = REGEX_PARAMS.get(name)
    if param is not None and out.get(param):
        try:
            re.compile(out[param])
        except re.error as e:
            raise ValueError(f"validator {name!r}: invalid {param}: {e}") from None
    if name == "column" and not out.get("header"):
        raise ValueError("validator 'column' needs a header regex")
    return name, out


# Values quoted in documentation, payment-provider test pages and textbooks: they protect
# nothing, and flagging them breaks every agent that reads the docs.
_FAMOUS = {
    "card": frozenset(
        """4111111111111111 4242424242424242 4000056655665556 5555555555554444 2223003122003222
        5200828282828210 5105105105105100 378282246310005 371449635398431 6011111111111117
        6011000990139424 3056930009020004 36227206271667 3566002020360505 6200000000000005
        4012888888881881 4222222222222 4000000000000002 4000000000009995 4000000000000077
        5454545454545454 4444333322221111 4917610000000000 4988080000000000 30569309025904
        38520000023237 6011601160116611 3530111333300000 3566111111111113 4111111111111
        4012000077777777 4005550000000001 4012000033330026 5500000000000004 340000000000009
        378734493671000 6331101999990016 4263982640269299 4917484589897107 4001919257537193
        4007702835532454 5425233430109903 2222420000001113 2223000048410010 374245455400126
        4111111145551142 5555341244441115 370000000000002 2222400070000005 5101180000000007
        4988438843884305 4212345678901237 4166676667666746 6771798021000008 3600666633336664"""
        # Braintree's, Adyen's and Checkout.com's sandbox cards (their test-card pages)
        """ 4005519200000004 4009348888881881 4217651111111119 4500600000000061 2223000048400011
        6011000991300009 6304000000000000 36259600000004 3569990010095841 4646464646464644
        6445644564456445 5577000055770004 4400000000000008 370000000100018 4543474002249996
        5436031030606378 345678901234564""".split()
    ),
    "ssn": frozenset(
        "078051120 219099999 123456789 457555462 111111111 123121234 987654320 987654321".split()
    ),
    "iban": frozenset(
        """GB82WEST12345698765432 GB29NWBK60161331926819 DE89370400440532013000
        FR1420041010050500013M02606 NL91ABNA0417164300 ES9121000418450200051332
        IT60X0542811101000000123456 BE68539007547034 CH9300762011623852957 AT611904300234573201
        GB33BUKB20201555555555 DE75512108001245126199 NL02ABNA0123456789 GB94BARC10201530093459
        SE4550000000058398257466 NO9386011117947 DK5000400440116243 FI2112345600000785
        PL61109010140000071219812874 PT50000201231234567890154 IE29AIBK93115212345678
        LU280019400644750000 MT84MALT011000012345MTLCAST001S""".split()
        # test IBANs of e-invoicing and payment documentation: the KoSIT / XRechnung samples
        # (DE02120300000000202051), German banks' and textbooks' examples, Stripe's SEPA test
        # accounts (its failing ones too), Adyen's and Mollie's
        + """
        DE02120300000000202051 DE02100100109307118603 DE02500105170137075030
        DE12500105170648489890 DE02300209000106531065 DE02370502990000684712
        DE91100000000123456789 DE27100777770209299700
        AT861904300235473202 AT483200000012345864 BE62510007547061 BE71096123456769
        IT40S0542811101000000123456 NL39RABO0300065264 NL20INGB0001234567
        ES0700120345030000067890 SE3550000000054910000003 FR7630006000011234567890189
        CH5604835012345678009 IE64IRCE92050112345678""".split()
        # the example IBAN of every country in SWIFT's IBAN registry (and so in every
        # validator's documentation and test suite)
        + """
        AL47212110090000000235698741 AD1200012030200359100100
        AZ21NABZ00000000137010001944 BH67BMAG00001299123456 BA391290079401028494
        BR9700360305000010009795493P1 BG80BNBG96611020345678 CR05015202001026284066
        HR1210010051863000160 CY17002001280000001200527600 CZ6508000000192000145399
        DO28BAGR00000001212453611324 EE382200221020145685 FO6264600001631634
        GE29NB0000000101904917 GI75NWBK000000007099453 GR1601101250000000012300695
        GL8964710001000206 GT82TRAJ01020000001210029690 HU42117730161111101800000000
        IS140159260076545510730339 IL620108000000099999999
        JO94CBJO0010000000000131000302 KZ86125KZT5004100100 XK051212012345678906
        KW81CBKU0000000000001234560101 LV80BANK0000435195001
        LB62099900000001001901229114 LI21088100002324013AA LT121000011101001000
        MK07250120000058984 MR1300020001010000123456753 MU17BOMM0101101030300200000MUR
        MD24AG000225100013104168 MC5811222000010123456789030 ME25505000012345678951
        PK36SCBL0000001123456702 PS92PALS000000000400123456702
        QA58DOHB00001234567890ABCDEFG RO49AAAA1B31007593840000
        SM86U0322509800000000270100 SA0380000000608010167519 RS35260005601001611379
        SK3112000000198742637541 SI56263300012039086 TN5910006035183598478831
        TR330006100519786457841326 AE070331234567890123456 VG96VPVG0000012345678901
        UA213223130000026007233566001 SC18SSCB11010000000000001497USD
        LC55HEMM000100010012001200023015 ST68000100010051845310112
        TL380080012345678910157 IQ98NBIQ850123456789012 BY13NBRB3600900000002Z00AB00
        SV62CENR00000000000000700025 LY83002048000020100120361 SD2129010501234001
        EG380019000500000000263180002 VA59001123000012345678 DJ2100010000000154000100186
        RU0204452560040702810412345678901 SO211000001001000100141
        NI45BAPR00000013000003558124 FK88SC123456789012 OM810180000001299123456
        MN121234123456789123 BI4210000100010000332045181""".split()
    ),
    # the example keys and tokens of the OAuth 1.0 (RFC 5849), OAuth 2.0 and OpenID Connect
    # specifications (RFC 6749, RFC 6750, OIDC Core), quoted by every OAuth library's docs and
    # tests
    "secret": frozenset(
        """TGZV3JOKF0XG5QX2TLKWIA 2YOTNFZFEJR1ZCSICMWPAA SPLXLOBEZQQYBYS6WXSBIA SLAV32HKKG 8XLOXBTZP8
        MF9B5F41JQM GX1FBAT3BV 7FJFP0ZBR1KT CZZCAGRSA3F0MZPNWDFMQMF0M2JW
        DPF43F3P2L4K3L03 KD94HF93K423KF44 HH5S93J4HDIDPOLA HDHD0244K9J7AO03 NNCH734D00SL2JDK
        PFKKDHI9SL3R4S00 9DJDJ82H48DJS9D2 KKK9D7DH3K39SJV7 0685BD9184JFHQ22 AD180JJD733KLRU7
        J49SK3J29DJD""".split()
        # Mollie's documented API key, in every example of its API reference and client
        # libraries (test_dHar4XY7LxsDOtmnkVtjNVWXLSlXsM)
        + ["TESTDHAR4XY7LXSDOTMNKVTJNVWXLSLXSM"]
    ),
}


@validator("not_famous", kind=(str, "card"))
def not_famous(value: str, ctx: Ctx | None = None, kind: str = "card") -> bool:
    norm = "".join(c for c in value if c.isalnum()).upper()
    if kind == "card" and norm.startswith("400000") and len(norm) == 16:
        return False  # Stripe's documented test cards (4000 0027 6000 3184, 4000 0000 0000 3220…)
    return norm not in _FAMOUS.get(kind, ())


_PEM_ARMOR = re.compile(r"-----(?:BEGIN|END)[^-]*-----")
_PEM_HEADER = re.compile(r"^[A-Za-z-]+:.*$", re.M)


@validator("pem_body", min=(int, 40))
def pem_body(value: str, ctx: Ctx | None = None, min: int = 40) -> bool:  # noqa: A002
    """A private key block with a real body: at least ``min`` base64 characters, no ellipsis."""
    body = _PEM_ARMOR.sub("", value)
    body = body.replace("\\r", "\n").replace("\\n", "\n").replace("\\", "")
    body = _PEM_HEADER.sub("", body)
    if "..." in body or "…" in body or re.search(r"x{6,}|X{6,}", body):
        return False
    b64 = re.sub(r"[^A-Za-z0-9+/=]", "", body)
    if len(b64) < min:
        return False
    return len(set(b64)) >= 16


@validator("ipv4_public_address")
def ipv4_public_address(value: str, ctx: Ctx | None = None) -> bool:
    """The address half of ``ipv4_public`` alone (public, not a netmask, documentation or
    an OID), for a rule whose pattern already names the context: ``Node: gke-pool-1/34.1.2.3``
    reads like a product token (``Chrome/126.0.0.1``) to the version check."""
    return _ipv4_value(value)


# A field that holds the id of a message or of a calendar event, not a mailbox: Google
# Calendar's "iCalUID": "…@google.com", Microsoft Graph's "internetMessageId": "<…>", a
# "messageId", "inReplyTo", "references" or "contentId" field (JSON, also escaped; YAML;
# key=value). A "From" / "to" / "replyTo" field is an address and stays one. (Part of
# not_message_id: one validator call per address.)
_ID_FIELD_BEFORE = re.compile(
    r"(?i)(?<![a-z0-9])(?:i?cal[_-]?uid|(?:internet[_-]?)?message[_-]?id|msg[_-]?id"
    r"|in[_-]?reply[_-]?to|references|content[_-]?id)\\{0,3}[\"']?\s{0,3}[:=]\s{0,3}"
    r"(?:\[\s{0,3})?\\{0,3}[\"']?\s{0,3}<?\Z"
)


def _id_field_before(text: str, start: int) -> bool:
    """Whether the name of a message-id or calendar-event-id field comes right before
    ``start``."""
    lo = max(0, start - 60)
    before = text[lo:start]
    k = max(before.rfind(":"), before.rfind("="))
    if k < 0:
        return False  # no field name before it (a list of addresses, prose): the common case
    low = before[max(0, k - 40) : k].lower()
    if "id" not in low and "references" not in low and "reply" not in low:
        return False
    return _ID_FIELD_BEFORE.search(text, lo, start) is not None
