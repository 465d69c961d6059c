"""The forty-third corpus (blind round): the shapes of public PII and secret benchmark data sets,
written from scratch, as an independent evaluator would build a held-out set from them:
ai4privacy "pii-masking"-style sentences and short documents (many PII classes in running text, in
English, German, French, Italian, Spanish, Dutch and Portuguese), Presidio-research-style templates
filled with format-valid fakes, and code-secret sets in the style of StarPII and secret-detection
benchmarks (keys and passwords inside source files of more than ten languages, config files and
notebooks, with hard negatives: hashes, UUIDs, test fixtures, placeholders, public keys, example
values), all wrapped as MCP JSON-RPC messages (tool results, tools/call arguments,
structuredContent, resources/read, some as SSE events).

Labels follow the project's vocabulary (/work/shared/notes/detection-types.md) and its earlier
judgement calls. Classes of those data sets that the vocabulary has no type for are written into
the texts but not labelled: names, user names, street addresses, dates of birth, IPv6 and MAC
addresses, BIC codes, CVVs, PINs, crypto wallet addresses (public), bank account numbers that are
no IBAN, national ids other than the US SSN (NINO, Steuer-ID, NIR, codice fiscale, DNI/NIE, BSN,
NIF), driver's licence and passport numbers. Private IPv4 addresses are not labelled (the
project's call). A password written in prose is a ``generic_secret`` (always with a digit). A
token of a vendor outside the vocabulary (Hugging Face ``hf_``) under a secret's name is a
``generic_secret``. Written before the rules were read; the values are fake but format-valid
(Luhn, mod-97, SSN issuing rules, GitHub CRC32).

``generate(seed)`` gives samples as tests/scan/corpus_gen.py does: ``text`` (the message),
``labels`` (type, start, end), ``benign``, ``category``, ``note``.

    python tests/scan/corpus_benchmarks.py OUT.jsonl [SEED]
"""

from __future__ import annotations

import base64
import re

from corpus_kit import (
    ALNUM,
    DIG,
    LO,
    MARK,
    UP,
    J,
    Kit,
    b64u,
    bad_iban,
    bad_luhn,
    luhn,
    main,
)

SEED = 43
KIT = Kit("c43", SEED)
R = KIT.R
rs, mixed, hexs, pick = KIT.rs, KIT.mixed, KIT.hexs, KIT.pick
github_token, uid = KIT.github_token, KIT.uid
L, build, add, wrap = KIT.L, KIT.build, KIT.add, KIT.wrap
result, call, resource = KIT.result, KIT.call, KIT.resource


# ------------------------------------------------------------------ value makers
LANGS = ["en", "de", "fr", "it", "es", "nl", "pt"]
FIRST = {
    "en": ["James", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Harper"],
    "de": ["Lukas", "Anna", "Jonas", "Lea", "Felix", "Hannah", "Maximilian", "Sophie", "Jürgen"],
    "fr": ["Louis", "Camille", "Hugo", "Léa", "Gabriel", "Chloé", "Arthur", "Manon", "Théo"],
    "it": ["Giulia", "Lorenzo", "Sofia", "Matteo", "Aurora", "Leonardo", "Chiara", "Francesco"],
    "es": ["Lucía", "Hugo", "Martina", "Pablo", "Sofía", "Álvaro", "Carmen", "Javier"],
    "nl": ["Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Bram", "Sanne", "Thijs"],
    "pt": ["João", "Beatriz", "Rodrigo", "Inês", "Tiago", "Mariana", "Duarte", "Leonor"],
}
LAST = {
    "en": ["Smith", "Johnson", "Williams", "Brown", "Miller", "Davis", "Wilson", "Taylor"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann"],
    "fr": ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard"],
    "it": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo"],
    "es": ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez"],
    "nl": ["de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit"],
    "pt": ["Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues"],
}
MAILDOM = {
    "en": ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "protonmail.com", "aol.com"],
    "de": ["gmx.de", "web.de", "t-online.de", "posteo.de", "gmail.com", "freenet.de"],
    "fr": ["orange.fr", "free.fr", "laposte.net", "sfr.fr", "gmail.com", "wanadoo.fr"],
    "it": ["libero.it", "virgilio.it", "tiscali.it", "gmail.com", "alice.it"],
    "es": ["telefonica.net", "hotmail.es", "gmail.com", "yahoo.es", "movistar.es"],
    "nl": ["ziggo.nl", "kpnmail.nl", "hetnet.nl", "gmail.com", "xs4all.nl"],
    "pt": ["sapo.pt", "gmail.com", "hotmail.com", "netcabo.pt", "clix.pt"],
}
COMPANY = [
    "northwind-logistics.com",
    "brightpath.io",
    "kestrel-analytics.de",
    "lumenfield.fr",
    "valmonte.it",
    "solera-group.es",
    "hollandia-tech.nl",
    "atlantico-seguros.pt",
    "quantaro.co.uk",
    "fjordline-systems.com",
]


def first(lang):
    return pick(*FIRST[lang])


def last(lang):
    return pick(*LAST[lang])


def name(lang):
    return f"{first(lang)} {last(lang)}"


def _plain(s):
    s = s.lower().replace("ß", "ss").replace("œ", "oe")
    for a, b in zip(
        "äöüéèêëàâçíóúáñãõôîïÿì", "aoueeeeaacioua nao iiyi".replace(" ", "n"), strict=False
    ):
        s = s.replace(a, b)
    return re.sub(r"[^a-z]", "", s)


def email(lang, fn=None, ln=None):
    fn = _plain(fn or first(lang))
    ln = _plain(ln or last(lang))
    local = pick(
        f"{fn}.{ln}",
        f"{fn}{ln}{R.randint(1, 99)}",
        f"{fn[0]}{ln}",
        f"{fn}_{ln}",
        f"{ln}.{fn}{R.randint(70, 99)}",
    )
    dom = pick(*MAILDOM[lang]) if R.random() < 0.8 else pick(*COMPANY)
    return f"{local}@{dom}"


def username():
    return pick(
        f"{_plain(first('en'))}{R.randint(10, 9999)}",
        f"{rs(1, LO)}{_plain(last('de'))}_{R.randint(1, 99)}",
        f"user{d(6)}",
        f"{_plain(first('fr'))}.{rs(3, LO)}",
    )


def d(n):
    return "".join(R.choice(DIG) for _ in range(n))


def d1(n):
    return str(R.randint(1, 9)) + d(n - 1)


US_AREA = [
    "212",
    "415",
    "312",
    "617",
    "206",
    "303",
    "512",
    "404",
    "702",
    "646",
    "718",
    "213",
    "347",
    "818",
    "971",
]


def phone(lang):
    if lang == "en":
        if R.random() < 0.3:  # UK
            k = R.randint(0, 3)
            if k == 0:
                return f"+44 20 {pick('3', '7', '8')}{d(3)} {d(4)}"
            if k == 1:
                return f"+44 7{pick('4', '5', '8', '9')}{d(2)} {d(6)}"
            if k == 2:
                return f"07{pick('4', '5', '8', '9')}{d(2)} {d(6)}"
            return f"0161 {pick('2', '3', '8')}{d(2)} {d(4)}"
        a, ex, ln = pick(*US_AREA), f"{R.randint(2, 9)}{R.randint(0, 9)}{R.randint(1, 9)}", d(4)
        if ex == "555":
            ex = "556"
        return pick(
            f"({a}) {ex}-{ln}",
            f"{a}-{ex}-{ln}",
            f"{a}.{ex}.{ln}",
            f"+1 {a} {ex} {ln}",
            f"+1-{a}-{ex}-{ln}",
            f"001-{a}-{ex}-{ln}",
            f"+1 ({a}) {ex}-{ln}",
        )
    if lang == "de":
        k = R.randint(0, 6)
        return [
            f"+49 30 {d1(8)}",
            f"030 {d1(4)} {d(4)}",
            f"0151 {d1(8)}",
            f"+49 151 {d1(8)}",
            f"+49 (0)89 {d1(7)}",
            f"0049 89 {d1(7)}",
            f"089/{d1(7)}",
        ][k]
    if lang == "fr":
        g = lambda: f"{R.randint(10, 98):02d}"  # noqa: E731
        k = R.randint(0, 4)
        return [
            f"+33 6 {g()} {g()} {g()} {g()}",
            f"06 {g()} {g()} {g()} {g()}",
            f"01.{R.randint(40, 89)}.{g()}.{g()}.{g()}",
            f"+33 (0)1 {R.randint(40, 89)} {g()} {g()} {g()}",
            f"07 {g()} {g()} {g()} {g()}",
        ][k]
    if lang == "it":
        k = R.randint(0, 3)
        return [
            f"+39 3{R.randint(20, 49)} {d1(3)} {d(4)}",
            f"3{R.randint(20, 49)} {d1(7)}",
            f"06 {d1(4)} {d(4)}",
            f"+39 02 {d1(8)}",
        ][k]
    if lang == "es":
        k = R.randint(0, 3)
        return [
            f"+34 6{d(2)} {d1(3)} {d(3)}",
            f"6{d(2)} {d(2)} {d(2)} {d(2)}",
            f"91 {d1(3)} {d(2)} {d(2)}",
            f"+34 93 {d1(3)} {d(2)} {d(2)}",
        ][k]
    if lang == "nl":
        k = R.randint(0, 3)
        return [f"+31 6 {d1(8)}", f"06-{d1(8)}", f"020-{d1(7)}", f"+31 (0)20 {d1(3)} {d(4)}"][k]
    k = R.randint(0, 2)
    return [
        f"+351 9{pick('1', '2', '3', '6')}{d(1)} {d1(3)} {d(3)}",
        f"9{pick('1', '2', '3', '6')}{d(1)} {d1(3)} {d(3)}",
        f"21 {d1(3)} {d(4)}",
    ][k]


def card(brand=None):
    brand = brand or pick("visa", "visa", "mc", "amex", "disc", "mc2")
    if brand == "visa":
        while True:
            n = luhn("4" + str(R.randint(0, 9)) + d(13))
            if not n.startswith(("4111", "4242", "4000")):
                return n
    if brand == "mc":
        return luhn(str(R.randint(51, 55)) + d(13))
    if brand == "mc2":
        return luhn(str(R.randint(2221, 2720)) + d(11))
    if brand == "disc":
        return luhn("6011" + d(11))
    return luhn(pick("34", "37") + d(12))


def fmt_card(n):
    sep = pick(" ", " ", "-", "")
    if len(n) == 15:
        return f"{n[:4]}{sep}{n[4:10]}{sep}{n[10:]}"
    return sep.join(n[i : i + 4] for i in range(0, 16, 4))


def cvv():
    return d(3)


def expiry():
    m, y = R.randint(1, 12), R.randint(26, 31)
    return pick(f"{m:02d}/{y}", f"{m:02d}/20{y}", f"{m:02d}-{y}")


def iban_raw(cc, bban):
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    return f"{cc}{98 - int(num) % 97:02d}{bban}"


IBAN_CC = {
    "en": ["GB", "IE"],
    "de": ["DE", "AT", "CH"],
    "fr": ["FR", "BE"],
    "it": ["IT"],
    "es": ["ES"],
    "nl": ["NL", "BE"],
    "pt": ["PT"],
}


def iban(lang_or_cc):
    cc = lang_or_cc if len(lang_or_cc) == 2 and lang_or_cc.isupper() else pick(*IBAN_CC[lang_or_cc])
    bban = {
        "DE": lambda: d(8) + d(10),
        "AT": lambda: d(16),
        "CH": lambda: d(5) + d(12),
        "FR": lambda: d(5) + d(5) + d(11) + d(2),
        "BE": lambda: d(12),
        "IT": lambda: rs(1, UP) + d(5) + d(5) + d(12),
        "ES": lambda: d(20),
        "NL": lambda: pick("ABNA", "INGB", "RABO", "SNSB", "TRIO") + d(10),
        "PT": lambda: d(21),
        "GB": lambda: pick("NWBK", "BARC", "LOYD", "HBUK", "MIDL") + d(6) + d(8),
        "IE": lambda: pick("AIBK", "BOFI") + d(6) + d(8),
    }[cc]()
    return iban_raw(cc, bban)


def fmt_iban(i):
    return " ".join(i[k : k + 4] for k in range(0, len(i), 4)) if R.random() < 0.55 else i


BIC = {
    "en": ["NWBKGB2L", "BARCGB22", "AIBKIE2D"],
    "de": ["DEUTDEFF", "COBADEFFXXX", "GENODEF1M04", "BKAUATWW"],
    "fr": ["BNPAFRPP", "SOGEFRPP", "GEBABEBB"],
    "it": ["UNCRITMM", "BCITITMM"],
    "es": ["BSCHESMM", "CAIXESBBXXX"],
    "nl": ["INGBNL2A", "ABNANL2A", "RABONL2U"],
    "pt": ["CGDIPTPL", "BCOMPTPL"],
}


def ssn():
    while True:
        a = R.randint(1, 899)
        if a == 666:
            continue
        s = f"{a:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"
        if s not in ("078-05-1120", "219-09-9999", "123-45-6789"):
            return s


def pub_ip():
    a = pick(
        23,
        31,
        37,
        45,
        62,
        77,
        81,
        85,
        91,
        93,
        109,
        145,
        151,
        176,
        178,
        185,
        188,
        193,
        195,
        212,
        213,
        217,
        24,
        68,
        71,
        98,
        104,
        134,
    )
    return f"{a}.{R.randint(1, 254)}.{R.randint(0, 254)}.{R.randint(1, 254)}"


def priv_ip():
    return pick(
        f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(2, 254)}",
        f"192.168.{R.randint(0, 255)}.{R.randint(2, 254)}",
        f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(2, 254)}",
    )


