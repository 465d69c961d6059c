"""The forty-second corpus (blind round): personal data and secrets in Asia-Pacific, Latin
American and Middle Eastern traffic (Japanese, Korean, Chinese in simplified and traditional
script, Vietnamese, Thai, Indonesian, Hindi, Arabic and Hebrew with Arabic-Indic digits where
locals use them, Brazilian Portuguese and Latin-American Spanish): contact cards, support chats,
invoices, shipping and travel bookings, telecom records, education and government forms; and
secrets of regional cloud and SaaS vendors (Alibaba Cloud, Tencent Cloud, Baidu, Huawei Cloud,
LINE, Kakao, WeChat, DingTalk, Feishu, Naver, Rakuten, Mercado Pago, PagSeguro, Razorpay, Paytm)
in config files, code and chat text, as JSON-RPC messages an MCP server or client sends (tool
results, tools/call arguments, structuredContent, resources/read, some as SSE events).
Written before the rules were read; the values are fake but format-valid (Luhn, mod-97, CRC32
where the format has them). Negatives come from the same domains: order, booking, tracking and
business ids, national ids the vocabulary has no type for, SIM and device ids, masked values,
placeholders, documentation examples, public keys and ids. ``generate(seed)`` gives samples as
tests/scan/corpus_gen.py does: ``text`` (the message), ``labels`` (type, start, end), ``benign``,
``category``, ``note``.

    python tests/scan/corpus_apac_latam.py OUT.jsonl [SEED]
"""

from __future__ import annotations

import re
import uuid

from corpus_kit import (
    ALNUM,
    DIG,
    LO,
    UP,
    J,
    Kit,
    b64u,
    bad_iban,
    luhn,
    main,
)

SEED = 42
KIT = Kit("c42", SEED)
R = KIT.R
rs, mixed, hexs, pick = KIT.rs, KIT.mixed, KIT.hexs, KIT.pick
github_token, uid = KIT.github_token, KIT.uid
L, build, add, wrap = KIT.L, KIT.build, KIT.add, KIT.wrap
result, call, resource = KIT.result, KIT.call, KIT.resource


# ------------------------------------------------------------------ value makers
NAMES = {
    "ja": ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健", "渡辺 さくら"],
    "ko": ["김민준", "이서연", "박지훈", "최수아", "정우진", "강하은"],
    "zh": ["王伟", "李娜", "张敏", "刘洋", "陈静", "杨帆"],
    "tw": ["林志明", "陳怡君", "黃建宏", "張雅婷", "吳宗憲"],
    "vi": ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Nam", "Phạm Thu Hà"],
    "th": ["สมชาย ใจดี", "สุดารัตน์ ศรีสุข", "ประยุทธ์ แก้วมณี"],
    "id": ["Budi Santoso", "Siti Rahayu", "Agus Wijaya", "Dewi Lestari"],
    "hi": ["राहुल शर्मा", "प्रिया वर्मा", "अमित पटेल", "Rahul Sharma", "Priya Nair"],
    "ar": ["محمد العتيبي", "فاطمة الزهراء", "أحمد المنصوري", "نورة القحطاني"],
    "he": ["יוסי כהן", "מיכל לוי", "אבי מזרחי", "נועה פרץ"],
    "pt": ["João Pereira", "Ana Souza", "Carlos Oliveira", "Mariana Lima", "Luiz Fernandes"],
    "es": ["María González", "José Hernández", "Camila Rojas", "Diego Martínez", "Valentina Díaz"],
}
ROMAN = {
    "ja": ["taro.yamada", "hanako.sato", "ichiro.suzuki", "misaki.t"],
    "ko": ["minjun.kim", "seoyeon.lee", "jihoon.park", "sua.choi"],
    "zh": ["wangwei", "lina.bj", "zhangmin88", "liuyang"],
    "tw": ["chiming.lin", "yijun.chen", "huang.jh"],
    "vi": ["an.nguyen", "binh.tran", "nam.le"],
    "th": ["somchai.j", "sudarat.s", "prayut.k"],
    "id": ["budi.santoso", "siti.rahayu", "agus.w"],
    "hi": ["rahul.sharma", "priya.verma", "amit.patel"],
    "ar": ["m.alotaibi", "fatima.z", "ahmed.almansoori"],
    "he": ["yossi.cohen", "michal.levi", "avi.m"],
    "pt": ["joao.pereira", "ana.souza", "carlos.oliveira"],
    "es": ["maria.gonzalez", "jose.hdz", "camila.rojas"],
}
MAILDOM = {
    "ja": ["docomo.ne.jp", "ezweb.ne.jp", "yahoo.co.jp", "gmail.com", "sakura-shoji.co.jp"],
    "ko": ["naver.com", "daum.net", "kakao.com", "hanmail.net", "hanbit-tech.co.kr"],
    "zh": ["qq.com", "163.com", "126.com", "sina.com", "huaxin-keji.cn"],
    "tw": ["gmail.com", "yahoo.com.tw", "hinet.net", "taipei-trade.com.tw"],
    "vi": ["gmail.com", "yahoo.com.vn", "fpt.com.vn", "saigon-logistics.vn"],
    "th": ["gmail.com", "hotmail.co.th", "siamtrade.co.th"],
    "id": ["gmail.com", "yahoo.co.id", "telkom.net.id", "nusantara-dagang.co.id"],
    "hi": ["gmail.com", "rediffmail.com", "yahoo.co.in", "bharat-infotech.in"],
    "ar": ["gmail.com", "outlook.sa", "emirates.net.ae", "gulf-trading.ae"],
    "he": ["walla.co.il", "gmail.com", "bezeqint.net", "negev-tech.co.il"],
    "pt": ["uol.com.br", "bol.com.br", "gmail.com", "terra.com.br", "lojasaurora.com.br"],
    "es": ["gmail.com", "hotmail.com", "prodigy.net.mx", "fibertel.com.ar", "andes-comercio.cl"],
}
LANGS = list(NAMES)


def name(lang):
    return R.choice(NAMES[lang])


def email(lang):
    loc = R.choice(ROMAN[lang])
    if R.random() < 0.3:
        loc += str(R.randint(1, 99))
    return f"{loc}@{R.choice(MAILDOM[lang])}"


AR_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def d(n):
    return rs(n, DIG)


def phone(lang):
    """A mobile or landline in the shapes locals write."""
    if lang == "ja":
        p = pick("090", "080", "070")
        return pick(
            f"{p}-{d(4)}-{d(4)}",
            f"+81 {p[1:]}-{d(4)}-{d(4)}",
            f"03-{d(4)}-{d(4)}",
            f"06-{d(4)}-{d(4)}",
            f"{p}{d(8)}",
        )
    if lang == "ko":
        return pick(
            f"010-{d(4)}-{d(4)}",
            f"+82 10-{d(4)}-{d(4)}",
            f"02-{d(3)}-{d(4)}",
            f"010 {d(4)} {d(4)}",
            f"031-{d(3)}-{d(4)}",
        )
    if lang == "zh":
        m = pick("138", "139", "135", "186", "152", "177") + d(8)
        return pick(
            f"{m[:3]} {m[3:7]} {m[7:]}",
            m,
            f"+86 {m[:3]} {m[3:7]} {m[7:]}",
            f"+86-{m}",
            f"010-{d(8)}",
            f"021-{d(4)} {d(4)}",
        )
    if lang == "tw":
        return pick(
            f"09{d(2)}-{d(3)}-{d(3)}",
            f"+886 9{d(2)} {d(3)} {d(3)}",
            f"(02) {d(4)}-{d(4)}",
            f"+852 {pick('9', '6', '5')}{d(3)} {d(4)}",
        )
    if lang == "vi":
        return pick(
            f"09{d(1)} {d(3)} {d(4)}",
            f"+84 9{d(1)} {d(3)} {d(2)} {d(2)}",
            f"0912 {d(3)} {d(3)}",
            f"028 {d(4)} {d(4)}",
        )
    if lang == "th":
        return pick(
            f"08{d(1)}-{d(3)}-{d(4)}",
            f"+66 8{d(1)} {d(3)} {d(4)}",
            f"02-{d(3)}-{d(4)}",
            f"06{d(1)} {d(3)} {d(4)}",
        )
    if lang == "id":
        return pick(
            f"0812-{d(4)}-{d(4)}",
            f"+62 812-{d(4)}-{d(4)}",
            f"0813 {d(4)} {d(3)}",
            f"+62 21 {d(4)} {d(4)}",
            f"(021) {d(4)}-{d(4)}",
        )
    if lang == "hi":
        m = pick("9", "8", "7") + d(4)
        return pick(f"+91 {m} {d(5)}", f"{m} {d(5)}", f"+91-{m}{d(5)}", f"0{m} {d(5)}")
    if lang == "ar":
        return pick(
            f"+971 50 {d(3)} {d(4)}",
            f"+971 55 {d(3)} {d(4)}",
            f"050 {d(3)} {d(4)}",
            f"+966 5{d(1)} {d(3)} {d(4)}",
            f"05{d(1)} {d(3)} {d(4)}",
            f"+20 10 {d(4)} {d(4)}",
            f"+971 4 {d(3)} {d(4)}",
        )
    if lang == "he":
        return pick(
            f"050-{d(3)}-{d(4)}",
            f"+972 52-{d(3)}-{d(4)}",
            f"03-{d(3)}-{d(4)}",
            f"054-{d(7)}",
        )
    if lang == "pt":
        dd = pick("11", "21", "31", "41", "51", "61", "71", "81")
        return pick(
            f"+55 {dd} 9{d(4)}-{d(4)}",
            f"({dd}) 9{d(4)}-{d(4)}",
            f"({dd}) {pick('3', '2', '4')}{d(3)}-{d(4)}",
            f"+55 ({dd}) 9 {d(4)}-{d(4)}",
            f"{dd} 9{d(4)}-{d(4)}",
        )
    if lang == "es":
        return pick(
            f"+52 55 {d(4)} {d(4)}",
            f"55 {d(4)} {d(4)}",
            f"+54 9 11 {d(4)}-{d(4)}",
            f"011 4{d(3)}-{d(4)}",
            f"+57 300 {d(3)} {d(4)}",
            f"+56 9 {d(4)} {d(4)}",
            f"+51 9{d(2)} {d(3)} {d(3)}",
            f"(55) {d(4)}-{d(4)}",
        )
    raise KeyError(lang)


