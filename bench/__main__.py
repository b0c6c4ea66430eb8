"""`python -m bench` (what `make bench` runs): every measurement, its table, docs/benchmarks.md.

    python -m bench                      # everything, about 2 h 45 min on 2 cores
    python -m bench --quick              # few repetitions: checks the harness, not dagtrigger
    python -m bench --only cold,airflow  # some of: cold, requests, sqs, airflow, burst3, burst2,
                                         # split3, latency, herd, faults (the first four take
                                         # 5 minutes)
    python -m bench --only burst2 --burst-events 1000   # a shorter burst

A missed target is shown as MISSED and the exit status stays 0: this reports, it does not gate.
The exit status is 1 only when a measurement itself could not be made.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import airflow3, cold, faults, report, scale, sqs, warm
from bench.common import REPO

SECTIONS = {
    "cold": "Cold start",
    "requests": "Requests per warm event",
    "sqs": "SQS batch",
    "airflow": "Into a real Airflow 3: throughput and per-event overhead",
    "burst3": "Bursts through many function instances into Airflow 3 on PostgreSQL",
    "burst2": "Bursts through many function instances into Airflow 2 on PostgreSQL",
    "split3": "Bursts into Airflow 3 on a CPU of its own",
    "latency": "Event to run created, per path, at realistic round trips",
    "herd": "Herd control: many instances against a server that pushes back",
    "faults": "Faults and an API server restart at scale",
}
# The split run asks how the bursts' ratios change when Airflow has a CPU of its own, not how
# long Airflow holds up: a fifth of a full burst answers that.
SPLIT_EVENTS = 1000
PACKAGES = (
    "urllib3", "google-auth", "requests", "functions-framework", "boto3", "botocore",
    "aws-lambda-powertools",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    # Stopped with SIGTERM, unwind as on Ctrl-C, so that every Airflow, PostgreSQL and function
    # instance the run started is stopped by its `finally`.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (harness check)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument(
        "--burst-events", type=int, default=5000, help="object events per burst (default 5000)"
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if set(only) - set(SECTIONS):
        parser.error(f"unknown section(s) in {args.only!r}: pick from {', '.join(SECTIONS)}")
    facts = machine_facts()
    print(f"dagtrigger benchmark: {facts['summary']}", file=sys.stderr, flush=True)
    argv_shown = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    command = (
        "`make bench` (`python -m bench`)" if argv_shown == "python -m bench" else f"`{argv_shown}`"
    )
    parts = carried_over(args.output, only)
    failed = False
    with tempfile.TemporaryDirectory(prefix="dagtrigger-bench-") as directory:
        for section in (s for s in SECTIONS if s in only):
            print(f"{section} ...", file=sys.stderr, flush=True)
            work = Path(directory) / section
            work.mkdir()
            load, started = os.getloadavg()[0], time.monotonic()
            try:
                body = run_section(section, work, args)
            except Exception:
                failed = True
                error = traceback.format_exc()
                print(error, file=sys.stderr)
                _show_logs(work)
                body = f"Could not be measured:\n\n```\n{error.strip()[-2000:]}\n```\n"
            provenance = (
                f"Measured {facts['date']} at commit {facts['commit']} by {command} in "
                f"{(time.monotonic() - started) / 60:.1f} min; load average (1 min) "
                f"{load:.1f} → {os.getloadavg()[0]:.1f}."
            )
            if args.quick:
                provenance += " **Quick run: too few repetitions to judge anything.**"
            parts[section] = f"{provenance}\n\n{body}"
    document = render(parts, facts)
    print(document)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document)
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if failed else 0


def run_section(section: str, work: Path, args: argparse.Namespace) -> str:
    quick = args.quick
    if section == "cold":
        runs = 3 if quick else 15
        return report.cold(cold.measure(work, runs, warmup=1 if quick else 2), runs)
    if section == "requests":
        return report.requests(warm.measure(work, events=10 if quick else 50))
    if section == "sqs":
        return report.sqs(sqs.measure(work, rounds=3 if quick else 9))
    if section in ("burst3", "burst2", "split3"):
        split = section == "split3"
        events = min(args.burst_events, SPLIT_EVENTS) if split else args.burst_events
        if quick:
            events = 60
        return report.burst(scale.burst(work, section[-1], events, (1, 4, 16), split=split))
    if section == "latency":
        return report.latency(scale.latency(work, events=20 if quick else 200))
    if section == "herd":
        found = scale.herd(work, instances=16, events=150 if quick else 700)
        plot = args.output.parent / "herd-control.svg"
        report.herd_plot(found, plot)
        return report.herd(found, plot.name)
    if section == "faults":
        return report.faults(faults.measure(work, full=not quick))
    per_round = {0.0: 5, 0.02: 4, 0.1: 3} if quick else {0.0: 30, 0.02: 15, 0.1: 10}
    found = airflow3.measure(work, 2 if quick else 10, per_round)
    return report.throughput(found) + "\n" + report.overhead(found)


def _show_logs(work: Path) -> None:
    for log in sorted(work.glob("*.log")):
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {log.name} (last lines) ---\n{tail}", file=sys.stderr)


def carried_over(path: Path, measured: list[str]) -> dict[str, str]:
    """The sections of the document at `path` that this run does not measure, kept as they are
    (each says when and how it was measured)."""
    if not path.exists():
        return {}
    titles = {title: key for key, title in SECTIONS.items() if key not in measured}
    kept = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        if title.strip() in titles:
            kept[titles[title.strip()]] = body.strip() + "\n"
    return kept


def render(parts: dict[str, str], facts: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand. What a user of "
        "dagtrigger feels, each measured side by side with a baseline in the same run: the two "
        "take turns (A B B A ...) after warm-up, a ratio is the median of the round-by-round "
        "ratios, and [brackets] hold the interquartile range (IQR) of the rounds. A target is "
        'judged on the median; "IQR spans the target" means a quieter machine may judge it '
        "otherwise. Medians and quantiles are the standard library's `statistics`.",
        "",
        "## Machine",
        "",
        f"- CPUs usable (nproc): {facts['nproc']} ({facts['cpu']})",
        f"- Python {facts['python']} on {facts['platform']}",
        "- " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        "",
    ]
    for section, title in SECTIONS.items():
        if section in parts:
            lines += [f"## {title}", "", parts[section]]
    return "\n".join(lines).rstrip() + "\n"


def machine_facts() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "functions"))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nproc = len(os.sched_getaffinity(0))
    return {
        "date": now,
        "cpu": cpu,
        "nproc": nproc,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "commit": f"{commit}{' with uncommitted changes in functions/' if dirty else ''}",
        "versions": versions,
        "summary": f"{now}, {nproc} CPU(s), Python {platform.python_version()}, commit {commit}",
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
