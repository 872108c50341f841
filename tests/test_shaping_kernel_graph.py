"""Kernel graphs: derived maximal functions against the papers' closed forms.

The expected formulas are typed here from the papers (DKS Eq. (20), §23.5-23.6, §17.2;
TAT Appendix B.5), not taken from the code under test; network maps are checked against
the arc-cosine kernel composed by hand and against Monte-Carlo simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dksflax.errors import ConfigError, ShapingError
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.architecture_graphs import kernel_graph_for, vanilla_chain
from dksflax.shaping.architectures import mlp_spec, resnet_v2_spec, wide_resnet_spec

PSIS = (1.0, 1.003, 1.05, 1.3, 2.0)
SHORTCUT_WEIGHTS = (0.0, 0.5, 0.8, 0.9, 0.98, 1.0)


def _eq20(psi: float, depth: int, shortcut_weight: float) -> float:
  """DKS Eq. (20); DKS's w is the residual weight, so w^2 = 1 - shortcut_weight^2."""
  w2 = 1.0 - shortcut_weight**2
  return ((w2 * psi**3 + (1 - w2))**((depth - 14) / 3) * (w2 * psi**2 + (1 - w2))**4
          * psi**5)


def _wrn_slope(psi: float, depth: int, shortcut_weight: float) -> float:
  """DKS §23.6: (w^2 psi^2 + 1 - w^2)^((D-10)/2) (w^2 psi + 1 - w^2)^3 psi^4."""
  w2 = 1.0 - shortcut_weight**2
  return ((w2 * psi**2 + (1 - w2))**((depth - 10) / 2) * (w2 * psi + (1 - w2))**3
          * psi**4)


def _relu_c_map(c):
  """Normalised ReLU arc-cosine kernel (Cho & Saul; DKS Eq. 15 / TAT Eq. 22)."""
  c = np.clip(c, -1.0, 1.0)
  return (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c) / np.pi


def _lrelu_c_map(c, slope):
  """TAT Lemma 1 / Eq. (20): C map of the scaled leaky ReLU with negative slope `slope`."""
  c = np.clip(c, -1.0, 1.0)
  return c + (1 - slope)**2 / (np.pi * (1 + slope**2)) * (
      np.sqrt(1 - c**2) - c * np.arccos(c))


@pytest.mark.parametrize("depth", [50, 101, 152])
@pytest.mark.parametrize("shortcut_weight", SHORTCUT_WEIGHTS)
def test_resnet_v2_slope_is_dks_eq20(depth, shortcut_weight):
  spec = resnet_v2_spec(depth, variant="rescaled", shortcut_weight=shortcut_weight)
  mu = kg.max_slope_func(kernel_graph_for(spec))
  for psi in PSIS:
    assert mu(psi) == pytest.approx(_eq20(psi, depth, shortcut_weight), rel=1e-12)


@pytest.mark.parametrize("depth", [16, 28, 40, 250])
@pytest.mark.parametrize("shortcut_weight", SHORTCUT_WEIGHTS)
def test_wide_resnet_slope_is_dks_23_6(depth, shortcut_weight):
  spec = wide_resnet_spec(depth, 2, variant="rescaled", shortcut_weight=shortcut_weight)
  mu = kg.max_slope_func(kernel_graph_for(spec))
  for psi in PSIS:
    assert mu(psi) == pytest.approx(_wrn_slope(psi, depth, shortcut_weight), rel=1e-12)


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_vanilla_resnet_slope_is_psi_to_d_minus_1(depth):
  mu = kg.max_slope_func(kernel_graph_for(resnet_v2_spec(depth, variant="vanilla")))
  for psi in PSIS:
    assert mu(psi) == pytest.approx(psi**(depth - 1), rel=1e-12)


@pytest.mark.parametrize("depth", [16, 28, 250])
def test_vanilla_wrn_slope_is_psi_to_d_minus_3(depth):
  mu = kg.max_slope_func(kernel_graph_for(wide_resnet_spec(depth, 2, variant="vanilla")))
  for psi in PSIS:
    assert mu(psi) == pytest.approx(psi**(depth - 3), rel=1e-12)


