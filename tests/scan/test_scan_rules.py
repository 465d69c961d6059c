"""Shipped packs: one positive per detection type (with valid checksums) and tricky negatives."""

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.rules import PII_TYPES, SECRET_TYPES
from scan_helpers import ALNUM, bad_crc, github_token, iban, jwt, luhn_complete, npm_token, pem, rnd


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


AWS_ID = "AKIA" + rnd(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", seed=10)
AWS_SECRET = rnd(40, ALNUM + "/+", seed=11)
B64_40 = rnd(86, ALNUM + "+/", seed=12)

# (type, text, value)
POSITIVES = [
    ("aws_access_key_id", f"aws_access_key_id = {AWS_ID}", AWS_ID),
    ("aws_secret_access_key", f'{{"aws_secret_access_key": "{AWS_SECRET}"}}', AWS_SECRET),
    ("aws_secret_access_key", f"{AWS_ID}\n{AWS_SECRET}", AWS_SECRET),
    (
        "aws_session_token",
        "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjE" + rnd(200, ALNUM + "/+", seed=13),
        None,
    ),
    ("github_token", f"token: {github_token()}", github_token()),
    ("github_token", f"GITHUB_TOKEN={github_token('ghs', 5)}", github_token("ghs", 5)),
    ("github_token", "pat github_pat_11" + rnd(20, seed=14) + "_" + rnd(59, seed=15), None),
    ("gitlab_token", "glpat-" + rnd(20, ALNUM + "_-", seed=16), None),
    (
        "slack_token",
        "xoxb-"
        + rnd(12, "0123456789", seed=33)
        + "-"
        + rnd(13, "0123456789", seed=34)
        + "-"
        + rnd(24, seed=17),
        None,
    ),
    (
        "slack_webhook",
        "https://hooks.slack.com/services/T0ABCD123/B0ABCD456/" + rnd(24, seed=18),
        None,
    ),
    ("stripe_key", "sk_live_" + rnd(24, seed=19), None),
    ("stripe_key", "sk_test_" + rnd(24, seed=20), None),
    ("stripe_key", "rk_live_" + rnd(24, seed=21), None),
    ("openai_api_key", "sk-proj-" + rnd(48, ALNUM + "_-", seed=22), None),
    ("openai_api_key", "sk-" + rnd(20, seed=23) + "T3BlbkFJ" + rnd(20, seed=24), None),
    ("anthropic_api_key", "sk-ant-api03-" + rnd(93, ALNUM + "_-", seed=25) + "AA", None),
    ("google_api_key", "AIza" + rnd(35, ALNUM + "_-", seed=26), None),
    ("private_key", pem(), pem()),
    ("private_key", pem("OPENSSH ", "\\n"), pem("OPENSSH ", "\\n")),
    ("private_key", pem("", "\\\\n"), pem("", "\\\\n")),
    (
        "azure_storage_key",
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={B64_40}==;",
        B64_40 + "==",
    ),
    ("twilio_api_key", "SK" + rnd(32, "0123456789abcdef", seed=27), None),
    (
        "sendgrid_api_key",
        "SG." + rnd(22, ALNUM + "_-", seed=28) + "." + rnd(43, ALNUM + "_-", seed=29),
        None,
    ),
    ("npm_token", f"//registry.npmjs.org/:_authToken={npm_token()}", npm_token()),
    ("pypi_token", "pypi-AgEIcHlwaS5vcmc" + rnd(60, ALNUM + "_-", seed=30), None),
    ("jwt", f"Authorization: Bearer {jwt()}", jwt()),
    ("context7_api_key", "--api-key ctx7sk-" + rnd(32, ALNUM + "-", seed=31), None),
    ("generic_secret", 'DB_PASSWORD="Zx9#kq2Lm!p"', "Zx9#kq2Lm!p"),
    ("generic_secret", "client_secret: Qm8vT2xLcUp3Rz", "Qm8vT2xLcUp3Rz"),
    ("generic_secret", "Authorization: Bearer " + rnd(40, seed=32), None),
    ("url_credentials", "postgres://app:Xk9mP2qLz7@db.internal:5432/prod", "Xk9mP2qLz7"),
    ("basic_auth", "Authorization: Basic " + base64.b64encode(b"svc:Xk9#mP2qLz").decode(), None),
    ("email", "contact alice.smith@acme-corp.io today", "alice.smith@acme-corp.io"),
    ("credit_card", "card " + luhn_complete("453957876362148"), None),
    ("credit_card", "card 4539-5787-6362-1486", "4539-5787-6362-1486"),
    ("us_ssn", "SSN: 536-22-8726", "536-22-8726"),
    ("iban", "IBAN " + iban(), None),
    ("phone_number", "call +44 20 7946 0958 now", "+44 20 7946 0958"),
    ("phone_number", "cell (415) 555-2671", "(415) 555-2671"),
    ("ipv4", "connect to 52.20.30.40:5432", "52.20.30.40"),
]


def _value(text, value):
    if value is not None:
        return value
    # the single token in the text that starts with a letter/digit and is longest
    return max(text.replace("=", " ").replace(":", " ").split(), key=len)


@pytest.mark.parametrize(
    "type_,text,value", POSITIVES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(POSITIVES)]
)
def test_positive(engine, type_, text, value):
    dets = engine.scan_text(text)
    got = [d for d in dets if d.type == type_]
    assert got, f"{type_} not found in {text!r}: {dets}"
    d = got[0]
    assert text[d.start : d.end] == d.value
    if value is not None:
        assert d.value == value


