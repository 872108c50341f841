"""The classification loss every optimizer trains: smoothed cross-entropy + L2 on weights.

``make_classification_loss`` adapts a Flax ``apply`` to the :data:`LossFn` contract
and registers the softmax cross-entropy with kfac-jax (needed by K-FAC's curvature
estimator, harmless for optax optimizers) when kfac-jax is loaded.

kfac-jax is never imported here: it pulls in distrax and tfp-nightly's JAX substrate,
which import TensorFlow whenever it is installed (about 10 s, and absent on the GPU
machines). The registration is decided when the loss is traced: kfac-jax is loaded by
then exactly when a K-FAC optimizer exists (``dksflax.optim.kfac_optimizer`` imports it
when it is built), and only K-FAC's tracer reads the registration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError, check_range
from dksflax.optim.masks import weights_mask
from dksflax.optim.types import Batch, LossFn, Metrics, ModelState, Params, PRNGKey

#: ``apply_fn(variables, images, train=True, rngs=..., [mutable=[...]])`` as Flax's
#: ``Module.apply``; returns ``(logits, out)`` (or only logits), and
#: ``((logits, out), mutated_state)`` when ``mutable`` is given.
ApplyFn = Callable[..., Any]


def smoothed_cross_entropy(logits: jax.Array, labels: jax.Array,
                           label_smoothing: float) -> jax.Array:
  """Per-example cross-entropy against ``(1 - s) * onehot + s / K`` targets.

  Label smoothing as in Szegedy et al. 2016 §7 (TAT App. E uses s = 0.1 on ImageNet).

  Args:
    logits: ``[B, K]`` (cast to float32).
    labels: Integer labels ``[B]``.
    label_smoothing: ``s`` in [0, 1).

  Returns:
    ``[B]`` float32 losses.
  """
  logits = logits.astype(jnp.float32)
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  if label_smoothing:
    targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
  return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def l2_penalty(params: Params, mask: Params) -> jax.Array:
  """Returns ``0.5 * sum_w ||w||^2`` over the leaves where ``mask`` is True."""
  leaves = jax.tree_util.tree_leaves(
      jax.tree_util.tree_map(
          lambda p, m: jnp.sum(jnp.square(p.astype(jnp.float32))) if m else jnp.zeros(()),
          params, mask))
  return 0.5 * sum(leaves) if leaves else jnp.zeros(())


def register_kfac_loss(logits: jax.Array, labels: jax.Array) -> bool:
  """Registers a softmax cross-entropy loss with kfac-jax if kfac-jax is loaded.

  Inside a traced loss, kfac-jax's ``register_softmax_cross_entropy_loss`` inserts an
  identity "loss tag" that its curvature estimator finds (Martens & Grosse 2015 §3:
  the Fisher of the predictive distribution); outside K-FAC the tag is a no-op.

  Args:
    logits: ``[B, K]`` float32 logits.
    labels: Integer labels ``[B]``.

  Returns:
    Whether the loss was registered (False when kfac-jax is not imported).
  """
  kfac_jax = sys.modules.get("kfac_jax")
  if kfac_jax is None:
    return False
  kfac_jax.register_softmax_cross_entropy_loss(logits, labels)
  return True


def _split_output(out: Any) -> jax.Array:
  """Returns the logits from a model output ``(logits, intermediates)`` or ``logits``."""
  return out[0] if isinstance(out, (tuple, list)) else out


def make_classification_loss(apply_fn: ApplyFn, *, label_smoothing: float = 0.0,
                             l2: float = 0.0,
                             l2_mask_fn: Callable[[Params], Params] | None = None
                             ) -> LossFn:
  """Builds ``loss_fn(params, model_state, rng, batch) -> (loss, (model_state, aux))``.

  The loss is ``mean_b CE_s(logits_b, y_b) + l2 * 0.5 * sum_w ||w||^2``, where the L2 sum
  runs over weights only (``l2_mask_fn``; biases and normalisation scales excluded,
  TAT App. E). Non-empty ``model_state`` collections (e.g. ``batch_stats``) are passed
  to ``apply_fn`` as mutable and their new values returned.

  Args:
    apply_fn: Flax-style ``apply`` (see :data:`ApplyFn`); called with ``train=True``
      and ``rngs={"dropout": rng}``.
    label_smoothing: Smoothing ``s`` in [0, 1). (Default: 0.0)
    l2: L2 strength (>= 0) on weights. (Default: 0.0)
    l2_mask_fn: ``params -> bool pytree`` choosing the L2 leaves.
      (Default: ``dksflax.optim.masks.weights_mask``, rank >= 2)

  Returns:
    A :data:`LossFn`. ``aux`` holds ``cross_entropy``, ``l2_loss`` and ``accuracy``.

  Raises:
    ConfigError: For ``label_smoothing`` outside [0, 1) or ``l2 < 0``.
  """
  smoothing = check_range("optimizer.label_smoothing", label_smoothing, low=0.0,
                          high=1.0, high_inclusive=False)
  l2 = check_range("optimizer.l2", l2, low=0.0)
  mask_fn = weights_mask if l2_mask_fn is None else l2_mask_fn

  def loss_fn(params: Params, model_state: ModelState, rng: PRNGKey,
              batch: Batch) -> tuple[jax.Array, tuple[ModelState, Metrics]]:
    if "image" not in batch or "label" not in batch:
      raise ConfigError(
          f"a training batch needs keys 'image' and 'label'; got {sorted(batch)}")
    variables = {"params": params, **(model_state or {})}
    if model_state:
      out, new_state = apply_fn(variables, batch["image"], train=True,
                                rngs={"dropout": rng}, mutable=list(model_state))
      new_state = dict(new_state)
    else:
      out = apply_fn(variables, batch["image"], train=True, rngs={"dropout": rng})
      new_state = model_state
    logits = _split_output(out).astype(jnp.float32)
    labels = batch["label"]
    register_kfac_loss(logits, labels)
    ce = jnp.mean(smoothed_cross_entropy(logits, labels, smoothing))
    reg = l2_penalty(params, mask_fn(params)) if l2 > 0.0 else jnp.zeros(())
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    aux = {"cross_entropy": ce, "l2_loss": reg, "accuracy": accuracy}
    return ce + l2 * reg, (new_state, aux)

  return loss_fn
