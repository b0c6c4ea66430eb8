"""The Lambda Runtime API stand-in driving awslambdaric's real client, with a handler of the test's
own: what the handler is given, one invocation per instance at a time, the deadline, a crash and
an init error, and no process left behind."""

from __future__ import annotations

import itertools
import os
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.standins.lambda_runtime import InstanceExited, LambdaFunction

HANDLER = """
import os
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if "exit" in event:
        os._exit(event["exit"])
    if "raise" in event:
        raise ValueError(event["raise"])
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_arn": context.invoked_function_arn,
        "environment": {name: os.environ.get(name) for name in (
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "LAMBDA_TASK_ROOT", "_HANDLER",
            "_X_AMZN_TRACE_ID", "AIRFLOW_URL", "DAG_ID")},
    }
"""


def function(
    tmp_path: Path, source: str = HANDLER, instances: int = 1, timeout: float = 60.0
) -> LambdaFunction:
    """`source` as app.py in a task root of its own, with DAG_ID set as the function's setting."""
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    return LambdaFunction(
        {"DAG_ID": "from_the_function"},
        tmp_path / "lambda.log",
        instances,
        timeout,
        handler="app.handler",
        task_root=tmp_path,
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_handler_gets_the_event_the_context_and_only_the_functions_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://the-test-process.invalid")
    monkeypatch.setenv("DAG_ID", "from_the_test_process")
    with function(tmp_path, timeout=30) as lambda_function:
        answered = lambda_function.invoke({"key": "résumé.pdf"})
        failed = lambda_function.invoke({"raise": "no such bucket"})

    assert answered.ok and answered.error is None
    seen = answered.payload
    assert seen["event"] == {"key": "résumé.pdf"}
    assert seen["pid"] == answered.pid
    assert seen["request_id"] == answered.request_id
    assert 25_000 < seen["remaining_ms"] <= 30_000
    assert seen["function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
    assert seen["environment"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "dagtrigger",
        "AWS_REGION": "eu-west-1",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_HANDLER": "app.handler",
        "_X_AMZN_TRACE_ID": seen["environment"]["_X_AMZN_TRACE_ID"],
        "AIRFLOW_URL": None,
        "DAG_ID": "from_the_function",
    }
    assert seen["environment"]["_X_AMZN_TRACE_ID"].startswith(f"Root={answered.trace_id};")
    assert not failed.ok and failed.payload is None
    assert failed.error_type == "ValueError"
    assert failed.error_message == "no such bucket"
    assert failed.error is not None and failed.error["requestId"] == failed.request_id


def test_each_instance_takes_one_invocation_at_a_time(tmp_path: Path) -> None:
    with function(tmp_path, instances=2) as lambda_function:
        with ThreadPoolExecutor(6) as callers:
            invocations = list(callers.map(lambda_function.invoke, [{"sleep": 0.3}] * 6))
        pids = lambda_function.pids

    assert all(invocation.ok for invocation in invocations)
    assert {invocation.pid for invocation in invocations} == set(pids)
    for instance in (0, 1):
        held = sorted((i.taken_at, i.answered_at) for i in invocations if i.instance == instance)
        for (_, answered), (taken, _) in itertools.pairwise(held):
            assert answered <= taken, "an instance took an invocation before answering the last"
    span = max(i.answered_at for i in invocations) - min(i.taken_at for i in invocations)
    assert span < 6 * 0.3, "the two instances worked at the same time"


def test_an_invocation_past_its_deadline_times_out_and_its_instance_starts_afresh(
    tmp_path: Path,
) -> None:
    with function(tmp_path, timeout=1) as lambda_function:
        first = lambda_function.invoke({})
        stuck = lambda_function.invoke({"sleep": 30})
        after = lambda_function.invoke({})

    assert not stuck.ok
    assert stuck.error_type == "Sandbox.Timedout"
    assert stuck.error_message == (
        f"RequestId: {stuck.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert 1 <= stuck.seconds < 5
    assert stuck.pid == first.pid and gone(first.pid)
    assert after.ok and after.pid != first.pid


def test_an_instance_that_crashes_fails_its_invocation_and_every_later_one(
    tmp_path: Path,
) -> None:
    with function(tmp_path) as lambda_function:
        pid = lambda_function.pids[0]
        with pytest.raises(InstanceExited, match=f"pid {pid}\\) exited with status 7"):
            lambda_function.invoke({"exit": 7})
        with pytest.raises(InstanceExited, match="exited with status 7"):
            lambda_function.invoke({})


def test_an_init_error_stops_the_function_from_starting_with_the_error_posted(
    tmp_path: Path,
) -> None:
    source = "raise RuntimeError('AIRFLOW_URL is not set')\n"
    with pytest.raises(InstanceExited) as caught, function(tmp_path, source, instances=2):
        pass

    assert caught.value.init_error is not None
    assert caught.value.init_error["errorType"] == "RuntimeError"
    assert caught.value.init_error["errorMessage"] == "AIRFLOW_URL is not set"
    assert "exited with status 1, init error RuntimeError: AIRFLOW_URL is not set" in str(
        caught.value
    )


def test_every_process_is_stopped_on_exit_even_after_an_error(tmp_path: Path) -> None:
    lambda_function = function(tmp_path, instances=3)
    with pytest.raises(KeyError), lambda_function:
        pids = lambda_function.pids
        raise KeyError("the test failed")

    assert len(pids) == 3
    assert all(gone(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="not running"):
        lambda_function.invoke({})
