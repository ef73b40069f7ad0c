"""A PKCS#11 token for the notebooks: SoftHSM2 in a temporary folder, driven by
python-pkcs11 (a maintained binding; this module only does the chores around it).

- `missing()`: why no token can run here (the library, SoftHSM2's module or its
  `softhsm2-util`), with how to install it; None when all is there.
- `SoftHSM`: a context manager that writes a SoftHSM2 config whose token folder is a fresh
  temporary folder, points `SOFTHSM2_CONF` at it, initialises one token with
  `softhsm2-util --init-token`, logs a read-write session in, and on `close()` ends the
  session, finalises the library and removes the folder (and restores `SOFTHSM2_CONF`).
  Its PINs are random, never printed, and never on a command line (softhsm2-util's are
  replaced at once). One at a time in a process (SoftHSM2 reads its
  configuration once), and never one the process already initialised itself.
- `mechanism_rows()`, `attribute_rows()`: what the token says about its mechanisms and a
  key, as rows for a table.
- `import_rsa_public_key()`: an import token's PEM public key as a session object made
  to wrap only; `oaep()` the CK_RSA_PKCS_OAEP_PARAMS for a hash; `ckr()` the CKR_ name of
  a python-pkcs11 exception.

SoftHSM 2.6.1 facts the notebook shows (measured with it, and read in its source,
https://github.com/opendnssec/SoftHSMv2/blob/2.6.1/src/lib/SoftHSM.cpp):
`MechParamCheckRSAPKCSOAEP` accepts only hashAlg CKM_SHA_1 with CKG_MGF1_SHA1, anything
else is CKR_ARGUMENTS_BAD; and `C_GetMechanismInfo(CKM_AES_GCM)` ORs ENCRYPT|DECRYPT into
the caller's `flags` without clearing it first, so the other bits of that one answer are
whatever the caller's memory held (python-pkcs11 passes an uninitialised struct): only
those two bits are read here.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

MODULE_ENV = "SOFTHSM2_MODULE"   # where a learner's libsofthsm2.so is, if not below
MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",                      # Debian, Ubuntu
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",                     # Fedora
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",             # Homebrew, Apple silicon
    "/usr/local/lib/softhsm/libsofthsm2.so",                # Homebrew, Intel
)
INSTALL = ("SoftHSM2: `sudo apt-get install softhsm2` (Debian, Ubuntu) or "
           "`brew install softhsm` (macOS); python-pkcs11: `pip install python-pkcs11` "
           "(in requirements.txt)")


def module_path() -> str | None:
    """SoftHSM2's PKCS#11 module: $SOFTHSM2_MODULE, else the first known path present."""
    given = os.environ.get(MODULE_ENV)
    if given:
        return given if Path(given).is_file() else None
    return next((path for path in MODULE_PATHS if Path(path).is_file()), None)


def missing() -> str | None:
    """Why a SoftHSM2 token cannot run here, with how to install what is missing."""
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return f"python-pkcs11 is not installed. Install {INSTALL}"
    if os.environ.get(MODULE_ENV) and module_path() is None:
        return (f"${MODULE_ENV} names {os.environ[MODULE_ENV]}, which is no file: point it "
                f"at libsofthsm2.so, or unset it. Install {INSTALL}")
    if module_path() is None:
        return f"SoftHSM2's module libsofthsm2.so was not found. Install {INSTALL}"
    if shutil.which("softhsm2-util") is None:
        return f"softhsm2-util is not on PATH. Install {INSTALL}"
    return None


