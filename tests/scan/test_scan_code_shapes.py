"""Source code and its docs read through an MCP filesystem server must pass unchanged: an
identifier, a type, an expression or a documented example under a secret's name is no
secret, and redacting it corrupts the file the agent sees (and the agent may write the
placeholder back when it edits). Real secrets in the same syntax are still found. The
shapes come from the Python standard library, site-packages and node_modules."""

import base64
import binascii
import hashlib

import pytest
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.validators import base62

PERSONAL = {"email", "credit_card", "us_ssn", "iban", "phone_number", "ipv4"}

# format-valid fakes made from hashes of fixed words (no real credential)
_BODY = base64.b64encode(hashlib.sha256(b"code-shapes fake gh").digest()).decode()
_BODY = "".join(c for c in _BODY if c.isalnum())[:30]
GH_TOKEN = f"ghp_{_BODY}{base62(binascii.crc32(_BODY.encode()))}"
OPENAI_KEY = "sk-proj-" + hashlib.sha256(b"code-shapes fake openai").hexdigest()[:48]
HEX32 = hashlib.sha256(b"code-shapes fake key").hexdigest()[:32]


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def masked(engine, text):
    """What the gateway would change: detections it redacts or blocks."""
    return [(d.rule, d.value) for d in engine.scan_text(text) if d.action in ("redact", "block")]


def secrets(engine, text):
    return [d.value for d in engine.scan_text(text) if d.type not in PERSONAL]


