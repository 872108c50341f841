"""Closed-form Q and C maps of the leaky ReLU (TAT §4.1, Eq. 9), scalar-fast.

Write ``phi(x) = max(x, 0) + s min(x, 0)`` as ``p x + n |x|`` with ``p = (1 + s)/2`` and
``n = (1 - s)/2``. For ``(u, v)`` jointly Gaussian with ``E u^2 = q1``, ``E v^2 = q2`` and
correlation ``c``, the cross terms ``E[u |v|]`` vanish (the joint law is symmetric under
``(u, v) -> (-u, -v)``), ``E[u v] = c sqrt(q1 q2)`` and ``E[|u| |v|] = (2 / pi) sqrt(q1 q2)
(sqrt(1 - c^2) + c arcsin c)`` (the arc-cosine kernel of degree 1, Cho & Saul 2009), so

    ``Gamma(c; q1, q2) = E[phi(u) phi(v)]
        = sqrt(q1 q2) [p^2 c + (2 n^2 / pi) (sqrt(1 - c^2) + c arcsin c)]``,

``Q(q) = Gamma(1; q, q) = q (1 + s^2) / 2`` (linear in ``q``), and with ``arcsin c = pi/2 -
arccos c`` the local C map ``Gamma / sqrt(Q(q1) Q(q2))`` is independent of ``q1, q2``:

    ``C(c) = c + k (sqrt(1 - c^2) - c arccos c)``,  ``k = (1 - s)^2 / (pi (1 + s^2))``,

which is TAT Eq. (9); ``C(0) = k`` and ``C'(c) = 1 - k arccos c``. Any positive output
scale leaves ``C`` unchanged; ``sqrt(2 / (1 + s^2))`` makes ``Q(q) = q`` (TAT §4.1).

The solver of TAT §4.1 evaluates ``C`` hundreds to thousands of times per solve, on
Python floats, where NumPy's per-call overhead (~5-10 us) would dominate;
:func:`leaky_relu_rule` returns a map that uses :mod:`math` for scalars and NumPy for
arrays. Since ``C`` depends on ``s`` only through ``k``, the solver works with ``k``
(:func:`leaky_relu_rule_from_c0`) and converts back (:func:`leaky_relu_slope_from_c0`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dksflax.errors import ShapingError


def _check_slope(negative_slope: float) -> float:
  s = float(negative_slope)
  if not math.isfinite(s):
    raise ShapingError(f"negative_slope={negative_slope!r} must be a finite number")
  return s


def leaky_relu_local_c0(negative_slope: float) -> float:
  """``C(0) = (1 - s)^2 / (pi (1 + s^2))`` of the leaky ReLU (TAT Eq. 9 at ``c = 0``).

  Args:
    negative_slope: the slope ``s`` for ``x < 0``.

  Returns:
    ``C(0)``, the ``k`` of TAT Eq. (9).

  Raises:
    ShapingError: ``s`` is not finite.
  """
  s = _check_slope(negative_slope)
  return (1.0 - s)**2 / (math.pi * (1.0 + s * s))


def leaky_relu_gamma(c: float | np.ndarray, negative_slope: float, q1: float = 1.0,
                     q2: float = 1.0) -> float | np.ndarray:
  """``Gamma(c; q1, q2) = E[phi(u) phi(v)]`` of the unscaled leaky ReLU (DKS Eq. 10).

  Args:
    c: correlation(s) of ``(u, v)``, clipped to [-1, 1].
    negative_slope: the slope ``s``.
    q1: ``E u^2 > 0``. (Default: 1)
    q2: ``E v^2 > 0``. (Default: 1)

  Returns:
    ``sqrt(q1 q2) [((1 + s)/2)^2 c + ((1 - s)^2 / (2 pi)) (sqrt(1 - c^2) + c arcsin c)]``,
    shaped like ``c``.

  Raises:
    ShapingError: ``s`` not finite, or ``q1``/``q2`` not positive.
  """
  s = _check_slope(negative_slope)
  if not (q1 > 0 and q2 > 0):
    raise ShapingError(f"q values must be positive, got q1={q1!r}, q2={q2!r}")
  c = np.clip(np.asarray(c, dtype=np.float64), -1.0, 1.0)
  out = math.sqrt(q1 * q2) * ((1.0 + s)**2 / 4.0 * c + (1.0 - s)**2 / (2.0 * math.pi) * (
      np.sqrt((1.0 - c) * (1.0 + c)) + c * np.arcsin(c)))
  return float(out) if out.ndim == 0 else out


def leaky_relu_q_map(q: float | np.ndarray, negative_slope: float) -> float | np.ndarray:
  """``Q(q) = E[phi(sqrt(q) z)^2] = q (1 + s^2) / 2`` of the unscaled leaky ReLU (DKS Eq. 5).

  Args:
    q: input q value(s).
    negative_slope: the slope ``s``.

  Returns:
    ``Q(q)``, shaped like ``q``.

  Raises:
    ShapingError: ``s`` is not finite.
  """
  s = _check_slope(negative_slope)
  out = np.asarray(q, dtype=np.float64) * (1.0 + s * s) / 2.0
  return float(out) if out.ndim == 0 else out


def leaky_relu_slope_from_c0(local_c0: float) -> float:
  """The negative slope ``s`` in [0, 1] with ``C(0) = local_c0`` (TAT Eq. 9 inverted).

  ``pi k (1 + s^2) = (1 - s)^2`` is ``a s^2 - 2 s + a = 0`` with ``a = 1 - pi k``, whose
  root in [0, 1] is ``s = a / (1 + sqrt(1 - a^2))`` (the form without cancellation).

  Args:
    local_c0: ``k = C(0)`` in [0, 1/pi] (1/pi is ReLU, 0 the identity).

  Returns:
    ``s``; exactly 0 at ``k >= 1/pi`` (up to rounding of 1/pi) and 1 at ``k = 0``.

  Raises:
    ShapingError: ``k`` outside [0, 1/pi] by more than rounding.
  """
  k = float(local_c0)
  if not (math.isfinite(k) and 0.0 <= k <= (1.0 + 1e-12) / math.pi):
    raise ShapingError(f"local_c0={local_c0!r} is not a leaky ReLU's C(0): with negative "
                       f"slope s in [0, 1] it lies in [0, 1/pi] (TAT Eq. 9)")
  a = 1.0 - math.pi * k
  if a <= 0.0:
    return 0.0
  return a / (1.0 + math.sqrt((1.0 - a) * (1.0 + a)))


def leaky_relu_rule_from_c0(local_c0: float) -> Callable[[Any], Any]:
  """The local C map of TAT Eq. (9) with ``k = C(0)`` given, as a fast callable.

  Python float inputs in [-1, 1] are evaluated with :mod:`math` (about 20x faster than
  NumPy on a scalar); other floats are clipped to [-1, 1] (NaN stays NaN), anything else
  goes through NumPy, element-wise.

  Args:
    local_c0: ``k``, e.g. :func:`leaky_relu_local_c0` of the slope.

  Returns:
    ``r`` with ``r(c) = c + k (sqrt(1 - c^2) - c arccos c)``: a float for a float, an
    array shaped like ``c`` otherwise.
  """
  k = float(local_c0)
  sqrt, acos = math.sqrt, math.acos

  def general(c: Any) -> Any:
    if isinstance(c, float):   # out of [-1, 1], NaN, or a NumPy float
      x = 1.0 if c > 1.0 else (-1.0 if c < -1.0 else float(c))
      if x != x:   # NaN in, NaN out (math.acos would raise)
        return x
      return x + k * (sqrt((1.0 - x) * (1.0 + x)) - x * acos(x))
    x = np.clip(np.asarray(c, dtype=np.float64), -1.0, 1.0)
    out = x + k * (np.sqrt((1.0 - x) * (1.0 + x)) - x * np.arccos(x))
    return float(out) if out.ndim == 0 else out

  def rule(c: Any) -> Any:
    if c.__class__ is float and -1.0 <= c <= 1.0:   # the solver's case: one branch, no call
      return c + k * (sqrt((1.0 - c) * (1.0 + c)) - c * acos(c))
    return general(c)

  def identity(c: Any) -> Any:   # k = 0 (s = 1): the same values, without the math
    if c.__class__ is float and -1.0 <= c <= 1.0:
      return c
    return general(c)

  return identity if k == 0.0 else rule


def leaky_relu_rule(negative_slope: float) -> Callable[[Any], Any]:
  """The local C map of TAT Eq. (9) for slope ``s`` as a fast callable ``c -> C(c)``.

  Args:
    negative_slope: the slope ``s``.

  Returns:
    ``r`` (see :func:`leaky_relu_rule_from_c0`).

  Raises:
    ShapingError: ``s`` is not finite.
  """
  return leaky_relu_rule_from_c0(leaky_relu_local_c0(negative_slope))


def leaky_relu_c_map(c: float | np.ndarray, negative_slope: float) -> float | np.ndarray:
  """Local C map of the (scaled) leaky ReLU (TAT Eq. 9), vectorised over ``c``.

  Args:
    c: input c value(s), clipped to [-1, 1].
    negative_slope: the slope ``s``.

  Returns:
    ``C(c)``, shaped like ``c`` (a float for a scalar).

  Raises:
    ShapingError: ``s`` is not finite.
  """
  return leaky_relu_rule(negative_slope)(c)
