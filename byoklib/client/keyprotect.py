"""A `requests`-based client for the Key Protect v2 REST API, import tokens first.

    client = KeyProtectClient("http://127.0.0.1:8080", "my-instance", "Bearer <IAM token>")
    key = byok_import(client, key_material, "my-root-key")    # token -> encrypt -> import
    dek = client.wrap(key["id"])                              # {"plaintext": b"...", ...}

Methods read like the API: one method per endpoint, snake_case arguments, and they
return `resources[0]` of the response (or the resource list for list calls, or None for
204 responses). Base64 fields of wrap/unwrap/rewrap come back as bytes. Every non-2xx
response becomes a `KeyProtectError` parsed from Key Protect's error body — or, when the
body is not one (a proxy's HTML page, a 401 without reasons), a `KeyProtectError` with
code `HTTP_<status>`. Network failures stay `requests` exceptions. `last_response` holds
the last `requests.Response` so a notebook can show status codes.

The client knows nothing of the mock: it talks to whatever URL it is given, so the same
notebook cell runs against `byoklib.mock.running_server()` and against IBM Cloud
(`KeyProtectClient.from_env()`). Pass `session=` to use a session of your own.
"""
from __future__ import annotations

import json
import os
import re
import warnings

import requests

from byoklib import protocol
from byoklib.errors import KeyProtectError
from byoklib.protocol import API_PREFIX, JSON, KEY, POLICY, action_type

from . import bodies
from .answers import (
    UNEXPECTED_RESPONSE,
    decode_fields,
    error_from_response,
    read_resource,
    read_resources,
)
from .iam import IAM_URL, iam_token, token_source
from .token import ImportToken, prepare_secure_import
from .transport import (
    checked_url,
    in_clear_over_the_network,
    mount_retries,
    new_session,
    receive,
    retry_policy,
)

