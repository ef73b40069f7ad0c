"""`byoklib kp ...` over real HTTP against the mock (on its ManualClock and TEST-ONLY token
keys): each verb's table and JSON, its refusals and exit codes, usage on a bad flag, the
credential only from the environment, and the offline encrypts opened by the `openssl`
command and by `cryptography` directly (not by byoklib)."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import TOKEN_KEY_FILES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib.__main__ import main
from byoklib.client import KeyProtectClient, cli
from byoklib.mock import running_server
from byoklib.mock.keypairs import fixed_key_pairs

ROOT = Path(__file__).resolve().parents[2]
DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$")
MATERIAL = bytes(range(32))
B64 = base64.b64encode


def b64(data: bytes) -> str:
    return B64(data).decode()


@pytest.fixture
def kp(server, monkeypatch, capsys):
    """Run `kp ARGS...` in-process against the mock; returns (exit status, stdout, stderr)."""
    for name in ("KP_API_KEY", "IBMCLOUD_API_KEY", "KP_URL", "KP_KEY_RING", "KP_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KP_TARGET_ADDR", server.url)
    monkeypatch.setenv("KP_INSTANCE_ID", "cli-instance")
    monkeypatch.setenv("KP_TOKEN", "cli-token")

    def run(*args):
        capsys.readouterr()
        try:
            status = main(["kp", *args])
        except SystemExit as exit_:
            status = exit_.code
        out, err = capsys.readouterr()
        return status, out, err

    run.server = server
    return run


def table(out: str) -> list[list[str]]:
    """The rows of a table printed by the CLI, cells split on runs of 3+ spaces."""
    return [re.split(r" {3,}", line.strip()) for line in out.strip().splitlines()]


def token_key():
    return serialization.load_pem_private_key(TOKEN_KEY_FILES[0].read_bytes(), None)


def payload_of(private_key) -> str:
    pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64(pem)


def shown(kp) -> dict:
    status, out, err = kp("import-token", "show")
    assert status == 0, err
    return json.loads(out)


def secure_fields(kp, material=MATERIAL):
    token = shown(kp)
    status, out, _ = kp("import-token", "key-encrypt", "-k", b64(material), "-p",
                        token["payload"], "-o", "json")
    encrypted_key = json.loads(out)["encryptedKey"]
    status, out, _ = kp("import-token", "nonce-encrypt", "-k", b64(material), "-n",
                        token["nonce"], "-o", "json")
    sealed = json.loads(out)
    return encrypted_key, sealed["encryptedNonce"], sealed["iv"]


# --- import-token create / show ----------------------------------------------------------------

def test_import_token_create_prints_the_table(kp):
    status, out, err = kp("import-token", "create", "-e", "300", "-m", "10")
    assert (status, err) == (0, "")
    rows = table(out)
    assert rows[0] == ["Created", "Expires", "Max Retrievals", "Remaining Retrievals"]
    created, expires, most, remaining = rows[1]
    assert DATE.match(created) and DATE.match(expires)
    assert (created, expires) == ("2026-01-01 12:00:00 +0000 UTC", "2026-01-01 12:05:00 +0000 UTC")
    assert (most, remaining) == ("10", "10")


def test_import_token_create_defaults_and_json(kp):
    status, out, _ = kp("import-token", "create", "-o", "json")
    assert status == 0
    token = json.loads(out)
    assert token["creationDate"] == "2026-01-01T12:00:00Z"
    assert token["expirationDate"] == "2026-01-01T12:10:00Z"       # 600 s by default
    assert token["maxAllowedRetrievals"] == token["remainingRetrievals"] == 1
    assert "payload" not in token and "nonce" not in token


def test_import_token_show_is_json_and_one_retrieval(kp):
    kp("import-token", "create", "-m", "2")
    first, second = shown(kp), shown(kp)
    assert set(first) == {"nonce", "payload"} and first == second
    assert base64.b64decode(first["payload"]).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(base64.b64decode(first["nonce"])) == 12
    status, out, err = kp("import-token", "show")           # the third retrieval of two
    assert (status, out) == (1, "")
    assert err.splitlines()[:2] == ["FAILED",
                                    "Status: 409  Reason: IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR"]
    assert err.splitlines()[2].startswith("Message: ")


def test_a_refused_token_policy_is_the_services_answer(kp):
    status, _, err = kp("import-token", "create", "-e", "299")
    assert status == 1 and "Status: 400" in err and "Reason: " in err
    status, _, err = kp("import-token", "show")
    assert status == 1 and "Status: 404  Reason: IMPORT_TOKEN_NOT_FOUND_ERR" in err


# --- the offline encrypts, checked by other implementations -----------------------------------

@pytest.fixture
def offline(monkeypatch, capsys):
    """kp with no service and no credential at all."""
    for name in ("KP_TARGET_ADDR", "KP_INSTANCE_ID", "KP_TOKEN", "KP_API_KEY",
                 "IBMCLOUD_API_KEY", "KP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KP_TARGET_ADDR", "http://127.0.0.1:9")   # nothing listens there

    def run(*args):
        capsys.readouterr()
        try:
            status = main(["kp", "import-token", *args])
        except SystemExit as exit_:
            status = exit_.code
        return (status, *capsys.readouterr())
    return run


def openssl_decrypt(tmp_path, ciphertext: bytes, digest: str) -> subprocess.CompletedProcess:
    (tmp_path / "wrapped.bin").write_bytes(ciphertext)
    return subprocess.run(
        ["openssl", "pkeyutl", "-decrypt", "-inkey", str(TOKEN_KEY_FILES[0]),
         "-in", str(tmp_path / "wrapped.bin"), "-pkeyopt", "rsa_padding_mode:oaep",
         "-pkeyopt", f"rsa_oaep_md:{digest}", "-pkeyopt", f"rsa_mgf1_md:{digest}"],
        capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_key_encrypt_offline_is_opened_by_the_openssl_command(offline, tmp_path):
    payload = payload_of(token_key())
    status, out, err = offline("key-encrypt", "-k", b64(MATERIAL), "-p", payload)
    assert (status, err) == (0, "")
    rows = table(out)
    assert rows[0] == ["Encrypted Key"] and len(rows) == 2
    wrapped = base64.b64decode(rows[1][0])
    assert len(wrapped) == 512
    opened = openssl_decrypt(tmp_path, wrapped, "sha256")
    assert opened.returncode == 0 and opened.stdout == MATERIAL
    assert openssl_decrypt(tmp_path, wrapped, "sha1").returncode != 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_key_encrypt_sha1_and_json(offline, tmp_path):
    payload = payload_of(token_key())
    status, out, _ = offline("key-encrypt", "-k", b64(MATERIAL), "-p", payload, "-a", "SHA1",
                             "--output", "json")
    assert status == 0 and set(json.loads(out)) == {"encryptedKey"}
    wrapped = base64.b64decode(json.loads(out)["encryptedKey"])
    assert openssl_decrypt(tmp_path, wrapped, "sha1").stdout == MATERIAL
    assert openssl_decrypt(tmp_path, wrapped, "sha256").returncode != 0


def test_key_encrypt_refuses_what_is_not_a_payload(offline):
    status, out, err = offline("key-encrypt", "-k", b64(MATERIAL), "-p", b64(b"not a key"))
    assert (status, out) == (1, "") and err.startswith("FAILED\n-p PUBLIC_KEY is not")
    status, _, err = offline("key-encrypt", "-k", "not base64!", "-p", payload_of(token_key()))
    assert status == 1 and "-k KEY_MATERIAL is not valid base64" in err
    status, _, err = offline("key-encrypt", "-k", b64(MATERIAL), "-p", "x", "-a", "MD5")
    assert status == 2 and "usage:" in err


def test_nonce_encrypt_offline_is_opened_by_aes_gcm_directly(offline):
    nonce = os.urandom(12)
    status, out, err = offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", b64(nonce))
    assert (status, err) == (0, "")
    rows = table(out)
    assert rows[0] == ["Encrypted Nonce", "IV"]
    sealed_text, iv_text = rows[1]
    assert (len(sealed_text), len(iv_text)) == (40, 16)   # 28 and 12 bytes in base64
    sealed, iv = base64.b64decode(sealed_text), base64.b64decode(iv_text)
    assert AESGCM(MATERIAL).decrypt(iv, sealed, None) == nonce
    status, out, _ = offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", b64(nonce), "-o", "json")
    fields = json.loads(out)
    assert set(fields) == {"encryptedNonce", "iv"} and fields["iv"] != iv_text   # a fresh IV
    assert AESGCM(MATERIAL).decrypt(base64.b64decode(fields["iv"]),
                                    base64.b64decode(fields["encryptedNonce"]), None) == nonce


def test_nonce_encrypt_cbc_is_aes_cbc_with_pkcs7(offline):
    nonce = os.urandom(12)
    status, out, _ = offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", b64(nonce), "-c",
                             "-o", "json")
    fields = json.loads(out)
    iv, sealed = base64.b64decode(fields["iv"]), base64.b64decode(fields["encryptedNonce"])
    assert (status, len(iv), len(sealed)) == (0, 16, 16)
    decryptor = Cipher(algorithms.AES(MATERIAL), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(sealed) + decryptor.finalize()
    assert unpadder.update(padded) + unpadder.finalize() == nonce


def test_nonce_encrypt_refuses_material_of_the_wrong_size(offline):
    status, out, err = offline("nonce-encrypt", "-k", b64(MATERIAL + b"\n"), "-n", b64(bytes(12)))
    assert (status, out) == (1, "") and "got 33" in err
    status, _, err = offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", "%%%")
    assert status == 1 and "-n NONCE is not valid base64" in err


@pytest.mark.parametrize("size", [0, 3, 11, 13, 16])
def test_nonce_encrypt_refuses_what_is_no_token_nonce(offline, size):
    status, out, err = offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", b64(bytes(size)))
    assert (status, out, err) == (
        1, "", f"FAILED\n-n NONCE must decode to the token's 12 bytes, got {size}\n")


# --- key create and the rest of the tutorial ---------------------------------------------------

def test_ibms_worked_example(kp):
    """The CLI reference's example 4, word for word but for the command's name."""
    assert kp("import-token", "create", "-e", "300", "-m", "10")[0] == 0
    encrypted_key, encrypted_nonce, iv = secure_fields(kp)
    status, out, err = kp("key", "create", "my-imported-root-key", "-k", encrypted_key,
                          "-n", encrypted_nonce, "-v", iv)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == ["Creating key: 'my-imported-root-key', in instance: 'cli-instance'...",
                         "OK"]
    rows = table("\n".join(lines[2:]))
    assert rows[0] == ["Key ID", "Key Name"] and rows[1][1] == "my-imported-root-key"
    with KeyProtectClient(kp.server.url, "cli-instance", "cli-token") as client:
        stored = client.get_key_metadata(rows[1][0])
        assert stored["imported"] is True and stored["extractable"] is False
        # the service holds exactly the material this test chose
        wrapped = client.wrap(rows[1][0], b"\x01" * 32)["ciphertext"]
        assert client.unwrap(rows[1][0], wrapped)["plaintext"] == b"\x01" * 32


def test_key_create_json_standard_description_and_plain_import(kp):
    status, out, _ = kp("key", "create", "std-key", "-s", "-D", "for tests", "-o", "json")
    key = json.loads(out)
    assert status == 0 and key["name"] == "std-key" and key["extractable"] is True
    assert key["description"] == "for tests" and {"id", "type", "state", "crn"} <= set(key)
    status, out, _ = kp("key", "create", "plain-import", "-k", b64(MATERIAL), "-o", "json")
    key = json.loads(out)
    assert status == 0 and key["extractable"] is False and key.get("imported") is True


def test_key_create_refusals(kp):
    status, out, err = kp("key", "create", "half", "-k", b64(MATERIAL), "-n", b64(bytes(28)))
    assert (status, out) == (1, "") and "-v IV" in err
    kp("import-token", "create", "-m", "5")
    encrypted_key, encrypted_nonce, _ = secure_fields(kp)
    status, _, err = kp("key", "create", "bad-iv", "-k", encrypted_key, "-n", encrypted_nonce,
                        "-v", b64(bytes(12)))
    assert status == 1
    assert "Status: 400  Reason: INCORRECT_NONCE_IV_ERR" in err.splitlines()
    status, _, err = kp("key", "create", "ringed", "--key-ring", "no-such-ring")
    assert status == 1 and "Status: 404" in err
    status, _, err = kp("key", "create", "wrong-size", "-k", b64(MATERIAL + b"\n"))
    assert status == 1 and "Status: 400" in err


def test_key_show_list_wrap_unwrap_delete(kp):
    _, out, _ = kp("key", "create", "root-a", "-o", "json")
    key_id = json.loads(out)["id"]
    status, out, _ = kp("key", "show", key_id)
    lines = out.splitlines()
    assert status == 0 and lines[:2] == [f"Grabbing info for key id: '{key_id}'...", "OK"]
    rows = table("\n".join(lines[2:]))
    assert rows[0][:2] == ["Key ID", "Key Name"] and rows[1][:2] == [key_id, "root-a"]
    assert "State" in rows[0] and rows[1][rows[0].index("State")] == "Active"
    status, out, _ = kp("key", "show", key_id, "-o", "json")
    assert json.loads(out)["id"] == key_id

    status, out, _ = kp("keys")
    rows = table("\n".join(out.splitlines()[2:]))
    assert rows[0] == ["Key ID", "Key Name"] and [key_id, "root-a"] in rows
    status, out, _ = kp("keys", "-o", "json")
    assert [k["id"] for k in json.loads(out)] == [key_id]

    status, out, _ = kp("key", "wrap", key_id, "-p", b64(MATERIAL), "-a", "ctx")
    rows = table(out)
    assert status == 0 and rows[0] == ["Ciphertext"]
    status, out, _ = kp("key", "unwrap", key_id, rows[1][0], "-a", "ctx")
    assert status == 0 and table(out) == [["Plaintext"], [b64(MATERIAL)]]
    status, _, err = kp("key", "unwrap", key_id, rows[1][0])           # without its AAD
    assert status == 1 and "Status: 422  Reason: UNPROCESSABLE_CIPHERTEXT_ERR" in err
    status, out, _ = kp("key", "wrap", key_id, "-o", "json")           # a generated DEK
    fields = json.loads(out)
    assert set(fields) == {"ciphertext", "plaintext"}
    _, out, _ = kp("key", "unwrap", key_id, fields["ciphertext"], "-o", "json")
    assert json.loads(out) == {"plaintext": fields["plaintext"]}

    status, out, _ = kp("key", "delete", key_id)
    assert status == 0 and out.splitlines()[:2] == [
        f"Deleting key: '{key_id}', from instance: 'cli-instance'...", "OK"]
    assert table("\n".join(out.splitlines()[2:])) == [["Deleted Key"], [key_id]]
    status, _, err = kp("key", "wrap", key_id)
    assert status == 1 and "Status: 410" in err
    status, _, err = kp("key", "delete", "no-such-key", "-o", "json")
    assert status == 1 and "Status: 404  Reason: KEY_NOT_FOUND_ERR" in err


# --- flags, settings, credentials --------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["import-token", "create", "--bogus"],
    ["import-token", "create", "-e", "ten"],
    ["import-token", "frobnicate"],
    ["key", "create"],                                       # KEY_NAME is required
    ["import-token", "key-encrypt", "-k", "AAAA"],           # -p is required
    ["import-token", "create", "-o", "yaml"],
    ["import-token", "create", "--exp", "300"],              # no abbreviations
])
def test_a_bad_flag_prints_usage_and_exits_2(kp, args):
    status, out, err = kp(*args)
    assert (status, out) == (2, "") and "usage:" in err


@pytest.mark.parametrize("flag", ["--token", "--api-key", "--apikey", "--bearer", "-t",
                                  "--password", "--iam-token"])
def test_no_argument_accepts_a_credential(kp, flag):
    status, _, err = kp("import-token", "create", flag, "secret-value")
    assert status == 2 and err.startswith("usage:") and flag in err
    assert "secret-value" not in err                       # the value is never echoed


def test_no_option_of_any_verb_names_a_credential():
    import argparse
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = set()
    for group in parser._subparsers._group_actions[0].choices.values():
        verbs = group._subparsers._group_actions[0].choices.values() if group._subparsers \
            else [group]   # `keys` is a verb of its own
        for verb in verbs:
            options.update(s for a in verb._actions for s in a.option_strings)
    assert options and not [o for o in options
                            if re.search(r"token|api|secret|pass|auth|bearer", o)]


def test_the_credential_and_instance_come_from_the_environment(kp, monkeypatch):
    monkeypatch.delenv("KP_TOKEN")
    status, out, err = kp("import-token", "create")
    assert (status, out) == (1, "") and "No credential: set KP_TOKEN" in err
    monkeypatch.setenv("KP_TOKEN", "cli-token")
    monkeypatch.delenv("KP_INSTANCE_ID")
    status, _, err = kp("import-token", "create")
    assert status == 1 and "-i INSTANCE_ID or set KP_INSTANCE_ID" in err
    monkeypatch.setenv("KP_RETRIES", "three")
    status, _, err = kp("import-token", "create", "-i", "other-instance")
    assert status == 1 and "KP_RETRIES must be a whole number" in err
    monkeypatch.setenv("KP_RETRIES", "2")
    status, out, _ = kp("import-token", "create", "-i", "other-instance", "-o", "json")
    assert status == 0
    with KeyProtectClient(kp.server.url, "other-instance", "t") as client:
        assert client.get_import_token_raw()["remainingRetrievals"] == 0


def test_an_api_key_is_exchanged_at_iam(monkeypatch, capsys, token_key_pairs):
    """KP_API_KEY goes to IAM (a scripted IAM here); the mock, in strict mode, accepts only
    the token IAM handed out."""
    from scripted_server import Scripted
    iam = Scripted()
    try:
        iam.reply(200, {"access_token": "from-iam", "expires_in": 3600})
        with running_server(grants={"from-iam": {"iam-instance"}},
                            key_pair_source=fixed_key_pairs(token_key_pairs)) as server:
            monkeypatch.delenv("KP_TOKEN", raising=False)
            monkeypatch.setenv("KP_API_KEY", "my-api-key")
            monkeypatch.setenv("KP_IAM_URL", iam.url + "/identity/token")
            monkeypatch.setenv("KP_TARGET_ADDR", server.url)
            status = main(["kp", "keys", "-i", "iam-instance", "-o", "json"])
            out, err = capsys.readouterr()
        assert (status, json.loads(out)) == (0, [])
        assert iam.last["path"] == "/identity/token" and b"apikey=my-api-key" in iam.last["body"]
        assert "my-api-key" not in out + err
    finally:
        iam.close()


def test_an_unreachable_service_is_a_failure_not_a_traceback(kp, monkeypatch):
    monkeypatch.setenv("KP_TARGET_ADDR", "http://127.0.0.1:9")
    status, out, err = kp("keys")
    assert status == 1 and err.startswith("FAILED\nConnectionError: could not reach http://127")


def press_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_a_request_is_said_in_a_line_and_goes_on_to_the_caller(kp, monkeypatch,
                                                                            capsys):
    import requests.adapters
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", press_ctrl_c)
    try:
        kp("key", "create", "interrupted-key")
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail("Ctrl-C was swallowed: an in-process caller could not stop")
    assert capsys.readouterr().err == ("interrupted: a request under way may still be carried "
                                       "out by the service\n")


def test_ctrl_c_in_an_offline_verb_speaks_of_no_request(offline, monkeypatch, capsys):
    from byoklib.client import cli
    monkeypatch.setattr(cli.primitives, "encrypt_nonce", press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        offline("nonce-encrypt", "-k", b64(MATERIAL), "-n", b64(bytes(12)))
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_ends_the_command_by_sigint_with_one_line_so_a_shell_stops_too():
    import signal
    import socket
    listener = socket.create_server(("127.0.0.1", 0))   # accepts, never answers
    accepted, held = threading.Event(), []
    threading.Thread(target=lambda: (held.append(listener.accept()), accepted.set()),
                     daemon=True).start()
    env = dict(os.environ, KP_TARGET_ADDR=f"http://127.0.0.1:{listener.getsockname()[1]}",
               KP_INSTANCE_ID="i", KP_TOKEN="t")
    env.pop("KP_API_KEY", None)
    env.pop("PYTHONUNBUFFERED", None)   # stdout to a pipe is block-buffered, as in a script
    process = subprocess.Popen([sys.executable, "-m", "byoklib", "kp", "keys"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert accepted.wait(30), "the command did not connect"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        listener.close()
    assert process.returncode == -signal.SIGINT   # a shell sees 130 and stops its script
    assert err == "interrupted: a request under way may still be carried out by the service\n"
    assert out == "Retrieving keys...\n"   # flushed: Python's own shutdown ran


def test_a_diagnosis_header_is_printed_on_a_refusal(monkeypatch, capsys):
    from scripted_server import Scripted, kp_error
    server = Scripted()
    try:
        server.reply(400, kp_error(400, "INCORRECT_NONCE_IV_ERR", "the nonce did not open"),
                     {"Byoklib-Diagnosis": "OAEP_SHA1: the key was wrapped with SHA-1"})
        monkeypatch.setenv("KP_TARGET_ADDR", server.url)
        monkeypatch.setenv("KP_INSTANCE_ID", "i")
        monkeypatch.setenv("KP_TOKEN", "t")
        status = main(["kp", "key", "create", "k1", "-k", "AAAA", "-n", "AAAA", "-v", "AAAA"])
        _, err = capsys.readouterr()
    finally:
        server.close()
    assert status == 1
    assert err.splitlines()[-3:] == ["Status: 400  Reason: INCORRECT_NONCE_IV_ERR",
                                     "Message: the nonce did not open",
                                     "Byoklib-Diagnosis: OAEP_SHA1: the key was wrapped with SHA-1"]


def test_python_dash_m_and_its_usage_in_a_real_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "byoklib", "kp", "import-token", "create",
                           "--token", "x"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m byoklib kp import-token create")


def test_the_console_script_is_byoklib_script(monkeypatch, capsys):
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"byoklib": "byoklib.__main__:script"}
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/byoklib"])
    with pytest.raises(SystemExit) as exit_:
        main(["kp", "keys", "--nope"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("usage: byoklib kp keys")


def test_an_api_key_iam_refuses_is_a_refusal_without_the_key(monkeypatch, capsys):
    from scripted_server import Scripted
    iam = Scripted()
    try:
        iam.reply(400, {"errorCode": "BXNIM0415E",
                        "errorMessage": "Provided API key could not be found: wrong-key"})
        for name in ("KP_TOKEN", "KP_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IBMCLOUD_API_KEY", "wrong-key")
        monkeypatch.setenv("KP_IAM_URL", iam.url + "/identity/token")
        monkeypatch.setenv("KP_TARGET_ADDR", "http://127.0.0.1:9")
        status = main(["kp", "import-token", "create", "-i", "i"])
        out, err = capsys.readouterr()
    finally:
        iam.close()
    assert (status, out) == (1, "")
    assert "Status: 400  Reason: BXNIM0415E" in err and "wrong-key" not in err


# --- the mock's import doctor, as the CLI shows it ----------------------------------------------

def refused_import(kp, *, hash_="SHA256", cbc=False):
    kp("import-token", "create", "-m", "3")
    token = shown(kp)
    _, out, _ = kp("import-token", "key-encrypt", "-k", b64(MATERIAL), "-p", token["payload"],
                   "-a", hash_, "-o", "json")
    encrypted_key = json.loads(out)["encryptedKey"]
    _, out, _ = kp("import-token", "nonce-encrypt", "-k", b64(MATERIAL), "-n", token["nonce"],
                   "-o", "json", *(["-c"] if cbc else []))
    sealed = json.loads(out)
    return kp("key", "create", "doctored", "-k", encrypted_key, "-n", sealed["encryptedNonce"],
              "-v", sealed["iv"])


@pytest.mark.parametrize("options, code", [({"hash_": "SHA1"}, "OAEP_SHA1"),
                                           ({"cbc": True}, "NONCE_CBC")])
def test_the_doctors_diagnosis_is_printed(kp, options, code):
    status, _, err = refused_import(kp, **options)
    lines = err.splitlines()
    assert status == 1 and lines[0] == "FAILED" and lines[1].startswith("Status: 400  Reason: ")
    assert lines[-1].startswith(f"Byoklib-Diagnosis: {code}: ")


def test_a_faithful_mock_sends_no_diagnosis(monkeypatch, capsys, service):
    with running_server(service, faithful=True) as server:
        monkeypatch.setenv("KP_TARGET_ADDR", server.url)
        monkeypatch.setenv("KP_INSTANCE_ID", "cli-instance")
        monkeypatch.setenv("KP_TOKEN", "cli-token")

        def run(*args):
            capsys.readouterr()
            status = main(["kp", *args])
            return (status, *capsys.readouterr())
        status, _, err = refused_import(run, hash_="SHA1")
    assert status == 1 and "Reason: " in err and "Byoklib-Diagnosis" not in err


# --- input no request can carry: a clear FAILED, never a traceback or the value ---------------

@pytest.mark.parametrize("variable,value,said", [
    ("KP_TOKEN", "secret-token\nX-Injected: 1", "a bearer token is visible ASCII"),
    ("KP_TOKEN", "t\u00f6ken-secret", "a bearer token is visible ASCII"),
    ("KP_INSTANCE_ID", "inst\u20ac", "-i INSTANCE_ID / KP_INSTANCE_ID must be printable ASCII"),
    ("KP_KEY_RING", "ring\x7f", "--key-ring / KP_KEY_RING must be printable ASCII"),
])
def test_a_header_value_no_request_can_carry_is_refused_without_echoing_it(
        kp, monkeypatch, variable, value, said):
    monkeypatch.setenv(variable, value)
    status, out, err = kp("keys")
    assert status == 1 and err.startswith("FAILED\n") and said in err
    assert "Traceback" not in err and "secret" not in err + out


def test_an_empty_key_id_is_refused_cleanly(kp):
    status, _, err = kp("key", "show", "")
    assert (status, err) == (1, "FAILED\na key id (or alias) is required\n")


def test_a_value_argparse_cannot_use_is_not_repeated_in_the_usage_error(kp):
    material = b64(MATERIAL)   # typed where a number belongs
    status, _, err = kp("import-token", "create", "-m", material)
    assert status == 2 and "-m/--max-retrievals: invalid int value" in err
    assert material not in err
    status, _, err = kp("import-token", "key-encrypt", "-k", material, "-p", "x", "-a", material)
    assert status == 2 and "invalid choice" in err and material not in err


def test_key_encrypt_refuses_material_that_is_no_aes_key(kp):
    public = payload_of(token_key())
    status, _, err = kp("import-token", "key-encrypt", "-k", b64(b"12345"), "-p", public)
    assert (status, err) == (1, "FAILED\n-k KEY_MATERIAL must decode to 16, 24 or 32 bytes "
                                "(AES), got 5\n")


def test_key_encrypt_refuses_a_public_key_no_token_has(kp):
    from cryptography.hazmat.primitives.asymmetric import rsa
    small = payload_of(rsa.generate_private_key(65537, 1024))
    status, _, err = kp("import-token", "key-encrypt", "-k", b64(MATERIAL), "-p", small)
    assert (status, err) == (1, "FAILED\n-p PUBLIC_KEY is RSA-1024; import tokens are "
                                "RSA-4096\n")


@pytest.mark.parametrize("args", [["SECRET-VALUE"], ["key", "-k", "SECRET-VALUE", "create", "x"],
                                  ["import-token", "-k", "SECRET-VALUE", "-p", "P"],
                                  ["keys", "SECRET-VALUE"],
                                  ["key", "delete", "x", "-f=SECRET-VALUE"],   # a flag's value
                                  ["key", "create", "a", "-sSECRET-VALUE"],
                                  ["--h=SECRET-VALUE"],
                                  ["import-token", "show", "-kSECRET-VALUE"]])   # attached
def test_a_value_typed_where_a_verb_belongs_is_not_repeated(kp, args):
    status, out, err = kp(*args)
    assert (status, out) == (2, "") and err.startswith("usage:")
    assert "SECRET" not in err


@pytest.mark.parametrize("args", [["SECRET-VALUE"], ["--vers=SECRET-VALUE"],
                                  ["serve", "--t=SECRET-VALUE"]])   # ambiguous: --token-key?
def test_nor_where_a_command_belongs(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and "SECRET" not in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback(server):
    """`byoklib kp keys -o json | head -1`: the pipe closes before the CLI has written."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KP_TARGET_ADDR": server.url,
           "KP_INSTANCE_ID": "cli-instance", "KP_TOKEN": "cli-token"}
    env.pop("PYTHONUNBUFFERED", None)   # a pipe's stdout is buffered, as in anyone's shell
    process = subprocess.Popen([sys.executable, "-m", "byoklib", "kp", "keys", "-o", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()   # long before the interpreter has started and asked the mock
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (1, b"")


def test_a_key_id_with_a_line_break_is_echoed_escaped(kp):
    status, out, err = kp("key", "show", "no-such-key\nOK")
    assert out == "Grabbing info for key id: 'no-such-key\\nOK'...\n"
    assert status == 1 and "Reason: KEY_NOT_FOUND_ERR" in err


def test_an_answer_too_large_says_so_not_that_the_service_was_unreachable(kp, monkeypatch):
    from byoklib.client import transport
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 10)
    status, _, err = kp("keys")
    assert status == 1 and err.startswith("FAILED\nContentDecodingError: the answer is larger")
    assert "could not reach" not in err and "(from http://127.0.0.1:" in err


def test_a_url_without_its_scheme_is_named_as_such(kp, monkeypatch):
    monkeypatch.setenv("KP_TARGET_ADDR", "127.0.0.1:9")
    status, _, err = kp("keys")
    assert (status, err) == (1, "FAILED\nKP_TARGET_ADDR must be a URL: https://... (http:// "
                                "for a local mock)\n")


def test_an_unreachable_url_is_shown_without_its_query(kp, monkeypatch):
    monkeypatch.setenv("KP_TARGET_ADDR", "http://127.0.0.1:9")
    status, _, err = kp("keys", "-i", "inst")
    assert status == 1 and "could not reach http://127.0.0.1:9/api/v2/keys" in err


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:9",
                                 "http://user:hunter2@127.0.0.1:99999",
                                 "http://127.0.0.1:99999/?token=hunter2",
                                 "http://127.0.0.1:9/?token=hunter2"])
def test_a_url_with_a_secret_in_it_is_refused_without_showing_it(kp, monkeypatch, url):
    monkeypatch.setenv("KP_TARGET_ADDR", url)
    status, _, err = kp("keys")
    assert status == 1 and "the service URL" in err and "127.0.0.1" in err
    assert "hunter2" not in err
