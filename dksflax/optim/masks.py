"""Which parameters are "weights": the ones L2, LARS adaptation and weight decay act on.

Convolution and dense kernels have rank >= 2; biases and normalisation scales/offsets
have rank <= 1 and are excluded, as in TAT (Zhang et al. 2022) App. E and LARS (You
et al. 2017), whose trust ratio is applied to the weight tensors only.
"""

from __future__ import annotations

from typing import Any

import jax


def weights_mask(params: Any) -> Any:
  """Returns a pytree of bools, True for kernels (rank >= 2), False for biases/scales.

  Args:
    params: A pytree of arrays (or of ``jax.ShapeDtypeStruct``).

  Returns:
    The same structure with a Python bool per leaf.
  """
  return jax.tree_util.tree_map(lambda p: len(p.shape) >= 2, params)
