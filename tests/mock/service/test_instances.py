"""Instances: a refused request leaves nothing behind, the instance id is bounded, and
instances do not block each other (a lock per instance)."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import KEY_TYPE, envelope, reason

from byoklib.errors import KeyProtectError
from byoklib.mock import running_server
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService
from byoklib.mock.service.model import Instance
from byoklib.mock.service.state import load_state, save_state

STATE_KEY = bytes(range(32))


def refused(call, *args, **kwargs) -> KeyProtectError:
    with pytest.raises(KeyProtectError) as info:
        call(*args, **kwargs)
    return info.value


def root(name="key", **fields):
    return envelope({"type": KEY_TYPE, "name": name, "extractable": False, **fields})


def saved_instances(service, path) -> list[str]:
    save_state(service, path, STATE_KEY)
    return [item["id"] for item in json.loads(path.read_bytes())["instances"]]


# --- a refused request leaves nothing behind -------------------------------------------------

def test_2000_refused_gets_on_new_instances_create_none(service):
    service.create_key("kept", root())
    for n in range(2000):
        error = refused(service.get_import_token, f"probe-{n}")
        assert (error.status, error.code) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")
    assert service.instance_ids() == ["kept"]
    assert len(service._instances) == 1 and not service._pending


def test_refused_changing_requests_on_new_instances_create_none(service):
    calls = [
        (service.create_key, ("new-1", {"resources": []})),                 # bad body
        (service.create_key, ("new-2", root(encryptedNonce="AAAA", iv="AAAAAAAAAAAAAAAA",
                                            payload="AAAA",
                                            encryptionAlgorithm="RSAES_OAEP_SHA_256"))),
        (service.create_import_token, ("new-3", 1)),                       # out of range
        (service.delete_key, ("new-4", "missing")),
        (service.key_action, ("new-5", "missing", "wrap", {})),
        (service.put_key_policies, ("new-6", "missing", {"resources": [{}]})),
        (service.put_instance_policy, ("new-7", {"resources": [{"policy_type": "x"}]})),
        (service.create_key_ring, ("new-8", "x")),                        # too short an id
        (service.delete_key_ring, ("new-9", "default")),
        (service.create_key_alias, ("new-10", "missing", "an-alias")),
        (service.purge_key, ("new-11", "missing")),
    ]
    for call, args in calls:
        refused(call, *args)
    assert service.instance_ids() == []


def test_a_get_on_an_unknown_instance_answers_as_an_empty_one(service):
    assert service.list_keys("unknown")["resources"] == []
    assert service.key_total("unknown") == 0
    assert service.get_instance_policies("unknown")["resources"] == []
    assert [r["id"] for r in service.list_key_rings("unknown")["resources"]] == ["default"]
    assert refused(service.get_key, "unknown", "k").code == "KEY_NOT_FOUND_ERR"
    assert service.instance_ids() == []


def test_a_successful_changing_request_creates_the_instance(service):
    service.create_key_ring("fresh", "ring-1")
    assert service.instance_ids() == ["fresh"]
    assert [r["id"] for r in service.list_key_rings("fresh")["resources"]] == [
        "default", "ring-1"]


def test_a_refused_request_never_reaches_the_state_file(service, tmp_path):
    path = tmp_path / "state.json"
    service.create_key("kept", root())
    refused(service.get_import_token, "refused-get")
    refused(service.create_key, "refused-post", {"resources": []})
    assert saved_instances(service, path) == ["kept"]


# --- the instance id -----------------------------------------------------------------------

GUID = "6f1c2f4e-8d3a-4b7e-9c1d-2a5b7e9f0c3d"


@pytest.mark.parametrize("instance_id", [
    GUID, GUID.upper(), "my-instance", "i", "a.b_c-1", "9" * 64])
def test_a_guid_or_a_friendly_id_is_an_instance_id(service, instance_id):
    service.create_key_ring(instance_id, "ring-1")
    assert service.instance_ids() == [instance_id]


@pytest.mark.parametrize("instance_id", [
    "", "x" * 65, "x" * 16384, "-leading-dash", ".hidden", "a b", "dupA,dupB", "tab\there",
    "cr\rlf", "nul\x00", "caf\u00e9", "slash/es", None, 7])
def test_any_other_instance_id_is_refused_and_leaves_nothing(service, instance_id):
    for call, args in ((service.list_keys, ()), (service.create_key_ring, ("ring-1",)),
                       (service.get_import_token, ())):
        error = refused(call, instance_id, *args)
        assert (error.status, error.code) == (400, "INVALID_HEADER_ERR")
        assert "'bluemix-instance'" in error.message
    assert service.instance_ids() == []


def test_a_refused_token_creation_takes_no_key_pair(token_key_pairs):
    pairs, taken = fixed_key_pairs(token_key_pairs), []

    def counted():
        taken.append(1)
        return pairs()

    service = KeyProtectService(hsm=HSM(counted))
    for instance_id in ("-x", "x" * 65, "x/y"):
        assert refused(service.create_import_token, instance_id, 600).code == "INVALID_HEADER_ERR"
    assert refused(service.create_import_token, "fine", 1).code == "INVALID_FIELD_ERR"
    assert taken == [] and service.instance_ids() == []
    service.create_import_token("fine", 600)
    assert taken == [1]


# --- over HTTP ----------------------------------------------------------------------------------

def test_refused_requests_over_http_leave_no_instance_and_no_state(service, tmp_path):
    """The HTTP layer saves after each successful changing request; before the service
    looked instances up without creating them, a refused GET's instance was saved then."""
    path = tmp_path / "state.json"
    with running_server(service) as server:
        server.app.on_change = lambda: save_state(service, path, STATE_KEY)
        session = requests.Session()

        def call(method, url, instance, **kw):
            return session.request(method, server.url + url, timeout=30, **kw, headers={
                "Authorization": "Bearer t", "bluemix-instance": instance})

        for n in range(300):
            assert reason(call("GET", "/api/v2/import_token", f"probe-{n}")) == (
                404, "IMPORT_TOKEN_NOT_FOUND_ERR")
        for n in range(20):
            assert reason(call("GET", "/api/v2/import_token", f"{n}{'x' * 16000}")) == (
                400, "INVALID_HEADER_ERR")
        assert reason(call("POST", "/api/v2/keys", "refused-post", json={"resources": []})
                      )[0] == 400
        assert call("GET", "/api/v2/keys", "unknown").json()["resources"] == []
        assert not path.exists()                      # nothing succeeded that changes
        assert call("POST", "/api/v2/key_rings/ring-1", "kept").status_code == 201
    assert service.instance_ids() == ["kept"]
    assert [item["id"] for item in json.loads(path.read_bytes())["instances"]] == ["kept"]


