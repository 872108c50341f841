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
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping import quadrature
from dksflax.shaping.activations import (Activation, TransformedActivation, as_activation,
                                         get_activation)

#: Residual (max abs) below which a root-finder result is accepted.
RESIDUAL_TOL = 1e-7
#: Number of initial guesses tried before giving up (DKS §22.1).
NUM_TRIES = 50
#: Seed of the generator for the random initial guesses (deterministic solves).
SEED = 123
#: First initial guesses for (alpha, beta), DKS §22.1.
_ALPHA_GUESSES = (1.0, 0.1)
_BETA_GUESSES = (0.0, 1.0, -1.0)


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
# Shared numerics (also used by smooth TAT).


def invert_increasing(fn: Callable[[float], float], target: float, *, lower: float,
                      first_upper: float, name: str) -> float:
  """Solves ``fn(x) = target`` for a continuous increasing ``fn`` on ``[lower, inf)``.

  The bracket ``[lower, first_upper]`` is doubled (in distance from ``lower``) until it
  contains the target (DKS §22.3), then refined with Brent's method to full precision.

  Args:
    fn: increasing scalar function.
    target: the value to reach.
    lower: lower end of the domain (``fn(lower) < target`` is required).
    first_upper: first upper end of the bracket.
    name: name of ``fn`` for error messages.

  Returns:
    ``x`` with ``fn(x) = target``.

  Raises:
    ShapingError: ``fn(lower) >= target``, ``fn`` is not finite, or the target is never
      reached.
  """
  def value(x: float) -> float:
    v = float(fn(x))
    if math.isnan(v):
      raise ShapingError(f"{name}({x!r}) returned NaN")
    return v - target

  low_val = value(lower)
  if low_val >= 0:
    raise ShapingError(
        f"{name}({lower}) = {low_val + target!r} already reaches the target {target!r}; "
        f"{name} must start below the target and increase (e.g. mu(1) = 1)")
  upper = first_upper
  for _ in range(200):
    if value(upper) >= 0:
      return float(optimize.brentq(value, lower, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps,
                                   maxiter=200))
    lower_next = upper
    upper = lower + 2.0 * (upper - lower)
    lower = lower_next
  raise ShapingError(f"{name} never reaches the target {target!r} (last tried x={upper!r})")


@dataclasses.dataclass(frozen=True)
class _Moments:
  """Gaussian moments of ``phi(alpha z + beta)`` needed by the local conditions."""

  mean: float        # E[phi(y)]
  second: float      # E[phi(y)^2]
  var: float         # E[(phi(y) - mean)^2], computed centred (no cancellation)
  phi_phi1_z: float  # E[phi(y) phi'(y) z]
  phi1_z: float      # E[phi'(y) z]
  phi1_sq: float     # E[phi'(y)^2]
  phi2_sq: float     # E[phi''(y)^2]


def moments(phi: Activation, alpha: float, beta: float, *, second_derivative: bool = False
            ) -> _Moments:
  """Moments of ``phi(alpha z + beta)``, ``z ~ N(0, 1)``, split at the shifted kinks."""
  breaks = [(k - beta) / alpha for k in phi.kinks] if alpha != 0.0 else []
  z, w = quadrature.standard_normal_rule(breaks)
  y = alpha * z + beta
  f, f1 = phi.fn(y), phi.d1(y)
  f2_sq = float(w @ phi.d2(y)**2) if second_derivative else 0.0
  mean = float(w @ f)
  centred = f - mean
  return _Moments(mean, float(w @ (f * f)), float(w @ (centred * centred)),
                  float(w @ (f * f1 * z)), float(w @ (f1 * z)), float(w @ (f1 * f1)), f2_sq)


def is_linear(phi: Activation) -> bool:
  """True for affine activations (identity, leaky ReLU with slope 1): C map = identity."""
  x = np.linspace(-5.0, 5.0, 101)
  if phi.kinks:
    left, right = phi.d1(np.array([-1.0])), phi.d1(np.array([1.0]))
    if left[0] != right[0]:
      return False
  return bool(np.all(phi.d2(x) == 0.0)) and np.ptp(phi.d1(x)) == 0.0


