"""The practitioner's path through papermill: every notebook takes the same four parameters,
and those that talk to Key Protect run to "CHECKS PASSED" against a service given by URL.

nbval (configured in pyproject.toml) runs every notebook on its own mock and compares the
committed outputs cell by cell; the browser test runs every one in JupyterLab. What only
papermill shows is the other path: the parameters injected, the notebook pointed at a
service elsewhere (here the mock served by the test, as `byoklib.mock.running_server`
serves it to anyone's tests; for a practitioner, the real Key Protect), and run in a
foreign working folder. The welcome notebook only says where requests would go, so that is
what its run checks. A notebook that always uses its own mock (the timing and the shell
notebooks say so in their parameters cell) would only repeat nbval's run, so it gets the
static checks alone.
"""
import ast
import re
import uuid
from pathlib import Path

import nbformat
import papermill
import pytest

from byoklib.mock import keypairs, running_server

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PARAMETERS = ("KP_URL", "KP_INSTANCE_ID", "KP_API_KEY", "KP_TOKEN")
# How a notebook hands its parameters to byoklib: one call, the four names in order; to
# connect, or (the welcome notebook) to say where the notebooks will send their requests.
CONNECTS = "start(KP_URL, KP_INSTANCE_ID, KP_API_KEY, KP_TOKEN)"
REPORTS = "settings(KP_URL, KP_INSTANCE_ID, KP_API_KEY, KP_TOKEN)"


def cells(notebook: Path) -> list:
    return nbformat.read(notebook, as_version=4).cells


def calls(notebook: Path, call: str) -> bool:
    return any(call in c.source for c in cells(notebook) if c.cell_type == "code")


def connects(notebook: Path) -> bool:
    return calls(notebook, CONNECTS)


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no numbered notebooks"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_code_cell_is_the_parameters_cell(notebook):
    first = next(c for c in cells(notebook) if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), \
        "the first code cell must be tagged `parameters` so papermill can inject settings"
    assigned = {target.id: node.value.value for node in ast.parse(first.source).body
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                for target in node.targets}
    # Empty by default: a committed notebook never carries a URL, an instance or a secret.
    assert {name: assigned.get(name) for name in PARAMETERS} == dict.fromkeys(PARAMETERS, "")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_that_imports_start_passes_it_its_parameters(notebook):
    # Else papermill's run below would skip it, and its parameters would do nothing.
    code = "\n".join(c.source for c in cells(notebook) if c.cell_type == "code")
    imports_start = any(line.startswith("from byoklib.tutorial.notebook import")
                        and " start" in line for line in code.splitlines())
    assert imports_start == connects(notebook)


def takes_a_service(notebook: Path) -> bool:
    """Whether the notebook's parameters choose a service: papermill then runs it on one."""
    return connects(notebook) or calls(notebook, REPORTS)


@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if not takes_a_service(n)],
                         ids=lambda p: p.stem)
def test_a_notebook_papermill_skips_says_it_always_uses_its_own_mock(notebook):
    first = next(c for c in cells(notebook) if c.cell_type == "code")
    assert re.search(r"always (times|uses) (the|its own) local mock", first.source), first.source


@pytest.fixture(scope="class")
def service_elsewhere():
    """A Key Protect the notebook did not start: the mock served by the test, with the
    TEST-ONLY token keys, reached by URL, instance id and bearer token alone."""
    with running_server(key_pair_source=keypairs.test_only_key_pairs()) as server:
        yield server


def check_runs_against(notebook: Path, server, folder: Path, monkeypatch) -> None:
    for name in PARAMETERS:
        monkeypatch.delenv(name, raising=False)
    instance = str(uuid.uuid4())
    parameters = {"KP_URL": server.url, "KP_INSTANCE_ID": instance,
                  "KP_API_KEY": "", "KP_TOKEN": "practitioner-token"}
    output = folder / notebook.name
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                               cwd=str(folder), kernel_name="python3", progress_bar=False)
    text = text_of(nbformat.read(output, as_version=4))
    if connects(notebook):
        # An instance exists once a change in it succeeded: the notebook worked on this one.
        assert instance in server.service.instance_ids(), "the notebook did not use the service"
    else:
        assert f"will talk to: the service at {server.url}" in text
    # Checks.assert_all() prints this only when every row of the verified table is true.
    assert "CHECKS PASSED" in text


def notebook_test_class(notebook: Path) -> type:
    # A class per notebook, not one parametrized function: under `--dist loadscope` a
    # class is its own unit of work, so the runs spread over the workers instead of
    # queueing on one (conftest.py hands out the slow units first).
    class NotebookRun:
        def test_runs_against_a_service_given_by_url(self, service_elsewhere, tmp_path,
                                                      monkeypatch):
            check_runs_against(notebook, service_elsewhere, tmp_path, monkeypatch)

    NotebookRun.__name__ = NotebookRun.__qualname__ = f"Test_{notebook.stem}"
    return NotebookRun


for _notebook in NOTEBOOKS:
    if takes_a_service(_notebook):
        globals()[f"Test_{_notebook.stem}"] = notebook_test_class(_notebook)
