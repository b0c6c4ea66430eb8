"""Client-side pacing for one Airflow target: a request rate and a cap on requests in flight.

The rate is a token bucket holding one second's worth of requests, full at the start, so a
batch of events goes out at once and only sustained traffic is paced. It adapts to the server
(additive increase, multiplicative decrease): each 429 halves the rate and honours Retry-After
for everyone in this process, each success raises it again towards the configured limit. A
target without a configured limit is not paced until it first says 429. No wait runs past the
trigger's deadline: a request that could not start in time fails at once, as a transient error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagtrigger.deadline import time_left
from dagtrigger.errors import TransientTriggerError

MIN_RATE = 0.5  # requests/s: never slower than this, however often the server throttles
_DECREASE = 0.5
_UNPACED_ABOVE = 1000.0  # requests/s past which an unlimited target stops being paced again


class Throttle:
    def __init__(
        self,
        rate: float | None,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = rate
        self.rate = rate  # the current pace; None while unpaced
        self.throttled_count = 0
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._clock = clock
        self._tokens = max(1.0, rate or 1.0)  # a full bucket: one second's burst
        self._refilled = clock()
        self._not_before = 0.0  # Retry-After: nobody starts before this
        self._sleep = sleep

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the in-flight places, starting no sooner than the pace allows."""
        left = time_left()
        if not self._in_flight.acquire(timeout=None if left is None else max(left, 0.0)):
            raise TransientTriggerError(
                "no request to Airflow could start before this trigger's deadline: the "
                "DAGTRIGGER_CONCURRENCY requests in flight held every place"
            )
        try:
            self._wait_for_turn()
            yield
        finally:
            self._in_flight.release()

    def throttled(self, retry_after: float | None) -> None:
        """The server answered 429: slow down, and let nobody start before Retry-After."""
        with self._lock:
            self.throttled_count += 1
            current = self.rate if self.rate is not None else _UNPACED_ABOVE
            self.rate = max(current * _DECREASE, MIN_RATE)
            self._tokens = min(self._tokens, 0.0)  # the server is full: no burst until refilled
            if retry_after is not None:
                self._not_before = max(self._not_before, self._clock() + retry_after)

    def succeeded(self) -> None:
        """A request went through: creep back towards the configured limit."""
        with self._lock:
            if self.rate is None or self.rate == self.limit:
                return
            step = (self.limit or _UNPACED_ABOVE) * 0.02
            raised = self.rate + max(step, 0.1)
            if self.limit is None and raised >= _UNPACED_ABOVE:
                self.rate = None
            else:
                self.rate = min(raised, self.limit) if self.limit is not None else raised

    def _wait_for_turn(self) -> None:
        with self._lock:
            now = self._clock()
            if self.rate is None and self._not_before <= now:
                return
            rate = self.rate if self.rate is not None else _UNPACED_ABOVE
            capacity = max(1.0, rate)
            self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            start = max(now, self._not_before)
            if self._tokens < 1.0:
                start = max(start, now + (1.0 - self._tokens) / rate)
            left = time_left()
            if left is not None and start - now > left:
                raise TransientTriggerError(
                    f"Airflow is paced (it answered 429): the next request may start in "
                    f"{start - now:.1f} s, after this trigger's deadline ({max(left, 0):.1f} s left)",
                    retry_after=start - now,
                )
            # Take the token now (the balance may go negative): later callers queue behind.
            self._tokens -= 1.0
        if start > now:
            self._sleep(start - now)