def multistart_root(residual: Callable[[np.ndarray], np.ndarray],
                    guesses: Sequence[Sequence[float]],
                    sampler: Callable[[np.random.Generator], Sequence[float]], *,
                    canonical: Callable[[np.ndarray], np.ndarray] = lambda x: x,
                    accept: Callable[[np.ndarray], bool] = lambda x: True,
                    prefer: Callable[[np.ndarray], float] | None = None,
                    reject_reason: str = "",
                    num_tries: int = NUM_TRIES) -> tuple[np.ndarray, float]:
  """``scipy.optimize.root(method="hybr")`` from successive initial guesses (DKS §22.1).

  The system can have several solutions (e.g. SELU, Swish and GELU each have two or
  three for the DKS conditions), and which one a root finder reaches from a given guess
  depends on rounding. To be deterministic, every one of the fixed ``guesses`` is run and,
  if ``prefer`` is given, the accepted solution with the smallest ``prefer`` value wins;
  only if none converges are random guesses tried, first accepted wins.

  Args:
    residual: the system; zero at a solution.
    guesses: the first initial guesses, in order.
    sampler: draws a further initial guess from a seeded generator.
    canonical: maps a solution to its canonical representative (e.g. ``alpha > 0``).
    accept: extra test a canonical solution must pass.
    reject_reason: what ``accept`` checks, for the error message.
    prefer: ranks accepted solutions from the fixed guesses (smaller is better); ``None``
      takes the first accepted one. (Default: None)
    num_tries: total number of initial guesses. (Default: 50)

  Returns:
    ``(x, residual_max_abs)`` of the chosen canonical solution.

  Raises:
    ShapingError: no initial guess converged; reports the best residual reached.
  """
  rng = np.random.default_rng(SEED)
  best = (math.inf, None)
  found: list[tuple[np.ndarray, float]] = []
  rejected = 0
  for i in range(num_tries):
    if i == len(guesses) and found:
      break
    x0 = np.asarray(guesses[i] if i < len(guesses) else sampler(rng), dtype=np.float64)
    with np.errstate(all="ignore"):
      sol = optimize.root(residual, x0, method="hybr")
    if not np.all(np.isfinite(sol.x)):
      continue
    x = canonical(sol.x)
    err = float(np.max(np.abs(residual(x))))
    if not math.isfinite(err):
      continue
    if err < best[0]:
      best = (err, x)
    if sol.success and err < RESIDUAL_TOL:
      if not accept(x):
        rejected += 1
        continue
      found.append((x, err))
      if prefer is None or i >= len(guesses):
        break
  if found:
    return min(found, key=lambda f: prefer(f[0])) if prefer is not None else found[0]
  if rejected:
    raise ShapingError(
        f"the activation-parameter solve found {rejected} solution(s) from {num_tries} "
        f"initial guesses, but all were rejected as unstable ({reject_reason}); the target "
        f"asks for too nonlinear a layer: use a target closer to the identity (smaller "
        f"zeta / tau) or a deeper network")
  raise ShapingError(
      f"the activation-parameter solve did not converge from {num_tries} initial guesses "
      f"(best residual {best[0]:.3g} at {None if best[1] is None else best[1].tolist()}); "
      f"the target is probably unreachable for this activation: try a target closer to "
      f"the identity (smaller zeta / tau) or another activation")


_BAD = np.full(2, 1e6)


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
  """``psi = mu^{-1}(zeta)`` for the increasing maximal slope function ``mu`` (DKS §17.3)."""
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


def _base_activation(activation: str | Activation) -> Activation:
  """Resolves the activation a solver transforms (a registered one, not a transformed one)."""
  if isinstance(activation, TransformedActivation):
    raise ConfigError(
        f"the solvers transform a base activation (a name or get_activation(...)), not an "
        f"already transformed one ({activation!r}); pass its base {activation.base!r}")
  return as_activation(activation)


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
  phi = _base_activation(activation)
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
  # "zoom-in" solutions of DKS §18.5 live (C'(1) - 1 grows like alpha^2).
  small = math.sqrt(psi - 1.0)
  guesses = list(itertools.product(_ALPHA_GUESSES, _BETA_GUESSES)) + [
      (small, b) for b in (0.0, 0.5, -0.5, 1.0, -1.0)]
  x, _ = multistart_root(
      residual, guesses,
      lambda rng: (rng.uniform(0.0, 2.0), rng.uniform(-3.0, 3.0)), canonical=canonical,
      prefer=lambda x: abs(float(x[1])))
  alpha, beta = float(x[0]), float(x[1])
  return _finish(phi, alpha, beta, psi=psi, params=phi.params, dropped=(), name=name)
