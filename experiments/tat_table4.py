"""TAT Table 4: TReLU vanilla (w = 0) and rescaled (w = 0.8) nets vs standard ResNets.

Zhang et al., ICLR 2022, §5.3, Table 4: top-1 ImageNet validation accuracy of standard
ResNets (batch norm, ReLU) and of TReLU networks without normalisation, shortcut weight
w = 0.0 (vanilla) or 0.8 (rescaled), depth 50/101, K-FAC/SGD, 90 or 180 epochs
(batch 1024; the warm-up stays 5 epochs and the /10 steps at 4/9 and 7/9 of the run).
24 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

#: (depth, optimizer, epochs, network) -> top-1 (%), as printed in Table 4.
PAPER_RESULTS = {
    ("50", "K-FAC", "90", "ResNet"): 76.4,
    ("50", "K-FAC", "90", "w=0.0"): 74.6,
    ("50", "K-FAC", "90", "w=0.8"): 76.4,
    ("50", "K-FAC", "180", "ResNet"): 76.6,
    ("50", "K-FAC", "180", "w=0.0"): 76.0,
    ("50", "K-FAC", "180", "w=0.8"): 77.0,
    ("50", "SGD", "90", "ResNet"): 76.3,
    ("50", "SGD", "90", "w=0.0"): 71.0,
    ("50", "SGD", "90", "w=0.8"): 76.0,
    ("50", "SGD", "180", "ResNet"): 76.6,
    ("50", "SGD", "180", "w=0.0"): 72.3,
    ("50", "SGD", "180", "w=0.8"): 76.8,
    ("101", "K-FAC", "90", "ResNet"): 77.8,
    ("101", "K-FAC", "90", "w=0.0"): 74.2,
    ("101", "K-FAC", "90", "w=0.8"): 77.8,
    ("101", "K-FAC", "180", "ResNet"): 77.6,
    ("101", "K-FAC", "180", "w=0.0"): 75.9,
    ("101", "K-FAC", "180", "w=0.8"): 78.4,
    ("101", "SGD", "90", "ResNet"): 77.9,
    ("101", "SGD", "90", "w=0.0"): 70.0,
    ("101", "SGD", "90", "w=0.8"): 77.3,
    ("101", "SGD", "180", "ResNet"): 77.6,
    ("101", "SGD", "180", "w=0.0"): 73.8,
    ("101", "SGD", "180", "w=0.8"): 77.4,
}


def _cells():
  cells = []
  for depth in (50, 101):
    for opt in ("kfac", "sgd"):
      for epochs in (90, 180):
        nets = {"ResNet": tc.resnet(depth, opt), "w=0.0": tc.tat(depth, opt, 0.0),
                "w=0.8": tc.tat(depth, opt, 0.8)}
        for name, net in nets.items():
          cells.append(merge(
              setting(labels={"depth": depth, "optimizer": tc.OPTIMIZER_LABELS[opt],
                              "epochs": epochs, "network": name},
                      overrides={"train.epochs": epochs}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table4",
    title="TAT Table 4: TReLU vanilla / rescaled nets vs ResNets, 90 and 180 epochs",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
