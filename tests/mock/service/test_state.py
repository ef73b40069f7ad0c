"""serve --state: the service's state saved atomically and loaded back, key material sealed
under the state key (byoklib.mock.service.state)."""
import base64
import json
import os

import pytest
import requests
from conftest import KEY_TYPE

from byoklib import primitives
from byoklib.__main__ import state_option
from byoklib.mock.hsm import HSM
from byoklib.mock.http.serving import persist, running_server
from byoklib.mock.service import KeyProtectService
from byoklib.mock.service.state import load_state, save_state

STATE_KEY = bytes(range(32))   # TEST-ONLY state key


def fill(api):
    """Keys, a ring, aliases, policies and a wrapped DEK; returns what to compare."""
    assert api.post("/api/v2/key_rings/saved-ring").status_code == 201
    root = api.root_key("root", aliases=["saved-alias"])
    material = bytes(range(100, 132))
    imported = api.root_key("imported", payload=primitives.b64encode(material))
    standard = api.create_key({"type": KEY_TYPE, "name": "standard", "extractable": True,
                               "payload": primitives.b64encode(b"standard-secret-payload")})
    standard = standard.json()["resources"][0]
    api.call("PATCH", f"/api/v2/keys/{imported['id']}", json={"keyRingID": "saved-ring"})
    api.call("PUT", f"/api/v2/keys/{root['id']}/policies", json={
        "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json",
                     "collectionTotal": 1},
        "resources": [{"dualAuthDelete": {"enabled": True}}]})
    wrapped = api.action("saved-alias", "wrap", {"plaintext": "ZGVrLWJ5dGVz"}).json()
    return root, imported, standard, wrapped, material


def test_state_round_trip(api, tmp_path, clock, service):
    root, imported, standard, wrapped, material = fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    text = path.read_bytes()
    for secret in (material, material.hex().encode(), base64.b64encode(material),
                   b"standard-secret-payload", base64.b64encode(b"standard-secret-payload")):
        assert secret not in text
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]   # no temp file left

    fresh = KeyProtectService(clock=clock, hsm=HSM())
    assert load_state(fresh, path, STATE_KEY) == 3
    with running_server(fresh) as second:
        other = type(api)(second.url)
        assert other.key("saved-alias")["id"] == root["id"]
        assert other.key(root["id"])["dualAuthDelete"]["enabled"] is True
        assert other.key(imported["id"])["keyRingID"] == "saved-ring"
        assert other.key(standard["id"])["payload"] == standard["payload"]
        unwrapped = other.action(root["id"], "unwrap", {"ciphertext": wrapped["ciphertext"]})
        assert unwrapped.json()["plaintext"] == "ZGVrLWJ5dGVz"
        rings = other.get("/api/v2/key_rings").json()["resources"]
        assert [r["id"] for r in rings] == ["default", "saved-ring"]
        assert other.get("/api/v2/import_token").status_code == 404   # tokens are not kept


def test_wrong_state_key_changes_nothing(api, service, tmp_path, clock):
    fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    fresh = KeyProtectService(clock=clock, hsm=HSM())
    with pytest.raises(ValueError) as info:
        load_state(fresh, path, bytes(32))
    assert "state key" in str(info.value)
    assert fresh.instance_ids() == []
    path.write_text("{not json")
    with pytest.raises(ValueError):
        load_state(fresh, path, STATE_KEY)
    with pytest.raises(ValueError):
        save_state(service, path, b"short")


def _keys(document):
    return {key["name"]: key for key in document["instances"][0]["keys"]}


def _swap_materials(document):
    keys = _keys(document)
    first, second = keys["root"]["versions"][0], keys["imported"]["versions"][0]
    first["material"], second["material"] = second["material"], first["material"]


def _undo_dual_auth(document):
    root = _keys(document)["root"]
    assert root["dual_auth"] is True
    root["dual_auth"] = False


def _drop_key(document):
    document["instances"][0]["keys"] = [key for key in document["instances"][0]["keys"]
                                        if key["name"] != "imported"]


def _make_extractable(document):
    _keys(document)["imported"]["extractable"] = True


@pytest.mark.parametrize("change", [_swap_materials, _undo_dual_auth, _drop_key,
                                    _make_extractable])
def test_a_changed_state_file_is_refused_and_changes_nothing(api, service, tmp_path, clock,
                                                            change):
    """Someone who can write the file but does not know the state key cannot move
    material between keys, turn a policy off or make a root key extractable: the MAC no longer
    matches, and the load fails before anything is loaded."""
    fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    document = json.loads(path.read_bytes())
    change(document)
    path.write_text(json.dumps(document))
    fresh = KeyProtectService(clock=clock, hsm=HSM())
    with pytest.raises(ValueError, match="changed after byoklib wrote it"):
        load_state(fresh, path, STATE_KEY)
    assert fresh.instance_ids() == []


