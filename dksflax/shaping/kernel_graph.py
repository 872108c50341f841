"""A small description language for a network's kernel, and the maps derived from it.

A kernel graph lists the layers of a network the way the Q/C map calculus of DKS sees
them (DKS §6-§7, §21.1): affine layers, nonlinear layers, normalised sums (DKS §9,
§21.2 step 5), channel concatenations, pooling (DKS §20) and layer normalisation
(DKS §19.2). One generic evaluator propagates a value through the graph, applying a
*nonlinear layer rule* ``r`` at every nonlinear layer and composing by the recipe of
DKS §21.3 / TAT Appendix B.4:

  * composition g∘h maps to U_g ∘ U_h; affine, pooling and the input map to the identity;
  * a normalised sum with weights w_i maps to sum_i w_i^2 U_i (DKS §21.3 rule 5);
  * a concatenation with channel counts k_i maps to sum_i k_i U_i / sum_i k_i (rule 4);
  * a layer normalisation maps c to (c - m)/(1 - m), m the C value of its input's mean
    (DKS §19.2 Eq. 17; the identity for the centred inputs of DKS/TAT networks).

With r the local C map this is the network C map; with r(x) = psi*x evaluated at 1 it is
the slope polynomial p_f(psi) (DKS §17.1); with r(x) = x + kappa evaluated at 0 it is the
network curvature C_f''(1) when C'(1) = 1 everywhere (TAT Appendix B.2, B.4).

Maximal functions (DKS §17.2, TAT Appendix B.1-B.2) take the maximum over subnetworks.
A subnetwork that composes with another into a larger subnetwork is dominated by it, so
the candidates are: the whole graph, and every branch of every normalised sum or
concatenation taken on its own, from the fork to the merge (recursively: a branch's own
nested branches are candidates too). A branch cannot be extended backwards, because the
fork's output also feeds the other branches (DKS §3.1 requires a subnetwork to keep every
dependency and have a single output), nor forwards, past the merge. This is the set
the papers use for ResNets (the network and its residual branches, DKS §23.4, TAT B.5).

Functions handed to the solvers in `dksflax.shaping.dks` / `tat` (exact signatures):

  max_slope_func(graph)(psi) -> mu(psi)                    DKS §17.1, §21.3
  max_c0_func(graph)(r) -> max_g C_g(0)                    TAT Appendix B.2 (r = local C map)
  max_curvature_func(graph)(kappa) -> max_g C_g''(1)       TAT Appendix B.2, B.4

and for diagnostics `network_c_map(graph, r)(c)` and `network_qc_map(graph, layer_map, q1,
q2, c)` (extended Q/C maps of DKS §7 with affine weight/bias variances, so unshaped
networks, e.g. He-initialised or on the edge of chaos, can be predicted too).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
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
  """

  layers: tuple[Any, ...]

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


def _walk(node: Node):
  yield node
  children = ()
  if isinstance(node, Chain):
    children = node.layers
  elif isinstance(node, (NormalizedSum, Concat)):
    children = node.branches
  for child in children:
    yield from _walk(child)


def check_shapeable(graph: Node) -> None:
  """Checks the requirements of DKS §21.1-21.2 that the q = 1 map calculus relies on.

  Raises:
    ShapingError: batch normalisation (DKS §19.1; use layer normalisation or none), or an
      affine layer whose weight/bias variances are not (1, 0) (DKS §21.2 step 1: q values
      must stay 1; use `network_qc_map` for such networks).
  """
  for node in _walk(graph):
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


# ---------------------------------------------------------------------------------------
# The generic evaluator.
#
# The state carried along is (value, mean): `value` is what the rule acts on (a c value, a
# slope, a curvature, or a (q1, q2, c) triple), and `mean` describes the mean over channels
# of the features, which only a layer normalisation needs (DKS §19.2): 0.0 for centred
# features (after an affine layer or a layer norm), otherwise semantics-specific, or
# _UNKNOWN when branches with uncentred outputs were summed.
# ---------------------------------------------------------------------------------------

