"""A clock that moves only when slept on, for code that takes its clock and sleep as arguments."""

from __future__ import annotations


class FakeTime:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
