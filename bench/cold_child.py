"""One cold start, as a fresh process: `python bench/cold_child.py VARIANT EVENT_FILE FD`.

Imports what VARIANT's deployment imports, handles the event in EVENT_FILE once, then writes a
line to file descriptor FD with its peak RSS: the benchmark stops its clock when that line
arrives. Only the
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
    # What functions/main.py's handle_background_event calls, without functions-framework; with
    # AIRFLOW_URL and AIRFLOW_TOKEN instead of Google's settings, the self-hosted path.
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


def stdlib_client(event):
    # The least a self-hosted function can import: one POST with http.client and the token.
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(os.environ["AIRFLOW_URL"])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = json.dumps({"conf": event["data"], "logical_date": None})
    headers = {
        "Authorization": f"Bearer {os.environ['AIRFLOW_TOKEN']}",
        "Content-Type": "application/json",
    }
    connection.request("POST", f"/api/v2/dags/{os.environ['DAG_ID']}/dagRuns", body, headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise SystemExit(f"Airflow answered {answer.status}")


VARIANTS = {
    "gcf-dagtrigger": gcf_dagtrigger,
    "gcf-sample": gcf_sample,
    "gcf-ff-dagtrigger": gcf_ff_dagtrigger,
    "gcf-ff-sample": gcf_ff_sample,
    "lambda-dagtrigger": lambda_dagtrigger,
    "lambda-baseline": lambda_baseline,
    "self-hosted-dagtrigger": gcf_dagtrigger,
    "self-hosted-stdlib": stdlib_client,
}


def main():
    if sys.path and os.path.abspath(sys.path[0]) == BENCH:
        del sys.path[0]  # no module of bench/ may stand in for a library of the same name
    variant, event_file, fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(event_file, "rb") as source:
        event = json.loads(source.read())
    VARIANTS[variant](event)
    # The peak resident set of this program: VmHWM starts afresh at exec, whereas the rusage
    # of the process also counts the parent's pages it had between fork and exec.
    with open("/proc/self/status") as status:
        peak_kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    os.write(fd, f"answered {peak_kib}\n".encode())


if __name__ == "__main__":
    main()