def test_mlp_and_vanilla_chain_slope_and_curvature():
  for graph in (vanilla_chain(100), kernel_graph_for(mlp_spec(100, 8))):
    assert kg.max_slope_func(graph)(1.01) == pytest.approx(1.01**100, rel=1e-12)
    assert kg.max_curvature_func(graph)(0.003) == pytest.approx(0.3, rel=1e-12)
    assert kg.count_nonlinear(graph) == 100


@pytest.mark.parametrize("depth", [50, 101, 152])
@pytest.mark.parametrize("shortcut_weight", [0.0, 0.5, 0.9, 1.0])
def test_rescaled_resnet_curvature_is_tat_b5(depth, shortcut_weight):
  # TAT Appendix B.5 (L there is the depth parameter, w the shortcut weight):
  # max{[(L - 6)(1 - w^2) + 5] kappa, residual branches 3 kappa}.
  kappa = 0.01
  expected = max((depth - 6) * (1 - shortcut_weight**2) + 5, 3) * kappa
  spec = resnet_v2_spec(depth, variant="rescaled", shortcut_weight=shortcut_weight)
  assert kg.max_curvature_func(kernel_graph_for(spec))(kappa) == pytest.approx(
      expected, rel=1e-12)


def test_skip_around_deep_branch_takes_the_branch_maximum():
  # DKS §17.2: D combined layers skipped by a 1/sqrt(2) shortcut: network (1 + psi^D)/2,
  # but the skipped subnetwork gives psi^D, which is the maximum.
  depth = 6
  branch = [x for _ in range(depth) for x in (kg.Affine(), kg.Nonlinear())] + [kg.Affine()]
  s = 1 / math.sqrt(2)
  graph = kg.Chain((kg.NormalizedSum(([kg.Input()], branch), (s, s)),))
  values = dict(kg.subnetwork_values(graph, lambda x: 1.2 * x, 1.0))
  assert values["network"] == pytest.approx((1 + 1.2**depth) / 2, rel=1e-12)
  assert kg.max_slope_func(graph)(1.2) == pytest.approx(1.2**depth, rel=1e-12)
  # ... and with one more nonlinear layer after the skip: max{psi^D, psi (1 + psi^D)/2},
  # where either term wins depending on psi.
  graph2 = kg.Chain((graph, kg.Nonlinear(), kg.Affine()))
  mu = kg.max_slope_func(graph2)
  for psi in (1.01, 1.1, 1.5, 3.0):
    assert mu(psi) == pytest.approx(max(psi**depth, psi * (1 + psi**depth) / 2), rel=1e-12)
  assert 1.01**depth > 1.01 * (1 + 1.01**depth) / 2  # branch dominates near 1
  assert 3.0**depth < 3.0 * (1 + 3.0**depth) / 2  # network dominates for large psi


def test_branch_dominates_c0_in_shallow_rescaled_resnet():
  # A short net with a heavily weighted shortcut: the deep residual branch alone has a
  # larger C(0) than the whole network, and the maximum must pick it (TAT B.1).
  branch = [kg.Nonlinear(), kg.Affine()] * 3
  weights = (0.99, math.sqrt(1 - 0.99**2))
  graph = kg.Chain((kg.Affine(), kg.NormalizedSum(([kg.Input()], branch), weights), kg.Affine()))
  r = _relu_c_map
  whole = 0.99**2 * 0.0 + (1 - 0.99**2) * r(r(r(0.0)))
  assert kg.network_c_map(graph, r)(0.0) == pytest.approx(whole, rel=1e-12)
  assert kg.max_c0_func(graph)(r) == pytest.approx(float(r(r(r(0.0)))), rel=1e-12)


