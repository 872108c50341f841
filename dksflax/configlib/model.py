"""`model.*` config keys: architecture, variant, activation, normalisation."""

from __future__ import annotations

import ml_collections

from dksflax.errors import check_choice

MODEL_NAMES = ("resnet50", "resnet101", "resnet152", "resnet", "wrn", "mlp")
VARIANTS = ("standard", "rescaled", "vanilla")
NORMALIZATIONS = ("none", "batch_norm", "layer_norm")
POOLINGS = ("mean", "weighted_mean")
STEMS = ("imagenet", "cifar")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "mlp"            # one of MODEL_NAMES
  c.variant = "vanilla"     # standard (BN + skips), rescaled (w*x + sqrt(1-w^2)*R(x)), vanilla
  c.depth = 50              # MLP: nonlinear layers; WRN: 6n+4; resnet: 50/101/152 (or block spec)
  c.width = 256             # MLP width; WRN widening factor k; ResNet: base width multiplier (64)
  c.activation = "tanh"     # name in the activation registry
  c.normalization = "none"  # none, batch_norm, layer_norm (standard variant defaults to BN)
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
