"""Learning-rate schedules: constant, warmup + cosine, step (/10 at fractions), linear.

Every schedule starts with an optional linear warm-up from 0 to the base rate over
``warmup_steps`` (TAT App. E uses 5 epochs of warm-up for ImageNet; DKS §26 uses
none for K-FAC). After the warm-up:

* ``constant``: the base rate;
* ``warmup_cosine``: ``base * 0.5 * (1 + cos(pi * t))`` with ``t`` going from 0 to 1
  over the remaining steps (Loshchilov & Hutter 2017);
* ``step``: the base rate divided by 10 at each fraction of the run in
  ``step_boundaries`` (the He et al. 2016 ImageNet schedule, also TAT App. E);
* ``linear``: linear decay from the base rate to 0 at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp

from dksflax.configlib.optimizer import SCHEDULE_NAMES
from dksflax.errors import ConfigError, check_choice

Schedule = Callable[[jnp.ndarray], jnp.ndarray]


def check_schedule(name: str, *, total_steps: int, warmup_steps: int,
                   step_boundaries: Sequence[float]) -> None:
  """Raises ConfigError for a schedule that cannot run (before any compute).

  Args:
    name: Schedule name, one of ``SCHEDULE_NAMES``.
    total_steps: Number of optimizer steps in the run (> 0).
    warmup_steps: Linear warm-up length; must not exceed ``total_steps``.
    step_boundaries: Fractions in (0, 1), increasing, used by ``step``.

  Raises:
    ConfigError: Naming the key, the value and what is accepted.
  """
  check_choice("optimizer.schedule", name, SCHEDULE_NAMES)
  if int(total_steps) <= 0:
    raise ConfigError(f"total_steps={total_steps} must be a positive number of steps")
  if int(warmup_steps) < 0 or int(warmup_steps) != warmup_steps:
    raise ConfigError(f"optimizer.warmup_steps={warmup_steps!r} must be an integer >= 0")
  if warmup_steps > total_steps or (name != "constant" and warmup_steps == total_steps):
    raise ConfigError(
        f"optimizer.warmup_steps={warmup_steps} exceeds the run ({total_steps} steps): "
        f"the {name!r} schedule would never leave its warm-up; use fewer warm-up steps")
  bounds = list(step_boundaries)
  if name == "step":
    if not bounds or any(not 0.0 < b < 1.0 for b in bounds) or bounds != sorted(bounds):
      raise ConfigError(
          f"optimizer.step_boundaries={tuple(bounds)!r} must be a non-empty increasing "
          "sequence of fractions of the run in (0, 1)")


def make_schedule(name: str, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
                  step_boundaries: Sequence[float] = (0.5, 0.75)) -> Schedule:
  """Returns ``schedule(step) -> learning rate`` (jit-compatible, float32).

  Args:
    name: One of ``SCHEDULE_NAMES``.
    base_lr: Peak learning rate (> 0).
    total_steps: Number of steps in the run.
    warmup_steps: Linear warm-up steps from 0. (Default: 0)
    step_boundaries: Fractions of the run where ``step`` divides by 10.
      (Default: (0.5, 0.75))

  Returns:
    A function of the (integer) step.

  Raises:
    ConfigError: See :func:`check_schedule`; also for ``base_lr <= 0``.
  """
  check_schedule(name, total_steps=total_steps, warmup_steps=warmup_steps,
                 step_boundaries=step_boundaries)
  if not float(base_lr) > 0.0:
    raise ConfigError(f"optimizer.learning_rate={base_lr!r} must be > 0")
  base = float(base_lr)
  warm = int(warmup_steps)
  decay_len = max(int(total_steps) - warm, 1)
  boundaries = [int(round(f * total_steps)) for f in step_boundaries]

  def after_warmup(step: jnp.ndarray) -> jnp.ndarray:
    t = jnp.clip((step - warm) / decay_len, 0.0, 1.0)
    if name == "constant":
      return jnp.full_like(t, base)
    if name == "warmup_cosine":
      return base * 0.5 * (1.0 + jnp.cos(jnp.pi * t))
    if name == "linear":
      return base * (1.0 - t)
    passed = sum((step >= b).astype(jnp.float32) for b in boundaries)
    return base * jnp.power(0.1, passed)

  def schedule(step: jnp.ndarray) -> jnp.ndarray:
    step = jnp.asarray(step, jnp.float32)
    ramp = base * step / warm if warm > 0 else base
    return jnp.where(step < warm, ramp, after_warmup(step)).astype(jnp.float32)

  return schedule
