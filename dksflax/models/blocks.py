"""Residual blocks of ResNet-V2 (bottleneck) and Wide-ResNet (basic), all variants.

One `ResidualBlock` is built from one `dksflax.shaping.architectures.BlockSpec`, the same
object the kernel graph is derived from. Layout (pre-activation, DKS §23.1 / §23.6):

  h = act(norm_0(x))                         shared by the branch and a projection shortcut
  r = conv_0(h) -> norm_1 -> act -> conv_1 ...  -> conv_{m-1}     (m = 3 bottleneck, 2 basic)
  s = x                                      (non-transition block)
  s = shortcut_conv(h)                       (transition block, 1x1 with the block's stride;
                                              DKS footnote 11: the projection shares the
                                              first nonlinearity of the residual branch)
  s = (shortcut_conv(h) + P(h)) / sqrt(1+rho)  (ResAvg transition, skip_connections_
                                              normalisation Eq. 15; see `resavg_pool`)

and the block output per variant / residual mode:

  vanilla:   r                               (no shortcut at all, DKS §23.5)
  standard:  s + r                           (batch norm by default)
  rescaled:  w * s + sqrt(1 - w^2) * r       (TAT Eq. 6, w = shaping.shortcut_weight)
  skipinit:  s + skip_gain * r               (De & Smith 2020; skip_gain starts at 0)
  fixup:     s + scale * r' + bias_{2m-1}    (Zhang et al. 2019; r' has scalar biases
                                              bias_{2j} before conv_j and bias_{2j+1}
                                              before each inner activation; scale starts
                                              at 1; no norms and no conv biases)
  risotto:   s + r with NO pre-activation:   h = x (RISOTTO's branch starts with a weight
                                              layer, so that the looks-linear weights of
                                              `dksflax.init.risotto` make the whole block an
                                              orthogonal map at init); norms, when used,
                                              sit after conv_0 .. conv_{m-2} only

The stride sits in the 3x3 convolution of a bottleneck block and the first convolution of a
basic block. 3x3 convolutions use symmetric padding 1 so that, under a Delta
initialisation, every output location of the residual branch lines up with the location the
strided 1x1 shortcut samples (Flax's "SAME" would shift them by one pixel for even sizes and
break the per-location kernel analysis of DKS §5.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError, check_choice
from dksflax.models.model_inits import ModelInits, ones, zeros
from dksflax.models.norm import apply_norm
from dksflax.shaping.architectures import BlockSpec

RESIDUAL_MODES = ("plain", "fixup", "skipinit", "risotto")
Activation = Callable[[jax.Array], jax.Array]


def conv_padding(kernel_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """Symmetric padding (k-1)/2 on both sides for an odd kernel size k."""
  p = (kernel_size - 1) // 2
  return ((p, p), (p, p))


def resavg_pool(x: jax.Array, stride: int, out_channels: int) -> jax.Array:
  """The ResAvg shortcut term: an average pool rescaled to have all singular values 1.

  skip_connections_normalisation.txt Eq. 15 adds to the 1x1-convolution shortcut of a
  transition block a deterministic average pool whose singular values are all 1. A
  non-overlapping s x s average pool has singular values 1/s, so it is multiplied by s; when
  the block widens the channels, the pooled map is zero-padded to `out_channels` (an
  isometric embedding, singular values still 1); when it narrows them, the first
  `out_channels` channels are kept (a coordinate projection).

  Args:
    x: (batch, h, w, c) input of the shortcut.
    stride: s (1 for no pooling).
    out_channels: channels of the block output.

  In the block, the sum conv(h) + P(h) is divided by sqrt(1 + rho), rho = min(in, out) /
  out the fraction of output channels P fills: both terms carry q (P on a fraction rho of
  the channels), so the division keeps the shortcut's q equal to that of the projection
  alone. This makes the shortcut a normalised sum (DKS §21.2 step 5) whose C map is the one
  `dksflax.shaping.architecture_graphs` describes; it only rescales Eq. 15 by a constant.

  Returns:
    (batch, h/s, w/s, out_channels).
  """
  if stride > 1:
    x = nn.avg_pool(x, (stride, stride), strides=(stride, stride), padding="VALID") * stride
  c = x.shape[-1]
  if out_channels > c:
    pad = [(0, 0)] * (x.ndim - 1) + [(0, out_channels - c)]
    return jnp.pad(x, pad)
  return x[..., :out_channels]


class ResidualBlock(nn.Module):
  """One pre-activation residual block (see the module docstring for the exact layout).

  Attributes:
    spec: the block's BlockSpec (kind, channels, stride).
    variant: "standard", "rescaled" or "vanilla".
    normalization: "none", "batch_norm" or "layer_norm".
    activation: elementwise activation (a transformed activation under DKS/TAT).
    inits: kernel/bias initializers.
    shortcut_weight: w of the rescaled sum (TAT Eq. 6). (Default: 0.9)
    resavg: add the ResAvg pooling term to projection shortcuts. (Default: False)
    residual_mode: "plain", "fixup" or "skipinit". (Default: "plain")
    dtype: compute dtype; parameters are float32. (Default: float32)
  """

  spec: BlockSpec
  variant: str
  normalization: str
  activation: Activation
  inits: ModelInits
  shortcut_weight: float = 0.9
  resavg: bool = False
  residual_mode: str = "plain"
  dtype: Any = jnp.float32

  def _conv(self, features: int, kernel: int, stride: int, init: Callable, name: str,
            use_bias: bool) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=conv_padding(kernel), use_bias=use_bias, kernel_init=init,
                   bias_init=self.inits.bias, dtype=self.dtype, param_dtype=jnp.float32,
                   name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Runs the block.

    Args:
      x: (batch, h, w, in_channels).
      train: batch-norm mode.

    Returns:
      (batch, h/stride, w/stride, out_channels).

    Raises:
      ConfigError: a residual mode that needs a shortcut on a vanilla block, or unknown names.
    """
    check_choice("model.variant", self.variant, ("standard", "rescaled", "vanilla"))
    check_choice("residual_mode", self.residual_mode, RESIDUAL_MODES)
    if self.residual_mode != "plain" and self.variant == "vanilla":
      raise ConfigError(f"{self.residual_mode} needs shortcut branches; the vanilla variant "
                        "has none (use variant 'standard')")
    fixup = self.residual_mode == "fixup"
    use_bias = self.normalization != "batch_norm" and not fixup
    shapes = self.spec.conv_shapes
    m = len(shapes)
    stride_index = 1 if self.spec.kind == "bottleneck" else 0

    def scalar(name: str, init: Callable) -> jax.Array:
      return self.param(name, init, (), jnp.float32).astype(self.dtype)

    if self.residual_mode == "risotto":
      h = x
    else:
      h = self.activation(apply_norm(self.normalization, x, train=train, name="norm_0",
                                     dtype=self.dtype))
    r = h
    for j, (kh, _, _, cout) in enumerate(shapes):
      if fixup:
        r = r + scalar(f"bias_{2 * j}", zeros)
      init = self.inits.branch_last if j == m - 1 else self.inits.branch
      stride = self.spec.stride if j == stride_index else 1
      r = self._conv(cout, kh, stride, init, f"conv_{j}", use_bias)(r)
      if j < m - 1:
        if fixup:
          r = r + scalar(f"bias_{2 * j + 1}", zeros)
        r = apply_norm(self.normalization, r, train=train, name=f"norm_{j + 1}",
                       dtype=self.dtype)
        r = self.activation(r)
    if self.variant == "vanilla":
      return r

    if self.spec.is_transition:
      s = self._conv(self.spec.out_channels, 1, self.spec.stride, self.inits.shortcut,
                     "shortcut_conv", use_bias)(h)
      if self.resavg:
        rho = min(self.spec.in_channels, self.spec.out_channels) / self.spec.out_channels
        s = (s + resavg_pool(h, self.spec.stride, self.spec.out_channels)) / math.sqrt(1 + rho)
    else:
      s = x
    if fixup:
      return s + r * scalar("scale", ones) + scalar(f"bias_{2 * m - 1}", zeros)
    if self.residual_mode == "skipinit":
      return s + r * scalar("skip_gain", zeros)
    if self.variant == "rescaled":
      w = float(self.shortcut_weight)
      return w * s + math.sqrt(max(0.0, 1.0 - w * w)) * r
    return s + r
