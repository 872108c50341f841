"""PLN maths (DKS §10.2) against closed forms and a loop-by-loop independent computation."""

from __future__ import annotations

import numpy as np
import pytest

from dksflax.configlib import data as data_cfg
from dksflax.errors import ConfigError
from dksflax.shaping import pln


def _reference_extra_channel(x: np.ndarray) -> np.ndarray:
  """DKS §10.2 written out location by location for one feature map [H, W, k]."""
  h_, w_, k = x.shape
  locations = [x[i, j] for i in range(h_) for j in range(w_)]
  extra = np.sqrt(sum(float(v @ v) for v in locations) / len(locations) / k)
  out = np.empty((h_, w_, k + 1))
  for i in range(h_):
    for j in range(w_):
      v = np.append(x[i, j], extra)
      out[i, j] = np.sqrt(k + 1) * v / np.sqrt(float(x[i, j] @ x[i, j]) + extra ** 2)
  return out


def test_modes_match_config():
  assert pln.PLN_MODES == data_cfg.PLN_MODES


@pytest.mark.parametrize("mode", ["extra_channel", "constant"])
def test_every_location_has_unit_q(mode):
  x = np.random.default_rng(0).normal(size=(3, 5, 4, 3)) * np.array([0.1, 3.0, 40.0])
  z = pln.per_location_normalize(x, mode)
  assert z.shape == (3, 5, 4, 4)
  np.testing.assert_allclose(pln.dimension_normalized_sq_norms(z), 1.0, rtol=1e-13)


def test_extra_channel_matches_loop_reference():
  x = np.random.default_rng(1).normal(size=(2, 4, 3, 3)) + 0.5
  z = pln.per_location_normalize(x, "extra_channel")
  for b in range(2):
    np.testing.assert_allclose(z[b], _reference_extra_channel(x[b]), rtol=1e-12)


def test_extra_channel_value_is_rms_of_feature_map():
  x = np.random.default_rng(2).normal(size=(4, 6, 6, 3))
  want = [np.sqrt(np.sum(x[b] ** 2) / (36 * 3)) for b in range(4)]
  np.testing.assert_allclose(pln.extra_channel_value(x), want, rtol=1e-13)
  # The extra channel after PLN holds h * sqrt(k+1) / sqrt(||x_i||^2 + h^2).
  z = pln.per_location_normalize(x, "extra_channel")
  h = np.asarray(want)[:, None, None]
  np.testing.assert_allclose(
      z[..., 3], h * 2.0 / np.sqrt(np.sum(x ** 2, axis=-1) + h ** 2), rtol=1e-12)


def test_single_location_closed_forms():
  # DKS §10.2: one location gives [sqrt(k) x / ||x||; 1] (extra_channel) and
  # sqrt(k+1) [x; 1] / sqrt(||x||^2 + 1) (constant).
  x = np.array([3.0, -1.0, 2.0])
  k, norm = 3, np.linalg.norm(x)
  z = pln.per_location_normalize(x, "extra_channel", has_batch_dim=False)
  np.testing.assert_allclose(z, np.append(np.sqrt(k) * x / norm, 1.0), rtol=1e-14)
  z = pln.per_location_normalize(x, "constant", has_batch_dim=False)
  np.testing.assert_allclose(z, 2.0 * np.append(x, 1.0) / np.sqrt(norm ** 2 + 1), rtol=1e-14)


def test_constant_mode_is_invertible():
  x = np.random.default_rng(3).normal(size=(5, 7)) * 10.0
  z = pln.per_location_normalize(x, "constant")
  k = x.shape[-1]
  # Invert: the last entry is sqrt(k+1)/sqrt(||x||^2+1).
  s = np.sqrt(k + 1) / z[..., -1:]
  np.testing.assert_allclose(z[..., :-1] * s / np.sqrt(k + 1), x, rtol=1e-12)


def test_extra_channel_is_scale_invariant_and_keeps_k1_information():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(1, 6, 6, 1))
  z = pln.per_location_normalize(x, "extra_channel")
  np.testing.assert_allclose(pln.per_location_normalize(100.0 * x, "extra_channel"), z,
                             rtol=1e-12)
  # k = 1: naive normalisation gives +-1 everywhere; with the extra channel the first
  # channel still varies with |x| (DKS §10.2's motivation).
  assert np.unique(np.round(np.abs(z[..., 0]), 8)).size > 10


def test_all_zero_map_gives_unit_extra_channel_not_nan():
  z = pln.per_location_normalize(np.zeros((2, 3, 3, 2)), "extra_channel")
  assert np.all(np.isfinite(z))
  np.testing.assert_allclose(z[..., :2], 0.0)
  np.testing.assert_allclose(z[..., 2], np.sqrt(3.0))


def test_none_is_identity_and_channel_counts():
  x = np.arange(12.0).reshape(1, 2, 2, 3)
  np.testing.assert_array_equal(pln.per_location_normalize(x, "none"), x)
  assert pln.pln_num_channels(3, "none") == 3
  assert pln.pln_num_channels(3, "extra_channel") == 4
  assert pln.pln_num_channels(1, "constant") == 2


def test_bad_input_errors():
  with pytest.raises(ConfigError, match="data.pln='l2'.*'extra_channel'"):
    pln.per_location_normalize(np.ones((1, 2, 2, 3)), "l2")
  with pytest.raises(ValueError, match="non-finite"):
    pln.per_location_normalize(np.array([[np.nan, 1.0]]), "constant")
  with pytest.raises(ValueError, match="channel axis"):
    pln.extra_channel_value(np.ones((4,)), has_batch_dim=True)
  with pytest.raises(ConfigError, match="positive integer"):
    pln.pln_num_channels(0, "none")
