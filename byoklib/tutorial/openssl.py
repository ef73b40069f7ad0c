"""Cross-checks through the real `openssl` command.

byoklib does its cryptography with `cryptography`, which links OpenSSL's libcrypto, and so
does the `openssl` command: what the command checks is the parameters (hash, padding, key
and data formats) and the very commands a learner will type, not the implementation. The
witnesses that share no code with it are `byoklib.tutorial.witnesses` (first principles) and
PyCryptodome. Every method records the exact command line in `.last_command`.

What goes where:
- key material never appears in `.last_command`: hex keys passed with `-K` are shown as
  `<hex key>`, and private keys go through a 0600 file in a private temporary directory
  that is deleted when the call returns; data to encrypt goes through stdin. `openssl enc`
  takes a raw key only as `-K` on its command line, which other local users can read in
  /proc while it runs: these witnesses are for learning material, never a real key;
- temporary paths are shown as `$TMP/<name>` so a notebook's output is the same on
  every run.

`openssl enc` has no AES-GCM, so GCM cannot be checked directly; `aes_ctr()` checks the
GCM body instead (with a 96-bit IV it is AES-CTR from the counter block IV||00000002), and
`aes_ecb()` gives the raw AES blocks the hand-written GHASH needs for the tag.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from byoklib.tutorial.openssl_speed import parse_speed_cipher, parse_speed_rsa

MIN_VERSION = (1, 1, 1)
HEX_KEY_MASK = "<hex key>"
TMP_MASK = "$TMP"
# RFC 5649's alternative initial value. OpenSSL 3.0's `enc` refuses the wrap-pad ciphers
# with "iv undefined" unless it is given explicitly; `-nopad` is irrelevant to them.
AES_WRAP_PAD_AIV = "A65959A6"

INSTALL_HINT = (
    "Install OpenSSL 1.1.1 or newer: Debian/Ubuntu `apt-get install openssl`, "
    "Fedora `dnf install openssl`, macOS `brew install openssl@3` and put "
    "$(brew --prefix openssl@3)/bin first on PATH (macOS ships LibreSSL as `openssl`); "
    "on Binder, binder/apt.txt installs it. Or pass OpenSSL(path='/path/to/openssl')."
)


class OpenSSLUnavailable(RuntimeError):
    """No usable `openssl` command: missing, not runnable, LibreSSL, or older than 1.1.1."""


class OpenSSLError(RuntimeError):
    """An `openssl` command ran and failed (for example, OAEP decryption with the wrong hash).

    Carries the masked command line, the exit status and OpenSSL's error text.
    """

    def __init__(self, command: list[str], returncode: int, stderr: str):
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        first = next((line for line in stderr.splitlines() if line.strip()), "no error text")
        super().__init__(f"`{' '.join(command)}` exited with {returncode}: {first}")


def parse_version(text: str) -> tuple[str, tuple[int, int, int]]:
    """('OpenSSL', (3, 0, 19)) from `openssl version` output; LibreSSL is reported as such."""
    match = re.match(r"\s*(OpenSSL|LibreSSL|BoringSSL)\s+(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise ValueError(f"unrecognised `openssl version` output: {text.strip()[:80]!r}")
    return match.group(1), (int(match.group(2)), int(match.group(3)), int(match.group(4)))


class OpenSSL:
    """The `openssl` command, found on PATH or at `path`, checked to be OpenSSL >= 1.1.1."""

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 120):
        self.path = self._locate(path)
        self.timeout = timeout
        self.last_command: list[str] = []
        self._version_text = self._probe_version()
        self.flavour, self.version_info = parse_version(self._version_text)
        if self.flavour != "OpenSSL":
            raise OpenSSLUnavailable(
                f"{self.path} is {self._version_text.strip()}, not OpenSSL: its `pkeyutl` "
                f"and `enc` options differ. {INSTALL_HINT}")
        if self.version_info < MIN_VERSION:
            raise OpenSSLUnavailable(
                f"{self.path} is {self._version_text.strip()}; 1.1.1 or newer is needed "
                f"(for `pkeyutl -pkeyopt rsa_oaep_md`). {INSTALL_HINT}")

    def __repr__(self) -> str:
        return f"OpenSSL(path={str(self.path)!r}, version={self._version_text.strip()!r})"

    # --- finding the command ------------------------------------------------------------

    @staticmethod
    def _locate(path) -> Path:
        if path is None:
            found = shutil.which("openssl")
            if found is None:
                raise OpenSSLUnavailable(f"no `openssl` command on PATH. {INSTALL_HINT}")
            return Path(found)
        candidate = Path(path)
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            raise OpenSSLUnavailable(f"{candidate} is not an executable file. {INSTALL_HINT}")
        return candidate

    def _probe_version(self) -> str:
        try:
            done = subprocess.run([str(self.path), "version"], capture_output=True,
                                  timeout=30, check=False)
        except OSError as exc:
            raise OpenSSLUnavailable(f"cannot run {self.path}: {exc}. {INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            raise OpenSSLUnavailable(f"{self.path} did not answer `version`. {INSTALL_HINT}") from None
        text = done.stdout.decode("utf-8", "replace")
        if done.returncode != 0 or not text.strip():
            raise OpenSSLUnavailable(f"`{self.path} version` failed. {INSTALL_HINT}")
        try:
            parse_version(text)
        except ValueError:
            raise OpenSSLUnavailable(
                f"{self.path} does not look like OpenSSL ({text.strip()[:60]!r}). {INSTALL_HINT}"
            ) from None
        return text

    # --- running commands -----------------------------------------------------------------

    def _display(self, args: list[str], tmpdir: str | None) -> list[str]:
        """The command as shown to people: `openssl`, hex keys masked, temp dir shortened."""
        shown = ["openssl"]
        hide_next = False
        for arg in args:
            if hide_next:
                shown.append(HEX_KEY_MASK)
                hide_next = False
                continue
            if arg == "-K":
                hide_next = True
            if tmpdir and arg.startswith(tmpdir):
                arg = TMP_MASK + arg[len(tmpdir):]
            shown.append(arg)
        return shown

    def _run(self, args: list[str], data: bytes | None = None, *,
             tmpdir: str | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        shown = self._display(args, tmpdir)
        self.last_command = shown
        try:
            done = subprocess.run([str(self.path), *args], input=data, capture_output=True,
                                  timeout=timeout or self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise OpenSSLError(shown, -1, "timed out") from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace")
            if tmpdir:  # the same masking as the command line, so errors print stably
                stderr = stderr.replace(tmpdir, TMP_MASK)
            raise OpenSSLError(shown, done.returncode, stderr)
        return done

    def _run_pipe(self, first: list[str], second: list[str], data: bytes | None = None, *,
                  tmpdir: str | None = None) -> bytes:
        """`openssl first | openssl second`, shown as one line with a `|`."""
        head = self._run(first, data, tmpdir=tmpdir)
        shown_head = self.last_command
        tail = self._run(second, head.stdout, tmpdir=tmpdir)
        self.last_command = shown_head + ["|"] + self.last_command
        return tail.stdout

    @staticmethod
    def _write_private(tmpdir: str, name: str, content: bytes) -> str:
        """A file only this user can read, created fresh (never reusing an existing one)."""
        path = os.path.join(tmpdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        return path

    # --- simple facts ---------------------------------------------------------------------

    def version(self) -> str:
        """`openssl version`, e.g. 'OpenSSL 3.0.13 30 Jan 2024 (Library: ...)'."""
        return self._run(["version"]).stdout.decode().strip()

    def rand(self, n: int) -> bytes:
        """n bytes from OpenSSL's CSPRNG (`openssl rand n`)."""
        if n < 1:
            raise ValueError("n must be positive")
        out = self._run(["rand", str(int(n))]).stdout
        if len(out) != n:
            raise OpenSSLError(self.last_command, 0, f"expected {n} bytes, got {len(out)}")
        return out

    # --- RSA-OAEP -------------------------------------------------------------------------

    def oaep_encrypt(self, public_pem, data: bytes, md: str | None = "sha256",
                     mgf1_md: str | None = None) -> bytes:
        """RSA-OAEP encryption with `openssl pkeyutl`.

        `md=None` leaves OpenSSL's default OAEP digest, SHA-1 (the classic mistake);
        `mgf1_md=None` leaves MGF1 on the OAEP digest, as OpenSSL does by default.
        The data travels on stdin.
        """
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "public.pem", _public_pem_bytes(public_pem))
            args = ["pkeyutl", "-encrypt", "-pubin", "-inkey", key, *_oaep_options(md, mgf1_md)]
            return self._run(args, bytes(data), tmpdir=tmpdir).stdout

    def oaep_decrypt(self, private_pem, ciphertext: bytes, md: str | None = "sha256",
                     mgf1_md: str | None = None) -> bytes:
        """RSA-OAEP decryption with `openssl pkeyutl`; raises OpenSSLError when it fails.

        The private key goes through a 0600 file in a temporary directory removed on return.
        """
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "private.pem", _private_pem_bytes(private_pem))
            args = ["pkeyutl", "-decrypt", "-inkey", key, *_oaep_options(md, mgf1_md)]
            return self._run(args, bytes(ciphertext), tmpdir=tmpdir).stdout

    def pkcs1_v15_encrypt(self, public_pem, data: bytes) -> bytes:
        """`openssl pkeyutl -encrypt` with no padding option: PKCS#1 v1.5, OpenSSL's default
        (the mistake of leaving out `rsa_padding_mode:oaep`)."""
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "public.pem", _public_pem_bytes(public_pem))
            args = ["pkeyutl", "-encrypt", "-pubin", "-inkey", key]
            return self._run(args, bytes(data), tmpdir=tmpdir).stdout

    # --- public key facts -----------------------------------------------------------------

    def pkey_text(self, public_pem) -> str:
        """`openssl pkey -pubin -text -noout`: the key's parts in OpenSSL's words."""
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "public.pem", _public_pem_bytes(public_pem))
            out = self._run(["pkey", "-pubin", "-in", key, "-text", "-noout"], tmpdir=tmpdir)
            return out.stdout.decode()

    def private_key_text(self, private_pem) -> str:
        """`openssl pkey -text -noout` of a private key: modulus, exponents and primes.
        Key material: only for the TEST-ONLY pairs, and never to be printed whole."""
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "private.pem", _private_pem_bytes(private_pem))
            out = self._run(["pkey", "-in", key, "-text", "-noout"], tmpdir=tmpdir)
            return out.stdout.decode()

    def modulus_bits(self, public_pem) -> int:
        """The modulus size OpenSSL reports ('Public-Key: (4096 bit)')."""
        text = self.pkey_text(public_pem)
        match = re.search(r"\((\d+) bit\)", text)
        if not match:
            raise OpenSSLError(self.last_command, 0, "no '(N bit)' in `pkey -text` output")
        return int(match.group(1))

    def modulus_hex(self, public_pem) -> str:
        """The modulus as lower-case hex (`openssl rsa -pubin -modulus -noout`)."""
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "public.pem", _public_pem_bytes(public_pem))
            out = self._run(["rsa", "-pubin", "-in", key, "-modulus", "-noout"], tmpdir=tmpdir)
        match = re.search(r"Modulus=([0-9A-Fa-f]+)", out.stdout.decode())
        if not match:
            raise OpenSSLError(self.last_command, 0, "no 'Modulus=' in output")
        return match.group(1).lower()

    def public_key_fingerprint(self, public_pem) -> str:
        """SHA-256 of the DER SubjectPublicKeyInfo, hex:
        `openssl pkey -pubin -outform DER | openssl dgst -sha256`."""
        with tempfile.TemporaryDirectory(prefix="byoklib-openssl-") as tmpdir:
            key = self._write_private(tmpdir, "public.pem", _public_pem_bytes(public_pem))
            out = self._run_pipe(["pkey", "-pubin", "-in", key, "-outform", "DER"],
                                 ["dgst", "-sha256"], tmpdir=tmpdir)
        # "SHA2-256(stdin)= ab12..." (3.x) or "(stdin)= ab12..." (1.1.1)
        match = re.search(r"=\s*([0-9a-f]{64})\s*$", out.decode().strip())
        if not match:
            raise OpenSSLError(self.last_command, 0, "no SHA-256 digest in `dgst` output")
        return match.group(1)

    # --- AES ------------------------------------------------------------------------------

    def aes_ctr(self, key: bytes, counter_block16: bytes, data: bytes) -> bytes:
        """AES-CTR with `openssl enc -aes-{128,192,256}-ctr -K <hex> -iv <hex> -nopad`.

        `counter_block16` is the whole first counter block; for the body of AES-GCM with
        a 96-bit IV it is IV || 00000002.
        """
        bits = _aes_bits(key)
        if len(counter_block16) != 16:
            raise ValueError("the counter block must be 16 bytes")
        args = ["enc", f"-aes-{bits}-ctr", "-K", bytes(key).hex(),
                "-iv", bytes(counter_block16).hex(), "-nopad"]
        return self._run(args, bytes(data)).stdout

    def aes_ecb(self, key: bytes, blocks: bytes) -> bytes:
        """Raw AES blocks: `openssl enc -aes-{128,192,256}-ecb -K <hex> -nopad`, each 16-byte
        block of `blocks` encrypted on its own (what GCM's H and E_K(J0) are made of)."""
        if len(blocks) % 16:
            raise ValueError("ECB without padding takes whole 16-byte blocks")
        args = ["enc", f"-aes-{_aes_bits(key)}-ecb", "-K", bytes(key).hex(), "-nopad"]
        return self._run(args, bytes(blocks)).stdout

    def aes_key_wrap_pad(self, kek: bytes, data: bytes) -> bytes:
        """AES key wrap with padding (RFC 5649) with `openssl enc -id-aes{N}-wrap-pad`."""
        args = ["enc", f"-id-aes{_aes_bits(kek)}-wrap-pad", "-K", bytes(kek).hex(),
                "-iv", AES_WRAP_PAD_AIV]
        return self._run(args, bytes(data)).stdout

    def aes_key_unwrap_pad(self, kek: bytes, wrapped: bytes) -> bytes:
        """The inverse of `aes_key_wrap_pad`; raises OpenSSLError when the check fails."""
        args = ["enc", "-d", f"-id-aes{_aes_bits(kek)}-wrap-pad", "-K", bytes(kek).hex(),
                "-iv", AES_WRAP_PAD_AIV]
        return self._run(args, bytes(wrapped)).stdout

    # --- openssl speed --------------------------------------------------------------------

    def speed_rsa(self, bits: int = 4096, seconds: int = 1) -> dict:
        """`openssl speed -seconds N rsa<bits>`, parsed from its table.

        Returns {'bits', 'sign_seconds', 'verify_seconds', 'sign_per_second',
        'verify_per_second'} (plus encrypt/decrypt columns on OpenSSL 3.2+).
        Takes about 2 x `seconds` (one run for sign, one for verify).
        """
        args = ["speed", "-seconds", str(_whole_seconds(seconds)), f"rsa{int(bits)}"]
        out = self._run(args, timeout=self.timeout + 10 * seconds).stdout.decode()
        return parse_speed_rsa(out, bits)

    def speed_aes_gcm(self, seconds: int = 1, block_size: int | None = 1024,
                      key_bits: int = 256) -> dict:
        """`openssl speed -seconds N [-bytes B] -evp aes-<key_bits>-gcm`, parsed.

        One block size (default 1024 bytes) keeps it to about `seconds`; `block_size=None`
        runs OpenSSL's six standard sizes (about 6 x `seconds`).
        Returns {'algorithm', 'bytes_per_second': {size: B/s}, 'ops_per_second': {size: n}}.
        """
        if key_bits not in (128, 192, 256):
            raise ValueError("key_bits must be 128, 192 or 256")
        args = ["speed", "-seconds", str(_whole_seconds(seconds))]
        if block_size is not None:
            args += ["-bytes", str(int(block_size))]
        args += ["-evp", f"aes-{key_bits}-gcm"]
        out = self._run(args, timeout=self.timeout + 10 * seconds).stdout.decode()
        return parse_speed_cipher(out)


