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

.PHONY: help demo test unit integration lint typecheck airflow infra-check package-aws clean

help:
	@echo "make demo   start a local Airflow 3, send sample GCS and S3 events through dagtrigger, show the runs"
	@echo "            (KEEP=1 leaves Airflow running until Ctrl-C)"
	@echo "make test   lint, type-check and run every test, against real Airflow 2 and 3"
	@echo "make unit   the fast tests only (no Airflow)"
	@echo "make infra-check   parse infra/ and scan it with checkov, offline"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dagtrigger needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,gcp,aws]"
	touch $(STAMP)

airflow: $(STAMP)
	$(PY) -m tools.local_airflow install 2 3

demo: $(STAMP)
	$(PY) -m tools.local_airflow install 3
	$(PY) -m tools.demo $(if $(KEEP),--keep,)

lint: $(STAMP)
	$(VENV)/bin/ruff check functions tests tools examples
	$(VENV)/bin/ruff format --check functions tests tools examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit -q

integration: airflow
	$(VENV)/bin/pytest tests/integration -q

test: lint typecheck infra-check airflow
	$(VENV)/bin/pytest -q

# checkov pins old versions of boto3 and friends: it gets a virtualenv of its own, which cfn-lint
# shares (the stamp names the cfn-lint pin, so a new pin rebuilds the virtualenv).
$(CHECKOV_STAMP): | $(STAMP)
	$(PY) -m uv venv --quiet --clear --python $(PY) $(CHECKOV_VENV)
	$(PY) -m uv pip install --quiet --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	touch $@

infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python tools/infra_check.py

# The Lambda deployment package: build/lambda/ and dist/dagtrigger-lambda.zip (see infra/aws).
package-aws: $(STAMP)
	$(PY) -m tools.package_aws

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