def ipv6():
    return pick(
        ":".join(hexs(4).lstrip("0") or "0" for _ in range(8)),
        f"2a02:{hexs(4)}:{hexs(3)}:{hexs(4)}::{hexs(2)}",
        f"2001:{pick('41d0', '67c', '1620', '4860')}:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}",
        f"fe80::{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}",
    )


def mac():
    sep = pick(":", "-")
    return (
        sep.join(hexs(2) for _ in range(6)).upper()
        if R.random() < 0.5
        else sep.join(hexs(2) for _ in range(6))
    )


def dob(lang):
    y, m, dd = R.randint(1948, 2004), R.randint(1, 12), R.randint(1, 28)
    if lang == "en":
        return pick(f"{m:02d}/{dd:02d}/{y}", f"{y}-{m:02d}-{dd:02d}", f"March {dd}, {y}")
    return pick(f"{dd:02d}.{m:02d}.{y}", f"{dd:02d}/{m:02d}/{y}", f"{dd}-{m}-{y}")


STREETS = {
    "en": lambda: (
        f"{R.randint(1, 9999)} {pick('Maple', 'Oak', 'Cedar', 'Elm', 'Pine')} {pick('Street', 'Avenue', 'Road', 'Lane')}, {pick('Springfield', 'Portland', 'Austin', 'Denver')}, {pick('IL', 'OR', 'TX', 'CO')} {d1(5)}"
    ),
    "de": lambda: (
        f"{pick('Hauptstraße', 'Lindenallee', 'Goethestraße', 'Bahnhofstr.')} {R.randint(1, 140)}, {d1(5)} {pick('Berlin', 'München', 'Köln', 'Hamburg')}"
    ),
    "fr": lambda: (
        f"{R.randint(1, 140)} {pick('rue de la Paix', 'avenue Victor Hugo', 'boulevard Voltaire', 'rue Lepic')}, {d1(5)} {pick('Paris', 'Lyon', 'Nantes', 'Lille')}"
    ),
    "it": lambda: (
        f"{pick('Via Roma', 'Corso Italia', 'Via Garibaldi', 'Piazza Dante')} {R.randint(1, 140)}, {d1(5)} {pick('Milano', 'Roma', 'Torino', 'Napoli')}"
    ),
    "es": lambda: (
        f"{pick('Calle Mayor', 'Avenida de América', 'Calle de Alcalá', 'Gran Vía')} {R.randint(1, 140)}, {d1(5)} {pick('Madrid', 'Sevilla', 'Valencia', 'Bilbao')}"
    ),
    "nl": lambda: (
        f"{pick('Kerkstraat', 'Dorpsstraat', 'Prinsengracht', 'Stationsweg')} {R.randint(1, 240)}, {d1(4)} {rs(2, UP)} {pick('Amsterdam', 'Utrecht', 'Rotterdam')}"
    ),
    "pt": lambda: (
        f"{pick('Rua Augusta', 'Avenida da Liberdade', 'Rua do Carmo')} {R.randint(1, 240)}, {d1(4)}-{d(3)} {pick('Lisboa', 'Porto', 'Braga')}"
    ),
}


