"""Amazon MWAA Serverless: a workflow run started with `StartWorkflowRun`, not Airflow's REST API.

A run is started once per event: its `ClientToken` comes from the run id (and so from the event's
identity) and the workflow, and the service answers a repeated token with the run it already
started. Each answer is classified once, here, into the errors every target raises:

    ThrottlingException             throttled       wait RetryAfterSeconds, retry in the deadline
    ServiceQuotaExceededException   throttled       too many runs at once: retry, then redeliver
    InternalServerException         server-error    retry (RetryAfterSeconds when given)
    OperationTimeoutException       timeout         retry
    ConflictException (a run)       -               the token's run exists: a duplicate
    ConflictException (workflow)    refused         the workflow cannot start runs now
    ValidationException             conf-rejected   OverrideParameters refused (names the field)
                                    rejected        anything else refused as sent
    ResourceNotFoundException       dag-not-found   no such workflow
    AccessDeniedException           authorization   names the IAM statement the role lacks

boto3 is imported only when a client is built.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dagtrigger.airflow.answers import error_of, kind_of_status
from dagtrigger.airflow.client import (
    DEFAULT_CONCURRENCY,
    AssetEventResult,
    Outcome,
    TriggerResult,
)
from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.airflow.throttle import Throttle
from dagtrigger.aws import boto3_client, boto_error_code
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    ConfRejectedError,
    DagNotFoundError,
    DagTriggerError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.run_id import build_client_token

if TYPE_CHECKING:
    from dagtrigger.assets import PlannedAssetEvent

SERVICE = "mwaa-serverless"  # botocore's name; IAM's prefix and SigV4's signing name differ
IAM_PREFIX = "airflow-serverless"
# WorkflowArn in botocore's mwaa-serverless model (2024-07-26)
WORKFLOW_ARN = re.compile(
    r"arn:aws(?:-(?:cn|us-gov|iso|iso-b|iso-e|iso-f))?:airflow-serverless:"
    r"([a-z]{2}-(?:[a-z]+-)+[0-9]):([0-9]{12}):workflow/([a-zA-Z0-9][a-zA-Z0-9.\-_]{0,254}-[a-zA-Z0-9]{10})"
)
WORKFLOW_NAME = re.compile(r"[a-zA-Z0-9]+[a-zA-Z0-9.\-_]*")  # NameString, 1 to 255 long
# A run the service answers for a repeated ClientToken started before this request was sent;
# StartedAt may be cut to the second, and the clocks of Lambda and AWS agree to well within it.
REPLAY_TOLERANCE = 1.0
# The service's run states, as the states of an Airflow DAG run (what `trigger --wait` reads).
_STATES = {
    "STARTING": "queued",
    "QUEUED": "queued",
    "RUNNING": "running",
    "STOPPING": "running",
    "SUCCESS": "success",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "STOPPED": "failed",
}
_TRANSIENT = {
    "ThrottlingException": ErrorKind.THROTTLED,
    "ServiceQuotaExceededException": ErrorKind.THROTTLED,
    "InternalServerException": ErrorKind.SERVER_ERROR,
    "OperationTimeoutException": ErrorKind.TIMEOUT,
}
_PRINCIPAL = re.compile(r"User: (\S+) is not authorized")


def workflow_label(workflow: str) -> str:
    """What runs name a workflow by: its ARN's resource id (NAME-SUFFIX), else the name given."""
    match = WORKFLOW_ARN.fullmatch(workflow)
    return match.group(3) if match else workflow


def serverless_client(timeout: float) -> Any:
    """A boto3 `mwaa-serverless` client whose retries are left to dagtrigger's own policy.

    AWS_ENDPOINT_URL_MWAA_SERVERLESS points it at a VPC endpoint. A botocore without the service
    (the Lambda runtime's may be older) is a configuration error naming the fix.
    """
    return boto3_client(
        SERVICE,
        "MWAA_SERVERLESS_WORKFLOW",
        timeout,
        too_old_fix="give the function a boto3 and botocore that have it: on Lambda, deploy the "
        "package built with make package-aws WITH_SDK=1 (README: Amazon MWAA Serverless); "
        "elsewhere, pip install -U boto3.",
    )


