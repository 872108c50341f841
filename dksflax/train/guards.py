"""Run guards: the non-finite (NaN/Inf) check and the SIGTERM/preemption flag."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

import jax
import numpy as np

# Metrics whose non-finiteness means the run is broken (the optimizer's step metrics).
GUARDED_METRICS = ("loss", "grad_norm")


class NonFiniteError(FloatingPointError):
  """Training produced a NaN or Inf loss or gradient norm.

  Attributes:
    step: int. The 0-based index of the first step whose metrics were not finite (the
      parameters *before* it are the last good ones).
    metrics: dict. That step's metrics.
  """

  def __init__(self, step: int, metrics: Mapping[str, float]):
    self.step = int(step)
    self.metrics = dict(metrics)
    bad = ", ".join(f"{k}={v}" for k, v in self.metrics.items()
                    if k in GUARDED_METRICS and not math.isfinite(v))
    super().__init__(
        f"non-finite training metrics at step {self.step} ({bad}); the run stopped, and the "
        f"newest checkpoint (saved before step {self.step}) holds the last good state. "
        "Lower optimizer.learning_rate, add warm-up or check the data and shaping report")


def first_non_finite(steps: Sequence[int], metrics: Sequence[Mapping[str, jax.Array]]
                     ) -> tuple[int, dict[str, float]] | None:
  """Finds the first step whose guarded metrics are NaN or Inf.

  Args:
    steps: Sequence of int. Step indices, one per entry of ``metrics``.
    metrics: Sequence of dicts. Per-step metrics (device or host scalars).

  Returns:
    ``(step, host_metrics)`` of the first bad step, or None if all are finite.
  """
  host = jax.device_get(list(metrics))
  for step, m in zip(steps, host):
    values = {k: float(v) for k, v in m.items()}
    if any(not math.isfinite(values[k]) for k in GUARDED_METRICS if k in values):
      return step, values
  return None


class PreemptionFlag:
  """Sets a flag on SIGTERM (the signal preemptible VMs and SLURM send before killing).

  Use as a context manager around the training loop; the previous handler is restored on
  exit. Outside the main thread (where handlers cannot be installed) it only reports
  ``requested`` set by :meth:`request`.
  """

  def __init__(self):
    self._event = threading.Event()
    self._previous = None
    self._installed = False

  @property
  def requested(self) -> bool:
    """True once SIGTERM arrived (or :meth:`request` was called)."""
    return self._event.is_set()

  def request(self) -> None:
    """Marks a preemption request (what the signal handler does)."""
    self._event.set()

  def _handler(self, signum: int, frame: FrameType | None) -> None:
    del signum, frame
    self.request()

  def __enter__(self) -> PreemptionFlag:
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handler)
      self._installed = True
    return self

  def __exit__(self, *exc) -> None:
    if self._installed:
      signal.signal(signal.SIGTERM, self._previous)
      self._installed = False


def agree_across_processes(flag: bool) -> bool:
  """True if ``flag`` is set on any process (every process gets the same answer).

  A SIGTERM reaches the hosts of a multi-host job at slightly different times; all of
  them must save the same step and stop together, or the next collective would hang.
  Single-process runs return ``flag`` without communicating.
  """
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
  return bool(np.max(flags))
