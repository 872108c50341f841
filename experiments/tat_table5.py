"""TAT Table 5: edge of chaos vs TAT on deep vanilla networks, (L)ReLU and tanh.

Zhang et al., ICLR 2022, §5.4, Table 5: top-1 ImageNet validation accuracy of vanilla
(shortcut-free, normalisation-free) ResNet-50/101, K-FAC/SGD, 90 epochs, batch 1024.
EOC: ReLU with (sigma_w, sigma_b) = (sqrt 2, 0); tanh with sigma_w = 1.302 (see
`experiments.tat_common.EOC_TANH_Q_STAR`). TAT: TReLU (eta grid {0.9, 0.95}) and smooth
TAT for tanh (tau grid {0.2, 0.3, 0.5}). 16 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

#: (depth, optimizer, method, activation) -> top-1 (%), as printed in Table 5.
PAPER_RESULTS = {
    ("50", "K-FAC", "EOC", "(L)ReLU"): 72.6,
    ("50", "K-FAC", "EOC", "Tanh"): 70.6,
    ("50", "K-FAC", "TAT", "(L)ReLU"): 74.6,
    ("50", "K-FAC", "TAT", "Tanh"): 73.1,
    ("50", "SGD", "EOC", "(L)ReLU"): 63.7,
    ("50", "SGD", "EOC", "Tanh"): 55.7,
    ("50", "SGD", "TAT", "(L)ReLU"): 71.0,
    ("50", "SGD", "TAT", "Tanh"): 69.5,
    ("101", "K-FAC", "EOC", "(L)ReLU"): 71.8,
    ("101", "K-FAC", "EOC", "Tanh"): 69.2,
    ("101", "K-FAC", "TAT", "(L)ReLU"): 74.2,
    ("101", "K-FAC", "TAT", "Tanh"): 72.8,
    ("101", "SGD", "EOC", "(L)ReLU"): 41.6,
    ("101", "SGD", "EOC", "Tanh"): 54.0,
    ("101", "SGD", "TAT", "(L)ReLU"): 70.0,
    ("101", "SGD", "TAT", "Tanh"): 69.0,
}


def _cells():
  cells = []
  for depth in (50, 101):
    for opt in ("kfac", "sgd"):
      nets = {("EOC", "(L)ReLU"): tc.eoc_relu(depth, opt),
              ("EOC", "Tanh"): tc.eoc_tanh(depth, opt),
              ("TAT", "(L)ReLU"): tc.tat(depth, opt),
              ("TAT", "Tanh"): tc.tat(depth, opt, activation="tanh")}
      for (method, act), net in nets.items():
        cells.append(merge(setting(labels={"depth": depth,
                                           "optimizer": tc.OPTIMIZER_LABELS[opt],
                                           "method": method, "activation": act}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table5",
    title="TAT Table 5: EOC vs TAT on deep vanilla networks (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
    notes=("EOC tanh: sigma_w = 1.302 on the edge of chaos gives sigma_b = 0.198; the "
           "printed (1.302, 0.02) has chi_1 = 1.064, off the edge of chaos."),
)
