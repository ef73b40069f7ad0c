"""Witnesses from first principles: AES-GCM's tag and RSA-OAEP, in plain Python.

byoklib does its cryptography with pyca/cryptography, which is OpenSSL's libcrypto, and so
is the `openssl` command. A check through either proves the *parameters* agree, not that
the library is right. The functions here share no code with it: GHASH is the shift-and-add
multiplication of NIST SP 800-38D, section 6.3; OAEP is RFC 8017, sections 7.1.1 and 7.1.2,
with `hashlib` and `pow()`. They are written to be read in a notebook (`inspect.getsource`),
not to be fast or constant-time: `oaep_decode` even says *where* a block is wrong, which a
real decryptor must never do (Manger's attack). Written by hand because teaching the
computation is the point; no library exposes these steps one by one.

AES itself is not written here: its blocks come from `openssl enc -aes-256-ecb -nopad`
(`aes_blocks`), a different code path from the AEAD API byoklib calls, so the tag is
recomputed from raw AES blocks rather than taken from any GCM implementation.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# --- AES-GCM ---------------------------------------------------------------------------

R = 0xE1 << 120            # x^128 = x^7 + x^2 + x + 1, in GCM's reflected bit order


def gf_mult(x: int, y: int) -> int:
    """x * y in GF(2^128), NIST SP 800-38D Algorithm 1 (bit 0 of a block is its leftmost)."""
    z, v = 0, x
    for i in range(127, -1, -1):           # the bits of y, leftmost first
        if (y >> i) & 1:
            z ^= v
        v = (v >> 1) ^ R if v & 1 else v >> 1
    return z


def ghash(h: bytes, data: bytes) -> bytes:
    """GHASH_H over data (a multiple of 16 bytes): Y = (Y xor X_i) * H, block by block."""
    hi, y = int.from_bytes(h, "big"), 0
    for i in range(0, len(data), 16):
        y = gf_mult(y ^ int.from_bytes(data[i:i + 16], "big"), hi)
    return y.to_bytes(16, "big")


def pad16(data: bytes) -> bytes:
    """Zero bytes up to a multiple of 16."""
    return data + bytes(-len(data) % 16)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def counter_block(iv: bytes, counter: int) -> bytes:
    """A 96-bit IV's counter block: IV || counter as 32 bits. J0 is counter 1."""
    return iv + counter.to_bytes(4, "big")


