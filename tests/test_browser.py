"""The learner's path in a real browser: JupyterLab + headless Chromium, every notebook.

A private `jupyter lab` (its own token, free port, temporary Jupyter config, data, runtime,
settings and workspaces folders; the "Jupyter news" toast switched off) serves a *copy* of
notebooks/, so nothing committed is touched (its parameters cells may be edited there, as
PARAMETERS says). Debian's Chromium, driven by Playwright for Python, loads JupyterLab once
(`?reset`), then opens each notebook in it as a learner would and waits until its kernel
(the one `make setup` installs) is ready. Every stored output must then be on the page
(each chart decoded, each markdown cell rendered) with no uncaught error in the page.

Running all cells (`notebook:run-all-cells`, then waiting for the kernel to go idle and
reading the notebook model: any error output, or any non-empty code cell left unexecuted,
fails) is done two ways. `make test` runs 05_import_and_use, the flow every other notebook
builds on, to prove JupyterLab's kernel runs a notebook end to end; every other notebook's
cells nbval already runs in a kernel of the same environment, started in the same folder,
and compares each output with the stored one this test sees rendered. `make paths` (CI
runs it after `make test`) runs all cells of every notebook here. A screenshot of each
notebook's end is saved and listed at the end of the run; then its kernel is shut down and
its tab closed.

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` Python package
(in requirements.txt). Never `playwright install`: its browser download cannot work here,
and the system Chromium is what we drive. Without either, the tests are skipped.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "build" / "lab-screenshots"   # also listed by tests/conftest.py
CHROMIUM = os.environ.get("BYOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_S = 300          # one notebook, all cells
RUN_IN_MAKE_TEST = "05_import_and_use"   # the notebook whose cells `make test` runs here
# Set in the served copy's parameters cell, as a learner may edit it: fewer timed repeats
# (nbval runs the committed defaults).
PARAMETERS = {"07_timing": {"REPEAT": 3}}
SERVER_START_TIMEOUT_S = 60
# `jupyter lab`, without the IRI grammar nothing here needs (tests/no_iri_grammar.py says why).
LAB_MAIN = (f"import runpy, sys; runpy.run_path({str(ROOT / 'tests' / 'no_iri_grammar.py')!r}); "
            "from jupyterlab.labapp import main; sys.exit(main())")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if sync_playwright is None:
    pytestmark = pytest.mark.skip(
        reason="playwright is not importable: `.venv/bin/pip install -r requirements.txt` "
               "(Python package only; do not run `playwright install`)")
elif not Path(CHROMIUM).exists():
    pytestmark = pytest.mark.skip(
        reason=f"no Chromium at {CHROMIUM}: install Debian's browser with "
               "`sudo apt-get install chromium` (or set BYOK_CHROMIUM to its path)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_parameters(notebook: Path, values: dict) -> None:
    """Change assignments in the notebook's `parameters` cell (each must be there)."""
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    for name, value in values.items():
        source, found = re.subn(rf"^{name} = .*?(?=\s*#|$)", f"{name} = {value!r}", source,
                                count=1, flags=re.M)
        assert found, f"{notebook.name}: no `{name} = ` in its parameters cell"
    cell["source"] = source.splitlines(keepends=True)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