def address(lang):
    return STREETS[lang]()


def national_id(lang):
    """National ids the vocabulary has no type for (never labelled)."""
    if lang == "en":
        return pick(
            f"{rs(2, 'ABCEGHJKLMNPRSTWXYZ')} {d(2)} {d(2)} {d(2)} {pick('A', 'B', 'C', 'D')}",
            f"{rs(2, 'ABCEGHJKLMNPRSTWXYZ')}{d(6)}{pick('A', 'B', 'C', 'D')}",
        )
    if lang == "de":
        return d1(11)
    if lang == "fr":
        return f"{pick('1', '2')} {d(2)} {R.randint(1, 12):02d} {d(2)} {d(3)} {d(3)} {d(2)}"
    if lang == "it":
        return f"{rs(6, UP)}{d(2)}{rs(1, 'ABCDEHLMPRST')}{d(2)}{rs(1, UP)}{d(3)}{rs(1, UP)}"
    if lang == "es":
        n = R.randint(10000000, 99999999)
        return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
    if lang == "nl":
        while True:
            v = d1(9)
            if (
                sum(int(c) * w for c, w in zip(v[:8], range(9, 1, -1), strict=True)) - int(v[8])
            ) % 11 == 0:
                return v
    return f"{pick('1', '2')}{d(8)}"


NID_NAME = {
    "en": "National Insurance number",
    "de": "Steuer-ID",
    "fr": "numéro de sécurité sociale",
    "it": "codice fiscale",
    "es": "DNI",
    "nl": "BSN",
    "pt": "NIF",
}


def wallet():
    return pick(
        "bc1q" + rs(38, "023456789acdefghjklmnpqrstuvwxyz"),
        "0x" + rs(40, "0123456789abcdefABCDEF"),
        pick("1", "3")
        + rs(R.randint(26, 33), "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"),
    )


def acct_no():
    return pick(d1(8), d1(10), f"{d(3)}-{d(6)}-{d(2)}")


def password():
    w = [
        "Sunflower",
        "Tiger",
        "Falcon",
        "Berlin",
        "Paris",
        "Roma",
        "Madrid",
        "Tulip",
        "Lisboa",
        "Maple",
    ]
    while True:
        p = pick(
            f"{R.choice(w)}{R.randint(10, 99)}!{R.choice(w).lower()}",
            mixed(12, ALNUM + "!#%*@$"),
            rs(3, UP)
            + rs(2, DIG)
            + pick("#", "$", "!", "&")
            + rs(3, LO)
            + rs(2, DIG)
            + pick("?", "*", "@"),
            f"{R.choice(w)}@{d(4)}",
            rs(2, LO) + d(1) + pick("_", "#", "!") + rs(2, UP) + d(2) + rs(3, LO),
        )
        if (
            any(c.isdigit() for c in p)
            and any(c.isupper() for c in p)
            and any(c.islower() for c in p)
        ):
            return p


def pin():
    return d(pick(4, 4, 6))


# --- secrets


def jwt():
    head = b64u({"alg": pick("HS256", "RS256"), "typ": "JWT"})
    body = b64u({"sub": d(8), "name": name("en"), "iat": 1795000000, "exp": 1795086400})
    return f"{head}.{body}.{rs(43, ALNUM + '-_')}"


def aws_id():
    while True:
        s = rs(16, UP + "234567")
        if sum(c.isdigit() for c in s) >= 2:
            return pick("AKIA", "AKIA", "ASIA") + s


def aws_secret():
    return mixed(40, ALNUM + "+/")


def pem(kind="RSA "):
    body = [rs(64, ALNUM + "+/") for _ in range(8)] + [rs(40, ALNUM + "+/") + "=="]
    return "\n".join(
        [f"-----BEGIN {kind}PRIVATE KEY-----", *body, f"-----END {kind}PRIVATE KEY-----"]
    )


def slack_hook():
    return f"https://hooks.slack.com/services/T{rs(8, UP + DIG)}/B{rs(10, UP + DIG)}/{mixed(24)}"


def slack_bot():
    return f"xoxb-{d1(12)}-{d1(13)}-{mixed(24)}"


def stripe_sk():
    return pick("sk_live_", "sk_test_", "rk_live_") + "51" + mixed(97)


def openai_key():
    return f"sk-proj-{mixed(74, ALNUM + '-_')}T3BlbkFJ{mixed(74, ALNUM + '-_')}"


def anthropic_key():
    return f"sk-ant-api03-{mixed(93, ALNUM + '-_')}AA"


def google_key():
    return "AIza" + mixed(35, ALNUM + "-_")


def sendgrid_key():
    return f"SG.{mixed(22, ALNUM + '-_')}.{mixed(43, ALNUM + '-_')}"


def twilio_key():
    return "SK" + hexs(32)


def gitlab_token():
    return "glpat-" + mixed(20, ALNUM + "-_")


def hf_token():
    return "hf_" + rs(34, UP + LO)


def generic_key():
    return pick(mixed(32), hexs(32), mixed(40, ALNUM + "-_"), mixed(24))


def sha(n=64):
    return hexs(n)


def ssh_pub():
    return (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"
        + rs(43, ALNUM + "+/")
        + f" {_plain(first('en'))}@laptop"
    )


