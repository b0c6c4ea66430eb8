"""`dagtrigger`: plan, send and trigger DAG runs from a shell, a CI job or a batch script;
`doctor` checks a deployment step by step, `api` calls any Airflow REST endpoint as it would.

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
from dagtrigger.errors import ConfigurationError, DagTriggerError, ErrorKind, EventError
from dagtrigger.events.payload import load_json
from dagtrigger.runtime import build_client, build_dispatcher, build_target
from dagtrigger.settings import Settings

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75
_USAGE_KINDS = frozenset(
    {
        ErrorKind.CONFIGURATION,
        ErrorKind.REDIRECT,
        ErrorKind.UNTRUSTED_CERTIFICATE,
        ErrorKind.EVENT,
        ErrorKind.ROUTE,
    }
)
FINISHED_STATES = ("success", "failed")
MAX_WAIT_SECONDS = 7 * 24 * 3600


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except DagTriggerError as exc:
        _fail(str(exc), _exit_code_for(exc))


def _exit_code_for(error: DagTriggerError) -> int:
    """75 for what may pass, 2 for what the input or the configuration must change, else 1."""
    if error.retryable:
        return EXIT_TEMPFAIL
    return EXIT_USAGE if error.kind in _USAGE_KINDS else EXIT_REFUSED


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

    trigger = commands.add_parser(
        "trigger", help="start one run of a DAG (or MWAA Serverless workflow) directly"
    )
    trigger.add_argument("dag_id", help="the DAG id; on MWAA Serverless the workflow's name or ARN")
    trigger.add_argument("--conf", default="{}", help="the run's conf as a JSON object")
    trigger.add_argument("--run-id", help="a run id; the same id twice starts one run")
    trigger.add_argument("--wait", action="store_true", help="wait for the run to finish")
    trigger.add_argument("--poll", type=float, default=10.0, help="seconds between checks (--wait)")
    trigger.add_argument(
        "--wait-timeout", type=float, default=3600.0, help="give up waiting after this many seconds"
    )
    trigger.set_defaults(command=_trigger)

    doctor = commands.add_parser(
        "doctor",
        help="check step by step that this configuration can trigger runs",
        description=(
            "Check the configuration, credentials, web server, API version, permissions and DAGs "
            "the function depends on, with the function's own code; print a checklist with the "
            "fix for each problem. Exit 0 when nothing failed (warnings allowed), 1 otherwise."
        ),
    )
    doctor.add_argument(
        "--event", help="an event JSON file (or -): also show and check the runs it would start"
    )
    doctor.add_argument(
        "--write-check",
        action="store_true",
        help="probe the permission to trigger each DAG with a request Airflow refuses (no run)",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.add_argument("--dag-id", help="overrides DAG_ID")
    doctor.add_argument("--routes", help="overrides DAGTRIGGER_ROUTES")
    doctor.set_defaults(command=_doctor)

    api = commands.add_parser(
        "api",
        help="call any Airflow REST endpoint through the configured auth path",
        description=(
            "One authenticated call, e.g. `dagtrigger api GET /dags` or `dagtrigger api POST "
            '/variables --data \'{"key": "k", "value": "v"}\'`. PATH is given without /api/v1 '
            "or /api/v2 (a prefix given is replaced by the server's). Prints the answer; exit 0 "
            "on 2xx, 1 otherwise."
        ),
    )
    api.add_argument("method", type=str.upper, choices=("GET", "POST", "PATCH", "PUT", "DELETE"))
    api.add_argument("path", help="e.g. /dags, /variables/my_key, /dags/ID/dagRuns/RUN_ID")
    api.add_argument("--data", help="the JSON body, or @FILE to read it from a file")
    api.set_defaults(command=_api)
    return parser


def _settings(args: argparse.Namespace, extra: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(_environment(args, extra))


def _environment(
    args: argparse.Namespace, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    import os

    env = dict(os.environ)
    if getattr(args, "dag_id", None):
        # On MWAA Serverless the DAG is a workflow: --dag-id (or trigger's) names another one.
        serverless = env.get("MWAA_SERVERLESS_WORKFLOW", "").strip()
        env["MWAA_SERVERLESS_WORKFLOW" if serverless else "DAG_ID"] = args.dag_id
    if getattr(args, "routes", None):
        env["DAGTRIGGER_ROUTES"] = args.routes
    env.update(extra or {})
    return env


def _read_event(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise EventError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EventError(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        return load_json(text)  # strict: no NaN, and deep nesting is an error, not a traceback
    except ValueError as exc:
        raise EventError(f"{source} is not valid JSON: {exc}") from exc


def _plan(args: argparse.Namespace) -> int:
    dispatcher = build_dispatcher(_settings(args))
    plan = dispatcher.plan(_read_event(args.event))
    for run in plan.runs:
        _print(run.as_dict())
    for planned in plan.asset_events:
        _print(planned.as_dict())
    _report_aside(plan.ignored, plan.notes)
    if plan.route_errors:
        first = plan.route_errors[0]
        _fail(str(first), _exit_code_for(first))
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
    for recorded in report.asset_outcomes:
        _print(recorded.as_dict())
    _report_aside(report.plan.ignored, report.plan.notes)
    return _exit_code(report)


_CONF_EXAMPLE = 'e.g. --conf \'{"date": "2024-06-01"}\''


def _trigger(args: argparse.Namespace) -> int:
    try:
        conf = load_json(args.conf)
    except ValueError as exc:
        raise ConfigurationError(f"--conf is not valid JSON ({exc})", fix=_CONF_EXAMPLE) from exc
    if not isinstance(conf, dict):
        raise ConfigurationError("--conf must be a JSON object", fix=_CONF_EXAMPLE)
    poll = _seconds("--poll", args.poll)
    wait_timeout = _seconds("--wait-timeout", args.wait_timeout)
    client = build_target(_settings(args))
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
    deadline = time.monotonic() + wait_timeout
    state = result.state
    while state not in FINISHED_STATES:
        if time.monotonic() > deadline:
            _fail(
                f"run {result.dag_run_id} is still {state} after {wait_timeout:g} s", EXIT_TEMPFAIL
            )
        time.sleep(poll)
        run = client.get_dag_run(args.dag_id, result.dag_run_id)
        state = None if run is None else run.get("state")
    _print({"dag_id": args.dag_id, "dag_run_id": result.dag_run_id, "state": state})
    return 0 if state == "success" else EXIT_REFUSED


def _doctor(args: argparse.Namespace) -> int:
    from dagtrigger.doctor import exit_code, format_checklist, format_json, run_doctor
    from dagtrigger.doctor.report import ASCII_SYMBOLS, SYMBOLS, can_encode

    event = _read_event(args.event) if args.event else None
    results = run_doctor(_environment(args), event=event, write_check=args.write_check)
    if args.json:
        print(format_json(results), flush=True)
    else:
        symbols = SYMBOLS if can_encode(sys.stdout.encoding) else ASCII_SYMBOLS
        print(format_checklist(results, symbols), flush=True)
    return exit_code(results)


def _api(args: argparse.Namespace) -> int:
    import os

    from dagtrigger.doctor.rest import call_rest

    body = None if args.data is None else _read_data(args.data)
    # Settings want a DAG to trigger; this command triggers nothing, so any valid id will do.
    named = os.environ.get("DAG_ID", "").strip() or os.environ.get("DAGTRIGGER_ROUTES", "").strip()
    client = build_client(_settings(args, None if named else {"DAG_ID": "dagtrigger_api"}))
    response = call_rest(client, args.method, args.path, body)
    payload = response.json()
    if payload is not None:
        print(json.dumps(payload, indent=2), flush=True)
    elif response.body:
        print(response.body.decode("utf-8", "replace"), flush=True)
    if 200 <= response.status < 300:
        return 0
    print(f"dagtrigger: HTTP {response.status} from {args.method} {args.path}", file=sys.stderr)
    return EXIT_REFUSED


def _seconds(option: str, value: float) -> float:
    """`value` if time.sleep and a deadline can use it: NaN, infinity or <= 0 would raise or hang."""
    if not 0 < value <= MAX_WAIT_SECONDS:
        raise ConfigurationError(
            f"{option} {value:g} is not a number of seconds between 0 and {MAX_WAIT_SECONDS} "
            "(a week)",
            fix=f"e.g. {option} 10.",
        )
    return value


def _read_data(data: str) -> Any:
    text = data
    if data.startswith("@"):
        try:
            text = open(data[1:], encoding="utf-8").read()  # noqa: SIM115
        except OSError as exc:
            raise ConfigurationError(
                f"--data {data}: {exc.strerror or exc}",
                fix="name a readable JSON file after @, or give the JSON itself",
            ) from exc
    try:
        return load_json(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"--data is not valid JSON ({exc})", fix='e.g. --data \'{"key": "k", "value": "v"}\''
        ) from exc


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