def phone_local(lang):
    """A phone as written in running text of the language (Arabic-Indic digits in Arabic)."""
    p = phone(lang)
    if lang == "ar" and R.random() < 0.4 and not p.startswith("+"):
        p = p.translate(AR_DIGITS)
    return p


def card(brand=None):
    brand = brand or pick("visa", "mc", "amex", "jcb", "mc2")
    if brand == "visa":
        return luhn("4" + d(14))
    if brand == "mc":
        return luhn(str(R.randint(51, 55)) + d(13))
    if brand == "mc2":
        return luhn(str(R.randint(2221, 2720)) + d(11))
    if brand == "jcb":
        return luhn(str(R.randint(3528, 3589)) + d(11))
    return luhn(pick("34", "37") + d(12))


def fmt_card(n, sep=" "):
    if len(n) == 15:
        return f"{n[:4]}{sep}{n[4:10]}{sep}{n[10:]}"
    return sep.join(n[i : i + 4] for i in range(0, 16, 4))


def iban(cc, bban):
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    return f"{cc}{98 - int(num) % 97:02d}{bban}"


def iban_for(cc):
    bban = {
        "BR": lambda: d(8) + d(5) + d(10) + "C" + "1",
        "SA": lambda: d(2) + d(18),
        "AE": lambda: d(3) + d(16),
        "IL": lambda: d(3) + d(3) + d(13),
        "QA": lambda: rs(4, UP) + d(21),
        "JO": lambda: rs(4, UP) + d(4) + d(18),
        "PK": lambda: rs(4, UP) + d(16),
        "EG": lambda: d(25),
    }[cc]()
    return iban(cc, bban)


def group4(s):
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def pub_ip():
    a = pick(1, 14, 27, 36, 39, 42, 49, 58, 59, 101, 103, 110, 111, 112, 115, 117, 118, 119, 121)
    a = pick(a, 177, 179, 186, 187, 189, 190, 200, 201, 5, 37, 46, 82, 94, 176, 212)
    return f"{a}.{R.randint(1, 254)}.{R.randint(0, 254)}.{R.randint(1, 254)}"


def password():
    w = [
        "Sakura",
        "Hanbok",
        "Longjing",
        "Pho",
        "Mango",
        "Nasi",
        "Chai",
        "Falafel",
        "Samba",
        "Tango",
    ]
    return pick(
        f"{R.choice(w)}{R.randint(10, 99)}!{R.choice(w).lower()}{R.randint(100, 999)}",
        mixed(14, ALNUM + "!#%*@"),
        f"{rs(4, UP)}-{rs(4, LO)}-{d(4)}-{pick('!', '?', '#', '$')}",
        f"{R.choice(w)}@{d(4)}{rs(3, LO)}",
    )


def jwt():
    head = b64u({"alg": "HS256", "typ": "JWT"})
    body = b64u({"sub": d(10), "iat": 1795000000, "exp": 1795086400, "scope": "member"})
    return f"{head}.{body}.{rs(43, ALNUM + '-_')}"


def aiza():
    return "AIza" + rs(35, ALNUM + "-_")


def aws_id():
    return "AKIA" + rs(16, UP + "234567")


def aws_secret():
    return rs(40, ALNUM + "+/")


def pem(kind="RSA "):
    body = [rs(64, ALNUM + "+/") for _ in range(7)] + [rs(40, ALNUM + "+/") + "=="]
    return "\n".join(
        [f"-----BEGIN {kind}PRIVATE KEY-----", *body, f"-----END {kind}PRIVATE KEY-----"]
    )


def slack_hook():
    return f"https://hooks.slack.com/services/T{rs(8, UP + DIG)}/B{rs(10, UP + DIG)}/{rs(24)}"


# regional vendors
def ali_id():
    return "LTAI" + pick("5t", "4G", "5t") + rs(18)


def ali_secret():
    return rs(30)


def tc_id():
    return "AKID" + rs(32)


def tc_key():
    return rs(32)


def line_token():
    return rs(171, ALNUM + "+/") + "="


def mp_token(kind="APP_USR"):
    return f"{kind}-{d(16)}-{d(6)}-{hexs(32)}-{d(9)}"


def mp_public(kind="APP_USR"):
    return f"{kind}-{uuid.UUID(int=R.getrandbits(128), version=4)}"


def rzp_id(mode="live"):
    return f"rzp_{mode}_{rs(14)}"


def paytm_key():
    return rs(4) + pick("#", "@", "&", "!", "%") + rs(5) + pick("#", "@", "_") + rs(5)


def ts():
    return f"2026-{R.randint(1, 11):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:00+09:00"


# ------------------------------------------------------------------ identifiers (negatives)
def cpf(fmt=True):
    n = [R.randint(0, 9) for _ in range(9)]
    for _ in range(2):
        s = sum(v * w for v, w in zip(n, range(len(n) + 1, 1, -1), strict=True))
        n.append((s * 10) % 11 % 10)
    s = "".join(map(str, n))
    return f"{s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}" if fmt else s


def cnpj():
    n = [R.randint(0, 9) for _ in range(8)] + [0, 0, 0, 1]
    for w in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        s = sum(a * b for a, b in zip(n, w, strict=True))
        r = s % 11
        n.append(0 if r < 2 else 11 - r)
    s = "".join(map(str, n))
    return f"{s[:2]}.{s[2:5]}.{s[5:8]}/{s[8:12]}-{s[12:]}"


def imei():
    return luhn(pick("35", "86", "01") + d(12))


def iccid():
    return luhn(pick("8986", "8981", "8982", "8955", "8966", "8991") + d(14))


def imsi():
    return pick("440", "450", "460", "724", "334", "424") + pick("10", "05", "00", "11") + d(10)


def aadhaar():
    return f"{R.randint(2, 9)}{d(3)} {d(4)} {d(4)}"


def pan_in():
    return rs(3, UP) + "P" + R.choice(UP) + d(4) + R.choice(UP)


def gstin():
    return f"{R.randint(10, 36)}{pan_in()}1Z{R.choice(UP + DIG)}"


def emirates_id():
    return f"784-{R.randint(1960, 2005)}-{d(7)}-{d(1)}"


def kr_rrn():
    return f"{R.randint(70, 99)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}-{R.choice('12')}{d(6)}"


def kr_brn():
    return f"{d(3)}-{d(2)}-{d(5)}"


def my_number():
    return f"{d(4)} {d(4)} {d(4)}"


def cn_id():
    return f"110105{R.randint(1970, 2004)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}{d(3)}{pick('X', *DIG)}"


def uscc():
    return "91" + d(6) + rs(10, UP + DIG)


def curp():
    return (
        rs(4, UP)
        + f"{R.randint(70, 99)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}"
        + pick("H", "M")
        + rs(5, UP)
        + d(2)
    )


def rfc_mx():
    return (
        rs(4, UP)
        + f"{R.randint(70, 99)}{R.randint(1, 12):02d}{R.randint(1, 28):02d}"
        + rs(3, UP + DIG)
    )


def rut():
    return f"{R.randint(5, 25)}.{d(3)}.{d(3)}-{pick(*DIG, 'K')}"


def cuit():
    return f"{pick('20', '27', '30')}-{d(8)}-{d(1)}"


def il_id():
    n = [R.randint(0, 9) for _ in range(8)]
    t = 0
    for i, v in enumerate(n):
        v *= 1 if i % 2 == 0 else 2
        t += v - 9 if v > 9 else v
    n.append((10 - t % 10) % 10)
    return "".join(map(str, n))


