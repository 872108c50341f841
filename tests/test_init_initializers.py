"""Property tests of the pure initialisers (DKS §4) and the registry."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.errors import ConfigError
from dksflax.init import initializers as inits
from dksflax.init.registry import INITIALIZERS, get_initializer, initializer_names


def _np(x):
  return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("k,m", [(8, 8), (4, 12), (16, 6), (5, 5)])
def test_suo_norm_ratio_and_orthogonality(k, m):
  """DKS §4.1-4.2: ||x K|| / ||x|| = sqrt(out/in) when out >= in; orthonormal otherwise."""
  kernel = _np(inits.orthogonal_delta()(jax.random.key(1), (k, m)))
  rng = np.random.default_rng(0)
  x = rng.standard_normal((20, k))
  ratio = np.linalg.norm(x @ kernel, axis=1) / np.linalg.norm(x, axis=1)
  if m >= k:
    np.testing.assert_allclose(ratio, math.sqrt(m / k), rtol=1e-5)
    np.testing.assert_allclose(kernel @ kernel.T, (m / k) * np.eye(k), atol=1e-5)
  else:
    # Columns orthonormal: K^T K = I_out; the ratio is at most 1.
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(m), atol=1e-5)
    assert np.all(ratio <= 1 + 1e-6)


def test_suo_scale_is_a_variance_multiplier():
  kernel = _np(inits.orthogonal_delta(scale=2.0)(jax.random.key(2), (6, 6)))
  np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(6), atol=1e-5)


@pytest.mark.parametrize("name", ["delta", "orthogonal_delta"])
def test_delta_off_centre_taps_are_zero(name):
  shape = (3, 5, 4, 6)
  kernel = _np(get_initializer(name)(jax.random.key(3), shape))
  mask = np.ones(shape, bool)
  mask[1, 2] = False
  assert np.all(kernel[mask] == 0.0)
  assert np.count_nonzero(kernel[1, 2]) == 4 * 6


def test_orthogonal_delta_centre_is_suo():
  kernel = _np(inits.orthogonal_delta()(jax.random.key(4), (3, 3, 4, 8)))
  centre = kernel[1, 1]
  np.testing.assert_allclose(centre @ centre.T, 2.0 * np.eye(4), atol=1e-5)


def test_even_filter_has_no_centre_tap():
  with pytest.raises(ValueError, match="odd filter sizes"):
    inits.delta()(jax.random.key(0), (2, 2, 3, 3))


def test_suo_is_direction_invariant():
  """DKS §4.2: W x for a fixed x is uniformly distributed on the sphere (Haar measure).

  The first coordinate of W x / ||x|| for a square Haar W is distributed as u_1 with u
  uniform on S^{n-1}: mean 0, variance 1/n, E[u_1^4] = 3 / (n (n + 2)).
  """
  n, samples = 4, 4000
  keys = jax.random.split(jax.random.key(5), samples)
  x = np.array([1.0, 2.0, -1.0, 0.5])
  ws = jax.vmap(lambda k: inits.suo_matrix(k, n, n))(keys)
  y = _np(ws @ jnp.asarray(x, jnp.float32))[:, 0] / np.linalg.norm(x)
  se2 = math.sqrt(3 / (n * (n + 2)) / samples)
  assert abs(y.mean()) < 4 * math.sqrt(1 / n / samples)
  assert abs((y ** 2).mean() - 1 / n) < 4 * se2


@pytest.mark.parametrize("shape", [(64, 32), (3, 3, 16, 8)])
def test_fan_in_gaussian_variance(shape):
  kernel = _np(inits.fan_in_gaussian(scale=2.0)(jax.random.key(6), shape))
  fan_in = int(np.prod(shape[:-1]))
  n = kernel.size
  # Sample variance of n Gaussians: relative standard error sqrt(2/n).
  assert abs(kernel.var() * fan_in / 2.0 - 1.0) < 4 * math.sqrt(2 / n)
  assert abs(kernel.mean()) < 4 * math.sqrt(2.0 / fan_in / n)


def test_gaussian_delta_variance_uses_channel_fan_in():
  kernel = _np(inits.delta(scale=1.0)(jax.random.key(7), (3, 3, 64, 64)))
  centre = kernel[1, 1]
  assert abs(centre.var() * 64 - 1.0) < 4 * math.sqrt(2 / centre.size)


@pytest.mark.parametrize("shape", [(8, 8), (12, 5), (3, 3, 6, 6)])
def test_orthogonal_is_orthogonal(shape):
  kernel = _np(inits.orthogonal()(jax.random.key(8), shape)).reshape(-1, shape[-1])
  k, m = kernel.shape
  gram = kernel.T @ kernel if m <= k else kernel @ kernel.T
  np.testing.assert_allclose(gram, np.eye(min(k, m)), atol=1e-5)


def test_looks_linear_relu_mlp_is_linear():
  """A ReLU MLP with looks-linear weights computes f(x) = A x at init (Balduzzi et al.)."""

  class MLP(nn.Module):

    @nn.compact
    def __call__(self, x):
      x = nn.Dense(16, kernel_init=inits.looks_linear(mirror_input=False))(x)
      for _ in range(3):
        x = nn.Dense(16, kernel_init=inits.looks_linear())(jax.nn.relu(x))
      return nn.Dense(3, kernel_init=inits.looks_linear(mirror_output=False))(jax.nn.relu(x))

  model = MLP()
  params = jax.jit(model.init)(jax.random.key(9), jnp.zeros((1, 5)))
  f = lambda x: model.apply(params, x)
  rng = np.random.default_rng(1)
  x1, x2 = (jnp.asarray(rng.standard_normal((4, 5)), jnp.float32) for _ in range(2))
  a = _np(f(jnp.eye(5)))  # rows: images of the basis vectors
  np.testing.assert_allclose(_np(f(x1)), _np(x1) @ a, atol=1e-5)
  np.testing.assert_allclose(_np(f(x1 - 2.0 * x2)), _np(f(x1)) - 2.0 * _np(f(x2)), atol=1e-5)
  # And the linear map is the product of the base (SUO) blocks: norms are preserved
  # through the hidden layers (out 8 >= in 5, then square 8 x 8, then 8 -> 3).
  assert np.all(np.isfinite(a)) and np.linalg.matrix_rank(a) == 3


def test_looks_linear_structure():
  kernel = _np(inits.looks_linear()(jax.random.key(10), (6, 4)))
  b = kernel[:3, :2]
  np.testing.assert_array_equal(kernel, np.block([[b, -b], [-b, b]]))
  with pytest.raises(ValueError, match="must be even"):
    inits.looks_linear()(jax.random.key(0), (5, 4))


def test_registry_covers_every_name_and_rejects_unknown():
  for name in initializer_names():
    init = get_initializer(name)
    shape = (3, 3, 4, 6) if name != "gaussian_bias" else (6,)
    arr = init(jax.random.key(11), shape, jnp.float32)
    assert arr.shape == shape and arr.dtype == jnp.float32
  assert set(initializer_names()) == set(INITIALIZERS)
  with pytest.raises(ConfigError, match="orthogonal_delta"):
    get_initializer("xavier")
  with pytest.raises(ConfigError, match="accepts: scale"):
    get_initializer("delta", gain=2.0)


def test_initializers_honour_dtype_and_reject_bad_scale():
  arr = inits.orthogonal_delta()(jax.random.key(12), (4, 4), jnp.bfloat16)
  assert arr.dtype == jnp.bfloat16
  with pytest.raises(ValueError, match="variance multiplier"):
    inits.fan_in_gaussian(scale=-1.0)


def test_eoc_initializers_match_the_solver():
  eoc_mod = pytest.importorskip("dksflax.shaping.eoc")
  from dksflax.init.registry import eoc_initializers
  got = eoc_initializers("tanh", q_star=1.0, weight_init="fan_in_gaussian")
  ref = eoc_mod.eoc("tanh", q_star=1.0)
  assert got.weight_var == pytest.approx(float(ref.weight_var))
  assert got.bias_var == pytest.approx(float(ref.bias_var))
  kernel = _np(got.kernel_init(jax.random.key(13), (256, 256)))
  assert abs(kernel.var() * 256 / got.weight_var - 1.0) < 4 * math.sqrt(2 / kernel.size)
  with pytest.raises(ConfigError, match="weight_init"):
    eoc_initializers("tanh", weight_init="looks_linear")
