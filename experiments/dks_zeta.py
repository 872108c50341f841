"""DKS App. M.3-M.4: the global slope bound zeta on a skip-free BN-free tanh ResNet-101.

Martens et al. 2021, App. M.3 (optimisation speed) and M.4 (generalisation): DKS tanh
nets without skips or normalisation with zeta = 1.5 (default) against values very close
to 1 (near-linear: 1.00001, 1.1) and large ones (10, 100, 10000), K-FAC and SGD. The
report plots accuracy against zeta. Settings: `experiments.dks_common`.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, grid, merge, setting, values
from experiments import dks_common as dc

ZETAS = (1.00001, 1.1, 1.5, 10.0, 100.0, 10000.0)
PAPER_RESULTS: dict[tuple[str, ...], float] = {}
PAPER_FINDINGS = (
    "M.3: zeta = 1.5 optimises fastest with K-FAC (and short-term with SGD); 1.00001 "
    "(very linear) is very slow; 10000 is respectable but suboptimal. M.4: slightly "
    "smaller values (such as 1.1) may generalise slightly better.")


def _cells():
  common = dc.common_overrides(batch_size=512, steps=200_000,
                               num_train=dc.IMAGENET_TRAIN)
  nets = tuple(merge(setting(labels={"optimizer": dc.OPTIMIZER_LABELS[opt]}),
                     dc.network(dc.IMAGENET, "vanilla", "dks", opt, 101, "tanh", **common))
               for opt in ("kfac", "sgd"))
  return grid(nets, values("shaping.zeta", ZETAS, label="zeta"))


SWEEP = Sweep(
    name="dks_zeta",
    title="DKS App. M.3-M.4: zeta sweep, skip-free BN-free tanh ResNet-101 (ImageNet)",
    config=dc.IMAGENET,
    cells=_cells(),
    search=dc.lr_search,
    metric="train.accuracy",
    metric_name="train top-1 (%)",
    plot_key="shaping.zeta",
    paper=PAPER_RESULTS,
    notes=PAPER_FINDINGS,
)
