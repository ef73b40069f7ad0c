"""The Binder path, checked without Binder (slow: marker `paths`, run by `make paths`).

1. repo2docker reads binder/ the way mybinder.org will: `jupyter-repo2docker --no-build
   --debug .` prints the Dockerfile it would build, with no Docker engine. We assert it picks
   Python 3.11, installs binder/requirements.txt and apt's openssl. repo2docker (it pulls in
   the `docker` SDK) is installed in a throw-away virtualenv, never in requirements.txt.
2. What Binder does next, in a fresh virtualenv: `pip install -r binder/requirements.txt`
   from the repository root (repo2docker's working directory), nothing else, then run
   00_welcome with papermill in that environment. A dependency that only the developer's
   .venv has fails here.

Both work on a copy of the repository (tracked layout, no .venv, build or .git), so the
editable install of byoklib points at the copy and nothing in the work tree is touched.
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

pytestmark = pytest.mark.paths

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".ipynb_checkpoints")


def run(command, **kw) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, **kw)
    print(f"\n$ {' '.join(map(str, command))}  ({time.monotonic() - started:.0f} s, "
          f"exit {done.returncode})")
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def fresh_venv(folder: Path) -> Path:
    """A virtualenv from the interpreter this suite runs on (Python 3.11 here, like Binder's)."""
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(folder)])
    python = folder / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    return python


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("binder") / "byok-notebooks"
    shutil.copytree(ROOT, copy, ignore=SKIP)
    return copy


def test_repo2docker_reads_the_binder_folder(repo_copy, tmp_path):
    python = fresh_venv(tmp_path / "r2d")
    run([python, "-m", "pip", "install", "--quiet", "jupyter-repo2docker"])
    r2d = tmp_path / "r2d" / "bin" / "jupyter-repo2docker"
    done = run([r2d, "--no-build", "--debug", "."], cwd=repo_copy)
    out = done.stdout + done.stderr
    assert "Building conda environment for python=3.11" in out, out
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in out, out
    apt = [line for line in out.splitlines() if "apt-get install" in line and "openssl" in line]
    assert apt, "apt.txt's openssl is not installed:\n" + out
    assert "softhsm2" in apt[0], "apt.txt's softhsm2 (notebook 10's token) is not installed"
    # binder/ hides root config: the root requirements.txt is read only through binder's -r.
    assert 'pip install --no-cache-dir -r "requirements.txt"' not in out


def test_binder_requirements_alone_run_the_welcome_notebook(repo_copy, tmp_path):
    python = fresh_venv(tmp_path / "binder-env")
    # repo2docker runs pip from the repository root: `-e .` is the root, `-r ../` is binder-relative.
    run([python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"], cwd=repo_copy)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "KP_", "VIRTUAL_ENV", "PYTHON"))}
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")   # no user kernels leak in
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    out = tmp_path / "00_welcome.out.ipynb"
    run([python, "-m", "papermill", "notebooks/00_welcome.ipynb", str(out),
         "--cwd", "notebooks", "--kernel", "python3", "--no-progress-bar"],
        cwd=repo_copy, env=env)
    nb = json.loads(out.read_text())
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb["cells"] for o in c.get("outputs", []))
    assert "CHECKS PASSED" in text, text[-2000:]
    # The kernel papermill started is the fresh venv's, and byoklib is the copy's editable
    # install: ask a one-cell notebook run the same way.
    probe = tmp_path / "probe.ipynb"
    probe.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "id": "probe", "metadata": {}, "outputs": [],
                   "execution_count": None,
                   "source": "import sys, byoklib\nprint(sys.prefix)\nprint(byoklib.__file__)"}]}))
    run([python, "-m", "papermill", str(probe), str(probe), "--cwd", "notebooks",
         "--kernel", "python3", "--no-progress-bar"], cwd=repo_copy, env=env)
    printed = json.loads(probe.read_text())["cells"][0]["outputs"][0]["text"]
    prefix, module = "".join(printed).split()
    assert Path(prefix) == tmp_path / "binder-env", printed
    assert Path(module).is_relative_to(repo_copy), printed
