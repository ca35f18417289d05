# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv itself.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12: the venv and `sam build` use it. pyenv (if present) exposes it next to the default.
export PYENV_VERSION ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.' | sort -V | tail -1)
PYTHON ?= python3.12
STAMP := $(VENV)/.installed
# checkov has its own venv: its pins are not ours.
SCAN_VENV := .venv-scan
# npm tools live in the project (gitignored), pinned here.
NPM_TOOLS := .tools/npm
ASL_VALIDATOR_VERSION := 4.0.0

# mutmut has its own venv too: it needs a newer click than aws-sam-cli pins.
MUTATE_VENV := .venv-mutate

.PHONY: demo test static bench assure docs diagrams scan lint typecheck sam-validate sam-build asl-lint pytest mutate mutate-guard clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/playbooks list
	$(BIN)/playbooks simulate lambda-throttling --scenario throttled --decision approve
	$(BIN)/playbooks simulate lambda-throttling --scenario account-limit
	$(BIN)/playbooks simulate execution-stuck --scenario lambda-timeout --decision approve
	$(BIN)/playbooks simulate event-loop --scenario processed-bucket-loop
	$(BIN)/playbooks simulate cost-spike --scenario everything
	$(BIN)/playbooks simulate access-denied --scenario missing-s3-put

# The scanners (cfn-lint, checkov) run inside pytest, in the assurance gate (tests/assurance), with everything else
# `playbooks assure` checks; `make scan` shows their own output.
# The static checks (one core each, about a minute and a half) run beside pytest rather than before it; pytest
# finishes last, so its summary is the last line.
# The mutation guard runs first (under a minute): a sample of the safety mutants that must all be detected (killed,
# or their tests ran out of time).
test: $(STAMP) $(SCAN_VENV)/.installed mutate-guard
	$(MAKE) --no-print-directory -j2 --output-sync=target static pytest

static: lint typecheck sam-validate sam-build asl-lint

# Not part of `make test` (minutes, not seconds): prints the benchmark table and writes bench/results.json, including
# event-loop's bulk stop of 10,000 RUNNING executions, our stopper against the runbook's one-by-one loop.
bench: $(STAMP) sam-build
	$(BIN)/python -m playbooks.bench $(RUNS)

# The fault matrix, bad input, concurrency, least privilege from recorded calls, scanners, secrets and ASL coverage
# over every playbook; writes docs/assurance.md. `make test` runs the same checks (tests/assurance) and fails on any.
assure: $(STAMP) $(SCAN_VENV)/.installed
	$(BIN)/playbooks assure

docs: $(STAMP)
	$(BIN)/playbooks docs

# The SVG drawings in docs/ (each playbook's flow and the architecture): mermaid-cli from npm, driving Debian's
# chromium (apt-get install chromium; puppeteer's own browser download is skipped).
node_modules/.installed: package.json
	PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-package-lock --no-audit --no-fund --silent
	touch $@

diagrams: $(STAMP) node_modules/.installed
	$(BIN)/playbooks docs --svg

lint: $(STAMP)
	$(BIN)/ruff check src functions tests bench
	$(BIN)/ruff format --check src functions tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

sam-validate: $(STAMP)
	$(BIN)/sam validate --lint --region us-east-1

# Security scanners: cfn-lint on the SAM-transformed template, checkov (its own venv: its pins are not ours) on both.
$(SCAN_VENV)/.installed:
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet 'checkov>=3.2,<4'
	touch $@

scan: $(STAMP) $(SCAN_VENV)/.installed
	$(BIN)/python -c "import json; from playbooks.local.account import translate; json.dump(translate({}), open('.aws-sam/transformed.json', 'w'), indent=1)"
	# W1028: SAM wraps a conditional function's API paths in Fn::If even inside an API that has the same condition.
	$(BIN)/cfn-lint --ignore-checks W1028 -- .aws-sam/transformed.json
	$(SCAN_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml
	$(SCAN_VENV)/bin/checkov --config-file .checkov.yaml -f .aws-sam/transformed.json

$(NPM_TOOLS)/.installed: Makefile
	npm install --no-save --no-audit --no-fund --prefix $(NPM_TOOLS) asl-validator@$(ASL_VALIDATOR_VERSION)
	touch $@

# Two ASL validators independent of moto's parser, over every state machine with its substitutions filled:
# statelint (PyPI, pinned in pyproject.toml) and asl-validator (npm, pinned above).
asl-lint: $(STAMP) $(NPM_TOOLS)/.installed
	$(BIN)/python -m playbooks.asl_lint

# Mutation testing of the safety-critical code over the fast tests (minutes): writes docs/mutation.md and fails when a
# module is below 90% killed or a survivor has no reason to be equivalent.
$(MUTATE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(MUTATE_VENV)
	$(MUTATE_VENV)/bin/pip install --quiet --upgrade pip
	$(MUTATE_VENV)/bin/pip install --quiet -e . 'pytest>=8.3' 'hypothesis>=6.120' 'mutmut==3.8.1'
	touch $@

mutate: $(MUTATE_VENV)/.installed
	rm -rf mutants
	$(MUTATE_VENV)/bin/python -m playbooks.mutation

# The quick guard `make test` runs: 50 mutants of the approval-gate proof and the change classification, a fixed sample
# (a digest of each mutant's function and mutated line), must all be killed by the tests that reach them.
mutate-guard: $(MUTATE_VENV)/.installed
	$(MUTATE_VENV)/bin/python -m playbooks.mutation --guard

sam-build: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sam build --build-dir .aws-sam/build --cached >/dev/null
	@echo "sam build: ok"

# One pytest worker per core, a test file per worker at a time: the assurance gate's file stays on one worker (its
# session-wide run is made once and fans out over the cores itself) while the other worker takes everything else.
# (Not --dist loadgroup: pytest 9 ignores the group xdist 3.8 writes into the test ids, and the gate ran twice.)
pytest: $(STAMP) $(SCAN_VENV)/.installed
	$(BIN)/pytest -q -n auto --dist loadfile

clean:
	rm -rf $(VENV) $(SCAN_VENV) $(MUTATE_VENV) mutants .aws-sam .pytest_cache .mypy_cache .ruff_cache .tools
