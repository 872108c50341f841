"""Smooth TAT's tau on a deep vanilla softplus MLP (digits): test accuracy against tau.

Smooth TAT (Zhang et al., ICLR 2022, §4.2) sets the network's C-map curvature
C_f''(1) = tau; TAT searches tau in {0.2, 0.3, 0.5} (§5.4). CPU-sized sweep over a wider
range (`experiments.digits_common`).
"""

from __future__ import annotations

from dksflax.sweep import Sweep, grid, values
from experiments import digits_common as dg

TAUS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)

SWEEP = Sweep(
    name="digits_tat_tau",
    title="Smooth TAT tau sweep: 50-layer vanilla softplus MLP on digits (test accuracy)",
    config=f"{dg.CONFIG}:tat,sgd",
    cells=grid(dg.sgd("tat", **{"model.activation": "softplus"}),
               values("shaping.tau", TAUS, label="tau")),
    seeds=dg.SEEDS,
    plot_key="shaping.tau",
    metric_name="test top-1 (%)",
)
