"""TAT Table 9 (App. E.5): doubling the width of vanilla EOC / TAT nets and of ResNets.

Zhang et al., ICLR 2022, Table 9: top-1 ImageNet validation accuracy, depth 50/101,
width 1x or 2x (every channel count doubled), SGD only (K-FAC factors are too large at
2x), batch 512. Vanilla EOC (ReLU) and TAT (TReLU) nets train for 360 epochs; standard
ResNets for 90 (they overfit after 360). 12 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

BATCH_SIZE = 512

#: (depth, width, network) -> top-1 (%), as printed in Table 9.
PAPER_RESULTS = {
    ("50", "1x", "EOC"): 72.0, ("50", "1x", "TAT"): 76.0, ("50", "1x", "ResNet"): 76.7,
    ("50", "2x", "EOC"): 73.5, ("50", "2x", "TAT"): 77.3, ("50", "2x", "ResNet"): 77.9,
    ("101", "1x", "EOC"): 62.4, ("101", "1x", "TAT"): 76.5, ("101", "1x", "ResNet"): 77.9,
    ("101", "2x", "EOC"): 66.5, ("101", "2x", "TAT"): 77.6, ("101", "2x", "ResNet"): 78.6,
}


def _cells():
  cells = []
  for depth in (50, 101):
    for width in (1, 2):
      nets = {"EOC": (tc.eoc_relu(depth, "sgd"), 360), "TAT": (tc.tat(depth, "sgd"), 360),
              "ResNet": (tc.resnet(depth, "sgd"), 90)}
      for name, (net, epochs) in nets.items():
        cells.append(merge(
            setting(labels={"depth": depth, "width": f"{width}x", "network": name},
                    overrides={"model.width_multiplier": float(width),
                               "train.epochs": epochs,
                               **tc.warmup_override(BATCH_SIZE)}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table9",
    title="TAT Table 9: width 1x vs 2x, vanilla EOC / TAT vs ResNets, SGD (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
