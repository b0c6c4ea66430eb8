"""docs/benchmarks.md's tables, one per measurement, from the measurements' results.

A verdict compares a median with its target; when the interquartile range (IQR) of the rounds
reaches across the target, it says so, since a quieter machine may decide it otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

Stat = dict[str, float]


def verdict(stat: Stat, limit: float, at_most: bool = True) -> str:
    median, q1, q3 = stat["median"], stat["q1"], stat["q3"]
    if math.isnan(median):
        return "no data"
    met = median <= limit if at_most else median >= limit
    word = "met" if met else "**MISSED**"
    return f"{word} (IQR spans the target)" if q1 <= limit <= q3 else word


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(stat: Stat) -> str:
    return f"{stat['median']:.2f}x [{stat['q1']:.2f}-{stat['q3']:.2f}]"


def with_iqr(stat: Stat, unit: Callable[[float], str]) -> str:
    return f"{unit(stat['median'])} [{unit(stat['q1'])} to {unit(stat['q3'])}]"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], notes: str) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([*lines, "", notes, ""])


COLD = {
    "gcf": ("Cloud Functions, bare", "Google's Composer 2 sample"),
    "gcf-ff": ("Cloud Functions, under functions-framework", "Google's Composer 2 sample"),
    "lambda": ("Lambda", "boto3 + Powertools, one invoke_rest_api"),
    "self-hosted": ("Self-hosted: AIRFLOW_URL + AIRFLOW_TOKEN", "http.client, one POST"),
}


def cold(results: dict[str, Any], runs: int) -> str:
    rows = []
    for key, (ours, theirs) in COLD.items():
        time, cpu, rss = (results[key][name] for name in ("time", "cpu", "rss"))
        targeted = key != "self-hosted"  # on record, so that its growth shows
        rows.append(
            [
                ours,
                theirs,
                f"{ms(time['dagtrigger']['median'])} / {ms(time['baseline']['median'])}",
                ratio(time["ratio"]),
                ratio(cpu["ratio"]),
                f"{rss['dagtrigger']['median']:.1f} / {rss['baseline']['median']:.1f} MiB",
                ratio(rss["ratio"]),
                "≤ 1.15x" if targeted else "none (on record)",
                f"time {verdict(time['ratio'], 1.15)}; RSS {verdict(rss['ratio'], 1.15)}"
                if targeted
                else "",
            ]
        )
    own = results["self-hosted"]
    extra_ms = own["time"]["dagtrigger"]["median"] - own["time"]["baseline"]["median"]
    extra_mib = own["rss"]["dagtrigger"]["median"] - own["rss"]["baseline"]["median"]
    notes = (
        "Time: from spawning the process to the child's report that the event was handled "
        "(medians; the ratio is the median of the run-by-run ratios). CPU time (user+system) of "
        "the child disturbs less on a busy machine: where its ratio and the time ratio part, the "
        "machine was noisy. Bare: `cloud_functions.handle_background_event` (what main.py calls) "
        "against the sample's function. Both Google sides: a token from the token stand-in and one "
        "POST through the Composer front stand-in. Lambda: dagtrigger's first event makes two "
        "calls (GetEnvironment, InvokeRestApi), the baseline one. Self-hosted: the bare handler "
        "with no cloud SDK (urllib3 for HTTP, the API version detected: two requests) against one "
        f"POST with the standard library alone: dagtrigger adds {extra_ms * 1000:.0f} ms and "
        f"{extra_mib:.1f} MiB there."
    )
    return table(
        f"Cold start: process start to the first event's answer ({runs} runs per variant)",
        ("entry point", "against", "time", "time ratio [IQR]", "CPU time ratio [IQR]",
         "peak RSS", "RSS ratio [IQR]", "target", "met?"),
        rows,
        notes,
    )  # fmt: skip


def requests(results: dict[str, Any]) -> str:
    rows = []
    for key, label, where in (
        ("gcf", "Cloud Functions (Composer 2)", "token endpoint + Composer front"),
        ("lambda", "Lambda (MWAA)", "GetEnvironment + InvokeRestApi at the MWAA stand-in"),
    ):
        found = results[key]
        met = "met" if abs(found["warm"] - 1.0) < 1e-9 else "**MISSED**"
        rows.append([label, where, f"{found['warm']:.2f}", f"{found['cold']:.2f}", "= 1.0", met])
    events = results["gcf"]["events"]
    return table(
        "HTTP requests per triggered event on the warm path",
        ("entry point", "counted at", "per warm event", "first (cold) event", "target", "met?"),
        rows,
        f"Counted over {events} warm events each, after the cold one, at the stand-ins.",
    )


def sqs(results: dict[str, Any]) -> str:
    batch, one = results["variants"]["batch"], results["variants"]["one request"]
    rows = [
        [f"a batch of {results['batch']} through the handler", with_iqr(batch, ms),
         ratio(results["ratio"]), "≤ 2x", verdict(results["ratio"], 2.0)],
        ["one invoke_rest_api, bare boto3", with_iqr(one, ms), "1", "", ""],
    ]  # fmt: skip
    return table(
        f"An SQS batch against a stand-in adding {results['latency'] * 1000:.0f} ms per request "
        f"({one['n']} rounds)",
        ("call", "wall time [IQR]", "ratio to one request [IQR]", "target", "met?"),
        rows,
        "The handler triggers a batch's records concurrently, with its default settings. Each "
        "call starts after a 1 s pause, as after a pause in traffic: dagtrigger paces "
        "invoke_rest_api at 10/s with a bucket of one second's worth, so a batch arriving within a "
        "second of the last one waits for its share of the pace, by design.",
    )


def throughput(results: dict[str, Any]) -> str:
    direct = results["targets"][0]
    rate, found = direct["rate_ratio"], direct["rate"]
    per_second = "{:.1f}/s".format
    rows = [
        ["dagtrigger (Cloud Functions entry point)", with_iqr(found["dagtrigger"], per_second),
         ratio(rate), "≥ 0.9x", verdict(rate, 0.9, at_most=False)],
        ["raw client (http.client, kept alive)", with_iqr(found["raw"], per_second), "1", "", ""],
    ]  # fmt: skip
    return table(
        f"Triggers per second into a real Airflow {results['airflow_version']} "
        f"({results['rounds']} rounds of {direct['events']} events per client)",
        ("client", "triggers/s [IQR]", "ratio [IQR]", "target", "met?"),
        rows,
        "One trigger at a time, straight to Airflow on loopback; a round's rate is its events "
        "over the time spent sending them. Airflow started in "
        f"{results['startup']:.0f} s; {results['sent']} runs created, every one checked.",
    )


def overhead(results: dict[str, Any]) -> str:
    rows = []
    for found in results["targets"]:
        delay, ours, theirs = (
            found["delay"],
            found["per_event"]["dagtrigger"],
            found["per_event"]["raw"],
        )
        share = {k: found["extra_share"][k] * 100 for k in ("median", "q1", "q3")}
        targeted = delay > 0
        rows.append(
            [
                f"+{delay * 1000:.0f} ms" if delay else "none (loopback)",
                f"{ms(theirs['median'])} / {ms(theirs['p95'])}",
                f"{ms(ours['median'])} / {ms(ours['p95'])}",
                with_iqr(found["extra"], ms),
                with_iqr(share, "{:+.1f} %".format),
                "≤ 10 %" if targeted else "",
                verdict(share, 10.0) if targeted else "",
            ]
        )
    return table(
        "Per-event overhead: dagtrigger's extra time per event over the raw client "
        f"({results['rounds']} rounds per round trip)",
        ("added round trip", "raw client: median / p95", "dagtrigger: median / p95",
         "extra per event [IQR]", "as a share of the raw client's [IQR]", "target", "met?"),
        rows,
        "Both clients as in the throughput table, through a loopback proxy (bench/delay_proxy.py) "
        "that holds each request for the added time before sending it on to the same Airflow "
        "(over a new connection each time: a few ms more, for both clients alike). "
        "Median and p95 are over every event; the extra time and share are the medians of the "
        "round-by-round differences between the two clients' median event. Events per client "
        "and round: "
        + ", ".join(f"{t['events']} at +{t['delay'] * 1000:.0f} ms" for t in results["targets"])
        + ".",
    )  # fmt: skip


def burst(found: dict[str, Any]) -> str:
    per_second = "{:.1f}/s".format
    rows = []
    for row in found["rows"]:
        raw = row["raw"]
        for path, label in (("cloud-functions", "Cloud Functions"), ("lambda", "Lambda")):
            burst, bare = row["paths"][path], row["bare"][path]
            check, rounds = burst["check"], burst["round_ratios"]
            errors = burst["server_errors"] / max(burst["requests"], 1)
            rows.append(
                [
                    f"{label} x{row['instances']}",
                    f"{burst['seconds']:.0f} s",
                    per_second(burst["rate"]),
                    per_second(raw["rate"]),
                    f"{burst['ratio']:.2f}x [{rounds['q1']:.2f}-{rounds['q3']:.2f}]",
                    "met" if burst["ratio"] >= 0.9 else "**MISSED**",
                    f"{per_second(bare['rate'])}: {burst['bare_ratio']:.2f}x",
                    f"{ms(burst['cpu_per_event'])} / {ms(bare['cpu_per_event'])}",
                    f"{check['runs']}: lost {check['lost']}, doubled {check['doubled']}",
                    f"{errors:.2%} of {burst['requests']}",
                    f"{burst['retries']} / {burst['redeliveries']}",
                ]
            )
    header = ("path x K instances", "time sending", "triggers/s",
              "raw client in the same rounds", "ratio to it [IQR of the rounds' ratios]",
              "≥ 0.9x?", "bare function on the same platform: its rate, dagtrigger's ratio to it",
              "instances' CPU per event: dagtrigger / bare", "runs",
              "Airflow 5xx", "retries / redeliveries")  # fmt: skip
    first = found["rows"][0]
    bare_events = first["bare"]["cloud-functions"]["events"]
    cpus = found["cpus"] or "the instances, the platform's stand-ins and Airflow share two cores"
    return table(
        f"{found['events']} object events through K instances into Airflow {found['version']} "
        f"on PostgreSQL{', on a CPU of its own' if found['cpus'] else ''}",
        header,
        rows,
        "Each instance is a process of its own taking one delivery at a time: functions-framework "
        "serving `handle_cloud_event` (a Cloud Run instance with concurrency 1), or AWS's "
        "`awslambdaric` running `lambda_function.handler` against a Lambda Runtime API stand-in "
        "(tests/standins/lambda_runtime.py). The platform simulator delivers each event once "
        "(no duplicate deliveries here: they would add work the raw client does not do) and "
        "redelivers what fails. Every run is read back: one per event, with its object's name in "
        f"its conf. At each K the burst goes in {found['rounds']} rounds of {first['chunk']} "
        "events per path, and in each round the raw client (K threads, each a kept-alive "
        "connection, POSTing the body dagtrigger sends: its conf and note) sends as many "
        "triggers; the contenders take turns in a different order each round, so that the two "
        "rates of a round's ratio are measured a minute or two apart at most, on the same "
        "machine load. A rate is the events over the time spent sending them, summed over the "
        "rounds. The bare function "
        "(bench/bare_function.py: one POST per event on a kept-alive connection, no retry, no "
        "log, and a conf of two fields without a note, which is less work for Airflow too) took "
        f"part in every {found['bare_every']}th round, {bare_events} events in all, through "
        "K instances of the same platform: it is the most any function gets through that "
        "platform here, and what is left between it and the raw client is the platform's own "
        f"cost on this machine, where {cpus}. The instances' CPU per event is the user and "
        "system time of their processes (functions-framework's gunicorn, or awslambdaric) while "
        "they sent, divided by their events. Airflow 5xx: the share of API requests in the "
        "burst that Airflow's own access log shows answered with a 5xx. Retries are "
        "dagtrigger's, within an event; redeliveries are the platform's. Airflow started in "
        f"{found['startup']:.0f} s.",
    )


def latency(results: dict[str, Any]) -> str:
    rows = []
    for found in results["delays"]:
        times, p99 = found["times"], found["p99"]
        raw50, raw99 = times["raw"]["median"], p99["raw"]
        for path, label in (("cloud-functions", "Cloud Functions"), ("lambda", "Lambda")):
            p50, high = times[path]["median"], p99[path]
            added = (p50 - raw50) / raw50 * 100
            rows.append(
                [
                    f"+{found['delay'] * 1000:.0f} ms",
                    label,
                    f"{ms(p50)} / {ms(high)}",
                    f"{ms(raw50)} / {ms(raw99)}",
                    f"{ms(p50 - raw50)} ({added:+.1f} %)",
                    f"{ms(high - raw99)} ({(high - raw99) / raw99 * 100:+.1f} %)",
                ]
            )
    events = results["delays"][0]["events"]
    return table(
        f"Event to run created, per path, into Airflow {results['version']} on PostgreSQL "
        f"({events} events per path and round trip)",
        ("added round trip", "path", "p50 / p99", "one raw request: p50 / p99",
         "dagtrigger adds at p50", "at p99"),
        rows,
        "One warm instance per path, one event at a time: from the delivery's start (the POST to "
        "functions-framework, the invocation handed to the Lambda runtime) to its answer, by "
        "which the run exists; against one POST of the same body by a kept-alive http.client "
        "connection. Everything goes through bench/delay_proxy.py, which holds each request for "
        "the added time, and the three take turns in chunks of 20 events. What dagtrigger adds "
        "includes the platform's own hop to the instance (a loopback HTTP request or the runtime "
        "API's hand-off).",
    )  # fmt: skip


def herd(results: dict[str, Any], plot: str) -> str:
    created, refused = results["created"], results["refused"]
    rows = []
    start = 0
    for phase in results["phases"]:
        end = min(start + int(phase["seconds"]), len(created))
        if phase is results["phases"][-1]:
            end = len(created)
        span = max(end - start, 1)
        capacity = results["capacity"][start] if start < len(created) else None
        made = sum(created[start:end]) / span
        rows.append(
            [
                f"{start}-{end} s",
                phase["label"],
                "unbounded" if capacity is None else f"{capacity:.1f}/s",
                f"{made:.1f}/s",
                "" if capacity is None else f"{made / capacity:.2f}",
                f"{sum(refused[start:end]) / span:.1f}/s",
            ]
        )
        start = end
        if start >= len(created):
            break
    check = results["check"]
    notes = (
        f"{results['instances']} Cloud Functions instances (functions-framework processes, one "
        f"delivery at a time each) send {results['events']} object events through a front "
        "(bench/scale.py `CapacityFront`) to Airflow "
        f"{results['version']} on PostgreSQL. The front lets through at most the phase's rate of "
        "triggers (a token bucket holding one second's worth) and refuses the rest with its "
        "status and `Retry-After`, as Google's front, IAP or a load balancer do for a full "
        "backend; in the slow phase it serves one request at a time and holds each 0.3 s, so that "
        "answers slow down as the queue grows (its capacity is one over the hold plus Airflow's "
        "median answer). On a 429 an instance halves the rate it really sent (at most once a "
        "second); it waits out a 429's or 503's `Retry-After` plus up to 0.25 s at random and "
        "raises its pace again, slowly, on success. What still fails after "
        "`DAGTRIGGER_DEADLINE` goes back to the platform, which redelivers. "
        f"{check['runs']} runs: lost {check['lost']}, doubled {check['doubled']}; dagtrigger "
        f"retries {results['retries']}, platform redeliveries {results['redeliveries']}, in "
        f"{results['seconds']:.0f} s.\n\n![Runs created and refusals per second]({plot})"
    )
    return table(
        "Herd control: the aggregate rate of 16 instances as the server's capacity changes",
        ("seconds", "the server", "capacity", "runs created", "share of capacity",
         "refused"),
        rows,
        notes,
    )  # fmt: skip


def herd_plot(results: dict[str, Any], path: Any) -> None:
    """The rate over time as an SVG (matplotlib, without timestamps so that reruns diff cleanly)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "dagtrigger"
    seconds = list(range(len(results["created"])))
    capacity = [c if c is not None else float("nan") for c in results["capacity"]]
    figure, axes = plt.subplots(figsize=(9, 3.8))
    axes.step(seconds, capacity, where="post", color="grey", linestyle="--", label="capacity")
    axes.plot(seconds, results["arrived"], color="tab:orange", alpha=0.7,
              label="trigger requests arriving")  # fmt: skip
    axes.bar(seconds, results["refused"], width=1.0, color="tab:red", alpha=0.35,
             label="refused (429 / 503)")  # fmt: skip
    axes.plot(seconds, results["created"], color="tab:blue", linewidth=2, label="runs created")
    start = 0.0
    for phase in results["phases"][:-1]:
        start += phase["seconds"]
        axes.axvline(start, color="black", linewidth=0.5)
    axes.set_xlabel("seconds")
    axes.set_ylabel("per second")
    axes.set_title(f"{results['instances']} dagtrigger instances, Airflow {results['version']}")
    axes.legend(loc="upper right", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)