def test_max_c0_of_rescaled_resnet_matches_hand_walk():
  # The official dks package's ResNet-V2 walk (TAT B.5 structure), written out by hand.
  slope, w = 0.3, 0.8
  r = lambda c: _lrelu_c_map(c, slope)  # noqa: E731
  x = 0.0
  for stage_blocks in (3, 4, 6, 3):
    for j in range(stage_blocks):
      res = r(r(r(x)))
      short = r(x) if j == 0 else x
      x = w**2 * short + (1 - w**2) * res
  expected = max(r(x), r(r(r(0.0))))
  spec = resnet_v2_spec(50, variant="rescaled", shortcut_weight=w)
  assert kg.max_c0_func(kernel_graph_for(spec))(r) == pytest.approx(float(expected), rel=1e-12)


def test_network_c_map_of_relu_chain_composes_arccos():
  c = np.linspace(-1, 1, 41)
  expected = c.copy()
  for _ in range(12):
    expected = _relu_c_map(expected)
  got = kg.network_c_map(vanilla_chain(12), _relu_c_map)(c)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)


def test_concat_is_channel_weighted_mean():
  graph = kg.Chain((kg.Affine(), kg.Concat(([kg.Affine(), kg.Nonlinear(), kg.Affine()],
                                             [kg.Affine()]), (1, 3))))
  values = dict(kg.subnetwork_values(graph, lambda x: 1.5 * x, 1.0))
  assert values["network"] == pytest.approx((1 * 1.5 + 3 * 1.0) / 4)
  assert kg.max_slope_func(graph)(1.5) == pytest.approx(1.5)  # the nonlinear branch alone


def test_normalized_sum_validation():
  with pytest.raises(ShapingError, match=r"§21.2 step 5"):
    kg.NormalizedSum(([kg.Input()], [kg.Nonlinear(), kg.Affine()]), (1.0, 1.0))
  with pytest.raises(ShapingError, match="2 branches but 1 weights"):
    kg.NormalizedSum(([kg.Input()], [kg.Affine()]), (1.0,))
  with pytest.raises(ShapingError, match="correlated"):
    kg.NormalizedSum(([kg.Input()], [kg.Affine(), kg.Nonlinear()]), (0.6, 0.8))
  with pytest.raises(ShapingError, match="not a kernel-graph node"):
    kg.Chain(("relu",))
  with pytest.raises(ShapingError, match="Pool kind"):
    kg.Pool("median")


def test_batch_norm_is_refused():
  with pytest.raises(ConfigError, match="layer_norm"):
    kernel_graph_for(resnet_v2_spec(50, variant="standard"))
  with pytest.raises(ConfigError, match="rescaled"):
    kernel_graph_for(resnet_v2_spec(50, variant="standard", normalization="none"))
  with pytest.raises(ConfigError, match="batch"):
    kernel_graph_for(mlp_spec(4, 8, normalization="batch_norm"))
  graph = kg.Chain((kg.Affine(), kg.Normalize("batch"), kg.Nonlinear(), kg.Affine()))
  for derive in (kg.max_slope_func, kg.max_c0_func, kg.max_curvature_func):
    with pytest.raises(ShapingError, match="batch normalisation"):
      derive(graph)


def test_non_default_affine_refused_by_q1_calculus():
  graph = kg.Chain((kg.Affine(weight_var=2.0), kg.Nonlinear(), kg.Affine()))
  with pytest.raises(ShapingError, match="network_qc_map"):
    kg.max_slope_func(graph)


def test_layer_norm_variants_have_the_same_slope():
  for variant in ("rescaled", "vanilla"):
    plain = kernel_graph_for(resnet_v2_spec(50, variant=variant))
    ln = kernel_graph_for(resnet_v2_spec(50, variant=variant, normalization="layer_norm"))
    assert kg.max_slope_func(ln)(1.1) == pytest.approx(kg.max_slope_func(plain)(1.1))


