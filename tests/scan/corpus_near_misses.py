"""The forty-fourth corpus (blind round): hard negatives and near misses, what makes a DLP scanner
cry wolf or miss by a hair. Mostly benign MCP traffic full of format-alike values (UUIDs, ULIDs,
KSUIDs, git SHAs, OCI digests, lockfiles and their integrity hashes, base64 images, fonts and
wasm, public keys and certificates, documentation example credentials, placeholders, numbers
that pass or fail Luhn but are no card: IMEI, ISBN-13 and EAN barcodes, parcel tracking numbers,
order, invoice and payment ids, timestamps in ms and ns, build numbers, versions shaped like IP
addresses, OIDs, documentation IP ranges, MAC addresses, test vectors, unsigned id_tokens,
colours, DNA, minified JS, CSS, SVG paths), and next to them the same shapes that are secrets or
personal data: a real key beside its placeholder, a card in a dispute export next to order
numbers, an IBAN in a statement next to its references and a creditor id, a phone next to a
tracking number, a private key among public keys, a token in a lockfile's registry URL.

Labels follow the project's vocabulary (/work/shared/notes/detection-types.md) and its decisions:
documentation examples (AWS's ``AKIAIOSFODNN7EXAMPLE`` pair, Stripe's documented
``sk_test_4eC39HqLyjWDarjtT1zdp7dc``, the jwt.io token, payment providers' test cards, RFC test
vectors) are benign; a random ``sk_test_`` key is a secret (test-mode secrets are secrets); a
public IPv4 address is personal data wherever it stands (8.8.8.8 and 1.1.1.1 too: the project
reports every address outside the private, loopback, link-local, CGNAT and documentation
ranges); an unsigned JWT (``alg: none``, empty signature) is no credential and is not labelled;
a WireGuard ``PrivateKey`` is a ``generic_secret``; MAC and IPv6 addresses are not labelled.
Written before the rules were read; the values are fake but format-valid.

    python tests/scan/corpus_near_misses.py OUT.jsonl [SEED]
"""

from __future__ import annotations

import base64
import hashlib

from corpus_kit import ALNUM, DIG, LO, UP, J, Kit, b64u, bad_iban, bad_luhn, luhn, main

SEED = 44
KIT = Kit("c44", SEED)
R = KIT.R
rs, mixed, hexs, pick = KIT.rs, KIT.mixed, KIT.hexs, KIT.pick
github_token, uid = KIT.github_token, KIT.uid
L, add, wrap = KIT.L, KIT.add, KIT.wrap
result, call, resource = KIT.result, KIT.call, KIT.resource

B64 = ALNUM + "+/"
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BECH = "023456789acdefghjklmnpqrstuvwxyz"


def d(n):
    return "".join(R.choice(DIG) for _ in range(n))


def d1(n):
    return str(R.randint(1, 9)) + d(n - 1)


def b64bytes(n):
    return base64.b64encode(R.randbytes(n)).decode()


# ------------------------------------------------------------------ benign value makers
def ulid():
    return "01" + rs(24, CROCK)


def ksuid():
    return "2" + rs(26, ALNUM)


def sha1():
    return hexs(40)


def short_sha():
    return hexs(pick(7, 7, 8, 10, 12))


def digest():
    return "sha256:" + hexs(64)


def sri(kind=None):
    kind = kind or pick("sha512", "sha512", "sha384", "sha1")
    n = {"sha512": 64, "sha384": 48, "sha1": 20}[kind]
    return f"{kind}-{b64bytes(n)}"


def gosum_h1():
    return "h1:" + b64bytes(32)


def semver():
    return f"{R.randint(0, 12)}.{R.randint(0, 30)}.{R.randint(0, 40)}"


def ean13(prefix):
    body = prefix + d(12 - len(prefix))
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def imei():
    return luhn(pick("35", "86", "01", "35") + d(12))


def ups():
    return "1Z" + rs(6, UP + DIG) + d(2) + d(8)


def fedex():
    return pick(d1(12), d1(15), "96" + d(20))


def dhl():
    return pick(d1(10), "JJD" + d(18), "JD01" + d(16))


def usps():
    return pick("9400", "9205", "9361") + d(18)


def amazon_order():
    return f"{R.randint(111, 114)}-{d(7)}-{d(7)}"


def stripe_id():
    return pick("pi_", "ch_", "cus_", "txn_", "evt_", "pm_", "in_", "re_", "po_", "sub_") + rs(
        24, ALNUM
    )


def paypal_txn():
    return rs(17, UP + DIG)


def ts_ms():
    return str(R.randint(1_700_000_000_000, 1_800_000_000_000))


def ts_ns():
    return str(R.randint(1_700_000_000_000_000_000, 1_799_999_999_999_999_999))


def doc_ip():
    return pick(
        f"192.0.2.{R.randint(1, 254)}",
        f"198.51.100.{R.randint(1, 254)}",
        f"203.0.113.{R.randint(1, 254)}",
    )


def priv_ip():
    return pick(
        f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(2, 254)}",
        f"192.168.{R.randint(0, 255)}.{R.randint(2, 254)}",
        f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(2, 254)}",
    )


def pub_ip():
    a = pick(23, 31, 37, 45, 62, 77, 81, 85, 91, 93, 104, 145, 151, 176, 185, 188, 193, 212, 217)
    return f"{a}.{R.randint(1, 254)}.{R.randint(0, 254)}.{R.randint(1, 254)}"


def mac():
    return ":".join(hexs(2) for _ in range(6))


def colour():
    return "#" + hexs(pick(6, 6, 3, 8))


def dna(n):
    return rs(n, "ACGT")


def oid():
    return pick(
        "1.2.840.113549.1.1.11",
        "1.2.840.10045.4.3.2",
        "2.5.4.3",
        "1.3.6.1.5.5.7.3.1",
        "1.3.6.1.4.1.311.60.2.1.3",
        "2.16.840.1.101.3.4.2.1",
        "1.3.6.1.4.1.11129.2.4.2",
        f"1.3.6.1.4.1.{R.randint(1000, 60000)}.{R.randint(1, 9)}.{R.randint(1, 40)}",
    )


