"""Exponential backoff with jitter inside a deadline, honouring the server's Retry-After (plus a
little jitter of its own, so that many instances throttled together do not return together)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from dagtrigger.deadline import time_limit
from dagtrigger.errors import TransientTriggerError

T = TypeVar("T")
logger = logging.getLogger("dagtrigger")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    deadline: float = 30.0  # seconds for all attempts; then the platform's redelivery takes over
    base_delay: float = 0.25
    max_delay: float = 8.0
    # Added at random to a server's Retry-After: instances told the same moment spread out
    # instead of all coming back at once.
    retry_after_spread: float = 0.25
    # How waiting happens and time is read: a test passes a fake clock rather than waiting.
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def backoff(self, retry_number: int) -> float:
        """Equal jitter: grows exponentially, never collapses to zero, spreads concurrent senders."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
) -> T:
    """Run `attempt` until it succeeds, raises a non-transient error, or the deadline is near.

    Every request an attempt makes ends by the deadline too (dagtrigger.deadline). The last
    TransientTriggerError is raised again, annotated with the attempts made, so that the caller
    can hand the event back to the platform for redelivery.
    """
    sleep, clock = policy.sleep, policy.clock
    started = clock()
    retries = 0
    while True:
        try:
            with time_limit(policy.deadline - (clock() - started)):
                return attempt()
        except TransientTriggerError as exc:
            retries += 1
            delay = (
                exc.retry_after + random.uniform(0, policy.retry_after_spread)
                if exc.retry_after is not None
                else policy.backoff(retries)
            )
            elapsed = clock() - started
            if elapsed + delay > policy.deadline:
                raise TransientTriggerError(
                    f"{what}: {exc} (gave up after {retries} attempt(s) in {elapsed:.1f} s; "
                    f"the deadline is {policy.deadline:g} s)",
                    status=exc.status,
                    retry_after=exc.retry_after,
                ) from exc
            logger.warning(
                "%s: %s; retry %d in %.2f s",
                what,
                exc,
                retries,
                delay,
                extra={"retry": retries, "delay_s": round(delay, 3)},
            )
            sleep(delay)