_UNKNOWN = object()


class _RuleSemantics:
  """Scalar maps on q = 1 networks: a rule r at nonlinear layers (TAT Appendix B.4).

  Args:
    rule: r, applied at each nonlinear layer.
    ln_mode: how layer norms act: "cmap" (Eq. 17 with m = r(0), r a C map), "identity"
      (DKS §21.3 rule 6, exact when C(0) = 0 as DKS enforces) or "centred" (identity,
      and an error if its input may be uncentred: TAT curvature needs C'(1) = 1).
  """

  def __init__(self, rule: Callable[[Any], Any], ln_mode: str):
    self.rule = rule
    self.ln_mode = ln_mode
    self._r0: float | None = None

  def affine(self, node: Affine, x: Any) -> Any:
    del node
    return x

  def nonlinear(self, x: Any) -> tuple[Any, Any]:
    return self.rule(x), ("nonlinear", 1.0)

  def mix(self, fractions: Sequence[float], xs: Sequence[Any]) -> Any:
    return sum(f * x for f, x in zip(fractions, xs))

  def scale_mean(self, mean: Any, fraction: float) -> Any:
    return (mean[0], mean[1] * fraction)

  def normalize(self, x: Any, mean: Any) -> Any:
    if isinstance(mean, float) and mean == 0.0:
      return x
    if self.ln_mode == "identity":
      return x
    if self.ln_mode == "centred" or mean is _UNKNOWN:
      raise ShapingError(
          "a layer normalisation follows uncentred features (a nonlinear layer, or a sum "
          "of several such branches): its C map (DKS §19.2 Eq. 17) then depends on the "
          "activation's mean and its slope at 1 is not 1, which the TAT curvature calculus "
          "needs. Place layer norms before activations (pre-activation), as in ResNet-V2")
    if self._r0 is None:
      self._r0 = float(np.asarray(self.rule(0.0)))
    m = mean[1] * self._r0
    if m >= 1.0:
      raise ShapingError(f"layer norm input has a mean component C(0)={m} >= 1: all c "
                         "values are 1 and layer normalisation is undefined")
    return (x - m) / (1.0 - m)


class _QCSemantics:
  """Extended Q/C maps (DKS §7) with affine variances and a nonlinear layer map."""

  def __init__(self, layer_map: Callable[[Any, Any, Any], tuple[Any, Any, Any]]):
    self.layer_map = layer_map

  def affine(self, node: Affine, x: Any) -> Any:
    q1, q2, c = x
    v, b = node.weight_var, node.bias_var
    n1, n2 = v * q1 + b, v * q2 + b
    return n1, n2, (v * np.sqrt(q1 * q2) * c + b) / np.sqrt(n1 * n2)

  def nonlinear(self, x: Any) -> tuple[Any, Any]:
    q1, q2, c = x
    out = tuple(np.asarray(v, dtype=np.float64) for v in self.layer_map(q1, q2, c))
    # Mean over channels: mu_i mu_j = E[phi(u)] E[phi(v)] = C(q_i, q_j, 0) sqrt(q_i' q_j').
    a1 = self._mean_product(q1, q1)
    a2 = self._mean_product(q2, q2)
    a12 = self._mean_product(q1, q2)
    return out, (a1, a2, a12)

  def _mean_product(self, qa: Any, qb: Any) -> Any:
    na, nb, c0 = self.layer_map(qa, qb, np.zeros_like(np.asarray(qa, dtype=np.float64)))
    return np.asarray(c0) * np.sqrt(np.asarray(na) * np.asarray(nb))

  def mix(self, fractions: Sequence[float], xs: Sequence[Any]) -> Any:
    q1 = sum(f * x[0] for f, x in zip(fractions, xs))
    q2 = sum(f * x[1] for f, x in zip(fractions, xs))
    m = sum(f * np.sqrt(x[0] * x[1]) * x[2] for f, x in zip(fractions, xs))
    return q1, q2, m / np.sqrt(q1 * q2)

  def scale_mean(self, mean: Any, fraction: float) -> Any:
    return tuple(fraction * a for a in mean)

  def normalize(self, x: Any, mean: Any) -> Any:
    q1, q2, c = x
    one = np.ones_like(np.asarray(c, dtype=np.float64))
    if isinstance(mean, float) and mean == 0.0:
      return one, one, c
    if mean is _UNKNOWN:
      raise ShapingError("a layer normalisation follows a sum of several uncentred branches; "
                         "its map (DKS §19.2) is not determined by their q/c values")
    a1, a2, a12 = mean
    return one, one, (np.sqrt(q1 * q2) * c - a12) / np.sqrt((q1 - a1) * (q2 - a2))


