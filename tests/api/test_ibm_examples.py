"""The mock's answers have the shape of IBM's documented examples (data/ibm-examples/).

Each example is a request and its answer as IBM's docs show them (the source is in the
file). The same request is sent to the mock and its answer compared by shape: status,
a JSON content type, the field names at every level and the JSON type of each value.
Values are not compared: dates, ids and keys differ by nature.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import secure_fields

# test fixtures, not package data: they stay in the repository's data/ folder
EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "ibm-examples"
JSON_TYPE = re.compile(r"application/(json|vnd\.ibm\.[a-z_.]+\+json)(\s*;.*)?$")


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def shape(value):
    """Field names and JSON types, recursively; a list by the shape of its first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_every_example_names_an_ibm_source_and_is_listed_in_the_readme():
    listed = (EXAMPLES.parent / "README.md").read_text()
    files = sorted(EXAMPLES.glob("*.json"))
    assert files
    for path in files:
        assert example(path.name)["source"].startswith(
            "https://cloud.ibm.com/docs/key-protect?topic="), path.name
        assert f"ibm-examples/{path.name}" in listed, path.name


def test_shape_compares_names_and_types():
    assert shape({"a": 1, "b": [{"c": True}]}) == {"a": "int", "b": [{"c": "bool"}]}
    assert shape({"a": 1}) != shape({"a": "1"})
    assert shape({"a": 1}) != shape({"a": 1, "b": 2})


def test_create_import_token_answer_has_the_documented_shape(api):
    doc = example("create-import-token.json")
    response = api.post(doc["request"]["path"], json={"expiration": 600,
                                                      "maxAllowedRetrievals": 1},
                        headers=doc["request"]["headers"])
    assert response.status_code == 200
    assert JSON_TYPE.match(response.headers["Content-Type"])
    assert shape(response.json()) == shape(doc["response"]["body"])


def test_retrieve_import_token_answer_has_the_documented_shape(api):
    doc = example("retrieve-import-token.json")
    api.new_token(expiration=600, maxAllowedRetrievals=1)
    response = api.get(doc["request"]["path"])
    assert response.status_code == 200
    assert JSON_TYPE.match(response.headers["Content-Type"])
    assert shape(response.json()) == shape(doc["response"]["body"])
    assert response.json()["remainingRetrievals"] == doc["response"]["body"]["remainingRetrievals"]


def _secure_import_shapes(api):
    doc = example("import-root-key-with-token.json")
    api.new_token(expiration=600, maxAllowedRetrievals=1)
    body = json.loads(json.dumps(doc["request"]["body"]))
    body["resources"][0].update(secure_fields(bytes(range(32)), api.token()))
    response = api.post(doc["request"]["path"], json=body, headers=doc["request"]["headers"])
    assert response.status_code == 201, response.text
    assert JSON_TYPE.match(response.headers["Content-Type"])
    got, documented = shape(response.json()), shape(doc["response"]["body"])
    assert got["metadata"] == documented["metadata"]
    resource, tutorial = got["resources"][0], documented["resources"][0]
    # every field of the tutorial's answer, of the same type ...
    assert {k: resource.get(k) for k in tutorial} == tutorial
    # ... and what else the mock says is in IBM's other example of a minimal create answer
    assert set(resource) - set(tutorial) <= {"deleted"}
    answer = response.json()["resources"][0]
    assert (answer["imported"], answer["extractable"], answer["state"]) == (True, False, 1)
    return got, documented


def test_secure_import_answer_has_the_tutorials_shape(api):
    _secure_import_shapes(api)


@pytest.mark.xfail(reason="mock: its minimal POST /keys answer adds `deleted` (as the create "
                   "example on IBM's error-messages page, #error-messages-not-dual-auth-err, "
                   "shows); the tutorial's example of a secure import has no `deleted`. IBM's "
                   "two examples disagree; which one the real service follows is unknown",
                   strict=True)
def test_secure_import_answer_has_exactly_the_tutorials_fields(api):
    got, documented = _secure_import_shapes(api)
    assert got == documented


def test_expired_token_answer_has_the_documented_error_shape(api, clock):
    doc = example("import-token-expired.json")
    created = api.post(doc["request_create"]["path"], json=doc["request_create"]["body"],
                       headers=doc["request_create"]["headers"])
    assert created.status_code == 200
    assert shape(created.json()) == shape(doc["response_create"]["body"])
    clock.advance(doc["request_create"]["body"]["expiration"] + 1)
    response = api.get(doc["request"]["path"], headers=doc["request"]["headers"])
    assert response.status_code == doc["response"]["status"]
    assert JSON_TYPE.match(response.headers["Content-Type"])
    assert shape(response.json()) == shape(doc["response"]["body"])
    reason = response.json()["resources"][0]["reasons"][0]
    documented = doc["response"]["body"]["resources"][0]["reasons"][0]
    assert {k: reason[k] for k in ("code", "status", "moreInfo")} == \
        {k: documented[k] for k in ("code", "status", "moreInfo")}


def test_expired_token_reason_message_is_ibms_word_for_word(api, clock):
    doc = example("import-token-expired.json")
    api.new_token(expiration=300, maxAllowedRetrievals=2)
    clock.advance(301)
    reason = api.get("/api/v2/import_token").json()["resources"][0]["reasons"][0]
    assert reason["message"] == doc["response"]["body"]["resources"][0]["reasons"][0]["message"]
