"""Leaky ReLU closed forms (TAT Eq. 9) and the fast TAT leaky-ReLU solve (TAT §4.1).

The closed forms are checked against the kink-split Gauss quadrature of
`dksflax.shaping.maps` (an independent computation of the same expectations) to 1e-12;
the compiled kernel graph against the generic tree walk of `kernel_graph`, bit for bit;
the solved slope against a vectorised NumPy bisection written here.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from dksflax.errors import ShapingError
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping import maps
from dksflax.shaping.activations import get_activation
from dksflax.shaping.architecture_graphs import kernel_graph_for, vanilla_chain
from dksflax.shaping.architectures import mlp_spec, resnet_v2_spec, wide_resnet_spec
from dksflax.shaping.kernel_graph_program import compile_graph
from dksflax.shaping.leaky_relu import (leaky_relu_c_map, leaky_relu_gamma, leaky_relu_local_c0,
                                        leaky_relu_q_map, leaky_relu_rule,
                                        leaky_relu_rule_from_c0, leaky_relu_slope_from_c0)
from dksflax.shaping.tat import solve_tat_lrelu

SLOPES = (0.0, 0.2, 0.5704395, 1.0, -0.4, 2.5)
C_GRID = np.array([-1.0, -0.93, -0.5, -0.1, 0.0, 0.3, 0.77, 0.999, 1.0])


@pytest.mark.parametrize("s", SLOPES)
@pytest.mark.parametrize("q1,q2", [(1.0, 1.0), (0.3, 2.7)])
def test_gamma_matches_quadrature(s, q1, q2):
  act = get_activation("leaky_relu", negative_slope=s)
  want = maps.gamma_map(act, C_GRID, q1, q2)
  np.testing.assert_allclose(leaky_relu_gamma(C_GRID, s, q1, q2), want, rtol=0, atol=1e-12)
  # Arc-cosine kernel of degree 1 for ReLU (s = 0), written out: sqrt(q1 q2)/(2 pi) *
  # (sqrt(1 - c^2) + (pi - arccos c) c) (Cho & Saul 2009).
  if s == 0.0:
    relu = math.sqrt(q1 * q2) / (2 * math.pi) * (np.sqrt(1 - C_GRID**2)
                                                 + (math.pi - np.arccos(C_GRID)) * C_GRID)
    np.testing.assert_allclose(leaky_relu_gamma(C_GRID, s, q1, q2), relu, atol=1e-15)


@pytest.mark.parametrize("s", SLOPES)
def test_q_map_is_linear_and_matches_quadrature(s):
  act = get_activation("leaky_relu", negative_slope=s)
  for q in (0.01, 1.0, 3.7):
    assert leaky_relu_q_map(q, s) == pytest.approx(float(maps.local_q_map(act, q)),
                                                   rel=1e-12)
    assert leaky_relu_q_map(q, s) == pytest.approx(q * (1 + s * s) / 2, rel=1e-15)


@pytest.mark.parametrize("s", [x for x in SLOPES if x != 1.0])
def test_c_map_slope_and_c0_match_quadrature(s):
  act = get_activation("leaky_relu", negative_slope=s)
  k = (1 - s)**2 / (math.pi * (1 + s * s))
  assert leaky_relu_local_c0(s) == pytest.approx(k, rel=1e-15)
  # C does not depend on q (positive homogeneity): compare at unequal q's too.
  for q1, q2 in ((1.0, 1.0), (0.4, 5.0)):
    np.testing.assert_allclose(leaky_relu_c_map(C_GRID, s),
                               maps.local_c_map(act, C_GRID, q1, q2), rtol=0, atol=1e-12)
  # C'(c) = 1 - k arccos c, from the closed form differentiated by hand, against the
  # quadrature of E[phi'(u) phi'(v)] (DKS §8.1.2); interior points only.
  inner = C_GRID[1:-1]
  np.testing.assert_allclose(1 - k * np.arccos(inner), maps.local_c_slope(act, inner),
                             rtol=0, atol=1e-12)


def test_scaled_leaky_relu_has_unit_q_map():
  # TAT §4.1: output scale sqrt(2/(1+s^2)) gives Q(q) = q.
  s = 0.35
  act = get_activation("leaky_relu", negative_slope=s)
  gamma2 = 2 / (1 + s * s)
  assert gamma2 * leaky_relu_q_map(0.6, s) == pytest.approx(0.6, rel=1e-15)
  assert gamma2 * float(maps.local_q_map(act, 0.6)) == pytest.approx(0.6, rel=1e-12)


def test_rule_scalar_and_array_paths_agree():
  rule = leaky_relu_rule(0.3)
  c = np.concatenate([np.linspace(-1, 1, 201), [1.0 + 1e-12, -1.0 - 1e-12]])
  array_out = rule(c)
  scalar_out = np.array([rule(float(v)) for v in c])
  assert isinstance(rule(0.25), float) and array_out.shape == c.shape
  np.testing.assert_allclose(scalar_out, array_out, rtol=0, atol=4e-16)
  assert rule(1.0 + 1e-12) == pytest.approx(1.0, abs=1e-15)   # clipped
  assert math.isnan(rule(math.nan))
  assert rule(np.float64(0.0)) == pytest.approx(leaky_relu_local_c0(0.3), rel=1e-15)
  with pytest.raises(ShapingError, match="negative_slope"):
    leaky_relu_rule(math.inf)
  linear = leaky_relu_rule(1.0)   # k = 0: the identity, clipped
  assert linear(0.3) == 0.3 and linear(1.5) == 1.0
  np.testing.assert_array_equal(linear(c), np.clip(c, -1, 1))


def test_slope_from_c0_inverts_eq_9():
  for s in np.linspace(0.0, 1.0, 101):
    assert leaky_relu_slope_from_c0(leaky_relu_local_c0(s)) == pytest.approx(s, abs=1e-14)
    assert leaky_relu_rule_from_c0(leaky_relu_local_c0(s))(0.4) == leaky_relu_rule(s)(0.4)
  assert leaky_relu_slope_from_c0(1 / math.pi) == 0.0
  assert leaky_relu_slope_from_c0(0.0) == 1.0
  for bad in (-1e-3, 0.33, math.nan):
    with pytest.raises(ShapingError, match="1/pi"):
      leaky_relu_slope_from_c0(bad)


# ---------------------------------------------------------------------------------------
# Compiled kernel graphs: the same values as the generic evaluator, bit for bit.


def _graphs():
  yield "vanilla-30", vanilla_chain(30)
  for variant in ("rescaled", "vanilla"):
    for norm in ("none", "layer_norm"):
      yield (f"resnet50-{variant}-{norm}",
             kernel_graph_for(resnet_v2_spec(50, variant=variant, normalization=norm,
                                             shortcut_weight=0.8)))
  yield "resnet20-standard-ln", kernel_graph_for(resnet_v2_spec(
      20, variant="standard", normalization="layer_norm", blocks_per_stage=(3, 1, 1, 1)))
  yield "resnet50-resavg", kernel_graph_for(resnet_v2_spec(50, variant="rescaled",
                                                           resavg=True))
  yield "wrn16-2", kernel_graph_for(wide_resnet_spec(16, 2, variant="rescaled",
                                                     shortcut_weight=0.9))
  yield "mlp-ln", kernel_graph_for(mlp_spec(6, 8, normalization="layer_norm"))
  inner = kg.NormalizedSum(([kg.Input()], [kg.Nonlinear(), kg.Affine()]), (0.6, 0.8))
  yield "nested-concat", kg.Chain((
      kg.Affine(), kg.Nonlinear(),
      kg.Concat(([kg.Affine(), inner, kg.Nonlinear(), kg.Affine()], [kg.Affine()]), (3, 1)),
      kg.Nonlinear(), kg.Normalize(), kg.Affine(), kg.Nonlinear(), kg.Affine()))
  yield "ln-after-two-activations", kg.Chain((  # mean undetermined: an error under "cmap"
      kg.Affine(), kg.Concat(([kg.Nonlinear()], [kg.Nonlinear()]), (1, 2)), kg.Normalize(),
      kg.Nonlinear(), kg.Affine()))
  yield "ln-after-activation", kg.Chain((kg.Affine(), kg.Nonlinear(), kg.Normalize(),
                                         kg.Affine(), kg.Nonlinear(), kg.Affine()))


@pytest.mark.parametrize("name,graph", list(_graphs()), ids=lambda x: x if isinstance(
    x, str) else "")
def test_compiled_graph_equals_generic_walk(name, graph):
  del name
  cases = [(leaky_relu_rule(0.37), 0.0, "cmap"), (leaky_relu_rule(0.0), 0.0, "cmap"),
           (lambda x: 1.07 * x, 1.0, "identity"), (lambda x: x + 0.01, 0.0, "centred")]
  for rule, start, mode in cases:
    try:
      want = max(v for _, v in kg.subnetwork_values(graph, rule, start, ln_mode=mode))
    except ShapingError as e:
      with pytest.raises(ShapingError, match=str(e)[:40]):
        compile_graph(graph, mode).maximum(rule, start)
      continue
    got = compile_graph(graph, mode).maximum(rule, start)
    assert got == want, (mode, got, want)
  # The derived maximal functions use the compiled form.
  try:
    want = max(v for _, v in kg.subnetwork_values(graph, cases[0][0], 0.0))
  except ShapingError:
    with pytest.raises(ShapingError, match="uncentred"):
      kg.max_c0_func(graph)(cases[0][0])
  else:
    assert kg.max_c0_func(graph)(cases[0][0]) == want


def test_compiled_graph_dedupes_identical_blocks_and_propagates_nan():
  graph = kernel_graph_for(resnet_v2_spec(101, variant="rescaled", shortcut_weight=0.8))
  program = compile_graph(graph, "cmap")
  generic = kg.subnetwork_values(graph, leaky_relu_rule(0.2), 0.0)
  assert len(generic) == 1 + 2 * 33             # network + both branches of 33 blocks
  assert len(program.branches) < 10             # identical blocks compile to one program
  assert set(program.values(leaky_relu_rule(0.2), 0.0)) == {v for _, v in generic}
  assert math.isnan(program.maximum(lambda x: x * math.nan, 0.5))
  with pytest.raises(ValueError, match="ln_mode"):
    compile_graph(graph, "exact")


# ---------------------------------------------------------------------------------------
# The TAT leaky-ReLU solve.


def _numpy_bisection(depth: int, eta: float) -> float:
  """s with C^L(0) = eta for an L-layer chain: bisection, NumPy, written independently."""
  lo, hi = 0.0, 1.0
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    k = (1 - mid)**2 / (np.pi * (1 + mid**2))
    c = 0.0
    for _ in range(depth):
      c = c + k * (np.sqrt(1 - c * c) - c * np.arccos(c))
    lo, hi = (mid, hi) if c > eta else (lo, mid)
  return 0.5 * (lo + hi)


@pytest.mark.parametrize("depth,eta", [(100, 0.9), (10, 0.5), (1000, 0.95)])
def test_solve_matches_independent_bisection(depth, eta):
  p = solve_tat_lrelu(max_c0_func=kg.max_c0_func(vanilla_chain(depth)), eta=eta)
  assert p.negative_slope == pytest.approx(_numpy_bisection(depth, eta), abs=1e-13)
  assert p.network_c0 == pytest.approx(eta, abs=1e-14)
  assert p.local_c0 == pytest.approx(leaky_relu_local_c0(p.negative_slope), rel=1e-15)


def test_solve_uses_few_network_evaluations_and_is_fast():
  graph = kernel_graph_for(resnet_v2_spec(101, variant="rescaled", normalization="none",
                                          shortcut_weight=0.8))
  c0 = kg.max_c0_func(graph)
  calls = []

  def counted(r):
    calls.append(r)
    return c0(r)

  p = solve_tat_lrelu(max_c0_func=counted, eta=0.9)
  # Brent's method on 1/sqrt(1 - C_f(0)) against k = C(0), memoised ends: 8 evaluations
  # (the dks package's bisection to |C_f(0) - eta| < 1e-8 needs ~27; Brent on C_f(0)
  # against s, re-evaluating the ends, took 16).
  assert len(calls) <= 9, len(calls)
  assert p.negative_slope == pytest.approx(0.353598, abs=1e-6)   # benchmarks/RESULTS.md
  # Everything a float: the rule takes the math fast path on every call.
  times = []
  for _ in range(3):
    t = time.process_time()
    solve_tat_lrelu(max_c0_func=kg.max_c0_func(graph), eta=0.9)
    times.append(time.process_time() - t)
  assert min(times) < 0.02, times   # ~1.5 ms on one idle core; the walk took ~30 ms