# ------------------------------------------------------------------ ai4privacy-style sentences
# Each phrase takes keyword values; labelled values are passed through L() by the caller.
PH = {
    "email": {
        "en": [
            "You can reach {name} at {email}.",
            "Please cc {email} on the reply.",
            "Her work email is {email}, username {user}.",
        ],
        "de": [
            "Schreiben Sie bitte an {email}.",
            "Die E-Mail-Adresse von {name} lautet {email}.",
            "Kontakt: {name} <{email}>",
        ],
        "fr": [
            "Contactez {name} à l'adresse {email}.",
            "Mon adresse e-mail est {email}.",
            "Merci d'écrire à {email} avant vendredi.",
        ],
        "it": [
            "Scrivi a {email} per la conferma.",
            "L'indirizzo email di {name} è {email}.",
            "Per info: {email}",
        ],
        "es": [
            "Escríbeme a {email}.",
            "El correo de {name} es {email}.",
            "Enviar la factura a {email}, por favor.",
        ],
        "nl": [
            "Mail naar {email} voor vragen.",
            "Het e-mailadres van {name} is {email}.",
            "Stuur de offerte naar {email}.",
        ],
        "pt": [
            "Envie para {email}.",
            "O e-mail da {name} é {email}.",
            "Pode contactar-me através de {email}.",
        ],
    },
    "phone": {
        "en": [
            "Call me at {phone}.",
            "My phone number is {phone}.",
            "{name}'s mobile: {phone}",
            "Text me on {phone} after 6pm.",
        ],
        "de": [
            "Meine Telefonnummer ist {phone}.",
            "Rufen Sie mich unter {phone} an.",
            "Tel.: {phone}",
            "Mobil erreichbar unter {phone}.",
        ],
        "fr": [
            "Mon numéro de téléphone est le {phone}.",
            "Appelez-moi au {phone}.",
            "Tél. : {phone}",
            "Vous pouvez me joindre au {phone}.",
        ],
        "it": [
            "Il mio numero di telefono è {phone}.",
            "Chiamami al {phone}.",
            "Cellulare: {phone}",
            "Il numero di {name} è {phone}.",
        ],
        "es": [
            "Mi número de teléfono es {phone}.",
            "Llámame al {phone}.",
            "Teléfono: {phone}",
            "Puedes contactar con {name} en el {phone}.",
        ],
        "nl": [
            "Mijn telefoonnummer is {phone}.",
            "Bel me op {phone}.",
            "Tel: {phone}",
            "{name} is bereikbaar op {phone}.",
        ],
        "pt": [
            "O meu número de telefone é {phone}.",
            "Ligue-me para o {phone}.",
            "Telemóvel: {phone}",
            "Contacto da {name}: {phone}",
        ],
    },
    "iban": {
        "en": [
            "Please transfer the amount to IBAN {iban} (BIC {bic}).",
            "Refund to account {iban}, account holder {name}.",
        ],
        "de": [
            "Bitte überweisen Sie den Betrag auf das Konto IBAN {iban}, BIC {bic}.",
            "Meine neue Bankverbindung: {iban} ({bic}).",
        ],
        "fr": [
            "Veuillez virer le montant sur l'IBAN {iban} (BIC : {bic}).",
            "Mes coordonnées bancaires : IBAN {iban}",
        ],
        "it": [
            "Effettua il bonifico sull'IBAN {iban} intestato a {name}.",
            "IBAN per il rimborso: {iban}, BIC {bic}",
        ],
        "es": [
            "Haz la transferencia al IBAN {iban}.",
            "Mi cuenta para la devolución es {iban} (BIC {bic}).",
        ],
        "nl": [
            "Maak het bedrag over naar {iban} t.n.v. {name}.",
            "Rekeningnummer: {iban}, BIC {bic}",
        ],
        "pt": [
            "Transfira o valor para o IBAN {iban}.",
            "IBAN para reembolso: {iban} (BIC/SWIFT {bic})",
        ],
    },
    "card": {
        "en": [
            "My card {card} expires {exp}, CVV {cvv}.",
            "Charge it to {card} (exp {exp}).",
            "Card number: {card}, security code {cvv}",
        ],
        "de": [
            "Meine Kreditkarte {card}, gültig bis {exp}, Prüfnummer {cvv}.",
            "Kartennummer {card} Ablaufdatum {exp}",
        ],
        "fr": [
            "Ma carte bancaire {card} expire le {exp}, cryptogramme {cvv}.",
            "Numéro de carte : {card} (exp. {exp})",
        ],
        "it": ["La mia carta {card} scade il {exp}, CVV {cvv}.", "Numero carta di credito: {card}"],
        "es": [
            "Mi tarjeta {card} caduca en {exp}, CVV {cvv}.",
            "Número de tarjeta: {card}, vence {exp}",
        ],
        "nl": [
            "Mijn creditcard {card} verloopt {exp}, CVC {cvv}.",
            "Kaartnummer {card} geldig t/m {exp}",
        ],
        "pt": [
            "O meu cartão {card} expira em {exp}, CVV {cvv}.",
            "Número do cartão: {card} validade {exp}",
        ],
    },
    "ip": {
        "en": [
            "Login attempt from {ip} ({ipv6}) was flagged.",
            "The request came from IP {ip}, device MAC {mac}.",
        ],
        "de": [
            "Anmeldung von der IP {ip} wurde blockiert.",
            "Zugriff von {ip}, MAC-Adresse {mac}.",
        ],
        "fr": [
            "Connexion depuis l'adresse IP {ip} détectée.",
            "Adresse IP du client : {ip} / {ipv6}",
        ],
        "it": [
            "Accesso dall'indirizzo IP {ip} alle {time}.",
            "IP del dispositivo: {ip}, MAC {mac}",
        ],
        "es": ["Acceso desde la IP {ip} a las {time}.", "Dirección IP: {ip} (IPv6 {ipv6})"],
        "nl": ["Inlogpoging vanaf {ip} om {time}.", "IP-adres {ip}, MAC {mac}"],
        "pt": ["Acesso a partir do IP {ip} às {time}.", "Endereço IP: {ip}"],
    },
    "password": {
        "en": [
            "my password is {pw}",
            "The new password for {user} is {pw}",
            "Password: {pw}",
            "use pwd {pw} for the vpn",
        ],
        "de": ["mein Passwort ist {pw}", "Ihr neues Kennwort lautet {pw}", "Passwort: {pw}"],
        "fr": [
            "mon mot de passe est {pw}",
            "Mot de passe : {pw}",
            "le mot de passe du compte {user} est {pw}",
        ],
        "it": ["la mia password è {pw}", "Password: {pw}", "la password di {user} è {pw}"],
        "es": ["mi contraseña es {pw}", "Contraseña: {pw}", "la clave del usuario {user} es {pw}"],
        "nl": ["mijn wachtwoord is {pw}", "Wachtwoord: {pw}", "het wachtwoord van {user} is {pw}"],
        "pt": [
            "a minha senha é {pw}",
            "Palavra-passe: {pw}",
            "a senha do utilizador {user} é {pw}",
        ],
    },
    "ssn": {
        "en": ["My SSN is {ssn}.", "Social Security Number: {ssn}", "SSN {ssn} on file for {name}."]
    },
    # classes the vocabulary has no type for: never labelled
    "other": {
        "en": [
            "I was born on {dob} and live at {addr}.",
            "Username: {user}, PIN {pin}.",
            "Send BTC to {wallet}.",
            "Account number {acct}, sort code {sort}.",
            "My {nidname} is {nid}.",
        ],
        "de": [
            "Geboren am {dob}, wohnhaft in der {addr}.",
            "Benutzername {user}, PIN {pin}.",
            "Wallet-Adresse: {wallet}",
            "Kontonummer {acct}.",
            "Meine {nidname} lautet {nid}.",
        ],
        "fr": [
            "Né le {dob}, domicilié au {addr}.",
            "Identifiant : {user}, code PIN {pin}.",
            "Adresse du portefeuille : {wallet}",
            "Mon {nidname} : {nid}.",
        ],
        "it": [
            "Nato il {dob}, residente in {addr}.",
            "Nome utente {user}, PIN {pin}.",
            "Indirizzo wallet: {wallet}",
            "Il mio {nidname} è {nid}.",
        ],
        "es": [
            "Nacido el {dob}, domicilio en {addr}.",
            "Usuario {user}, PIN {pin}.",
            "Dirección de la cartera: {wallet}",
            "Mi {nidname} es {nid}.",
        ],
        "nl": [
            "Geboren op {dob}, woonachtig aan de {addr}.",
            "Gebruikersnaam {user}, pincode {pin}.",
            "Wallet: {wallet}",
            "Mijn {nidname} is {nid}.",
        ],
        "pt": [
            "Nascido a {dob}, morada {addr}.",
            "Utilizador {user}, PIN {pin}.",
            "Carteira: {wallet}",
            "O meu {nidname} é {nid}.",
        ],
    },
}


def fill_other(lang):
    return pick(*PH["other"][lang]).format(
        dob=dob(lang),
        addr=address(lang),
        user=username(),
        pin=pin(),
        wallet=wallet(),
        acct=acct_no(),
        sort=f"{d(2)}-{d(2)}-{d(2)}",
        nidname=NID_NAME[lang],
        nid=national_id(lang),
    )


def phrase(kind, lang, who):
    """One sentence of a class, its labelled values marked."""
    tpl = pick(*PH[kind][lang if lang in PH[kind] else "en"])
    fn, ln = who
    vals = dict(
        name=f"{fn} {ln}",
        user=username(),
        bic=pick(*BIC[lang]),
        exp=expiry(),
        cvv=cvv(),
        ipv6=ipv6(),
        mac=mac(),
        time=f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}",
    )
    if "{email}" in tpl:
        vals["email"] = L("email", email(lang, fn, ln))
    if "{phone}" in tpl:
        vals["phone"] = L("phone_number", phone(lang))
    if "{iban}" in tpl:
        vals["iban"] = L("iban", fmt_iban(iban(lang)))
    if "{card}" in tpl:
        vals["card"] = L("credit_card", fmt_card(card()))
    if "{ip}" in tpl:
        vals["ip"] = L("ipv4", pub_ip())
    if "{pw}" in tpl:
        vals["pw"] = L("generic_secret", password())
    if "{ssn}" in tpl:
        vals["ssn"] = L("us_ssn", ssn())
    return tpl.format(**vals)


