"""TAT's eta on a deep vanilla leaky-ReLU MLP (digits): test accuracy against eta.

TAT (Zhang et al., ICLR 2022) §4.3 picks the negative slope of each leaky ReLU so that
the whole network's C map has C_f(0) = eta; small eta is a more nonlinear (and, at depth,
less trainable) network, eta -> 1 a linear one; the paper uses eta in {0.9, 0.95} (§5).
This sweep runs the same machinery as the ImageNet tables on a CPU-sized problem
(`experiments.digits_common`). It has no paper numbers: it checks the trend.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, grid, values
from experiments import digits_common as dg

ETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.98)   # 0.99 is unreachable at depth 50

SWEEP = Sweep(
    name="digits_tat_eta",
    title="TAT eta sweep: 50-layer vanilla leaky-ReLU MLP on digits (test accuracy)",
    config=f"{dg.CONFIG}:tat,sgd",
    cells=grid(dg.sgd("tat"), values("shaping.eta", ETAS, label="eta")),
    seeds=dg.SEEDS,
    plot_key="shaping.eta",
    metric_name="test top-1 (%)",
)
