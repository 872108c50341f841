"""Training and evaluation batches from an in-memory shard (CIFAR, digits, synthetic).

Training is an infinite sequence of epochs; in epoch ``e`` data shard ``d`` (one per
data-parallel device shard, ``dksflax.data.stream``) is visited in the order
``epoch_permutation(seed, e, shard_size, d)``, step ``s`` takes the slice
``[j * b, (j + 1) * b)`` of it (``j = s mod steps_per_epoch``, ``b`` rows per shard), and
the augmentation of each example depends on its global stream position. Batch ``s`` is
therefore a pure function of ``(seed, s)`` and the number of data shards: starting at
``start_step`` costs nothing.

Evaluation visits each shard once in order; every process yields the same number of batches
(``StreamLayout.num_eval_batches``), the last ones padded with zero images and a ``mask``
that is False on padding, so each example is counted exactly once whatever the device
count (flax#262: never average per-batch means).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dksflax.data import augment_np
from dksflax.data.arrays import ArraySplit
from dksflax.data.randomness import epoch_permutation
from dksflax.data.stream import StreamLayout
from dksflax.shaping.pln import pln_num_channels


def _prepare(split: ArraySplit, images: np.ndarray, pln: str) -> np.ndarray:
  """Raw pixels -> per-channel standardised float32 -> PLN."""
  x = augment_np.normalize(images, split.scale, split.mean, split.std)
  return augment_np.apply_pln(x, pln)


def train_batches(split: ArraySplit, layout: StreamLayout, *, seed: int, start_step: int,
                  augment: bool, pln: str) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's training batches from ``start_step`` on, forever.

  Row block ``i`` of the local batch comes from this process's data shard ``i``
  (``layout.local_shards()``), visited in that shard's own epoch order.

  Args:
    split: This process's range of the training split.
    layout: Batch/process/shard layout (``layout.num_examples`` is the whole split).
    seed: Run seed: fixes the epoch orders and the augmentation.
    start_step: First step to yield (resume point).
    augment: Apply the random crop and flip (if ``split.crop_pad`` > 0).
    pln: PLN mode (DKS §10.2).

  Yields:
    ``{"image": float32 [b, H, W, C'], "label": int32 [b]}``, ``b`` the local batch size.
  """
  steps_per_epoch = layout.steps_per_epoch
  per_shard = layout.shard_batch_size
  shards = layout.local_shards()
  first_shard = layout.process_index * layout.shards_per_process
  order_epoch, orders = -1, []
  step = int(start_step)
  while True:
    epoch, j = divmod(step, steps_per_epoch)
    if epoch != order_epoch:
      order_epoch = epoch
      orders = [start + epoch_permutation(seed, epoch, stop - start, first_shard + i)
                for i, (start, stop) in enumerate(shards)]
    index = np.concatenate([order[j * per_shard:(j + 1) * per_shard] for order in orders])
    images = split.images[index]
    if augment and split.crop_pad > 0:
      oy, ox, flip = augment_np.crop_flip_params(seed, layout.global_positions(step),
                                                 split.crop_pad)
      images = augment_np.pad_crop_flip(images, oy, ox, flip, split.crop_pad)
    yield {"image": _prepare(split, images, pln), "label": split.labels[index]}
    step += 1


def eval_batches(split: ArraySplit, layout: StreamLayout, *, pln: str
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Yields one pass over this process's range, padded, with a mask.

  Row block ``i`` of each local batch walks through data shard ``i`` in order, padded
  where the shard runs out.

  Args:
    split: This process's range of the evaluation split.
    layout: Batch/process/shard layout.
    pln: PLN mode (DKS §10.2).

  Yields:
    ``{"image": float32 [b, H, W, C'], "label": int32 [b], "mask": bool [b]}``; padding
    rows hold zeros and ``mask=False``.
  """
  local, per_shard = layout.local_batch_size, layout.shard_batch_size
  channels = pln_num_channels(split.images.shape[-1], pln)
  for i in range(layout.num_eval_batches):
    image = np.zeros((local,) + split.images.shape[1:3] + (channels,), np.float32)
    label = np.zeros((local,), np.int32)
    mask = np.zeros((local,), bool)
    for block, (start, stop) in enumerate(layout.local_shards()):
      lo, hi = min(start + i * per_shard, stop), min(start + (i + 1) * per_shard, stop)
      row = block * per_shard
      if hi > lo:
        image[row:row + hi - lo] = _prepare(split, split.images[lo:hi], pln)
        label[row:row + hi - lo] = split.labels[lo:hi]
        mask[row:row + hi - lo] = True
    yield {"image": image, "label": label, "mask": mask}
