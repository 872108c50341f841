"""Side-by-side timing for the benchmark scripts: interleaved repeats, paired medians.

Two contenders timed one after the other see different machine load (on a shared
machine the load changes within seconds). Here every round runs each contender once,
in an order that rotates from round to round, so a load change hits all of them; the
figure reported is the median over rounds, and a ratio is the median of the per-round
ratios (a paired comparison).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def interleaved(contenders: Mapping[str, Callable[[], object]], rounds: int,
                progress: bool = True) -> dict[str, list[float]]:
  """Times each contender once per round, rotating the order, for ``rounds`` rounds.

  Args:
    contenders: name -> function that does one timed block of work and returns only
      when its results are ready (call ``jax.block_until_ready`` inside).
    rounds: Number of rounds (>= 1).
    progress: Print one line per round. (Default: True)

  Returns:
    name -> wall-clock seconds of each round, in round order.

  Raises:
    ValueError: if ``rounds < 1`` or there is no contender.
  """
  if rounds < 1 or not contenders:
    raise ValueError(f"need rounds >= 1 (got {rounds}) and at least one contender "
                     f"(got {list(contenders)})")
  names = list(contenders)
  times: dict[str, list[float]] = {n: [] for n in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      start = time.perf_counter()
      contenders[name]()
      times[name].append(time.perf_counter() - start)
    if progress:
      print(f"  round {r + 1}/{rounds}: " + ", ".join(
          f"{n} {times[n][-1] * 1e3:.1f} ms" for n in names), flush=True)
  return times


def median(values: list[float]) -> float:
  """Median of a non-empty list."""
  return statistics.median(values)


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
  """Median over rounds of ``numerator[r] / denominator[r]``.

  Raises:
    ValueError: for lists of different lengths or empty lists.
  """
  if len(numerator) != len(denominator) or not numerator:
    raise ValueError(f"paired rounds must match: {len(numerator)} vs {len(denominator)}")
  return statistics.median(a / b for a, b in zip(numerator, denominator))