def test_standard_layer_norm_resnet_tracks_q_growth():
  # x + R(x) with pre-activation LN: block k of a stage-free net has shortcut weight^2
  # q/(q+1). With blocks (1, 1, 1, 1) every block is a transition (q resets to 2).
  spec = resnet_v2_spec(14, variant="standard", normalization="layer_norm",
                        blocks_per_stage=(1, 1, 1, 1))
  mu = kg.max_slope_func(kernel_graph_for(spec))
  psi = 1.2
  block = 0.5 * psi + 0.5 * psi**3  # shared N, then (A) vs (A N A N A), equal weights
  assert mu(psi) == pytest.approx(block**4 * psi, rel=1e-12)
  # Non-transition blocks: identity shortcut carries q = 2, 3, ... (weights q/(q+1)).
  spec = resnet_v2_spec(20, variant="standard", normalization="layer_norm",
                        blocks_per_stage=(3, 1, 1, 1))
  expected = (0.5 * psi + 0.5 * psi**3) * (2 / 3 + psi**3 / 3) * (3 / 4 + psi**3 / 4)
  expected *= block**3 * psi
  assert kg.max_slope_func(kernel_graph_for(spec))(psi) == pytest.approx(expected, rel=1e-12)


def test_resavg_keeps_the_slope_and_mixes_c_values():
  plain = kernel_graph_for(resnet_v2_spec(50, variant="rescaled"))
  resavg = kernel_graph_for(resnet_v2_spec(50, variant="rescaled", resavg=True))
  assert kg.max_slope_func(resavg)(1.1) == pytest.approx(kg.max_slope_func(plain)(1.1))
  # The pool term is a fraction of an identity path, so C(0) grows (less mixing).
  r = lambda c: _lrelu_c_map(c, 0.2)  # noqa: E731
  assert kg.network_c_map(resavg, r)(0.0) > kg.network_c_map(plain, r)(0.0)


def _gauss_layer_map(phi, n=80):
  """Extended C/Q map of an activation by 2-D Gauss-Hermite quadrature (test reference)."""
  x, w = np.polynomial.hermite_e.hermegauss(n)
  w = w / w.sum()

  def layer_map(q1, q2, c):
    q1, q2, c = np.broadcast_arrays(*(np.asarray(v, float) for v in (q1, q2, c)))
    out = [np.empty(q1.shape) for _ in range(3)]
    for idx in np.ndindex(q1.shape):
      a, b, cc = q1[idx], q2[idx], c[idx]
      u = np.sqrt(a) * x[:, None]
      v = np.sqrt(b) * (cc * x[:, None] + np.sqrt(max(0.0, 1 - cc**2)) * x[None, :])
      ww = w[:, None] * w[None, :]
      n1 = np.sum(w * phi(np.sqrt(a) * x)**2)
      n2 = np.sum(w * phi(np.sqrt(b) * x)**2)
      out[0][idx], out[1][idx] = n1, n2
      out[2][idx] = np.sum(ww * phi(u) * phi(v)) / np.sqrt(n1 * n2)
    return tuple(o if o.shape else float(o) for o in out)

  return layer_map


def test_layer_norm_after_nonlinearity_matches_monte_carlo():
  # DKS §19.2: LN after a ReLU subtracts the mean; compare Eq. (17) through the graph with
  # the centred cosine similarity of 2e6 correlated Gaussian samples.
  rng = np.random.default_rng(0)
  graph = kg.Chain((kg.Affine(), kg.Nonlinear(), kg.Normalize()))
  relu = lambda x: np.sqrt(2) * np.maximum(x, 0)  # noqa: E731
  for c in (0.0, 0.5, 0.9):
    z1, z2 = rng.standard_normal((2, 2_000_000))
    u, v = relu(z1), relu(c * z1 + math.sqrt(1 - c * c) * z2)
    u, v = u - u.mean(), v - v.mean()
    mc = float(np.mean(u * v) / np.sqrt(np.mean(u * u) * np.mean(v * v)))
    assert kg.network_c_map(graph, _relu_c_map)(c) == pytest.approx(mc, abs=3e-3)
    _, _, c_qc = kg.network_qc_map(graph, _gauss_layer_map(relu, 120), 1.0, 1.0, c)
    assert float(c_qc) == pytest.approx(mc, abs=3e-3)