# --- a lock per instance ------------------------------------------------------------------------

def test_a_held_instance_does_not_block_another(service):
    """While another thread holds instance A's lock, a request on B completes and one on
    A waits for it (each bounded by a timeout; no timing is asserted)."""
    service.create_key("a", root())
    service.create_key("b", root())
    held, release = threading.Event(), threading.Event()

    def hold_a():
        with service._instances["a"].lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_a)
    holder.start()
    try:
        assert held.wait(10)
        with ThreadPoolExecutor(2) as pool:
            on_b = pool.submit(service.list_keys, "b")
            new = pool.submit(service.create_key, "c", root())     # a new instance too
            on_a = pool.submit(service.list_keys, "a")
            assert len(on_b.result(timeout=10)["resources"]) == 1
            assert new.result(timeout=10)["name"] == "key"
            assert not on_a.done()           # A's own requests wait for A's lock
            release.set()
            assert len(on_a.result(timeout=10)["resources"]) == 1
    finally:
        release.set()
        holder.join(10)


def test_concurrent_creates_on_one_new_instance_all_land(service):
    def create(n):
        return service.create_key("shared", root(f"key-{n}"))["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(200)))
    assert service.instance_ids() == ["shared"]
    assert len(set(ids)) == 200 and service.key_total("shared") == 200
    assert not service._pending


def test_concurrent_refused_and_accepted_creates_on_one_new_instance(service):
    """Refused requests racing accepted ones on a new instance neither keep it from being
    made nor leave anything of their own."""
    def create(n):
        body = root(f"key-{n}") if n % 2 else {"resources": []}
        try:
            return service.create_key("racy", body)["id"]
        except KeyProtectError:
            return None

    with ThreadPoolExecutor(8) as pool:
        ids = [i for i in pool.map(create, range(200)) if i]
    assert len(ids) == 100 and service.key_total("racy") == 100
    assert service.instance_ids() == ["racy"] and not service._pending


def test_concurrent_creates_of_one_alias_admit_one(service):
    def create(n):
        try:
            return service.create_key("aliased", root(f"key-{n}", aliases=["the-alias"]))
        except KeyProtectError as error:
            return error.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(40)))
    created = [r for r in results if isinstance(r, dict)]
    assert len(created) == 1
    assert {r for r in results if isinstance(r, str)} == {"KEY_ALIAS_NOT_UNIQUE_ERR"}


def test_import_instances_needs_an_empty_service(service):
    service.create_key("a", root())
    exported = service.export_instances(lambda instance: instance)
    with pytest.raises(ValueError, match="empty service"):
        service.import_instances(exported)


def test_a_state_file_with_an_id_the_mock_refuses_is_not_loaded(service, tmp_path, clock):
    service._instances["not an id"] = Instance("not an id")   # white-box: an older mock's file
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    fresh = KeyProtectService(clock=clock, hsm=service.hsm)
    with pytest.raises(ValueError, match="instance id"):
        load_state(fresh, path, STATE_KEY)
    assert fresh.instance_ids() == []
