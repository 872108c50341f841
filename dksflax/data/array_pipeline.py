"""Training and evaluation batches from an in-memory shard (CIFAR, digits, synthetic).

Training is an infinite sequence of epochs; epoch ``e`` visits this process's shard in the
order ``epoch_permutation(seed, e, shard_size)``, step ``s`` takes the slice
``[j * b, (j + 1) * b)`` of it (``j = s mod steps_per_epoch``), and the augmentation of
each example depends on its global stream position. Batch ``s`` is therefore a pure
function of ``(seed, s)``: starting at ``start_step`` costs nothing.

Evaluation visits the shard once in order; every process yields the same number of batches
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

  Args:
    split: This process's shard of the training split.
    layout: Batch/process layout (``layout.num_examples`` is the whole split).
    seed: Run seed: fixes the epoch orders and the augmentation.
    start_step: First step to yield (resume point).
    augment: Apply the random crop and flip (if ``split.crop_pad`` > 0).
    pln: PLN mode (DKS §10.2).

  Yields:
    ``{"image": float32 [b, H, W, C'], "label": int32 [b]}``, ``b`` the local batch size.
  """
  steps_per_epoch = layout.steps_per_epoch
  local = layout.local_batch_size
  order_epoch, order = -1, None
  step = int(start_step)
  while True:
    epoch, j = divmod(step, steps_per_epoch)
    if epoch != order_epoch:
      order_epoch, order = epoch, epoch_permutation(seed, epoch, len(split.labels))
    index = order[j * local:(j + 1) * local]
    images = split.images[index]
    if augment and split.crop_pad > 0:
      oy, ox, flip = augment_np.crop_flip_params(seed, layout.global_positions(step),
                                                 split.crop_pad)
      images = augment_np.pad_crop_flip(images, oy, ox, flip, split.crop_pad)
    yield {"image": _prepare(split, images, pln), "label": split.labels[index]}
    step += 1


def eval_batches(split: ArraySplit, layout: StreamLayout, *, pln: str
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Yields one pass over this process's shard, padded, with a mask.

  Args:
    split: This process's shard of the evaluation split.
    layout: Batch/process layout.
    pln: PLN mode (DKS §10.2).

  Yields:
    ``{"image": float32 [b, H, W, C'], "label": int32 [b], "mask": bool [b]}``; padding
    rows hold zeros and ``mask=False``.
  """
  local = layout.local_batch_size
  n = len(split.labels)
  for i in range(layout.num_eval_batches):
    lo, hi = min(i * local, n), min((i + 1) * local, n)
    count = hi - lo
    channels = pln_num_channels(split.images.shape[-1], pln)
    image = np.zeros((local,) + split.images.shape[1:3] + (channels,), np.float32)
    label = np.zeros((local,), np.int32)
    if count:
      image[:count] = _prepare(split, split.images[lo:hi], pln)
      label[:count] = split.labels[lo:hi]
    yield {"image": image, "label": label, "mask": np.arange(local) < count}
