"""`optimizer.*` config keys: one sub-dict per optimizer, plus schedule and regularisation."""

from __future__ import annotations

import ml_collections

from dksflax.errors import check_choice, check_range

OPTIMIZER_NAMES = ("sgd", "adam", "lars", "shampoo", "kfac")
SCHEDULE_NAMES = ("constant", "warmup_cosine", "step", "linear")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "sgd"
  c.learning_rate = 0.1
  c.schedule = "warmup_cosine"
  c.warmup_steps = 0
  c.step_boundaries = (0.5, 0.75)   # fractions of the run at which `step` divides by 10
  c.l2 = 0.0                        # L2 on weights only (not biases / norm scales)
  c.label_smoothing = 0.0
  c.grad_clip_norm = 0.0            # 0: no clipping
  c.sgd = ml_collections.ConfigDict(dict(momentum=0.9, nesterov=True))
  c.adam = ml_collections.ConfigDict(dict(b1=0.9, b2=0.999, eps=1e-5))
  c.lars = ml_collections.ConfigDict(dict(momentum=0.9, trust_coefficient=0.001, eps=0.0))
  c.shampoo = ml_collections.ConfigDict(dict(
      beta1=0.9, beta2=0.99, eps=1e-5, exponent_multiplier=1.0, update_period=10,
      block_size=1024, max_preconditioner_dim=8192, graft="adagrad",
      start_preconditioning_step=1, inverse_root_method="eigh"))
  c.kfac = ml_collections.ConfigDict(dict(
      damping=1e-3, final_damping=1e-6, damping_schedule="decay", curvature_ema=0.99,
      inverse_update_period=50, norm_constraint=1e-3, momentum=0.9, use_adaptive_damping=False))
  return c


def validate(opt: ml_collections.ConfigDict) -> None:
  check_choice("optimizer.name", opt.name, OPTIMIZER_NAMES)
  check_choice("optimizer.schedule", opt.schedule, SCHEDULE_NAMES)
  check_range("optimizer.learning_rate", opt.learning_rate, low=0.0, low_inclusive=False)
  check_range("optimizer.l2", opt.l2, low=0.0)
  check_range("optimizer.label_smoothing", opt.label_smoothing, low=0.0, high=1.0,
              high_inclusive=False)
