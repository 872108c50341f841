"""build_network: every accepted (model, variant, method) combination builds and trains a step;
incompatible or malformed configs are refused with errors naming key, value and alternatives."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax import configlib
from dksflax.errors import ConfigError
from dksflax.models import compatibility
from dksflax.models.build import build_network

#: A small model per family: ResNet-V2 blocks (1,1,1,1) at width 1/16, WRN-10-1, MLP depth 4.
SMALL = {
    "resnet": dict(name="resnet", blocks=(1, 1, 1, 1), width_multiplier=1 / 16),
    "wrn": dict(name="wrn", depth=10, width=1, width_multiplier=0.5),
    "mlp": dict(name="mlp", depth=4, width=16),
}
#: An activation each method accepts.
ACTIVATION = {"none": "relu", "dks": "softplus", "tat": "leaky_relu", "eoc": "tanh",
              "lsuv": "tanh", "fixup": "relu", "skipinit": "relu", "risotto": "relu"}
INPUT = (8, 8, 3)


def make_config(family: str, variant: str, method: str, **overrides):
  c = configlib.default_config()
  for k, v in SMALL[family].items():
    c.model[k] = v
  c.model.variant = variant
  c.model.activation = ACTIVATION[method]
  c.shaping.method = method
  c.shaping.eta = 0.5  # these nets are shallow: C_f(0) of a ReLU net stays below 0.9
  for k, v in overrides.items():
    section, key = k.split(".")
    c[section][key] = v
  return c


def accepted_combinations():
  combos = []
  for method in compatibility.METHODS:
    for family in ("resnet", "wrn", "mlp"):
      for variant in compatibility.ALL_VARIANTS:
        name = SMALL[family]["name"]
        try:
          compatibility.check_compatible(name=name, variant=variant, normalization="auto",
                                         activation=ACTIVATION[method], method=method)
        except ConfigError:
          continue
        combos.append((family, variant, method, {}))
  combos.append(("resnet", "standard", "dks", {"model.normalization": "layer_norm"}))
  combos.append(("wrn", "rescaled", "tat", {"model.activation": "softplus",
                                            "model.resavg": True}))
  combos.append(("mlp", "vanilla", "tat", {"model.activation": "gelu",
                                           "model.normalization": "layer_norm"}))
  return combos


#: The default (fast) suite runs these; the rest of the matrix is marked slow.
FAST = {("wrn", "standard", "none"), ("wrn", "rescaled", "dks"), ("wrn", "vanilla", "tat"),
        ("wrn", "vanilla", "eoc"), ("wrn", "rescaled", "lsuv"), ("wrn", "standard", "fixup"),
        ("wrn", "standard", "skipinit"), ("wrn", "standard", "risotto"),
        ("resnet", "rescaled", "dks"), ("mlp", "vanilla", "tat")}


def parametrised_combinations():
  out = []
  for family, variant, method, overrides in accepted_combinations():
    marks = () if (family, variant, method) in FAST and not overrides else (pytest.mark.slow,)
    out.append(pytest.param(family, variant, method, overrides, marks=marks))
  return out


@pytest.fixture(scope="module", autouse=True)
def _fast_compile():
  # Compile time dominates these tiny models (as in the Flax ImageNet example's tests).
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)


def test_matrix_covers_every_method_and_family():
  combos = accepted_combinations()
  assert {m for _, _, m, _ in combos} == set(compatibility.METHODS)
  assert {f for f, _, _, _ in combos} == {"resnet", "wrn", "mlp"}
  assert len(combos) >= 30


@pytest.mark.parametrize("family,variant,method,overrides", parametrised_combinations(),
                         ids=lambda v: v if isinstance(v, str) else "-".join(
                             f"{k.split('.')[1]}={x}" for k, x in v.items()))
def test_builds_and_runs_forward_backward(family, variant, method, overrides):
  config = make_config(family, variant, method, **overrides)
  model, init_fn, report = build_network(config, num_classes=5, input_shape=INPUT)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, *INPUT))
  labels = jnp.arange(4) % 5
  init = init_fn if report.data_dependent else jax.jit(init_fn)
  variables = init(jax.random.PRNGKey(1), x)
  mutable = ["batch_stats"] if "batch_stats" in variables else False

  @jax.jit
  def loss_and_grad(params):
    def loss(p):
      res = model.apply({**variables, "params": p}, x, train=True, mutable=mutable,
                        rngs={"dropout": jax.random.PRNGKey(2)})
      logits = res[0][0] if mutable else res[0]
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])
    return jax.value_and_grad(loss)(params)

  value, grads = loss_and_grad(variables["params"])
  assert np.isfinite(float(value))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
  # The classifier gets a gradient (Fixup zeroes its weights, not its gradient).
  assert float(jnp.abs(grads["classifier"]["bias"]).sum()) > 0
  d = report.to_dict()
  json.dumps(d)
  assert d["shaping"]["method"] == method and d["model"]["num_classes"] == 5
  if method in ("dks", "tat"):
    assert d["shaping"]["derived"]["q_at_1"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("overrides,words", [
    ({"model.name": "resnet34"}, ["model.name", "resnet34", "resnet50", "mlp"]),
    ({"model.variant": "preact"}, ["model.variant", "preact", "rescaled"]),
    ({"shaping.method": "magic"}, ["shaping.method", "magic", "dks", "risotto"]),
    ({"model.activation": "swishy"}, ["swishy", "softplus"]),
    ({"model.name": "resnet", "model.blocks": (), "model.depth": 34},
     ["model.depth", "34", "50", "101", "152"]),
    ({"model.name": "wrn", "model.depth": 27}, ["model.depth", "27", "6n+4"]),
    ({"model.variant": "standard", "model.normalization": "batch_norm",
      "model.name": "wrn", "model.depth": 10, "model.width": 1},
     ["batch_norm", "dks", "layer_norm"]),
    ({"model.variant": "standard", "model.normalization": "none", "model.name": "wrn",
      "model.depth": 10, "model.width": 1}, ["standard", "layer_norm", "rescaled"]),
    ({"shaping.method": "tat", "model.activation": "relu"}, ["relu", "leaky_relu"]),
    ({"shaping.method": "tat", "model.activation": "identity"}, ["identity", "smooth"]),
    ({"shaping.method": "fixup"}, ["fixup", "model.name", "mlp"]),
    ({"shaping.method": "fixup", "model.name": "wrn", "model.depth": 10, "model.width": 1,
      "model.variant": "vanilla"}, ["fixup", "vanilla", "standard"]),
    ({"shaping.method": "skipinit", "model.name": "wrn", "model.depth": 10,
      "model.width": 1, "model.variant": "rescaled"}, ["skipinit", "rescaled", "standard"]),
    ({"shaping.method": "risotto", "model.name": "resnet50", "model.variant": "standard",
      "model.activation": "relu"}, ["risotto", "resnet50", "wrn"]),
    ({"shaping.method": "risotto", "model.name": "wrn", "model.depth": 10, "model.width": 1,
      "model.variant": "standard", "model.activation": "tanh"}, ["risotto", "tanh", "relu"]),
    ({"shaping.method": "eoc", "model.name": "wrn", "model.depth": 10, "model.width": 1,
      "model.variant": "rescaled"}, ["eoc", "rescaled", "vanilla"]),
    ({"model.variant": "rescaled"}, ["rescaled", "mlp", "vanilla"]),
    ({"model.name": "wrn", "model.depth": 10, "model.width": 1, "model.resavg": True},
     ["resavg", "vanilla"]),
    ({"shaping.weight_init": "xavier"}, ["shaping.weight_init", "xavier", "orthogonal_delta"]),
    ({"model.num_classes": 7}, ["model.num_classes", "7", "-1"]),
])
def test_bad_configs_are_refused_clearly(overrides, words):
  c = configlib.default_config()
  c.model.depth = 4
  c.model.width = 16
  for k, v in overrides.items():
    section, key = k.split(".")
    c[section][key] = v
  with pytest.raises(ConfigError) as info:
    build_network(c, num_classes=5, input_shape=INPUT)
  for w in words:
    assert w in str(info.value), (w, str(info.value))


def test_auto_normalization_and_input_shape_checks():
  c = make_config("wrn", "standard", "none")
  _, _, report = build_network(c, num_classes=5, input_shape=INPUT)
  assert report.model["normalization"] == "batch_norm"
  c = make_config("wrn", "standard", "skipinit")
  _, _, report = build_network(c, num_classes=5, input_shape=INPUT)
  assert report.model["normalization"] == "none"
  with pytest.raises(ConfigError, match="input_shape"):
    build_network(c, num_classes=5, input_shape=(64,))
  _, init_fn, _ = build_network(c, num_classes=5, input_shape=INPUT)
  with pytest.raises(ConfigError, match="sample_images"):
    init_fn(jax.random.PRNGKey(0), jnp.zeros((2, 4, 4, 3)))
