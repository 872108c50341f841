"""Jacobian singular values (skip_connections_normalisation.txt §6.1) and their plot."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.diagnostics import jacobian_matrix, jacobian_singular_values, plot_singular_values
from dksflax.init import fan_in_gaussian, orthogonal_delta


def test_linear_map_jacobian_is_the_matrix():
  a = jax.random.normal(jax.random.key(0), (5, 3))
  jac = jacobian_matrix(lambda x: a @ x, jnp.ones(3))
  np.testing.assert_allclose(jac, np.asarray(a), rtol=1e-6)
  jac = jacobian_matrix(lambda x: (a @ x.reshape(3)).reshape(5, 1), jnp.ones((1, 3)))
  assert jac.shape == (5, 3)


def test_orthogonal_linear_layer_has_unit_singular_values():
  kernel = orthogonal_delta()(jax.random.key(1), (16, 16))
  sv = jacobian_singular_values(lambda x: x @ kernel, jnp.ones(16))
  np.testing.assert_allclose(sv, 1.0, atol=1e-5)
  # A conv with an Orthogonal Delta kernel acts as the same orthogonal map per location.
  conv_kernel = orthogonal_delta()(jax.random.key(2), (3, 3, 4, 4))
  conv = lambda x: jax.lax.conv_general_dilated(
      x[None], conv_kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  sv = jacobian_singular_values(conv, jnp.ones((4, 4, 4)))
  assert sv.size == 64
  np.testing.assert_allclose(sv, 1.0, atol=1e-5)


def test_skip_connection_shifts_singular_values_up(tmp_path):
  """Hypothesis 6.1: x + R(x) has a spectrum shifted up relative to the chain R(x).

  With He-initialised R(x) = W2 relu(W1 x), E||J_R||_F^2 / n = 1 while
  E||I + J_R||_F^2 / n = 2 (the cross term tr(J_R) has mean 0), so the mean squared
  singular value doubles and the median rises.
  """
  n, trials = 64, 3
  chain_sv, skip_sv = [], []
  for t in range(trials):
    k1, k2, kx = jax.random.split(jax.random.key(10 + t), 3)
    w1 = fan_in_gaussian(2.0)(k1, (n, n))
    w2 = fan_in_gaussian(1.0)(k2, (n, n))
    branch = lambda x, w1=w1, w2=w2: jax.nn.relu(x @ w1) @ w2
    x = jax.random.normal(kx, (n,))
    chain_sv.append(jacobian_singular_values(branch, x))
    skip_sv.append(jacobian_singular_values(lambda x, b=branch: x + b(x), x))
  chain_sv, skip_sv = np.concatenate(chain_sv), np.concatenate(skip_sv)
  assert abs(np.mean(chain_sv ** 2) - 1.0) < 0.2
  assert abs(np.mean(skip_sv ** 2) - 2.0) < 0.3
  assert np.median(skip_sv) > 1.2 * np.median(chain_sv)
  assert np.quantile(skip_sv, 0.1) > np.quantile(chain_sv, 0.1)
  out = plot_singular_values({"chain R(x)": chain_sv, "skip x + R(x)": skip_sv},
                             str(tmp_path / "sv.png"), title="Hypothesis 6.1")
  assert (tmp_path / "sv.png").stat().st_size > 1000 and out.endswith("sv.png")
  with pytest.raises(ValueError, match="at least one"):
    plot_singular_values({}, str(tmp_path / "none.png"))


def test_non_finite_jacobian_is_an_error():
  with pytest.raises(ValueError, match="non-finite"):
    jacobian_singular_values(lambda x: jnp.sqrt(x), jnp.zeros(3))
