"""Many function instances against one real Airflow on PostgreSQL: bursts, latency, herd control.

Each function instance is a process of its own, as on the platforms: a functions-framework server
for Cloud Functions (one delivery at a time, as a Cloud Run instance with concurrency 1), and
AWS's runtime interface client (`awslambdaric`) polling a Lambda Runtime API stand-in for Lambda
(one invocation at a time, as Lambda runs them). Deliveries come from the platform simulator
(tests/integration/platform_sim.py), which redelivers what fails. Airflow is `LocalAirflow` on
PostgreSQL with LocalExecutor and two API workers (tools/local_postgres.py); the example DAG is
paused, so runs stay queued and the scheduler does not compete with the API for the two cores.

- burst: N distinct object events through K instances per path, in rounds that take turns with
  a raw client (K threads, each a kept-alive http.client connection, POSTing the body
  dagtrigger sends) on the same server at the same concurrency; every run read back, Airflow's
  5xx counted in its access log.
- latency: one instance per path through `DelayProxy` (20 ms, 100 ms per round trip): event to
  run created, p50 and p99, against one raw request's time through the same proxy.
- herd: 16 instances behind a front whose capacity changes on a schedule (429, then 503 with
  Retry-After, then slow answers, then 429 again); the aggregate rate over time, as a plot.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import itertools
import json
import os
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bare_function import bare_run_id
from bench.common import DAG_ID, child_env, paired_ratios, rotated, summary
from bench.delay_proxy import DelayProxy
from tests.standins._http import LoopbackServer, Request, Response, forward, text_response

PATHS = {"cloud-functions": "Cloud Functions", "lambda": "Lambda"}
BARE = Path(__file__).with_name("bare_function.py")
Event = tuple[str, dict[str, Any]]  # (the object's name, the raw event)


# ---- events ------------------------------------------------------------------------------------


def object_events(path: str, count: int) -> list[Event]:
    """Distinct object events as the path's platform delivers them: GCS finalized CloudEvents, or
    S3 notifications with one record (Lambda's asynchronous invocation)."""
    tag = uuid.uuid4().hex[:8]
    names = [f"scale/{tag}/part-{number:05d}.csv" for number in range(count)]
    if path == "cloud-functions":
        return [(name, _gcs_cloud_event(name, f"{tag}-{n}")) for n, name in enumerate(names)]
    return [(name, _s3_notification(name, f"{tag}{n:x}")) for n, name in enumerate(names)]


def _gcs_cloud_event(name: str, event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/acme-landing",
        "subject": f"objects/{name}",
        "id": event_id,
        "time": "2026-12-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": {"bucket": "acme-landing", "name": name, "generation": "1", "size": "1024"},
    }


def _s3_notification(key: str, sequencer: str) -> dict[str, Any]:
    record = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
        "eventTime": "2026-12-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "dagtrigger",
               "bucket": {"name": "acme-raw", "arn": "arn:aws:s3:::acme-raw"},
               "object": {"key": key, "size": 1024, "eTag": "0" * 32,
                          "sequencer": sequencer.upper()}},
    }  # fmt: skip
    return {"Records": [record]}


def planned_runs(events: Sequence[Event]) -> dict[str, str]:
    """Each event's run id (what dagtrigger derives from the object) and the object's name."""
    from dagtrigger.events import normalise
    from dagtrigger.run_id import build_dag_run_id

    return {build_dag_run_id(normalise(event).events[0]): name for name, event in events}


def planned_confs(events: Sequence[Event]) -> dict[str, dict[str, Any]]:
    """Each event's run id and the conf dagtrigger sends for it by default."""
    from dagtrigger.events import normalise
    from dagtrigger.run_id import build_dag_run_id

    normalised = [normalise(event).events[0] for _, event in events]
    return {build_dag_run_id(event): event.default_conf() for event in normalised}


# ---- function instances ------------------------------------------------------------------------


