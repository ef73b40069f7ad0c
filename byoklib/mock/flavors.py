"""The two services the mock can be: Key Protect (the default) and Hyper Protect Crypto
Services (`serve --flavor hpcs`, `running_server(flavor="hpcs")`,
`KeyProtectService(flavor="hpcs")`).

Both speak the same `/api/v2` import-token API; a `Flavor` holds only what differs, so the
service and its HSM ask it instead of naming a service. What IBM documents for Hyper
Protect Crypto Services (HPCS), against Key Protect:

- The key material is wrapped with `RSAES_OAEP_SHA_1`: "You must use the RSAES_OAEP_SHA_1
  encryption scheme" (https://cloud.ibm.com/docs/hs-crypto?topic=hs-crypto-importing-keys
  #plan-ahead); the tutorial wraps with `openssl pkeyutl -pkeyopt rsa_oaep_md:sha1`, CLI
  `key-encrypt --hash SHA1` and sends `"encryptionAlgorithm": "RSAES_OAEP_SHA_1"`
  (https://cloud.ibm.com/docs/hs-crypto?topic=hs-crypto-tutorial-import-keys). Key
  Protect requires `RSAES_OAEP_SHA_256` and its CLI says SHA1 is for HPCS only.
- Keys' CRNs name the service `hs-crypto`, not `kms` (the tutorial's example answer:
  `crn:v1:bluemix:public:hs-crypto:us-south:a/...:key:...`).
- The same import-token bounds (expiration 300..86400 s, default 600; one retrieval by
  default; one token per instance; RSA-4096 made in the HSM), the same POST /keys body,
  `extractable: false` for a root key, and new material to rotate an imported root key
  (https://cloud.ibm.com/docs/hs-crypto?topic=hs-crypto-create-import-tokens and
  topic=hs-crypto-importing-keys).

Mock's choices (what the HPCS docs leave open or contradict):
- The nonce: the concepts page says AES-GCM (topic=hs-crypto-importing-keys, "How it
  works"), the tutorial and IBM's Go client seal it with AES-CBC and a 16-byte IV
  (`kms-encrypt-nonce -alg CBC`, `nonce-encrypt --cbc`, `EncryptNonceWithCBCPAD`). The
  HPCS flavour takes AES-GCM with a 12-byte IV only, as Key Protect does; a 16-byte IV
  is refused as in Key Protect (400 INVALID_FIELD_ERR on `iv`).
- Only `RSAES_OAEP_SHA_1` is accepted ("must use"); `RSAES_OAEP_SHA_256` and a missing
  `encryptionAlgorithm` are 400 INVALID_FIELD_ERR naming the field, as Key Protect
  refuses SHA-1.
- The instance-specific host and port of HPCS endpoints
  (`<instance_ID>.api.<region>.hs-crypto.appdomain.cloud`) are not modelled: the paths
  are served on 127.0.0.1 as for Key Protect, and the first line `serve` prints is the
  same. HPCS's other features (its crypto units' master key, EP11, KMIP) are not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass

from byoklib.errors import KeyProtectError
from byoklib.protocol import RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256


@dataclass(frozen=True)
class Flavor:
    """What one service does differently in the import-token flow."""
    name: str                   # as `--flavor` spells it
    title: str                  # the service's name, for messages
    crn_service: str            # the service name inside a key's CRN
    wrap_algorithm: str         # the one `encryptionAlgorithm` accepted
    other_note: str             # said when the other service's algorithm is sent

    def check_algorithm(self, algorithm) -> None:
        """400 INVALID_FIELD_ERR (target `encryptionAlgorithm`) unless it is ours."""
        if algorithm != self.wrap_algorithm:
            raise KeyProtectError.of(
                "INVALID_FIELD_ERR",
                f"The field 'encryptionAlgorithm' must be: {self.wrap_algorithm} "
                f"({self.other_note})",
                target=("field", "encryptionAlgorithm"))


KEY_PROTECT = Flavor("keyprotect", "Key Protect", "kms", RSAES_OAEP_SHA_256,
                     "RSAES_OAEP_SHA_1 is for Hyper Protect Crypto Services only")
HPCS = Flavor("hpcs", "Hyper Protect Crypto Services", "hs-crypto", RSAES_OAEP_SHA_1,
              "Hyper Protect Crypto Services; RSAES_OAEP_SHA_256 is Key Protect's")

FLAVORS = {flavor.name: flavor for flavor in (KEY_PROTECT, HPCS)}


def flavor_of(value=None) -> Flavor:
    """A Flavor from a name (`keyprotect`, `hpcs`), a Flavor, or None (Key Protect)."""
    if value is None:
        return KEY_PROTECT
    if isinstance(value, Flavor):
        return value
    try:
        return FLAVORS[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown flavor {value!r}; expected one of {sorted(FLAVORS)}") \
            from None