def test_every_type_has_a_positive_and_a_rule(engine):
    covered = {t for t, _, _ in POSITIVES}
    assert covered == SECRET_TYPES | PII_TYPES
    assert {r.type for r in engine.rules} >= SECRET_TYPES | PII_TYPES


NEGATIVES = [
    "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    'api_key: "YOUR_API_KEY"',
    "password: ${DB_PASSWORD}",
    '"password": "{{ .Values.db.password }}"',
    "card ending ****4242",
    '"token": "[REDACTED]"',
    "publishable key pk_live_" + rnd(24, seed=40),
    "account AC" + rnd(32, "0123456789abcdef", seed=41),
    "id 123e4567-e89b-12d3-a456-426614174000",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    '"integrity": "sha512-' + rnd(86, ALNUM + "+/", seed=42) + '=="',
    "data:image/png;base64,"
    + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode(),
    "card 4539578763621487",  # Luhn fails
    "test card 4242 4242 4242 4242",
    "SSN 078-05-1120",
    "IBAN DE89 3704 0044 0532 0130 00",
    bad_crc(github_token()),
    "npm token " + bad_crc(npm_token()),
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
    + rnd(64, seed=43)
    + "\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa"
    + rnd(64, seed=44)
    + "\n-----END CERTIFICATE-----",
    "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + rnd(300, ALNUM + "+/", seed=45) + " user@laptop",
    "postgres://user:password@localhost:5432/db",
    "released 2024-01-15 version 1.2.3.4 at 12:30:45",
    "localhost 127.0.0.1 and 0.0.0.0 netmask 255.255.255.0",
    "max_tokens: 4096, token_count: 1234567",
    '"nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRqb2Jm"',
    "PublicKeyToken=b77a5c561934e089",
    "git@github.com:acme/repo.git",
    "icon@2x.png",
    "order #1234567890123 total 1700000000000 ms",
    "password = getpass.getpass()",
    "api_key = os.environ['API_KEY']",
]


@pytest.mark.parametrize("text", NEGATIVES, ids=[f"neg-{i}" for i in range(len(NEGATIVES))])
def test_negative(engine, text):
    assert engine.scan_text(text) == []


def test_most_specific_type_wins(engine):
    tok = github_token()
    for text in (
        f"https://x-access-token:{tok}@github.com/acme/repo.git",
        f'GITHUB_PASSWORD="{tok}"',
        f"Authorization: Bearer {tok}",
    ):
        dets = engine.scan_text(text)
        assert [d.type for d in dets] == ["github_token"], (text, dets)
        assert dets[0].value == tok


