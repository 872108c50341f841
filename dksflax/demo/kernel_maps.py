"""Part 1 of ``dksflax demo``: what kernel shaping does to a deep network's C map.

For a 100-layer vanilla MLP and a vanilla (skip-free) ResNet-50 (DKS §23.5) it predicts,
from each network's kernel graph, the network C map C_f of

  * unshaped nets on the edge of chaos (Poole et al. 2016): ReLU with He initialisation
    (sigma_w^2 = 2) and tanh: C_f(0) is close to 1, i.e. all inputs look alike at the
    output (the degeneration of DKS §12.4 and TAT Figure 2);
  * DKS (tanh, softplus; zeta = 1.5): C_f(0) = 0 and the maximal slope is zeta;
  * TAT: leaky ReLU with eta = 0.9 (C_f(0) = eta) and smooth softplus with tau = 0.3,

prints a table, writes PNG plots of the network C maps and ``summary.json`` to DIR.
Pure numpy/scipy (no JAX), a few seconds on one core.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dksflax import cli_shape
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.architecture_graphs import kernel_graph_for

GRID = np.linspace(-1.0, 1.0, 41)
PROBES = (0.0, 0.5, 0.9)
PROFILE_DEPTHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 70, 100)

#: (label, ShapeRequest fields) of the shaped rows.
SHAPED_ROWS = (
    ("DKS tanh", dict(method="dks", activation="tanh", zeta=1.5)),
    ("DKS softplus", dict(method="dks", activation="softplus", zeta=1.5)),
    ("TAT leaky_relu", dict(method="tat", activation="leaky_relu", eta=0.9)),
    ("TAT softplus", dict(method="tat", activation="softplus", tau=0.3)),
)
NETWORKS = (
    ("MLP-100 vanilla", "mlp100_vanilla", dict(arch="mlp", depth=100, width=256)),
    ("ResNet-50 vanilla", "resnet50_vanilla", dict(arch="resnet50", variant="vanilla")),
)


Row = tuple[str, str, Callable[[kg.Node], Callable[[Any], Any]]]


def _unshaped_rows() -> list[Row]:
  """(label, init text, graph -> network C map) of ReLU and tanh on the edge of chaos.

  For ReLU the edge of chaos is He initialisation (sigma_w^2 = 2, sigma_b^2 = 0).
  """
  rows = []
  for label, name in (("ReLU, He/EOC", "relu"), ("tanh, EOC", "tanh")):
    params, layer_map, q_in = cli_shape.eoc_layer_map(name, 1.0)

    def map_for(graph, params=params, layer_map=layer_map, q_in=q_in):
      g = kg.with_affine_variances(graph, params.weight_var, params.bias_var)
      return lambda c: kg.network_qc_map(g, layer_map, q_in, q_in, c)[2]

    rows.append((label, f"sw2={params.weight_var:.3g} sb2={params.bias_var:.3g}", map_for))
  return rows


def _shaped_rows(net: dict[str, Any]) -> list[Row]:
  """(label, "achieved (target)" text, graph -> network C map) of the DKS / TAT rows."""
  rows = []
  for label, fields in SHAPED_ROWS:
    req = cli_shape.ShapeRequest(**net, **fields)
    solved = cli_shape.solve(req)
    ach = solved["report"]["achieved"]
    if "max_slope_mu_psi" in ach:
      text = f"max slope {ach['max_slope_mu_psi']['value']:.4f} (zeta={req.zeta})"
    elif "max_c0" in ach:
      text = f"max C(0) {ach['max_c0']['value']:.4f} (eta={req.eta})"
    else:
      text = f"max C''(1) {ach['max_curvature']['value']:.4f} (tau={req.tau})"
    rows.append((label, text,
                 lambda graph, r=solved["shaped_local"]: kg.network_c_map(graph, r)))
  return rows


def _depth_profile(net: dict[str, Any], rows: list[Row]) -> dict[str, Any]:
  """C_f(0) of the first d layers (plus the classifier) of an MLP, activation kept fixed."""
  graphs = [kernel_graph_for(cli_shape.spec_for(cli_shape.ShapeRequest(**{**net,
                                                                          "depth": d})))
            for d in PROFILE_DEPTHS]
  return {label: (PROFILE_DEPTHS, [float(map_for(g)(0.0)) for g in graphs])
          for label, _, map_for in rows}


def _measure(c_map: Callable[[Any], Any]) -> dict[str, Any]:
  ys = np.asarray(c_map(np.concatenate([GRID, PROBES])), dtype=float)
  n = len(GRID)
  return {**{f"C_f({p})": float(y) for p, y in zip(PROBES, ys[n:])}, "curve": ys[:n]}


def run_kernel_maps(workdir: str) -> dict[str, Any]:
  """Computes the table and writes plots and summary.json to `workdir`.

  Args:
    workdir: output directory (created).

  Returns:
    The summary (also written as JSON).
  """
  from dksflax.shaping import plots  # pylint: disable=import-outside-toplevel
  os.makedirs(workdir, exist_ok=True)
  start = time.perf_counter()
  summary: dict[str, Any] = {"networks": {}}
  header = (f"{'network':<18} {'setting':<16} "
            + " ".join(f"{f'C_f({p})':>9}" for p in PROBES) + "  initialisation / target")
  print(header)
  print("-" * len(header))
  unshaped = _unshaped_rows()
  for title, key, net in NETWORKS:
    rows = unshaped + _shaped_rows(net)
    graph = kernel_graph_for(cli_shape.spec_for(cli_shape.ShapeRequest(**net)))
    curves, table = {}, []
    for label, target, map_for in rows:
      m = _measure(map_for(graph))
      curves[label] = (GRID, m.pop("curve"))
      table.append({"setting": label, "init_or_target": target, **m})
      print(f"{title:<18} {label:<16} " + " ".join(f"{v:9.4f}" for v in m.values())
            + f"  {target}", flush=True)
    png = os.path.join(workdir, f"{key}_c_maps.png")
    plots.plot_c_maps(png, {f"{title}: network C maps": curves},
                title="EOC: C_f ~ 1 (degenerate); DKS/TAT: targets kept")
    summary["networks"][title] = {"rows": table, "plot": png}
    if net["arch"] == "mlp":
      profile = _depth_profile(net, rows)
      png = os.path.join(workdir, f"{key}_depth_profile.png")
      plots.plot_depth_profile(png, profile, title=f"{title}: C_f(0) of the first d layers")
      summary["networks"][title]["depth_profile"] = {
          "depths": list(PROFILE_DEPTHS), **{k: v[1] for k, v in profile.items()},
          "plot": png}
  summary["seconds"] = round(time.perf_counter() - start, 2)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  print(f"wrote plots and summary.json to {workdir} "
        f"in {summary['seconds']} s")
  return summary
