"""Schedules, bad-input errors and LARS against numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.errors import ConfigError
from dksflax.optim import create_optimizer, make_schedule
from dksflax.optim.masks import weights_mask
from dksflax.optim.optax_optimizer import build_transformation


def _loss(params, model_state, rng, batch):
  del rng
  return jnp.sum(params["w"] ** 2), (model_state, {})


def _cfg(**kw):
  c = optimizer_cfg.defaults()
  for k, v in kw.items():
    node, *rest = k.split(".")
    if rest:
      c[node][rest[0]] = v
    else:
      c[k] = v
  return c


@pytest.mark.parametrize("overrides,match", [
    (dict(name="rmsprop"), "optimizer.name='rmsprop'"),
    (dict(schedule="exponential"), "optimizer.schedule"),
    (dict(learning_rate=-0.1), "optimizer.learning_rate"),
    (dict(learning_rate=0.0), "optimizer.learning_rate"),
    (dict(**{"kfac.damping": 0.0}), "optimizer.kfac.damping"),
    (dict(**{"kfac.damping": -1e-3}), "optimizer.kfac.damping"),
    (dict(warmup_steps=200), "exceeds the run"),
    (dict(schedule="step", step_boundaries=(0.8, 0.3)), "step_boundaries"),
    (dict(**{"shampoo.graft": "rmsprop"}), "optimizer.shampoo.graft"),
    (dict(**{"kfac.damping_schedule": "cosine"}), "damping_schedule"),
    (dict(grad_clip_norm=-1.0), "grad_clip_norm"),
])
def test_bad_config_raises_config_error_before_compute(overrides, match):
  with pytest.raises(ConfigError, match=match):
    create_optimizer(_cfg(**overrides), loss_fn=_loss, total_steps=100)


def test_schedules_closed_forms():
  total, warm, base = 100, 10, 0.4
  steps = np.arange(total)
  cos = make_schedule("warmup_cosine", base_lr=base, total_steps=total, warmup_steps=warm)
  lin = make_schedule("linear", base_lr=base, total_steps=total, warmup_steps=warm)
  stp = make_schedule("step", base_lr=base, total_steps=total,
                      step_boundaries=(0.5, 0.75))
  const = make_schedule("constant", base_lr=base, total_steps=total)
  t = np.clip((steps - warm) / (total - warm), 0, 1)
  np.testing.assert_allclose(np.asarray(jax.vmap(cos)(steps)),
                             np.where(steps < warm, base * steps / warm,
                                      base * 0.5 * (1 + np.cos(np.pi * t))), rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_allclose(np.asarray(jax.vmap(lin)(steps)),
                             np.where(steps < warm, base * steps / warm, base * (1 - t)),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.asarray(jax.vmap(stp)(steps)),
                             base * 0.1 ** ((steps >= 50).astype(int) + (steps >= 75)),
                             rtol=1e-6)
  assert float(const(73)) == pytest.approx(base)


def test_lars_trust_ratio_per_layer_excludes_biases_and_scales():
  rng = np.random.default_rng(0)
  params = {"dense": {"kernel": rng.normal(size=(5, 4)), "bias": rng.normal(size=(4,))},
            "norm": {"scale": rng.normal(size=(4,))},
            "conv": {"kernel": rng.normal(size=(3, 3, 2, 4))}}
  assert weights_mask(params) == {"dense": {"kernel": True, "bias": False},
                                  "norm": {"scale": False}, "conv": {"kernel": True}}
  cfg = _cfg(name="lars", learning_rate=0.5, **{"lars.trust_coefficient": 0.01,
                                                  "lars.momentum": 0.9})
  tx = build_transformation(cfg, lambda step: 0.5)
  jparams = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
  state = tx.init(jparams)
  mom = jax.tree_util.tree_map(np.zeros_like, params)
  for _ in range(3):
    grads = jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape), params)
    updates, state = tx.update(jax.tree_util.tree_map(jnp.asarray, grads), state, jparams)

    def expected(p, g, m, is_weight):
      ratio = 0.01 * np.linalg.norm(p) / np.linalg.norm(g) if is_weight else 1.0
      return 0.9 * m - 0.5 * ratio * g

    mom = jax.tree_util.tree_map(expected, params, grads, mom, weights_mask(params))
    for u, m in zip(jax.tree_util.tree_leaves(updates), jax.tree_util.tree_leaves(mom)):
      np.testing.assert_allclose(np.asarray(u), m, rtol=2e-5, atol=1e-7)


def test_grad_clipping_and_adam_eps_reach_the_transformation():
  cfg = _cfg(name="adam", learning_rate=1.0, grad_clip_norm=1.0, **{"adam.eps": 0.5})
  tx = build_transformation(cfg, lambda step: 1.0)
  params = {"w": jnp.zeros((3,))}
  g = {"w": jnp.asarray([30.0, 40.0, 0.0])}
  upd, _ = tx.update(g, tx.init(params), params)
  clipped = np.array([0.6, 0.8, 0.0])
  # Adam step 1 (bias-corrected): m_hat = g, v_hat = g^2 -> -g / (|g| + eps).
  np.testing.assert_allclose(np.asarray(upd["w"]), -clipped / (np.abs(clipped) + 0.5),
                             rtol=1e-5)
  assert optax.global_norm(g) > 1.0
