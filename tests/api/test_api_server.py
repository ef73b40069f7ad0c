"""The server as a whole: concurrency, running_server() life cycle, `python -m byoklib serve`."""
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import TOKEN_KEY_FILES, Api

from byoklib import primitives
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs

THREADS, IMPORTS_PER_THREAD, WRAPS_PER_KEY = 8, 3, 3


def test_concurrent_secure_imports_and_wraps(api, server):
    """8 threads import and wrap at once: nothing lost, every count exact."""
    retrievals = THREADS * IMPORTS_PER_THREAD
    api.new_token(maxAllowedRetrievals=retrievals + 1)
    start = threading.Barrier(THREADS)

    def worker(n):
        client = Api(server.url)
        start.wait()
        results = []
        for i in range(IMPORTS_PER_THREAD):
            material = primitives.generate_key_material()
            key = client.secure_root_key(material, name=f"t{n}-k{i}")
            wraps = [client.action(key["id"], "wrap", {"aad": [key["id"]]}).json()
                     for _ in range(WRAPS_PER_KEY)]
            results.append((key["id"], wraps))
        return results

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for batch in pool.map(worker, range(THREADS)) for r in batch]
    assert len({key_id for key_id, _ in results}) == THREADS * IMPORTS_PER_THREAD
    assert int(api.call("HEAD", "/api/v2/keys").headers["Key-Total"]) == len(results)
    assert api.token()["remainingRetrievals"] == 0   # exactly one left before this GET
    for key_id, wraps in results:
        for wrapped in wraps:
            body = {"ciphertext": wrapped["ciphertext"], "aad": [key_id]}
            assert api.action(key_id, "unwrap", body).json()["plaintext"] == wrapped["plaintext"]
    assert server.app.internal_errors == 0


def test_running_server_builds_its_own_service_and_stops(token_key_pairs):
    with running_server(key_pair_source=fixed_key_pairs(token_key_pairs)) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.clock is server.service.clock
        server.clock.advance(minutes=11)
        api = Api(server.url)
        assert api.new_token()["maxAllowedRetrievals"] == 1
        url = server.url
    try:
        requests.get(url + "/api/v2/keys", timeout=2)
        stopped = False
    except requests.ConnectionError:
        stopped = True
    assert stopped


def test_running_server_makes_no_key_pair_until_a_token_is_asked_for():
    """A practitioner's `with running_server():` per test: no generation to wait for at
    exit (this test is not marked generates_rsa4096, so one would fail it)."""
    before = {t.name for t in threading.enumerate()}
    with running_server() as server:
        api = Api(server.url)
        assert api.get("/api/v2/keys").status_code == 200
        assert "key-pair-pool" not in {t.name for t in threading.enumerate()} - before
    assert "key-protect-mock" not in {t.name for t in threading.enumerate()}


@pytest.mark.generates_rsa4096   # the default pool makes its pairs
def test_running_server_default_pool_starts_at_the_first_token_and_is_closed_at_exit():
    before = {t.name for t in threading.enumerate()}
    with running_server() as server:
        api = Api(server.url)
        api.new_token()
        assert primitives.load_public_key(
            primitives.b64decode(api.token()["payload"])).key_size == 4096
        assert "key-pair-pool" in {t.name for t in threading.enumerate()} - before
    after = {t.name for t in threading.enumerate()}
    assert "key-pair-pool" not in after - before
    assert "key-protect-mock" not in after


def serve_process(*args):
    """`python -m byoklib serve ARGS`, with the TEST-ONLY token keys unless ARGS name some:
    its default pool would generate an RSA-4096 pair at start and wait for it at exit."""
    keys = [] if "--token-key" in args else [
        arg for path in TOKEN_KEY_FILES for arg in ("--token-key", str(path))]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "byoklib", "serve", *args, *keys],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_serve_subprocess_announces_port_and_stops_on_sigint():
    process = serve_process("--host", "127.0.0.1", "--port", "0", "--grant", "tok=inst")
    try:
        line = process.stdout.readline().rstrip("\n")
        prefix = "Key Protect mock listening on http://127.0.0.1:"
        assert line.startswith(prefix) and int(line[len(prefix):]) > 0
        url = line.rsplit(" ", 1)[1]
        granted = requests.post(url + "/api/v2/keys/none/restore",
                                headers={"Authorization": "Bearer tok", "bluemix-instance": "inst"})
        assert granted.status_code == 404
        refused = requests.get(url + "/api/v2/keys",
                               headers={"Authorization": "Bearer other", "bluemix-instance": "inst"})
        assert refused.status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        log = process.stderr.read()
        assert "POST /api/v2/keys/none/restore 404" in log and "Bearer" not in log
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_with_test_only_token_keys_hands_out_those_keys():
    from byoklib import data_path, primitives
    from byoklib.client.token import ImportToken

    path = data_path("test-only", "token-key-2.pem")
    process = serve_process("--port", "0", "--token-key", str(path))
    try:
        url = process.stdout.readline().rstrip("\n").rsplit(" ", 1)[1]
        headers = {"Authorization": "Bearer t", "bluemix-instance": "i"}
        assert requests.post(url + "/api/v2/import_token", json={}, headers=headers).ok
        token = ImportToken.from_response(
            requests.get(url + "/api/v2/import_token", headers=headers).json())
        expected = primitives.load_private_key(path.read_bytes()).public_key()
        assert token.fingerprint == primitives.public_key_fingerprint(expected)
    finally:
        process.kill()
        process.wait(10)


