"""Normalisation layers by name: none, batch norm, layer norm.

Layer norm normalises each location vector over its channels (DKS §19.2: the per-location
definition, which is the one with a Q/C map: Q(q) = 1); batch norm normalises over the
batch and the spatial locations and is incompatible with DKS/TAT (DKS §19.1), which
`dksflax.models.compatibility` enforces. Both start from gain 1 and bias 0.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from dksflax.errors import check_choice

NORMALIZATIONS = ("none", "batch_norm", "layer_norm")

#: Running-average decay of batch-norm statistics (TAT App. D: 0.9).
BATCH_NORM_MOMENTUM = 0.9
NORM_EPSILON = 1e-5


def apply_norm(kind: str, x: jax.Array, *, train: bool, name: str, dtype: Any) -> jax.Array:
  """Applies the named normalisation as a submodule of the calling (compact) module.

  Args:
    kind: one of NORMALIZATIONS.
    x: activations, channels last.
    train: batch norm uses batch statistics (and updates "batch_stats") when True.
    name: submodule name ("norm_0", "final_norm" ...).
    dtype: compute dtype (parameters stay float32).

  Returns:
    The normalised activations (``x`` itself for "none").

  Raises:
    ConfigError: unknown `kind`.
  """
  check_choice("model.normalization", kind, NORMALIZATIONS)
  if kind == "none":
    return x
  if kind == "batch_norm":
    return nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM,
                        epsilon=NORM_EPSILON, dtype=dtype, name=name)(x)
  return nn.LayerNorm(epsilon=NORM_EPSILON, dtype=dtype, name=name)(x)
