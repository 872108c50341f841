"""DKS's zeta on a deep vanilla tanh MLP (digits): test accuracy against zeta.

DKS (Martens et al. 2021) §16.6 bounds the network's maximal C-map slope by zeta;
App. M.3 finds zeta = 1.5 fastest, 1.00001 (nearly linear) very slow and 10000
respectable. CPU-sized version of `experiments.dks_zeta` (`experiments.digits_common`).
"""

from __future__ import annotations

from dksflax.sweep import Sweep, grid, values
from experiments import digits_common as dg

ZETAS = (1.00001, 1.1, 1.5, 3.0, 10.0, 100.0, 10000.0)

SWEEP = Sweep(
    name="digits_dks_zeta",
    title="DKS zeta sweep: 50-layer vanilla tanh MLP on digits (test accuracy)",
    config=f"{dg.CONFIG}:dks,sgd",
    cells=grid(dg.sgd("dks", **{"model.activation": "tanh"}),
               values("shaping.zeta", ZETAS, label="zeta")),
    seeds=dg.SEEDS,
    plot_key="shaping.zeta",
    metric_name="test top-1 (%)",
)
