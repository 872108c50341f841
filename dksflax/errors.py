"""Errors that name what was wrong and what is accepted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
  """A configuration value is invalid. Raised before any compute starts."""


class ShapingError(ValueError):
  """A kernel-shaping problem has no solution (or the solver failed to converge)."""


def check_choice(key: str, value: Any, accepted: Iterable[Any]) -> Any:
  """Returns `value` if it is one of `accepted`, else raises ConfigError naming all three."""
  accepted = list(accepted)
  if value not in accepted:
    raise ConfigError(
        f"{key}={value!r} is not accepted; choose one of: "
        + ", ".join(repr(a) for a in accepted))
  return value


def check_range(key: str, value: Any, *, low: float | None = None,
                high: float | None = None, low_inclusive: bool = True,
                high_inclusive: bool = True, why: str = "") -> float:
  """Checks that a number lies in a range; raises ConfigError otherwise."""
  try:
    x = float(value)
  except (TypeError, ValueError):
    raise ConfigError(f"{key}={value!r} must be a number{': ' + why if why else ''}") from None
  ok = True
  if low is not None:
    ok &= x >= low if low_inclusive else x > low
  if high is not None:
    ok &= x <= high if high_inclusive else x < high
  if not ok or x != x:
    lo = "-inf" if low is None else f"{low}"
    hi = "inf" if high is None else f"{high}"
    interval = ("[" if low_inclusive and low is not None else "(") + f"{lo}, {hi}" + (
        "]" if high_inclusive and high is not None else ")")
    raise ConfigError(f"{key}={value!r} must lie in {interval}{': ' + why if why else ''}")
  return x
