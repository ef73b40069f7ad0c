"""The client against the mock over real HTTP on 127.0.0.1: the whole BYOK flow, the key
lifecycle, and the protocol's failures arriving as KeyProtectError with the documented code.

The server hands out the TEST-ONLY key pairs in byoklib/data/test-only instead of generating
RSA-4096 keys, and time rules are exercised by moving the server's clock, never by sleeping.
Each test gets its own instance id, so tests share the server but not tokens or keys.
"""
import dataclasses
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from byoklib import KeyProtectError, data_path, primitives
from byoklib.client import KeyProtectClient, byok_import
from byoklib.client.token import prepare_secure_import
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import ManualClock
from byoklib.protocol import parse_rfc3339

TEST_PUBLIC_KEYS = [data_path("test-only", f"token-key-{n}.pub.pem") for n in (1, 2, 3)]
TEST_FINGERPRINTS = {primitives.public_key_fingerprint(p.read_bytes()) for p in TEST_PUBLIC_KEYS}


@pytest.fixture(scope="module")
def server(token_key_pairs):
    # token_key_pairs (conftest): the TEST-ONLY keys, parsed once per session.
    # A frozen clock: only `server.clock.advance` moves time, so no test depends on how
    # fast the machine is.
    clock = ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc))
    with running_server(clock=clock, key_pair_source=fixed_key_pairs(token_key_pairs)) as running:
        yield running


@pytest.fixture
def client(server):
    with KeyProtectClient(server.url, f"instance-{uuid.uuid4()}", "test-token") as c:
        yield c


def status_of(client):
    return client.last_response.status_code


def raises_code(code, status=None):
    """Context manager: the block raises KeyProtectError with this reason code (and status)."""
    class Check:
        def __enter__(self):
            self.info = pytest.raises(KeyProtectError)
            self.ctx = self.info.__enter__()
            return self.ctx

        def __exit__(self, *exc):
            handled = self.info.__exit__(*exc)
            err = self.ctx.value
            assert err.code == code, f"expected {code}, got {err!r}"
            if status is not None:
                assert err.status == status, f"expected HTTP {status}, got {err!r}"
            return handled
    return Check()


def imported_key(client, material=None, **options):
    client.create_import_token(**options)
    return byok_import(client, material or primitives.generate_key_material(), "byok-key")


# --- import tokens ----------------------------------------------------------------------------

def test_create_import_token(client):
    meta = client.create_import_token(expiration=1200, max_allowed_retrievals=3)
    assert status_of(client) == 200
    assert (meta["maxAllowedRetrievals"], meta["remainingRetrievals"]) == (3, 3)
    assert "payload" not in meta and "nonce" not in meta  # only GET carries them
    lifetime = parse_rfc3339(meta["expirationDate"]) - parse_rfc3339(meta["creationDate"])
    assert lifetime.total_seconds() == 1200


def test_get_import_token_counts_retrievals_and_keeps_the_nonce(client):
    client.create_import_token(max_allowed_retrievals=2)
    first, second = client.get_import_token(), client.get_import_token()
    assert (first.remaining_retrievals, second.remaining_retrievals) == (1, 0)
    assert first.nonce == second.nonce and len(first.nonce) == 12
    assert first.key_size == 4096 and first.fingerprint in TEST_FINGERPRINTS
    with raises_code("IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR", 409):
        client.get_import_token()


def test_no_token_is_a_404(client):
    with pytest.raises(KeyProtectError) as info:
        client.get_import_token()
    assert info.value.status == 404


def test_raw_token_payload_is_base64_of_a_pkix_pem(client):
    client.create_import_token()
    raw = client.get_import_token_raw()
    assert primitives.b64decode(raw["payload"]).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(primitives.b64decode(raw["nonce"])) == 12


# --- the whole flow ---------------------------------------------------------------------------

