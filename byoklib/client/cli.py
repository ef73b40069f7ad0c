"""`byoklib kp ...`: the import-token verbs of IBM's `ibmcloud kp` plug-in, over this client.

    export KP_INSTANCE_ID=<guid> KP_TARGET_ADDR=https://us-south.kms.cloud.ibm.com
    export KP_TOKEN=<bearer token>          # or KP_API_KEY / IBMCLOUD_API_KEY (IAM)
    byoklib kp import-token create -e 300 -m 10
    NONCE=$(byoklib kp import-token show | jq -r '.nonce')

The verbs, flags, defaults, environment variables and output shapes follow IBM's CLI
reference (https://cloud.ibm.com/docs/key-protect?topic=key-protect-cli-reference):
tables by default, `-o json` for scripts. The credential comes only from the environment,
never from an argument (an argument shows in `ps` and in the shell's history).
`key-encrypt` and `nonce-encrypt` run offline. A refusal prints FAILED, the status, the
reason code and the message (and a mock's `Byoklib-Diagnosis`) on stderr and exits 1; a
bad flag prints the usage and exits 2 (argparse).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import timezone

import requests

from byoklib import primitives, protocol
from byoklib.errors import KeyProtectError

from .iam import IAM_URL
from .keyprotect import DEFAULT_URL, KeyProtectClient
from .transport import shown_url

HASHES = {"SHA256": protocol.RSAES_OAEP_SHA_256, "SHA1": protocol.RSAES_OAEP_SHA_1}
FAILED = 1
STATES = {0: "Pre-activation", 1: "Active", 2: "Suspended", 3: "Deactivated", 5: "Destroyed"}


class CommandError(Exception):
    """A mistake found before or without the service (a missing setting, bad base64)."""


# --- the arguments -----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `kp` verbs on `parser` (a subparser of `byoklib`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-i", "--instance-id", metavar="INSTANCE_ID",
                        help="the Key Protect instance (default: $KP_INSTANCE_ID)")
    common.add_argument("-o", "--output", type=str.lower, choices=["json"],
                        help="print JSON instead of a table")
    groups = parser.add_subparsers(dest="group", required=True, parser_class=QuietParser,
                                   metavar="{import-token,key,keys}")
    tokens = groups.add_parser("import-token", help="import tokens for secure import")
    token_verbs = tokens.add_subparsers(dest="verb", required=True, parser_class=QuietParser)

    verb = _verb(token_verbs, "create", common, "create an import token (replaces the old one)")
    verb.add_argument("-e", "--expiration", type=int, metavar="SECONDS",
                      help="seconds until the token expires, 300-86400 (default 600)")
    verb.add_argument("-m", "--max-retrievals", type=int, metavar="N",
                      help="how many times the token may be retrieved (default 1)")
    _verb(token_verbs, "show", common, "retrieve the token's nonce and public key (one retrieval)")
    verb = _verb(token_verbs, "key-encrypt", common,
                 "encrypt key material under the token's public key (offline)")
    verb.add_argument("-k", "--key", required=True, metavar="KEY_MATERIAL", help="base64")
    verb.add_argument("-p", "--pubkey", required=True, metavar="PUBLIC_KEY",
                      help="the token's payload as shown (base64 of the PEM)")
    verb.add_argument("-a", "--hash", type=str.upper, choices=sorted(HASHES), default="SHA256",
                      help="OAEP hash (default SHA256; SHA1 is for Hyper Protect Crypto "
                           "Services only)")
    verb = _verb(token_verbs, "nonce-encrypt", common,
                 "seal the token's nonce under the key material (offline)")
    verb.add_argument("-k", "--key", required=True, metavar="KEY_MATERIAL", help="base64")
    verb.add_argument("-n", "--nonce", required=True, metavar="NONCE", help="base64")
    verb.add_argument("-c", "--cbc", action="store_true",
                      help="AES-CBC instead of AES-GCM (Hyper Protect Crypto Services only)")

    keys = groups.add_parser("key", help="one key")
    key_verbs = keys.add_subparsers(dest="verb", required=True, parser_class=QuietParser)
    verb = _verb(key_verbs, "create", common, "create a key, or import one")
    verb.add_argument("name", metavar="KEY_NAME")
    verb.add_argument("-k", "--key-material", metavar="KEY_MATERIAL",
                      help="base64: the material, or with -n and -v the encrypted key")
    verb.add_argument("-n", "--encrypted-nonce", metavar="ENCRYPTED_NONCE")
    verb.add_argument("-v", "--iv", metavar="IV")
    verb.add_argument("-s", "--standard-key", action="store_true",
                      help="a standard key (default: a root key)")
    verb.add_argument("-D", "--description", metavar="DESCRIPTION")
    verb.add_argument("--key-ring", metavar="ID")
    verb = _verb(key_verbs, "show", common, "show a key's metadata")
    verb.add_argument("key_id", metavar="KEY_ID_OR_ALIAS")
    verb = _verb(key_verbs, "delete", common, "delete a key")
    verb.add_argument("key_id", metavar="KEY_ID_OR_ALIAS")
    verb.add_argument("-f", "--force", action="store_true",
                      help="delete even if the key protects resources")
    verb = _verb(key_verbs, "wrap", common, "wrap a data encryption key with a root key")
    verb.add_argument("key_id", metavar="KEY_ID_OR_ALIAS")
    verb.add_argument("-p", "--plaintext", metavar="DATA_KEY",
                      help="base64 (default: the service generates a 32-byte key)")
    verb.add_argument("-a", "--aad", action="append", metavar="AAD")
    verb = _verb(key_verbs, "unwrap", common, "unwrap a wrapped data encryption key")
    verb.add_argument("key_id", metavar="KEY_ID_OR_ALIAS")
    verb.add_argument("ciphertext", metavar="CIPHERTEXT_FROM_WRAP")
    verb.add_argument("-a", "--aad", action="append", metavar="AAD")
    # IBM lists keys with `ibmcloud kp keys`, a verb of its own (the CLI reference's
    # #kp-keys), not `kp key list`
    _verb(groups, "keys", common, "list the instance's keys").set_defaults(verb=None)


class QuietParser(argparse.ArgumentParser):
    """A parser whose usage errors name options, never a value (which may be a credential
    typed where a verb or an option's value belongs): argparse's quoted values are left
    out, and an unknown argument is refused with this parser's own usage (argparse would
    hand it up to `byoklib`'s, quoting it)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:   # an option's name only: "--name=VALUE" and "-kVALUE" carry a value
            named = [e.split("=", 1)[0] if e.startswith("--") else e[:2]
                     for e in extras if e.startswith("-")]
            self.error(f"unrecognized arguments: {' '.join(named)}" if named
                       else f"{len(extras)} unexpected argument(s)")
        return namespace, extras

    def error(self, message: str):
        # argparse quotes a value it cannot use ("invalid choice: '...'"): left out
        super().error(_QUOTED_VALUE.sub(lambda found: next(filter(None, found.groups())),
                                        message))


_QUOTED = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
_QUOTED_VALUE = re.compile(rf"(invalid (?:\w+ value|choice)): {_QUOTED}"
                           rf"|(ignored explicit argument) {_QUOTED}"
                           r"|(ambiguous option: [^=\s]+)=\S+")


def _verb(verbs, name: str, common, help_text: str) -> argparse.ArgumentParser:
    return verbs.add_parser(name, parents=[common], help=help_text, description=help_text,
                            allow_abbrev=False)


# --- running ---------------------------------------------------------------------------------

def run(args: argparse.Namespace, environ=None, out=None, err=None) -> int:
    """Run one parsed `kp` command; the exit status (0, or 1 for a refusal)."""
    env = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    command = COMMANDS[(args.group, args.verb)]
    try:
        if command in OFFLINE:
            command(args, out)
        else:
            with connect(args, env) as client:
                command(client, args, out)
        out.flush()   # here, where a reader that left is answered, not at the exit
    except KeyProtectError as error:
        _refusal(err, error)
        return FAILED
    except CommandError as error:
        print(f"FAILED\n{error}", file=err)
        return FAILED
    except requests.RequestException as error:
        url = shown_url(getattr(error.request, "url", None) or "the service")
        if error.response is not None:   # it answered: too slowly, or too much
            print(f"FAILED\n{type(error).__name__}: {error} (from {url})", file=err)
        else:
            print(f"FAILED\n{type(error).__name__}: could not reach {url}", file=err)
        return FAILED
    except ValueError as error:   # input no request can carry (byoklib's own messages)
        print(f"FAILED\n{error}", file=err)
        return FAILED
    except KeyboardInterrupt:   # Ctrl-C: said in a line; byoklib's `script` then ends quietly
        print("interrupted" if command in OFFLINE else
              "interrupted: a request under way may still be carried out by the service",
              file=err)
        raise
    except BrokenPipeError:   # `| head` read what it wanted and left: nothing to say
        if out is sys.stdout:   # and nothing more to flush at exit (Python's "Note on SIGPIPE")
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    return 0


_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")


def connect(args: argparse.Namespace, env) -> KeyProtectClient:
    """The client for $KP_TARGET_ADDR and the instance, with the credential of the
    environment: KP_TOKEN as it is, or KP_API_KEY / IBMCLOUD_API_KEY exchanged at IAM."""
    instance = args.instance_id or env.get("KP_INSTANCE_ID")
    if not instance:
        raise CommandError("No instance: give -i INSTANCE_ID or set KP_INSTANCE_ID")
    url = env.get("KP_TARGET_ADDR") or env.get("KP_URL") or DEFAULT_URL
    if not url.lower().startswith(("https://", "http://")):   # else requests' InvalidSchema
        raise CommandError("KP_TARGET_ADDR must be a URL: https://... (http:// for a local "
                           "mock)")
    options = {"key_ring": getattr(args, "key_ring", None) or env.get("KP_KEY_RING") or None}
    for what, value in (("-i INSTANCE_ID / KP_INSTANCE_ID", instance),
                        ("--key-ring / KP_KEY_RING", options["key_ring"])):
        if value is not None and not _HEADER_VALUE.fullmatch(value):   # a header carries it
            raise CommandError(f"{what} must be printable ASCII")
    if env.get("KP_RETRIES"):
        if not env["KP_RETRIES"].isdigit():
            raise CommandError("KP_RETRIES must be a whole number, 0 or more")
        options["retries"] = int(env["KP_RETRIES"])
    token = env.get("KP_TOKEN")
    api_key = env.get("KP_API_KEY") or env.get("IBMCLOUD_API_KEY")
    if token and token.strip():
        return KeyProtectClient(url, instance, token, **options)
    if api_key:
        return KeyProtectClient.from_api_key(url, instance, api_key,
                                             iam_url=env.get("KP_IAM_URL") or IAM_URL, **options)
    raise CommandError("No credential: set KP_TOKEN (a bearer token) or KP_API_KEY / "
                       "IBMCLOUD_API_KEY (an API key for IAM) in the environment")


def _refusal(err, error: KeyProtectError) -> None:
    print("FAILED", file=err)
    print(f"Status: {error.status}  Reason: {error.code}", file=err)
    print(f"Message: {error.message}", file=err)
    diagnosis = getattr(error, "diagnosis", None)
    if diagnosis:
        print(f"{protocol.DIAGNOSIS_HEADER}: {diagnosis}", file=err)


# --- import tokens --------------------------------------------------------------------------

def token_create(client: KeyProtectClient, args, out) -> None:
    token = client.create_import_token(args.expiration, args.max_retrievals)
    if args.output == "json":
        return _json(out, token)
    _table(out, ["Created", "Expires", "Max Retrievals", "Remaining Retrievals"],
           [[_date(token.get("creationDate")), _date(token.get("expirationDate")),
             token.get("maxAllowedRetrievals"), token.get("remainingRetrievals")]])


def token_show(client: KeyProtectClient, args, out) -> None:
    token = client.get_import_token_raw()
    _json(out, {"nonce": token.get("nonce"), "payload": token.get("payload")})


def key_encrypt(args, out) -> None:
    material = _material(_base64(args.key, "-k KEY_MATERIAL"))
    try:
        public_key = primitives.public_key_from_token_payload(args.pubkey)
    except (ValueError, TypeError):
        raise CommandError("-p PUBLIC_KEY is not the token's payload (base64 of a PEM "
                           "public key)") from None
    primitives.check_token_key_size(public_key, "-p PUBLIC_KEY")
    encrypted = primitives.wrap_key_material(material, public_key, HASHES[args.hash])
    value = primitives.b64encode(encrypted)
    if args.output == "json":
        return _json(out, {"encryptedKey": value})
    _table(out, ["Encrypted Key"], [[value]])


def nonce_encrypt(args, out) -> None:
    material = _material(_base64(args.key, "-k KEY_MATERIAL"))
    nonce = _base64(args.nonce, "-n NONCE")
    if len(nonce) != protocol.NONCE_BYTES:
        raise CommandError(f"-n NONCE must decode to the token's {protocol.NONCE_BYTES} bytes, "
                           f"got {len(nonce)}")
    sealed, iv = _seal_cbc(material, nonce) if args.cbc else primitives.encrypt_nonce(
        material, nonce)
    sealed, iv = primitives.b64encode(sealed), primitives.b64encode(iv)
    if args.output == "json":
        return _json(out, {"encryptedNonce": sealed, "iv": iv})
    _table(out, ["Encrypted Nonce", "IV"], [[sealed, iv]])


def _material(material: bytes) -> bytes:
    if len(material) not in protocol.KEY_MATERIAL_BYTES:
        raise CommandError(f"-k KEY_MATERIAL must decode to 16, 24 or 32 bytes (AES), "
                           f"got {len(material)}")
    return material


def _seal_cbc(material: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """AES-CBC with PKCS#7 padding and a random 16-byte IV: the Hyper Protect Crypto
    Services option. Key Protect itself accepts only the AES-GCM seal."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    iv = os.urandom(protocol.CBC_IV_BYTES)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(material), modes.CBC(iv)).encryptor()
    padded = padder.update(nonce) + padder.finalize()
    return encryptor.update(padded) + encryptor.finalize(), iv


# --- keys -------------------------------------------------------------------------------------

def key_create(client: KeyProtectClient, args, out) -> None:
    secure = args.encrypted_nonce is not None or args.iv is not None
    if secure and not (args.key_material and args.encrypted_nonce and args.iv):
        raise CommandError("A secure import needs all three: -k ENCRYPTED_KEY, "
                           "-n ENCRYPTED_NONCE and -v IV")
    if args.output != "json":
        print(f"Creating key: '{_shown(args.name)}', in instance: '{client.instance_id}'...",
              file=out)
    key = client.create_key(
        args.name, payload=args.key_material, extractable=args.standard_key,
        encrypted_nonce=args.encrypted_nonce, iv=args.iv, description=args.description,
        encryption_algorithm=protocol.RSAES_OAEP_SHA_256 if secure else None)
    if args.output == "json":
        return _json(out, key)
    print("OK", file=out)
    _table(out, ["Key ID", "Key Name"], [[key.get("id"), key.get("name")]])


def key_show(client: KeyProtectClient, args, out) -> None:
    if args.output != "json":
        print(f"Grabbing info for key id: '{_shown(args.key_id)}'...", file=out)
    key = client.get_key_metadata(args.key_id)
    if args.output == "json":
        return _json(out, key)
    print("OK", file=out)
    _table(out, ["Key ID", "Key Name", "State", "Description", "Creation Date",
                 "Expiration Date"],
           [[key.get("id"), key.get("name"), STATES.get(key.get("state"), key.get("state")),
             key.get("description", ""), _date(key.get("creationDate")),
             _date(key.get("expirationDate")) or "Key does not expire"]])


def key_list(client: KeyProtectClient, args, out) -> None:
    if args.output != "json":
        print("Retrieving keys...", file=out)
    keys = client.list_keys()
    if args.output == "json":
        return _json(out, keys)
    print("OK", file=out)
    _table(out, ["Key ID", "Key Name"], [[key.get("id"), key.get("name")] for key in keys])


def key_delete(client: KeyProtectClient, args, out) -> None:
    if args.output != "json":
        print(f"Deleting key: '{_shown(args.key_id)}', from instance: "
              f"'{client.instance_id}'...", file=out)
    key = client.delete_key(args.key_id, prefer=protocol.PREFER_REPRESENTATION,
                            force=args.force) or {"id": args.key_id}
    if args.output == "json":
        return _json(out, key)
    print("OK", file=out)
    _table(out, ["Deleted Key"], [[key.get("id")]])


def key_wrap(client: KeyProtectClient, args, out) -> None:
    plaintext = _base64(args.plaintext, "-p DATA_KEY") if args.plaintext is not None else None
    result = client.wrap(args.key_id, plaintext, aad=args.aad)
    fields = {"ciphertext": primitives.b64encode(result["ciphertext"])}
    if "plaintext" in result:        # generated by the service: the caller needs it
        fields["plaintext"] = primitives.b64encode(result["plaintext"])
    if args.output == "json":
        return _json(out, fields)
    _table(out, [name.capitalize() for name in fields], [list(fields.values())])


def key_unwrap(client: KeyProtectClient, args, out) -> None:
    ciphertext = _base64(args.ciphertext, "CIPHERTEXT_FROM_WRAP")
    result = client.unwrap(args.key_id, ciphertext, aad=args.aad)
    plaintext = primitives.b64encode(result["plaintext"])
    if args.output == "json":
        return _json(out, {"plaintext": plaintext})
    _table(out, ["Plaintext"], [[plaintext]])


COMMANDS = {
    ("import-token", "create"): token_create, ("import-token", "show"): token_show,
    ("import-token", "key-encrypt"): key_encrypt, ("import-token", "nonce-encrypt"): nonce_encrypt,
    ("key", "create"): key_create, ("key", "show"): key_show, ("keys", None): key_list,
    ("key", "delete"): key_delete, ("key", "wrap"): key_wrap, ("key", "unwrap"): key_unwrap,
}
OFFLINE = frozenset({key_encrypt, nonce_encrypt})


# --- output -----------------------------------------------------------------------------------

def _json(out, value) -> None:
    print(json.dumps(value, indent=2), file=out)


def _table(out, headers: list[str], rows: list[list]) -> None:
    """Columns padded to their widest cell, three spaces apart, as the plug-in prints."""
    cells = [headers] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(),
              file=out)


def _shown(value: str) -> str:
    """A typed value as it may be echoed: a line break or another control character
    escaped, so it cannot start a line of output of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def _date(value) -> str:
    """RFC 3339 as the plug-in prints dates: `2020-05-04 19:12:07 +0000 UTC`."""
    if not value:
        return ""
    try:
        moment = protocol.parse_rfc3339(value)
    except ValueError:
        return str(value)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _base64(value: str, what: str) -> bytes:
    try:
        return primitives.b64decode(value)
    except (ValueError, TypeError):
        raise CommandError(f"{what} is not valid base64") from None
