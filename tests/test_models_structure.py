"""Model structure: parameter counts (jax.eval_shape), names, intermediates, block maths."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.models.blocks import ResidualBlock, resavg_pool
from dksflax.models.mlp import MLP
from dksflax.models.model_inits import ModelInits
from dksflax.models.resnet import ResNet
from dksflax.shaping.architectures import mlp_spec, resnet_v2_spec, wide_resnet_spec

INITS = ModelInits.uniform(jax.nn.initializers.lecun_normal())


def _shapes(model, shape):
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False))


def _kernel_total(tree) -> int:
  leaves = jax.tree_util.tree_leaves_with_path(tree["params"])
  return int(sum(np.prod(x.shape) for p, x in leaves if p[-1].key == "kernel"))


@pytest.mark.parametrize("depth,expected", [(50, 25_502_912), (101, 44_442_816),
                                            (152, 60_040_384)])
def test_resnet_v2_kernel_counts(depth, expected):
  # Conv + dense kernels only (biases and normalisation excluded), 1000 classes, 224x224.
  model = ResNet(resnet_v2_spec(depth, num_classes=1000), jax.nn.relu, INITS)
  assert _kernel_total(_shapes(model, (1, 224, 224, 3))) == expected


def test_wrn_28_10_has_36_5m_parameters():
  model = ResNet(wide_resnet_spec(28, 10, num_classes=10), jax.nn.relu, INITS)
  shapes = _shapes(model, (1, 32, 32, 3))
  total = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes["params"]))
  assert f"{total / 1e6:.1f}" == "36.5"
  assert total == 36_479_194  # the figure of the reference PyTorch WRN-28-10


def test_parameter_names_and_conv_biases():
  spec = resnet_v2_spec(14, blocks_per_stage=(1, 1, 1, 1), stem="cifar",
                        width_multiplier=1 / 16, num_classes=3)
  params = _shapes(ResNet(spec, jax.nn.relu, INITS), (1, 8, 8, 3))["params"]
  assert set(params) == {"stem_conv", "block_0", "block_1", "block_2", "block_3",
                         "final_norm", "classifier"}
  assert set(params["block_0"]) == {"norm_0", "conv_0", "norm_1", "conv_1", "norm_2",
                                    "conv_2", "shortcut_conv"}
  assert set(params["block_0"]["conv_0"]) == {"kernel"}  # batch norm: no conv bias
  rescaled = resnet_v2_spec(14, blocks_per_stage=(1, 1, 1, 1), stem="cifar",
                            width_multiplier=1 / 16, num_classes=3, variant="rescaled",
                            pooling="weighted_mean")
  params = _shapes(ResNet(rescaled, jax.nn.relu, INITS), (1, 8, 8, 3))["params"]
  assert set(params["block_1"]["conv_1"]) == {"kernel", "bias"}
  assert "final_norm" not in params and params["pool"]["pool"]["kernel"].shape == (1, 1)
  fixup = _shapes(ResNet(wide_resnet_spec(10, 1, normalization="none"), jax.nn.relu, INITS,
                         residual_mode="fixup"), (1, 8, 8, 3))["params"]
  assert set(fixup["block_0"]) == {"bias_0", "conv_0", "bias_1", "bias_2", "conv_1",
                                   "scale", "bias_3"}
  skip = _shapes(ResNet(wide_resnet_spec(10, 1), jax.nn.relu, INITS,
                        residual_mode="skipinit"), (1, 8, 8, 3))["params"]
  assert skip["block_2"]["skip_gain"].shape == ()


def test_intermediates_and_output_shapes():
  spec = wide_resnet_spec(10, 1, num_classes=7, variant="vanilla")
  model = ResNet(spec, jnp.tanh, INITS)
  x = jnp.ones((2, 8, 8, 3))
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  logits, out = model.apply(variables, x, train=False)
  assert logits.shape == (2, 7)
  assert list(out) == ["stem", "block_0", "block_1", "block_2", "pre_pool", "pre_logits"]
  assert out["block_2"].shape == (2, 2, 2, 64) and out["pre_logits"].shape == (2, 64)
  mlp = MLP(mlp_spec(3, 16, num_classes=4), jnp.tanh, INITS)
  v = mlp.init(jax.random.PRNGKey(0), x, train=False)
  logits, out = mlp.apply(v, x, train=False)  # image input is flattened
  assert logits.shape == (2, 4) and v["params"]["dense_0"]["kernel"].shape == (192, 16)
  assert list(out) == ["layer_0", "layer_1", "layer_2", "pre_logits"]


def test_rescaled_block_is_the_weighted_sum():
  # TAT Eq. 6: w*x + sqrt(1-w^2)*R(x) with the vanilla block's R on the same params.
  spec = wide_resnet_spec(10, 1).blocks[0]  # 16 -> 16, stride 1: identity shortcut
  w = 0.8
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 16))
  resc = ResidualBlock(spec, "rescaled", "none", jnp.tanh, INITS, shortcut_weight=w)
  van = ResidualBlock(spec, "vanilla", "none", jnp.tanh, INITS)
  v = resc.init(jax.random.PRNGKey(0), x, train=False)
  r = van.apply(v, x, train=False)
  np.testing.assert_allclose(resc.apply(v, x, train=False), w * x + math.sqrt(1 - w * w) * r,
                             rtol=1e-5, atol=1e-6)


def test_resavg_pool_has_unit_singular_values():
  # skip_connections_normalisation Eq. 15: the pooled shortcut term is an isometry.
  f = lambda z: resavg_pool(z, 2, 6).ravel()
  x = jnp.zeros((1, 4, 4, 3))
  jac = jax.jacfwd(f)(x).reshape(-1, x.size)
  s = np.linalg.svd(np.asarray(jac), compute_uv=False)
  # 2x2 pooled locations x 3 real channels are non-zero (the 3 padded channels are zero):
  # exactly 12 singular values, all equal to 1 (the plain average pool would give 1/2).
  assert jac.shape == (2 * 2 * 6, 48)
  np.testing.assert_allclose(s[:12], 1.0, atol=1e-6)
  np.testing.assert_allclose(s[12:], 0.0, atol=1e-6)


def test_bfloat16_compute_keeps_float32_params():
  spec = wide_resnet_spec(10, 1, variant="rescaled")
  model = ResNet(spec, jnp.tanh, INITS, dtype=jnp.bfloat16)
  x = jnp.ones((2, 8, 8, 3))
  v = model.init(jax.random.PRNGKey(0), x, train=False)
  logits, out = model.apply(v, x, train=False)
  assert logits.dtype == jnp.bfloat16 and out["block_0"].dtype == jnp.bfloat16
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(v["params"]))