def test_byok_import_then_read_list_and_count(client):
    material = primitives.generate_key_material(256)
    client.create_import_token()
    key = byok_import(client, material, "my-byok-key", description="imported with a token")
    assert status_of(client) == 201
    assert (key["imported"], key["extractable"], key["state"]) == (True, False, 1)
    assert key["crn"].endswith(":key:" + key["id"])
    full = client.get_key(key["id"])
    assert full["name"] == "my-byok-key" and "payload" not in full
    meta = client.get_key_metadata(key["id"])
    assert meta["id"] == key["id"] and "payload" not in meta
    assert [k["id"] for k in client.list_keys()] == [key["id"]]
    other = client.create_root_key("generated")
    assert [k["id"] for k in client.list_keys(search="byok")] == [key["id"]]
    assert [k["id"] for k in client.list_keys(sort="-imported")] == [key["id"], other["id"]]
    client.delete_key(other["id"])
    assert client.key_total() == 1
    assert status_of(client) == 200


def test_a_token_imports_several_keys_until_it_expires(client):
    client.create_import_token(max_allowed_retrievals=1)
    token = client.get_import_token()  # the only retrieval
    for n in range(3):
        byok_import(client, primitives.generate_key_material(128 + 64 * n), f"key-{n}", token=token)
    assert client.key_total() == 3


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_wrap_unwrap_with_and_without_aad(client, bits):
    key = imported_key(client, primitives.generate_key_material(bits))
    generated = client.wrap(key["id"])
    assert len(generated["plaintext"]) == 32 and generated["keyVersion"]["id"]
    assert client.unwrap(key["id"], generated["ciphertext"])["plaintext"] == generated["plaintext"]

    dek, aad = b"my data encryption key 18", ["tenant=a", "purpose=test"]
    wrapped = client.wrap(key["id"], dek, aad=aad)
    assert "plaintext" not in wrapped
    assert client.unwrap(key["id"], wrapped["ciphertext"], aad=aad)["plaintext"] == dek
    with pytest.raises(KeyProtectError) as info:
        client.unwrap(key["id"], wrapped["ciphertext"], aad=["tenant=b", "purpose=test"])
    assert 400 <= info.value.status < 500
    with pytest.raises(KeyProtectError):
        client.unwrap(key["id"], wrapped["ciphertext"])  # AAD omitted


def test_same_material_unwraps_in_another_instance(server, client):
    # The documented property that proves the imported material is what wraps DEKs.
    material = primitives.generate_key_material()
    first = imported_key(client, material)
    wrapped = client.wrap(first["id"], b"sixteen byte dek")
    with KeyProtectClient(server.url, f"other-{uuid.uuid4()}", "t") as other:
        second = imported_key(other, material)
        assert other.unwrap(second["id"], wrapped["ciphertext"])["plaintext"] == b"sixteen byte dek"


def test_other_material_cannot_unwrap(server, client):
    wrapped = client.wrap(imported_key(client)["id"], b"sixteen byte dek")
    with KeyProtectClient(server.url, f"other-{uuid.uuid4()}", "t") as other:
        stranger = imported_key(other)
        with raises_code("UNPROCESSABLE_CIPHERTEXT_ERR", 422):
            other.unwrap(stranger["id"], wrapped["ciphertext"])


def test_rotate_with_material_token_then_plain(server, client):
    key = imported_key(client)
    old = client.wrap(key["id"], b"dek wrapped before rotation")
    client.create_import_token()
    assert client.rotate_with_material(key["id"], primitives.generate_key_material()) is None
    assert status_of(client) == 204
    versions = client.list_key_versions(key["id"])
    assert len(versions) == 2 and versions[0]["id"] != versions[1]["id"]
    assert client.get_key(key["id"])["keyVersion"]["id"] == versions[0]["id"]

    opened = client.unwrap(key["id"], old["ciphertext"])
    assert opened["plaintext"] == b"dek wrapped before rotation"
    assert opened["rewrappedKeyVersion"]["id"] == versions[0]["id"]
    assert client.unwrap(key["id"], opened["ciphertext"])["plaintext"] == opened["plaintext"]
    rewrapped = client.rewrap(key["id"], old["ciphertext"])
    reopened = client.unwrap(key["id"], rewrapped["ciphertext"])
    assert reopened["plaintext"] == b"dek wrapped before rotation"
    assert reopened["keyVersion"]["id"] == versions[0]["id"]
    assert "rewrappedKeyVersion" not in reopened  # already under the newest version

    with raises_code("KEY_ROTATION_NOT_PERMITTED", 409):
        client.rotate_with_material(key["id"], primitives.generate_key_material(), use_token=False)
    server.clock.advance(minutes=61)
    client.rotate_with_material(key["id"], primitives.generate_key_material(), use_token=False)
    assert len(client.list_key_versions(key["id"])) == 3


