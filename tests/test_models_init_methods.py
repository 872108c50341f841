"""Method-specific initialisation wired by build_network: Fixup, SkipInit, RISOTTO; the TAT
leaky-ReLU parameters of ResNet-50/101/152 derived from the models; ResNet-50 at 224x224."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax import configlib
from dksflax.init.fixup import fixup_scale
from dksflax.models.blocks import ResidualBlock
from dksflax.models.build import build_network, shaping_for
from dksflax.models.shaping_plan import resolve_spec
from dksflax.shaping.tat import leaky_relu_c_map


@pytest.fixture(scope="module", autouse=True)
def _fast_compile():
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)


def wrn_config(method: str, **model):
  c = configlib.default_config()
  c.model.name, c.model.depth, c.model.width = "wrn", 16, 1
  c.model.variant, c.model.activation = "standard", "relu"
  c.shaping.method = method
  for k, v in model.items():
    c.model[k] = v
  return c


def test_fixup_zero_layers_and_scaled_branches():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  model, init_fn, report = build_network(wrn_config("fixup"), num_classes=4,
                                         input_shape=(8, 8, 3))
  v = init_fn(jax.random.PRNGKey(1), x)
  p = v["params"]
  assert report.model["normalization"] == "none"
  blocks = [k for k in p if k.startswith("block_")]
  assert len(blocks) == 6
  for b in blocks:
    assert not np.any(np.asarray(p[b]["conv_1"]["kernel"]))  # last layer of each branch
    assert float(p[b]["scale"]) == 1.0 and float(p[b]["bias_0"]) == 0.0
  assert not np.any(np.asarray(p["classifier"]["kernel"]))
  assert not np.any(np.asarray(p["classifier"]["bias"]))
  logits, _ = model.apply(v, x, train=False)
  np.testing.assert_array_equal(np.asarray(logits), 0.0)
  # The other branch layers: the standard (He) init times L^(-1/(2m-2)), L = 6, m = 2.
  _, plain_init, _ = build_network(wrn_config("skipinit"), num_classes=4,
                                   input_shape=(8, 8, 3))
  ref = plain_init(jax.random.PRNGKey(1), x)["params"]
  factor = fixup_scale(6, 2)
  assert factor == pytest.approx(6 ** -0.5)
  for b in blocks:
    np.testing.assert_allclose(p[b]["conv_0"]["kernel"], ref[b]["conv_0"]["kernel"] * factor,
                               rtol=1e-6, atol=1e-7)


def test_skipinit_blocks_equal_their_shortcut():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  model, init_fn, _ = build_network(wrn_config("skipinit"), num_classes=4,
                                    input_shape=(8, 8, 3))
  v = init_fn(jax.random.PRNGKey(1), x)
  _, out = model.apply(v, x, train=False)
  # Non-transition blocks are the identity at init: the output equals the input.
  for i in (1, 3, 5):
    np.testing.assert_array_equal(out[f"block_{i}"], out[f"block_{i - 1}"])
  # Every block (transitions included) ignores its residual branch: changing the branch
  # weights changes nothing.
  p = jax.tree_util.tree_map(lambda a: a, v["params"])
  for b in [k for k in p if k.startswith("block_")]:
    for j in (0, 1):
      p[b][f"conv_{j}"]["kernel"] = p[b][f"conv_{j}"]["kernel"] + 0.3
  _, out2 = model.apply({**v, "params": p}, x, train=False)
  for i in range(6):
    np.testing.assert_allclose(out2[f"block_{i}"], out[f"block_{i}"], atol=1e-6)
  assert float(jnp.abs(out["block_5"]).sum()) > 0


@pytest.mark.parametrize("index", [0, 1])
def test_risotto_block_jacobian_is_orthogonal(index):
  # WRN-16-2 at half width: block 0 is a stride-1 transition (8 -> 16 channels, projection
  # shortcut), block 1 an identity-shortcut block; RISOTTO makes each an isometry.
  config = wrn_config("risotto", width=2, width_multiplier=0.5)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 3))
  model, init_fn, _ = build_network(config, num_classes=4, input_shape=(4, 4, 3))
  v = init_fn(jax.random.PRNGKey(3), x)
  spec, _ = resolve_spec(config, 4)
  block_spec = spec.blocks[index]
  block = ResidualBlock(block_spec, "standard", "none", jax.nn.relu, model.inits,
                        residual_mode="risotto")
  bparams = {"params": v["params"][f"block_{index}"]}
  z = jax.random.normal(jax.random.PRNGKey(4), (1, 4, 4, block_spec.in_channels))
  f = lambda u: block.apply(bparams, u, train=False).ravel()
  jac = np.asarray(jax.jacfwd(f)(z)).reshape(-1, z.size)
  s = np.linalg.svd(jac, compute_uv=False)
  assert jac.shape[0] >= jac.shape[1]
  np.testing.assert_allclose(s, 1.0, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "resnet152"])
@pytest.mark.parametrize("variant,shortcut_weight", [("vanilla", 0.0), ("rescaled", 0.8)])
def test_tat_leaky_relu_derived_from_the_model(name, variant, shortcut_weight):
  c = configlib.default_config()
  c.model.name, c.model.variant, c.model.activation = name, variant, "leaky_relu"
  c.shaping.method, c.shaping.eta, c.shaping.shortcut_weight = "tat", 0.9, shortcut_weight
  plan = shaping_for(c)
  slope = plan.activation.base_params[0][1]
  assert 0.0 < slope < 1.0
  assert plan.activation.gamma == pytest.approx(math.sqrt(2.0 / (1.0 + slope**2)), rel=1e-12)
  assert plan.derived["max_c0"] == pytest.approx(0.9, abs=1e-6)
  depth = {"resnet50": 50, "resnet101": 101, "resnet152": 152}[name]
  r = lambda x: leaky_relu_c_map(x, slope)
  if variant == "vanilla":
    # Independent check: a vanilla ResNet-D is a chain of D - 1 leaky-ReLU layers.
    cval = 0.0
    for _ in range(depth - 1):
      cval = r(cval)
    assert cval == pytest.approx(0.9, abs=1e-6)
  else:
    # Shortcuts make the net effectively shallower (TAT §4.3): to reach the same C(0) its
    # activation must be more nonlinear (a smaller negative slope) than the vanilla net's.
    c.model.variant = "vanilla"
    assert slope < shaping_for(c).activation.base_params[0][1]


def _resnet50_step(width_multiplier: float, size: int):
  c = configlib.default_config()
  c.model.name, c.model.variant, c.model.stem = "resnet50", "standard", "imagenet"
  c.model.width_multiplier, c.model.activation = width_multiplier, "relu"
  c.shaping.method = "none"
  model, init_fn, _ = build_network(c, num_classes=1000, input_shape=(size, size, 3))
  x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, 3))
  v = jax.jit(init_fn)(jax.random.PRNGKey(1), x)

  @jax.jit
  def step(params):
    def loss(p):
      (logits, _), _ = model.apply({**v, "params": p}, x, train=True,
                                   mutable=["batch_stats"])
      return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])
    return jax.value_and_grad(loss)(params)

  value, grads = step(v["params"])
  assert np.isfinite(float(value)) and float(value) > 0
  assert float(jnp.abs(grads["stem_conv"]["kernel"]).sum()) > 0
  return value


def test_resnet50_small_width_forward_backward():
  _resnet50_step(1 / 16, 32)


@pytest.mark.slow
def test_resnet50_imagenet_forward_backward_batch2():
  _resnet50_step(1.0, 224)