def ssh_rsa_pub():
    return (
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ"
        + rs(540, B64)
        + f" {pick('deploy', 'ci', 'ana')}@{pick('build-01', 'laptop', 'bastion')}"
    )


def ssh_ed_pub():
    return (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"
        + rs(43, B64)
        + f" {pick('deploy', 'ci', 'ana')}@{pick('build-01', 'laptop')}"
    )


def age_pub():
    return "age1" + rs(58, BECH)


def npub():
    return "npub1" + rs(58, BECH)


def wg_key():
    return b64bytes(32)


def pem_block(label, lines=10):
    body = [rs(64, B64) for _ in range(lines)] + [rs(R.randint(20, 60), B64) + "=="]
    return f"-----BEGIN {label}-----\n" + "\n".join(body) + f"\n-----END {label}-----"


def pgp_pub():
    body = [rs(64, B64) for _ in range(12)] + [rs(30, B64), "=" + rs(4, B64)]
    return (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBG"
        + rs(58, B64)
        + "\n"
        + "\n".join(body)
        + "\n-----END PGP PUBLIC KEY BLOCK-----"
    )


def cert():
    return (
        "-----BEGIN CERTIFICATE-----\nMIID"
        + rs(60, B64)
        + "\n"
        + "\n".join(rs(64, B64) for _ in range(14))
        + "\n"
        + rs(24, B64)
        + "=\n-----END CERTIFICATE-----"
    )


DOC_AWS_ID = "AKIAIOSFODNN7EXAMPLE"
DOC_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_STRIPE = ["sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2"]
JWT_IO = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
    "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
TEST_CARDS = [
    "4242 4242 4242 4242",
    "4242424242424242",
    "4000 0566 5566 5556",
    "5555 5555 5555 4444",
    "2223 0031 2200 3222",
    "3782 822463 10005",
    "6011 1111 1111 1117",
    "4111 1111 1111 1111",
    "4000 0000 0000 9995",
    "5200 8282 8282 8210",
    "4000 0025 0000 3155",
]
PLACEHOLDERS = [
    "<YOUR_API_KEY>",
    "xxxxxxxxxxxxxxxxxxxxxxxx",
    "${SECRET}",
    "{{ .Values.token }}",
    "changeme",
    "your-api-key-here",
    "REPLACE_ME",
    "<redacted>",
    "********",
    "sk-...",
    "${{ secrets.API_TOKEN }}",
    "$(cat /run/secrets/api_key)",
    "{{ vault_api_key }}",
    "%API_KEY%",
    "<insert-token>",
    "TODO",
]


def unsigned_jwt():
    h = b64u({"alg": "none", "typ": "JWT"})
    p = b64u(
        {
            "iss": "https://accounts.example.com",
            "sub": d(10),
            "aud": "s6BhdRkqt3",
            "nonce": "n-0S6_WzA2Mj",
            "exp": 1311281970,
            "iat": 1311280970,
        }
    )
    return f"{h}.{p}."


# ------------------------------------------------------------------ positive value makers
def card():
    brand = pick("visa", "visa", "mc", "mc2", "amex", "disc")
    while True:
        if brand == "visa":
            n = luhn("4" + d(14))
        elif brand == "mc":
            n = luhn(str(R.randint(51, 55)) + d(13))
        elif brand == "mc2":
            n = luhn(str(R.randint(2221, 2720)) + d(11))
        elif brand == "disc":
            n = luhn("6011" + d(11))
        else:
            n = luhn(pick("34", "37") + d(12))
        if n not in {c.replace(" ", "") for c in TEST_CARDS} and "0000" not in n[4:]:
            return n


def fmt_card(n):
    sep = pick(" ", "-", "")
    if len(n) == 15:
        return f"{n[:4]}{sep}{n[4:10]}{sep}{n[10:]}"
    return sep.join(n[i : i + 4] for i in range(0, 16, 4))


def iban_raw(cc, bban):
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    return f"{cc}{98 - int(num) % 97:02d}{bban}"


def iban():
    cc = pick("DE", "FR", "NL", "ES", "IT", "GB", "BE", "AT")
    bban = {
        "DE": lambda: d(18),
        "FR": lambda: d(23),
        "NL": lambda: pick("ABNA", "INGB", "RABO") + d(10),
        "ES": lambda: d(20),
        "IT": lambda: rs(1, UP) + d(22),
        "GB": lambda: pick("NWBK", "BARC", "HBUK") + d(14),
        "BE": lambda: d(12),
        "AT": lambda: d(16),
    }[cc]()
    return iban_raw(cc, bban)


def fmt_iban(i):
    return " ".join(i[k : k + 4] for k in range(0, len(i), 4)) if R.random() < 0.5 else i


def creditor_id():
    """A SEPA creditor identifier: check digits as an IBAN's, over the national part only."""
    cc = pick("DE", "NL", "AT")
    nat = d(11)
    num = "".join(str(int(c, 36)) for c in nat + cc + "00")
    return f"{cc}{98 - int(num) % 97:02d}ZZZ{nat}"


def rf_ref():
    """An ISO 11649 creditor reference (mod 97 like an IBAN, but RF is no country)."""
    body = d(R.randint(8, 16))
    num = "".join(str(int(c, 36)) for c in body + "RF00")
    ck = 98 - int(num) % 97
    s = f"RF{ck:02d}{body}"
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


US_AREA = ["212", "415", "312", "617", "206", "303", "512", "404", "702", "646", "718", "213"]


