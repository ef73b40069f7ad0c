"""IBM Cloud IAM for the client: an API key exchanged for a bearer token.

IAM access tokens last about an hour; `token_source` gives the client a way to get a new
one when the service answers 401, keeping the API key in a closure rather than on an
object that may be printed. The key is never logged or echoed in an error.
Source: https://cloud.ibm.com/docs/account?topic=account-iamtoken_from_apikey
"""
from __future__ import annotations

from typing import Callable

import requests

from byoklib.errors import KeyProtectError
from byoklib.protocol import JSON

from .answers import UNEXPECTED_RESPONSE, error_from_response, read_json
from .transport import checked_url, in_clear_over_the_network, new_session, receive

IAM_URL = "https://iam.cloud.ibm.com/identity/token"
APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def iam_token(api_key: str, url: str = IAM_URL, session: requests.Session | None = None,
              timeout: float = 30) -> str:
    """Exchange an IBM Cloud API key for an IAM access token (form POST, apikey grant).
    Failures raise `KeyProtectError` with IAM's errorCode, without the key."""
    if not api_key:
        raise ValueError("an API key is required")
    checked_url(url, "the IAM URL")
    if in_clear_over_the_network(url):
        raise ValueError("the IAM URL is plain http to another machine: the API key would "
                         "cross the network in clear (IBM's IAM is https)")
    own = session is None
    session = new_session() if own else session
    try:
        response = receive(
            session, "POST", url, data={"grant_type": APIKEY_GRANT, "apikey": api_key},
            headers={"Accept": JSON}, auth=_no_credentials, timeout=timeout,
            allow_redirects=False)
    finally:
        if own:
            session.close()
    if not 200 <= response.status_code < 300:
        raise error_from_response(response, withhold=(api_key,))
    body = read_json(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise KeyProtectError(response.status_code, UNEXPECTED_RESPONSE,
                              "IAM answered without an access_token")
    return token


def token_source(api_key: str, url: str = IAM_URL,
                 session: requests.Session | None = None) -> Callable[[], str]:
    """A function that fetches a fresh IAM token for `api_key` on each call."""
    if not api_key:
        raise ValueError("an API key is required")
    return lambda: iam_token(api_key, url, session=session)


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An explicit `auth` that adds nothing: the API key in the form is the credential, and
    without an auth of its own requests would add Basic credentials from ~/.netrc."""
    return request

