"""Shared by the benchmark scripts: a model + optimizer that takes timed blocks of steps.

An :class:`OptimizerStepper` owns one optimizer built by
``dksflax.optim.create_optimizer`` (the one the trainer uses), its parameters, state and
one batch on the device, and a step counter (K-FAC needs the state's count). ``run(n)``
takes ``n`` steps and returns when they are done, so the scripts can interleave blocks of
several contenders with :func:`benchmarks._timing.interleaved`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.optim import create_optimizer, make_classification_loss


def synthetic_batch(batch: int, image_shape: tuple[int, ...], num_classes: int = 10,
                    seed: int = 0) -> dict[str, jax.Array]:
  """Standard-normal images and uniform labels on the default device."""
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.normal(size=(batch, *image_shape)), jnp.float32),
          "label": jnp.asarray(rng.integers(0, num_classes, size=batch), jnp.int32)}


def optimizer_config(name: str, *, learning_rate: float | None = None,
                     kfac_period: int | None = None,
                     shampoo_period: int | None = None) -> Any:
  """The ``optimizer`` config section: defaults, constant schedule, optional periods.

  Args:
    name: sgd, adam, lars, shampoo or kfac.
    learning_rate: Constant learning rate. (Default: 1e-4 for kfac, 0.01 otherwise)
    kfac_period: K-FAC inverse update period. (Default: the config default, 50)
    shampoo_period: Shampoo preconditioner update period. (Default: the config's, 10)

  Returns:
    A ConfigDict (validated by ``create_optimizer``).
  """
  c = optimizer_cfg.defaults()
  c.name = name
  c.schedule = "constant"
  c.learning_rate = learning_rate or (1e-4 if name == "kfac" else 0.01)
  if kfac_period is not None:
    c.kfac.inverse_update_period = kfac_period
  if shampoo_period is not None:
    c.shampoo.update_period = shampoo_period
  return c


class OptimizerStepper:
  """One optimizer stepping one model on one fixed batch.

  Args:
    opt_config: The ``optimizer`` config section (see :func:`optimizer_config`).
    apply_fn: Flax ``apply`` returning ``(logits, out)`` or logits.
    variables: Initial variables (``params`` plus any model state such as batch_stats).
    batch: ``{"image", "label"}`` on the device.
    total_steps: Run length given to the optimizer (schedules, damping decay).
      (Default: 1_000_000)
  """

  def __init__(self, opt_config: Any, apply_fn: Any, variables: dict, batch: dict,
               total_steps: int = 1_000_000):
    variables = dict(jax.tree.map(jnp.copy, variables))   # the step donates its inputs
    self.params = variables.pop("params")
    self.model_state = variables
    self.batch = batch
    self.optimizer = create_optimizer(opt_config, loss_fn=make_classification_loss(apply_fn),
                                      total_steps=total_steps)
    self.opt_state = self.optimizer.init(self.params, self.model_state,
                                         jax.random.PRNGKey(1), batch)
    self.count = 0
    self.last_loss: float | None = None

  def run(self, steps: int) -> None:
    """Takes ``steps`` steps and blocks until they are done."""
    metrics = None
    for _ in range(steps):
      self.params, self.model_state, self.opt_state, metrics = self.optimizer.step(
          self.params, self.model_state, self.opt_state, jax.random.PRNGKey(self.count),
          self.batch, self.count)
      self.count += 1
    if metrics is not None:
      jax.block_until_ready((self.params, metrics["loss"]))
      self.last_loss = float(metrics["loss"])