def phone():
    k = R.randint(0, 6)
    a, ex, ln = pick(*US_AREA), f"{R.randint(2, 9)}{R.randint(0, 9)}{R.randint(1, 9)}", d(4)
    if ex == "555":
        ex = "556"
    return [
        f"({a}) {ex}-{ln}",
        f"+1 {a} {ex} {ln}",
        f"{a}-{ex}-{ln}",
        f"+44 7{pick('4', '5', '8', '9')}{d(2)} {d(6)}",
        f"+49 151 {d1(8)}",
        f"+33 6 {R.randint(10, 98)} {R.randint(10, 98)} {R.randint(10, 98)} {R.randint(10, 98)}",
        f"+31 6 {d1(8)}",
    ][k]


def ssn():
    while True:
        a = R.randint(1, 899)
        if a == 666:
            continue
        s = f"{a:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"
        if s not in ("078-05-1120", "219-09-9999", "123-45-6789"):
            return s


FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Priya", "Kenji", "Sofia", "Lars"]
LAST = ["Brennan", "Okafor", "Lindqvist", "Moreau", "Kowalski", "Tanaka", "Haddad", "Novak"]


def person():
    return f"{pick(*FIRST)} {pick(*LAST)}"


def email():
    f, la = pick(*FIRST).lower(), pick(*LAST).lower()
    return f"{pick(f'{f}.{la}', f'{f[0]}{la}', f'{f}{R.randint(1, 99)}')}@{pick('gmail.com', 'outlook.com', 'fastmail.com', 'acme-robotics.io', 'northwind.co.uk')}"


def password():
    while True:
        p = pick(
            mixed(14, ALNUM + "!#%*@$"),
            f"{pick('Harbor', 'Quartz', 'Falcon', 'Juniper')}{R.randint(10, 99)}!{pick('moss', 'tide', 'rail')}",
            rs(3, UP) + d(2) + pick("#", "$", "!") + rs(4, LO) + d(2),
        )
        if (
            any(c.isdigit() for c in p)
            and any(c.isupper() for c in p)
            and any(c.islower() for c in p)
        ):
            return p


def aws_id():
    while True:
        s = rs(16, UP + "234567")
        if sum(c.isdigit() for c in s) >= 2:
            return "AKIA" + s


def aws_secret():
    return mixed(40, ALNUM + "+/")


def stripe_sk():
    return pick("sk_test_", "sk_live_", "rk_live_") + "51" + mixed(pick(24, 97))


def openai_key():
    return f"sk-proj-{mixed(74, ALNUM + '-_')}T3BlbkFJ{mixed(74, ALNUM + '-_')}"


def anthropic_key():
    return f"sk-ant-api03-{mixed(93, ALNUM + '-_')}AA"


def google_key():
    return "AIza" + mixed(35, ALNUM + "-_")


def jwt_signed():
    head = b64u({"alg": pick("HS256", "RS256", "ES256"), "typ": "JWT", "kid": hexs(8)})
    body = b64u({"sub": uid(), "scope": "repo:read", "iat": 1795000000, "exp": 1795086400})
    return f"{head}.{body}.{rs(pick(43, 86), ALNUM + '-_')}"


def private_key_block():
    kind = pick("OPENSSH PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY")
    if kind == "OPENSSH PRIVATE KEY":
        body = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"] + [
            rs(70, B64) for _ in range(5)
        ]
    else:
        body = [rs(64, B64) for _ in range(pick(6, 12, 25))]
    body.append(rs(R.randint(10, 50), B64) + "=")
    return f"-----BEGIN {kind}-----\n" + "\n".join(body) + f"\n-----END {kind}-----"


# ================================================================== benign templates
def b_ids():
    rows = [
        {
            "id": pick(uid(), ulid(), ksuid()),
            "request_id": uid(),
            "trace_id": hexs(32),
            "span_id": hexs(16),
            "created_at": ts_ms(),
            "etag": f'W/"{hexs(16)}"',
        }
        for _ in range(R.randint(2, 6))
    ]
    text = J(rows, indent=pick(None, 2))
    k = R.randint(0, 2)
    if k == 0:
        add("ids", result(text))
    elif k == 1:
        add("ids", result(text, structured={"items": rows}))
    else:
        add(
            "ids",
            call(
                "db_query", {"sql": f"SELECT * FROM events WHERE id = '{uid()}'", "trace": hexs(32)}
            ),
        )


def b_git():
    names = ["Ana Ruiz", "dependabot[bot]", "Kenji Sato", "renovate[bot]", "Lars Berg"]
    k = R.randint(0, 3)
    if k == 0:
        lines = [
            f"{short_sha()} {pick('fix', 'feat', 'chore', 'docs')}: {pick('bump lodash to', 'release', 'pin action to', 'revert')} {pick(semver(), sha1()[:12], 'main')} ({pick(*names)})"
            for _ in range(R.randint(4, 12))
        ]
        wrap("git", "\n".join(lines), tool="git_log")
    elif k == 1:
        s = sha1()
        text = f"commit {s}\nMerge: {short_sha()} {short_sha()}\nAuthor: {pick(*names)}\nDate:   {pick('Mon', 'Tue', 'Wed')} Nov {R.randint(1, 28)} 10:{R.randint(10, 59)}:{R.randint(10, 59)} 2026 +0100\n\n    Merge pull request #{R.randint(100, 9999)} from org/feature/{rs(6, LO)}\n\n    Change-Id: I{hexs(40)}\n"
        wrap("git", text, tool="git_show")
    elif k == 2:
        text = "\n".join(
            f"{sha1()}\trefs/{pick('heads', 'tags', 'pull')}/{pick('main', 'v' + semver(), str(R.randint(1, 999)) + '/head')}"
            for _ in range(R.randint(3, 8))
        )
        wrap("git", text, tool="git_ls_remote")
    else:
        text = f"uses: actions/checkout@{sha1()} # v4.{R.randint(0, 2)}.{R.randint(0, 9)}\nuses: actions/setup-node@{sha1()} # v4\nuses: docker/build-push-action@{sha1()}"
        wrap("git", text, tool="read_file")