# --- helpers ------------------------------------------------------------------------------

def _oaep_options(md: str | None, mgf1_md: str | None) -> list[str]:
    options = ["-pkeyopt", "rsa_padding_mode:oaep"]
    if md is not None:
        options += ["-pkeyopt", f"rsa_oaep_md:{_digest_name(md)}"]
    if mgf1_md is not None:
        options += ["-pkeyopt", f"rsa_mgf1_md:{_digest_name(mgf1_md)}"]
    return options


def _digest_name(name: str) -> str:
    cleaned = str(name).lower().replace("-", "")
    if not re.fullmatch(r"sha(1|224|256|384|512)", cleaned):
        raise ValueError(f"unsupported digest {name!r} (sha1, sha224, sha256, sha384, sha512)")
    return cleaned


def _aes_bits(key: bytes) -> int:
    if len(key) not in (16, 24, 32):
        raise ValueError("an AES key is 16, 24 or 32 bytes")
    return len(key) * 8


def _whole_seconds(seconds) -> int:
    # `openssl speed -seconds` takes whole seconds only.
    value = int(seconds)
    if value < 1 or value != seconds:
        raise ValueError("seconds must be a whole number >= 1")
    return value


def _pem_or_path(key) -> bytes | None:
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    if isinstance(key, str):
        if key.lstrip().startswith("-----BEGIN"):
            return key.encode("ascii")
        # Only a short text that names an existing file is a path; anything else (base64 of
        # a key, say) is refused without echoing it, since it may be key material.
        if _names_a_file(key):
            return Path(key).read_bytes()
        raise ValueError("a key given as str must be PEM text or the path of an existing "
                         "file (base64 or DER is not accepted here: decode it first)")
    if isinstance(key, os.PathLike):
        return Path(key).read_bytes()
    return None


def _names_a_file(text: str) -> bool:
    try:
        return "\n" not in text and Path(text).is_file()
    except OSError:  # e.g. a name too long for the file system: not a path
        return False


def _public_pem_bytes(key) -> bytes:
    """PEM bytes of a public key given as PEM (bytes/str), a file path, or a key object."""
    data = _pem_or_path(key)
    if data is not None:
        return data
    from cryptography.hazmat.primitives import serialization
    public = key.public_key() if hasattr(key, "private_numbers") else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _private_pem_bytes(key) -> bytes:
    """PEM bytes (PKCS#8, unencrypted) of a private key given as PEM, a path, or an object."""
    data = _pem_or_path(key)
    if data is not None:
        return data
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
