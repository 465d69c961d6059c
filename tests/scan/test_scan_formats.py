"""Formats and false alarms found by an independent evaluation: general rules, not examples.

Each case gives a text and the (type, value) pairs the default packs must report; an empty
list means the text must stay silent."""

import pytest
from mcp_gateway.scan.engine import Engine

V = "Zx9LmQ2pT8vRk4Wn"  # a random-looking value


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def found(engine, text):
    return [(d.type, d.value) for d in engine.scan_text(text)]


SILENT_GENERIC = [
    # a known prefix followed by a redaction marker is a placeholder
    "STRIPE_SECRET_KEY: sk_live_<redacted>",
    "STRIPE_SECRET_KEY=sk_live_...",
    "api_key: sk_live_***",
    # code: calls, subscripts, dotted names are expressions, not values
    "secret = v1.Secret(metadata=meta)",
    "secret = base64.b64encode(os.urandom(32))",
    "token = hashlib.sha256(data).hexdigest()",
    "password = sha256(password1)",
    'var apiKey = Configuration["ApiKey"];',
    "client_secret = settings.CLIENT_SECRET",
    # references into secret managers
    "password: vault:secret/data/db#password",
    "db_password: keyvault://kv-prod/db-pass",
    "secret: projects/acme/secrets/db/versions/latest",
    "DB_PASSWORD=arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
    "password: op://vault/item/field",
    "api_key=sm://prod/api-key",
    # template placeholders, defaults included
    "DB_PASSWORD=${DB_PASSWORD:-postgres}",
    "password = %(DB_PASSWORD)s",
    "password: __DB_PASSWORD__",
    "password=@@DB_PASSWORD@@",
    '@Value("${db.password}") String password;',
]


@pytest.mark.parametrize("text", SILENT_GENERIC)
def test_generic_secret_false_alarms_stay_silent(engine, text):
    assert found(engine, text) == []


GENERIC_FOUND = [
    # assignment through a subscript
    ("app.config['SECRET_KEY'] = 'pLIix6MEOLeMa61EqJom'", "pLIix6MEOLeMa61EqJom"),
    ("$config['db_password'] = 'Xk8#mQ2vLp9z';", "Xk8#mQ2vLp9z"),
    ("os.environ['API_KEY'] = 'a8Fj2kLq9ZxP0wRt'", "a8Fj2kLq9ZxP0wRt"),
    ('settings["client_secret"] = "Qw7eRt9yUi0pAs2d"', "Qw7eRt9yUi0pAs2d"),
    # key names, separators
    (f"new_password: {V}", V),
    (f"old_password={V}", V),
    (f"password:\u00a0{V}", V),
    (f'"password": {V}', V),
    (f"$env:DB_PASSWORD = '{V}'", V),
    # spans: an unquoted value runs to whitespace; | ends it; & ends it only in a query
    ("password=Falcon855&falcon92 host=db", "Falcon855&falcon92"),
    (f"ts=1|api_key={V}|user=svc-4", V),
    (f"GET /login?user=bob&password={V}&next=/home", V),
]


@pytest.mark.parametrize(("text", "value"), GENERIC_FOUND)
def test_generic_secret_formats(engine, text, value):
    assert found(engine, text) == [("generic_secret", value)]
