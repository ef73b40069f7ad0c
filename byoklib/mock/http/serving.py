"""Serving the mock's WSGI app: `running_server()` (a background thread on an ephemeral
port, for tests and notebooks) and `serve()` (blocking, for `python -m byoklib serve`)."""
from __future__ import annotations

import logging
import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import KeyPairPool
from byoklib.mock.http.app import KeyProtectApp, create_app, http_error_page
from byoklib.mock.http.exchange import MAX_BODY_BYTES
from byoklib.mock.http.strict import Limits, StrictServer
from byoklib.mock.service import KeyProtectService

log = logging.getLogger("byoklib.mock.http")


# --- serving ------------------------------------------------------------------------------

def _stop_on_signals() -> dict:
    """SIGINT and SIGTERM end `serve()` even when the shell started us with SIGINT
    ignored (as background jobs are); returns the handlers they had (none are set off the
    main thread, where Python cannot set them)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, _interrupt)
            for number in (signal.SIGINT, signal.SIGTERM)}


def _set_handlers(previous: dict, handler=None) -> None:
    """Give the signals of `previous` `handler`; with None, their handlers of before."""
    for number, before in previous.items():
        if handler is not None:
            signal.signal(number, handler)
        else:   # None: a handler not set from Python, which the default stands for
            signal.signal(number, signal.SIG_DFL if before is None else before)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@dataclass
class RunningServer:
    url: str
    host: str
    port: int
    service: KeyProtectService
    clock: object
    app: KeyProtectApp


def build_server(service=None, *, host="127.0.0.1", port=0, grants=None, clock=None,
                 key_pair_source=None, limits=None, poll_interval=0.5, faithful=False,
                 flavor=None):
    """(HTTP server, bound and listening; app; pool or None): the pool is ours to close,
    and starts making key pairs at the first token (`KeyPairPool.take`), so a mock that
    makes none generates none and stops at once. `faithful` turns the import doctor off:
    no diagnosis, no Byoklib-Diagnosis header. `flavor` ("hpcs" or the default Key
    Protect, byoklib.mock.flavors) is for a service made here."""
    pool = None
    if service is None:
        if key_pair_source is None:
            pool = key_pair_source = KeyPairPool()
        service = KeyProtectService(clock=clock, hsm=HSM(key_pair_source, doctor=not faithful),
                                    flavor=flavor)
    app = create_app(service, grants, faithful=faithful)
    server = StrictServer((host, port), app, max_body=MAX_BODY_BYTES,
                          error_page=http_error_page, limits=limits or Limits(),
                          poll_interval=poll_interval)
    try:
        server.prepare()
    except BaseException as error:
        if pool is not None:
            pool.close()
        if isinstance(error, OSError):
            raise CannotListen(host, port, error) from None
        raise
    return server, app, pool


class CannotListen(OSError):
    """The address could not be bound: in use, not this machine's, or not allowed."""

    def __init__(self, host: str, port: int, error: OSError):
        # cheroot puts each address's error in its message; the last one says why
        reasons = re.findall(r"\[Errno -?\d+\] ([^)]+)", str(error))   # gai errors: < 0
        super().__init__(f"cannot listen on {host}:{port}: "
                         f"{reasons[-1] if reasons else error.strerror or error}")


@contextmanager
def running_server(service=None, *, host="127.0.0.1", port=0, grants=None, clock=None,
                   key_pair_source=None, limits: Limits | None = None, faithful: bool = False,
                   flavor=None):
    """Serve the mock from a background thread; yields a `RunningServer`. `limits`
    (byoklib.mock.http.strict.Limits) bounds threads, connections and timeouts."""
    # stop() waits for the selector's next poll: a short poll makes each
    # `with running_server()` end at once (tests start hundreds).
    server, app, pool = build_server(service, host=host, port=port, grants=grants,
                                     clock=clock, key_pair_source=key_pair_source,
                                     limits=limits, poll_interval=0.01, faithful=faithful,
                                     flavor=flavor)
    thread = threading.Thread(target=server.serve, name="key-protect-mock", daemon=True)
    thread.start()
    try:
        yield RunningServer(f"http://{host}:{server.port}", host, server.port, app.service,
                            app.service.clock, app)
    finally:
        server.stop()
        thread.join()
        if pool is not None:
            pool.close()


def persist(app: KeyProtectApp, path, state_key: bytes) -> None:
    """Load the state file (when present) into the app's service; save after changes."""
    from pathlib import Path

    from byoklib.mock.service.state import load_state, save_state
    if Path(path).exists():
        load_state(app.service, path, state_key)
    save_state(app.service, path, state_key)   # fails early on an unwritable path
    app.on_change = lambda: save_state(app.service, path, state_key)


def serve(host: str = "127.0.0.1", port: int = 8080, grants=None, *, clock=None,
          key_pair_source=None, announce=print, state=None, limits: Limits | None = None,
          faithful: bool = False, flavor=None) -> None:
    """Serve until interrupted (Ctrl-C / SIGINT / SIGTERM); announces the URL first.

    `state=(path, 32-byte key)` loads `path` if it exists and saves it atomically after
    every successful changing request (byoklib.mock.service.state).
    """
    server, app, pool = build_server(host=host, port=port, grants=grants, clock=clock,
                                     key_pair_source=key_pair_source, limits=limits,
                                     faithful=faithful, flavor=flavor)
    handlers = {}
    try:
        if state is not None:
            persist(app, *state)
        if pool is not None:   # after the state: a state refused waits for no key pair
            pool.start()       # and a served mock's first token finds one ready
        handlers = _stop_on_signals()
        announce(f"Key Protect mock listening on http://{host}:{server.port}")
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        _set_handlers(handlers, signal.SIG_IGN)   # a second signal would cut the stop short
        try:
            server.stop()
            if pool is not None:
                pool.close()
        finally:
            _set_handlers(handlers)
