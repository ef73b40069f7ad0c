"""byoklib.mock.doctor: each mistake a learner makes, made the way they make it, is named;
a request that proves nothing gets no diagnosis (the doctor is no decryption oracle)."""
import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib.mock import keypairs
from byoklib.mock.doctor import SENTENCES, Attempt, TokenSecrets, diagnose

# token-key-1, -2, ... (tests/mock/test_keypairs.py checks them)
_PACKAGED = keypairs.test_only_key_pairs()
KEYS = [_PACKAGED(), _PACKAGED()]
MATERIAL = bytes(range(32))           # TEST-ONLY fixed material
NONCE = bytes(range(200, 212))
OLD_NONCE = bytes(range(100, 112))
IV = bytes(range(12))
CURRENT = TokenSecrets(KEYS[0], NONCE)
PREVIOUS = TokenSecrets(KEYS[1], OLD_NONCE)

OAEP_SHA256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


def wrap(material, key=KEYS[0], pad=OAEP_SHA256):
    return key.public_key().encrypt(material, pad)


def seal(material=MATERIAL, nonce=NONCE, iv=IV, aad=None):
    return AESGCM(material).encrypt(iv, nonce, aad)


def attempt(payload=None, encrypted_nonce=None, iv=IV, iv_text=None):
    return Attempt(wrap(MATERIAL) if payload is None else payload,
                   seal() if encrypted_nonce is None else encrypted_nonce, iv,
                   base64.b64encode(iv).decode() if iv_text is None else iv_text)


def code(an_attempt, previous=PREVIOUS):
    found = diagnose(an_attempt, CURRENT, previous)
    return None if found is None else found.code


def test_a_correct_import_has_nothing_to_diagnose():
    assert code(attempt()) is None


