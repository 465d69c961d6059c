"""The forty-second corpus (tests/scan/corpus_apac_latam.py: personal data and secrets in
Asia-Pacific, Latin American and Middle Eastern traffic, and the secrets of regional cloud and
SaaS vendors), scored as test_scan_corpus.py scores its own, on two seeds; then one regression
case for each fix it led to. A case gives a text and the (type, value) pairs the default packs
must report (for secrets: among the secret findings; for personal data: among the
personal-data findings); an empty list means none may be reported. Every case is also scanned
inside a JSON string, as a tool result carries it."""

import json

import corpus_apac_latam as c42  # tests/scan is on sys.path (conftest.py)
import pytest
import test_scan_corpus as tsc
from mcp_gateway.scan.engine import Engine

PERSONAL = {"email", "phone_number", "iban", "credit_card", "us_ssn", "ipv4"}


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


@pytest.fixture(scope="module", params=[42, 2])
def report(request, engine):
    return tsc.evaluate(engine, c42.generate(request.param))


def test_corpus_42_scores(report):
    # blind, before the fixes (seeds 42 / 2): secrets F1 0.883 / 0.883 (recall 0.83 / 0.80),
    # personal data 0.969 / 0.979, false alarms on 9.6 % / 4.4 % of benign messages; after
    # them 1.000 / 1.000, 0.997 / 0.995, 0.7 % / 0 %. What is left: a phone after "Contact:"
    # and a name, a number after a bare 番号, and +971 50 123 4567 in a format hint (a
    # documentation value, but the same shape as numbers the other corpora want found)
    secrets, pii = report.secrets, report.pii
    detail = f"\n{report.table()}\n{report.examples()}\n{report.benign_examples()}"
    assert secrets.precision == 1.0, detail
    assert secrets.recall >= 0.99 and secrets.f1 >= 0.99, detail
    assert pii.precision >= 0.99 and pii.recall >= 0.985, detail
    assert pii.f1 >= 0.99, detail
    assert report.false_alarm_rate <= 0.01, detail


@pytest.mark.parametrize(
    "type_name", ["email", "iban", "credit_card", "ipv4", "generic_secret", "github_token"]
)
def test_corpus_42_types(report, type_name):
    s = report.types[type_name]
    assert s.labels, type_name
    assert s.recall >= 0.99 and s.precision == 1.0, f"{report.table()}\n{report.examples()}"


def test_corpus_42_phones(report):
    s = report.types["phone_number"]
    assert s.recall >= 0.975 and s.precision >= 0.99, f"{report.table()}\n{report.examples()}"


def test_corpus_42_has_its_shapes():
    samples = c42.generate()
    assert 360 <= len(samples) <= 440
    benign = [s for s in samples if s["benign"]]
    assert len(benign) >= 120
    sse = 0
    for s in samples:
        text = s["text"]
        if text.startswith("event: message\n"):  # an SSE event: its data line is the message
            sse += 1
            text = text.split("\ndata: ", 1)[1].rstrip("\n")
        json.loads(text)  # every sample is a JSON-RPC message
        for lab in s["labels"]:
            assert 0 <= lab["start"] < lab["end"] <= len(s["text"])
    assert sse >= 20
    kinds = {lab["type"] for s in samples for lab in s["labels"]}
    assert {"generic_secret", "phone_number", "email", "iban", "credit_card"} <= kinds


def personal(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type in PERSONAL)


def secrets(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text) if d.type not in PERSONAL)


def as_json(text):
    return json.dumps({"type": "text", "text": text}, ensure_ascii=False)


_LINE_TOKEN = (
    "KuHqvUYjN6H6pZ0we9bbLIyXL15HXVOUG/gt6ZjBG3VpeLlcpDZ2c8ixqFVGjopRd/6Tk8Afdyxd3S/RhzHXrzdEf+"
    "AXRw5yNlkrr3LYzylJvUiLLf6VmRLe5rs/3KQiuqWThfge4cxl7kHf8zZuGJ54xIkDulxVQwNgV/3fZfm="
)

