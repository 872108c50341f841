"""Architecture specifications: the one definition of each network.

The Flax modules in `dksflax.models` are built from these specs, and the kernel graphs
in `dksflax.shaping.kernel_graph` are derived from the same specs, so the network that
runs and the network whose kernel is shaped can never drift apart (the official `dks`
package writes the architecture twice, as a module and as a hand-written
`subnet_max_func`, and its maintainers had to fix the copy once).

ResNet-V2 follows DKS §23.1-23.3 (bottleneck blocks, pre-activation, 7x7/2 stem and 3x3/2
max-pool for ImageNet; a 3x3/1 stem for CIFAR); Wide-ResNet follows DKS §23.6 (two 3x3
convolutions per block, depth D with (D-4)/6 blocks per stage). Strides sit in the first
block of each stage, which is also the transition block with the projection shortcut
(the Haiku/Flax convention; DKS footnote 11 identifies the projection's nonlinearity
with the first nonlinearity of the residual branch).

Variants:
  * ``standard``: normalisation (batch norm by default) and plain sums ``x + R(x)``.
  * ``rescaled``: no normalisation; blocks compute ``w*x + sqrt(1-w^2)*R(x)`` (TAT Eq. 6),
    ``w`` = ``shortcut_weight``; a normalised sum in the sense of DKS §21.2 step 5.
  * ``vanilla``: no shortcut branches at all (DKS §23.5).
"""

from __future__ import annotations

import dataclasses
import math

from dksflax.errors import ConfigError, check_choice

VARIANTS = ("standard", "rescaled", "vanilla")
NORMALIZATIONS = ("none", "batch_norm", "layer_norm")
POOLINGS = ("mean", "weighted_mean")

#: ResNet-V2 blocks per stage by depth parameter D (DKS §23.1: D = nonlinear layers + 1).
RESNET_V2_BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
}
RESNET_V2_BOTTLENECK_WIDTHS = (64, 128, 256, 512)
RESNET_V2_EXPANSION = 4
WRN_BASE_WIDTHS = (16, 32, 64)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One residual block (or, in a vanilla net, the same layers without the shortcut).

  Attributes:
    kind: ``"bottleneck"`` (1x1, 3x3, 1x1 convolutions; ResNet-V2) or ``"basic"`` (3x3, 3x3;
      Wide-ResNet).
    in_channels: channels entering the block.
    out_channels: channels leaving the block.
    bottleneck_channels: width of the inner convolutions (== out_channels for basic blocks).
    stride: stride of the block (applied in the 3x3 convolution and in the shortcut).
  """

  kind: str
  in_channels: int
  out_channels: int
  bottleneck_channels: int
  stride: int

  @property
  def is_transition(self) -> bool:
    """True when the shortcut needs a projection (channel count or stride changes)."""
    return self.in_channels != self.out_channels or self.stride != 1

  @property
  def residual_nonlinear_layers(self) -> int:
    return 3 if self.kind == "bottleneck" else 2

  @property
  def conv_shapes(self) -> tuple[tuple[int, int, int, int], ...]:
    """(kh, kw, in, out) of the residual branch's convolutions, in order."""
    if self.kind == "bottleneck":
      b = self.bottleneck_channels
      return ((1, 1, self.in_channels, b), (3, 3, b, b), (1, 1, b, self.out_channels))
    return ((3, 3, self.in_channels, self.out_channels),
            (3, 3, self.out_channels, self.out_channels))


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
  """A ResNet-V2 or Wide-ResNet.

  Attributes:
    family: ``"resnet_v2"`` or ``"wrn"``.
    depth: the depth parameter D of DKS §23.1 / §23.6.
    variant: one of VARIANTS.
    shortcut_weight: w of the normalised sum w*x + sqrt(1-w^2)*R(x) (``rescaled`` only).
    normalization: one of NORMALIZATIONS (``standard`` uses batch_norm unless set).
    stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"cifar"`` (3x3/1 conv).
    stem_channels: output channels of the stem convolution.
    blocks: the residual blocks in order.
    num_classes: classifier outputs.
    pooling: ``"mean"`` or ``"weighted_mean"`` (DKS §20.1.2).
    resavg: use ResAvg transitions (skip_connections_normalisation.txt §6.2-6.3, Eq. 15):
      the 1x1-convolution shortcut of each transition block becomes the sum of that
      convolution and an average pool rescaled to have all singular values 1.
  """

  family: str
  depth: int
  variant: str
  shortcut_weight: float
  normalization: str
  stem: str
  stem_channels: int
  blocks: tuple[BlockSpec, ...]
  num_classes: int
  pooling: str = "mean"
  resavg: bool = False

  @property
  def has_shortcuts(self) -> bool:
    return self.variant != "vanilla"

  @property
  def residual_weight(self) -> float:
    """sqrt(1 - w^2): the weight of the residual branch in a rescaled block."""
    return math.sqrt(max(0.0, 1.0 - self.shortcut_weight**2))

  @property
  def final_channels(self) -> int:
    return self.blocks[-1].out_channels

  @property
  def num_nonlinear_layers(self) -> int:
    """Nonlinear layers on the longest path (D - 1 for ResNet-V2, D - 3 for WRN)."""
    return sum(b.residual_nonlinear_layers for b in self.blocks) + 1


