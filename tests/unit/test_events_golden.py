"""Golden files: each tests/events/NAME.json normalises to exactly NAME.expected.json.

The expected files are the contract of the conf a DAG receives, of the identity its run id is
derived from, and of the run id itself: a run id that changed for an event already delivered
would start a second run when that event is delivered again after an upgrade. To rewrite them
after a deliberate change (a run id change is a breaking one), run

    DAGTRIGGER_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_events_golden.py

and review the diff line by line before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.events import Normalised, normalise
from dagtrigger.run_id import build_dag_run_id

EVENTS = Path(__file__).resolve().parents[1] / "events"
INPUTS = sorted(p for p in EVENTS.glob("*.json") if not p.name.endswith(".expected.json"))
REGENERATE = os.environ.get("DAGTRIGGER_REGEN_GOLDEN") == "1"


def expected_path(source: Path) -> Path:
    return source.with_name(source.stem + ".expected.json")


def render(result: Normalised) -> dict[str, Any]:
    """The JSON shape of an expected file."""
    return {
        "events": [
            {
                "conf": event.default_conf(),
                "identity": list(event.identity),
                "run_id": build_dag_run_id(event),
            }
            for event in result.events
        ],
        "skipped": list(result.skipped),
    }


def regenerate(source: Path, rendered: dict[str, Any]) -> None:
    """Maintainer helper: write the expected twin of `source`."""
    text = json.dumps(rendered, indent=2, ensure_ascii=False, allow_nan=False)
    expected_path(source).write_text(text + "\n", encoding="utf-8")


def test_every_input_has_its_expected_twin() -> None:
    twins = {p.name for p in EVENTS.glob("*.expected.json")}
    assert len(INPUTS) >= 25
    assert {expected_path(p).name for p in INPUTS} == twins


@pytest.mark.parametrize("source", INPUTS, ids=[p.stem for p in INPUTS])
def test_golden(source: Path) -> None:
    payload = json.loads(source.read_text(encoding="utf-8"))
    rendered = render(normalise(payload))
    # The conf goes to Airflow as strict JSON: NaN, bytes or tuples would not survive the trip.
    assert json.loads(json.dumps(rendered, allow_nan=False)) == rendered
    if REGENERATE:
        regenerate(source, rendered)
    expected = json.loads(expected_path(source).read_text(encoding="utf-8"))
    assert rendered == expected
