"""`optimizer.*` config keys: one sub-dict per optimizer, plus schedule and regularisation."""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError, check_choice, check_range

OPTIMIZER_NAMES = ("sgd", "adam", "lars", "shampoo", "kfac")
SCHEDULE_NAMES = ("constant", "warmup_cosine", "step", "linear")
SHAMPOO_GRAFTS = ("adagrad", "sgd", "none")
SHAMPOO_ROOT_METHODS = ("eigh", "newton")
KFAC_DAMPING_SCHEDULES = ("fixed", "decay")


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


def _int_at_least(key: str, value: object, low: int) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < low:
    raise ConfigError(f"{key}={value!r} must be an integer >= {low}")


def validate(opt: ml_collections.ConfigDict) -> None:
  """Checks the `optimizer` section; run-length checks (warm-up vs steps) happen in
  `dksflax.optim.create_optimizer`, which knows the number of steps."""
  check_choice("optimizer.name", opt.name, OPTIMIZER_NAMES)
  check_choice("optimizer.schedule", opt.schedule, SCHEDULE_NAMES)
  check_range("optimizer.learning_rate", opt.learning_rate, low=0.0, low_inclusive=False)
  check_range("optimizer.l2", opt.l2, low=0.0)
  check_range("optimizer.label_smoothing", opt.label_smoothing, low=0.0, high=1.0,
              high_inclusive=False)
  check_range("optimizer.grad_clip_norm", opt.grad_clip_norm, low=0.0,
              why="0 disables clipping")
  _int_at_least("optimizer.warmup_steps", opt.warmup_steps, 0)
  bounds = list(opt.step_boundaries)
  if any(not 0.0 < float(b) < 1.0 for b in bounds) or bounds != sorted(bounds):
    raise ConfigError(f"optimizer.step_boundaries={tuple(bounds)!r} must be increasing "
                      "fractions of the run in (0, 1)")
  check_range("optimizer.sgd.momentum", opt.sgd.momentum, low=0.0, high=1.0,
              high_inclusive=False)
  check_range("optimizer.adam.b1", opt.adam.b1, low=0.0, high=1.0, high_inclusive=False)
  check_range("optimizer.adam.b2", opt.adam.b2, low=0.0, high=1.0, high_inclusive=False)
  check_range("optimizer.adam.eps", opt.adam.eps, low=0.0, low_inclusive=False)
  check_range("optimizer.lars.momentum", opt.lars.momentum, low=0.0, high=1.0,
              high_inclusive=False)
  check_range("optimizer.lars.trust_coefficient", opt.lars.trust_coefficient, low=0.0,
              low_inclusive=False)
  check_range("optimizer.lars.eps", opt.lars.eps, low=0.0)
  s = opt.shampoo
  check_range("optimizer.shampoo.beta1", s.beta1, low=0.0, high=1.0, high_inclusive=False)
  check_range("optimizer.shampoo.beta2", s.beta2, low=0.0, high=1.0, low_inclusive=False,
              why="1.0 sums the statistics, < 1 averages them exponentially")
  check_range("optimizer.shampoo.eps", s.eps, low=0.0, low_inclusive=False)
  check_range("optimizer.shampoo.exponent_multiplier", s.exponent_multiplier, low=0.0,
              low_inclusive=False)
  for key in ("update_period", "block_size", "max_preconditioner_dim"):
    _int_at_least(f"optimizer.shampoo.{key}", s[key], 1)
  _int_at_least("optimizer.shampoo.start_preconditioning_step",
                s.start_preconditioning_step, 0)
  check_choice("optimizer.shampoo.graft", s.graft, SHAMPOO_GRAFTS)
  check_choice("optimizer.shampoo.inverse_root_method", s.inverse_root_method,
               SHAMPOO_ROOT_METHODS)
  if s.inverse_root_method == "newton" and float(s.exponent_multiplier) != 1.0:
    raise ConfigError(
        f"optimizer.shampoo.exponent_multiplier={s.exponent_multiplier} with "
        "inverse_root_method='newton': coupled Newton needs integer roots p = 2*rank; "
        "use 'eigh' for other exponents")
  k = opt.kfac
  check_range("optimizer.kfac.damping", k.damping, low=0.0, low_inclusive=False,
              why="K-FAC inverts (F + damping I)")
  check_range("optimizer.kfac.final_damping", k.final_damping, low=0.0,
              low_inclusive=False)
  check_choice("optimizer.kfac.damping_schedule", k.damping_schedule, KFAC_DAMPING_SCHEDULES)
  check_range("optimizer.kfac.curvature_ema", k.curvature_ema, low=0.0, high=1.0,
              high_inclusive=False)
  _int_at_least("optimizer.kfac.inverse_update_period", k.inverse_update_period, 1)
  check_range("optimizer.kfac.norm_constraint", k.norm_constraint, low=0.0,
              why="0 disables the constraint")
  check_range("optimizer.kfac.momentum", k.momentum, low=0.0, high=1.0,
              high_inclusive=False)
  if not isinstance(k.use_adaptive_damping, bool):
    raise ConfigError(
        f"optimizer.kfac.use_adaptive_damping={k.use_adaptive_damping!r} must be a bool")
