"""Faults at scale: `make chaos`'s test of object events through four function instances, with
24 % of Airflow's answers faulted and its API server killed and started again halfway, run at
full size (5,000 events) on Airflow 2 and 3 on PostgreSQL; its figures read back from the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO

TEST = "tests/integration/test_chaos.py::test_faults_and_an_api_server_restart_at_scale_start_each_run_once"


def measure(work: Path, full: bool) -> dict[str, Any]:
    results = work / "faults.jsonl"
    env = {**os.environ, "DAGTRIGGER_CHAOS_RESULTS": str(results)}
    if full:
        env["DAGTRIGGER_CHAOS"] = "full"
    command = [sys.executable, "-m", "pytest", TEST, "-q", "-s", "-p", "no:cacheprovider"]
    with open(work / "faults.log", "wb") as log:
        status = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    runs = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    if status.returncode != 0 or not runs:
        raise RuntimeError(f"the chaos test failed (exit {status.returncode}): see faults.log")
    return {"runs": runs}
