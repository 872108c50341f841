"""Nodes of the kernel-graph language (DKS §6-§7, §9, §19-§21) and structural checks.

The evaluator and the derived maps live in `dksflax.shaping.kernel_graph`, which
re-exports everything here; build graphs from there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any, Union

import numpy as np

from dksflax.errors import ShapingError

POOL_KINDS = ("mean", "weighted_mean", "max")
NORM_KINDS = ("layer", "batch")
_SUM_TOL = 1e-10


@dataclasses.dataclass(frozen=True)
class Input:
  """The input of the (sub)network: the identity map (DKS §21.3 rule 8).

  Inside a branch it stands for the branch point, e.g. the identity shortcut of a
  residual block.
  """


@dataclasses.dataclass(frozen=True)
class Affine:
  """A dense or convolutional layer with fan-in-scaled weights (DKS §4, §6).

  Attributes:
    weight_var: sigma_w^2, the weight variance times fan-in. (Default: 1.0)
    bias_var: sigma_b^2, the bias variance. (Default: 0.0)
    name: optional label for reports.
  """

  weight_var: float = 1.0
  bias_var: float = 0.0
  name: str = ""

  def __post_init__(self) -> None:
    if not (math.isfinite(self.weight_var) and self.weight_var > 0):
      raise ShapingError(f"Affine weight_var={self.weight_var!r} must be a positive number")
    if not (math.isfinite(self.bias_var) and self.bias_var >= 0):
      raise ShapingError(f"Affine bias_var={self.bias_var!r} must be a number >= 0")

  @property
  def is_default(self) -> bool:
    return self.weight_var == 1.0 and self.bias_var == 0.0


@dataclasses.dataclass(frozen=True)
class Nonlinear:
  """An element-wise nonlinear layer: the activation's local map (DKS §21.3 rule 3)."""

  name: str = ""


@dataclasses.dataclass(frozen=True)
class Pool:
  """A pooling layer, mapped to the identity (DKS §20, §21.3 rule 7).

  Weighted mean pooling (DKS §20.1.2) and max pooling early in a network (§20.2) have
  identity maps; plain mean pooling is mapped to the identity as a heuristic.

  Attributes:
    kind: one of POOL_KINDS. (Default: "mean")
  """

  kind: str = "mean"

  def __post_init__(self) -> None:
    if self.kind not in POOL_KINDS:
      raise ShapingError(f"Pool kind={self.kind!r} is not one of {POOL_KINDS}")


@dataclasses.dataclass(frozen=True)
class Normalize:
  """A normalisation layer.

  Layer normalisation sets q to 1 and maps c by DKS §19.2 Eq. (17). Batch normalisation
  can be described (so that a standard ResNet has a graph) but no map can be derived from
  it: its output depends on the whole mini-batch (DKS §19.1), so the derivations refuse it.

  Attributes:
    kind: "layer" or "batch". (Default: "layer")
  """

  kind: str = "layer"

  def __post_init__(self) -> None:
    if self.kind not in NORM_KINDS:
      raise ShapingError(f"Normalize kind={self.kind!r} is not one of {NORM_KINDS}")


def _as_node(x: Any) -> Node:
  if isinstance(x, (list, tuple)):
    return Chain(tuple(x))
  if not isinstance(x, _NODE_TYPES):
    raise ShapingError(f"{x!r} is not a kernel-graph node; expected one of "
                       f"{[t.__name__ for t in _NODE_TYPES]} or a list of them")
  return x


@dataclasses.dataclass(frozen=True)
class Chain:
  """Composition of layers, applied first to last (DKS §21.3 rule 1).

  Attributes:
    layers: the nodes in order (lists are turned into nested chains).
    name: optional label, used in the paths of `subnetwork_values` (e.g. "block_3").
  """

  layers: tuple[Any, ...]
  name: str = ""

  def __post_init__(self) -> None:
    object.__setattr__(self, "layers", tuple(_as_node(x) for x in self.layers))


def _ends_in_fresh_affine(node: Node) -> bool:
  """True when the node's output passes through its own random affine layer last.

  Such an output is uncorrelated with any other branch at initialisation, which is what
  makes the normalised-sum rule sum_i w_i^2 U_i exact (DKS §9, §21.1 item 1).
  """
  if isinstance(node, Affine):
    return True
  if isinstance(node, Chain):
    for layer in reversed(node.layers):
      if isinstance(layer, (Pool, Normalize)):
        continue
      return _ends_in_fresh_affine(layer)
    return False
  if isinstance(node, (NormalizedSum, Concat)):
    return all(_ends_in_fresh_affine(b) for b in node.branches)
  return False