def ai4p_sentence():
    lang = pick(*LANGS)
    who = (first(lang), last(lang))
    kinds = ["email", "phone", "iban", "card", "ip", "password"] + (["ssn"] if lang == "en" else [])
    chosen = R.sample(kinds, R.randint(1, 3))
    parts = [phrase(k, lang, who) for k in chosen]
    for _ in range(R.randint(0, 2)):
        parts.insert(R.randint(0, len(parts)), fill_other(lang))
    text = " ".join(parts)
    k = R.randint(0, 4)
    if k == 0:
        obj = call(
            pick("send_email", "create_ticket", "add_note"), {"to": "support-team", "body": text}
        )
    elif k == 1:
        obj = call("memory_add", {"observations": [text], "entity": who[0]})
    elif k == 2:
        obj = result(text, structured={"masked": False, "source_text": text, "locale": lang})
    else:
        obj = result(text)
    add("ai4p-sentence", obj)


def ai4p_benign():
    """Same languages, only classes that are no vocabulary type, and lookalikes."""
    lang = pick(*LANGS)
    parts = [fill_other(lang) for _ in range(R.randint(1, 3))]
    extra = pick(
        f"IBAN {bad_iban(iban(lang))} (invalid checksum)",
        f"Card ending in {d(4)} (**** **** **** {d(4)})",
        f"Order {d1(10)} shipped, tracking {pick('1Z', 'JJD', '')}{d(12)}.",
        f"Local IP {priv_ip()}, IPv6 {ipv6()}, MAC {mac()}.",
        f"BIC {pick(*BIC[lang])}",
        f"Invoice total {R.randint(10, 9999)},{d(2)} EUR due {dob(lang)}.",
        f"Card {fmt_card(bad_luhn(card('visa')))} was declined (invalid number).",
        f"Version {R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}.{R.randint(100, 9999)} installed.",
    )
    parts.insert(R.randint(0, len(parts)), extra)
    text = " ".join(parts)
    obj = pick(
        result(text), call("add_note", {"body": text}), result(text, structured={"text": text})
    )
    add("ai4p-benign", obj)


# short documents: forms, letters, mails
FORM = {
    "en": (
        "Customer details",
        "Name",
        "Date of birth",
        "Address",
        "Phone",
        "Email",
        "Bank account (IBAN)",
        "SSN",
    ),
    "de": (
        "Kundendaten",
        "Name",
        "Geburtsdatum",
        "Anschrift",
        "Telefon",
        "E-Mail",
        "IBAN",
        "Steuer-ID",
    ),
    "fr": (
        "Fiche client",
        "Nom",
        "Date de naissance",
        "Adresse",
        "Téléphone",
        "E-mail",
        "IBAN",
        "N° de sécurité sociale",
    ),
    "it": (
        "Dati cliente",
        "Nome",
        "Data di nascita",
        "Indirizzo",
        "Telefono",
        "Email",
        "IBAN",
        "Codice fiscale",
    ),
    "es": (
        "Datos del cliente",
        "Nombre",
        "Fecha de nacimiento",
        "Dirección",
        "Teléfono",
        "Correo electrónico",
        "IBAN",
        "DNI",
    ),
    "nl": ("Klantgegevens", "Naam", "Geboortedatum", "Adres", "Telefoon", "E-mail", "IBAN", "BSN"),
    "pt": (
        "Dados do cliente",
        "Nome",
        "Data de nascimento",
        "Morada",
        "Telefone",
        "E-mail",
        "IBAN",
        "NIF",
    ),
}


def ai4p_document():
    lang = pick(*LANGS)
    fn, ln = first(lang), last(lang)
    t, n, b, a, p, e, ib, nid = FORM[lang]
    nidv = L("us_ssn", ssn()) if lang == "en" else national_id(lang)
    style = R.randint(0, 2)
    if style == 0:
        text = (
            f"{t}\n{n}: {fn} {ln}\n{b}: {dob(lang)}\n{a}: {address(lang)}\n{p}: {L('phone_number', phone(lang))}\n"
            f"{e}: {L('email', email(lang, fn, ln))}\n{ib}: {L('iban', fmt_iban(iban(lang)))}\n{nid}: {nidv}\n"
        )
    elif style == 1:
        greet = {
            "en": "Dear",
            "de": "Sehr geehrte/r",
            "fr": "Bonjour",
            "it": "Gentile",
            "es": "Estimado/a",
            "nl": "Beste",
            "pt": "Caro/a",
        }[lang]
        body = " ".join(
            [
                phrase("phone", lang, (fn, ln)),
                phrase(pick("iban", "card", "email"), lang, (fn, ln)),
                fill_other(lang),
            ]
        )
        text = f"{greet} {fn} {ln},\n\n{body}\n\n--\n{name(lang)}\n{L('email', email(lang))}\n{L('phone_number', phone(lang))}\n"
    else:
        row = {
            "name": f"{fn} {ln}",
            "dob": dob(lang),
            "email": L("email", email(lang, fn, ln)),
            "phone": L("phone_number", phone(lang)),
            "address": address(lang),
            "ip_address": L("ipv4", pub_ip()),
            "mac": mac(),
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        }
        text = J(row, indent=2)
        obj = result(text, structured={"record": row})
        # the record sits in a JSON text (depth 2 in content) and as structuredContent (depth 1)
        add("ai4p-document", _relabel_record(obj, row))
        return
    wrap(
        "ai4p-document",
        text,
        tool=pick("write_file", "send_email"),
        args={"path": f"/tmp/{lang}_{d(4)}.txt"},
    )


def _relabel_record(obj, row):
    # the JSON text of the record is a string inside a string: its labelled values go one level deeper
    txt = obj["result"]["content"][0]["text"]
    for m in MARK.finditer(txt):
        typ, value, _ = KIT.labels[int(m.group(1))]
        txt = txt.replace(m.group(0), L(typ, value, 2), 1)
    obj["result"]["content"][0]["text"] = txt
    return obj


# ------------------------------------------------------------------ Presidio-research-style templates
PRESIDIO = [
    "Please send the invoice to {email}",
    "My card {card} expires {exp}",
    "call me at {phone}",
    "{name}'s phone number is {phone}",
    "I live at {addr} and my SSN is {ssn}",
    "The IP address {ip} attempted to log in at {time}",
    "Can you please update my IBAN to {iban}?",
    "My credit card number is {card} and the security code is {cvv}",
    "Send the package to {name}, {addr}",
    "my email is {email} and my number is {phone}",
    "Hi, I'm {name}. Reach me via {email} or {phone}.",
    "SSN {ssn} belongs to {name}, born {dob}",
    "Transfer 250 EUR from {iban} to {iban2}",
    "Our server at {ip} is down again",
    "Please charge {card} for order #{order}",
    "What is the status of my request? My social security number is {ssn}",
    "Update the contact: {name}, {phone}, {email}",
    "Please verify my identity. DOB {dob}, driver license {dl}",
    "I forgot my password, my username is {user} and my email {email}",
    "The customer's IBAN is {iban} and BIC {bic}",
    "Connection from {ip} to {ip2} on port {port} was refused",
    "My passport number is {passport} and my phone {phone}",
]
PRESIDIO_BENIGN = [
    "Please send the invoice to the billing department",
    "My card expires next month, can I update it?",
    "call me at the office tomorrow",
    "Order #{order} shipped from warehouse {wh}",
    "My driver license number is {dl}",
    "My passport number is {passport}",
    "The meeting is at {time} in room {room}",
    "Your verification code is {pin}",
    "Tracking number {track} - expected {dob}",
    "Transfer reference {ref} completed",
    "Server {ip_priv} responded in {ms} ms",
    "Please update my address to {addr}",
    "Serial number {serial}, firmware {fw}",
]


def _presidio_vals(lang="en"):
    return dict(
        name=name("en"),
        addr=address("en"),
        exp=expiry(),
        cvv=cvv(),
        time=f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}",
        dob=dob("en"),
        dl=f"{rs(1, UP)}{d(7)}",
        user=username(),
        bic=pick(*BIC["en"]),
        port=pick(22, 443, 3389, 8080),
        passport=f"{rs(pick(1, 2), UP)}{d(7)}",
        order=d1(8),
        wh=f"{rs(2, UP)}-{d(2)}",
        room=f"{R.randint(1, 9)}.{d(2)}",
        pin=d(6),
        track=f"1Z{rs(6, UP + DIG)}{d(10)}",
        ref=f"{rs(3, UP)}{d(9)}",
        ip_priv=priv_ip(),
        ms=R.randint(3, 900),
        serial=f"{rs(2, UP)}{d(8)}",
        fw=f"{R.randint(1, 5)}.{R.randint(0, 9)}.{R.randint(0, 30)}",
    )