@dataclasses.dataclass(frozen=True)
class MLPSpec:
  """A fully-connected network of `depth` nonlinear layers of `width` units each.

  The layers are Dense -> activation, `depth` times, then a Dense classifier.
  """

  depth: int
  width: int
  num_classes: int
  normalization: str = "none"


def _check_common(variant: str, normalization: str, pooling: str, shortcut_weight: float) -> None:
  check_choice("model.variant", variant, VARIANTS)
  check_choice("model.normalization", normalization, NORMALIZATIONS)
  check_choice("model.pooling", pooling, POOLINGS)
  if not 0.0 <= shortcut_weight <= 1.0:
    raise ConfigError(
        f"shaping.shortcut_weight={shortcut_weight!r} must lie in [0, 1] (w^2 + r^2 = 1)")


def resnet_v2_spec(depth: int, *, num_classes: int = 1000, variant: str = "standard",
                   shortcut_weight: float = 0.9, normalization: str | None = None,
                   stem: str = "imagenet", width_multiplier: float = 1.0,
                   blocks_per_stage: tuple[int, ...] | None = None,
                   pooling: str = "mean", resavg: bool = False) -> ResNetSpec:
  """ResNet-V2 (bottleneck, pre-activation) of depth parameter D (DKS §23.1).

  Args:
    depth: D in RESNET_V2_BLOCKS (50, 101, 152, 200), unless `blocks_per_stage` is given
      (then D must equal 3 * sum(blocks_per_stage) + 2).
    num_classes: classifier outputs.
    variant: standard, rescaled or vanilla.
    shortcut_weight: w for the rescaled variant. (Default: 0.9)
    normalization: none, batch_norm, layer_norm. (Default: batch_norm for standard, none
      otherwise.)
    stem: imagenet or cifar.
    width_multiplier: scales every channel count (for small test models).
    blocks_per_stage: an explicit block spec, e.g. (1, 1, 1, 1) for a tiny test net.
    pooling: mean or weighted_mean.
    resavg: ResAvg transition blocks.
  """
  if normalization is None:
    normalization = "batch_norm" if variant == "standard" else "none"
  _check_common(variant, normalization, pooling, shortcut_weight)
  check_choice("model.stem", stem, ("imagenet", "cifar"))
  if blocks_per_stage is None:
    if depth not in RESNET_V2_BLOCKS:
      raise ConfigError(
          f"model.depth={depth!r} is not a ResNet-V2 depth; choose one of "
          f"{sorted(RESNET_V2_BLOCKS)} or give an explicit block spec")
    blocks_per_stage = RESNET_V2_BLOCKS[depth]
  elif 3 * sum(blocks_per_stage) + 2 != depth:
    raise ConfigError(
        f"model.depth={depth} does not match blocks_per_stage={tuple(blocks_per_stage)}: "
        f"D must equal 3 * sum(blocks) + 2 = {3 * sum(blocks_per_stage) + 2}")
  if width_multiplier <= 0:
    raise ConfigError(f"width multiplier {width_multiplier!r} must be positive")

  def scaled(c: int) -> int:
    return max(1, int(round(c * width_multiplier)))

  stem_channels = scaled(64)
  blocks = []
  in_ch = stem_channels
  for stage, (n, b) in enumerate(zip(blocks_per_stage, RESNET_V2_BOTTLENECK_WIDTHS)):
    out_ch = scaled(b) * RESNET_V2_EXPANSION
    for i in range(n):
      stride = 2 if (i == 0 and stage > 0) else 1
      blocks.append(BlockSpec("bottleneck", in_ch, out_ch, scaled(b), stride))
      in_ch = out_ch
  return ResNetSpec(
      family="resnet_v2", depth=depth, variant=variant, shortcut_weight=shortcut_weight,
      normalization=normalization, stem=stem, stem_channels=stem_channels,
      blocks=tuple(blocks), num_classes=num_classes, pooling=pooling, resavg=resavg)


