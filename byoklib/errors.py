"""Key Protect errors: one exception type and the catalogue of reason codes.

Every failure the mock reports, and every failure the client parses, is a
`KeyProtectError` carrying the HTTP status, the reason code, a human message and,
where one field is at fault, a `target`. `CATALOGUE` holds the status and the reason
message of each code, taken from IBM's error-message reference; codes IBM does not
document are listed too and say so: they are this project's choice.

`RULES` is the second half of the catalogue: each behaviour a notebook shows (a bound,
a state rule, the answer to one mistake) with its source, an IBM page and section by
URL, or "the mock's choice". Numbers are not copied here: a rule names the constant in
`byoklib.protocol` that holds them. `rule(name)` looks one up; `mock_choices_table()`
renders the README's table of the mock's choices from the same rules.

This module imports only `byoklib.protocol`, so both wings (service and client) can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import byoklib.protocol as protocol

MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"
ERROR_COLLECTION_TYPE = "application/vnd.ibm.kms.error+json"


@dataclass(frozen=True)
class ReasonCode:
    code: str
    status: int
    message: str
    confirmed: bool = True
    reasons_in_body: bool = True

    @property
    def source(self) -> "Source":
        """Where IBM documents this code, or that it is the mock's own."""
        return CODE_SOURCES.get(self.code) or (
            Source(IBM_ERRORS_PAGE + "#error-messages-" + self.code.lower().replace("_", "-"),
                   f"IBM's error messages, {self.code}")
            if self.confirmed else Source(None, "IBM documents no such code"))


def _r(code: str, status: int, message: str, confirmed: bool = True,
       reasons_in_body: bool = True) -> ReasonCode:
    return ReasonCode(code, status, message, confirmed, reasons_in_body)


