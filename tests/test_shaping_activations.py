"""Activation registry: derivatives, metadata, transformed activations, JAX twins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dksflax.errors import ConfigError
from dksflax.shaping import activations as acts

REQUIRED = ("relu", "leaky_relu", "tanh", "softplus", "swish", "silu", "gelu", "elu", "selu",
            "sigmoid", "erf", "sin", "identity")
NAMES = acts.activation_names()


def test_registry_has_the_required_names():
  assert set(REQUIRED) <= set(NAMES)
  assert len(NAMES) >= 12


def test_equality_is_by_name_and_parameters():
  assert acts.get_activation("gelu") == acts.get_activation("gelu")
  assert acts.get_activation("leaky_relu", negative_slope=0.2) != acts.get_activation(
      "leaky_relu", negative_slope=0.3)
  assert len({acts.get_activation("elu"), acts.get_activation("elu", alpha=1.0)}) == 1


def test_unknown_name_lists_known_names():
  with pytest.raises(ConfigError, match="unknown activation 'rleu'.*leaky_relu.*tanh"):
    acts.get_activation("rleu")


def test_unknown_or_bad_parameter_is_rejected():
  with pytest.raises(ConfigError, match="negative_slope"):
    acts.get_activation("leaky_relu", slope=0.1)
  with pytest.raises(ConfigError, match="no parameters"):
    acts.get_activation("tanh", alpha=2.0)
  with pytest.raises(ConfigError, match="finite"):
    acts.get_activation("elu", alpha=float("inf"))


def _grid_off_kinks(phi):
  x = np.linspace(-4.0, 4.0, 161) + 0.0123
  for k in phi.kinks:
    x = x[np.abs(x - k) > 1e-3]
  return x


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_finite_differences(name):
  phi = acts.get_activation(name)
  x = _grid_off_kinks(phi)
  h = 1e-5
  fd1 = (phi.fn(x + h) - phi.fn(x - h)) / (2 * h)
  fd2 = (phi.d1(x + h) - phi.d1(x - h)) / (2 * h)
  np.testing.assert_allclose(phi.d1(x), fd1, rtol=1e-7, atol=1e-8)
  np.testing.assert_allclose(phi.d2(x), fd2, rtol=1e-6, atol=1e-7)


def test_known_values():
  x = np.array([-2.0, -0.5, 0.0, 0.7, 3.0])
  np.testing.assert_allclose(acts.get_activation("relu")(x), [0, 0, 0, 0.7, 3.0])
  np.testing.assert_allclose(acts.get_activation("leaky_relu", negative_slope=0.2)(x),
                             [-0.4, -0.1, 0, 0.7, 3.0])
  np.testing.assert_allclose(acts.get_activation("softplus")(x), np.log1p(np.exp(x)),
                             rtol=1e-15)
  np.testing.assert_allclose(acts.get_activation("swish")(x), x / (1 + np.exp(-x)), rtol=1e-15)
  selu = acts.get_activation("selu")(x)
  assert selu[-1] == pytest.approx(1.0507009873554805 * 3.0)
  assert selu[0] == pytest.approx(1.0507009873554805 * 1.6732632423543772 * math.expm1(-2))
  # GELU is the tanh approximation (jax.nn.gelu's default); gelu_exact is x Phi(x).
  assert acts.get_activation("gelu")(np.array([1.0]))[0] == pytest.approx(0.8411919906082768)
  assert acts.get_activation("gelu_exact")(np.array([1.0]))[0] == pytest.approx(
      0.8413447460685429)


@pytest.mark.parametrize("name,params", [(n, {}) for n in NAMES] + [
    ("leaky_relu", {"negative_slope": -1.0}), ("leaky_relu", {"negative_slope": 1.0}),
    ("elu", {"alpha": 0.5})])
def test_metadata_is_true(name, params):
  phi = acts.get_activation(name, **params)
  x = np.linspace(-3, 3, 121)
  if phi.name == "leaky_relu" and phi.params_dict["negative_slope"] == 1.0:
    assert phi.odd and not phi.kinks      # the identity
  if phi.odd:
    np.testing.assert_allclose(phi.fn(-x) - phi.fn(np.zeros(1)),
                               -(phi.fn(x) - phi.fn(np.zeros(1))), atol=1e-14)
  else:
    assert not np.allclose(phi.fn(-x) - phi.fn(np.zeros(1)), -(phi.fn(x) - phi.fn(np.zeros(1))))
  if phi.homogeneous_degree is not None:
    k = phi.homogeneous_degree
    np.testing.assert_allclose(phi.fn(2.5 * x), 2.5**k * phi.fn(x), rtol=1e-14, atol=1e-14)
  else:
    assert not np.allclose(phi.fn(2.5 * x), 2.5 * phi.fn(x))
  # A kink of order k: the (k)-th derivative jumps there, lower ones do not.
  derivs = (phi.fn, phi.d1, phi.d2)
  for kink in phi.kinks:
    eps = 1e-9
    jumps = [abs(float(d(np.array([kink + eps]))[0] - d(np.array([kink - eps]))[0])) > 1e-6
             for d in derivs]
    assert jumps.index(True) == phi.kink_order
  if not phi.kinks:
    assert phi.kink_order is None


def test_transformed_activation_and_its_derivatives():
  t = acts.TransformedActivation("elu", (("alpha", 1.0),), alpha=0.4, beta=-0.3, gamma=2.0,
                                 delta=0.1)
  x = np.linspace(-3, 3, 13) + 0.01
  base = acts.get_activation("elu")
  np.testing.assert_allclose(t(x), 2.0 * (base(0.4 * x - 0.3) + 0.1))
  a = t.as_activation()
  np.testing.assert_allclose(a.fn(x), t(x))
  h = 1e-6
  np.testing.assert_allclose(a.d1(x), (a.fn(x + h) - a.fn(x - h)) / (2 * h), rtol=1e-6)
  assert a.kinks == pytest.approx((0.75,))      # (0 - beta) / alpha
  assert acts.as_activation("tanh").name == "tanh"
  with pytest.raises(ConfigError, match="expected an activation"):
    acts.as_activation(3.0)


# ---------------------------------------------------------------------------------------
# JAX twins.

jax = pytest.importorskip("jax")
jnp = jax.numpy
from dksflax.models import activations as jacts  # noqa: E402


def test_both_registries_have_the_same_names():
  assert jacts.activation_names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_numpy_and_jax_agree(name):
  x = np.linspace(-6, 6, 241, dtype=np.float32)
  params = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.7}}.get(name, {})
  ref = acts.get_activation(name, **params)(x.astype(np.float64))
  got = np.asarray(jacts.get_jax_activation(name, **params)(jnp.asarray(x)), np.float64)
  np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6)


def test_jax_unknown_name_and_param():
  with pytest.raises(ConfigError, match="known activations"):
    jacts.get_jax_activation("nope")
  with pytest.raises(ConfigError, match="negative_slope"):
    jacts.get_jax_activation("leaky_relu", slope=0.3)


def test_transformed_activation_keeps_dtype_and_matches_numpy():
  from dksflax.shaping.dks import DKSParams
  from dksflax.shaping.tat import TATLReLUParams
  dks_params = DKSParams(0.090438, -0.56011, 14.9025, 0.50500, activation="tanh")
  tat_params = TATLReLUParams(negative_slope=0.57, output_scale=math.sqrt(2 / (1 + 0.57**2)))
  x = np.linspace(-5, 5, 101)
  for params, ref in ((dks_params, dks_params.transformed()(x)),
                      (tat_params, tat_params.transformed()(x))):
    fn = jax.jit(jacts.transformed_activation(params))
    assert fn(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16
    got = fn(jnp.asarray(x, jnp.float32))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=1e-5, atol=1e-5)
  assert jacts.transformed_activation(dks_params.transformed())(
      jnp.ones(3, jnp.bfloat16)).dtype == jnp.bfloat16
  with pytest.raises(ConfigError, match="expected a TransformedActivation"):
    jacts.transformed_activation({"alpha": 1.0})
