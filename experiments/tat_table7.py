"""TAT Table 7: TAT vs DKS with leaky ReLU, softplus and tanh, with and without dropout.

Zhang et al., ICLR 2022, §5.4, Table 7: top-1 ImageNet validation accuracy, depth
50/101, K-FAC/SGD, shortcut weight 0.0 (vanilla) or 0.8 (rescaled, no normalisation),
90 epochs. Each printed entry "a/b" is a with penultimate dropout and b without; here
"with" runs dropout 0.2 (the non-zero value of the App. D grid {0.2, 0.0}) and
"without" dropout 0. Search: eta {0.9, 0.95} (TReLU), tau {0.2, 0.3, 0.5} (smooth TAT),
zeta {1.5, 10, 100} (DKS softplus/tanh), plus learning rate and L2 (App. D). DKS with
leaky ReLU solves for the negative slope as well (footnote 3). 96 cells.
"""

from __future__ import annotations

from dksflax.sweep import Sweep, merge, setting
from experiments import tat_common as tc

COLUMNS = (("TAT", "LReLU"), ("TAT", "SoftPlus"), ("TAT", "Tanh"),
           ("DKS", "LReLU"), ("DKS", "SoftPlus"), ("DKS", "Tanh"))
ACTIVATIONS = {"LReLU": "leaky_relu", "SoftPlus": "softplus", "Tanh": "tanh"}

#: The rows of Table 7 as printed: (depth, optimizer, w) -> "with/without" per column.
PRINTED = {
    ("50", "K-FAC", "0.0"): "74.6/74.2 74.4/74.2 73.1/72.9 74.3/74.3 74.3/73.7 72.9/72.9",
    ("50", "K-FAC", "0.8"): "76.4/75.9 76.4/75.0 74.8/74.4 76.2/76.2 76.3/75.1 74.7/74.5",
    ("50", "SGD", "0.0"): "71.1/71.1 70.2/70.0 69.5/69.5 70.4/70.4 71.8/71.4 69.2/69.2",
    ("50", "SGD", "0.8"): "76.0/75.8 74.3/73.8 72.4/72.2 73.4/73.0 75.2/74.1 72.8/72.8",
    ("101", "K-FAC", "0.0"): "74.2/74.2 74.1/73.4 72.8/72.5 73.5/73.5 73.9/73.1 72.5/72.4",
    ("101", "K-FAC", "0.8"): "77.8/77.0 76.6/75.7 75.8/75.1 76.8/76.7 76.8/75.6 75.9/75.7",
    ("101", "SGD", "0.0"): "70.0/70.0 70.3/68.8 69.0/67.8 68.3/68.3 68.3/68.3 69.8/69.8",
    ("101", "SGD", "0.8"): "77.3/76.0 75.3/75.3 73.8/73.5 74.9/74.6 76.3/75.1 74.6/74.6",
}


def _paper_results() -> dict[tuple[str, ...], float]:
  out = {}
  for row, text in PRINTED.items():
    for (method, act), pair in zip(COLUMNS, text.split()):
      with_do, without_do = pair.split("/")
      out[row + (method, act, "with")] = float(with_do)
      out[row + (method, act, "without")] = float(without_do)
  return out


#: (depth, optimizer, w, method, activation, dropout) -> top-1 (%).
PAPER_RESULTS = _paper_results()


def _cells():
  cells = []
  for depth, opt_label, w in PRINTED:
    opt = {"K-FAC": "kfac", "SGD": "sgd"}[opt_label]
    for method, act in COLUMNS:
      build = tc.tat if method == "TAT" else tc.dks
      for dropout, rate in (("with", 0.2), ("without", 0.0)):
        net = build(int(depth), opt, float(w), ACTIVATIONS[act], **{"model.dropout": rate})
        cells.append(merge(setting(labels={"depth": depth, "optimizer": opt_label, "w": w,
                                           "method": method, "activation": act,
                                           "dropout": dropout}), net))
  return tuple(cells)


SWEEP = Sweep(
    name="tat_table7",
    title="TAT Table 7: TAT vs DKS, LReLU / SoftPlus / Tanh, with / without dropout",
    config=tc.CONFIG,
    cells=_cells(),
    search=tc.paper_search,
    paper=PAPER_RESULTS,
)
