"""Client-side pacing for one Airflow target: a request rate and a cap on requests in flight.

The rate is a token bucket holding one second's worth of requests, full at the start, so a
batch of events goes out at once and only sustained traffic is paced. It adapts to the server
(additive increase, multiplicative decrease), so that many instances, each sending a few requests
a second, settle together near what the server takes:

- A 429 halves the rate this instance was really sending (its pace, or what it started in the
  last two seconds when that was less: halving a pace never reached would change nothing), at
  most once a second, since refusals of requests already sent arrive in bunches. It also holds
  everyone in this process until the answer's Retry-After.
- Successes raise the rate again, slowly at low rates, towards the configured limit. A target
  without a configured limit is not paced until it first says 429.
- A 503 is only retried (after its Retry-After): a front may answer it for one DAG's path alone,
  and the instance's other triggers must not slow down for it.

The pace yields to the trigger's deadline; the server's word does not. A trigger whose turn at the
lowered pace comes too late goes out while there is still time for its request, because a pace
learnt from a few refusals is a guess, and failing on a guess would send the event back to the
platform and, repeated, to its dead-letter queue. The configured limit (a quota such as MWAA's)
and a Retry-After are kept: a request that could not start before the deadline under them fails
at once, as a transient error, and the platform delivers the event again later.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagtrigger.deadline import time_left
from dagtrigger.errors import TransientTriggerError

MIN_RATE = 0.5  # requests/s: never slower than this, however often the server throttles
_DECREASE = 0.5
_CALM = 1.0  # seconds after a decrease in which more refusals (of requests already sent) do not
_SENT_OVER = 2.0  # seconds of past starts from which the rate really sent is read
_INCREASE = 0.2  # requests/s gained per second of successes at low rates...
_GROWTH = 0.02  # ...and at higher rates, this share of the rate per success
_UNPACED_ABOVE = 1000.0  # requests/s past which an unlimited target stops being paced again
# A request let out early for its deadline starts this long before it, at least: twice the
# time requests have recently taken, and never less than the floor.
_REQUEST_TIME_FLOOR = 0.5
_REQUEST_TIME_WEIGHT = 0.2  # of the newest request in the running mean of request times


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
        self._decreased = float("-inf")
        self._starts: collections.deque[float] = collections.deque()
        self._request_seconds = 0.0
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
            started = self._clock()
            yield
        finally:
            self._in_flight.release()
        self._took(self._clock() - started)

    def throttled(self, retry_after: float | None) -> None:
        """The server answered 429: slow down, and let nobody start before Retry-After."""
        with self._lock:
            now = self._clock()
            self.throttled_count += 1
            self._tokens = min(self._tokens, 0.0)  # the server is full: no burst until refilled
            self._refilled = max(self._refilled, now)
            if retry_after is not None:
                self._not_before = max(self._not_before, now + retry_after)
            if now - self._decreased < _CALM:
                return
            self._decreased = now
            current = self.rate if self.rate is not None else _UNPACED_ABOVE
            self.rate = max(min(current, self._sent_rate(now)) * _DECREASE, MIN_RATE)

    def succeeded(self) -> None:
        """A request went through: creep back towards the configured limit."""
        with self._lock:
            if self.rate is None or self.rate == self.limit:
                return
            raised = self.rate + max(_INCREASE / self.rate, self.rate * _GROWTH)
            if self.limit is None and raised >= _UNPACED_ABOVE:
                self.rate = None
            else:
                self.rate = min(raised, self.limit) if self.limit is not None else raised

    def _took(self, seconds: float) -> None:
        with self._lock:
            self._request_seconds += _REQUEST_TIME_WEIGHT * (seconds - self._request_seconds)

    def _started(self, start: float) -> None:
        self._starts.append(start)
        while self._starts[0] < start - _SENT_OVER:
            self._starts.popleft()

    def _sent_rate(self, now: float) -> float:
        """Requests per second started over the last few seconds; unbounded without evidence."""
        while self._starts and self._starts[0] < now - _SENT_OVER:
            self._starts.popleft()
        if len(self._starts) < 2:
            return _UNPACED_ABOVE
        return len(self._starts) / _SENT_OVER

    def _wait_for_turn(self) -> None:
        with self._lock:
            now = self._clock()
            if self.rate is None and self._not_before <= now:
                self._started(now)
                return
            rate = self.rate if self.rate is not None else _UNPACED_ABOVE
            capacity = max(1.0, rate)
            self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            start = max(now, self._not_before)
            left = time_left()
            if self._tokens < 1.0:
                turn = now + (1.0 - self._tokens) / rate
                if left is not None and self.rate != self.limit:
                    reserve = max(_REQUEST_TIME_FLOOR, 2 * self._request_seconds)
                    turn = min(turn, now + left - reserve)
                start = max(start, turn)
            if left is not None and start - now > left:
                raise TransientTriggerError(
                    f"Airflow is paced (Retry-After or the configured rate limit): the next "
                    f"request may start in {start - now:.1f} s, after this trigger's deadline "
                    f"({max(left, 0):.1f} s left)",
                    retry_after=start - now,
                )
            # Take the token now (the balance may go negative): later callers queue behind.
            self._tokens -= 1.0
            self._started(start)
        if start > now:
            self._sleep(start - now)
