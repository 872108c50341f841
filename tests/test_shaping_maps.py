"""Local/extended Q and C maps vs closed forms, finite differences and Monte-Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dksflax.errors import ShapingError
from dksflax.shaping import maps
from dksflax.shaping.activations import TransformedActivation, get_activation

# The DKS §18.7 tanh transformation (100-layer net, zeta = 1.5): a realistic shaped phi.
DKS_TANH = TransformedActivation("tanh", (), 0.090438, -0.56011, 14.9025, 0.50500)


def _relu_c(c):
  """DKS Eq. (15): the normalised arc-cosine kernel of ReLU."""
  c = np.asarray(c, dtype=np.float64)
  return (np.sqrt(1 - c * c) + (np.pi - np.arccos(c)) * c) / np.pi


def _lrelu_c(c, s):
  """TAT Eq. (9), written from Lemma 1 (not the implementation's form)."""
  relu_part = (1 - s)**2 * _relu_c(c) / 2          # E[relu(u) relu(v)]-type term
  return (relu_part + s * c) / ((1 + s * s) / 2)


@pytest.mark.parametrize("q1,q2", [(1.0, 1.0), (0.4, 2.5)])
def test_relu_c_map_is_arccos_kernel(q1, q2):
  c = np.array([-1.0, -0.5, 0.0, 0.3, 0.8, 0.99, 1.0])
  np.testing.assert_allclose(maps.local_c_map("relu", c, q1, q2), _relu_c(c), atol=1e-13)
  assert maps.local_q_map("relu", 3.0) == pytest.approx(1.5, rel=1e-13)
  assert maps.local_c0("relu") == pytest.approx(1 / math.pi, rel=1e-13)
  assert maps.local_c_slope("relu") == pytest.approx(1.0, rel=1e-13)


@pytest.mark.parametrize("s", [0.0, 0.2, 0.57, 0.9])
def test_leaky_relu_c_map_matches_tat_eq9(s):
  from dksflax.shaping.tat import leaky_relu_c_map
  act = get_activation("leaky_relu", negative_slope=s)
  c = np.linspace(-1, 1, 11)
  np.testing.assert_allclose(maps.local_c_map(act, c), _lrelu_c(c, s), atol=1e-13)
  np.testing.assert_allclose(leaky_relu_c_map(c, s), _lrelu_c(c, s), atol=1e-14)
  # Q(q) = (1 + s^2) q / 2.
  assert maps.local_q_map(act, 2.0) == pytest.approx(1 + s * s, rel=1e-13)


@pytest.mark.parametrize("q", [0.5, 1.0, 2.0])
def test_erf_maps_closed_form(q):
  c = np.linspace(-1, 1, 7)
  q_expected = 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))
  assert maps.local_q_map("erf", q) == pytest.approx(q_expected, rel=1e-13)
  expected = 2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q)) / q_expected
  np.testing.assert_allclose(maps.local_c_map("erf", c, q, q), expected, atol=1e-13)
  # C'(c) = d/dc of the closed form.
  a = 2 * q / (1 + 2 * q)
  slope = 2 / np.pi * a / np.sqrt(1 - (a * c[1:-1])**2) / q_expected
  np.testing.assert_allclose(maps.local_c_slope("erf", c[1:-1], q, q), slope, rtol=1e-11)


@pytest.mark.parametrize("act", ["tanh", "softplus", "swish", "gelu", "elu", "selu", DKS_TANH,
                                 TransformedActivation("relu", (), 0.39, 1.0, 2.6, -1.0)])
def test_q_slope_matches_finite_difference(act):
  for q in (0.7, 1.0, 1.8):
    h = 1e-5
    fd = (maps.local_q_map(act, q + h) - maps.local_q_map(act, q - h)) / (2 * h)
    assert maps.local_q_slope(act, q) == pytest.approx(fd, rel=1e-7)


@pytest.mark.parametrize("act", ["tanh", "softplus", "swish", "sin", DKS_TANH])
def test_c_map_derivatives_match_finite_differences(act):
  q1, q2 = 0.8, 1.3
  c = np.array([-0.6, 0.0, 0.45])
  h = 1e-5
  fd1 = (maps.local_c_map(act, c + h, q1, q2) - maps.local_c_map(act, c - h, q1, q2)) / (2 * h)
  np.testing.assert_allclose(maps.local_c_slope(act, c, q1, q2), fd1, rtol=1e-6, atol=1e-9)
  fd2 = (maps.local_c_slope(act, c + h, q1, q2) - maps.local_c_slope(act, c - h, q1, q2)) / (
      2 * h)
  np.testing.assert_allclose(maps.local_c_curvature(act, c, q1, q2), fd2, rtol=1e-5, atol=1e-8)
  # At c = 1 (one-sided, second order): C'(1) ~ (3 C(1) - 4 C(1-h) + C(1-2h)) / 2h.
  h = 1e-4
  vals = maps.local_c_map(act, np.array([1.0, 1 - h, 1 - 2 * h]), q1, q1)
  fd_end = (3 * vals[0] - 4 * vals[1] + vals[2]) / (2 * h)
  assert maps.local_c_slope(act, 1.0, q1, q1) == pytest.approx(fd_end, rel=1e-6)


