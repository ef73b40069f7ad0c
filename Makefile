# The two commands a newcomer needs: `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: setup lab test bench clean html paths fresh-machine

setup: $(STAMP)

# pip byte-compiles the wheels it installs, not an editable install: byoklib is compiled
# here, so a fresh checkout's first `make test` does not compile it in many interpreters at once.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m compileall -q byoklib
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (byok-notebooks)" >/dev/null
	touch $(STAMP)

lab: setup
	cd notebooks && ../$(PY) -m jupyter lab --ip 127.0.0.1 --port $(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,)

# Every test, four workers: much of the suite waits on kernels, JupyterLab and Chromium, so
# four keep two cores busier than two do. --dist loadscope keeps each notebook's cells on one
# kernel; without reordering the units go out longest first (tests/conftest.py: run_order).
# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): the
# suite starts dozens of interpreters (workers, kernels, the CLI), each compiling byoklib
# and the tests afresh otherwise. tests/no_iri_grammar.py is loaded before the plugins.
test: setup
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -p tests.no_iri_grammar -n 4 --dist loadscope --no-loadscope-reorder

bench: setup
	$(PY) -m byoklib bench

# The executed notebooks as static HTML (stored outputs, charts included) in build/html/.
html: setup
	$(PY) tests/render_html.py build/html

# The slow paths (minutes; CI runs them after `make test`): Binder's config as repo2docker
# reads it and a fresh venv from binder/requirements.txt alone running 00_welcome
# (tests/test_paths.py), the wheel installed and used outside the repository
# (tests/test_package.py), and all cells of every notebook run in JupyterLab in Chromium
# (tests/test_browser.py; `make test` opens each there and runs one). Four workers: the
# fresh venvs mostly wait on pip, the two browser halves on kernels.
paths: setup
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -p tests.no_iri_grammar -n 4 --dist loadscope -m "paths or package" tests/test_paths.py tests/test_package.py tests/test_browser.py

# The README's two commands in a fresh clone of HEAD, timed (make test; make lab until it answers).
fresh-machine:
	tests/fresh_machine.sh

clean:
	rm -rf $(VENV) build .pytest_cache
