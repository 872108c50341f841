"""Reading tfds datasets: builders, per-process split slices, CIFAR loaded into memory.

TensorFlow is imported here (and in the other tfds modules) only, never at package import,
so the offline datasets run on machines without TensorFlow.

Each process reads only its own slice ``split[start:stop]`` (``dksflax.data.stream``
even split; the same rule as ``tfds.split_for_jax_process``, computed from the split's
size so that every process agrees on the bounds without communicating).
"""

from __future__ import annotations

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from dksflax.data import catalog
from dksflax.data.arrays import ArraySplit
from dksflax.data.progress import Progress
from dksflax.data.stream import shard_bounds

# TensorFlow only prepares data on the host; keep it off any accelerator JAX uses.
tf.config.set_visible_devices([], "GPU")

_LOAD_BATCH = 1024


def get_builder(data: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """Returns the tfds builder of ``data.name``, preparing the data if allowed.

  cifar10/100 are downloaded only with ``data.download=True``; imagenet2012 is built from
  ``data.manual_dir`` when that holds the ILSVRC2012 tar files (``catalog`` has already
  checked this, before any compute).

  Args:
    data: The ``data`` config section.

  Returns:
    A prepared builder.
  """
  catalog.check_tfds_ready(data)
  data_dir = catalog.resolve_data_dir(data)
  builder = tfds.builder(data.name, data_dir=data_dir)
  if not catalog.is_prepared(data_dir, data.name) and "://" not in data_dir:
    progress = Progress(f"preparing {data.name} in {data_dir} (once)", 0)
    if data.name == "imagenet2012":
      config = tfds.download.DownloadConfig(manual_dir=data.manual_dir)
      builder.download_and_prepare(download_config=config)
    else:
      builder.download_and_prepare()
    progress.finish()
  return builder


def split_size(builder: tfds.core.DatasetBuilder, split: str) -> int:
  """Returns the number of examples of ``split`` (all processes)."""
  splits = builder.info.splits
  if split in splits and splits[split].num_examples > 0:
    return int(splits[split].num_examples)
  return int(builder.as_dataset(split=split).cardinality())


def process_slice(builder: tfds.core.DatasetBuilder, split: str, process_index: int,
                  process_count: int, limit: int = -1) -> tuple[str, int]:
  """Returns (tfds split string of this process's slice, size of the whole split).

  With ``limit > 0`` the split is first cut to its first ``limit`` examples, and that
  subset is what the processes share out (so subsets shard correctly).
  """
  n = split_size(builder, split)
  if limit > 0:
    n = min(n, limit)
  start, stop = shard_bounds(n, process_index, process_count)
  return f"{split}[{start}:{stop}]", n


def load_cifar_split(data: ml_collections.ConfigDict, train: bool, process_index: int,
                     process_count: int) -> ArraySplit:
  """Loads this process's slice of CIFAR-10/100 into memory as uint8 arrays.

  CIFAR is small (50k 32x32x3 images: 150 MB), so it is held in memory, and the numpy
  pipeline (``dksflax.data.array_pipeline``) gives random access for exact resume.

  Args:
    data: The ``data`` config section (``data.name`` cifar10 or cifar100).
    train: Training split if True, else the test split.
    process_index: This process.
    process_count: Number of processes.

  Returns:
    This process's shard, with the CIFAR crop (4-pixel padding) enabled.
  """
  facts = catalog.dataset_facts(data)
  builder = get_builder(data)
  split = facts.train_split if train else facts.eval_split
  sliced, n = process_slice(builder, split, process_index, process_count,
                            data.train_examples if train else -1)
  ds = builder.as_dataset(split=sliced, shuffle_files=False)
  ds = ds.map(lambda ex: (ex["image"], ex["label"]), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(_LOAD_BATCH).prefetch(tf.data.AUTOTUNE)
  start, stop = shard_bounds(n, process_index, process_count)
  progress = Progress(f"loading {data.name} {sliced}", stop - start)
  images, labels = [], []
  for image, label in tfds.as_numpy(ds):
    images.append(image)
    labels.append(label)
    progress.update(len(label))
  progress.finish()
  images = np.concatenate(images).astype(np.uint8)
  labels = np.concatenate(labels).astype(np.int32)
  if labels.size and (labels.min() < 0 or labels.max() >= facts.num_classes):
    raise ValueError(f"{data.name} labels outside [0, {facts.num_classes}): "
                     f"[{labels.min()}, {labels.max()}]; is data_dir holding another dataset?")
  return ArraySplit(images, labels, n, 1.0 / 255.0, np.asarray(facts.mean, np.float32),
                    np.asarray(facts.std, np.float32), crop_pad=4)
