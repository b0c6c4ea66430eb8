"""Retries: backoff within bounds, the server's Retry-After obeyed, and a deadline that holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.errors import DagNotFoundError, TransientTriggerError
from dagtrigger.http import Response
from tests.fake_time import FakeTime


def failing(
    times: int,
    *,
    retry_after: float | None = None,
    then: str = "ok",
    took: float = 0.0,
    fake: FakeTime | None = None,
) -> tuple[Callable[[], str], list[int]]:
    """An attempt that raises TransientTriggerError `times` times, then returns `then`."""
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if fake is not None:
            fake.now += took
        if len(calls) <= times:
            raise TransientTriggerError(
                f"503 number {len(calls)}", status=503, retry_after=retry_after
            )
        return then

    return attempt, calls


def run(attempt: Callable[[], str], policy: RetryPolicy, fake: FakeTime) -> str:
    timed = replace(policy, sleep=fake.sleep, clock=fake.clock)
    return call_with_retries(attempt, timed, what="triggering")


def test_a_transient_failure_is_retried_until_it_succeeds() -> None:
    fake = FakeTime()
    attempt, calls = failing(3)

    assert run(attempt, RetryPolicy(deadline=30), fake) == "ok"
    assert len(calls) == 4
    assert len(fake.sleeps) == 3


def test_success_at_once_never_sleeps() -> None:
    fake = FakeTime()
    attempt, calls = failing(0)

    assert run(attempt, RetryPolicy(), fake) == "ok"
    assert (len(calls), fake.sleeps) == (1, [])


def test_backoff_doubles_then_stays_under_the_maximum() -> None:
    fake = FakeTime()
    policy = RetryPolicy(deadline=1000, base_delay=1.0, max_delay=8.0)
    attempt, _ = failing(7)

    run(attempt, policy, fake)

    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for delay, ceiling in zip(fake.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling  # equal jitter: never less than half the ceiling
    assert fake.sleeps[:4] == sorted(fake.sleeps[:4])  # grows while below the maximum


def test_every_backoff_is_within_bounds() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=8.0)

    for retry_number in range(1, 60):
        ceiling = min(8.0, 0.25 * 2 ** (retry_number - 1))
        delays = [policy.backoff(retry_number) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), retry_number


def test_retry_after_is_honoured_exactly_even_above_the_maximum_backoff() -> None:
    fake = FakeTime()
    attempt, _ = failing(2, retry_after=20.0)

    run(attempt, RetryPolicy(deadline=60, max_delay=8.0, retry_after_spread=0), fake)

    assert fake.sleeps == [20.0, 20.0]


def test_instances_told_the_same_retry_after_come_back_spread_out() -> None:
    waits = []
    for _ in range(40):
        fake = FakeTime()
        attempt, _ = failing(1, retry_after=2.0)
        run(attempt, RetryPolicy(deadline=60, retry_after_spread=0.25), fake)
        waits += fake.sleeps

    assert all(2.0 <= wait <= 2.25 for wait in waits)
    assert max(waits) - min(waits) > 0.1


def test_gives_up_when_the_next_delay_would_cross_the_deadline() -> None:
    fake = FakeTime()
    attempt, calls = failing(100, retry_after=1.0)

    with pytest.raises(TransientTriggerError) as caught:
        run(attempt, RetryPolicy(deadline=3.5, retry_after_spread=0), fake)

    # Waits at 0, 1 and 2 s end by 3 s; a fourth wait would end at 4 s, past the 3.5 s deadline.
    assert fake.sleeps == [1.0, 1.0, 1.0]
    assert len(calls) == 4
    error = caught.value
    assert "gave up after 4 attempt(s)" in str(error)
    assert "the deadline is 3.5 s" in str(error)
    assert "triggering: 503 number 4" in str(error)
    assert (error.status, error.retry_after) == (503, 1.0)
    assert isinstance(error.__cause__, TransientTriggerError)


def test_time_spent_in_attempts_counts_against_the_deadline() -> None:
    fake = FakeTime()
    attempt, calls = failing(100, retry_after=0.5, took=2.0, fake=fake)

    with pytest.raises(TransientTriggerError, match=r"gave up after 3 attempt\(s\) in 7\.0 s"):
        run(attempt, RetryPolicy(deadline=6, retry_after_spread=0), fake)

    # Attempts end at 2, 4.5 and 7 s: the third already ran past the deadline, so no fourth.
    assert len(calls) == 3
    assert fake.sleeps == [0.5, 0.5]


def test_a_retry_after_longer_than_the_deadline_gives_up_without_waiting() -> None:
    fake = FakeTime()
    attempt, calls = failing(1, retry_after=120.0)

    with pytest.raises(TransientTriggerError, match=r"gave up after 1 attempt\(s\)"):
        run(attempt, RetryPolicy(deadline=30), fake)

    assert (len(calls), fake.sleeps) == (1, [])


@pytest.mark.parametrize(
    "error",
    [DagNotFoundError("DAG 'etl' not found", status=404), ValueError("a bug")],
    ids=["permanent", "unexpected"],
)
def test_other_errors_propagate_at_once(error: Exception) -> None:
    fake = FakeTime()
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        raise error

    with pytest.raises(type(error)) as caught:
        run(attempt, RetryPolicy(), fake)

    assert caught.value is error
    assert (len(calls), fake.sleeps) == (1, [])


def retry_after(value: str, header: str = "Retry-After") -> float | None:
    return Response(429, b"", {header: value}).retry_after()


@pytest.mark.parametrize(
    ("value", "seconds"), [("120", 120.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0)]
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert retry_after(value) == seconds


def test_retry_after_header_name_in_lower_case() -> None:
    assert retry_after("7", header="retry-after") == 7.0


def test_retry_after_as_an_http_date_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)

    seconds = retry_after(format_datetime(when, usegmt=True))

    assert seconds is not None
    assert 88.0 <= seconds <= 90.0  # the header has whole seconds


@pytest.mark.parametrize(
    "value",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT"],
    ids=["imf-fixdate", "rfc850"],
)
def test_retry_after_as_an_http_date_in_the_past_means_now(value: str) -> None:
    assert retry_after(value) == 0.0


def test_retry_after_as_an_asctime_http_date() -> None:
    # RFC 9110 5.6.7: recipients MUST accept all three HTTP-date formats, asctime included.
    assert retry_after("Sun Nov  6 08:49:37 1994") == 0.0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": ""}, {"Retry-After": "soon"}])
def test_no_usable_retry_after(headers: dict[str, str]) -> None:
    assert Response(503, b"", headers).retry_after() is None


def test_retry_after_nan_is_not_a_delay() -> None:
    assert retry_after("nan") is None
