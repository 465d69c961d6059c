"""Shapes from the fortieth independent evaluation (healthcare, insurance, HR and payroll in
the US, UK, Canada, Australia, India and Ireland): HL7 v2 and X12 segments, payroll exports,
help-desk tickets, integration credentials. Each case gives a text and the (type, value) pairs
the default packs must report among personal data (or, for secrets, the values that must be
found); an empty list means none may be reported. Every case is also scanned inside a JSON
string, as a tool result carries it (HL7's segment separator then is the escape \\r)."""

import json

import pytest
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "phone_number", "iban", "credit_card", "us_ssn", "ipv4"}


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def personal(engine, text):
    return [(d.type, d.value) for d in engine.scan_text(text) if d.type in PERSONAL]


def as_json(text):
    return json.dumps({"type": "text", "text": text})


_PID = (
    "MSH|^~\\&|EPIC|MGH|RHAPSODY|HIE|202606161356||ADT^A01|6253090129|P|2.5.1\r"
    "PID|1||MRN7919980^^^HOSP^MR||BRADSHAW^SPENCER||19751017|M|||11933 Gill Gateway||"
    "^PRN^PH|||S||711845298^^^HOSP^AN|{ssn}\rNK1|1|THOMPSON^DANIELLE|SPO^Spouse"
)

