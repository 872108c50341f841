"""Gradient accumulation as a loss transformation (``train.grad_accum_steps``).

The optimizer layer owns the step (it differentiates the loss itself, and K-FAC needs the
loss to register its curvature), so accumulation is applied to the loss it receives: the
global batch of ``B`` examples is split into ``A`` micro-batches of ``B / A`` and the loss
is the mean of the micro-batch losses, computed one micro-batch at a time by
``lax.scan`` with ``jax.checkpoint`` on the body. The gradient of that mean equals the
average of the micro-batch gradients (what accumulating them would give) and, since each
micro-batch loss is itself a mean over its examples, the full-batch gradient; the
activations held for the backward pass are those of one micro-batch. Non-trainable state
(batch-norm statistics) is threaded through the micro-batches in order, as separate
smaller steps would update it.

Micro-batch ``a`` holds examples ``a, a + A, a + 2A, ...`` of the global batch, so each
device keeps an equal share of every micro-batch and no data moves between devices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from dksflax.errors import ConfigError

LossFn = Callable[[Any, Any, jax.Array, Mapping[str, jax.Array]], tuple[jax.Array, Any]]


def check_accumulation_supported(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for ``train.grad_accum_steps > 1`` with K-FAC.

  kfac-jax finds the loss it must model by tracing the loss function for a registered
  loss; a loss registered inside ``lax.scan`` is not found ("No registered losses have
  been found during tracing"), so the micro-batch scan cannot be used with K-FAC.
  """
  if config.train.grad_accum_steps > 1 and config.optimizer.name == "kfac":
    raise ConfigError(
        f"train.grad_accum_steps={config.train.grad_accum_steps} is not supported with "
        "optimizer.name='kfac': kfac-jax cannot find a loss registered inside the "
        "micro-batch scan; use train.grad_accum_steps=1 (a smaller batch) for K-FAC, or "
        "another optimizer")


def split_micro_batches(batch: Mapping[str, jax.Array], steps: int) -> dict[str, jax.Array]:
  """Returns ``batch`` with a leading micro-batch axis: ``[B, ...] -> [steps, B/steps, ...]``.

  Raises:
    ValueError: if the batch size is not divisible by ``steps``.
  """
  out = {}
  for key, value in batch.items():
    if value.shape[0] % steps:
      raise ValueError(f"batch[{key!r}] has {value.shape[0]} examples, not divisible by "
                       f"train.grad_accum_steps={steps}")
    strided = value.reshape(value.shape[0] // steps, steps, *value.shape[1:])
    out[key] = jnp.swapaxes(strided, 0, 1)
  return out


def accumulate_loss(loss_fn: LossFn, steps: int) -> LossFn:
  """Wraps ``loss_fn`` so one call averages it over ``steps`` micro-batches.

  Args:
    loss_fn: LossFn. ``(params, model_state, rng, batch) -> (loss, (model_state, aux))``
      with ``aux`` a dict of scalars.
    steps: int. Number of micro-batches (``train.grad_accum_steps``); 1 returns
      ``loss_fn`` unchanged.

  Returns:
    A LossFn with the same signature whose loss and aux are micro-batch means; the RNG of
    micro-batch ``i`` is ``fold_in(rng, i)``.
  """
  if steps == 1:
    return loss_fn

  def accumulated(params, model_state, rng, batch):
    micro = split_micro_batches(batch, steps)

    @jax.checkpoint
    def body(state, inputs):
      index, mb = inputs
      loss, (state, aux) = loss_fn(params, state, jax.random.fold_in(rng, index), mb)
      return state, (loss, aux)

    model_state, (losses, auxes) = jax.lax.scan(
        body, model_state, (jnp.arange(steps), micro))
    return jnp.mean(losses), (model_state, jax.tree.map(jnp.mean, auxes))

  return accumulated
