"""The forty-fourth corpus (tests/scan/corpus_near_misses.py: hard negatives and near misses,
1,500 benign MCP messages full of format-alike values and ~745 with the same shapes as real
secrets and personal data), scored as test_scan_corpus.py scores its own, on two seeds: per type
precision and recall and the false-alarm rate on the benign messages. Then one regression case
for each fix the round led to. A case gives a text and the (type, value) pairs the default packs
must report (for secrets: among the secret findings; for personal data: among the personal-data
findings); an empty list means none may be reported. Every case is also scanned inside a JSON
string, as a tool result carries it."""

import base64
import json

import corpus_near_misses as c44  # tests/scan is on sys.path (conftest.py)
import pytest
import test_scan_corpus as tsc
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "phone_number", "iban", "credit_card", "us_ssn", "ipv4"}


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


@pytest.fixture(scope="module", params=[44, 2])
def report(request, engine):
    return tsc.evaluate(engine, c44.generate(request.param))


def test_corpus_44_scores(report):
    # blind, before the fixes (seeds 44 / 2): secrets F1 0.938 / 0.934 (precision 0.884 /
    # 0.876: unsigned alg-none JWTs), personal data 1.000 / 1.000, false alarms 1.40 % /
    # 1.47 %; after them 1.000 / 1.000 / 0 %
    secrets, pii = report.secrets, report.pii
    detail = f"\n{report.table()}\n{report.examples()}\n{report.benign_examples()}"
    assert secrets.precision == 1.0 and secrets.recall >= 0.995, detail
    assert pii.precision == 1.0 and pii.recall >= 0.995, detail
    assert report.false_alarm_rate <= 0.002, detail


@pytest.mark.parametrize(
    "type_name",
    [
        "jwt",
        "credit_card",
        "iban",
        "phone_number",
        "ipv4",
        "private_key",
        "url_credentials",
        "generic_secret",
        "stripe_key",
        "aws_access_key_id",
    ],
)
def test_corpus_44_types(report, type_name):
    s = report.types[type_name]
    assert s.labels, type_name
    assert s.recall >= 0.99 and s.precision == 1.0, f"{report.table()}\n{report.examples()}"


def test_corpus_44_has_its_shapes():
    samples = c44.generate()
    assert 2100 <= len(samples) <= 2400
    benign = [s for s in samples if s["benign"]]
    assert len(benign) == 1500
    assert sum(len(s["labels"]) for s in samples) >= 800
    sse = 0
    for s in samples:
        if s["text"].startswith("event: "):
            sse += 1
            json.loads(s["text"].split("data: ", 1)[1])
        else:
            json.loads(s["text"])  # every other sample is a JSON-RPC message
        for lab in s["labels"]:
            assert 0 <= lab["start"] < lab["end"] <= len(s["text"])
    assert sse >= 100
    kinds = {lab["type"] for s in samples for lab in s["labels"]}
    assert {"jwt", "private_key", "url_credentials", "credit_card", "iban", "ipv4"} <= kinds
    cats = {s["category"] for s in benign}
    assert {"lockfile", "pubkey", "docs", "placeholder", "numbers", "tokenish"} <= cats


def personal(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type in PERSONAL)


def secrets(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type not in PERSONAL)


def as_json(text):
    return json.dumps({"type": "text", "text": text}, ensure_ascii=False)


