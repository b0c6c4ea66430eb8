"""`python -m bench` (what `make bench` runs): every measurement, the tables, docs/benchmarks.md.

    python -m bench                      # everything, about 8 minutes on 2 cores
    python -m bench --quick              # few repetitions: checks the harness, not dagtrigger
    python -m bench --only cold,warm     # some of: cold, warm, sqs, throughput

A missed target is printed as MISSED and the exit status stays 0: this reports, it does not
gate. The exit status is 1 only when a measurement itself could not be made.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import cold, report, sqs, throughput, warm
from bench.serve import REPO

SECTIONS = ("cold", "warm", "sqs", "throughput")
PACKAGES = (
    "urllib3", "google-auth", "requests", "functions-framework", "boto3", "botocore",
    "aws-lambda-powertools",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (harness check)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--cold-runs", type=int, default=None, help="runs per cold-start variant")
    parser.add_argument("--threads", type=int, default=1, help="threads for the Airflow 3 run")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: pick from {SECTIONS}")

    plan = {
        "cold_runs": args.cold_runs or (3 if args.quick else 15),
        "cold_warmup": 1 if args.quick else 2,
        "warm_rounds": 5 if args.quick else 41,
        "sqs_rounds": 3 if args.quick else 9,
        "throughput_rounds": 2 if args.quick else 8,
        "throughput_seconds": 2.0 if args.quick else 3.0,
    }
    facts = machine_facts()
    print(f"dagtrigger benchmark: {facts['summary']}", file=sys.stderr, flush=True)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    loads: dict[str, tuple[float, float]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dagtrigger-bench-") as directory:
        work = Path(directory)
        for section in SECTIONS:
            if section not in only:
                continue
            print(f"{section} ...", file=sys.stderr, flush=True)
            before = os.getloadavg()[0]
            try:
                results[section] = run_section(section, work / section, plan, args.threads)
            except Exception:
                errors[section] = traceback.format_exc()
                print(errors[section], file=sys.stderr)
                _show_logs(work / section)
            loads[section] = (before, os.getloadavg()[0])
    facts["duration"] = time.monotonic() - started
    facts["loads"] = loads
    tables = build_tables(results, plan)
    for table in [*tables, report.summary_table(tables)]:
        print()
        print(report.plain(table), end="")
    for section, error in errors.items():
        print(f"\n{section}: FAILED to measure:\n{error}")
    write_document(args.output, tables, results, errors, facts, plan, args.quick)
    print(
        f"\nwrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}"
    )
    missed = sum(1 for t in tables for r in t.rows if r.verdict.startswith("MISSED"))
    print(f"{missed} target(s) MISSED" if missed else "every target met")
    return 1 if errors else 0


def run_section(section: str, work: Path, plan: dict[str, Any], threads: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    if section == "cold":
        return cold.measure(work, plan["cold_runs"], plan["cold_warmup"])
    if section == "warm":
        return warm.measure(work, plan["warm_rounds"], quick=plan["warm_rounds"] < 10)
    if section == "sqs":
        return sqs.measure(work, plan["sqs_rounds"])
    return throughput.measure(work, plan["throughput_rounds"], plan["throughput_seconds"], threads)


def _show_logs(work: Path) -> None:
    for log in sorted(work.glob("*.log")):
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {log.name} (last lines) ---\n{tail}", file=sys.stderr)


def build_tables(results: dict[str, Any], plan: dict[str, Any]) -> list[report.Table]:
    tables: list[report.Table] = []
    if "cold" in results:
        tables.append(report.cold_table(results["cold"], plan["cold_runs"]))
    if "warm" in results:
        tables.extend(report.warm_tables(results["warm"]))
        tables.append(report.requests_table(results["warm"]))
    if "sqs" in results:
        tables.append(report.sqs_table(results["sqs"]))
    if "throughput" in results:
        tables.append(report.throughput_table(results["throughput"]))
    return tables


def machine_facts() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "functions"))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = platform.python_version()
    return {
        "date": now,
        "cpu": cpu,
        "nproc": usable,
        "python": f"{python} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "commit": f"{commit}{' with uncommitted changes in functions/' if dirty else ''}",
        "versions": versions,
        "summary": f"{now}, {usable} CPU(s), Python {python}, commit {commit or '?'}",
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def write_document(
    path: Path,
    tables: list[report.Table],
    results: dict[str, Any],
    errors: dict[str, str],
    facts: dict[str, Any],
    plan: dict[str, Any],
    quick: bool,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    plots = []
    if "cold" in results and report.plot_cold(
        results["cold"], path.with_name(f"{stem}-cold-start.png")
    ):
        plots.append(("cold", f"{stem}-cold-start.png"))
    if "warm" in results and report.plot_warm(results["warm"], path.with_name(f"{stem}-warm.png")):
        plots.append(("warm", f"{stem}-warm.png"))
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand. Every figure is a "
        "ratio measured side by side in the same run on the same machine: variants alternate "
        "(A B B A ...) after warm-up, each ratio is the median of the per-round ratios, and the "
        "spread is the interquartile range (IQR) of the rounds. A target is judged on the median; "
        '"IQR spans the target" means a quieter machine may judge it otherwise.',
        "",
    ]
    if quick:
        lines += ["**Quick run (`--quick`): too few repetitions to judge anything.**", ""]
    lines += [
        "## Machine",
        "",
        f"- command: `make bench` (here: `{' '.join(['python -m bench', *sys.argv[1:]])}`)",
        f"- date: {facts['date']}; took {facts['duration'] / 60:.1f} min",
        f"- CPUs usable (nproc): {facts['nproc']} ({facts['cpu']})",
        f"- Python {facts['python']} on {facts['platform']}",
        f"- dagtrigger commit {facts['commit']}",
        "- " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        "- load average (1 min) before → after each section: "
        + "; ".join(f"{s} {a:.1f} → {b:.1f}" for s, (a, b) in facts["loads"].items()),
        "",
    ]
    lines += [report.markdown(report.summary_table(tables))]
    sections = {
        "cold": "## Cold start",
        "warm": "## Warm per-event cost and requests per event",
        "sqs": "## SQS batch",
        "throughput": "## Sustained triggers into Airflow 3",
    }
    owners = _table_sections(tables)
    for section, heading in sections.items():
        if section not in results and section not in errors:
            continue
        lines += [heading, ""]
        if section in errors:
            lines += [
                "Could not be measured:",
                "",
                "```",
                errors[section].strip()[-2000:],
                "```",
                "",
            ]
            continue
        for table in tables:
            if owners.get(id(table)) == section:
                lines += [report.markdown(table)]
        for kind, name in plots:
            if kind == section:
                lines += [f"![{heading[3:]}]({name})", ""]
    path.write_text("\n".join(lines).rstrip() + "\n")


def _table_sections(tables: list[report.Table]) -> dict[int, str]:
    owners = {}
    for table in tables:
        title = table.title
        if title.startswith("Cold start"):
            owners[id(table)] = "cold"
        elif title.startswith(("Warm", "HTTP requests")):
            owners[id(table)] = "warm"
        elif title.startswith("An SQS"):
            owners[id(table)] = "sqs"
        else:
            owners[id(table)] = "throughput"
    return owners


if __name__ == "__main__":
    sys.exit(main())
