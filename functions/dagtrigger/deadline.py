"""The time one trigger has left: every request and every wait made for it ends by then.

`call_with_retries` opens a deadline for each trigger (DAGTRIGGER_DEADLINE, or less when the
platform gives less); the HTTP session and the throttle read `time_left()` so that no single
request, token fetch or pause can run past it. Nested deadlines keep the earlier end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ends_at: ContextVar[float | None] = ContextVar("dagtrigger_deadline", default=None)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Everything inside ends within `seconds` (or by an enclosing deadline, if sooner)."""
    ends_at = time.monotonic() + seconds
    enclosing = _ends_at.get()
    reset = _ends_at.set(ends_at if enclosing is None else min(enclosing, ends_at))
    try:
        yield
    finally:
        _ends_at.reset(reset)


def time_left() -> float | None:
    """Seconds left before the current deadline, or None outside any."""
    ends_at = _ends_at.get()
    return None if ends_at is None else ends_at - time.monotonic()
