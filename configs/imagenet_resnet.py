"""ImageNet ResNet-V2 (50/101/152), any variant x shaping method x optimizer.

Launch (config string ``variant,method,optimizer[,depth]``, big_vision style):

  dksflax train --config configs/imagenet_resnet.py:vanilla,tat,kfac,50 --workdir runs/r50
  dksflax train --config configs/imagenet_resnet.py:standard,none,sgd --workdir runs/base \\
      --config.model.dtype=bfloat16

Settings follow TAT (Zhang et al., ICLR 2022) §5 and Appendix D, with DKS (Martens et al.
2021) §27.5 where TAT is silent (Adam, Shampoo):
  * 90 epochs, batch 1024 (TAT §5); 224x224 random crop + flip (App. D).
  * Label smoothing 0.1; L2 on weights only, from the grid {5e-5, 2e-5, 0} (App. D):
    2e-5 here.
  * Linear warm-up over 5 epochs, then /10 at 4/9 and 7/9 of the run (App. D).
  * Initial learning rate from each optimizer's grid (App. D): SGD {1.0 ... 0.01} -> 0.1,
    K-FAC {0.003 ... 0.00003} -> 0.0003, LARS {10 ... 0.1} -> 1.0; momentum 0.9 for all.
    Adam: eps 1e-5 (DKS §27.5), lr 1e-3. Shampoo: eps 1e-5, second-moment decay 0.99,
    exponent multiplier 3, Adagrad grafting (DKS §27.5).
  * K-FAC: fixed damping 1e-3, norm constraint 1e-3, curvature every step, inverse every
    50 steps (App. D). LARS trust coefficient 0.001 (App. D).
  * TAT: eta = 0.9 (grid {0.9, 0.95}, §5) with leaky ReLU; DKS: zeta = 1.5 (DKS §28.1) with
    softplus; rescaled nets use the shortcut weight w = 0.8 (TAT Table 3's w = 0.8 column).
  * Nets without batch norm may add penultimate dropout (grid {0.2, 0.0}, App. D): 0 here.
  * Orthogonal Delta (SUO) weight initialisation (App. D); standard ReLU nets keep the
    method's own initialisation.
The remaining methods (eoc, lsuv, fixup, skipinit) use ReLU, as their baselines do; which
variant each method accepts is `dksflax.models.compatibility`'s matrix (e.g. fixup and
skipinit need the standard variant, eoc the vanilla one).
"""

from __future__ import annotations

import ml_collections

from dksflax.configlib import default_config
from dksflax.configlib.model import VARIANTS
from dksflax.configlib.optimizer import OPTIMIZER_NAMES
from dksflax.configlib.shaping import METHODS
from dksflax.errors import ConfigError, check_choice

NUM_TRAIN = 1_281_167            # ImageNet-2012 training images
BATCH_SIZE = 1024                # TAT §5
STEPS_PER_EPOCH = NUM_TRAIN // BATCH_SIZE
DEPTHS = ("50", "101", "152")
ACTIVATION = {"tat": "leaky_relu", "dks": "softplus"}   # others: relu
LEARNING_RATE = {"sgd": 0.1, "kfac": 3e-4, "lars": 1.0, "adam": 1e-3, "shampoo": 1e-3}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the ImageNet ResNet config for ``arg = "variant,method,optimizer[,depth]"``.

  Args:
    arg: str or None. Comma-separated choices. (Default: "vanilla,tat,kfac,50")

  Returns:
    The ConfigDict (locked by the command line's config_flags).

  Raises:
    ConfigError: when an element of ``arg`` is not an accepted choice.
  """
  parts = (arg or "vanilla,tat,kfac,50").split(",")
  if len(parts) not in (3, 4):
    raise ConfigError(f"config arg {arg!r} must be 'variant,method,optimizer[,depth]'")
  variant = check_choice("config arg variant", parts[0], VARIANTS)
  method = check_choice("config arg method", parts[1], METHODS)
  optimizer = check_choice("config arg optimizer", parts[2], OPTIMIZER_NAMES)
  depth = check_choice("config arg depth", parts[3] if len(parts) == 4 else "50", DEPTHS)

  config = default_config()
  config.model.name = f"resnet{depth}"
  config.model.variant = variant
  config.model.stem = "imagenet"
  config.model.activation = ACTIVATION.get(method, "relu")
  config.model.dropout = 0.0
  config.shaping.method = method
  config.shaping.eta = 0.9
  config.shaping.zeta = 1.5
  config.shaping.shortcut_weight = 0.8
  config.shaping.weight_init = "orthogonal_delta"

  config.data.name = "imagenet2012"
  config.data.augment = True

  opt = config.optimizer
  opt.name = optimizer
  opt.learning_rate = LEARNING_RATE[optimizer]
  opt.schedule = "step"
  opt.step_boundaries = (4 / 9, 7 / 9)
  opt.warmup_steps = 5 * STEPS_PER_EPOCH
  opt.label_smoothing = 0.1
  opt.l2 = 2e-5
  opt.sgd.momentum = 0.9
  opt.kfac.damping = 1e-3
  opt.kfac.final_damping = 1e-3          # fixed damping (TAT App. D)
  opt.kfac.norm_constraint = 1e-3
  opt.kfac.inverse_update_period = 50
  opt.kfac.momentum = 0.9
  opt.lars.trust_coefficient = 1e-3
  opt.adam.eps = 1e-5
  opt.shampoo.eps = 1e-5
  opt.shampoo.beta2 = 0.99
  opt.shampoo.exponent_multiplier = 3.0
  opt.shampoo.graft = "adagrad"

  train = config.train
  train.batch_size = BATCH_SIZE
  train.eval_batch_size = 1000
  train.steps = -1
  train.epochs = 90
  train.eval_every = STEPS_PER_EPOCH * 5
  train.log_every = 100
  train.checkpoint_every = 1000
  return config
