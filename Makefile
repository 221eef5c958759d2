# Two commands do everything: `make run` (the main job) and `make test` (lint, then the test suite).
# Both create a private virtual environment in .venv from the pinned environment.txt first,
# with the package installed into it (editable) so that its commands (xrayclass-*) work.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-environment

.PHONY: run test lint fuzz env clean

env: $(STAMP)

$(STAMP): environment.txt pyproject.toml
	@echo "== Setting up $(VENV) from environment.txt (first run only) =="
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r environment.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# An editable install leaves the package uncompiled; with PYTHONDONTWRITEBYTECODE set
	@# every stage would compile it again at each start (0.07 s).
	$(PY) -m compileall -q xrayclass
	@touch $(STAMP)

run: $(STAMP)
	$(PY) run_pipeline.py $(RUN_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check xrayclass tests benchmarks docs *.py
	$(VENV)/bin/ruff format --check xrayclass tests benchmarks docs *.py
	$(VENV)/bin/mypy
	@# The layers and no import circles: the contracts of [tool.importlinter] in pyproject.toml.
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(PY) -m pytest

# Long fuzzing with corrupted inputs (tests/test_fuzz.py): 2,000 cases over every stage's tables
# (in memory, streaming and on one local Dask cluster), the artifacts, feature-set files and
# label files, split as its BUDGET says; XRAYCLASS_FUZZ_EXAMPLES=N changes the total.
fuzz: $(STAMP)
	XRAYCLASS_FUZZ_PROFILE=fuzz OPENBLAS_NUM_THREADS=1 $(PY) -m pytest tests/test_fuzz.py -q -p no:cacheprovider --hypothesis-show-statistics

clean:
	rm -rf out_data/* .pytest_cache
