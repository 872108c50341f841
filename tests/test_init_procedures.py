"""Model-level initialisation procedures: LSUV, Fixup, RISOTTO (with tiny test modules)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.errors import ConfigError, ShapingError
from dksflax.init import fixup, risotto
from dksflax.init.lsuv import lsuv


class _ConvNet(nn.Module):
  """Conv -> relu -> Conv -> tanh -> mean -> Dense -> Dense, with fan-in defaults."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = nn.Conv(8, (3, 3), name="conv_a")(x)
    x = nn.Conv(8, (3, 3), name="conv_b")(jax.nn.relu(x))
    x = jnp.tanh(x).mean(axis=(1, 2))
    x = nn.Dense(16, name="dense_a")(x)
    return nn.Dense(4, name="head")(jax.nn.relu(x))


def test_lsuv_unit_variance_in_forward_order():
  model = _ConvNet()
  batch = jax.random.normal(jax.random.key(0), (8, 6, 6, 3)) * 3.0
  variables = jax.jit(model.init)(jax.random.key(1), batch)
  apply_fn = functools.partial(model.apply, train=False)
  new, report = lsuv(apply_fn, variables, batch, tolerance=0.01, max_iters=10,
                     preinit_key=jax.random.key(2))
  assert [l.path for l in report.layers] == ["conv_a", "conv_b", "dense_a", "head"]
  assert all(l.converged for l in report.layers)
  # Independent measurement of every layer's output variance with the final params.
  _, state = model.apply(new, batch, capture_intermediates=True, mutable=["intermediates"])
  for name in ("conv_a", "conv_b", "dense_a", "head"):
    y = np.asarray(state["intermediates"][name]["__call__"][0], np.float64)
    assert abs(y.var() - 1.0) < 0.01, name
  # Pre-init was orthonormal: a Dense kernel divided by a scalar stays orthogonal.
  k = np.asarray(new["params"]["dense_a"]["kernel"], np.float64)
  gram = k @ k.T
  np.testing.assert_allclose(gram / gram[0, 0], np.eye(8), atol=1e-5)
  assert report.to_dict()["tolerance"] == 0.01