def presidio():
    tpl = pick(*PRESIDIO)
    v = _presidio_vals()
    lang = pick("en", "en", "en", "de", "fr", "nl", "es")
    for key, typ, mk in (
        ("email", "email", lambda: email("en")),
        ("phone", "phone_number", lambda: phone(lang)),
        ("card", "credit_card", lambda: fmt_card(card())),
        ("ssn", "us_ssn", ssn),
        ("ip", "ipv4", pub_ip),
        ("ip2", "ipv4", pub_ip),
        ("iban", "iban", lambda: fmt_iban(iban(pick(*LANGS)))),
        ("iban2", "iban", lambda: fmt_iban(iban(pick(*LANGS)))),
    ):
        if "{" + key + "}" in tpl:
            v[key] = L(typ, mk())
    text = tpl.format(**v)
    k = R.randint(0, 3)
    if k == 0:
        obj = {
            "jsonrpc": "2.0",
            "id": R.randint(2, 900),
            "method": "sampling/createMessage",
            "params": {
                "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
                "maxTokens": 400,
            },
        }
    elif k == 1:
        obj = call(
            pick("support_reply", "crm_update", "send_sms"),
            {"message": text, "priority": pick("low", "high")},
        )
    else:
        obj = result(text)
    add("presidio", obj)


def presidio_benign():
    text = pick(*PRESIDIO_BENIGN).format(**_presidio_vals())
    add("presidio-benign", pick(result(text), call("support_reply", {"message": text})))


# ------------------------------------------------------------------ code secrets (StarPII / secret-benchmark style)
def _secret(kind):
    """(type, value) of a secret of the given family."""
    return {
        "aws": lambda: ("aws_access_key_id", aws_id()),
        "github": lambda: ("github_token", github_token(pick("ghp", "gho", "ghs"))),
        "gitlab": lambda: ("gitlab_token", gitlab_token()),
        "slack": lambda: ("slack_token", slack_bot()),
        "stripe": lambda: ("stripe_key", stripe_sk()),
        "openai": lambda: ("openai_api_key", openai_key()),
        "anthropic": lambda: ("anthropic_api_key", anthropic_key()),
        "google": lambda: ("google_api_key", google_key()),
        "sendgrid": lambda: ("sendgrid_api_key", sendgrid_key()),
        "twilio": lambda: ("twilio_api_key", twilio_key()),
        "jwt": lambda: ("jwt", jwt()),
        "hf": lambda: ("generic_secret", hf_token()),
        "generic": lambda: ("generic_secret", generic_key()),
        "password": lambda: ("generic_secret", password()),
    }[kind]()


def code_file(lang, dep=1):
    """A source or config file with one to three secrets; returns (path, text)."""
    kind = pick(
        "aws",
        "github",
        "gitlab",
        "slack",
        "stripe",
        "openai",
        "anthropic",
        "google",
        "sendgrid",
        "twilio",
        "hf",
        "generic",
        "generic",
        "password",
        "password",
    )
    typ, val = _secret(kind)
    S = L(typ, val, dep)
    P = L("generic_secret", password(), dep)
    awss = L("aws_secret_access_key", aws_secret(), dep)
    upw = L("url_credentials", mixed(16), dep)
    host = pick(
        "db.internal",
        "10.0.3.12",
        "pg-prod.cluster-cx1.eu-west-1.rds.amazonaws.com",
        "mysql.acme-corp.net",
    )
    author = f"{name('en')} <{L('email', email('en'), dep)}>"
    if kind == "aws":
        keyname = "AWS_ACCESS_KEY_ID"
    else:
        keyname = {
            "github": "GITHUB_TOKEN",
            "gitlab": "GITLAB_TOKEN",
            "slack": "SLACK_BOT_TOKEN",
            "stripe": "STRIPE_SECRET_KEY",
            "openai": "OPENAI_API_KEY",
            "anthropic": "ANTHROPIC_API_KEY",
            "google": "GOOGLE_API_KEY",
            "sendgrid": "SENDGRID_API_KEY",
            "twilio": "TWILIO_API_KEY",
            "jwt": "AUTH_TOKEN",
            "hf": "HF_TOKEN",
            "generic": pick("API_KEY", "SECRET_KEY", "CLIENT_SECRET", "ACCESS_TOKEN"),
            "password": "DB_PASSWORD",
        }[kind]
    low = keyname.lower()
    aws2 = f'\nAWS_SECRET_ACCESS_KEY = "{awss}"' if kind == "aws" else ""
    if lang == "python":
        return "settings.py", (
            f'# Author: {author}\nimport os\nimport requests\n\n{keyname} = "{S}"{aws2}\n'
            f'DATABASE_URL = "postgresql://app:{upw}@{host}:5432/orders"\n\n'
            f'def fetch(path):\n    return requests.get(BASE + path, headers={{"Authorization": f"Bearer {{{keyname}}}"}}, timeout=10)\n'
        )
    if lang == "javascript":
        return "src/config.js", (
            f"// maintainer: {author}\nconst axios = require('axios');\n\nconst {low.split('_')[0]}Client = axios.create({{\n"
            f"  baseURL: 'https://api.service.io/v1',\n  headers: {{ Authorization: 'Bearer {S}' }},\n}});\n"
            f"const dbPassword = '{P}';\nmodule.exports = {{ client: {low.split('_')[0]}Client, dbPassword }};\n"
        )
    if lang == "typescript":
        return "src/env.ts", (
            f'export const config = {{\n  {low.replace("_k", "K").replace("_t", "T").replace("_s", "S").replace("_p", "P")}: "{S}",\n'
            f'  database: {{ host: "{host}", user: "svc_app", password: "{P}" }},\n}} as const;\n'
        )
    if lang == "java":
        return "src/main/java/com/acme/Config.java", (
            f"package com.acme;\n\n/** @author {author} */\npublic final class Config {{\n"
            f'    public static final String {keyname} = "{S}";\n'
            f'    private static final String DB_URL = "jdbc:mysql://{host}:3306/shop";\n'
            f'    private static final String DB_PASSWORD = "{P}";\n}}\n'
        )
    if lang == "go":
        return "internal/config/config.go", (
            f'package config\n\n// Owner: {author}\nconst (\n\t{keyname.title().replace("_", "")} = "{S}"\n'
            f'\tdsn = "postgres://app:{upw}@{host}:5432/app?sslmode=require"\n)\n'
        )
    if lang == "ruby":
        return "config/initializers/services.rb", (
            f"# {author}\nRails.application.configure do\n  config.x.{low} = '{S}'\n"
            f"  config.x.smtp_password = '{P}'\nend\n"
        )
    if lang == "php":
        return "config/services.php", (
            f"<?php\n// {author}\nreturn [\n    '{low}' => '{S}',\n    'db' => [\n        'host' => '{host}',\n"
            f"        'password' => '{P}',\n    ],\n];\n"
        )
    if lang == "csharp":
        return "Services/ApiClient.cs", (
            f"// {author}\nnamespace Acme.Services\n{{\n    public class ApiClient\n    {{\n"
            f'        private const string ApiKey = "{S}";\n'
            f'        private readonly string _conn = "Server={host};Database=Shop;User Id=sa;Password={P};";\n    }}\n}}\n'
        )
    if lang == "rust":
        return "src/main.rs", (
            f'// {author}\nconst {keyname}: &str = "{S}";\n\nfn main() {{\n'
            f'    let url = "mysql://root:{upw}@{host}:3306/app";\n    println!("connecting");\n}}\n'
        )
    if lang == "kotlin":
        return "app/src/main/java/com/acme/Keys.kt", (
            f'// {author}\nobject Keys {{\n    const val {keyname} = "{S}"\n'
            f'    val dbPassword = "{P}"\n}}\n'
        )
    if lang == "swift":
        return "Sources/App/Secrets.swift", (
            f'// {author}\nenum Secrets {{\n    static let {low.split("_")[0]}Key = "{S}"\n'
            f'    static let password = "{P}"\n}}\n'
        )
    if lang == "scala":
        return "src/main/scala/Conf.scala", (
            f'// {author}\nobject Conf {{\n  val {low.split("_")[0]}Token = "{S}"\n}}\n'
        )
    if lang == "bash":
        return "deploy.sh", (
            f"#!/usr/bin/env bash\n# {author}\nset -euo pipefail\nexport {keyname}={S}{aws2.replace(' = ', '=').replace(chr(10) + 'AWS', chr(10) + 'export AWS')}\n"
            f"mysql -h {host} -u deploy -p'{P}' app < migrate.sql\n"
        )
    if lang == "yaml":
        return "config/app.yaml", (
            f"# {author}\napp:\n  name: orders\n  {low}: {S}\ndatabase:\n  host: {host}\n  username: app\n  password: {P}\n"
        )
    if lang == "json":
        return "appsettings.json", J(
            {
                "Logging": {"LogLevel": {"Default": "Information"}},
                "ConnectionStrings": {
                    "Default": f"Server={host};Database=app;User Id=app;Password={P};"
                },
                "Services": {keyname: S},
            },
            indent=2,
        )
    if lang == "env":
        return (
            ".env",
            f"# {author}\nNODE_ENV=production\n{keyname}={S}{aws2.replace(' = ', '=').replace(chr(34), '')}\nDATABASE_URL=mysql://app:{upw}@{host}:3306/app\nREDIS_PASSWORD={P}\n",
        )
    if lang == "ini":
        return (
            "config.ini",
            f"; {author}\n[database]\nhost = {host}\nuser = app\npassword = {P}\n\n[api]\n{low} = {S}\n",
        )
    if lang == "docker":
        return "docker-compose.yml", (
            f"services:\n  api:\n    image: acme/api:2.4.1\n    environment:\n      - {keyname}={S}\n"
            f"      - POSTGRES_PASSWORD={P}\n"
        )
    if lang == "terraform":
        return "main.tf", (
            f'provider "aws" {{\n  region     = "eu-west-1"\n  access_key = "{L("aws_access_key_id", aws_id(), dep)}"\n'
            f'  secret_key = "{awss}"\n}}\n\nresource "aws_db_instance" "main" {{\n  username = "admin"\n  password = "{P}"\n}}\n'
        )
    # properties
    return "application.properties", (
        f"# {author}\nspring.datasource.url=jdbc:postgresql://{host}:5432/app\n"
        f"spring.datasource.username=app\nspring.datasource.password={P}\nservice.{low.replace('_', '.')}={S}\n"
    )


