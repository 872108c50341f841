"""The initializer bundle a model module is built with.

Modules in `dksflax.models` never choose initializers themselves: `build.py` decides them
from `shaping.*` (DKS §4 / §21.2 step 1: zero biases and Gaussian or Orthogonal Delta
weights; Fixup's zero last layers; EOC's bias variance ...) and hands them over in one
frozen `ModelInits`. Every entry is a plain ``(key, shape, dtype) -> array`` callable, as
`jax.nn.initializers` and `dksflax.init` produce, so it is usable as a linen
``kernel_init``/``bias_init``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]


def zeros(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """All-zero initializer (used for biases, DKS §4.1, and Fixup's zero layers)."""
  del key
  return jnp.zeros(shape, dtype)


def ones(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """All-one initializer (Fixup's per-branch multiplier)."""
  del key
  return jnp.ones(shape, dtype)


def fan_in_normal(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
  """N(0, 1/fan_in) with fan_in = shape[0] (the weighted mean-pooling weights, DKS §20.1.2).

  Args:
    key: PRNG key.
    shape: (locations, 1) for the pooling kernel.
    dtype: output dtype.

  Returns:
    The sampled array.
  """
  return jax.random.normal(key, shape, dtype) / jnp.sqrt(jnp.asarray(shape[0], dtype))


@dataclasses.dataclass(frozen=True)
class ModelInits:
  """Initializers for every parameter group of a ResNet / Wide-ResNet / MLP.

  Attributes:
    stem: kernel of the stem convolution (ResNets).
    branch: kernels of the residual-branch convolutions except the last one (and the hidden
      Dense layers of an MLP).
    branch_last: kernel of the last convolution of each residual branch (zero for Fixup,
      else usually equal to `branch`).
    shortcut: kernel of projection shortcuts in transition blocks.
    bias: bias of every convolution / hidden Dense layer (zero for DKS, DKS §4.1;
      N(0, sigma_b^2) for EOC).
    classifier_kernel: kernel of the classifier.
    classifier_bias: bias of the classifier.
    pool: kernel of the weighted mean-pooling layer (DKS §20.1.2: N(0, 1/l) over the l
      locations). (Default: fan_in_normal)
  """

  stem: Initializer
  branch: Initializer
  branch_last: Initializer
  shortcut: Initializer
  bias: Initializer
  classifier_kernel: Initializer
  classifier_bias: Initializer
  pool: Initializer = fan_in_normal

  @classmethod
  def uniform(cls, kernel: Initializer, bias: Initializer = zeros) -> ModelInits:
    """The same kernel initializer everywhere and one bias initializer.

    Args:
      kernel: used for every conv / dense kernel, the classifier included.
      bias: used for every bias, the classifier included. (Default: zeros)

    Returns:
      A ModelInits.
    """
    return cls(stem=kernel, branch=kernel, branch_last=kernel, shortcut=kernel, bias=bias,
               classifier_kernel=kernel, classifier_bias=bias)
