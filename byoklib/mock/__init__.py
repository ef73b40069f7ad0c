"""The service's side: an in-memory Key Protect that really verifies a secure import.

`hsm` holds every secret, `keypairs` makes or hands it the import tokens' key pairs,
`service/` is the model (no HTTP), `http/` its HTTP face.
`running_server()` is the entry point for people who use the mock in their own tests:

    with running_server() as kp:
        client = KeyProtectClient(kp.url, "my-instance", "any-token")
"""
from __future__ import annotations


def running_server(*args, **kwargs):
    """Serve the mock from a background thread on 127.0.0.1; yields a `RunningServer`
    (see byoklib.mock.http.serving)."""
    # the wing's front door, so `import byoklib.mock.service` need not load the HTTP face
    from byoklib.mock.http.serving import running_server as serving
    return serving(*args, **kwargs)


__all__ = ["running_server"]