@pytest.mark.parametrize("act", ["relu", "selu", "elu",
                                 TransformedActivation("relu", (), 0.39, 1.0, 2.6, -1.0)])
def test_kinked_c_slope_matches_finite_differences(act):
  # C'(c) = sqrt(q1 q2) E[phi'(u) phi'(v)] / sqrt(Q1 Q2) needs only phi continuous.
  q1, q2, h = 0.9, 1.4, 1e-5
  c = np.array([-0.5, 0.2, 0.7])
  fd = (maps.local_c_map(act, c + h, q1, q2) - maps.local_c_map(act, c - h, q1, q2)) / (2 * h)
  np.testing.assert_allclose(maps.local_c_slope(act, c, q1, q2), fd, rtol=1e-6, atol=1e-9)


def test_c_map_fixes_one_and_is_bounded():
  for act in ("tanh", "relu", "selu", "gelu", DKS_TANH):
    assert maps.local_c_map(act, 1.0) == pytest.approx(1.0, abs=1e-13)
    vals = maps.local_c_map(act, np.linspace(-1, 1, 9))
    assert np.all(np.abs(vals) <= 1 + 1e-12)


def test_curvature_of_kinked_activation_is_refused():
  with pytest.raises(ShapingError, match="DKS §8.1.2"):
    maps.local_c_curvature("relu")
  with pytest.raises(ShapingError, match="selu"):
    maps.local_c_curvature("selu")
  assert maps.local_c_curvature("elu") > 0   # ELU(alpha=1) has a continuous phi'.


@pytest.mark.parametrize("act,c", [("tanh", 0.3), ("relu", -0.4), ("selu", 0.75),
                                   ("softplus", 0.9), ("gelu", -0.9), (DKS_TANH, 0.5)])
def test_monte_carlo_agreement(act, c):
  """1e6 correlated samples (fixed seed): within 4 standard errors of the quadrature."""
  q1, q2 = 1.3, 0.6
  rng = np.random.default_rng(1234)
  x = rng.standard_normal(1_000_000)
  y = rng.standard_normal(1_000_000)
  u = math.sqrt(q1) * x
  v = math.sqrt(q2) * (c * x + math.sqrt(1 - c * c) * y)
  phi = act if isinstance(act, TransformedActivation) else get_activation(act)
  prod = phi(u) * phi(v)
  se = prod.std() / math.sqrt(prod.size)
  gamma = maps.gamma_map(act, c, q1, q2)
  assert abs(prod.mean() - gamma) < 4 * se
  sq = phi(u)**2
  assert abs(sq.mean() - maps.local_q_map(act, q1)) < 4 * sq.std() / math.sqrt(sq.size)


def test_affine_and_combined_layer_maps():
  q1, q2, c = 1.5, 0.5, 0.3
  o1, o2, oc = maps.affine_qc_map(q1, q2, c, weight_var=2.0, bias_var=0.1)
  assert (o1, o2) == pytest.approx((3.1, 1.1))
  assert oc == pytest.approx((2 * c * math.sqrt(q1 * q2) + 0.1) / math.sqrt(3.1 * 1.1))
  # He-initialised ReLU layer: q is preserved, c follows the arc-cosine kernel.
  r1, r2, rc = maps.combined_layer_qc_map("relu", 1.0, 1.0, np.array([0.0, 0.5]),
                                          weight_var=2.0)
  assert (r1, r2) == pytest.approx((1.0, 1.0), rel=1e-13)
  np.testing.assert_allclose(rc, _relu_c([0.0, 0.5]), atol=1e-13)
  with pytest.raises(ValueError, match="weight_var"):
    maps.affine_qc_map(1.0, 1.0, 0.0, weight_var=-1.0)


def test_transformed_activation_maps_equal_base_maps_rescaled():
  # Q_hat(1) = gamma^2 E[(phi(alpha z + beta) + delta)^2], computed two ways.
  t = DKS_TANH
  direct = maps.local_q_map(t, 1.0)
  z = np.random.default_rng(0).standard_normal(1_000_000)
  sq = t(z)**2
  assert abs(direct - sq.mean()) < 4 * sq.std() / math.sqrt(sq.size)
  assert direct == pytest.approx(1.0, abs=2e-4)   # the table's digits give Q(1) ~ 1
