# The commands the README names. Every target sets up what it needs from this repository's own
# files, so on a fresh machine `make demo` and `make test` are all the set-up there is.
# A `## text` line right above a target is its line in `make help`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Python 3.12 (the functions' runtime) for the checkers' venvs and `sam build`: pyenv's if present.
PY312 ?= $(or $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin/python3.12)),$(shell command -v python3.12 2>/dev/null))
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
ARCH ?= x86_64
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam
PIP_QUIET := --quiet --quiet --disable-pip-version-check
# Line coverage of sfn_workers under `make unit`: measured 92.63% (docs/architecture.md); the floor
# is that, rounded down, minus 2. Coverage's data file stays in the venv, out of the working tree.
COVERAGE_FLOOR := 90

# Targets that build the Python 3.12 venvs: without 3.12 they stop at once with one line, before
# minutes of other installs (unless those venvs already exist).
NEEDS_PY312 := test validate unit tools sam-build deploy
ifneq ($(filter $(NEEDS_PY312),$(MAKECMDGOALS)),)
ifeq ($(strip $(PY312)),)
ifneq ($(words $(wildcard $(TOOLS_STAMP) $(CHECKOV_STAMP) $(LAMBDA_STAMP))),3)
$(error Python 3.12 not found (the Lambda runtime; `make $(MAKECMDGOALS)` builds its checkers and `sam build` with it): install it, e.g. `pyenv install 3.12` or `apt-get install python3.12`, or pass PY312=/path/to/python3.12)
endif
endif
endif

.DEFAULT_GOAL := help
.PHONY: help setup demo test check lint typecheck unit validate tools sam-build deploy clean \
	bench bench-coldstart bench-retry bench-offload bench-callbacks bench-runner bench-serve bench-estimate

## List the targets.
help:
	@awk '/^## /{text=substr($$0,4); next} /^[a-z][a-z0-9-]*:/{if(text){split($$1,t,":"); printf "  make %-16s %s\n", t[1], text}; text=""} /^$$/{text=""}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@echo "make: installing sfn-workers and its dev tools into $(VENV) (first time ~1 min)"
	$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	@$(PY) -m pip install $(PIP_QUIET) -e '.[dev]'
	@touch $(STAMP)

## Create .venv with the package and its development tools.
setup: $(STAMP)

## Run the sample order workflow locally, on the embedded default (no AWS, no Docker).
demo: $(STAMP)
	$(VENV)/bin/sfn-workers run --template template.yaml --input events/execution-happy.json

## Everything CI runs: lint, strict typing, template validation, the whole test suite.
test: lint typecheck validate unit

## Quick feedback while working (~30 s): ruff, mypy, the unit tests; no Python 3.12 venvs, no sam build.
check: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/unit

## ruff check (complexity 15 included), ruff format --check, and the architecture gate (tools/check_architecture.py).
lint: $(STAMP)
	$(VENV)/bin/ruff check sfn_workers handlers tests bench tools
	$(VENV)/bin/ruff format --check sfn_workers handlers tests bench tools
	$(PY) tools/check_architecture.py

## mypy --strict on the package, its tests and tools.
typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict sfn_workers tests tools

## Template and ASL checks (each fails on the kind of breakage it guards; tests/unit/test_template_*.py).
validate: $(STAMP) $(TOOLS_STAMP) $(CHECKOV_STAMP)
	$(TOOLS_VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region eu-west-1 --template template.yaml
	$(SAM) validate --region eu-west-1 --template template.yaml
	$(TOOLS_VENV)/bin/statelint statemachine/order.asl.json
	$(PY) tools/check_asl.py --template template.yaml
	$(VENV)/bin/sfn-workers validate --template template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	$(TOOLS_VENV)/bin/bandit --quiet -c tools/bandit.yaml -r sfn_workers handlers

## The whole test suite (slow tests included: sam build, the Lambda runtime smoke test), with the coverage floor.
unit: $(STAMP) $(TOOLS_STAMP) $(LAMBDA_STAMP)
	COVERAGE_FILE=$(VENV)/.coverage $(PY) -m pytest -q -m "not untraced" \
		--cov=sfn_workers --cov-report= --cov-fail-under=$(COVERAGE_FLOOR)
	$(PY) -m pytest -q -m untraced

## The venvs of the checkers and of the runtime smoke test (Python 3.12, the functions' runtime).
tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) $(LAMBDA_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	@echo "make: installing cfn-lint, the SAM CLI, statelint and bandit into $(TOOLS_VENV) (first time ~1 min)"
	$(PY312) -m venv $(TOOLS_VENV)
	@$(TOOLS_VENV)/bin/python -m pip install $(PIP_QUIET) -r requirements-tools.txt
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	@echo "make: installing checkov into $(CHECKOV_VENV) (first time ~1 min)"
	$(PY312) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install $(PIP_QUIET) -r requirements-checkov.txt
	@touch $@

$(LAMBDA_STAMP): requirements-lambda.txt
	@echo "make: installing the Lambda runtime interface client into $(LAMBDA_VENV) (first time ~30 s)"
	$(PY312) -m venv $(LAMBDA_VENV)
	@$(LAMBDA_VENV)/bin/python -m pip install $(PIP_QUIET) -r requirements-lambda.txt
	@touch $@

## `sam build` for python3.12 into .aws-sam/build (x86_64 by default; ARCH=arm64 for Graviton), replacing it only on success.
sam-build: $(TOOLS_STAMP)
	@rm -rf .aws-sam/build.new
	PATH="$(dir $(PY312)):$$PATH" $(SAM) build --build-dir .aws-sam/build.new \
		--template template.yaml --parameter-overrides Architecture=$(ARCH)
	@# aws-lambda-builders ignores a failed wheel build of a local package: check the layer has it.
	@test -f .aws-sam/build.new/SfnWorkersLayer/python/sfn_workers/task.py || \
		{ echo "sam-build: the layer has no sfn_workers (its wheel build failed); .aws-sam/build is unchanged"; exit 1; }
	@test ! -e .aws-sam/build.new/SfnWorkersLayer/python/sfn_workers/local || \
		{ echo "sam-build: the layer ships sfn_workers/local (it should hold the runtime only); .aws-sam/build is unchanged"; exit 1; }
	@rm -rf .aws-sam/build && mv .aws-sam/build.new .aws-sam/build
	@echo "sam-build: built into .aws-sam/build"

## Build, then `sam deploy --guided` with the venv's SAM CLI (needs AWS credentials).
deploy: sam-build
	$(SAM) deploy --guided --template-file .aws-sam/build/template.yaml

## All benchmarks (not part of `make test`); results go to bench/README.md.
bench: bench-coldstart bench-retry bench-offload bench-callbacks bench-runner bench-serve bench-estimate

## Cold start of a handler module.
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

## Remove the venvs, the SAM build and the caches.
clean:
	rm -rf $(VENV) $(TOOLS_VENV) $(CHECKOV_VENV) $(LAMBDA_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
