"""Secret shapes and false alarms found by the corpus-24 evaluation (AWS SSM and DynamoDB
output, payment gateways' request logs, URL passwords with a raw @, logins in chat; vendors'
demo tokens and redaction masks). Each case gives a text and the values the default packs
must report as secrets; an empty list means no secret may be reported."""

import pytest
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "credit_card", "us_ssn", "iban", "phone_number", "ipv4"}

SUPABASE_DEMO_ANON = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJl"
    "eHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SUPABASE_DEMO_SERVICE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vf"
    "cm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def secrets(engine, text):
    return [d.value for d in engine.scan_text(text) if d.type not in PERSONAL]


FOUND = [
    # aws ssm get-parameters --with-decryption: JSON (also escaped in a JSON string), YAML,
    # text and table output
    (
        '{"Parameters": [{"Name": "/ledger/prod/db/password",\n  "Type": "SecureString",\n'
        '  "Value": "vR7-krO^VnJ5bB",\n  "Version": 10}]}',
        ["vR7-krO^VnJ5bB"],
    ),
    (
        '{"stdout": "{\\n \\"Name\\": \\"/app/smtp\\",\\n \\"Type\\": \\"SecureString\\",\\n'
        '  \\"Value\\": \\"jEbq2#N_MK*YxjOkpk\\",\\n \\"Version\\": 26\\n}"}',
        ["jEbq2#N_MK*YxjOkpk"],
    ),
    (
        "- Name: /prod/api\n  Type: SecureString\n  Value: Juniper#Walnut48\n  Version: 2\n",
        ["Juniper#Walnut48"],
    ),
    (
        "PARAMETER\tarn:aws:ssm:eu-west-1:123456789012:parameter/prod/db\ttext\t2024-06-01\t"
        "/prod/db\tSecureString\tHarbor#Meadow10\t3\n",
        ["Harbor#Meadow10"],
    ),
    (
        "||  Name              |  /prod/db/password          ||\n"
        "||  Type              |  SecureString               ||\n"
        "||  Value             |  Saffron$Pepper62           ||\n",
        ["Saffron$Pepper62"],
    ),
    # DynamoDB JSON: the type wrapper between a secret attribute's name and its value
    (
        '"api_key": {\n  "S": "w53m9SDA76-_iPc5_xHZfVnluDwhCCm4"\n},',
        ["w53m9SDA76-_iPc5_xHZfVnluDwhCCm4"],
    ),
    # Authorize.net's merchant authentication, XML and JSON
    (
        "<merchantAuthentication><name>CZAHHFzxEf</name><transactionKey>7nh65KSiASZYc4QZL61flQ"
        "gukROVoTc4</transactionKey></merchantAuthentication>",
        ["7nh65KSiASZYc4QZL61flQgukROVoTc4"],
    ),
    (
        '"merchantAuthentication": {"name": "x", "transactionKey": "9Jk2mQ7pLx4Rt8Wz"}',
        ["9Jk2mQ7pLx4Rt8Wz"],
    ),
    # an Authorization header holding the key itself, without a scheme
    (
        "DEBUG checkout.http Authorization: W6FLX9UBxtDzsydliJQmKEzf8kbmIe5F\nDEBUG body={}",
        ["W6FLX9UBxtDzsydliJQmKEzf8kbmIe5F"],
    ),
    # a URL's password with a raw @: the host follows the last @
    (
        "DATABASE_URL=postgres://app:Meadow@Ember69@auth-6.internal.corvid-apps.net:5432/app",
        ["Meadow@Ember69"],
    ),
    # logins in chat and notes
    ('"body": "ssh into 168.11.138.205 with root / Orbit*Orbit97",', ["Orbit*Orbit97"]),
    ("- Router admin: `admin` / `Pepper6139?`\n- VPN endpoint", ["Pepper6139?"]),
]


@pytest.mark.parametrize("text,values", FOUND)
def test_found(engine, text, values):
    got = secrets(engine, text)
    for v in values:
        assert v in got, (text, got)


SILENT = [
    # Supabase's local-development keys (supabase start, iss supabase-demo): the same in
    # every checkout and in the docs, under any name
    f"apikey: {SUPABASE_DEMO_ANON}\nContent-Range: 0-3/*",
    f'SUPABASE_SERVICE_ROLE_KEY="{SUPABASE_DEMO_SERVICE}"',
    # Metabase's redaction mask and similar **Name** masks
    '"details": {"user": "bi_ro", "ssl": true, "password": "**MetabasePass**"}',
    '"service-account-json": "**MetabaseSecret**"',
    # an SSM parameter read without --with-decryption: KMS ciphertext
    '"Type": "SecureString",\n "Value": "AQICAHhQ0vbd3lIOx7Hp5LzYk9cM2b1wNqXr7v0eJ5Ew3T2aGgE=",',
    # Checkout.com's card token and payment source ids
    '"source": {"type": "token", "token": "src_eo7zeu9s0uzsn4kth9agjvgrie"}',
    '{"type": "token", "token": "tok_ubfj2q76miwundwlk72vxt2i7q"}',
    # an Authorization header with a scheme and parameters, a DynamoDB attribute not secret
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request",
    '"plan": {"S": "free_tier_basic"}',
    # ssh prose without a password
    "ssh into the box with your key / then run make",
]


@pytest.mark.parametrize("text", SILENT)
def test_silent(engine, text):
    assert secrets(engine, text) == []
