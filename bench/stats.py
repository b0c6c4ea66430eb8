"""Robust summaries: medians and quartiles, and ratios taken pair by pair.

Every comparison here is interleaved (A, B, B, A, ...), so each round gives one A and one B
measured under the same machine load; the ratio of a round is immune to slow drift in that load,
and the median of those ratios ignores the rounds a neighbour's burst spoiled.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    median: float
    q1: float
    q3: float
    n: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "q1": self.q1, "q3": self.q3, "n": self.n}

    @property
    def spread(self) -> float:
        """The interquartile range relative to the median (0.1 = the middle half spans 10 %)."""
        return self.iqr / self.median if self.median else 0.0


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(math.nan, math.nan, math.nan, 0)
    ordered = sorted(values)
    if len(ordered) == 1:
        return Summary(ordered[0], ordered[0], ordered[0], 1)
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Summary(median, q1, q3, len(ordered))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Summary of numerator[i] / denominator[i] over the rounds."""
    if len(numerators) != len(denominators):
        raise ValueError("paired samples differ in length")
    return summarise([a / b for a, b in zip(numerators, denominators, strict=True) if b > 0])


def rotated(variants: Sequence[str], round_index: int) -> list[str]:
    """The variants in a different order each round, so that none always goes first."""
    shift = (round_index // 2) % len(variants)
    order = list(variants[shift:]) + list(variants[:shift])
    return order if round_index % 2 == 0 else order[::-1]