def test_rotate_with_a_token_retrieved_earlier(server, client):
    key = imported_key(client)
    client.create_import_token(max_allowed_retrievals=1)
    token = client.get_import_token()  # retrievals now used up; the token still imports
    client.rotate_with_material(key["id"], primitives.generate_key_material(192), token=token)
    assert len(client.list_key_versions(key["id"])) == 2
    assert client.get_key(key["id"])["algorithmBitSize"] == 192  # the new material's size


def test_expiration_date_from_an_aware_datetime(server, client):
    expires = server.clock.now() + timedelta(days=30)
    client.create_import_token()
    key = byok_import(client, primitives.generate_key_material(), "expiring",
                      expiration_date=expires.astimezone(timezone(timedelta(hours=2))))
    stored = parse_rfc3339(client.get_key(key["id"])["expirationDate"])
    assert abs((stored - expires).total_seconds()) < 1


def test_imported_key_needs_material_to_rotate(client):
    key = imported_key(client)
    with raises_code("KEY_PAYLOAD_REQ_ERR", 400) as info:
        client.rotate(key["id"])
    assert info.value.target == ("field", "payload")


def test_generated_root_key_rotates_without_material(client):
    key = client.create_root_key("generated", prefer="representation")
    assert key["imported"] is False
    client.rotate(key["id"])
    assert status_of(client) == 204
    with raises_code("INVALID_QUERY_PARAM_ERR", 400):
        client.rotate(key["id"], payload=primitives.generate_key_material())


def test_disable_enable(server, client):
    key = imported_key(client)
    client.disable_key(key["id"])
    assert status_of(client) == 204
    assert client.get_key(key["id"])["state"] == 2
    with raises_code("KEY_ACTION_INVALID_STATE_ERR", 409):
        client.wrap(key["id"])
    with raises_code("REQ_TOO_EARLY_ERR", 409):
        client.enable_key(key["id"])
    server.clock.advance(seconds=31)
    client.enable_key(key["id"])
    assert client.get_key(key["id"])["state"] == 1
    assert client.wrap(key["id"])["ciphertext"]


def test_delete_and_restore(server, client):
    key = imported_key(client)
    deleted = client.delete_key(key["id"], prefer="return=representation")
    assert status_of(client) == 200
    assert (deleted["state"], deleted["deleted"]) == (5, True)
    with raises_code("KEY_DELETED_ERR", 410):
        client.delete_key(key["id"])
    assert client.key_total() == 0  # deleted keys are not counted by default...
    assert client.key_total(state=[5]) == 1  # ...only when asked for
    assert [k["id"] for k in client.list_keys(state=[5])] == [key["id"]]
    with raises_code("REQ_TOO_EARLY_ERR", 409):
        client.restore_key(key["id"])
    server.clock.advance(seconds=31)
    restored = client.restore_key(key["id"])
    assert status_of(client) == 201
    assert restored["state"] == 1
    assert client.wrap(key["id"])["ciphertext"]


def test_standard_key_round_trip(client):
    key = client.create_standard_key("std", payload=b"any standard secret", prefer="representation")
    assert key["extractable"] is True
    assert primitives.b64decode(client.get_key(key["id"])["payload"]) == b"any standard secret"
    with raises_code("KEY_ROOT_REQ_ERR", 400):
        client.wrap(key["id"])


