"""Evaluation over one padded, masked pass of the eval split.

Sums, not means, are accumulated per batch: the loss and the number of correct
predictions are summed over real (mask = 1) examples and divided once, by the number of
real examples, at the end. Averaging per-batch means would over-weight a ragged last
batch (flax#262, user_needs.md §5), and dropping it would skip images (STYLE.md §1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any


def eval_sums(apply_fn: Callable[..., Any], variables: PyTree,
              batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Returns summed loss, correct count and example count of one masked batch.

  Args:
    apply_fn: Callable. ``apply_fn(variables, images, train=False) -> (logits, out)``.
    variables: PyTree. ``{"params": ..., **model_state}``.
    batch: dict. ``image`` [B, ...], ``label`` int [B], ``mask`` bool [B].

  Returns:
    dict of float32 scalars: ``loss_sum`` (softmax cross-entropy, no label smoothing),
    ``correct_sum`` and ``count``.
  """
  logits, _ = apply_fn(variables, batch["image"], train=False)
  logits = logits.astype(jnp.float32)
  mask = batch["mask"].astype(jnp.float32)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
  correct = (jnp.argmax(logits, axis=-1) == batch["label"]).astype(jnp.float32)
  return dict(loss_sum=jnp.sum(loss * mask), correct_sum=jnp.sum(correct * mask),
              count=jnp.sum(mask))


def make_eval_step(apply_fn: Callable[..., Any]) -> Callable[[PyTree, Any], dict[str, jax.Array]]:
  """Returns ``eval_sums`` jitted for ``apply_fn`` (compiled once per batch shape)."""
  return jax.jit(lambda variables, batch: eval_sums(apply_fn, variables, batch))


def evaluate(eval_step: Callable[[PyTree, Any], dict[str, jax.Array]], variables: PyTree,
             batches: Iterable[Mapping[str, Any]]) -> dict[str, float]:
  """Runs ``eval_step`` over ``batches`` and returns the example-weighted means.

  Args:
    eval_step: Callable. From `make_eval_step`.
    variables: PyTree. Model variables.
    batches: Iterable. One pass of padded eval batches with ``mask``.

  Returns:
    dict with ``loss``, ``accuracy`` (means over real examples) and ``num_examples``.

  Raises:
    ValueError: if the pass holds no real example.
  """
  totals = None
  for batch in batches:
    sums = eval_step(variables, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  if totals is None:
    raise ValueError("the eval iterator yielded no batch")
  host = {k: float(np.asarray(v, np.float64)) for k, v in jax.device_get(totals).items()}
  if host["count"] <= 0:
    raise ValueError("the eval pass holds no real (unmasked) example")
  return dict(loss=host["loss_sum"] / host["count"],
              accuracy=host["correct_sum"] / host["count"],
              num_examples=int(round(host["count"])))
