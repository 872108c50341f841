"""`model.*` config keys: architecture, variant, activation, normalisation.

Which keys each `model.name` reads (`dksflax.models.registry` builds the spec):
  * mlp: depth (nonlinear layers), width (units); variant must be "vanilla".
  * wrn: depth (6n+4), width (widening factor k), width_multiplier (extra scale, for tiny
    test nets); always the CIFAR stem (DKS §23.6).
  * resnet50 / resnet101 / resnet152: the depth is the name's (model.depth is not read);
    width_multiplier scales every channel count; stem imagenet or cifar.
  * resnet: an explicit ResNet-V2 with `blocks` bottleneck blocks per stage (e.g. (1, 1, 1, 1),
    depth 3*sum+2), or, with blocks=(), the standard one of depth `depth` (50/101/152/200).
"""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError, check_choice, check_range

MODEL_NAMES = ("resnet50", "resnet101", "resnet152", "resnet", "wrn", "mlp")
VARIANTS = ("standard", "rescaled", "vanilla")
#: "auto": batch norm for the standard variant (none under fixup/skipinit/risotto, which
#: replace it), no normalisation for rescaled / vanilla nets and MLPs.
NORMALIZATIONS = ("auto", "none", "batch_norm", "layer_norm")
POOLINGS = ("mean", "weighted_mean")
STEMS = ("imagenet", "cifar")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "mlp"            # one of MODEL_NAMES
  c.variant = "vanilla"     # standard (BN + skips), rescaled (w*x + sqrt(1-w^2)*R(x)), vanilla
  c.depth = 50              # MLP: nonlinear layers; WRN: 6n+4; resnet: 50/101/152 (or blocks)
  c.width = 256             # MLP: units per layer; WRN: widening factor k; not read by ResNets
  c.width_multiplier = 1.0  # ResNet / WRN: scales every channel count (1/16 for tiny tests)
  c.blocks = ()             # model.name="resnet": bottleneck blocks per stage, e.g. (1, 1, 1, 1)
  c.activation = "tanh"     # name in the activation registry
  c.normalization = "auto"  # auto, none, batch_norm, layer_norm (auto: BN for standard nets)
  c.stem = "cifar"          # imagenet (7x7/2 conv + maxpool) or cifar (3x3 conv)
  c.pooling = "mean"        # mean or weighted_mean (DKS §20.1.2)
  c.resavg = False          # ResAvg transition blocks (skip_connections_normalisation)
  c.dropout = 0.0           # dropout rate before the classifier
  c.num_classes = -1        # -1: take from the dataset
  c.dtype = "float32"       # compute dtype: float32 or bfloat16 (params stay float32)
  return c


def validate(model: ml_collections.ConfigDict) -> None:
  check_choice("model.name", model.name, MODEL_NAMES)
  check_choice("model.variant", model.variant, VARIANTS)
  check_choice("model.normalization", model.normalization, NORMALIZATIONS)
  check_choice("model.pooling", model.pooling, POOLINGS)
  check_choice("model.stem", model.stem, STEMS)
  check_choice("model.dtype", model.dtype, ("float32", "bfloat16"))
  check_range("model.dropout", model.dropout, low=0.0, high=1.0, high_inclusive=False,
              why="a dropout rate is a probability below 1")
  check_range("model.width_multiplier", model.width_multiplier, low=0.0, low_inclusive=False,
              why="channel counts are scaled by a positive factor")
  for key in ("depth", "width"):
    value = model[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"model.{key}={value!r} must be a positive integer")
  blocks = tuple(model.blocks)
  if blocks and (len(blocks) != 4 or any(not isinstance(b, int) or b < 1 for b in blocks)):
    raise ConfigError(f"model.blocks={blocks!r} must be four positive block counts, one per "
                      "ResNet-V2 stage (e.g. (1, 1, 1, 1)), or () for a standard depth")
  if model.num_classes != -1 and model.num_classes < 1:
    raise ConfigError(f"model.num_classes={model.num_classes!r} must be >= 1 or -1 (take it "
                      "from the dataset)")