SILENT = [
    # type annotations: a union, a class, a generic, a class by its module
    "def _token_or_error(token: EventLoopToken | None) -> EventLoopToken:\n    pass\n",
    "    token: EventLoopToken | None = None,\n",
    "    auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,\n",
    "def sign(\n    self,\n    private_key: CertificateIssuerPrivateKeyTypes,\n    algorithm: A,\n):\n",
    "def make_rev_args(username: str | None, password: HiddenText | None) -> CommandArgs:\n",
    "class Url:\n    password: Optional[str]\n    port: int\n",
    "class Model(BaseModel):\n    password: SecretBytes\n",
    "    _credential: TokenCredential\n",
    "    self.certificate_private_key: Optional[\n        PrivateKey\n    ] = None\n",
    "def update_token_expiry(self, token: OAuthToken) -> None:\n",
    "        private_key: PKCS7PrivateKeyTypes,\n",
    "    def sign(self, private_key: ed25519.Ed25519PrivateKey, f_priv: _FragList):\n",
    "MLKEM768X25519PrivateKey = rust_openssl.hpke.MLKEM768X25519PrivateKey\n",
    "    refresh_token: RefreshTokenT,\n",
    "    RESULT_INVALID_CREDENTIALS: LDAPInvalidCredentialsResult,\n",
    # expressions: subscripts, slices, calls, attribute chains, a concatenation
    "        token = tokens[idx]\n",
    "            password = entry[1]\n",
    "    pw = pw[:-1]\n",
    "        secret_key = self.secret_keys[-1]\n",
    "    authkey = process.current_process().authkey\n",
    "        password = connection.sasl_credentials[2].encode(charset)\n",
    "        token = state.tokens[startDelim.token]\n",
    "    native_token = current_token().native_token\n",
    "        self._signing_key = key[:16]\n",
    "Token = Ignore + PlainToken\n",
    "            sasl_credentials=self.connection.sasl_credentials)\n",
    # a lexer's token kinds, names in code and a lazy import table
    "            token = Keyword\n",
    "                token = Whitespace\n",
    "    def _make_begin_state(compound, _core_token=_core_token,\n",
    '    "basic_auth": ".asyncio.server",\n',
    "    lastEventId = event.lastEventId\n",
    # docstrings: a parameter's description, an ABNF grammar
    "    Args:\n        check_credentials: Function or coroutine that verifies credentials.\n",
    "        password: Available when the URI contains `User Information`_.\n",
    "    :param allow_token: Disable to quote the value even if it only has token characters.\n",
    "#   token          = 1*tchar\n",
    "    ('http', 'user/name', 'password', 'localhost:22')),\n",
    # lists of quoted identifiers read as a CSV table under a 'pwd' or password cell
    "    'PutScrapText', 'pwd', 'Quit', 'RatioFromNumber', 'Redimension', 'Remez',\n"
    "    'Remove', 'RemoveContour', 'RemoveFromGizmo', 'RemoveFromGraph',\n",
    '    "pwd", "q", "s", "qby", "qbys", "qchi", "qchi_7", "qladder",\n'
    '    "qladder_7", "qnorm", "qnorm_7", "qqplot", "qqplot_7", "qreg",\n',
    "    password, salt, rounds, dklen = vector\n    out = pbkdf2(digest_name, password)\n"
    "    self.assertEqual(out, expected)\n",
    # titles: an LDAP schema's names, prose
    "X-NDS_NAME 'Password Expiration Interval' X-NDS_NONREMOVABLE '1' )",
    "('2.16.840.1.113730.3.4.4', OID_CONTROL, 'Netscape Password Expired', 'Netscape'),",
    "# fail a second time. Hm. Unless the Password Manager is\n",
    # IPv6 test strings: an IPv4 tail, a zone
    'assertBadSplit("10:9:8:7:6:5:4:3:42.42.42.42")\nassertBadSplit("7:6:5:4:3:2:1%scope")\n',
    # more of the same, from other packages: a lower-case type in a union, a generic, a
    # private alias, optional chaining, an f-string's call, Perl's arrow, a docstring's
    # one-word description, empty assignments, placeholders, a bracketed IPv6 address
    "        self.auth: httpx2.Auth | None = resolved\n",
    "    private_key: Ed25519PrivateKey | Ed448PrivateKey,\n",
    "OLDSTYLE_AUTH: Final[Pattern[str]]\n",
    "        self._storage_oauth_token = PydanticAdapter[OAuthToken](\n",
    "def prepare_child(next: _Next, token: _Token) -> _Callback: ...\n",
    "    private_key: _SSH_PRIVATE_KEY_TYPES,\n",
    "      onresumptiontoken: options?.onresumptiontoken\n",
    "        r += f\", secret='{base64.b64encode(self.secret).decode()}'\"\n",
    "    while($token = $self->get_token) {\n",
    "        password: Valkey password. Defaults to None.\n",
    "    :param password: Unicode password.\n",
    "        :param token: REQUIRED.  The token that the client wants to get revoked.\n",
    "        client_secret: WorkOS client secret\n",
    '  __mvncomp "username= message= passphrase= password= scmVersion= " "-D"\n',
    "    $pass = '-anonymous@'\n",
    '    client_secret="your-auth0-client-secret",\n',
    '    client_secret="sk_test_456",\n',
    "the id_token_encrypted_response_enc value is A128CBC-HS256. When\n",
    '    "host": "[2606:2800:220:1:248:1893:25c8:1946:43209]",\n',
    "redis://[[username]:[password]]@localhost:6379/0\n",
    'url = httpx.URL("https://jo%40email.com:a%20secret@www.example.com")\n',
    # RFC 5849's (OAuth 1.0) documented examples, also in a signature base string table
    'Authorization: OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2",\n'
    '    oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1"\n',
    "| Name | Value |\n|   oauth_consumer_key   | 9djdj82h48djs9d2 |\n",
    # RFC 6749's documented examples
    "Authorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW\n",
    '{"access_token": "2YotnFZFEjr1zCsicMWpAA", "refresh_token": "tGzv3JOkF0XG5Qx2TlKWIA"}',
    # a docstring's field list: the text after the parameter's name describes it
    'def connect(client_id, client_secret):\n    """:param client_secret: Client Secret, from the console."""\n',
    "    :ivar token: Token\n    :type password: SecretStr\n",
    " * @param password: Passphrase Of The Wallet\n",
    # a signature's parameter typed by a class (the next parameter below, a keyword-only
    # marker, or the closing parenthesis and the return type)
    "    def step(self, shrink_pass: ShrinkPass, *, random_order=False):\n",
    "def push_offered_psks(buf: Buffer, pre_shared_key: OfferedPsks) -> None:\n",
    "    credentials: Credentials | Iterable[Credentials] | None = None,\n",
    # a scheme configured by its class (ASP.NET, Spring), not a bearer token
    "Authentication: Microsoft.AspNetCore.Authentication.JwtBearer\n",
    "authentication: org.springframework.security.ldap\n",
    "Authentication: NegotiateKerberosAuthenticationHandler\n",
    # a Wi-Fi profile's fields are no ipsec.secrets line; an API route is no relay map's login
    'Security: EAP "PEAP-MSCHAPv2"\nMode: PSK "WPA2-Personal"\n',
    "[api.example.org]:443 GET:/v1/users/list\n",
    # the shell's working directories in an environment dump (server-everything's get-env in
    # a CI runner: PWD=/github/workspace was redacted as a password)
    "PWD=/github/workspace\nOLDPWD=/builds/acme/app\nHOME=/root\n",
    '{"PWD": "/nix/store/abc-def", "OLDPWD": "/Volumes/Data/src"}',
]


@pytest.mark.parametrize("text", SILENT)
def test_code_is_not_redacted(engine, text):
    assert masked(engine, text) == []