def pnr():
    return rs(6, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")


def eticket():
    return f"{pick('131', '180', '297', '160', '618', '176', '157', '045', '957')}-{d(10)}"


def passport(lang):
    return {
        "ja": lambda: pick("TK", "TR", "MZ") + d(7),
        "ko": lambda: "M" + d(8),
        "zh": lambda: "E" + d(8),
        "tw": lambda: d(9),
        "hi": lambda: R.choice(UP) + d(7),
        "pt": lambda: rs(2, UP) + d(6),
    }.get(lang, lambda: R.choice(UP) + d(8))()


def tracking():
    return pick(
        f"SF{d(13)}",
        f"JD{d(15)}",
        f"YT{d(16)}",
        f"{d(4)}-{d(4)}-{d(4)}",
        f"LX{d(9)}BR",
        f"EE{d(9)}IN",
        f"{d(12)}",
        f"CJ{d(9)}KR",
    )


def order_no():
    return pick(
        f"{d(6)}-{d(7)}",
        f"2026{d(10)}",
        f"#{d(8)}",
        f"ORD-{d(4)}-{d(6)}",
        f"{d(3)}-{d(7)}-{d(7)}",
        f"P{d(18)}",
    )


# ------------------------------------------------------------------ A. contact cards
LBL = {
    "ja": ("氏名", "メール", "携帯電話", "住所", "〒{z} 東京都港区芝公園4-2-8"),
    "ko": ("이름", "이메일", "휴대폰", "주소", "서울특별시 강남구 테헤란로 {z}"),
    "zh": ("姓名", "邮箱", "手机", "地址", "北京市朝阳区建国路{z}号"),
    "tw": ("姓名", "電子郵件", "手機", "地址", "台北市信義區松仁路{z}號"),
    "vi": ("Họ tên", "Email", "Điện thoại", "Địa chỉ", "{z} Lê Lợi, Quận 1, TP.HCM"),
    "th": ("ชื่อ", "อีเมล", "โทรศัพท์มือถือ", "ที่อยู่", "{z} ถนนสุขุมวิท กรุงเทพฯ 10110"),
    "id": ("Nama", "Email", "No. HP", "Alamat", "Jl. Sudirman No. {z}, Jakarta"),
    "hi": ("नाम", "ईमेल", "मोबाइल", "पता", "{z}, एमजी रोड, बेंगलुरु 560001"),
    "ar": ("الاسم", "البريد الإلكتروني", "الجوال", "العنوان", "شارع الشيخ زايد {z}، دبي"),
    "he": ("שם", 'דוא"ל', "טלפון נייד", "כתובת", "רחוב הרצל {z}, תל אביב"),
    "pt": ("Nome", "E-mail", "Celular", "Endereço", "Av. Paulista, {z} - São Paulo/SP"),
    "es": ("Nombre", "Correo", "Celular", "Dirección", "Av. Reforma {z}, CDMX"),
}


def contact_card():
    lang = R.choice(LANGS)
    nm, em_l, ph_l, ad_l, addr = LBL[lang]
    z = R.randint(1, 300)
    style = R.randint(0, 3)
    n = name(lang)
    if style == 0:
        text = (
            f"{nm}: {n}\n{em_l}: {L('email', email(lang))}\n{ph_l}: {L('phone_number', phone(lang))}\n"
            f"{ad_l}: {addr.format(z=z)}"
        )
        wrap("contact", text, tool="contacts_get")
    elif style == 1:
        p = phone(lang)
        e = email(lang)
        obj = {
            "name": n,
            "email": L("email", e),
            "mobile": L("phone_number", p),
            "lang": lang,
            "address": addr.format(z=z),
        }
        add(
            "contact",
            result(
                J(
                    {"name": n, "email": L("email", e), "mobile": L("phone_number", p)},
                    ensure_ascii=False,
                ).replace('"', "'"),
                structured=obj,
            ),
        )
    elif style == 2:
        p = phone(lang)
        v = (
            "BEGIN:VCARD\nVERSION:3.0\n"
            f"FN:{n}\nTEL;TYPE=CELL:{L('phone_number', p, 2)}\nEMAIL;TYPE=INTERNET:{L('email', email(lang), 2)}\n"
            f"ADR;TYPE=HOME:;;{addr.format(z=z)};;;;\nEND:VCARD"
        )
        add("contact", call("contacts_import", {"vcf": J({"data": v}, ensure_ascii=False)}))
    else:
        rows = [f"{nm},{em_l},{ph_l}"]
        for _ in range(R.randint(2, 4)):
            rows.append(f"{name(lang)},{L('email', email(lang))},{L('phone_number', phone(lang))}")
        wrap("contact", "\n".join(rows), tool="sheets_append")


def contact_negative():
    lang = R.choice(LANGS)
    nm, em_l, ph_l, ad_l, addr = LBL[lang]
    z = R.randint(1, 300)
    k = R.randint(0, 5)
    if k == 0:
        text = f"{nm}: {name(lang)}\n{em_l}: user@example.com\n{ph_l}: 090-XXXX-XXXX\n{ad_l}: {addr.format(z=z)}"
    elif k == 1:
        masked = pick(
            "138****8000",
            "090-****-5678",
            "010-****-1234",
            "+55 11 9****-1234",
            "+971 50 *** **67",
            "98XXXXXX10",
            "0812-****-7890",
        )
        text = f"{nm}: {name(lang)}\n{ph_l}: {masked}\n{em_l}: {pick('a***@qq.com', 'ta***@docomo.ne.jp', 'j****@gmail.com')}"
    elif k == 2:
        text = f"{nm}: {name(lang)}\n{ad_l}: {addr.format(z=z)}\n会員番号: {d(10)}\nPostal: {d(3)}-{d(4)}"
    elif k == 3:
        text = J(
            {
                "template": {"name": "{{name}}", "phone": "{{mobile}}", "email": "{{email}}"},
                "example": {"phone": "+81 90-0000-0000", "email": "user@example.com"},
            },
            ensure_ascii=False,
        )
    elif k == 4:
        text = f"{ph_l} ({lang}): format {pick('090-1234-5678', '010-1234-5678', '138 0013 8000', '+55 11 91234-5678', '+971 50 123 4567')} — 例 / example only"
    else:
        text = f"{nm}: {name(lang)} | ID {d(8)} | 更新日 2026/{R.randint(1, 12):02d}/{R.randint(1, 28):02d} | 状態: 有効"
    wrap("contact", text, tool="contacts_get")


# ------------------------------------------------------------------ B. support chats
CHAT_PHONE = {
    "ja": "お客様: 折り返しは{p}までお願いします。",
    "ko": "고객: 연락처는 {p} 입니다.",
    "zh": "客户：我的手机号是{p}，请回电。",
    "tw": "客戶：請打我的手機 {p}，謝謝。",
    "vi": "Khách: Số điện thoại của tôi là {p}.",
    "th": "ลูกค้า: เบอร์โทรของฉันคือ {p} ค่ะ",
    "id": "Pelanggan: nomor HP saya {p}, tolong hubungi.",
    "hi": "ग्राहक: मेरा मोबाइल नंबर {p} है।",
    "ar": "العميل: رقم جوالي {p} من فضلك اتصل بي",
    "he": "לקוח: המספר שלי הוא {p}, תחזרו אליי",
    "pt": "Cliente: meu celular é {p}, pode me ligar?",
    "es": "Cliente: mi celular es {p}, me pueden llamar?",
}
CHAT_MAIL = {
    "ja": "メールアドレスは{e}です。",
    "ko": "이메일은 {e} 입니다.",
    "zh": "邮箱：{e}",
    "tw": "我的信箱是 {e}",
    "vi": "Email của tôi: {e}",
    "th": "อีเมล: {e}",
    "id": "Email saya {e}",
    "hi": "मेरा ईमेल {e} है",
    "ar": "بريدي الإلكتروني {e}",
    "he": "המייל שלי {e}",
    "pt": "Meu e-mail é {e}",
    "es": "Mi correo es {e}",
}
CHAT_PW = {
    "ja": "パスワードは{s}です。ログインできません。",
    "ko": "비밀번호는 {s} 입니다. 로그인이 안 돼요.",
    "zh": "我的密码是{s}，登录不了。",
    "tw": "我的密碼是 {s}，一直登不進去。",
    "vi": "Mật khẩu của tôi là {s}, không đăng nhập được.",
    "th": "รหัสผ่านของฉันคือ {s} เข้าระบบไม่ได้",
    "id": "Kata sandi saya {s} tapi tidak bisa login.",
    "hi": "मेरा पासवर्ड {s} है, लॉगिन नहीं हो रहा",
    "ar": "كلمة المرور الخاصة بي هي {s} ولا أستطيع الدخول",
    "he": "הסיסמה שלי היא {s} ואני לא מצליח להיכנס",
    "pt": "Minha senha é {s} e não consigo entrar.",
    "es": "Mi contraseña es {s} y no puedo entrar.",
}
CHAT_CARD = {
    "ja": "カード番号は{c}、有効期限は12/28です。",
    "ko": "카드번호 {c} 로 결제해 주세요.",
    "zh": "银行卡号：{c}",
    "tw": "信用卡號 {c}",
    "vi": "Số thẻ: {c}",
    "th": "หมายเลขบัตร {c}",
    "id": "Nomor kartu kredit saya {c}",
    "hi": "कार्ड नंबर {c}",
    "ar": "رقم البطاقة {c}",
    "he": "מספר כרטיס האשראי {c}",
    "pt": "Número do cartão: {c}",
    "es": "Número de tarjeta: {c}",
}
AGENT = {
    "ja": "担当: 確認いたします。少々お待ちください。",
    "ko": "상담원: 확인해 드리겠습니다.",
    "zh": "客服：好的，我帮您查一下。",
    "tw": "客服：好的，馬上為您查詢。",
    "vi": "Nhân viên: Dạ, em kiểm tra ngay ạ.",
    "th": "เจ้าหน้าที่: รับทราบค่ะ กำลังตรวจสอบ",
    "id": "Agen: Baik, kami cek dulu ya.",
    "hi": "एजेंट: ठीक है, मैं चेक करता हूँ।",
    "ar": "الموظف: حسناً، سأتحقق من ذلك.",
    "he": "נציג: בסדר, אני בודק.",
    "pt": "Atendente: Certo, vou verificar.",
    "es": "Agente: Claro, lo reviso enseguida.",
}


def support_chat():
    lang = R.choice(LANGS)
    lines = [AGENT[lang]]
    picks = R.sample(["p", "e", "s", "c"], R.randint(1, 3))
    for k in picks:
        if k == "p":
            lines.append(CHAT_PHONE[lang].format(p=L("phone_number", phone_local(lang))))
        elif k == "e":
            lines.append(CHAT_MAIL[lang].format(e=L("email", email(lang))))
        elif k == "s":
            lines.append(CHAT_PW[lang].format(s=L("generic_secret", password())))
        else:
            lines.append(
                CHAT_CARD[lang].format(c=L("credit_card", fmt_card(card(), pick(" ", "-", ""))))
            )
        lines.append(AGENT[lang])
    if R.random() < 0.5:
        lines.append(f"[order {order_no()}] [ticket #{d(7)}]")
    text = "\n".join(lines)
    k = R.randint(0, 2)
    if k == 0:
        wrap("chat", text, tool="chat_history")
    elif k == 1:
        msgs = [
            {"from": "customer" if i % 2 else "agent", "text": t, "ts": ts()}
            for i, t in enumerate(lines)
        ]
        add("chat", result(J({"messages": msgs}, ensure_ascii=False)))
    else:
        add(
            "chat",
            call(
                "send_message",
                {"channel": pick("line", "kakaotalk", "wechat", "whatsapp"), "text": text},
            ),
        )


NEG_CHAT = {
    "ja": [
        "ご注文番号{o}の配送状況: 配送中（追跡番号 {t}）",
        "パスワードを忘れた場合は「パスワード再設定」からお手続きください。",
        "お問い合わせ番号: {n}",
    ],
    "ko": [
        "주문번호 {o} 배송 중입니다. 운송장번호 {t}",
        "비밀번호를 잊으셨나요? 재설정 링크를 보내드렸습니다.",
        "문의 번호 {n}",
    ],
    "zh": [
        "订单号：{o}，快递单号：{t}，预计明天送达。",
        "请勿向任何人透露您的密码和验证码。",
        "工单号 {n}",
    ],
    "tw": ["訂單編號 {o} 已出貨，物流單號 {t}", "密碼請至少8個字元", "客服單號 {n}"],
    "vi": [
        "Mã đơn hàng {o}, mã vận đơn {t}.",
        "Vui lòng không chia sẻ mật khẩu với bất kỳ ai.",
        "Mã yêu cầu {n}",
    ],
    "th": ["หมายเลขคำสั่งซื้อ {o} เลขพัสดุ {t}", "กรุณาอย่าเปิดเผยรหัสผ่านของคุณ", "เลขที่เรื่อง {n}"],
    "id": [
        "Nomor pesanan {o}, nomor resi {t}.",
        "Jangan bagikan kata sandi atau kode OTP Anda.",
        "Nomor tiket {n}",
    ],
    "hi": ["ऑर्डर नंबर {o}, ट्रैकिंग नंबर {t}", "अपना पासवर्ड किसी के साथ साझा न करें।", "टिकट नंबर {n}"],
    "ar": ["رقم الطلب {o}، رقم التتبع {t}", "لا تشارك كلمة المرور مع أي شخص.", "رقم التذكرة {n}"],
    "he": ["מספר הזמנה {o}, מספר מעקב {t}", "לעולם אל תמסרו את הסיסמה שלכם.", "מספר פנייה {n}"],
    "pt": [
        "Pedido {o} enviado, código de rastreio {t}.",
        "Nunca compartilhe sua senha.",
        "Protocolo de atendimento {n}",
    ],
    "es": [
        "Pedido {o} enviado, número de guía {t}.",
        "Nunca compartas tu contraseña.",
        "Número de folio {n}",
    ],
}


def support_chat_negative():
    lang = R.choice(LANGS)
    lines = [AGENT[lang]]
    for t in R.sample(NEG_CHAT[lang], 2):
        lines.append(
            t.format(
                o=order_no(),
                t=tracking(),
                n=pick(d(10), f"{d(4)}-{d(4)}-{d(4)}", f"{d(3)} {d(3)} {d(4)}"),
            )
        )
    if R.random() < 0.4:
        lines.append(f"OTP: {d(6)} (5分/5 min)")
    wrap("chat", "\n".join(lines), tool="chat_history")


# ------------------------------------------------------------------ C. invoices
def invoice():
    lang = pick("ja", "zh", "ko", "hi", "pt", "es", "ar", "he", "id", "vi", "tw", "th")
    amt = R.randint(1000, 990000)
    lines = []
    if lang == "ja":
        lines = [
            f"請求書 No. INV-{d(8)}",
            f"登録番号: T{d(13)}",
            f"ご請求金額: ¥{amt:,}（税込）",
            f"担当: {name('ja')} / {L('email', email('ja'))} / TEL {L('phone_number', phone('ja'))}",
            f"振込先: 三菱UFJ銀行 渋谷支店 普通 {d(7)}",
        ]
    elif lang == "zh":
        lines = [
            f"增值税电子普通发票 发票号码: {d(20)}",
            f"纳税人识别号: {uscc()}",
            f"价税合计: ¥{amt:,}.00",
            f"联系人: {name('zh')} 电话: {L('phone_number', phone('zh'))}",
            f"开户行及账号: 中国工商银行 {d(19)}",
        ]
    elif lang == "tw":
        lines = [
            f"統一發票 {rs(2, UP)}-{d(8)}",
            f"統一編號: {d(8)}",
            f"總計 NT${amt:,}",
            f"聯絡人 {name('tw')} {L('phone_number', phone('tw'))}",
        ]
    elif lang == "ko":
        lines = [
            f"전자세금계산서 승인번호 {d(8)}-{d(8)}-{d(8)}",
            f"사업자등록번호: {kr_brn()}",
            f"합계금액: ₩{amt * 10:,}",
            f"담당자: {name('ko')} {L('email', email('ko'))} 휴대폰 {L('phone_number', phone('ko'))}",
        ]
    elif lang == "hi":
        lines = [
            f"TAX INVOICE / कर बीजक No. {d(4)}/{d(2)}-{d(2)}",
            f"GSTIN: {gstin()}",
            f"PAN: {pan_in()}",
            f"Total: ₹{amt:,}",
            f"Contact: {name('hi')}, {L('phone_number', phone('hi'))}, {L('email', email('hi'))}",
            f"IFSC: {rs(4, UP)}0{d(6)}  A/c {d(14)}",
        ]
    elif lang == "pt":
        ib = iban_for("BR")
        lines = [
            f"NOTA FISCAL DE SERVIÇO ELETRÔNICA Nº {d(6)}",
            f"CNPJ do prestador: {cnpj()}",
            f"CPF do tomador: {cpf()}",
            f"Valor total: R$ {amt:,}".replace(",", ".") + ",00",
            f"Contato: {L('email', email('pt'))} / {L('phone_number', phone('pt'))}",
            f"IBAN: {L('iban', pick(ib, group4(ib)))}",
            f"Chave PIX: {cnpj()}",
        ]
    elif lang == "es":
        lines = [
            f"FACTURA CFDI 4.0 Folio {d(5)} UUID {uid().upper()}",
            f"RFC emisor: {rfc_mx()}",
            f"RFC receptor: {rfc_mx()}",
            f"Total: ${amt:,}.00 MXN",
            f"Contacto: {L('email', email('es'))} Tel. {L('phone_number', phone('es'))}",
            f"CLABE: {d(18)}",
        ]
    elif lang == "ar":
        cc = pick("SA", "AE", "QA", "JO", "EG")
        ib = iban_for(cc)
        lines = [
            f"فاتورة ضريبية رقم {d(6)}",
            f"الرقم الضريبي: 3{d(13)}3",
            f"الإجمالي: {amt:,} ر.س",
            f"الآيبان: {L('iban', pick(ib, group4(ib)))}",
            f"للاستفسار: {L('email', email('ar'))} أو {L('phone_number', phone('ar'))}",
        ]
    elif lang == "he":
        ib = iban_for("IL")
        lines = [
            f"חשבונית מס קבלה מס' {d(5)}",
            f"ע.מ. / ח.פ.: 51{d(7)}",
            f'סה"כ לתשלום: ₪{amt:,}',
            f"IBAN: {L('iban', ib)}",
            f"טלפון: {L('phone_number', phone('he'))}",
        ]
    elif lang == "id":
        lines = [
            f"FAKTUR No. {d(3)}.{d(3)}-{d(2)}.{d(8)}",
            f"NPWP: {d(2)}.{d(3)}.{d(3)}.{d(1)}-{d(3)}.{d(3)}",
            f"Total: Rp {amt * 100:,}".replace(",", "."),
            f"Kontak: {L('email', email('id'))}, {L('phone_number', phone('id'))}",
        ]
    elif lang == "vi":
        lines = [
            f"HÓA ĐƠN GTGT Số: {d(7)} Ký hiệu: 1C26T{rs(2, UP)}",
            f"Mã số thuế: {d(10)}",
            f"Tổng cộng: {amt * 100:,} VND".replace(",", "."),
            f"Liên hệ: {L('phone_number', phone('vi'))} - {L('email', email('vi'))}",
        ]
    else:
        lines = [
            f"ใบกำกับภาษี เลขที่ {d(8)}",
            f"เลขประจำตัวผู้เสียภาษี {d(13)}",
            f"รวมทั้งสิ้น {amt:,} บาท",
            f"ติดต่อ {L('phone_number', phone('th'))} {L('email', email('th'))}",
        ]
    text = "\n".join(lines)
    if R.random() < 0.3:
        add(
            "invoice",
            call(
                pick("send_invoice", "gmail_send", "create_pdf"),
                {
                    "to": L("email", "ap@" + pick("acme-asia.com", "lojasaurora.com.br")),
                    "body": text,
                },
            ),
        )
    else:
        wrap("invoice", text, tool="create_invoice")


def invoice_negative():
    lang = pick("ja", "zh", "ko", "hi", "pt", "es", "ar", "he")
    amt = R.randint(1000, 990000)
    if lang == "ja":
        t = f"請求書 No. {d(10)}\n適格請求書発行事業者登録番号 T{d(13)}\n合計 ¥{amt:,}\n振込先口座: 普通 ****{d(3)}\n受付番号 {d(8)}"
    elif lang == "zh":
        t = f"发票代码 {d(12)} 发票号码 {d(8)}\n购买方纳税人识别号 {uscc()}\n校验码 {d(5)} {d(5)} {d(5)} {d(5)}\n金额 ¥{amt:,}.00"
    elif lang == "ko":
        t = f"거래명세서 No. {d(12)}\n사업자등록번호 {kr_brn()}\n법인등록번호 {d(6)}-{d(7)}\n공급가액 ₩{amt * 10:,}"
    elif lang == "hi":
        t = f"Invoice {d(10)}\nGSTIN {gstin()}\nHSN/SAC {d(8)}\nIRN {hexs(64)}\nAck No. {d(15)}\nTotal ₹{amt:,}"
    elif lang == "pt":
        ib = iban_for("BR")
        t = f"NF-e nº {d(9)} Série 1\nChave de acesso: {' '.join(d(4) for _ in range(11))}\nCNPJ {cnpj()}\nBoleto: {d(5)}.{d(5)} {d(5)}.{d(6)} {d(5)}.{d(6)} {d(1)} {d(14)}\nIBAN (inválido): {bad_iban(ib)}"
    elif lang == "es":
        t = f"Factura {rs(1, UP)}{d(4)}-{d(8)}\nCUIT {cuit()}\nCAE {d(14)} Vto. CAE 2026-12-{R.randint(1, 28):02d}\nRUT {rut()}\nTotal ${amt:,}"
    elif lang == "ar":
        t = f"فاتورة رقم {d(8)}\nالسجل التجاري {d(10)}\nالرقم الضريبي 3{d(14)}\nالمبلغ {str(amt).translate(AR_DIGITS)} درهم\nالتاريخ ٢٠٢٦/١١/{str(R.randint(10, 28)).translate(AR_DIGITS)}"
    else:
        t = f'חשבונית {d(6)}\nעוסק מורשה {d(9)}\nמספר הקצאה {d(9)}\nסה"כ ₪{amt:,}'
    wrap("invoice", t, tool="create_invoice")


# ------------------------------------------------------------------ D. travel and shipping
def booking():
    lang = pick("ja", "ko", "zh", "th", "id", "hi", "ar", "pt", "es", "vi", "he")
    n = name(lang)
    p = phone(lang)
    e = email(lang)
    k = R.randint(0, 3)
    if k == 0:
        text = (
            f"RP/TYO1A0980/ {pnr()}\n 1.{n}\n 2  NH 110 Y 12DEC HNDJFK HK1 1100 1030\n"
            f" 3 APM {L('phone_number', p)}\n 4 APE {L('email', e)}\n 5 SSR DOCS NH HK1 P/JPN/{passport(lang)}/JPN/12MAR85/M/15MAR31/{n}\n"
            f" 6 FA PAX {eticket()}/ETNH/JPY185400/12NOV26/TYOAB0980/"
        )
        wrap("travel", text, tool="gds_display")
    elif k == 1:
        obj = {
            "booking_ref": pnr(),
            "ticket_number": eticket(),
            "passenger": {
                "name": n,
                "passport": passport(lang),
                "phone": L("phone_number", p),
                "email": L("email", e),
            },
            "payment": {"card": L("credit_card", card()), "exp": "11/29"}
            if R.random() < 0.5
            else {"card": "**** **** **** " + d(4)},
            "segments": [
                {
                    "flight": f"{pick('SQ', 'CX', 'EK', 'LA', 'G3', 'VN', 'TG', 'GA', 'AI', 'KE')}{R.randint(10, 999)}",
                    "seat": f"{R.randint(1, 60)}{R.choice('ABCDEFK')}",
                }
            ],
        }
        add("travel", result(J(obj, ensure_ascii=False), structured=obj))
    elif k == 2:
        hotel = {
            "ja": "予約番号",
            "ko": "예약번호",
            "zh": "预订号",
            "th": "หมายเลขการจอง",
            "id": "Kode booking",
            "hi": "बुकिंग आईडी",
            "ar": "رقم الحجز",
            "pt": "Código da reserva",
            "es": "Código de reserva",
            "vi": "Mã đặt phòng",
            "he": "מספר הזמנה",
        }[lang]
        text = f"{hotel}: {d(10)}\n{n}\n{L('email', e)}\n{L('phone_number', p)}\nCheck-in 2026-12-{R.randint(1, 28):02d} / 2泊\nConfirmation {rs(3, UP)}{d(7)}"
        wrap("travel", text, tool="hotel_lookup")
    else:
        add(
            "travel",
            call(
                "book_flight",
                {
                    "passengers": [
                        {
                            "name": n,
                            "contact_phone": L("phone_number", p),
                            "contact_email": L("email", e),
                            "id_number": passport(lang),
                        }
                    ],
                    "fare_basis": f"Y{rs(2, UP)}{d(2)}",
                    "loyalty": f"{rs(2, UP)}{d(9)}",
                },
            ),
        )


def booking_negative():
    lang = pick("ja", "ko", "zh", "th", "id", "hi", "ar", "pt", "es")
    k = R.randint(0, 3)
    if k == 0:
        text = f"Booking {pnr()} confirmed. E-ticket {eticket()}. Passport {passport(lang)} exp 2031-03-15. Seat {R.randint(1, 60)}A. Baggage tag {rs(2, UP)}{d(6)}. PNR IRCTC {d(10)}"
    elif k == 1:
        text = J(
            {
                "pnr": pnr(),
                "ticketNumber": eticket().replace("-", ""),
                "frequentFlyer": f"{rs(2, UP)}{d(9)}",
                "passport": passport(lang),
                "gate": f"{R.choice('ABCDE')}{R.randint(1, 40)}",
                "contact": {"phone": "+00 000 000 0000", "email": "passenger@example.com"},
            }
        )
    elif k == 2:
        text = f"配送状況: 追跡番号 {tracking()} / お問い合わせ番号 {d(4)}-{d(4)}-{d(4)} / 伝票番号 {d(12)}\nJNE resi {d(15)} | Correios {rs(2, UP)}{d(9)}BR | 顺丰 SF{d(12)}"
    else:
        text = f"Rastreamento {rs(2, UP)}{d(9)}BR — Objeto postado em 2026-11-{R.randint(10, 28)} em São Paulo/SP; CEP {d(5)}-{d(3)}; Guía DHL {d(10)}; AWB {d(3)}-{d(8)}"
    wrap("travel", text, tool="track_shipment")


def shipping():
    lang = pick("ja", "ko", "zh", "tw", "th", "id", "vi", "pt", "es", "ar", "hi")
    p = phone(lang)
    recv = {
        "ja": "お届け先",
        "ko": "받는 분",
        "zh": "收件人",
        "tw": "收件人",
        "th": "ผู้รับ",
        "id": "Penerima",
        "vi": "Người nhận",
        "pt": "Destinatário",
        "es": "Destinatario",
        "ar": "المستلم",
        "hi": "प्राप्तकर्ता",
    }[lang]
    tel = {
        "ja": "電話",
        "ko": "연락처",
        "zh": "电话",
        "tw": "電話",
        "th": "โทร",
        "id": "Telp",
        "vi": "SĐT",
        "pt": "Telefone",
        "es": "Teléfono",
        "ar": "هاتف",
        "hi": "फ़ोन",
    }[lang]
    text = f"{recv}: {name(lang)}\n{tel}: {L('phone_number', p)}\n追跡/Tracking: {tracking()}\nOrder: {order_no()}\nWeight: {R.randint(1, 30)} kg"
    if R.random() < 0.5:
        add(
            "shipping",
            call(
                "create_shipment",
                {
                    "recipient": {"name": name(lang), "phone": L("phone_number", phone(lang))},
                    "reference": order_no(),
                    "note": text,
                },
            ),
        )
    else:
        wrap("shipping", text, tool="create_label")


# ------------------------------------------------------------------ E. telecom
def telecom():
    lang = pick("ja", "ko", "zh", "hi", "ar", "pt", "es", "id", "th")
    p = phone(lang)
    k = R.randint(0, 2)
    if k == 0:
        obj = {
            "msisdn": L("phone_number", p),
            "iccid": iccid(),
            "imsi": imsi(),
            "imei": imei(),
            "plan": pick("5G 無制限", "5G 무제한", "畅享套餐", "Pós 50GB", "Plan Max"),
            "status": "active",
        }
        add("telecom", result(J(obj, ensure_ascii=False), structured=obj))
    elif k == 1:
        text = f"SIM activation: ICCID {iccid()} IMSI {imsi()}\nDevice IMEI {imei()}\nNúmero/番号/번호: {L('phone_number', p)}\nPUK {d(8)} PIN {d(4)}"
        wrap("telecom", text, tool="sim_lookup")
    else:
        text = f"portabilidad / 番号ポータビリティ: MNP予約番号 {d(10)}, 対象番号 {L('phone_number', p)}, 契約者 {name(lang)}"
        wrap("telecom", text, tool="mnp_request")


def telecom_negative():
    k = R.randint(0, 2)
    if k == 0:
        obj = {
            "iccid": iccid(),
            "imsi": imsi(),
            "imei": imei(),
            "eid": d(32),
            "apn": pick("internet", "zap.vivo.com.br", "cmnet", "spmode.ne.jp"),
            "mcc_mnc": pick("440-10", "450-05", "460-00", "724-11"),
        }
        add("telecom", result(J(obj), structured=obj))
    elif k == 1:
        text = f"AT+CIMI\r\n{imsi()}\r\nOK\r\nAT+CGSN\r\n{imei()}\r\nOK\r\nAT+CCID\r\n+CCID: {iccid()}\r\nOK"
        wrap("telecom", text, tool="serial_exec")
    else:
        text = f"デバイス一覧\n| IMEI | ICCID | 状態 |\n| {imei()} | {iccid()} | 有効 |\n| {imei()} | {iccid()} | 停止 |\nMEID {rs(14, '0123456789ABCDEF')}"
        wrap("telecom", text, tool="mdm_devices")


# ------------------------------------------------------------------ F. education and government
def gov_form():
    lang = pick("ja", "ko", "zh", "hi", "ar", "he", "pt", "es", "id", "vi", "th", "tw")
    n = name(lang)
    p = phone(lang)
    e = email(lang)
    idv = {
        "ja": my_number,
        "ko": kr_rrn,
        "zh": cn_id,
        "hi": aadhaar,
        "ar": emirates_id,
        "he": il_id,
        "pt": cpf,
        "es": curp,
        "id": lambda: d(16),
        "vi": lambda: d(12),
        "th": lambda: f"{d(1)}-{d(4)}-{d(5)}-{d(2)}-{d(1)}",
        "tw": lambda: R.choice(UP) + pick("1", "2") + d(8),
    }[lang]()
    lbl = {
        "ja": ("申請書", "氏名", "個人番号", "電話番号", "メールアドレス", "保護者連絡先"),
        "ko": ("신청서", "성명", "주민등록번호", "전화번호", "이메일", "보호자 연락처"),
        "zh": ("申请表", "姓名", "身份证号", "联系电话", "电子邮箱", "监护人电话"),
        "tw": ("申請表", "姓名", "身分證字號", "聯絡電話", "電子信箱", "家長電話"),
        "hi": ("आवेदन पत्र", "नाम", "आधार संख्या", "मोबाइल नंबर", "ईमेल", "अभिभावक का फ़ोन"),
        "ar": (
            "نموذج طلب",
            "الاسم",
            "رقم الهوية",
            "رقم الهاتف",
            "البريد الإلكتروني",
            "هاتف ولي الأمر",
        ),
        "he": ("טופס בקשה", "שם", "מספר זהות", "טלפון", 'דוא"ל', "טלפון הורה"),
        "pt": (
            "Ficha de matrícula",
            "Nome",
            "CPF",
            "Telefone",
            "E-mail",
            "Telefone do responsável",
        ),
        "es": (
            "Solicitud",
            "Nombre",
            "CURP",
            "Teléfono",
            "Correo electrónico",
            "Teléfono del tutor",
        ),
        "id": ("Formulir", "Nama", "NIK", "No. Telepon", "Email", "No. HP Orang Tua"),
        "vi": ("Đơn đăng ký", "Họ tên", "Số CCCD", "Số điện thoại", "Email", "SĐT phụ huynh"),
        "th": ("แบบฟอร์ม", "ชื่อ", "เลขประจำตัวประชาชน", "เบอร์โทรศัพท์", "อีเมล", "เบอร์ผู้ปกครอง"),
    }[lang]
    rows = [
        f"{lbl[0]} #{d(8)}",
        f"{lbl[1]}: {n}",
        f"{lbl[2]}: {idv}",
        f"{lbl[3]}: {L('phone_number', p)}",
        f"{lbl[4]}: {L('email', e)}",
    ]
    if R.random() < 0.5:
        rows.append(f"{lbl[5]}: {L('phone_number', phone(lang))}")
    if R.random() < 0.3:
        rows.append(f"Student ID {d(9)} / 学籍番号 {d(8)}")
    text = "\n".join(rows)
    if R.random() < 0.3:
        add(
            "gov",
            call(
                "submit_form",
                {
                    "form_id": f"F-{d(6)}",
                    "fields": {
                        "name": n,
                        "national_id": idv,
                        "phone": L("phone_number", p),
                        "email": L("email", e),
                    },
                },
            ),
        )
    else:
        wrap("gov", text, tool="form_export")


def gov_negative():
    lang = pick("ja", "ko", "zh", "hi", "ar", "he", "pt", "es", "id")
    idv = {
        "ja": my_number,
        "ko": kr_rrn,
        "zh": cn_id,
        "hi": aadhaar,
        "ar": emirates_id,
        "he": il_id,
        "pt": cpf,
        "es": curp,
        "id": lambda: d(16),
    }[lang]()
    k = R.randint(0, 3)
    if k == 0:
        text = f"受付番号 {d(12)} / 申请编号 {d(10)} / ID: {idv} / 状態: 審査中 / Date 2026-11-{R.randint(1, 28):02d}"
    elif k == 1:
        text = f"Matrícula {d(10)} | RA {d(8)} | CPF {cpf()} | RG {d(2)}.{d(3)}.{d(3)}-{d(1)} | Turma 3ºB | Nota 8,5"
    elif k == 2:
        text = f"NIK {d(16)}\nNo. KK {d(16)}\nNISN {d(10)}\nAadhaar {aadhaar()}\nPAN {pan_in()}\nUDISE {d(11)}\nEmirates ID {emirates_id()}"
    else:
        text = "Form help: enter your phone as 090-1234-5678 or +82 10-1234-5678; e-mail like name@example.com. 전화번호 형식: 010-0000-0000. 手机号格式：1XX XXXX XXXX"
    wrap("gov", text, tool="form_export")


# ------------------------------------------------------------------ G. regional vendor secrets in configs and code
COMMENT = {
    "ja": "# 本番環境の認証情報（共有禁止）",
    "ko": "# 운영 환경 인증 정보 (공유 금지)",
    "zh": "# 生产环境密钥，请勿提交",
    "tw": "# 正式環境金鑰，請勿外流",
    "vi": "# Khóa môi trường production, không chia sẻ",
    "th": "# คีย์สำหรับ production ห้ามเผยแพร่",
    "id": "# Kunci produksi, jangan dibagikan",
    "hi": "# प्रोडक्शन कुंजी, साझा न करें",
    "ar": "# مفاتيح بيئة الإنتاج - لا تشاركها",
    "he": "# מפתחות סביבת ייצור - לא לשתף",
    "pt": "# credenciais de produção, não versionar",
    "es": "# credenciales de producción, no subir al repo",
}


def vendor_env():
    lang = R.choice(LANGS)
    v = R.randint(0, 13)
    lines = [COMMENT[lang]]
    if v == 0:
        lines += [
            f"ALIBABA_CLOUD_ACCESS_KEY_ID={ali_id()}",
            f"ALIBABA_CLOUD_ACCESS_KEY_SECRET={L('generic_secret', ali_secret())}",
            "ALIBABA_CLOUD_REGION_ID=cn-hangzhou",
        ]
    elif v == 1:
        lines += [
            f"TENCENTCLOUD_SECRET_ID={tc_id()}",
            f"TENCENTCLOUD_SECRET_KEY={L('generic_secret', tc_key())}",
            "TENCENTCLOUD_REGION=ap-guangzhou",
        ]
    elif v == 2:
        lines += [
            f"BAIDU_APP_ID={d(8)}",
            f"BAIDU_API_KEY={L('generic_secret', rs(24))}",
            f"BAIDU_SECRET_KEY={L('generic_secret', rs(32))}",
        ]
    elif v == 3:
        lines += [
            f"HUAWEICLOUD_SDK_AK={rs(20, UP + DIG)}",
            f"HUAWEICLOUD_SDK_SK={L('generic_secret', rs(40))}",
            f"HUAWEICLOUD_PROJECT_ID={hexs(32)}",
        ]
    elif v == 4:
        lines += [
            f"LINE_CHANNEL_ID={R.randint(1600000000, 2009999999)}",
            f"LINE_CHANNEL_SECRET={L('generic_secret', hexs(32))}",
            f"LINE_CHANNEL_ACCESS_TOKEN={L('generic_secret', line_token())}",
        ]
    elif v == 5:
        lines += [
            f"KAKAO_REST_API_KEY={L('generic_secret', hexs(32))}",
            f"KAKAO_ADMIN_KEY={L('generic_secret', hexs(32))}",
            "KAKAO_REDIRECT_URI=https://shop.hanbit-tech.co.kr/oauth/kakao",
        ]
    elif v == 6:
        lines += [
            f"WECHAT_APPID=wx{hexs(16)}",
            f"WECHAT_APPSECRET={L('generic_secret', hexs(32))}",
            f"WECHAT_MCH_ID=16{d(8)}",
            f"WECHAT_PAY_API_V3_KEY={L('generic_secret', rs(32))}",
        ]
    elif v == 7:
        lines += [
            f"DINGTALK_WEBHOOK=https://oapi.dingtalk.com/robot/send?access_token={L('generic_secret', hexs(64))}",
            f"DINGTALK_SECRET={L('generic_secret', 'SEC' + hexs(64))}",
            f"DINGTALK_APP_KEY=ding{rs(16, LO + DIG)}",
            f"DINGTALK_APP_SECRET={L('generic_secret', rs(64, ALNUM + '-_'))}",
        ]
    elif v == 8:
        lines += [
            f"FEISHU_APP_ID=cli_{hexs(16)}",
            f"FEISHU_APP_SECRET={L('generic_secret', rs(32))}",
            f"FEISHU_WEBHOOK=https://open.feishu.cn/open-apis/bot/v2/hook/{L('generic_secret', uid())}",
        ]
    elif v == 9:
        lines += [f"NAVER_CLIENT_ID={rs(20)}", f"NAVER_CLIENT_SECRET={L('generic_secret', rs(10))}"]
    elif v == 10:
        lines += [
            f"RAKUTEN_APPLICATION_ID={d(19)}",
            f"RAKUTEN_APPLICATION_SECRET={L('generic_secret', hexs(40))}",
            f"RAKUTEN_AFFILIATE_ID={hexs(8)}.{hexs(8)}.{hexs(8)}.{hexs(8)}",
        ]
    elif v == 11:
        lines += [
            f"MERCADOPAGO_PUBLIC_KEY={mp_public()}",
            f"MERCADOPAGO_ACCESS_TOKEN={L('generic_secret', mp_token(pick('APP_USR', 'TEST')))}",
        ]
    elif v == 12:
        lines += [
            f"PAGSEGURO_EMAIL={L('email', 'financeiro@' + pick('lojasaurora.com.br', 'mercadinho-sol.com.br'))}",
            f"PAGSEGURO_TOKEN={L('generic_secret', rs(32, UP + DIG))}",
            "PAGSEGURO_ENV=production",
        ]
    else:
        if R.random() < 0.5:
            lines += [
                f"RAZORPAY_KEY_ID={rzp_id()}",
                f"RAZORPAY_KEY_SECRET={L('generic_secret', rs(24))}",
                f"RAZORPAY_WEBHOOK_SECRET={L('generic_secret', password())}",
            ]
        else:
            lines += [
                f"PAYTM_MID={rs(6)}{d(14)}",
                f"PAYTM_MERCHANT_KEY={L('generic_secret', paytm_key())}",
                "PAYTM_WEBSITE=DEFAULT",
            ]
    # the first line of a file shown with its name
    text = "\n".join(lines)
    k = R.randint(0, 3)
    if k == 0:
        add("vendor", call("write_file", {"path": "/app/.env.production", "content": text}))
    elif k == 1:
        add("vendor", resource("file:///app/.env", text))
    else:
        add("vendor", result(text))


def vendor_code():
    lang = R.choice(LANGS)
    c = COMMENT[lang].replace("# ", "")
    v = R.randint(0, 11)
    if v == 0:
        text = (
            f"// {c}\nconst Core = require('@alicloud/pop-core');\nconst client = new Core({{\n"
            f"  accessKeyId: '{ali_id()}',\n  accessKeySecret: '{L('generic_secret', ali_secret())}',\n"
            "  endpoint: 'https://ecs.aliyuncs.com',\n  apiVersion: '2014-05-26'\n});"
        )
    elif v == 1:
        text = (
            f"# {c}\nfrom tencentcloud.common import credential\n"
            f'cred = credential.Credential("{tc_id()}", "{L("generic_secret", tc_key())}")\n'
            'client = cvm_client.CvmClient(cred, "ap-shanghai")'
        )
    elif v == 2:
        text = (
            f'// {c}\nimport "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"\n'
            f'auth := basic.NewCredentialsBuilder().\n\tWithAk("{rs(20, UP + DIG)}").\n\tWithSk("{L("generic_secret", rs(40))}").\n\tBuild()'
        )
    elif v == 3:
        text = (
            f"# {c}\nfrom linebot.v3.messaging import Configuration\n"
            f"configuration = Configuration(access_token='{L('generic_secret', line_token())}')\n"
            f"handler = WebhookHandler('{L('generic_secret', hexs(32))}')"
        )
    elif v == 4:
        text = (
            f"<?php\n// {c}\n$config = [\n    'app_id' => 'wx{hexs(16)}',\n    'secret' => '{L('generic_secret', hexs(32))}',\n"
            f"    'token' => '{L('generic_secret', mixed(24))}',\n    'aes_key' => '{L('generic_secret', rs(43))}',\n];"
        )
    elif v == 5:
        text = (
            f"// {c}\nimport {{ MercadoPagoConfig, Payment }} from 'mercadopago';\n"
            f"const client = new MercadoPagoConfig({{ accessToken: '{L('generic_secret', mp_token())}', options: {{ timeout: 5000 }} }});"
        )
    elif v == 6:
        text = (
            f'# {c}\nimport razorpay\nclient = razorpay.Client(auth=("{rzp_id()}", "{L("generic_secret", rs(24))}"))\n'
            "order = client.order.create({'amount': 50000, 'currency': 'INR'})"
        )
    elif v == 7:
        text = (
            f"# {c}\nspring:\n  cloud:\n    alicloud:\n      access-key: {ali_id()}\n      secret-key: {L('generic_secret', ali_secret())}\n"
            "      oss:\n        endpoint: oss-cn-shanghai.aliyuncs.com"
        )
    elif v == 8:
        text = (
            f'// {c}\nString url = "https://oapi.dingtalk.com/robot/send?access_token={L("generic_secret", hexs(64))}";\n'
            f'String secret = "{L("generic_secret", "SEC" + hexs(64))}";'
        )
    elif v == 9:
        text = (
            f'# {c}\n[kakao]\nrest_api_key = "{L("generic_secret", hexs(32))}"\n'
            f'[naver]\nclient_id = "{rs(20)}"\nclient_secret = "{L("generic_secret", rs(10))}"'
        )
    elif v == 10:
        text = (
            f"// {c}\n$paytmParams['MID'] = '{rs(6)}{d(14)}';\n"
            f"$checksum = PaytmChecksum::generateSignature($body, '{L('generic_secret', paytm_key())}');"
        )
    else:
        text = f"// {c}\nconst feishu = new lark.Client({{\n  appId: 'cli_{hexs(16)}',\n  appSecret: '{L('generic_secret', rs(32))}',\n}});"
    k = R.randint(0, 2)
    if k == 0:
        add(
            "vendor",
            call(
                pick("create_or_update_file", "write_file"),
                {
                    "path": pick("src/config.js", "app/settings.py", "config/app.php", "main.go"),
                    "content": text,
                    "message": "設定追加 / add config",
                },
            ),
        )
    else:
        add("vendor", result(text))


VENDOR_CHAT = {
    "ja": "本番のLINEチャネルアクセストークンはこちらです: {s}",
    "ko": "카카오 REST API 키는 {s} 입니다. 외부 공유 금지!",
    "zh": "阿里云 AccessKey Secret：{s}（别外传）",
    "tw": "釘釘機器人的 secret 是 {s}",
    "vi": "Secret key của Tencent Cloud: {s}",
    "th": "คีย์ลับของ Razorpay คือ {s}",
    "id": "Secret key Razorpay kita: {s}",
    "hi": "Razorpay key secret: {s} — किसी को मत भेजना",
    "ar": "رمز الوصول الخاص بـ Mercado Pago هو {s}",
    "he": "המפתח הסודי של ה-API הוא {s}",
    "pt": "o access token do Mercado Pago é {s}",
    "es": "el access token de Mercado Pago es {s}",
}


def vendor_chat():
    lang = R.choice(LANGS)
    s = {
        "ja": line_token,
        "ko": lambda: hexs(32),
        "zh": ali_secret,
        "tw": lambda: "SEC" + hexs(64),
        "vi": tc_key,
        "th": lambda: rs(24),
        "id": lambda: rs(24),
        "hi": lambda: rs(24),
        "ar": mp_token,
        "he": lambda: mixed(32),
        "pt": mp_token,
        "es": mp_token,
    }[lang]()
    text = VENDOR_CHAT[lang].format(s=L("generic_secret", s))
    k = R.randint(0, 2)
    if k == 0:
        add(
            "vendor_chat",
            call(
                pick("slack_post_message", "send_message"),
                {"channel": pick("#dev", "#ops", "#pagamentos"), "text": text},
            ),
        )
    elif k == 1:
        add(
            "vendor_chat",
            result(
                J(
                    {
                        "messages": [
                            {"user": "U0" + rs(8, UP + DIG), "text": text, "ts": f"{d(10)}.{d(6)}"}
                        ]
                    },
                    ensure_ascii=False,
                )
            ),
        )
    else:
        add("vendor_chat", result(text))


def std_secrets():
    """The vocabulary's own vendor types, in regional contexts."""
    lang = R.choice(LANGS)
    c = COMMENT[lang]
    v = R.randint(0, 6)
    if v == 0:
        text = f"{c}\n[default]\naws_access_key_id = {L('aws_access_key_id', aws_id())}\naws_secret_access_key = {L('aws_secret_access_key', aws_secret())}\nregion = {pick('ap-northeast-1', 'ap-southeast-1', 'sa-east-1', 'me-central-1', 'ap-south-1')}"
    elif v == 1:
        text = f"{c}\ngit remote set-url origin https://{L('github_token', github_token())}@github.com/{pick('sakura-shoji', 'lojasaurora')}/app.git"
    elif v == 2:
        text = f"{c}\nGOOGLE_MAPS_SERVER_KEY={L('google_api_key', aiza())}"
    elif v == 3:
        text = f"{c}\nAuthorization: Bearer {L('jwt', jwt())}"
    elif v == 4:
        text = f"{c}\n{L('private_key', pem())}"
    elif v == 5:
        text = f"{c}\nSLACK_WEBHOOK_URL={L('slack_webhook', slack_hook())}"
    else:
        text = f"{c}\nDATABASE_URL=postgres://app:{L('url_credentials', re.sub('[@#%?/]', 'x', password()))}@db.{pick('tokyo', 'seoul', 'saopaulo', 'mumbai')}.internal.{pick('acme-asia.com', 'lojasaurora.com.br')}:5432/app"
    wrap("std", text, tool="write_file", args={"path": "/app/.env"})


def vendor_negative():
    lang = R.choice(LANGS)
    c = COMMENT[lang].replace("本番環境の認証情報（共有禁止）", "サンプル設定")
    v = R.randint(0, 12)
    if v == 0:
        lines = [
            c,
            "ALIBABA_CLOUD_ACCESS_KEY_ID=<your-access-key-id>",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET=<your-access-key-secret>",
        ]
    elif v == 1:
        lines = [
            c,
            "TENCENTCLOUD_SECRET_ID=${TENCENTCLOUD_SECRET_ID}",
            "TENCENTCLOUD_SECRET_KEY=${TENCENTCLOUD_SECRET_KEY}",
        ]
    elif v == 2:
        lines = [
            c,
            f"WECHAT_APPID=wx{hexs(16)}",
            "WECHAT_APPSECRET=your_app_secret_here",
            f"WECHAT_MCH_ID=16{d(8)}",
        ]
    elif v == 3:
        lines = [
            c,
            f"MERCADOPAGO_PUBLIC_KEY={mp_public()}",
            "MERCADOPAGO_ACCESS_TOKEN=APP_USR-xxxxxxxxxxxxxxxx-xxxxxx-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-xxxxxxxxx",
        ]
    elif v == 4:
        lines = [
            c,
            f"RAZORPAY_KEY_ID={rzp_id(pick('live', 'test'))}",
            "RAZORPAY_KEY_SECRET=",
            f"# checkout.js: key: '{rzp_id()}'",
        ]
    elif v == 5:
        lines = [
            c,
            f"LINE_CHANNEL_ID={R.randint(1600000000, 2009999999)}",
            "LINE_CHANNEL_SECRET=****************",
            "LINE_CHANNEL_ACCESS_TOKEN=(マスク済み)",
        ]
    elif v == 6:
        lines = [
            c,
            f"<script>Kakao.init('{hexs(32)}'); // JavaScript 키 (공개)</script>",
            f"FEISHU_APP_ID=cli_{hexs(16)}",
            f"NAVER_MAP_CLIENT_ID={rs(10, LO + DIG)}",
        ]
    elif v == 7:
        lines = [
            c,
            "# 阿里云文档示例",
            "accessKeyId: 'LTAI****************'",
            "accessKeySecret: 'yourAccessKeySecret'",
            "endpoint: 'oss-cn-hangzhou.aliyuncs.com'",
        ]
    elif v == 8:
        lines = [
            c,
            "DINGTALK_WEBHOOK=https://oapi.dingtalk.com/robot/send?access_token=XXXXXX",
            "FEISHU_WEBHOOK=https://open.feishu.cn/open-apis/bot/v2/hook/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        ]
    elif v == 9:
        lines = [
            c,
            f"RAKUTEN_APPLICATION_ID={d(19)}",
            f"RAKUTEN_AFFILIATE_ID={hexs(8)}.{hexs(8)}.{hexs(8)}.{hexs(8)}",
            f"# request id {uid()}  trace {hexs(32)}",
        ]
    elif v == 10:
        lines = [
            c,
            "PAYTM_MID=YOUR_MID_HERE",
            "PAYTM_MERCHANT_KEY=YOUR_MERCHANT_KEY",
            "PAYTM_WEBSITE=WEBSTAGING",
        ]
    elif v == 11:
        lines = [
            c,
            f"ossutil cp ./dist oss://sakura-assets/ --endpoint oss-cn-shanghai.aliyuncs.com   # ETag: {hexs(32).upper()}",
            f"x-oss-request-id: {rs(24, UP + DIG)}",
        ]
    else:
        lines = [
            c,
            "PAGSEGURO_TOKEN=SEU_TOKEN_AQUI",
            "MERCADOPAGO_ACCESS_TOKEN=process.env.MP_ACCESS_TOKEN",
            f"PIX_CHAVE_ALEATORIA={uid()}",
        ]
    text = "\n".join(lines)
    k = R.randint(0, 2)
    if k == 0:
        add("vendor", call("write_file", {"path": "/app/.env.example", "content": text}))
    else:
        add("vendor", result(text))


def vendor_doc_negative():
    k = R.randint(0, 5)
    if k == 0:
        text = "## 認証\nSecretId と SecretKey は [API キー管理] で作成します。`SecretKey` はコードに直接書かないでください。例: `export TENCENTCLOUD_SECRET_KEY=<SecretKey>`"
    elif k == 1:
        text = "## 인증\nREST API 키는 [내 애플리케이션] > [앱 키]에서 확인합니다. `Authorization: KakaoAK ${REST_API_KEY}` 헤더로 전송하세요."
    elif k == 2:
        text = "### 获取 AccessKey\n登录阿里云控制台，在「AccessKey 管理」页面创建 AccessKey。AccessKey Secret 只在创建时显示一次，请妥善保存。"
    elif k == 3:
        text = "Para obter seu Access Token, acesse Suas integrações > Credenciais. Use `Authorization: Bearer YOUR_ACCESS_TOKEN` nas requisições. Chave pública: use no frontend."
    elif k == 4:
        text = 'curl -X POST https://api.razorpay.com/v1/orders -u [YOUR_KEY_ID]:[YOUR_KEY_SECRET] -H \'content-type: application/json\' -d \'{"amount": 50000, "currency": "INR", "receipt": "receipt#1"}\''
    else:
        text = "LINE Messaging API: `curl -H 'Authorization: Bearer {channel access token}' https://api.line.me/v2/bot/info` — チャネルシークレットは署名検証 (X-Line-Signature) に使います。"
    wrap("docs", text, tool="fetch")


# ------------------------------------------------------------------ H. payments PII (cards, IBAN) and IPs
def payment_pii():
    lang = pick("pt", "es", "ar", "he", "ja", "hi", "ko", "zh")
    k = R.randint(0, 3)
    if k == 0:
        obj = {
            "id": f"pay_{rs(14)}",
            "method": "card",
            "card_number": L("credit_card", card()),
            "holder": name(lang),
            "email": L("email", email(lang)),
            "ip": L("ipv4", pub_ip()),
        }
        add("payment", call("charge_card", obj))
    elif k == 1:
        cc = pick("BR", "SA", "AE", "IL", "QA", "JO", "PK")
        ib = iban_for(cc)
        lbl = {
            "pt": "Dados bancários",
            "es": "Datos bancarios",
            "ar": "بيانات الحساب",
            "he": "פרטי חשבון",
        }.get(lang, "Bank details")
        text = f"{lbl}: IBAN {L('iban', pick(ib, group4(ib)))} / SWIFT {rs(4, UP)}{cc}{rs(2, UP)}"
        wrap("payment", text, tool="gmail_read")
    elif k == 2:
        text = f'[{ts()}] login ok user={L("email", email(lang))} ip={L("ipv4", pub_ip())} ua="Mozilla/5.0" geo={pick("JP", "KR", "BR", "MX", "AE", "IN")}'
        wrap("payment", text, tool="logs_query")
    else:
        text = f"Pagamento recusado: cartão {L('credit_card', fmt_card(card(), pick(' ', '-')))}, titular {name(lang)}, CPF {cpf()}, parcelas 3x"
        wrap("payment", text, tool="payments_get")


def payment_negative():
    k = R.randint(0, 4)
    if k == 0:
        text = (
            f"cartão final {d(4)} | NSU {d(12)} | autorização {d(6)} | TID {d(20)} | bandeira VISA"
        )
    elif k == 1:
        c = card()
        text = f"Card {c[:6]}******{c[-4:]} declined (insufficient_funds). BIN {c[:6]}. Test card 4111 1111 1111 1111 in sandbox."
    elif k == 2:
        text = f"IBAN inválido: {bad_iban(iban_for(pick('BR', 'SA', 'AE')))} (dígito verificador)\nCLABE {d(18)}\nPIX {cpf()}"
    elif k == 3:
        text = f"server 10.0.{R.randint(0, 254)}.{R.randint(1, 254)} → 192.168.{R.randint(0, 254)}.1 ; firmware 2.{R.randint(0, 9)}.{R.randint(10, 99)}.{R.randint(100, 999)} ; docs 203.0.113.{R.randint(1, 254)}"
    else:
        text = f"取引ID {d(18)} / 決済番号 {d(16)}X / 承認番号 {d(6)} / JAN {luhn(d(12))} / 카드 승인번호 {d(8)}"
    wrap("payment", text, tool="payments_get")


TEMPLATES = [
    (contact_card, 34),
    (contact_negative, 22),
    (support_chat, 40),
    (support_chat_negative, 22),
    (invoice, 26),
    (invoice_negative, 16),
    (booking, 18),
    (booking_negative, 12),
    (shipping, 12),
    (telecom, 12),
    (telecom_negative, 10),
    (gov_form, 20),
    (gov_negative, 12),
    (vendor_env, 36),
    (vendor_code, 24),
    (vendor_chat, 16),
    (std_secrets, 14),
    (vendor_negative, 22),
    (vendor_doc_negative, 8),
    (payment_pii, 14),
    (payment_negative, 12),
]


def generate(seed: int | str = SEED) -> list[dict]:
    return KIT.run(seed, TEMPLATES)


if __name__ == "__main__":
    main(generate, SEED, "corpus42.jsonl")