CODE_LANGS = [
    "python",
    "javascript",
    "typescript",
    "java",
    "go",
    "ruby",
    "php",
    "csharp",
    "rust",
    "kotlin",
    "swift",
    "scala",
    "bash",
    "yaml",
    "json",
    "env",
    "ini",
    "docker",
    "terraform",
    "properties",
]


def code_secret():
    lang = pick(*CODE_LANGS)
    path, text = code_file(lang)
    k = R.randint(0, 4)
    if k == 0:
        obj = call(pick("write_file", "create_or_update_file"), {"path": path, "content": text})
    elif k == 1:
        obj = resource(f"file:///workspace/{path}", text)
    elif k == 2:
        obj = call("edit_file", {"path": path, "edits": [{"oldText": "TODO", "newText": text}]})
    else:
        obj = result(text)
    add(f"code-{lang}", obj)


def notebook():
    """An .ipynb read as text: the cell sources are JSON strings inside the message's string."""
    typ, val = _secret(pick("openai", "anthropic", "hf", "google", "generic", "github"))
    var = {
        "openai_api_key": "OPENAI_API_KEY",
        "anthropic_api_key": "ANTHROPIC_API_KEY",
        "google_api_key": "GOOGLE_API_KEY",
        "github_token": "GITHUB_TOKEN",
    }.get(typ, pick("HF_TOKEN", "WANDB_API_KEY", "api_key"))
    nb = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": ["# Exploration\n", f"Owner: {name('en')}\n"],
            },
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "outputs": [],
                "source": [
                    "import os\n",
                    f'os.environ["{var}"] = "{L(typ, val, 2)}"\n',
                    "client = make_client()\n",
                ],
            },
            {
                "cell_type": "code",
                "execution_count": 2,
                "metadata": {},
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": [f"connected as {L('email', email('en'), 2)}\n"],
                    }
                ],
                "source": ["print(client.whoami())\n"],
            },
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = J(nb, indent=1)
    obj = pick(
        result(text), resource("file:///workspace/analysis.ipynb", text, "application/x-ipynb+json")
    )
    add("code-notebook", obj)


def private_key_file():
    kind = pick("RSA ", "EC ", "OPENSSH ", "")
    body = pem(kind)
    text = f"# deploy key for {pick('ci', 'prod-bastion', 'backup')}\n{L('private_key', body)}\n"
    wrap("code-private-key", text, tool="write_file", args={"path": "~/.ssh/id_deploy"})


def auth_headers():
    """HTTP clients in several languages: Basic credentials, bearer JWTs, URL passwords, webhooks."""
    user = pick("api", "admin", "svc-billing", username())
    cred = base64.b64encode(f"{user}:{password()}".encode()).decode()
    k = R.randint(0, 3)
    if k == 0:
        text = f"curl -s https://api.partner.io/v2/orders \\\n  -H 'Authorization: Basic {L('basic_auth', cred)}' \\\n  -H 'Accept: application/json'\n"
    elif k == 1:
        text = f"const res = await fetch(url, {{\n  headers: {{ 'Authorization': 'Bearer {L('jwt', jwt())}' }}\n}});\n"
    elif k == 2:
        text = f'import requests\nrequests.post("{L("slack_webhook", slack_hook())}", json={{"text": "deploy done"}})\n'
    else:
        text = f"git remote set-url origin https://{user}:{L('url_credentials', mixed(18))}@git.acme-corp.net/platform/api.git\n"
    wrap("code-http", text, tool="run_command", args={"cwd": "/workspace"})


