"""A phone label the confirmation pattern knows must reach the confirmation: the rule's
Hyperscan prefilters have to match wherever its pattern does (else the label is a silent miss).

Checked against an engine whose rules' prefilters match every byte (so every rule confirms on
the whole text; the phone rules only, the others as shipped): what it finds and the shipped engine does not is a prefilter's hole. The holes
this found: capital accented labels (TELÉFONO, MÓVIL, KOMÓRKA: Hyperscan folds the case of ASCII
only), labels the pattern reads before a bare space that the prefilter did not list
(Numer telefonu 601 284 567, Rufnummer …, Cel …), a suffix before "is" (phone number is …), a
no-break space after the label, and Hinglish "mera naya number …"."""

import json

import pytest
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.rules import load_rules

LABELS = (
    "phone tel telephone mobile mob cell cel fax whatsapp sms telefon telefonu telefono "
    "teléfono téléphone tél handy mobil móvil movil celular cellulare telemóvel gsm portable "
    "telefoon telefoonnummer mobiel komórka komorka rufnummer telefonnummer mobilnummer "
    "handynummer"
).split()
SUFFIXES = ("", " no", " number", "-nr", ". no.")
SEPARATORS = (": ", " ", " : ", "=", " is ", " es ", "\u00a0", ":\u00a0", '": "')


@pytest.fixture(scope="module")
def engines():
    rules = load_rules()
    for r in rules.rules:
        if r.spec.prefilter and r.type == "phone_number":
            r.spec.__dict__["prefilter"] = [r"[\x00-\xff]"]
    return Engine.load(), Engine(rules)


def _found(engine, text):
    return sorted((d.type, d.value) for d in engine.scan_text(text))


def _holes(engines, texts):
    real, oracle = engines
    holes = []
    for t in texts:
        for text in (t, json.dumps({"text": t}, ensure_ascii=False)):
            want = _found(oracle, text)
            if _found(real, text) != want:
                holes.append((text, want))
    return holes


def test_the_oracle_finds_what_a_prefilter_would_hide(engines):
    # (the check can fail: the oracle confirms on text no prefilter of the rule matches)
    real, oracle = engines
    rules = load_rules()
    for r in rules.rules:
        if r.id == "phone-number":
            r.spec.__dict__["prefilter"] = ["zzzz-never"]
    blind = Engine(rules)
    text = "Phone: 612 345 678"
    assert _found(oracle, text) == [("phone_number", "612 345 678")]
    assert _found(blind, text) == []


@pytest.mark.parametrize("case", ["lower", "title", "upper"])
def test_every_phone_label_reaches_its_pattern(engines, case):
    texts = []
    for label in LABELS:
        label = getattr(label, case if case != "title" else "capitalize")()
        for k, suffix in enumerate(SUFFIXES):
            for sep in SEPARATORS:
                if label.lower() == "portable" and not sep.strip(" \u00a0"):
                    continue  # (left out on purpose: see the next test)
                texts.append(f"{label}{suffix}{sep}{('612 345 678', '+34 612 345 678')[k % 2]}")
    assert _holes(engines, texts) == []


def test_an_english_adjective_before_a_bare_space_is_no_label(engines):
    # the French label reaches its pattern with a colon, not the English adjective before
    # a resolution ("Portable : 06 12 34 56 78" is found)
    assert _found(engines[0], "Portable 1920 1080 display") == []
    assert _found(engines[0], "Portable : 06 12 34 56 78") == [("phone_number", "06 12 34 56 78")]


def test_table_columns_in_capitals(engines):
    texts = [
        "nombre,TELÉFONO\nAna,612 345 678\n",
        "TELÉFONO,NOMBRE\n612 345 678,Ana\n",
        "nombre;MÓVIL\nAna;612 345 678\n",
        "imię;KOMÓRKA\nOla;601 284 567\n",
        "nom,TÉLÉPHONE\nLéa,06 12 34 56 78\n",
    ]
    holes = _holes(engines, texts)
    assert holes == []
    assert all(_found(engines[0], t) for t in texts)


def test_hinglish_labels(engines):
    texts = [
        "mera naya number 98765 43210",
        "mera naya number: 98765 43210",
        "aapka whatsapp number 98765 43210",
    ]
    assert _holes(engines, texts) == []
    assert all(_found(engines[0], t) for t in texts)


# -- a password or API key named in another language (generic-secret-multilingual) ---------
SECRET_NAMES = (
    "passwort|kennwort|mot de passe|mot_de_passe|mdp|contraseña|clave|clave de acceso|"
    "wachtwoord|senha|hasło|haslo|lösenord|salasana|adgangskode|passord|heslo|parola|jelszó|"
    "κωδικός πρόσβασης|пароль|api-schlüssel|clé api|clave api|chiave api|api-sleutel|"
    "chave de api|klucz api|şifre|khóa api|clé wifi|wlan-schlüssel|netzwerkschlüssel|mật khẩu"
).split("|")


@pytest.fixture(scope="module")
def secret_engines():
    rules = load_rules()
    for r in rules.rules:
        if r.id == "generic-secret-multilingual":
            r.spec.__dict__["prefilter"] = [r"[\x00-\xff]"]
    return Engine.load(), Engine(rules)


@pytest.mark.parametrize("case", ["lower", "title", "upper"])
def test_every_secret_name_reaches_its_pattern(secret_engines, case):
    # (Пароль: the first letter's capital is another byte sequence, and Hyperscan folds ASCII
    # only: the capitalized Russian word, the usual one, was silent; HASŁO, CLÉ API too)
    texts = []
    for name in SECRET_NAMES:
        name = name[:1].upper() + name[1:] if case == "title" else getattr(name, case)()
        for sep in (": ", " = ", "\uff1a", '": "'):
            texts.append(f"{name}{sep}Xk9#mQ2pL7vR")
    assert _holes(secret_engines, texts) == []
    real = secret_engines[0]
    assert _found(real, "Пароль: Xk9#mQ2pL7vR") == [("generic_secret", "Xk9#mQ2pL7vR")]
