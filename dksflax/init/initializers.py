"""Pure weight initialisers: ``(key, shape, dtype) -> array`` factories for linen.

Every factory returns a function with the signature of ``jax.nn.initializers``
(``init(key, shape, dtype=jnp.float32)``), so it can be passed directly as a linen
``kernel_init``. Kernels follow the Flax layout: a Dense kernel has shape ``(in, out)``
and a Conv kernel ``(*spatial, in, out)``, and a layer computes ``y = x @ K``. In the
notation of DKS §4 the "weight matrix" is ``W = K^T`` with shape ``m x k`` (``m`` output
channels, ``k`` input channels).

Convention for ``scale``: it is the weight *variance* multiplier ``sigma_w^2`` of DKS §4
("a variance of sigma^2/k"), for every initialiser here; the standard deviation is
multiplied by ``sqrt(scale)``. ``scale=2`` is He initialisation for ReLU, and the
edge-of-chaos weight variance ``sigma_w^2`` from ``dksflax.shaping.eoc`` plugs in directly.

References:
  * DKS: Martens et al. (2021), "Rapid training of deep neural networks without skip
    connections or normalization layers using Deep Kernel Shaping", §4.1-4.2 (Gaussian
    Delta, SUO distribution, Orthogonal Delta), §5.9, §15.2.
  * Looks-linear: Balduzzi et al. (2017), "The shattered gradients problem".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Initializer = Callable[..., jax.Array]
Shape = Sequence[int]


def _check_scale(scale: float) -> float:
  scale = float(scale)
  if not math.isfinite(scale) or scale < 0.0:
    raise ValueError(
        f"initialiser scale={scale!r} must be a finite variance multiplier >= 0 "
        "(DKS §4: weights have variance scale/fan_in)")
  return scale


def _check_shape(shape: Shape, name: str, min_ndim: int = 2) -> tuple[int, ...]:
  shape = tuple(int(s) for s in shape)
  if len(shape) < min_ndim or any(s <= 0 for s in shape):
    raise ValueError(
        f"{name}: shape {shape} is not a kernel shape; expected (in, out) for Dense or "
        "(*spatial, in, out) for Conv, all dimensions positive")
  return shape


@functools.partial(jax.jit, static_argnums=(1, 2))
def haar_semi_orthogonal(key: jax.Array, m: int, k: int) -> jax.Array:
  """Samples an m x k matrix with orthonormal rows (m <= k) or columns (m > k).

  DKS §4.1: for m <= k the sample is ``(X X^T)^(-1/2) X`` with X iid N(0, 1); for m > k
  the same construction is applied to the k x m matrix and transposed. The polar factor
  ``(X X^T)^(-1/2) X`` equals ``U V^T`` for the thin SVD ``X = U S V^T``; its
  distribution is the Haar (uniform) measure, invariant under left and right
  multiplication by fixed orthogonal matrices (DKS §4.2).

  Args:
    key: PRNG key.
    m: rows (output dimension).
    k: columns (input dimension).

  Returns:
    float32 array of shape (m, k).
  """
  rows, cols = (m, k) if m <= k else (k, m)
  x = jax.random.normal(key, (rows, cols), jnp.float32)
  u, _, vt = jnp.linalg.svd(x, full_matrices=False)
  w = u @ vt
  return w if m <= k else w.T


def suo_matrix(key: jax.Array, m: int, k: int, scale: float = 1.0) -> jax.Array:
  """Samples an m x k weight matrix from the scaled-corrected uniform orthogonal distribution.

  DKS §4.1: a Haar semi-orthogonal matrix multiplied by ``max(sqrt(m/k), 1)``, so that the
  dimension-normalised squared norm ``||W x||^2 / m`` equals ``||x||^2 / k`` exactly when
  ``m >= k`` (DKS §4.2). ``scale`` further multiplies the variance (std by sqrt(scale)).

  Args:
    key: PRNG key.
    m: output dimension (rows of W).
    k: input dimension (columns of W).
    scale: variance multiplier sigma_w^2. (Default: 1.0)

  Returns:
    float32 array of shape (m, k).
  """
  scale = _check_scale(scale)
  w = haar_semi_orthogonal(key, m, k)
  return w * (max(math.sqrt(m / k), 1.0) * math.sqrt(scale))


def fan_in_gaussian(scale: float = 1.0) -> Initializer:
  """Gaussian fan-in initialiser: iid N(0, scale / fan_in) entries.

  ``fan_in`` is the product of all kernel dimensions but the last (spatial taps times
  input channels). With ``scale=1`` on a fully-connected layer this is the Gaussian
  initialisation of DKS §4.1 (variance 1/k).

  Args:
    scale: variance multiplier sigma_w^2. (Default: 1.0)

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: for a negative or non-finite scale, or a shape with fewer than 2 dims.
  """
  scale = _check_scale(scale)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    shape = _check_shape(shape, "fan_in_gaussian")
    return _fan_in_sample(key, shape, jnp.dtype(dtype), scale)

  return init


def orthogonal(scale: float = 1.0) -> Initializer:
  """Haar-distributed (semi-)orthogonal initialiser, without the SUO scale correction.

  The kernel is reshaped to ``(fan_in, out)`` (all but the last axis flattened), filled
  with a Haar semi-orthogonal matrix (DKS §4.1 construction) and multiplied by
  ``sqrt(scale)``. Unlike ``orthogonal_delta`` this has no ``max(sqrt(m/k), 1)`` factor,
  so for ``out > fan_in`` it shrinks the dimension-normalised norm (DKS §4.2 warns about
  exactly this); use it for square layers or when that is intended.

  Args:
    scale: variance multiplier (the gain is sqrt(scale)). (Default: 1.0)

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: for a negative or non-finite scale, or a shape with fewer than 2 dims.
  """
  scale = _check_scale(scale)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    shape = _check_shape(shape, "orthogonal")
    return _orthogonal_sample(key, shape, jnp.dtype(dtype), scale)

  return init


def _check_odd(shape: tuple[int, ...]) -> None:
  if any(s % 2 == 0 for s in shape[:-2]):
    raise ValueError(
        f"Delta initialisation needs odd filter sizes so that a centre tap exists "
        f"(DKS §4.1); got kernel shape {shape}")


# The samplers are jitted with static shapes: one compilation per kernel shape instead of
# one per primitive when a model is initialised eagerly.
@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _fan_in_sample(key: jax.Array, shape: tuple[int, ...], dtype: Any,
                   scale: float) -> jax.Array:
  std = math.sqrt(scale / int(np.prod(shape[:-1])))
  return (std * jax.random.normal(key, shape, jnp.float32)).astype(dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _orthogonal_sample(key: jax.Array, shape: tuple[int, ...], dtype: Any,
                       scale: float) -> jax.Array:
  w = haar_semi_orthogonal(key, shape[-1], int(np.prod(shape[:-1]))) * math.sqrt(scale)
  return w.T.reshape(shape).astype(dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _delta_sample(key: jax.Array, shape: tuple[int, ...], dtype: Any, scale: float,
                  orthogonal_centre: bool) -> jax.Array:
  k, m = shape[-2], shape[-1]
  if orthogonal_centre:
    centre = suo_matrix(key, m, k, scale).T
  else:
    centre = math.sqrt(scale / k) * jax.random.normal(key, (k, m), jnp.float32)
  return delta_kernel(shape, centre).astype(dtype)


def delta_kernel(shape: tuple[int, ...], centre: jax.Array) -> jax.Array:
  """Places an (in, out) matrix at the centre tap of a kernel, zeros elsewhere (DKS §4.1).

  Args:
    shape: the kernel shape ``(*spatial, in, out)`` (or ``(in, out)``).
    centre: the ``(in, out)`` matrix for the central tap.

  Returns:
    The kernel.

  Raises:
    ValueError: when a spatial size is even (no centre tap).
  """
  if len(shape) == 2:
    return centre
  spatial = shape[:-2]
  for s in spatial:
    if s % 2 == 0:
      raise ValueError(
          f"Delta initialisation needs odd filter sizes so that a centre tap exists "
          f"(DKS §4.1); got kernel shape {shape}")
  kernel = jnp.zeros(shape, centre.dtype)
  index = tuple(s // 2 for s in spatial)
  return kernel.at[index].set(centre)


def delta(scale: float = 1.0) -> Initializer:
  """Gaussian Delta initialiser (DKS §4.1).

  All filter taps are zero except the central one, whose ``in x out`` matrix has iid
  N(0, scale / in) entries (the fan-in is the number of input channels ``k``, not
  ``k`` times the filter area). For a Dense kernel this is ``fan_in_gaussian(scale)``.

  Args:
    scale: variance multiplier sigma_w^2. (Default: 1.0)

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: for even filter sizes (no centre tap), a bad scale or shape.
  """
  scale = _check_scale(scale)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    shape = _check_shape(shape, "delta")
    _check_odd(shape)
    return _delta_sample(key, shape, jnp.dtype(dtype), scale, False)

  return init


def orthogonal_delta(scale: float = 1.0) -> Initializer:
  """Orthogonal Delta initialiser: SUO-distributed centre tap (DKS §4.1-4.2).

  The central tap holds ``K_c = W^T`` with ``W`` (``out x in``) drawn from the
  scaled-corrected uniform orthogonal distribution (``suo_matrix``): Haar semi-orthogonal
  times ``max(sqrt(out/in), 1)`` times ``sqrt(scale)``. Hence for ``out >= in`` every
  input vector ``x`` satisfies ``||x K_c|| / ||x|| = sqrt(scale * out / in)``, and for
  ``out <= in`` the columns of ``K_c`` are orthonormal (times sqrt(scale)). All other taps
  are zero. A Dense kernel is just the centre tap (DKS: "for fully-connected layers ... a
  Delta initialization becomes equivalent to a standard one").

  Args:
    scale: variance multiplier sigma_w^2. (Default: 1.0)

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: for even filter sizes, a bad scale or shape.
  """
  scale = _check_scale(scale)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    shape = _check_shape(shape, "orthogonal_delta")
    _check_odd(shape)
    return _delta_sample(key, shape, jnp.dtype(dtype), scale, True)

  return init


def looks_linear(scale: float = 1.0, *, mirror_input: bool = True,
                 mirror_output: bool = True, base: str = "orthogonal_delta") -> Initializer:
  """Looks-linear (mirrored) initialiser (Balduzzi et al. 2017; used by RISOTTO).

  With ``B`` a base kernel of the halved shape, the kernel is, along the channel axes,
  ``[[B, -B], [-B, B]]`` (input halves as block rows, output halves as block columns).
  When the layer's input is the mirrored pair ``[relu(a), relu(-a)]``, its output is
  ``[a B, -a B]`` because ``relu(a) - relu(-a) = a``, so a ReLU network built from such
  layers computes a linear function at initialisation: the first layer mirrors only its
  output (``mirror_input=False``: ``[B, -B]``), the classifier only its input
  (``mirror_output=False``: ``[[B], [-B]]``).

  Args:
    scale: variance multiplier passed to the base initialiser. (Default: 1.0)
    mirror_input: mirror along the input-channel axis (needs an even input count).
      (Default: True)
    mirror_output: mirror along the output-channel axis (needs an even output count).
      (Default: True)
    base: initialiser name for ``B``: ``"orthogonal_delta"``, ``"delta"``,
      ``"orthogonal"`` or ``"fan_in_gaussian"``. (Default: "orthogonal_delta")

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: if neither axis is mirrored, for an unknown base, or for an odd channel
      count on a mirrored axis.
  """
  bases = {"orthogonal_delta": orthogonal_delta, "delta": delta, "orthogonal": orthogonal,
           "fan_in_gaussian": fan_in_gaussian}
  if base not in bases:
    raise ValueError(f"looks_linear base={base!r} is not accepted; choose one of: "
                     + ", ".join(repr(b) for b in bases))
  if not (mirror_input or mirror_output):
    raise ValueError("looks_linear needs mirror_input and/or mirror_output: with neither "
                     "it is just the base initialiser")
  base_init = bases[base](scale)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    shape = _check_shape(shape, "looks_linear")
    k, m = shape[-2], shape[-1]
    for flag, n, axis in ((mirror_input, k, "input"), (mirror_output, m, "output")):
      if flag and n % 2:
        raise ValueError(f"looks_linear: the {axis} channel count {n} of kernel shape "
                         f"{shape} must be even to hold the mirrored pair [B, -B]")
    half = shape[:-2] + (k // 2 if mirror_input else k, m // 2 if mirror_output else m)
    b = base_init(key, half, jnp.float32)
    if mirror_output:
      b = jnp.concatenate([b, -b], axis=-1)
    if mirror_input:
      b = jnp.concatenate([b, -b], axis=-2)
    return b.astype(dtype)

  return init


def zeros() -> Initializer:
  """All-zero initialiser (Fixup's last branch layer and classifier; SkipInit gains).

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.
  """

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    del key
    return jnp.zeros(tuple(shape), dtype)

  return init


def gaussian_bias(variance: float = 0.0) -> Initializer:
  """Bias initialiser with iid N(0, variance) entries (EOC bias variance sigma_b^2).

  Args:
    variance: the bias variance sigma_b^2; 0 gives zeros (DKS §4.1 assumes zero biases).
      (Default: 0.0)

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ValueError: for a negative or non-finite variance.
  """
  variance = _check_scale(variance)

  def init(key: jax.Array, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    noise = jax.random.normal(key, tuple(shape), jnp.float32)
    return (math.sqrt(variance) * noise).astype(dtype)

  return init
