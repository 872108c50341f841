"""ResNet-V2 and Wide-ResNet as one Flax module built from a `ResNetSpec`.

Module conventions (other layers rely on them):
  * The module takes the spec, an activation callable (jnp -> jnp; a transformed
    activation under DKS/TAT) and a `ModelInits`; compute dtype via `dtype` (float32 or
    bfloat16), parameters are always float32.
  * ``__call__(x, train) -> (logits, out)``, where `out` holds named intermediates
    (big_vision style): "stem" (after the stem convolution [+ max-pool]), "block_0" ..
    "block_{N-1}" (block outputs), "pre_pool" (after the final norm + activation, per
    location), "pre_logits" (after pooling, before dropout and the classifier). Diagnostics
    measure q/c per layer from them without hooks.
  * Parameter names: "stem_conv"; "block_{i}" containing "conv_{j}" (residual branch),
    "shortcut_conv" (projection), "norm_{j}"; "final_norm"; "pool" (weighted mean pooling);
    "classifier". Fixup adds scalars "bias_{k}" and "scale", SkipInit "skip_gain" in each
    block. Every conv/dense is an `nn.Conv` / `nn.Dense` (kfac-jax registers them).
  * Convolutions have no bias with batch norm and a bias (zero-initialised unless the
    initializer says otherwise) without it (DKS §23.2).

Architecture (DKS §23.1-23.6): stem = 7x7/2 conv + 3x3/2 max-pool ("imagenet") or 3x3/1
conv ("cifar"); the blocks of `spec.blocks` (see `blocks.py`); final norm, activation,
global (weighted) mean pooling (DKS §20.1.2), optional dropout before the classifier (TAT
App. D: dropout on the penultimate layer of normaliser-free nets), Dense classifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError
from dksflax.models.blocks import ResidualBlock, conv_padding
from dksflax.models.model_inits import ModelInits
from dksflax.models.norm import apply_norm
from dksflax.models.pooling import GlobalPool
from dksflax.shaping.architectures import ResNetSpec


class ResNet(nn.Module):
  """ResNet-V2 / Wide-ResNet (families "resnet_v2" and "wrn" of ResNetSpec).

  Attributes:
    spec: the architecture (blocks, variant, normalisation, stem, pooling, resavg, classes).
    activation: elementwise activation.
    inits: initializers for every parameter group.
    residual_mode: "plain", "fixup" or "skipinit". (Default: "plain")
    dropout_rate: dropout before the classifier; needs a "dropout" rng when training with a
      positive rate. (Default: 0.0)
    dtype: compute dtype. (Default: float32)
  """

  spec: ResNetSpec
  activation: Callable[[jax.Array], jax.Array]
  inits: ModelInits
  residual_mode: str = "plain"
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs the network.

    Args:
      x: (batch, height, width, channels) images.
      train: training mode (batch statistics, dropout).

    Returns:
      (logits of shape (batch, num_classes), dict of named intermediates).

    Raises:
      ConfigError: input that is not a batch of images.
    """
    spec = self.spec
    if x.ndim != 4:
      raise ConfigError(f"ResNet input must be (batch, height, width, channels); got shape "
                        f"{tuple(x.shape)}")
    out: dict[str, jax.Array] = {}
    x = x.astype(self.dtype)
    k, stride = (7, 2) if spec.stem == "imagenet" else (3, 1)
    x = nn.Conv(spec.stem_channels, (k, k), strides=(stride, stride),
                padding=conv_padding(k), use_bias=spec.normalization != "batch_norm"
                and self.residual_mode != "fixup", kernel_init=self.inits.stem,
                bias_init=self.inits.bias, dtype=self.dtype, param_dtype=jnp.float32,
                name="stem_conv")(x)
    if spec.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    out["stem"] = x
    for i, block in enumerate(spec.blocks):
      x = ResidualBlock(block, spec.variant, spec.normalization, self.activation, self.inits,
                        shortcut_weight=spec.shortcut_weight, resavg=spec.resavg,
                        residual_mode=self.residual_mode, dtype=self.dtype,
                        name=f"block_{i}")(x, train)
      out[f"block_{i}"] = x
    x = apply_norm(spec.normalization, x, train=train, name="final_norm", dtype=self.dtype)
    x = self.activation(x)
    out["pre_pool"] = x
    x = GlobalPool(spec.pooling, pool_init=self.inits.pool, dtype=self.dtype, name="pool")(x)
    out["pre_logits"] = x
    if self.dropout_rate > 0.0:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    logits = nn.Dense(spec.num_classes, kernel_init=self.inits.classifier_kernel,
                      bias_init=self.inits.classifier_bias, dtype=self.dtype,
                      param_dtype=jnp.float32, name="classifier")(x)
    return logits, out