class Instances:
    """K function instances of one path, each taking one delivery at a time: dagtrigger's entry
    point, or with `bare` the bare function (bench/bare_function.py) on the same machinery."""

    def __init__(
        self, path: str, count: int, env: dict[str, str], work: Path, bare: bool = False
    ) -> None:
        self.path, self.count, self.bare = path, count, bare
        self._stack = ExitStack()
        self._log = work / f"{path}-{count}-{uuid.uuid4().hex[:6]}.log"
        environment = child_env(**env)
        if path == "cloud-functions":
            from tests.integration.functions_server import FUNCTIONS, FunctionsServer

            target, source = (
                ("cloud_event", BARE) if bare else ("handle_cloud_event", FUNCTIONS / "main.py")
            )
            self._servers = [
                self._stack.enter_context(
                    FunctionsServer(target, environment, self._log, source=source)
                )
                for _ in range(count)
            ]
            self._chosen = threading.local()
            self._next = itertools.count()
        else:
            from tests.standins.lambda_runtime import LambdaFunction

            where = (
                {"handler": "bare_function.lambda_handler", "task_root": BARE.parent}
                if bare
                else {}
            )
            self._function = self._stack.enter_context(
                LambdaFunction(environment, self._log, instances=count, **where)
            )

    def deliver(self, event: dict[str, Any]) -> bool:
        """One delivery; whether the platform counts it done (else it redelivers)."""
        if self.path == "cloud-functions":
            if not hasattr(self._chosen, "server"):  # each delivering thread keeps to one instance
                self._chosen.server = self._servers[next(self._next) % self.count]
            return 200 <= self._chosen.server.post_structured(event) < 300
        return bool(self._function.invoke(event).ok)

    def process_groups(self) -> list[int]:
        """Each instance's process group (functions-framework's gunicorn has a worker child)."""
        if self.path == "cloud-functions":
            return [server.pid for server in self._servers]
        return self._function.pids

    def log_entries(self) -> list[dict[str, Any]]:
        if self.path == "cloud-functions":
            return self._servers[0].log_entries()  # the instances share one log file
        return list(self._function.log_entries())

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Instances:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def function_env(airflow: Any, url: str | None = None) -> dict[str, str]:
    return {
        "AIRFLOW_URL": url or airflow.url,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": airflow.admin_password,
        "DAG_ID": DAG_ID,
        "PYTHONUNBUFFERED": "1",
    }


def warm_up(instances: Instances, events: Sequence[Event]) -> None:
    """Each instance's first events (token, API version, connection), before any clock starts."""
    with ThreadPoolExecutor(instances.count) as pool:
        answers = list(pool.map(lambda item: instances.deliver(item[1]), events))
    if not all(answers):
        raise RuntimeError(f"warm-up failed: {answers.count(False)} of {len(events)} events")


# ---- a raw client ------------------------------------------------------------------------------


class RawClient:
    """What the vendor samples do, at their best: POST the run, no retry but of a refusal to
    start; one kept-alive http.client connection per thread."""

    def __init__(self, airflow: Any, url: str | None = None) -> None:
        self._url = urlsplit(url or airflow.url)
        v2 = airflow.major == "3"
        self.path = f"/api/{'v2' if v2 else 'v1'}/dags/{DAG_ID}/dagRuns"
        if v2:
            authorization = f"Bearer {airflow.token()}"
        else:
            basic = base64.b64encode(f"admin:{airflow.admin_password}".encode()).decode()
            authorization = f"Basic {basic}"
        self.authorization = authorization
        self.api = "v2" if v2 else "v1"
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": authorization,
        }
        self._v2 = v2
        self._local = threading.local()

    def body(self, run_id: str, conf: dict[str, Any]) -> bytes:
        """The body dagtrigger sends for the same run (Airflow does the same work for both)."""
        body: dict[str, Any] = {"conf": conf, "dag_run_id": run_id}
        if self._v2:
            body.update(logical_date=None, note="Triggered by a raw client")
        return json.dumps(body, separators=(",", ":")).encode()

    def post(self, body: bytes) -> int:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._url.hostname or "", self._url.port, 60)
            self._local.connection = connection
        try:
            connection.request("POST", self.path, body, self._headers)
            answer = connection.getresponse()
            answer.read()
        except OSError:
            connection.close()
            self._local.connection = None
            return 0
        return answer.status

    def send_all(self, bodies: Sequence[bytes], concurrency: int) -> float:
        """Sends every body from `concurrency` threads, trying a 5xx again; the seconds taken."""
        queue = iter(bodies)
        lock = threading.Lock()

        def sender() -> None:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                while self.post(body) not in (200, 409):
                    time.sleep(0.05)

        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(sender) for _ in range(concurrency)]:
                future.result()
        return time.monotonic() - started