def b_docker():
    k = R.randint(0, 2)
    img = pick("nginx", "postgres", "redis", "ghcr.io/acme/api", "node", "python")
    if k == 0:
        rows = "\n".join(
            f"{img:<24}{pick(semver(), 'latest', '16-alpine'):<12}{digest():<75}{hexs(12)}   {R.randint(2, 9)} days ago   {R.randint(20, 900)}MB"
            for _ in range(R.randint(2, 5))
        )
        wrap(
            "docker",
            "REPOSITORY              TAG         DIGEST                                                                     IMAGE ID       CREATED       SIZE\n"
            + rows,
            tool="docker_images",
        )
    elif k == 1:
        obj = [
            {
                "Id": digest(),
                "RepoTags": [f"{img}:{semver()}"],
                "RepoDigests": [f"{img}@{digest()}"],
                "Config": {
                    "Env": [
                        "PATH=/usr/local/bin:/usr/bin",
                        f"NODE_VERSION={semver()}",
                        "NODE_ENV=production",
                    ]
                },
                "RootFS": {"Layers": [digest() for _ in range(R.randint(2, 5))]},
            }
        ]
        add("docker", result(J(obj, indent=2)))
    else:
        obj = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(),
                "size": R.randint(1000, 9000),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(),
                    "size": R.randint(10**5, 10**8),
                }
                for _ in range(3)
            ],
        }
        add("docker", result(J(obj), structured=obj))


def b_lockfile():
    k = R.randint(0, 4)
    if k == 0:
        pk = {
            f"node_modules/{n}": {
                "version": semver(),
                "resolved": f"https://registry.npmjs.org/{n}/-/{n}-{semver()}.tgz",
                "integrity": sri(),
                "dev": R.random() < 0.3,
            }
            for n in R.sample(
                ["lodash", "react", "ms", "debug", "chalk", "zod", "esbuild", "semver", "uuid"], 4
            )
        }
        text = J({"name": "app", "lockfileVersion": 3, "packages": pk}, indent=2)
        wrap("lockfile", text, tool="read_file")
    elif k == 1:
        text = "\n\n".join(
            f'[[package]]\nname = "{n}"\nversion = "{semver()}"\ndescription = "..."\noptional = false\npython-versions = ">=3.8"\nfiles = [\n    {{file = "{n}-{semver()}-py3-none-any.whl", hash = "sha256:{hexs(64)}"}},\n    {{file = "{n}-{semver()}.tar.gz", hash = "sha256:{hexs(64)}"}},\n]'
            for n in R.sample(["requests", "idna", "certifi", "urllib3", "pydantic", "anyio"], 3)
        )
        wrap(
            "lockfile",
            text + f'\n\n[metadata]\nlock-version = "2.0"\ncontent-hash = "{hexs(64)}"',
            tool="read_file",
        )
    elif k == 2:
        text = "\n\n".join(
            f'[[package]]\nname = "{n}"\nversion = "{semver()}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{hexs(64)}"'
            for n in R.sample(["serde", "tokio", "anyhow", "regex", "memchr", "libc"], 3)
        )
        wrap(
            "lockfile",
            "# This file is automatically @generated by Cargo.\nversion = 3\n\n" + text,
            tool="read_file",
        )
    elif k == 3:
        text = "\n".join(
            f"{m} v{semver()}{s} {gosum_h1()}"
            for m in R.sample(
                [
                    "github.com/google/uuid",
                    "golang.org/x/net",
                    "github.com/stretchr/testify",
                    "gopkg.in/yaml.v3",
                ],
                3,
            )
            for s in ("", "/go.mod")
        )
        wrap("lockfile", text, tool="read_file")
    else:
        text = "\n\n".join(
            f'"{n}@^{semver()}":\n  version "{semver()}"\n  resolved "https://registry.yarnpkg.com/{n}/-/{n}-{semver()}.tgz#{sha1()}"\n  integrity {sri("sha512")}'
            for n in R.sample(["ansi-regex", "color-name", "has-flag", "ms", "once"], 3)
        )
        wrap("lockfile", "# yarn lockfile v1\n\n" + text, tool="read_file")


def b_blob():
    k = R.randint(0, 3)
    if k == 0:
        v = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" + b64bytes(R.randint(120, 600))
        add("blob", result(J({"screenshot": v, "width": 1280, "height": 720})))
    elif k == 1:
        v = (
            "@font-face{font-family:Inter;src:url(data:font/woff2;base64,d09GMgABAAAAA"
            + b64bytes(R.randint(200, 700))
            + ") format('woff2')}"
        )
        wrap("blob", v, tool="read_file")
    elif k == 2:
        obj = {
            "uri": f"file:///srv/app/pkg/{rs(6, LO)}_bg.wasm",
            "mimeType": "application/wasm",
            "blob": "AGFzbQEAAAAB" + b64bytes(R.randint(150, 500)),
        }
        add("blob", {"jsonrpc": "2.0", "id": R.randint(2, 900), "result": {"contents": [obj]}})
    else:
        v = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ" + b64bytes(R.randint(200, 600))
        add(
            "blob",
            result(J({"content": [{"type": "image", "data": v[23:], "mimeType": "image/jpeg"}]})),
        )


