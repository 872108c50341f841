"""Tailored Activation Transformation (TAT, Zhang et al. 2022, §4).

* Leaky ReLU (TAT §4.1): ``phi_s(x) = sqrt(2 / (1 + s^2)) * max(x, s x)`` has ``Q(q) = q``
  and the closed-form local C map (TAT Eq. 9)

      ``C(c) = c + (1 - s)^2 / (pi (1 + s^2)) * (sqrt(1 - c^2) - c arccos(c))``.

  (derived in `dksflax.shaping.leaky_relu`). The negative slope ``s`` is chosen so that the
  network's ``C_f(0) = eta`` (TAT Eq. 11-12) by Brent's method on ``s`` in [0, 1], with the
  map evaluated in closed form on floats and the network by a compiled kernel graph
  (`dksflax.shaping.kernel_graph_program`): ``s = 1`` is linear (``C_f(0) = 0``) and
  ``s = 0`` (ReLU) the most nonlinear, so ``eta`` above the ReLU network's ``C_f(0)`` is
  unreachable (a shallow net cannot be made that nonlinear).
* Smooth activations (TAT §4.2, Eq. 14-16): ``Q(1) = 1``, ``Q'(1) = 1``, ``C'(1) = 1`` and the
  local curvature ``C''(1) = kappa`` with ``max_curvature_func(kappa) = tau`` (``L kappa``
  for an L-layer vanilla net); ``gamma`` from ``Q(1) = 1`` in closed form and
  ``(alpha, beta, delta)`` by ``scipy.optimize.root(method="hybr")`` with multi-start.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable

import numpy as np
from scipy import optimize

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping.activations import Activation, TransformedActivation
from dksflax.shaping.dks import DKSParams
from dksflax.shaping.leaky_relu import (leaky_relu_c_map, leaky_relu_local_c0,
                                        leaky_relu_rule_from_c0, leaky_relu_slope_from_c0)
from dksflax.shaping.transform_solver import (base_activation, invert_increasing, is_linear,
                                              moments, multistart_root)

#: Solutions with ``|alpha| * gamma * max(1, 1 / max|phi'|)`` at or above this are
#: rejected: they have unstable Q maps and larger kernel-approximation errors. This is the
#: dks package's rule (``alpha * gamma >= 2``) for activations whose maximal slope is at
#: least 1; for flatter ones (sigmoid, maximal slope 1/4) the slope of the transformed
#: activation is measured instead, so they are not rejected for their scale alone.
MAX_INPUT_OUTPUT_SCALE = 2.0

__all__ = ["MAX_INPUT_OUTPUT_SCALE", "TATLReLUParams", "leaky_relu_c_map",
           "local_curvature_target", "solve_tat_lrelu", "solve_tat_smooth"]


@dataclasses.dataclass(frozen=True)
class TATLReLUParams:
  """Tailored rectifier ``output_scale * max(x, negative_slope * x)`` (TAT §4.1).

  Attributes:
    negative_slope: the solved negative slope ``s`` in [0, 1).
    output_scale: ``sqrt(2 / (1 + s^2))``, giving ``Q(q) = q``.
    eta: the target network ``C_f(0)``.
    network_c0: the achieved network ``C_f(0)``.
    local_c0: the local ``C(0) = (1 - s)^2 / (pi (1 + s^2))``.
  """

  negative_slope: float
  output_scale: float
  eta: float = 0.0
  network_c0: float = 0.0
  local_c0: float = 0.0

  def transformed(self) -> TransformedActivation:
    """As a :class:`TransformedActivation` of ``leaky_relu`` (``gamma = output_scale``)."""
    return TransformedActivation("leaky_relu", (("negative_slope", self.negative_slope),),
                                 1.0, 0.0, self.output_scale, 0.0)

  def to_dict(self) -> dict:
    """A JSON-able dict of all fields."""
    return dataclasses.asdict(self)


def _check_open_unit(name: str, value: float, why: str) -> float:
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ConfigError(f"{name}={value!r} must be a number in (0, 1)") from None
  if not 0.0 < v < 1.0:
    raise ConfigError(f"{name}={value!r} must lie strictly between 0 and 1: {why}")
  return v


def _saturation_scale(c0: float) -> float:
  """``1 / sqrt(1 - c0)``: increasing in ``c0``, finite (capped) at ``c0 >= 1``.

  For a deep net, ``C_f(0)`` approaches 1 like ``1 - O(1 / (L k)^2)`` (the local map
  ``C(c) - c ~ k (2 sqrt(2) / 3) (1 - c)^(3/2)`` near ``c = 1``, TAT Eq. 9), so on this
  scale it is close to linear in ``k``: Brent's method then converges in ~6-8 network
  evaluations (11-15 for ``C_f(0)`` against ``s``).
  """
  return 1.0 / math.sqrt(max(1.0 - c0, 1e-300))


def solve_tat_lrelu(*, max_c0_func: Callable[[Callable[[np.ndarray], np.ndarray]], float],
                    eta: float) -> TATLReLUParams:
  """Solves TAT for leaky ReLU (TAT §4.1, Eq. 11-12).

  Args:
    max_c0_func: given the local C map ``r`` of the scaled leaky ReLU (a callable
      ``c -> C(c)`` on floats and, element-wise, on NumPy arrays), returns the network's
      ``C_f(0)`` (the maximum over subnetworks, TAT Appendix B); for an L-layer vanilla
      net, ``r`` composed L times starting at ``c = 0``. It is called about 6-8 times.
    eta: the target ``C_f(0)``, in (0, 1); the paper uses 0.9 or 0.95.

  Returns:
    :class:`TATLReLUParams`.

  Raises:
    ConfigError: ``eta`` outside (0, 1).
    ShapingError: ``eta`` unreachable (the ReLU network's ``C_f(0)`` is smaller), or
      ``max_c0_func`` misbehaves.
  """
  eta = _check_open_unit("eta", eta, "it is the target network C_f(0) (TAT §4.1); "
                         "0 is a linear network, 1 a degenerate one")
  values: dict[float, float] = {}

  def network_c0(k: float) -> float:
    # As a function of the local C(0) = k, which the C map depends on (TAT Eq. 9), s only
    # through it. Memoised: the bracket ends and the root are asked for again.
    if k not in values:
      v = float(max_c0_func(leaky_relu_rule_from_c0(k)))
      if not math.isfinite(v):
        raise ShapingError(f"max_c0_func returned {v!r} for negative slope "
                           f"{leaky_relu_slope_from_c0(k)!r}")
      values[k] = v
    return values[k]

  k_relu = leaky_relu_local_c0(0.0)   # 1/pi; k = 0 is the linear network (s = 1)
  at_relu = network_c0(k_relu)
  if at_relu < eta:
    raise ShapingError(
        f"TAT target eta={eta!r} is unreachable: even with negative slope 0 (ReLU) the "
        f"network's C_f(0) is only {at_relu:.6g}. A shallow leaky-ReLU network cannot be "
        f"made that nonlinear; use a smaller eta (below {at_relu:.4g}) or a deeper network")
  at_linear = network_c0(0.0)
  if at_linear > eta:
    raise ShapingError(
        f"max_c0_func gives C_f(0) = {at_linear:.6g} > eta for the linear network "
        f"(negative slope 1); it must be 0 there, so max_c0_func is wrong")
  if at_relu == eta:
    k = k_relu
  else:
    # C_f(0) increases smoothly with k (TAT Appendix B.3); see _saturation_scale.
    target = _saturation_scale(eta)
    k = float(optimize.brentq(lambda k: _saturation_scale(network_c0(k)) - target, 0.0,
                              k_relu, xtol=1e-15, rtol=4 * np.finfo(float).eps,
                              maxiter=200))
  slope = leaky_relu_slope_from_c0(k)
  return TATLReLUParams(slope, math.sqrt(2.0 / (1.0 + slope * slope)), eta=eta,
                        network_c0=network_c0(k), local_c0=leaky_relu_local_c0(slope))


def local_curvature_target(max_curvature_func: Callable[[float], float], tau: float) -> float:
  """``kappa`` with ``max_curvature_func(kappa) = tau`` (TAT §4.2, Appendix B).

  Args:
    max_curvature_func: the network's ``C_f''(1)`` as an increasing function of the local
      ``C''(1)``, 0 at 0.
    tau: the target network curvature, > 0.

  Returns:
    The local curvature target ``kappa > 0``.

  Raises:
    ConfigError: ``tau <= 0``.
    ShapingError: ``max_curvature_func`` misbehaves.
  """
  try:
    t = float(tau)
  except (TypeError, ValueError):
    raise ConfigError(f"tau={tau!r} must be a number > 0") from None
  if not (t > 0.0 and math.isfinite(t)):
    raise ConfigError(
        f"tau={tau!r} must be a finite number > 0: it is the network's C''(1), which is "
        f"0 only for a linear network (TAT §4.2; the paper uses 0.3)")
  return invert_increasing(max_curvature_func, t, lower=0.0, first_upper=0.1,
                           name="max_curvature_func")


def solve_tat_smooth(activation: str | Activation, *,
                     max_curvature_func: Callable[[float], float], tau: float) -> DKSParams:
  """Solves TAT for a smooth activation (TAT §4.2, Eq. 14-16).

  Args:
    activation: a registered name or an Activation whose first derivative is continuous
      (``C''(1)`` is infinite otherwise: ReLU, leaky ReLU, SELU are refused).
    max_curvature_func: the network's ``C_f''(1)`` as a function of the local ``C''(1)``
      when every nonlinear layer has ``C'(1) = 1`` (``L * kappa`` for an L-layer vanilla
      net); increasing with value 0 at 0.
    tau: target network curvature ``C_f''(1) > 0`` (the paper uses 0.3).

  Returns:
    :class:`~dksflax.shaping.dks.DKSParams` with ``method="tat"``, ``psi = 1`` and
    ``kappa`` set; ``alpha > 0`` and, for odd activations, ``beta <= 0``.

  Raises:
    ConfigError: unknown activation or ``tau <= 0``.
    ShapingError: non-smooth or linear activation, or no convergence.
  """
  phi = base_activation(activation)
  if phi.kink_order is not None and phi.kink_order < 2:
    raise ShapingError(
        f"smooth TAT needs an activation with a continuous first derivative, but "
        f"{phi.name!r} has a kink at {list(phi.kinks)} so C''(1) is infinite (TAT §4.2); "
        f"use TAT with leaky_relu (solve_tat_lrelu) or a smooth activation")
  if is_linear(phi):
    raise ShapingError(f"activation {phi.name!r} is affine: its C''(1) is 0, so no "
                       f"tau > 0 can be reached")
  kappa = local_curvature_target(max_curvature_func, tau)

  def scales(p: np.ndarray) -> tuple[object, float] | None:
    a, b, d = float(p[0]), float(p[1]), float(p[2])
    if a == 0.0:
      return None
    m = moments(phi, a, b, second_derivative=True)
    second = m.var + (m.mean + d)**2     # E[(phi + delta)^2]
    if not second > 1e-300 or not math.isfinite(second):
      return None
    return m, 1.0 / second

  def residual(p: np.ndarray) -> np.ndarray:
    out = scales(p)
    if out is None:
      return np.full(3, 1e6)
    m, g2 = out
    a, d = float(p[0]), float(p[2])
    return np.array([g2 * a * (m.phi_phi1_z + d * m.phi1_z) - 1.0,
                     g2 * a * a * m.phi1_sq - 1.0,
                     g2 * a**4 * m.phi2_sq - kappa])

  phi0 = float(phi.fn(np.zeros(1))[0])

  def canonical(x: np.ndarray) -> np.ndarray:
    # alpha -> -alpha leaves the conditions unchanged (z -> -z); for phi with
    # phi(x) - phi(0) odd, so does (beta, delta) -> (-beta, -delta - 2 phi(0)).
    a, b, d = abs(float(x[0])), float(x[1]), float(x[2])
    if phi.odd and b > 0:
      b, d = -b, -d - 2.0 * phi0
    return np.array([a, b, d])

  max_slope = float(np.max(np.abs(phi.d1(np.linspace(-50.0, 50.0, 20001)))))
  slope_unit = max(1.0, 1.0 / max_slope) if max_slope > 0 else 1.0

  def accept(x: np.ndarray) -> bool:
    out = scales(x)
    if out is None:
      return False
    return bool(x[0] * math.sqrt(out[1]) < MAX_INPUT_OUTPUT_SCALE * slope_unit)

  x, err = multistart_root(
      residual, list(itertools.product((1.0, 0.1), (0.0, 1.0, -1.0), (0.0, 1.0, -1.0))),
      lambda rng: (rng.uniform(0.0, 2.0), rng.uniform(-3.0, 3.0), rng.uniform(-3.0, 3.0)),
      canonical=canonical, accept=accept,
      reject_reason=f"|alpha| * gamma >= {MAX_INPUT_OUTPUT_SCALE * slope_unit:.3g}")
  alpha, beta, delta = (float(v) for v in x)
  m, g2 = scales(x)
  gamma = math.sqrt(g2)
  c0 = g2 * (m.mean + delta)**2
  return DKSParams(alpha, beta, gamma, delta, activation=phi.name,
                   activation_params=phi.params, method="tat", psi=1.0, kappa=kappa,
                   q_slope=g2 * alpha * (m.phi_phi1_z + delta * m.phi1_z),
                   c_slope=g2 * alpha * alpha * m.phi1_sq, c0=c0, residual=err)
