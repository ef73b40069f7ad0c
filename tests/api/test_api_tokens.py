"""POST/GET /api/v2/import_token over real HTTP: defaults, bounds, retrievals, expiry."""
import re
from datetime import datetime

import pytest
from conftest import reason

from byoklib import primitives

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TOKEN = "/api/v2/import_token"


def parse(date: str) -> datetime:
    return datetime.strptime(date, "%Y-%m-%dT%H:%M:%S%z")


def test_post_defaults(api, clock):
    response = api.post(TOKEN, json={})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"creationDate", "expirationDate", "maxAllowedRetrievals",
                         "remainingRetrievals"}
    assert body["creationDate"] == "2026-01-01T12:00:00Z"
    assert body["expirationDate"] == "2026-01-01T12:10:00Z"   # default 600 s
    assert body["maxAllowedRetrievals"] == body["remainingRetrievals"] == 1


@pytest.mark.parametrize("body", [None, "null"])
def test_post_without_body_uses_defaults(api, body):
    response = api.post(TOKEN, data=body)
    assert response.status_code == 200
    assert response.json()["maxAllowedRetrievals"] == 1


@pytest.mark.parametrize("expiration,retrievals", [(300, 1), (86400, 500), (1200, 10)])
def test_post_bounds_accepted(api, expiration, retrievals):
    body = api.new_token(expiration=expiration, maxAllowedRetrievals=retrievals)
    assert DATE.match(body["creationDate"]) and DATE.match(body["expirationDate"])
    assert body["remainingRetrievals"] == retrievals
    lifetime = parse(body["expirationDate"]) - parse(body["creationDate"])
    assert lifetime.total_seconds() == expiration


@pytest.mark.parametrize("field,value", [
    ("expiration", 299), ("expiration", 86401), ("expiration", -1), ("expiration", "600"),
    ("expiration", True), ("expiration", 600.5), ("expiration", [600]),
    ("maxAllowedRetrievals", 0), ("maxAllowedRetrievals", 501), ("maxAllowedRetrievals", "1"),
    ("maxAllowedRetrievals", False), ("maxAllowedRetrievals", {}),
])
def test_post_out_of_range_or_wrong_type_is_400_and_creates_nothing(api, field, value):
    response = api.post(TOKEN, json={field: value})
    assert reason(response) == (400, "INVALID_FIELD_ERR")
    assert response.headers["Content-Type"] == "application/vnd.ibm.kms.error+json"
    target = response.json()["resources"][0]["reasons"][0]["target"]
    assert target == {"type": "field", "name": field}
    assert reason(api.get(TOKEN)) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")


def test_post_integral_float_is_accepted(api):
    assert api.new_token(expiration=600.0)["expirationDate"] == "2026-01-01T12:10:00Z"


@pytest.mark.parametrize("body", ["[]", '"x"', "{", '{"expiration": NaN}'])
def test_post_malformed_body_is_400(api, body):
    response = api.post(TOKEN, data=body, headers={"Content-Type": "application/json"})
    assert reason(response) == (400, "BAD_BODY_ERR")


def test_get_returns_pem_public_key_and_12_byte_nonce(api):
    api.new_token(maxAllowedRetrievals=2)
    body = api.token()
    pem = primitives.b64decode(body["payload"])
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n") and pem.endswith(b"-----END PUBLIC KEY-----\n")
    assert primitives.load_public_key(pem).key_size == 4096
    assert len(primitives.b64decode(body["nonce"])) == 12


def test_get_decrements_and_keeps_the_nonce(api):
    api.new_token(maxAllowedRetrievals=3)
    bodies = [api.token() for _ in range(3)]
    assert [b["remainingRetrievals"] for b in bodies] == [2, 1, 0]
    assert len({b["nonce"] for b in bodies}) == 1
    assert len({b["payload"] for b in bodies}) == 1
    assert reason(api.get(TOKEN)) == (409, "IMPORT_TOKEN_RETRIEVALS_EXCEEDED_ERR")


def test_no_token_is_404(api):
    assert reason(api.get(TOKEN)) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")


def test_expired_token_is_409_at_expiration(api, clock):
    api.new_token(expiration=300, maxAllowedRetrievals=5)
    clock.advance(299)
    assert api.token()["remainingRetrievals"] == 4
    clock.advance(1)
    assert reason(api.get(TOKEN)) == (409, "IMPORT_TOKEN_EXPIRED_ERR")


def test_refused_get_counts_no_retrieval(api, make_api):
    api.new_token(maxAllowedRetrievals=2)
    unauthenticated = make_api(token="")
    assert api.get(TOKEN, headers={"Authorization": ""}).status_code == 401
    assert unauthenticated.get(TOKEN).status_code == 401
    assert api.token()["remainingRetrievals"] == 1


def test_new_post_replaces_token_and_nonce(api):
    api.new_token(maxAllowedRetrievals=5)
    first = api.token()
    api.new_token(maxAllowedRetrievals=5)
    second = api.token()
    assert second["nonce"] != first["nonce"]
    assert second["remainingRetrievals"] == 4


def test_tokens_belong_to_their_instance(api, make_api):
    api.new_token()
    other = make_api(instance="instance-2")
    assert reason(other.get(TOKEN)) == (404, "IMPORT_TOKEN_NOT_FOUND_ERR")
