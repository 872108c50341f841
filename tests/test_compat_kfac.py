"""The kfac-jax compatibility layer: still needed on this JAX, and sufficient."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import kfac_jax

from dksflax.compat import kfac_jax_compat

_TINY_STEP = textwrap.dedent("""
    import sys
    class _NoTensorFlow:  # tfp's JAX backend imports TF only for docstrings: skip it
      def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
          raise ImportError("tensorflow not needed here")
        return None
    sys.meta_path.insert(0, _NoTensorFlow())
    import jax, jax.numpy as jnp, kfac_jax
    def loss(p, batch):
      x, y = batch
      logits = x @ p["w"] + p["b"]
      kfac_jax.register_softmax_cross_entropy_loss(logits, y)
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    params = {"w": jnp.ones((4, 3)) * 0.1, "b": jnp.zeros((3,))}
    batch = (jnp.ones((8, 4)), jnp.arange(8) % 3)
    opt = kfac_jax.Optimizer(value_and_grad_func=jax.value_and_grad(loss), l2_reg=0.0,
        learning_rate_schedule=lambda s: 0.1, momentum_schedule=lambda s: 0.0,
        damping_schedule=lambda s: 1e-3, num_burnin_steps=0, multi_device=False)
    state = opt.init(params, jax.random.PRNGKey(0), batch)
    opt.step(params, state, jax.random.PRNGKey(1), batch=batch, global_step_int=0)
    print("UNPATCHED-STEP-OK")
""")


def test_unpatched_kfac_still_fails():
  """Fails the day kfac-jax handles current JAX itself: then drop the compat layer.

  Runs a one-layer K-FAC step WITHOUT the patch in a fresh interpreter and expects the
  ``ValueError: too many values to unpack`` from ``tag_graph_matcher.eval_jaxpr_eqn``.
  """
  proc = subprocess.run([sys.executable, "-c", _TINY_STEP], capture_output=True,
                        text=True, timeout=600, check=False)
  if proc.returncode == 0 and "UNPATCHED-STEP-OK" in proc.stdout:
    raise AssertionError(
        f"kfac-jax {kfac_jax.__version__} now traces on jax {jax.__version__} without "
        "dksflax.compat.kfac_jax_compat: delete that module and its call in "
        "dksflax/optim/kfac_optimizer.py")
  assert "too many values to unpack" in proc.stderr or "not enough values" in proc.stderr, (
      proc.stderr[-2000:])


def test_apply_is_idempotent_and_makes_a_step_run():
  kfac_jax_compat.apply()
  first = __import__("kfac_jax._src.tag_graph_matcher", fromlist=["x"]).eval_jaxpr_eqn
  kfac_jax_compat.apply()
  second = __import__("kfac_jax._src.tag_graph_matcher", fromlist=["x"]).eval_jaxpr_eqn
  assert first is second and kfac_jax_compat.is_applied()

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = jnp.tanh(nn.Conv(4, (3, 3))(x))
      return nn.Dense(3)(x.reshape((x.shape[0], -1)))

  model = Net()
  x = jnp.asarray(jax.random.normal(jax.random.PRNGKey(0), (8, 6, 6, 1)))
  y = jnp.arange(8) % 3
  params = model.init(jax.random.PRNGKey(1), x)["params"]

  def loss(p, batch):
    logits = model.apply({"params": p}, batch[0])
    kfac_jax.register_softmax_cross_entropy_loss(logits, batch[1])
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1))

  opt = kfac_jax.Optimizer(
      value_and_grad_func=jax.value_and_grad(loss), l2_reg=0.0,
      learning_rate_schedule=lambda s: 0.1, momentum_schedule=lambda s: 0.0,
      damping_schedule=lambda s: 1e-3, num_burnin_steps=0, multi_device=False)
  state = opt.init(params, jax.random.PRNGKey(2), (x, y))
  blocks = sorted(type(b).__name__ for b in opt._estimator.blocks)  # pylint: disable=protected-access
  assert blocks == ["Conv2DTwoKroneckerFactored", "DenseTwoKroneckerFactored"]
  before = float(loss(params, (x, y)))
  params, state, stats = opt.step(params, state, jax.random.PRNGKey(3), batch=(x, y),
                                  global_step_int=0)
  assert abs(float(stats["loss"]) - before) < 1e-5
  assert float(loss(params, (x, y))) < before


def test_split_bind_params_accepts_both_forms():
  assert kfac_jax_compat._split_bind_params({"a": 1}) == ((), {"a": 1})  # pylint: disable=protected-access
  subfuns, params = kfac_jax_compat._split_bind_params(([len], {"a": 1}))  # pylint: disable=protected-access
  assert subfuns == (len,) and params == {"a": 1}