def test_network_qc_map_matches_wide_random_networks():
  # Unshaped tanh, sigma_w^2 = 1.5, sigma_b^2 = 0.1, in a pre-activation rescaled residual
  # block (every nonlinear layer sees a sum of affine outputs, DKS §21.1 item 1): simulate
  # wide numpy networks and compare q and c at the output within Monte-Carlo error.
  sw2, sb2, width, w, runs = 1.5, 0.1, 1000, 0.8, 6
  aff = kg.Affine(weight_var=sw2, bias_var=sb2)
  graph = kg.Chain((aff, kg.NormalizedSum(([kg.Input()], [kg.Nonlinear(), aff, kg.Nonlinear(),
                                                            aff]), (w, math.sqrt(1 - w * w))),
                    kg.Nonlinear()))
  q_in, c_in = 1.3, 0.4
  q1, _, c = kg.network_qc_map(graph, _gauss_layer_map(np.tanh), q_in, q_in, c_in)

  rng = np.random.default_rng(1)
  measured = []
  for _ in range(runs):
    x1 = rng.standard_normal(width)
    x1 *= math.sqrt(q_in * width) / np.linalg.norm(x1)
    e = rng.standard_normal(width)
    e -= (e @ x1) / (x1 @ x1) * x1
    e *= np.linalg.norm(x1) / np.linalg.norm(e)
    x = np.stack([x1, c_in * x1 + math.sqrt(1 - c_in**2) * e])

    def affine(h):
      wmat = rng.standard_normal((width, width)) * math.sqrt(sw2 / width)
      return h @ wmat.T + rng.standard_normal(width) * math.sqrt(sb2)

    h = affine(x)
    h = w * h + math.sqrt(1 - w * w) * affine(np.tanh(affine(np.tanh(h))))
    h = np.tanh(h)
    qs = np.mean(h * h, axis=1)
    measured.append((qs[0], np.mean(h[0] * h[1]) / math.sqrt(qs[0] * qs[1])))
  measured = np.array(measured)
  mean, sem = measured.mean(0), measured.std(0, ddof=1) / math.sqrt(runs)
  assert abs(float(q1) - mean[0]) < 4 * sem[0] + 1e-3
  assert abs(float(c) - mean[1]) < 4 * sem[1] + 1e-3
  # The prediction is not trivially satisfied: a net without the residual branch differs.
  q_plain, _, _ = kg.network_qc_map(kg.Chain((aff, kg.Nonlinear())), _gauss_layer_map(np.tanh),
                                    q_in, q_in, c_in)
  assert abs(float(q_plain) - mean[0]) > 6 * sem[0]


def test_subnetwork_paths_name_blocks():
  spec = resnet_v2_spec(50, variant="rescaled", shortcut_weight=1.0)
  values = kg.subnetwork_values(kernel_graph_for(spec), lambda x: 1.1 * x, 1.0)
  paths = dict(values)
  # With w = 1 the residual branches do not enter the network's polynomial (psi^5), but
  # each is still a candidate subnetwork: psi^3, or psi^2 after a transition block's
  # shared nonlinearity; one candidate per branch of the 16 blocks, plus the network.
  assert paths["network/block_1/0/sum[residual]"] == pytest.approx(1.1**3)
  assert paths["network/block_0/1/sum[residual]"] == pytest.approx(1.1**2)  # shared N
  assert max(values, key=lambda pv: pv[1])[0] == "network"
  assert len(values) == 1 + 2 * 16


