"""Personal-data shapes from the twenty-second independent evaluation: general rules, each with
the nearby cases that must keep their verdict.

Each case gives a text and the (type, value) pairs the default packs must report among
personal data; an empty list means no personal data may be reported."""

import pytest
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "phone_number", "iban", "credit_card", "us_ssn", "ipv4"}


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def personal(engine, text):
    return [(d.type, d.value) for d in engine.scan_text(text) if d.type in PERSONAL]


CASES = [
    # -- a SIP URI's user@host is a telephone account, not a mailbox ---------------------
    ("[telnyx]\ntype=registration\nclient_uri=sip:8622189@telnyx.com\n", []),
    ('From: "Bob" <sips:bob.smith@biloxi.example-voip.com>;tag=a6c85cf', []),
    ("contact=SIP:4401@pbx.acme-corp.io", []),
    # (a mailbox after a word that only ends in "sip" is still one)
    ("gossip: lena.rossi@gmail.com", [("email", "lena.rossi@gmail.com")]),
    ("mailto:lena.rossi@gmail.com", [("email", "lena.rossi@gmail.com")]),
    # -- role mailboxes at the documentation domains, in other languages -----------------
    ("<cbc:ElectronicMail>rechnung@example.com</cbc:ElectronicMail>", []),
    ("buchhaltung@example.org, facturacion@example.net, fatture-passive@example.com", []),
    ("Kontakt: kundenservice@example.com oder boekhouding@example.net", []),
    # (a person at example.com is reported, and a role mailbox at a real domain is too: people
    # read and answer it)
    ("to: lena.rossi@example.com", [("email", "lena.rossi@example.com")]),
    ("rechnung@kessler-logistik.de", [("email", "rechnung@kessler-logistik.de")]),
    # (a name that only starts like a role word)
    ("kontaktlinsen.fan@example.com", [("email", "kontaktlinsen.fan@example.com")]),
    # -- a CRM's ingest address is a drop box ---------------------------------------------
    ('{"cc_email": "lumenfield-2269@pipedrivemail.com"}', []),
    ("BCC 4431872@bcc.hubspot.com", []),
    ("emailtosalesforce@2a8xk3l0b7.le.salesforce.com", []),
    ("support@acme.zendesk.com", [("email", "support@acme.zendesk.com")]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_personal_data_shapes(engine, text, expected):
    assert personal(engine, text) == expected
