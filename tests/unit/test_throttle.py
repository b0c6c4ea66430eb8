"""Client-side pacing: a steady rate, a cap on requests in flight, slowing down on 429."""

from __future__ import annotations

import threading
import time

import pytest

from dagtrigger.airflow.throttle import MIN_RATE, Throttle
from dagtrigger.deadline import time_limit
from dagtrigger.errors import TransientTriggerError
from tests.fake_time import FakeTime


def _starts(throttle: Throttle, fake: FakeTime, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        with throttle.slot():
            starts.append(round(fake.now, 6))
    return starts


def _throttled_at_one_a_second(fake: FakeTime) -> Throttle:
    """An unlimited throttle that started a request a second for five seconds, then met a 429."""
    throttle = Throttle(None, 4, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        with throttle.slot():
            pass
        fake.now += 1.0
    throttle.throttled(None)
    return throttle


def test_a_burst_of_one_seconds_worth_goes_at_once_then_the_rate_holds() -> None:
    fake = FakeTime(now=100.0)
    throttle = Throttle(2.0, 4, clock=fake.clock, sleep=fake.sleep)
    assert _starts(throttle, fake, 5) == [100.0, 100.0, 100.5, 101.0, 101.5]


def test_an_unlimited_target_is_not_paced_until_it_throttles() -> None:
    fake = FakeTime(now=100.0)
    throttle = Throttle(None, 4, clock=fake.clock, sleep=fake.sleep)
    assert _starts(throttle, fake, 3) == [100.0, 100.0, 100.0]
    throttle.throttled(retry_after=2.0)
    assert _starts(throttle, fake, 1) == [102.0], "nobody starts before Retry-After"
    assert throttle.rate is not None, "and the target is paced from now on"


def test_a_429_empties_the_burst() -> None:
    fake = FakeTime(now=100.0)
    throttle = Throttle(4.0, 4, clock=fake.clock, sleep=fake.sleep)
    throttle.throttled(retry_after=None)  # the rate halves to 2/s and the bucket is empty
    assert _starts(throttle, fake, 2) == [100.5, 101.0]


def test_each_429_halves_the_rate_down_to_a_floor_and_successes_restore_it() -> None:
    fake = FakeTime(now=100.0)
    throttle = Throttle(10.0, 4, clock=fake.clock, sleep=fake.sleep)
    throttle.throttled(None)
    assert throttle.rate == 5.0
    for _ in range(10):
        fake.now += 1.0
        throttle.throttled(None)
    assert throttle.rate == MIN_RATE
    for _ in range(1000):
        throttle.succeeded()
    assert throttle.rate == 10.0, "back to the configured limit, never above it"


def test_refusals_arriving_together_halve_the_rate_once() -> None:
    """Ten requests in flight refused at once answer one moment of overload, not ten."""
    fake = FakeTime(now=100.0)
    throttle = Throttle(8.0, 10, clock=fake.clock, sleep=fake.sleep)
    for _ in range(10):
        throttle.throttled(None)
    assert (throttle.rate, throttle.throttled_count) == (4.0, 10)
    fake.now += 1.0
    throttle.throttled(None)
    assert throttle.rate == 2.0


def test_the_decrease_starts_from_the_rate_really_sent() -> None:
    """An unlimited instance sending one request a second is halved to half a request a second,
    not from an unreached pace (1000/s), which would change nothing when many instances share
    one server."""
    fake = FakeTime(now=100.0)
    throttle = _throttled_at_one_a_second(fake)
    assert throttle.rate == 0.5  # two starts in the last two seconds: 1/s, halved
    assert _starts(throttle, fake, 2) == [107.0, 109.0]


def test_successes_raise_a_low_rate_slowly_and_a_high_rate_by_a_share() -> None:
    throttle = Throttle(None, 4)
    throttle.rate = 0.5
    throttle.succeeded()
    assert throttle.rate == pytest.approx(0.9)  # + 0.2 / 0.5: 0.2/s more per second of successes
    throttle.rate = 100.0
    throttle.succeeded()
    assert throttle.rate == pytest.approx(102.0)


def test_a_lowered_pace_lets_a_trigger_out_while_its_deadline_leaves_time_for_the_request() -> None:
    """The pace learnt from a 429 would start the next request in 2 s; the trigger has 1 s left,
    so its request goes out with half a second to spare instead of failing on a guess."""
    fake = FakeTime(now=100.0)
    throttle = _throttled_at_one_a_second(fake)
    assert throttle.rate == 0.5
    with time_limit(1.0):
        assert _starts(throttle, fake, 1) == [pytest.approx(105.5, abs=0.05)]


def test_a_configured_limit_holds_even_against_the_deadline() -> None:
    """A configured rate is a quota (MWAA's invoke_rest_api has one): a request it cannot let out
    before the deadline fails at once, for the platform to deliver the event again later."""
    fake = FakeTime(now=100.0)
    throttle = Throttle(1.0, 4, clock=fake.clock, sleep=fake.sleep)
    assert _starts(throttle, fake, 1) == [100.0]
    paced = pytest.raises(TransientTriggerError, match="configured rate limit")
    with time_limit(0.5), paced, throttle.slot():
        pass
    assert fake.now == 100.0, "nothing waited"


def test_no_more_requests_in_flight_than_the_cap() -> None:
    throttle = Throttle(None, 3)
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal in_flight, most
        with throttle.slot():
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 3


def test_waiting_for_a_place_in_flight_ends_by_the_deadline() -> None:
    throttle = Throttle(None, 1)
    with throttle.slot():
        started = time.monotonic()
        full = pytest.raises(TransientTriggerError, match="held every place")
        with time_limit(0.2), full, throttle.slot():
            pass
        assert time.monotonic() - started < 2.0


def test_a_place_is_given_back_however_the_request_ends() -> None:
    fake = FakeTime(now=100.0)
    throttle = Throttle(None, 1, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(RuntimeError), throttle.slot():
        raise RuntimeError("the request failed")
    throttle.throttled(retry_after=60.0)
    paced = pytest.raises(TransientTriggerError, match="after this trigger's deadline")
    with time_limit(1.0), paced, throttle.slot():
        pass
    fake.now += 60.0
    with time_limit(0.5):
        assert _starts(throttle, fake, 1) == [160.0], "the only place is free again"