def faults(found: dict[str, Any]) -> str:
    rows = [
        [
            run["airflow"],
            f"{run['events']}",
            f"{run['seconds']:.0f} s",
            f"after {run['killed_after']} events; down {run['downtime']:.1f} s",
            f"{run['faults']} of {run['api_requests']} ({run['faults'] / run['api_requests']:.0%})",
            f"{run['runs']}: lost {run['events'] - run['runs']}, doubled "
            f"{run['added'] - run['runs']}, wrong conf {run['wrong_conf']}",
            f"{run['retries']} / {run['redeliveries']}",
            f"{run['duplicates_sent']}",
            f"{run['dead_lettered']}",
        ]
        for run in found["runs"]
    ]
    header = ("Airflow", "events", "wall time", "API server killed", "faults injected",
              "runs", "retries / redeliveries", "duplicate deliveries", "dead-lettered")  # fmt: skip
    instances = found["runs"][0]["instances"]
    return table(
        f"Object events through {instances} instances, with faults and an API server restart",
        header,
        rows,
        f"Eventarc's deliveries (the platform simulator, with its duplicate deliveries) reach "
        f"{instances} functions-framework instances, one delivery at a time each, through a "
        "proxy that faults a quarter of the API requests (500, 503, 429, a reset before or after "
        "the request reached Airflow, an answer too slow to wait for); when half the events are "
        "delivered, the API server's process group is killed and started again on its port. "
        "Each event must still start exactly one run with its conf "
        "(tests/integration/test_chaos.py, `test_faults_and_an_api_server_restart_at_scale_"
        "start_each_run_once`). Retries are dagtrigger's, within a delivery; redeliveries are the "
        "platform's, after dagtrigger gave the event back.",
    )
