"""K-FAC through dksflax.optim: registration (f32 and bf16), training, 1 vs 2 devices."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from sklearn.datasets import load_digits

from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.optim import create_optimizer, make_classification_loss
from dksflax.optim.kfac_optimizer import KfacRegistrationError, damping_schedule


class SmallConvNet(nn.Module):
  """Conv + Dense, as the project's models use them (use_bias, dtype/param_dtype)."""
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = nn.Conv(8, (3, 3), use_bias=True, dtype=self.dtype, param_dtype=jnp.float32)(x)
    x = jnp.tanh(x)
    x = nn.Conv(8, (3, 3), strides=(2, 2), use_bias=False, dtype=self.dtype,
                param_dtype=jnp.float32)(x)
    x = jnp.tanh(x).reshape((x.shape[0], -1))
    x = nn.Dense(16, dtype=self.dtype, param_dtype=jnp.float32)(x)
    x = nn.Dense(10, dtype=self.dtype, param_dtype=jnp.float32)(jnp.tanh(x))
    return x, {"pre_logits": x}


def _digits(start, n):
  d = load_digits()
  return {"image": jnp.asarray(d.images[start:start + n, :, :, None] / 16.0, jnp.float32),
          "label": jnp.asarray(d.target[start:start + n], jnp.int32)}


def _kfac(model, steps=20, **overrides):
  cfg = optimizer_cfg.defaults()
  cfg.name = "kfac"
  cfg.schedule = "constant"
  cfg.learning_rate = 0.05
  cfg.kfac.inverse_update_period = 2
  for k, v in overrides.items():
    cfg.kfac[k] = v
  return create_optimizer(cfg, loss_fn=make_classification_loss(model.apply),
                          total_steps=steps)


def _registered(dtype):
  model = SmallConvNet(dtype=dtype)
  train = _digits(0, 64)
  params = model.init(jax.random.PRNGKey(0), train["image"])["params"]
  opt = _kfac(model)
  state = opt.init(params, {}, jax.random.PRNGKey(1), train)
  assert opt.registered_blocks == {"Conv2DTwoKroneckerFactored": 2,
                                   "DenseTwoKroneckerFactored": 2}
  assert opt.describe()["registered_blocks"] == opt.registered_blocks
  return model, opt, params, state


def _train_and_check(opt, params, state):
  losses = []
  for step in range(20):
    batch = _digits(64 * (step % 4), 64)
    params, _, state, metrics = opt.step(params, {}, state, jax.random.PRNGKey(step),
                                         batch, step)
    losses.append(float(metrics["loss"]))
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses


def test_every_layer_kronecker_factored_and_loss_decreases_float32():
  _, opt, params, state = _registered(jnp.float32)
  _train_and_check(opt, params, state)


def test_every_layer_kronecker_factored_under_bfloat16_compute():
  """bf16 compute / f32 params: without dksflax's cast patterns these are Generic."""
  _registered(jnp.bfloat16)


@pytest.mark.slow
def test_loss_decreases_under_bfloat16_compute():
  _, opt, params, state = _registered(jnp.bfloat16)
  _train_and_check(opt, params, state)


def test_unregistered_layer_fails_loudly():
  class Odd2(nn.Module):
    @nn.compact
    def __call__(self, x, train=True):
      s = self.param("s", nn.initializers.ones, (10,))
      return nn.Dense(10)(x.reshape((x.shape[0], -1))) * s * s, {}

  model = Odd2()
  batch = _digits(0, 8)
  params = model.init(jax.random.PRNGKey(0), batch["image"])["params"]
  with pytest.raises(KfacRegistrationError, match="fell back"):
    _kfac(model).init(params, {}, jax.random.PRNGKey(1), batch)


def test_mixed_param_dtypes_rejected_before_compute():
  model = SmallConvNet()
  batch = _digits(0, 8)
  params = model.init(jax.random.PRNGKey(0), batch["image"])["params"]
  params = dict(params)
  params["Dense_1"] = jax.tree_util.tree_map(lambda p: p.astype(jnp.bfloat16),
                                             params["Dense_1"])
  with pytest.raises(KfacRegistrationError, match="one float dtype"):
    _kfac(model).init(params, {}, jax.random.PRNGKey(1), batch)


def test_one_device_equals_two_sharded_devices():
  assert jax.device_count() >= 2
  model = SmallConvNet()
  batch = _digits(0, 8)
  params = model.init(jax.random.PRNGKey(0), batch["image"])["params"]

  def run(batch_in):
    opt = _kfac(model, steps=2)
    p = jax.tree_util.tree_map(jnp.copy, params)
    state = opt.init(p, {}, jax.random.PRNGKey(1), batch_in)
    for step in range(2):
      p, _, state, metrics = opt.step(p, {}, state, jax.random.PRNGKey(7), batch_in, step)
    return p, float(metrics["loss"])

  p1, l1 = run(batch)
  mesh = Mesh(np.array(jax.devices()[:2]), ("data",))
  sharded = jax.device_put(batch, NamedSharding(mesh, PartitionSpec("data")))
  assert len(sharded["image"].sharding.device_set) == 2
  p2, l2 = run(sharded)
  assert abs(l1 - l2) <= 1e-5 * abs(l1)
  # Sharded reductions sum in another order (float32), so compare each layer's
  # parameters norm-wise: relative difference <= 1e-5.
  for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(a)


def test_damping_schedules():
  fixed = damping_schedule("fixed", 1e-3, 1e-6, 100)
  decay = damping_schedule("decay", 1e-3, 1e-6, 101)
  assert float(fixed(50)) == pytest.approx(1e-3)
  assert float(decay(0)) == pytest.approx(1e-3, rel=1e-6)
  assert float(decay(50)) == pytest.approx(np.sqrt(1e-3 * 1e-6), rel=1e-5)
  assert float(decay(100)) == pytest.approx(1e-6, rel=1e-5)


@pytest.mark.slow
def test_adaptive_damping_runs_and_reports_damping():
  model = SmallConvNet()
  train = _digits(0, 64)
  params = model.init(jax.random.PRNGKey(0), train["image"])["params"]
  opt = _kfac(model, steps=6, use_adaptive_damping=True, damping=1e-2)
  state = opt.init(params, {}, jax.random.PRNGKey(1), train)
  dampings = []
  for step in range(6):
    params, _, state, metrics = opt.step(params, {}, state, jax.random.PRNGKey(step),
                                         train, step)
    dampings.append(float(metrics["damping"]))
  assert np.all(np.isfinite(dampings)) and dampings[0] == pytest.approx(1e-2)
