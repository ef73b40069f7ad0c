"""byoklib's pytest plugin, run by pytest's `pytester` in a project with no conftest of ours.

Each test writes a small test module into a fresh folder outside the repository and runs
pytest on it there (in this process, as pytester does by default: a subprocess costs a
second or more of start-up each, and one test below checks a subprocess run), so this
suite's conftest and fixtures are out of sight. Where byoklib is not installed with its entry point (imported from PYTHONPATH),
the plugin is named with `-p byoklib.pytest_plugin`; tests/test_package.py checks the
entry point itself, from a wheel in a fresh virtualenv.
"""
import re
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

def _installed() -> bool:
    """Whether pytest loads the plugin by itself (byoklib installed with its entry point):
    then naming it again with -p would register it twice."""
    from importlib.metadata import entry_points
    return any(ep.value == "byoklib.pytest_plugin" for ep in entry_points(group="pytest11"))


PLUGIN = (() if _installed() else ("-p", "byoklib.pytest_plugin")) + ("-p", "no:cacheprovider")
# This suite's other plugins are not the outside project's. Blocked, too, because an
# in-process run restores sys.modules afterwards, so each run would import them afresh
# (schemathesis and nbval's jsonschema cost about a second of CPU each time).
OTHER_PLUGINS = ("-p", "no:nbval", "-p", "no:xdist", "-p", "no:schemathesis",
                 "-p", "no:hypothesispytest", "-p", "no:anyio")


def run(pytester, *args, subprocess=False):
    # pyproject's addopts (nbval) are this repository's, not the outside project's
    pytester.makeini("[pytest]\n")
    if subprocess:
        return pytester.runpytest_subprocess(*PLUGIN, *OTHER_PLUGINS, *args, timeout=120)
    return pytester.runpytest_inprocess(*PLUGIN, *OTHER_PLUGINS, *args)


def test_key_protect_serves_a_fresh_mock_with_a_client(pytester):
    pytester.makepyfile(test_user_app="""
        import requests

        def test_one(key_protect):
            assert key_protect.url.startswith("http://127.0.0.1:")
            key = key_protect.client.create_root_key("app-root")
            assert [k["id"] for k in key_protect.client.list_keys()] == [key["id"]]
            answer = requests.get(key_protect.url + "/api/v2/keys", headers=key_protect.headers)
            assert answer.status_code == 200 and answer.json()["metadata"]["collectionTotal"] == 1

        def test_two_starts_empty(key_protect):
            assert key_protect.client.list_keys() == []
    """)
    result = run(pytester)
    result.assert_outcomes(passed=2)


def test_the_clock_moves_only_when_told(pytester):
    pytester.makepyfile(test_user_clock="""
        from byoklib import KeyProtectError
        from byoklib.mock.service import ManualClock
        import pytest

        def test_restore_after_30_seconds(key_protect):
            assert isinstance(key_protect.clock, ManualClock)
            client = key_protect.client
            key = client.create_root_key("to-delete")
            client.delete_key(key["id"])
            with pytest.raises(KeyProtectError) as early:
                client.restore_key(key["id"])
            assert early.value.code == "REQ_TOO_EARLY_ERR"
            key_protect.clock.advance(31)
            assert client.restore_key(key["id"])["state"] == 1
    """)
    run(pytester).assert_outcomes(passed=1)


def test_strict_mode_by_marker_and_by_option(pytester):
    pytester.makepyfile(test_user_strict="""
        import pytest
        from byoklib import KeyProtectError

        @pytest.mark.key_protect(strict=True, instance_id="app-instance", token="app-token")
        def test_marked(key_protect):
            assert key_protect.client.list_keys() == []
            assert key_protect.instance_id == "app-instance"
            with pytest.raises(KeyProtectError) as other_token:
                key_protect.new_client(token="someone-else").list_keys()
            assert other_token.value.status == 401
            with pytest.raises(KeyProtectError) as other_instance:
                key_protect.new_client(instance_id="not-mine").list_keys()
            assert other_instance.value.status == 403

        def test_open_unless_asked(key_protect):
            assert key_protect.new_client(token="anyone", instance_id="any").list_keys() == []

        def test_session(key_protect_session):
            with pytest.raises(KeyProtectError) as refused:
                key_protect_session.new_client(token="someone-else").list_keys()
            assert refused.value.status == 401
    """)
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=1)   # the session mock is open by default
    result.stdout.fnmatch_lines(["*FAILED test_user_strict.py::test_session*"])
    run(pytester, "--key-protect-strict", "-k", "marked or session").assert_outcomes(passed=2)


def test_test_only_key_pairs_make_tokens_without_generating_a_key(pytester):
    pytester.makepyfile(test_user_keys="""
        import pytest
        from byoklib import byok_import, data_path, generate_key_material, primitives
        from byoklib import public_key_pem

        TEST_ONLY = {public_key_pem(data_path("test-only", f"token-key-{n}.pub.pem")
                                    .read_bytes()) for n in (1, 2, 3)}

        def no_generation(bits):
            raise AssertionError("an RSA key was generated")

        @pytest.mark.key_protect(test_keys=True)
        def test_tokens(key_protect, monkeypatch):
            monkeypatch.setattr(primitives, "generate_rsa_private_key", no_generation)
            client = key_protect.client
            for _ in range(3):
                client.create_import_token(expiration=600, max_allowed_retrievals=2)
                assert client.get_import_token().public_key_pem in TEST_ONLY
            key = byok_import(client, generate_key_material(), "byok")
            assert key["imported"] is True
    """)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.generates_rsa4096   # what a user's suite gets by default