def test_plain_import_without_token(client):
    key = client.import_root_key("plain", primitives.generate_key_material(128))
    assert status_of(client) == 201 and key["imported"] is True


# --- policies ---------------------------------------------------------------------------------

def test_enforce_token_policy(client):
    client.set_instance_policy_key_create_import_access(enforce_token=True)
    assert status_of(client) == 204
    policies = client.get_instance_policies()
    kcia = [p for p in policies if p["policy_type"] == "keyCreateImportAccess"]
    assert kcia and kcia[0]["policy_data"]["attributes"]["enforce_token"] is True
    with raises_code("KEY_CREATE_IMPORT_ACCESS_ERR", 409):
        client.import_root_key("plain", primitives.generate_key_material())
    key = imported_key(client)  # with a token: allowed
    with raises_code("KEY_CREATE_IMPORT_ACCESS_ERR", 409):
        client.rotate_with_material(key["id"], primitives.generate_key_material(), use_token=False)
    client.create_import_token()
    client.rotate_with_material(key["id"], primitives.generate_key_material())
    assert status_of(client) == 204


def test_rotation_policy_only_for_generated_keys(client):
    generated = client.create_root_key("gen")
    policy = client.set_rotation_policy(generated["id"], 3)
    assert policy["rotation"]["interval_month"] == 3
    assert client.get_key_policies(generated["id"])[0]["rotation"]["interval_month"] == 3
    imported = imported_key(client)
    with pytest.raises(KeyProtectError) as info:
        client.set_rotation_policy(imported["id"], 3)
    assert info.value.status == 400


# --- the protocol's failures ------------------------------------------------------------------

def secure_fields(client, material=None, **token_options):
    client.create_import_token(**token_options)
    token = client.get_import_token()
    return token, prepare_secure_import(material or primitives.generate_key_material(), token)


def create_with(client, fields, name="secure-key"):
    return client.create_key(name, payload=fields["payload"],
                             encrypted_nonce=fields["encryptedNonce"], iv=fields["iv"],
                             encryption_algorithm=fields["encryptionAlgorithm"])


def flip_last_bit(b64: str) -> str:
    raw = bytearray(primitives.b64decode(b64))
    raw[-1] ^= 1
    return primitives.b64encode(bytes(raw))


def test_tampered_tag_is_incorrect_nonce_iv(client):
    _, fields = secure_fields(client)
    fields["encryptedNonce"] = flip_last_bit(fields["encryptedNonce"])
    with raises_code("INCORRECT_NONCE_IV_ERR", 400):
        create_with(client, fields)
    assert client.key_total() == 0  # a failed request changes nothing


def test_wrong_iv_is_incorrect_nonce_iv(client):
    _, fields = secure_fields(client)
    fields["iv"] = flip_last_bit(fields["iv"])
    with raises_code("INCORRECT_NONCE_IV_ERR", 400):
        create_with(client, fields)


def test_nonce_of_a_replaced_token_is_incorrect_nonce(client):
    old, _ = secure_fields(client, max_allowed_retrievals=1)
    client.create_import_token()  # replaces the token and its nonce
    new = client.get_import_token()
    assert new.nonce != old.nonce
    stale = dataclasses.replace(new, nonce=old.nonce)  # new key, old nonce
    with raises_code("INCORRECT_NONCE_ERR", 400):
        create_with(client, prepare_secure_import(primitives.generate_key_material(), stale))
    assert client.key_total() == 0


def test_fields_for_a_replaced_token_are_refused(client):
    old, fields = secure_fields(client)
    client.create_import_token()
    assert client.get_import_token().fingerprint != old.fingerprint
    with pytest.raises(KeyProtectError) as info:
        create_with(client, fields)
    # the old key pair is gone: the payload does not decrypt (rule import.replaced_token)
    assert (info.value.status, info.value.code) == (400, "UNPROCESSABLE_PAYLOAD_ERR")


