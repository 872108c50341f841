"""A progress indicator for slow data preparation (loading, building tfds datasets)."""

from __future__ import annotations

import sys
import time


class Progress:
  """Prints ``done/total`` with a rate at most every ``interval_s`` seconds, and at the end.

  Lines go to stderr (visible whether or not absl logging is set up).

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
    self._print(f"{what}: started ({total if total else 'unknown number of'} items)")

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
    self._print(f"{self.what}: {'done, ' if final else ''}{self.done}{total} items, "
                f"{self.done / elapsed:.0f} items/s, {elapsed:.1f} s")

  @staticmethod
  def _print(line: str) -> None:
    print(f"[dksflax.data] {line}", file=sys.stderr, flush=True)
