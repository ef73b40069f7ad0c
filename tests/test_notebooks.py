"""Every notebook, executed the way CI and Binder would: papermill, in a temporary folder,
with the parameters a practitioner would pass. (nbval, configured in pyproject.toml,
separately compares the committed outputs cell by cell.)"""
from pathlib import Path

import nbformat
import papermill

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MOCK_PARAMETERS = {"KP_URL": "", "KP_INSTANCE_ID": "", "KP_API_KEY": "", "KP_TOKEN": ""}
# Notebook-specific parameters: fewer timed repeats keep the suite fast (nbval runs the
# committed defaults).
EXTRA_PARAMETERS = {"07_timing": {"REPEAT": 3}}


def execute(notebook: Path, folder: Path, parameters: dict) -> nbformat.NotebookNode:
    output = folder / notebook.name
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                               cwd=str(folder), kernel_name="python3", progress_bar=False)
    return nbformat.read(output, as_version=4)


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no numbered notebooks"


def check_runs_with_parameters(notebook: Path, folder: Path, monkeypatch) -> None:
    for name in MOCK_PARAMETERS:
        monkeypatch.delenv(name, raising=False)
    nb = execute(notebook, folder, {**MOCK_PARAMETERS, **EXTRA_PARAMETERS.get(notebook.stem, {})})
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), \
        "the first code cell must be tagged `parameters` so papermill can inject settings"
    # Checks.assert_all() prints this only when every row of the verified table is true.
    assert "CHECKS PASSED" in text_of(nb)


def notebook_test_class(notebook: Path) -> type:
    # A class per notebook, not one parametrized function: under `--dist loadscope` a
    # class is its own unit of work, so the nine runs spread over the workers instead of
    # queueing on one (conftest.py hands out the slow units first).
    class NotebookRun:
        def test_runs_with_parameters(self, tmp_path, monkeypatch):
            check_runs_with_parameters(notebook, tmp_path, monkeypatch)

    NotebookRun.__name__ = NotebookRun.__qualname__ = f"Test_{notebook.stem}"
    return NotebookRun


for _notebook in NOTEBOOKS:
    globals()[f"Test_{_notebook.stem}"] = notebook_test_class(_notebook)