def test_expired_token(server, client):
    _, fields = secure_fields(client, expiration=300, max_allowed_retrievals=2)
    server.clock.advance(seconds=301)
    with raises_code("IMPORT_TOKEN_EXPIRED_ERR", 409):
        create_with(client, fields)
    with raises_code("IMPORT_TOKEN_EXPIRED_ERR", 409):
        client.get_import_token()


def test_wrong_material_size_is_refused_by_the_service(client):
    token, _ = secure_fields(client)
    # prepare_secure_import refuses 20 bytes and AES-GCM cannot use them, so build the fields
    # by hand: 20 bytes wrapped, the nonce sealed with their first 16.
    material = bytes(range(20))
    sealed, iv = primitives.encrypt_nonce(material[:16], token.nonce)
    fields = {"payload": primitives.b64encode(primitives.wrap_key_material(material, token.public_key)),
              "encryptedNonce": primitives.b64encode(sealed), "iv": primitives.b64encode(iv),
              "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}
    with pytest.raises(KeyProtectError) as info:
        create_with(client, fields)
    # rule import.material_size_refused: judged before the nonce
    assert (info.value.status, info.value.code, info.value.target) == \
        (400, "INVALID_FIELD_ERR", ("field", "payload"))
    assert client.key_total() == 0


def test_unknown_key_and_bad_ciphertext(client):
    with raises_code("KEY_NOT_FOUND_ERR", 404):
        client.get_key(str(uuid.uuid4()))
    key = imported_key(client)
    with raises_code("INVALID_FIELD_ERR", 400) as info:
        client.request("POST", f"keys/{key['id']}/actions/unwrap", body={"ciphertext": "***"})
    assert info.value.target == ("field", "ciphertext")
    with raises_code("UNPROCESSABLE_CIPHERTEXT_ERR", 422):
        client.unwrap(key["id"], b"not a wrapped key at all")


def test_error_body_fields_arrive_intact(client):
    with pytest.raises(KeyProtectError) as info:
        client.get_key(str(uuid.uuid4()))
    body = json.loads(client.last_response.content)
    reason = body["resources"][0]["reasons"][0]
    assert (info.value.code, info.value.message) == (reason["code"], reason["message"])
    assert info.value.error_msg == body["resources"][0]["errorMsg"]


# --- strict mode ------------------------------------------------------------------------------

def test_strict_mode_401_and_403(token_key_pairs):
    with running_server(grants={"tok-a": "inst-a"},
                        key_pair_source=fixed_key_pairs(token_key_pairs)) as strict:
        with KeyProtectClient(strict.url, "inst-a", "tok-a") as granted:
            granted.create_root_key("mine")
            assert granted.key_total() == 1
        with KeyProtectClient(strict.url, "inst-a", "unknown-token") as stranger:
            with raises_code("UNAUTHORIZED_ERR", 401):
                stranger.list_keys()
        with KeyProtectClient(strict.url, "inst-b", "tok-a") as elsewhere:
            with raises_code("FORBIDDEN_ERR", 403):
                elsewhere.list_keys()


# --- several threads, one client ----------------------------------------------------------------

def test_one_client_from_several_threads(client):
    # Notebooks may share a client between threads (timing runs); the session and the
    # threaded server must keep every DEK with its own wrap.
    from concurrent.futures import ThreadPoolExecutor

    key = imported_key(client)

    def round_trip(n):
        dek = n.to_bytes(2, "big") * 16
        return client.unwrap(key["id"], client.wrap(key["id"], dek)["ciphertext"])["plaintext"] == dek

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(round_trip, range(40)))


@pytest.mark.parametrize("token", ["secret\nX-Injected: 1", "s\u00e9cret", "two words"])
def test_a_token_no_header_can_carry_is_refused_without_its_value(token):
    with pytest.raises(ValueError) as info:
        KeyProtectClient("http://127.0.0.1:9", "instance", token)
    assert "visible ASCII" in str(info.value) and token not in str(info.value)
