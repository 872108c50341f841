"""Every optimizer trains a 20-layer vanilla tanh MLP on digits through one interface."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.optim import create_optimizer, make_classification_loss


class DeepTanhMLP(nn.Module):
  """A vanilla (no skips, no normalisation) deep MLP; models return (logits, out)."""
  depth: int = 20
  width: int = 16

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.depth - 1):
      x = jnp.tanh(nn.Dense(self.width)(x))
    return nn.Dense(10)(x), {}


def _digits_batch(n=128):
  d = load_digits()
  return {"image": jnp.asarray(d.images[:n, :, :, None] / 16.0, jnp.float32),
          "label": jnp.asarray(d.target[:n], jnp.int32)}


SETTINGS = {
    "sgd": dict(learning_rate=0.05),
    "adam": dict(learning_rate=3e-3),
    "lars": dict(learning_rate=0.2),
    "shampoo": dict(learning_rate=3e-3),
    "kfac": dict(learning_rate=0.1),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_optimizer_reduces_training_loss(name):
  model = DeepTanhMLP()
  batch = _digits_batch()
  variables = model.init(jax.random.PRNGKey(0), batch["image"])
  params = variables["params"]
  cfg = optimizer_cfg.defaults()
  cfg.name = name
  cfg.schedule = "constant"
  cfg.l2 = 1e-5
  cfg.shampoo.update_period = 2
  cfg.kfac.inverse_update_period = 2
  cfg.kfac.damping_schedule = "fixed"
  cfg.kfac.damping = 1e-2
  cfg.lars.trust_coefficient = 0.02
  for key, value in SETTINGS[name].items():
    cfg[key] = value
  loss_fn = make_classification_loss(model.apply, label_smoothing=0.1, l2=cfg.l2)
  opt = create_optimizer(cfg, loss_fn=loss_fn, total_steps=30)
  state = opt.init(params, {}, jax.random.PRNGKey(1), batch)
  losses = []
  for step in range(30):
    params, model_state, state, metrics = opt.step(
        params, {}, state, jax.random.PRNGKey(step), batch, step)
    losses.append(float(metrics["loss"]))
    assert {"loss", "grad_norm", "learning_rate", "accuracy"} <= set(metrics)
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.9 * losses[0], (name, losses[0], losses[-1])
  assert opt.describe()["name"] == name
