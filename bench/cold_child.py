"""One cold start, as a fresh process: `python bench/cold_child.py VARIANT EVENT_FILE FD`.

Imports what VARIANT's deployment imports, handles the event in EVENT_FILE once, then writes a
line to file descriptor FD: the benchmark stops its clock when that line arrives. Only the
standard library's os, sys and json are loaded before the variant's own imports, the same for
every variant.
"""

import json
import os
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
FUNCTIONS = os.path.join(os.path.dirname(BENCH), "functions")
GCF_SAMPLE = os.path.join(BENCH, "baselines", "gcf_sample")
LAMBDA_SAMPLE = os.path.join(BENCH, "baselines", "lambda_sample")


class LambdaContext:
    function_name = "dagtrigger"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
    aws_request_id = "bench-request"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def gcf_dagtrigger(event):
    # What functions/main.py's handle_background_event calls, without functions-framework.
    sys.path.insert(0, FUNCTIONS)
    from dagtrigger.platforms import cloud_functions

    cloud_functions.handle_background_event(event["data"], event["context"])


def gcf_sample(event):
    sys.path.insert(0, GCF_SAMPLE)
    import main

    main.trigger_dag_gcf(event["data"], event["context"])


def _under_functions_framework(source, target, event):
    # What the Cloud Functions Python runtime does: functions-framework loads the source file and
    # serves it; the first event arrives as a POST to the app.
    import functions_framework

    app = functions_framework.create_app(target, source, "event")
    answer = app.test_client().post("/", json=event)
    if answer.status_code != 200:
        raise SystemExit(f"{target} answered {answer.status_code}: {answer.get_data()[:500]!r}")


def gcf_ff_dagtrigger(event):
    _under_functions_framework(os.path.join(FUNCTIONS, "main.py"), "handle_background_event", event)


def gcf_ff_sample(event):
    _under_functions_framework(os.path.join(GCF_SAMPLE, "main.py"), "trigger_dag_gcf", event)


def lambda_dagtrigger(event):
    sys.path.insert(0, FUNCTIONS)
    import lambda_function

    answer = lambda_function.handler(event, LambdaContext())
    if answer["runs"][0]["outcome"] != "created":
        raise SystemExit(f"unexpected answer {answer}")


def lambda_baseline(event):
    sys.path.insert(0, LAMBDA_SAMPLE)
    import lambda_function

    status = lambda_function.handler(event, LambdaContext())
    if status != 200:
        raise SystemExit(f"InvokeRestApi answered {status}")


VARIANTS = {
    "gcf-dagtrigger": gcf_dagtrigger,
    "gcf-sample": gcf_sample,
    "gcf-ff-dagtrigger": gcf_ff_dagtrigger,
    "gcf-ff-sample": gcf_ff_sample,
    "lambda-dagtrigger": lambda_dagtrigger,
    "lambda-baseline": lambda_baseline,
}


def main():
    variant, event_file, fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(event_file, "rb") as source:
        event = json.loads(source.read())
    VARIANTS[variant](event)
    os.write(fd, b"answered\n")


if __name__ == "__main__":
    main()
