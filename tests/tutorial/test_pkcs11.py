"""byoklib.tutorial.pkcs11 on a real SoftHSM2 token: the temporary token's life, what
SoftHSM 2.6.1 does and refuses (OAEP with SHA-1 only), and the client half of the import
made in the token and accepted by the mock's HPCS flavour, refused by Key Protect's.

Skipped, with how to install them, only where SoftHSM2 or python-pkcs11 is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import TOKEN_KEY_FILES

from byoklib import primitives
from byoklib.client import KeyProtectClient
from byoklib.errors import KeyProtectError
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.service import KeyProtectService
from byoklib.protocol import RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256
from byoklib.tutorial import pkcs11 as p11

REASON = p11.missing()


def test_missing_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(p11, "MODULE_PATHS", (str(tmp_path / "no-such-libsofthsm2.so"),))
    monkeypatch.delenv(p11.MODULE_ENV, raising=False)
    reason = p11.missing()
    if reason.startswith("python-pkcs11"):      # the library itself is absent here
        assert "pip install python-pkcs11" in reason
    else:
        assert "libsofthsm2.so was not found" in reason
    assert "apt-get install softhsm2" in reason and "brew install softhsm" in reason
    with pytest.raises(RuntimeError, match="apt-get install softhsm2"):
        p11.SoftHSM().start()


def test_ckr_names():
    class ArgumentsBad(Exception):
        pass

    class KeyNotWrappable(Exception):
        pass

    assert p11.ckr(ArgumentsBad()) == "CKR_ARGUMENTS_BAD"
    assert p11.ckr(KeyNotWrappable()) == "CKR_KEY_NOT_WRAPPABLE"


def test_ckr_names_the_codes_python_pkcs11_spells_otherwise_and_invents_none():
    exceptions = pytest.importorskip("pkcs11.exceptions")
    assert p11.ckr(exceptions.SlotIDInvalid()) == "CKR_SLOT_ID_INVALID"
    assert p11.ckr(exceptions.TokenNotRecognised()) == "CKR_TOKEN_NOT_RECOGNIZED"
    assert p11.ckr(exceptions.AnotherUserAlreadyLoggedIn()) == \
        "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"
    assert p11.ckr(exceptions.FunctionCancelled()) == "CKR_FUNCTION_CANCELED"
    for own in (exceptions.NoSuchToken(), exceptions.MultipleObjectsReturned(),
                exceptions.PKCS11Error("Buffer was too small")):   # several codes, or none
        assert p11.ckr(own) == f"{type(own).__name__} (python-pkcs11's, no CKR_ code)"


def test_a_softhsm_module_variable_naming_no_file_is_said_so(monkeypatch, tmp_path):
    pytest.importorskip("pkcs11")
    monkeypatch.setenv(p11.MODULE_ENV, str(tmp_path / "typo.so"))
    assert p11.missing().startswith(f"${p11.MODULE_ENV} names {tmp_path / 'typo.so'}, "
                                    "which is no file")


needs_token = pytest.mark.skipif(REASON is not None, reason=str(REASON))


@pytest.fixture
def hsm():
    with p11.SoftHSM(label="byok-test") as token:
        yield token


def root_key(session, **template):
    from pkcs11 import Attribute, KeyType, MechanismFlag
    return session.generate_key(
        KeyType.AES, 256, store=False,
        capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
        template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True, **template})


@needs_token
def test_token_lives_in_a_temporary_folder_and_is_removed(monkeypatch):
    monkeypatch.setenv("SOFTHSM2_CONF", "/etc/softhsm/softhsm2.conf")
    token = p11.SoftHSM(label="byok-test").start()
    folder = token.folder
    try:
        assert os.environ["SOFTHSM2_CONF"] == str(folder / "softhsm2.conf")
        assert str(folder / "tokens") in Path(os.environ["SOFTHSM2_CONF"]).read_text()
        assert token.token.label == "byok-test" and token.token_files()
        assert "********" in token.init_command and token._pin not in token.init_command
        assert token._pin not in repr(token)
    finally:
        token.close()
    assert not folder.exists()
    assert os.environ["SOFTHSM2_CONF"] == "/etc/softhsm/softhsm2.conf"
    token.close()                                   # a second close does nothing


@needs_token
def test_a_token_never_started_or_started_twice_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.setenv("SOFTHSM2_CONF", "/etc/softhsm/softhsm2.conf")
    p11.SoftHSM().close()
    assert os.environ["SOFTHSM2_CONF"] == "/etc/softhsm/softhsm2.conf"
    with p11.SoftHSM(label="once") as token:
        folder = token.folder
        with pytest.raises(RuntimeError, match="started already"):
            token.start()
        assert token.session.generate_random(64)   # still the same, working token
    assert not folder.exists()
    assert os.environ["SOFTHSM2_CONF"] == "/etc/softhsm/softhsm2.conf"


@needs_token
def test_a_second_token_is_refused_and_the_first_keeps_working():
    """SoftHSM2 reads its configuration once: a second token could not be seen, and
    closing it must not finalise the library under the first."""
    with p11.SoftHSM(label="first") as first:
        with pytest.raises(RuntimeError, match="another SoftHSM token"):
            p11.SoftHSM(label="second").start()
        assert first.session.generate_random(64)


@needs_token
def test_a_softhsm2_the_process_already_initialised_is_neither_used_nor_finalised(tmp_path,
                                                                                monkeypatch):
    import pkcs11
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "own.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    theirs = pkcs11.lib(p11.module_path())   # the practitioner's own use of SoftHSM2
    try:
        with pytest.raises(RuntimeError, match="initialised in this process already"):
            p11.SoftHSM(label="ours").start()
        assert theirs.initialized and os.environ["SOFTHSM2_CONF"] == str(conf)
    finally:
        theirs.finalize()


@needs_token
def test_what_softhsm2_util_refuses_is_said_without_the_pins(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="at most 32 bytes"):
        p11.SoftHSM(label="x" * 33).start()
    fake = tmp_path / "softhsm2-util"
    fake.write_text("#!/bin/sh\necho 'ERROR: Could not initialize the token.' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    token = p11.SoftHSM(label="refused")
    with pytest.raises(RuntimeError) as refused:
        token.start()
    assert str(refused.value) == ("softhsm2-util could not make the token: ERROR: Could not "
                                  "initialize the token.")
    assert token._pin not in repr(refused.value) and token._so_pin not in repr(refused.value)
    assert token.folder is None   # removed


@needs_token
def test_the_pins_on_softhsm2_util_s_command_line_open_nothing(monkeypatch, tmp_path):
    """Any local user reads a command line in /proc: softhsm2-util's PINs are replaced
    through C_SetPIN before the token is used."""
    import pkcs11
    seen = []
    real_run = p11.subprocess.run

    def recording_run(command, **options):
        seen.append(list(command))
        return real_run(command, **options)

    monkeypatch.setattr(p11.subprocess, "run", recording_run)
    with p11.SoftHSM(label="pins") as token:
        command = seen[-1]
        so_pin, user_pin = (command[command.index(flag) + 1] for flag in ("--so-pin", "--pin"))
        assert {so_pin, user_pin}.isdisjoint({token._so_pin, token._pin})
        token.session.close()
        token.session = None
        # the officer first: python-pkcs11 leaves a session open when a login fails, and
        # an open read-only session bars an officer's login
        with pytest.raises(pkcs11.PinIncorrect):
            token.token.open(rw=True, so_pin=so_pin)
        with pytest.raises(pkcs11.PinIncorrect):
            token.token.open(rw=True, user_pin=user_pin)
        token.session = token.token.open(user_pin=token._pin, rw=True)


@needs_token
def test_two_tokens_one_after_the_other_in_one_process():
    """The library is finalised at close and initialised again, reading the new config."""
    for label in ("first", "second"):
        with p11.SoftHSM(label=label) as token:
            assert token.token.label == label


@needs_token
def test_softhsm_oaep_wraps_with_sha1_only(hsm):
    import pkcs11
    from pkcs11 import Mechanism

    private = primitives.load_private_key(TOKEN_KEY_FILES[0].read_bytes())   # TEST-ONLY
    public = p11.import_rsa_public_key(hsm.session, primitives.public_key_pem(
        private.public_key()))
    key = root_key(hsm.session)
    with pytest.raises(pkcs11.PKCS11Error) as refused:
        public.wrap_key(key, mechanism=Mechanism.RSA_PKCS_OAEP,
                        mechanism_param=p11.oaep("SHA-256"))
    assert p11.ckr(refused.value) == "CKR_ARGUMENTS_BAD"
    wrapped = public.wrap_key(key, mechanism=Mechanism.RSA_PKCS_OAEP,
                              mechanism_param=p11.oaep("SHA-1"))
    # an independent witness (OpenSSL through cryptography) decodes it as OAEP SHA-1 only
    assert len(primitives.unwrap_key_material(wrapped, private, RSAES_OAEP_SHA_1)) == 32
    with pytest.raises(ValueError):
        primitives.unwrap_key_material(wrapped, private, RSAES_OAEP_SHA_256)


@needs_token
def test_sensitive_key_and_session_public_key_attributes(hsm):
    from pkcs11 import Attribute

    key = root_key(hsm.session)
    rows = {row["attribute"]: row["value"] for row in p11.attribute_rows(
        key, ["SENSITIVE", "EXTRACTABLE", "NEVER_EXTRACTABLE", "LOCAL", "VALUE"])}
    assert rows == {"CKA_SENSITIVE": True, "CKA_EXTRACTABLE": True,
                    "CKA_NEVER_EXTRACTABLE": False, "CKA_LOCAL": True,
                    "CKA_VALUE": "CKR_ATTRIBUTE_SENSITIVE"}
    pem = TOKEN_KEY_FILES[0].with_name("token-key-1.pub.pem").read_text()   # TEST-ONLY
    public = p11.import_rsa_public_key(hsm.session, pem)
    assert public[Attribute.TOKEN] is False and public[Attribute.WRAP] is True
    assert public[Attribute.ENCRYPT] is public[Attribute.VERIFY_RECOVER] is False


@needs_token
def test_only_an_rsa_4096_public_key_becomes_a_wrapping_key(hsm):
    from cryptography.hazmat.primitives.asymmetric import ec

    small = primitives.public_key_pem(primitives.generate_rsa_private_key(1024).public_key())
    with pytest.raises(ValueError, match="public key is RSA-1024; import tokens are RSA-4096"):
        p11.import_rsa_public_key(hsm.session, small)
    from cryptography.hazmat.primitives import serialization
    curve = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="not an RSA public key"):
        p11.import_rsa_public_key(hsm.session, curve)


@needs_token
def test_mechanism_rows(hsm):
    from pkcs11 import Mechanism

    rows = {row["mechanism"]: row for row in p11.mechanism_rows(
        hsm.token.slot, [Mechanism.RSA_PKCS_OAEP, Mechanism.AES_GCM, Mechanism.AES_KEY_GEN])}
    oaep = rows["CKM_RSA_PKCS_OAEP"]
    assert oaep["listed"] and oaep["WRAP"] == oaep["UNWRAP"] == "yes"
    assert oaep["GENERATE"] == "no"
    gcm = rows["CKM_AES_GCM"]
    assert gcm["ENCRYPT"] == gcm["DECRYPT"] == "yes" and gcm["WRAP"] == "?"
    assert rows["CKM_AES_KEY_GEN"]["GENERATE"] == "yes"


@needs_token
def test_token_made_import_is_accepted_by_hpcs_and_refused_by_key_protect(hsm, clock,
                                                                          token_key_pairs):
    import pkcs11
    from pkcs11 import Mechanism

    from byoklib.mock import running_server

    key = root_key(hsm.session)
    results = {}
    for flavor in ("keyprotect", "hpcs"):
        service = KeyProtectService(clock=clock, hsm=HSM(fixed_key_pairs(token_key_pairs)),
                                    flavor=flavor)
        with running_server(service) as server:
            client = KeyProtectClient(server.url, "instance", "token")
            client.create_import_token()
            token = client.get_import_token()
            iv = hsm.session.generate_random(96)
            sealed = key.encrypt(token.nonce, mechanism=Mechanism.AES_GCM,
                                 mechanism_param=pkcs11.GCMParams(iv, None, 128))
            public = p11.import_rsa_public_key(hsm.session, token.public_key_pem)
            payload = public.wrap_key(key, mechanism=Mechanism.RSA_PKCS_OAEP,
                                      mechanism_param=p11.oaep("SHA-1"))
            try:
                created = client.create_key("from-token", payload=payload,
                                            encrypted_nonce=sealed, iv=iv,
                                            encryption_algorithm=RSAES_OAEP_SHA_1)
                wrapped = client.wrap(created["id"])
                assert client.unwrap(created["id"], wrapped["ciphertext"])["plaintext"] == \
                    wrapped["plaintext"]
                results[flavor] = "imported"
            except KeyProtectError as error:
                results[flavor] = error.code
    assert results == {"keyprotect": "INVALID_FIELD_ERR", "hpcs": "imported"}


def test_the_notebook_ends_cleanly_without_softhsm(tmp_path, monkeypatch):
    """Where SoftHSM2 is missing (here: a module path that does not exist), notebook 10
    says how to install it and still ends with its Checks table passed."""
    import nbformat
    import papermill

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "10_your_own_hsm.ipynb"
    monkeypatch.setenv(p11.MODULE_ENV, str(tmp_path / "no-such-libsofthsm2.so"))
    for name in ("KP_URL", "KP_INSTANCE_ID", "KP_API_KEY", "KP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / notebook.name
    papermill.execute_notebook(str(notebook), str(out), cwd=str(tmp_path),
                               kernel_name="python3", progress_bar=False)
    text = "\n".join(output.get("text", "") for cell in nbformat.read(out, 4).cells
                     for output in cell.get("outputs", []))
    assert "SKIPPED: no PKCS#11 token here" in text and "apt-get install softhsm2" in text
    assert "ALL 1 CHECKS PASSED" in text
