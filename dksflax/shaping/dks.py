"""Deep Kernel Shaping: solve for the activation transformation (DKS §17-§18, §22).

Given an activation ``phi``, a network's maximal slope function ``mu`` (DKS §17.1) and the
global slope bound ``zeta > 1`` (DKS §16.6), find ``phi_hat(x) = gamma (phi(alpha x + beta)
+ delta)`` whose local maps satisfy the four equivalent local conditions of DKS §17.3:

1. ``Q(1) = 1``, 2. ``Q'(1) = 1``, 3. ``C(0) = 0``, 4. ``C'(1) = psi = mu^{-1}(zeta)``.

Conditions 3 and 1 fix ``delta = -E[phi(alpha z + beta)]`` and
``gamma = Var[phi(alpha z + beta)]^{-1/2}`` in closed form (DKS §18.4); conditions 2 and 4
are a 2-D nonlinear system in ``(alpha, beta)``, solved with ``scipy.optimize.root(method=
"hybr")`` from the initial guesses of DKS §22.1 (then random ones from a seeded generator)
until one converges. Positively homogeneous activations (ReLU, DKS §18.6) have one degree
of freedom fewer: ``Q'(1) = 1`` is dropped, ``beta = +-1`` and ``alpha`` is solved for, as in
the DKS table (§18.7), with a warning. The string ``"leaky_relu"`` (no fixed slope) solves
for the negative slope in place of ``alpha``, satisfying all four conditions.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy import optimize

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping.activations import Activation, TransformedActivation, get_activation
from dksflax.shaping.transform_solver import (base_activation, invert_increasing, is_linear,
                                              moments, multistart_root)

#: First initial guesses for (alpha, beta), DKS §22.1.
_ALPHA_GUESSES = (1.0, 0.1)
_BETA_GUESSES = (0.0, 1.0, -1.0)
#: Residual returned where the transformation is degenerate (zero variance).
_BAD = np.full(2, 1e6)


@dataclasses.dataclass(frozen=True)
class DKSParams:
  """Transformation ``phi_hat(x) = gamma * (phi(alpha * x + beta) + delta)`` and diagnostics.

  Attributes:
    alpha: input scale.
    beta: input shift.
    gamma: output scale.
    delta: output shift.
    activation: registry name of ``phi``.
    activation_params: parameters of ``phi`` (e.g. the solved leaky-ReLU slope).
    method: ``"dks"`` or ``"tat"`` (smooth TAT, TAT §4.2).
    psi: target local slope ``C'(1)`` (``mu^{-1}(zeta)`` for DKS, 1 for TAT).
    kappa: target local curvature ``C''(1)`` (TAT), else ``None``.
    q_slope: achieved ``Q'(1)``.
    c_slope: achieved ``C'(1)``.
    c0: achieved ``C(0)``.
    residual: max absolute error over the enforced conditions.
    dropped_conditions: conditions that could not be enforced (ReLU: ``("Q'(1)=1",)``).
  """

  alpha: float
  beta: float
  gamma: float
  delta: float
  activation: str = ""
  activation_params: tuple[tuple[str, float], ...] = ()
  method: str = "dks"
  psi: float = 1.0
  kappa: float | None = None
  q_slope: float = 1.0
  c_slope: float = 1.0
  c0: float = 0.0
  residual: float = 0.0
  dropped_conditions: tuple[str, ...] = ()

  def transformed(self) -> TransformedActivation:
    """The transformed activation as a :class:`TransformedActivation`."""
    return TransformedActivation(self.activation, self.activation_params, self.alpha,
                                 self.beta, self.gamma, self.delta)

  def to_dict(self) -> dict:
    """A JSON-able dict of all fields."""
    d = dataclasses.asdict(self)
    d["activation_params"] = dict(self.activation_params)
    d["dropped_conditions"] = list(self.dropped_conditions)
    return d


# ---------------------------------------------------------------------------------------
# DKS.


def _check_zeta(zeta: float) -> float:
  try:
    z = float(zeta)
  except (TypeError, ValueError):
    raise ConfigError(f"zeta={zeta!r} must be a number > 1") from None
  if not (z > 1.0 and math.isfinite(z)):
    raise ConfigError(
        f"zeta={zeta!r} must be a finite number > 1: it bounds the network's C'(1), which "
        f"is >= 1 for every network with C(0) = 0 (DKS §16.4, §16.6; the paper uses 1.5)")
  return z


def local_slope_target(max_slope_func: Callable[[float], float], zeta: float) -> float:
  """``psi = mu^{-1}(zeta)``, the local slope target (DKS §17.3 condition 4).

  Args:
    max_slope_func: the increasing maximal slope function ``mu`` with ``mu(1) = 1``.
    zeta: the global slope bound, > 1.

  Returns:
    ``psi > 1`` with ``mu(psi) = zeta``.

  Raises:
    ConfigError: ``zeta <= 1``.
    ShapingError: ``mu`` misbehaves (NaN, starts above zeta, never reaches it).
  """
  return invert_increasing(max_slope_func, _check_zeta(zeta), lower=1.0, first_upper=2.0,
                           name="max_slope_func")


def _finish(phi: Activation, alpha: float, beta: float, *, psi: float,
            params: tuple[tuple[str, float], ...], dropped: tuple[str, ...],
            name: str) -> DKSParams:
  m = moments(phi, alpha, beta)
  var = m.var
  if not var > 0:
    raise ShapingError(f"{name}: the solved transformation has zero variance")
  gamma = 1.0 / math.sqrt(var)
  delta = -m.mean
  q_slope = gamma**2 * alpha * (m.phi_phi1_z - m.mean * m.phi1_z)
  c_slope = gamma**2 * alpha**2 * m.phi1_sq
  errs = [abs(c_slope - psi)] + ([] if dropped else [abs(q_slope - 1.0)])
  return DKSParams(float(alpha), float(beta), gamma, delta, activation=name,
                   activation_params=params, method="dks", psi=psi, q_slope=q_slope,
                   c_slope=c_slope, c0=0.0, residual=max(errs),
                   dropped_conditions=dropped)


def _solve_homogeneous(phi: Activation, psi: float) -> tuple[float, float]:
  """Positively homogeneous ``phi`` (DKS §18.6): only ``t = beta / alpha`` matters.

  Solves ``C'(1)(t) = psi`` with ``C'(1)(t) = E[phi'(z + t)^2] / Var[phi(z + t)]`` by
  bracketing outward from ``t = 0``, and returns ``(alpha, beta) = (1/|t|, sign(t))`` (the
  form of the DKS table's ReLU row).
  """
  def slope(t: float) -> float:
    m = moments(phi, 1.0, t)
    return m.phi1_sq / m.var if m.var > 0 else math.inf

  s0 = slope(0.0) - psi
  if s0 == 0.0:
    return 1.0, 0.0
  step = 0.5
  for _ in range(24):
    t = step if s0 > 0 else -step
    st = slope(t) - psi
    if math.isfinite(st) and st * s0 < 0:
      lo, hi = sorted((0.0, t))
      t = float(optimize.brentq(lambda u: slope(u) - psi, lo, hi, xtol=1e-15,
                                rtol=4 * np.finfo(float).eps))
      return 1.0 / abs(t), math.copysign(1.0, t)
    step *= 2.0
  raise ShapingError(
      f"{phi.name!r} is positively homogeneous (DKS §18.6) and its local slope C'(1) "
      f"cannot reach psi={psi!r} (it is {slope(0.0):.6g} unshifted); choose a different "
      f"zeta or a different activation (e.g. leaky_relu with TAT)")


def _solve_free_leaky_relu(psi: float) -> tuple[float, float]:
  """Leaky ReLU with a free negative slope ``s`` (as the dks package does): unknowns
  ``(s, beta)``, ``alpha = 1``; all four DKS conditions hold."""
  def residual(p: np.ndarray) -> np.ndarray:
    phi = get_activation("leaky_relu", negative_slope=float(p[0]))
    m = moments(phi, 1.0, float(p[1]))
    var = m.var
    if not var > 1e-300:
      return _BAD
    return np.array([(m.phi_phi1_z - m.mean * m.phi1_z) / var - 1.0, m.phi1_sq / var - psi])

  x, _ = multistart_root(
      residual, list(itertools.product((0.0, 0.5), _BETA_GUESSES)),
      lambda rng: (rng.uniform(0.0, 1.0), rng.uniform(-3.0, 3.0)),
      prefer=lambda x: abs(float(x[1])))
  return float(x[0]), float(x[1])


def solve_dks(activation: str | Activation, *, max_slope_func: Callable[[float], float],
              zeta: float) -> DKSParams:
  """Solves DKS's activation transformation (DKS §18.4, §21.2, §22).

  Args:
    activation: a registered activation name or an
      :class:`~dksflax.shaping.activations.Activation` (with its own parameters). The
      name ``"leaky_relu"`` leaves the negative slope free (it is solved for, with
      ``alpha = 1``); pass ``get_activation("leaky_relu", negative_slope=s)`` to fix it.
    max_slope_func: the network's maximal slope function ``mu(psi)`` (DKS §17.1),
      increasing with ``mu(1) = 1``; e.g. ``lambda p: p**100`` for a 100-layer vanilla net.
    zeta: the global slope bound ``zeta > 1`` (DKS §16.6; the paper uses 1.5).

  Returns:
    :class:`DKSParams` with ``alpha > 0``; for odd activations the solution with
    ``beta <= 0`` (the sign of the DKS §18.7 table; its mirror image is equally valid).

  Raises:
    ConfigError: unknown activation or ``zeta <= 1``.
    ShapingError: linear activation, unreachable target, or no convergence.
  """
  free_slope = activation == "leaky_relu"
  phi = base_activation(activation)
  name = phi.name
  if is_linear(phi):
    raise ShapingError(
        f"activation {name!r} is affine: its C map is the identity, so C'(1) = 1 can never "
        f"reach psi > 1 (DKS §13.3); use a nonlinear activation")
  psi = local_slope_target(max_slope_func, zeta)

  if free_slope:
    slope, beta = _solve_free_leaky_relu(psi)
    phi = get_activation("leaky_relu", negative_slope=slope)
    return _finish(phi, 1.0, beta, psi=psi, params=phi.params, dropped=(), name=name)

  if phi.homogeneous_degree is not None:
    warnings.warn(
        f"{name!r} is positively homogeneous: DKS can enforce only three of its four "
        f"conditions and drops Q'(1) = 1 (DKS §18.6); training is slower than with other "
        f"activations. Prefer leaky_relu with TAT.", stacklevel=2)
    alpha, beta = _solve_homogeneous(phi, psi)
    return _finish(phi, alpha, beta, psi=psi, params=phi.params, dropped=("Q'(1)=1",),
                   name=name)

  def residual(p: np.ndarray) -> np.ndarray:
    a, b = float(p[0]), float(p[1])
    if a == 0.0:
      return _BAD
    m = moments(phi, a, b)
    var = m.var
    if not var > 1e-300 or not math.isfinite(var):
      return _BAD
    # Q'(1) = E[phi_hat phi_hat' z] and C'(1) = E[phi_hat'^2] with gamma = var^-1/2.
    return np.array([a * (m.phi_phi1_z - m.mean * m.phi1_z) / var - 1.0,
                     a * a * m.phi1_sq / var - psi])

  def canonical(x: np.ndarray) -> np.ndarray:
    # The conditions are invariant under alpha -> -alpha (z -> -z), and, for odd phi,
    # under (beta, delta) -> (-beta, -delta): keep alpha > 0 and, as in the DKS table's
    # tanh row, beta <= 0.
    a, b = abs(float(x[0])), float(x[1])
    return np.array([a, -abs(b) if phi.odd else b])

  # DKS §22.1's guesses, then guesses at the scale alpha ~ sqrt(psi - 1) where the
  # "zoom-in" solutions of DKS §18.5 live (C'(1) - 1 grows like alpha^2), with shifts of
  # a few alphas (SELU's family keeps its kink ~3 standard deviations out). Among all
  # solutions found, the smallest |beta| wins: for SELU this follows one family smoothly
  # across depths (the DKS table's row at depth 100), not a jump to a kink-exploiting one.
  small = math.sqrt(psi - 1.0)
  guesses = list(itertools.product(_ALPHA_GUESSES, _BETA_GUESSES)) + [
      (small, b) for b in (0.0, 0.5, -0.5, 1.0, -1.0, 3.0 * small, -3.0 * small)]
  x, _ = multistart_root(
      residual, guesses,
      lambda rng: (rng.uniform(0.0, 2.0), rng.uniform(-3.0, 3.0)), canonical=canonical,
      prefer=lambda x: abs(float(x[1])))
  alpha, beta = float(x[0]), float(x[1])
  return _finish(phi, alpha, beta, psi=psi, params=phi.params, dropped=(), name=name)
