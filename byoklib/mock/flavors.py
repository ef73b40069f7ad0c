"""The two services the mock can be: Key Protect (the default) and Hyper Protect Crypto
Services (`serve --flavor hpcs`, `running_server(flavor="hpcs")`,
`KeyProtectService(flavor="hpcs")`).

Both speak the same `/api/v2` import-token API; a `Flavor` holds only what differs, so the
service and its HSM ask it instead of naming a service. What IBM documents for Hyper
Protect Crypto Services (HPCS) against Key Protect is in `HPCS_DOCUMENTED` (each with
its page), and what the HPCS docs leave open or contradict, and the mock therefore
chose, in `HPCS_CHOICES`; notebooks print both.
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

_DOCS = "https://cloud.ibm.com/docs/hs-crypto?topic="
HPCS_DOCUMENTED = (
    ("The key material is wrapped with RSAES_OAEP_SHA_1 (\"You must use the "
     "RSAES_OAEP_SHA_1 encryption scheme\"); Key Protect requires RSAES_OAEP_SHA_256",
     _DOCS + "hs-crypto-importing-keys#plan-ahead"),
    ("The tutorial wraps with `openssl pkeyutl -pkeyopt rsa_oaep_md:sha1` or `ibmcloud kp "
     "import-token key-encrypt --hash SHA1`, imports with `key create --sha1`, and sends "
     "\"encryptionAlgorithm\": \"RSAES_OAEP_SHA_1\"",
     _DOCS + "hs-crypto-tutorial-import-keys"),
    ("IBM's Go client marks RSAES_OAEP_SHA_1 as the algorithm HPCS supports "
     "(AlgorithmRSAOAEP1) and has CreateImportedKeyWithSHA1 for it",
     "https://github.com/IBM/keyprotect-go-client (import_token.go, keys.go)"),
    ("A key's CRN names the service hs-crypto, not kms "
     "(crn:v1:bluemix:public:hs-crypto:us-south:a/...:key:...)",
     _DOCS + "hs-crypto-tutorial-import-keys"),
    ("The same import-token API and bounds: expiration 300..86400 s (default 600), "
     "maxAllowedRetrievals default 1, one token per instance, RSA-4096 made in the HSM",
     _DOCS + "hs-crypto-create-import-tokens"),
    ("Rotating an imported root key needs new key material that you generate and provide",
     _DOCS + "hs-crypto-importing-keys#plan-ahead"),
)
HPCS_CHOICES = (
    "The nonce is sealed with AES-GCM and a 12-byte IV, as in Key Protect: the HPCS concepts "
    "page says AES-GCM (hs-crypto-importing-keys, \"How it works\"), while its tutorial and "
    "IBM's Go client use AES-CBC with a 16-byte IV (`nonce-encrypt --cbc`, "
    "EncryptNonceWithCBCPAD); a 16-byte IV is refused (400 INVALID_FIELD_ERR on iv)",
    "Only RSAES_OAEP_SHA_1 is accepted (the docs' \"must use\"): RSAES_OAEP_SHA_256 or no "
    "encryptionAlgorithm is 400 INVALID_FIELD_ERR naming the field, the way Key Protect "
    "refuses SHA-1",
    "The instance-specific host and port of HPCS endpoints "
    "(<instance_ID>.api.<region>.hs-crypto.appdomain.cloud) are not modelled: the same paths "
    "on 127.0.0.1, and `serve` prints the same first line",
    "HPCS's other features (its crypto units and master key, EP11, KMIP) are not modelled",
)


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