PERSONAL_CASES = [
    # -- example numbers of Japanese, Korean and Brazilian forms (two groups of four after
    # the prefix, five with a mobile's 9) and China Mobile's 138 0013 8000
    ("入力例: 090-1234-5678", []),
    ("형식: 010-1234-5678", []),
    ("Celular (exemplo): +55 11 91234-5678", []),
    ("手机号示例：138 0013 8000", []),
    # (not a number that only counts up inside a group, nor two-digit groups)
    ("Phone: 612 345 678", [("phone_number", "612 345 678")]),
    ("Tel. 06 12 34 56 78", [("phone_number", "06 12 34 56 78")]),
    ("携帯: 090-3312-5678", [("phone_number", "090-3312-5678")]),
    # -- Hindi labels
    ("ग्राहक: मेरा मोबाइल नंबर 82135 20678 है।", [("phone_number", "82135 20678")]),
    ("अभिभावक का फ़ोन: 80872 96489", [("phone_number", "80872 96489")]),
    ("संपर्क के लिए 2026 में लिखें", []),
    # -- a phone column headed in the scripts of Asia and the Middle East
    (
        "氏名,メール,携帯電話\n山田 太郎,ichiro.suzuki@gmail.com,09074367136",
        [("email", "ichiro.suzuki@gmail.com"), ("phone_number", "09074367136")],
    ),
    ("姓名,手机\n张敏,13839005329", [("phone_number", "13839005329")]),
    ("नाम,मोबाइल\nराहुल,87109 86131", [("phone_number", "87109 86131")]),
    ("שם,טלפון\nיוסי כהן,0501234467", [("phone_number", "0501234467")]),
    # (not an id column in those scripts)
    ("氏名,会員番号\n山田 太郎,09074367136", []),
    # -- 連絡先 / 연락처 ("contact") before a number
    ("保護者連絡先: 07098062985", [("phone_number", "07098062985")]),
    ("연락처 010-2345-6789", [("phone_number", "010-2345-6789")]),
    # -- Portuguese "Telefone", and a Brazilian mobile after an e-mail and a slash
    ("Telefone: 51 91233-9174", [("phone_number", "51 91233-9174")]),
    (
        "Contato: carlos.oliveira@gmail.com / 31 97363-7884",
        [("email", "carlos.oliveira@gmail.com"), ("phone_number", "31 97363-7884")],
    ),
    # -- national ids and codes named in Japanese, Chinese, Korean and Vietnamese
    ("個人番号: 0773 1231 5550", []),
    ("Mã yêu cầu 0742-6088-0501", []),
    ("Số điện thoại: 0912 345 678", [("phone_number", "0912 345 678")]),
    # -- Indonesia's NIK and KK (16 digits, Luhn one time in ten) are no cards
    ("NIK 4240685962111902\nNo. KK 3386992645922730", []),
    ("kartu kredit 4240685962111902", [("credit_card", "4240685962111902")]),
    # -- the people a booking names by their role, at example domains
    ("contact: passenger@example.com, traveler@example.org", []),
]