def test_fresh_key_pairs_by_default(pytester):
    pytester.makepyfile(test_user_fresh="""
        from byoklib import data_path, load_private_key, public_key_pem

        def test_token(key_protect):
            key_protect.client.create_import_token()
            test_only = public_key_pem(load_private_key(
                data_path("test-only", "token-key-1.pem").read_bytes()))
            assert key_protect.client.get_import_token().public_key_pem != test_only
    """)
    run(pytester).assert_outcomes(passed=1)


def test_session_fixture_is_one_mock(pytester):
    pytester.makepyfile(test_user_shared="""
        def test_first(key_protect_session):
            key_protect_session.client.create_root_key("shared")

        def test_second_sees_it(key_protect_session):
            assert [k["name"] for k in key_protect_session.client.list_keys()] == ["shared"]
    """)
    run(pytester).assert_outcomes(passed=2)


@pytest.mark.parametrize("marker,said", [
    ("key_protect(stric=True)", "*unknown options*stric*"),
    ("key_protect(True)", "*takes options by name*"),
    ('key_protect(strict="no")', "*strict is True or False*"),
    ("key_protect(test_keys=1)", "*test_keys is True or False*"),
    ('key_protect(token="")', "*token is a non-empty string*"),
    ("key_protect(instance_id=7)", "*instance_id is a non-empty string*"),
])
def test_a_marker_the_fixture_cannot_use_is_a_usage_error(pytester, marker, said):
    pytester.makepyfile(test_user_values=f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked(key_protect):
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([said])


def test_a_marker_s_bad_value_is_refused_even_under_a_closer_good_one(pytester):
    pytester.makepyfile(test_user_hidden="""
        import pytest

        pytestmark = pytest.mark.key_protect(strict="no")

        @pytest.mark.key_protect(strict=True)
        def test_marked(key_protect):
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*strict is True or False*"])


def test_markers_merge_option_by_option_the_closest_winning(pytester):
    pytester.makepyfile(test_user_layers="""
        import pytest

        pytestmark = pytest.mark.key_protect(strict=True, token="module-token")

        @pytest.mark.key_protect(test_keys=True)
        def test_module_strictness_kept(key_protect):
            assert key_protect.strict and key_protect.token == "module-token"

        @pytest.mark.key_protect(token="own-token", strict=None)
        def test_own_token_module_strictness(key_protect):
            assert key_protect.strict and key_protect.token == "own-token"

        @pytest.mark.key_protect(strict=False)
        class TestOpen:
            def test_class_over_module(self, key_protect):
                assert not key_protect.strict and key_protect.token == "module-token"
    """)
    run(pytester, "--key-protect-test-keys").assert_outcomes(passed=3)


def test_a_marker_on_a_test_of_the_session_mock_warns_that_it_does_not_apply(pytester):
    pytester.makepyfile(test_user_session_marker="""
        import pytest

        @pytest.mark.key_protect(strict=True)
        def test_session(key_protect_session):
            assert not key_protect_session.strict

        @pytest.mark.key_protect(strict=True)
        def test_both(key_protect, key_protect_session):
            assert key_protect.strict
    """)
    result = run(pytester, "--key-protect-test-keys")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*PytestWarning: @pytest.mark.key_protect sets the key_protect "
                                "fixture*key_protect_session, one mock for all*"])


def test_the_plugin_lists_its_fixtures_and_marker(pytester):
    pytester.makepyfile(test_user_nothing="def test_nothing():\n    pass\n")
    fixtures = run(pytester, "--fixtures")
    fixtures.stdout.fnmatch_lines(["key_protect *", "*fresh Key Protect mock*",
                                   "key_protect_session *"])
    markers = run(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.key_protect(strict=None, test_keys=None*"])


def test_unused_the_plugin_imports_nothing_of_the_mock(pytester):
    pytester.makepyfile(test_user_plain="""
        import sys

        def test_plain():
            loaded = [m for m in sys.modules if m.startswith(("byoklib.mock", "byoklib.client"))]
            assert loaded == []
    """)
    started = time.perf_counter()
    run(pytester, subprocess=True).assert_outcomes(passed=1)
    print(f"a one-test run with the plugin: {time.perf_counter() - started:.2f} s")


def test_the_readme_example_runs_with_ibms_sdk(pytester):
    pytest.importorskip("keyprotect.ibm_key_protect_api_v2")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Use it as a local Key Protect in your own tests")[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "def test_" in example and "key_protect" in example
    assert len([line for line in example.splitlines() if line.strip()]) <= 13
    pytester.makepyfile(test_user_readme=example)
    run(pytester).assert_outcomes(passed=1)
