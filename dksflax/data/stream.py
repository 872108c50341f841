"""Where each example goes: process shards, epochs, steps and global stream positions.

Multi-host rules (user_needs §5):

* Each process reads only its own contiguous shard ``[start, stop)`` of a split (an even
  split, sizes differing by at most one, like ``tfds.even_splits``); shards are disjoint by
  construction, and any subset size shards the same way (init2winit 9ab2571).
* Shuffling happens *within* a shard, after sharding, so no seed folding can make two
  processes read the same example (kfac-jax df62992).
* Every process takes the same number of steps per epoch, ``(n // P) // local_batch``
  (the smallest shard decides), so epochs stay aligned; the remainder of a shard is
  dropped that epoch (a different remainder each epoch, as the order is reshuffled).
* Example ``r`` of process ``p``'s local batch at step ``s`` has global stream position
  ``g = s * B + p * (B / P) + r`` (``B`` the global batch): positions are unique across
  processes and steps, and the random augmentation of an example depends on
  ``(seed, g)`` only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dksflax.errors import ConfigError


def shard_bounds(num_examples: int, process_index: int, process_count: int) -> tuple[int, int]:
  """Returns process ``p``'s contiguous shard ``[start, stop)`` of ``num_examples``."""
  start = (num_examples * process_index) // process_count
  stop = (num_examples * (process_index + 1)) // process_count
  return start, stop


@dataclasses.dataclass(frozen=True)
class StreamLayout:
  """How a global batch is split over processes and how steps map onto epochs.

  Attributes:
    num_examples: Examples in the whole split (all processes).
    global_batch_size: Examples per step over all processes.
    process_index: This process.
    process_count: Number of processes.
  """
  num_examples: int
  global_batch_size: int
  process_index: int
  process_count: int

  def __post_init__(self):
    if self.global_batch_size < 1:
      raise ConfigError(f"global_batch_size={self.global_batch_size!r} must be positive")
    if self.global_batch_size % self.process_count:
      raise ConfigError(
          f"global_batch_size={self.global_batch_size} must be divisible by the number of "
          f"processes ({self.process_count}): every process loads an equal part")

  @property
  def local_batch_size(self) -> int:
    return self.global_batch_size // self.process_count

  @property
  def shard(self) -> tuple[int, int]:
    return shard_bounds(self.num_examples, self.process_index, self.process_count)

  @property
  def shard_size(self) -> int:
    start, stop = self.shard
    return stop - start

  @property
  def steps_per_epoch(self) -> int:
    """Training steps per epoch, equal on every process.

    Raises:
      ConfigError: if the global batch is larger than the split.
    """
    steps = (self.num_examples // self.process_count) // self.local_batch_size
    if steps < 1:
      raise ConfigError(
          f"global_batch_size={self.global_batch_size} is larger than the training split "
          f"({self.num_examples} examples over {self.process_count} process(es)); "
          "lower train.batch_size")
    return steps

  def check_trainable(self) -> int:
    """Returns ``steps_per_epoch``; call it early so a too-large batch fails up front.

    Raises:
      ConfigError: if the global batch is larger than the split.
    """
    return self.steps_per_epoch

  @property
  def num_eval_batches(self) -> int:
    """Evaluation batches, equal on every process: the largest shard, rounded up."""
    largest = -(-self.num_examples // self.process_count)
    return max(1, -(-largest // self.local_batch_size))

  def global_positions(self, step: int) -> np.ndarray:
    """Returns the global stream positions of this process's local batch at ``step``."""
    base = step * self.global_batch_size + self.process_index * self.local_batch_size
    return base + np.arange(self.local_batch_size, dtype=np.int64)
