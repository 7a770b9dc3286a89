# Two commands: `make lab` (set up, then open the course) and `make test` (set up, then run every test).
# Each target installs only what it needs into .venv: `lab` the course and JupyterLab; `test` adds the test
# tools (nbgrader included: the grading tests need it); `instructor` adds nbgrader for release and autograde.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# pytest workers; the notebook tests are grouped per file so each notebook runs in one kernel.
WORKERS ?= 2
# JupyterLab shows the whole course (notebooks/ and student/) and opens chapter 0.
START  := notebooks/00_start_here.ipynb

.PHONY: lab test instructor setup doctor clean-venv

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"

# One stamp per set of extras: editing pyproject.toml reinstalls.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$(subst +,$(comma),$*)]"
	@touch $@

comma := ,

setup: $(VENV)/.installed-lab

lab: $(VENV)/.installed-lab
	$(VENV)/bin/textimg-lessons doctor || true
	@$(PY) -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("nbgrader") is None)' 2>/dev/null && \
	  echo "note: nbgrader (installed by make test / make instructor) adds its instructor menus to JupyterLab;" \
	       "'make clean-venv lab' gives a student-only environment." || true
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/$(START)

test: $(VENV)/.installed-lab+test
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --nbval-lax --nbval-current-env tests notebooks

instructor: $(VENV)/.installed-lab+instructor
	@echo "Instructor tools installed: see docs/INSTRUCTOR.md (textimg-lessons release / collect / autograde)."

doctor: $(VENV)/.installed-lab
	$(VENV)/bin/textimg-lessons doctor

clean-venv:
	rm -rf $(VENV)
