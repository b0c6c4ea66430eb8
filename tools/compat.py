"""`make compat`: dagtrigger against every Airflow version users run, each a real server.

    python -m tools.compat                 # every version in COMPAT_VERSIONS, oldest first
    python -m tools.compat 2.6.3 3.0.6     # some of them

Each version is installed into its own virtualenv (tools/local_airflow.py, pinned by
tools/constraints/), started on loopback with the example DAGs, and driven by the dagtrigger CLI
as a user drives it, one process per command:

- send: one sample GCS event three times: created, duplicate, duplicate, and one run in Airflow;
- trigger --wait: a run started directly reaches success;
- doctor: exit 0 (nothing failed; warnings allowed);
- api GET /dags: the example DAG is listed.

Prints one row per version with each check's ok/FAIL and the seconds it took (install, then start
and checks); exits 1 if anything failed, with what failed below the table. Each server's home and
logs stay in the cache's compat/ directory until that version is checked again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.local_airflow import CACHE, REPO, LocalAirflow, ensure_installed

# The versions MWAA and Composer offer, and the newest of each line.
COMPAT_VERSIONS = (
    "2.6.3",
    "2.7.2",
    "2.8.1",
    "2.9.2",
    "2.9.3",
    "2.10.1",
    "2.10.2",
    "2.10.3",
    "2.10.4",
    "2.10.5",
    "2.11.2",
    "3.0.6",
    "3.1.8",
    "3.2.2",
    "3.3.2",
)
# What `make test` checks besides the tests' own 2.11 and 3.3 (tests/integration/test_compat.py;
# the Makefile's `airflow` target installs them): the oldest of each line.
CI_VERSIONS = ("2.6.3", "3.0.6")
CHECKS = ("install", "start", "send x3", "trigger --wait", "doctor", "api GET /dags")
DAG_ID = "dagtrigger_example"
SAMPLE_EVENT = REPO / "tests" / "events" / "gcs_cloudevent_finalized.json"
CLI_TIMEOUT = 600.0
RUNS = CACHE / "compat"  # each version's Airflow home, logs included, kept until its next run


@dataclass(frozen=True)
class Check:
    """One check's outcome; `detail` says what went wrong (empty when ok)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class VersionReport:
    """Every check run against one Airflow version, with the seconds spent."""

    version: str
    checks: list[Check] = field(default_factory=list)
    install_seconds: float = 0.0
    run_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return len(self.checks) == len(CHECKS) and all(c.ok for c in self.checks)