def raw_bodies(client: RawClient, count: int) -> list[bytes]:
    events = object_events("cloud-functions", count)
    return [client.body(run_id, conf) for run_id, conf in planned_confs(events).items()]


# ---- what Airflow saw --------------------------------------------------------------------------

_ACCESS_LINE = (
    re.compile(r"method=(?P<method>\w+) path=(?P<path>\S+) .*status_code=(?P<status>\d{3})"),
    re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})'),
)


class AccessLog:
    """The API server's access log (Airflow 3's api-server, Airflow 2's gunicorn), from a mark."""

    def __init__(self, airflow: Any) -> None:
        name = "api-server.log" if airflow.major == "3" else "webserver.log"
        self._file = airflow.log_dir / name
        self._offset = 0

    def mark(self) -> None:
        self._offset = self._file.stat().st_size

    def statuses(self) -> collections.Counter[int]:
        """The status of every API request answered since the mark."""
        with open(self._file, "rb") as log:
            log.seek(self._offset)
            text = log.read().decode(errors="replace")
        counted: collections.Counter[int] = collections.Counter()
        for line in text.splitlines():
            for pattern in _ACCESS_LINE:
                found = pattern.search(line)
                if found and found["path"].startswith("/api/"):
                    counted[int(found["status"])] += 1
                    break
        return counted


def _process_stats() -> Iterator[tuple[int, list[str]]]:
    """Each process's pid and the fields of its /proc stat after the command's closing
    parenthesis: state, ppid, pgrp, ..., utime (11), stime (12)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            yield int(stat.parent.name), stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile


def cpu_seconds(process_groups: Sequence[int]) -> float:
    """User and system CPU time so far of every process in these process groups."""
    groups = set(process_groups)
    total = sum(
        int(fields[11]) + int(fields[12])
        for _, fields in _process_stats()
        if int(fields[2]) in groups
    )
    return total / os.sysconf("SC_CLK_TCK")


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process `pid` onto `cpus` (affinity is per thread on Linux)."""
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def cpus_split() -> Iterator[str]:
    """Airflow and its PostgreSQL (every process this one has started so far, and what they start
    later) on the first CPU; this process, its threads and what it starts meanwhile on the rest,
    as deployed, where function instances run on CPUs of their own, not Airflow's. Yields a
    description of the split; this process gets every CPU back at the end."""
    everything = os.sched_getaffinity(0)
    cpus = sorted(everything)
    if len(cpus) < 2:
        raise RuntimeError("splitting the CPUs needs at least two")
    airflow_cpus, function_cpus = set(cpus[:1]), set(cpus[1:])
    parents, own = {pid: int(fields[1]) for pid, fields in _process_stats()}, os.getpid()
    descendants: set[int] = set()
    frontier = {own}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - descendants
        descendants |= frontier
    for pid in descendants:
        _pin(pid, airflow_cpus)
    _pin(own, function_cpus)
    try:
        yield (
            f"Airflow and PostgreSQL run on CPU {cpus[0]} and the function instances, the "
            f"platform's stand-ins and the raw client on CPU {', '.join(map(str, cpus[1:]))}"
        )
    finally:
        _pin(own, everything)


def run_count(airflow: Any) -> int:
    status, body = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns?limit=1")
    if status != 200:
        raise RuntimeError(f"reading runs back: {status} {body}")
    return int(body["total_entries"])


def newest_runs(airflow: Any, count: int) -> dict[str, dict[str, Any]]:
    """The `count` runs created last, by run id (pages of 100, newest first)."""
    runs: dict[str, dict[str, Any]] = {}
    while len(runs) < count:
        path = f"/dags/{DAG_ID}/dagRuns?limit=100&offset={len(runs)}&order_by=-id"
        status, body = airflow.call("GET", path)
        if status != 200:
            raise RuntimeError(f"reading runs back: {status} {body}")
        if not body["dag_runs"]:
            break
        runs.update((run["dag_run_id"], run) for run in body["dag_runs"])
    return runs