def _b64u(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_NONE_JWT = (
    _b64u({"alg": "none", "typ": "JWT"})
    + "."
    + _b64u({"iss": "https://idp.acme.io", "sub": "248289761001", "aud": "s6BhdRkqt3"})
    + "."
)
_NONE_JWT_CAPS = _b64u({"alg": "None"}) + "." + _b64u({"sub": "42", "user_id": "ana"}) + "."
_HS_JWT = (
    _b64u({"alg": "HS256", "typ": "JWT"})
    + "."
    + _b64u({"sub": "42", "scope": "repo"})
    + ".Xk9mP2vLqR7tYq3kX9vLmP2sT8wZ4rB6nD1fH7jK0cQ"
)
# (alg none with a signature is no unsecured JWT: reported as before)
_NONE_SIGNED = _b64u({"alg": "none"}) + "." + _b64u({"sub": "42"}) + ".Xk9mP2vLqR7tYq3kX9vLmP2s"

# a Nostr secret key with its bech32 checksum, and the same key one character off
_NSEC = "nsec1nkn75t77trspkep6hcquztv80akksaxhjzm9d4hf439n5nt9fn72v5sxf9"
_NSEC_BAD = "nsec1nkn75t77trspkep6hcquztv80akksaxhjzm9d4hf439n5nt9fn72v5sxf8"
_NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"

SECRET_CASES = [
    # -- an unsecured JWT (alg none, empty signature) proves nothing: an OpenID example's
    # id_token, the Firebase Auth emulator's tokens; by no rule (jwt, bearer, key names)
    (f"Example unsigned ID Token:\n\n{_NONE_JWT}\n\nNever accept it.", []),
    (f"Authorization: Bearer {_NONE_JWT}", []),
    (f'{{"idToken": "{_NONE_JWT_CAPS}", "kind": "emulator"}}', []),
    # (a signed token next to it is one; and alg none with a signature is reported as before)
    (f"unsigned {_NONE_JWT} vs signed {_HS_JWT}", [("jwt", _HS_JWT)]),
    (f"token {_NONE_SIGNED}", [("jwt", _NONE_SIGNED)]),
    # -- a Nostr secret key (nsec1…) next to its public npub1…, in JSON, prose or an
    # environment line (one finding, the most specific type)
    (f'{{"npub": "{_NPUB}", "nsec": "{_NSEC}"}}', [("private_key", _NSEC)]),
    (f"my nostr key is {_NSEC} don't share", [("private_key", _NSEC)]),
    (f"NOSTR_PRIVATE_KEY={_NSEC}", [("private_key", _NSEC)]),
    # (not one whose checksum fails, nor the public key)
    (f"a typo: {_NSEC_BAD}; npub: {_NPUB}", []),
]

PERSONAL_CASES = [
    # -- payment providers' sandbox cards beyond Stripe's (Braintree, Adyen, Checkout.com)
    (
        "Use 4005519200000004, 4009348888881881, 4217651111111119 or 6304000000000000 "
        "in the sandbox.",
        [],
    ),
    ("| JCB | 3569 9900 1009 5841 |\n| Visa | 4543 4740 0224 9996 |", []),
    # (a customer's card in the same table is one)
    (
        "| JCB | 3569 9900 1009 5841 |\n| customer | 4539 1488 0343 6467 |",
        [("credit_card", "4539 1488 0343 6467")],
    ),
    # -- an order's (invoice's, booking's) number of 16 digits passes Luhn one time in ten
    ("Order number: 4539148803436467", []),
    ("Invoice no. 5105291023845520 (due 2026-12-01)", []),
    ("Booking #4111222233334448 confirmed", []),
    ('{"order_number": "4539148803436467"}', []),
    # (a card named as one is still a card, also next to an order number)
    (
        "Order no. 1182734 paid with card 4539148803436467",
        [("credit_card", "4539148803436467")],
    ),
    # -- a parcel's, a shipment's or a waybill's number after its name (parcel 1800065040 was
    # read as a toll-free number)
    ("Order 112-5266397-5529129 · parcel 1800065040", []),
    ("Shipment no. 1800065040 · waybill 8005551234 · consignment 1877654321", []),
    # (a phone named as one next to it is one)
    (
        "Recipient phone: 646-866-1914 · parcel 1800065040",
        [("phone_number", "646-866-1914")],
    ),
    # -- a version written as four numbers: a "ver" field, a kernel's or a package's
    # pre-release suffix
    ('{"name": "agent", "ver": "5.4.0.150"}', []),
    ("Linux host 5.15.0.91-generic #101-Ubuntu SMP x86_64", []),
    ("artifact 2.0.0.1-SNAPSHOT, base 1.2.3.4~ubuntu1, tool 4.2.1.0+build7", []),
    # (an address next to them, its port, a range of addresses, "version" and "ver" after it
    # are addresses)
    (
        "ver 5.4.0.150 from 81.6.38.169:443",
        [("ipv4", "81.6.38.169")],
    ),
    ("block 81.6.38.169-81.6.38.180 now", [("ipv4", "81.6.38.169"), ("ipv4", "81.6.38.180")]),
    ('{"server": "81.6.38.169", "version": "1.2.3.4"}', [("ipv4", "81.6.38.169")]),
    # (review: an address with a host's or a site's name after a hyphen is an address; a
    # version's suffix after one is a known word: -generic, -SNAPSHOT, -rc1, -el7, -beta2)
    ("peer 81.6.38.169-gw1 up", [("ipv4", "81.6.38.169")]),
    ("edge 81.6.38.169-Frankfurt, 203.0.113.77-backup", [("ipv4", "81.6.38.169")]),
    ("pkgs 4.2.1.0-rc1 2.3.0.7-el7 1.0.0.12-beta2 5.4.0.150-lowlatency", []),
]


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "json"])
@pytest.mark.parametrize("text,expected", SECRET_CASES)
def test_secret_cases(engine, text, expected, wrap):
    t = as_json(text) if wrap else text
    got = secrets(engine, t)
    want = sorted((typ, json.dumps(v)[1:-1] if wrap else v) for typ, v in expected)
    assert got == want


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "json"])
@pytest.mark.parametrize("text,expected", PERSONAL_CASES)
def test_personal_cases(engine, text, expected, wrap):
    t = as_json(text) if wrap else text
    got = personal(engine, t)
    want = sorted((typ, json.dumps(v)[1:-1] if wrap else v) for typ, v in expected)
    assert got == want
