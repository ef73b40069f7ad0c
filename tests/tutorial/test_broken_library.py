"""A crypto library broken *self-consistently* inside the kernel must fail the notebooks.

If pyca/cryptography sealed and opened (or wrapped and unwrapped) the same wrong way, byoklib
and the in-process mock would still accept each other, and every check that compares
byoklib with byoklib, or with OpenSSL's own command where OpenSSL shares the bug, would
pass. The witnesses of notebooks 03 and 04 share no code with that library, so the run
must end in failed checks. Each test injects a first cell that breaks the library before
byoklib is imported, runs the notebook with papermill, and expects it to fail for the
right reason: the witness rows say ✘ while the service still accepts the import.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PARAMETERS = {"KP_URL": "", "KP_INSTANCE_ID": "", "KP_API_KEY": "", "KP_TOKEN": ""}

# AES-GCM whose tag is off by one bit, put right again when opening: self-consistent, so
# the mock (same process, same library) accepts byoklib's seals; the body stays right, so
# openssl's CTR check alone would not notice.
BROKEN_GCM_TAG = '''
import cryptography.hazmat.primitives.ciphers.aead as _aead
_RealAESGCM = _aead.AESGCM


class _SelfConsistentlyWrongAESGCM:
    generate_key = staticmethod(_RealAESGCM.generate_key)

    def __init__(self, key):
        self._real = _RealAESGCM(key)

    def encrypt(self, nonce, data, aad):
        out = bytearray(self._real.encrypt(nonce, data, aad))
        out[-1] ^= 0x01
        return bytes(out)

    def decrypt(self, nonce, data, aad):
        fixed = bytearray(data)
        fixed[-1] ^= 0x01
        return self._real.decrypt(nonce, bytes(fixed), aad)


_aead.AESGCM = _SelfConsistentlyWrongAESGCM
'''

# OAEP that silently uses MGF1-SHA-1 whatever it is asked for, on both sides.
BROKEN_OAEP_MGF1 = '''
from cryptography.hazmat.primitives import hashes as _hashes
from cryptography.hazmat.primitives.asymmetric import padding as _padding
_RealOAEP = _padding.OAEP


class _OAEPWithMGF1SHA1(_RealOAEP):
    def __init__(self, mgf, algorithm, label):
        super().__init__(mgf=_padding.MGF1(_hashes.SHA1()), algorithm=algorithm, label=label)


_padding.OAEP = _OAEPWithMGF1SHA1
'''


def run_broken(name: str, patch: str, folder: Path, monkeypatch) -> str:
    for variable in PARAMETERS:
        monkeypatch.delenv(variable, raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("# injected by test_broken_library\n" + patch))
    source, output = folder / f"broken-{name}", folder / name
    nbformat.write(nb, source)
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(str(source), str(output), parameters=PARAMETERS,
                                   cwd=str(folder), kernel_name="python3", progress_bar=False)
    assert "checks failed" in str(failure.value)
    done = nbformat.read(output, as_version=4)
    return "\n".join(o.get("text", "") for c in done.cells for o in c.get("outputs", []))


def test_a_self_consistent_gcm_tag_bug_fails_notebook_03(tmp_path, monkeypatch):
    said = run_broken("03_seal_the_nonce.ipynb", BROKEN_GCM_TAG, tmp_path, monkeypatch)
    # the break is self-consistent: the mock still accepts byoklib's import, openssl's CTR agrees
    assert "✔ the same import with the raw nonce sealed is accepted (201)" in said
    assert "✔ GCM ciphertext = openssl AES-256-CTR keystream" in said
    # and the witnesses that share no code with the library say no
    assert "✘ the sealed nonce (ciphertext and tag) is the same, byte for byte" in said
    assert "PyCryptodome AES.MODE_GCM ✘ DISAGREES" in said
    assert "✘ the tag alone, computed by hand from H and E_K(J0)" in said


def test_a_self_consistent_oaep_bug_fails_notebook_04(tmp_path, monkeypatch):
    said = run_broken("04_wrap_the_key.ipynb", BROKEN_OAEP_MGF1, tmp_path, monkeypatch)
    assert "✔ the service imports byoklib's own wrap (201)" in said
    assert "✘ byoklib's payload decodes, from first principles" in said
    assert "PyCryptodome PKCS1_OAEP ✘ DISAGREES" in said
