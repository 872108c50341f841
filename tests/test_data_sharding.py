"""Global batches on a 2-device mesh: exact masked evaluation, placement, divisibility."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dksflax.configlib import data as data_cfg
from dksflax.data import make_eval_iterator, make_train_iterator
from dksflax.data import array_pipeline, augment_np
from dksflax.data.arrays import synthetic_split
from dksflax.data.prefetch import batch_shards, shards_per_process
from dksflax.data.stream import StreamLayout
from dksflax.errors import ConfigError


@pytest.fixture(name="sharding")
def _sharding():
  devices = np.array(jax.devices()[:2])
  assert devices.size == 2, "tests/conftest.py provides 2 fake CPU devices"
  return NamedSharding(Mesh(devices, ("data",)), PartitionSpec("data"))


def _config(**kw):
  c = data_cfg.defaults()
  c.name = "synthetic"
  c.synthetic_shape = (4, 4, 3)
  c.synthetic_classes = 5
  for k, v in kw.items():
    c[k] = v
  return c


def test_eval_counts_1001_examples_once_and_matches_unpadded_accuracy(sharding):
  c = _config(synthetic_eval_examples=1001, pln="extra_channel")
  w = np.random.default_rng(0).normal(size=(4 * 4 * 4, 5)).astype(np.float32)

  @jax.jit
  def counts(batch):
    logits = batch["image"].reshape(batch["image"].shape[0], -1) @ w
    correct = (jnp.argmax(logits, -1) == batch["label"]) & batch["mask"]
    return jnp.sum(correct), jnp.sum(batch["mask"])

  n_correct = n_seen = n_batches = 0
  for batch in make_eval_iterator(c, global_batch_size=64, sharding=sharding):
    assert isinstance(batch["image"], jax.Array) and batch["image"].shape == (64, 4, 4, 4)
    assert batch["mask"].sharding.is_equivalent_to(sharding, 1)
    a, b = counts(batch)
    n_correct, n_seen, n_batches = n_correct + int(a), n_seen + int(b), n_batches + 1
  assert (n_seen, n_batches) == (1001, 16)
  # Unpadded reference, in numpy float64, over the whole split at once.
  split = synthetic_split(c, False, 0, 1)
  x = augment_np.apply_pln(augment_np.normalize(split.images, split.scale, split.mean,
                                                split.std), "extra_channel")
  ref = np.mean(np.argmax(x.reshape(1001, -1).astype(np.float64) @ w, -1) == split.labels)
  assert n_correct / n_seen == pytest.approx(ref, abs=1e-12)
  assert 0.1 < ref < 0.35  # a random linear map on 5 classes: near chance, not degenerate


def test_one_process_two_devices_gets_the_batches_of_two_processes(sharding):
  # One process driving 2 devices must see the global batches that 2 processes with one
  # device each assemble from their own shards (simulated here process by process).
  c = _config(synthetic_examples=64)
  placed = make_train_iterator(c, global_batch_size=8, seed=1, start_step=2,
                               sharding=sharding)
  per_process = [array_pipeline.train_batches(
      synthetic_split(c, True, p, 2), StreamLayout(64, 8, p, 2), seed=1, start_step=2,
      augment=True, pln="none") for p in range(2)]
  plain = make_train_iterator(c, global_batch_size=8, seed=1, start_step=2)
  for _ in range(3):
    a = next(placed)
    want = [next(it) for it in per_process]
    assert a["image"].sharding == sharding and a["image"].shape == (8, 4, 4, 3)
    assert len(a["image"].addressable_shards) == 2
    np.testing.assert_array_equal(np.asarray(a["image"]),
                                  np.concatenate([w["image"] for w in want]))
    np.testing.assert_array_equal(np.asarray(a["label"]),
                                  np.concatenate([w["label"] for w in want]))
    # Without a sharding there is one data shard per process, hence other batches.
    assert not np.array_equal(np.asarray(a["label"]), next(plain)["label"])


def test_batch_not_divisible_by_devices_is_a_clear_error(sharding):
  assert batch_shards(sharding) == 2 and shards_per_process(8, sharding) == 2
  with pytest.raises(ConfigError, match="global_batch_size=7 is not divisible by the 2"):
    make_train_iterator(_config(), global_batch_size=7, seed=0, sharding=sharding)
  with pytest.raises(ConfigError, match="global_batch_size=9"):
    make_eval_iterator(_config(), global_batch_size=9, sharding=sharding)
