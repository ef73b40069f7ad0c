"""The benchmark's moving parts work (numbers are for `make bench`, never asserted here)."""
import pytest

from byoklib.client import KeyProtectClient, byok_import
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.tutorial import bench, floor


def test_secure_imports_from_two_threads_all_land():
    with running_server(key_pair_source=fixed_key_pairs(floor.TEST_KEYS)) as server:
        admin = KeyProtectClient(server.url, "bench", "bench-token")
        admin.create_import_token(expiration=600, max_allowed_retrievals=10)
        elapsed = bench.secure_imports(server.url, 6, threads=2)
        assert elapsed > 0
        assert admin.key_total() == 6
        admin.close()


def test_bare_round_trip_reaches_a_server_in_another_process():
    assert floor.bare_round_trip(b'{"resources": []}', repeat=2) > 0


def test_chart_and_csv_are_written(tmp_path):
    import pandas as pd

    table = pd.DataFrame([bench.Figure("a", 0.05, "<= 0.10", True, ""),
                          bench.Figure("b", 1.2, ">= 1.6", False, "")])
    bench.chart(table, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_diagnostic_servers_decrypt_the_payload_and_keep_busy():
    import time

    import requests

    from byoklib.client.token import ImportToken, prepare_secure_import

    with running_server(key_pair_source=fixed_key_pairs(floor.TEST_KEYS)) as server:
        client = KeyProtectClient(server.url, "bench", "bench-token")
        client.create_import_token(expiration=600, max_allowed_retrievals=1)
        token = client.get_import_token()   # sealed to TEST_KEYS[0], the first pair
        client.close()
    assert isinstance(token, ImportToken)
    body = floor.import_body(prepare_secure_import(b"\x01" * 32, token))
    keys = floor.KEYS_PATH
    with floor.bare_server("decrypt", str(floor.TEST_KEYS[0])) as url, requests.Session() as s:
        assert floor.round_trip(s, url + keys, body)().status_code == 201
        # the mock's answer, so the client's own import reads it as the mock's
        bare = KeyProtectClient(url, "bench", "bench-token", session=s)
        assert byok_import(bare, b"\x02" * 32, "bench-key", token=token)["imported"] is True
    with floor.bare_server("decrypt", str(floor.TEST_KEYS[1])) as url, requests.Session() as s:
        with pytest.raises(requests.ConnectionError):   # another key: the decryption fails
            floor.round_trip(s, url + keys, body)()
    with floor.bare_server("decrypt", str(floor.TEST_KEYS[0]), mock_http=True) as url, \
            requests.Session() as s:   # the same work on the mock's own HTTP layer
        answer = floor.round_trip(s, url + keys, body)()
        assert answer.status_code == 201 and answer.headers["Server"] == "byoklib-mock"
        assert answer.text == floor.IMPORT_ANSWER
    with floor.bare_server("decrypt", str(floor.TEST_KEYS[1]), mock_http=True) as url, \
            requests.Session() as s:
        assert floor.round_trip(s, url + keys, body)().status_code == 500
    with floor.bare_server("busy", "0.2", answer='{"ok": 1}') as url, requests.Session() as s:
        start = time.perf_counter()
        answer = floor.round_trip(s, url + keys, body)()
        assert answer.status_code == 201 and answer.text == '{"ok": 1}'
        assert time.perf_counter() - start >= 0.2


def test_the_bare_answer_has_the_shape_and_size_of_the_mocks():
    import json

    with running_server(key_pair_source=fixed_key_pairs(floor.TEST_KEYS)) as server:
        client = KeyProtectClient(server.url, "bench", "bench-token")
        client.create_import_token(expiration=600, max_allowed_retrievals=1)
        byok_import(client, b"\x03" * 32, "bench-key")
        mocks = client.last_response.text
        client.close()
    assert len(mocks) == len(floor.IMPORT_ANSWER)
    shape = json.loads(mocks)
    shape["resources"][0]["id"] = shape["resources"][0]["crn"] = None
    canned = json.loads(floor.IMPORT_ANSWER)
    canned["resources"][0]["id"] = canned["resources"][0]["crn"] = None
    assert shape == canned


def test_token_creation_from_pairs_already_made_generates_none(monkeypatch):
    def no_generation(bits=4096):
        raise AssertionError("an RSA key pair was generated")

    monkeypatch.setattr(bench.primitives, "generate_rsa_private_key", no_generation)
    times = bench.token_creation(repeat=2, key_pairs=floor.TEST_KEYS[:2])
    assert len(times) == 2 and min(times) > 0


def test_wrap_and_unwrap_rounds_give_both_ratios():
    ratios, parts = bench.wrap_and_unwrap(repeat=2, rounds=2)
    assert set(ratios) == {"wrap / floor", "unwrap / floor"}
    assert all(median > 0 and low <= high for median, low, high in ratios.values())
    assert parts["AES-GCM wrap"] < parts["round trip (wrap)"]


def test_one_import_gives_every_ratio_the_table_prints():
    ratios, parts = bench.one_import(repeat=1, rounds=2)
    assert set(ratios) == {"secure import / floor", "secure import / bare import",
                           "bare import / floor", bench.MOCK_HTTP_FLOOR}
    assert all(median > 0 and low <= high for median, low, high in ratios.values())
    assert {"import", "bare import", "bare import, mock's HTTP", "decryption"} <= set(parts)
    assert min(parts.values()) > 0