def _evaluate(node: Node, x: Any, mean: Any, sem: Any, start: Any,
              found: list[tuple[str, Any]] | None, path: str) -> tuple[Any, Any]:
  """Propagates (x, mean) through `node`; appends branch candidates to `found`."""
  if isinstance(node, (Input, Pool)):
    return x, mean
  if isinstance(node, Affine):
    return sem.affine(node, x), 0.0
  if isinstance(node, Nonlinear):
    return sem.nonlinear(x)
  if isinstance(node, Normalize):
    if node.kind == "batch":
      check_shapeable(node)
    return sem.normalize(x, mean), 0.0
  if isinstance(node, Chain):
    for i, layer in enumerate(node.layers):
      x, mean = _evaluate(layer, x, mean, sem, start, found, f"{path}/{i}")
    return x, mean
  if isinstance(node, NormalizedSum):
    fractions = [w * w for w in node.weights]
  else:
    total = float(sum(node.channels))
    fractions = [k / total for k in node.channels]
  kind = "sum" if isinstance(node, NormalizedSum) else "concat"
  if found is not None:
    for i, branch in enumerate(node.branches):
      bpath = f"{path}/{kind}[{i}]"
      value, _ = _evaluate(branch, start, mean, sem, start, found, bpath)
      found.append((bpath, value))
  outs = [_evaluate(b, x, mean, sem, start, None, path) for b in node.branches]
  value = sem.mix(fractions, [o[0] for o in outs])
  uncentred = [(f, o[1]) for f, o in zip(fractions, outs)
               if not (isinstance(o[1], float) and o[1] == 0.0)]
  if not uncentred:
    return value, 0.0
  if len(uncentred) == 1 and uncentred[0][1] is not _UNKNOWN:
    f, m = uncentred[0]
    # mean_out = sqrt(f) * mean_i (sum) or (k_i/K) * mean_i (concat); products scale by:
    return value, sem.scale_mean(m, f if kind == "sum" else f * f)
  return value, _UNKNOWN


def subnetwork_values(graph: Node, rule: Callable[[Any], Any], start: Any, *,
                      ln_mode: str = "cmap") -> list[tuple[str, float]]:
  """U_{g,r}(start) for the whole graph and every maximal branch subnetwork g.

  This is the subnetwork-maximising construction of TAT Appendix B.2 (DKS §17.2): see the
  module docstring for which subnetworks are candidates.

  Args:
    graph: the kernel graph.
    rule: r, the map applied at each nonlinear layer.
    start: the value fed to each subnetwork's input (0 for C(0), 1 for slopes).
    ln_mode: layer-norm handling, see `_RuleSemantics`. (Default: "cmap")

  Returns:
    [(path, value)], the whole graph first (path "network").
  """
  sem = _RuleSemantics(rule, ln_mode)
  found: list[tuple[str, Any]] = []
  value, _ = _evaluate(graph, start, 0.0, sem, start, found, "network")
  return [("network", float(value))] + [(p, float(v)) for p, v in found]


