"""Gaussian quadrature against closed forms and adaptive integration (DKS §22.2)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import integrate, special

from dksflax.shaping import quadrature as quad


def _relu(x):
  return np.maximum(x, 0.0)


def _adaptive(h, points=()):
  """E[h(z)], z ~ N(0, 1), by scipy.integrate.quad (independent reference)."""
  f = lambda z: h(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
  edges = [-40.0, *sorted(points), 40.0]
  return sum(integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-13, limit=400)[0]
             for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("q", [0.3, 1.0, 4.0])
def test_moments_of_gaussian(q):
  assert quad.gaussian_expectation(lambda x: x * x, q) == pytest.approx(q, rel=1e-13)
  assert quad.gaussian_expectation(lambda x: x**4, q) == pytest.approx(3 * q * q, rel=1e-13)
  # Moment generating function E[exp(a u)] = exp(a^2 q / 2).
  assert quad.gaussian_expectation(lambda x: np.exp(0.7 * x), q) == pytest.approx(
      math.exp(0.49 * q / 2), rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 1.0, 3.0])
def test_relu_moments_closed_form(q):
  # E[relu(u)] = sqrt(q / 2 pi), E[relu(u)^2] = q / 2.
  assert quad.gaussian_expectation(_relu, q, kinks=[0.0]) == pytest.approx(
      math.sqrt(q / (2 * math.pi)), rel=1e-13)
  assert quad.gaussian_expectation(lambda x: _relu(x)**2, q, kinks=[0.0]) == pytest.approx(
      q / 2, rel=1e-13)


@pytest.mark.parametrize("t", [-2.3, -0.4, 0.0, 0.77, 3.1])
def test_shifted_relu_closed_form(t):
  # E[relu(z + t)] = t Phi(t) + phi(t): the kink moves to z = -t and is split there.
  expected = t * special.ndtr(t) + math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
  got = quad.gaussian_expectation(lambda z: _relu(z + t), kinks=[-t])
  assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("scale,shift", [(0.3, 0.2), (1.0, -0.5), (3.0, 0.2)])
def test_smooth_activation_to_1e10(scale, shift):
  h = lambda z: np.tanh(scale * z + shift)**2
  ref = _adaptive(lambda z: math.tanh(scale * z + shift)**2, points=[-shift / scale])
  assert abs(quad.gaussian_expectation(h) - ref) < 1e-12


def test_elu_kink_split_matches_adaptive():
  elu = lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
  for shift in (-1.3, 0.4):
    ref = _adaptive(lambda z: float(elu(np.array(0.6 * z + shift))**2),
                    points=[-shift / 0.6])
    got = quad.gaussian_expectation(lambda z: elu(0.6 * z + shift)**2, kinks=[-shift / 0.6])
    assert abs(got - ref) < 1e-12


def _arccos_relu(c):
  c = np.asarray(c, dtype=np.float64)
  return (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c) / (2 * np.pi)


def test_relu_pair_is_the_arccos_kernel_including_endpoints():
  c = np.array([-1.0, -0.999, -0.6, 0.0, 0.25, 0.9, 0.9999, 1.0])
  got = quad.correlated_gaussian_expectation(_relu, _relu, c, kinks_f=[0], kinks_g=[0])
  assert got.shape == c.shape
  np.testing.assert_allclose(got, _arccos_relu(c), rtol=0, atol=2e-14)
  # Unequal variances scale by sqrt(q1 q2) (degree-1 homogeneity).
  got = quad.correlated_gaussian_expectation(_relu, _relu, 0.3, 2.0, 0.5, kinks_f=[0],
                                             kinks_g=[0])
  assert got == pytest.approx(float(_arccos_relu(0.3)), rel=1e-12)


@pytest.mark.parametrize("q1,q2", [(1.0, 1.0), (2.0, 0.5), (0.1, 3.0)])
def test_erf_pair_closed_form(q1, q2):
  # Williams (1997): E[erf(u) erf(v)] = 2/pi arcsin(2 m / sqrt((1 + 2 q1)(1 + 2 q2))).
  c = np.linspace(-1, 1, 9)
  m = c * math.sqrt(q1 * q2)
  expected = 2 / np.pi * np.arcsin(2 * m / np.sqrt((1 + 2 * q1) * (1 + 2 * q2)))
  got = quad.correlated_gaussian_expectation(special.erf, special.erf, c, q1, q2)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)


def test_polynomial_pairs():
  c = np.array([-0.8, 0.1, 0.6])
  q1, q2 = 1.7, 0.4
  got = quad.correlated_gaussian_expectation(lambda u: u, lambda v: v, c, q1, q2)
  np.testing.assert_allclose(got, c * math.sqrt(q1 * q2), rtol=1e-13)
  # Isserlis: E[u^2 v^2] = q1 q2 (1 + 2 c^2).
  got = quad.correlated_gaussian_expectation(np.square, np.square, c, q1, q2)
  np.testing.assert_allclose(got, q1 * q2 * (1 + 2 * c * c), rtol=1e-12)


def test_mixed_kinked_and_smooth_pair_matches_dblquad():
  f = lambda u: _relu(u - 0.3)
  g = np.tanh
  c = 0.55
  s = math.sqrt(1 - c * c)
  dens = lambda x, y: math.exp(-(x * x + y * y) / 2) / (2 * math.pi)
  ref = integrate.dblquad(lambda y, x: max(x - 0.3, 0.0) * math.tanh(c * x + s * y) * dens(x, y),
                          0.3, 12, -12, 12, epsabs=1e-13, epsrel=1e-12)[0]
  got = quad.correlated_gaussian_expectation(f, g, c, kinks_f=[0.3])
  assert got == pytest.approx(ref, rel=1e-9)


def test_rejects_bad_inputs():
  with pytest.raises(ValueError, match="c="):
    quad.correlated_gaussian_expectation(np.tanh, np.tanh, 1.2)
  with pytest.raises(ValueError, match="q1"):
    quad.correlated_gaussian_expectation(np.tanh, np.tanh, 0.5, q1=0.0)
  with pytest.raises(ValueError, match="variance"):
    quad.gaussian_expectation(np.tanh, -1.0)
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    quad.correlated_gaussian_expectation(np.tanh, np.tanh, float("nan"))


def test_rule_is_cheap_and_integrates_one():
  start = time.process_time()
  for shift in np.linspace(-3, 3, 200):
    z, w = quad.standard_normal_rule([shift])
  assert time.process_time() - start < 0.5
  assert w.sum() == pytest.approx(1.0, abs=1e-14)
  z, w = quad.standard_normal_rule([-1.0, 2.0])
  assert w.sum() == pytest.approx(1.0, abs=1e-14)
  assert np.all(np.diff(z) > 0)


def test_pair_with_two_kinks_matches_semi_analytic_reference():
  """g = clip(v, -0.5, 0.7) has two kinks (the general inner-split path)."""
  lo, hi, c, q1, q2 = -0.5, 0.7, 0.4, 1.2, 0.8
  g = lambda v: np.clip(v, lo, hi)
  s = math.sqrt(1 - c * c)

  def inner(x):   # E[clip(Y, lo, hi)], Y ~ N(m, sd^2), in closed form
    m, sd = math.sqrt(q2) * c * x, math.sqrt(q2) * s
    a, b = (lo - m) / sd, (hi - m) / sd
    pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    return (lo * special.ndtr(a) + hi * special.ndtr(-b) + m * (special.ndtr(b) - special.ndtr(a))
            + sd * (pdf(a) - pdf(b)))

  f = lambda x: max(math.sqrt(q1) * x, 0.0) * inner(x) * math.exp(-x * x / 2) / math.sqrt(
      2 * math.pi)
  ref = integrate.quad(f, 0.0, 40.0, epsabs=1e-15, epsrel=1e-13, limit=400)[0]
  got = quad.correlated_gaussian_expectation(_relu, g, c, q1, q2, kinks_f=[0.0],
                                             kinks_g=[lo, hi])
  assert got == pytest.approx(ref, rel=1e-11)
