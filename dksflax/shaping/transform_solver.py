"""Numerics shared by the activation-transformation solvers (DKS §22, TAT §4.2).

* :func:`moments`: the Gaussian moments of ``phi(alpha z + beta)`` that the local Q/C map
  conditions are made of (DKS §18.4 i-ii, TAT Eq. 16), from one quadrature rule split at
  the shifted kinks;
* :func:`invert_increasing`: ``mu^{-1}(zeta)`` and the curvature target by bracketing and
  Brent's method (DKS §22.3);
* :func:`multistart_root`: ``scipy.optimize.root(method="hybr")`` from successive initial
  guesses with a deterministic choice among several solutions (DKS §22.1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping import quadrature
from dksflax.shaping.activations import Activation, TransformedActivation, as_activation

#: Residual (max abs) below which a root-finder result is accepted.
RESIDUAL_TOL = 1e-7
#: Number of initial guesses tried before giving up (DKS §22.1).
NUM_TRIES = 50
#: Seed of the generator for the random initial guesses (deterministic solves).
SEED = 123


def base_activation(activation: str | Activation) -> Activation:
  """Resolves the activation a solver transforms (a registered one, not a transformed one)."""
  if isinstance(activation, TransformedActivation):
    raise ConfigError(
        f"the solvers transform a base activation (a name or get_activation(...)), not an "
        f"already transformed one ({activation!r}); pass its base {activation.base!r}")
  return as_activation(activation)


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
  """Moments of ``phi(alpha z + beta)``, ``z ~ N(0, 1)``, split at the shifted kinks.

  Args:
    phi: the activation.
    alpha: input scale (non-zero for the kink split).
    beta: input shift.
    second_derivative: also compute ``E[phi''(y)^2]``. (Default: False)

  Returns:
    The moments.
  """
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