class SoftHSM:
    """One fresh SoftHSM2 token in a temporary folder, with a logged-in RW session.

    One at a time in a process: SoftHSM2 reads SOFTHSM2_CONF once, when the library is
    initialised, so a second token (or a SoftHSM2 the process already uses with its own
    configuration) cannot be ours; `start()` refuses it rather than disturb it."""

    _running: "SoftHSM | None" = None   # the one started in this process

    def __init__(self, label: str = "byok-notebook"):
        self.label = label
        self.folder: Path | None = None
        self.lib = self.token = self.session = None
        self._pin = secrets.token_hex(8)
        self._so_pin = secrets.token_hex(8)
        self._conf_set = False          # SOFTHSM2_CONF is ours until close()
        self._saved_conf: str | None = None
        self._initialised_here = False  # the library's C_Initialize was ours

    def start(self) -> "SoftHSM":
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        if self.folder is not None:
            raise RuntimeError("this SoftHSM token is started already")
        if SoftHSM._running is not None:
            raise RuntimeError("another SoftHSM token of byoklib is open in this process; "
                               "close it first (SoftHSM2 reads its configuration once)")
        if len(self.label.encode("utf-8")) > 32:   # CK_TOKEN_INFO's label is 32 bytes
            raise ValueError("a token label is at most 32 bytes")
        import pkcs11

        SoftHSM._running = self
        self.folder = Path(tempfile.mkdtemp(prefix="byok-softhsm-"))
        (self.folder / "tokens").mkdir()
        self.config = self.folder / "softhsm2.conf"
        self.config.write_text(
            f"directories.tokendir = {self.folder / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
        self._saved_conf = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(self.config)   # read at C_Initialize
        self._conf_set = True
        # softhsm2-util takes the PINs on its command line, which any local user can read
        # in /proc while it runs: it gets PINs of its own, replaced through PKCS#11
        # (C_SetPIN) as soon as the token opens, so what was on a command line opens nothing
        first_so, first_user = secrets.token_hex(8), secrets.token_hex(8)
        try:
            made = subprocess.run(
                ["softhsm2-util", "--init-token", "--free", "--label", self.label,
                 "--so-pin", first_so, "--pin", first_user],
                capture_output=True, text=True, timeout=60)
            if made.returncode != 0:   # its command line holds the PINs: not repeated
                raise RuntimeError("softhsm2-util could not make the token: "
                                   + (made.stderr.strip() or f"exit status {made.returncode}"))
            self.init_output = made.stdout
            self.module = module_path()
            # python-pkcs11 keeps one library object per path (pkcs11._loaded), and ours
            # is finalised at close: one initialised now is someone else's, and reads
            # another configuration; neither used nor finalised here
            loaded = getattr(pkcs11, "_loaded", {}).get(self.module)
            if loaded is not None and loaded.initialized:
                raise RuntimeError("SoftHSM2 is initialised in this process already, with "
                                   "its own configuration: this token would not be seen")
            self.lib = pkcs11.lib(self.module)   # initialises it, reading SOFTHSM2_CONF
            self._initialised_here = True
            self.token = self.lib.get_token(token_label=self.label)
            with self.token.open(rw=True, so_pin=first_so) as officer:
                officer.set_pin(first_so, self._so_pin)
            self.session = self.token.open(user_pin=first_user, rw=True)
            self.session.set_pin(first_user, self._pin)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def init_command(self) -> str:
        """The command that initialised the token, PINs masked."""
        return (f"softhsm2-util --init-token --free --label {self.label} "
                "--so-pin ******** --pin ********")

    def token_files(self) -> list[Path]:
        """The files SoftHSM keeps for this token (each object is a file)."""
        if self.folder is None or not self.folder.exists():
            return []
        return sorted(p for p in (self.folder / "tokens").rglob("*") if p.is_file())

    def close(self) -> None:
        """End the session, finalise the library, remove the folder, give SOFTHSM2_CONF
        back; each step even when one before it fails (the first failure is raised after);
        safe to repeat, and a token never started changes nothing."""
        failures = []
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception as error:
                failures.append(error)
        lib, self.lib = self.lib, None
        if lib is not None and self._initialised_here:
            try:
                if lib.initialized:
                    lib.finalize()
            except Exception as error:
                failures.append(error)
        self._initialised_here = False
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        if self._conf_set:
            if self._saved_conf is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = self._saved_conf
            self._conf_set = False
        if SoftHSM._running is self:
            SoftHSM._running = None
        if failures:
            raise failures[0]

    def __enter__(self) -> "SoftHSM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.session is not None else "closed"
        return f"SoftHSM(label={self.label!r}, {state})"


# --- what the token says ------------------------------------------------------------------

FLAG_NAMES = ("GENERATE", "ENCRYPT", "DECRYPT", "WRAP", "UNWRAP")


def mechanism_rows(slot, mechanisms) -> list[dict]:
    """One row per mechanism: whether the token lists it, its key sizes (in the units
    PKCS#11 gives for that mechanism: bytes for AES, bits for RSA) and its flags."""
    from pkcs11 import Mechanism, MechanismFlag

    listed = set(slot.get_mechanisms())
    rows = []
    for mechanism in mechanisms:
        row = {"mechanism": f"CKM_{mechanism.name}", "listed": mechanism in listed}
        if row["listed"]:
            info = slot.get_mechanism_info(mechanism)
            row["key sizes"] = f"{info.min_key_length}..{info.max_key_length}"
            flags = int(info.flags)
            trusted = FLAG_NAMES
            if mechanism == Mechanism.AES_GCM:   # see the module docstring
                trusted = ("ENCRYPT", "DECRYPT")
            for name in FLAG_NAMES:
                bit = int(getattr(MechanismFlag, name))
                row[name] = ("yes" if flags & bit else "no") if name in trusted else "?"
        rows.append(row)
    return rows


def attribute_rows(key, names) -> list[dict]:
    """(attribute, value) rows for the named CKA_ attributes of a key; a value the
    token refuses to give is shown as the refusal's CKR_ name."""
    from pkcs11 import Attribute, PKCS11Error

    rows = []
    for name in names:
        try:
            value = key[getattr(Attribute, name)]
        except PKCS11Error as error:
            value = ckr(error)
        rows.append({"attribute": f"CKA_{name}", "value": value})
    return rows


# --- making and using objects -------------------------------------------------------------

def import_rsa_public_key(session, pem, label: str = "import-token"):
    """An import token's PEM public key (RSA-4096) as a session object (gone when the
    session ends) made to wrap only: CKA_WRAP true, ENCRYPT, VERIFY and VERIFY_RECOVER
    false. A session may still change those later, as PKCS#11 leaves them modifiable;
    ValueError for a PEM that is no RSA-4096 public key."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    from byoklib import primitives

    public = primitives.load_public_key(pem)
    primitives.check_token_key_size(public, "the import token's public key")
    numbers = public.public_numbers()
    return session.create_object({
        Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
        Attribute.TOKEN: False, Attribute.LABEL: label,
        Attribute.MODULUS: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
        Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8,
                                                      "big"),
        Attribute.WRAP: True, Attribute.ENCRYPT: False, Attribute.VERIFY: False,
        Attribute.VERIFY_RECOVER: False})


def oaep(hash_name: str):
    """CK_RSA_PKCS_OAEP_PARAMS for SHA-1 or SHA-256: the hash, MGF1 with the same hash,
    and no label (what both Key Protect and HPCS expect)."""
    from pkcs11 import MGF, Mechanism

    params = {"SHA-1": (Mechanism.SHA_1, MGF.SHA1, None),
              "SHA-256": (Mechanism.SHA256, MGF.SHA256, None)}
    return params[hash_name]


# python-pkcs11 0.10's exceptions whose names do not spell their code (its _pkcs11.pxd,
# map_rv_to_error), and those it raises itself, for no code at all
_IRREGULAR = {
    "AnotherUserAlreadyLoggedIn": "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
    "FunctionCancelled": "CKR_FUNCTION_CANCELED",
    "RandomNoRNG": "CKR_RANDOM_NO_RNG",
    "SessionReadWriteSOExists": "CKR_SESSION_READ_WRITE_SO_EXISTS",
    "SlotIDInvalid": "CKR_SLOT_ID_INVALID",
    "TokenNotRecognised": "CKR_TOKEN_NOT_RECOGNIZED",
}
_NO_CODE = {"NoSuchToken", "MultipleTokensReturned", "NoSuchKey", "MultipleObjectsReturned"}


def ckr(error) -> str:
    """The PKCS#11 return code a python-pkcs11 exception stands for, e.g. ArgumentsBad ->
    CKR_ARGUMENTS_BAD; for python-pkcs11's own lookups, and its plain PKCS11Error (which
    stands for several codes), the exception's name, not a made-up code."""
    name = type(error).__name__
    if name in _IRREGULAR:
        return _IRREGULAR[name]
    if name in _NO_CODE or name == "PKCS11Error":
        return f"{name} (python-pkcs11's, no CKR_ code)"
    return "CKR_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
