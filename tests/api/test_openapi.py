"""The mock's OpenAPI document (byoklib/mock/http/openapi.json): it matches the routing
table, is served at /openapi.json, and a schema-based fuzzer (schemathesis) finds no 5xx
and no answer that the document does not describe.

The fuzzer runs schemathesis's strategies under Hypothesis directly (not its pytest
plugin, which pyproject's addopts turn off: every pytest start would import it).
Each operation is fuzzed in three ways, bounded in examples: positive data with generated
ids, positive data on a real key (so the key answers, not only 404s), and negative data
(bodies, queries and parameters that break the document). Every answer goes through
schemathesis's checks: not_a_server_error, status_code_conformance,
content_type_conformance, response_headers_conformance, response_schema_conformance, and
for negative data negative_data_rejection (what the document forbids must be refused).
Findings are collected (not stopped at) and listed at the end of the module; measured on
this machine: 27 operations, 473 examples, 0 findings, 19-45 s (most of it Hypothesis making
the cases; the machine was shared and loaded).
"""
from __future__ import annotations

import json
import re
import time
from importlib.resources import files

import pytest
import requests

from byoklib import data_path
from byoklib.mock import keypairs, running_server
from byoklib.mock.hsm import HSM
from byoklib.mock.keypairs import fixed_key_pairs
from byoklib.mock.http.routes import API
from byoklib.mock.service import KeyProtectService, ManualClock

DOCUMENT = json.loads(files("byoklib.mock.http").joinpath("openapi.json").read_text())
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# The operations of IBM's 2019 spec (IBM/keyprotect-go api/openapi.yaml) and their ids.
IBM_2019 = {
    ("/api/v2/import_token", "get"): "getImportToken",
    ("/api/v2/import_token", "post"): "postImportToken",
    ("/api/v2/keys", "get"): "getKeys",
    ("/api/v2/keys", "head"): "getKeyCollectionMetadata",
    ("/api/v2/keys", "post"): "createKey",
    ("/api/v2/keys/{id}", "delete"): "deleteKey",
    ("/api/v2/keys/{id}", "get"): "getKey",
    ("/api/v2/keys/{id}", "post"): "actionOnKey",
    ("/api/v2/keys/{id}/policies", "get"): "getPolicy",
    ("/api/v2/keys/{id}/policies", "put"): "putPolicy",
}


