# Two entry points for a fresh machine (see README): `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/hpt: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/hpt
	$(BIN)/hpt run specs/lstm.json --sink hpt-results/lstm-demo
	$(BIN)/hpt results hpt-results/lstm-demo --top 5

test: $(BIN)/hpt
	$(BIN)/ruff check hpt tests benchmarks
	$(BIN)/mypy hpt
	$(BIN)/pytest

bench: $(BIN)/hpt
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) hpt-results .pytest_cache .mypy_cache .ruff_cache