class LabServer:
    """`jupyter lab` on 127.0.0.1 over a copy of notebooks/, with throw-away Jupyter dirs."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "notebooks"
        shutil.copytree(ROOT / "notebooks", self.root,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        for stem, values in PARAMETERS.items():
            set_parameters(self.root / f"{stem}.ipynb", values)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyter-lab.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "KP_"))}
        dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
                "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
                "JUPYTERLAB_WORKSPACES_DIR": "workspaces"}
        for name, sub in dirs.items():
            (base / sub).mkdir()
            env[name] = str(base / sub)
        # The news toast would cover every screenshot: answer "Never" once, for this server.
        notification = base / "settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        command = [sys.executable, "-c", LAB_MAIN, "--no-browser", "--ip", "127.0.0.1",
                   f"--port={self.port}", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
                   "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, env=env, cwd=self.root, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self._wait_until_up()

    def _wait_until_up(self):
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.process.returncode}):\n"
                                   + self.log_path.read_text())
            try:
                if requests.get(self.api("status"), timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("jupyter lab did not answer in time:\n" + self.log_path.read_text())

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path}?token={self.token}"

    def lab_url(self) -> str:
        return f"{self.url}/lab?reset&token={self.token}"

    def shut_down_sessions(self):
        for session in requests.get(self.api("sessions"), timeout=10).json():
            requests.delete(self.api(f"sessions/{session['id']}"), timeout=30)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Screenshots:
    """Collects the screenshot paths; tests/conftest.py lists the folder at the end of the
    run (a hook here would run inside a pytest-xdist worker, whose summary nobody sees)."""

    def __init__(self):
        self.paths: list[Path] = []


@pytest.fixture(scope="class")
def screenshots(request):
    # A fixed, git-ignored folder, so a reviewer finds the pictures of the last run; each
    # half clears only its own notebooks' pictures (the other may be running beside it).
    folder = SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    for notebook in request.cls.notebooks:
        (folder / f"{notebook.stem}.png").unlink(missing_ok=True)
    return folder, Screenshots()


@pytest.fixture(scope="class")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


class LabPage:
    """One browser tab on JupyterLab, loaded once per half (loading JupyterLab's bundles
    costs seconds of CPU); each notebook is opened in it, run and closed. Uncaught page
    errors are collected and charged to the notebook open when they happen (those of the
    loading to the first)."""

    def __init__(self, page, lab: LabServer):
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(lab.lab_url(), wait_until="domcontentloaded")
        page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
        page.evaluate("async () => { await window.jupyterapp.started;"
                      " await window.jupyterapp.restored; }")


@pytest.fixture(scope="class")
def lab_page(tmp_path_factory, lab):
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1000})
        yield LabPage(context.new_page(), lab)
        context.close()


# Runs in the page once JupyterLab is loaded (once per half): open one notebook as a learner
# would from the file browser, wait for the document and the kernel, make it the current
# tab; the panel is kept in the page for RUN_ALL and CLOSE.
OPEN_AND_WAIT = """async ([path, timeoutMs]) => {
  const app = window.jupyterapp;
  await app.started; await app.restored;
  const deadline = Date.now() + timeoutMs;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  if (!(panel && panel.sessionContext && panel.context)) throw new Error('no notebook panel opened');
  window.byokPanel = panel;
  app.shell.activateById(panel.id);
  await panel.context.ready; await panel.sessionContext.ready;
  while (!(panel.sessionContext.session && panel.sessionContext.session.kernel
           && panel.sessionContext.session.kernel.status === 'idle')) {
    if (Date.now() > deadline) throw new Error('kernel not ready: '
        + (panel.sessionContext.session ? panel.sessionContext.kernelDisplayStatus : 'no session'));
    await new Promise(r => setTimeout(r, 100));
  }
  return panel.sessionContext.kernelDisplayName;
}"""

# Shut the notebook's kernel down and close its tab without the "save your work?" dialog
# (the served notebooks are a throw-away copy). Bounded: a shutdown that does not answer
# must not hang the run; LabServer.shut_down_sessions() deletes what is left.
CLOSE = """async (timeoutMs) => {
  const panel = window.byokPanel;
  window.byokPanel = undefined;
  if (!panel || panel.isDisposed) return;
  const bound = new Promise(resolve => setTimeout(resolve, timeoutMs));
  try { await Promise.race([panel.sessionContext.shutdown(), bound]); } finally { panel.dispose(); }
}"""

# What the opened notebook shows: its model's stored outputs, those on the page, its charts
# (decoded) and its rendered markdown cells, once all are on the page or the time is up
# (JupyterLab renders them after the document is ready). Windowing keeps off-screen cells
# in the page (JupyterLab 4's "contentVisibility"), so every cell is counted.
RENDERED = """async (timeoutMs) => {
  const panel = window.byokPanel;
  const node = panel.content.node;
  const deadline = Date.now() + timeoutMs;
  const count = () => {
    const outputs = panel.content.widgets.filter(w => w.model.type === 'code')
        .flatMap(w => w.model.outputs.toJSON());
    const images = [...node.querySelectorAll('.jp-OutputArea-output img')];
    return {modelOutputs: outputs.length,
            modelImages: outputs.filter(o => o.data && o.data['image/png']).length,
            pageOutputs: node.querySelectorAll('.jp-OutputArea-output').length,
            decodedImages: images.filter(i => i.complete && i.naturalWidth > 0).length,
            markdownCells: panel.content.widgets.filter(w => w.model.type === 'markdown').length,
            renderedMarkdown: node.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown').length};
  };
  let shown = count();
  while (!(shown.pageOutputs === shown.modelOutputs && shown.decodedImages === shown.modelImages
           && shown.renderedMarkdown === shown.markdownCells) && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 100));
    shown = count();
  }
  return shown;
}"""

# Show the notebook's end for the screenshot.
TO_THE_END = """async () => {
  const panel = window.byokPanel;
  const last = panel.content.widgets.length - 1;
  panel.content.activeCellIndex = last;
  await panel.content.scrollToItem(last, 'end');
}"""

RUN_ALL = """async (timeoutMs) => {
  const app = window.jupyterapp;
  const panel = window.byokPanel;
  const deadline = Date.now() + timeoutMs;
  const started = Date.now();
  await app.commands.execute('notebook:run-all-cells');
  const busy = () => panel.sessionContext.session.kernel.status !== 'idle'
      || [...panel.content.node.querySelectorAll('.jp-InputPrompt')]
           .some(p => p.textContent.includes('*'));
  while (busy()) {
    if (Date.now() > deadline) throw new Error('still running after ' + timeoutMs + ' ms');
    await new Promise(r => setTimeout(r, 200));
  }
  const seconds = (Date.now() - started) / 1000;
  const cells = [];
  const model = panel.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    cells.push({index: i, source: cell.sharedModel.getSource(),
                executionCount: cell.executionCount,
                errors: outputs.filter(o => o.output_type === 'error')
                               .map(o => o.ename + ': ' + o.evalue),
                text: outputs.map(o => [].concat(o.text || (o.data && o.data['text/plain']) || [])
                                          .join('')).join('\\n')});
  }
  return {seconds, cells};
}"""


def shown_outputs(outputs: list) -> list:
    """A cell's outputs as JupyterLab holds them: consecutive stream outputs of one name
    (stdout, stderr) merged into one."""
    merged = []
    for output in outputs:
        if (merged and output["output_type"] == "stream" == merged[-1]["output_type"]
                and output["name"] == merged[-1]["name"]):
            continue
        merged.append(output)
    return merged


def committed(notebook: Path) -> dict:
    """What the notebook file stores: its outputs' text, their number, its PNG charts and
    its markdown cells."""
    nb = json.loads(notebook.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    text = ("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            for o in outputs)
    return {"text": "\n".join(text),
            "outputs": sum(len(shown_outputs(c.get("outputs", []))) for c in nb["cells"]),
            "images": sum("image/png" in o.get("data", {}) for o in outputs),
            "markdown": sum(c["cell_type"] == "markdown" for c in nb["cells"])}


def in_jupyterlab(notebook, lab, lab_page, screenshots, run_all: bool):
    folder, plugin = screenshots
    page = lab_page.page
    stored = committed(notebook)
    started = time.monotonic()
    try:
        kernel = page.evaluate(OPEN_AND_WAIT, [notebook.name, 60_000])
        opened = time.monotonic() - started
        shown = page.evaluate(RENDERED, 30_000)
        result = page.evaluate(RUN_ALL, RUN_TIMEOUT_S * 1000) if run_all else None
        page.evaluate(TO_THE_END)
        page.wait_for_timeout(300)  # let the scroll settle before the picture
        shot = folder / f"{notebook.stem}.png"
        page.screenshot(path=str(shot))
        plugin.paths.append(shot)
        ran = f", run-all {result['seconds']:.1f} s" if run_all else ""
        print(f"\n{notebook.stem}: opened with a ready kernel ({kernel}) in {opened:.1f} s"
              f"{ran}; screenshot {shot}")
    finally:
        page.evaluate(CLOSE, 30_000)
        lab.shut_down_sessions()
    # this notebook's uncaught errors (the first one's include JupyterLab's loading)
    console_errors, lab_page.errors[:] = list(lab_page.errors), []

    assert shown["modelOutputs"] == stored["outputs"], f"{notebook.name}: outputs lost on opening"
    assert shown["pageOutputs"] == shown["modelOutputs"], \
        f"{notebook.name}: outputs not on the page: {shown}"
    assert shown["modelImages"] == stored["images"] == shown["decodedImages"], \
        f"{notebook.name}: charts not shown: {shown}"
    assert shown["renderedMarkdown"] == shown["markdownCells"] == stored["markdown"], \
        f"{notebook.name}: markdown not rendered: {shown}"
    if run_all:
        errors = [f"cell {c['index']}: {e}" for c in result["cells"] for e in c["errors"]]
        unexecuted = [f"cell {c['index']}" for c in result["cells"]
                      if c["source"].strip() and c["executionCount"] is None]
        assert not errors, f"{notebook.name} raised in JupyterLab: {errors}"
        assert not unexecuted, f"{notebook.name}: code cells left unexecuted: {unexecuted}"
        # Checks.assert_all() prints this only when every row of the summary table is true.
        if "CHECKS PASSED" in stored["text"]:
            fresh = "\n".join(c["text"] for c in result["cells"])
            assert "CHECKS PASSED" in fresh, f"{notebook.name}: the summary checks did not all pass"
    assert not console_errors, f"uncaught errors in the page: {console_errors}"


class TestEveryNotebookOpens:
    """`make test`: every notebook opened and shown in one JupyterLab; one run end to end."""
    notebooks = NOTEBOOKS

    @pytest.mark.parametrize("notebook", notebooks, ids=lambda p: p.stem)
    def test_notebook_opens_in_jupyterlab(self, notebook, lab, lab_page, screenshots):
        in_jupyterlab(notebook, lab, lab_page, screenshots,
                      run_all=notebook.stem == RUN_IN_MAKE_TEST)


def test_make_test_runs_a_notebook_that_exists():
    assert (ROOT / "notebooks" / f"{RUN_IN_MAKE_TEST}.ipynb") in NOTEBOOKS


# `make paths`: all cells of every notebook. Two halves, each a class with its own
# JupyterLab and Chromium: under `--dist loadscope` a class is one unit of work, so the two
# can run side by side on two workers. Alternate notebooks go to each half, so each gets
# some of the slow ones.
@pytest.mark.paths
class TestRunAllFirstHalf:
    notebooks = NOTEBOOKS[0::2]

    @pytest.mark.parametrize("notebook", notebooks, ids=lambda p: p.stem)
    def test_notebook_runs_in_jupyterlab(self, notebook, lab, lab_page, screenshots):
        in_jupyterlab(notebook, lab, lab_page, screenshots, run_all=True)


@pytest.mark.paths
class TestRunAllSecondHalf:
    notebooks = NOTEBOOKS[1::2]

    @pytest.mark.parametrize("notebook", notebooks, ids=lambda p: p.stem)
    def test_notebook_runs_in_jupyterlab(self, notebook, lab, lab_page, screenshots):
        in_jupyterlab(notebook, lab, lab_page, screenshots, run_all=True)


def test_the_halves_cover_every_notebook_once():
    assert sorted(TestRunAllFirstHalf.notebooks + TestRunAllSecondHalf.notebooks) == NOTEBOOKS
