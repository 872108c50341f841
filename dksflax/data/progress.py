"""A progress indicator for slow data preparation (loading, building tfds datasets)."""

from __future__ import annotations

import time

from absl import logging


class Progress:
  """Logs ``done/total`` with a rate at most every ``interval_s`` seconds, and at the end.

  Args:
    what: What is being done, e.g. "loading cifar10 train".
    total: Expected count (0 if unknown).
    interval_s: Minimum seconds between two log lines. (Default: 5.0)
  """

  def __init__(self, what: str, total: int, interval_s: float = 5.0):
    self.what = what
    self.total = int(total)
    self.interval_s = interval_s
    self.done = 0
    self._start = time.monotonic()
    self._last = self._start
    logging.info("%s: started (%s items)", what, total if total else "unknown")

  def update(self, count: int) -> None:
    """Records ``count`` more items; logs when ``interval_s`` has passed."""
    self.done += int(count)
    now = time.monotonic()
    if now - self._last >= self.interval_s:
      self._last = now
      self._log(now)

  def finish(self) -> None:
    """Logs the final count and rate."""
    self._log(time.monotonic(), final=True)

  def _log(self, now: float, final: bool = False) -> None:
    elapsed = max(now - self._start, 1e-9)
    total = f"/{self.total}" if self.total else ""
    logging.info("%s: %s%d%s items, %.0f items/s, %.1f s", self.what,
                 "done, " if final else "", self.done, total, self.done / elapsed, elapsed)
