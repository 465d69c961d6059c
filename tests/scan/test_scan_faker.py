"""Personal data as test-data generators write it: Faker, seeded, in thirty locales.

An evaluation set of personal data is most often made with Faker, and so are the fixtures that
stand for customers in the traffic a gateway sees. Each value goes into the shapes a tool
result carries it in (after a label, as a JSON member, in a sentence) and must be reported with
its type; Faker's values that are no personal data (codes, ids, dates, amounts) must not be.
The thresholds leave room for a Faker release's new formats, not for a locale going missing."""

import json
import random
from collections import Counter

import faker  # (a test dependency: a missing one must fail, not skip, this file)
import pytest
from mcp_gateway.scan.engine import Engine

LOCALES = (
    "en_US en_GB de_DE fr_FR es_ES it_IT nl_NL pt_BR pl_PL sv_SE en_AU en_IN ja_JP en_CA de_AT "
    "fr_CH es_MX tr_TR ko_KR zh_CN da_DK no_NO fi_FI cs_CZ ru_RU pt_PT en_IE nl_BE ro_RO hu_HU"
).split()


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


def _found(engine, text: str, kind: str, value: str) -> bool:
    want = value.replace(" ", "")
    for d in engine.scan_text(text):
        got = d.value.replace(" ", "")
        if d.type == kind and (got in want or want in got):
            return True
    return False


def _phone_shapes(f, number: str) -> list[str]:
    return [
        f"Phone: {number}",
        f"Call me at {number}.",
        json.dumps({"name": f.name(), "phone": number}, ensure_ascii=False),
    ]


def test_faker_phone_numbers_in_every_locale(engine):
    missed: dict[str, list[str]] = {}
    total = found = 0
    for loc in LOCALES:
        f = faker.Faker(loc)
        f.seed_instance(29)
        for _ in range(12):
            number = f.phone_number()
            for text in _phone_shapes(f, number):
                total += 1
                if _found(engine, text, "phone_number", number):
                    found += 1
                else:
                    missed.setdefault(loc, []).append(text)
    # (every locale: Ofcom's drama ranges are all the UK numbers Faker writes)
    for loc, texts in missed.items():
        assert len(texts) <= 4, (loc, texts)
    assert found / total >= 0.98, missed


@pytest.mark.parametrize(
    ("kind", "make", "shape"),
    [
        ("email", lambda f: f.email(), "Contact: {}"),
        ("email", lambda f: f.free_email(), '{{"email": "{}"}}'),
        ("iban", lambda f: f.iban(), "IBAN: {}"),
        ("credit_card", lambda f: f.credit_card_number(), "Card: {} exp 12/29"),
        ("us_ssn", lambda f: f.ssn(), "SSN: {}"),
        ("ipv4", lambda f: f.ipv4_public(), "client {} connected"),
    ],
)
def test_faker_personal_data(engine, kind, make, shape):
    missed = []
    n = 0
    locales = ("en_US",) if kind in ("us_ssn", "credit_card", "ipv4") else LOCALES[:12]
    for loc in locales:
        f = faker.Faker(loc)
        f.seed_instance(7)
        for _ in range(120 // len(locales) + 1):
            try:
                value = make(f)
            except AttributeError:  # (a locale without this provider)
                break
            n += 1
            if not _found(engine, shape.format(value), kind, value):
                missed.append(value)
    assert n >= 100
    assert not missed, missed


NOT_PERSONAL = (
    "postcode date date_time company catch_phrase ean13 ean8 isbn13 isbn10 uuid4 sha1 md5 "
    "sha256 license_plate bban swift aba pricetag credit_card_security_code credit_card_expire "
    "job building_number random_number"
).split()


def test_faker_values_that_are_no_personal_data(engine):
    rnd = random.Random(3)
    alarms: Counter[str] = Counter()
    seen = []
    n = 0
    for loc in LOCALES[:20]:
        f = faker.Faker(loc)
        f.seed_instance(11)
        for gen in NOT_PERSONAL:
            for _ in range(3):
                try:
                    value = str(getattr(f, gen)())
                except AttributeError:
                    continue
                text = rnd.choice([f"{gen}: {value}", json.dumps({gen: value}), f"ref {value} ok"])
                n += 1
                dets = engine.scan_text(text)
                if dets:
                    alarms[gen] += 1
                    seen.append((text, [(d.type, d.value) for d in dets]))
    assert n >= 1000
    assert sum(alarms.values()) <= n // 200, seen
