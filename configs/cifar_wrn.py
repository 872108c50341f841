"""CIFAR-10 Wide-ResNet, any variant x shaping method x optimizer.

Launch (config string ``variant,method,optimizer[,depth]``; depth = 6n + 4):

  dksflax train --config configs/cifar_wrn.py:vanilla,tat,kfac,100 --workdir runs/wrn100
  dksflax train --config configs/cifar_wrn.py:vanilla,dks,kfac,250 --workdir runs/wrn250

Settings follow TAT (Zhang et al., ICLR 2022) Appendix E.2 and DKS (Martens et al. 2021)
§27.5 / §28.1:
  * Wide-ResNet with widening factor 2 (TAT E.2; DKS §28.1 "width multiplier of 2"), depth
    250 by default (DKS §28.1; TAT E.2 compares 100 to 304).
  * 200 epochs, learning rate /10 at epochs 75 and 150 (TAT E.2): boundaries 0.375, 0.75.
  * Batch size 1024 (DKS §27.5, CIFAR-10).
  * K-FAC damping 0.01 and norm constraint 1e-4 (TAT E.2); curvature decay 0.99, inverse
    every 50 steps (DKS §27.5). Learning rates: SGD 0.1, K-FAC 3e-4, LARS 1.0, Adam 1e-3
    (eps 1e-5), Shampoo 1e-3 (eps 1e-5, decay 0.99, exponent multiplier 3, Adagrad graft).
  * Random crop and horizontal flip (TAT E.2); no label smoothing, no L2 (DKS §27.3).
  * TAT: leaky ReLU, eta 0.9; DKS: softplus, zeta 1.5; others ReLU (TAT E.2 compares EOC
    and TAT on ReLU nets). RISOTTO is defined here (Wide-ResNet basic blocks, standard).
"""

from __future__ import annotations

import ml_collections

from dksflax.configlib import default_config
from dksflax.configlib.model import VARIANTS
from dksflax.configlib.optimizer import OPTIMIZER_NAMES
from dksflax.configlib.shaping import METHODS
from dksflax.errors import ConfigError, check_choice

NUM_TRAIN = 50_000
BATCH_SIZE = 1024
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
ACTIVATION = {"tat": "leaky_relu", "dks": "softplus"}   # others: relu
LEARNING_RATE = {"sgd": 0.1, "kfac": 3e-4, "lars": 1.0, "adam": 1e-3, "shampoo": 1e-3}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the CIFAR-10 WRN config for ``arg = "variant,method,optimizer[,depth]"``.

  Args:
    arg: str or None. Comma-separated choices. (Default: "vanilla,tat,kfac,250")

  Returns:
    The ConfigDict.

  Raises:
    ConfigError: when an element of ``arg`` is not accepted (depth must be 6n + 4).
  """
  parts = (arg or "vanilla,tat,kfac,250").split(",")
  if len(parts) not in (3, 4):
    raise ConfigError(f"config arg {arg!r} must be 'variant,method,optimizer[,depth]'")
  variant = check_choice("config arg variant", parts[0], VARIANTS)
  method = check_choice("config arg method", parts[1], METHODS)
  optimizer = check_choice("config arg optimizer", parts[2], OPTIMIZER_NAMES)
  depth_text = parts[3] if len(parts) == 4 else "250"
  if not depth_text.isdigit() or int(depth_text) < 10 or (int(depth_text) - 4) % 6:
    raise ConfigError(f"config arg depth={depth_text!r} must be 6n + 4 with n >= 1 "
                      "(e.g. 16, 28, 100, 250)")

  config = default_config()
  config.model.name = "wrn"
  config.model.depth = int(depth_text)
  config.model.width = 2
  config.model.variant = variant
  config.model.stem = "cifar"
  config.model.activation = ACTIVATION.get(method, "relu")
  config.shaping.method = method
  config.shaping.eta = 0.9
  config.shaping.zeta = 1.5
  config.shaping.shortcut_weight = 0.8

  config.data.name = "cifar10"
  config.data.augment = True

  opt = config.optimizer
  opt.name = optimizer
  opt.learning_rate = LEARNING_RATE[optimizer]
  opt.schedule = "step"
  opt.step_boundaries = (75 / 200, 150 / 200)
  opt.warmup_steps = 0
  opt.label_smoothing = 0.0
  opt.l2 = 0.0
  opt.kfac.damping = 1e-2
  opt.kfac.final_damping = 1e-2
  opt.kfac.norm_constraint = 1e-4
  opt.kfac.curvature_ema = 0.99
  opt.kfac.inverse_update_period = 50
  opt.adam.eps = 1e-5
  opt.shampoo.eps = 1e-5
  opt.shampoo.beta2 = 0.99
  opt.shampoo.exponent_multiplier = 3.0
  opt.shampoo.graft = "adagrad"

  train = config.train
  train.batch_size = BATCH_SIZE
  train.eval_batch_size = 1000
  train.steps = -1
  train.epochs = 200
  train.eval_every = STEPS_PER_EPOCH * 5
  train.log_every = 20
  train.checkpoint_every = 500
  return config
