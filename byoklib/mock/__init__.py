"""The service's side: an in-memory Key Protect that really verifies a secure import.

`hsm` holds every secret, `keypairs` makes or hands it the import tokens' key pairs,
`service/` is the model (no HTTP), `http/` its HTTP face.
`running_server()` is the entry point for people who use the mock in their own tests:

    with running_server() as kp:
        client = KeyProtectClient(kp.url, "my-instance", "any-token")
"""
from __future__ import annotations

import importlib

__all__ = ["running_server"]


def __getattr__(name: str):
    # The wing's front door loads the HTTP face only when asked for running_server, so
    # `import byoklib.mock.service` does not; what it hands out is serving's own function.
    if name != "running_server":
        raise AttributeError(f"module 'byoklib.mock' has no attribute {name!r}")
    value = importlib.import_module("byoklib.mock.http.serving").running_server
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
