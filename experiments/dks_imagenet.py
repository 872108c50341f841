"""DKS on ImageNet: ResNet-50/101 vanilla and rescaled with K-FAC, Shampoo, SGD, Adam.

Martens et al. 2021, §28.2 (DKS skip-free BN-free nets vs the standard ResNet and
ablated ResNets), §28.3 (DKS with skip connections, residual weight sqrt(0.05)) and
App. M.2 (optimizers), on the modified ResNet-V2 of §23 (ResNet-101 in the paper; 50
as well here). Networks:
  * standard ResNet: batch norm, skips, ReLU, Gaussian fan-in (sqrt 2 gain);
  * DKS vanilla / DKS rescaled: no batch norm, ReLU / tanh / softplus, zeta = 1.5;
  * ablated ResNets (§28.2): no skips + BN, skips + no BN, neither (ReLU, fan-in).
Metric: training accuracy (the paper's focus, §27.2). Settings: `experiments.dks_common`.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import dks_common as dc

DEPTHS = (50, 101)
OPTIMIZERS = ("kfac", "shampoo", "sgd", "adam")
ACTIVATIONS = ("relu", "tanh", "softplus")

#: No numbers are printed in DKS §28 (results are curves); see PAPER_FINDINGS.
PAPER_RESULTS: dict[tuple[str, ...], float] = {}
PAPER_FINDINGS = (
    "§28.2: with K-FAC, DKS lets skip-free BN-free ResNet-101s train as fast as a standard "
    "ResNet (training accuracy); ablated ResNets train markedly slower or underfit; DKS "
    "with ReLU underperforms the other activations. With SGD, DKS vanilla nets do not "
    "match the standard ResNet but beat the ablated ones. Test accuracy: more overfitting "
    "with DKS than with the standard ResNet, still above the ablated nets. §28.3: with "
    "K-FAC skip connections change little except for ReLU; with SGD they let DKS match the "
    "standard ResNet's training speed (softplus, ReLU). App. M.2: without skips K-FAC > "
    "Shampoo >> Adam > SGD; with skips K-FAC and SGD are close.")


def _cells():
  common = dc.common_overrides(batch_size=512, steps=200_000,
                               num_train=dc.IMAGENET_TRAIN)
  cells = []
  for depth in DEPTHS:
    for opt in OPTIMIZERS:
      nets = {("standard ResNet", "relu"): ("standard", "none", "relu", {})}
      for act in ACTIVATIONS:
        nets[("DKS vanilla", act)] = ("vanilla", "dks", act, {})
        nets[("DKS rescaled", act)] = ("rescaled", "dks", act, {})
      nets[("ablated: no skip, BN", "relu")] = (
          "vanilla", "none", "relu", {"model.normalization": "batch_norm"})
      nets[("ablated: skip, no BN", "relu")] = (
          "standard", "none", "relu", {"model.normalization": "none"})
      nets[("ablated: no skip, no BN", "relu")] = ("vanilla", "none", "relu", {})
      for (name, act), (variant, method, activation, extra) in nets.items():
        net = dc.network(dc.IMAGENET, variant, method, opt, depth, activation,
                         **{**common, **extra})
        cells.append(merge(setting(labels={"depth": depth,
                                           "optimizer": dc.OPTIMIZER_LABELS[opt],
                                           "network": name, "activation": act}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="dks_imagenet",
    title="DKS §28.2-28.3, App. M.2: ImageNet ResNets, DKS vs standard and ablated",
    config=dc.IMAGENET,
    cells=_cells(),
    search=dc.lr_search,
    metric="train.accuracy",
    metric_name="train top-1 (%)",
    paper=PAPER_RESULTS,
    notes=PAPER_FINDINGS + " (Learning-rate schedule: warm-up + cosine instead of FIRE PBT.)",
)
