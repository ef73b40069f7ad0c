"""Key Protect errors: one exception type and the catalogue of reason codes.

Every failure the mock reports, and every failure the client parses, is a
`KeyProtectError` carrying the HTTP status, the reason code, a human message and,
where one field is at fault, a `target`. `CATALOGUE` holds the status and the reason
message of each code, taken from IBM's error-message reference; codes IBM does not
document are listed too and say so: they are this project's choice.

Each code has a `Source` (an IBM page and section by URL, or "the mock's choice");
`byoklib.rules` holds the other half of the catalogue, the behaviours with their sources.
This module imports nothing of byoklib, so both wings (service and client) can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from byoklib.protocol import ERROR

MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"


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
    # --- key rings (IBM's docs are silent: the mock's codes) ------------------------
    _r("KEY_RING_NOT_FOUND_ERR", 404, "The key ring does not exist", confirmed=False),
    _r("KEY_RING_EXISTS_ERR", 409, "A key ring with this id already exists", confirmed=False),
    _r("KEY_RING_QUOTA_ERR", 400, "An instance can have at most 50 key rings",
       confirmed=False),
    _r("KEY_RING_NOT_EMPTY_ERR", 409, "The key ring holds keys: move or delete them first",
       confirmed=False),
    _r("KEY_RING_RESERVED_ERR", 400, "The key ring 'default' cannot be deleted",
       confirmed=False),
    _r("INVALID_PATH_PARAM_ERR", 400, "The path parameter is invalid", confirmed=False),
    # --- dual authorisation (IBM's error-message page) -------------------------------
    _r("AUTHORIZATIONS_NOT_MET", 409, "Number of authorizations required to delete is not "
       "met"),
    _r("NOT_DUAL_AUTH_ERR", 409, "The key is not dual auth enabled and cannot be set for "
       "deletion"),
    # --- aliases (IBM's docs are silent: the mock's codes) --------------------------
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
    # strict mode's answer to a known token on another instance: 403, this suite's public
    # contract (README); IBM documents only 401 UNAUTHORIZED_ERR for "no access"
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
            "metadata": {"collectionType": ERROR, "collectionTotal": 1},
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

DOCS = "https://cloud.ibm.com/docs/key-protect?topic=key-protect-"
IBM_ERRORS_PAGE = DOCS + "error-messages"
TOKENS_PAGE = DOCS + "create-import-tokens"
TUTORIAL_PAGE = DOCS + "tutorial-import-keys"
IMPORTING_PAGE = DOCS + "importing-keys"
IMPORT_ROOT_PAGE = DOCS + "import-root-keys"
ROTATE_PAGE = DOCS + "rotate-keys"
ROTATION_POLICY_PAGE = DOCS + "set-rotation-policy"
KEY_STATES_PAGE = DOCS + "key-states"
WRAP_PAGE = DOCS + "wrap-keys"
UNWRAP_PAGE = DOCS + "unwrap-keys"
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


def source_of(code: str) -> Source:
    """Where IBM documents a reason code, or that it is the mock's own."""
    return CATALOGUE[code].source
