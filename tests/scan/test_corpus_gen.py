"""Tests of the labelled corpus generator itself: checksums, label spans, completeness, determinism.

If these fail, the precision/recall numbers of test_scan_corpus.py mean nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib

import corpus_gen as cg  # tests/scan is on sys.path (conftest.py; a script's own folder)
import orjson
import pytest


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return cg.generate()


def _values(corpus: list[dict], t: str) -> list[str]:
    return [
        s["text"][lab["start"] : lab["end"]]
        for s in corpus
        for lab in s["labels"]
        if lab["type"] == t
    ]


def _tokens(corpus: list[dict], t: str) -> list[str]:
    """Labelled values with encodings undone (the token inside a base64 blob or \\u escapes)."""
    out = []
    for v in _values(corpus, t):
        inner, partial = _unwrap(v)
        if partial:
            m = re.search(FORMATS[t], inner)
            assert m, inner
            inner = m.group(0)
        out.append(inner)
    return out


# ---------------------------------------------------------------- checksum primitives


def test_base62_crc32_matches_an_independent_computation():
    # base62 with the 0-9A-Za-z alphabet, left-padded to 6 characters
    body = "A" * 30
    crc = zlib.crc32(body.encode())
    digits = []
    n = crc
    while n:
        n, r = divmod(n, 62)
        digits.append("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[r])
    assert cg.crc32_base62(body) == "".join(reversed(digits)).rjust(6, "0")
    assert cg.base62(0) == "000000" and cg.base62(61) == "00000z" and cg.base62(62) == "000010"


def test_validators_on_known_values():
    assert cg.luhn_ok("4111111111111111") and not cg.luhn_ok("4111111111111112")
    assert cg.luhn_ok("378282246310005")
    assert cg.iban_ok("GB82WEST12345698765432") and cg.iban_ok("DE89 3704 0044 0532 0130 00")
    assert not cg.iban_ok("GB82WEST12345698765433")
    assert cg.ssn_ok("536-22-1234")
    for bad in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"):
        assert not cg.ssn_ok(bad), bad
    assert cg.jwt_header(cg.JWT_IO_SAMPLE) == {"alg": "HS256", "typ": "JWT"}


# ---------------------------------------------------------------- shape and counts


def test_sample_shape_ids_and_counts(corpus):
    ids = [s["id"] for s in corpus]
    assert len(ids) == len(set(ids))
    benign = [s for s in corpus if s["benign"]]
    positive = [s for s in corpus if not s["benign"]]
    assert 1400 <= len(benign) <= 1600 and 1400 <= len(positive) <= 1700
    for s in corpus:
        assert set(s) == {"id", "text", "labels", "benign"}
        assert isinstance(s["text"], str) and s["text"]
        assert s["benign"] == (not s["labels"])
    per_type_samples = {t: 0 for t in cg.ALL_TYPES}
    for s in positive:
        for t in {lab["type"] for lab in s["labels"]}:
            per_type_samples[t] += 1
    thin = {t: n for t, n in per_type_samples.items() if n < 25}
    assert not thin, f"types with fewer than 25 samples: {thin}"


def test_labels_are_in_bounds_sorted_disjoint_and_trimmed(corpus):
    for s in corpus:
        text = s["text"]
        prev_end = 0
        for lab in s["labels"]:
            assert lab["type"] in cg.ALL_TYPES
            assert prev_end <= lab["start"] < lab["end"] <= len(text), s["id"]
            prev_end = lab["end"]
            value = text[lab["start"] : lab["end"]]
            assert value == value.strip(), (s["id"], value)
            first = "\"'<" if lab["type"] == "phone_number" else "\"'<("
            assert value[0] not in first and value[-1] not in "\"'>),;", (s["id"], value)


def test_labels_do_not_cut_through_a_token(corpus):
    """The character before and after a label is never part of the same token."""
    word = re.compile(r"[A-Za-z0-9_+/=-]")
    for s in corpus:
        text = s["text"]
        for lab in s["labels"]:
            value = text[lab["start"] : lab["end"]]
            before = text[lab["start"] - 1] if lab["start"] else " "
            after = text[lab["end"]] if lab["end"] < len(text) else " "
            if text[lab["start"] - 2 : lab["start"]] in ("\\n", "\\t", '\\"'):
                before = " "  # a JSON escape sequence ends right before the value
            if text[lab["end"] : lab["end"] + 2] in ("\\n", "\\t", '\\"'):
                after = " "
            if lab["type"] in ("phone_number", "email", "ipv4", "credit_card", "us_ssn", "iban"):
                assert not before.isalnum() and not after.isalnum(), (s["id"], value)
            elif lab["type"] != "url_credentials":
                assert not word.match(before) or before in "=-/+", (s["id"], before, value)
                assert not word.match(after) or after == "-", (s["id"], value, after)


def test_determinism():
    a = cg.generate()
    b = cg.generate()
    assert orjson.dumps(a) == orjson.dumps(b)
    c = cg.generate("another-seed")
    assert len(c) == len(a)
    assert sum(x["text"] != y["text"] for x, y in zip(a, c, strict=True)) > 0.95 * len(a)


# ---------------------------------------------------------------- labelled values are format-valid

FORMATS = {
    "aws_access_key_id": r"(AKIA|ASIA)[A-Z2-7]{16}",
    "aws_secret_access_key": r"[A-Za-z0-9/+]{40}",
    "aws_session_token": r"(IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE)[A-Za-z0-9/+]{200,}={0,2}",
    "github_token": r"(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})",
    "gitlab_token": r"glpat-[A-Za-z0-9_-]{20}",
    "slack_token": r"(xox[bp]-[0-9]{10,13}-[0-9]{10,13}(-[0-9]{13})?-[A-Za-z0-9]{24,32}|xapp-1-A[A-Z0-9]{10}-[0-9]{13}-[0-9a-f]{64}|xoxe\.xoxp-1-[A-Za-z0-9]{140})",
    "slack_webhook": r"https://hooks\.slack\.com/services/T[A-Z0-9]{8,10}/B[A-Z0-9]{8,10}/[A-Za-z0-9]{24}",
    "stripe_key": r"[sr]k_(live|test)_[A-Za-z0-9]{24,99}",
    "openai_api_key": r"sk-((proj|svcacct|admin)-[A-Za-z0-9_-]{58,74}T3BlbkFJ[A-Za-z0-9_-]{58,74}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})",
    "anthropic_api_key": r"sk-ant-(api03|admin01)-[A-Za-z0-9_-]{93}AA",
    "google_api_key": r"AIza[A-Za-z0-9_-]{35}",
    "azure_storage_key": r"[A-Za-z0-9+/]{86}==",
    "twilio_api_key": r"SK[0-9a-f]{32}",
    "sendgrid_api_key": r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    "npm_token": r"npm_[A-Za-z0-9]{36}",
    "pypi_token": r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{100,}",
    "context7_api_key": r"ctx7sk-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "jwt": r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{40,}",
    "basic_auth": r"[A-Za-z0-9+/]+={0,2}",
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "ipv4": r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})",
}


def _unwrap(value: str) -> tuple[str, bool]:
    """The value itself, JSON \\u escapes decoded, or the text inside a base64 blob (partial)."""
    if value.startswith("\\u"):
        return orjson.loads(f'"{value}"'), False
    if re.fullmatch(r"[A-Za-z0-9+/]{80,}={0,2}", value):
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return value, False
        if decoded.startswith("# app config\n"):
            return decoded, True
    return value, False


@pytest.mark.parametrize("t", sorted(FORMATS))
def test_labelled_values_match_their_format(corpus, t):
    values = _values(corpus, t)
    assert values
    bad = []
    for v in values:
        inner, partial = _unwrap(v)
        ok = re.search(FORMATS[t], inner) if partial else re.fullmatch(FORMATS[t], inner)
        if not ok:
            bad.append(v)
    assert not bad, bad[:3]


def test_encoded_values_are_present(corpus):
    """Base64 blobs and JSON \\u escapes that hide a known token are part of the corpus."""
    kinds = {"b64": 0, "unicode": 0}
    for s in corpus:
        for lab in s["labels"]:
            v = s["text"][lab["start"] : lab["end"]]
            inner, partial = _unwrap(v)
            if partial:
                kinds["b64"] += 1
                assert re.search(FORMATS.get(lab["type"], "."), inner), inner
            elif inner != v:
                kinds["unicode"] += 1
    assert kinds["b64"] >= 10 and kinds["unicode"] >= 10, kinds


def test_github_and_npm_checksums(corpus):
    classic = [v for v in _tokens(corpus, "github_token") if not v.startswith("github_pat_")]
    npm = _tokens(corpus, "npm_token")
    assert len(classic) >= 25 and len(npm) >= 25
    for v in classic + npm:
        assert cg.github_checksum_ok(v), v
        # independent check: the last 6 characters decode to the CRC32 of the 30 random ones
        body, check = v.split("_", 1)[1][:30], v[-6:]
        n = 0
        for c in check:
            n = n * 62 + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".index(c)
        assert n == zlib.crc32(body.encode())


def test_cards_pass_luhn_with_a_brand_prefix(corpus):
    for v in _values(corpus, "credit_card"):
        digits = re.sub(r"[ -]", "", v)
        assert digits.isdigit() and 14 <= len(digits) <= 16, v
        assert cg.luhn_ok(digits), v
        assert re.match(r"4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|3[068]", digits), v
        assert digits not in cg.TEST_CARDS
        assert re.fullmatch(r"\d+|\d{4}([ -])\d{4,6}\1\d{4,5}(\1\d{4})?", v), v


def test_ibans_pass_mod97(corpus):
    examples = {e.replace(" ", "") for e in cg.EXAMPLE_IBANS}
    for v in _values(corpus, "iban"):
        assert re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9 ]+", v), v
        assert cg.iban_ok(v), v
        assert v.replace(" ", "") not in examples


def test_ssns_follow_the_issuing_rules(corpus):
    for v in _values(corpus, "us_ssn"):
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9}", v), v
        assert cg.ssn_ok(v), v
        assert v not in cg.SAMPLE_SSNS


def test_ipv4_octets(corpus):
    for v in _values(corpus, "ipv4"):
        octets = [int(x) for x in v.split(".")]
        assert all(0 <= o <= 255 for o in octets) and octets[0] not in (0, 127, 255), v
        assert not v.startswith(("192.0.2.", "198.51.100.", "203.0.113.")), v


def test_jwts_have_a_json_header_with_alg(corpus):
    values = _tokens(corpus, "jwt")
    assert len(values) >= 25
    for v in values:
        assert "alg" in cg.jwt_header(v)
        payload = v.split(".")[1]
        orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_private_keys_are_whole_blocks(corpus):
    kinds = set()
    escapes = set()
    for v in _values(corpus, "private_key"):
        if v.startswith("-----BEGIN"):
            m = re.fullmatch(r"-----BEGIN ([A-Z ]+)-----(.*)-----END \1-----", v, re.S)
            assert m and "PRIVATE KEY" in m.group(1), v[:80]
            kinds.add(m.group(1))
            for nl in ("\\\\n", "\\n", "\n"):
                if nl in m.group(2):
                    escapes.add(nl)
                    break
        else:  # base64-encoded PEM (kubeconfig client-key-data)
            decoded = base64.b64decode(v, validate=True).decode()
            assert decoded.startswith("-----BEGIN RSA PRIVATE KEY-----"), decoded[:40]
    assert {"RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"} <= kinds
    assert escapes == {"\n", "\\n", "\\\\n"}


def test_basic_auth_decodes_to_user_and_password(corpus):
    for v in _values(corpus, "basic_auth"):
        user, sep, pw = base64.b64decode(v, validate=True).decode().partition(":")
        assert sep and user and pw, v


def test_url_credentials_label_the_password_only(corpus):
    for s in corpus:
        for lab in s["labels"]:
            if lab["type"] == "url_credentials":
                before = s["text"][: lab["start"]]
                assert re.search(r"[a-z0-9+]+://[A-Za-z0-9_.-]*:$", before), before[-40:]
                assert s["text"][lab["end"]] == "@"


def test_azure_keys_are_64_bytes(corpus):
    for v in _values(corpus, "azure_storage_key"):
        assert len(base64.b64decode(v, validate=True)) == 64


# ---------------------------------------------------------------- completeness of labelling

# A strict oracle for the types that can be checked mechanically. Anything it finds outside a
# labelled span must be a documented example (benign by the labelling guide); otherwise the
# corpus has an unlabelled secret and a correct scanner would be punished for finding it.
ORACLE = {
    "email": re.compile(
        r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
    ),
    "ipv4": re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)"),
    "credit_card": re.compile(r"(?<![\w-])\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{1,4})?(?![\w-])"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
    "us_ssn": re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),
    "github_token": re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{82})\b"),
    "npm_token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    "aws_access_key_id": re.compile(r"\b(AKIA|ASIA)[A-Z2-7]{16}\b"),
    "private_key": re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:\\\\n|\\n|\n)\s*[A-Za-z0-9+/]{20}"
    ),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),
    "slack_webhook": re.compile(r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+"),
    "token_prefixes": re.compile(
        r"\b(sk_live_|rk_live_|sk_test_|rk_test_|sk-proj-|sk-svcacct-|sk-ant-|AIza|xox[abpe]|glpat-|SG\.|ctx7sk-|pypi-AgEI|SK[0-9a-f]{32})"
    ),
}
DOC_EXAMPLES = (
    {k for k, _ in cg.AWS_DOC_KEYS}
    | {cg.JWT_IO_SAMPLE, cg.STRIPE_DOC_KEY}
    | set(cg.TEST_CARDS)
    | set(cg.SAMPLE_SSNS)
)


def _oracle_hit_is_real(kind: str, m: re.Match, text: str) -> bool:
    v = m.group(0)
    if v in DOC_EXAMPLES or re.sub(r"[ -]", "", v) in DOC_EXAMPLES:
        return False
    if kind == "email" and text[: m.start()].endswith("://"):
        return False  # user part of a URL (Sentry DSN), not an address
    if kind == "email" and re.search(r"@\dx\.(png|webp|jpe?g|svg)$", v):
        return False  # retina asset names (logo@2x.png)
    if kind == "email" and v.endswith(".iam.gserviceaccount.com"):
        return False  # a Google Cloud service account is no person (README)
    if kind == "ipv4":
        if not all(int(o) <= 255 for o in m.groups()):
            return False
        if isinstance(cg.L_ipv4(v), str):
            return False  # a private address is no finding
        return not re.search(r"(Version[= ]|version |OID [\d.]*)$", text[: m.start()])
    if kind == "credit_card":
        d = re.sub(r"[ -]", "", v)
        brand_len = re.match(
            r"4\d{12}(\d{3}){0,2}$|(5[1-5]|2[2-7])\d{14}$|3[47]\d{13}$|6011\d{12,15}$|64[4-9]\d{13,16}$|(65|35)\d{14,17}$|3[068]\d{12,17}$",
            d,
        )
        return cg.luhn_ok(d) and bool(brand_len)
    if kind == "iban":
        return cg.iban_ok(v) and v.replace(" ", "") not in {
            e.replace(" ", "") for e in cg.EXAMPLE_IBANS
        }
    if kind == "us_ssn":
        return cg.ssn_ok(v)
    if kind in ("github_token", "npm_token"):
        return v.startswith("github_pat_") or cg.github_checksum_ok(v)
    if kind == "aws_access_key_id":
        return "EXAMPLE" not in v
    if kind == "token_prefixes":
        if re.match(r"[\w.-]+?(\.\.\.|\*\*\*|xxxx|your)", text[m.start() :]):
            return False  # masked or placeholder
        if v == "AIza" and not re.match(r"AIza[\w-]{35}", text[m.start() :]):
            return False
        if v.startswith("sk_test_") and text[m.start() :].startswith(cg.STRIPE_DOC_KEY):
            return False
        if v == "SG." and not re.match(r"SG\.[\w-]{22}\.", text[m.start() :]):
            return False
        if v.startswith("xox") and re.match(r"xox\w-(your|\*)", text[m.start() :]):
            return False
        if v.startswith("sk-proj-") and "*" in text[m.start() : m.start() + 20]:
            return False
        return True
    if kind == "slack_webhook":
        return "XXXXXXXX" not in v
    return True


def _mask_labels(s: dict) -> str:
    text = s["text"]
    for lab in s["labels"]:
        text = text[: lab["start"]] + "\x00" * (lab["end"] - lab["start"]) + text[lab["end"] :]
    return text


def test_every_checkable_secret_and_pii_is_labelled(corpus):
    problems = []
    for s in corpus:
        text = _mask_labels(s)
        for kind, rx in ORACLE.items():
            for m in rx.finditer(text):
                if "\x00" in m.group(0):
                    continue
                if _oracle_hit_is_real(kind, m, text):
                    problems.append((s["id"], kind, m.group(0)[:60]))
    assert not problems, problems[:40]


def test_benign_hard_negatives_are_present(corpus):
    """The benign half really contains the tricky lookalikes a scanner must ignore."""
    benign = "\n".join(s["text"] for s in corpus if s["benign"])
    for needle in (
        "AKIAIOSFODNN7EXAMPLE",
        cg.JWT_IO_SAMPLE,
        "pk_live_",
        "sha512-",
        "data:image/png;base64,",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----",
        "ssh-ed25519 AAAA",
        "${{ secrets.",
        "[REDACTED]",
        "getpass",
        "Version=8.0.0.0",
        "AIDA",
        "cus_",
        cg.AZURITE_KEY,
        "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n",
    ):
        assert needle in benign, needle
    # checksum-failing GitHub tokens and Luhn-failing card numbers
    assert any(
        not cg.github_checksum_ok(m.group(0)) for m in re.finditer(r"ghp_[A-Za-z0-9]{36}", benign)
    )
    luhn_fails = [
        m.group(0)
        for m in re.finditer(r"\b4\d{3} \d{4} \d{4} \d{4}\b", benign)
        if not cg.luhn_ok(m.group(0))
    ]
    assert len(luhn_fails) >= 3


def test_cli_writes_jsonl(tmp_path):
    out = tmp_path / "corpus.jsonl"
    assert cg.main(["corpus_gen.py", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert len(lines) == len(cg.generate())
    first = orjson.loads(lines[0])
    assert {"id", "text", "labels", "benign"} == set(first)


def test_crc_helper_is_binascii_compatible():
    assert zlib.crc32(b"abc") == binascii.crc32(b"abc")