@pytest.mark.parametrize("name, pad", [
    ("OAEP_SHA1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
    ("OAEP_MGF1_SHA1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None)),
    ("PKCS1_V15", padding.PKCS1v15()),
])
def test_the_wrong_padding_is_named(name, pad):
    assert code(attempt(payload=wrap(MATERIAL, pad=pad))) == name


@pytest.mark.parametrize("text", [base64.b64encode(MATERIAL), MATERIAL.hex().encode(),
                                  MATERIAL[:16] + b"\n", base64.b64encode(MATERIAL) + b"\n"],
                         ids=["base64", "hex", "newline", "base64-newline"])
def test_material_as_text_is_named(text):
    material = MATERIAL[:16] if text.endswith(b"\n") and len(text) == 17 else MATERIAL
    an_attempt = attempt(payload=wrap(text), encrypted_nonce=seal(material))
    assert code(an_attempt) == "MATERIAL_NOT_RAW"


def test_the_nonce_text_sealed_is_named():
    sealed = seal(nonce=base64.b64encode(NONCE))
    assert code(attempt(encrypted_nonce=sealed)) == "NONCE_AS_TEXT"


def test_a_replaced_tokens_nonce_is_named():
    assert code(attempt(encrypted_nonce=seal(nonce=OLD_NONCE))) == "NONCE_FROM_OLD_TOKEN"
    assert code(attempt(encrypted_nonce=seal(nonce=OLD_NONCE)), previous=None) is None


def test_a_payload_for_a_replaced_token_is_named():
    assert code(attempt(payload=wrap(MATERIAL, key=KEYS[1]))) == "PAYLOAD_FOR_OLD_TOKEN"
    both_old = attempt(payload=wrap(MATERIAL, key=KEYS[1]), encrypted_nonce=seal(nonce=OLD_NONCE))
    assert code(both_old) == "PAYLOAD_FOR_OLD_TOKEN"
    assert code(attempt(payload=wrap(MATERIAL, key=KEYS[1])), previous=None) is None


def test_a_missing_tag_is_named():
    assert code(attempt(encrypted_nonce=seal()[:12])) == "TAG_MISSING"


def test_a_raw_iv_string_is_named():
    iv_text = "puQrzDX7gU1T"   # 12 characters used as the IV itself, as Go's EncryptNonce does
    sealed = seal(iv=iv_text.encode())
    an_attempt = attempt(encrypted_nonce=sealed, iv=base64.b64decode(iv_text), iv_text=iv_text)
    assert code(an_attempt) == "IV_NOT_BASE64"


def test_a_cbc_sealed_nonce_is_named():
    iv = os.urandom(16)
    padder = symmetric_padding.PKCS7(128).padder()
    padded = padder.update(NONCE) + padder.finalize()
    encryptor = Cipher(algorithms.AES(MATERIAL), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padded) + encryptor.finalize()
    assert code(attempt(encrypted_nonce=sealed, iv=iv)) == "NONCE_CBC"


def test_aad_is_named():
    assert code(attempt(encrypted_nonce=seal(aad=b"my-root-key"))) == "NONCE_WITH_AAD"


def test_a_nonce_sealed_under_other_material_is_named():
    assert code(attempt(encrypted_nonce=seal(material=os.urandom(32)))) == "NONCE_OTHER_KEY"


def test_nonce_other_key_is_named_only_beside_incorrect_nonce_iv_err():
    """Its only proof is that the payload opened: that is what INCORRECT_NONCE_IV_ERR says,
    and what an IV of the wrong size (refused before any RSA) does not."""
    short_iv = attempt(encrypted_nonce=seal(material=os.urandom(32)), iv=IV[:11])
    assert diagnose(short_iv, CURRENT, PREVIOUS, "INVALID_FIELD_ERR") is None
    assert diagnose(short_iv, CURRENT, PREVIOUS, "INCORRECT_NONCE_IV_ERR").code == \
        "NONCE_OTHER_KEY"


def test_without_implicit_rejection_pkcs1_v15_is_not_tried(monkeypatch):
    """An OpenSSL before 3.2 tells a bad v1.5 block apart (Bleichenbacher's oracle)."""
    from byoklib.mock import doctor
    tried = []
    real_unwrap = doctor._unwrap
    monkeypatch.setattr(doctor, "_unwrap", lambda payload, key, reading: (
        tried.append(reading), real_unwrap(payload, key, reading))[1])
    monkeypatch.setattr(doctor, "V15_READING", False)
    assert code(attempt(payload=wrap(MATERIAL, pad=padding.PKCS1v15()))) is None
    assert "PKCS1_V15" not in tried and "OAEP_SHA1" in tried


@pytest.mark.parametrize("payload", [os.urandom(512), os.urandom(256), b""],
                         ids=["random-512", "random-256", "empty"])
def test_a_payload_that_proves_nothing_gets_no_diagnosis(payload):
    assert code(attempt(payload=payload)) is None


def test_a_wrong_padding_without_proof_gets_no_diagnosis():
    """Decrypting under another padding is not enough: the nonce must open under the result,
    so a forged or someone else's payload learns nothing beyond the plain answer."""
    payload = wrap(MATERIAL, pad=padding.PKCS1v15())
    assert code(attempt(payload=payload, encrypted_nonce=seal(material=os.urandom(32)))) is None
    text = wrap(base64.b64encode(MATERIAL))
    assert code(attempt(payload=text, encrypted_nonce=seal(material=os.urandom(32)))) is None


def test_a_diagnosis_names_code_and_sentence_and_never_a_secret():
    found = diagnose(attempt(encrypted_nonce=seal(nonce=base64.b64encode(NONCE))), CURRENT)
    assert str(found) == f"NONCE_AS_TEXT: {SENTENCES['NONCE_AS_TEXT']}"
    for secret in (MATERIAL, NONCE):
        for form in (secret.hex(), base64.b64encode(secret).decode()):
            assert form not in str(found)
    assert "redacted" in repr(CURRENT) and "bytes" in repr(attempt())


def test_every_code_has_a_sentence_of_its_own():
    assert len(set(SENTENCES.values())) == len(SENTENCES) == 12
