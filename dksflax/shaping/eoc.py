"""Edge of chaos (Poole et al. 2016; Schoenholz et al. 2017; DKS §26.4).

For a deep chain of combined layers with weight variance ``sw2`` (times fan-in) and bias
variance ``sb2`` the q values converge to a fixed point ``q*`` of the extended Q map,

    ``q* = sw2 E[phi(sqrt(q*) z)^2] + sb2``,

and the C map at ``c = 1`` has slope ``chi1 = sw2 E[phi'(sqrt(q*) z)^2]``. The edge of chaos
is ``chi1 = 1``: for a chosen ``q*`` this gives ``sw2 = 1 / E[phi'(sqrt(q*) z)^2]`` and
``sb2 = q* - sw2 E[phi(sqrt(q*) z)^2]``, which must be non-negative (otherwise that ``q*``
is not on the edge of chaos for this activation). ReLU: ``sw2 = 2``, ``sb2 = 0`` (He et al.).
"""

from __future__ import annotations

import dataclasses
import math

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping import quadrature
from dksflax.shaping.activations import Activation, as_activation

#: Bias variances in [-BIAS_TOL, 0) count as 0 (quadrature rounding, e.g. ReLU).
BIAS_TOL = 1e-12


@dataclasses.dataclass(frozen=True)
class EOCParams:
  """Weight and bias variances on the edge of chaos.

  Attributes:
    weight_var: ``sigma_w^2`` (weight variance times fan-in).
    bias_var: ``sigma_b^2``.
    q_star: the fixed point of the Q map.
    chi1: ``sw2 E[phi'(sqrt(q*) z)^2]`` (1 up to rounding).
    q_map_slope: slope of the extended Q map at ``q*``, ``sw2 Q'(q*)``; below 1 the fixed
      point is stable.
    c0: ``(sw2 E[phi(sqrt(q*) z)]^2 + sb2) / q*``, the pre-activation C map at ``c = 0``.
    activation: registry name of ``phi``.
  """

  weight_var: float
  bias_var: float
  q_star: float
  chi1: float
  q_map_slope: float
  c0: float
  activation: str = ""

  def to_dict(self) -> dict:
    """A JSON-able dict of all fields."""
    return dataclasses.asdict(self)


def eoc(activation: str | Activation, *, q_star: float = 1.0) -> EOCParams:
  """Edge-of-chaos variances for ``activation`` at the Q-map fixed point ``q_star``.

  Args:
    activation: a registered name or an Activation.
    q_star: the fixed point ``q*`` > 0. (Default: 1)

  Returns:
    :class:`EOCParams`.

  Raises:
    ConfigError: unknown activation or ``q_star <= 0``.
    ShapingError: no edge-of-chaos point with this ``q*`` (it would need a negative bias
      variance), or ``phi'`` vanishes.
  """
  phi = as_activation(activation)
  try:
    q = float(q_star)
  except (TypeError, ValueError):
    raise ConfigError(f"q_star={q_star!r} must be a positive number") from None
  if not (q > 0.0 and math.isfinite(q)):
    raise ConfigError(f"q_star={q_star!r} must be a finite positive number (a q value)")
  kinks = phi.kinks
  d1_sq = quadrature.gaussian_expectation(lambda u: phi.d1(u)**2, q, kinks=kinks)
  if not d1_sq > 0:
    raise ShapingError(f"{phi.name!r}: E[phi'(u)^2] = 0, no edge of chaos exists")
  sw2 = 1.0 / d1_sq
  second = quadrature.gaussian_expectation(lambda u: phi.fn(u)**2, q, kinks=kinks)
  sb2 = q - sw2 * second
  if sb2 < -BIAS_TOL * max(1.0, q):
    raise ShapingError(
        f"{phi.name!r} has no edge-of-chaos point with q*={q!r}: chi1 = 1 needs "
        f"sigma_w^2 = {sw2:.6g}, and then sigma_w^2 E[phi^2] = {sw2 * second:.6g} already "
        f"exceeds q*, so sigma_b^2 = {sb2:.3g} would be negative; choose a larger q_star")
  sb2 = max(sb2, 0.0)
  mean = quadrature.gaussian_expectation(phi.fn, q, kinks=kinks)
  phi_phi1_u = quadrature.gaussian_expectation(lambda u: phi.fn(u) * phi.d1(u) * u, q,
                                               kinks=kinks)
  q_out = sw2 * second + sb2
  c0 = (sw2 * mean * mean + sb2) / q_out
  return EOCParams(weight_var=sw2, bias_var=sb2, q_star=q, chi1=sw2 * d1_sq,
                   q_map_slope=sw2 * phi_phi1_u / q, c0=c0, activation=phi.name)