CATALOGUE: dict[str, ReasonCode] = {r.code: r for r in [
    # --- import tokens -----------------------------------------------------------
    _r("IMPORT_TOKEN_EXPIRED_ERR", 409, "The import token has expired."),
    _r("IMPORT_TOKEN_NOT_FOUND_ERR", 404,
       "An import token was not found in the specified service instance", confirmed=False),
    _r("IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR", 409,
       "The import token has reached its maxAllowedRetrievals", confirmed=False),
    _r("INCORRECT_NONCE_ERR", 400,
       "The encrypted nonce given does not match existing record: Please ensure the correct "
       "nonce was given in the request"),
    _r("INCORRECT_NONCE_IV_ERR", 400,
       "The provided encrypted nonce was not encrypted with the key material given OR the "
       "provided IV does not match the encrypted nonce"),
    _r("UNPROCESSABLE_PAYLOAD_ERR", 400,
       "The payload could not be decrypted with the import token's private key",
       confirmed=False),
    # --- request shape -----------------------------------------------------------
    _r("BAD_BODY_ERR", 400, "Invalid body data was passed: Please ensure the data passed had "
       "valid formatting with no invalid characters"),
    _r("NO_BODY_ERR", 400, "Missing body in request"),
    _r("COLLECTION_TOTAL_MISMATCH_ERR", 400,
       "Collection total does not match number of resources"),
    _r("NUM_COLLECTION_RESOURCE_ERR", 400, "Only a single instance policy can be created per "
       "query parameter: Please pass single resource object"),
    _r("BODY_QUERY_PARAM_MISMATCH_ERR", 400,
       "Data in body does not match data required by query parameter"),
    _r("INVALID_FIELD_ERR", 400, "The field is invalid"),
    _r("INVALID_QUERY_PARAM_ERR", 400, "The query parameter is invalid"),
    _r("INVALID_HEADER_ERR", 400, "The header is invalid", confirmed=False),
    _r("BODY_TOO_LARGE_ERR", 413, "The request body is too large", confirmed=False),
    _r("UNSUPPORTED_MEDIA_TYPE_ERR", 415, "The content type is not supported", confirmed=False),
    _r("NOT_FOUND_ERR", 404, "The requested resource does not exist", confirmed=False),
    _r("METHOD_NOT_ALLOWED_ERR", 405, "The method is not allowed on this resource",
       confirmed=False),
    _r("INVALID_HTTP_REQUEST_ERR", 400, "The request could not be read as HTTP/1.1",
       confirmed=False),
    _r("INTERNAL_ERR", 500, "The service could not complete the request", confirmed=False),
    # --- keys --------------------------------------------------------------------
    _r("KEY_NOT_FOUND_ERR", 404, "key does not exist"),
    _r("KEY_SEARCH_TOO_BROAD", 400, "The search would look through more than 5000 keys: "
       "narrow it with state, extractable or X-Kms-Key-Ring"),
    # --- key rings (the reference is silent: the mock's codes) ----------------------
    _r("KEY_RING_NOT_FOUND_ERR", 404, "The key ring does not exist", confirmed=False),
    _r("KEY_RING_EXISTS_ERR", 409, "A key ring with this id already exists", confirmed=False),
    _r("KEY_RING_QUOTA_ERR", 400, "An instance can have at most 50 key rings",
       confirmed=False),
    _r("KEY_RING_NOT_EMPTY_ERR", 409, "The key ring holds keys: move or delete them first",
       confirmed=False),
    _r("KEY_RING_RESERVED_ERR", 400, "The key ring 'default' cannot be deleted",
       confirmed=False),
    _r("INVALID_PATH_PARAM_ERR", 400, "The path parameter is invalid", confirmed=False),
    # --- dual authorisation (reference section 7) ------------------------------------
    _r("AUTHORIZATIONS_NOT_MET", 409, "Number of authorizations required to delete is not "
       "met"),
    _r("NOT_DUAL_AUTH_ERR", 409, "The key is not dual auth enabled and cannot be set for "
       "deletion"),
    # --- aliases (the reference is silent: the mock's codes) ------------------------
    _r("KEY_ALIAS_QUOTA_ERR", 400, "A key can have at most 5 aliases", confirmed=False),
    _r("KEY_ALIAS_NOT_UNIQUE_ERR", 409, "The alias is already in use in this instance",
       confirmed=False),
    _r("KEY_ALIAS_NOT_FOUND_ERR", 404, "The key has no such alias", confirmed=False),
    _r("KEY_DELETED_ERR", 410, "Key has already been deleted: Please delete references to "
       "this key"),
    _r("KEY_ROOT_REQ_ERR", 400, "Requested action can only be completed with a root key"),
    _r("KEY_PAYLOAD_REQ_ERR", 400, "This root key was created with user-supplied key "
       "material: Key material is required to perform a 'rotate' action"),
    _r("KEY_ACTION_INVALID_STATE_ERR", 409, "Key is not in a valid state"),
    _r("KEY_ROTATION_NOT_PERMITTED", 409, "This root key has been rotated within the last "
       "hour: Only one 'rotate' action per hour is permitted"),
    _r("KEY_CREATE_IMPORT_ACCESS_ERR", 409, "KeyCreateImportAccess instance policy does not "
       "allow this action"),
    _r("KEY_EXPIRED_ERR", 400, "The action could not be performed on the key because the key "
       "is expired"),
    _r("KEY_RESTORE_EXPIRED", 400, "Key restoration has expired"),
    _r("REQ_TOO_EARLY_ERR", 409, "The key was updated recently: Please wait and try again"),
    _r("UNPROCESSABLE_CIPHERTEXT_ERR", 422, "The provided ciphertext is invalid or corrupted"),
    _r("ROTATION_POLICY_NOT_ALLOWED_ERR", 400, "A rotation policy cannot be set on a key "
       "with imported key material: Imported keys must be rotated manually",
       confirmed=False),
    # --- access ------------------------------------------------------------------
    # IBM's error-message page: the body of a 401 is only its errorMsg, "Unauthorized: <this>"
    # (https://cloud.ibm.com/docs/key-protect?topic=key-protect-error-messages)
    _r("UNAUTHORIZED_ERR", 401, "The user does not have access to the specified resource",
       reasons_in_body=False),
    # strict mode's answer to a known token on another instance: DESIGN.md's public contract
    # says 403; IBM documents only 401 UNAUTHORIZED_ERR for "no access"
    _r("FORBIDDEN_ERR", 403, "The token does not grant access to this instance",
       confirmed=False),
    _r("BEARER_SUB_EXTRACTION_ERR", 400, "Extracting the subject from the bearer token "
       "failed: Make sure the bearer token passed is the correct one (and correct format) "
       "and is allowed to perform requested actions"),
]}


