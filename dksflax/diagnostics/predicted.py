"""Predicted per-layer q and c values from a network's kernel graph (DKS §6-§7, §21).

``layer_graphs(graph)`` cuts the top-level chain of a kernel graph built by
``dksflax.shaping.architecture_graphs.kernel_graph_for`` into prefixes named like the
intermediates the ``dksflax.models`` modules return ("layer_{i}" for an MLP; "stem",
"block_{i}", "pre_pool", "pre_logits" for a ResNet; "logits" for both), and
``predicted_qc`` evaluates the extended Q/C maps (``network_qc_map``) of each prefix, so
a measured table (``empirical_qc``) and a predicted one line up name by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dksflax.shaping import maps
from dksflax.shaping.kernel_graph import (Affine, Chain, Node, Nonlinear, Normalize, Pool,
                                          network_qc_map, walk)


@dataclasses.dataclass(frozen=True)
class QCPrediction:
  """Per-layer predicted q and c values for several input correlations.

  Attributes:
    layer_names: the named intermediates, in network order.
    correlations: the input correlations c_in.
    q: array (layers, correlations) of predicted q values (q_in given).
    c: array (layers, correlations) of predicted output correlations.
  """

  layer_names: tuple[str, ...]
  correlations: tuple[float, ...]
  q: np.ndarray
  c: np.ndarray


def _layer_cuts(graph: Node) -> dict[str, int]:
  """``{name: n}``: the intermediate ``name`` is the output of ``graph.layers[:n]``."""
  if not isinstance(graph, Chain):
    raise ValueError(f"layer_graphs needs a top-level Chain, got {type(graph).__name__}")
  layers = list(graph.layers)
  out: dict[str, int] = {}
  is_resnet = any(isinstance(n, Chain) for n in layers)
  count = 0
  for i, node in enumerate(layers):
    nxt = layers[i + 1] if i + 1 < len(layers) else None
    if is_resnet:
      if isinstance(node, Affine) and node.name == "stem_conv" and not isinstance(nxt, Pool):
        out["stem"] = i + 1
      elif isinstance(node, Pool) and "stem" not in out:
        out["stem"] = i + 1
      elif isinstance(node, Chain):
        out[f"block_{count}"] = i + 1
        count += 1
      elif isinstance(node, Nonlinear):
        out["pre_pool"] = i + 1
      elif isinstance(node, Pool):
        out["pre_logits"] = i + 1
    elif isinstance(node, Nonlinear):
      out[f"layer_{count}"] = i + 1
      out["pre_logits"] = i + 1
      count += 1
  if "pre_logits" in out:  # keep it after the layers, as the models return it
    out["pre_logits"] = out.pop("pre_logits")
  out["logits"] = len(layers)
  return out


def layer_graphs(graph: Node) -> dict[str, Node]:
  """Names the prefixes of a kernel graph after the model's intermediates.

  Args:
    graph: a top-level ``Chain`` from ``kernel_graph_for`` (MLP or ResNet).

  Returns:
    Ordered ``{name: prefix graph}``: for every nonlinear layer of an MLP "layer_{i}"
    (the last one also as "pre_logits");
    for a ResNet "stem" (stem convolution [+ max-pool]), "block_{i}" (each block's
    sub-chain), "pre_pool" (final activation), "pre_logits" (pooling); "logits" (the
    whole graph) for both.

  Raises:
    ValueError: for a graph that is not a top-level Chain.
  """
  cuts = _layer_cuts(graph)
  return {name: Chain(tuple(graph.layers[:n])) for name, n in cuts.items()}


def predicted_qc(graphs: Node | Mapping[str, Node], activation: Any, *,
                 correlations: Sequence[float] = (0.0, 0.5, 0.9), q_in: float = 1.0,
                 layer_names: Sequence[str] | None = None) -> QCPrediction:
  """Predicts per-layer q and c with the extended Q/C maps of a kernel graph (DKS §7).

  Every nonlinear layer uses ``activation``'s local maps (``maps.nonlinear_qc_map``:
  Q(q) = E[phi(sqrt(q) z)^2] and the C map at the layer's actual q values); affine layers
  use the weight/bias variances stored in the graph (``with_affine_variances``).

  Args:
    graphs: a kernel graph (cut with ``layer_graphs``) or ``{name: graph}``.
    activation: the activation of every nonlinear layer (name, ``Activation`` or
      ``TransformedActivation``).
    correlations: input correlations. (Default: (0.0, 0.5, 0.9))
    q_in: the input q value (1 with per-location normalisation). (Default: 1.0)
    layer_names: names to predict (all when None). (Default: None)

  Returns:
    A ``QCPrediction``.

  Raises:
    ValueError: for an unknown layer name (listing the known ones).
  """
  if isinstance(graphs, Mapping):
    named: dict[str, Any] = dict(graphs)
  else:
    named = _layer_cuts(graphs)
  names = tuple(named) if layer_names is None else tuple(layer_names)
  unknown = [n for n in names if n not in named]
  if unknown:
    raise ValueError(f"no kernel graph for layers {unknown}; known: " + ", ".join(named))
  corrs = np.asarray([float(c) for c in correlations], np.float64)

  def layer_map(q1: Any, q2: Any, c: Any) -> tuple[Any, Any, Any]:
    return maps.nonlinear_qc_map(activation, float(q1), float(q2), c)

  q = np.zeros((len(names), corrs.size))
  c = np.zeros_like(q)
  if isinstance(graphs, Mapping) or any(isinstance(n, Normalize) for n in walk(graphs)):
    # Each prefix on its own: exact also where a layer norm needs the mean state.
    for i, name in enumerate(names):
      graph = named[name]
      if isinstance(graph, int):  # a cut of the top-level chain
        graph = Chain(tuple(graphs.layers[:graph]))
      q[i], _, c[i] = network_qc_map(graph, layer_map, q_in, q_in, corrs)
    return QCPrediction(names, tuple(float(v) for v in corrs), q, c)
  # No layer norm: the state (q1, q2, c) is all that flows between top-level layers, so
  # one pass through the chain gives every prefix (linear instead of quadratic cost).
  state: tuple[Any, Any, Any] = (q_in, q_in, corrs)
  at = {n: named[n] for n in names}
  results: dict[int, tuple[Any, Any, Any]] = {0: state}
  for k, layer in enumerate(graphs.layers[:max(at.values())], start=1):
    state = network_qc_map(Chain((layer,)), layer_map, *state)
    results[k] = state
  for i, name in enumerate(names):
    q[i], _, c[i] = results[at[name]]
  return QCPrediction(names, tuple(float(v) for v in corrs), q, c)
