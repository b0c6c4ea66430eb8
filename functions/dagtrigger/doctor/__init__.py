"""`dagtrigger doctor`: check, step by step, that this configuration can trigger runs.

Every check builds what the function builds (Settings.from_env, runtime.build_client and its
auth and transport, the router and plan of dispatch) and makes one call the function would
depend on, so that a ✔ here means the function will get past that step.

    configuration ─ routing (+ one line per planned run with --event)
    credentials ─ [environment: Composer / MWAA] ─ reachable ─ api_version ─ authenticated
    per DAG: exists ─ parses ─ unpaused ─ trigger (--write-check) ─ params

`model` holds the result types, `report` the formatting (pure), `runner` the order; the checks
are grouped by what they look at: `config`, `credentials`, `server`, `access`, `dags`, and
`params` (the conf against a DAG's params, with jsonschema as Airflow validates them). `rest`
serves `dagtrigger api`.
"""

from __future__ import annotations

from dagtrigger.doctor.model import CheckResult, Status
from dagtrigger.doctor.report import exit_code, format_checklist, format_json
from dagtrigger.doctor.runner import run_doctor

__all__ = ["CheckResult", "Status", "exit_code", "format_checklist", "format_json", "run_doctor"]