class KeyProtectError(Exception):
    """A Key Protect failure: HTTP status, reason code, message and an optional target.

    `target` is a `(type, name)` pair such as `("field", "payload")`. Messages are
    written by the code that raises them and must never contain key material.
    """

    # The import doctor's "CODE: sentence" (byoklib.mock.doctor), sent by the mock as a
    # Byoklib-Diagnosis header and kept here by the client; never part of the body.
    diagnosis: str | None = None

    def __init__(self, status: int, code: str, message: str | None = None,
                 target: tuple[str, str] | None = None, error_msg: str | None = None):
        known = CATALOGUE.get(code)
        self.status = int(status)
        self.code = code
        self.message = message or (known.message if known else code)
        self.target = tuple(target) if target else None
        self.error_msg = error_msg or _error_msg(self.status, self.code)
        super().__init__(f"{self.status} {self.code}: {self.message}")

    @classmethod
    def of(cls, code: str, message: str | None = None,
           target: tuple[str, str] | None = None) -> "KeyProtectError":
        """Raise-ready error for a catalogued code, with its documented status."""
        return cls(CATALOGUE[code].status, code, message, target)

    def in_context(self, context: str | None) -> "KeyProtectError":
        """Name what could not be done in errorMsg, as Key Protect does ("Bad Request: Key
        could not be created: Please see `reasons` ... (CODE)"); returns self."""
        if context:
            self.error_msg = _error_msg(self.status, self.code, context)
        return self

    def to_body(self) -> dict:
        """The JSON body Key Protect sends for this error."""
        reason = {"code": self.code, "message": self.message, "status": self.status,
                  "moreInfo": MORE_INFO}
        if self.target:
            reason["target"] = {"type": self.target[0], "name": self.target[1]}
        known = CATALOGUE.get(self.code)
        resource = {"errorMsg": self.error_msg, "reasons": [reason]}
        if known is not None and not known.reasons_in_body:
            resource = {"errorMsg": f"{HTTPStatus(self.status).phrase}: {self.message}"}
        return {
            "metadata": {"collectionType": ERROR_COLLECTION_TYPE, "collectionTotal": 1},
            "resources": [resource],
        }

    def __repr__(self) -> str:
        return (f"KeyProtectError(status={self.status}, code={self.code!r}, "
                f"message={self.message!r}, target={self.target!r})")


def _error_msg(status: int, code: str,
               context: str = "The request could not be completed") -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"{phrase}: {context}: Please see `reasons` for more details ({code})"


# --- sources ---------------------------------------------------------------------------------

_DOCS = "https://cloud.ibm.com/docs/key-protect?topic=key-protect-"
IBM_ERRORS_PAGE = _DOCS + "error-messages"
TOKENS_PAGE = _DOCS + "create-import-tokens"
TUTORIAL_PAGE = _DOCS + "tutorial-import-keys"
IMPORTING_PAGE = _DOCS + "importing-keys"
IMPORT_ROOT_PAGE = _DOCS + "import-root-keys"
ROTATE_PAGE = _DOCS + "rotate-keys"
ROTATION_POLICY_PAGE = _DOCS + "set-rotation-policy"
KEY_STATES_PAGE = _DOCS + "key-states"
WRAP_PAGE = _DOCS + "wrap-keys"
UNWRAP_PAGE = _DOCS + "unwrap-keys"
# IBM's OpenAPI document of the service as of 2019, in its deprecated generated Go client;
# the current docs do not repeat some of what it says (statuses of GET /import_token).
OPENAPI_2019 = "https://github.com/IBM/keyprotect-go/blob/master/api/openapi.yaml"
GO_CLIENT_TESTS = "https://github.com/IBM/keyprotect-go-client/blob/master/kp_test.go"


