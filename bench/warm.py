"""Warm per-event cost, and HTTP requests per warm event counted at the stand-ins.

`measure()` starts the servers and runs one worker process per platform
(`python -m bench.warm gcf|lambda CONFIG RESULT`): the worker warms up, then times batches of
events through each variant, interleaved round by round, and reports the median cost per event
and the paired ratios. Servers run in processes of their own, so their CPU time is not the
client's, though on a loaded machine they compete for the same cores as the client.

Cloud Functions variants (all POST to the canned-200 stub; the stub ignores the token):
- `dagtrigger`: the entry point `cloud_functions.handle_background_event`: normalise, route, run
  id, POST over the kept-alive pool with the cached token, and the Cloud Logging JSON line
  (written to /dev/null: stdout of the worker);
- `dispatcher`: `Dispatcher.handle` alone (no platform envelope, no log line);
- `floor`: one http.client connection kept alive, a prebuilt body per event (the JSON dagtrigger
  sends for it) and prebuilt headers with a token fetched before timing;
- `floor-urllib3`: the same through urllib3's HTTPConnectionPool (what requests and boto3 use);
- `raw-socket`: below any client: the prebuilt request bytes written in one send on a kept-open
  socket and the answer read up to its Content-Length, nothing parsed (what the exchange costs);
- `http-layer`: dagtrigger's HttpSession alone posting the planned body (where the time goes);
- `plan`: Dispatcher.plan alone: normalise, route, run id, no network (where the time goes);
- `sample`: Google's Composer 2 sample as written (new AuthorizedSession per event, the module's
  credentials keep their token);
- `vendor-new-token`: the sample's style with the credentials made per event too: a new session
  and a new token from the token stand-in for every event.

Lambda variants (through the MWAA stand-in, which verifies SigV4 and forwards to the stub):
- `dagtrigger`: functions/lambda_function.py's handler with an EventBridge event, as deployed
  (invoke_rest_api paced at 10/s by default);
- `dagtrigger-unpaced`: the same with DAGTRIGGER_RATE_LIMIT=10000, so pacing and per-event work
  show apart (the process's dispatcher is rebuilt, untimed, before each batch of either);
- `floor`: a boto3 MWAA client made before timing, one invoke_rest_api per event with a
  prebuilt body.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.serve import REPO, ServerProcess, child_env, fetch_stats
from bench.stats import paired_ratios, rotated, summarise

EVENTS = REPO / "tests" / "events"
GCF_SAMPLE = REPO / "bench" / "baselines" / "gcf_sample"
DAG_ID = "dagtrigger_example"


# ---- the orchestrator's side ----


def measure(work: Path, rounds: int, quick: bool = False) -> dict[str, Any]:
    log = work / "warm.log"
    results: dict[str, Any] = {}
    with (
        ServerProcess("stub", log=log) as stub,
        ServerProcess("google", stub.info["url"], str(work / "key.json"), log=log) as google,
        ServerProcess("mwaa", stub.info["url"], "0", log=log) as mwaa,
    ):
        sdk_config = work / "gcloud"
        sdk_config.mkdir(exist_ok=True)
        config = {
            "rounds": rounds,
            "batch": 20 if quick else 100,
            "vendor_batch": 5 if quick else 10,
            "count_events": 20 if quick else 50,
            "stub_url": stub.info["url"],
            "stub_stats_url": stub.info["stats_url"],
            "front_url": google.info["front_url"],
            "google_stats_url": google.info["stats_url"],
            "mwaa_stats_url": mwaa.info["stats_url"],
        }
        gcf_env = child_env(
            GOOGLE_APPLICATION_CREDENTIALS=str(work / "key.json"),
            CLOUDSDK_CONFIG=str(sdk_config),
            NO_GCE_CHECK="True",
            AIRFLOW_URL=stub.info["url"],
            AIRFLOW_AUTH="google",
            AIRFLOW_API_VERSION="v1",
            DAG_ID=DAG_ID,
        )
        lambda_env = child_env(
            **mwaa.info["client_env"],
            AWS_CONFIG_FILE=str(work / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            MWAA_ENVIRONMENT=mwaa.info["environment"],
            DAG_ID=DAG_ID,
            POWERTOOLS_SERVICE_NAME="dagtrigger",
            AWS_LAMBDA_FUNCTION_NAME="dagtrigger",
        )
        for platform, env in (("gcf", gcf_env), ("lambda", lambda_env)):
            results[platform] = run_worker(platform, config, env, work, log)
            print(f"  warm {platform}: done", file=sys.stderr, flush=True)
    return results


def run_worker(
    platform: str, config: dict[str, Any], env: dict[str, str], work: Path, log: Path
) -> dict[str, Any]:
    result_file = work / f"warm-{platform}.json"
    config_file = work / f"warm-{platform}-config.json"
    config_file.write_text(json.dumps(config))
    with open(log, "ab") as errors:
        subprocess.run(
            [sys.executable, "-m", "bench.warm", platform, str(config_file), str(result_file)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=errors, check=True, timeout=600,
        )  # fmt: skip
    return dict(json.loads(result_file.read_text()))


# ---- the worker's side ----


Variant = tuple[Callable[[], Any], Callable[[Any], None]]  # (make one input, handle it)


def time_interleaved(
    variants: dict[str, Variant],
    rounds: int,
    batch: int,
    warmup: int = 2,
    setup: dict[str, Callable[[], None]] | None = None,
) -> dict[str, Any]:
    """Per-event seconds of each variant: `batch` events per round, variants rotated per round.

    Each input is made just before it is handled, untimed, as a platform hands a function the
    event it has just decoded: no variant reads inputs gone cold in a large heap built
    beforehand. `setup[name]`, when given, runs untimed before each of that variant's batches.
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for index in range(warmup + rounds):
        for name in rotated(names, index):
            if setup and name in setup:
                setup[name]()
            make, handle = variants[name]
            gc.collect()
            elapsed = 0.0
            for _ in range(batch):
                item = make()
                started = clock()
                handle(item)
                elapsed += clock() - started
            if index >= warmup:
                samples[name].append(elapsed / batch)
    return {"batch": batch, "rounds": rounds, "samples": samples}