def b_pubkeys():
    k = R.randint(0, 5)
    if k == 0:
        wrap(
            "pubkey",
            "\n".join(pick(ssh_rsa_pub, ssh_ed_pub)() for _ in range(R.randint(1, 4))),
            tool="read_file",
            note="authorized_keys",
        )
    elif k == 1:
        wrap(
            "pubkey",
            f"# created: 2026-0{R.randint(1, 9)}-1{R.randint(0, 9)}T10:00:00Z\n# public key: {age_pub()}\nrecipients:\n  - {age_pub()}\n  - {age_pub()}",
            tool="read_file",
        )
    elif k == 2:
        wrap(
            "pubkey",
            f"[Interface]\nAddress = 10.8.0.{R.randint(2, 200)}/24\nListenPort = 51820\n\n[Peer]\nPublicKey = {wg_key()}\nAllowedIPs = 10.8.0.0/24\nEndpoint = vpn.acme.internal:51820\nPersistentKeepalive = 25",
            tool="read_file",
        )
    elif k == 3:
        add(
            "pubkey",
            result(
                J(
                    {
                        "pubkey": npub(),
                        "relays": ["wss://relay.damus.io", "wss://nos.lol"],
                        "name": "ana",
                    }
                )
            ),
        )
    elif k == 4:
        wrap("pubkey", pgp_pub(), tool="read_file")
    else:
        wrap(
            "pubkey",
            f"subject=CN = api.acme.io\nissuer=C = US, O = Let's Encrypt, CN = R11\nserial={hexs(36).upper()}\nSHA256 Fingerprint={':'.join(hexs(2).upper() for _ in range(32))}\n{cert()}",
            tool="run_command",
        )


def b_doc_examples():
    k = R.randint(0, 4)
    if k == 0:
        text = f"## Configure credentials\n\n```ini\n[default]\naws_access_key_id = {DOC_AWS_ID}\naws_secret_access_key = {DOC_AWS_SECRET}\nregion = us-west-2\n```\n\nReplace the example values with your own."
    elif k == 1:
        text = f"```bash\ncurl https://api.stripe.com/v1/charges \\\n  -u {pick(*DOC_STRIPE)}: \\\n  -d amount=2000 \\\n  -d currency=usd\n```"
    elif k == 2:
        text = f"Paste a token such as\n\n    {JWT_IO}\n\ninto the debugger to decode it."
    elif k == 3:
        text = f"Example `.env`:\n\nOPENAI_API_KEY={pick(*PLACEHOLDERS)}\nSTRIPE_SECRET_KEY={pick(*PLACEHOLDERS)}\nDATABASE_URL=postgres://user:password@localhost:5432/app"
    else:
        text = f"export AWS_ACCESS_KEY_ID={DOC_AWS_ID}\nexport AWS_SECRET_ACCESS_KEY={DOC_AWS_SECRET}\nexport AWS_DEFAULT_REGION=eu-central-1"
    wrap("docs", text, tool="fetch")


def b_placeholders():
    ph = pick(*PLACEHOLDERS)
    k = R.randint(0, 4)
    if k == 0:
        text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  API_TOKEN: {pick('{{ .Values.token }}', '{{ .Values.apiToken | quote }}', '${API_TOKEN}')}\n  DB_PASSWORD: {pick('changeme', '${DB_PASSWORD}', '{{ .Values.db.password }}')}"
    elif k == 1:
        text = f"services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD:?set it}}\n      POSTGRES_USER: app\n  api:\n    environment:\n      API_KEY: {ph}"
    elif k == 2:
        text = J(
            {
                "mcpServers": {
                    "github": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-github"],
                        "env": {
                            "GITHUB_PERSONAL_ACCESS_TOKEN": pick(
                                "<YOUR_TOKEN>",
                                "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                                "${GITHUB_TOKEN}",
                            )
                        },
                    }
                }
            },
            indent=2,
        )
    elif k == 3:
        text = f"Set `ANTHROPIC_API_KEY` to your key (it looks like `sk-ant-...`). Never commit it; use `{ph}` in examples."
    else:
        text = f"password: {pick('changeme', '********', '<password>', '${PGPASSWORD}', 'REPLACE_ME', 'hunter2')}\napi_key: {ph}\nsecret: {pick('xxxx', '<secret>', 'TBD')}"
    wrap("placeholder", text, tool="read_file")


def b_numbers():
    k = R.randint(0, 7)
    if k == 0:
        text = f"Device: Pixel 8\nIMEI: {imei()}\nIMEI2: {imei()}\nSerial: {rs(10, UP + DIG)}\nBaseband: g5300{rs(4, LO)}-{d(6)}-B-{d(8)}\nBuild number: AP2A.{d(6)}.{d(3)}"
    elif k == 1:
        text = "\n".join(
            f"{pick('The Pragmatic Programmer', 'Dune', 'Clean Code', 'SICP')}\tISBN {ean13(pick('978', '979'))}\tEAN {ean13(pick('400', '871', '501', '590'))}"
            for _ in range(R.randint(2, 5))
        )
    elif k == 2:
        text = f"Shipment update\nUPS: {ups()}\nFedEx: {fedex()}\nDHL: {dhl()}\nUSPS: {usps()}\nStatus: in transit"
    elif k == 3:
        text = f"Order {amazon_order()} shipped.\nInvoice INV-2026-{d(5)} · PO {d1(8)} · customer #{d1(6)}\nPayment {stripe_id()} ({pick('succeeded', 'refunded')}), PayPal txn {paypal_txn()}"
    elif k == 4:
        text = "\n".join(
            f'{{"ts_ms": {ts_ms()}, "ts_ns": {ts_ns()}, "seq": {d1(9)}, "latency_us": {R.randint(100, 99999)}}}'
            for _ in range(R.randint(2, 6))
        )
    elif k == 5:
        text = f"versionName {semver()}\nversionCode {pick('2026', '2025')}{d(6)}\nCFBundleVersion {R.randint(2024, 2026)}.{d(4)}.{d(4)}\nBuild {R.randint(1, 12)}.{R.randint(0, 9)}.{R.randint(1000, 9999)}.{R.randint(1, 999)}\nOS Build {R.randint(19041, 26100)}.{R.randint(100, 6000)}"
    elif k == 6:
        text = f"Checksums (Luhn fails): {bad_luhn(luhn('4' + d(14)))}, {bad_luhn(luhn('5' + str(R.randint(1, 5)) + d(13)))}\nAccount ref {bad_iban(iban())}"
    else:
        text = f"case {d1(6)} opened {R.randint(1, 28)}.11.2026; call-back queue {d(3)}-{d(4)}; ext. {d(4)}; room {d(3)}; ticket #{d1(7)}"
    wrap("numbers", text, tool=pick("read_file", "search", "get_record"))


