"""The forty-third corpus (tests/scan/corpus_benchmarks.py: the shapes of public PII and secret
benchmark data sets, ai4privacy-style sentences and documents in seven languages,
Presidio-style templates, StarPII-style code files and notebooks with hard negatives, as MCP
messages), scored as test_scan_corpus.py scores its own, on two seeds, with precision and
recall per type; then one regression case for each fix it led to. A case gives a text and the
(type, value) pairs the default packs must report (for secrets: among the secret findings; for
personal data: among the personal-data findings); an empty list means none may be reported.
Every case is also scanned inside a JSON string, as a tool result carries it."""

import json

import corpus_benchmarks as c43  # tests/scan is on sys.path (conftest.py)
import pytest
import test_scan_corpus as tsc
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "phone_number", "iban", "credit_card", "us_ssn", "ipv4"}


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


@pytest.fixture(scope="module", params=[43, 2])
def report(request, engine):
    return tsc.evaluate(engine, c43.generate(request.param))


def test_corpus_43_scores(report):
    # blind, before the fixes (seeds 43 / 2): secrets F1 0.993 / 0.994 (recall 0.986 / 0.993,
    # precision 1.000 / 0.996), personal data 0.994 / 0.997, no false alarm on the benign
    # messages; after them see the README's row. What is left: a password under a Swift
    # constant named dbKey (a database's key, for all the name says)
    secrets, pii = report.secrets, report.pii
    detail = f"\n{report.table()}\n{report.examples()}\n{report.benign_examples()}"
    assert secrets.precision == 1.0, detail
    assert secrets.recall >= 0.995 and secrets.f1 >= 0.997, detail
    assert pii.precision == 1.0 and pii.recall >= 0.999, detail
    assert report.false_alarm_rate == 0.0, detail


@pytest.mark.parametrize(
    "type_name",
    [
        "email",
        "phone_number",
        "iban",
        "credit_card",
        "us_ssn",
        "ipv4",
        "url_credentials",
        "private_key",
        "aws_access_key_id",
        "github_token",
        "openai_api_key",
        "anthropic_api_key",
        "google_api_key",
    ],
)
def test_corpus_43_types(report, type_name):
    s = report.types[type_name]
    assert s.labels, type_name
    assert s.recall == 1.0 and s.precision == 1.0, f"{report.table()}\n{report.examples()}"


def test_corpus_43_generic_secrets(report):
    s = report.types["generic_secret"]
    assert s.recall >= 0.99 and s.precision == 1.0, f"{report.table()}\n{report.examples()}"


def test_corpus_43_has_its_shapes():
    samples = c43.generate()
    assert 450 <= len(samples) <= 540
    benign = [s for s in samples if s["benign"]]
    assert len(benign) >= 120
    sse = 0
    for s in samples:
        text = s["text"]
        if text.startswith("event: message\n"):  # an SSE event: its data line is the message
            sse += 1
            text = text.split("\ndata: ", 1)[1].rstrip("\n")
        json.loads(text)  # every sample is a JSON-RPC message
        for lab in s["labels"]:
            assert 0 <= lab["start"] < lab["end"] <= len(s["text"])
    assert sse >= 30
    kinds = {lab["type"] for s in samples for lab in s["labels"]}
    assert set(PERSONAL) <= kinds
    assert {"generic_secret", "url_credentials", "private_key", "jwt", "basic_auth"} <= kinds
    cats = {s["category"] for s in samples}
    assert len({c for c in cats if c.startswith("code-") and "negative" not in c}) >= 20
    assert {"ai4p-sentence", "ai4p-document", "presidio", "code-notebook"} <= cats


def personal(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type in PERSONAL)


def secrets(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type not in PERSONAL)


def as_json(text):
    return json.dumps({"type": "text", "text": text}, ensure_ascii=False)


