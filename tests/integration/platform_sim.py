"""Delivery the way the platforms do it: at least once, redelivered with backoff, out of order.

- Eventarc: one event per delivery; any non-2xx is redelivered with exponential backoff, for a
  day in reality (here: up to `max_attempts`).
- Lambda asynchronous invocation: one event per invocation; an exception is retried twice, then
  the event goes to the on-failure destination.
- SQS: batches of up to ten; the ids in `batchItemFailures` become visible again after the
  visibility timeout; a message received `max_attempts` times goes to the dead-letter queue.

Every platform also delivers some events twice although they succeeded (at-least-once), and
picks the next delivery at random among those due (no ordering guarantee). Times are scaled
down: a backoff of seconds here stands for minutes there.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Delivers a batch; returns the keys of the events that failed (to be redelivered).
Deliver = Callable[[Sequence[tuple[str, Any]]], set[str]]


@dataclass
class Stats:
    deliveries: int = 0
    redeliveries: int = 0
    duplicates_sent: int = 0
    dead_lettered: list[str] = field(default_factory=list)


@dataclass(eq=False)  # each delivery is itself: two due at the same moment are not the same
class _Pending:
    due: float
    key: str = field(compare=False)
    event: Any = field(compare=False)
    attempt: int = field(compare=False, default=1)


class PlatformSimulator:
    def __init__(
        self,
        deliver: Deliver,
        *,
        max_attempts: int,
        batch_size: int = 1,
        workers: int = 4,
        duplicate_rate: float = 0.1,
        backoff: tuple[float, float] = (0.05, 1.0),
        seed: int = 11,
    ) -> None:
        self._deliver = deliver
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        self._workers = workers
        self._duplicate_rate = duplicate_rate
        self._backoff = backoff
        self._random = random.Random(seed)
        self._pending: list[_Pending] = []
        self._in_flight = 0
        self._lock = threading.Condition()
        self.stats = Stats()

    def run(self, events: Sequence[tuple[str, Any]], timeout: float) -> Stats:
        """Deliver every event until it succeeds or is dead-lettered; returns the counts."""
        now = time.monotonic()
        self._pending = [_Pending(now, key, event) for key, event in events]
        self._random.shuffle(self._pending)
        deadline = now + timeout
        threads = [
            # Daemons: a run interrupted (Ctrl-C, SIGTERM) must not wait for its deliveries.
            threading.Thread(target=self._work, args=(deadline,), daemon=True)
            for _ in range(self._workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._pending:
            raise TimeoutError(f"{len(self._pending)} deliveries still pending after {timeout:g} s")
        return self.stats

    def _work(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                time.sleep(0.01)
                continue
            failed = self._deliver([(p.key, p.event) for p in batch])
            self._settle(batch, failed)

    def _take(self) -> list[_Pending] | None:
        with self._lock:
            if not self._pending and self._in_flight == 0:
                return None
            now = time.monotonic()
            due = [p for p in self._pending if p.due <= now]
            self._random.shuffle(due)  # no ordering guarantee
            batch = due[: self._batch_size]
            for pending in batch:
                self._pending.remove(pending)
            self._in_flight += len(batch)
            self.stats.deliveries += len(batch)
            return batch

    def _settle(self, batch: list[_Pending], failed: set[str]) -> None:
        with self._lock:
            self._in_flight -= len(batch)
            now = time.monotonic()
            for pending in batch:
                if pending.key in failed:
                    if pending.attempt >= self._max_attempts:
                        self.stats.dead_lettered.append(pending.key)
                        continue
                    low, high = self._backoff
                    delay = min(high, low * 2 ** (pending.attempt - 1)) * (
                        0.5 + self._random.random()
                    )
                    self._pending.append(
                        _Pending(now + delay, pending.key, pending.event, pending.attempt + 1)
                    )
                    self.stats.redeliveries += 1
                elif self._random.random() < self._duplicate_rate:
                    self._pending.append(
                        _Pending(
                            now + self._random.random() * 0.2,
                            pending.key,
                            pending.event,
                            pending.attempt,
                        )
                    )
                    self.stats.duplicates_sent += 1