def test_serve_stops_on_sigterm_and_cuts_off_a_silent_client_at_its_request_timeout():
    import socket
    import time

    process = serve_process("--port", "0", "--request-timeout", "0.5", "--threads", "2")
    try:
        url = process.stdout.readline().rstrip("\n").rsplit(" ", 1)[1]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as silent:
            started = time.monotonic()
            assert silent.recv(12) == b"HTTP/1.1 408"
            assert time.monotonic() - started < 3
        headers = {"Authorization": "Bearer t", "bluemix-instance": "i"}
        assert requests.get(url + "/api/v2/keys", headers=headers, timeout=5).ok
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_second_signal_while_serve_stops_leaves_the_stop_whole():
    import time

    # serve's own pool starts an RSA-4096 generation at once (in the child process), and its
    # stop waits for that: a window wide enough for a second signal to land in
    process = subprocess.Popen([sys.executable, "-m", "byoklib", "serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().startswith("Key Protect mock listening on ")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read() == ""   # and no traceback
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_in_this_process_gives_the_signals_back_as_they_were():
    from byoklib.mock.http import serving
    from byoklib.mock.keypairs import test_only_key_pairs
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def announce_then_stop(line):
        assert signal.getsignal(signal.SIGTERM) is serving._interrupt   # serve's, meanwhile
        signal.raise_signal(signal.SIGTERM)
    serving.serve(port=0, key_pair_source=test_only_key_pairs(), announce=announce_then_stop)
    assert {number: signal.getsignal(number) for number in before} == before


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_refuses_a_port_no_socket_has_as_usage(port, capsys):
    from byoklib.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", port])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --port: a port is 0 to 65535\n")


def test_cannot_listen_says_why_in_cheroot_s_words_for_the_last_address():
    from byoklib.mock.http.serving import CannotListen
    for said, why in (("(('127.0.0.1', 80): [Errno 13] Permission denied)", "Permission denied"),
                      ("(('nosuch.invalid', 0): [Errno -2] Name or service not known)",
                       "Name or service not known")):   # getaddrinfo's are negative
        error = CannotListen("h", 1, OSError(f"No socket could be created -- {said}"))
        assert str(error) == f"cannot listen on h:1: {why}"


def test_serve_refuses_what_it_cannot_use_in_one_line_and_repeats_no_grant(tmp_path,
                                                                         monkeypatch):
    """Each a line naming the option and why, exit status 1, no traceback; the processes
    run side by side (each is a whole interpreter)."""
    import base64
    import socket

    from cryptography.hazmat.primitives import serialization

    monkeypatch.setenv("BYOKLIB_STATE_KEY", base64.b64encode(bytes(32)).decode())
    small = tmp_path / "rsa-2048.pem"
    small.write_bytes(primitives.generate_rsa_private_key(2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public = TOKEN_KEY_FILES[0].with_name("token-key-1.pub.pem")
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop-back")
    (tmp_path / "loop-back").symlink_to(loop)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cases = {
        ("--grant", "secret-token"):
            "--grant needs TOKEN=INSTANCE (a bearer token, '=', an instance id)",
        ("--state", str(tmp_path)): f"--state {tmp_path}: Is a directory",
        ("--state", str(tmp_path / "missing" / "state.json")):
            f"--state {tmp_path / 'missing' / 'state.json'}: No such file or directory",
        ("--token-key", str(tmp_path / "none.pem")):
            f"--token-key {tmp_path / 'none.pem'}: No such file or directory",
        ("--token-key", str(public)):
            f"--token-key {public}: not an unencrypted RSA private key in PEM",
        ("--token-key", str(small)): f"--token-key {small} is RSA-2048; import tokens are RSA-4096",
        ("--state", str(loop)): f"--state {loop}: Too many levels of symbolic links",
    }
    processes = {}
    try:
        for args in cases:
            processes[args] = serve_process("--port", "0", *args)
        processes[("--port", str(port))] = serve_process("--port", str(port))
        cases[("--port", str(port))] = f"cannot listen on 127.0.0.1:{port}: Address already in use"
        for args, process in processes.items():
            _, err = process.communicate(timeout=30)
            assert (process.returncode, err) == (1, cases[args] + "\n"), args
    finally:
        taken.close()
        for process in processes.values():
            if process.poll() is None:
                process.kill()
