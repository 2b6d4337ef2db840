# The commands the README names. Every target sets up what it needs from this repository's own
# files, so on a fresh machine `make demo` and `make test` are all the set-up there is.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit validate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Run the sample order workflow locally, on the embedded default (no AWS, no Docker).
demo: $(STAMP)
	$(VENV)/bin/sfn-workers run --template template.yaml --input events/execution-happy.json

## Everything CI runs: lint, strict typing, template validation, tests.
test: lint typecheck validate unit

lint: $(STAMP)
	$(VENV)/bin/ruff check sfn_workers handlers tests bench
	$(VENV)/bin/ruff format --check sfn_workers handlers tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict sfn_workers

validate: $(STAMP)
	@echo "validate: template checks not wired yet"

unit: $(STAMP)
	$(PY) -m pytest -q

## Benchmarks (not part of `make test`); results go to bench/README.md.
bench: bench-coldstart bench-retry bench-offload bench-callbacks

bench-coldstart: $(STAMP)
	$(PY) bench/coldstart.py

## S3 offloading vs bare boto3 put/get on a local moto server (about half a minute).
bench-offload: $(STAMP)
	$(PY) bench/offload.py --write

## Retry storms, simulated (about 1.5 min on one core; `--quick` for a few seconds).
bench-retry: $(STAMP)
	$(PY) bench/retry_storm.py --write

## Callback overhead, delivery under throttling, watchdog timing, on the local SendTask* endpoint (~1 min).
bench-callbacks: $(STAMP)
	$(PY) bench/callbacks.py --write

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
