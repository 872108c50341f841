"""A one-line terminal progress bar with rate and ETA (no dependency)."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO


def format_eta(seconds: float) -> str:
  """Returns ``H:MM:SS`` for a duration in seconds (``?`` when unknown)."""
  if seconds != seconds or seconds < 0 or seconds == float("inf"):
    return "?"
  return str(datetime.timedelta(seconds=int(round(seconds))))


class ProgressBar:
  """Draws ``[#####-----] step/total pct | loss ... | it/s ETA`` on one terminal line.

  The rate is measured from the first update of this process (so a resumed run does not
  count steps it did not take, and the first step's compilation is left out of the rate).

  Args:
    total: int. Total number of steps of the run.
    start: int. Step at which this process starts (non-zero when resuming).
    enabled: bool. False makes every call a no-op (non-zero processes, tests).
      (Default: True)
    stream: TextIO. Where to draw. (Default: ``sys.stderr``)
    min_interval_s: float. Redraw at most this often. (Default: 0.2)
    clock: Callable. Time source, for tests. (Default: ``time.monotonic``)
    width: int. Characters of the bar itself. (Default: 24)
  """

  def __init__(self, total: int, start: int = 0, *, enabled: bool = True,
               stream: TextIO | None = None, min_interval_s: float = 0.2,
               clock: Callable[[], float] = time.monotonic, width: int = 24):
    self.total = max(int(total), 1)
    self.enabled = enabled
    self.stream = sys.stderr if stream is None else stream
    self.min_interval_s = min_interval_s
    self.clock = clock
    self.width = width
    self._t0: float | None = None
    self._step0 = start
    self._last_draw = -float("inf")
    self.last_line = ""

  def rate(self, step: int) -> float:
    """Steps per second since the first update (NaN before two updates)."""
    if self._t0 is None or step <= self._step0:
      return float("nan")
    dt = self.clock() - self._t0
    return (step - self._step0) / dt if dt > 0 else float("nan")

  def update(self, step: int, metrics: Mapping[str, float] | None = None, *,
             force: bool = False) -> None:
    """Records that ``step`` steps are done and redraws if it is time to."""
    if not self.enabled:
      return
    now = self.clock()
    if self._t0 is None:
      self._t0, self._step0 = now, step
    if not force and now - self._last_draw < self.min_interval_s and step < self.total:
      return
    self._last_draw = now
    frac = min(step / self.total, 1.0)
    filled = int(round(frac * self.width))
    rate = self.rate(step)
    eta = (self.total - step) / rate if rate == rate and rate > 0 else float("nan")
    shown = " ".join(f"{k} {v:.4g}" for k, v in (metrics or {}).items())
    self.last_line = (f"[{'#' * filled}{'-' * (self.width - filled)}] {step}/{self.total} "
                      f"{100 * frac:3.0f}% | {shown} | "
                      f"{rate if rate == rate else 0.0:.2f} it/s ETA {format_eta(eta)}")
    self.stream.write("\r" + self.last_line)
    self.stream.flush()

  def close(self) -> None:
    """Ends the line."""
    if self.enabled and self.last_line:
      self.stream.write("\n")
      self.stream.flush()