class _DenseNet(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(8, name="conv_a")(x)
    x = nn.Dense(8, name="conv_b")(jax.nn.relu(x))
    return nn.Dense(4, name="head")(jax.nn.relu(x))


def test_lsuv_layer_filter_and_errors():
  model = _DenseNet()
  batch = jax.random.normal(jax.random.key(0), (4, 6))
  variables = jax.jit(model.init)(jax.random.key(1), batch)
  _, report = lsuv(model.apply, variables, batch,
                   layer_filter=lambda p: p[-1].startswith("conv"))
  assert [l.path for l in report.layers] == ["conv_a", "conv_b"]
  assert all(l.converged for l in report.layers)
  with pytest.raises(ShapingError, match="conv_a"):
    lsuv(model.apply, variables, jnp.zeros_like(batch))
  with pytest.raises(ConfigError, match="lsuv_tolerance"):
    lsuv(model.apply, variables, batch, tolerance=0.0)
  with pytest.raises(ConfigError, match="no layer"):
    lsuv(model.apply, variables, batch, layer_filter=lambda p: False)


def test_fixup_rescale():
  rng = np.random.default_rng(0)
  conv = lambda: {"kernel": jnp.asarray(rng.standard_normal((3, 3, 4, 4))),
                  "bias": jnp.ones((4,))}
  params = {"stem_conv": conv(),
            "block_0": {"conv_0": conv(), "conv_1": conv(), "conv_2": conv(),
                        "shortcut_conv": conv(), "bias_0": jnp.ones(()), "scale": jnp.zeros(())},
            "block_1": {"conv_0": conv(), "conv_1": conv(), "conv_2": conv()},
            "classifier": {"kernel": jnp.ones((4, 10)), "bias": jnp.ones((10,))}}
  out = fixup.fixup_rescale(params)
  factor = 2.0 ** (-1.0 / 4.0)  # L = 2 branches, m = 3 layers: L^(-1/(2m-2))
  assert fixup.fixup_scale(2, 3) == pytest.approx(factor)
  for b in ("block_0", "block_1"):
    for j in (0, 1):
      np.testing.assert_allclose(out[b][f"conv_{j}"]["kernel"],
                                 params[b][f"conv_{j}"]["kernel"] * factor, rtol=1e-6)
    assert not np.any(out[b]["conv_2"]["kernel"]) and not np.any(out[b]["conv_2"]["bias"])
  np.testing.assert_array_equal(out["block_0"]["shortcut_conv"]["kernel"],
                                params["block_0"]["shortcut_conv"]["kernel"])
  np.testing.assert_array_equal(out["stem_conv"]["kernel"], params["stem_conv"]["kernel"])
  assert float(out["block_0"]["bias_0"]) == 0.0 and float(out["block_0"]["scale"]) == 1.0
  assert not np.any(out["classifier"]["kernel"]) and not np.any(out["classifier"]["bias"])
  with pytest.raises(ConfigError, match="residual networks only"):
    fixup.fixup_rescale({"dense_0": conv(), "classifier": conv()})
  with pytest.raises(ConfigError, match="undefined"):
    fixup.fixup_scale(4, 1)


class _Block(nn.Module):
  """y = alpha * S x + beta * W_m relu(... relu(W_1 x)): RISOTTO's block form."""

  features: tuple[int, ...]
  kernel_size: tuple[tuple[int, ...], ...] | None
  alpha: float
  beta: float
  projection: bool

  @nn.compact
  def __call__(self, x):
    h = x
    for j, f in enumerate(self.features):
      if j:
        h = jax.nn.relu(h)
      if self.kernel_size is None:
        h = nn.Dense(f, name=f"conv_{j}")(h)
      else:
        h = nn.Conv(f, self.kernel_size[j], name=f"conv_{j}")(h)
    if self.projection:
      ks = (1, 1) if self.kernel_size is not None else None
      x = (nn.Conv(self.features[-1], ks, name="shortcut_conv")(x) if ks
           else nn.Dense(self.features[-1], name="shortcut_conv")(x))
    return self.alpha * x + self.beta * h


def _risotto_jacobian_svals(block, init, in_shape):
  x0 = jax.random.normal(jax.random.key(4), in_shape)
  variables = jax.jit(block.init)(jax.random.key(5), x0[None])
  params = jax.tree_util.tree_map(lambda a: a, dict(variables["params"]))
  for name, kernel in init.kernels.items():
    params[name] = dict(params[name], kernel=kernel)
  f = lambda x: block.apply({"params": params}, x[None])[0]
  jac = np.asarray(jax.jit(jax.jacfwd(f))(x0), np.float64)
  out_size = int(np.prod(jac.shape[:len(jac.shape) - len(in_shape)]))
  return np.linalg.svd(jac.reshape(out_size, -1), compute_uv=False)


@pytest.mark.parametrize("alpha,beta,projection,hidden,out", [
    (1.0, 1.0, False, 16, 8),         # plain identity sum
    (0.8, 0.6, True, 12, 6),          # transition with a projection shortcut (6 -> ... 8 -> 6)
    (1.0, 0.5, False, 4, 8),          # bottleneck narrower than the input, alpha = 1
])
def test_risotto_dense_block_is_isometric(alpha, beta, projection, hidden, out):
  n = 8 if not projection else 6
  out = out if projection else n
  init = risotto.risotto_block(jax.random.key(6), in_channels=n, out_channels=out,
                               hidden_channels=hidden, num_layers=3, shortcut_weight=alpha,
                               residual_weight=beta, projection=projection)
  block = _Block((hidden, hidden, out), None, alpha, beta, projection)
  svals = _risotto_jacobian_svals(block, init, (n,))
  np.testing.assert_allclose(svals, 1.0, atol=1e-4)


def test_risotto_conv_block_is_isometric():
  """Rescaled weights (TAT Eq. 6: 0.6^2 + 0.8^2 = 1), 3x3 Delta convolutions."""
  init = risotto.risotto_block(jax.random.key(7), in_channels=4, out_channels=4,
                               hidden_channels=8, num_layers=2,
                               kernel_sizes=((3, 3), (3, 3)), shortcut_weight=0.6,
                               residual_weight=0.8)
  k0 = np.asarray(init.kernels["conv_0"])
  assert k0.shape == (3, 3, 4, 8) and not np.any(k0[0]) and np.any(k0[1, 1])
  block = _Block((8, 4), ((3, 3), (3, 3)), 0.6, 0.8, False)
  svals = _risotto_jacobian_svals(block, init, (3, 3, 4))
  assert svals.size == 36
  np.testing.assert_allclose(svals, 1.0, atol=1e-4)


def test_risotto_balances_branches_and_rejects_impossible_blocks():
  init = risotto.risotto_block(jax.random.key(8), in_channels=8, out_channels=8,
                               hidden_channels=16, shortcut_weight=1.0, residual_weight=1.0)
  # The branch is not shrunk towards zero (unlike Fixup/SkipInit): ||branch|| ~ ||M - I||.
  assert np.linalg.norm(np.asarray(init.kernels["conv_1"])) > 1.0
  with pytest.raises(ConfigError, match="must be even"):
    risotto.risotto_block(jax.random.key(0), in_channels=4, out_channels=4, hidden_channels=7)
  with pytest.raises(ConfigError, match="rank"):
    risotto.risotto_block(jax.random.key(0), in_channels=8, out_channels=8,
                          hidden_channels=4, shortcut_weight=0.5)
  with pytest.raises(ConfigError, match="projection=True"):
    risotto.risotto_block(jax.random.key(0), in_channels=4, out_channels=8, hidden_channels=8)