def b_versions_ips():
    k = R.randint(0, 4)
    if k == 0:
        text = f"Chrome/{R.randint(110, 131)}.0.{R.randint(5000, 6999)}.{R.randint(10, 200)} Safari/537.36\nfirmware version {R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 20)}.{R.randint(0, 99)}\nagent v{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}"
    elif k == 1:
        text = "\n".join(
            f"{oid()} = {pick('sha256WithRSAEncryption', 'commonName', 'serverAuth', 'ecdsa-with-SHA256', 'jurisdictionC')}"
            for _ in range(4)
        )
    elif k == 2:
        text = f"listen {doc_ip()}:443;\nallow {doc_ip()};\nupstream {priv_ip()}:8080;\nset_real_ip_from {priv_ip()};\n# docs: {doc_ip()}"
    elif k == 3:
        text = f"eth0: ether {mac()} inet {priv_ip()} netmask 255.255.255.0 broadcast {priv_ip()}\n  inet6 fe80::{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)} prefixlen 64\nlo: inet 127.0.0.1"
    else:
        text = f"snmpget -v2c -c public {priv_ip()} 1.3.6.1.2.1.1.{R.randint(1, 7)}.0\nSNMPv2-MIB::sysUpTime.0 = Timeticks: ({d1(8)}) 12 days"
    wrap("versions", text, tool=pick("run_command", "read_file"))


def b_vectors():
    k = R.randint(0, 4)
    if k == 0:
        text = 'SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nSHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d\nMD5("") = d41d8cd98f00b204e9800998ecf8427e'
    elif k == 1:
        text = "AES-128 (FIPS-197 C.1)\nKEY:        000102030405060708090a0b0c0d0e0f\nPLAINTEXT:  00112233445566778899aabbccddeeff\nCIPHERTEXT: 69c4e0d86a7b0430d8cdb78070b4c55a"
    elif k == 2:
        text = "RFC 8032 7.1 TEST 1\nSECRET KEY:\n9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\nPUBLIC KEY:\nd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    elif k == 3:
        text = 'RFC 4231 Test Case 2\nKey  = 4a656665 ("Jefe")\nData = 7768617420646f2079612077616e7420666f72206e6f7468696e673f\nHMAC-SHA-256 = 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'
    else:
        text = f"expected = {hashlib.sha256(rs(8).encode()).hexdigest()}\nseed = 0x{hexs(16)}\nnonce = {hexs(24)}"
    wrap("vectors", text, tool="fetch")


def b_tokens_shaped():
    k = R.randint(0, 2)
    if k == 0:
        tok = unsigned_jwt()
        text = f"Example unsigned ID Token (alg none, no signature):\n\n{tok}\n\nNever accept such a token."
    elif k == 1:
        text = J(
            {
                "keys": [
                    {
                        "kty": "RSA",
                        "kid": hexs(16),
                        "use": "sig",
                        "alg": "RS256",
                        "n": rs(342, ALNUM + "-_"),
                        "e": "AQAB",
                    }
                ]
            }
        )
    else:
        text = J(
            {
                "access_token": "[REDACTED]",
                "token_type": "Bearer",
                "expires_in": 3599,
                "id_token": "<omitted>",
                "scope": "openid email",
            }
        )
    wrap("tokenish", text, tool="fetch")


def b_frontend():
    k = R.randint(0, 4)
    if k == 0:
        text = ":root{" + ";".join(f"--c-{i}:{colour()}" for i in range(R.randint(6, 16))) + "}"
    elif k == 1:
        text = f'<svg viewBox="0 0 24 24"><path d="M{R.randint(1, 20)} {R.randint(1, 20)}C6.48 2 2 6.48 2 12s4.48 10 10 10 10-4.48 10-10S17.52 2 12 2zm{R.random():.2f} {R.randint(1, 9)}.{d(2)}l-{R.randint(1, 9)}.{d(2)}-{d(1)}.{d(2)}z" fill="{colour()}"/></svg>'
    elif k == 2:
        v = rs(2, LO)
        text = f'!function(e,t){{"object"==typeof exports?module.exports=t():e.{v}=t()}}(this,function(){{var {v}="{hexs(8)}",n=[{",".join(str(R.randint(0, 4294967295)) for _ in range(8))}];return function(r){{return n[r%8]^0x{hexs(8)}}}}});//# sourceMappingURL=app.{hexs(8)}.js.map'
    elif k == 3:
        text = f">seq{d(3)} chromosome {R.randint(1, 22)}\n" + "\n".join(
            dna(70) for _ in range(R.randint(3, 8))
        )
    else:
        text = f"SMILES: CC(=O)Oc1ccccc1C(=O)O\nInChIKey: {rs(14, UP)}-{rs(10, UP)}-N\nCAS {R.randint(50, 9999)}-{d(2)}-{d(1)}\nPubChem CID {d1(7)}"
    wrap("frontend", text, tool="read_file")


def b_test_cards():
    c = pick(*TEST_CARDS)
    k = R.randint(0, 2)
    if k == 0:
        text = f"| Scenario | Card number |\n| --- | --- |\n| Succeeds | {c} |\n| Declined | 4000 0000 0000 0002 |\n| 3DS required | 4000 0027 6000 3184 |\n\nUse any future expiry date and any 3-digit CVC."
    elif k == 1:
        text = f"To test payments use card {c}, expiry 12/34, CVC 123."
    else:
        text = J(
            {
                "test_card": c.replace(" ", ""),
                "mode": "sandbox",
                "publishable_key": "pk_test_" + rs(24, ALNUM),
            }
        )
    wrap("testcards", text, tool="fetch")


