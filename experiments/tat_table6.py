"""TAT Table 6: TReLU vs PReLU (initial slope 0 or 0.25) on deep vanilla networks.

Zhang et al., ICLR 2022, §5.4, Table 6: top-1 ImageNet validation accuracy of vanilla
ResNet-50/101, K-FAC/SGD, 90 epochs. Only the TReLU column runs here: dksflax has no
trainable-slope (PReLU) activation, so the PReLU cells are listed with the paper's
numbers and marked as not run. 4 runnable cells of 12.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

PRELU_WHY = "dksflax has no PReLU (trainable negative slope) activation"

#: (depth, optimizer, activation) -> top-1 (%). The text extraction prints "746", "667",
#: "742" and "543": 74.6, 66.7, 74.2 and 54.3 (74.6 and 74.2 are Table 4's TReLU values).
PAPER_RESULTS = {
    ("50", "K-FAC", "TReLU"): 74.6,
    ("50", "K-FAC", "PReLU0.0"): 72.5,
    ("50", "K-FAC", "PReLU0.25"): 73.6,
    ("50", "SGD", "TReLU"): 71.0,
    ("50", "SGD", "PReLU0.0"): 66.7,
    ("50", "SGD", "PReLU0.25"): 67.9,
    ("101", "K-FAC", "TReLU"): 74.2,
    ("101", "K-FAC", "PReLU0.0"): 71.9,
    ("101", "K-FAC", "PReLU0.25"): 72.8,
    ("101", "SGD", "TReLU"): 70.0,
    ("101", "SGD", "PReLU0.0"): 54.3,
    ("101", "SGD", "PReLU0.25"): 66.3,
}


def _cells():
  return tuple(
      merge(setting(labels={"depth": depth, "optimizer": tc.OPTIMIZER_LABELS[opt],
                            "activation": "TReLU"}), tc.tat(depth, opt))
      for depth in (50, 101) for opt in ("kfac", "sgd"))


SWEEP = Sweep(
    name="tat_table6",
    title="TAT Table 6: TReLU vs PReLU on deep vanilla networks (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
    unsupported={k: PRELU_WHY for k in PAPER_RESULTS if k[2].startswith("PReLU")},
)
