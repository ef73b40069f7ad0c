"""`make html`: the executed notebooks as static pages, for readers without Jupyter.

Renders every notebooks/NN_*.ipynb with nbconvert's HTML exporter from its stored outputs
(nothing is executed; charts are the PNGs the outputs carry, embedded as data: URIs) into
OUT (default build/html/), plus an index.html that links them in reading order.

    python tests/render_html.py [OUT]
"""
from __future__ import annotations

import html
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of the notebook, without its #s."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def render(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    notebooks = notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    # A progress bar is stored as every state it passed through, each after a carriage
    # return; JupyterLab shows only the last one, and so should the page.
    exporter = HTMLExporter(config=Config({"CoalesceStreamsPreprocessor": {"enabled": True}}))
    rows, pages = [], []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        title = title_of(nb, path.stem)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        rows.append(f'<li><a href="{page.name}"><code>{html.escape(path.stem)}</code></a> '
                    f"&mdash; {html.escape(title)}</li>")
    index = out / "index.html"
    index.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>byok-notebooks</title>"
        "<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.5}"
        "</style></head><body>\n"
        "<h1>byok-notebooks</h1>\n<p>Bring your own key into IBM Key Protect with an import "
        "token: the notebooks as run, with their stored outputs, in reading order.</p>\n"
        "<ol>\n" + "\n".join(rows) + "\n</ol>\n</body></html>\n", encoding="utf-8")
    return [index, *pages]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "html"
    for written in render(target):
        print(written)
