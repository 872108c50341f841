"""Local and extended Q/C maps and their derivatives (DKS §6-§8), float64.

For a combined (or isolated nonlinear) layer with activation ``phi`` (DKS Eq. 5, 7):

* ``Q(q) = E[phi(sqrt(q) z)^2]``, ``z ~ N(0, 1)``;
* ``Q'(q) = q^(-1/2) E[phi(sqrt(q) z) phi'(sqrt(q) z) z]`` (DKS §8.1.1);
* ``C(c; q1, q2) = Gamma_phi(c, q1, q2) / sqrt(Q(q1) Q(q2))`` with
  ``Gamma_phi(c, q1, q2) = E[phi(sqrt(q1) x) phi(sqrt(q2) (c x + sqrt(1 - c^2) y))]`` (Eq. 10);
* ``d^i C / dc^i = (q1 q2)^(i/2) Gamma_{phi^(i)}(c, q1, q2) / sqrt(Q(q1) Q(q2))``
  (DKS §8.1.2), valid while ``phi^(i-1)`` is continuous. At ``c = 1`` and ``q1 = q2 = q``
  this is ``q^i E[phi^(i)(sqrt(q) z)^2] / Q(q)``; at ``c = 0`` it is a product of two
  one-dimensional expectations, e.g. ``C(0) = E[phi(z)]^2 / Q(1)``.

Extended maps (DKS §7) for the layers of a network: an affine layer with weight variance
``sw2`` and bias variance ``sb2`` (fan-in or Delta-orthogonal weights) maps
``(q, m) -> (sw2 q + sb2, sw2 m + sb2)`` for q values and cross terms ``m = c sqrt(q1 q2)``;
a nonlinear layer applies the local maps above. Every function takes an activation name,
an :class:`~dksflax.shaping.activations.Activation` or a
:class:`~dksflax.shaping.activations.TransformedActivation`.
"""

from __future__ import annotations

import math

import numpy as np

from dksflax.errors import ShapingError
from dksflax.shaping import quadrature
from dksflax.shaping.activations import Activation, TransformedActivation, as_activation

ActivationLike = str | Activation | TransformedActivation


def _derivative_fn(phi: Activation, order: int):
  if order == 0:
    return phi.fn
  if order == 1:
    return phi.d1
  if order == 2:
    return phi.d2
  raise ValueError(f"derivative order {order!r} not available; use 0, 1 or 2")


def _check_order(phi: Activation, order: int) -> None:
  """DKS §8.1.2: the order-i formula needs ``phi^(i-1)`` continuous."""
  if phi.kink_order is not None and order > phi.kink_order:
    raise ShapingError(
        f"the order-{order} C-map derivative of {phi.name!r} cannot be computed: its "
        f"derivative of order {phi.kink_order} jumps at {list(phi.kinks)}, so the formula "
        f"of DKS §8.1.2 does not apply (at c = 1 the true value is infinite, e.g. C''(1) "
        f"of ReLU); use an activation whose first {order - 1} derivative(s) are "
        f"continuous")


def local_q_map(activation: ActivationLike, q: float | np.ndarray = 1.0) -> float | np.ndarray:
  """Local Q map ``Q(q) = E[phi(sqrt(q) z)^2]`` (DKS Eq. 5).

  Args:
    activation: name, Activation or TransformedActivation.
    q: input q value(s), > 0. (Default: 1)

  Returns:
    ``Q(q)``, shaped like ``q``.
  """
  phi = as_activation(activation)
  f = lambda x: phi.fn(x)**2
  return _map_over(lambda qq: quadrature.gaussian_expectation(f, qq, kinks=phi.kinks), q)


def local_q_slope(activation: ActivationLike,
                  q: float | np.ndarray = 1.0) -> float | np.ndarray:
  """``Q'(q) = q^(-1/2) E[phi(sqrt(q) z) phi'(sqrt(q) z) z]`` (DKS §8.1.1).

  Args:
    activation: name, Activation or TransformedActivation.
    q: input q value(s), > 0. (Default: 1)

  Returns:
    ``Q'(q)``, shaped like ``q``.
  """
  phi = as_activation(activation)

  def one(qq: float) -> float:
    # With u = sqrt(q) z: E[phi(u) phi'(u) u] / q.
    f = lambda u: phi.fn(u) * phi.d1(u) * u
    return quadrature.gaussian_expectation(f, qq, kinks=phi.kinks) / qq

  return _map_over(one, q)


