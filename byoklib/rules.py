"""The rules the notebooks show: each behaviour of the service (a bound, a state rule, the
answer to a mistake) with its source, an IBM page and section or "the mock's choice".

The numbers stay in `byoklib.protocol`: a rule names the constant it is about and fills its
text from it. The README's table of the mock's choices is made here (`mock_choices_table`).
This module imports only `protocol` and `errors` (for `Source` and the reason codes).
"""
from __future__ import annotations

from dataclasses import dataclass

from byoklib import protocol
from byoklib.errors import (
    CATALOGUE,
    DOCS,
    IBM_ERRORS_PAGE,
    IMPORT_ROOT_PAGE,
    IMPORTING_PAGE,
    KEY_STATES_PAGE,
    OPENAPI_2019,
    ROTATE_PAGE,
    ROTATION_POLICY_PAGE,
    TOKENS_PAGE,
    TUTORIAL_PAGE,
    UNWRAP_PAGE,
    WRAP_PAGE,
    Source,
)


@dataclass(frozen=True)
class Rule:
    """One behaviour of the service. `says`, `situation` and `answer` may hold `{low}`,
    `{high}`, `{default}` (of a `protocol.Bounds`) or `{value}`, filled from the protocol
    constant named by `value`, so a number lives in protocol.py only. `code`/`status` give
    the answer of a refusal; `situation`/`answer` make a row of the README's table of the
    mock's choices."""
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
        return self.filled(self.says)

    def filled(self, words: str) -> str:
        """`words` with the numbers of the protocol constant this rule is about."""
        bound = self.bound
        if isinstance(bound, protocol.Bounds):
            return words.format(low=bound.low, high=bound.high, default=bound.default)
        if bound is not None:
            shown = "/".join(map(str, bound)) if isinstance(bound, tuple) else bound
            return words.format(value=shown)
        return words

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
          "the fields are the example's on the tokens page", partly=True), status=200,
          situation="POST /import_token",
          answer="200 with the policy and two dates, no key, no nonce"),
    _rule("token.key_size", "the token's key is RSA-{value}, made in Key Protect's HSM",
          Source(IMPORTING_PAGE), value="TOKEN_KEY_BITS"),
    _rule("token.nonce_size", "the nonce is {value} bytes", Source(
          _TOKEN_GET, "every nonce in IBM's examples decodes to that size; no page states it",
          partly=True), value="NONCE_BYTES",
          situation="the token's nonce", answer="{value} random bytes"),
    _rule("token.counted", "each GET is counted: remainingRetrievals already includes it",
          Source(_TOKEN_GET, "the example: maxAllowedRetrievals 1, remainingRetrievals 0")),
    _rule("token.same_nonce", "every retrieval of one token gives the same nonce and key",
          Source(IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-err", "IBM's examples read "
                 "the nonce and the key from two retrievals and import; no page states it",
                 partly=True), situation="retrieving one token again",
          answer="the same nonce and key each time"),
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
          "time", Source(None, "IBM does not say how it compares"),
          situation="comparing the opened nonce with the token's",
          answer="in constant time (`hmac.compare_digest`)"),
    _rule("import.iv_size", "an iv of another size than {value} bytes is refused",
          Source(None, "IBM documents the size, not the answer to another"),
          code="INVALID_FIELD_ERR", value="IV_BYTES",
          situation="an `iv` of another size than {value} bytes",
          answer="400 `INVALID_FIELD_ERR`, target `iv`"),
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
                 "mock's reading", partly=True), code="INVALID_FIELD_ERR",
          situation="an import field that is not base64",
          answer="400 `INVALID_FIELD_ERR`, target the field"),
    _rule("import.replaced_token", "a request prepared for a token that was since replaced is "
          "refused", Source(_TOKEN_API, "IBM: a new token overrides the old; the reason code "
          "is the mock's (the old key pair is gone, so the payload does not decrypt)",
          partly=True), code="UNPROCESSABLE_PAYLOAD_ERR",
          situation="an import prepared for a token since replaced"),
    _rule("import.replaced_nonce", "a request wrapped for the new token but sealing the "
          "replaced token's nonce is refused", Source(
              IBM_ERRORS_PAGE + "#error-messages-incorrect-nonce-err", "IBM's example: an "
              "old encrypted nonce against a new token (for restore)", partly=True),
          code="INCORRECT_NONCE_ERR", situation="an import sealing the replaced token's nonce"),
    _rule("import.expired_token", "an import after the token's expirationDate is refused",
          Source(_IMPORT_STEP, "IBM's tutorial: such an import fails with an \"import token "
                 "expired\" error; the status and code are the GET's, the mock's reading",
                 partly=True), code="IMPORT_TOKEN_EXPIRED_ERR",
          situation="an import after the token's `expirationDate`"),
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
          "reading", partly=True), code="KEY_DELETED_ERR",
          situation="unwrap with a deleted key"),
    _rule("key.restore_window", "a deleted key can be restored within 30 days of its "
          "deletion", Source(DOCS + "restore-keys")),
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
        lines.append(f"| {r.filled(r.situation)} | {r.filled(_answer(r))} | {said} |")
    return "\n".join(lines)
