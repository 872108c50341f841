"""DKS on CIFAR-10: Wide-ResNet-250 (width 2), DKS vs standard and ablated WRNs.

Martens et al. 2021, §28.1-28.2 (CIFAR-10 part) and App. M.2: the modified Wide-ResNet
of §23.6 with 250 layers and width multiplier 2, batch 1024, at most 25,000 steps, no L2,
PLN; DKS nets (vanilla and rescaled with residual weight sqrt(0.05); ReLU / tanh /
softplus; zeta = 1.5) against the standard WRN (batch norm, ReLU, fan-in) and the nets
without skips and/or BN, with K-FAC, Shampoo, SGD and Adam. Metric: training accuracy.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import dks_common as dc

DEPTH = 250
OPTIMIZERS = ("kfac", "shampoo", "sgd", "adam")
ACTIVATIONS = ("relu", "tanh", "softplus")
PAPER_RESULTS: dict[tuple[str, ...], float] = {}
PAPER_FINDINGS = (
    "§28.2 (CIFAR-10): the observations match ImageNet, but the gap between DKS nets and "
    "ablated Wide-ResNets is considerably larger (depth 250 vs 100).")


def _cells():
  common = dc.common_overrides(batch_size=1024, steps=25_000, num_train=dc.CIFAR_TRAIN)
  cells = []
  for opt in OPTIMIZERS:
    nets = {("standard WRN", "relu"): ("standard", "none", "relu", {})}
    for act in ACTIVATIONS:
      nets[("DKS vanilla", act)] = ("vanilla", "dks", act, {})
      nets[("DKS rescaled", act)] = ("rescaled", "dks", act, {})
    nets[("ablated: no skip, BN", "relu")] = (
        "vanilla", "none", "relu", {"model.normalization": "batch_norm"})
    nets[("ablated: skip, no BN", "relu")] = (
        "standard", "none", "relu", {"model.normalization": "none"})
    nets[("ablated: no skip, no BN", "relu")] = ("vanilla", "none", "relu", {})
    for (name, act), (variant, method, activation, extra) in nets.items():
      net = dc.network(dc.CIFAR, variant, method, opt, DEPTH, activation,
                       **{**common, **extra})
      cells.append(merge(setting(labels={"optimizer": dc.OPTIMIZER_LABELS[opt],
                                         "network": name, "activation": act}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="dks_cifar_wrn",
    title="DKS §28.2, App. M.2: CIFAR-10 Wide-ResNet-250 (x2), DKS vs standard and ablated",
    config=dc.CIFAR,
    cells=_cells(),
    search=dc.lr_search,
    metric="train.accuracy",
    metric_name="train top-1 (%)",
    paper=PAPER_RESULTS,
    notes=PAPER_FINDINGS + " (Learning-rate schedule: warm-up + cosine instead of FIRE PBT.)",
)
