"""Streaming ImageNet pipeline (tf.data): per-process slices, bounded memory, resumable.

ImageNet does not fit in memory, so it streams: each epoch reads this process's slice with
its file order and a ``data.shuffle_buffer`` shuffle both seeded by ``(seed, epoch)``
(no whole-dataset cache; memory is bounded by the buffer and the prefetch). A run resumed
at step ``s`` rebuilds epoch ``s // steps_per_epoch`` and skips the undecoded records of
the batches already taken in that epoch (cheap: no JPEG decoding), so it never replays
earlier epochs. Augmentation is stateless in the example's global stream position.
"""

from __future__ import annotations

from collections.abc import Iterator

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from dksflax.data import catalog
from dksflax.data import randomness
from dksflax.data import tf_preprocess
from dksflax.data.stream import StreamLayout
from dksflax.data.tfds_source import get_builder, process_slice
from dksflax.shaping.pln import pln_num_channels

_FILE_ORDER = 11
_SHUFFLE = 12


def _options() -> tf.data.Options:
  """Deterministic element order (parallel maps included) and tf.data autotuning."""
  options = tf.data.Options()
  options.deterministic = True
  options.autotune.enabled = True
  return options


def _decoders() -> dict:
  """Keeps JPEGs encoded so that crops are decoded straight from the file bytes."""
  return {"image": tfds.decode.SkipDecoding()}


def _seed(seed: int, purpose: int, epoch: int) -> int:
  """A 31-bit tf.data seed fixed by ``(seed, purpose, epoch)``."""
  return int(randomness.hash_bits(seed, purpose, epoch) >> np.uint64(33))


def layout_for(data: ml_collections.ConfigDict, *, train: bool, global_batch_size: int,
               process_index: int, process_count: int
               ) -> tuple[tfds.core.DatasetBuilder, str, StreamLayout]:
  """Returns (builder, this process's split slice, layout) for training or evaluation."""
  facts = catalog.dataset_facts(data)
  builder = get_builder(data)
  split = facts.train_split if train else facts.eval_split
  sliced, n = process_slice(builder, split, process_index, process_count,
                            data.train_examples if train else -1)
  return builder, sliced, StreamLayout(n, global_batch_size, process_index, process_count)


def _epoch(builder: tfds.core.DatasetBuilder, sliced: str, layout: StreamLayout,
           data: ml_collections.ConfigDict, *, seed: int, epoch: int, first_batch: int
           ) -> tf.data.Dataset:
  """One epoch of training batches, starting at batch ``first_batch`` of the epoch."""
  facts = catalog.dataset_facts(data)
  size = facts.image_shape[0]
  local, spe = layout.local_batch_size, layout.steps_per_epoch
  read_config = tfds.ReadConfig(shuffle_seed=_seed(seed, _FILE_ORDER, epoch),
                                options=_options())
  ds = builder.as_dataset(split=sliced, shuffle_files=True, read_config=read_config,
                          decoders=_decoders())
  ds = ds.shuffle(data.shuffle_buffer, seed=_seed(seed, _SHUFFLE, epoch),
                  reshuffle_each_iteration=False)
  ds = ds.take(spe * local).enumerate().skip(first_batch * local)
  crop_key = randomness.tf_seed_key(seed, randomness.CROP_SCALE)
  flip_key = randomness.tf_seed_key(seed, randomness.FLIP)
  base = layout.process_index * local

  def prepare(position, example):
    step = epoch * spe + position // local
    g = step * layout.global_batch_size + base + position % local
    if data.augment:
      image = tf_preprocess.inception_crop_flip(
          example["image"], size, tf.stack([tf.constant(crop_key, tf.int64), g]),
          tf.stack([tf.constant(flip_key, tf.int64), g]))
    else:
      image = tf_preprocess.center_crop(example["image"], size)
    image = tf_preprocess.normalize(image, facts.mean, facts.std)
    image = tf_preprocess.per_location_normalize(image, data.pln)
    return {"image": image, "label": tf.cast(example["label"], tf.int32)}

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(local, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_options())


def train_batches(data: ml_collections.ConfigDict, *, global_batch_size: int, seed: int,
                  start_step: int, process_index: int, process_count: int
                  ) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's ImageNet training batches from ``start_step`` on, forever.

  Args:
    data: The ``data`` config section.
    global_batch_size: Examples per step over all processes.
    seed: Run seed (file order, shuffle and augmentation).
    start_step: First step to yield.
    process_index: This process.
    process_count: Number of processes.

  Yields:
    ``{"image": float32 [b, S, S, C'], "label": int32 [b]}``.
  """
  builder, sliced, layout = layout_for(
      data, train=True, global_batch_size=global_batch_size,
      process_index=process_index, process_count=process_count)
  epoch, first_batch = divmod(int(start_step), layout.steps_per_epoch)
  while True:
    yield from tfds.as_numpy(_epoch(builder, sliced, layout, data, seed=seed, epoch=epoch,
                                    first_batch=first_batch))
    epoch, first_batch = epoch + 1, 0


def eval_batches(data: ml_collections.ConfigDict, *, global_batch_size: int,
                 process_index: int, process_count: int) -> Iterator[dict[str, np.ndarray]]:
  """Yields one padded, masked pass over this process's slice of the validation split.

  Every process yields ``StreamLayout.num_eval_batches`` batches; padding rows are zero
  images with ``mask=False``.

  Args:
    data: The ``data`` config section.
    global_batch_size: Examples per step over all processes.
    process_index: This process.
    process_count: Number of processes.

  Yields:
    ``{"image": float32 [b, S, S, C'], "label": int32 [b], "mask": bool [b]}``.
  """
  builder, sliced, layout = layout_for(
      data, train=False, global_batch_size=global_batch_size,
      process_index=process_index, process_count=process_count)
  facts = catalog.dataset_facts(data)
  size = facts.image_shape[0]
  local = layout.local_batch_size

  def prepare(example):
    image = tf_preprocess.center_crop(example["image"], size)
    image = tf_preprocess.normalize(image, facts.mean, facts.std)
    return {"image": tf_preprocess.per_location_normalize(image, data.pln),
            "label": tf.cast(example["label"], tf.int32), "mask": tf.constant(True)}

  channels = pln_num_channels(3, data.pln)
  pad = tf.data.Dataset.from_tensors({
      "image": tf.zeros([size, size, channels], tf.float32),
      "label": tf.constant(0, tf.int32), "mask": tf.constant(False)}).repeat()
  ds = builder.as_dataset(split=sliced, shuffle_files=False, decoders=_decoders(),
                          read_config=tfds.ReadConfig(options=_options()))
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.concatenate(pad).take(layout.num_eval_batches * local)
  ds = ds.batch(local).prefetch(tf.data.AUTOTUNE).with_options(_options())
  yield from tfds.as_numpy(ds)
