"""Settings of the CPU-sized reproductions: deep vanilla MLPs on scikit-learn's digits.

``configs/digits_mlp.py`` (1,437 training and 360 test images of 8x8 digits, no download)
with a deeper net than its default: 50 nonlinear layers of width 64, no skips and no
normalisation, Orthogonal weights, batch 64, 20 epochs (the config has 30), warm-up +
cosine, SGD with Nesterov momentum 0.9. Each point runs two seeds; the report plots test
accuracy against the swept target.

Learning rate 3e-3 for every point: the config's 0.1 (tuned for the 20-layer default)
diverges at depth 50 (TAT eta 0.9: non-finite gradients at step 32), and on the same
net 0.03 diverged, 0.01 reached 83.1% and 3e-3 90.3% (30-epoch probe runs, seed 0); DKS
tanh at zeta 1.5: 0.01 stayed at chance, 3e-3 reached 93.6%. One learning rate for the
whole sweep keeps the comparison about the shaping target alone. SGD only:
a K-FAC run of this net takes about 4x an SGD run on CPU and needed its own
learning-rate search (3e-4 spiked to loss 3.6e3 before recovering; 3e-5 reached 87.8%);
add ``optimizers()`` cells to a sweep to run both.

A sweep (14 runs) takes about 15-25 minutes on 2 CPU cores; ``--devices 0,1`` runs two at a
time, which overlaps the per-run start-up (imports, compilation).
"""

from __future__ import annotations

from typing import Any

from dksflax.sweep import Setting, options, setting

CONFIG = "configs/digits_mlp.py"
DEPTH = 50
WIDTH = 64
SEEDS = (0, 1)
LEARNING_RATE = {"sgd": 3e-3, "kfac": 3e-5}
#: 20 epochs to fit three sweeps into an hour of 2 shared CPU cores; JSONL metrics (no
#: TensorFlow import per run) and a checkpoint every 10 epochs.
RUN_SETTINGS = {"train.epochs": 20, "train.metric_writer": "jsonl",
                "train.checkpoint_every": 220}


def mlp(method: str, optimizer: str, **overrides: Any) -> Setting:
  """The deep vanilla MLP with ``method`` and ``optimizer`` (digits_mlp config string)."""
  return setting(config=f"{CONFIG}:{method},{optimizer}",
                 overrides={"model.depth": DEPTH, "model.width": WIDTH,
                            "optimizer.learning_rate": LEARNING_RATE[optimizer],
                            **RUN_SETTINGS, **overrides})


def optimizers(method: str, **overrides: Any) -> tuple[Setting, ...]:
  """The net under SGD and under K-FAC, labelled by optimizer."""
  return options("optimizer", {"SGD": mlp(method, "sgd", **overrides),
                               "K-FAC": mlp(method, "kfac", **overrides)})


def sgd(method: str, **overrides: Any) -> tuple[Setting, ...]:
  """The net under SGD only (one-element axis, labelled by optimizer)."""
  return options("optimizer", {"SGD": mlp(method, "sgd", **overrides)})