def summarise_against(timed: dict[str, Any], reference: str) -> dict[str, Any]:
    samples = timed["samples"]
    return {
        "batch": timed["batch"],
        "rounds": timed["rounds"],
        "reference": reference,
        "variants": {
            name: {
                "per_event": summarise(values).as_dict(),
                "ratio": paired_ratios(values, samples[reference]).as_dict(),
            }
            for name, values in samples.items()
        },
    }


class GcsEvents:
    """Distinct GCS object events (a new generation each), as legacy background events."""

    def __init__(self, prefix: int) -> None:
        self._template = json.loads((EVENTS / "gcs_legacy_finalize.json").read_text())
        self._next = prefix * 10_000_000

    def make(self) -> dict[str, Any]:
        self._next += 1
        event = copy.deepcopy(self._template)
        event["data"]["generation"] = str(self._next)
        event["context"]["eventId"] = f"bench-{self._next}"
        return event


def _count_per_event(
    stats_url: str, keys: tuple[str, ...], events: int, send: Callable[[], None]
) -> float:
    def total() -> int:
        stats = fetch_stats(stats_url)
        return sum(stats.get(key, 0) for key in keys)

    before = total()
    for _ in range(events):
        send()
    return (total() - before) / events


def gcf_worker(config: dict[str, Any]) -> dict[str, Any]:
    import http.client
    import socket

    import google.auth
    import urllib3
    from google.auth.transport.requests import AuthorizedSession

    from dagtrigger import runtime
    from dagtrigger.platforms import cloud_functions

    sys.path.insert(0, str(GCF_SAMPLE))
    import composer2_airflow_rest_api as sample

    rounds, batch, vendor_batch = config["rounds"], config["batch"], config["vendor_batch"]
    stub_url: str = config["stub_url"]
    path = f"/api/v1/dags/{DAG_ID}/dagRuns"
    gcs = GcsEvents(1)
    warmup = 2

    def entry_point(event: dict[str, Any]) -> None:
        cloud_functions.handle_background_event(event["data"], event["context"])

    entry_point(gcs.make())  # the cold event: token, connection, logging set up
    dispatcher = runtime.get_dispatcher()

    # The floor's bodies: exactly what dagtrigger sends for each of its events.
    def floor_body(event: dict[str, Any]) -> bytes:
        run = dispatcher.plan(event).runs[0]
        body = {"conf": dict(run.conf), "dag_run_id": run.dag_run_id}
        return json.dumps(body, separators=(",", ":")).encode()

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {credentials.token}",
    }
    host = stub_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=10)
    stub_host, stub_port = host.rsplit(":", 1)
    raw_socket = socket.create_connection((stub_host, int(stub_port)), timeout=10)
    raw_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pool = urllib3.HTTPConnectionPool(*host.split(":"), maxsize=1, retries=False)

    def floor(body: bytes) -> None:
        connection.request("POST", path, body, headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"stub answered {answer.status}")

    def request_bytes(body: bytes) -> bytes:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        return "\r\n".join(head).encode() + b"\r\n\r\n" + body

    def raw_exchange(message: bytes) -> None:
        raw_socket.sendall(message)
        answer = b""
        while (end := answer.find(b"\r\n\r\n")) < 0:
            answer += raw_socket.recv(65536)
        length = int(answer[:end].lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        while len(answer) < end + 4 + length:
            answer += raw_socket.recv(65536)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stub answered {answer[:40]!r}")

    def floor_urllib3(body: bytes) -> None:
        answer = pool.urlopen("POST", path, body=body, headers=headers, redirect=False)
        if answer.status != 200:
            raise RuntimeError(f"stub answered {answer.status}")

    def dispatch(event: dict[str, Any]) -> None:
        report = dispatcher.handle(event)
        if report.count("created") != 1:
            raise RuntimeError(f"dispatcher did not create the run: {report}")

    # Where the time goes: dagtrigger's HTTP layer alone (its session, the prebuilt conf and
    # token header), and the planning alone (normalise, route, run id; no network).
    from dagtrigger.http import HttpSession

    session = HttpSession()
    auth_header = {"Authorization": headers["Authorization"]}

    def http_layer(body: dict[str, Any]) -> None:
        answer = session.request("POST", stub_url + path, json_body=body, headers=auth_header)
        if answer.status != 200:
            raise RuntimeError(f"stub answered {answer.status}")

    def planned(event: dict[str, Any]) -> dict[str, Any]:
        run = dispatcher.plan(event).runs[0]
        return {"conf": dict(run.conf), "dag_run_id": run.dag_run_id}

    fast = time_interleaved(
        {
            "dagtrigger": (gcs.make, entry_point),
            "dispatcher": (gcs.make, dispatch),
            "http-layer": (lambda: planned(gcs.make()), http_layer),
            "plan": (gcs.make, dispatcher.plan),
            "floor": (lambda: floor_body(gcs.make()), floor),
            "floor-urllib3": (lambda: floor_body(gcs.make()), floor_urllib3),
            "raw-socket": (lambda: request_bytes(floor_body(gcs.make())), raw_exchange),
        },
        rounds,
        batch,
        warmup,
    )

    def sample_as_written(event: dict[str, Any]) -> None:
        sample.trigger_dag(stub_url, DAG_ID, event["data"])

    def vendor_new_token(event: dict[str, Any]) -> None:
        fresh, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        answer = AuthorizedSession(fresh).request(
            "POST", f"{stub_url}{path}", json={"conf": event["data"]}, timeout=90
        )
        if answer.status_code != 200:
            raise RuntimeError(f"stub answered {answer.status_code}")

    vendor = time_interleaved(
        {
            "dagtrigger": (gcs.make, entry_point),
            "sample": (gcs.make, sample_as_written),
            "vendor-new-token": (gcs.make, vendor_new_token),
        },
        rounds,
        vendor_batch,
        warmup,
    )

    # Requests per event, counted where they arrive: the token endpoint and Composer's front.
    events = config["count_events"]
    stats_url = config["google_stats_url"]
    keys = ("access_tokens_issued", "front_requests")
    front_url = config["front_url"]
    runtime.reset()
    os.environ["AIRFLOW_URL"] = front_url
    first = _count_per_event(stats_url, keys, 1, lambda: entry_point(gcs.make()))
    requests = {
        "dagtrigger first event": first,
        "dagtrigger": _count_per_event(stats_url, keys, events, lambda: entry_point(gcs.make())),
        "sample": _count_per_event(
            stats_url,
            keys,
            events,
            lambda: sample.trigger_dag(front_url, DAG_ID, gcs.make()["data"]),
        ),
    }

    def vendor_new_token_via_front() -> None:
        fresh, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        AuthorizedSession(fresh).request(
            "POST", f"{front_url}{path}", json={"conf": gcs.make()["data"]}, timeout=90
        ).raise_for_status()

    requests["vendor-new-token"] = _count_per_event(
        stats_url, keys, events, vendor_new_token_via_front
    )
    return {
        "floor": summarise_against(fast, "floor"),
        "vendor": summarise_against(vendor, "dagtrigger"),
        "requests_per_event": requests,
        "count_events": events,
    }


def lambda_worker(config: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    from dagtrigger import runtime

    sys.path.insert(0, str(REPO / "functions"))
    import lambda_function

    # A batch is the pacing bucket's burst (10 at the default 10/s), refilled between batches.
    rounds, batch = config["rounds"], 10
    template = json.loads((EVENTS / "eventbridge_custom.json").read_text())
    counter = iter(range(1, 10**9))
    warmup = 1

    class Context:
        function_name = "dagtrigger"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    context = Context()

    def make() -> dict[str, Any]:
        event = copy.deepcopy(template)
        event["id"] = f"bench-{next(counter)}"
        return event

    def handler(event: dict[str, Any]) -> None:
        answer = lambda_function.handler(event, context)
        if answer["runs"][0]["outcome"] != "created":
            raise RuntimeError(f"unexpected answer {answer}")

    def pause() -> None:
        time.sleep(0.15)  # the same untimed pause before every variant's batch

    def configure(rate_limit: str | None) -> Callable[[], None]:
        """Rebuild the process's dispatcher with this pacing, warm it, let its pace lapse."""

        def switch() -> None:
            if rate_limit is None:
                os.environ.pop("DAGTRIGGER_RATE_LIMIT", None)
            else:
                os.environ["DAGTRIGGER_RATE_LIMIT"] = rate_limit
            runtime.reset()
            handler(make())
            pause()

        return switch

    configure(None)()  # cold: GetEnvironment, client, first InvokeRestApi
    dispatcher = runtime.get_dispatcher()
    client = boto3.client("mwaa", config=Config(retries={"total_max_attempts": 1}))
    name = os.environ["MWAA_ENVIRONMENT"]

    def prebuilt(event: dict[str, Any]) -> dict[str, Any]:
        run = dispatcher.plan(event).runs[0]
        note = f"Triggered by dagtrigger: {run.event.provider} {run.event.event_type} {run.event.label}"
        body = {"conf": dict(run.conf), "dag_run_id": run.dag_run_id, "logical_date": None,
                "note": note}  # fmt: skip
        return {"Name": name, "Path": f"/dags/{DAG_ID}/dagRuns", "Method": "POST", "Body": body}

    def floor(arguments: dict[str, Any]) -> None:
        answer = client.invoke_rest_api(**arguments)
        if answer["RestApiStatusCode"] != 200:
            raise RuntimeError(f"unexpected answer {answer}")

    floor(prebuilt(make()))
    timed = time_interleaved(
        {
            "dagtrigger": (make, handler),
            "dagtrigger-unpaced": (make, handler),
            "floor": (lambda: prebuilt(make()), floor),
        },
        rounds,
        batch,
        warmup,
        setup={
            "dagtrigger": configure(None),
            "dagtrigger-unpaced": configure("10000"),
            "floor": pause,
        },
    )
    configure(None)()
    events = config["count_events"]
    requests = {
        "dagtrigger": _count_per_event(
            config["mwaa_stats_url"], ("invoke_rest_api", "get_environment"), events,
            lambda: handler(make()),
        )
    }  # fmt: skip
    return {
        "floor": summarise_against(timed, "floor"),
        "requests_per_event": requests,
        "count_events": events,
    }


def main(argv: list[str]) -> None:
    platform, config_file, result_file = argv
    config = json.loads(Path(config_file).read_text())
    workers = {"gcf": gcf_worker, "lambda": lambda_worker}
    result = workers[platform](config)
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
