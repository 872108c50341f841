"""TAT Table 10 (App. E.6): TReLU vs PReLU on rescaled ResNets with w = 0.8.

Zhang et al., ICLR 2022, Table 10: top-1 ImageNet validation accuracy of rescaled
ResNet-50/101 (w = 0.8, no normalisation), K-FAC/SGD, 90 epochs. Only TReLU runs here
(no PReLU activation in dksflax); 4 runnable cells of 12.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc
from experiments.tat_table6 import PRELU_WHY

#: (depth, optimizer, activation) -> top-1 (%). The text extraction prints "764", "757",
#: "715" and "778" for 76.4, 75.7, 71.5 and 77.8 (76.4 and 77.8 are Table 4's w = 0.8).
PAPER_RESULTS = {
    ("50", "K-FAC", "TReLU"): 76.4,
    ("50", "K-FAC", "PReLU0.0"): 75.7,
    ("50", "K-FAC", "PReLU0.25"): 73.6,
    ("50", "SGD", "TReLU"): 76.0,
    ("50", "SGD", "PReLU0.0"): 71.5,
    ("50", "SGD", "PReLU0.25"): 71.5,
    ("101", "K-FAC", "TReLU"): 77.8,
    ("101", "K-FAC", "PReLU0.0"): 76.4,
    ("101", "K-FAC", "PReLU0.25"): 76.8,
    ("101", "SGD", "TReLU"): 77.3,
    ("101", "SGD", "PReLU0.0"): 73.1,
    ("101", "SGD", "PReLU0.25"): 73.4,
}


def _cells():
  return tuple(
      merge(setting(labels={"depth": depth, "optimizer": tc.OPTIMIZER_LABELS[opt],
                            "activation": "TReLU"}), tc.tat(depth, opt, 0.8))
      for depth in (50, 101) for opt in ("kfac", "sgd"))


SWEEP = Sweep(
    name="tat_table10",
    title="TAT Table 10: TReLU vs PReLU on rescaled ResNets, w = 0.8 (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
    unsupported={k: PRELU_WHY for k in PAPER_RESULTS if k[2].startswith("PReLU")},
)