def gamma_map(activation: ActivationLike, c: float | np.ndarray, q1: float = 1.0,
              q2: float = 1.0, *, order: int = 0) -> float | np.ndarray:
  """``Gamma_{phi^(order)}(c, q1, q2)`` of DKS Eq. (10) (not normalised by Q).

  Args:
    activation: name, Activation or TransformedActivation.
    c: correlation(s) in [-1, 1].
    q1: first q value. (Default: 1)
    q2: second q value. (Default: 1)
    order: which derivative of ``phi`` to use (0, 1, 2). (Default: 0)

  Returns:
    The expectation(s), shaped like ``c``.
  """
  phi = as_activation(activation)
  h = _derivative_fn(phi, order)
  return quadrature.correlated_gaussian_expectation(h, h, c, q1, q2, kinks_f=phi.kinks,
                                                    kinks_g=phi.kinks)


def local_c_map(activation: ActivationLike, c: float | np.ndarray, q1: float = 1.0,
                q2: float = 1.0) -> float | np.ndarray:
  """Local C map ``C(c; q1, q2)`` (DKS Eq. 7).

  Args:
    activation: name, Activation or TransformedActivation.
    c: input c value(s) in [-1, 1].
    q1: first input q value. (Default: 1)
    q2: second input q value. (Default: 1)

  Returns:
    The output c value(s), shaped like ``c``.
  """
  return local_c_map_derivative(activation, c, q1, q2, order=0)


def local_c_map_derivative(activation: ActivationLike, c: float | np.ndarray,
                           q1: float = 1.0, q2: float = 1.0, *,
                           order: int = 1) -> float | np.ndarray:
  """``d^order C / dc^order`` at ``c`` (DKS §8.1.2).

  Args:
    activation: name, Activation or TransformedActivation.
    c: input c value(s) in [-1, 1].
    q1: first input q value. (Default: 1)
    q2: second input q value. (Default: 1)
    order: 0 (the map itself), 1 or 2. (Default: 1)

  Returns:
    The derivative(s), shaped like ``c``.

  Raises:
    ShapingError: the activation's derivative of order ``order - 1`` is discontinuous.
  """
  phi = as_activation(activation)
  _check_order(phi, order)
  norm = math.sqrt(float(local_q_map(phi, q1)) * float(local_q_map(phi, q2)))
  if norm == 0.0:
    raise ShapingError(f"activation {phi.name!r} has Q(q) = 0: its C map is undefined")
  scale = (q1 * q2)**(order / 2.0)
  return scale * gamma_map(phi, c, q1, q2, order=order) / norm


def local_c_slope(activation: ActivationLike, c: float = 1.0, q1: float = 1.0,
                  q2: float = 1.0) -> float | np.ndarray:
  """``C'(c)``; at ``c = 1``, ``q = 1`` this is ``E[phi'(z)^2] / Q(1)`` (DKS §18.4 ii).

  Args:
    activation: name, Activation or TransformedActivation.
    c: input c value(s). (Default: 1)
    q1: first input q value. (Default: 1)
    q2: second input q value. (Default: 1)

  Returns:
    The slope(s), shaped like ``c``.
  """
  return local_c_map_derivative(activation, c, q1, q2, order=1)


def local_c_curvature(activation: ActivationLike, c: float = 1.0, q1: float = 1.0,
                      q2: float = 1.0) -> float | np.ndarray:
  """``C''(c)``; at ``c = 1``, ``q = 1``: ``E[phi''(z)^2] / Q(1)`` (TAT Eq. 16).

  Args:
    activation: name, Activation or TransformedActivation (``phi'`` continuous).
    c: input c value(s). (Default: 1)
    q1: first input q value. (Default: 1)
    q2: second input q value. (Default: 1)

  Returns:
    The curvature(s), shaped like ``c``.

  Raises:
    ShapingError: ``phi'`` jumps (ReLU, SELU): the curvature is infinite at ``c = 1``.
  """
  return local_c_map_derivative(activation, c, q1, q2, order=2)


