"""The service without HTTP: clocks, atomicity of refused calls, thread safety."""
from datetime import datetime, timedelta, timezone

import pytest
from conftest import KEY_TYPE, envelope, secure_fields

from byoklib import primitives
from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService, ManualClock, SystemClock


def test_manual_clock_is_frozen_until_advanced():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    first = clock.now()
    assert clock.now() == first
    clock.advance(30, minutes=1, hours=1, days=1)
    assert clock.now() - first == timedelta(days=1, hours=1, minutes=1, seconds=30)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))


def test_system_clock_follows_real_time_plus_offset():
    clock = SystemClock()
    clock.advance(minutes=11)
    expected = datetime.now(timezone.utc) + timedelta(minutes=11)
    assert abs(clock.now() - expected) < timedelta(seconds=5)
    assert clock.now().tzinfo is not None


def test_service_methods_raise_key_protect_errors(service):
    with pytest.raises(KeyProtectError) as info:
        service.get_key("instance", "missing")
    assert (info.value.status, info.value.code) == (404, "KEY_NOT_FOUND_ERR")


def test_refused_create_leaves_no_key_and_no_material(service):
    service.create_import_token("i", max_allowed_retrievals=2)
    token = service.get_import_token("i")
    fields = secure_fields(primitives.generate_key_material(), token)
    fields["encryptedNonce"] = primitives.b64encode(bytes(28))
    body = envelope({"type": KEY_TYPE, "name": "half", "extractable": False, **fields})
    with pytest.raises(KeyProtectError):
        service.create_key("i", body)
    assert service.key_total("i", state="0,1,2,3,5") == 0
    assert service.get_import_token("i")["remainingRetrievals"] == 0


@pytest.mark.parametrize("fields", [
    {"payload": "AAAA", "encryptedNonce": "AAAA", "iv": "not base64!",
     "encryptionAlgorithm": "RSAES_OAEP_SHA_256"},        # a secure import's field
    {"payload": primitives.b64encode(bytes(20))},         # plain root material, 20 bytes
], ids=["secure", "plain"])
def test_a_body_is_judged_before_the_instance_it_is_for(service, fields):
    # parsed whole before any lock or state: the unknown key ring would be 404, the
    # instance's token 404, had the body been looked at after them
    body = envelope({"type": KEY_TYPE, "name": "early", "extractable": False, **fields})
    with service.key_ring_scope("no-such-ring"), pytest.raises(KeyProtectError) as info:
        service.create_key("i", body)
    assert (info.value.status, info.value.code) == (400, "INVALID_FIELD_ERR")


def test_a_name_missing_is_said_before_the_material_is_judged(service):
    body = envelope({"type": KEY_TYPE, "extractable": False,
                     "payload": primitives.b64encode(bytes(20))})
    with pytest.raises(KeyProtectError) as info:
        service.create_key("i", body)
    assert info.value.code == "INVALID_FIELD_ERR" and "'name'" in info.value.message


def test_rotating_a_generated_key_with_material_says_it_takes_none_before_its_size(service):
    key = service.create_key("i", envelope({"type": KEY_TYPE, "name": "made",
                                            "extractable": False}))
    with pytest.raises(KeyProtectError) as info:
        service.rotate("i", key["id"], {"payload": primitives.b64encode(bytes(20))})
    assert "only if key is imported" in info.value.message


def test_deleting_the_default_ring_is_refused_first_and_leaves_no_instance(service):
    with pytest.raises(KeyProtectError) as info:   # before the force query is read
        service.delete_key_ring("never-seen", "default", force="maybe")
    assert info.value.code == "KEY_RING_RESERVED_ERR"
    assert service.instance_ids() == []


def test_a_purged_keys_material_leaves_the_hsm(service, clock):
    key = service.create_key("i", envelope({"type": KEY_TYPE, "name": "gone",
                                            "extractable": False}))
    service.rotate("i", key["id"])                        # two versions, two materials
    service.delete_key("i", key["id"])
    materials = vars(service.hsm)["_materials"]           # white-box: the HSM's table
    held = len(materials)
    clock.advance(hours=4, seconds=1)
    service.purge_key("i", key["id"])
    assert len(materials) == held - 2


def test_replacing_a_token_keeps_only_the_last_replaced_key_for_the_doctor(service):
    service.create_import_token("i")
    first = service._instances["i"].token.transport_key
    service.create_import_token("i")
    assert service.hsm.public_key_pem(first)          # kept: the doctor may need it
    service.create_import_token("i")
    with pytest.raises(KeyError):                     # replaced twice: discarded
        service.hsm.public_key_pem(first)


def test_a_replaced_key_is_discarded_once_its_token_would_have_expired(service):
    service.create_import_token("i", expiration=300)
    first = service._instances["i"].token.transport_key
    service.create_import_token("i", expiration=3600)
    service.clock.advance(seconds=301)
    service.get_import_token("i")
    with pytest.raises(KeyError):
        service.hsm.public_key_pem(first)


@pytest.mark.parametrize("doctor", [True, False])
def test_a_token_replaced_while_an_import_is_opened_judges_it_as_after(token_key_pairs,
                                                                       monkeypatch, doctor):
    """The doctor keeps the replaced token's key pair, so the unwrap outside the lock could
    succeed with it: the import must still be refused, as without the doctor."""
    from byoklib.mock.service import keys

    service = KeyProtectService(clock=ManualClock(),
                                hsm=HSM(fixed_key_pairs(token_key_pairs), doctor=doctor))
    service.create_import_token("i", max_allowed_retrievals=2)
    fields = secure_fields(primitives.generate_key_material(), service.get_import_token("i"))
    real_unwrap = keys.unwrap_secure_import
    calls = []

    def replaced_meanwhile(*args, **kwargs):
        if not calls:
            service.create_import_token("i")   # another caller, between the two sections
        calls.append(1)
        return real_unwrap(*args, **kwargs)

    monkeypatch.setattr(keys, "unwrap_secure_import", replaced_meanwhile)
    body = envelope({"type": KEY_TYPE, "name": "raced", "extractable": False, **fields})
    with pytest.raises(KeyProtectError) as refused:
        service.create_key("i", body)
    assert refused.value.code == "UNPROCESSABLE_PAYLOAD_ERR"   # another key pair now
    assert service.key_total("i", state="0,1,2,3,5") == 0


def test_without_the_doctor_a_replaced_key_is_discarded_at_once(token_key_pairs):
    service = KeyProtectService(clock=ManualClock(),
                                hsm=HSM(fixed_key_pairs(token_key_pairs), doctor=False))
    service.create_import_token("i")
    old = service._instances["i"].token.transport_key
    service.create_import_token("i")
    with pytest.raises(KeyError):
        service.hsm.public_key_pem(old)


def test_default_service_has_clock_and_hsm():
    service = KeyProtectService()
    assert isinstance(service.clock, SystemClock)
    assert "us-south" in repr(service)
