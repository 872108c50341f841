"""`shaping.*` config keys: the kernel-shaping method and its targets.

`validate` also checks the (model, method, activation) combination against the
compatibility matrix of `dksflax.models.compatibility` (which imports no JAX), so an
incompatible config fails before any compute.
"""

from __future__ import annotations

import math

import ml_collections

from dksflax.errors import ConfigError, check_choice, check_range

METHODS = ("dks", "tat", "eoc", "fixup", "lsuv", "skipinit", "risotto", "none")
WEIGHT_INITS = ("fan_in_gaussian", "orthogonal", "delta", "orthogonal_delta")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = "dks"
  c.zeta = 1.5              # DKS global slope bound (> 1), DKS §16.6
  c.eta = 0.9               # TAT leaky-ReLU target network C(0) in (0, 1), TAT §4.3
  c.tau = 0.3               # smooth TAT target network curvature C''(1) > 0, TAT §4.2
  c.shortcut_weight = 0.9   # w in w*x + sqrt(1 - w^2)*R(x) for rescaled nets (TAT Eq. 6)
  c.weight_init = "orthogonal_delta"  # fan_in_gaussian, orthogonal, delta, orthogonal_delta
  c.weight_var = -1.0       # sigma_w^2 for none/lsuv/fixup/skipinit/risotto; -1: He gain for
                            # (leaky) relu, 1 otherwise (dks/tat use 1, eoc its solution)
  c.eoc_q_star = 1.0        # EOC: fixed point q* of the Q map
  c.lsuv_tolerance = 0.01   # LSUV: |Var - 1| tolerance
  c.lsuv_max_iters = 10     # LSUV: iterations per layer
  return c


def validate(shaping: ml_collections.ConfigDict, model: ml_collections.ConfigDict) -> None:
  check_choice("shaping.method", shaping.method, METHODS)
  check_range("shaping.zeta", shaping.zeta, low=1.0, low_inclusive=False,
              why="DKS needs a global slope bound zeta > 1")
  check_range("shaping.eta", shaping.eta, low=0.0, high=1.0, low_inclusive=False,
              high_inclusive=False, why="TAT's target C(0) must lie strictly between 0 and 1")
  check_range("shaping.tau", shaping.tau, low=0.0, low_inclusive=False,
              why="smooth TAT needs a positive curvature target tau")
  check_range("shaping.shortcut_weight", shaping.shortcut_weight, low=0.0, high=1.0,
              why="the shortcut weight w must satisfy 0 <= w <= 1 (w^2 + r^2 = 1)")
  check_choice("shaping.weight_init", shaping.weight_init, WEIGHT_INITS)
  wv = shaping.weight_var
  if not (wv == -1 or (math.isfinite(float(wv)) and float(wv) > 0)):
    raise ConfigError(f"shaping.weight_var={wv!r} must be a positive variance multiplier, "
                      "or -1 for the method's default")
  check_range("shaping.eoc_q_star", shaping.eoc_q_star, low=0.0, low_inclusive=False,
              why="the EOC fixed point q* is a positive variance")
  check_range("shaping.lsuv_tolerance", shaping.lsuv_tolerance, low=0.0, low_inclusive=False,
              why="LSUV stops when |Var - 1| < tolerance")
  if int(shaping.lsuv_max_iters) < 1:
    raise ConfigError(f"shaping.lsuv_max_iters={shaping.lsuv_max_iters!r} must be >= 1")
  from dksflax.models import compatibility  # pylint: disable=import-outside-toplevel
  compatibility.check_compatible(
      name=model.name, variant=model.variant, normalization=model.normalization,
      activation=model.activation, method=shaping.method, resavg=model.resavg,
      pooling=model.pooling)
