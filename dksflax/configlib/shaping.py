"""`shaping.*` config keys: the kernel-shaping method and its targets."""

from __future__ import annotations

import ml_collections

from dksflax.errors import check_choice, check_range

METHODS = ("dks", "tat", "eoc", "fixup", "lsuv", "skipinit", "risotto", "none")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = "dks"
  c.zeta = 1.5              # DKS global slope bound (> 1), DKS §16.6
  c.eta = 0.9               # TAT leaky-ReLU target network C(0) in (0, 1), TAT §4.3
  c.tau = 0.3               # smooth TAT target network curvature C''(1) > 0, TAT §4.2
  c.shortcut_weight = 0.9   # w in w*x + sqrt(1 - w^2)*R(x) for rescaled nets (TAT Eq. 6)
  c.weight_init = "orthogonal_delta"  # fan_in_gaussian, orthogonal, delta, orthogonal_delta
  c.eoc_q_star = 1.0        # EOC: fixed point q* of the Q map
  c.lsuv_tolerance = 0.01   # LSUV: |Var - 1| tolerance
  c.lsuv_max_iters = 10     # LSUV: iterations per layer
  return c


def validate(shaping: ml_collections.ConfigDict, model: ml_collections.ConfigDict) -> None:
  del model
  check_choice("shaping.method", shaping.method, METHODS)
  check_range("shaping.zeta", shaping.zeta, low=1.0, low_inclusive=False,
              why="DKS needs a global slope bound zeta > 1")
  check_range("shaping.eta", shaping.eta, low=0.0, high=1.0, low_inclusive=False,
              high_inclusive=False, why="TAT's target C(0) must lie strictly between 0 and 1")
  check_range("shaping.tau", shaping.tau, low=0.0, low_inclusive=False,
              why="smooth TAT needs a positive curvature target tau")
  check_range("shaping.shortcut_weight", shaping.shortcut_weight, low=0.0, high=1.0,
              why="the shortcut weight w must satisfy 0 <= w <= 1 (w^2 + r^2 = 1)")
