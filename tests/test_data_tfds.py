"""tfds pipelines (CIFAR-10/100, ImageNet) under tfds.testing.mock_data; TF PLN twin."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

# pylint: disable=g-import-not-at-top,wrong-import-position
from dksflax.configlib import data as data_cfg
from dksflax.data import catalog, get_dataset_info, make_eval_iterator, make_train_iterator
from dksflax.data import tf_preprocess
from dksflax.shaping.pln import dimension_normalized_sq_norms, per_location_normalize

NUM_MOCK = 21
CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet2012": 1000}


def _config(name, data_dir, **kw):
  c = data_cfg.defaults()
  c.name = name
  c.data_dir = str(data_dir)
  for k, v in kw.items():
    c[k] = v
  return c


@pytest.fixture(name="data_dir")
def _data_dir(tmp_path):
  """A data_dir where catalog's file-system check finds every dataset prepared.

  mock_data then serves random examples in place of the real files.
  """
  for name in CLASSES:
    (tmp_path / name / "1.0.0").mkdir(parents=True)
    (tmp_path / name / "1.0.0" / "dataset_info.json").write_text("{}")
  return tmp_path


def _channel_bounds(name, image_size=-1):
  facts = catalog.dataset_facts(_config(name, "", image_size=image_size))
  mean, std = np.asarray(facts.mean), np.asarray(facts.std)
  return (0.0 - mean) / std, (1.0 - mean) / std


@pytest.mark.parametrize("name,image_size", [("cifar10", -1), ("cifar100", -1),
                                             ("imagenet2012", -1)])
def test_train_and_eval_batches_shape_dtype_range_labels(name, image_size, data_dir):
  c = _config(name, data_dir, image_size=image_size)
  info = get_dataset_info(c)
  lo, hi = _channel_bounds(name, image_size)
  with tfds.testing.mock_data(num_examples=NUM_MOCK):
    train = make_train_iterator(c, global_batch_size=4, seed=0)
    batches = [next(train) for _ in range(2)]
    evals = list(make_eval_iterator(c, global_batch_size=8))
  for batch in batches + evals:
    assert batch["image"].shape[1:] == info.image_shape
    assert batch["image"].dtype == np.float32 and batch["label"].dtype == np.int32
    assert np.all(batch["image"] >= lo - 1e-4) and np.all(batch["image"] <= hi + 1e-4)
    assert batch["label"].min() >= 0 and batch["label"].max() < CLASSES[name]
    assert batch["image"].std() > 0.3  # real pixels, not padding
  assert [b["image"].shape[0] for b in batches] == [4, 4]
  assert len(evals) == 3 and sum(int(b["mask"].sum()) for b in evals) == NUM_MOCK
  assert not evals[-1]["mask"][-1] and np.all(evals[-1]["image"][~evals[-1]["mask"]] == 0)
  assert info.image_shape == ((224, 224, 3) if name == "imagenet2012" else (32, 32, 3))


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012"])
def test_same_seed_same_batches_and_restart_at_step_k(name, data_dir):
  # 21 examples, batch 4: 5 steps per epoch, so step 6 is inside the second epoch.
  c = _config(name, data_dir, image_size=32 if name == "imagenet2012" else -1,
              pln="extra_channel")
  with tfds.testing.mock_data(num_examples=NUM_MOCK):
    it = make_train_iterator(c, global_batch_size=4, seed=7)
    full = [next(it) for _ in range(8)]
    resumed = make_train_iterator(c, global_batch_size=4, seed=7, start_step=6)
    tail = [next(resumed) for _ in range(2)]
    other = next(make_train_iterator(c, global_batch_size=4, seed=8))
  for k, batch in enumerate(tail):
    np.testing.assert_array_equal(batch["image"], full[6 + k]["image"])
    np.testing.assert_array_equal(batch["label"], full[6 + k]["label"])
  assert not np.array_equal(other["image"], full[0]["image"])
  assert not np.array_equal(full[0]["image"], full[5]["image"])
  np.testing.assert_allclose(dimension_normalized_sq_norms(full[0]["image"]), 1.0,
                             rtol=1e-5)


@pytest.mark.parametrize("mode", ["none", "extra_channel", "constant"])
def test_tf_pln_matches_numpy_reference(mode):
  x = np.random.default_rng(0).normal(size=(5, 6, 3)).astype(np.float32) * 3.0
  got = tf_preprocess.per_location_normalize(tf.constant(x), mode).numpy()
  want = per_location_normalize(x, mode, has_batch_dim=False)
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
  zeros = tf_preprocess.per_location_normalize(tf.zeros([2, 2, 3]), mode).numpy()
  np.testing.assert_allclose(
      zeros, per_location_normalize(np.zeros((2, 2, 3)), mode, has_batch_dim=False))


def test_imagenet_eval_center_crop_and_inception_crop_geometry():
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
  jpeg = tf.io.encode_jpeg(image, quality=100)
  center = tf_preprocess.center_crop(jpeg, 40).numpy()
  # Side 40 / (40 + 32) of the short side 60 = 33 pixels, centred: rows 14:47, cols 24:57.
  decoded = tf.io.decode_jpeg(jpeg).numpy()
  want = tf.image.resize(decoded[14:47, 24:57].astype(np.float32), [40, 40],
                         method="bicubic").numpy().clip(0, 255)
  np.testing.assert_allclose(center, want, atol=1e-3)
  seeds = [tf.constant([3, g], tf.int64) for g in range(4)]
  crops = [tf_preprocess.inception_crop_flip(jpeg, 28, s, s).numpy() for s in seeds]
  assert all(c.shape == (28, 28, 3) for c in crops)
  assert not np.allclose(crops[0], crops[1])
  np.testing.assert_array_equal(
      crops[2], tf_preprocess.inception_crop_flip(jpeg, 28, seeds[2], seeds[2]).numpy())


def test_process_slices_partition_the_split_and_its_subsets():
  from types import SimpleNamespace
  from dksflax.data.tfds_source import process_slice
  builder = SimpleNamespace(info=SimpleNamespace(
      splits={"train": SimpleNamespace(num_examples=50_000)}))
  got = [process_slice(builder, "train", p, 3) for p in range(3)]
  assert got == [("train[0:16666]", 50_000), ("train[16666:33333]", 50_000),
                 ("train[33333:50000]", 50_000)]
  got = [process_slice(builder, "train", p, 3, limit=100)[0] for p in range(3)]
  assert got == ["train[0:33]", "train[33:66]", "train[66:100]"]