@dataclasses.dataclass(frozen=True)
class NormalizedSum:
  """sum_i w_i Y_i over branches Y_i with sum_i w_i^2 = 1 (DKS §9, §21.2 step 5).

  Attributes:
    branches: the summed subnetworks, each applied to the sum's input (a list of layers
      is a chain; ``[Input()]`` is the identity shortcut).
    weights: w_i, one per branch, with sum_i w_i^2 = 1.

  Raises:
    ShapingError: weights not normalised, a count mismatch, or more than one branch that
      does not end in its own affine layer (such branches are correlated with each other,
      and the rule sum_i w_i^2 U_i would be wrong).
  """

  branches: tuple[Any, ...]
  weights: tuple[float, ...]

  def __post_init__(self) -> None:
    object.__setattr__(self, "branches", tuple(_as_node(b) for b in self.branches))
    object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
    if len(self.branches) < 2:
      raise ShapingError(f"a NormalizedSum needs at least 2 branches, got {len(self.branches)}")
    if len(self.weights) != len(self.branches):
      raise ShapingError(f"NormalizedSum has {len(self.branches)} branches but "
                         f"{len(self.weights)} weights")
    total = sum(w * w for w in self.weights)
    if not all(math.isfinite(w) for w in self.weights) or abs(total - 1.0) > _SUM_TOL:
      raise ShapingError(
          f"NormalizedSum weights {self.weights} have sum of squares {total:.12g}, not 1. "
          "DKS §21.2 step 5 requires every weighted sum sum_i w_i Y_i to be a normalised "
          "sum with sum_i w_i^2 = 1, so that q values stay 1 and the sum's C map is the "
          "weighted average sum_i w_i^2 C_i; e.g. w*x + sqrt(1 - w^2)*R(x) for a residual "
          "block. Rescale the weights (divide by sqrt of their sum of squares).")
    loose = [i for i, b in enumerate(self.branches) if not _ends_in_fresh_affine(b)]
    if len(loose) > 1:
      raise ShapingError(
          f"NormalizedSum branches {loose} do not end in their own affine layer, so they "
          "are correlated and their sum is not covered by the normalised-sum rule (DKS "
          "§21.1 item 1: sums combine the outputs of affine layers; at most one branch, "
          "e.g. an identity shortcut, may skip it)")


@dataclasses.dataclass(frozen=True)
class Concat:
  """Channel concatenation of branches (DKS §21.3 rule 4).

  Attributes:
    branches: the concatenated subnetworks, each applied to the concat's input.
    channels: k_i, the channel count of each branch's output.
  """

  branches: tuple[Any, ...]
  channels: tuple[int, ...]

  def __post_init__(self) -> None:
    object.__setattr__(self, "branches", tuple(_as_node(b) for b in self.branches))
    object.__setattr__(self, "channels", tuple(self.channels))
    if len(self.branches) < 2 or len(self.channels) != len(self.branches):
      raise ShapingError(f"a Concat needs >= 2 branches and one channel count each, got "
                         f"{len(self.branches)} branches and channels={self.channels}")
    if not all(isinstance(k, (int, np.integer)) and k > 0 for k in self.channels):
      raise ShapingError(f"Concat channels={self.channels} must be positive integers")


Node = Union[Input, Affine, Nonlinear, Pool, Normalize, Chain, NormalizedSum, Concat]
_NODE_TYPES = (Input, Affine, Nonlinear, Pool, Normalize, Chain, NormalizedSum, Concat)


def chain(*layers: Any) -> Chain:
  """Chain(layers) with the layers as positional arguments."""
  return Chain(tuple(layers))


def count_nonlinear(node: Node) -> int:
  """Nonlinear layers on the longest path through `node` (D - 1 for ResNet-V2)."""
  if isinstance(node, Nonlinear):
    return 1
  if isinstance(node, Chain):
    return sum(count_nonlinear(x) for x in node.layers)
  if isinstance(node, (NormalizedSum, Concat)):
    return max(count_nonlinear(b) for b in node.branches)
  return 0


def walk(node: Node) -> Iterator[Node]:
  """Yields `node` and every node inside it, depth first."""
  yield node
  children = ()
  if isinstance(node, Chain):
    children = node.layers
  elif isinstance(node, (NormalizedSum, Concat)):
    children = node.branches
  for child in children:
    yield from walk(child)


def with_affine_variances(graph: Node, weight_var: float, bias_var: float) -> Node:
  """The same graph with every affine layer's variances set (e.g. an EOC initialisation).

  Args:
    graph: a kernel graph.
    weight_var: sigma_w^2 for every affine layer.
    bias_var: sigma_b^2 for every affine layer.

  Returns:
    A new graph (nodes are frozen; the input is unchanged).
  """
  if isinstance(graph, Affine):
    return dataclasses.replace(graph, weight_var=weight_var, bias_var=bias_var)
  if isinstance(graph, Chain):
    return Chain(tuple(with_affine_variances(x, weight_var, bias_var) for x in graph.layers))
  if isinstance(graph, (NormalizedSum, Concat)):
    branches = tuple(with_affine_variances(b, weight_var, bias_var) for b in graph.branches)
    return dataclasses.replace(graph, branches=branches)
  return graph


def check_shapeable(graph: Node) -> None:
  """Checks the requirements of DKS §21.1-21.2 that the q = 1 map calculus relies on.

  Raises:
    ShapingError: batch normalisation (DKS §19.1; use layer normalisation or none), or an
      affine layer whose weight/bias variances are not (1, 0) (DKS §21.2 step 1: q values
      must stay 1; use `network_qc_map` for such networks).
  """
  for node in walk(graph):
    if isinstance(node, Normalize) and node.kind == "batch":
      raise ShapingError(
          "the kernel graph contains batch normalisation, which DKS/TAT cannot shape: its "
          "output depends on the whole mini-batch, so it has no Q/C maps (DKS §19.1). Use "
          "normalization='layer_norm' or 'none' (or the rescaled/vanilla variants)")
    if isinstance(node, Affine) and not node.is_default:
      raise ShapingError(
          f"affine layer {node.name or node} has weight_var={node.weight_var}, "
          f"bias_var={node.bias_var}; DKS/TAT maps assume (1, 0) so that q stays 1 "
          "(DKS §21.2 step 1). Use network_qc_map for other variances")
