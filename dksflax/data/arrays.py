"""Datasets held in memory as arrays, and the two that need no download (digits, synthetic).

An ``ArraySplit`` is one process's shard of a split: raw images (uint8, or small integers
for digits), int32 labels, and how to turn pixels into normalised floats.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from dksflax.data import catalog
from dksflax.data.stream import shard_bounds

_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """One process's shard of a split, held in memory.

  Attributes:
    images: ``[n, H, W, C]`` raw pixels.
    labels: ``[n]`` int32.
    num_examples: Examples in the whole split (all processes).
    scale: Factor mapping raw pixels to [0, 1].
    mean: Per-channel mean on the [0, 1] scale.
    std: Per-channel standard deviation on the [0, 1] scale.
    crop_pad: Padding of the random crop; 0 disables crop and flip (e.g. digits).
  """
  images: np.ndarray
  labels: np.ndarray
  num_examples: int
  scale: float
  mean: np.ndarray
  std: np.ndarray
  crop_pad: int


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """All 1,797 scikit-learn digits: uint8 images ``[n, 8, 8, 1]`` (0..16), int32 labels."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  bunch = load_digits()
  images = bunch.images.astype(np.uint8)[..., None]  # values 0..16
  return images, bunch.target.astype(np.int32)


def digits_split(train: bool, process_index: int, process_count: int,
                 num_train: int = catalog.DIGITS_NUM_TRAIN) -> ArraySplit:
  """Returns scikit-learn's 8x8 digits: the first 1,437 images train, the last 360 test.

  Pixels 0..16 are scaled to [0, 1] and standardised with the training split's mean and
  standard deviation (one channel). The split is fixed (no RNG), so it is the same on
  every machine.

  Args:
    train: Training split if True, else the test split.
    process_index: This process.
    process_count: Number of processes.
    num_train: Use only the first ``num_train`` training images (``data.train_examples``);
      the statistics stay those of the full training split. (Default: 1437)

  Returns:
    This process's shard.
  """
  images, labels = _digits_arrays()
  n_train = catalog.DIGITS_NUM_TRAIN
  train_pixels = images[:n_train].astype(np.float64) / 16.0
  mean = np.array([train_pixels.mean()], np.float32)
  std = np.array([train_pixels.std()], np.float32)
  if train:
    images, labels = images[:num_train], labels[:num_train]
  else:
    images, labels = images[n_train:], labels[n_train:]
  start, stop = shard_bounds(len(labels), process_index, process_count)
  return ArraySplit(images[start:stop], labels[start:stop], len(labels), 1.0 / 16.0,
                    mean, std, crop_pad=0)


def synthetic_split(data: ml_collections.ConfigDict, train: bool, process_index: int,
                    process_count: int) -> ArraySplit:
  """Returns deterministic random uint8 images and uniform labels (for benchmarks).

  The data depends only on ``data.synthetic_seed``, the split and the synthetic_* shape
  keys. Training uses the CIFAR crop (4-pixel padding) and flip when ``data.augment``.

  Args:
    data: The ``data`` config section.
    train: Training split if True, else the evaluation split.
    process_index: This process.
    process_count: Number of processes.

  Returns:
    This process's shard (only the shard is generated).
  """
  facts = catalog.dataset_facts(data)
  n = facts.num_train if train else facts.num_eval  # after data.train_examples
  full = int(data.synthetic_examples if train else data.synthetic_eval_examples)
  start, stop = shard_bounds(n, process_index, process_count)
  # Generated in fixed chunks, each from its own seed, so example i is the same whatever
  # the process count.
  images, labels = [], []
  for chunk in range(start // _CHUNK, -(-stop // _CHUNK)):
    rng = np.random.default_rng([int(data.synthetic_seed), 0 if train else 1, chunk])
    lo, hi = chunk * _CHUNK, min((chunk + 1) * _CHUNK, full)
    imgs = rng.integers(0, 256, size=(hi - lo,) + facts.image_shape, dtype=np.uint8)
    labs = rng.integers(0, facts.num_classes, size=hi - lo).astype(np.int32)
    a, b = max(start, lo) - lo, min(stop, hi) - lo
    images.append(imgs[a:b])
    labels.append(labs[a:b])
  images = np.concatenate(images) if images else np.zeros((0,) + facts.image_shape, np.uint8)
  labels = np.concatenate(labels) if labels else np.zeros((0,), np.int32)
  channels = facts.image_shape[-1]
  return ArraySplit(images, labels, n, 1.0 / 255.0,
                    np.full(channels, catalog.SYNTHETIC_MEAN, np.float32),
                    np.full(channels, catalog.SYNTHETIC_STD, np.float32),
                    crop_pad=4)