def local_c0(activation: ActivationLike, q1: float = 1.0, q2: float = 1.0) -> float:
  """``C(0; q1, q2) = E[phi(sqrt(q1) z)] E[phi(sqrt(q2) z)] / sqrt(Q(q1) Q(q2))`` (DKS Eq. 14).

  Args:
    activation: name, Activation or TransformedActivation.
    q1: first input q value. (Default: 1)
    q2: second input q value. (Default: 1)

  Returns:
    ``C(0)`` as a float.
  """
  return float(local_c_map(activation, 0.0, q1, q2))


# ---------------------------------------------------------------------------------------
# Extended maps for layers (q1, q2, c) -> (q1', q2', c').


def affine_qc_map(q1: float, q2: float, c: float | np.ndarray, *, weight_var: float = 1.0,
                  bias_var: float = 0.0) -> tuple[float, float, float | np.ndarray]:
  """Extended maps of an affine layer (DKS §7.3; Poole et al. 2016 Eq. 1-2).

  Args:
    q1: first input q value.
    q2: second input q value.
    c: input c value(s).
    weight_var: ``sigma_w^2``, the weight variance times fan-in. (Default: 1)
    bias_var: ``sigma_b^2``, the bias variance. (Default: 0)

  Returns:
    ``(q1', q2', c')`` with ``q' = sw2 q + sb2`` and ``m' = sw2 m + sb2``.

  Raises:
    ValueError: a negative variance or a non-positive q value.
  """
  if weight_var < 0 or bias_var < 0:
    raise ValueError(f"weight_var={weight_var!r} and bias_var={bias_var!r} must be >= 0")
  if not (q1 > 0 and q2 > 0):
    raise ValueError(f"q values must be positive, got q1={q1!r}, q2={q2!r}")
  o1, o2 = weight_var * q1 + bias_var, weight_var * q2 + bias_var
  if o1 <= 0 or o2 <= 0:
    raise ValueError("weight_var and bias_var are both 0: the layer outputs zeros")
  m = weight_var * np.asarray(c, dtype=np.float64) * math.sqrt(q1 * q2) + bias_var
  c_out = np.clip(m / math.sqrt(o1 * o2), -1.0, 1.0)
  return o1, o2, float(c_out) if c_out.ndim == 0 else c_out


def nonlinear_qc_map(activation: ActivationLike, q1: float, q2: float,
                     c: float | np.ndarray) -> tuple[float, float, float | np.ndarray]:
  """Extended maps of an isolated nonlinear layer (DKS §7.3).

  Args:
    activation: name, Activation or TransformedActivation.
    q1: first input q value.
    q2: second input q value.
    c: input c value(s).

  Returns:
    ``(Q(q1), Q(q2), C(c; q1, q2))``.
  """
  phi = as_activation(activation)
  return (float(local_q_map(phi, q1)), float(local_q_map(phi, q2)),
          local_c_map(phi, c, q1, q2))


def combined_layer_qc_map(activation: ActivationLike, q1: float, q2: float,
                          c: float | np.ndarray, *, weight_var: float = 1.0,
                          bias_var: float = 0.0) -> tuple[float, float, float | np.ndarray]:
  """A combined layer (affine, then ``phi``): the maps of Poole et al. (2016), DKS §6.

  Args:
    activation: name, Activation or TransformedActivation.
    q1: first input q value.
    q2: second input q value.
    c: input c value(s).
    weight_var: ``sigma_w^2``. (Default: 1)
    bias_var: ``sigma_b^2``. (Default: 0)

  Returns:
    ``(q1', q2', c')``.
  """
  a1, a2, ac = affine_qc_map(q1, q2, c, weight_var=weight_var, bias_var=bias_var)
  return nonlinear_qc_map(activation, a1, a2, ac)


def _map_over(fn, x):
  arr = np.asarray(x, dtype=np.float64)
  if arr.ndim == 0:
    return fn(float(arr))
  return np.array([fn(float(v)) for v in arr.ravel()]).reshape(arr.shape)
