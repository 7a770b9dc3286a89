# Two commands: `make lab` (set up, then open the course) and `make test` (set up, then run every test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pytest workers; the notebook tests are grouped per file so each notebook runs in one kernel.
WORKERS ?= 2

.PHONY: lab test setup doctor bench clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -e ".[lab,test]"
	@touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(VENV)/bin/textimg-lessons doctor || true
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb

test: setup
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env tests notebooks

doctor: setup
	$(VENV)/bin/textimg-lessons doctor

clean-venv:
	rm -rf $(VENV)
