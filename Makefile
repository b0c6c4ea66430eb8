# Everything a fresh machine needs is installed from this repo's own files.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help demo test unit integration lint typecheck airflow clean

help:
	@echo "make demo   start a local Airflow 3, send sample GCS and S3 events through dagtrigger, show the runs"
	@echo "            (KEEP=1 leaves Airflow running until Ctrl-C)"
	@echo "make test   lint, type-check and run every test, against real Airflow 2 and 3"
	@echo "make unit   the fast tests only (no Airflow)"

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

test: lint typecheck airflow
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
