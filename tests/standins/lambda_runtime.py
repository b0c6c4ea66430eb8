"""AWS Lambda function instances as separate processes, each run by AWS's runtime interface client
(awslambdaric) against a local Lambda Runtime API, as Lambda runs functions/lambda_function.py.

    with LambdaFunction(airflow_env(airflow), tmp_path / "lambda.log", instances=4) as function:
        invocation = function.invoke(event)  # from any number of threads at once
        invocation.ok, invocation.payload, invocation.error_type, invocation.pid

Each instance is `python -m awslambdaric lambda_function.handler` with functions/ as its task root,
as in the deployment package, and the environment Lambda gives a function plus `env`, nothing of
the caller's. Each has a Runtime API of its own on 127.0.0.1, as each Lambda execution environment
has, so the API knows which process took which invocation. The instances take invocations from
one queue; an instance asks for the next one only once it has answered the last, and the API
refuses it another before that, so each handles one at a time, as on Lambda. `__enter__` returns
once every instance has loaded the handler and waits for work. What each process prints goes to
`log_file` a whole line at a time, as Lambda collects each environment's output on its own;
`log_entries()` reads the JSON lines back.

As on Lambda, an invocation still running at its deadline comes back as a `Sandbox.Timedout`
error and its instance is replaced by a fresh process (a cold start). A process that exits by
itself (an init error, a crash) breaks the function: the invocations it held or that wait, and
every later `invoke`, raise `InstanceExited` with its exit status, init error and the log's end.

The protocol as awslambdaric 4.2.2 speaks it (bootstrap.py, lambda_runtime_client.py and the
aws-lambda-cpp 0.2.6 client compiled into its runtime_client module):
- GET /2018-06-01/runtime/invocation/next is a long poll with no time limit. The body is the event;
  the client fails without Lambda-Runtime-Aws-Request-Id, and reads Lambda-Runtime-Deadline-Ms
  (epoch milliseconds: what context.get_remaining_time_in_millis() counts down to),
  Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id (set as _X_AMZN_TRACE_ID, which
  Powertools logs as `xray_trace_id`). It decodes the body as JSON only if Content-Type is
  exactly `application/json`, and hands the handler the raw bytes otherwise.
- POST /2018-06-01/runtime/invocation/{id}/response carries what the handler returned, as JSON;
  POST .../{id}/error what it raised: {"errorMessage", "errorType", "requestId", "stackTrace"}.
  Both expect 202: on any other status the client raises and the process exits.
- POST /2018-06-01/runtime/init/error carries the same body, with Lambda-Runtime-Function-Error-Type,
  when the handler cannot be loaded; the process then exits with status 1.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Self

from tests.records import json_log_lines
from tests.standins._http import (
    LoopbackServer,
    Request,
    ResetConnection,
    Response,
    _Server,
    json_response,
)

FUNCTIONS = Path(__file__).resolve().parent.parent.parent / "functions"
HANDLER = "lambda_function.handler"  # infra/aws/template.yaml's Handler
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
# The runtime infra/aws/template.yaml deploys to by default: awslambdaric then polls for the next
# invocation from a thread and writes non-ASCII JSON unescaped, as it does there.
EXECUTION_ENV = "AWS_Lambda_python3.12"
# Sixteen instances importing Powertools at once take a while on two cores.
INIT_TIMEOUT = 120.0
RUNTIME_API = "/2018-06-01/runtime"
ACCEPTED = {"status": "OK"}


@dataclass(frozen=True)
class Invocation:
    """One invocation, as an instance answered it."""

    request_id: str
    ok: bool  # the handler returned; False when it raised or ran past its deadline
    payload: Any  # what the handler returned, decoded from JSON; None unless ok
    error: Mapping[str, Any] | None  # what the runtime posted: errorType, errorMessage, stackTrace
    instance: int  # which instance took it, 0 to instances - 1
    pid: int  # that instance's process
    trace_id: str  # the X-Ray root id: `xray_trace_id` in the log lines the invocation wrote
    seconds: float  # from invoke() to the answer, waiting for a free instance included
    taken_at: float  # time.monotonic() when the instance took it
    answered_at: float  # time.monotonic() when it answered

    @property
    def error_type(self) -> str | None:
        return None if self.error is None else str(self.error.get("errorType"))

    @property
    def error_message(self) -> str | None:
        return None if self.error is None else str(self.error.get("errorMessage"))


class InstanceExited(RuntimeError):
    """An instance's process exited by itself (an init error, a crash): the function is broken."""

    def __init__(self, message: str, init_error: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.init_error = init_error  # what the runtime posted to /init/error, if it did


class LambdaFunction:
    """`instances` processes running `handler` from `task_root` as Lambda runs them, each
    invocation limited to `timeout` seconds (the function's Timeout); their output goes to
    `log_file`. A context manager: every process and server is stopped on exit."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_file: Path,
        instances: int = 1,
        timeout: float = 60.0,
        *,
        handler: str = HANDLER,
        task_root: Path = FUNCTIONS,
    ) -> None:
        if instances < 1:
            raise ValueError(f"a function needs at least one instance, not {instances}")
        self.log_file = log_file
        self.timeout = timeout
        self.handler = handler
        self.task_root = task_root
        self._configuration = {**_lambda_defaults(), **env}
        name = self._configuration["AWS_LAMBDA_FUNCTION_NAME"]
        region = self._configuration["AWS_REGION"]
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
        self._instances = [_Instance(index) for index in range(instances)]
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # an invocation was queued, or closing
        self._changed = threading.Condition(self._lock)  # an instance became ready, or broke
        self._queue: deque[_Pending] = deque()
        self._in_flight: dict[str, _Pending] = {}
        self._broken: InstanceExited | None = None
        self._started = self._closed = False
        self._watchers: list[threading.Thread] = []
        self._outputs: list[_Output] = []
        self._log: BinaryIO | None = None
        self._log_lock = threading.Lock()

    def __enter__(self) -> Self:
        try:
            self._log = open(self.log_file, "ab")
            for instance in self._instances:
                instance.api = _RuntimeApi(self, instance).start()
            with self._lock:
                for instance in self._instances:
                    self._spawn(instance)
                self._started = True
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closed = True
            self._fail_all(RuntimeError("the function was stopped before an instance answered"))
            self._work.notify_all()
            self._changed.notify_all()
            processes = [i.process for i in self._instances if i.process is not None]
        _stop_processes(processes)
        for instance in self._instances:
            if instance.api is not None:
                instance.api.stop()
        for watcher in self._watchers:
            watcher.join(timeout=10)
        if self._log is not None:
            self._log.close()

    @property
    def pids(self) -> list[int]:
        """The process id of each running instance."""
        with self._lock:
            return [i.process.pid for i in self._instances if i.process is not None]

    def invoke(self, event: Any, timeout: float | None = None) -> Invocation:
        """Invoke the function with `event` (JSON) and wait for an instance's answer. The
        deadline, `timeout` or the function's, counts from when an instance takes it."""
        pending = _Pending(json.dumps(event).encode(), self.timeout if timeout is None else timeout)
        with self._work:
            self._refuse_if_unusable()
            self._queue.append(pending)
            self._work.notify()
        pending.taken.wait()
        if not pending.done.wait(max(pending.deadline - time.monotonic(), 0.0)):
            self._time_out(pending)
        outcome = pending.outcome
        if isinstance(outcome, BaseException):
            raise copy.copy(outcome)  # a traceback of this caller's own
        assert outcome is not None
        return outcome

    def log_entries(self) -> list[dict[str, Any]]:
        """The structured log lines the function printed (CloudWatch Logs reads the same), from
        every instance in the order written; Powertools' metric (EMF) lines are left out."""
        with self._lock:
            outputs = list(self._outputs)
        for output in outputs:
            output.drain()
        return json_log_lines(self.log_file.read_text(errors="replace"), "level")

    # What the instances' Runtime APIs call.

    def _take_next(self, instance: _Instance) -> Response:
        with self._work:
            if instance.holding is not None:
                return json_response(
                    403,
                    {"errorMessage": f"invocation {instance.holding.request_id} is unanswered",
                     "errorType": "InvalidStateTransition"},
                )  # fmt: skip
            if not instance.ready:
                instance.ready = True
                self._changed.notify_all()
            while not self._queue and not self._closed:
                self._work.wait()
            if self._closed:
                raise ResetConnection
            pending = self._queue.popleft()
            assert instance.process is not None  # a process is replaced only while it holds one
            pending.instance, pending.pid = instance, instance.process.pid
            pending.taken_at = time.monotonic()
            pending.deadline = pending.taken_at + pending.timeout
            instance.holding = pending
            self._in_flight[pending.request_id] = pending
            pending.taken.set()
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": pending.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + pending.timeout) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": pending.trace_header,
        }
        return Response(200, pending.body, headers)

    def _answer(self, instance: _Instance, request_id: str, ok: bool, request: Request) -> Response:
        payload: Any = None
        error: Any = None
        if not ok:
            error = json.loads(request.body)
        elif (request.header("Content-Type") or "").startswith("application/json"):
            payload = json.loads(request.body)
        else:  # a handler that returns bytes has them posted as they are
            payload = request.body
        with self._lock:
            pending = self._in_flight.get(request_id)
            if pending is None or pending.instance is not instance:
                return json_response(
                    400,
                    {"errorMessage": f"no invocation {request_id} is waiting for an answer",
                     "errorType": "InvalidRequestID"},
                )  # fmt: skip
            del self._in_flight[request_id]
            instance.holding = None
            self._settle(pending, pending.answered(ok, payload, error))
        return json_response(202, ACCEPTED)

    def _init_failed(self, instance: _Instance, request: Request) -> Response:
        with self._lock:
            instance.init_error = json.loads(request.body)
        return json_response(202, ACCEPTED)

    # Processes.

    def _spawn(self, instance: _Instance) -> None:
        """Start the instance's process; the caller holds the lock."""
        assert instance.api is not None
        environment = {
            **self._configuration,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            # What Lambda sets and a function cannot change.
            "AWS_LAMBDA_RUNTIME_API": instance.api.host,
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "PYTHONPATH": str(self.task_root),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", self.handler],
            cwd=self.task_root, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        output = _Output(process.stdout, self._append_to_log)
        self._outputs.append(output)
        instance.process, instance.ready = process, False
        watcher = threading.Thread(
            target=self._watch,
            args=(instance, process, output),
            name=f"lambda-{process.pid}",
            daemon=True,
        )
        watcher.start()
        self._watchers.append(watcher)

    def _watch(
        self, instance: _Instance, process: subprocess.Popen[bytes], output: _Output
    ) -> None:
        output.copy_until_closed()
        status = process.wait()
        with self._lock:
            if self._closed or instance.process is not process:
                return  # stopped or replaced on purpose
            instance.process = None
            init_error = instance.init_error
            reason = ""
            if init_error is not None:
                reason = (
                    f", init error {init_error.get('errorType')}: {init_error.get('errorMessage')}"
                )
            self._broken = InstanceExited(
                f"Lambda instance {instance.index} (pid {process.pid}) exited with status "
                f"{status}{reason}; the end of {self.log_file}:\n{self._log_tail()}",
                init_error,
            )
            self._fail_all(self._broken)
            self._changed.notify_all()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + INIT_TIMEOUT
        with self._changed:
            while self._broken is None and not all(i.ready for i in self._instances):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"Lambda instances still loading {self.handler} after {INIT_TIMEOUT:.0f} s;"
                        f" the end of {self.log_file}:\n{self._log_tail()}"
                    )
                self._changed.wait(left)
            if self._broken is not None:
                raise copy.copy(self._broken)

    def _time_out(self, pending: _Pending) -> None:
        """Answer for an instance that ran past the deadline and replace it, as Lambda does."""
        with self._lock:
            if pending.done.is_set():
                return  # answered, or failed, meanwhile
            instance = pending.instance
            assert instance is not None
            del self._in_flight[pending.request_id]
            instance.holding = None
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {pending.request_id} Error: Task timed out after "
                f"{pending.timeout:.2f} seconds",
            }
            self._settle(pending, pending.answered(False, None, error))
            stale, instance.process = instance.process, None
        if stale is not None:
            _stop_processes([stale])
        with self._lock:
            if not self._closed and self._broken is None:
                self._spawn(instance)

    # Bookkeeping; the callers hold the lock.

    def _refuse_if_unusable(self) -> None:
        if self._broken is not None:
            raise copy.copy(self._broken)
        if self._closed or not self._started:
            raise RuntimeError("the function is not running: use it inside its `with` block")

    def _settle(self, pending: _Pending, outcome: Invocation | BaseException) -> None:
        pending.outcome = outcome
        pending.taken.set()
        pending.done.set()

    def _fail_all(self, error: BaseException) -> None:
        for pending in [*self._queue, *self._in_flight.values()]:
            self._settle(pending, error)
        self._queue.clear()
        self._in_flight.clear()
        for instance in self._instances:
            instance.holding = None

    def _append_to_log(self, lines: bytes) -> None:
        if lines:
            with self._log_lock:
                assert self._log is not None
                self._log.write(lines)
                self._log.flush()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