SECRET_CASES = [
    # -- Huawei Cloud's secret key, abbreviated SK (the AK is its id)
    (
        "HUAWEICLOUD_SDK_AK=TEVI6GQS4903SI9CLF69\nHUAWEICLOUD_SDK_SK=7NobyoWwF6JPT9bRoDJLXhQjgo0QNU5TCq765p0U",
        [("generic_secret", "7NobyoWwF6JPT9bRoDJLXhQjgo0QNU5TCq765p0U")],
    ),
    (
        'auth := basic.NewCredentialsBuilder().\n\tWithAk("GJ0RVJD0TFGB0GYYFBD7").\n'
        '\tWithSk("OikQqiZVhzIjA0G7ijRfOZFw7OzkPYy1NKXy9jbH").\n\tBuild()',
        [("generic_secret", "OikQqiZVhzIjA0G7ijRfOZFw7OzkPYy1NKXy9jbH")],
    ),
    # (a method chain going on on the next line is no secret)
    ("auth := basic.NewCredentialsBuilder().", []),
    # -- the secret right after a Tencent or Alibaba key id (the ids are not reported)
    (
        'cred = credential.Credential("AKIDuWEXnPXndNLdYcPTcK2rVcYAxzwUGjpV", '
        '"sUqvpH9ZvPQBxpv9l6m3Ri8ABcOR66QW")',
        [("generic_secret", "sUqvpH9ZvPQBxpv9l6m3Ri8ABcOR66QW")],
    ),
    (
        "LTAI5tQ8xYz3mKpLs2aNb4cA:Tq8RzWxYv3mKpLs2aNb4cA9xHV8tCb",
        [("generic_secret", "Tq8RzWxYv3mKpLs2aNb4cA9xHV8tCb")],
    ),
    ("spring.cloud.alicloud.access-key: LTAI4Ggnfn6xeGRmajwGxmr5", []),
    ("DINGTALK_APP_KEY=dingkjagp89kxplc9mey\nFEISHU_APP_ID=cli_a1b2c3d4e5f60718", []),
    ("RAZORPAY_KEY_ID=rzp_live_Ab3dEf5hIj7lMn", []),
    # -- Feishu / Lark and WeCom bot webhooks
    (
        "FEISHU_WEBHOOK=https://open.feishu.cn/open-apis/bot/v2/hook/e0a410a4-c757-4031-96b8-179e4b604a31",
        [
            (
                "generic_secret",
                "https://open.feishu.cn/open-apis/bot/v2/hook/e0a410a4-c757-4031-96b8-179e4b604a31",
            )
        ],
    ),
    ("hook: https://open.feishu.cn/open-apis/bot/v2/hook/xxxxxxxx-xxxx-xxxx-xxxx-xxxx", []),
    # -- LINE's channel secret and Paytm's merchant key by position
    (
        "handler = WebhookHandler('bc0a95f1eb9fd3331ffc9eb9bdae4e45')",
        [("generic_secret", "bc0a95f1eb9fd3331ffc9eb9bdae4e45")],
    ),
    (
        "$checksum = PaytmChecksum::generateSignature($body, '9ZzS%9vcTL#q3fOG');",
        [("generic_secret", "9ZzS%9vcTL#q3fOG")],
    ),
    ("handler = WebhookHandler(os.environ['LINE_CHANNEL_SECRET'])", []),
    # -- WeChat's EncodingAESKey
    (
        "'aes_key' => 'Jif6kylAqn8MxzEPGrsVzaCJNX1b1E1vfQY5KSK8gMG',",
        [("generic_secret", "Jif6kylAqn8MxzEPGrsVzaCJNX1b1E1vfQY5KSK8gMG")],
    ),
    # -- key names in Korean, Thai, Hebrew, Arabic and Chinese; Thai words between the name
    # and คือ; Indonesian "kata sandi saya"; an English name before a CJK colon or copula
    (
        "카카오 REST API 키는 64df1eeeebe16d4c7fe5e221e7b34d55 입니다.",
        [("generic_secret", "64df1eeeebe16d4c7fe5e221e7b34d55")],
    ),
    (
        "คีย์ลับของ Razorpay คือ ZheB1nZMPCfsMkb5YDv17DtS",
        [("generic_secret", "ZheB1nZMPCfsMkb5YDv17DtS")],
    ),
    (
        "รหัสผ่านของฉันคือ Hanbok22!mango528 เข้าระบบไม่ได้",
        [("generic_secret", "Hanbok22!mango528")],
    ),
    (
        "המפתח הסודי של ה-API הוא ich2JjJUUwipoTjKC1a1rKP2mWELvGkL",
        [("generic_secret", "ich2JjJUUwipoTjKC1a1rKP2mWELvGkL")],
    ),
    (
        "رمز الوصول الخاص بـ Mercado Pago هو APP_USR-9643322754545145-832374-c7199b5746b3bdb6e831ffa36f7652f6-908009328",
        [
            (
                "generic_secret",
                "APP_USR-9643322754545145-832374-c7199b5746b3bdb6e831ffa36f7652f6-908009328",
            )
        ],
    ),
    (
        "阿里云 AccessKey Secret：VgtXIPK7yXv3w6XUBWjhSwuAQ0ouwO（别外传）",
        [("generic_secret", "VgtXIPK7yXv3w6XUBWjhSwuAQ0ouwO")],
    ),
    (
        "釘釘機器人的 secret 是 SEC071ceb38b96de28cf81dcdeb2af32d9bd1bbc69721e64014bbda67fff7063cff",
        [
            (
                "generic_secret",
                "SEC071ceb38b96de28cf81dcdeb2af32d9bd1bbc69721e64014bbda67fff7063cff",
            )
        ],
    ),
    (
        "Kata sandi saya XIWL-opks-0175-! tapi tidak bisa login.",
        [("generic_secret", "XIWL-opks-0175-")],
    ),
    (
        f"本番のLINEチャネルアクセストークンはこちらです: {_LINE_TOKEN}",
        [("generic_secret", _LINE_TOKEN)],
    ),
    # (sentences about keys and passwords, with no value in them)
    ("API 키는 콘솔에서 발급받을 수 있습니다.", []),
    ("密钥：请在控制台查看", []),
    ("secret 是 your_secret_here", []),
    ("AccessKey Secret：LTAI****************", []),
    ("รหัสผ่านของคุณคือรหัสที่ส่งทาง SMS", []),
    ("המפתח הסודי של ה-API הוא משהו שאסור לשתף", []),
    ("Kata sandi saya lupa, tolong reset", []),
    ("password は 8 文字以上にしてください", []),
]


@pytest.mark.parametrize(("text", "want"), PERSONAL_CASES)
def test_personal_data_cases(engine, text, want):
    assert personal(engine, text) == sorted(want)
    assert personal(engine, as_json(text)) == sorted(want)


@pytest.mark.parametrize(("text", "want"), SECRET_CASES)
def test_secret_cases(engine, text, want):
    assert secrets(engine, text) == sorted(want)
    assert secrets(engine, as_json(text)) == sorted(want)