@dataclass(frozen=True)
class Source:
    """Where a behaviour comes from: an IBM page and section (`url`), or none (the mock's
    choice). `partly` marks a behaviour IBM documents only in part (the status but not the
    code, another operation, an example but no statement): the rest is the mock's reading,
    which `note` says."""
    url: str | None
    note: str = ""
    partly: bool = False

    @property
    def kind(self) -> str:
        if self.url is None:
            return "the mock's choice"
        return "IBM, in part" if self.partly else "IBM"

    @property
    def documented(self) -> bool:
        """True only when IBM documents the whole behaviour."""
        return self.url is not None and not self.partly

    def __str__(self) -> str:
        text = self.kind + (f": {self.note}" if self.note else "")
        return text + (f" <{self.url}>" if self.url else "")


# Codes IBM documents somewhere else than its error-messages page.
CODE_SOURCES: dict[str, Source] = {
    "KEY_NOT_FOUND_ERR": Source(GO_CLIENT_TESTS, "IBM's Go client tests"),
    "INVALID_QUERY_PARAM_ERR": Source(GO_CLIENT_TESTS, "IBM's Go client tests"),
    "KEY_SEARCH_TOO_BROAD": Source(None, "the code and its bound are the mock's"),
}


# --- rules: each behaviour a notebook shows, with its source ---------------------------------

@dataclass(frozen=True)
class Rule:
    """One behaviour of the service. `says` may hold `{low}`, `{high}`, `{default}` (of a
    `protocol.Bounds`) or `{value}`, filled from the protocol constant named by `value`,
    so a number lives in protocol.py only. `code`/`status` give the answer of a refusal;
    `situation`/`answer` make a row of the README's table of the mock's choices."""
    name: str
    says: str
    source: Source
    code: str | None = None
    status: int | None = None
    value: str | None = None
    situation: str | None = None
    answer: str | None = None

    @property
    def bound(self):
        """The protocol constant this rule is about (e.g. `protocol.TOKEN_EXPIRATION`)."""
        return getattr(protocol, self.value) if self.value else None

    @property
    def expect(self) -> tuple[int, str | None] | None:
        """(status, reason code) of the answer, when the rule is about one."""
        if self.status is None and self.code is None:
            return None
        return (self.status if self.status is not None else CATALOGUE[self.code].status,
                self.code)

    @property
    def text(self) -> str:
        bound = self.bound
        if isinstance(bound, protocol.Bounds):
            return self.says.format(low=bound.low, high=bound.high, default=bound.default)
        if bound is not None:
            shown = "/".join(map(str, bound)) if isinstance(bound, tuple) else bound
            return self.says.format(value=shown)
        return self.says

    @property
    def documented(self) -> bool:
        return self.source.documented

    def __str__(self) -> str:
        return f"{self.text}\n  source: {self.source}"


def _rule(name, says, source, **extra) -> Rule:
    return Rule(name, says, source, **extra)


_TOKEN_API = TOKENS_PAGE + "#create-import-token-api"
_TOKEN_GET = TOKENS_PAGE + "#retrieve-import-token-api"
_IMPORT_STEP = TUTORIAL_PAGE + "#tutorial-import-encrypted-key"

