"""The forty-first corpus (blind round): customer support and CRM exports (Zendesk, Intercom,
Freshdesk, Salesforce, HubSpot), personal data in Dutch, Polish, Italian, Swedish, Turkish and
Portuguese, mobile and desktop app configuration (google-services.json, Firebase service
accounts, App Store Connect keys, Sentry, Algolia, Mapbox, Expo / EAS, VS Code, Electron, Tauri)
and payment providers' webhooks, configs and dashboards (Stripe, Adyen, Mollie, Razorpay, PayPal,
Square, GoCardless, Klarna), as JSON-RPC messages an MCP server or client sends. Written before
the rules were read; the values are fake but format-valid (Luhn, mod-97, CRC32 where the format
has them). ``generate(seed)`` gives samples as tests/scan/corpus_gen.py does: ``text`` (the
message), ``labels`` (type, start, end), ``benign``, ``category``, ``note``.

    python tests/scan/corpus_support_mobile.py OUT.jsonl [SEED]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import string
import uuid

_dumps = json.dumps


def J(obj, **kw):
    kw.setdefault("ensure_ascii", False)
    return _dumps(obj, **kw)


SEED = 41
R = random.Random(SEED)
ALNUM = string.ascii_letters + string.digits
UP = string.ascii_uppercase
LO = string.ascii_lowercase
DIG = string.digits
HEX = "0123456789abcdef"
B62 = DIG + UP + LO


def rs(n, alpha=ALNUM):
    return "".join(R.choice(alpha) for _ in range(n))


def mixed(n, alpha=ALNUM):
    while True:
        v = rs(n, alpha)
        if any(c in UP for c in v) and any(c in LO for c in v) and any(c in DIG for c in v):
            return v


# ------------------------------------------------------------------ markers and spans
_LABELS: list[tuple[str, str, int]] = []


def L(typ, value, depth=1):
    """A labelled value; depth = how many JSON string levels it sits in (1: a plain string)."""
    _LABELS.append((typ, value, depth))
    return f"\u27ea{len(_LABELS) - 1}\u27eb"


def N(value, depth=1):
    """An unlabelled value that must not be reported (for documentation only)."""
    return value


def esc(v, depth):
    for _ in range(depth):
        v = J(v, ensure_ascii=False)[1:-1]
    return v


_MK = re.compile("\u27ea(\\d+)\u27eb")


def build(obj):
    raw = J(obj, ensure_ascii=False)
    out, labels, pos, last = [], [], 0, 0
    for m in _MK.finditer(raw):
        out.append(raw[last : m.start()])
        pos += m.start() - last
        typ, value, depth = _LABELS[int(m.group(1))]
        v = esc(value, depth)
        labels.append({"type": typ, "start": pos, "end": pos + len(v)})
        out.append(v)
        pos += len(v)
        last = m.end()
    out.append(raw[last:])
    return "".join(out), labels


def result(text, rid=None, structured=None):
    r = {"content": [{"type": "text", "text": text}]}
    if structured is not None:
        r["structuredContent"] = structured
    return {"jsonrpc": "2.0", "id": rid or R.randint(2, 900), "result": r}


def call(name, args, rid=None):
    return {
        "jsonrpc": "2.0",
        "id": rid or R.randint(2, 900),
        "method": "tools/call",
        "params": {"name": name, "arguments": args},
    }


def resource(uri, text, mime="application/json", rid=None):
    return {
        "jsonrpc": "2.0",
        "id": rid or R.randint(2, 900),
        "result": {"contents": [{"uri": uri, "mimeType": mime, "text": text}]},
    }


# ------------------------------------------------------------------ value makers
FIRST = "Sanne Daan Lotte Bram Zofia Kacper Giulia Matteo Astrid Elin Oskar Ayşe Emre Zeynep Mehmet Inês João Beatriz Rui Chloe Marcus Priya Liam Nora".split()
LAST = "Jansen deVries Kowalski Nowak Wiśniewska Rossi Bianchi Ferrari Lindqvist Andersson Berg Yılmaz Demir Kaya Çelik Silva Ferreira Costa Santos Okafor Brennan Hartley".split()
DOMAINS = "ziggo.nl kpnmail.nl wp.pl onet.pl libero.it tiscali.it telia.com bredband.net hotmail.com gmail.com outlook.com sapo.pt gmx.de yandex.com.tr icloud.com protonmail.com".split()
CO_DOMAINS = "brightlane-retail.com tulpbloem.nl vetrerie-moretti.it nordkust-logistik.se kahvedunyasi-ankara.com.tr lojadomar.pt zielonykoszyk.pl velocargo.io fjordline-apps.com".split()


def person():
    f, la = R.choice(FIRST), R.choice(LAST)
    return f, la


def ascii_fold(s):
    tr = str.maketrans("şŞıİçÇğĞöÖüÜńŃśŚłŁąĄęĘźŹżŻóÓéÉãÃêÊ", "sSiIcCgGoOuUnNsSlLaAeEzZzZoOeEaAeE")
    return s.translate(tr).lower()


def email(f=None, la=None, dom=None):
    f, la = (f, la) if f else person()
    dom = dom or R.choice(DOMAINS)
    style = R.randint(0, 3)
    loc = [
        f"{ascii_fold(f)}.{ascii_fold(la)}",
        f"{ascii_fold(f)[0]}{ascii_fold(la)}",
        f"{ascii_fold(f)}{R.randint(10, 99)}",
        f"{ascii_fold(la)}.{ascii_fold(f)[0]}",
    ][style]
    return f"{loc}@{dom}"


def luhn(partial):
    for d in DIG:
        c = partial + d
        t = 0
        for i, ch in enumerate(reversed(c)):
            v = int(ch)
            if i % 2:
                v *= 2
                v -= 9 if v > 9 else 0
            t += v
        if t % 10 == 0:
            return c
    raise AssertionError


def card(brand=None):
    brand = brand or R.choice(["visa", "mc", "amex", "mc2"])
    if brand == "visa":
        n = luhn("4" + rs(14, DIG))
    elif brand == "mc":
        n = luhn(str(R.randint(51, 55)) + rs(13, DIG))
    elif brand == "mc2":
        n = luhn(str(R.randint(2221, 2720)) + rs(11, DIG))
    else:
        n = luhn(R.choice(["34", "37"]) + rs(12, DIG))
    return n


def fmt_card(n, sep=" "):
    if len(n) == 15:
        return f"{n[:4]}{sep}{n[4:10]}{sep}{n[10:]}"
    return sep.join(n[i : i + 4] for i in range(0, 16, 4))


def bad_luhn(n):
    last = int(n[-1])
    return n[:-1] + str((last + 1) % 10)


def iban(cc, bban):
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    return f"{cc}{98 - int(num) % 97:02d}{bban}"


def iban_for(cc):
    if cc == "NL":
        b = R.choice(["ABNA", "RABO", "INGB", "SNSB", "TRIO", "KNAB"]) + rs(10, DIG)
    elif cc == "PL":
        b = rs(24, DIG)
    elif cc == "IT":
        b = R.choice(UP) + rs(10, DIG) + rs(12, DIG)
    elif cc == "SE":
        b = rs(20, DIG)
    elif cc == "TR":
        b = rs(5, DIG) + "0" + rs(16, DIG)
    elif cc == "PT":
        b = rs(21, DIG)
    elif cc == "BE":
        b = rs(12, DIG)
    elif cc == "DE":
        b = rs(18, DIG)
    else:
        b = rs(20, DIG)
    return iban(cc, b)


def group4(s):
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def bad_iban(i):
    return i[:2] + f"{(int(i[2:4]) + 1) % 100:02d}" + i[4:]


def phone(cc):
    """National and international shapes for the six countries."""
    if cc == "NL":
        m = "6" + rs(8, DIG)
        return R.choice(
            [
                f"06-{m[1:]}",
                f"06 {m[1:3]} {m[3:5]} {m[5:7]} {m[7:]}",
                f"+31 6 {m[1:5]} {m[5:]}",
                f"+31 (0)20 {rs(3, DIG)} {rs(4, DIG)}",
                f"020-{rs(3, DIG)} {rs(4, DIG)}",
            ]
        )
    if cc == "PL":
        a, b, c = R.choice("5678") + rs(2, DIG), rs(3, DIG), rs(3, DIG)
        return R.choice(
            [
                f"+48 {a} {b} {c}",
                f"{a} {b} {c}",
                f"+48 {a}-{b}-{c}",
                f"(22) {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
            ]
        )
    if cc == "IT":
        m = "3" + R.choice("234789") + rs(1, DIG)
        return R.choice(
            [
                f"+39 {m} {rs(3, DIG)} {rs(4, DIG)}",
                f"{m} {rs(7, DIG)}",
                f"{m}-{rs(3, DIG)}{rs(4, DIG)}",
                f"+39 06 {rs(4, DIG)} {rs(4, DIG)}",
                f"02 {rs(4, DIG)} {rs(4, DIG)}",
            ]
        )
    if cc == "SE":
        return R.choice(
            [
                f"070-{rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
                f"+46 70 {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
                f"08-{rs(3, DIG)} {rs(3, DIG)} {rs(2, DIG)}"[:-3],
                f"+46 8 {rs(3, DIG)} {rs(3, DIG)} {rs(2, DIG)}",
                f"073 {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
            ]
        )
    if cc == "TR":
        return R.choice(
            [
                f"0532 {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
                f"+90 5{rs(2, DIG)} {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
                f"(0212) {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
                f"0 (5{rs(2, DIG)}) {rs(3, DIG)} {rs(2, DIG)} {rs(2, DIG)}",
            ]
        )
    if cc == "PT":
        return R.choice(
            [
                f"+351 9{R.choice('1236')}{rs(1, DIG)} {rs(3, DIG)} {rs(3, DIG)}",
                f"9{R.choice('1236')}{rs(1, DIG)} {rs(3, DIG)} {rs(3, DIG)}",
                f"+351 21 {rs(3, DIG)} {rs(4, DIG)}",
                f"(+351) 22 {rs(3, DIG)} {rs(4, DIG)}",
            ]
        )
    if cc == "US":
        return R.choice(
            [
                f"+1 {R.randint(201, 989)} {R.randint(200, 989)} {rs(4, DIG)}",
                f"({R.randint(201, 989)}) {R.randint(200, 989)}-{rs(4, DIG)}",
                f"+1{R.randint(201, 989)}{R.randint(200, 989)}{rs(4, DIG)}",
            ]
        )
    if cc == "UK":
        return R.choice(
            [
                f"+44 7{rs(3, DIG)} {rs(6, DIG)}",
                f"07{rs(3, DIG)} {rs(6, DIG)}",
                f"+44 20 {R.randint(3, 8)}{rs(3, DIG)} {rs(4, DIG)}",
            ]
        )
    raise KeyError(cc)


def e164(cc):
    return {
        "NL": "+316",
        "PL": "+485",
        "IT": "+393",
        "SE": "+467",
        "TR": "+905",
        "PT": "+3519",
        "US": "+1415",
        "UK": "+447",
    }[cc] + rs({"NL": 8, "PL": 8, "IT": 9, "SE": 8, "TR": 9, "PT": 8, "US": 7, "UK": 9}[cc], DIG)


def pub_ip():
    while True:
        a = R.choice(
            [
                31,
                37,
                46,
                62,
                78,
                79,
                81,
                83,
                85,
                88,
                89,
                94,
                145,
                151,
                176,
                185,
                188,
                193,
                212,
                213,
                217,
            ]
        )
        return f"{a}.{R.randint(1, 254)}.{R.randint(0, 254)}.{R.randint(1, 254)}"


def aiza():
    return "AIza" + rs(35, ALNUM + "-_")


def stripe(kind="sk_live_"):
    return kind + rs(R.choice([24, 99]), ALNUM)


def whsec():
    return "whsec_" + rs(32, ALNUM)


def github_token(prefix="ghp"):
    body = rs(30)

    def base62(n, w=6):
        s = ""
        while n:
            n, r = divmod(n, 62)
            s = B62[r] + s
        return s.rjust(w, "0")

    return f"{prefix}_{body}{base62(binascii.crc32(body.encode()))}"


def b64u(o):
    return base64.urlsafe_b64encode(J(o, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt(claims=None):
    head = b64u({"alg": "RS256", "typ": "JWT", "kid": rs(10)})
    body = b64u(
        claims
        or {
            "sub": rs(16),
            "iat": 1795000000,
            "exp": 1795003600,
            "iss": "https://auth.fjordline-apps.com",
        }
    )
    return f"{head}.{body}.{rs(86, ALNUM + '-_')}"


def pem(kind="EC ", lines=None):
    n = lines or (3 if kind == "EC " else 6)
    body = [rs(64, ALNUM + "+/") for _ in range(n - 1)] + [
        rs(R.randint(20, 60), ALNUM + "+/") + "="
    ]
    hdr = f"-----BEGIN {kind}PRIVATE KEY-----"
    return "\n".join([hdr, *body, f"-----END {kind}PRIVATE KEY-----"]) + "\n"


def password():
    words = ["Tulp", "Vento", "Fjord", "Kahve", "Mar", "Zima", "Lato", "Sol", "Nord", "Rosa"]
    return R.choice(
        [
            f"{R.choice(words)}{R.randint(10, 99)}!{R.choice(words).lower()}{R.randint(100, 999)}",
            mixed(14, ALNUM + "!#%*"),
            f"{rs(4, UP)}-{rs(4, LO)}-{rs(4, DIG)}-{R.choice('!?#$')}",
        ]
    ).replace("\\", "x")


def hexs(n):
    return rs(n, HEX)


def ts():
    return f"2026-{R.randint(1, 11):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z"


SAMPLES: list[dict] = []


def add(cat, obj, benign=None, note=""):
    global _LABELS
    text, labels = build(obj)
    _LABELS = []
    SAMPLES.append(
        {
            "id": f"c41-{len(SAMPLES):04d}",
            "category": cat,
            "text": text,
            "labels": labels,
            "benign": (not labels) if benign is None else benign,
            "note": note,
        }
    )


# ------------------------------------------------------------------ A. support / CRM exports
def zendesk_ticket():
    f, la = person()
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    em, ph = email(f, la), phone(cc)
    tid = R.randint(100000, 999999)
    leak = R.random() < 0.5
    pw = password()
    body = (
        f"Hi, I can't log in to the partner portal since yesterday. My account is {L('email', em, 2)}. "
        + (
            f"I reset it to {L('generic_secret', pw, 2)} but it still fails, can you check? "
            if leak
            else "I already tried the reset link twice. "
        )
        + f"Call me on {L('phone_number', ph, 2)} if easier."
    )
    doc = {
        "ticket": {
            "id": tid,
            "url": f"https://brightlane.zendesk.com/api/v2/tickets/{tid}.json",
            "external_id": str(uuid.UUID(int=R.getrandbits(128))),
            "subject": "Cannot sign in to partner portal",
            "status": "open",
            "requester_id": R.randint(10**11, 10**12),
            "via": {
                "channel": "email",
                "source": {"from": {"address": L("email", em, 2), "name": f"{f} {la}"}},
            },
            "description": body,
            "custom_fields": [{"id": 360012345678, "value": f"ORD-2026-{R.randint(10000, 99999)}"}],
            "tags": ["login", "partner_portal", cc.lower()],
            "created_at": ts(),
        }
    }
    add("support", result(J(doc, ensure_ascii=False, indent=2)))


def zendesk_negative():
    tid = R.randint(100000, 999999)
    doc = {
        "ticket": {
            "id": tid,
            "subject": "Order not delivered",
            "description": f"Customer says parcel {R.choice(['1Z' + rs(6, UP + DIG) + rs(10, DIG), '3SBRLN' + rs(9, DIG), 'JVGL' + rs(16, DIG)])} never arrived. "
            f"Order #{R.randint(1000000, 9999999)}, invoice INV-{R.randint(2026000, 2026999)}-{R.randint(10, 99)}. "
            f"Refund via Stripe ch_{rs(24)} approved.",
            "requester": {"email": "[redacted]", "phone": "+31 6 **** **12"},
            "satisfaction_rating": {"score": "good", "id": R.randint(10**11, 10**12)},
            "via": {"channel": "web", "source": {"rel": None}},
            "brand_id": 360000123456,
            "created_at": ts(),
        }
    }
    add("support", result(J(doc, indent=2)))


def intercom_conv():
    f, la = person()
    cc = R.choice(["NL", "SE", "PT", "IT"])
    em = email(f, la)
    ph = phone(cc)
    key_leak = R.random() < 0.5
    sk = stripe("sk_live_")
    parts = [
        {
            "part_type": "comment",
            "author": {"type": "user", "email": L("email", em, 2)},
            "body": f"<p>Hallo, mijn nummer is {L('phone_number', ph, 2)}</p>"
            if cc == "NL"
            else f"<p>My number: {L('phone_number', ph, 2)}</p>",
        },
        {
            "part_type": "comment",
            "author": {"type": "user"},
            "body": (
                f"<p>Here is our Stripe key so you can check the webhook: <code>{L('stripe_key', sk, 2)}</code></p>"
                if key_leak
                else "<p>Our publishable key is pk_live_" + rs(24) + " if that helps.</p>"
            ),
        },
        {
            "part_type": "assignment",
            "author": {"type": "admin", "name": "Support Bot"},
            "body": None,
        },
    ]
    doc = {
        "type": "conversation",
        "id": str(R.randint(10**11, 10**12)),
        "source": {"subject": "Webhooks failing"},
        "conversation_parts": {"conversation_parts": parts},
    }
    add("support", result(J(doc, ensure_ascii=False)))


def freshdesk_csv():
    rows = ["Ticket ID,Subject,Status,Priority,Contact Name,Email,Phone,Created Time"]
    for _ in range(R.randint(3, 6)):
        f, la = person()
        cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
        rows.append(
            f'{R.randint(10000, 99999)},"Retour {R.randint(100, 999)}",Open,Medium,{f} {la},{L("email", email(f, la), 2)},{L("phone_number", phone(cc), 2)},2026-{R.randint(1, 11):02d}-{R.randint(1, 28):02d} 10:{R.randint(10, 59)}'
        )
    add("support", result("\n".join(rows)))


def salesforce_case():
    f, la = person()
    cc = R.choice(["US", "UK", "NL", "IT"])
    ph, mob = phone(cc), phone(cc)
    recs = {
        "totalSize": 1,
        "done": True,
        "records": [
            {
                "attributes": {
                    "type": "Case",
                    "url": f"/services/data/v61.0/sobjects/Case/500{rs(15)}",
                },
                "CaseNumber": f"0000{R.randint(1000, 9999)}",
                "Subject": "Billing portal access",
                "Description": f"Customer {f} {la} ({L('email', email(f, la), 2)}) called from {L('phone_number', ph, 2)} about duplicate charge on {fmt_card(card())[:4]} **** **** {rs(4, DIG)}.",
                "SuppliedPhone": L("phone_number", mob, 2),
                "Contact": {
                    "MobilePhone": L("phone_number", mob, 2),
                    "MailingPostalCode": f"{R.randint(1000, 9999)} {rs(2, UP)}",
                },
                "Account": {
                    "Name": "Tulpbloem B.V.",
                    "AccountNumber": f"CD{R.randint(100000, 999999)}",
                },
            }
        ],
    }
    add("support", result(J(recs, indent=1)))


def salesforce_negative():
    recs = {
        "totalSize": 2,
        "records": [
            {
                "attributes": {"type": "Case"},
                "Id": "500" + rs(15),
                "CaseNumber": f"0000{R.randint(1000, 9999)}",
                "Origin": "Web",
                "SuppliedEmail": None,
                "Product__c": f"GC{R.randint(1000, 5000)}",
                "SerialNumber__c": rs(12, UP + DIG),
                "Priority": "High",
                "Last4__c": rs(4, DIG),
            },
            {
                "attributes": {"type": "Case"},
                "Id": "500" + rs(15),
                "CaseNumber": f"0000{R.randint(1000, 9999)}",
                "Origin": "Phone",
                "OwnerId": "005" + rs(15),
                "ClosedDate": ts(),
                "Amount__c": f"{R.randint(10, 999)}.{R.randint(10, 99)}",
            },
        ],
    }
    add("support", result(J(recs)))


def hubspot_contact():
    f, la = person()
    cc = R.choice(["PL", "TR", "SE", "PT"])
    props = {
        "email": L("email", email(f, la), 1),
        "firstname": f,
        "lastname": la,
        "phone": L("phone_number", phone(cc), 1),
        "mobilephone": L("phone_number", e164(cc), 1),
        "hs_object_id": str(R.randint(10**10, 10**11)),
        "country": cc,
        "hs_analytics_source": "ORGANIC_SEARCH",
        "lastmodifieddate": ts(),
    }
    add(
        "support",
        {
            "jsonrpc": "2.0",
            "id": R.randint(2, 900),
            "result": {
                "content": [{"type": "text", "text": "1 contact"}],
                "structuredContent": {"id": props["hs_object_id"], "properties": props},
            },
        },
    )


def support_reply_args():
    f, la = person()
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    ib = iban_for(cc)
    texts = {
        "NL": f"Beste {f},\n\nWe hebben uw terugbetaling verwerkt naar IBAN {L('iban', group4(ib))}. U kunt ons bereiken op {L('phone_number', phone('NL'))}.\n\nMet vriendelijke groet,\nKlantenservice",
        "PL": f"Dzień dobry {f},\n\nzwrot został wysłany na rachunek {L('iban', group4(ib))}. W razie pytań prosimy o kontakt pod numerem {L('phone_number', phone('PL'))}.\n\nPozdrawiamy",
        "IT": f"Gentile {f},\n\nil rimborso è stato accreditato sull'IBAN {L('iban', ib)}. Per assistenza chiami il {L('phone_number', phone('IT'))}.\n\nCordiali saluti",
        "SE": f"Hej {f}!\n\nÅterbetalningen har skickats till IBAN {L('iban', group4(ib))}. Ring oss på {L('phone_number', phone('SE'))} om du har frågor.\n\nMvh Kundtjänst",
        "TR": f"Sayın {f} {la},\n\niadeniz {L('iban', group4(ib))} numaralı IBAN'a gönderilmiştir. Sorularınız için {L('phone_number', phone('TR'))} numaralı hattımızı arayabilirsiniz.\n\nSaygılarımızla",
        "PT": f"Olá {f},\n\no reembolso foi transferido para o IBAN {L('iban', group4(ib))}. Pode contactar-nos pelo {L('phone_number', phone('PT'))}.\n\nCumprimentos",
    }
    add(
        "support",
        call(
            "zendesk_reply_ticket",
            {
                "ticket_id": R.randint(100000, 999999),
                "public": True,
                "body": texts[cc],
                "requester_email": L("email", email(f, la)),
            },
        ),
    )


# ------------------------------------------------------------------ B. multilingual personal data
def crm_multilingual():
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    f, la = person()
    em, ph, ib = email(f, la), phone(cc), iban_for(cc)
    street = {
        "NL": f"Prinsengracht {R.randint(1, 999)}, {R.randint(1000, 9999)} {rs(2, UP)} Amsterdam",
        "PL": f"ul. Marszałkowska {R.randint(1, 150)}/{R.randint(1, 40)}, {R.randint(0, 99):02d}-{R.randint(100, 999)} Warszawa",
        "IT": f"Via Roma {R.randint(1, 200)}, {R.randint(10000, 99999)} Torino (TO)",
        "SE": f"Storgatan {R.randint(1, 90)}, {R.randint(100, 999)} {R.randint(10, 99)} Göteborg",
        "TR": f"Atatürk Cd. No:{R.randint(1, 200)} D:{R.randint(1, 20)}, {R.randint(10000, 99999)} Kadıköy/İstanbul",
        "PT": f"Rua Augusta {R.randint(1, 300)}, {R.randint(1000, 4999)}-{R.randint(100, 999)} Lisboa",
    }[cc]
    labels = {
        "NL": (
            "Telefoonnummer",
            "E-mailadres",
            "Rekeningnummer (IBAN)",
            "Adres",
            "KvK-nummer",
            str(R.randint(10000000, 99999999)),
        ),
        "PL": (
            "Telefon",
            "Adres e-mail",
            "Numer rachunku",
            "Adres",
            "NIP",
            f"{R.randint(100, 999)}-{R.randint(100, 999)}-{R.randint(10, 99)}-{R.randint(10, 99)}",
        ),
        "IT": (
            "Cellulare",
            "Email",
            "IBAN",
            "Indirizzo",
            "Codice fiscale",
            f"{rs(6, UP)}{R.randint(10, 99)}{R.choice(UP)}{R.randint(10, 99)}{R.choice(UP)}{R.randint(100, 999)}{R.choice(UP)}",
        ),
        "SE": (
            "Mobilnummer",
            "E-post",
            "IBAN",
            "Adress",
            "Org.nr",
            f"{R.randint(550000, 559999)}-{R.randint(1000, 9999)}",
        ),
        "TR": ("Cep telefonu", "E-posta", "IBAN", "Adres", "Vergi No", rs(10, DIG)),
        "PT": ("Telemóvel", "Email", "IBAN", "Morada", "NIF", "5" + rs(8, DIG)),
    }[cc]
    text = (
        f"{labels[0]}: {L('phone_number', ph)}\n{labels[1]}: {L('email', em)}\n{labels[2]}: {L('iban', ib if R.random() < 0.5 else group4(ib))}\n"
        f"{labels[3]}: {street}\n{labels[4]}: {labels[5]}\nKlant-ID / ID: {R.randint(100000, 999999)}"
    )
    add("pii-ml", result(f"{f} {la}\n" + text))


def crm_multilingual_negative():
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    ib = iban_for(cc)
    lines = {
        "NL": [
            f"Ordernummer: {R.randint(10**9, 10**10 - 1)}",
            f"Track & Trace: 3S{rs(4, UP)}{rs(9, DIG)}",
            f"KvK: {R.randint(10000000, 99999999)}",
            f"BTW-nummer: NL{rs(9, DIG)}B01",
            f"IBAN: {ib[:4]} **** **** {ib[-2:]}",
            "Postcode: 1017 CT",
        ],
        "PL": [
            f"Numer zamówienia: {R.randint(10**7, 10**8)}",
            f"REGON: {rs(9, DIG)}",
            f"NIP: {R.randint(100, 999)}-{R.randint(100, 999)}-{R.randint(10, 99)}-{R.randint(10, 99)}",
            f"Nr przesyłki InPost: {rs(24, DIG)}",
            f"Konto: {bad_iban(ib)}",
            "Kod pocztowy: 00-950",
        ],
        "IT": [
            f"Numero ordine: {R.randint(10**8, 10**9)}",
            f"Partita IVA: IT{rs(11, DIG)}",
            f"Codice pratica: {R.randint(2026, 2026)}/{R.randint(10000, 99999)}",
            f"Spedizione BRT: {rs(14, DIG)}",
            "IBAN: IT60 X054 2811 1010 0000 0123 456",
            "CAP: 20121",
        ],
        "SE": [
            f"Ordernummer: {R.randint(10**6, 10**7)}",
            f"Personnummer: {R.randint(50, 99)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}-{rs(4, DIG)}",
            f"Bankgiro: {R.randint(100, 999)}-{R.randint(1000, 9999)}",
            f"Kolli-ID: {rs(18, DIG)}",
            f"OCR-nummer: {rs(16, DIG)}",
            "Postnummer: 411 06",
        ],
        "TR": [
            f"Sipariş No: {R.randint(10**8, 10**9)}",
            f"TC Kimlik No: {rs(11, DIG)}",
            f"Kargo takip no: {rs(12, DIG)}",
            f"Vergi No: {rs(10, DIG)}",
            f"IBAN: TR** **** **** **** **** **{rs(2, DIG)}",
            "Posta kodu: 34710",
        ],
        "PT": [
            f"N.º encomenda: {R.randint(10**6, 10**7)}",
            f"NIF: 5{rs(8, DIG)}",
            f"Referência MB: {R.randint(100, 999)} {R.randint(100, 999)} {R.randint(100, 999)}",
            f"Entidade: {R.randint(10000, 99999)}",
            f"CTT: R{rs(8, UP + DIG)}PT"[:14],
            "Código postal: 1100-053",
        ],
    }[cc]
    add("pii-ml", result("\n".join(lines)))


def shipping_label_args():
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    f, la = person()
    args = {
        "carrier": R.choice(["postnl", "inpost", "brt", "postnord", "yurtici", "ctt"]),
        "recipient": {
            "name": f"{f} {la}",
            "phone": L("phone_number", phone(cc)),
            "email": L("email", email(f, la)),
            "country": cc,
        },
        "parcel": {"weight_g": R.randint(100, 9000), "reference": f"RMA-{R.randint(10000, 99999)}"},
    }
    add("pii-ml", call("create_shipment", args))


def shipping_negative():
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    st = {
        "shipment_id": str(uuid.UUID(int=R.getrandbits(128))),
        "tracking_number": R.choice(
            ["3S" + rs(4, UP) + rs(9, DIG), rs(24, DIG), "00" + rs(18, DIG), rs(12, DIG)]
        ),
        "label_url": f"https://labels.sendcloud.sc/v2/labels/{rs(32, HEX)}.pdf",
        "status": "ANNOUNCED",
        "sscc": "00" + luhn("3" + rs(16, DIG)),
        "country": cc,
        "weight": f"{R.randint(1, 20)}.{R.randint(0, 9)} kg",
        "created": ts(),
    }
    add("pii-ml", result(J(st)))


def chat_transcript_ml():
    cc = R.choice(["NL", "PL", "IT", "SE", "TR", "PT"])
    f, la = person()
    ph = phone(cc)
    msg = {
        "NL": f"klant: u kunt me bellen op {L('phone_number', ph)} na 17u\nagent: dank u, genoteerd",
        "PL": f"klient: proszę dzwonić na {L('phone_number', ph)}\nkonsultant: dziękuję, zanotowane",
        "IT": f"cliente: mi può richiamare al {L('phone_number', ph)}?\noperatore: certo",
        "SE": f"kund: ni kan nå mig på {L('phone_number', ph)}\nagent: tack, noterat",
        "TR": f"müşteri: beni {L('phone_number', ph)} numarasından arayabilirsiniz\ntemsilci: teşekkürler",
        "PT": f"cliente: podem ligar-me para o {L('phone_number', ph)}\nagente: obrigado",
    }[cc]
    add("pii-ml", result(msg))


def sepa_mandate():
    cc = R.choice(["NL", "IT", "PT", "BE", "DE"])
    f, la = person()
    ib = iban_for(cc)
    doc = {
        "mandate": {
            "id": "MD" + rs(12, UP + DIG),
            "reference": f"BRL-{R.randint(100000, 999999)}",
            "scheme": "sepa_core",
            "status": "active",
        },
        "customer_bank_account": {
            "account_holder_name": f"{f} {la}",
            "iban": L("iban", ib, 2),
            "bank_name": "ING",
            "account_number_ending": ib[-2:],
        },
        "customer": {
            "email": L("email", email(f, la), 2),
            "phone_number": L("phone_number", e164(R.choice(["NL", "IT", "PT"])), 2),
        },
    }
    add("payments", result(J(doc)))


# ------------------------------------------------------------------ C. mobile / desktop configs
def google_services():
    proj = R.choice(["fjordline-app", "tulp-shop-prod", "kahvedunyasi", "zielony-koszyk"])
    num = rs(12, DIG)
    doc = {
        "project_info": {
            "project_number": num,
            "project_id": proj,
            "storage_bucket": f"{proj}.appspot.com",
        },
        "client": [
            {
                "client_info": {
                    "mobilesdk_app_id": f"1:{num}:android:{rs(16, HEX)}",
                    "android_client_info": {"package_name": f"com.{proj.replace('-', '')}.app"},
                },
                "oauth_client": [
                    {
                        "client_id": f"{num}-{rs(32, LO + DIG)}.apps.googleusercontent.com",
                        "client_type": 3,
                    }
                ],
                "api_key": [{"current_key": L("google_api_key", aiza(), 2)}],
            }
        ],
        "configuration_version": "1",
    }
    add(
        "mobile",
        resource("file:///repo/android/app/google-services.json", J(doc, indent=2)),
        note="judgement: Firebase browser keys",
    )


def firebase_sa():
    proj = R.choice(["fjordline-app", "tulp-shop-prod", "kahvedunyasi"])
    sa = {
        "type": "service_account",
        "project_id": proj,
        "private_key_id": hexs(40),
        "private_key": L("private_key", pem("", 8), 2),
        "client_email": f"firebase-adminsdk-{rs(5, LO)}@{proj}.iam.gserviceaccount.com",
        "client_id": rs(21, DIG),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    add(
        "mobile", resource(f"file:///repo/functions/{proj}-firebase-adminsdk.json", J(sa, indent=2))
    )


def asc_p8():
    kid = rs(10, UP + DIG)
    key = pem("", 4)
    if R.random() < 0.5:
        add(
            "mobile",
            resource(
                f"file:///Users/dev/.appstoreconnect/private_keys/AuthKey_{kid}.p8",
                L("private_key", key, 1),
                mime="text/plain",
            ),
        )
    else:
        doc = {
            "key_id": kid,
            "issuer_id": str(uuid.UUID(int=R.getrandbits(128))),
            "key": L("private_key", key, 2),
            "duration": 1200,
            "in_house": False,
        }
        add(
            "mobile",
            call("write_file", {"path": "fastlane/api_key.json", "content": J(doc, indent=2)}),
        )


def sentry_config():
    dsn_key = hexs(32)
    tok = (
        "sntrys_"
        + b64u(
            {
                "iat": 1790000000.1,
                "url": "https://sentry.io",
                "region_url": "https://de.sentry.io",
                "org": "fjordline",
            }
        )
        + "_"
        + rs(43, ALNUM + "+/")
    )
    leak = R.random() < 0.6
    text = (
        "defaults.url=https://sentry.io/\n"
        "defaults.org=fjordline\n"
        "defaults.project=ios-app\n"
        + (
            f"auth.token={L('generic_secret', tok, 1)}\n"
            if leak
            else "auth.token=${SENTRY_AUTH_TOKEN}\n"
        )
        + f"# DSN for the app bundle (public): https://{dsn_key}@o{R.randint(100000, 999999)}.ingest.de.sentry.io/{R.randint(1000000, 9999999)}\n"
    )
    add("mobile", resource("file:///repo/ios/sentry.properties", text, mime="text/plain"))


def algolia():
    app = rs(10, UP + DIG)
    admin, search = hexs(32), hexs(32)
    kind = R.randint(0, 2)
    if kind == 0:
        text = f"ALGOLIA_APP_ID={app}\nALGOLIA_ADMIN_API_KEY={L('generic_secret', admin)}\nNEXT_PUBLIC_ALGOLIA_SEARCH_KEY={search}\n"
        add("mobile", call("write_file", {"path": ".env.local", "content": text}))
    elif kind == 1:
        code = f"const client = algoliasearch('{app}', '{L('generic_secret', admin, 1)}'); // admin key, server only\nawait client.saveObjects({{ indexName: 'products', objects }});"
        add("mobile", result(code))
    else:
        code = f"import {{ liteClient }} from 'algoliasearch/lite';\nconst searchClient = liteClient('{app}', '{search}'); // search-only API key\n"
        add("mobile", result(code), note="search-only key is public")


def mapbox():
    pk = "pk.ey" + b64u({"u": "fjordline", "a": rs(25, LO + DIG)})[2:] + "." + rs(22, ALNUM + "-_")
    sk = "sk.ey" + b64u({"u": "fjordline", "a": rs(25, LO + DIG)})[2:] + "." + rs(22, ALNUM + "-_")
    if R.random() < 0.5:
        text = f"MAPBOX_DOWNLOADS_TOKEN={L('generic_secret', sk)}\nMAPBOX_ACCESS_TOKEN={pk}\n"
        add(
            "mobile",
            resource(
                "file:///Users/dev/.gradle/gradle.properties",
                text.replace("\n", "\norg.gradle.jvmargs=-Xmx4g\n", 1),
                mime="text/plain",
            ),
        )
    else:
        xml = f'<?xml version="1.0" encoding="utf-8"?>\n<resources>\n    <string name="mapbox_access_token" translatable="false">{pk}</string>\n</resources>\n'
        add(
            "mobile",
            resource(
                "file:///repo/android/app/src/main/res/values/mapbox_access_token.xml",
                xml,
                mime="application/xml",
            ),
        )


def expo_eas():
    tok = rs(40, ALNUM + "_-")
    kind = R.randint(0, 2)
    if kind == 0:
        add(
            "mobile",
            call(
                "run_command",
                {
                    "command": f"EXPO_TOKEN={L('generic_secret', tok)} eas build --platform ios --non-interactive --profile production"
                },
            ),
        )
    elif kind == 1:
        out = (
            "Secrets for this account and project:\n"
            "┌──────────────────┬────────┬─────────┬──────────────────────────┐\n"
            "│ Name             │ Type   │ Scope   │ ID                       │\n"
            "├──────────────────┼────────┼─────────┼──────────────────────────┤\n"
            f"│ SENTRY_AUTH_TOKEN│ string │ project │ {str(uuid.UUID(int=R.getrandbits(128)))[:24]} │\n"
            f"│ GOOGLE_SERVICES  │ file   │ project │ {str(uuid.UUID(int=R.getrandbits(128)))[:24]} │\n"
            "└──────────────────┴────────┴─────────┴──────────────────────────┘\n"
        )
        add("mobile", result(out))
    else:
        doc = {
            "cli": {"version": ">= 12.0.0"},
            "build": {
                "production": {
                    "env": {
                        "API_URL": "https://api.fjordline-apps.com",
                        "SENTRY_DSN": f"https://{hexs(32)}@o{R.randint(10**5, 10**6)}.ingest.sentry.io/{R.randint(10**6, 10**7)}",
                    },
                    "ios": {"resourceClass": "m-medium"},
                }
            },
            "submit": {
                "production": {"ios": {"ascAppId": rs(10, DIG), "appleTeamId": rs(10, UP + DIG)}}
            },
        }
        add("mobile", resource("file:///repo/eas.json", J(doc, indent=2)))


def desktop_settings():
    kind = R.randint(0, 3)
    if kind == 0:
        gh = github_token("gho")
        doc = {
            "editor.fontSize": 14,
            "git.autofetch": True,
            "github.gitAuthentication": True,
            "rest-client.environmentVariables": {
                "prod": {"baseUrl": "https://api.velocargo.io", "token": L("github_token", gh, 2)}
            },
        }
        add(
            "desktop",
            resource(
                "file:///Users/dev/Library/Application Support/Code/User/settings.json",
                J(doc, indent=4),
            ),
        )
    elif kind == 1:
        pw = password()
        ini = f"[General]\nautoUpdate=true\n\n[Sync]\nserver=https://nextcloud.tulpbloem.nl\nuser=sanne\npassword={L('generic_secret', pw)}\n"
        add(
            "desktop",
            resource("file:///home/sanne/.config/Nextcloud/sync.cfg", ini, mime="text/plain"),
        )
    elif kind == 2:
        sk = "xoxb-" + rs(12, DIG) + "-" + rs(13, DIG) + "-" + rs(24)
        doc = {
            "name": "ops-tray",
            "version": "2.4.1",
            "build": {
                "appId": "io.velocargo.tray",
                "publish": [{"provider": "github", "owner": "velocargo"}],
            },
            "env": {"SLACK_BOT_TOKEN": L("slack_token", sk, 2)},
        }
        add("desktop", resource("file:///repo/electron-builder.json", J(doc, indent=2)))
    else:
        doc = {
            "$schema": "https://schema.tauri.app/config/2",
            "productName": "Fjordline Desktop",
            "identifier": "com.fjordline.desktop",
            "plugins": {
                "updater": {
                    "pubkey": base64.b64encode(
                        (
                            "untrusted comment: minisign public key: "
                            + rs(16, HEX).upper()
                            + "\nRWQ"
                            + rs(53, ALNUM + "+/")
                            + "\n"
                        ).encode()
                    ).decode(),
                    "endpoints": [
                        "https://releases.fjordline-apps.com/{{target}}/{{arch}}/{{current_version}}"
                    ],
                }
            },
        }
        add("desktop", resource("file:///repo/src-tauri/tauri.conf.json", J(doc, indent=2)))


def plist_info():
    key = aiza()
    kind = R.random() < 0.5
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
        f"\t<key>API_KEY</key>\n\t<string>{L('google_api_key', key, 1) if kind else '<YOUR_API_KEY>'}</string>\n"
        f"\t<key>GCM_SENDER_ID</key>\n\t<string>{rs(12, DIG)}</string>\n"
        f"\t<key>BUNDLE_ID</key>\n\t<string>com.fjordline.ios</string>\n"
        f"\t<key>GOOGLE_APP_ID</key>\n\t<string>1:{rs(12, DIG)}:ios:{rs(16, HEX)}</string>\n"
        "</dict>\n</plist>\n"
    )
    add(
        "mobile",
        resource("file:///repo/ios/GoogleService-Info.plist", xml, mime="application/xml"),
        note="judgement: Firebase keys",
    )


def mobile_negatives():
    kind = R.randint(0, 5)
    if kind == 0:
        img = base64.b64encode(bytes(R.getrandbits(8) for _ in range(180))).decode()
        add(
            "mobile",
            result(
                J(
                    {
                        "icon": f"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAEAAAABA{img}",
                        "sha256": hashlib.sha256(img.encode()).hexdigest(),
                    }
                )
            ),
        )
    elif kind == 1:
        txt = f"Build {R.randint(100, 999)} uploaded to TestFlight\nBundle: com.fjordline.ios 3.{R.randint(0, 20)}.{R.randint(0, 9)} ({R.randint(1000, 9999)})\ndSYM UUID: {str(uuid.UUID(int=R.getrandbits(128))).upper()}\nApp Store Connect app id: {rs(10, DIG)}\nTeam ID: {rs(10, UP + DIG)}"
        add("mobile", result(txt))
    elif kind == 2:
        txt = f"FIREBASE_API_KEY=your-firebase-api-key\nFIREBASE_APP_ID=1:{rs(12, DIG)}:web:{rs(22, HEX)}\nFIREBASE_MEASUREMENT_ID=G-{rs(10, UP + DIG)}\nALGOLIA_ADMIN_API_KEY=<your admin key>\nEXPO_TOKEN=${{{{ secrets.EXPO_TOKEN }}}}\n"
        add("mobile", call("write_file", {"path": ".env.example", "content": txt}))
    elif kind == 3:
        txt = f"Fatal Exception: java.lang.IllegalStateException\n  at com.fjordline.app.MapActivity.onCreate(MapActivity.kt:{R.randint(10, 500)})\nDevice: Pixel 8, Android 15\nInstallation UUID: {uuid.UUID(int=R.getrandbits(128))}\nCrashlytics issue {rs(32, HEX)}\nIMEI: {luhn('35' + rs(12, DIG))}"
        add("mobile", result(txt))
    elif kind == 4:
        txt = f'codesign -s "Apple Distribution: Fjordline AS ({rs(10, UP + DIG)})" --timestamp\nIdentity: {rs(40, HEX).upper()}\nProvisioning profile UUID {uuid.UUID(int=R.getrandbits(128))}\nnotarytool submission id {uuid.UUID(int=R.getrandbits(128))} status Accepted'
        add("desktop", result(txt))
    else:
        doc = {
            "project_info": {"project_number": rs(12, DIG), "project_id": "demo-app"},
            "client": [{"api_key": [{"current_key": "AIzaSyDOCUMENTATION-EXAMPLE-KEY"}]}],
            "__comment": "replace with the file from the Firebase console",
        }
        add("mobile", resource("file:///docs/google-services.sample.json", J(doc)))


# ------------------------------------------------------------------ D. payments
def stripe_webhook():
    f, la = person()
    cc = R.choice(["NL", "IT", "PT", "SE", "US"])
    ev = {
        "id": "evt_" + rs(24),
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_live_" + rs(58),
                "customer": "cus_" + rs(14),
                "customer_details": {
                    "email": L("email", email(f, la), 2),
                    "name": f"{f} {la}",
                    "phone": L("phone_number", e164(cc) if cc != "US" else e164("US"), 2),
                    "address": {"country": cc, "postal_code": str(R.randint(1000, 9999))},
                },
                "payment_intent": "pi_" + rs(24),
                "amount_total": R.randint(500, 90000),
                "currency": "eur",
            }
        },
        "request": {
            "id": "req_" + rs(14),
            "idempotency_key": str(uuid.UUID(int=R.getrandbits(128))),
        },
    }
    add("payments", result(J(ev, indent=2)))


def stripe_webhook_negative():
    ev = {
        "id": "evt_" + rs(24),
        "type": "charge.succeeded",
        "data": {
            "object": {
                "id": "ch_" + rs(24),
                "payment_method_details": {
                    "card": {
                        "brand": "visa",
                        "last4": rs(4, DIG),
                        "fingerprint": rs(16),
                        "exp_month": R.randint(1, 12),
                        "exp_year": 2029,
                        "network_transaction_id": rs(15, DIG),
                    }
                },
                "balance_transaction": "txn_" + rs(24),
                "receipt_url": f"https://pay.stripe.com/receipts/payment/{rs(60, ALNUM + '-_')}",
            }
        },
    }
    hdr = f"Stripe-Signature: t={R.randint(1790000000, 1799999999)},v1={hexs(64)},v0={hexs(64)}"
    add("payments", result(hdr + "\n\n" + J(ev)))


def payment_configs():
    kind = R.randint(0, 7)
    if kind == 0:
        txt = f"STRIPE_SECRET_KEY={L('stripe_key', stripe('sk_live_'))}\nSTRIPE_WEBHOOK_SECRET={L('stripe_key', whsec())}\nSTRIPE_PUBLISHABLE_KEY=pk_live_{rs(99)}\n"
        add("payments", call("write_file", {"path": "apps/api/.env.production", "content": txt}))
    elif kind == 1:
        hk = hexs(64).upper()
        txt = f"adyen:\n  environment: LIVE\n  merchantAccount: TulpbloemECOM\n  apiKey: {L('generic_secret', 'AQE' + rs(4) + '3' + rs(80, ALNUM + '+/') + '=-' + rs(43, ALNUM + '+/') + '=-' + rs(16, ALNUM + '+/'))}\n  hmacKey: {L('generic_secret', hk)}\n  clientKey: live_{rs(32, UP + DIG)}\n"
        add("payments", resource("file:///srv/shop/config/adyen.yml", txt, mime="text/yaml"))
    elif kind == 2:
        txt = f"MOLLIE_API_KEY={L('generic_secret', 'live_' + rs(30))}\nMOLLIE_PROFILE_ID=pfl_{rs(10)}\n"
        add("payments", result(txt))
    elif kind == 3:
        kid, sec = "rzp_live_" + rs(14), rs(24)
        code = f"import Razorpay from 'razorpay';\nconst rzp = new Razorpay({{ key_id: '{kid}', key_secret: '{L('generic_secret', sec, 1)}' }});"
        add("payments", result(code))
    elif kind == 4:
        cid, sec = "A" + rs(79, ALNUM + "-_"), "E" + rs(79, ALNUM + "-_")
        add(
            "payments",
            call(
                "run_command",
                {
                    "command": f'curl -s https://api-m.paypal.com/v1/oauth2/token -u "{cid}:{L("generic_secret", sec)}" -d grant_type=client_credentials'
                },
            ),
        )
    elif kind == 5:
        tok = "EAAA" + rs(60, ALNUM + "-_")
        doc = {
            "square": {
                "environment": "production",
                "application_id": "sq0idp-" + rs(22, ALNUM + "-_"),
                "access_token": L("generic_secret", tok, 2),
                "location_id": "L" + rs(12, UP + DIG),
            }
        }
        add("payments", resource("file:///srv/pos/square.json", J(doc, indent=2)))
    elif kind == 6:
        gc = "live_" + rs(40, ALNUM + "-_")
        add(
            "payments",
            call(
                "run_command",
                {
                    "command": f'curl https://api.gocardless.com/payments -H "Authorization: Bearer {L("generic_secret", gc)}" -H "GoCardless-Version: 2015-07-06"'
                },
            ),
        )
    else:
        user, pw = f"PK{R.randint(10000, 99999)}_{rs(12, LO + DIG)}", mixed(16)
        b = base64.b64encode(f"{user}:{pw}".encode()).decode()
        add(
            "payments",
            result(
                f"POST /payments/v1/sessions HTTP/1.1\nHost: api.klarna.com\nAuthorization: Basic {L('basic_auth', b, 1)}\nContent-Type: application/json\n"
            ),
        )


def payment_config_negatives():
    kind = R.randint(0, 5)
    if kind == 0:
        txt = f"STRIPE_PUBLISHABLE_KEY=pk_live_{rs(99)}\nSTRIPE_SECRET_KEY=sk_live_...\nSTRIPE_WEBHOOK_SECRET=whsec_...\n# get these from https://dashboard.stripe.com/apikeys\n"
        add("payments", result(txt))
    elif kind == 1:
        n = {
            "live": "false",
            "notificationItems": [
                {
                    "NotificationRequestItem": {
                        "additionalData": {
                            "hmacSignature": base64.b64encode(
                                bytes(R.getrandbits(8) for _ in range(32))
                            ).decode(),
                            "cardSummary": rs(4, DIG),
                            "expiryDate": f"{R.randint(1, 12):02d}/2028",
                            "authCode": rs(6, DIG),
                        },
                        "amount": {"currency": "EUR", "value": R.randint(100, 99999)},
                        "eventCode": "AUTHORISATION",
                        "merchantReference": f"ORDER-{R.randint(10000, 99999)}",
                        "pspReference": rs(16, UP + DIG),
                        "success": "true",
                    }
                }
            ],
        }
        add("payments", result(J(n)))
    elif kind == 2:
        txt = "Test cards:\n  4242 4242 4242 4242  (Visa, succeeds)\n  4000 0000 0000 9995  (insufficient funds)\n  5555 5555 5555 4444  (Mastercard)\n  3782 822463 10005    (Amex)\nUse any future expiry and any CVC."
        add("payments", result(txt))
    elif kind == 3:
        doc = {
            "object": "list",
            "data": [
                {
                    "id": "pm_" + rs(24),
                    "type": "card",
                    "card": {
                        "brand": "mastercard",
                        "last4": rs(4, DIG),
                        "exp_month": 4,
                        "exp_year": 2030,
                        "fingerprint": rs(16),
                    },
                    "billing_details": {"email": None, "phone": None},
                }
            ],
        }
        add("payments", result(J(doc)))
    elif kind == 4:
        txt = f"Payout po_{rs(24)} of €{R.randint(100, 9999)},{R.randint(10, 99)} to NL** **** **** **** {rs(2, DIG)} — arrival {ts()[:10]}\nStatement descriptor: TULPBLOEM*{rs(6, UP)}\nTrace id: {rs(15, DIG)}"
        add("payments", result(txt))
    else:
        txt = f"mollie payments list --limit 3\ntr_{rs(10)}  paid     €{R.randint(5, 300)}.00  ideal   ORDER {R.randint(10000, 99999)}\ntr_{rs(10)}  open     €{R.randint(5, 300)}.00  bancontact  ORDER {R.randint(10000, 99999)}\ntr_{rs(10)}  expired  €{R.randint(5, 300)}.00  creditcard  ORDER {R.randint(10000, 99999)}"
        add("payments", result(txt))


def payment_dashboard_pii():
    f, la = person()
    c = card(R.choice(["visa", "mc", "mc2", "amex"]))
    cc = R.choice(["NL", "IT", "PT", "SE", "TR", "PL"])
    kind = R.randint(0, 2)
    if kind == 0:
        txt = f"Dispute dp_{rs(24)}\nCardholder: {f} {la}\nCard number: {L('credit_card', fmt_card(c))}\nExpiry: {R.randint(1, 12):02d}/{R.randint(27, 31)}\nEmail: {L('email', email(f, la))}\nIP: {L('ipv4', pub_ip())}\nReason: fraudulent"
        add("payments", result(txt))
    elif kind == 1:
        rows = ["order_id,customer_email,customer_phone,card_bin,card_last4,ip_address,amount"]
        for _ in range(R.randint(2, 4)):
            g, h = person()
            rows.append(
                f"{R.randint(100000, 999999)},{L('email', email(g, h), 2)},{L('phone_number', phone(cc), 2)},{rs(6, DIG)},{rs(4, DIG)},{L('ipv4', pub_ip(), 2)},{R.randint(10, 999)}.{R.randint(10, 99)}"
            )
        add("payments", result(J({"export": "orders_risk.csv", "content": "\n".join(rows)})))
    else:
        msg = f"[POS log] PAN={L('credit_card', c)} EXP={R.randint(1, 12):02d}{R.randint(27, 31)} amount={R.randint(100, 9999)} terminal=T{rs(6, DIG)} stan={rs(6, DIG)}"
        add("payments", result(msg))


def webhook_logs():
    ip = pub_ip()
    sec = whsec()
    leak = R.random() < 0.5
    txt = (
        f"{ts()} INFO  webhook received from {L('ipv4', ip)} path=/webhooks/stripe event=evt_{rs(24)}\n"
        + (
            f"{ts()} DEBUG verifying with secret {L('stripe_key', sec)}\n"
            if leak
            else f"{ts()} DEBUG verifying signature with endpoint secret (len=38)\n"
        )
        + f"{ts()} INFO  signature ok, idempotency={uuid.UUID(int=R.getrandbits(128))}\n"
    )
    add("payments", result(txt))


def webhook_negative_logs():
    txt = (
        f"{ts()} INFO  POST /webhooks/adyen 202 from 10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)} ({R.randint(2, 90)} ms)\n"
        f"{ts()} INFO  pspReference={rs(16, UP + DIG)} merchantReference=ORDER-{R.randint(10000, 99999)} eventCode=CAPTURE\n"
        f"{ts()} WARN  retry {R.randint(1, 5)}/10 for delivery {uuid.UUID(int=R.getrandbits(128))}\n"
        f"{ts()} INFO  hmac verified: sha256={hexs(64)}"
    )
    add("payments", result(txt))


# ------------------------------------------------------------------ E. assorted secret leaks in support
def support_secret_leaks():
    kind = R.randint(0, 7)
    f, la = person()
    if kind == 0:
        key = "AKIA" + rs(16, UP + "234567")
        sec = rs(40, ALNUM + "+/")
        txt = f"Customer pasted their config in the ticket:\n```\naws_access_key_id = {L('aws_access_key_id', key)}\naws_secret_access_key = {L('aws_secret_access_key', sec)}\n```\nI've asked them to rotate."
        add("support", result(txt))
    elif kind == 1:
        pw = password()
        txt = f"Freshdesk note (private): customer gave us the shop admin login for debugging: admin / {L('generic_secret', pw)} — please delete after use."
        add("support", result(txt))
    elif kind == 2:
        pw = password()
        url = f"postgres://shop_ro:{pw}@db.tulpbloem.nl:5432/shop"
        add(
            "support",
            result(f"Internal note: reproduce with DATABASE_URL={L('url_credentials', url)}"),
        )
    elif kind == 3:
        sg = "SG." + rs(22, ALNUM + "-_") + "." + rs(43, ALNUM + "-_")
        add(
            "support",
            call(
                "intercom_reply",
                {
                    "conversation_id": str(R.randint(10**11, 10**12)),
                    "message_type": "note",
                    "body": f"<p>Their SendGrid key from the screenshot: {L('sendgrid_api_key', sg)}</p>",
                },
            ),
        )
    elif kind == 4:
        jw = jwt(
            {
                "sub": rs(12),
                "email": "cs-agent",
                "role": "admin",
                "iat": 1795000000,
                "exp": 1795086400,
            }
        )
        add(
            "support",
            result(
                f"HAR excerpt from ticket #{R.randint(100000, 999999)}:\nauthorization: Bearer {L('jwt', jw)}\nx-request-id: {uuid.UUID(int=R.getrandbits(128))}"
            ),
        )
    elif kind == 5:
        tw = "SK" + hexs(32)
        add(
            "support",
            result(
                f"Twilio API key SID {L('twilio_api_key', tw)} secret {L('generic_secret', rs(32))} — customer's own account, see case 0000{R.randint(1000, 9999)}"
            ),
        )
    elif kind == 6:
        hook = f"https://hooks.slack.com/services/T{rs(8, UP + DIG)}/B{rs(10, UP + DIG)}/{rs(24)}"
        add(
            "support",
            result(
                f'Webhook config from the customer: {{"slack": "{L("slack_webhook", hook, 1)}"}}'
            ),
        )
    else:
        gh = github_token("ghp")
        add(
            "support",
            result(
                f"Zendesk ticket #{R.randint(100000, 999999)}: the GitHub integration fails with token {L('github_token', gh)} (they pasted it, asked to revoke)."
            ),
        )


def support_negatives_misc():
    kind = R.randint(0, 6)
    if kind == 0:
        add(
            "support",
            result(
                f"Ticket #{R.randint(100000, 999999)} merged into #{R.randint(100000, 999999)}. SLA breach at {ts()}. CSAT 4/5. Macro 360{rs(9, DIG)} applied."
            ),
        )
    elif kind == 1:
        add(
            "support",
            result(
                f"Intercom user_id {uuid.UUID(int=R.getrandbits(128))}, company_id {rs(24, HEX)}, conversation {R.randint(10**11, 10**12)}; identity verification hash: {hexs(64)}"
            ),
        )
    elif kind == 2:
        add(
            "support",
            result(
                "To reset your password go to Settings → Security and choose a new one (at least 12 characters). Never share your password with support; we will never ask for it."
            ),
        )
    elif kind == 3:
        add(
            "support",
            result(
                f"Salesforce Case 0000{R.randint(1000, 9999)}: RMA {R.randint(10**7, 10**8)}, serial {rs(4, UP)}{rs(8, DIG)}, warranty until 2027-03-01, shipped via DHL {rs(10, DIG)}."
            ),
        )
    elif kind == 4:
        add(
            "support",
            result(
                'API docs: curl https://api.velocargo.io/v1/tickets -H "Authorization: Bearer YOUR_API_TOKEN" -d \'{"subject": "Test", "email": "user@example.com"}\''
            ),
        )
    elif kind == 5:
        add(
            "support",
            result(
                f"Phone support hours: Mon–Fri 09:00–17:00 CET. Order 2026-{R.randint(100000, 999999)} is on hold. Ref: {R.randint(1000, 9999)} {R.randint(1000, 9999)} {R.randint(1000, 9999)}."
            ),
        )
    else:
        add(
            "support",
            result(
                f"Freshdesk: ticket {R.randint(10000, 99999)} assigned to group 'Billing' (group_id {R.randint(10**10, 10**11)}), product_id {R.randint(10**10, 10**11)}, responder_id {R.randint(10**10, 10**11)}, fr_due_by {ts()}"
            ),
        )


TEMPLATES = [
    (zendesk_ticket, 12),
    (zendesk_negative, 8),
    (intercom_conv, 10),
    (freshdesk_csv, 6),
    (salesforce_case, 8),
    (salesforce_negative, 6),
    (hubspot_contact, 8),
    (support_reply_args, 14),
    (crm_multilingual, 20),
    (crm_multilingual_negative, 18),
    (shipping_label_args, 8),
    (shipping_negative, 8),
    (chat_transcript_ml, 14),
    (sepa_mandate, 6),
    (google_services, 5),
    (firebase_sa, 4),
    (asc_p8, 6),
    (sentry_config, 8),
    (algolia, 9),
    (mapbox, 8),
    (expo_eas, 9),
    (desktop_settings, 10),
    (plist_info, 5),
    (mobile_negatives, 16),
    (stripe_webhook, 8),
    (stripe_webhook_negative, 8),
    (payment_configs, 18),
    (payment_config_negatives, 14),
    (payment_dashboard_pii, 10),
    (webhook_logs, 8),
    (webhook_negative_logs, 6),
    (support_secret_leaks, 16),
    (support_negatives_misc, 14),
]


def generate(seed: int | str = SEED) -> list[dict]:
    global R, SAMPLES, _LABELS
    R = random.Random(seed)
    SAMPLES = []
    _LABELS = []
    for fn, n in TEMPLATES:
        for _ in range(n):
            fn()
    return SAMPLES


if __name__ == "__main__":
    from corpus_kit import main

    main(generate, SEED, "corpus41.jsonl")