# ------------------------------------------------------------------ code hard negatives
def code_negative():
    lang = pick(
        "python",
        "javascript",
        "java",
        "go",
        "ruby",
        "php",
        "csharp",
        "rust",
        "yaml",
        "env",
        "bash",
        "json",
        "test",
        "lock",
        "docs",
        "kotlin",
    )
    h = sha(64)
    if lang == "python":
        text = (
            f'import os, hashlib\n\nAPI_KEY = os.environ["API_KEY"]\nDB_PASSWORD = os.getenv("DB_PASSWORD", "")\n'
            f'EXPECTED_SHA256 = "{h}"\nREQUEST_ID = "{uid()}"\n\ndef check(data):\n    return hashlib.sha256(data).hexdigest() == EXPECTED_SHA256\n'
        )
    elif lang == "javascript":
        text = (
            f"const apiKey = process.env.STRIPE_SECRET_KEY;\nconst password = req.body.password;\n"
            f"const integrity = 'sha512-{rs(86, ALNUM + '+/')}==';\nconst sessionId = '{uid()}';\n"
        )
    elif lang == "java":
        text = (
            '@Value("${spring.datasource.password}")\nprivate String password;\n\n'
            f'private static final String COMMIT = "{sha(40)}";\nprivate static final String API_KEY = System.getenv("API_KEY");\n'
        )
    elif lang == "go":
        text = (
            f'token := os.Getenv("GITHUB_TOKEN")\nif token == "" {{\n\tlog.Fatal("GITHUB_TOKEN not set")\n}}\n'
            f'const etag = "W/\\"{sha(32)}\\""\n'
        )
    elif lang == "ruby":
        text = (
            "config.secret_key_base = ENV.fetch('SECRET_KEY_BASE')\nconfig.x.api_key = Rails.application.credentials.dig(:stripe, :secret_key)\n"
            f"# digest: {sha(64)}\n"
        )
    elif lang == "php":
        text = "'password' => env('DB_PASSWORD'),\n'api_key' => env('MAILGUN_SECRET', null),\n'key' => env('APP_KEY'),\n"
    elif lang == "csharp":
        text = (
            'var apiKey = Environment.GetEnvironmentVariable("OPENAI_API_KEY");\nvar conn = configuration.GetConnectionString("Default");\n'
            f"// Build {uid()}\n"
        )
    elif lang == "rust":
        text = f'let token = std::env::var("HF_TOKEN").expect("HF_TOKEN");\nconst CHECKSUM: &str = "{sha(64)}";\n'
    elif lang == "yaml":
        text = (
            'database:\n  password: ${DB_PASSWORD}\napi:\n  key: "{{ .Values.apiKey }}"\n'
            f"  client_id: {uid()}\nimage:\n  digest: sha256:{sha(64)}\n"
        )
    elif lang == "env":
        text = (
            "# copy to .env and fill in\nOPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nSTRIPE_SECRET_KEY=sk_test_your_key_here\n"
            "DB_PASSWORD=<your-password>\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
        )
    elif lang == "bash":
        text = (
            "read -s -p 'Password: ' DB_PASSWORD\nexport API_TOKEN=\"$(vault kv get -field=token secret/ci)\"\n"
            f'echo "{sha(64)}  release.tar.gz" | sha256sum -c -\n'
        )
    elif lang == "json":
        text = J(
            {
                "name": "web",
                "version": "3.2.1",
                "dependencies": {"jsonwebtoken": "^9.0.2", "bcrypt": "^5.1.1"},
                "publishConfig": {"registry": "https://registry.npmjs.org/"},
                "lockfileVersion": 3,
                "packages": {
                    "node_modules/bcrypt": {"integrity": f"sha512-{rs(86, ALNUM + '+/')}=="}
                },
            },
            indent=2,
        )
    elif lang == "test":
        text = (
            "def test_login(client):\n    resp = client.post('/login', data={'username': 'test', 'password': 'password'})\n"
            "    assert resp.status_code == 200\n\nFAKE_TOKEN = 'dummy-token'\nTEST_API_KEY = 'test'\n"
            f"HASH = '$2b$12${rs(53, ALNUM + './')}'\n"
        )
    elif lang == "lock":
        text = "".join(
            f"{pick('requests', 'urllib3', 'idna', 'certifi')}==2.{R.randint(0, 32)}.{R.randint(0, 9)} \\\n    --hash=sha256:{sha(64)}\n"
            for _ in range(3)
        )
    elif lang == "kotlin":
        text = (
            'val apiKey = BuildConfig.API_KEY\nval password = intent.getStringExtra("password") ?: ""\n'
            f'val publicKey = "{ssh_pub()}"\n'
        )
    else:
        text = (
            '## Configuration\n\nSet `OPENAI_API_KEY` to your key (it starts with `sk-`).\n\n```bash\nexport OPENAI_API_KEY="YOUR_API_KEY"\n'
            'export DB_PASSWORD="********"\n```\n\nThe public key is:\n\n```\n-----BEGIN PUBLIC KEY-----\n'
            + "\n".join(rs(64, ALNUM + "+/") for _ in range(4))
            + "\n-----END PUBLIC KEY-----\n```\n"
        )
    k = R.randint(0, 3)
    if k == 0:
        obj = call("write_file", {"path": f"src/{lang}.txt", "content": text})
    elif k == 1:
        obj = resource(f"file:///workspace/{lang}/file", text)
    else:
        obj = result(text)
    add(f"code-negative-{lang}", obj)


def notebook_negative():
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {},
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "data": {"text/plain": [f"'{uid()}'"]},
                        "metadata": {},
                        "execution_count": 3,
                    }
                ],
                "source": [
                    "import os, uuid\n",
                    'api_key = os.environ.get("OPENAI_API_KEY")\n',
                    "str(uuid.uuid4())\n",
                ],
            },
            {
                "cell_type": "code",
                "execution_count": 4,
                "metadata": {},
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": [f"model sha256: {sha(64)}\n", f"run id {hexs(32)}\n"],
                    }
                ],
                "source": ["print(digest(model))\n"],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    add("code-negative-notebook", result(J(nb, indent=1)))


# ------------------------------------------------------------------ mixed: secret-benchmark files with positives and decoys
def mixed_file():
    """A file with a real secret next to the decoys benchmark sets put beside it."""
    typ, val = _secret(pick("generic", "password", "github", "stripe", "aws"))
    var = {
        "aws_access_key_id": "aws_access_key_id",
        "github_token": "github_token",
        "stripe_key": "stripe_api_key",
    }.get(typ, pick("api_secret", "password", "auth_token"))
    text = (
        f"# test fixtures (fake)\nTEST_PASSWORD = 'password'\nEXAMPLE_KEY = 'YOUR_API_KEY'\n"
        f"SAMPLE_UUID = '{uid()}'\nFILE_MD5 = '{sha(32)}'\n\n# production (should not be here)\n{var} = '{L(typ, val)}'\n"
    )
    wrap("code-mixed", text, tool="write_file", args={"path": "tests/conftest.py"})


# ------------------------------------------------------------------ PII in data files (CSV / JSON lines), as benchmark rows
def pii_rows():
    lang = pick(*LANGS)
    rows = ["id,first_name,last_name,email,phone,iban,ip_address,date_of_birth"]
    for i in range(R.randint(2, 4)):
        fn, ln = first(lang), last(lang)
        rows.append(
            f"{i + 1},{fn},{ln},{L('email', email(lang, fn, ln))},{L('phone_number', phone(lang))},"
            f"{L('iban', iban(lang))},{L('ipv4', pub_ip())},{dob(lang).replace(',', '')}"
        )
    text = "\n".join(rows) + "\n"
    wrap("pii-csv", text, tool="write_file", args={"path": "export/customers.csv"})


def pii_jsonl():
    lines = []
    for _ in range(R.randint(2, 3)):
        lang = pick(*LANGS)
        src = " ".join(
            [
                phrase(pick("email", "phone", "card", "iban"), lang, (first(lang), last(lang))),
                fill_other(lang),
            ]
        )
        lines.append(src)
    # a masking data set's record: source text and its masked target; the source's values are labelled
    rec = {
        "source_text": " ".join(lines),
        "target_text": "[FIRSTNAME] ... [EMAIL] ... [PHONE_NUMBER]",
        "language": "multi",
    }
    add("pii-jsonl", result(" ".join(lines), structured=rec))


# ------------------------------------------------------------------ secrets in prose (chat with the agent)
def secret_prose():
    lang = pick(*LANGS)
    user = username()
    pw = L("generic_secret", password())
    s = pick(
        *{
            "en": [
                f"Hey, can you log into the staging box? user is {user} and the password is {pw}",
                f"The wifi password is {pw} btw",
                f"reset done - temp password: {pw}",
            ],
            "de": [
                f"Kannst du dich einloggen? Benutzer {user}, Passwort: {pw}",
                f"Das WLAN-Passwort ist {pw}",
            ],
            "fr": [
                f"Peux-tu te connecter ? utilisateur {user}, mot de passe : {pw}",
                f"le mot de passe wifi est {pw}",
            ],
            "it": [f"Puoi accedere? utente {user}, password: {pw}", f"la password del wifi è {pw}"],
            "es": [
                f"¿Puedes entrar? usuario {user}, contraseña: {pw}",
                f"la contraseña del wifi es {pw}",
            ],
            "nl": [
                f"Kun je inloggen? gebruiker {user}, wachtwoord: {pw}",
                f"het wifi-wachtwoord is {pw}",
            ],
            "pt": [
                f"Consegues entrar? utilizador {user}, senha: {pw}",
                f"a palavra-passe do wifi é {pw}",
            ],
        }[lang]
    )
    add("secret-prose", pick(call("send_message", {"channel": "#ops", "text": s}), result(s)))


TEMPLATES = [
    (ai4p_sentence, 90),
    (ai4p_benign, 40),
    (ai4p_document, 40),
    (presidio, 60),
    (presidio_benign, 30),
    (code_secret, 80),
    (notebook, 12),
    (private_key_file, 8),
    (auth_headers, 20),
    (code_negative, 50),
    (notebook_negative, 8),
    (mixed_file, 12),
    (pii_rows, 12),
    (pii_jsonl, 12),
    (secret_prose, 20),
]


def generate(seed: int | str = SEED) -> list[dict]:
    return KIT.run(seed, TEMPLATES)


if __name__ == "__main__":
    main(generate, SEED, "corpus43.jsonl")
