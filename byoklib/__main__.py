"""Command line: `python -m byoklib serve | kp | bench ...` (also the `byoklib` script).

Each subcommand is a pair in COMMANDS: a function adding its arguments to a subparser
and a function running it. Keep the logic in the modules; this file only parses.
"""
from __future__ import annotations

import argparse
import logging
import sys

# --- serve ---------------------------------------------------------------------------------

def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8080,
                        help="port to bind; 0 picks a free one (8080)")
    parser.add_argument("--grant", action="append", default=[], metavar="TOKEN=INSTANCE",
                        help="strict mode: allow bearer TOKEN to use INSTANCE (repeatable)")
    parser.add_argument("--token-key", action="append", default=[], metavar="PEM_FILE",
                        help="TESTS ONLY: make import tokens from these RSA private keys, in "
                             "turn, instead of fresh key pairs (repeatable)")
    from byoklib.mock.flavors import FLAVORS
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="keyprotect",
                        help="which service to be: Key Protect (keyprotect) or Hyper Protect "
                             "Crypto Services (hpcs: imports wrapped with RSAES_OAEP_SHA_1)")
    parser.add_argument("--faithful", action="store_true",
                        help="answer exactly as the real service: no import doctor, no "
                             "Byoklib-Diagnosis header on a refused secure import")
    parser.add_argument("--state", metavar="FILE",
                        help="keep the service's state in FILE (loaded on start, saved "
                             "atomically after each change, authenticated by an HMAC); key "
                             "material in it is AES-GCM-sealed under the base64 32-byte key "
                             "in $BYOKLIB_STATE_KEY")
    parser.add_argument("--threads", type=int, default=8, metavar="N",
                        help="requests served at once; more connections wait in a short "
                             "queue, beyond it they are answered 503 (8)")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time a client has to send one whole request before it is "
                             "answered 408 (10)")


def port_number(text: str) -> int:
    number = int(text)   # argparse answers a ValueError as "invalid port_number value"
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return number


def parse_grants(pairs: list[str]) -> dict[str, set[str]] | None:
    if not pairs:
        return None
    from byoklib import protocol
    grants: dict[str, set[str]] = {}
    for pair in pairs:
        token, sep, instance = pair.partition("=")
        # not repeated: it may hold a token; "Bearer" alone is no token
        if not sep or not protocol.bearer_token(token) or not instance:
            raise SystemExit("--grant needs TOKEN=INSTANCE (a bearer token, '=', an "
                             "instance id)")
        grants.setdefault(token, set()).add(instance)
    return grants


def token_keys_option(paths: list[str]):
    """The key-pair source of --token-key: each file read and checked now, so a wrong
    one is one line at start rather than a traceback at the first token."""
    if not paths:
        return None
    from pathlib import Path

    from byoklib.mock.keypairs import fixed_key_pairs, load_token_key
    from byoklib.primitives import check_token_key_size
    keys = []
    for path in paths:
        try:
            key = load_token_key(Path(path).read_bytes())
        except OSError as error:
            raise SystemExit(f"--token-key {path}: {error.strerror or type(error).__name__}"
                             ) from None
        except (ValueError, TypeError):   # not PEM, encrypted, or not an RSA key
            raise SystemExit(f"--token-key {path}: not an unencrypted RSA private key in "
                             "PEM") from None
        try:
            check_token_key_size(key, f"--token-key {path}")
        except ValueError as error:
            raise SystemExit(str(error)) from None
        keys.append(key)
    return fixed_key_pairs(keys)


def state_option(path: str | None):
    """(path, key) for --state, the key read from BYOKLIB_STATE_KEY (never printed)."""
    if path is None:
        return None
    import base64
    import binascii
    import os
    text = os.environ.get("BYOKLIB_STATE_KEY", "")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SystemExit("--state needs BYOKLIB_STATE_KEY: base64 of 32 random bytes "
                         "(for example: openssl rand -base64 32)")
    return path, key


def run_serve(args: argparse.Namespace) -> int:
    from byoklib.mock.http.serving import serve
    from byoklib.mock.http.strict import Limits
    if args.threads < 1 or not args.request_timeout > 0:
        raise SystemExit("--threads and --request-timeout must be positive")
    limits = Limits(threads=args.threads, request_timeout=args.request_timeout)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # The access log shows the message only, so the serve command's process skips
    # gathering what it never prints (process-wide): the caller's frame, thread and
    # process, as the logging HOWTO's "Optimization" says:
    # https://docs.python.org/3/howto/logging.html#optimization
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    source = token_keys_option(args.token_key)
    from byoklib.mock.http.serving import CannotListen
    try:
        serve(args.host, args.port, parse_grants(args.grant), key_pair_source=source,
              faithful=args.faithful, flavor=args.flavor,
              announce=lambda line: print(line, flush=True), state=state_option(args.state),
              limits=limits)
    except CannotListen as error:   # the port is taken, or the host is not this machine's
        raise SystemExit(str(error)) from None
    except ValueError as error:   # a state file the key does not open, changed, or not one
        raise SystemExit(f"--state {args.state}: {error}") from None
    except OSError as error:   # a folder, a missing folder, no permission
        if args.state is None:
            raise
        raise SystemExit(f"--state {args.state}: {error.strerror or type(error).__name__}") from None
    return 0


# --- kp --------------------------------------------------------------------------------------

def add_kp_arguments(parser: argparse.ArgumentParser) -> None:
    from byoklib.client.cli import add_arguments
    add_arguments(parser)


def run_kp(args: argparse.Namespace) -> int:
    from byoklib.client.cli import run
    return run(args)


# --- bench ---------------------------------------------------------------------------------

def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="build/bench", help="folder for bench.csv and bench.png")


def run_bench(args: argparse.Namespace) -> int:
    from byoklib.tutorial.bench import main as bench_main
    return bench_main(out_dir=args.out)


COMMANDS = {
    "serve": ("run the Key Protect mock over HTTP until interrupted",
              add_serve_arguments, run_serve),
    "kp": ("the import-token verbs of IBM's `ibmcloud kp` plug-in, against $KP_TARGET_ADDR",
           add_kp_arguments, run_kp),
    "bench": ("measure the speed figures (token creation, import vs floor, throughput)",
              add_bench_arguments, run_bench),
}


def main(argv: list[str] | None = None) -> int:
    from byoklib import __version__
    from byoklib.client.cli import QuietParser   # `byoklib SECRET`: the value is not repeated
    script = not sys.argv[0].endswith("__main__.py")   # the `byoklib` console script
    parser = QuietParser(prog="byoklib" if script else "python -m byoklib")
    parser.add_argument("--version", action="version", version=f"byoklib {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return COMMANDS[args.command][2](args)


def script() -> int:
    """The `byoklib` command and `python -m byoklib`: `main()`, and on Ctrl-C no traceback
    (`kp` has said what it was doing). Python then ends the process by SIGINT itself, after
    its usual shutdown (output flushed), so that a shell script running `kp` stops too: a
    status of 130 would tell the shell the command had handled it. (`serve` handles Ctrl-C
    itself: it stops and exits 0.)"""
    try:
        return main()
    except KeyboardInterrupt:
        sys.excepthook = _silent_interrupt
        raise


def _silent_interrupt(kind, value, traceback) -> None:
    if not issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)


if __name__ == "__main__":
    sys.exit(script())
