"""CloudWatch metrics as embedded metric format (EMF): counts gathered during one invocation and
written as one JSON line on stdout when it ends, where CloudWatch Logs turns them into metrics.

The line is the one Powertools' Metrics writes for counts (the namespace, the `service` dimension
when POWERTOOLS_SERVICE_NAME is set, one value per count added), and its settings apply:
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_DISABLED and
POWERTOOLS_DEV. It is written here because every direct invocation pays for it: Powertools'
metric validation and serialisation took as long as the rest of dagtrigger's own work on the
warm path (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from aws_lambda_powertools.shared.functions import strtobool


class CountMetrics:
    """Thread-safe: the records of an SQS batch are handled in threads of one invocation."""

    def __init__(
        self,
        namespace: str,
        service: str | None,
        *,
        disabled: bool = False,
        stream: Callable[[], TextIO] = lambda: sys.stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.disabled = disabled
        self._stream = stream
        self._clock = clock
        self._counts: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CountMetrics:
        disabled_setting = env.get("POWERTOOLS_METRICS_DISABLED")
        disabled = strtobool(disabled_setting or "false") or (
            disabled_setting is None and strtobool(env.get("POWERTOOLS_DEV", "false"))
        )
        return cls(
            env.get("POWERTOOLS_METRICS_NAMESPACE", "dagtrigger"),
            env.get("POWERTOOLS_SERVICE_NAME") or None,
            disabled=disabled,
        )

    def add(self, name: str, count: int) -> None:
        with self._lock:
            self._counts.setdefault(name, []).append(float(count))

    def flush(self) -> None:
        """Write the invocation's counts (nothing when there are none) and start afresh."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts or self.disabled:
            return
        directive = {
            "Namespace": self.namespace,
            "Dimensions": [["service"] if self.service else []],
            "Metrics": [{"Name": name, "Unit": "Count"} for name in counts],
        }
        line: dict[str, Any] = {
            "_aws": {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": [directive]}
        }
        if self.service:
            line["service"] = self.service
        line.update(counts)
        stream = self._stream()
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()