CASES = [
    # -- HL7 v2 PID-19 (the patient's SSN) as the segment's last field: in a JSON string the
    # segment ends in the escape \r, which the rule's look-ahead did not accept
    (_PID.format(ssn="486375635"), [("us_ssn", "486375635")]),
    (_PID.format(ssn="486375635") + "|D1234567", [("us_ssn", "486375635")]),
    # (an account number there, PID-18, is none; nor a PID-19 that fails the issuing rules)
    (_PID.format(ssn="000375635"), []),
    # -- X12's PER segment (837, 834, 270/271 contacts): the address after its EM qualifier
    # read as the tail of a masked address (a letter and an asterisk before it), the number
    # after TE / FX / CP unbroken
    (
        "NM1*85*2*NORTH SHORE CLINIC*****XX*2721236976~\n"
        "PER*IC*JOHN BOWERS*TE*2066606715*EX*214*FX*2066606799*EM*jessicaday66@acmecorp.com~\n"
        "REF*EI*214642443~",
        [
            ("phone_number", "2066606715"),
            ("phone_number", "2066606799"),
            ("email", "jessicaday66@acmecorp.com"),
        ],
    ),
    (
        "PER*IC*BILLING OFFICE*EM*b.ortiz@stlukes-health.org~",
        [("email", "b.ortiz@stlukes-health.org")],
    ),
    # (a masked address is still none, X12's qualifiers are capitals)
    ("Mail: j*e@acmecorp.com, PER*IC*X*em*x@acmecorp.com", []),
    # (other qualifiers' values are no phone: an NPI, an EIN, a date)
    ("NM1*82*1*ADAMS*DEVIN****XX*1511345336~DTP*472*D8*20260607~REF*EI*214642443~", []),
    # -- HL7 v2's telecom field (XTN): a number before its use and equipment codes, also a
    # national mobile unbroken (UK 07…, Australia 04…)
    (
        "PID|1||85255160^^^HOSP^MR||BRYAN^DONALD||19981115|F|||7 Melissa Block^Shannonton^QLD"
        "||0424762865^PRN^PH|||S\rNK1|1|BRYAN^ANN|SPO|||07897391813^PRN^CP",
        [("phone_number", "0424762865"), ("phone_number", "07897391813")],
    ),
    # -- 14 digits unbroken: an Indian bank's account number (HDFC's are 14 digits from
    # 50100…, a Maestro prefix; one in ten passes Luhn) as often as a Diners Club card, so
    # only with a card word or an expiry date (and "credited" / "debited" say no card)
    ("Salary credited to HDFC Bank A/c 50100945807300 on 2025-04-30.", []),
    ("emp_code,name,ifsc,bank_ac,ctc\nE001,Ravi Kumar,HDFC0001234,50101573681934,1200000", []),
    ('{"bank_account_number": "50101573681934", "ifsc": "HDFC0000123"}', []),
    ("Amount debited from a/c 50101573681934", []),
    ("Diners Club card 36481173029588 on file", [("credit_card", "36481173029588")]),
    ("Card: 30118472950314 exp 12/29", [("credit_card", "30118472950314")]),
    ("paid with 3011 847295 0314", [("credit_card", "3011 847295 0314")]),
    # (16 digits need no word, as before)
    ("4803879009343243", [("credit_card", "4803879009343243")]),
    # -- a service desk's "Callback:" field names a phone, also an unbroken national mobile
    ("Caller: Rose Robinson  Callback: 07504371743", [("phone_number", "07504371743")]),
    ("Callback number: 0412 345 678", [("phone_number", "0412 345 678")]),
    ('"callback": "+44 7911 583204"', [("phone_number", "+44 7911 583204")]),
    # ... and a signature's direct line
    ("Graeme Hall\nPeople Team\nDirect: 07921593545", [("phone_number", "07921593545")]),
    ("Direct line: 0113 496 0321", [("phone_number", "0113 496 0321")]),
    # (a callback's URL or a function is none, nor a date or a timestamp after it, nor a
    # direct deposit's account)
    ("callback: 2025-04-30 14:00", []),
    ("callback: 1699999999999", []),
    # (a timestamp in seconds too: ten digits from 1, no national number's shape after it)
    ("callback: 1699999999", []),
    ('{"callback": 1714486400, "retries": 3}', []),
    ("Direct deposit: 123450987 routing 021000021", []),
    ("callback: https://hooks.acme.io/cb/2025", []),
    # -- a drug's NDC (4-4-2, 5-3-2) in a formulary's NDC column is no national number,
    # as it is none right after "NDC" (a pharmacy's phone column beside it still is one)
    (
        "| Drug | NDC | HCPCS | Tier |\n|---|---|---|---|\n| metformin 500 mg tab | 0230-7486-53 "
        "| J1885 | 1 |\n| adalimumab 40 mg | 08451-114-83 | J0135 | 5 |",
        [],
    ),
    ("drug,ndc_code,tier\nadalimumab 40 mg,08451-114-83,5", []),
    (
        "| Pharmacy | Phone | NDC |\n|---|---|---|\n| Boots Leeds | 0113 832 4455 | 0230-7486-53 |",
        [("phone_number", "0113 832 4455")],
    ),
    # -- an Australian Company Number after its name (every Pty Ltd's letterhead and invoice),
    # and a company or tax number as a field's value: ACN / ABN / ARBN / TFN / EIN / NPI
    ("Harbour Physio Pty Ltd ACN 051 775 556", []),
    ("ABN 11 051 775 556 / ACN 051 775 556", []),
    ('{"acn": "051 775 556", "abn": "11 051 775 556"}', []),
    ('{"super": {"fund_abn": "03 417 993 499", "usi": "STA0100AU"}}', []),
    (
        "Harbour Physio Pty Ltd ACN 051 775 556, phone (02) 9374 4000",
        [("phone_number", "(02) 9374 4000")],
    ),
    # (an OBX value before other codes is none)
    ("OBX|1|NM|4548-4^Hemoglobin A1c^LN||6.8|%|4.0-5.6|H|||F", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
@pytest.mark.parametrize("wrap", [False, True], ids=["text", "json"])
def test_personal_data_shapes(engine, text, expected, wrap):
    assert personal(engine, as_json(text) if wrap else text) == expected


def secrets(engine, text):
    return [d.value for d in engine.scan_text(text) if d.type not in PERSONAL]


def _basic(user_pass: str) -> str:
    import base64

    return base64.b64encode(user_pass.encode()).decode()


_BAMBOO_KEY = "1242f9174a6d72be91044c49ba4e3392ebe2cf62"

SECRET_CASES = [
    # -- HTTP Basic with an API key as the user and a filler password: BambooHR's "KEY:x",
    # Freshdesk's "KEY:X", Toggl's "TOKEN:api_token" (the key is the credential)
    (
        '"headers": {"Authorization": "Basic ' + _basic(_BAMBOO_KEY + ":x") + '"}',
        [_basic(_BAMBOO_KEY + ":x")],
    ),
    ("Authorization: Basic " + _basic(_BAMBOO_KEY + ":X"), [_basic(_BAMBOO_KEY + ":X")]),
    (
        "Authorization: Basic " + _basic("3f9aE2kL9mQ7xV1bN8cR4tY6:api_token"),
        [_basic("3f9aE2kL9mQ7xV1bN8cR4tY6:api_token")],
    ),
    # -- a password set in a ticket's words, the verb first: "I set the temp password to …"
    (
        "Locked out of Kronos after reset. I set the temp password to Falcon2026!GRA45 but it "
        "says expired.",
        ["Falcon2026!GRA45"],
    ),
    ("Reset her password to j2*5bpf*Z$95ap#C, please.", ["j2*5bpf*Z$95ap#C"]),
    ("we changed the admin password to: Tundra#2291meadow", ["Tundra#2291meadow"]),
    # (words and placeholders are none: "set a password to access the portal")
    ("Please set a password to access the benefits portal.", []),
    ("Reset your password to something only you know.", []),
    ("I set the password to ${SFTP_PASSWORD} in the job.", []),
    # (nor a policy's measure or algorithm: a number and a unit, a cipher, before the noun
    # they qualify; the verb-first sentence is every password policy's wording)
    ("GPO: set password to 90-day expiry for all staff.", []),
    ("I set the password to 12-character minimum as HR asked.", []),
    ("We updated the password to AES-256 encryption at rest.", []),
    ("They changed the password to bcrypt-2b hashing last year.", []),
    ("Set the password to Base64-encoded value in the vault config.", []),
    # (a password followed by another sentence's words still is one)
    ("I reset the password to Winter2026!X but it still fails.", ["Winter2026!X"]),
    # (a hex key of lower entropy too: one random 40-digit key in twenty falls under 3.5)
    (
        "Authorization: Basic " + _basic("1b42c71249bddd749fd13dc8c7984dd4c5eb93b9:x"),
        [_basic("1b42c71249bddd749fd13dc8c7984dd4c5eb93b9:x")],
    ),
    ("Authorization: Basic " + _basic("00000000000000000000000000000000:x"), []),
    # (a placeholder or a word as the user is none: the documentation's own example)
    ("Authorization: Basic " + _basic("YOUR_API_KEY:x"), []),
    ("Authorization: Basic " + _basic("admin:x"), []),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
@pytest.mark.parametrize("wrap", [False, True], ids=["text", "json"])
def test_secret_shapes(engine, text, expected, wrap):
    found = secrets(engine, as_json(text) if wrap else text)
    if not expected:
        assert found == []
    for value in expected:
        assert value in found
