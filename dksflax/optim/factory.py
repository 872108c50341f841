"""``create_optimizer``: the one entry point the trainer uses, by ``optimizer.name``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_collections

from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.errors import ConfigError
from dksflax.optim.schedules import make_schedule
from dksflax.optim.types import LossFn, TrainingOptimizer


def _common_hyperparameters(opt: ml_collections.ConfigDict) -> dict[str, Any]:
  return {"learning_rate": opt.learning_rate, "schedule": opt.schedule,
          "warmup_steps": opt.warmup_steps, "grad_clip_norm": opt.grad_clip_norm,
          "l2": opt.l2, "label_smoothing": opt.label_smoothing}


def _optax(opt: ml_collections.ConfigDict, loss_fn: LossFn, schedule: Any,
           total_steps: int) -> TrainingOptimizer:
  from dksflax.optim.optax_optimizer import OptaxTrainingOptimizer, build_transformation  # pylint: disable=g-import-not-at-top
  del total_steps
  hyper = {**_common_hyperparameters(opt), **opt[opt.name].to_dict()}
  return OptaxTrainingOptimizer(opt.name, build_transformation(opt, schedule), loss_fn,
                                schedule, hyper)


def _kfac(opt: ml_collections.ConfigDict, loss_fn: LossFn, schedule: Any,
          total_steps: int) -> TrainingOptimizer:
  from dksflax.optim.kfac_optimizer import KfacTrainingOptimizer  # pylint: disable=g-import-not-at-top
  return KfacTrainingOptimizer(opt.kfac, loss_fn=loss_fn, schedule=schedule,
                               total_steps=total_steps, grad_clip_norm=opt.grad_clip_norm,
                               hyperparameters=_common_hyperparameters(opt))


#: optimizer.name -> builder(opt_config, loss_fn, schedule, total_steps).
OPTIMIZERS: dict[str, Callable[..., TrainingOptimizer]] = {
    "sgd": _optax, "adam": _optax, "lars": _optax, "shampoo": _optax, "kfac": _kfac}


def create_optimizer(opt_config: ml_collections.ConfigDict, *, loss_fn: LossFn,
                     total_steps: int) -> TrainingOptimizer:
  """Builds the optimizer named by ``opt_config.name`` behind one interface.

  Args:
    opt_config: The ``optimizer`` config section.
    loss_fn: ``loss_fn(params, model_state, rng, batch) -> (loss, (model_state, aux))``
      (see :func:`dksflax.optim.losses.make_classification_loss`).
    total_steps: Number of optimizer steps in the run (schedules, damping decay).

  Returns:
    A :class:`~dksflax.optim.types.TrainingOptimizer` with ``init``, ``step``,
    ``describe``.

  Raises:
    ConfigError: Before any compute, for an unknown optimizer or schedule name, a
      non-positive learning rate or damping, a warm-up longer than the run, or any
      other out-of-range value.
  """
  optimizer_cfg.validate(opt_config)
  if opt_config.name not in OPTIMIZERS:
    raise ConfigError(f"optimizer.name={opt_config.name!r}; choose one of {sorted(OPTIMIZERS)}")
  if int(total_steps) != total_steps or total_steps <= 0:
    raise ConfigError(f"total_steps={total_steps!r} must be a positive integer")
  schedule = make_schedule(opt_config.schedule, base_lr=opt_config.learning_rate,
                           total_steps=int(total_steps), warmup_steps=opt_config.warmup_steps,
                           step_boundaries=tuple(opt_config.step_boundaries))
  return OPTIMIZERS[opt_config.name](opt_config, loss_fn, schedule, int(total_steps))