def cli_environment(airflow: LocalAirflow) -> dict[str, str]:
    """The environment of a deployment pointed at `airflow` as its admin, nothing else inherited
    that would configure dagtrigger or Airflow."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DAGTRIGGER", "MWAA"))
    }
    env.update(
        AIRFLOW_URL=airflow.url,
        AIRFLOW_USERNAME="admin",
        AIRFLOW_PASSWORD=airflow.admin_password,
        DAG_ID=DAG_ID,
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dagtrigger ARGS...` in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dagtrigger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def check_send(airflow: LocalAirflow, env: dict[str, str]) -> Check:
    outcomes: list[str | None] = []
    for _ in range(3):
        done = run_cli(env, "send", str(SAMPLE_EVENT))
        if done.returncode != 0:
            return Check("send x3", False, _failure(done))
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        outcomes.extend(line.get("outcome") for line in lines)
    status, body = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns?limit=1")
    runs = body.get("total_entries") if status == 200 and isinstance(body, dict) else None
    ok = outcomes == ["created", "duplicate", "duplicate"] and runs == 1
    return Check("send x3", ok, "" if ok else f"outcomes {outcomes}, {runs} run(s) in Airflow")


def check_trigger(env: dict[str, str]) -> Check:
    done = run_cli(env, "trigger", DAG_ID, "--wait", "--poll", "2", "--wait-timeout", "300")
    last = done.stdout.strip().splitlines()[-1:] or ["{}"]
    state = json.loads(last[0]).get("state") if last[0].startswith("{") else None
    ok = done.returncode == 0 and state == "success"
    return Check("trigger --wait", ok, "" if ok else f"state {state}; {_failure(done)}")


def check_doctor(env: dict[str, str]) -> Check:
    done = run_cli(env, "doctor", "--json")
    if done.returncode == 0:
        return Check("doctor", True)
    try:
        failed = [
            f"{c['name']}: {c['message']}"
            for c in json.loads(done.stdout)["checks"]
            if c["status"] == "fail"
        ]
    except (ValueError, KeyError, TypeError):
        return Check("doctor", False, _failure(done))
    return Check("doctor", False, "; ".join(failed) or _failure(done))


def check_api(env: dict[str, str]) -> Check:
    done = run_cli(env, "api", "GET", "/dags")
    try:
        listed = [d["dag_id"] for d in json.loads(done.stdout)["dags"]]
    except (ValueError, KeyError, TypeError):
        listed = []
    ok = done.returncode == 0 and DAG_ID in listed
    return Check("api GET /dags", ok, "" if ok else f"DAGs {listed}; {_failure(done)}")


def run_checks(airflow: LocalAirflow) -> list[Check]:
    """send x3, trigger --wait, doctor and api GET /dags against a started `airflow`."""
    env = cli_environment(airflow)
    status, body = airflow.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    if status != 200:
        raise RuntimeError(f"could not unpause {DAG_ID}: {status} {body}")
    return [check_send(airflow, env), check_trigger(env), check_doctor(env), check_api(env)]


def check_version(version: str, workdir: Path) -> VersionReport:
    """Install, start and check Airflow `version`; stops it whatever happens."""
    report = VersionReport(version)
    started = time.monotonic()
    try:
        ensure_installed(version)
    except (OSError, subprocess.CalledProcessError) as exc:
        report.checks.append(Check("install", False, str(exc)))
        return report
    finally:
        report.install_seconds = time.monotonic() - started
    report.checks.append(Check("install", True))
    started = time.monotonic()
    home = workdir / f"airflow-{version}"
    shutil.rmtree(home, ignore_errors=True)
    airflow = LocalAirflow.for_version(version, home)
    try:
        airflow.start(dag_ids=(DAG_ID,))
    except (RuntimeError, TimeoutError) as exc:
        report.checks.append(Check("start", False, str(exc)))
    else:
        report.checks.append(Check("start", True))
        try:
            report.checks.extend(run_checks(airflow))
        except Exception as exc:  # a row of the table, not a traceback, whatever broke
            report.checks.append(Check(CHECKS[len(report.checks)], False, repr(exc)))
    finally:
        airflow.stop()
        report.run_seconds = time.monotonic() - started
    return report


def format_table(reports: Sequence[VersionReport]) -> str:
    """One row per version: each check ok, FAIL or - (not reached), then the seconds."""
    header = ["Airflow", *CHECKS, "install s", "run s"]
    rows = []
    for report in reports:
        done = {c.name: "ok" if c.ok else "FAIL" for c in report.checks}
        rows.append(
            [
                report.version,
                *(done.get(name, "-") for name in CHECKS),
                f"{report.install_seconds:.0f}",
                f"{report.run_seconds:.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


# Printed by each version's own Python: the JSON Schema of the body that triggers a run, as
# Airflow validates it. Airflow 3: the API's pydantic model (extra fields forbidden). Airflow 2: the
# fields its marshmallow schema loads (it raises on unknown and read-only ones).
_TRIGGER_BODY_SCHEMA = r"""
import json
import sys
try:
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
except ImportError:
    from airflow.api_connexion.schemas.dag_run_schema import DAGRunSchema
    types = {"String": "string", "DateTime": "string", "ConfObject": "object"}
    fields = [f for f in DAGRunSchema().fields.values() if not f.dump_only]
    schema = {
        "title": "DAGRunSchema (load)",
        "type": "object",
        "properties": {
            f.data_key or f.name: {"type": [types[type(f).__name__], "null"] if f.allow_none
                                   else types[type(f).__name__]}
            for f in fields
        },
        "additionalProperties": False,
    }
else:
    schema = TriggerDAGRunPostBody.model_json_schema()
with open(sys.argv[1], "w") as out:  # not stdout, where Airflow logs
    out.write(json.dumps(schema, indent=2, sort_keys=True) + "\n")
"""


def trigger_body_schema(version: str) -> str:
    """The JSON Schema Airflow `version` checks a trigger body against (installing it)."""
    venv = ensure_installed(version)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    with tempfile.TemporaryDirectory() as home:
        written = Path(home) / "schema.json"
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", _TRIGGER_BODY_SCHEMA, str(written)],
            env={**env, "AIRFLOW_HOME": home},
            capture_output=True,
            check=True,
        )
        return written.read_text()


def _failure(done: subprocess.CompletedProcess[str]) -> str:
    output = (done.stderr.strip() or done.stdout.strip())[-500:]
    return f"exit {done.returncode}: {output}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make compat", description=__doc__.split("\n")[0])
    parser.add_argument(
        "versions", nargs="*", default=COMPAT_VERSIONS, help="Airflow versions (default: all)"
    )
    parser.add_argument(
        "--write-schemas",
        metavar="DIR",
        type=Path,
        help="instead, write each version's trigger body schema to DIR/trigger-body-VERSION.json",
    )
    args = parser.parse_args(argv)
    if args.write_schemas:
        for version in args.versions:
            target = args.write_schemas / f"trigger-body-{version}.json"
            target.write_text(trigger_body_schema(version))
            print(target)
        return 0
    reports = []
    for version in args.versions:
        print(f"Airflow {version} ...", file=sys.stderr, flush=True)
        reports.append(check_version(version, RUNS))
    print(format_table(reports))
    for report in reports:
        for check in report.checks:
            if not check.ok:
                print(f"\nAirflow {report.version}, {check.name}: {check.detail}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