def b_stats():
    """Operational output with many numbers that are neither phones nor cards."""
    rows = "\n".join(
        f"{pick('GET', 'POST')} /api/v1/{pick('orders', 'users', 'items')}/{uid()} {pick(200, 201, 404)} {R.randint(1, 999)}ms bytes={d1(5)} req={ulid()}"
        for _ in range(R.randint(3, 8))
    )
    wrap("logs", rows, tool="get_logs")


BENIGN = [
    (b_ids, 130),
    (b_git, 120),
    (b_docker, 90),
    (b_lockfile, 130),
    (b_blob, 70),
    (b_pubkeys, 120),
    (b_doc_examples, 80),
    (b_placeholders, 110),
    (b_numbers, 190),
    (b_versions_ips, 100),
    (b_vectors, 60),
    (b_tokens_shaped, 70),
    (b_frontend, 90),
    (b_test_cards, 70),
    (b_stats, 70),
]


# ================================================================== near-miss positives
def p_receipt():
    c = card()
    text = f"Dispute {pick('dp_', 'du_')}{rs(24, ALNUM)}\nOrder {amazon_order()} · invoice INV-2026-{d(5)} · {pick('PayPal txn', 'charge')} {pick(paypal_txn(), stripe_id())}\nCard number: {L('credit_card', fmt_card(c))}\nAuth code {d(6)}, terminal {d1(8)}, {ts_ms()}"
    if R.random() < 0.5:
        text += f"\nTracking: {ups()}"
    wrap("receipt", text, tool=pick("get_dispute", "read_file"))


def p_statement():
    i = iban()
    text = f"Booking date 2026-11-{R.randint(10, 28)}\nSEPA direct debit {pick('Stadtwerke', 'Vodafone', 'ING', 'Allianz')}\nCreditor ID {creditor_id()} · Mandate {rs(3, UP)}-{d(8)}\nEnd-to-end ref {rs(4, UP)}{d(12)} · Ref {rf_ref()}\nCounterparty IBAN: {L('iban', fmt_iban(i))}\nAmount -{R.randint(5, 400)},{d(2)} EUR"
    wrap("statement", text, tool=pick("read_file", "bank_export"))


def p_shipping():
    ph = phone()
    text = f"Delivery exception for {person()}\nTracking {pick(ups(), fedex(), dhl())} ({pick('UPS', 'FedEx', 'DHL')})\nRecipient phone: {L('phone_number', ph)}\nOrder {amazon_order()} · parcel {d1(10)}"
    wrap("shipping", text, tool=pick("track_parcel", "get_ticket"))


def p_device():
    text = f"IMEI {imei()} · ICCID 89{d(17)}\nOwner {person()}, mobile {L('phone_number', phone())}\nFirmware {R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 99)}"
    wrap("device", text, tool="mdm_lookup")


def p_env_real():
    kind = R.randint(0, 4)
    if kind == 0:
        v, t, n = openai_key(), "openai_api_key", "OPENAI_API_KEY"
    elif kind == 1:
        v, t, n = anthropic_key(), "anthropic_api_key", "ANTHROPIC_API_KEY"
    elif kind == 2:
        v, t, n = stripe_sk(), "stripe_key", "STRIPE_SECRET_KEY"
    elif kind == 3:
        v, t, n = github_token(), "github_token", "GITHUB_TOKEN"
    else:
        v, t, n = google_key(), "google_api_key", "GOOGLE_API_KEY"
    ph = pick(*PLACEHOLDERS)
    text = f"# .env.example\n{n}={ph}\n\n# .env\n{n}={L(t, v)}\nSTRIPE_PUBLISHABLE_KEY=pk_test_{rs(24, ALNUM)}\nREQUEST_ID={uid()}"
    wrap("env", text, tool=pick("read_file", "write_file"))


def p_aws():
    text = f"# from the docs\n# aws_access_key_id = {DOC_AWS_ID}\n[default]\naws_access_key_id = {L('aws_access_key_id', aws_id())}\naws_secret_access_key = {L('aws_secret_access_key', aws_secret())}\nregion = eu-west-1"
    wrap("aws", text, tool="read_file")


def p_stripe_docs_vs_real():
    text = f"Docs use {pick(*DOC_STRIPE)}; our staging key is {L('stripe_key', 'sk_test_51' + mixed(pick(24, 97)))} (publishable pk_test_{rs(24, ALNUM)})."
    wrap("stripe", text, tool="send_message")


def p_lockfile_token():
    k = R.randint(0, 3)
    if k == 0:
        pw = mixed(R.randint(14, 22))
        host = pick("artifactory.acme.io/api/npm/npm", "nexus.corp.acme.io/repository/npm")
        text = J(
            {
                "node_modules/lodash": {
                    "version": "4.17.21",
                    "resolved": f"https://ci-bot:{L('url_credentials', pw, 2)}@{host}/lodash/-/lodash-4.17.21.tgz",
                    "integrity": sri("sha512"),
                }
            },
            indent=2,
        )
    elif k == 1:
        tok = github_token()
        text = f'"@acme/ui@^{semver()}":\n  version "{semver()}"\n  resolved "https://x-access-token:{L("github_token", tok)}@npm.pkg.github.com/download/@acme/ui/{semver()}/{sha1()}#{sha1()}"\n  integrity {sri("sha512")}'
    elif k == 2:
        tok = "pypi-AgEIcHlwaS5vcmc" + rs(120, ALNUM + "-_")
        text = f'[[package]]\nname = "acme-core"\nversion = "{semver()}"\n\n[package.source]\ntype = "legacy"\nurl = "https://__token__:{L("pypi_token", tok)}@pypi.acme.io/simple"\nreference = "acme"\n\n[metadata]\ncontent-hash = "{hexs(64)}"'
    else:
        pw = mixed(20)
        text = f"golang.org/x/net v{semver()} {gosum_h1()}\n# GOPROXY=https://gomod:{L('url_credentials', pw)}@athens.acme.io,direct\ngithub.com/acme/lib v{semver()} {gosum_h1()}"
    wrap("lockfile-token", text, tool="read_file")


