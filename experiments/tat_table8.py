"""TAT Table 8: batch-size scaling of K-FAC, SGD and LARS on a vanilla TReLU ResNet-50.

Zhang et al., ICLR 2022, §5.5, Table 8: top-1 ImageNet validation accuracy for batch
sizes 128 ... 4096, 90 epochs (the 5-epoch warm-up is rescaled to steps at each batch
size; the learning rate comes from the App. D grid search, ``--search``). 18 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

BATCH_SIZES = (128, 256, 512, 1024, 2048, 4096)

#: The rows of Table 8 as printed: optimizer -> accuracies at BATCH_SIZES.
PRINTED = {
    "K-FAC": (74.5, 74.4, 74.5, 74.6, 74.2, 72.0),
    "SGD": (72.7, 72.6, 72.7, 71.0, 69.3, 62.0),
    "LARS": (72.4, 72.3, 72.6, 71.8, 71.3, 70.2),
}
#: (optimizer, batch size) -> top-1 (%).
PAPER_RESULTS = {(opt, str(b)): acc for opt, row in PRINTED.items()
                 for b, acc in zip(BATCH_SIZES, row)}


def _cells():
  cells = []
  for opt in ("kfac", "sgd", "lars"):
    for b in BATCH_SIZES:
      cells.append(merge(
          setting(labels={"optimizer": tc.OPTIMIZER_LABELS[opt], "batch size": b},
                  overrides=tc.warmup_override(b)), tc.tat(50, opt)))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table8",
    title="TAT Table 8: batch size scaling, vanilla TReLU ResNet-50 (ImageNet top-1)",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
