"""A deep vanilla MLP on scikit-learn's digits: the offline, CPU-sized experiment.

Launch (config string ``method,optimizer``; about a minute on 2 CPU cores):

  dksflax train --config configs/digits_mlp.py:tat,kfac --workdir runs/digits_tat_kfac
  dksflax train --config configs/digits_mlp.py:none,sgd --workdir runs/digits_plain

A 20-layer, 64-unit MLP without skips or normalisation (the "vanilla" networks of DKS
§28.2 and TAT §5, at toy scale) on the 8x8 digits (1,797 images, no download). It keeps
the papers' optimizer settings that do not depend on ImageNet scale: momentum 0.9, K-FAC
damping 1e-3 with norm constraint 1e-3 and inverse every 50 steps (TAT App. D), Adam eps
1e-5 and Shampoo exponent multiplier 3 with Adagrad grafting (DKS §27.5); TAT with leaky
ReLU at eta 0.9, DKS with tanh at zeta 1.5 (DKS §28.1). Batch 64, 30 epochs, cosine decay
after a 1-epoch warm-up (TAT App. D, footnote 5: cosine is slightly better). K-FAC's
learning rate is the middle of TAT's grid, 3e-4: 3e-3 diverged here (3 epochs, tat,kfac:
train loss 2.24 -> 4.9). The learning rates are not tuned for this toy problem.
Methods with residual branches (fixup, skipinit, risotto) are not defined for an MLP.
"""

from __future__ import annotations

import ml_collections

from dksflax.configlib import default_config
from dksflax.configlib.optimizer import OPTIMIZER_NAMES
from dksflax.errors import ConfigError, check_choice

MLP_METHODS = ("dks", "tat", "eoc", "lsuv", "none")
ACTIVATION = {"tat": "leaky_relu", "none": "relu"}      # others: tanh
LEARNING_RATE = {"sgd": 0.1, "kfac": 3e-4, "lars": 1.0, "adam": 1e-3, "shampoo": 1e-3}
NUM_TRAIN = 1437          # digits training split (dksflax.data)
BATCH_SIZE = 64


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the digits MLP config for ``arg = "method,optimizer"``.

  Args:
    arg: str or None. (Default: "tat,kfac")

  Returns:
    The ConfigDict.

  Raises:
    ConfigError: when the method or optimizer is not accepted.
  """
  parts = (arg or "tat,kfac").split(",")
  if len(parts) != 2:
    raise ConfigError(f"config arg {arg!r} must be 'method,optimizer'")
  method = check_choice("config arg method", parts[0], MLP_METHODS)
  optimizer = check_choice("config arg optimizer", parts[1], OPTIMIZER_NAMES)

  config = default_config()
  config.model.name = "mlp"
  config.model.variant = "vanilla"
  config.model.depth = 20
  config.model.width = 64
  config.model.activation = ACTIVATION.get(method, "tanh")
  config.shaping.method = method
  config.shaping.eta = 0.9
  config.shaping.zeta = 1.5
  config.shaping.weight_init = "orthogonal"

  config.data.name = "digits"

  opt = config.optimizer
  opt.name = optimizer
  opt.learning_rate = LEARNING_RATE[optimizer]
  opt.schedule = "warmup_cosine"
  opt.warmup_steps = NUM_TRAIN // BATCH_SIZE
  opt.kfac.damping = 1e-3
  opt.kfac.final_damping = 1e-3
  opt.kfac.norm_constraint = 1e-3
  opt.kfac.inverse_update_period = 50
  opt.adam.eps = 1e-5
  opt.shampoo.exponent_multiplier = 3.0
  opt.shampoo.graft = "adagrad"

  train = config.train
  train.batch_size = BATCH_SIZE
  train.eval_batch_size = 120
  train.steps = -1
  train.epochs = 30
  train.eval_every = 5 * (NUM_TRAIN // BATCH_SIZE)
  train.log_every = 10
  train.checkpoint_every = 100
  return config
