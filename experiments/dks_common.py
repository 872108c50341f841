"""Settings shared by the DKS (Martens et al. 2021) experiments, Part V (§27-§28, App. M).

DKS trains every approach the same way (§27): no L2 and no label smoothing (§27.3),
per-location normalisation of the inputs (PLN, §10.2, §27.1), zeta = 1.5 (§28.1),
momentum 0.9, batch 512 on ImageNet and 1024 on CIFAR-10, at most 200,000 / 25,000 steps
(§27.4), Adam eps 1e-5, K-FAC curvature decay 0.99 with the inverse every 50 steps,
damping 1e-3 decayed by 0.98 every 50 steps down to 1e-6 and a norm constraint of 1e-2,
Shampoo eps 1e-5, second-moment decay 0.99, exponent multiplier 3 and Adagrad grafting
(§27.5). Standard ResNets use Gaussian fan-in weights with the sqrt(2) ReLU gain (§28.1);
DKS nets Orthogonal Delta. Nets with skip connections weight the residual branch by
sqrt(0.05) and the shortcut by sqrt(0.95) (§28.3, App. M.1).

Not reproducible as published: DKS tunes the learning rate *schedule* of every run with
FIRE PBT (36 workers, §27.4). Here each run uses a 5-epoch linear warm-up and cosine
decay (TAT App. D footnote 5 finds cosine slightly better than steps), and ``--search``
tries a log grid of peak learning rates spanning FIRE PBT's sampling ranges (SGD/Adam
[1e-5, 1], K-FAC [1e-7, 1e-3]). The paper reports its results as curves only (§28:
"a series of plots"), so there are no printed numbers to compare with; the sweeps record
the paper's qualitative findings in ``PAPER_FINDINGS`` instead.
"""

from __future__ import annotations

import math

from typing import Any

from dksflax.sweep import Setting, grid, setting, values

IMAGENET = "configs/imagenet_resnet.py"
CIFAR = "configs/cifar_wrn.py"
IMAGENET_TRAIN = 1_281_167
CIFAR_TRAIN = 50_000
#: sqrt(0.95): the shortcut weight when the residual branch has weight sqrt(0.05) (§28.3).
SHORTCUT_WEIGHT = math.sqrt(0.95)
OPTIMIZER_LABELS = {"kfac": "K-FAC", "sgd": "SGD", "adam": "Adam", "shampoo": "Shampoo"}
#: Peak learning rates tried by ``--search`` (log grids inside FIRE PBT's ranges).
LEARNING_RATES = {
    "sgd": (1.0, 0.3, 0.1, 0.03, 0.01),
    "adam": (1e-2, 3e-3, 1e-3, 3e-4, 1e-4),
    "shampoo": (1e-2, 3e-3, 1e-3, 3e-4, 1e-4),
    "kfac": (1e-3, 3e-4, 1e-4, 3e-5, 1e-5),
}


def common_overrides(*, batch_size: int, steps: int, num_train: int) -> dict[str, Any]:
  """The DKS §27 training settings as config overrides (see the module docstring)."""
  return {
      "train.batch_size": batch_size,
      "train.steps": steps,
      "train.epochs": -1,
      "optimizer.l2": 0.0,
      "optimizer.label_smoothing": 0.0,
      "optimizer.schedule": "warmup_cosine",
      "optimizer.warmup_steps": 5 * (num_train // batch_size),
      "optimizer.kfac.damping": 1e-3,
      "optimizer.kfac.final_damping": 1e-6,
      "optimizer.kfac.damping_schedule": "decay",
      "optimizer.kfac.curvature_ema": 0.99,
      "optimizer.kfac.inverse_update_period": 50,
      "optimizer.kfac.norm_constraint": 1e-2,
      "data.pln": "extra_channel",
      "shaping.zeta": 1.5,
  }


def network(config: str, variant: str, method: str, optimizer: str, depth: int,
            activation: str, **overrides: Any) -> Setting:
  """One network of DKS §28 as a Setting on ``config`` (imagenet or cifar file).

  Args:
    config: IMAGENET or CIFAR.
    variant: "standard", "rescaled" or "vanilla".
    method: "dks" or "none".
    optimizer: optimizer name.
    depth: network depth.
    activation: activation name.
    **overrides: further config overrides (dotted keys passed as a dict with ``**``).

  Returns:
    The Setting.
  """
  ovr = {"model.activation": activation}
  if variant == "rescaled":
    ovr["shaping.shortcut_weight"] = SHORTCUT_WEIGHT
  if method == "none":
    ovr["shaping.weight_init"] = "fan_in_gaussian"   # He et al. 2015 gain (§28.1)
  ovr.update(overrides)
  return setting(config=f"{config}:{variant},{method},{optimizer},{depth}", overrides=ovr)


def lr_search(cell: Setting) -> tuple[Setting, ...]:
  """The learning-rate grid of the cell's optimizer (see LEARNING_RATES)."""
  optimizer = (cell.config or "").partition(":")[2].split(",")[2]
  return grid(values("optimizer.learning_rate", LEARNING_RATES[optimizer], label=""))
