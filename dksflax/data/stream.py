"""Where each example goes: process shards, epochs, steps and global stream positions.

Multi-host rules (user_needs §5):

* Each process reads only its own contiguous shard ``[start, stop)`` of a split (an even
  split, sizes differing by at most one, like ``tfds.even_splits``); shards are disjoint by
  construction, and any subset size shards the same way (init2winit 9ab2571).
* Shuffling happens *within* a shard, after sharding, so no seed folding can make two
  processes read the same example (kfac-jax df62992).
* In-memory datasets are split further, into one shard per data-parallel device shard
  (``D = P * shards_per_process``), each with its own epoch order; row block ``d`` of the
  global batch always comes from data shard ``d``. The global batch then depends on
  ``D`` only, not on how the devices are spread over processes: one process driving two
  devices sees the same batches as two processes with one device each.
* Every shard takes the same number of steps per epoch, ``(n // D) // (B / D)`` (the
  smallest shard decides), so epochs stay aligned; the remainder of a shard is dropped
  that epoch (a different remainder each epoch, as the order is reshuffled).
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
  """How a global batch is split over processes and shards, and steps onto epochs.

  Attributes:
    num_examples: Examples in the whole split (all processes).
    global_batch_size: Examples per step over all processes.
    process_index: This process.
    process_count: Number of processes.
    shards_per_process: Data shards (batch row blocks) per process: the data-parallel
      devices of one process. (Default: 1)
  """
  num_examples: int
  global_batch_size: int
  process_index: int
  process_count: int
  shards_per_process: int = 1

  def __post_init__(self):
    if self.global_batch_size < 1:
      raise ConfigError(f"global_batch_size={self.global_batch_size!r} must be positive")
    if self.global_batch_size % self.process_count:
      raise ConfigError(
          f"global_batch_size={self.global_batch_size} must be divisible by the number of "
          f"processes ({self.process_count}): every process loads an equal part")
    if self.global_batch_size % self.num_shards:
      raise ConfigError(
          f"global_batch_size={self.global_batch_size} must be divisible by the number of "
          f"data-parallel shards ({self.num_shards})")

  @property
  def num_shards(self) -> int:
    """Data shards over all processes (``D``)."""
    return self.process_count * self.shards_per_process

  @property
  def shard_batch_size(self) -> int:
    """Rows of the global batch drawn from one data shard."""
    return self.global_batch_size // self.num_shards

  def local_shards(self) -> list[tuple[int, int]]:
    """This process's data shards as ``[start, stop)`` relative to its own range."""
    base = self.shard[0]
    first = self.process_index * self.shards_per_process
    out = []
    for d in range(first, first + self.shards_per_process):
      start, stop = shard_bounds(self.num_examples, d, self.num_shards)
      out.append((start - base, stop - base))
    return out

  @property
  def local_batch_size(self) -> int:
    return self.global_batch_size // self.process_count

  @property
  def shard(self) -> tuple[int, int]:
    """This process's contiguous range ``[start, stop)`` of the split."""
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
    steps = (self.num_examples // self.num_shards) // self.shard_batch_size
    if steps < 1:
      raise ConfigError(
          f"global_batch_size={self.global_batch_size} is larger than the training split "
          f"({self.num_examples} examples over {self.num_shards} data shard(s)); "
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
    largest = -(-self.num_examples // self.num_shards)
    return max(1, -(-largest // self.shard_batch_size))

  def global_positions(self, step: int) -> np.ndarray:
    """Returns the global stream positions of this process's local batch at ``step``."""
    base = step * self.global_batch_size + self.process_index * self.local_batch_size
    return base + np.arange(self.local_batch_size, dtype=np.int64)
