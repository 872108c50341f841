"""Global pooling before the classifier: mean or weighted mean (DKS §20.1).

Weighted mean pooling (DKS §20.1.2) computes ``Z w`` with a learnable vector w over the l
locations, initialised N(0, 1/l) so that the output q is the average of the input q values
and the C map is (heuristically) the identity. It is written as an `nn.Dense` with one
output unit applied along the location axis, so that K-FAC registers it as an ordinary
Kronecker-factored dense layer (no custom einsum).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dksflax.errors import check_choice
from dksflax.models.model_inits import Initializer, fan_in_normal

POOLINGS = ("mean", "weighted_mean")


class GlobalPool(nn.Module):
  """Global (weighted) mean pooling over all spatial locations.

  Attributes:
    kind: "mean" or "weighted_mean". (Default: "mean")
    pool_init: initializer of the (locations, 1) weight of weighted mean pooling.
      (Default: N(0, 1/l))
    dtype: compute dtype.
  """

  kind: str = "mean"
  pool_init: Initializer = fan_in_normal
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Pools (batch, h, w, c) to (batch, c).

    Args:
      x: channels-last feature map.

    Returns:
      The pooled features.
    """
    check_choice("model.pooling", self.kind, POOLINGS)
    b, c = x.shape[0], x.shape[-1]
    z = x.reshape((b, -1, c))
    if self.kind == "mean":
      return jnp.mean(z, axis=1)
    z = jnp.swapaxes(z, 1, 2)  # (b, c, l): a Dense over the l locations.
    pooled = nn.Dense(1, use_bias=False, kernel_init=self.pool_init, dtype=self.dtype,
                      param_dtype=jnp.float32, name="pool")(z)
    return pooled[..., 0]
