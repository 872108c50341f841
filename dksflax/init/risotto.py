"""RISOTTO: residual blocks that are exactly orthogonal maps at initialisation.

RISOTTO (Gadhikar & Burkholz, "Dynamical isometry for residual networks";
risotto_abstract_intro.txt) initialises a residual block so that it "acts as an
orthogonal, norm and distance preserving transform" for ReLU networks of finite width
and depth, balancing the skip and residual contributions instead of shrinking the branch.
Only the abstract and introduction are available here; this module reconstructs the
scheme from them with the looks-linear construction they cite (Balduzzi et al. 2017;
Burkholz & Dubatovka 2019), and the tests check the defining property directly: every
singular value of the block's input-output Jacobian equals 1.

Block form (RISOTTO's blocks: the branch starts with a weight layer):
    y = alpha * S x + beta * W_m phi(W_{m-1} phi( ... phi(W_1 x)))
with ``S`` the identity (or a projection convolution when channels change), biases zero,
and ``phi`` ReLU, or any activation with ``phi(z) - phi(-z) = g z`` (leaky ReLU with
negative slope a and output scale s: ``g = s (1 + a)``). The hidden layers hold a
mirrored pair of ``h`` channels (``2h`` in all):
    W_1 = [U; -U],  W_i = [[A_i, -A_i], [-A_i, A_i]],  W_m = [V, -V],
so the branch computes ``g^(m-1) V A_{m-1} ... A_2 U x`` exactly (``phi(z) - phi(-z) = g z``).
With ``M`` a Haar-random orthogonal matrix, ``V`` is chosen so that the whole block is
``y = M x``: its Jacobian is ``M`` at every input, so all singular values are 1.
  * ``h >= in``: ``U`` has orthonormal columns and ``V = (M - alpha S) T^T / (beta g^(m-1))``
    with ``T = A ... U`` (``T^T T = I``); any ``alpha``, identity or projection shortcut.
  * ``h < in`` (a bottleneck): the branch has rank at most ``h``, so ``M - alpha S`` must
    too; that is possible for the plain identity sum (``alpha = 1``): ``M = I + Q (R - I) Q^T``
    rotates a random ``h``-dimensional subspace (``Q`` orthonormal, ``R`` Haar orthogonal).
Convolutions use the Delta structure (DKS §4.1: only the centre tap is non-zero), so a
stride-1 convolutional block applies ``M`` at every location.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError
from dksflax.init.initializers import delta_kernel, haar_semi_orthogonal


@dataclasses.dataclass(frozen=True)
class RisottoBlockInit:
  """Kernels of one RISOTTO-initialised residual block.

  Attributes:
    kernels: ``"conv_{j}"`` -> kernel for the branch layers j = 0..m-1 (Flax layout
      ``(*spatial, in, out)``), plus ``"shortcut_conv"`` when the shortcut is a projection.
    block_matrix: the ``out x in`` orthogonal (or semi-orthogonal) matrix ``M`` the block
      computes at every location.
  """

  kernels: dict[str, jax.Array]
  block_matrix: jax.Array


def _check(in_channels: int, out_channels: int, hidden_channels: int, num_layers: int,
           shortcut_weight: float, residual_weight: float, projection: bool,
           activation_gain: float) -> None:
  if min(in_channels, out_channels, hidden_channels) < 1:
    raise ConfigError("risotto: channel counts must be positive, got in="
                      f"{in_channels}, out={out_channels}, hidden={hidden_channels}")
  if hidden_channels % 2:
    raise ConfigError(
        f"risotto: hidden_channels={hidden_channels} must be even: each hidden layer holds "
        "a looks-linear mirrored pair [z, -z]")
  if num_layers < 2:
    raise ConfigError(f"risotto: num_layers={num_layers} must be >= 2 (the branch needs a "
                      "hidden nonlinearity for the looks-linear construction)")
  if not residual_weight > 0.0:
    raise ConfigError(f"risotto: residual_weight={residual_weight!r} must be > 0")
  if not (math.isfinite(shortcut_weight) and shortcut_weight >= 0.0):
    raise ConfigError(f"risotto: shortcut_weight={shortcut_weight!r} must be >= 0")
  if not (math.isfinite(activation_gain) and activation_gain > 0.0):
    raise ConfigError(
        f"risotto: activation_gain={activation_gain!r} must be > 0; it is g in "
        "phi(z) - phi(-z) = g z (1 for ReLU), which only (leaky-)ReLU-type activations have")
  if not projection and in_channels != out_channels:
    raise ConfigError(
        f"risotto: an identity shortcut needs in_channels == out_channels, got "
        f"{in_channels} -> {out_channels}; pass projection=True for a transition block")
  h = hidden_channels // 2
  if h < in_channels and not (shortcut_weight == 1.0 and not projection):
    raise ConfigError(
        f"risotto: half the hidden width ({h}) is below in_channels={in_channels}, so the "
        "branch has rank < in_channels; an orthogonal block then needs a plain identity "
        "sum (shortcut_weight=1, no projection). Widen the hidden layers to >= "
        f"{2 * in_channels} channels or use shortcut_weight=1.")


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6, 7, 8))
def _block_matrices(key: jax.Array, n: int, n_out: int, h: int, num_layers: int,
                    alpha: float, beta: float, projection: bool,
                    gain: float) -> tuple[list[jax.Array], jax.Array, jax.Array]:
  """Returns the branch matrices (Flax layout), the shortcut matrix S and M (one compile)."""
  keys = jax.random.split(key, num_layers + 3)
  mids = [haar_semi_orthogonal(keys[i], h, h) for i in range(num_layers - 2)]
  s = jnp.eye(n_out, n)
  if h >= n:
    u = haar_semi_orthogonal(keys[-1], h, n)                      # U^T U = I_n
    m_block = haar_semi_orthogonal(keys[-2], n_out, n)
    if projection:
      s = haar_semi_orthogonal(keys[-3], n_out, n)
    target = m_block - alpha * s
  else:
    q = haar_semi_orthogonal(keys[-1], n, h)                      # n x h, Q^T Q = I_h
    r = haar_semi_orthogonal(keys[-2], h, h)
    u = q.T
    target = q @ (r - jnp.eye(h)) @ q.T
    m_block = jnp.eye(n) + target
  t = u
  for a in mids:
    t = a @ t
  v = target @ t.T / (beta * gain ** (num_layers - 1))
  # Flax kernels are W^T, with input halves as block rows and output halves as columns.
  mats = [jnp.concatenate([u.T, -u.T], axis=1)]
  for a in mids:
    mats.append(jnp.block([[a.T, -a.T], [-a.T, a.T]]))
  mats.append(jnp.concatenate([v.T, -v.T], axis=0))
  return mats, s, m_block


def risotto_block(key: jax.Array, *, in_channels: int, out_channels: int,
                  hidden_channels: int, num_layers: int = 2,
                  kernel_sizes: Sequence[Sequence[int]] | None = None,
                  shortcut_weight: float = 1.0, residual_weight: float = 1.0,
                  projection: bool = False, activation_gain: float = 1.0,
                  dtype: jnp.dtype = jnp.float32) -> RisottoBlockInit:
  """Samples the kernels of a residual block whose map at init is orthogonal.

  Args:
    key: PRNG key.
    in_channels: channels entering the block (``n``).
    out_channels: channels leaving the block; equals ``in_channels`` unless
      ``projection``.
    hidden_channels: width of each hidden branch layer (even: a mirrored pair of
      ``hidden_channels // 2``).
    num_layers: weight layers in the branch, m >= 2. (Default: 2)
    kernel_sizes: spatial kernel size of each branch layer, e.g. ``((1, 1), (3, 3),
      (1, 1))``; None for Dense layers. Shortcut projections are 1x1. (Default: None)
    shortcut_weight: alpha, the shortcut's multiplier. (Default: 1.0)
    residual_weight: beta, the branch's multiplier (> 0). (Default: 1.0)
    projection: the shortcut is a (1x1) projection ``S`` instead of the identity.
      (Default: False)
    activation_gain: g with ``phi(z) - phi(-z) = g z`` (1 for ReLU). (Default: 1.0)
    dtype: dtype of the kernels. (Default: float32)

  Returns:
    A ``RisottoBlockInit``.

  Raises:
    ConfigError: for odd hidden widths, m < 2, mismatched shortcut shapes, or a
      bottleneck that cannot represent an orthogonal block (see module docstring).
  """
  _check(in_channels, out_channels, hidden_channels, num_layers, float(shortcut_weight),
         float(residual_weight), projection, float(activation_gain))
  if kernel_sizes is None:
    kernel_sizes = [()] * num_layers
  kernel_sizes = [tuple(int(s) for s in ks) for ks in kernel_sizes]
  if len(kernel_sizes) != num_layers:
    raise ConfigError(f"risotto: {len(kernel_sizes)} kernel_sizes given for "
                      f"num_layers={num_layers}")
  mats, s, m_block = _block_matrices(
      key, in_channels, out_channels, hidden_channels // 2, num_layers,
      float(shortcut_weight), float(residual_weight), bool(projection),
      float(activation_gain))
  kernels = {}
  for j, (mat, ks) in enumerate(zip(mats, kernel_sizes)):
    kernels[f"conv_{j}"] = delta_kernel(ks + mat.shape, mat).astype(dtype)
  if projection:
    ks = (1,) * len(kernel_sizes[0])
    kernels["shortcut_conv"] = delta_kernel(ks + s.T.shape, s.T).astype(dtype)
  return RisottoBlockInit(kernels=kernels, block_matrix=m_block.astype(dtype))
