# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv itself.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12: the venv and `sam build` use it. pyenv (if present) exposes it next to the default.
export PYENV_VERSION ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.' | sort -V | tail -1)
PYTHON ?= python3.12
STAMP := $(VENV)/.installed

.PHONY: demo test bench docs lint typecheck sam-validate sam-build pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/playbooks list
	$(BIN)/playbooks simulate lambda-throttling --scenario throttled --decision approve
	$(BIN)/playbooks simulate lambda-throttling --scenario account-limit
	$(BIN)/playbooks simulate event-loop --scenario processed-bucket-loop

test: $(STAMP) lint typecheck sam-validate sam-build pytest

# Benchmarks, not tests (minutes, not seconds). event-loop: stop 10,000 RUNNING executions, our stopper vs the runbook's loop.
bench: $(STAMP)
	$(BIN)/python bench/event_loop_stop.py --executions 10000

docs: $(STAMP)
	$(BIN)/python -c "from playbooks.local.moto_gaps import render_doc; open('docs/local-account.md', 'w').write(render_doc())"

lint: $(STAMP)
	$(BIN)/ruff check src functions tests bench
	$(BIN)/ruff format --check src functions tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

sam-validate: $(STAMP)
	$(BIN)/sam validate --lint --region us-east-1

sam-build: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sam build --build-dir .aws-sam/build --cached >/dev/null
	@echo "sam build: ok"

pytest: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