def test_jwt_in_bearer_is_jwt(engine):
    t = jwt()
    dets = engine.scan_text(f"Bearer {t}")
    assert [(d.type, d.value) for d in dets] == [("jwt", t)]


def test_private_key_rules_are_direction_scoped(engine):
    ids = {r.id: r for r in engine.rules}
    assert ids["private-key"].action == "block"
    assert ids["private-key"].spec.scope.direction == ["c2s"]
    assert ids["private-key-in-result"].action == "redact"
    assert ids["private-key-in-result"].spec.scope.direction == ["s2c"]
    dets = engine.scan_text(pem())
    assert len(dets) == 1  # one finding per value even with two rules


B64 = __import__("base64").b64encode

MORE = [
    (f"aws configure set aws_secret_access_key {AWS_SECRET}", ["aws_secret_access_key"]),
    (
        f"User name,Password,Access key ID,Secret access key\nbob,,{AWS_ID},{AWS_SECRET}",
        ["aws_access_key_id", "aws_secret_access_key"],
    ),
    ('{"headers": {"Authorization": "token ' + github_token() + '"}}', ["github_token"]),
    ("mongodb://admin:" + rnd(16, seed=11) + "@cluster0.mongodb.net/db", ["url_credentials"]),
    ("amqp://guest:guest@localhost:5672/", []),
    ("DATABASE_URL=postgresql://user:${DB_PASSWORD}@db:5432/app", []),
    ("curl -H 'X-API-Key: " + rnd(32, seed=13) + "' https://api.x.io", ["generic_secret"]),
    ("docker login -u svc -p " + rnd(20, seed=21) + " registry.io", ["generic_secret"]),
    (
        '{"auths":{"registry.io":{"auth":"'
        + B64(b"svc:" + rnd(16, seed=22).encode()).decode()
        + '"}}}',
        ["basic_auth"],  # user:password credentials
    ),
    ("define( 'DB_PASSWORD', 'Kx9#mP2qLz7!' );", ["generic_secret"]),
    ("<password>Kx9mP2qLz7w</password>", ["generic_secret"]),
    ("machine api.acme.io\n  login bot\n  password Kx9mP2qLz7w", ["generic_secret"]),
    ("db.internal:5432:orders:app_rw:Kx9mP2qLz7w", ["generic_secret"]),
    ('        - name: SMTP_PASS\n          value: "Kx9mP2qLz7w"', ["generic_secret"]),
    ('"smtpPass": "Kx9mP2qLz7w"', ["generic_secret"]),
    ("Authorization: ApiKey " + rnd(40, seed=33), ["generic_secret"]),
    (
        "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey="
        + rnd(44, seed=34),
        ["generic_secret"],
    ),
    ("token_file: /var/run/secrets/kubernetes.io/serviceaccount/token", []),
    ('password: "password123"', []),
    ("password: {password}", []),
    ("db_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162636465", []),
    ("The password is hunter2", []),
    (
        "Contact: John Smith <john.smith@globex-corp.com>, +1 (212) 555-2147",
        ["email", "phone_number"],
    ),
    ("Call 020 7946 0018 or +44 7700 913482", ["phone_number", "phone_number"]),
    ("server at 85.214.1.20 port 22; gateway 34.96.0.1", ["ipv4", "ipv4"]),
    ("server at 192.168.1.20 port 22; gateway 10.0.0.1", []),  # private networks
    ("User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.6099.109", []),
    ('"snowflake": "354577993110676574"', []),  # JCB-range, Luhn-valid, but 18 digits
    ("stripe rk_test_51faKe2" + rnd(60, seed=35), ["stripe_key"]),  # 'faKe' inside random text
    (
        "line one\\nghp_" + github_token()[4:] + "\\nline three",
        ["github_token"],
    ),  # after a literal \n
]