class _Instance:
    """One execution environment: its Runtime API, its process, the invocation it holds."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.api: _RuntimeApi | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.holding: _Pending | None = None
        self.ready = False  # it has loaded the handler and asked for work
        self.init_error: dict[str, Any] | None = None


class _Output:
    """A process's output (stdout and stderr), copied to the log a whole line at a time.

    Lambda collects each execution environment's output apart and splits it into lines; in one
    file shared by the processes, their lines would run into each other, since print() writes a
    line's text and its newline separately."""

    def __init__(self, pipe: IO[bytes], append: Callable[[bytes], None]) -> None:
        self._pipe = pipe
        self._append = append
        self._lock = threading.Lock()
        self._unfinished = b""  # the last line, until its newline comes
        self._closed = False
        os.set_blocking(pipe.fileno(), False)

    def copy_until_closed(self) -> None:
        """Copy what the process writes until it closes its output (it exits)."""
        while not self._closed:
            select.select([self._pipe], [], [])
            self.drain()
        self._pipe.close()

    def drain(self) -> None:
        """Copy what the process has written so far, all but an unfinished last line."""
        with self._lock:
            while not self._closed:
                try:
                    chunk = os.read(self._pipe.fileno(), 65536)
                except BlockingIOError:
                    return
                if not chunk:
                    self._closed = True
                    self._append(self._unfinished)
                    return
                lines, newline, self._unfinished = (self._unfinished + chunk).rpartition(b"\n")
                self._append(lines + newline)