def checked(airflow: Any, before: int, expected: dict[str, str]) -> dict[str, int]:
    """Lost, doubled (runs beyond one per event) and wrong-conf counts of a burst's runs."""
    added = run_count(airflow) - before
    runs = newest_runs(airflow, added)
    found = [run_id for run_id in expected if run_id in runs]
    wrong = [r for r in found if (runs[r].get("conf") or {}).get("name") != expected[r]]
    return {
        "runs": added,
        "lost": len(expected) - len(found),
        "doubled": added - len(found),
        "wrong_conf": len(wrong),
    }


# ---- the burst ---------------------------------------------------------------------------------


BURST_ROUNDS = 10
BARE_EVERY = 5  # the bare function, a control, takes part in every fifth round


@dataclass
class Tally:
    """One contender's chunks over the rounds of a burst."""

    events: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    redeliveries: int = 0
    rates: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    check: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, events: int, seconds: float) -> None:
        self.events += events
        self.seconds += seconds
        self.rates.append(events / seconds)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def burst(
    work: Path, major: str, events: int, counts: Sequence[int], split: bool = False
) -> dict[str, Any]:
    """Per K instances: each path's burst of `events`, the raw client's and the bare function's,
    taking turns (burst_at). With `split`, Airflow runs on a CPU of its own (cpus_split)."""
    from tools.local_airflow import LocalAirflow

    airflow = LocalAirflow(major, work / f"airflow{major}", database="postgresql")
    started = time.monotonic()
    with ExitStack() as stack:
        stack.callback(airflow.stop)
        airflow.start(dag_ids=(DAG_ID,))
        startup = time.monotonic() - started
        say(f"  Airflow {airflow.version} on PostgreSQL up in {startup:.0f} s")
        cpus = stack.enter_context(cpus_split()) if split else None
        rows = [burst_at(airflow, count, events, work) for count in counts]
        return {"version": airflow.version, "startup": startup, "events": events, "rows": rows,
                "cpus": cpus, "rounds": BURST_ROUNDS, "bare_every": BARE_EVERY}  # fmt: skip


def burst_at(airflow: Any, count: int, events: int, work: Path) -> dict[str, Any]:
    """`events` through K instances of each path, in BURST_ROUNDS chunks that take turns with
    the raw client's chunks (K threads) and, every BARE_EVERY rounds, the bare function's on the
    same platform: each round's contenders see the same machine, however busy it is."""
    access, raw = AccessLog(airflow), RawClient(airflow)
    chunk = events // BURST_ROUNDS
    bare_env = {
        "BARE_AIRFLOW_URL": airflow.url,
        "BARE_AUTHORIZATION": raw.authorization,
        "BARE_API": raw.api,
    }
    with ExitStack() as stack:
        fleets = {}
        for path in PATHS:
            fleets[path] = stack.enter_context(Instances(path, count, function_env(airflow), work))
            fleets[f"bare {path}"] = stack.enter_context(
                Instances(path, count, bare_env, work, bare=True)
            )
        for instances in fleets.values():
            warm_up(instances, object_events(instances.path, 2 * count))
        tallies = {name: Tally() for name in ("raw", *fleets)}
        for index in range(BURST_ROUNDS):
            present = [n for n in tallies if not n.startswith("bare") or index % BARE_EVERY == 0]
            for name in rotated(present, index):
                if name == "raw":
                    _raw_chunk(airflow, raw, chunk, count, tallies[name])
                else:
                    _path_chunk(airflow, access, fleets[name], chunk, tallies[name])
        retries = {name: sum(1 for entry in fleets[name].log_entries() if "retry" in entry)
                   for name in PATHS}  # fmt: skip
    for name, tally in tallies.items():
        if name != "raw" and (tally.check["lost"] or tally.check["doubled"]
                              or tally.check["wrong_conf"]):  # fmt: skip
            raise RuntimeError(f"{name} x{count}: {dict(tally.check)}")
    found = {name: _burst_figures(tally) for name, tally in tallies.items()}
    raw_tally = tallies["raw"]
    for path in PATHS:
        found[path].update(
            retries=retries[path],
            ratio=tallies[path].rate / raw_tally.rate,
            round_ratios=paired_ratios(tallies[path].rates, raw_tally.rates),
            bare_ratio=tallies[path].rate / tallies[f"bare {path}"].rate,
        )
        say(f"  Airflow {airflow.major}, {PATHS[path]} x{count}: {tallies[path].rate:.1f}/s, "
            f"raw {raw_tally.rate:.1f}/s, bare {tallies[f'bare {path}'].rate:.1f}/s, "
            f"{dict(tallies[path].check)}")  # fmt: skip
    return {"instances": count, "chunk": chunk, "raw": found["raw"],
            "paths": {path: found[path] for path in PATHS},
            "bare": {path: found[f"bare {path}"] for path in PATHS}}  # fmt: skip


