"""Kernel graphs built from architecture specs, walking the blocks as the Flax models do.

`kernel_graph_for(spec)` turns a `ResNetSpec` or `MLPSpec` (dksflax.shaping.architectures)
into a `dksflax.shaping.kernel_graph` graph, so max_slope_func / max_c0_func /
max_curvature_func are derived from the same object the module is built from.

Layout (matching dksflax/models/blocks.py; pre-activation ResNet-V2, DKS §23.1-23.3, and
Wide-ResNet, DKS §23.6; N = nonlinear layer, A = affine layer, [LN] = a layer norm where
the model has one, i.e. before every nonlinear layer):

  stem:        A (+ max-pool for the imagenet stem)
  vanilla:     [LN] N A [LN] N A ([LN] N A)       no shortcut (DKS §23.5)
  rescaled:    NormalizedSum([Input], [[LN] N A [LN] N A ...]; weights (w, sqrt(1-w^2)))
  transition:  [LN] N, NormalizedSum([A], [A [LN] N A ...]; (w, sqrt(1-w^2)))
               (the projection shares the first nonlinearity, DKS footnote 11)
  head:        [LN] N, Pool(mean | weighted_mean), A (classifier)

`w` is the SHORTCUT weight (TAT Eq. 6, config `shaping.shortcut_weight`); the residual
weight of DKS §23.4 is sqrt(1 - w^2).

Standard variant: batch norm is refused (no Q/C maps, DKS §19.1). With layer norm the
plain sum x + R(x) is exactly a normalised sum with per-block weights: every nonlinear
layer follows a layer norm (q = 1), the residual branch and a projection shortcut end in
an affine layer of a Q(1) = 1 network, so they output q = 1, and an identity shortcut
carries the q of the previous sum. Tracking q gives weights sqrt(q_s/(q_s+1)) and
sqrt(1/(q_s+1)) (DKS §21.3 footnote 10). Without any normalisation q grows block after
block and the nonlinear layers no longer see q = 1, which DKS/TAT require: refused.

ResAvg transitions (skip_connections_normalisation.txt Eq. 15): the shortcut is
conv(h) + P(h), P a stride-s average pool times s, zero-padded (or truncated) to the
output channels. P keeps q (pooling maps to the identity, DKS §20, §21.3 rule 7) on
min(k_in, k_out) of the k_out channels, so it carries the fraction rho = min(k_in, k_out)
/ k_out of q, and the sum has q = 1 + rho. The graph describes the q-preserving shortcut
(conv(h) + P(h)) / sqrt(1 + rho) = NormalizedSum([A], [Pool]; (1, sqrt(rho))/sqrt(1+rho)),
whose C map is the model's; the model must apply the 1/sqrt(1 + rho) factor for its q
values to stay 1 as DKS requires. The slope polynomial is unchanged: both terms map
to 1 after the shared nonlinearity.
"""

from __future__ import annotations

import math

from dksflax.errors import ConfigError
from dksflax.shaping.architectures import BlockSpec, MLPSpec, ResNetSpec
from dksflax.shaping.kernel_graph import (Affine, Chain, Input, Node, Nonlinear,
                                          NormalizedSum, Normalize, Pool)

__all__ = ["kernel_graph_for", "vanilla_chain"]


def vanilla_chain(depth: int) -> Chain:
  """A plain network of `depth` combined layers (affine then nonlinear) and an affine head.

  Args:
    depth: number of nonlinear layers L (mu(psi) = psi**L, DKS §23.5).

  Returns:
    The kernel graph.

  Raises:
    ConfigError: depth < 1.
  """
  if not isinstance(depth, int) or depth < 1:
    raise ConfigError(f"depth={depth!r} must be an integer >= 1")
  layers: list[Node] = []
  for _ in range(depth):
    layers += [Affine(), Nonlinear()]
  return Chain(tuple(layers + [Affine(name="classifier")]))


def _norm(normalization: str) -> list[Node]:
  return [Normalize("layer")] if normalization == "layer_norm" else []


def _check_normalization(variant: str, normalization: str) -> None:
  if normalization == "batch_norm":
    raise ConfigError(
        f"model.normalization='batch_norm' (variant {variant!r}) has no kernel maps: batch "
        "norm depends on the whole mini-batch (DKS §19.1), so DKS/TAT cannot shape it. Use "
        "model.normalization='layer_norm' or 'none' with model.variant 'rescaled' or "
        "'vanilla' (or 'standard' with layer_norm), or a shaping method that does not need "
        "kernel maps (shaping.method fixup, skipinit, lsuv, none)")
  if variant == "standard" and normalization == "none":
    raise ConfigError(
        "model.variant='standard' with model.normalization='none' computes plain sums "
        "x + R(x): q grows with every block and the nonlinear layers stop seeing q = 1, "
        "which the DKS/TAT kernel maps require (DKS §21.2 step 5 asks for normalised sums). "
        "Use model.variant='rescaled' (w*x + sqrt(1-w^2)*R(x)), or add "
        "model.normalization='layer_norm'")