def test_he_relu_chain_qc_map_keeps_q_and_composes_arccos():
  # He initialisation (sigma_w^2 = 2) with the raw ReLU: q = 1 preserved, c by arc-cosine.
  relu_map = lambda q1, q2, c: (q1 / 2, q2 / 2, _relu_c_map(c))  # noqa: E731
  graph = kg.with_affine_variances(vanilla_chain(30), 2.0, 0.0)
  c = np.array([-0.5, 0.0, 0.7])
  q1, q2, c_out = kg.network_qc_map(graph, relu_map, 1.0, 1.0, c)
  expected = c.copy()
  for _ in range(30):
    expected = _relu_c_map(expected)
  assert float(q1) == pytest.approx(2.0) and float(q2) == pytest.approx(2.0)  # + classifier
  np.testing.assert_allclose(c_out, expected, atol=1e-14)


def test_chebyshev_tables_are_accurate():
  from dksflax.shaping import maps
  from dksflax.shaping.map_tables import chebyshev_c_map, tabulated_local_c_map
  c = np.linspace(-1, 1, 201)
  assert np.max(np.abs(chebyshev_c_map(_relu_c_map)(c) - _relu_c_map(c))) < 2e-5
  probe = np.array([-0.83, -0.2, 0.0, 0.41, 0.97])
  table = tabulated_local_c_map("tanh")
  np.testing.assert_allclose(table(probe), maps.local_c_map("tanh", probe), atol=1e-9)
  with pytest.raises(ValueError, match="degree"):
    chebyshev_c_map(_relu_c_map, degree=1)


@pytest.mark.parametrize("depth, convs", [(50, 53), (101, 104), (152, 155)])
def test_resnet_graph_has_one_affine_per_conv(depth, convs):
  # ResNet-V2-D: a stem conv, 3 convs per block ((D - 2)/3 blocks), 4 projection shortcuts,
  # so 53 / 104 / 155 convolutions, plus the classifier (He et al. 2016).
  graph = kernel_graph_for(resnet_v2_spec(depth, variant="rescaled"))
  affines = [n for n in kg.walk(graph) if isinstance(n, kg.Affine)]
  assert len(affines) == convs + 1
  vanilla = kernel_graph_for(resnet_v2_spec(depth, variant="vanilla"))
  assert sum(isinstance(n, kg.Affine) for n in kg.walk(vanilla)) == convs + 1 - 4
  assert sum(isinstance(n, kg.Pool) for n in kg.walk(graph)) == 2  # stem max-pool, head


def test_curvature_refuses_layer_norm_after_activation():
  graph = kg.Chain((kg.Affine(), kg.Nonlinear(), kg.Normalize(), kg.Affine(), kg.Nonlinear(),
                    kg.Affine()))
  with pytest.raises(ShapingError, match="pre-activation"):
    kg.max_curvature_func(graph)(0.1)
  # The slope calculus treats it as the identity (DKS §21.3 rule 6, C(0) = 0 under DKS).
  assert kg.max_slope_func(graph)(1.2) == pytest.approx(1.44)
  with pytest.raises(ValueError, match="ln_mode"):
    kg.subnetwork_values(graph, lambda x: x, 1.0, ln_mode="exact")


@pytest.mark.parametrize("depth, slope", [
    # TAT leaky-ReLU negative slopes for eta = 0.9 of the skip-free ResNet-V2 ("LReLUNet")
    # that the kfac-jax ImageNet example hard-codes (examples/lrelunet101_imagenet).
    (50, 0.4259071946144104), (101, 0.5704395323991776), (152, 0.6386479139328003)])
def test_max_c0_of_vanilla_resnets_reproduces_published_tat_slopes(depth, slope):
  mu = kg.max_c0_func(kernel_graph_for(resnet_v2_spec(depth, variant="vanilla")))
  lo, hi = 0.0, 1.0  # mu decreases with the slope (TAT Appendix B.3): bisect mu = 0.9
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if mu(lambda c, s=mid: _lrelu_c_map(c, s)) > 0.9 else (lo, mid)
  assert 0.5 * (lo + hi) == pytest.approx(slope, abs=1e-8)
