"""SGD, Adam, LARS and Shampoo behind the one :class:`TrainingOptimizer` interface.

The transformation is ``clip (optional) -> optimizer`` with the learning rate from a
schedule; L2 lives in the loss (weights only), so for LARS it enters the trust ratio
exactly like LARS weight decay (You et al. 2017, Alg. 1). The step is one
``jax.jit``-compiled function of the global batch, donating params and opt_state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from dksflax.optim.masks import weights_mask
from dksflax.optim.schedules import Schedule
from dksflax.optim.shampoo import shampoo
from dksflax.optim.types import Batch, LossFn, Metrics, ModelState, OptState, Params, PRNGKey


def build_transformation(opt: ml_collections.ConfigDict, schedule: Schedule
                         ) -> optax.GradientTransformation:
  """Returns the optax transformation for ``opt.name`` in (sgd, adam, lars, shampoo).

  Args:
    opt: The ``optimizer`` config section (validated).
    schedule: Learning-rate schedule.

  Returns:
    An optax GradientTransformation (gradient clipping first when
    ``opt.grad_clip_norm > 0``).

  Raises:
    ValueError: For a name this module does not build.
  """
  if opt.name == "sgd":
    tx = optax.sgd(schedule, momentum=opt.sgd.momentum or None, nesterov=opt.sgd.nesterov)
  elif opt.name == "adam":
    tx = optax.adam(schedule, b1=opt.adam.b1, b2=opt.adam.b2, eps=opt.adam.eps)
  elif opt.name == "lars":
    # Biases and norm scales: no trust-ratio adaptation (and, through the loss, no L2).
    tx = optax.lars(schedule, weight_decay=0.0, trust_coefficient=opt.lars.trust_coefficient,
                    eps=opt.lars.eps, trust_ratio_mask=weights_mask,
                    momentum=opt.lars.momentum)
  elif opt.name == "shampoo":
    s = opt.shampoo
    tx = shampoo(schedule, beta1=s.beta1, beta2=s.beta2, eps=s.eps,
                 exponent_multiplier=s.exponent_multiplier, update_period=s.update_period,
                 block_size=s.block_size, max_preconditioner_dim=s.max_preconditioner_dim,
                 graft=s.graft, start_preconditioning_step=s.start_preconditioning_step,
                 inverse_root_method=s.inverse_root_method)
  else:
    raise ValueError(f"optax optimizers are sgd, adam, lars, shampoo; got {opt.name!r}")
  if opt.grad_clip_norm > 0.0:
    tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
  return tx


class OptaxTrainingOptimizer:
  """A :class:`~dksflax.optim.types.TrainingOptimizer` over an optax transformation."""

  def __init__(self, name: str, tx: optax.GradientTransformation, loss_fn: LossFn,
               schedule: Schedule, hyperparameters: dict[str, Any]):
    """Builds the compiled step.

    Args:
      name: Optimizer name (for ``describe``).
      tx: The optax transformation.
      loss_fn: ``loss_fn(params, model_state, rng, batch)``.
      schedule: Learning-rate schedule (reported in the metrics).
      hyperparameters: Reported by ``describe``.
    """
    self._name = name
    self._tx = tx
    self._loss_fn = loss_fn
    self._schedule = schedule
    self._hyper = dict(hyperparameters)
    self._step = jax.jit(self._step_impl, donate_argnums=(0, 2))

  def _step_impl(self, params: Params, model_state: ModelState, opt_state: OptState,
                 rng: PRNGKey, batch: Batch, step: jax.Array
                 ) -> tuple[Params, ModelState, OptState, Metrics]:
    grad_fn = jax.value_and_grad(self._loss_fn, has_aux=True)
    (loss, (model_state, aux)), grads = grad_fn(params, model_state, rng, batch)
    updates, opt_state = self._tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads),
               "update_norm": optax.global_norm(updates),
               "learning_rate": self._schedule(step), **aux}
    return params, model_state, opt_state, metrics

  def init(self, params: Params, model_state: ModelState, rng: PRNGKey,
           batch: Batch) -> OptState:
    """Returns ``tx.init(params)`` (``model_state``, ``rng`` and ``batch`` unused).

    Every leaf of the state is placed like the parameters (replicated over their mesh):
    scalar leaves such as Adam's ``count`` would otherwise come out on one device, the
    first step would return them replicated, and the second step would retrace and
    compile the whole update again.
    """
    del model_state, rng, batch
    replicated = _replicated_like(params)
    if replicated is None:
      return jax.jit(self._tx.init)(params)
    return jax.jit(self._tx.init, out_shardings=replicated)(params)

  def step(self, params: Params, model_state: ModelState, opt_state: OptState,
           rng: PRNGKey, batch: Batch, step: int
           ) -> tuple[Params, ModelState, OptState, Metrics]:
    """One compiled update; donates ``params`` and ``opt_state``.

    The step number goes to the device with an explicit ``device_put`` (no implicit
    transfer: the step runs under ``jax.transfer_guard("disallow")``) and nothing is
    fetched back, so the host never waits on the device here.
    """
    return self._step(params, model_state, opt_state, rng, batch,
                      jax.device_put(np.int32(step)))

  def describe(self) -> dict[str, Any]:
    """``{"name": ..., "hyperparameters": {...}}``."""
    return {"name": self._name, "hyperparameters": dict(self._hyper)}


def _replicated_like(params: Params) -> NamedSharding | None:
  """A replicated sharding over the parameters' mesh, or None for unsharded parameters."""
  leaves = jax.tree.leaves(params)
  sharding = getattr(leaves[0], "sharding", None) if leaves else None
  if isinstance(sharding, NamedSharding):
    return NamedSharding(sharding.mesh, PartitionSpec())
  return None
