# The two commands a newcomer needs: `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lab test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (byok-notebooks)" >/dev/null
	touch $(STAMP)

lab: setup
	cd notebooks && ../$(PY) -m jupyter lab --ip 127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root,)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m byoklib bench

clean:
	rm -rf $(VENV) build .pytest_cache
