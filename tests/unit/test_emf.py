"""The Lambda's metrics line: what Powertools' Metrics writes for the same counts, and its settings."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from dagtrigger.platforms.emf import CountMetrics

COUNTS = [("RunsCreated", 1), ("Duplicates", 2), ("RunsCreated", 3), ("Failed", 1)]


def ours(env: dict[str, str], counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    metrics = CountMetrics.from_env(env)
    metrics._stream = lambda: stream
    for name, count in counts:
        metrics.add(name, count)
    metrics.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def powertools(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    counts: list[tuple[str, int]],
) -> list[dict[str, Any]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    metrics = Metrics(namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "dagtrigger"))
    metrics.clear_metrics()  # Powertools' metric set is shared by every instance

    @metrics.log_metrics(raise_on_empty_metrics=False)
    def handler(event: object, context: object) -> None:
        for name, count in counts:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)

    capsys.readouterr()
    handler({}, None)
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def without_timestamp(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for line in lines:
        assert isinstance(line["_aws"].pop("Timestamp"), int)
    return lines


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    "env",
    [
        {"POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_METRICS_NAMESPACE": "etl"},
        {},
        {"POWERTOOLS_METRICS_DISABLED": "true"},
        {"POWERTOOLS_DEV": "1"},
        {"POWERTOOLS_DEV": "1", "POWERTOOLS_METRICS_DISABLED": "false"},
    ],
    ids=["service-and-namespace", "defaults", "disabled", "dev-mode", "dev-mode-enabled"],
)
@pytest.mark.parametrize("counts", [COUNTS, []], ids=["counts", "none"])
def test_the_line_is_powertools_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    counts: list[tuple[str, int]],
) -> None:
    expected = without_timestamp(powertools(monkeypatch, capsys, env, counts))

    assert without_timestamp(ours(env, counts)) == expected


def test_counts_are_written_once_then_start_afresh() -> None:
    stream = io.StringIO()
    metrics = CountMetrics("dagtrigger", "svc", stream=lambda: stream, clock=lambda: 1.5)
    metrics.add("RunsCreated", 1)
    metrics.flush()
    metrics.flush()

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["_aws"]["Timestamp"] == 1500 and line["RunsCreated"] == [1.0]
