"""byoklib: bring your own key into IBM Key Protect with an import token.

The public names are re-exported here so notebooks read
`from byoklib import encrypt_nonce, KeyProtectClient, running_server`.
They load lazily, so importing the client never pulls in the mock, and a
missing optional dependency (pandas for timing) only matters when used.
"""
from __future__ import annotations

import importlib
import os
from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

_EXPORTS = {
    "errors": ["KeyProtectError", "CATALOGUE"],
    "protocol": ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"],
    "primitives": [
        "generate_key_material", "encrypt_nonce", "decrypt_nonce", "wrap_key_material",
        "unwrap_key_material", "NonceAuthenticationError", "UnwrapError",
        "b64encode", "b64decode",
        "load_public_key", "load_private_key", "public_key_pem", "public_key_fingerprint",
        "token_payload_from_public_key", "public_key_from_token_payload",
        "generate_rsa_private_key",
    ],
    "client.token": ["ImportToken", "prepare_secure_import"],
    "client.keyprotect": ["KeyProtectClient", "byok_import"],
    "client.iam": ["iam_token"],
    "mock.hsm": ["HSM"],
    "mock.keypairs": ["KeyPairPool", "fixed_key_pairs"],
    "mock.service": ["KeyProtectService", "SystemClock", "ManualClock"],
    "mock.http.serving": ["running_server", "serve", "RunningServer"],
    "mock.http.app": ["create_app"],
    "tutorial.openssl": ["OpenSSL", "OpenSSLUnavailable", "OpenSSLError"],
    "tutorial.timing": ["measure", "measure_steps", "summarize", "plot_steps",
                        "plot_distribution", "plot_breakdown"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE) + ["data_path", "DATA_DIR"]

# What byoklib reads at run time (TEST-ONLY key pairs, test vectors) is package data, so an
# installed wheel finds it from any folder; the repository's data/README.md says where each
# file came from.
# Installed as files (wheels and editable installs are), so a plain Path serves.
DATA_DIR = Path(os.fspath(files("byoklib") / "data"))


def data_path(*parts: str) -> Path:
    """A file of byoklib's package data (`byoklib/data/`), wherever the kernel was started:
    `data_path("test-only", "token-key-1.pem")`, `data_path("vectors", "aes_gcm.json")`."""
    return DATA_DIR.joinpath(*parts)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'byoklib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"byoklib.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
