# Everything a fresh machine needs is installed from this repo's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DAGTRIGGER_CACHE ?= $(HOME)/.cache/dagtrigger
CHECKOV_VERSION := 3.3.30
CFN_LINT_VERSION := 1.58.0
CHECKOV_VENV := $(DAGTRIGGER_CACHE)/checkov-$(CHECKOV_VERSION)
CHECKOV_STAMP := $(CHECKOV_VENV)/.dagtrigger-installed-cfn-lint-$(CFN_LINT_VERSION)
AWS_CLI_VERSION := 1.46.2
SAM_CLI_VERSION := 1.170.0
AWS_CLI_VENV := $(DAGTRIGGER_CACHE)/aws-cli-$(AWS_CLI_VERSION)-sam-$(SAM_CLI_VERSION)
AWS_CLI_STAMP := $(AWS_CLI_VENV)/.dagtrigger-installed

.PHONY: help demo test unit integration chaos compat lint typecheck airflow infra-check docs-check package-aws bench clean

help:
	@echo "make demo   start a local Airflow 3, send sample GCS and S3 events through dagtrigger, show the runs"
	@echo "            (KEEP=1 leaves Airflow running until Ctrl-C)"
	@echo "make test   lint, type-check and run every test, against real Airflow 2 and 3"
	@echo "make unit   the fast tests only (no Airflow)"
	@echo "make chaos  faults, redeliveries and load at full size: nothing lost, nothing doubled"
	@echo "make compat every Airflow version users run (2.6.3 to 3.3.2), installed and checked with the CLI;"
	@echo "            VERSIONS=\"2.6.3 3.0.6\" for some"
	@echo "make infra-check   parse infra/ and scan it with checkov, offline"
	@echo "make docs-check    every gcloud, aws and sam command in the docs through the real CLIs' parsers, offline"
	@echo "make bench  speed and memory against the vendor samples and a raw client, bursts through many"
	@echo "            instances, latency per path, herd control; writes docs/benchmarks.md"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dagtrigger needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,gcp,aws,cli]"
	touch $(STAMP)

# The tests' Airflow 2.11 and 3.3, and the oldest 2.x and 3.0.x, which tests/integration/test_compat.py
# checks (tools/compat.py's CI_VERSIONS).
airflow: $(STAMP)
	$(PY) -m tools.local_airflow install 2 3 2.6.3 3.0.6

demo: $(STAMP)
	$(PY) -m tools.local_airflow install 3
	$(PY) -m tools.demo $(if $(KEEP),--keep,)

lint: $(STAMP)
	$(VENV)/bin/ruff check functions tests tools examples bench
	$(VENV)/bin/ruff format --check functions tests tools examples bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit -q

integration: airflow
	$(VENV)/bin/pytest tests/integration -q

# The fault and load tests at full size (make test runs them smaller), with their counts printed.
chaos: airflow
	DAGTRIGGER_CHAOS=full $(VENV)/bin/pytest tests/integration/test_chaos.py -q -s

# Installs each version on first use (seconds to a minute each), then starts and checks them one
# after another (one to three minutes each).
VERSIONS :=
compat: $(STAMP)
	$(PY) -m tools.compat $(VERSIONS)

test: lint typecheck infra-check docs-check airflow
	$(VENV)/bin/pytest -q

# checkov pins old versions of boto3 and friends: it gets a virtualenv of its own, which cfn-lint
# shares (the stamp names the cfn-lint pin, so a new pin rebuilds the virtualenv).
$(CHECKOV_STAMP): | $(STAMP)
	$(PY) -m uv venv --quiet --clear --python $(PY) $(CHECKOV_VENV)
	$(PY) -m uv pip install --quiet --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	touch $@

infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python tools/infra_check.py

# The AWS CLI (v1, from PyPI) and the SAM CLI pin their own botocore and click: a virtualenv of
# their own, like checkov's. gcloud is not on PyPI: docs-check uses the one on PATH.
$(AWS_CLI_STAMP): | $(STAMP)
	$(PY) -m uv venv --quiet --clear --python $(PY) $(AWS_CLI_VENV)
	$(PY) -m uv pip install --quiet --python $(AWS_CLI_VENV)/bin/python awscli==$(AWS_CLI_VERSION) aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

docs-check: $(STAMP) $(AWS_CLI_STAMP)
	$(PY) -m tools.docs_check --aws $(AWS_CLI_VENV)/bin/aws --sam $(AWS_CLI_VENV)/bin/sam

# The Lambda deployment package: build/lambda/ and dist/dagtrigger-lambda.zip (see infra/aws), for
# one architecture and one Python, the function's: `make package-aws ARCH=x86_64` when the
# template's Architecture is x86_64, `RUNTIME=python3.13` when its Runtime is; `WITH_SDK=1` puts
# boto3 and botocore in too (MWAA Serverless needs a newer botocore than a runtime may have). Set
# here, not with ?=, so an ARCH, RUNTIME or WITH_SDK left in the environment is not taken.
ARCH := arm64
RUNTIME := python3.12
WITH_SDK :=
package-aws: $(STAMP)
	$(PY) -m tools.package_aws --arch $(ARCH) --runtime $(RUNTIME) $(if $(WITH_SDK),--with-sdk,)

# What a user feels, each measured side by side with a baseline in one run: docs/benchmarks.md.
# About 5 minutes for cold start, requests, SQS and Airflow 3 throughput; the bursts through 1,
# 4 and 16 instances (each K's events in rounds that take turns with a raw client's) take about
# 25 minutes on Airflow 3, an hour and a half on Airflow 2 (which takes fewer triggers a second)
# and 7 minutes with Airflow on a CPU of its own (split3, 1,000 events);
# faults at scale (make chaos's restart test at 5,000 events, both versions) takes 35 minutes;
# `.venv/bin/python -m bench --only burst2 --burst-events 1000` for less.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,gcp,aws,cli,bench]"
	touch $@

bench: $(BENCH_STAMP)
	$(PY) -m tools.local_airflow install 3
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
