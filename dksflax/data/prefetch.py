"""Prefetching: host batches prepared in a background thread, and placed on devices ahead.

``threaded`` overlaps numpy preprocessing with the training step (numpy releases the GIL in
its array kernels). ``to_global_arrays`` turns each process's local batch into global
``jax.Array``s sharded over the batch axis with ``jax.make_array_from_process_local_data``
and keeps ``size`` batches in flight, so the host-to-device copy overlaps compute too.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from dksflax.errors import ConfigError

_DONE = object()


class _Failure:
  """Carries an exception from the producer thread to the consumer."""

  def __init__(self, error: BaseException):
    self.error = error


def threaded(batches: Iterable[Any], size: int) -> Iterator[Any]:
  """Yields ``batches`` in order, produced up to ``size`` ahead by a daemon thread.

  Args:
    batches: Any iterable; it is consumed only by the background thread.
    size: Queue length; 0 yields from ``batches`` directly.

  Yields:
    The items of ``batches``. An exception raised while producing is re-raised here.
  """
  if size <= 0:
    yield from batches
    return
  slots: queue.Queue = queue.Queue(maxsize=size)
  stop = threading.Event()

  def put(item) -> bool:
    """Waits for a free slot; False if the consumer has gone away meanwhile."""
    while not stop.is_set():
      try:
        slots.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def produce():
    try:
      for item in batches:
        if not put(item):
          return
      put(_DONE)
    except BaseException as error:  # pylint: disable=broad-except
      put(_Failure(error))

  thread = threading.Thread(target=produce, name="dksflax-input", daemon=True)
  thread.start()
  try:
    while True:
      item = slots.get()
      if item is _DONE:
        return
      if isinstance(item, _Failure):
        raise item.error
      yield item
  finally:
    stop.set()


def batch_shards(sharding: Any) -> int:
  """Returns how many ways ``sharding`` splits the leading (batch) axis."""
  spec = sharding.spec
  first = spec[0] if len(spec) else None
  if first is None:
    return 1
  axes = first if isinstance(first, tuple) else (first,)
  return math.prod(sharding.mesh.shape[a] for a in axes)


def shards_per_process(global_batch_size: int, sharding: Any | None) -> int:
  """Returns how many batch row blocks of ``sharding`` this process holds (1 without).

  Raises:
    ConfigError: if the blocks are not spread evenly over the processes, or this process's
      blocks are not the contiguous rows ``[p * B / P, (p + 1) * B / P)`` (a mesh must list
      devices process by process along the data axis, as ``jax.devices()`` does).
  """
  if sharding is None:
    return 1
  import jax  # pylint: disable=g-import-not-at-top
  shards, processes = batch_shards(sharding), jax.process_count()
  if shards % processes:
    raise ConfigError(
        f"the sharding {sharding.spec} splits the batch into {shards} blocks, which the "
        f"{processes} processes cannot share evenly")
  local = global_batch_size // processes
  first = jax.process_index() * local
  shape = (global_batch_size,) + (1,) * (max(len(sharding.spec), 1) - 1)
  rows = sorted({(s[0].start or 0, global_batch_size if s[0].stop is None else s[0].stop)
                 for s in sharding.addressable_devices_indices_map(shape).values()})
  if rows[0][0] != first or rows[-1][1] != first + local or len(rows) != shards // processes:
    raise ConfigError(
        f"process {jax.process_index()} holds batch rows {rows}, not the contiguous block "
        f"[{first}, {first + local}); build the mesh with devices ordered by process along "
        "the data axis (e.g. from jax.devices())")
  return shards // processes


def check_batch_divisible(global_batch_size: int, sharding: Any | None) -> None:
  """Raises ConfigError unless the global batch splits evenly over processes and devices."""
  import jax  # pylint: disable=g-import-not-at-top
  processes = jax.process_count()
  if global_batch_size < 1 or global_batch_size % processes:
    raise ConfigError(
        f"global_batch_size={global_batch_size} must be a positive multiple of the number "
        f"of processes ({processes})")
  if sharding is not None:
    shards = batch_shards(sharding)
    if global_batch_size % shards:
      raise ConfigError(
          f"global_batch_size={global_batch_size} is not divisible by the {shards} devices "
          f"the sharding {sharding.spec} splits the batch over; use a multiple of {shards}")


def to_global_arrays(batches: Iterable[dict[str, np.ndarray]], sharding: Any,
                     size: int) -> Iterator[dict[str, Any]]:
  """Places each local batch onto the mesh as global arrays, ``size`` batches ahead.

  Args:
    batches: Local (this process's) numpy batches.
    sharding: ``jax.sharding.NamedSharding`` for the batch axis.
    size: Batches kept in flight (at least 1).

  Yields:
    Dicts of global ``jax.Array``s, batch axis sharded by ``sharding``.
  """
  import jax  # pylint: disable=g-import-not-at-top

  def place(batch):
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in batch.items()}

  pending = []
  for batch in batches:
    pending.append(place(batch))
    if len(pending) > max(size, 1):
      yield pending.pop(0)
  yield from pending
