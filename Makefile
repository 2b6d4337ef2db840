# The commands the README names. Every target sets up what it needs from this repository's own
# files, so on a fresh machine `make demo` and `make test` are all the set-up there is.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Python 3.12 (the functions' runtime) for the checkers' venvs and `sam build`: pyenv's if present.
PY312 ?= $(or $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12),$(shell command -v python3.12))
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
ARCH ?= x86_64

.PHONY: setup demo test lint typecheck unit validate tools sam-build bench clean

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
	$(VENV)/bin/ruff check sfn_workers handlers tests bench tools
	$(VENV)/bin/ruff format --check sfn_workers handlers tests bench tools

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict sfn_workers

## Template and ASL checks (each fails on the kind of breakage it guards; tests/unit/test_template_*.py).
validate: $(STAMP) $(TOOLS_STAMP) $(CHECKOV_STAMP)
	$(TOOLS_VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --lint --region eu-west-1 --template template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --region eu-west-1 --template template.yaml
	$(TOOLS_VENV)/bin/statelint statemachine/order.asl.json
	$(PY) tools/check_asl.py --template template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	$(TOOLS_VENV)/bin/bandit --quiet -c tools/bandit.yaml -r sfn_workers handlers

## The venvs of the checkers and of the runtime smoke test (Python 3.12, the functions' runtime).
tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) $(LAMBDA_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	$(PY312) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PY312) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

$(LAMBDA_STAMP): requirements-lambda.txt
	$(PY312) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet -r requirements-lambda.txt
	touch $@

## `sam build` for python3.12 (x86_64 by default here; arm64 is the template's default for AWS).
sam-build: $(TOOLS_STAMP)
	PATH="$(dir $(PY312)):$$PATH" SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam build \
		--template template.yaml --parameter-overrides Architecture=$(ARCH)
	@# aws-lambda-builders ignores a failed wheel build of a local package: check the layer has it.
	@test -f .aws-sam/build/SfnWorkersLayer/python/sfn_workers/task.py || \
		{ echo "sam-build: the layer has no sfn_workers (its wheel build failed)"; exit 1; }
	@test ! -e .aws-sam/build/SfnWorkersLayer/python/sfn_workers/local || \
		{ echo "sam-build: the layer ships sfn_workers/local (it should hold the runtime only)"; exit 1; }

unit: $(STAMP) $(TOOLS_STAMP) $(LAMBDA_STAMP)
	$(PY) -m pytest -q

## Benchmarks (not part of `make test`); results go to bench/README.md.
bench: bench-coldstart bench-retry bench-offload bench-callbacks bench-runner bench-serve bench-estimate

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

## Local runner: executions/s of the sample's happy path, a 10,000-item Map (under a minute).
bench-runner: $(STAMP)
	$(PY) bench/runner.py --write

## The sample's cost and first binding quota at 10, 100 and 1,000 executions/s (sfn-workers estimate; ~20 s).
bench-estimate: $(STAMP)
	$(PY) bench/estimate.py --write

## sfn-workers serve: executions/s through the endpoint vs in-process, API latency idle/under load (~1 min).
bench-serve: $(STAMP)
	$(PY) bench/serve.py --write

clean:
	rm -rf $(VENV) $(TOOLS_VENV) $(CHECKOV_VENV) $(LAMBDA_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