PERSONAL_CASES = [
    # -- a PIN (a personal identification number) is no "pin … from" of a dependency: the
    # address after it is one (the upgrade phrase stays within its sentence)
    (
        "Username: harper1808, PIN 550052. Login attempt from 81.6.38.169 was flagged.",
        [("ipv4", "81.6.38.169")],
    ),
    ("pin 4821! Login from 81.6.38.169", [("ipv4", "81.6.38.169")]),
    # (a pinned dependency's version is still none)
    ("Pinned the dependency to 81.6.38.169", []),
    ("bump foo.bar from 4.1.8.34 to 4.1.9.1", []),
    # -- "the number of NAME is …", "Contacto da NAME: …": a person's number without a phone
    # word
    ("Il numero di Giulia Bianchi è 349 7677442.", [("phone_number", "349 7677442")]),
    ("El número de Lucía García es el 612 44 91 37", [("phone_number", "612 44 91 37")]),
    ("Contacto da João Ferreira: 938 402 629", [("phone_number", "938 402 629")]),
    ("contatto di Mario Rossi: 347 123 9876", [("phone_number", "347 123 9876")]),
    # (not a file's or an order's number, nor the bare "Contact:" label, nor one name alone)
    ("il numero di pratica è 349 7677442", []),
    ("Contacto de Cliente: 938 402 629", []),
    ("Contact: 98765 43210", []),
    # (nor a count or an order's number under a heading in title case: "number of" says how
    # many in English, and a colon after "numero di …" names a field, not a person; review 8)
    ("Number of Line Items: 120 345 678", []),
    ("Number of Registered Users is 12 345 678", []),
    ("Numero di Ordine Cliente: 2024 118 733", []),
    ("Número de Pedido Web: 4512 3387 22", []),
    # -- a bank account's number (no IBAN) after its name in other languages is no phone
    # number (a held-out seed: "Kontonummer 072-186668-47")
    ("Meine Steuer-ID lautet 46070983356. Kontonummer 072-186668-47.", []),
    ("Rekeningnummer: 0417 1643 00", []),
    ("numéro de compte 06 12 34 56 78", []),
    ("número de cuenta 0612 3456 78", []),
    # (a phone label before the same digits still says what they are)
    ("Tel. 072 186668 47", [("phone_number", "072 186668 47")]),
]

SECRET_CASES = [
    # -- the account a password belongs to, with a dot in its name, between the word and the
    # verb (a user, a host): in English and in other languages
    ("The new password for gabriel.uzc is Maple@8344", [("generic_secret", "Maple@8344")]),
    ("la password di gabriel.uzc è Maple@8344", [("generic_secret", "Maple@8344")]),
    ("het wachtwoord van theo.vbp is HIO59#bsa82@", [("generic_secret", "HIO59#bsa82@")]),
    ("a senha do utilizador manon.mkz é mn7#TQ57iaj", [("generic_secret", "mn7#TQ57iaj")]),
    (
        "The API key for billing.prod was 8fJ2kLm9Qx7Rt4Vz",
        [("generic_secret", "8fJ2kLm9Qx7Rt4Vz")],
    ),
    ("the password for the admin user is Xk9#mP2vLq", [("generic_secret", "Xk9#mP2vLq")]),
    # (a sentence's end is still none: the next sentence's "is" is not the password's)
    ("Reset your password. The host db.internal is Xk9#mP2vLq", []),
    # -- the user name named after the password is no password
    ("I forgot my password, my username is imuller_86 and my email m.x@gmail.com", []),
    ("Forgot password? Your login is ana_b2026 now", []),
]


@pytest.mark.parametrize(("text", "want"), PERSONAL_CASES)
def test_personal_cases(engine, text, want):
    assert personal(engine, text) == sorted(want)
    assert personal(engine, as_json(text)) == sorted(want)


# a signature's number alone on the line under its e-mail address, in a JSON string (the
# rule's anchor reads the escaped line break an MCP message carries; a raw one after a class
# repeat cost the whole Hyperscan pass ~12 %)
SIGNATURE_CASES = [
    (
        "Lucía Gómez\nhugoperez98@hotmail.es\n614 48 41 31\n",
        [("email", "hugoperez98@hotmail.es"), ("phone_number", "614 48 41 31")],
    ),
    (
        "--\nLeonor Santos\njono_rodrigues@gmail.com\n21 552 4169",
        [("email", "jono_rodrigues@gmail.com"), ("phone_number", "21 552 4169")],
    ),
    # (not a date or a short number there, nor a number with words after it on its line)
    ("ana.b@gmail.com\n2024 01 15\n", [("email", "ana.b@gmail.com")]),
    ("ana.b@gmail.com\n12 345\n", [("email", "ana.b@gmail.com")]),
    ("ana.b@gmail.com\n614 48 41 31 items in the queue\n", [("email", "ana.b@gmail.com")]),
]


@pytest.mark.parametrize(("text", "want"), SIGNATURE_CASES)
def test_signature_cases(engine, text, want):
    assert personal(engine, as_json(text)) == sorted(want)


@pytest.mark.parametrize(("text", "want"), SECRET_CASES)
def test_secret_cases(engine, text, want):
    assert secrets(engine, text) == sorted(want)
    assert secrets(engine, as_json(text)) == sorted(want)
