"""Settings of the CPU-sized reproductions: deep vanilla MLPs on scikit-learn's digits.

``configs/digits_mlp.py`` (1,437 training and 360 test images of 8x8 digits, no download)
with a deeper net than its default: 50 nonlinear layers of width 64, no skips and no
normalisation, Orthogonal weights, batch 64, 30 epochs, warm-up + cosine, K-FAC damping
1e-3 with norm constraint 1e-3 (TAT App. D) and SGD with Nesterov momentum 0.9. Each
point runs three seeds; the report plots test accuracy against the swept target.
A sweep takes minutes to tens of minutes on 2 CPU cores (``--devices`` does not help on
CPU; run ``dksflax sweep ... --only`` on several machines to split it).
"""

from __future__ import annotations

from typing import Any

from dksflax.sweep import Setting, options, setting

CONFIG = "configs/digits_mlp.py"
DEPTH = 50
WIDTH = 64
SEEDS = (0, 1, 2)


def mlp(method: str, optimizer: str, **overrides: Any) -> Setting:
  """The deep vanilla MLP with ``method`` and ``optimizer`` (digits_mlp config string)."""
  return setting(config=f"{CONFIG}:{method},{optimizer}",
                 overrides={"model.depth": DEPTH, "model.width": WIDTH, **overrides})


def optimizers(method: str, **overrides: Any) -> tuple[Setting, ...]:
  """The net under SGD and under K-FAC, labelled by optimizer."""
  return options("optimizer", {"SGD": mlp(method, "sgd", **overrides),
                               "K-FAC": mlp(method, "kfac", **overrides)})
