"""A local stand-in for Amazon MWAA Serverless that boto3 talks to unmodified.

    with MwaaServerlessStandin([Workflow("etl")]) as service:
        client = boto3.client("mwaa-serverless", endpoint_url=service.url, ...)
        # or, for code that builds its own client: monkeypatch each of service.client_env()

The API is botocore's `mwaa-serverless` model (2024-07-26): AWS JSON 1.0, `POST /` with
`X-Amz-Target: AmazonMWAAServerless.<Operation>`, SigV4 for signing name `airflow-serverless`
(verified with botocore's own signer: `mwaa_sigv4`). Operations kept here:
- StartWorkflowRun `{WorkflowArn, ClientToken, OverrideParameters, WorkflowVersion}` →
  `{RunId, Status: STARTING, StartedAt}`. A ClientToken seen before for the workflow answers the
  run it started, as it is now (the run, its StartedAt, its current status), when the parameters
  are the same; with other parameters, 409 ConflictException naming the run (AWS's usual answer
  to a reused token, assumed here). Runs are kept: `runs`, `runs_of(arn)`.
- GetWorkflowRun `{WorkflowArn, RunId}` → `{..., RunDetail: {RunState, ...}}`; a run is STARTING,
  then RUNNING, then SUCCESS after `run_seconds` (or `finish(run_id, state)`).
- GetWorkflow `{WorkflowArn}`; ListWorkflows `{MaxResults, NextToken}`, two workflows a page.

Errors are AWS JSON 1.0 errors: `x-amzn-ErrorType` and the body's `__type` name the code, the
body holds the modeled members. The model gives no status codes; these are assumed:
| code | status | when |
|---|---|---|
| AccessDeniedException | 403 | a caller `allowed` does not list for the operation (IAM's usual wording) |
| ResourceNotFoundException | 404 | no such workflow, run or workflow version |
| ValidationException | 400 | a parameter the workflow does not declare (FieldList names it), bad ARN |
| ConflictException | 409 | a reused ClientToken with other parameters (ResourceType WorkflowRun) |
| ThrottlingException | 429 | `inject("ThrottlingException", retry_after=...)`: RetryAfterSeconds |
| others | 402/500/504 | `inject(code)`: ServiceQuotaExceeded, InternalServer, OperationTimeout |
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.standins._http import LoopbackServer, Request, Response, json_response
from tests.standins.mwaa_sigv4 import authenticate

DEFAULT_ACCESS_KEY = "AKIDSERVERLESS"
DEFAULT_SECRET_KEY = "dagtrigger-serverless-standin-secret"
SIGNING_NAME = "airflow-serverless"
TARGET_PREFIX = "AmazonMWAAServerless."
_STATUS = {
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ValidationException": 400,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 402,
    "InternalServerException": 500,
    "OperationTimeoutException": 504,
}
_ARN = re.compile(
    r"arn:aws:airflow-serverless:([a-z]{2}-(?:[a-z]+-)+[0-9]):([0-9]{12}):workflow/(\S+)"
)


@dataclass(frozen=True)
class Workflow:
    """A workflow; `parameters` are the names it declares (None: it takes any)."""

    name: str
    parameters: frozenset[str] | None = None
    suffix: str = "a1b2c3d4e5"
    status: str = "READY"
    definition: str = ""


@dataclass
class Run:
    run_id: str
    arn: str
    token: str | None
    parameters: dict[str, Any]
    started: float
    state: str = "STARTING"
    finished: float | None = None


@dataclass
class _Injection:
    code: str
    times: int
    when: Callable[[Mapping[str, Any]], bool] | None
    retry_after: int | None
    members: dict[str, Any] = field(default_factory=dict)


class MwaaServerlessStandin(LoopbackServer):
    def __init__(
        self,
        workflows: Iterable[Workflow],
        *,
        region: str = "eu-west-1",
        account: str = "123456789012",
        credentials: dict[str, str] | None = None,
        allowed: Mapping[str, set[str]] | None = None,
        run_seconds: float = 0.3,
    ) -> None:
        super().__init__()
        self.region = region
        self.account = account
        self.credentials = dict(credentials or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY})
        self.allowed = allowed  # access key → operations it may call; None: every key, all
        self.run_seconds = run_seconds
        self.workflows: dict[str, Workflow] = {}
        self.workflows = {self.arn(w): w for w in workflows}
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (operation, body) of every call
        self._runs: dict[str, Run] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._injections: list[_Injection] = []
        self._lock = threading.Lock()

    # ---- what tests set and read ----

    def arn(self, workflow: Workflow | str) -> str:
        """The ARN of a workflow, or of the workflow of that name."""
        if isinstance(workflow, str):
            workflow = next(w for w in self.workflows.values() if w.name == workflow)
        return (
            f"arn:aws:airflow-serverless:{self.region}:{self.account}:workflow/"
            f"{workflow.name}-{workflow.suffix}"
        )

    def client_env(self, access_key: str = DEFAULT_ACCESS_KEY) -> dict[str, str]:
        """Environment variables under which a bare `boto3.client("mwaa-serverless")` talks to this."""
        return {
            "AWS_ENDPOINT_URL_MWAA_SERVERLESS": self.url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials[access_key],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def inject(
        self,
        code: str,
        *,
        times: int = 1,
        when: Callable[[Mapping[str, Any]], bool] | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` StartWorkflowRun calls (those `when` accepts) with `code`."""
        with self._lock:
            self._injections.append(_Injection(code, times, when, retry_after))

    @property
    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def runs_of(self, workflow: Workflow | str) -> list[Run]:
        arn = self.arn(workflow)
        return [run for run in self.runs if run.arn == arn]

    def operations(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for operation, body in self.calls if operation == name]

    def finish(self, run_id: str, state: str) -> None:
        with self._lock:
            run = self._runs[run_id]
            run.state, run.finished = state, time.time()

    # ---- the API ----

    def handle(self, request: Request) -> Response:
        caller = authenticate(request, self.credentials, SIGNING_NAME, self.region)
        if isinstance(caller, Response):  # AWS JSON 1.0 names the code in the body's __type too
            refusal = json.loads(caller.body)
            code = caller.headers["x-amzn-ErrorType"]
            return error(code, str(refusal.get("message")), status=caller.status)
        target = request.header("X-Amz-Target") or ""
        operation = target.removeprefix(TARGET_PREFIX)
        handler = _OPERATIONS.get(operation) if target.startswith(TARGET_PREFIX) else None
        if request.method != "POST" or request.path != "/" or handler is None:
            return error("UnknownOperationException", f"Unknown operation {target}", status=400)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return error("SerializationException", "Request body must be a JSON object", status=400)
        with self._lock:
            self.calls.append((operation, body))
        if self.allowed is not None and operation not in self.allowed.get(caller, set()):
            resource = body.get("WorkflowArn", "*")
            return error(
                "AccessDeniedException",
                f"User: arn:aws:iam::{self.account}:user/{caller} is not authorized to perform: "
                f"airflow-serverless:{operation} on resource: {resource} because no "
                "identity-based policy allows the airflow-serverless:"
                f"{operation} action",
            )
        return handler(self, body)

    def _workflow(self, body: Mapping[str, Any]) -> tuple[str, Workflow] | Response:
        arn = body.get("WorkflowArn")
        if not isinstance(arn, str) or _ARN.fullmatch(arn) is None:
            return error(
                "ValidationException",
                "1 validation error detected",
                Reason="fieldValidationFailed",
                FieldList=[{"Name": "WorkflowArn", "Message": "not a workflow ARN"}],
            )
        workflow = self.workflows.get(arn)
        if workflow is None:
            return error(
                "ResourceNotFoundException",
                f"Workflow {arn} not found",
                ResourceId=arn,
                ResourceType="Workflow",
            )
        return arn, workflow

    def _start_workflow_run(self, body: dict[str, Any]) -> Response:
        found = self._workflow(body)
        if isinstance(found, Response):
            return found
        arn, workflow = found
        injected = self._injected(body)
        if injected is not None:
            return injected
        version = body.get("WorkflowVersion")
        if version is not None and version != "1":
            return error(
                "ResourceNotFoundException",
                f"Workflow version {version} not found",
                ResourceId=str(version),
                ResourceType="WorkflowVersion",
            )
        parameters = body.get("OverrideParameters") or {}
        undeclared = sorted(
            set(parameters) - workflow.parameters if workflow.parameters is not None else ()
        )
        if undeclared:
            return error(
                "ValidationException",
                "Override parameters are not declared by the workflow",
                Reason="fieldValidationFailed",
                FieldList=[
                    {"Name": f"OverrideParameters.{name}", "Message": "not a workflow parameter"}
                    for name in undeclared
                ],
            )
        token = body.get("ClientToken")
        with self._lock:
            existing = self._runs.get(self._tokens.get((arn, token), "")) if token else None
            if existing is not None:
                if existing.parameters != parameters:
                    return error(
                        "ConflictException",
                        "A run with this client token exists with other parameters",
                        ResourceId=existing.run_id,
                        ResourceType="WorkflowRun",
                    )
                run = existing
            else:
                run = Run(uuid.uuid4().hex[:20], arn, token, parameters, time.time())
                self._runs[run.run_id] = run
                if token:
                    self._tokens[(arn, token)] = run.run_id
            state = self._state(run)
        return answer({"RunId": run.run_id, "Status": state, "StartedAt": run.started})

    def _get_workflow_run(self, body: dict[str, Any]) -> Response:
        found = self._workflow(body)
        if isinstance(found, Response):
            return found
        arn, _ = found
        with self._lock:
            run = self._runs.get(str(body.get("RunId")))
            if run is None or run.arn != arn:
                return error(
                    "ResourceNotFoundException",
                    f"Run {body.get('RunId')} not found",
                    ResourceId=str(body.get("RunId")),
                    ResourceType="WorkflowRun",
                )
            state = self._state(run)
        detail = {
            "WorkflowArn": arn,
            "RunId": run.run_id,
            "RunType": "ON_DEMAND",
            "CreatedAt": run.started,
            "StartedOn": run.started,
            "RunState": state,
        }
        if run.finished is not None:
            detail["CompletedOn"] = run.finished
        return answer(
            {
                "WorkflowArn": arn,
                "WorkflowVersion": "1",
                "RunId": run.run_id,
                "RunType": "ON_DEMAND",
                "OverrideParameters": run.parameters,
                "RunDetail": detail,
            }
        )

    def _get_workflow(self, body: dict[str, Any]) -> Response:
        found = self._workflow(body)
        if isinstance(found, Response):
            return found
        arn, workflow = found
        return answer(
            {
                "WorkflowArn": arn,
                "WorkflowVersion": "1",
                "Name": workflow.name,
                "WorkflowStatus": workflow.status,
                "RoleArn": f"arn:aws:iam::{self.account}:role/{workflow.name}-execution",
                "WorkflowDefinition": workflow.definition,
            }
        )

    def _list_workflows(self, body: dict[str, Any]) -> Response:
        page_size = min(int(body.get("MaxResults") or 2), 2)
        start = int(body.get("NextToken") or 0)
        arns = sorted(self.workflows)
        page = arns[start : start + page_size]
        result: dict[str, Any] = {
            "Workflows": [
                {
                    "WorkflowArn": arn,
                    "Name": self.workflows[arn].name,
                    "WorkflowStatus": self.workflows[arn].status,
                }
                for arn in page
            ]
        }
        if start + page_size < len(arns):
            result["NextToken"] = str(start + page_size)
        return answer(result)

    def _injected(self, body: Mapping[str, Any]) -> Response | None:
        with self._lock:
            for injection in self._injections:
                if injection.times > 0 and (injection.when is None or injection.when(body)):
                    injection.times -= 1
                    break
            else:
                return None
        members: dict[str, Any] = {}
        if injection.code == "ThrottlingException":
            members = {"ServiceCode": "airflow-serverless", "QuotaCode": "L-START-RUN"}
            if injection.retry_after is not None:
                members["RetryAfterSeconds"] = injection.retry_after
        if injection.code == "ServiceQuotaExceededException":
            members = {
                "ResourceId": str(body.get("WorkflowArn")),
                "ResourceType": "WorkflowRun",
                "ServiceCode": "airflow-serverless",
                "QuotaCode": "L-CONCURRENT-RUNS",
            }
        return error(injection.code, f"injected {injection.code}", **members)

    def _state(self, run: Run) -> str:
        """A run starts, runs, and succeeds after run_seconds unless it was finished otherwise."""
        if run.finished is not None:
            return run.state
        age = time.time() - run.started
        if age >= self.run_seconds:
            run.state, run.finished = "SUCCESS", run.started + self.run_seconds
        elif age >= self.run_seconds / 3:
            run.state = "RUNNING"
        return run.state


_OPERATIONS: dict[str, Callable[[MwaaServerlessStandin, dict[str, Any]], Response]] = {
    "StartWorkflowRun": MwaaServerlessStandin._start_workflow_run,
    "GetWorkflowRun": MwaaServerlessStandin._get_workflow_run,
    "GetWorkflow": MwaaServerlessStandin._get_workflow,
    "ListWorkflows": MwaaServerlessStandin._list_workflows,
}


def error(code: str, message: str, *, status: int | None = None, **members: Any) -> Response:
    """An AWS JSON 1.0 error: the code in `x-amzn-ErrorType` and `__type`, members in the body."""
    payload = {"__type": f"com.amazonaws.airflowserverless#{code}", "message": message, **members}
    return json_response(
        status or _STATUS.get(code, 400),
        payload,
        {
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": str(uuid.uuid4()),
            "Content-Type": "application/x-amz-json-1.0",
        },
    )


def answer(payload: dict[str, Any]) -> Response:
    return json_response(
        200,
        payload,
        {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.0"},
    )