def p_private_among_public():
    text = f"$ ls ~/.ssh\nauthorized_keys id_ed25519 id_ed25519.pub known_hosts\n$ cat ~/.ssh/id_ed25519.pub\n{ssh_ed_pub()}\n$ cat ~/.ssh/id_ed25519\n{L('private_key', private_key_block())}\n$ cat ~/.ssh/authorized_keys\n{ssh_rsa_pub()}"
    if R.random() < 0.4:
        text += "\n" + cert()
    wrap("ssh", text, tool="run_command")


def p_ips():
    k = R.randint(0, 3)
    if k == 0:
        text = f"nameserver {L('ipv4', pick('8.8.8.8', '1.1.1.1', '9.9.9.9', '208.67.222.222', '8.8.4.4'))}\nnameserver {priv_ip()}\n# agent v{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}"
    elif k == 1:
        text = f"sshd[{d1(5)}]: Failed password for invalid user admin from {L('ipv4', pub_ip())} port {R.randint(1024, 65535)} ssh2\nOpenSSH_{R.randint(7, 9)}.{R.randint(0, 9)}p1, OpenSSL {semver()}\nOID {oid()}"
    elif k == 2:
        text = f"client {L('ipv4', pub_ip())} -> {doc_ip()} ua=Chrome/{R.randint(110, 131)}.0.{R.randint(5000, 6999)}.{R.randint(10, 200)} build {R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 99)}"
    else:
        text = J(
            {
                "remote_addr": L("ipv4", pub_ip()),
                "x_request_id": uid(),
                "version": f"{R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}",
            }
        )
    wrap("ips", text, tool="get_logs")


def p_git_email():
    e = email()
    text = f"commit {sha1()}\nAuthor: {person()} <{L('email', e)}>\nDate:   Tue Nov 24 18:{R.randint(10, 59)}:02 2026 +0100\n\n    bump deps ({short_sha()})\n\n    Signed-off-by: dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>"
    wrap("git-email", text, tool="git_show")


def p_ssn():
    text = f"W-9 received {ts_ms()}\nOrder {d1(8)} · invoice INV-{d(6)} · SKU {ean13('400')}\nSSN: {L('us_ssn', ssn())}\nphone ext. {d(4)}"
    wrap("ssn", text, tool="get_record")


def p_jwt():
    text = f"Example (unsigned): {unsigned_jwt()}\nActual request:\nAuthorization: Bearer {L('jwt', jwt_signed())}\nx-request-id: {uid()}"
    wrap("jwt", text, tool="http_request")


def p_compose_password():
    pw = password()
    text = f"services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD}}\n  cache:\n    command: redis-server --requirepass ${{REDIS_PASSWORD:-changeme}}\n  legacy:\n    environment:\n      DB_PASSWORD: {L('generic_secret', pw)}\n      DB_HOST: db"
    wrap("compose", text, tool="read_file")


def p_helm_token():
    tok = mixed(32)
    text = f"# values.yaml\ntoken: {{{{ .Values.token }}}}\nimage:\n  digest: {digest()}\n---\n# values-prod.yaml (do not commit)\napi:\n  token: {L('generic_secret', tok)}"
    wrap("helm", text, tool="read_file")


def p_wireguard():
    text = f"[Interface]\nPrivateKey = {L('generic_secret', wg_key())}\nAddress = 10.8.0.{R.randint(2, 200)}/24\n\n[Peer]\nPublicKey = {wg_key()}\nPresharedKey = {L('generic_secret', wg_key())}\nAllowedIPs = 0.0.0.0/0"
    wrap("wireguard", text, tool="read_file")


def p_slack_ci():
    hook = f"https://hooks.slack.com/services/T{rs(8, UP + DIG)}/B{rs(10, UP + DIG)}/{mixed(24)}"
    text = f"steps:\n  - uses: actions/checkout@{sha1()}\n  - run: curl -X POST -d @payload.json {L('slack_webhook', hook)}\n  - uses: docker/build-push-action@{sha1()}\n    with:\n      tags: ghcr.io/acme/app@{digest()}"
    wrap("ci", text, tool="read_file")


def p_card_next_to_test():
    c = card()
    text = J(
        {
            "sandbox_card": pick(*TEST_CARDS),
            "customer": {
                "name": person(),
                "card_number": L("credit_card", c),
                "exp": f"{R.randint(1, 12):02d}/{R.randint(27, 31)}",
            },
            "order_id": amazon_order(),
            "created": ts_ms(),
        }
    )
    add("card-json", result(text), sse=R.random() < 0.15)


def p_email_vs_example():
    e = email()
    text = f"From: noreply@example.com\nReply-To: support@example.com\nTo: {L('email', e)}\nMessage-ID: <{uid()}@mail.acme.io>\nX-Request: {ulid()}"
    wrap("mail", text, tool="gmail_get")


POSITIVE = [
    (p_receipt, 55),
    (p_statement, 55),
    (p_shipping, 55),
    (p_device, 35),
    (p_env_real, 60),
    (p_aws, 30),
    (p_stripe_docs_vs_real, 30),
    (p_lockfile_token, 50),
    (p_private_among_public, 35),
    (p_ips, 55),
    (p_git_email, 40),
    (p_ssn, 35),
    (p_jwt, 35),
    (p_compose_password, 35),
    (p_helm_token, 30),
    (p_wireguard, 25),
    (p_slack_ci, 25),
    (p_card_next_to_test, 30),
    (p_email_vs_example, 30),
]

TEMPLATES = BENIGN + POSITIVE


def generate(seed: int | str = SEED) -> list[dict]:
    return KIT.run(seed, TEMPLATES)


if __name__ == "__main__":
    main(generate, SEED, "corpus44.jsonl")
