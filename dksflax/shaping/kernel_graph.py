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
The max_* functions below run a compiled form of the graph (`dksflax.shaping.
kernel_graph_program`: the same values, without the per-call tree walk), since the
solvers' root finders call them many times.

Functions handed to the solvers in `dksflax.shaping.dks` / `tat` (exact signatures):

  max_slope_func(graph)(psi) -> mu(psi)                    DKS §17.1, §21.3
  max_c0_func(graph)(r) -> max_g C_g(0)                    TAT Appendix B.2 (r = local C map)
  max_curvature_func(graph)(kappa) -> max_g C_g''(1)       TAT Appendix B.2, B.4

and for diagnostics `network_c_map(graph, r)(c)` and `network_qc_map(graph, layer_map, q1,
q2, c)` (extended Q/C maps of DKS §7 with affine weight/bias variances, so unshaped
networks, e.g. He-initialised or on the edge of chaos, can be predicted too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dksflax.errors import ShapingError
from dksflax.shaping.kernel_graph_nodes import (NORM_KINDS, POOL_KINDS, Affine, Chain, Concat,
                                                Input, Node, Nonlinear, NormalizedSum,
                                                Normalize, Pool, chain, check_shapeable,
                                                count_nonlinear, walk, with_affine_variances)
from dksflax.shaping.kernel_graph_program import LN_MODES, UNCENTRED_LN_MESSAGE, compile_graph

__all__ = [
    "NORM_KINDS", "POOL_KINDS", "Affine", "Chain", "Concat", "Input", "Node", "Nonlinear",
    "NormalizedSum", "Normalize", "Pool", "chain", "check_shapeable", "count_nonlinear",
    "max_c0_func", "max_curvature_func", "max_slope_func", "network_c_map", "network_qc_map",
    "subnetwork_values", "walk", "with_affine_variances",
]

# ---------------------------------------------------------------------------------------
# The generic evaluator.
#
# The state carried along is (value, mean): `value` is what the rule acts on (a c value, a
# slope, a curvature, or a (q1, q2, c) triple), and `mean` describes the mean over channels
# of the features, which only a layer normalisation needs (DKS §19.2): 0.0 for centred
# features (after an affine layer or a layer norm); (factor, thunk) after a nonlinear layer,
# where thunk() gives the mean's share of q right after that layer (computed only if a
# layer norm asks) and factor how later sums/concats scaled it; or _UNKNOWN when several
# uncentred branches were merged.
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
    return self.rule(x), (1.0, self._mean_c)

  def _mean_c(self) -> float:
    """m = E[phi]^2 / Q(1) = C(0), the mean's share of a nonlinear layer's q (DKS §19.2)."""
    if self._r0 is None:
      self._r0 = float(np.asarray(self.rule(0.0)))
    return self._r0

  def mix(self, fractions: Sequence[float], xs: Sequence[Any]) -> Any:
    return sum(f * x for f, x in zip(fractions, xs))

  def normalize(self, x: Any, mean: Any) -> Any:
    if isinstance(mean, float) and mean == 0.0:
      return x
    if self.ln_mode == "identity":
      return x
    if self.ln_mode == "centred" or mean is _UNKNOWN:
      raise ShapingError(UNCENTRED_LN_MESSAGE)
    m = mean[0] * mean[1]()
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
    # Mean over channels, computed only if a layer norm needs it:
    # mu_i mu_j = E[phi(u_i)] E[phi(u_j)] = C(0; q_i, q_j) sqrt(Q(q_i) Q(q_j)).
    return out, (1.0, lambda: (self._mean_product(q1, q1), self._mean_product(q2, q2),
                               self._mean_product(q1, q2)))

  def _mean_product(self, qa: Any, qb: Any) -> Any:
    na, nb, c0 = self.layer_map(qa, qb, np.zeros_like(np.asarray(qa, dtype=np.float64)))
    return np.asarray(c0) * np.sqrt(np.asarray(na) * np.asarray(nb))

  def mix(self, fractions: Sequence[float], xs: Sequence[Any]) -> Any:
    q1 = sum(f * x[0] for f, x in zip(fractions, xs))
    q2 = sum(f * x[1] for f, x in zip(fractions, xs))
    m = sum(f * np.sqrt(x[0] * x[1]) * x[2] for f, x in zip(fractions, xs))
    return q1, q2, m / np.sqrt(q1 * q2)

  def normalize(self, x: Any, mean: Any) -> Any:
    q1, q2, c = x
    one = np.ones_like(np.asarray(q1, dtype=np.float64))
    if isinstance(mean, float) and mean == 0.0:
      return one, one, c
    if mean is _UNKNOWN:
      raise ShapingError("a layer normalisation follows a sum of several uncentred branches; "
                         "its map (DKS §19.2) is not determined by their q/c values")
    a1, a2, a12 = (mean[0] * a for a in mean[1]())
    return one, one, (np.sqrt(q1 * q2) * c - a12) / np.sqrt((q1 - a1) * (q2 - a2))


def _label(node: Node, index: int) -> str:
  return node.name if isinstance(node, Chain) and node.name else str(index)


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
      sub = path if found is None else f"{path}/{_label(layer, i)}"
      x, mean = _evaluate(layer, x, mean, sem, start, found, sub)
    return x, mean
  if isinstance(node, NormalizedSum):
    fractions = [w * w for w in node.weights]
  else:
    total = float(sum(node.channels))
    fractions = [k / total for k in node.channels]
  kind = "sum" if isinstance(node, NormalizedSum) else "concat"
  if found is not None:
    for i, branch in enumerate(node.branches):
      bpath = f"{path}/{kind}[{_label(branch, i)}]"
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
    return value, (m[0] * (f if kind == "sum" else f * f), m[1])
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
    ln_mode: layer-norm handling, one of LN_MODES (see `_RuleSemantics`).
      (Default: "cmap")

  Returns:
    [(path, value)], the whole graph first (path "network").

  Raises:
    ValueError: unknown ln_mode.
    ShapingError: a layer norm whose map cannot be determined (see `_RuleSemantics`).
  """
  if ln_mode not in LN_MODES:
    raise ValueError(f"ln_mode={ln_mode!r} is not one of {LN_MODES}")
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
  program = compile_graph(graph, "identity")   # checks the graph (check_shapeable)

  def mu(psi: float) -> float:
    return program.maximum(lambda x: psi * x, 1.0)

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
  program = compile_graph(graph, "cmap")   # checks the graph (check_shapeable)

  def mu(r: Callable[[Any], Any]) -> float:
    return program.maximum(r, 0.0)

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
  program = compile_graph(graph, "centred")   # checks the graph (check_shapeable)

  def mu(kappa: float) -> float:
    return program.maximum(lambda x: x + kappa, 0.0)

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
    q1, q2: input q values (scalars, or arrays broadcastable with c; q values never
      depend on c, so scalars stay scalars and `layer_map` sees scalar q's).
    c: input c values.

  Returns:
    (q1_out, q2_out, c_out) as float64 arrays.
  """
  for node in walk(graph):
    if isinstance(node, Normalize) and node.kind == "batch":
      check_shapeable(node)
  x = tuple(np.asarray(v, dtype=np.float64) for v in (q1, q2, c))
  value, _ = _evaluate(graph, x, 0.0, _QCSemantics(layer_map), None, None, "network")
  return value