def _residual_layers(block: BlockSpec, norm: list[Node], *, shared_first: bool) -> list[Node]:
  """[LN] N A [LN] N A ... (without the first [LN] N when it is shared)."""
  layers: list[Node] = []
  for j in range(block.residual_nonlinear_layers):
    if not (j == 0 and shared_first):
      layers += norm + [Nonlinear()]
    layers.append(Affine(name=f"conv_{j}"))
  return layers


def _shortcut(block: BlockSpec, resavg: bool) -> Node:
  if not resavg:
    return Affine(name="shortcut_conv")
  rho = min(block.in_channels, block.out_channels) / block.out_channels
  scale = 1.0 / math.sqrt(1.0 + rho)
  return NormalizedSum((Affine(name="shortcut_conv"), Pool("mean")),
                       (scale, math.sqrt(rho) * scale))


def _block(block: BlockSpec, spec: ResNetSpec, norm: list[Node],
           q_in: float) -> tuple[list[Node], float]:
  """The block's layers and its output q (relative; 1 except in standard+LN nets)."""
  if spec.variant == "vanilla":
    return _residual_layers(block, norm, shared_first=False), 1.0
  q_s = 1.0 if block.is_transition else q_in
  if spec.variant == "rescaled":
    w = spec.shortcut_weight
    weights, q_out = (w, math.sqrt(max(0.0, 1.0 - w * w))), 1.0
  else:  # standard + layer norm: x + R(x), weights from the q of each term.
    q_out = q_s + 1.0
    weights = (math.sqrt(q_s / q_out), math.sqrt(1.0 / q_out))
  if block.is_transition:
    residual = _residual_layers(block, norm, shared_first=True)
    return norm + [Nonlinear(), NormalizedSum((_shortcut(block, spec.resavg),
                                               Chain(tuple(residual), "residual")),
                                              weights)], q_out
  residual = _residual_layers(block, norm, shared_first=False)
  return [NormalizedSum((Input(), Chain(tuple(residual), "residual")), weights)], q_out


def _resnet_graph(spec: ResNetSpec) -> Chain:
  _check_normalization(spec.variant, spec.normalization)
  if spec.variant == "rescaled" and not 0.0 <= spec.shortcut_weight <= 1.0:
    raise ConfigError(f"shaping.shortcut_weight={spec.shortcut_weight!r} must lie in [0, 1]")
  norm = _norm(spec.normalization)
  layers: list[Node] = [Affine(name="stem_conv")]
  if spec.stem == "imagenet":
    layers.append(Pool("max"))
  q = 1.0
  for i, block in enumerate(spec.blocks):
    block_layers, q = _block(block, spec, norm, q)
    layers.append(Chain(tuple(block_layers), f"block_{i}"))
  layers += norm + [Nonlinear(), Pool(spec.pooling), Affine(name="classifier")]
  return Chain(tuple(layers))


def _mlp_graph(spec: MLPSpec) -> Chain:
  _check_normalization("mlp", spec.normalization)
  norm = _norm(spec.normalization)
  layers: list[Node] = []
  for i in range(spec.depth):
    layers += [Affine(name=f"dense_{i}")] + norm + [Nonlinear()]
  return Chain(tuple(layers + [Affine(name="classifier")]))


def kernel_graph_for(spec: ResNetSpec | MLPSpec) -> Chain:
  """The kernel graph of the network a spec describes.

  Args:
    spec: a ResNetSpec (ResNet-V2 or Wide-ResNet) or an MLPSpec.

  Returns:
    The graph; feed it to max_slope_func / max_c0_func / max_curvature_func.

  Raises:
    ConfigError: batch normalisation, a standard variant without normalisation, or an
      unknown spec type (see the module docstring for why).
  """
  if isinstance(spec, ResNetSpec):
    return _resnet_graph(spec)
  if isinstance(spec, MLPSpec):
    return _mlp_graph(spec)
  raise ConfigError(f"no kernel graph for {type(spec).__name__}; expected ResNetSpec or "
                    "MLPSpec")
