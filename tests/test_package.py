"""The wheel carries what byoklib needs: built once, installed into a fresh virtualenv, and
used there from a folder outside the repository, with no PYTHONPATH, so nothing of the
work tree can leak in (`byoklib.__file__` is checked to be inside the virtualenv).

Marked `package`: `make paths` runs it and `make test` leaves it out, since the wheel, the
virtualenv and its `pip install` (byoklib's dependencies and pytest, from the package index)
take about 20-40 s, once per run (a module-scoped fixture).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from byoklib import __version__, data_path, load_private_key, public_key_pem

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parent.parent


def clean_env() -> dict:
    """The environment without anything that points Python at this repository."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
            and not k.startswith(("PYTEST", "KP_"))}


def run(command, cwd, timeout=120, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


class Installed:
    def __init__(self, python: Path, elsewhere: Path, seconds: dict):
        self.python = python
        self.elsewhere = elsewhere     # a folder with nothing of the repository in it
        self.seconds = seconds

    def py(self, *args, **kw) -> subprocess.CompletedProcess:
        return run([self.python, *args], cwd=self.elsewhere, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("package")
    seconds = {}
    # Build from a copy, so the build's own files (build/, *.egg-info) stay out of the tree.
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "byoklib", source / "byoklib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", base / "dist",
         source], cwd=base)
    seconds["wheel"] = time.monotonic() - started
    wheel, = (base / "dist").glob("byoklib-*.whl")

    started = time.monotonic()
    interpreter = getattr(sys, "_base_executable", sys.executable)
    run([interpreter, "-m", "venv", base / "venv"], cwd=base)
    python = base / "venv" / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", wheel, "pytest"], cwd=base, timeout=300)
    seconds["venv + pip install"] = time.monotonic() - started
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    print(f"\nwheel {seconds['wheel']:.1f} s, venv + install "
          f"{seconds['venv + pip install']:.1f} s")
    return Installed(python, elsewhere, seconds)


def test_byoklib_is_the_installed_one_and_carries_its_data(installed):
    done = installed.py("-c", """if True:
        import json, byoklib
        from importlib.metadata import entry_points
        print(json.dumps({
            "file": byoklib.__file__, "version": byoklib.__version__,
            "data": sorted(str(p.relative_to(byoklib.DATA_DIR))
                           for p in byoklib.DATA_DIR.rglob("*") if p.is_file()),
            "openapi": (byoklib.DATA_DIR.parent / "mock" / "http" / "openapi.json").is_file(),
            "plugins": [ep.value for ep in entry_points(group="pytest11")
                        if ep.dist.name == "byoklib"]}))""")
    found = json.loads(done.stdout)
    venv = installed.python.parent.parent
    assert Path(found["file"]).is_relative_to(venv), found["file"]
    assert found["version"] == __version__
    assert found["plugins"] == ["byoklib.pytest_plugin"]
    ours = sorted(str(p.relative_to(data_path())) for p in data_path().rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)
    assert found["data"] == ours and len(ours) == 9
    assert found["openapi"] is (ROOT / "byoklib" / "mock" / "http" / "openapi.json").is_file()


def test_version_and_the_console_script(installed):
    assert installed.py("-m", "byoklib", "--version").stdout.strip() == f"byoklib {__version__}"
    script = run([installed.python.parent / "byoklib", "--version"], cwd=installed.elsewhere)
    assert script.stdout.strip() == f"byoklib {__version__}"


def test_serve_help_lists_every_option(installed):
    import argparse

    from byoklib.__main__ import add_serve_arguments
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    assert "--token-key" in options and "--grant" in options
    text = installed.py("-m", "byoklib", "serve", "--help").stdout
    assert [o for o in options if o not in text] == []


def test_serve_answers_a_token_from_a_packaged_test_key(installed):
    """...and logs each request as method, path and status, never its headers."""
    key = installed.py("-c", "import byoklib; print(byoklib.data_path('test-only', "
                             "'token-key-1.pem'))").stdout.strip()
    assert Path(key).is_relative_to(installed.python.parent.parent)
    server = subprocess.Popen([str(installed.python), "-m", "byoklib", "serve", "--port", "0",
                               "--token-key", key], cwd=installed.elsewhere,
                              env={**clean_env(), "PYTHONWARNINGS": "ignore"},   # log only
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        assert line.startswith("Key Protect mock listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        headers = {"Authorization": "Bearer wheel-test", "bluemix-instance": "wheel"}
        with requests.Session() as session:   # one connection: the log lines come in order
            posted = session.post(url + "/api/v2/import_token", json={"expiration": 600},
                                  headers=headers, timeout=30)
            assert posted.status_code == 200, posted.text
            got = session.get(url + "/api/v2/import_token", headers=headers, timeout=30)
        assert got.status_code == 200, got.text
        expected = public_key_pem(load_private_key(
            data_path("test-only", "token-key-1.pem").read_bytes()))
        from byoklib import b64decode
        assert b64decode(got.json()["payload"]) == expected
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    assert log.splitlines() == ["POST /api/v2/import_token 200", "GET /api/v2/import_token 200"]


def test_the_plugin_loads_by_its_entry_point(installed):
    project = installed.elsewhere / "their-project"
    project.mkdir()
    (project / "test_theirs.py").write_text("""if True:
        import pytest
        from byoklib import byok_import, generate_key_material

        @pytest.mark.key_protect(test_keys=True)
        def test_byok(key_protect):
            client = key_protect.client
            client.create_import_token(expiration=600, max_allowed_retrievals=1)
            key = byok_import(client, generate_key_material(), "theirs")
            assert key["imported"] is True
            assert client.wrap(key["id"])["plaintext"]

        def test_session(key_protect_session):
            assert key_protect_session.client.list_keys() == []
    """)
    done = run([installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)
    assert "2 passed" in done.stdout, done.stdout
