"""Measured q/c of shaped networks at init agree with their kernel-graph predictions.

Pairs of inputs with per-location q = 1 and correlation c_in in {0, 0.5, 0.9}
(`dksflax.diagnostics.empirical`) go through the real Flax model; the prediction composes
the local C map of the network's (transformed) activation through the kernel graph of the
SAME spec the model was built from (`kernel_graph_for`, cut at the measured intermediate).
Tolerance: 3 standard errors over the input pairs plus a finite-width allowance of 0.03
(the kernel maps are the infinite-width limit; TAT App. E.1 shows deviations of this size
at these widths). The unshaped (He-initialised ReLU) net is checked against its own
prediction, which is the degenerate C map of DKS §12.1: every input pair ends up almost
perfectly correlated.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax import configlib
from dksflax.diagnostics.empirical import empirical_qc
from dksflax.diagnostics.predicted import layer_graphs
from dksflax.models.build import build_network
from dksflax.models.shaping_plan import local_c_map_fn, resolve_spec
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.architecture_graphs import kernel_graph_for

CORRELATIONS = (0.0, 0.5, 0.9)
ALLOWANCE = 0.03


@pytest.fixture(scope="module", autouse=True)
def _fast_compile():
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", False)


@pytest.fixture(scope="module")
def init_cache():
  """Variables by (model keys, init): DKS and TAT nets share their weight initialisation
  (orthogonal Delta, sigma_w^2 = 1, zero biases), so one SVD-heavy init serves both."""
  return {}


def measure_and_predict(layer: str, input_shape: tuple[int, ...], cache=None, seed: int = 0,
                        **keys):
  c = configlib.default_config()
  for k, v in keys.items():
    section, key = k.split("__")
    c[section][key] = v
  model, init_fn, report = build_network(c, num_classes=10, input_shape=input_shape)
  spec, _ = resolve_spec(c, 10)
  graph = layer_graphs(kernel_graph_for(spec))[layer]
  predicted = kg.network_c_map(graph, local_c_map_fn(report.shaping.activation))(
      np.asarray(CORRELATIONS))
  plan = report.shaping
  key = (repr(report.model), plan.weight_init, plan.weight_var, plan.bias_var, seed)
  if cache is None or key not in cache:
    variables = init_fn(jax.random.PRNGKey(seed), jnp.zeros((2, *input_shape)))
    if cache is not None:
      cache[key] = variables
  variables = cache[key] if cache is not None else variables
  measured = empirical_qc(functools.partial(model.apply, train=False), variables,
                          input_shape=input_shape, correlations=CORRELATIONS, num_pairs=8,
                          rng=seed, layer_names=[layer])
  return measured, np.asarray(predicted), report


def assert_agrees(measured, predicted):
  err = np.abs(measured.c[0] - predicted)
  bound = 3 * measured.c_se[0] + ALLOWANCE
  assert np.all(err <= bound), (measured.c[0], predicted, measured.c_se[0])


#: Orthogonal Delta (SUO) weights: square layers then preserve q exactly (DKS §4.2), which
#: Gaussian fan-in weights do only on average (q drifts by a factor ~e^(+-0.6) over 100
#: layers of width 512).
MLP = dict(model__name="mlp", model__depth=100, model__width=256)


@pytest.mark.parametrize("method,activation", [("tat", "leaky_relu"), ("dks", "softplus")])
def test_shaped_100_layer_mlp(method, activation, init_cache):
  measured, predicted, report = measure_and_predict(
      "layer_99", (16,), init_cache, shaping__method=method, model__activation=activation,
      **MLP)
  assert_agrees(measured, predicted)
  if method == "dks":
    # Q(1) = 1 and Q'(1) = 1 at every layer, and Q'' < 0 damps finite-width q errors
    # (DKS §15.1). A leaky ReLU's Q map is linear (positively homogeneous), so its q
    # performs an undamped multiplicative random walk at finite width while c, being
    # scale-invariant, still follows the C map: q is only checked for DKS.
    np.testing.assert_allclose(measured.q[0], 1.0, atol=0.15)
  if method == "tat":
    assert predicted[0] == pytest.approx(0.9, abs=1e-6)  # TAT: network C(0) = eta
  else:
    assert predicted[0] == pytest.approx(0.0, abs=1e-6)  # DKS: C(0) = 0 at every layer
  assert report.shaping.derived["nonlinear_layers"] == 100


def test_unshaped_100_layer_relu_mlp_degenerates_as_predicted():
  # The standard fan-in (He) Gaussian init; ReLU's c values do not depend on q.
  measured, predicted, _ = measure_and_predict(
      "layer_99", (16,), shaping__method="none", model__activation="relu",
      shaping__weight_init="fan_in_gaussian", **dict(MLP, model__width=512))
  assert_agrees(measured, predicted)
  # DKS §12.1: the C map of a deep ReLU net collapses towards the constant 1.
  assert predicted[0] > 0.95 and measured.c[0][0] > 0.9


#: Width 1/4 (bottlenecks of 16-128 channels): c agrees, q fluctuates (16-channel layers).
RESNET = dict(model__name="resnet50", model__width_multiplier=0.25)


@pytest.mark.parametrize("variant,method,activation", [
    ("vanilla", "tat", "leaky_relu"),
    pytest.param("rescaled", "dks", "softplus", marks=pytest.mark.slow),
    pytest.param("rescaled", "tat", "leaky_relu", marks=pytest.mark.slow),
    pytest.param("vanilla", "dks", "softplus", marks=pytest.mark.slow),
])
def test_shaped_resnet50(variant, method, activation):
  measured, predicted, _ = measure_and_predict(
      "pre_pool", (8, 8, 3), model__variant=variant, shaping__method=method,
      model__activation=activation, shaping__shortcut_weight=0.8, **RESNET)
  assert_agrees(measured, predicted)


@pytest.mark.slow
@pytest.mark.parametrize("variant,method,activation", [("vanilla", "tat", "leaky_relu"),
                                                       ("rescaled", "dks", "softplus")])
def test_shaped_resnet101(variant, method, activation):
  measured, predicted, _ = measure_and_predict(
      "pre_pool", (8, 8, 3), model__variant=variant, shaping__method=method,
      model__activation=activation, shaping__shortcut_weight=0.8,
      **dict(RESNET, model__name="resnet101"))
  assert_agrees(measured, predicted)