RULES: dict[str, Rule] = {r.name: r for r in [
    # --- the import token ----------------------------------------------------------------
    _rule("token.expiration", "expiration: {low} to {high} seconds, {default} by default",
          Source(_TOKEN_API), value="TOKEN_EXPIRATION"),
    _rule("token.retrievals", "maxAllowedRetrievals: {low} to {high}, {default} by default",
          Source(_TOKEN_API, "default and maximum on this page; the minimum in IBM's "
                 "2019 OpenAPI document"), value="TOKEN_RETRIEVALS"),
    _rule("token.one_per_instance", "one import token per instance: a new one replaces the "
          "old (its key pair and nonce)", Source(_TOKEN_API)),
    _rule("token.created", "POST /import_token answers 200 with the policy and two dates, "
          "no key, no nonce", Source(OPENAPI_2019, "the 200 is IBM's 2019 OpenAPI document's; "
          "the fields are the example's on the tokens page", partly=True), status=200),
    _rule("token.key_size", "the token's key is RSA-{value}, made in Key Protect's HSM",
          Source(IMPORTING_PAGE), value="TOKEN_KEY_BITS"),
    _rule("token.nonce_size", "the nonce is {value} bytes", Source(
          _TOKEN_GET, "every nonce in IBM's examples decodes to that size; no page states it",
          partly=True), value="NONCE_BYTES"),
    _rule("token.counted", "each GET is counted: remainingRetrievals already includes it",
          Source(_TOKEN_GET, "the example: maxAllowedRetrievals 1, remainingRetrievals 0")),
    _rule("token.same_nonce", "every retrieval of one token gives the same nonce and key",
          Source(IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-err", "IBM's examples read "
                 "the nonce and the key from two retrievals and import; no page states it",
                 partly=True)),
    _rule("token.reusable", "a retrieved token imports one or more keys until it expires, "
          "whatever its retrievals left", Source(_TOKEN_GET, "\"can be reused to import one "
          "or more keys up until the date that the import token expires\""),
          situation="import after the retrievals are used up",
          answer="accepted until the token expires (IBM's words)"),
    _rule("token.retrievals_exceeded", "a GET past maxAllowedRetrievals is refused",
          Source(OPENAPI_2019, "409 is IBM's 2019 OpenAPI document's; the reason code is the "
                 "mock's", partly=True), code="IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR",
          situation="GET /import_token with the retrievals used up"),
    _rule("token.not_found", "a GET when the instance has no token is refused",
          Source(OPENAPI_2019, "404 is IBM's 2019 OpenAPI document's; the reason code is the "
                 "mock's", partly=True), code="IMPORT_TOKEN_NOT_FOUND_ERR",
          situation="GET /import_token when there is no token"),
    _rule("token.expired", "a GET after expirationDate is refused",
          CATALOGUE["IMPORT_TOKEN_EXPIRED_ERR"].source, code="IMPORT_TOKEN_EXPIRED_ERR"),
    _rule("token.policy_out_of_range", "an expiration or maxAllowedRetrievals outside its "
          "bounds is refused, and no token is made", Source(None, "IBM documents the bounds, "
          "not the answer past them"), code="INVALID_FIELD_ERR",
          situation="`expiration` or `maxAllowedRetrievals` outside its bounds",
          answer="400 `INVALID_FIELD_ERR`, target the field"),
    _rule("token.early_expiry", "a token may, rarely, expire early; a client that meets the "
          "409 makes a new token", Source(OPENAPI_2019, "IBM's 2019 OpenAPI document; the "
          "current docs do not say it")),
    # --- the secure import -----------------------------------------------------------------
    _rule("import.created", "a secure import answers 201 with imported: true, "
          "extractable: false", Source(_IMPORT_STEP, "the tutorial's example answer"),
          status=201),
    _rule("import.material_sizes", "root key material is {value} bytes (AES-128/192/256)",
          Source(IMPORT_ROOT_PAGE), value="KEY_MATERIAL_BYTES"),
    _rule("import.algorithm", "Key Protect takes RSAES_OAEP_SHA_256 only (RSAES_OAEP_SHA_1 is "
          "for Hyper Protect Crypto Services)", Source(IMPORTING_PAGE)),
    _rule("import.payload_undecryptable", "a payload that does not RSA-OAEP-SHA-256-decrypt "
          "under the token's key is refused", Source(None, "IBM documents no code for it"),
          code="UNPROCESSABLE_PAYLOAD_ERR",
          situation="`payload` that does not RSA-OAEP-SHA-256-decrypt"),
    _rule("import.gcm_fails", "an encryptedNonce whose GCM tag does not verify (a changed "
          "IV, tag or key) is refused", Source(
              IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-iv-err", "IBM documents the "
              "code and its message, but its page calls it an internal error and says to "
              "contact IBM support; answering it for a failed GCM tag is the mock's reading",
              partly=True), code="INCORRECT_NONCE_IV_ERR",
          situation="GCM tag fails (IV, tag or key changed)"),
    _rule("import.nonce_mismatch", "a sealed value that opens but is not the token's nonce "
          "is refused", Source(IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-err",
                               "IBM documents the code for rotate and restore; for an import "
                               "it is the mock's reading", partly=True),
          code="INCORRECT_NONCE_ERR", situation="the nonce opens to another value"),
    _rule("import.constant_time", "the opened nonce is compared with the token's in constant "
          "time", Source(None, "IBM does not say how it compares")),
    _rule("import.algorithm_refused", "RSAES_OAEP_SHA_1, an unknown or a missing "
          "encryptionAlgorithm is refused", Source(None, "IBM documents no code for it"),
          code="INVALID_FIELD_ERR",
          situation="`RSAES_OAEP_SHA_1` (HPCS only), an unknown or a missing algorithm"),
    _rule("import.material_size_refused", "wrapped material of another size than {value} "
          "bytes is refused", Source(None, "IBM documents the sizes, not the code"),
          code="INVALID_FIELD_ERR", value="KEY_MATERIAL_BYTES",
          situation="root key material of another size", answer="400 `INVALID_FIELD_ERR`, "
          "target `payload`"),
    _rule("import.bad_json", "a body that is not valid JSON is refused",
          CATALOGUE["BAD_BODY_ERR"].source, code="BAD_BODY_ERR"),
    _rule("import.not_base64", "a field that is not base64 is refused",
          Source(IBM_ERRORS_PAGE + "#error-messages-invalid-field-err", "IBM documents it for "
                 "wrap's plaintext and unwrap's ciphertext; for an import's payload it is the "
                 "mock's reading", partly=True), code="INVALID_FIELD_ERR"),
    _rule("import.replaced_token", "a request prepared for a token that was since replaced is "
          "refused", Source(_TOKEN_API, "IBM: a new token overrides the old; the reason code "
          "is the mock's (the old key pair is gone, so the payload does not decrypt)",
          partly=True), code="UNPROCESSABLE_PAYLOAD_ERR"),
    _rule("import.replaced_nonce", "a request wrapped for the new token but sealing the "
          "replaced token's nonce is refused", Source(
              IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-err", "IBM's example: an "
              "old encrypted nonce against a new token (for restore)", partly=True),
          code="INCORRECT_NONCE_ERR"),
    _rule("import.expired_token", "an import after the token's expirationDate is refused",
          Source(_IMPORT_STEP, "IBM's tutorial: such an import fails with an \"import token "
                 "expired\" error; the status and code are the GET's, the mock's reading",
                 partly=True), code="IMPORT_TOKEN_EXPIRED_ERR"),
    _rule("import.replay", "the same import request sent again while its token lives is "
          "accepted again: a second key with the same material", Source(
              _TOKEN_GET, "follows from \"can be reused to import one or more keys\"; no page "
              "speaks of replay", partly=True), status=201,
          situation="the same secure-import body sent twice while the token lives",
          answer="201 twice: two keys with the same material"),
    _rule("import.no_prefer", "POST /keys without a Prefer header answers the minimal form",
          Source(_IMPORT_STEP, "the tutorial's answer is minimal; no page states the default",
                 partly=True), situation="no `Prefer` header on POST /keys",
          answer="the minimal form, as in IBM's tutorial"),
    # --- access ----------------------------------------------------------------------------
    _rule("access.unknown_bearer", "an unknown bearer token is refused; the body is errorMsg "
          "only", CATALOGUE["UNAUTHORIZED_ERR"].source, code="UNAUTHORIZED_ERR",
          situation="an unknown bearer token (strict mode)",
          answer="401 `UNAUTHORIZED_ERR`, `errorMsg` only, as IBM documents"),
    _rule("access.other_instance", "a known bearer token on another instance is refused",
          Source(None, "IBM documents only the 401 for \"no access\""), code="FORBIDDEN_ERR",
          situation="a known token on another instance (strict mode)"),
    _rule("access.no_bearer_scheme", "an Authorization header without `Bearer ` is refused",
          Source(IBM_ERRORS_PAGE + "#error-messages-bearer-sub-extraction-err", "IBM documents "
                 "the code for a token of the wrong format", partly=True),
          code="BEARER_SUB_EXTRACTION_ERR", situation="`Authorization` without `Bearer `"),
    # --- the root key ----------------------------------------------------------------------
    _rule("key.material_kept", "a root key's material is never returned, not even to you",
          Source(IMPORT_ROOT_PAGE)),
    _rule("key.rotate_with_material", "an imported key is rotated by hand, with new material "
          "(sealed with an import token, as at import)", Source(ROTATE_PAGE)),
    _rule("key.rotation_hourly", "at most one rotation of a key per {value} seconds",
          CATALOGUE["KEY_ROTATION_NOT_PERMITTED"].source, code="KEY_ROTATION_NOT_PERMITTED",
          value="ROTATION_INTERVAL_SECONDS"),
    _rule("key.rotation_policy_imported", "an automatic rotation policy is refused for an "
          "imported key", Source(ROTATION_POLICY_PAGE, "IBM: policies only for keys generated "
          "in Key Protect; the reason code is the mock's", partly=True),
          code="ROTATION_POLICY_NOT_ALLOWED_ERR", situation="rotation policy on an imported key"),
    _rule("key.expiry_deactivates", "past its expirationDate a key is Deactivated (state 3)",
          Source(KEY_STATES_PAGE, "IBM: within an hour after the date; the mock at once",
                 partly=True), situation="a key past its `expirationDate`",
          answer="Deactivated at once (the service takes up to an hour)"),
    _rule("key.deactivated_no_wrap", "a Deactivated key does not wrap",
          Source(KEY_STATES_PAGE, "the table of actions per state"),
          code="KEY_ACTION_INVALID_STATE_ERR"),
    _rule("key.deactivated_unwraps", "a Deactivated key still unwraps",
          Source(KEY_STATES_PAGE, "the table of actions per state")),
    _rule("key.deleted_unreadable", "a deleted key no longer unwraps: what it wrapped is "
          "unreadable until the key is restored", Source(KEY_STATES_PAGE, "IBM's table of "
          "actions per state: a Destroyed key allows get and restore only; the 410 "
          "KEY_DELETED_ERR is documented for deleting twice, for an unwrap it is the mock's "
          "reading", partly=True), code="KEY_DELETED_ERR"),
    _rule("key.restore_window", "a deleted key can be restored within 30 days of its "
          "deletion", Source(_DOCS + "restore-keys")),
    _rule("wrap.generated_dek", "wrap without a plaintext: the service makes a {value}-byte "
          "DEK and returns it with its wrapped form", Source(WRAP_PAGE),
          value="GENERATED_DEK_BYTES"),
    _rule("wrap.no_echo", "wrap with your own DEK returns only the wrapped DEK and the key "
          "version", Source(WRAP_PAGE)),
    _rule("unwrap.rewrap", "unwrapping a DEK wrapped by an older version also returns it "
          "rewrapped under the newest", Source(UNWRAP_PAGE)),
    _rule("unwrap.wrong_aad", "an unwrap with another AAD (or none) is refused",
          Source(None, "IBM documents no code for it; the mock answers its code for a "
                 "ciphertext that does not decrypt"), code="UNPROCESSABLE_CIPHERTEXT_ERR",
          situation="unwrap with another AAD (or none)"),
]}

def rule(name: str) -> Rule:
    """The rule called `name`, e.g. `rule("token.expiration")`; KeyError names the known ones."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"no rule {name!r}; rules are {sorted(RULES)}") from None


def source_of(code: str) -> Source:
    """Where IBM documents a reason code, or that it is the mock's own."""
    return CATALOGUE[code].source


def mock_choices() -> list[Rule]:
    """The rules that make the README's table: what IBM leaves open, the mock decides."""
    return [r for r in RULES.values() if r.situation and not r.documented]


def _answer(r: Rule) -> str:
    if r.answer:
        return r.answer
    status, code = r.expect
    return f"{status} `{code}`"


def mock_choices_table() -> str:
    """The Markdown table of the mock's choices, as the README shows it."""
    lines = ["| situation | the mock answers | IBM documents |", "|---|---|---|"]
    for r in mock_choices():
        said = r.source.note or "nothing"
        lines.append(f"| {r.situation} | {_answer(r)} | {said} |")
    return "\n".join(lines)
