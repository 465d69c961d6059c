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
]


@pytest.mark.parametrize(("text", "expected"), CASES)
@pytest.mark.parametrize("wrap", [False, True], ids=["text", "json"])
def test_personal_data_shapes(engine, text, expected, wrap):
    assert personal(engine, as_json(text) if wrap else text) == expected