def role_statement(action: str, resource: str) -> str:
    return json.dumps({"Effect": "Allow", "Action": f"{IAM_PREFIX}:{action}", "Resource": resource})


class WorkflowClient:
    """Starts and reads runs of MWAA Serverless workflows; one instance serves every event.

    Runs name their workflow by ARN, by its ARN's resource id, or by name; a name is looked up
    with ListWorkflows once, then remembered.
    """

    def __init__(
        self,
        client: Any,
        workflow: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        throttle: Throttle | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        self.retry = retry or RetryPolicy()
        self.throttle = throttle or Throttle(rate=None, concurrency=DEFAULT_CONCURRENCY)
        self.description = "MWAA Serverless"
        self._client = client
        self._errors = (ClientError, ParamValidationError, BotoCoreError)
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._arns: dict[str, str] = {}
        if workflow is not None and WORKFLOW_ARN.fullmatch(workflow):
            self._arns[workflow_label(workflow)] = workflow

    # ---- what the dispatcher and the CLI call ----

    def trigger(
        self,
        dag_id: str,
        dag_run_id: str | None,
        conf: Mapping[str, Any],
        *,
        note: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> TriggerResult:
        """Start the workflow's run for `dag_run_id`, or find the one its token already started.

        `dag_id` names the workflow; `conf` becomes OverrideParameters; `note` has no place here.
        """
        policy = retry or self.retry
        arn = call_with_retries(
            lambda: self.workflow_arn(dag_id), policy, what=f"finding workflow {dag_id!r}"
        )
        arguments: dict[str, Any] = {"WorkflowArn": arn, "OverrideParameters": dict(conf)}
        if dag_run_id is not None:
            arguments["ClientToken"] = build_client_token(dag_run_id, arn)
        attempts = 0
        uncertain = False  # an earlier attempt may have started the run without our hearing back
        first_sent: float | None = None

        def attempt() -> TriggerResult:
            nonlocal attempts, uncertain, first_sent
            attempts += 1
            if first_sent is None:
                first_sent = self._wall_clock()
            try:
                answer = self._call("StartWorkflowRun", arn, arguments)
            except _DuplicateRun as duplicate:
                outcome = Outcome.CREATED if uncertain else Outcome.DUPLICATE
                run = {"RunId": duplicate.run_id, "WorkflowArn": arn}
                return self._result(outcome, dag_id, arguments, run, attempts)
            except TransientTriggerError as exc:
                uncertain = uncertain or exc.kind is not ErrorKind.THROTTLED
                raise
            replayed = _started_before(answer.get("StartedAt"), first_sent - REPLAY_TOLERANCE)
            outcome = Outcome.DUPLICATE if replayed and not uncertain else Outcome.CREATED
            return self._result(
                outcome, dag_id, arguments, {**answer, "WorkflowArn": arn}, attempts
            )

        return call_with_retries(
            attempt, policy, what=f"starting workflow {dag_id!r} (run {dag_run_id})"
        )

    def get_dag_run(self, dag_id: str, dag_run_id: str) -> Mapping[str, Any] | None:
        """GetWorkflowRun, with `state` as Airflow names it; None when there is no such run."""
        arn = self.workflow_arn(dag_id)
        try:
            answer = self._call("GetWorkflowRun", arn, {"WorkflowArn": arn, "RunId": dag_run_id})
        except DagNotFoundError:
            return None
        status = answer.get("RunDetail", {}).get("RunState")
        return {**answer, "dag_run_id": dag_run_id, "state": _STATES.get(str(status), status)}

    def record_asset_event(
        self, planned: PlannedAssetEvent, *, retry: RetryPolicy | None = None
    ) -> AssetEventResult:
        """MWAA Serverless has no REST API to record asset events through."""
        raise ConfigurationError(
            f'route "{planned.route}" records an event of asset {planned.asset!r}, and MWAA '
            "Serverless has no API for asset events",
            fix="record asset events in an Airflow (AIRFLOW_URL, COMPOSER_ENVIRONMENT or "
            'MWAA_ENVIRONMENT), or start the workflow with the route\'s "dag_id" instead.',
        )

    # ---- workflows ----

    def workflow_arn(self, workflow: str) -> str:
        """The ARN of a workflow named by ARN, by resource id, or by name (ListWorkflows, once)."""
        if WORKFLOW_ARN.fullmatch(workflow):
            return workflow
        with self._lock:
            known = self._arns.get(workflow)
        if known is not None:
            return known
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            page = self._call("ListWorkflows", "*", {"NextToken": token} if token else {})
            for summary in page.get("Workflows", []):
                arn = str(summary.get("WorkflowArn", ""))
                found.setdefault(str(summary.get("Name", "")), arn)
                found.setdefault(workflow_label(arn), arn)
            token = page.get("NextToken")
            if workflow in found or not token:
                break
        with self._lock:
            self._arns.update(found)
        if workflow not in found:
            names = sorted(n for n, arn in found.items() if n and workflow_label(arn) != n)
            raise DagNotFoundError(
                f"MWAA Serverless has no workflow named {workflow!r} in this account and region "
                f"(ListWorkflows: {', '.join(names[:10]) or 'none'})",
                fix="check MWAA_SERVERLESS_WORKFLOW or the route's dag_id, and the function's "
                "region (aws mwaa-serverless list-workflows), or give the workflow's ARN.",
                kind=ErrorKind.DAG_NOT_FOUND,
            )
        return found[workflow]

    def get_workflow(self, workflow: str) -> Mapping[str, Any]:
        """GetWorkflow: name, status, definition, role; DagNotFoundError when there is none."""
        arn = self.workflow_arn(workflow)
        return self._call("GetWorkflow", arn, {"WorkflowArn": arn})

    def probe_start(self, workflow: str) -> Mapping[str, Any] | None:
        """StartWorkflowRun for a workflow version that cannot exist: IAM decides before the
        service looks for it, so an AccessDeniedException means the role may not start runs.
        Returns the answer when, against expectation, a run was started."""
        arn = self.workflow_arn(workflow)
        arguments = {"WorkflowArn": arn, "WorkflowVersion": "dagtrigger-doctor-no-such-version"}
        try:
            return self._call("StartWorkflowRun", arn, arguments)
        except PermanentTriggerError as exc:
            if exc.kind in (ErrorKind.AUTHORIZATION, ErrorKind.AUTHENTICATION):
                raise
            return None

    # ---- one call, classified ----

    def _call(self, operation: str, arn: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        client_error, validation_error, botocore_error = self._errors
        method = getattr(self._client, _snake(operation))
        with self.throttle.slot():
            try:
                answer = method(**arguments)
            except client_error as exc:
                error = classify_error(exc, operation, arn, arguments)
                if error.kind is ErrorKind.THROTTLED:
                    self.throttle.throttled(error.retry_after)
                raise error from exc
            except validation_error as exc:  # refused by botocore before it was sent
                raise ConfRejectedError(
                    f"MWAA Serverless {operation} for {arn} cannot be sent: {exc}",
                    fix=_PARAMETERS_FIX,
                ) from exc
            except botocore_error as exc:  # endpoint unreachable, timeouts, dropped connections
                kind = ErrorKind.TIMEOUT if "timeout" in type(exc).__name__.lower() else None
                raise TransientTriggerError(
                    f"MWAA Serverless {operation} for {arn}: {exc}",
                    kind=kind or ErrorKind.UNREACHABLE,
                ) from exc
        self.throttle.succeeded()
        return dict(answer)

    def _result(
        self,
        outcome: Outcome,
        workflow: str,
        arguments: Mapping[str, Any],
        answer: Mapping[str, Any],
        attempts: int,
    ) -> TriggerResult:
        run_id = str(answer.get("RunId"))
        status = answer.get("Status")
        run = {
            **{k: v for k, v in answer.items() if k != "ResponseMetadata"},
            "dag_run_id": run_id,
            "state": _STATES.get(str(status), status),
            "ClientToken": arguments.get("ClientToken"),
        }
        return TriggerResult(outcome, workflow, run_id, run, attempts)


class _DuplicateRun(DagTriggerError):
    """ConflictException about a run: the ClientToken's run exists already."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__(f"the run already exists ({run_id})")
        self.run_id = run_id


_PARAMETERS_FIX = (
    "Make the run's conf (OverrideParameters) what the workflow accepts: the route's conf, or "
    '"replace_conf": true with a conf of the workflow\'s own parameters.'
)


def classify_error(
    exc: Any, operation: str, arn: str, arguments: Mapping[str, Any] | None = None
) -> DagTriggerError:
    """The error for one ClientError of the service, decided from its code and members."""
    code = boto_error_code(exc)
    details: Mapping[str, Any] = exc.response
    error = details.get("Error", {})
    message = str(error.get("Message") or details.get("Message") or details.get("message") or "")
    status = details.get("ResponseMetadata", {}).get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    what = f"MWAA Serverless {operation} for {arn}"
    if code in _TRANSIENT:
        after = _seconds(details.get("RetryAfterSeconds", error.get("RetryAfterSeconds")))
        quota = details.get("QuotaCode", error.get("QuotaCode"))
        fix = None
        if code == "ServiceQuotaExceededException":
            fix = (
                f"If it persists, ask for a higher quota{f' ({quota})' if quota else ''} in "
                "Service Quotas, or lower DAGTRIGGER_CONCURRENCY."
            )
        return error_of(
            _TRANSIENT[code], f"{what}: {code}: {message}", fix, status=status, retry_after=after
        )
    if code == "ConflictException":
        resource_type = str(details.get("ResourceType", error.get("ResourceType", "")))
        if operation == "StartWorkflowRun" and resource_type.lower() != "workflow":
            return _DuplicateRun(details.get("ResourceId", error.get("ResourceId")))
        return PermanentTriggerError(
            f"{what} was refused: {code}: {message}",
            fix=f"Check the workflow's state (`aws mwaa-serverless get-workflow --workflow-arn "
            f"{arn}`): a workflow being deleted or disabled starts no runs.",
            kind=ErrorKind.REFUSED,
            status=status,
        )
    if code == "ResourceNotFoundException":
        return DagNotFoundError(
            f"MWAA Serverless workflow {arn} was not found ({message})",
            fix="check MWAA_SERVERLESS_WORKFLOW or the route's dag_id, and the function's region "
            "(aws mwaa-serverless list-workflows).",
            status=status,
        )
    if code == "AccessDeniedException":
        principal = _PRINCIPAL.search(message)
        who = f"the role {principal.group(1)}" if principal else "the function's role"
        return AuthorizationError(
            f"{what} was refused to {who} ({code}: {message})",
            fix=f"Allow {who} {role_statement(operation, arn)} (see the README, Amazon MWAA "
            "Serverless: IAM).",
            status=status,
        )
    if code == "ValidationException":
        fields = details.get("FieldList", error.get("FieldList")) or []
        named = [f"{f.get('Name')}: {f.get('Message')}" for f in fields if isinstance(f, Mapping)]
        about = "; ".join(named) or message
        parameters = "OverrideParameters" in about or "parameter" in about.lower()
        if operation == "StartWorkflowRun" and (parameters or not named):
            keys = ", ".join(sorted((arguments or {}).get("OverrideParameters", {}))) or "none"
            return ConfRejectedError(
                f"{what} refused the run's parameters ({about}; parameters sent: {keys})",
                fix=_PARAMETERS_FIX,
                status=status,
            )
        return error_of(ErrorKind.REJECTED, f"{what} was refused: {code}: {about}", status=status)
    kind = (kind_of_status(status) if status else None) or ErrorKind.REFUSED
    return error_of(kind, f"{what}: {code}: {message}", status=status)


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def _started_before(started: Any, moment: float) -> bool:
    return isinstance(started, datetime.datetime) and started.timestamp() < moment


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
