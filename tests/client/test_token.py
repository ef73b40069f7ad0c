"""The client's half of the protocol: parsing a retrieved token and preparing an import.

Round trips decrypt with the TEST-ONLY private keys in byoklib/data/test-only, so these tests
check the bytes a service would receive, not just that something came out.
"""
import base64
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from byoklib import data_path, primitives
from byoklib.client.token import ImportToken, prepare_secure_import
from byoklib.protocol import parse_rfc3339

NONCE = bytes(range(100, 112))


@pytest.fixture(scope="module")
def private_key():
    return primitives.load_private_key(data_path("test-only", "token-key-1.pem").read_bytes())


@pytest.fixture(scope="module")
def other_private_key():
    return primitives.load_private_key(data_path("test-only", "token-key-2.pem").read_bytes())


def token_body(public_key, raw_nonce=NONCE, **overrides):
    """A GET /import_token body shaped like the documented examples."""
    body = {
        "creationDate": "2026-11-28T12:00:00Z",
        "expirationDate": "2026-11-28T12:10:00Z",
        "maxAllowedRetrievals": 1,
        "remainingRetrievals": 0,
        "payload": primitives.token_payload_from_public_key(public_key),
        "nonce": base64.b64encode(raw_nonce).decode(),
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def token(private_key):
    return ImportToken.from_response(token_body(private_key.public_key()))


# --- parsing -------------------------------------------------------------------------

def test_from_response_parses_every_field(token, private_key):
    assert token.creation_date == datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    assert token.expiration_date - token.creation_date == timedelta(minutes=10)
    assert (token.max_allowed_retrievals, token.remaining_retrievals) == (1, 0)
    assert token.nonce == NONCE
    assert token.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert token.key_size == 4096
    assert token.fingerprint == primitives.public_key_fingerprint(private_key)


def test_a_parsed_token_cannot_be_changed(token):
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.nonce = bytes(12)


def test_documented_payload_prefix_decodes_to_pkix_pem(token):
    # The CLI docs show payloads starting LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0t: our test body
    # must look like that, or the parsing tests would prove nothing about the real service.
    payload = primitives.token_payload_from_public_key(token.public_key)
    assert payload.startswith("LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0t")


def test_repr_shows_sizes_not_bytes(token):
    text = repr(token)
    assert "nonce=12 bytes" in text and "RSA-4096" in text and token.fingerprint[:16] in text
    for secret in (NONCE.hex(), base64.b64encode(NONCE).decode(), str(NONCE)):
        assert secret not in text
    assert "BEGIN" not in text


def test_dates_with_offsets_and_fractions():
    assert parse_rfc3339("2019-04-08T16:58:29.123+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339("2019-04-08T16:58:29")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("yesterday")


@pytest.mark.parametrize("text, expected", [
    ("2030-01-31T12:00:00Z", datetime(2030, 1, 31, 12, tzinfo=timezone.utc)),
    ("2030-01-31t12:00:00z", datetime(2030, 1, 31, 12, tzinfo=timezone.utc)),
    ("2030-01-31T12:00:00.5Z", datetime(2030, 1, 31, 12, 0, 0, 500000, tzinfo=timezone.utc)),
    ("2030-01-31T12:00:00.1234567-05:30",
     datetime(2030, 1, 31, 12, 0, 0, 123456, tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
])
def test_rfc3339_date_times_parse(text, expected):
    parsed = parse_rfc3339(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", [
    "20300101T000000Z",             # ISO 8601 basic format
    "2030-W01-1T00:00:00Z",         # ISO week date
    "2030-01-01 00:00:00+00:00",    # a space for the T
    "2030-01-01T00:00:00+0000",     # offset without its colon
    "2030-01-01T00:00Z",            # no seconds
    "2030-01-01",                   # a date alone
    "２０３０-01-01T00:00:00Z",      # non-ASCII digits
    "2030-13-01T00:00:00Z", "2030-02-30T00:00:00Z", "2030-01-01T24:00:00Z",
    "2030-01-01T00:00:00+24:00",
])
def test_other_iso_8601_forms_are_not_rfc3339(text):
    with pytest.raises(ValueError, match="expirationDate"):
        parse_rfc3339(text, "expirationDate")


def test_is_expired_at_the_boundary(token):
    assert not token.is_expired(token.expiration_date - timedelta(seconds=1))
    assert token.is_expired(token.expiration_date)
    with pytest.raises(ValueError):
        token.is_expired(datetime(2026, 11, 28, 12, 5))  # naive


def pkcs1_payload(key):
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.PKCS1)
    assert pem.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    return base64.b64encode(pem).decode()


def der_payload(key):
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("field, make, match", [
    ("payload", pkcs1_payload, "PKCS#1"),
    ("payload", der_payload, "BEGIN PUBLIC KEY"),
    ("payload", lambda k: "not*base64!", "base64"),
    ("payload", lambda k: base64.b64encode(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").decode(), "RSA public key"),
    ("nonce", lambda k: base64.b64encode(bytes(11)).decode(), "12 bytes, got 11"),
    ("nonce", lambda k: base64.b64encode(bytes(13)).decode(), "12 bytes, got 13"),
    ("nonce", lambda k: "MTIzNDU2Nzg5MDEy=", "base64"),
    ("expirationDate", lambda k: "2026-11-28 12:10", "not an RFC 3339 date-time"),
    ("remainingRetrievals", lambda k: "one", "whole number"),
])
def test_from_response_refuses_malformed_tokens(private_key, field, make, match):
    body = token_body(private_key.public_key(), **{field: make(private_key)})
    with pytest.raises(ValueError, match=match):
        ImportToken.from_response(body)


def test_from_response_explains_a_post_body(private_key):
    body = token_body(private_key.public_key())
    del body["payload"], body["nonce"]
    with pytest.raises(ValueError, match="missing payload, nonce"):
        ImportToken.from_response(body)


def test_retrieval_counts_are_optional(private_key):
    body = token_body(private_key.public_key())
    del body["maxAllowedRetrievals"], body["remainingRetrievals"]
    token = ImportToken.from_response(body)
    assert (token.max_allowed_retrievals, token.remaining_retrievals) == (None, None)


def test_from_response_refuses_non_objects():
    with pytest.raises(ValueError, match="JSON object"):
        ImportToken.from_response([])


def test_ec_key_payload_is_refused():
    from cryptography.hazmat.primitives.asymmetric import ec
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = {"creationDate": "2026-11-28T12:00:00Z", "expirationDate": "2026-11-28T12:10:00Z",
            "payload": base64.b64encode(pem).decode(),
            "nonce": base64.b64encode(NONCE).decode()}
    with pytest.raises(ValueError, match="RSA"):
        ImportToken.from_response(body)


# --- preparing the import --------------------------------------------------------------

@pytest.mark.parametrize("size", [16, 24, 32])
def test_round_trip_opens_with_the_token_private_key(token, private_key, size):
    material = primitives.generate_key_material(size * 8)
    fields = prepare_secure_import(material, token)
    assert set(fields) == {"payload", "encryptedNonce", "iv", "encryptionAlgorithm"}
    assert fields["encryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    wrapped = primitives.b64decode(fields["payload"])
    assert len(wrapped) == 512
    opened = primitives.unwrap_key_material(wrapped, private_key)
    assert opened == material
    sealed, iv = primitives.b64decode(fields["encryptedNonce"]), primitives.b64decode(fields["iv"])
    assert (len(sealed), len(iv)) == (12 + 16, 12)
    assert primitives.decrypt_nonce(opened, sealed, iv) == token.nonce


def test_another_private_key_cannot_open_it(token, other_private_key):
    fields = prepare_secure_import(bytes(32), token)
    with pytest.raises(primitives.UnwrapError):
        primitives.unwrap_key_material(primitives.b64decode(fields["payload"]), other_private_key)


def test_given_iv_is_used_and_random_iv_differs(token):
    iv = bytes(12)
    fixed = prepare_secure_import(bytes(16), token, iv=iv)
    assert primitives.b64decode(fixed["iv"]) == iv
    # Same material and IV give the same sealed nonce (GCM is deterministic given the IV)...
    assert prepare_secure_import(bytes(16), token, iv=iv)["encryptedNonce"] == fixed["encryptedNonce"]
    # ...while OAEP is randomised, and a fresh IV is drawn when none is given.
    assert prepare_secure_import(bytes(16), token, iv=iv)["payload"] != fixed["payload"]
    assert prepare_secure_import(bytes(16), token)["iv"] != prepare_secure_import(bytes(16), token)["iv"]


def test_accepts_the_raw_get_body(private_key):
    body = token_body(private_key.public_key())
    fields = prepare_secure_import(bytes(24), body)
    assert primitives.unwrap_key_material(primitives.b64decode(fields["payload"]), private_key) == bytes(24)


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33, 64])
def test_refuses_wrong_material_sizes(token, size):
    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        prepare_secure_import(bytes(size), token)


def test_refuses_text_material(token):
    with pytest.raises(TypeError):
        prepare_secure_import("0" * 32, token)


@pytest.mark.parametrize("material", [32, [0] * 32])
def test_refuses_material_that_bytes_would_make_up(token, material):
    # bytes(32) is 32 zero bytes: an int taken as material would import an all-zero key
    with pytest.raises(TypeError, match="key material must be bytes"):
        prepare_secure_import(material, token)


@pytest.mark.parametrize("size", [0, 11, 13, 16])
def test_refuses_wrong_iv_sizes(token, size):
    with pytest.raises(ValueError, match="iv must be 12 bytes"):
        prepare_secure_import(bytes(32), token, iv=bytes(size))


def test_refuses_a_2048_bit_token_key():
    small = primitives.generate_rsa_private_key(2048)
    token = ImportToken.from_response(token_body(small.public_key()))
    assert token.key_size == 2048  # parsing accepts it; the protocol layer refuses to use it
    with pytest.raises(ValueError, match="RSA-2048"):
        prepare_secure_import(bytes(32), token)


def test_error_messages_never_carry_material(token):
    material = bytes(range(200, 217))  # 17 bytes: refused
    with pytest.raises(ValueError) as info:
        prepare_secure_import(material, token)
    assert material.hex() not in str(info.value)
    assert base64.b64encode(material).decode() not in str(info.value)