class _Pending:
    """An invocation from invoke() until it is answered or fails."""

    def __init__(self, body: bytes, timeout: float) -> None:
        self.request_id = str(uuid.uuid4())
        self.trace_id = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        self.trace_header = f"Root={self.trace_id};Parent={secrets.token_hex(8)};Sampled=0"
        self.body = body
        self.timeout = timeout
        self.invoked_at = time.monotonic()
        self.taken = threading.Event()  # an instance took it, or it failed before
        self.done = threading.Event()
        self.instance: _Instance | None = None
        self.pid = 0
        self.taken_at = self.deadline = 0.0
        self.outcome: Invocation | BaseException | None = None

    def answered(self, ok: bool, payload: Any, error: Mapping[str, Any] | None) -> Invocation:
        assert self.instance is not None
        now = time.monotonic()
        return Invocation(
            request_id=self.request_id,
            ok=ok,
            payload=payload,
            error=error,
            instance=self.instance.index,
            pid=self.pid,
            trace_id=self.trace_id,
            seconds=now - self.invoked_at,
            taken_at=self.taken_at,
            answered_at=now,
        )


class _RuntimeApi(LoopbackServer):
    """The Runtime API of one instance (AWS_LAMBDA_RUNTIME_API of its process)."""

    def __init__(self, function: LambdaFunction, instance: _Instance) -> None:
        super().__init__()
        self._function = function
        self._instance = instance

    def handle(self, request: Request) -> Response:
        route = request.path.removeprefix(RUNTIME_API).strip("/").split("/")
        match request.method, route:
            case "GET", ["invocation", "next"]:
                return self._function._take_next(self._instance)
            case "POST", ["invocation", request_id, "response" | "error" as kind]:
                ok = kind == "response"
                return self._function._answer(self._instance, request_id, ok, request)
            case "POST", ["init", "error"]:
                return self._function._init_failed(self._instance, request)
        return json_response(
            404, {"errorMessage": f"no route {request.method} {request.path}",
                  "errorType": "InvalidRoute"},
        )  # fmt: skip

    def _bind(self, handler: type[BaseHTTPRequestHandler]) -> _Server:
        # A process answers its invocation on the connection it took it from, however long the
        # handler ran: no limit on how long a kept-alive connection may wait for its next request.
        patient = type("PatientHandler", (handler,), {"timeout": None})
        return _RuntimeApiServer(("127.0.0.1", 0), patient)


class _RuntimeApiServer(_Server):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A process stopped on purpose (on exit, or at its deadline) may reset its connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _lambda_defaults() -> dict[str, str]:
    """The environment Lambda gives every function, which a function's own settings may extend
    (only PATH comes from this process: the rest of its environment stays out)."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",  # Lambda's is en_US.UTF-8, which this machine may not have
        "TZ": ":UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": EXECUTION_ENV,
        "AWS_LAMBDA_FUNCTION_NAME": "dagtrigger",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",  # infra/aws/template.yaml's MemorySize
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/dagtrigger",
        # Every line reaches the log when written, whatever stops the process.
        "PYTHONUNBUFFERED": "1",
    }


def _stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process's group, then SIGKILL to those still there after 5 s."""
    for process in processes:
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            process.wait()


def _signal(process: subprocess.Popen[bytes], number: signal.Signals) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, number)
