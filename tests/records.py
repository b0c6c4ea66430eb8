"""Reading back what was logged: a handler that keeps every record it is given, and the JSON
lines a function process printed."""

from __future__ import annotations

import json
import logging
from typing import Any


def json_log_lines(output: str, marker: str) -> list[dict[str, Any]]:
    """The lines of `output` that are JSON objects holding `marker` (Cloud Logging's "severity",
    Powertools' "level"); anything else a process printed is skipped."""
    entries = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and marker in entry:
            entries.append(entry)
    return entries


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
