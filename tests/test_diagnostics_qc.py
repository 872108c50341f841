"""Measured q/c of deep MLPs at init vs independent closed-form / quadrature predictions."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.diagnostics import (correlated_pairs, empirical_qc, layer_graphs, pair_statistics,
                                 plot_qc, predicted_qc)
from dksflax.init import fan_in_gaussian, orthogonal_delta

DEPTH, WIDTH = 8, 512
CORRS = (0.0, 0.5, 0.9)


class _MLP(nn.Module):
  """Bias-free Dense -> activation, `depth` times; returns (last, {"layer_i": ...})."""

  depth: int
  width: int
  activation: str
  weight_var: float
  distribution: str

  @nn.compact
  def __call__(self, x):
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[self.activation]
    dist = {"gaussian": fan_in_gaussian, "suo": orthogonal_delta}[self.distribution]
    out = {}
    for i in range(self.depth):
      x = act(nn.Dense(self.width, kernel_init=dist(self.weight_var), use_bias=False,
                       name=f"dense_{i}")(x))
      out[f"layer_{i}"] = x
    return x, out


def _relu_chain(c0: float, depth: int) -> list[float]:
  """He-initialised ReLU layers: the normalised arc-cosine kernel (DKS Eq. 15), composed."""
  out, c = [], c0
  for _ in range(depth):
    c = (math.sqrt(max(0.0, 1 - c * c)) + (math.pi - math.acos(c)) * c) / math.pi
    out.append(c)
  return out


def _tanh_chain(c0: float, depth: int, weight_var: float) -> list[tuple[float, float]]:
  """Poole et al. (2016) Q/C recursions for tanh, by 2-D Gauss-Hermite quadrature."""
  z, w = np.polynomial.hermite_e.hermegauss(96)
  w = w / w.sum()
  z1, z2 = np.meshgrid(z, z, indexing="ij")
  ww = np.outer(w, w)
  q, c, out = 1.0, c0, []
  for _ in range(depth):
    a = weight_var * q
    u = math.sqrt(a) * z1
    v = math.sqrt(a) * (c * z1 + math.sqrt(max(0.0, 1 - c * c)) * z2)
    q_new = float(np.sum(w * np.tanh(math.sqrt(a) * z) ** 2))
    c = float(np.sum(ww * np.tanh(u) * np.tanh(v))) / q_new
    q = q_new
    out.append((q, c))
  return out


def test_correlated_pairs_are_exact_per_location():
  x1, x2 = correlated_pairs(np.random.default_rng(0), (3, 4, 5), 0.3, 6)
  assert x1.shape == (6, 3, 4, 5)
  np.testing.assert_allclose(np.mean(x1 ** 2, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.mean(x2 ** 2, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.mean(x1 * x2, axis=-1), 0.3, atol=1e-5)
  q, c = pair_statistics(x1, x2)
  np.testing.assert_allclose(q, 1.0, rtol=1e-5)
  np.testing.assert_allclose(c, 0.3, atol=1e-5)
  with pytest.raises(ValueError, match="correlations"):
    correlated_pairs(np.random.default_rng(0), (4,), 1.5, 4)


def test_tanh_mlp_c_and_q_maps_match_quadrature():
  """Orthogonal (SUO) weights: per-layer c and q within 4 standard errors + O(1/width)."""
  model = _MLP(DEPTH, WIDTH, "tanh", 1.0, "suo")
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 64)))
  names = [f"layer_{i}" for i in range(DEPTH)]
  got = empirical_qc(model.apply, variables, input_shape=(64,), correlations=CORRS,
                     num_pairs=16, rng=1, layer_names=names)
  assert got.layer_names == tuple(names)
  for j, cin in enumerate(CORRS):
    ref = _tanh_chain(cin, DEPTH, 1.0)
    q_ref = np.array([r[0] for r in ref])
    c_ref = np.array([r[1] for r in ref])
    assert np.all(np.abs(got.c[:, j] - c_ref) < 4 * got.c_se[:, j] + 2.0 / WIDTH), cin
    assert np.all(np.abs(got.q[:, j] - q_ref) < 4 * got.q_se[:, j] + 0.02 * q_ref), cin
  # The c map of tanh at sigma_w^2 = 1 contracts towards 0: the prediction is not trivial.
  assert _tanh_chain(0.9, DEPTH, 1.0)[-1][1] < 0.88


def test_relu_mlp_c_map_matches_arc_cosine_composition(tmp_path):
  """He-initialised ReLU MLP: c_l = composed arc-cosine kernel (DKS Eq. 15).

  Averaged over 3 independent networks so that the weight-sampling error is part of the
  standard error.
  """
  names = [f"layer_{i}" for i in range(DEPTH)]
  runs = []
  for seed in range(3):
    model = _MLP(DEPTH, WIDTH, "relu", 2.0, "gaussian")
    variables = jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, 64)))
    runs.append(empirical_qc(model.apply, variables, input_shape=(64,), correlations=CORRS,
                             num_pairs=12, rng=seed, layer_names=names))
  c = np.mean([r.c for r in runs], axis=0)
  c_se = np.sqrt(np.mean([r.c_se ** 2 for r in runs], axis=0) / len(runs)
                 + np.var([r.c for r in runs], axis=0, ddof=1) / len(runs))
  for j, cin in enumerate(CORRS):
    c_ref = np.array(_relu_chain(cin, DEPTH))
    assert np.all(np.abs(c[:, j] - c_ref) < 4 * c_se[:, j] + 2.0 / WIDTH), (cin, c[:, j], c_ref)
  # He init preserves q on average over networks (q = 1 at every layer).
  q = np.mean([r.q for r in runs], axis=(0, 2))
  assert np.all(np.abs(q - 1.0) < 0.35)
  # Measured vs predicted plot, with the network C map of the last layer as a curve.
  from dksflax.shaping.architecture_graphs import kernel_graph_for
  from dksflax.shaping.architectures import MLPSpec
  from dksflax.shaping.kernel_graph import with_affine_variances
  graph = with_affine_variances(
      kernel_graph_for(MLPSpec(depth=DEPTH, width=WIDTH, num_classes=10)), 2.0, 0.0)
  pred = predicted_qc(graph, "relu", correlations=CORRS, layer_names=names)
  last = lambda cs: np.array([_relu_chain(float(v), DEPTH)[-1] for v in np.atleast_1d(cs)])
  path = plot_qc(runs[0], str(tmp_path / "qc.png"), predicted=pred, c_map=last,
                 title="relu MLP")
  assert (tmp_path / "qc.png").stat().st_size > 1000 and path.endswith("qc.png")


def test_predicted_qc_from_kernel_graph_matches_closed_forms():
  """The kernel-graph prediction (H2's graph, H1's maps) equals the hand compositions."""
  from dksflax.shaping.architecture_graphs import kernel_graph_for
  from dksflax.shaping.architectures import MLPSpec
  from dksflax.shaping.kernel_graph import with_affine_variances
  graph = kernel_graph_for(MLPSpec(depth=DEPTH, width=WIDTH, num_classes=10))
  named = layer_graphs(graph)
  assert list(named)[:DEPTH] == [f"layer_{i}" for i in range(DEPTH)]
  assert list(named)[-1] == "logits"
  relu = predicted_qc(with_affine_variances(graph, 2.0, 0.0), "relu", correlations=CORRS)
  for j, cin in enumerate(CORRS):
    np.testing.assert_allclose(relu.c[:DEPTH, j], _relu_chain(cin, DEPTH), atol=1e-7)
    np.testing.assert_allclose(relu.q[:DEPTH, j], 1.0, rtol=1e-7)
  tanh = predicted_qc(graph, "tanh", correlations=CORRS,
                      layer_names=[f"layer_{i}" for i in range(DEPTH)])
  for j, cin in enumerate(CORRS):
    ref = _tanh_chain(cin, DEPTH, 1.0)
    np.testing.assert_allclose(tanh.q[:, j], [r[0] for r in ref], rtol=1e-6)
    np.testing.assert_allclose(tanh.c[:, j], [r[1] for r in ref], atol=1e-6)
  with pytest.raises(ValueError, match="known"):
    predicted_qc(graph, "tanh", layer_names=["layer_99"])


def test_empirical_qc_rejects_unknown_layers_and_nans():
  model = _MLP(2, 8, "relu", 2.0, "gaussian")
  variables = model.init(jax.random.key(0), jnp.zeros((1, 4)))
  with pytest.raises(ValueError, match="layer_0"):
    empirical_qc(model.apply, variables, input_shape=(4,), layer_names=["nope"], num_pairs=2)
  bad = jax.tree_util.tree_map(lambda a: a * jnp.nan, variables)
  with pytest.raises(ValueError, match="non-finite"):
    empirical_qc(model.apply, bad, input_shape=(4,), num_pairs=2)


@pytest.mark.parametrize("normalization", ["none", "layer_norm"])
def test_predicted_qc_resnet_names_and_one_pass_equals_prefixes(normalization):
  """ResNet intermediates are named like the model's `out`; the one-pass evaluation
  (no layer norm) equals evaluating every prefix graph on its own."""
  from dksflax.shaping.architecture_graphs import kernel_graph_for
  from dksflax.shaping.architectures import wide_resnet_spec
  from dksflax.shaping.kernel_graph import with_affine_variances
  spec = wide_resnet_spec(16, 1, variant="rescaled", shortcut_weight=0.8,
                          normalization=normalization)
  graph = with_affine_variances(kernel_graph_for(spec), 2.0, 0.0)
  named = layer_graphs(graph)
  assert list(named) == (["stem"] + [f"block_{i}" for i in range(len(spec.blocks))]
                         + ["pre_pool", "pre_logits", "logits"])
  one_pass = predicted_qc(graph, "relu", correlations=(0.0, 0.6))
  prefixes = predicted_qc(named, "relu", correlations=(0.0, 0.6))
  np.testing.assert_allclose(one_pass.c, prefixes.c, atol=1e-12)
  np.testing.assert_allclose(one_pass.q, prefixes.q, rtol=1e-12)
  # The stem is affine: c passes through unchanged; ReLU blocks raise c monotonically.
  np.testing.assert_allclose(one_pass.c[0], (0.0, 0.6), atol=1e-12)
  assert np.all(np.diff(one_pass.c[1:-2, 0]) > 0)