def test_the_mac_is_over_the_values_not_the_spacing(api, service, tmp_path, clock):
    fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    document = json.loads(path.read_bytes())
    path.write_text(json.dumps(dict(reversed(document.items())), indent=2))   # pretty-printed
    assert load_state(KeyProtectService(clock=clock, hsm=HSM()), path, STATE_KEY) == 3
    for mac in (None, 7, "é" * 64, document["mac"].upper()):
        path.write_text(json.dumps({**document, "mac": mac}))
        with pytest.raises(ValueError, match="MAC"):
            load_state(KeyProtectService(clock=clock, hsm=HSM()), path, STATE_KEY)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not a byoklib state"):
        load_state(KeyProtectService(clock=clock, hsm=HSM()), path, STATE_KEY)


def test_a_first_format_file_is_refused_with_a_reason(api, service, tmp_path, clock):
    """byoklib-state-1 had no MAC: reading it would let a changed file through as that."""
    fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    document = json.loads(path.read_bytes())
    document["format"] = "byoklib-state-1"
    del document["mac"]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="old format byoklib-state-1"):
        load_state(KeyProtectService(clock=clock, hsm=HSM()), path, STATE_KEY)


def test_server_saves_after_each_change(server, api, tmp_path):
    path = tmp_path / "live.json"
    persist(server.app, path, STATE_KEY)
    before = path.read_bytes()
    key = api.root_key("saved-live")
    after = path.read_bytes()
    assert after != before and key["id"].encode() in after
    api.get("/api/v2/keys")                      # a read does not rewrite the file
    assert path.read_bytes() == after
    assert requests.post(server.url + "/api/v2/key_rings/x", headers=api.headers).status_code \
        == 400                                   # a refused change does not either
    assert path.read_bytes() == after
    server.app.on_change = None


def test_a_save_that_fails_keeps_the_answer_and_says_so_in_the_log(server, api, caplog):
    """The change is made (a 5xx would invite a retry that makes it twice); the failed save
    is logged and counted, and the connection is answered, not dropped."""
    def disk_full():
        raise OSError(28, "No space left on device")

    server.app.on_change = disk_full
    try:
        response = api.post("/api/v2/import_token", json={})
    finally:
        server.app.on_change = None
    assert response.status_code == 200 and api.token()["maxAllowedRetrievals"] == 1
    assert server.app.save_failures == 1
    assert any("STATE NOT SAVED" in r.getMessage() for r in caplog.records)


def test_state_option_needs_a_32_byte_key(monkeypatch):
    monkeypatch.delenv("BYOKLIB_STATE_KEY", raising=False)
    assert state_option(None) is None
    with pytest.raises(SystemExit):
        state_option("state.json")
    monkeypatch.setenv("BYOKLIB_STATE_KEY", "not base64!")
    with pytest.raises(SystemExit) as info:
        state_option("state.json")
    assert "not base64" not in str(info.value)
    monkeypatch.setenv("BYOKLIB_STATE_KEY", base64.b64encode(os.urandom(32)).decode())
    path, key = state_option("state.json")
    assert path == "state.json" and len(key) == 32


def test_wrong_key_refused_even_without_keys(service, tmp_path, clock):
    service.instance_ids()
    service.list_key_rings("empty-instance")   # an instance, no key material at all
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    with pytest.raises(ValueError):
        load_state(KeyProtectService(clock=clock, hsm=HSM()), path, bytes(32))


def test_a_format_that_is_no_string_is_no_byoklib_state(tmp_path, clock):
    path = tmp_path / "state.json"
    path.write_text('{"format": []}')
    with pytest.raises(ValueError, match="not a byoklib state"):
        load_state(KeyProtectService(clock=clock, hsm=HSM()), path, STATE_KEY)


@pytest.mark.parametrize("check", ["", "00" * 11, "00" * 27])
def test_a_check_value_cut_short_is_refused_in_byoklib_words(api, service, tmp_path, clock,
                                                            check):
    """Shorter than an IV and a GCM tag: refused before AES-GCM sees it, whose own
    complaint ("Nonce must be between 8 and 128 bytes") would mean nothing here."""
    fill(api)
    path = tmp_path / "state.json"
    save_state(service, path, STATE_KEY)
    document = json.loads(path.read_bytes())
    path.write_text(json.dumps({**document, "check": check}))
    fresh = KeyProtectService(clock=clock, hsm=HSM())
    with pytest.raises(ValueError, match="not a byoklib state .a sealed value is cut short"):
        load_state(fresh, path, STATE_KEY)
    assert fresh.instance_ids() == []


def test_a_state_path_that_is_a_symlink_stays_one_and_its_file_is_saved(api, service, tmp_path,
                                                                        clock):
    """An operator who links the state file elsewhere (a mounted volume, say) keeps the
    link: the file it points to is replaced atomically, the link is not."""
    target = tmp_path / "volume" / "state.json"
    target.parent.mkdir()
    link = tmp_path / "state.json"
    link.symlink_to(target)
    fill(api)
    save_state(service, link, STATE_KEY)
    assert link.is_symlink() and target.is_file()
    assert load_state(KeyProtectService(clock=clock, hsm=HSM()), link, STATE_KEY) == 3
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]   # no temp left
