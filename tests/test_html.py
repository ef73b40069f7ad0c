"""`make html`: a notebook with charts renders to static HTML with its PNGs embedded, and the
index links it (tests/render_html.py; the full set is `make html`, into build/html/)."""
import nbformat
from render_html import NOTEBOOKS, render


def test_render_embeds_charts_and_indexes_the_pages(tmp_path):
    with_charts = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
                   if '"image/png"' in p.read_text(encoding="utf-8")][:1]
    assert with_charts, "no committed notebook carries a PNG output"
    index, page = render(tmp_path, with_charts)
    assert index.name == "index.html" and f'href="{page.name}"' in index.read_text()
    body = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in body
    assert 'class="jp-Notebook' in body   # nbconvert's lab template, not a bare dump


def test_a_progress_bar_renders_as_jupyterlab_shows_it_once_the_cell_has_run(tmp_path):
    # Stored: every state of the bar, each after a carriage return. Shown in JupyterLab:
    # only the last, which is blank here (the bar clears itself when done, leave=False).
    timing = NOTEBOOKS / "07_timing.ipynb"
    streams = [output.text for cell in nbformat.read(timing, as_version=4).cells
               for output in cell.get("outputs", []) if output.output_type == "stream"]
    assert sum(text.count("\rsteps:") for text in streams) > 1
    _, page = render(tmp_path, [timing])
    assert "steps:" not in page.read_text(encoding="utf-8")