def _burst_figures(tally: Tally) -> dict[str, Any]:
    requests = sum(tally.statuses.values())
    return {
        "events": tally.events,
        "seconds": tally.seconds,
        "rate": tally.rate,
        "cpu_per_event": tally.cpu / tally.events,
        "check": dict(tally.check),
        "redeliveries": tally.redeliveries,
        "requests": requests,
        "server_errors": sum(n for status, n in tally.statuses.items() if status >= 500),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
    }


def _raw_chunk(airflow: Any, raw: RawClient, count: int, concurrency: int, tally: Tally) -> None:
    bodies = raw_bodies(raw, count)
    before = run_count(airflow)
    seconds = raw.send_all(bodies, concurrency)
    if (added := run_count(airflow) - before) != count:
        raise RuntimeError(f"the raw client sent {count} triggers and {added} runs were created")
    tally.add(count, seconds)


def _path_chunk(
    airflow: Any, access: AccessLog, instances: Instances, events: int, tally: Tally
) -> None:
    """`events` through the instances (dagtrigger's or the bare function's); every run read
    back."""
    from tests.integration.platform_sim import PlatformSimulator

    chunk_events = object_events(instances.path, events)
    if instances.bare:
        expected = {bare_run_id(name): name for name, _ in chunk_events}
    else:
        expected = planned_runs(chunk_events)
    before = run_count(airflow)
    access.mark()

    def deliver(batch: Sequence[Event]) -> set[str]:
        ((key, event),) = batch
        return set() if instances.deliver(event) else {key}

    # Lambda retries a failed asynchronous invocation twice; Eventarc for a day.
    attempts = 3 if instances.path == "lambda" else 50
    simulator = PlatformSimulator(deliver, max_attempts=attempts, workers=instances.count,
                                  duplicate_rate=0.0)  # fmt: skip
    cpu_before = cpu_seconds(instances.process_groups())
    started = time.monotonic()
    stats = simulator.run(chunk_events, timeout=7200)
    tally.add(events, time.monotonic() - started)
    tally.cpu += cpu_seconds(instances.process_groups()) - cpu_before
    tally.statuses.update(access.statuses())
    tally.redeliveries += stats.redeliveries
    if stats.dead_lettered:
        raise RuntimeError(f"{instances.path}: {len(stats.dead_lettered)} events dead-lettered")
    tally.check.update(checked(airflow, before, expected))


# ---- latency -----------------------------------------------------------------------------------

DELAYS = (0.020, 0.100)


def latency(work: Path, events: int, chunk: int = 20) -> dict[str, Any]:
    """Per added round trip: each path's event-to-run-created times and the raw client's."""
    from tools.local_airflow import LocalAirflow

    airflow = LocalAirflow("3", work / "airflow3", database="postgresql")
    try:
        airflow.start(dag_ids=(DAG_ID,))
        say(f"  Airflow {airflow.version} on PostgreSQL up")
        results = []
        for delay in DELAYS:
            with DelayProxy(airflow.url, delay) as proxy, ExitStack() as stack:
                env = function_env(airflow, proxy.url)
                instances = {
                    path: stack.enter_context(Instances(path, 1, env, work)) for path in PATHS
                }
                raw = RawClient(airflow, proxy.url)
                senders: dict[str, Callable[[], Callable[[], None]]] = {
                    path: _path_sender(instance) for path, instance in instances.items()
                }
                senders["raw"] = _raw_sender(raw)
                for path, instance in instances.items():
                    warm_up(instance, object_events(path, 2))
                times = _take_turns(senders, events, chunk)
            results.append(
                {
                    "delay": delay,
                    "events": events,
                    "times": {name: summary(taken) for name, taken in times.items()},
                    "p99": {name: _p99(taken) for name, taken in times.items()},
                }
            )
            say(f"  latency +{delay * 1000:.0f} ms: done")
        return {"version": airflow.version, "delays": results}
    finally:
        airflow.stop()


