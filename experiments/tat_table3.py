"""TAT Table 3: shortcut-free ReLU networks without normalisation, with BN, or with LN.

Zhang et al., ICLR 2022, §5.2, Table 3: top-1 ImageNet validation accuracy of
shortcut-free (vanilla) ResNet-50/101 with ReLU: no normalisation (the edge of chaos,
sigma_w = sqrt 2, which equals Table 5's EOC column), batch norm or layer norm after
each convolution; K-FAC and SGD, 90 epochs, batch 1024. 12 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

#: (depth, optimizer, normalisation) -> top-1 (%). The text extraction of the paper
#: prints "726" for the depth-50 K-FAC vanilla entry: 72.6 (Table 5's EOC ReLU value).
PAPER_RESULTS = {
    ("50", "K-FAC", "vanilla"): 72.6,
    ("50", "K-FAC", "BN"): 72.8,
    ("50", "K-FAC", "LN"): 72.7,
    ("50", "SGD", "vanilla"): 63.7,
    ("50", "SGD", "BN"): 72.6,
    ("50", "SGD", "LN"): 58.1,
    ("101", "K-FAC", "vanilla"): 71.8,
    ("101", "K-FAC", "BN"): 67.6,
    ("101", "K-FAC", "LN"): 72.0,
    ("101", "SGD", "vanilla"): 41.6,
    ("101", "SGD", "BN"): 43.4,
    ("101", "SGD", "LN"): 28.6,
}


def _cells():
  cells = []
  for depth in (50, 101):
    for opt in ("kfac", "sgd"):
      nets = {"vanilla": tc.eoc_relu(depth, opt),
              "BN": tc.shortcut_free(depth, opt, "batch_norm"),
              "LN": tc.shortcut_free(depth, opt, "layer_norm")}
      for norm, net in nets.items():
        cells.append(merge(setting(labels={"depth": depth,
                                           "optimizer": tc.OPTIMIZER_LABELS[opt],
                                           "normalization": norm}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table3",
    title="TAT Table 3: shortcut-free ReLU networks, vanilla / BN / LN (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