DEFAULT_URL = "https://us-south.kms.cloud.ibm.com"
# The request content types IBM's Python and Java clients send, so the mock is exercised
# with what real clients send rather than only with plain application/json.
ACTION_TYPES = {action: action_type(action) for action in ("wrap", "unwrap", "rewrap", "rotate")}
_NO_BODY = object()
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class KeyProtectClient:
    """One Key Protect instance over a keep-alive `requests.Session`.

    `token` is a bearer token, with or without the "Bearer " prefix. It is kept out of
    `repr`, out of `session.headers` and out of every error message, and no ~/.netrc
    entry for the host replaces it (requests would otherwise send that one instead).
    """

    def __init__(self, url: str, instance_id: str, token: str, *,
                 session: requests.Session | None = None, key_ring: str | None = None,
                 timeout: float = 30, correlation_id: str | None = None,
                 retries: int = 0, max_retry_wait: float = 30):
        if not url or not instance_id:
            raise ValueError("a service URL and an instance id are required")
        retry_policy(retries, max_retry_wait)   # refuses a bad value before anything else
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._new_token = None    # set by from_api_key: fetches a fresh IAM token
        self.url = checked_url(bodies.base_url(url))
        if in_clear_over_the_network(self.url):   # a mock elsewhere, or a typo for https
            warnings.warn(f"{self.url} is plain http to another machine: the bearer token "
                          "and what you import cross the network in clear (Key Protect is "
                          "https)", stacklevel=2)
        self.instance_id = instance_id
        self.key_ring = key_ring
        self.timeout = timeout
        self.correlation_id = correlation_id
        self.set_token(token)
        self._owns_session = session is None
        if session is None:
            session = new_session(retries, max_retry_wait)
        elif retries:   # a session of the caller's: retry only the service's requests
            mount_retries(session, self.url + API_PREFIX, retries, max_retry_wait)
        self.session = session
        self.last_response: requests.Response | None = None

    # --- construction from credentials ---------------------------------------------------

    @classmethod
    def from_api_key(cls, url: str, instance_id: str, api_key: str, *, iam_url: str = IAM_URL,
                     session: requests.Session | None = None, **options) -> "KeyProtectClient":
        """Exchange an IBM Cloud API key at IAM for a bearer token, then connect.
        IAM tokens last about an hour: when the service answers 401, the client gets a
        new token from IAM once and sends the request again (a 401 was not carried out).
        The API key stays in that closure, out of the client's attributes and repr."""
        own = session is None
        session = session if session is not None else new_session()
        token = iam_token(api_key, iam_url, session=session)
        client = cls(url, instance_id, token, session=session, **options)
        client._owns_session = own
        client._new_token = token_source(api_key, iam_url, session=session)
        return client

    @classmethod
    def from_env(cls, environ=None, **options) -> "KeyProtectClient":
        """Connect with these environment variables (`environ`, default os.environ):

            KP_URL          service URL, e.g. https://us-south.kms.cloud.ibm.com (the default)
            KP_INSTANCE_ID  the Key Protect instance GUID (required)
            KP_TOKEN        a bearer token to use as is, or else
            KP_API_KEY      an IBM Cloud API key exchanged at IAM (IBMCLOUD_API_KEY also works)
            KP_IAM_URL      IAM token endpoint (default https://iam.cloud.ibm.com/identity/token)
            KP_KEY_RING     optional key ring id, sent as x-kms-key-ring
            KP_RETRIES      optional number of retries (default 0: `retries=`)
        """
        env = os.environ if environ is None else environ
        url = env.get("KP_URL") or DEFAULT_URL
        instance_id = env.get("KP_INSTANCE_ID")
        token = env.get("KP_TOKEN")
        api_key = env.get("KP_API_KEY") or env.get("IBMCLOUD_API_KEY")
        if not instance_id or not (token or api_key):
            raise ValueError("set KP_INSTANCE_ID and one of KP_TOKEN, KP_API_KEY or "
                             "IBMCLOUD_API_KEY (and KP_URL unless it is us-south)")
        options.setdefault("key_ring", env.get("KP_KEY_RING") or None)
        if env.get("KP_RETRIES"):
            options.setdefault("retries", int(env["KP_RETRIES"]))
        if token:
            return cls(url, instance_id, token, **options)
        return cls.from_api_key(url, instance_id, api_key,
                                iam_url=env.get("KP_IAM_URL") or IAM_URL, **options)

    def set_token(self, token: str) -> None:
        """Replace the bearer token (e.g. a refreshed IAM token)."""
        if not token or not str(token).strip():
            raise ValueError("a non-empty bearer token is required")
        if not protocol.bearer_token(str(token)):
            raise ValueError("a non-empty bearer token is required")
        if not _VISIBLE_ASCII.fullmatch(protocol.bearer_token(str(token))):
            # said without the value: it is a credential, and an HTTP header cannot carry it
            raise ValueError("a bearer token is visible ASCII characters only, with no spaces "
                             "or line breaks")
        self._authorization = protocol.authorization(str(token))

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> "KeyProtectClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        ring = f", key_ring={self.key_ring!r}" if self.key_ring else ""
        return f"KeyProtectClient(url={self.url!r}, instance_id={self.instance_id!r}{ring})"

    # --- the one request helper -----------------------------------------------------------

    def request(self, method: str, path: str, *, body=_NO_BODY, params: dict | None = None,
                content_type: str = JSON, headers: dict | None = None) -> requests.Response:
        """Send one API request (`path` relative to /api/v2/) and return the response;
        raise `KeyProtectError` for any non-2xx status. Public so a notebook can send a
        request the methods below do not make (a tampered body, a raw field)."""
        data = None if body is _NO_BODY else json.dumps(body).encode("utf-8")

        def send() -> requests.Response:
            all_headers = self._headers()
            if data is not None:
                all_headers["Content-Type"] = content_type
            all_headers.update(headers or {})
            # Key Protect does not redirect; following one would send the body (key
            # material, for a plain import) and the instance id to wherever it points.
            response = receive(
                self.session, method, self.url + API_PREFIX + path.lstrip("/"),
                params=bodies.query(params), data=data, headers=all_headers,
                auth=self._authorize, timeout=self.timeout, allow_redirects=False)
            self.last_response = response
            return response

        response = send()   # retried by the session's adapter (transport.py)
        if response.status_code == 401 and self._new_token is not None:
            self.set_token(self._new_token())   # the IAM token may have expired
            response = send()
        if not 200 <= response.status_code < 300:
            raise error_from_response(
                response, withhold=(protocol.bearer_token(self._authorization),
                                    *bodies.secrets_in(None if body is _NO_BODY else body)))
        return response

    def _authorize(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Given as requests' `auth`, not as a plain header: without an auth of its own,
        # requests takes one from ~/.netrc (or $NETRC) for the host and sends that user's
        # Basic credentials in place of the bearer token. The client's own session never
        # reads ~/.netrc, but a session passed in (`session=`) may.
        request.headers[protocol.AUTHORIZATION_HEADER] = self._authorization
        return request

    def _headers(self) -> dict:
        headers = {protocol.INSTANCE_HEADER: self.instance_id, "Accept": JSON}
        if self.key_ring:
            headers[protocol.KEY_RING_HEADER] = self.key_ring
        if self.correlation_id:
            headers["correlation-id"] = self.correlation_id
        return headers

    # --- import tokens ------------------------------------------------------------------

    def create_import_token(self, expiration: int | None = None,
                            max_allowed_retrievals: int | None = None) -> dict:
        """POST /import_token (200). Replaces the instance's previous token."""
        body = bodies.without_none({"expiration": expiration,
                              "maxAllowedRetrievals": max_allowed_retrievals})
        return read_resource(self.request("POST", "import_token", body=body))

    def get_import_token_raw(self) -> dict:
        """GET /import_token as the service sent it (payload and nonce still base64).
        Each call uses up one retrieval."""
        return read_resource(self.request("GET", "import_token"))

    def get_import_token(self) -> ImportToken:
        """GET /import_token, checked and parsed (ValueError if it is not a valid token)."""
        return ImportToken.from_response(self.get_import_token_raw())

    # --- creating and importing keys ------------------------------------------------------

    def create_key(self, name: str, *, payload=None, extractable: bool = False,
                   encrypted_nonce=None, iv=None, encryption_algorithm: str | None = None,
                   description: str | None = None, expiration_date=None,
                   prefer: str | None = None) -> dict:
        """POST /keys (201). `payload`, `encrypted_nonce` and `iv` are sent as given when
        they are base64 strings and base64-encoded when they are bytes."""
        resource = bodies.without_none({
            "type": KEY, "name": name, "description": description,
            "expirationDate": bodies.date(expiration_date), "extractable": bool(extractable),
            "payload": bodies.b64(payload), "encryptedNonce": bodies.b64(encrypted_nonce),
            "iv": bodies.b64(iv), "encryptionAlgorithm": encryption_algorithm})
        body = {"metadata": {"collectionType": KEY, "collectionTotal": 1},
                "resources": [resource]}
        return read_resource(self.request("POST", "keys", body=body, content_type=KEY,
                                      headers=bodies.prefer(prefer)))

    def create_root_key(self, name: str, **options) -> dict:
        """A root key generated by the service (or imported when `payload` is given)."""
        return self.create_key(name, extractable=False, **options)

    def create_standard_key(self, name: str, payload=None, **options) -> dict:
        return self.create_key(name, payload=payload, extractable=True, **options)

    def import_root_key(self, name: str, key_material: bytes, **options) -> dict:
        """Import raw key material protected only by TLS (no import token). The size is
        not checked here, so a notebook can watch the service refuse a wrong one."""
        return self.create_key(name, payload=bytes(key_material), extractable=False, **options)

    # --- reading keys ------------------------------------------------------------------------

    def get_key(self, key_id: str) -> dict:
        return read_resource(self.request("GET", bodies.key_path(key_id)))

    def get_key_metadata(self, key_id: str) -> dict:
        return read_resource(self.request("GET", bodies.key_path(key_id, "metadata")))

    def list_keys(self, limit: int | None = None, offset: int | None = None, state=None,
                  extractable: bool | None = None, search: str | None = None,
                  sort: str | None = None) -> list[dict]:
        """GET /keys; `state` is one integer state or a list of them; `search` finds keys by
        name, alias or id (`exact:`, `not:`, `name:`, `alias:` options); `sort` names key
        properties, `-` for descending (by id otherwise)."""
        params = {"limit": limit, "offset": offset, "state": state, "extractable": extractable,
                  "search": search, "sort": sort}
        return read_resources(self.request("GET", "keys", params=params))

    def key_total(self, state=None, extractable: bool | None = None) -> int:
        """HEAD /keys: the number of keys, from the Key-Total header."""
        response = self.request("HEAD", "keys", params={"state": state, "extractable": extractable})
        total = response.headers.get("Key-Total")
        if total is None or not (total.strip().isascii() and total.strip().isdigit()):
            raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                                  "HEAD /keys answered without a numeric Key-Total header")
        return int(total)

    def list_key_versions(self, key_id: str, *, limit: int | None = None,
                          offset: int | None = None, total_count: bool | None = None,
                          all_key_states: bool | None = None) -> list[dict]:
        """GET /keys/{id}/versions: `[{id, creationDate}]`, newest first."""
        params = {"limit": limit, "offset": offset, "totalCount": total_count,
                  "allKeyStates": all_key_states}
        path = bodies.key_path(key_id, "versions")
        return read_resources(self.request("GET", path, params=params))

    # --- envelope encryption ---------------------------------------------------------------

    def wrap(self, key_id: str, plaintext: bytes | None = None, aad=None) -> dict:
        """Wrap a DEK (or have the service make a 32-byte one when `plaintext` is None).
        Returns `ciphertext` (and `plaintext` when generated) as bytes, plus `keyVersion`."""
        body = bodies.without_none({"plaintext": bodies.b64(plaintext),
                                    "aad": bodies.aad_list(aad)})
        return self._action(key_id, "wrap", body)

    def unwrap(self, key_id: str, ciphertext: bytes, aad=None) -> dict:
        """Returns `plaintext` as bytes, `keyVersion`, and — when the DEK was wrapped under
        an older version — a rewrapped `ciphertext` (bytes) and `rewrappedKeyVersion`."""
        return self._action(key_id, "unwrap", bodies.ciphertext_body(ciphertext, aad))

    def rewrap(self, key_id: str, ciphertext: bytes, aad=None) -> dict:
        return self._action(key_id, "rewrap", bodies.ciphertext_body(ciphertext, aad))

    def _action(self, key_id: str, action: str, body: dict) -> dict:
        response = self.request("POST", bodies.key_path(key_id, "actions", action), body=body,
                                content_type=ACTION_TYPES[action])
        return decode_fields(response, read_resource(response) or {})

    # --- rotation, states, deletion ---------------------------------------------------------

    def rotate(self, key_id: str, *, payload=None, encrypted_nonce=None, iv=None,
               encryption_algorithm: str | None = None) -> dict | None:
        """POST /keys/{id}/actions/rotate (204 → None). Generated keys rotate with no
        fields; imported keys need new material (see `rotate_with_material`)."""
        body = bodies.without_none({
            "payload": bodies.b64(payload), "encryptedNonce": bodies.b64(encrypted_nonce),
            "iv": bodies.b64(iv), "encryptionAlgorithm": encryption_algorithm})
        response = self.request("POST", bodies.key_path(key_id, "actions", "rotate"), body=body,
                                content_type=ACTION_TYPES["rotate"])
        return read_resource(response)

    def rotate_with_material(self, key_id: str, key_material: bytes, use_token: bool = True,
                             *, token: ImportToken | None = None) -> dict | None:
        """Rotate an imported root key to new material: sealed with an import token
        (retrieved now unless one is given), or sent over TLS only when `use_token=False`."""
        if not use_token:
            return self.rotate(key_id, payload=bytes(key_material))
        fields = prepare_secure_import(key_material, token or self.get_import_token())
        return self.rotate(key_id, **bodies.as_kwargs(fields))

    def disable_key(self, key_id: str) -> None:
        """Suspend a root key (state 2); 204."""
        self.request("POST", bodies.key_path(key_id, "actions", "disable"))

    def enable_key(self, key_id: str) -> None:
        self.request("POST", bodies.key_path(key_id, "actions", "enable"))

    def delete_key(self, key_id: str, *, prefer: str | None = None,
                   force: bool = False) -> dict | None:
        """DELETE /keys/{id}: the deleted key with prefer="return=representation", else
        whatever the service sends (None for 204)."""
        response = self.request("DELETE", bodies.key_path(key_id),
                                params={"force": True if force else None},
                                headers=bodies.prefer(prefer))
        return read_resource(response)

    def restore_key(self, key_id: str) -> dict:
        """POST /keys/{id}/restore (201): a deleted key back to Active."""
        return read_resource(self.request("POST", bodies.key_path(key_id, "restore")))

    # --- policies ------------------------------------------------------------------------

    def set_rotation_policy(self, key_id: str, interval_month: int, enabled: bool = True) -> dict:
        """PUT /keys/{id}/policies?policy=rotation. Refused for imported keys."""
        policy = {"type": POLICY,
                  "rotation": {"enabled": bool(enabled), "interval_month": interval_month}}
        response = self.request("PUT", bodies.key_path(key_id, "policies"),
                                params={"policy": "rotation"}, body=bodies.policy_body(policy),
                                content_type=POLICY)
        return read_resource(response)

    def get_key_policies(self, key_id: str) -> list[dict]:
        return read_resources(self.request("GET", bodies.key_path(key_id, "policies")))

    def set_instance_policy_key_create_import_access(
            self, enforce_token: bool = False, *, enabled: bool = True,
            create_root_key: bool = True, create_standard_key: bool = True,
            import_root_key: bool = True, import_standard_key: bool = True) -> None:
        """PUT /instance/policies?policy=keyCreateImportAccess (204). With
        `enforce_token=True` the instance refuses key material sent without an import token."""
        data = {"enabled": bool(enabled)}
        if enabled:
            data["attributes"] = {
                "create_root_key": create_root_key, "create_standard_key": create_standard_key,
                "import_root_key": import_root_key, "import_standard_key": import_standard_key,
                "enforce_token": enforce_token}
        policy = {"policy_type": "keyCreateImportAccess", "policy_data": data}
        self.request("PUT", "instance/policies", params={"policy": "keyCreateImportAccess"},
                     body=bodies.policy_body(policy), content_type=POLICY)

    def get_instance_policies(self, policy: str | None = None) -> list[dict]:
        return read_resources(self.request("GET", "instance/policies", params={"policy": policy}))


# --- the whole secure import ----------------------------------------------------------------

def byok_import(client: KeyProtectClient, key_material: bytes, name: str, *,
                description: str | None = None, expiration_date=None,
                token: ImportToken | None = None, prefer: str | None = None) -> dict:
    """Steps 2-4 of the protocol: retrieve the import token (unless given), seal the nonce
    and wrap the material (`prepare_secure_import`), then create the root key.
    Expiry is left to the service: its clock, not this machine's, decides."""
    token = token if token is not None else client.get_import_token()
    fields = prepare_secure_import(key_material, token)
    return client.create_key(name, extractable=False, description=description,
                             expiration_date=expiration_date, prefer=prefer,
                             **bodies.as_kwargs(fields))
