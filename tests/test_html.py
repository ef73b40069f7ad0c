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


def test_the_timing_notebook_stores_one_progress_line_per_loop_and_renders_them(tmp_path):
    # Stored: one line per timed loop, printed when it ends (no bar, no carriage returns),
    # so the page shows what JupyterLab shows.
    timing = NOTEBOOKS / "07_timing.ipynb"
    streams = [output.text for cell in nbformat.read(timing, as_version=4).cells
               for output in cell.get("outputs", []) if output.output_type == "stream"]
    lines = [line for text in streams for line in text.splitlines() if " runs" in line
             and " in " in line and line.endswith(" s")]
    assert any(line.startswith("RSA-4096 key generation: ") for line in lines)
    assert not any("\r" in text for text in streams)
    _, page = render(tmp_path, [timing])
    assert "RSA-4096 key generation: " in page.read_text(encoding="utf-8")
