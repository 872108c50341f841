"""The input pipeline entry points: training and evaluation iterators selected by data.name.

* cifar10, cifar100: tfds, this process's slice loaded into memory, numpy augmentation.
  In-memory datasets are split into one data shard per device shard of the batch, so the
  global batch is the same however the devices are spread over processes
  (``dksflax.data.stream``).
* imagenet2012: tfds streamed through tf.data (``tfds_imagenet``).
* digits, synthetic: generated in memory; no TensorFlow, no download.

With ``sharding`` (a ``jax.sharding.NamedSharding`` whose first spec entry names the data
axis) the iterators yield global ``jax.Array``s placed on the mesh
(``jax.make_array_from_process_local_data``); without it, this process's numpy batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ml_collections

from dksflax.data import array_pipeline
from dksflax.data import catalog
from dksflax.data import prefetch
from dksflax.data.arrays import ArraySplit, digits_split, synthetic_split
from dksflax.data.stream import StreamLayout


def _processes() -> tuple[int, int]:
  """(process index, process count) of this JAX process."""
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index(), jax.process_count()


def _array_split(data: ml_collections.ConfigDict, train: bool, process_index: int,
                 process_count: int) -> ArraySplit:
  """This process's in-memory shard of the training (or evaluation) split."""
  if data.name == "digits":
    return digits_split(train, process_index, process_count,
                        catalog.dataset_facts(data).num_train)
  if data.name == "synthetic":
    return synthetic_split(data, train, process_index, process_count)
  from dksflax.data import tfds_source  # pylint: disable=g-import-not-at-top
  return tfds_source.load_cifar_split(data, train, process_index, process_count)


def _deliver(batches: Iterator[dict[str, Any]], data: ml_collections.ConfigDict,
             sharding: Any | None) -> Iterator[dict[str, Any]]:
  """Numpy batches as they are, or placed on the mesh as global arrays."""
  if sharding is None:
    return batches
  return prefetch.to_global_arrays(batches, sharding, data.prefetch)


def make_train_iterator(data: ml_collections.ConfigDict, *, global_batch_size: int,
                        seed: int, start_step: int = 0, sharding: Any | None = None
                        ) -> Iterator[dict[str, Any]]:
  """Returns the infinite training iterator; batch ``s`` depends only on ``(seed, s)``.

  Args:
    data: The ``data`` config section.
    global_batch_size: Examples per step over all processes; divisible by the number of
      processes and by the devices the sharding splits the batch over.
    seed: Run seed (epoch orders and augmentation).
    start_step: First step to yield; a run resumed at step ``k`` gets the same batch ``k``
      as an uninterrupted one, without replaying earlier steps. (Default: 0)
    sharding: Optional NamedSharding for the batch axis. (Default: None: numpy batches)

  Returns:
    Iterator of ``{"image": float32 [B, H, W, C], "label": int32 [B]}`` (``B`` the global
    batch with ``sharding``, this process's part without).

  Raises:
    ConfigError: on a bad config, unprepared data or an indivisible batch size, before
      any data is read.
  """
  catalog.get_dataset_info(data)
  prefetch.check_batch_divisible(global_batch_size, sharding)
  if not isinstance(seed, int) or seed < 0 or start_step < 0:
    raise ValueError(f"seed={seed!r} and start_step={start_step!r} must be integers >= 0")
  process_index, process_count = _processes()
  if data.name == "imagenet2012":
    from dksflax.data import tfds_imagenet  # pylint: disable=g-import-not-at-top
    batches = tfds_imagenet.train_batches(
        data, global_batch_size=global_batch_size, seed=seed, start_step=start_step,
        process_index=process_index, process_count=process_count)
  else:
    split = _array_split(data, True, process_index, process_count)
    layout = StreamLayout(split.num_examples, global_batch_size, process_index,
                          process_count, prefetch.shards_per_process(global_batch_size,
                                                                     sharding))
    layout.check_trainable()
    batches = prefetch.threaded(
        array_pipeline.train_batches(split, layout, seed=seed, start_step=start_step,
                                     augment=data.augment, pln=data.pln),
        data.prefetch)
  return _deliver(batches, data, sharding)


def make_eval_iterator(data: ml_collections.ConfigDict, *, global_batch_size: int,
                       sharding: Any | None = None) -> Iterator[dict[str, Any]]:
  """Returns one pass over the evaluation split, padded, with a mask.

  Sum metrics weighted by ``mask`` (never average per-batch means): every example is then
  counted exactly once, whatever the device and process count.

  Args:
    data: The ``data`` config section.
    global_batch_size: Examples per batch over all processes (same divisibility rules as
      training).
    sharding: Optional NamedSharding for the batch axis. (Default: None: numpy batches)

  Returns:
    Iterator of ``{"image": float32, "label": int32, "mask": bool}`` batches.

  Raises:
    ConfigError: on a bad config, unprepared data or an indivisible batch size.
  """
  catalog.get_dataset_info(data)
  prefetch.check_batch_divisible(global_batch_size, sharding)
  process_index, process_count = _processes()
  if data.name == "imagenet2012":
    from dksflax.data import tfds_imagenet  # pylint: disable=g-import-not-at-top
    batches = tfds_imagenet.eval_batches(
        data, global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
  else:
    split = _array_split(data, False, process_index, process_count)
    layout = StreamLayout(split.num_examples, global_batch_size, process_index,
                          process_count, prefetch.shards_per_process(global_batch_size,
                                                                     sharding))
    batches = prefetch.threaded(array_pipeline.eval_batches(split, layout, pln=data.pln),
                                data.prefetch)
  return _deliver(batches, data, sharding)
