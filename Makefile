# Two commands on a fresh machine with Python >= 3.11: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test schema bench clean

$(STAMP): pyproject.toml setup.py constraints.txt ledger/projections/_rows.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,fast]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/village-ledger demo --dir demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q

# `make bench QUICK=1` for the short run (under 3 minutes); results in benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick)

schema: $(STAMP)
	$(BIN)/village-ledger schema --out ledger/schema/journal.schema.json

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis
