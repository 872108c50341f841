"""TAT Table 11 (App. E.7): Orthogonal Delta vs Gaussian fan-in initialisation.

Zhang et al., ICLR 2022, Table 11: top-1 ImageNet validation accuracy of standard
ResNets, vanilla EOC (ReLU) and vanilla TAT (TReLU) networks, depth 50/101, K-FAC/SGD,
90 epochs, weights from Orthogonal Delta (SUO, App. D) or Gaussian fan-in (sigma_w^2 = 2
for ReLU, 1 under TAT). 24 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

INITS = {"Orth Delta": "orthogonal_delta", "Gaussian": "fan_in_gaussian"}

#: (depth, optimizer, init, network) -> top-1 (%), as printed in Table 11.
PAPER_RESULTS = {
    ("50", "K-FAC", "Orth Delta", "ResNet"): 76.4,
    ("50", "K-FAC", "Orth Delta", "EOC"): 72.6,
    ("50", "K-FAC", "Orth Delta", "TAT"): 74.6,
    ("50", "K-FAC", "Gaussian", "ResNet"): 76.5,
    ("50", "K-FAC", "Gaussian", "EOC"): 72.5,
    ("50", "K-FAC", "Gaussian", "TAT"): 74.8,
    ("50", "SGD", "Orth Delta", "ResNet"): 76.3,
    ("50", "SGD", "Orth Delta", "EOC"): 63.7,
    ("50", "SGD", "Orth Delta", "TAT"): 71.0,
    ("50", "SGD", "Gaussian", "ResNet"): 76.6,
    ("50", "SGD", "Gaussian", "EOC"): 63.1,
    ("50", "SGD", "Gaussian", "TAT"): 68.7,
    ("101", "K-FAC", "Orth Delta", "ResNet"): 77.8,
    ("101", "K-FAC", "Orth Delta", "EOC"): 71.8,
    ("101", "K-FAC", "Orth Delta", "TAT"): 74.2,
    ("101", "K-FAC", "Gaussian", "ResNet"): 77.8,
    ("101", "K-FAC", "Gaussian", "EOC"): 72.3,
    ("101", "K-FAC", "Gaussian", "TAT"): 74.1,
    ("101", "SGD", "Orth Delta", "ResNet"): 77.9,
    ("101", "SGD", "Orth Delta", "EOC"): 41.6,
    ("101", "SGD", "Orth Delta", "TAT"): 70.0,
    ("101", "SGD", "Gaussian", "ResNet"): 78.0,
    ("101", "SGD", "Gaussian", "EOC"): 41.1,
    ("101", "SGD", "Gaussian", "TAT"): 68.7,
}


def _cells():
  cells = []
  for depth in (50, 101):
    for opt in ("kfac", "sgd"):
      for init_label, init in INITS.items():
        nets = {"ResNet": tc.resnet(depth, opt), "EOC": tc.eoc_relu(depth, opt),
                "TAT": tc.tat(depth, opt)}
        for name, net in nets.items():
          cells.append(merge(
              setting(labels={"depth": depth, "optimizer": tc.OPTIMIZER_LABELS[opt],
                              "init": init_label, "network": name},
                      overrides={"shaping.weight_init": init}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table11",
    title="TAT Table 11: Orthogonal Delta vs Gaussian fan-in init (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