FOUND = [
    (f'token = "{GH_TOKEN}"\n', GH_TOKEN),
    (f'api_key = "{OPENAI_KEY}"\n', OPENAI_KEY),
    ("database:\n  user: app\n  password: Hunter2!x9\n", "Hunter2!x9"),
    ("DB_PASSWORD=Meadow*Rocket58\n", "Meadow*Rocket58"),
    # real values in the shapes made silent above: mixed-case random strings, a value with
    # prose after it, a Tasmota command, a CSV row, .pgpass lines
    ("password: QfhsnhQhJunAx6l\n", "QfhsnhQhJunAx6l"),
    ("secret: U2FmZnJvbjEwNjMj\n", "U2FmZnJvbjEwNjMj"),
    ("login failed: password: Xk9#mQ2vLp was rejected by the server\n", "Xk9#mQ2vLp"),
    (f"client_secret = {HEX32}\n", HEX32),
    ("12:01:22.331 CMD: MqttPassword Glacier%Rocket36\n", "Glacier%Rocket36"),
    ("host,user,password\ndb1,admin,Tr0ub4dor&3x\n", "Tr0ub4dor&3x"),
    ("auth_token: Xk9mQ2vLpR7w\n", "Xk9mQ2vLpR7w"),
    # a Markdown table's cell is no type annotation's union
    ("| db01 | password: S3cr3tPass | Active |\n", "S3cr3tPass"),
    ("| db01 | password: Xk9mQ2vLpR | None |\n", "Xk9mQ2vLpR"),
    ("password: Kq7vLp2Xw9 password\n", "Kq7vLp2Xw9"),
    ("redis://app:Xk9#mQ2vLp@db.internal:6379/0\n", "Xk9#mQ2vLp"),
    ("# ~/.pgpass\ndb.internal:5432:appdb:app:Pq8vWz3LmK\n", "Pq8vWz3LmK"),
    ("fe80:5432:appdb:app:Pq8vWz3LmK\n", "Pq8vWz3LmK"),
    # a field list's name is not enough when no docstring field marker comes before it
    ("params:\n  password: Zq8vK2mP9xL4\n", "Zq8vK2mP9xL4"),
    ("param_password: Zq8vK2mP9xL4\n", "Zq8vK2mP9xL4"),
    # passphrases of words are passwords, not type names (review of the code shapes)
    ("DB_PASSWORD=PurpleMonkeyDishwasher\n", "PurpleMonkeyDishwasher"),
    ("database:\n  password: CorrectHorseBatteryStaple\n", "CorrectHorseBatteryStaple"),
    ("Server=db;UID=app;PWD=SummerVacation;\n", "SummerVacation"),
    ("admin_password: AdminPass\n", "AdminPass"),
    ("{password: SuperSecret, user: bob}\n", "SuperSecret"),
    ("| DB | password: SuperSecret | Prod |\n", "SuperSecret"),
    ("DB_PASSWORD=1*Qwerty77\n", "1*Qwerty77"),
    ("TOKEN=Zebraword\n", "Zebraword"),
    ('%any : PSK "Xk9mQ2vLpR7w"\n', "Xk9mQ2vLpR7w"),
    ("[smtp.mandrillapp.com]:587 ops:md-Xk9mQ2vLpR7wZq8v\n", "md-Xk9mQ2vLpR7wZq8v"),
    # a name that only ends in PWD is still a password's
    ("export DB_PWD=Zq8vK2mP9xL4\n", "Zq8vK2mP9xL4"),
    ("MYSQLPWD=Zq8vK2mP9xL4\n", "Zq8vK2mP9xL4"),
    # ODBC's password is PWD too: the value, not the name, tells it from a directory
    (
        "Driver={ODBC Driver 18};Server=db;UID=report_reader;PWD=Walnut@Walnut95;\n",
        "Walnut@Walnut95",
    ),
    ("UID=report_reader\nPWD=Zq8vK2mP9xL4\n", "Zq8vK2mP9xL4"),
]


@pytest.mark.parametrize("text,value", FOUND)
def test_secrets_in_code_syntax_are_found(engine, text, value):
    assert value in secrets(engine, text), secrets(engine, text)


def test_a_card_in_a_credit_card_statement_account_is_found(engine):
    """In an OFX credit-card statement <ACCTID> is the card's number (only other …ID
    elements, <FITID>, name an id)."""
    text = "<CCACCTFROM><ACCTID>4556737586899855</ACCTID></CCACCTFROM>\n"
    assert [d.type for d in engine.scan_text(text)] == ["credit_card"]
    assert engine.scan_text("<STMTTRN><FITID>4556737586899855<TRNAMT>-10.00\n") == []


def test_the_code_line_check_is_linear():
    import time

    from mcp_gateway.scan.validators import _CODE_LINE, _CODE_LINE_MAX

    for text in ("a" * 100_000, "a_" * 50_000, "x = " + "a.b" * 30_000 + "("):
        t0 = time.process_time()
        _CODE_LINE.search(text)
        _CODE_LINE.search(text[:_CODE_LINE_MAX])
        assert time.process_time() - t0 < 0.5