def gcm_tag(h: bytes, ek_j0: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    """T = E_K(J0) xor GHASH_H(A padded || C padded || len(A) || len(C)), lengths in bits."""
    lengths = (8 * len(aad)).to_bytes(8, "big") + (8 * len(ciphertext)).to_bytes(8, "big")
    return xor(ek_j0, ghash(h, pad16(aad) + pad16(ciphertext) + lengths))


def gcm_j0(h: bytes, iv: bytes) -> bytes:
    """J0: IV || 0^31 || 1 for a 96-bit IV, else GHASH_H(IV padded || 0^64 || len(IV))."""
    if len(iv) == 12:
        return counter_block(iv, 1)
    return ghash(h, pad16(iv) + bytes(8) + (8 * len(iv)).to_bytes(8, "big"))


def inc32(block: bytes, n: int = 1) -> bytes:
    """Add n to the last 32 bits of a counter block, modulo 2^32."""
    return block[:12] + ((int.from_bytes(block[12:], "big") + n) % 2**32).to_bytes(4, "big")


def gcm_seal(aes_blocks, key: bytes, iv: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AES-GCM from first principles: ciphertext || 16-byte tag.

    `aes_blocks(key, blocks)` returns E_K of each 16-byte block (e.g. `openssl enc -ecb`).
    """
    (h,) = aes_blocks(key, [bytes(16)])
    j0 = gcm_j0(h, iv)
    n = (len(plaintext) + 15) // 16
    ek_j0, *stream = aes_blocks(key, [j0] + [inc32(j0, i) for i in range(1, n + 1)])
    ciphertext = xor(plaintext, b"".join(stream))
    return ciphertext + gcm_tag(h, ek_j0, ciphertext, aad)


def aes_blocks_openssl(ossl):
    """`aes_blocks` for `gcm_seal` through `openssl enc -aes-N-ecb -nopad` (one call)."""
    def aes_blocks(key: bytes, blocks: list[bytes]) -> list[bytes]:
        out = ossl.aes_ecb(key, b"".join(blocks))
        return [out[i:i + 16] for i in range(0, len(out), 16)]
    return aes_blocks


# --- RSA: numbers from `openssl pkey -text` ---------------------------------------------

def rsa_numbers(pkey_text: str) -> dict[str, int]:
    """modulus, publicExponent and (for a private key) privateExponent as integers, read
    from the text of `openssl pkey -text -noout`."""
    numbers = {}
    # a private key prints "modulus:", a public one "Modulus:"; the hex follows, indented
    for name, label in (("modulus", "[mM]odulus"), ("privateExponent", "privateExponent")):
        match = re.search(rf"^{label}:\n((?: +[0-9a-f:]+\n)+)", pkey_text, re.MULTILINE)
        if match:
            numbers[name] = int(re.sub(r"[\s:]", "", match.group(1)), 16)
    match = re.search(r"(?:publicExponent|Exponent): (\d+)", pkey_text)
    if match:
        numbers["publicExponent"] = int(match.group(1))
    return numbers


def i2osp(x: int, length: int) -> bytes:
    """RFC 8017 4.1: an integer as `length` big-endian bytes."""
    return x.to_bytes(length, "big")


def os2ip(data: bytes) -> int:
    """RFC 8017 4.2: big-endian bytes as an integer."""
    return int.from_bytes(data, "big")


# --- RSAES-OAEP (RFC 8017, 7.1) ---------------------------------------------------------

def mgf1(seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """RFC 8017 B.2.1: Hash(seed || counter) for counter = 0, 1, ..., cut to `length`."""
    out = b""
    for counter in range(-(-length // hashlib.new(hash_name).digest_size)):
        out += hashlib.new(hash_name, seed + counter.to_bytes(4, "big")).digest()
    return out[:length]


def oaep_encode(message: bytes, k: int, seed: bytes, hash_name: str = "sha256",
                mgf1_hash: str | None = None, label: bytes = b"") -> bytes:
    """RFC 8017 7.1.1 step 2: EM = 0x00 || maskedSeed || maskedDB (k bytes)."""
    mgf1_hash = mgf1_hash or hash_name
    l_hash = hashlib.new(hash_name, label).digest()
    h_len = len(l_hash)
    if len(message) > k - 2 * h_len - 2 or len(seed) != h_len:
        raise ValueError("message too long, or seed not hLen bytes")
    db = l_hash + bytes(k - len(message) - 2 * h_len - 2) + b"\x01" + message
    masked_db = xor(db, mgf1(seed, k - h_len - 1, mgf1_hash))
    masked_seed = xor(seed, mgf1(masked_db, h_len, mgf1_hash))
    return b"\x00" + masked_seed + masked_db


@dataclass
class OAEPBlock:
    """Each part of a decoded OAEP block, and the first check it failed (or None)."""
    em: bytes
    y: int
    masked_seed: bytes
    masked_db: bytes
    seed: bytes
    db: bytes
    l_hash: bytes            # the hash of the label this side expects
    l_hash_found: bytes      # the first hLen bytes of DB
    ps_length: int | None    # zero bytes between lHash and the separator
    separator_at: int | None  # index of 0x01 in DB
    message: bytes | None
    failure: str | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def oaep_decode(em: bytes, hash_name: str = "sha256", mgf1_hash: str | None = None,
                label: bytes = b"") -> OAEPBlock:
    """RFC 8017 7.1.2 step 3, every step kept, and the first one that fails named."""
    mgf1_hash = mgf1_hash or hash_name
    l_hash = hashlib.new(hash_name, label).digest()
    h_len = len(l_hash)
    y, masked_seed, masked_db = em[0], em[1:1 + h_len], em[1 + h_len:]
    seed = xor(masked_seed, mgf1(masked_db, h_len, mgf1_hash))
    db = xor(masked_db, mgf1(seed, len(em) - h_len - 1, mgf1_hash))
    rest = db[h_len:]
    first = next((i for i, b in enumerate(rest) if b != 0), None)
    failure = None
    if y != 0:
        failure = f"first byte Y is 0x{y:02x}, not 0x00"
    elif db[:h_len] != l_hash:
        failure = "lHash mismatch: DB does not start with Hash(label)"
    elif first is None or rest[first] != 0x01:
        failure = "no 0x01 separator after the zero padding PS"
    found = first is not None and rest[first] == 0x01
    return OAEPBlock(em, y, masked_seed, masked_db, seed, db, l_hash, db[:h_len],
                     first, h_len + first if found else None,
                     rest[first + 1:] if found and failure is None else None, failure)


def rsa_oaep_decrypt(ciphertext: bytes, n: int, d: int, hash_name: str = "sha256",
                     mgf1_hash: str | None = None) -> OAEPBlock:
    """RSADP with pow(), then EME-OAEP decoding. A ciphertext >= n is refused (7.1.2 2b)."""
    k = (n.bit_length() + 7) // 8
    c = os2ip(ciphertext)
    if len(ciphertext) != k or c >= n:
        raise ValueError("ciphertext representative out of range (c >= n), or not k bytes")
    return oaep_decode(i2osp(pow(c, d, n), k), hash_name, mgf1_hash)


def rsa_oaep_encrypt(message: bytes, n: int, e: int, seed: bytes,
                     hash_name: str = "sha256", mgf1_hash: str | None = None) -> bytes:
    """EME-OAEP encoding with the given seed, then RSAEP: c = m^e mod n."""
    k = (n.bit_length() + 7) // 8
    return i2osp(pow(os2ip(oaep_encode(message, k, seed, hash_name, mgf1_hash)), e, n), k)


def pkcs1_v15_decode(em: bytes) -> bytes | None:
    """RFC 8017 7.2.2: EM = 0x00 || 0x02 || PS (8+ non-zero bytes) || 0x00 || M, or None."""
    if em[:2] != b"\x00\x02" or 0 not in em[2:]:
        return None
    end = em.index(0, 2)
    return em[end + 1:] if end >= 10 else None


# --- GCM does not commit to its key -------------------------------------------------------

def gf_inverse(x: int) -> int:
    """x^-1 in GF(2^128), as x^(2^128 - 2) by square and multiply."""
    result, power = 1 << 127, x          # 1 << 127 is the field's 1
    for bit in range(1, 128):            # 2^128 - 2 has every bit set but bit 0
        power = gf_mult(power, power)
        result = gf_mult(result, power)
    return result


def opens_under_two_keys(aes_blocks, key_1: bytes, key_2: bytes, iv: bytes) -> bytes:
    """One 16-byte ciphertext and a tag that verify under both keys (96-bit IV, no AAD).

    The tag is linear in the ciphertext block C: T = E_K(J0) + C*H^2 + L*H. Setting
    T1 = T2 gives C = (E_K1(J0) + E_K2(J0) + L*(H1 + H2)) / (H1^2 + H2^2): whoever
    chooses both keys can always do this (Dodis et al., "Fast Message Franking", 2018).
    """
    (h1, ej1), (h2, ej2) = (aes_blocks(k, [bytes(16), counter_block(iv, 1)])
                            for k in (key_1, key_2))
    i1, i2 = int.from_bytes(h1, "big"), int.from_bytes(h2, "big")
    length = 128                          # len(A) = 0, len(C) = 128 bits
    right = (int.from_bytes(ej1, "big") ^ int.from_bytes(ej2, "big")
             ^ gf_mult(length, i1 ^ i2))
    c = gf_mult(right, gf_inverse(gf_mult(i1, i1) ^ gf_mult(i2, i2))).to_bytes(16, "big")
    return c + gcm_tag(h1, ej1, c)
