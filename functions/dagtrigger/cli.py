"""`dagtrigger`: plan, send and trigger DAG runs from a shell, a CI job or a batch script.

Exit codes: 0 done; 1 Airflow refused a run (permanent); 2 unusable input or configuration;
75 a transient failure outlasted the retries (try again later, like sysexits' EX_TEMPFAIL).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from dagtrigger.dispatch import Report
from dagtrigger.errors import ConfigurationError, DagTriggerError, EventError, RouteError
from dagtrigger.runtime import build_client, build_dispatcher
from dagtrigger.settings import Settings

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75
FINISHED_STATES = ("success", "failed")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except (ConfigurationError, EventError, RouteError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except DagTriggerError as exc:
        _fail(str(exc), EXIT_TEMPFAIL if exc.retryable else EXIT_REFUSED)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagtrigger",
        description="Start Airflow DAG runs from cloud events. Configured by environment "
        "(AIRFLOW_URL, DAG_ID, DAGTRIGGER_ROUTES, ...; see the README).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="show the runs an event would start (no network)",
        description=(
            "Print one JSON object per planned run: dag_id, dag_run_id, conf. The event file may "
            "hold a CloudEvent, a background-function payload or an AWS Lambda event."
        ),
    )
    send = commands.add_parser("send", help="start the runs an event calls for")
    for sub in (plan, send):
        sub.add_argument("event", help="event JSON file, or - for standard input")
        sub.add_argument("--dag-id", help="overrides DAG_ID")
        sub.add_argument("--routes", help="overrides DAGTRIGGER_ROUTES")
    plan.set_defaults(command=_plan)
    send.set_defaults(command=_send)

    trigger = commands.add_parser("trigger", help="start one run of a DAG directly")
    trigger.add_argument("dag_id")
    trigger.add_argument("--conf", default="{}", help="the run's conf as a JSON object")
    trigger.add_argument("--run-id", help="a run id; the same id twice starts one run")
    trigger.add_argument("--wait", action="store_true", help="wait for the run to finish")
    trigger.add_argument("--poll", type=float, default=10.0, help="seconds between checks (--wait)")
    trigger.add_argument(
        "--wait-timeout", type=float, default=3600.0, help="give up waiting after this many seconds"
    )
    trigger.set_defaults(command=_trigger)
    return parser


def _settings(args: argparse.Namespace, extra: Mapping[str, str] | None = None) -> Settings:
    import os

    env = dict(os.environ)
    if getattr(args, "dag_id", None):
        env["DAG_ID"] = args.dag_id
    if getattr(args, "routes", None):
        env["DAGTRIGGER_ROUTES"] = args.routes
    env.update(extra or {})
    return Settings.from_env(env)


def _read_event(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise EventError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EventError(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EventError(f"{source} is not valid JSON: {exc}") from exc


def _plan(args: argparse.Namespace) -> int:
    dispatcher = build_dispatcher(_settings(args))
    plan = dispatcher.plan(_read_event(args.event))
    for run in plan.runs:
        _print(run.as_dict())
    _report_aside(plan.ignored, plan.notes)
    if plan.route_errors:
        _fail(str(plan.route_errors[0]), EXIT_USAGE)
    return 0


def _send(args: argparse.Namespace) -> int:
    dispatcher = build_dispatcher(_settings(args))
    report = dispatcher.handle(_read_event(args.event))
    for outcome in report.outcomes:
        line: dict[str, Any] = {
            "dag_id": outcome.run.dag_id,
            "dag_run_id": outcome.run.dag_run_id,
            "outcome": outcome.outcome,
            "state": outcome.state,
        }
        if outcome.error is not None:
            line["error"] = str(outcome.error)
        _print(line)
    _report_aside(report.plan.ignored, report.plan.notes)
    return _exit_code(report)


def _trigger(args: argparse.Namespace) -> int:
    try:
        conf = json.loads(args.conf)
    except ValueError as exc:
        raise ConfigurationError(f"--conf is not valid JSON: {exc}") from exc
    if not isinstance(conf, dict):
        raise ConfigurationError(
            '--conf must be a JSON object, e.g. --conf \'{"date": "2024-06-01"}\''
        )
    client = build_client(_settings(args, {"DAG_ID": args.dag_id}))
    result = client.trigger(args.dag_id, args.run_id, conf)
    _print(
        {
            "dag_id": args.dag_id,
            "dag_run_id": result.dag_run_id,
            "outcome": result.outcome,
            "state": result.state,
        }
    )
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.wait_timeout
    state = result.state
    while state not in FINISHED_STATES:
        if time.monotonic() > deadline:
            _fail(
                f"run {result.dag_run_id} is still {state} after {args.wait_timeout:g} s",
                EXIT_TEMPFAIL,
            )
        time.sleep(args.poll)
        run = client.get_dag_run(args.dag_id, result.dag_run_id)
        state = None if run is None else run.get("state")
    _print({"dag_id": args.dag_id, "dag_run_id": result.dag_run_id, "state": state})
    return 0 if state == "success" else EXIT_REFUSED


def _exit_code(report: Report) -> int:
    if report.transient_errors:
        return EXIT_TEMPFAIL
    if report.permanent_errors:
        return EXIT_REFUSED
    return 0


def _report_aside(ignored: Sequence[str], notes: Sequence[str]) -> None:
    for reason in ignored:
        print(f"dagtrigger: ignored: {reason}", file=sys.stderr)
    for note in notes:
        print(f"dagtrigger: note: {note}", file=sys.stderr)


def _print(obj: Mapping[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _fail(message: str, code: int) -> NoReturn:
    print(f"dagtrigger: error: {message}", file=sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    sys.exit(main())