@pytest.mark.parametrize("text,types", MORE, ids=[f"more-{i}" for i in range(len(MORE))])
def test_more_formats(engine, text, types):
    assert sorted(d.type for d in engine.scan_text(text)) == sorted(types), engine.scan_text(text)


@pytest.mark.parametrize(
    "text,types",
    [
        (
            "HF_TOKEN=hf_"
            + rnd(34, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", seed=41),
            ["generic_secret"],
        ),
        ("groq gsk_" + rnd(52, seed=42), ["generic_secret"]),
        ("hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", []),
        ('"api_key": "550e8400-e29b-41d4-a716-446655440000"', ["generic_secret"]),  # UUID-style key
        ('"idempotency_key": "550e8400-e29b-41d4-a716-446655440000"', []),
        ('"hashed_password": "$2b$12$KIXQJQe9yLd7rP3xk8Vn5eW1zQ2Ck0fG8hY7uT6rE5wQ3aS1dF2gH"', []),
    ],
)
def test_other_services_and_identifiers(engine, text, types):
    assert [d.type for d in engine.scan_text(text)] == types


# -- allowlist patterns joined into one search ---------------------------------------------
def _shipped_allow_patterns() -> list[str]:
    import yaml
    from mcp_gateway.scan.rules import default_paths

    out: list[str] = []
    for f in default_paths():
        doc = yaml.safe_load(f.read_text())
        out += (doc.get("allowlist") or {}).get("patterns", [])
        out += (doc.get("allowlist") or {}).get("context", [])
        for r in doc.get("rules") or []:
            al = r.get("allowlist") or {}
            out += al.get("patterns", []) + al.get("context", [])
    return out


ALLOW_MIX = [
    r"(?i)^example",
    r"^[a-z]+(?:_[a-z]+)+$",
    r"(?P<q>['\"])x(?P=q)",  # a named group and a reference: apart
    r"(a)\1",  # a numbered reference: apart
    r"(?m)^#",
    r"(?s)a.b",
    r"x{3,}",
]


UNIQUE_ALLOW = list(dict.fromkeys(ALLOW_MIX + _shipped_allow_patterns()))


def _joined_allow():
    from mcp_gateway.scan.rules import any_of

    if not _JOINED:
        _JOINED.append(any_of(UNIQUE_ALLOW))
    return _JOINED[0]


_JOINED: list = []


def test_allowlist_patterns_are_joined():
    assert len(UNIQUE_ALLOW) > 60 and len(_joined_allow()) < 5  # joined, bar a few kept apart


# One pattern a test: drawing from all ~200 in each example made Hypothesis's input
# generation slow enough to fail its health check on a loaded machine.
@pytest.mark.parametrize("p", UNIQUE_ALLOW)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_joined_allowlist_patterns_find_what_each_of_them_finds(p, data):
    v = data.draw(st.from_regex(p), label=p)
    assert any(j.search(v) for j in _joined_allow()), (p, v)


def test_joined_allowlist_patterns_find_nothing_none_of_them_finds():
    import random
    import re

    from mcp_gateway.scan.rules import any_of

    joined = any_of(UNIQUE_ALLOW)
    alone = [re.compile(p) for p in UNIQUE_ALLOW]
    r = random.Random(7)
    alphabet = "aAxX_-.:/$%{}()[]<>@!#'\"\n\\ 019éStringPASSWORDexample"
    values = [
        "String!", "to.path(89)", "os.environ/OPENAI_API_KEY", "sk-1234", "$2b$10$abc",
        "md5" + "a" * 32, "${DB_PASSWORD}", "a\nb", "# c", "Example key", "xxx", "'x'", "aa",
        "db_password", "getPassword()", "--registry-auth", "ENC[AES256", "@string/maps_key",
    ]  # fmt: skip
    values += ["".join(r.choice(alphabet) for _ in range(r.randint(1, 24))) for _ in range(3000)]
    found = 0
    for v in values:
        want = any(p.search(v) for p in alone)
        found += want
        assert any(p.search(v) for p in joined) == want, v
    assert 100 < found < len(values) - 100  # both kinds of value were tried