def wide_resnet_spec(depth: int, widen_factor: int, *, num_classes: int = 10,
                     variant: str = "standard", shortcut_weight: float = 0.9,
                     normalization: str | None = None, pooling: str = "mean",
                     resavg: bool = False, width_multiplier: float = 1.0) -> ResNetSpec:
  """Wide-ResNet WRN-D-k (DKS §23.6): a 3x3/16 stem, three stages of (D-4)/6 basic blocks.

  Args:
    depth: D, with D - 4 divisible by 6 (28, 40, 250 ...).
    widen_factor: k, multiplying the stage widths 16, 32, 64.
    width_multiplier: extra scale on every channel count (for small test models).
  """
  if normalization is None:
    normalization = "batch_norm" if variant == "standard" else "none"
  _check_common(variant, normalization, pooling, shortcut_weight)
  if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
    raise ConfigError(
        f"model.depth={depth!r} is not a Wide-ResNet depth: it must be 6n+4 with n >= 1 "
        "(e.g. 10, 16, 28, 40, 250)")
  if widen_factor < 1:
    raise ConfigError(f"model.width={widen_factor!r} (the WRN widening factor) must be >= 1")
  n = (depth - 4) // 6

  def scaled(c: int) -> int:
    return max(1, int(round(c * width_multiplier)))

  stem_channels = scaled(16)
  blocks = []
  in_ch = stem_channels
  for stage, base in enumerate(WRN_BASE_WIDTHS):
    out_ch = scaled(base * widen_factor)
    for i in range(n):
      stride = 2 if (i == 0 and stage > 0) else 1
      blocks.append(BlockSpec("basic", in_ch, out_ch, out_ch, stride))
      in_ch = out_ch
  return ResNetSpec(
      family="wrn", depth=depth, variant=variant, shortcut_weight=shortcut_weight,
      normalization=normalization, stem="cifar", stem_channels=stem_channels,
      blocks=tuple(blocks), num_classes=num_classes, pooling=pooling, resavg=resavg)


def mlp_spec(depth: int, width: int, *, num_classes: int = 10,
             normalization: str = "none") -> MLPSpec:
  """An MLP with `depth` nonlinear layers of `width` units."""
  if depth < 1:
    raise ConfigError(f"model.depth={depth!r} must be >= 1 for an MLP")
  if width < 1:
    raise ConfigError(f"model.width={width!r} must be >= 1 for an MLP")
  check_choice("model.normalization", normalization, NORMALIZATIONS)
  return MLPSpec(depth=depth, width=width, num_classes=num_classes, normalization=normalization)