def max_slope_func(graph: Node) -> Callable[[float], float]:
  """The maximal slope function mu(psi) = max_f p_f(psi) (DKS §17.1, recipe §21.3).

  Args:
    graph: the network's kernel graph.

  Returns:
    mu, a function of psi = C'(1) of every nonlinear layer.

  Raises:
    ShapingError: the graph is not shapeable (see `check_shapeable`).
  """
  check_shapeable(graph)

  def mu(psi: float) -> float:
    values = subnetwork_values(graph, lambda x: psi * x, 1.0, ln_mode="identity")
    return max(v for _, v in values)

  return mu


def max_c0_func(graph: Node) -> Callable[[Callable[[Any], Any]], float]:
  """The maximal C value function max_g C_g(0) given the local C map (TAT Appendix B.2).

  Args:
    graph: the network's kernel graph.

  Returns:
    A function of r, the local C map of the nonlinear layers (q = 1), giving
    M_{f,r}(0) = max over subnetworks g of U_{g,r}(0).

  Raises:
    ShapingError: the graph is not shapeable (see `check_shapeable`).
  """
  check_shapeable(graph)

  def mu(r: Callable[[Any], Any]) -> float:
    return max(v for _, v in subnetwork_values(graph, r, 0.0, ln_mode="cmap"))

  return mu


def max_curvature_func(graph: Node) -> Callable[[float], float]:
  """The maximal curvature function max_g C_g''(1) (TAT Appendix B.2, B.4).

  Valid when every nonlinear layer has C(1) = 1 and C'(1) = 1 (as TAT enforces for smooth
  activations), so that C''(1) adds along compositions and averages across sums.

  Args:
    graph: the network's kernel graph.

  Returns:
    A function of kappa = C''(1) of every nonlinear layer.

  Raises:
    ShapingError: the graph is not shapeable (see `check_shapeable`).
  """
  check_shapeable(graph)

  def mu(kappa: float) -> float:
    values = subnetwork_values(graph, lambda x: x + kappa, 0.0, ln_mode="centred")
    return max(v for _, v in values)

  return mu


def network_c_map(graph: Node, r: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """The network's C map C_f(c) when every nonlinear layer has local C map r (q = 1).

  Args:
    graph: the network's kernel graph.
    r: the local C map (numpy-vectorised).

  Returns:
    C_f, vectorised over arrays of c.

  Raises:
    ShapingError: the graph is not shapeable (see `check_shapeable`).
  """
  check_shapeable(graph)

  def c_map(c: Any) -> Any:
    value, _ = _evaluate(graph, np.asarray(c, dtype=np.float64), 0.0,
                         _RuleSemantics(r, "cmap"), None, None, "network")
    return value

  return c_map


def network_qc_map(graph: Node, layer_map: Callable[[Any, Any, Any], tuple[Any, Any, Any]],
                   q1: Any, q2: Any, c: Any) -> tuple[Any, Any, Any]:
  """Extended Q/C maps of the whole network (DKS §7), for any initialisation.

  Affine layers use their weight and bias variances, sums and concatenations combine
  (q, q*c) linearly, layer norms follow DKS §19.2 (q -> 1).

  Args:
    graph: the network's kernel graph (batch norm is refused).
    layer_map: (q1, q2, c) -> (q1', q2', c') of one nonlinear layer, i.e.
      q_i' = E[phi(sqrt(q_i) z)^2] and c' the output correlation (numpy-vectorised).
    q1, q2: input q values.
    c: input c values.

  Returns:
    (q1_out, q2_out, c_out) as float64 arrays.
  """
  for node in _walk(graph):
    if isinstance(node, Normalize) and node.kind == "batch":
      check_shapeable(node)
  x = tuple(np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (q1, q2, c))))
  value, _ = _evaluate(graph, x, 0.0, _QCSemantics(layer_map), None, None, "network")
  return value
