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