def shape(path: str) -> str:
    """A path with its parameters blanked, Werkzeug's <x> and OpenAPI's {x} alike."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def documented() -> set[tuple[str, str]]:
    return {(shape(path), method.upper()) for path, item in DOCUMENT["paths"].items()
            for method in item if method in METHODS}


def test_every_route_is_documented_and_nothing_else():
    routed = {(shape(path), method) for path, handlers in API.items() for method in handlers}
    assert routed - documented() == set(), "routed but not documented"
    assert documented() - routed == set(), "documented but not routed"


def test_path_parameters_are_declared():
    for path, item in DOCUMENT["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", [])
                        if p.get("in") == "path"}
            assert declared == names, (path, method)


def test_ibms_2019_operations_keep_their_ids():
    for (path, method), operation_id in IBM_2019.items():
        assert DOCUMENT["paths"][path][method]["operationId"] == operation_id


def test_operation_ids_are_unique_and_errors_have_one_shape():
    ids = [op["operationId"] for item in DOCUMENT["paths"].values()
           for method, op in item.items() if method in METHODS]
    assert len(ids) == len(set(ids)) == len(documented())
    for status, answer in DOCUMENT["components"]["responses"].items():
        assert answer["content"] == {"application/vnd.ibm.kms.error+json": {
            "schema": {"$ref": "#/components/schemas/ErrorCollection"}}}, status


def test_the_document_is_valid_openapi_3():
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.core.result import Ok
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    schema.validate()   # against the OpenAPI 3.0 meta-schema
    results = list(schema.get_all_operations())
    assert [r for r in results if not isinstance(r, Ok)] == []
    assert len(results) == len(documented())


def test_the_mock_serves_it_without_credentials():
    with running_server(key_pair_source=keypairs.test_only_key_pairs()) as server:
        answer = requests.get(server.url + "/openapi.json", timeout=30)
        other = requests.post(server.url + "/openapi.json", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == DOCUMENT
    assert other.status_code == 405


def test_the_checks_see_an_answer_the_document_does_not_describe():
    """The fuzzer's checks can fail: with 404 taken out of getKey's answers, a lookup of
    an unknown key is a finding."""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.specs.openapi import checks
    changed = json.loads(json.dumps(DOCUMENT))
    del changed["paths"]["/api/v2/keys/{id}"]["get"]["responses"]["404"]
    operation = schemathesis.openapi.from_dict(changed)["/api/v2/keys/{id}"]["GET"]
    case = operation.Case(path_parameters={"id": "no-such-key"}, headers=dict(HEADERS))
    with running_server(key_pair_source=keypairs.test_only_key_pairs()) as server:
        response = case.call(base_url=server.url, timeout=30)
    assert response.status_code == 404
    with pytest.raises(BaseExceptionGroup) as found:   # schemathesis's FailureGroup
        case.validate_response(response, checks=[checks.status_code_conformance])
    assert "Undocumented status code" in str(found.value)


def test_registrations_of_all_keys_refuse_an_unknown_key_ring():
    with running_server(key_pair_source=keypairs.test_only_key_pairs()) as server:
        headers = {**HEADERS, "X-Kms-Key-Ring": "no-such-ring"}
        listed = requests.get(server.url + "/api/v2/keys", headers=headers, timeout=30)
        registrations = requests.get(server.url + "/api/v2/keys/registrations",
                                     headers=headers, timeout=30)
    assert listed.status_code == 404   # what every other call answers
    assert registrations.status_code == 404


# --- the fuzzer -------------------------------------------------------------------------

HEADERS = {"Authorization": "Bearer fuzz-token", "Bluemix-Instance": "fuzz-instance"}
EXAMPLES = 8           # per operation and mode: 27 operations x 3 modes, about 470 requests
FINDINGS: list[tuple[str, str, int, str]] = []
COUNTS = {"examples": 0, "operations": set()}


@pytest.fixture(scope="module")
def schema():
    schemathesis = pytest.importorskip("schemathesis")
    return schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def fuzzed_server():
    keys = fixed_key_pairs([data_path("test-only", f"token-key-{n}.pem") for n in (1, 2, 3)])
    service = KeyProtectService(clock=ManualClock(), hsm=HSM(keys))
    with running_server(service) as server:
        yield server
    print(f"\nfuzzer: {len(COUNTS['operations'])} operations, {COUNTS['examples']} examples, "
          f"{len(FINDINGS)} findings")
    for finding in FINDINGS:
        print("  ", *finding)
    assert server.app.internal_errors == 0


def real_key(server) -> str:
    """A fresh root key in the fuzzed instance, for the `real key` mode."""
    body = {"metadata": {"collectionType": "application/vnd.ibm.kms.key+json",
                         "collectionTotal": 1},
            "resources": [{"type": "application/vnd.ibm.kms.key+json", "name": "fuzz-root",
                           "extractable": False}]}
    answer = requests.post(server.url + "/api/v2/keys", json=body, headers=HEADERS, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["resources"][0]["id"]


LABELS = [f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items()
          for method in item if method in METHODS]


@pytest.mark.parametrize("mode", ["positive", "real key", "negative"])
@pytest.mark.parametrize("label", LABELS)
def test_fuzz(schema, fuzzed_server, label, mode):
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    method, path = label.split(" ", 1)
    operation = schema[path][method]
    if mode == "real key" and "{id}" not in path:
        pytest.skip("no {id} in this path")
    fixed = {"id": real_key(fuzzed_server)} if mode == "real key" else None
    # on a real key, its own ring: a generated x-kms-key-ring would hide it (404)
    headers = {**HEADERS, "X-Kms-Key-Ring": "default"} if mode == "real key" else HEADERS
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    if mode == "negative" and "requestBody" not in operation.definition.raw and not any(
            p.get("in") == "query" for p in operation.definition.raw.get("parameters", [])):
        pytest.skip("nothing to break: the headers are fixed, a path cannot carry a non-string")
    try:
        strategy = operation.as_strategy(generation, headers=dict(headers),
                                         path_parameters=fixed)
    except Exception as error:   # e.g. nothing of this operation can be made negative
        pytest.skip(f"no {mode} cases: {type(error).__name__}")
    session = requests.Session()
    seen: dict[str, int] = {}
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        response = case.call(base_url=fuzzed_server.url, session=session, timeout=30)
        COUNTS["examples"] += 1
        outcome = str(response.status_code)
        if response.status_code >= 400 and response.content and method != "HEAD":
            reasons = response.json()["resources"][0].get("reasons") or [{}]
            outcome += " " + reasons[0].get("code", "")
        seen[outcome] = seen.get(outcome, 0) + 1
        try:
            case.validate_response(response, checks=[
                not_a_server_error, checks.status_code_conformance,
                checks.content_type_conformance, checks.response_headers_conformance,
                checks.response_schema_conformance,
                *([checks.negative_data_rejection] if mode == "negative" else [])])
        except BaseExceptionGroup as failure:   # a finding (FailureGroup): listed at the end
            first = str(failure).strip().splitlines()[0][:200]
            if (label, mode, response.status_code, first) not in FINDINGS:
                FINDINGS.append((label, mode, response.status_code, first))
            raise

    COUNTS["operations"].add(label)
    try:
        fuzz()
    finally:
        print(f"{label} [{mode}]: {sum(seen.values())} examples {seen} "
              f"in {time.monotonic() - started:.1f} s")
