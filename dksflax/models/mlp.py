"""A fully-connected network built from an `MLPSpec`, for quick studies.

Module conventions: as in `resnet.py`. Image inputs are flattened. Layer i computes
``act(norm_i(dense_i(h)))`` (a combined layer of DKS §3.1, with an optional norm between
the affine and the nonlinear layer), and its output is ``out["layer_{i}"]``; the last one is
also ``out["pre_logits"]``. Dropout (optional) precedes the "classifier" Dense. Parameter
names: "dense_{i}", "norm_{i}", "classifier".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dksflax.models.model_inits import ModelInits
from dksflax.models.norm import apply_norm
from dksflax.shaping.architectures import MLPSpec


class MLP(nn.Module):
  """`spec.depth` combined layers of `spec.width` units, then a Dense classifier.

  Attributes:
    spec: depth, width, classes, normalisation.
    activation: elementwise activation.
    inits: `branch` for hidden kernels, `bias` for hidden biases, `classifier_*` for the head.
    dropout_rate: dropout before the classifier. (Default: 0.0)
    dtype: compute dtype. (Default: float32)
  """

  spec: MLPSpec
  activation: Callable[[jax.Array], jax.Array]
  inits: ModelInits
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs the network.

    Args:
      x: (batch, ...) inputs; everything after the batch axis is flattened.
      train: training mode (batch statistics, dropout).

    Returns:
      (logits of shape (batch, num_classes), dict of named intermediates).
    """
    out: dict[str, jax.Array] = {}
    h = x.reshape((x.shape[0], -1)).astype(self.dtype)
    for i in range(self.spec.depth):
      h = nn.Dense(self.spec.width, use_bias=self.spec.normalization != "batch_norm",
                   kernel_init=self.inits.branch, bias_init=self.inits.bias, dtype=self.dtype,
                   param_dtype=jnp.float32, name=f"dense_{i}")(h)
      h = apply_norm(self.spec.normalization, h, train=train, name=f"norm_{i}",
                     dtype=self.dtype)
      h = self.activation(h)
      out[f"layer_{i}"] = h
    out["pre_logits"] = h
    if self.dropout_rate > 0.0:
      h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    logits = nn.Dense(self.spec.num_classes, kernel_init=self.inits.classifier_kernel,
                      bias_init=self.inits.classifier_bias, dtype=self.dtype,
                      param_dtype=jnp.float32, name="classifier")(h)
    return logits, out