def _p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _path_sender(instances: Instances) -> Callable[[], Callable[[], None]]:
    events: Iterator[Event] = iter(())

    def next_send() -> Callable[[], None]:
        nonlocal events
        event = next(events, None)
        if event is None:
            events = iter(object_events(instances.path, 100))
            event = next(events)

        def send() -> None:
            if not instances.deliver(event[1]):
                raise RuntimeError(f"{instances.path}: a delivery failed")

        return send

    return next_send


def _raw_sender(raw: RawClient) -> Callable[[], Callable[[], None]]:
    bodies: Iterator[bytes] = iter(())

    def next_send() -> Callable[[], None]:
        nonlocal bodies
        body = next(bodies, None)
        if body is None:
            bodies = iter(raw_bodies(raw, 100))
            body = next(bodies)

        def send() -> None:
            if (status := raw.post(body)) != 200:
                raise RuntimeError(f"raw client: Airflow answered {status}")

        return send

    return next_send


def _take_turns(
    senders: dict[str, Callable[[], Callable[[], None]]], events: int, chunk: int
) -> dict[str, list[float]]:
    """`events` timed sends per sender, in chunks taking turns (A B C, C B A, ...)."""
    times: dict[str, list[float]] = {name: [] for name in senders}
    for index in range(-(-events // chunk)):
        for name in rotated(list(senders), index):
            for _ in range(min(chunk, events - len(times[name]))):
                send = senders[name]()  # the event is made before the clock starts
                started = time.perf_counter()
                send()
                times[name].append(time.perf_counter() - started)
    return times


# ---- herd control ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    seconds: float  # how long it lasts (the last one lasts until the burst ends)
    label: str
    rate: float | None = None  # triggers/s let through; None: every one
    refusal: int = 429  # what the rest get, with Retry-After
    retry_after: int = 1
    slots: int | None = None  # requests served at once; the rest wait their turn
    hold: float = 0.0  # seconds each request is held before it is sent on


HERD_PHASES = (
    Phase(20, "12/s, then 429", rate=12.0),
    Phase(20, "4/s, then 503 Retry-After: 2", rate=4.0, refusal=503, retry_after=2),
    Phase(20, "slow: one at a time, 0.3 s each", slots=1, hold=0.3),
    Phase(20, "12/s, then 429", rate=12.0),
)


class CapacityFront(LoopbackServer):
    """Airflow behind a front whose capacity follows `phases`: past a phase's rate it refuses
    with its status and Retry-After, as Google's front, IAP or an ALB do for a full backend; a
    slow phase queues requests for a few slots and holds each. Counts, per second: triggers that
    created a run, refusals, and every trigger request that arrived."""

    def __init__(self, upstream: str, phases: Sequence[Phase]) -> None:
        super().__init__()
        self.upstream, self.phases = upstream, phases
        self.created: collections.Counter[int] = collections.Counter()
        self.refused: collections.Counter[int] = collections.Counter()
        self.arrived: collections.Counter[int] = collections.Counter()
        self.answer_times: list[float] = []  # Airflow's own, in the slow phases
        self._lock = threading.Lock()
        self._began: float | None = None  # before `begin`, every request goes through
        self._refilled = time.monotonic()
        self._tokens = 0.0
        self._slots = {index: threading.Semaphore(p.slots or 1) for index, p in enumerate(phases)}

    def begin(self) -> None:
        """Phases and counts start now."""
        with self._lock:
            self._began = self._refilled = time.monotonic()
            self._tokens = 0.0
            for counts in (self.created, self.refused, self.arrived):
                counts.clear()

    def phase_at(self, elapsed: float) -> int:
        for index, end in enumerate(itertools.accumulate(p.seconds for p in self.phases)):
            if elapsed < end:
                return index
        return len(self.phases) - 1

    def handle(self, request: Request) -> Response:
        is_trigger = request.method == "POST" and request.target.endswith("/dagRuns")
        if self._began is None:
            return self._forward(request)
        with self._lock:
            now = time.monotonic()
            second = int(now - self._began)
            index = self.phase_at(now - self._began)
            phase = self.phases[index]
            if is_trigger:
                self.arrived[second] += 1
            if phase.rate is not None and is_trigger:
                # A bucket of one second's worth, as rate limiters in front of web servers have.
                self._tokens = min(phase.rate, self._tokens + (now - self._refilled) * phase.rate)
                self._refilled = now
                if self._tokens < 1.0:
                    self.refused[second] += 1
                    return text_response(
                        phase.refusal, "busy\n", headers={"Retry-After": str(phase.retry_after)}
                    )
                self._tokens -= 1.0
        with self._slots[index] if phase.slots else contextlib.nullcontext():
            time.sleep(phase.hold)
            started = time.monotonic()
            response = self._forward(request)
            if phase.slots:
                self.answer_times.append(time.monotonic() - started)
        if is_trigger and response.status == 200:
            with self._lock:
                self.created[int(time.monotonic() - self._began)] += 1
        return response

    def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k == "authorization"}
        return forward(self.upstream, request, headers, timeout=60)


def herd(work: Path, instances: int, events: int) -> dict[str, Any]:
    from tests.integration.platform_sim import PlatformSimulator
    from tools.local_airflow import LocalAirflow

    airflow = LocalAirflow("3", work / "airflow3", database="postgresql")
    try:
        airflow.start(dag_ids=(DAG_ID,))
        say(f"  Airflow {airflow.version} on PostgreSQL up")
        front = CapacityFront(airflow.url, HERD_PHASES).start()
        try:
            herd_events = object_events("cloud-functions", events)
            expected = planned_runs(herd_events)
            with Instances("cloud-functions", instances, function_env(airflow, front.url),
                           work) as functions:  # fmt: skip
                warm_up(functions, object_events("cloud-functions", instances))
                before = run_count(airflow)

                def deliver(batch: Sequence[Event]) -> set[str]:
                    ((key, event),) = batch
                    return set() if functions.deliver(event) else {key}

                simulator = PlatformSimulator(deliver, max_attempts=50, workers=instances,
                                              duplicate_rate=0.0)  # fmt: skip
                front.begin()
                started = time.monotonic()
                stats = simulator.run(herd_events, timeout=1800)
                seconds = time.monotonic() - started
                retries = sum(1 for entry in functions.log_entries() if "retry" in entry)
            check = checked(airflow, before, expected)
        finally:
            front.stop()
        if check["lost"] or check["doubled"] or stats.dead_lettered:
            raise RuntimeError(f"herd: {check}, dead-lettered {len(stats.dead_lettered)}")
        length = int(seconds) + 1
        return {
            "version": airflow.version,
            "instances": instances,
            "events": events,
            "seconds": seconds,
            "check": check,
            "redeliveries": stats.redeliveries,
            "retries": retries,
            "phases": [phase.__dict__ for phase in HERD_PHASES],
            "created": [front.created[s] for s in range(length)],
            "refused": [front.refused[s] for s in range(length)],
            "arrived": [front.arrived[s] for s in range(length)],
            "capacity": [
                _capacity(HERD_PHASES[front.phase_at(s + 0.5)], front.answer_times)
                for s in range(length)
            ],
        }
    finally:
        airflow.stop()


def _capacity(phase: Phase, answer_times: Sequence[float]) -> float | None:
    """Runs per second the front lets through at most: its rate, or in a slow phase its slots
    over the time each request takes there (the hold and Airflow's median answer)."""
    if phase.rate is not None:
        return phase.rate
    if phase.slots:
        return phase.slots / (phase.hold + statistics.median(answer_times or [0.0]))
    return None


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
