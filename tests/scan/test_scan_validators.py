import pytest
from mcp_gateway.scan import validators as V
from scan_helpers import bad_crc, github_token, iban, jwt, luhn_complete, npm_token


def test_luhn():
    assert V.luhn("4539578763621486")
    assert V.luhn("4539 5787 6362 1486")
    assert not V.luhn("4539578763621487")
    assert not V.luhn("1234")


@pytest.mark.parametrize(
    "num,ok",
    [
        ("4539578763621486", True),  # Visa 16
        ("5425233430109903", True),  # Mastercard
        ("2223000048410010", True),  # Mastercard 2-series
        ("378282246310005", True),  # Amex 15
        ("6011000990139424", True),  # Discover
        ("1234567812345670", False),  # no brand starts with 1
        ("9999999999999995", False),
        ("37828224631000", False),  # Amex prefix, wrong length
    ],
)
def test_card_brand(num, ok):
    assert V.card_brand(num) is ok


def test_iban_mod97():
    good = iban("DE", "500105175407324931")
    assert V.iban_mod97(good)
    assert V.iban_mod97("GB82 WEST 1234 5698 7654 32")
    assert not V.iban_mod97(good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not V.iban_mod97("XX00123412341234")  # unknown country
    assert not V.iban_mod97(good + "1")  # wrong length for DE


@pytest.mark.parametrize(
    "ssn,ok",
    [
        ("536-22-8726", True),
        ("000-12-3456", False),
        ("666-12-3456", False),
        ("900-12-3456", False),
        ("123-00-4567", False),
        ("123-45-0000", False),
        ("536228726", True),
    ],
)
def test_ssn(ssn, ok):
    assert V.ssn(ssn) is ok


def test_token_crc32_github_and_npm():
    for prefix in ("ghp", "gho", "ghu", "ghs", "ghr"):
        t = github_token(prefix, seed=len(prefix) + ord(prefix[2]))
        assert V.token_crc32(t), t
        assert not V.token_crc32(bad_crc(t))
    n = npm_token()
    assert V.token_crc32(n)
    assert not V.token_crc32(bad_crc(n))


def test_jwt_structure():
    assert V.jwt(jwt())
    assert not V.jwt("eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.sig")  # header without alg
    assert not V.jwt("abc.def.ghi")
    assert not V.jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0")  # two segments


def test_entropy_and_charset():
    assert V.entropy("aaaaaaaaaaaa", min=1.0) is False
    assert V.entropy("Xk9#mP2qLz7!", min=3.0)
    assert V.charset("abcdef", min_classes=2) is False
    assert V.charset("abc123", min_classes=2)
    assert V.charset("abc123", min_classes=2, require="upper") is False


@pytest.mark.parametrize(
    "value",
    [
        "sk-xxxxxxxxxxxxxxxxxxxx",
        "YOUR_API_KEY",
        "your-api-key-here",
        "${DB_PASSWORD}",
        "{{ .Values.password }}",
        "<token>",
        "****4242",
        "[REDACTED]",
        "changeme",
        "AKIAIOSFODNN7EXAMPLE",
        "aaaaaaaaaaaaaaaa",
        "abcdefghijklmnop1",
        "$DB_PASSWORD",
        "process.env.API_KEY",
    ],
)
def test_placeholders(value):
    assert V.is_placeholder(value)


@pytest.mark.parametrize("value", ["hunter2x", "Zx9#kq2Lm!p", github_token(), "S3cr3t-Passw0rd!"])
def test_not_placeholders(value):
    assert not V.is_placeholder(value)


def test_phone_and_ipv4_validators():
    assert V.phone("+1 415-555-2132")
    assert V.phone("(415) 555-2132")
    assert not V.phone("2024-01-15")
    assert not V.phone("078-05-1120")  # SSN shape
    assert not V.phone("(015) 555-2132")  # NANP area code cannot start with 0
    # 555-0100 to 555-0199 are reserved for fiction and examples
    assert not V.phone("(415) 555-0132") and not V.phone("1-800-555-0199")
    # ... however they are written: E.164, unseparated, after a trunk 1
    for fiction in ("+17335550151", "+1 733 555 0151", "18005550199", "4315550179"):
        assert not V.phone(fiction), fiction
    # another exchange, another country's 555 01, a German number with 5550 1 in it
    for number in ("+17335550251", "+17335560151", "+44 20 5550 1234", "030 5550 1234"):
        assert V.phone(number), number
    assert V.ipv4_public("52.1.2.3") and V.ipv4_public("172.32.0.9")
    # private, link-local and carrier-grade NAT networks identify no one
    for ip in ("10.1.2.3", "172.16.0.9", "172.31.255.1", "192.168.1.20", "169.254.169.254",
               "100.64.0.1", "100.127.9.9"):  # fmt: skip
        assert not V.ipv4_public(ip), ip
    # RFC 5737's documentation networks; object ids written like addresses
    assert not V.ipv4_public("192.0.2.94") and not V.ipv4_public("203.0.113.7")
    assert not V.ipv4_public("2.5.4.11") and V.ipv4_public("2.5.5.11")
    assert not V.ipv4_public("127.0.0.1")
    assert not V.ipv4_public("0.0.0.0")
    assert not V.ipv4_public("255.255.255.0")
    assert not V.ipv4_public("1.2.3.256")


@pytest.mark.parametrize(
    "text, found",
    [
        ("version 1.2.3.4", False),
        ("v1.2.3.4", False),
        ("ver. 10.0.19041.1", False),
        ("OID 1.3.6.1", False),
        # "ver" and "oid" inside a word are no version or OID
        ("server 34.201.113.9 down", True),
        ("resolver 8.8.4.4", True),
        ("failover to 52.14.200.9", True),
        ("android 52.1.2.3", True),
    ],
)
def test_ipv4_after_version_words_only_when_they_are_words(text, found):
    from mcp_gateway.scan.engine import Engine

    got = [d.type for d in Engine.load().scan_text(text)]
    assert got == (["ipv4"] if found else [])


def test_basic_credentials():
    import base64

    assert V.basic_credentials(base64.b64encode(b"svc:Xk9#mP2q").decode())
    assert not V.basic_credentials(base64.b64encode(b"no-colon-here").decode())
    assert not V.basic_credentials(base64.b64encode(b"user:password").decode())  # placeholder
    assert not V.basic_credentials("authentication")
    # an API key as the user, no password (Segment's writeKey, Stripe's "sk_…:"); a name is none
    assert V.basic_credentials(base64.b64encode(b"aQ7xZ2pLmW9rT4vN8sK3eJ6uB1yH5cDf:").decode())
    assert not V.basic_credentials(base64.b64encode(b"alice:").decode())
    assert not V.basic_credentials(base64.b64encode(b"your_write_key_here_xxxx:").decode())


def test_sasl_plain():
    import base64

    assert V.sasl_plain(base64.b64encode(b"\0hannah@example.org\0Meadow$Zephyr19").decode())
    assert V.sasl_plain(base64.b64encode(b"Cobalt#Quartz13").decode())  # AUTH LOGIN's password
    assert not V.sasl_plain(base64.b64encode(b"\0alice\0password").decode())  # the textbook's
    assert not V.sasl_plain(base64.b64encode(b"\0alice\0").decode())


def test_resolve_rejects_unknown():
    with pytest.raises(ValueError, match="unknown validator"):
        V.resolve("nope")
    with pytest.raises(ValueError, match="no parameter"):
        V.resolve({"entropy": {"max": 3}})
    with pytest.raises(ValueError, match="must be float"):
        V.resolve({"entropy": "high"})
    assert V.resolve({"entropy": 3}) == ("entropy", {"min": 3.0})
    assert V.resolve("luhn") == ("luhn", {})


def test_famous_values():
    assert not V.not_famous("4111 1111 1111 1111", kind="card")
    assert V.not_famous(luhn_complete("453957876362148"), kind="card")
    assert not V.not_famous("078-05-1120", kind="ssn")
    assert not V.not_famous("DE89 3704 0044 0532 0130 00", kind="iban")


def test_a_number_after_a_path_segment_is_no_card_without_a_card_word():
    def ctx(text, value):
        i = text.index(value)
        return V.Ctx(text, i, i + len(value), None)

    slug = '"slug": "submit/501301925635001"'
    assert not V.card_context("501301925635001", ctx(slug, "501301925635001"))
    path = "GET /api/cards/4539578763621486 HTTP/1.1"
    assert V.card_context("4539578763621486", ctx(path, "4539578763621486"))
    plain = "paid with 4539578763621486"
    assert V.card_context("4539578763621486", ctx(plain, "4539578763621486"))


def test_charset_reads_ascii_values_as_the_character_loop_does():
    import random
    import string

    from mcp_gateway.scan import validators as V

    r = random.Random(3)
    alphabet = string.printable + "éßİ٣"
    for _ in range(20_000):
        v = "".join(r.choice(alphabet) for _ in range(r.randint(0, 12)))
        assert V._classes(v) == V._classes_by_character(v), v
