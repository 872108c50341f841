"""Orbax checkpoints of the whole training state, with fall-back on a damaged newest one.

A checkpoint holds everything a bitwise-identical continuation needs (user_needs.md §5:
init2winit 7cd5e05, axlearn#820): parameters, non-trainable model state (batch_stats),
the optimizer state (momentum, K-FAC curvature, Shampoo statistics), the base RNG key
and the step; plus a small JSON record of the data position. The input pipelines are
deterministic in ``(seed, step)`` so the data position is the number of batches consumed.

Saves are synchronous and atomic: orbax writes into a temporary directory and renames
it once complete, so a crash (or SIGKILL) in the middle of a save leaves the previous
checkpoint intact. On restore the newest step is tried first; a step that fails to load
(half-written, truncated, corrupted) is reported and the next older one is used.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any

_STATE = "state"
_META = "meta"


class CheckpointStore:
  """Saves and restores training states under ``<workdir>/checkpoints``.

  Args:
    directory: str. Folder that holds one sub-folder per saved step.
    keep: int. How many of the newest checkpoints to keep (``train.keep_checkpoints``).
  """

  def __init__(self, directory: str, *, keep: int):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False,
        save_interval_steps=1)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=(_STATE, _META))

  def steps(self) -> list[int]:
    """Returns the saved (finalised) steps, oldest first."""
    return sorted(int(s) for s in self._manager.all_steps())

  def save(self, step: int, state: PyTree, meta: dict[str, Any]) -> None:
    """Saves ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as ``step``.

    Args:
      step: int. The number of optimizer steps taken so far.
      state: PyTree. Arrays (sharded or not) to save.
      meta: dict. Small JSON record (data position, config digest, ...).
    """
    if step in self._manager.all_steps():
      return
    if jax.process_count() == 1:
      # One process holds every replica: save host copies. (Saving replicated jax.Arrays
      # makes orbax split each across replicas, compiling one slice program per shape.)
      state = jax.device_get(state)
    self._manager.save(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardSave(state),
        _META: ocp.args.JsonSave(meta),
    }), force=True)
    self._manager.wait_until_finished()

  def restore_latest(self, target: PyTree) -> tuple[int, PyTree, dict[str, Any]] | None:
    """Restores the newest loadable checkpoint into the structure of ``target``.

    Args:
      target: PyTree. A state with the same structure, shapes, dtypes and shardings as
        the saved one (a freshly initialised state); it gives the restored arrays their
        shardings.

    Returns:
      ``(step, state, meta)`` of the newest checkpoint that loads, or None when the
      directory holds no usable checkpoint.
    """
    abstract = jax.tree.map(_abstract_leaf, target)
    for step in reversed(self.steps()):
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(**{
            _STATE: ocp.args.StandardRestore(abstract),
            _META: ocp.args.JsonRestore(),
        }))
        state = restored[_STATE]
        _check_same_structure(target, state)
        return step, state, dict(restored[_META])
      except Exception as e:  # pylint: disable=broad-except
        # Any failure (missing files, truncated arrays, wrong structure) means this step is
        # unusable; fall back to the previous one rather than lose the run.
        logging.warning("checkpoint at step %d in %s is unusable (%s: %s); trying an older one",
                        step, self.directory, type(e).__name__, e)
    return None

  def close(self) -> None:
    """Waits for pending work and releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()


def _abstract_leaf(x: Any) -> Any:
  if isinstance(x, jax.Array):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
  if isinstance(x, np.ndarray):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)
  return x


def _check_same_structure(target: PyTree, restored: PyTree) -> None:
  """Raises ValueError if ``restored`` differs from ``target`` in structure or shapes."""
  t_leaves, t_def = jax.tree.flatten(target)
  r_leaves, r_def = jax.tree.flatten(restored)
  if t_def != r_def:
    raise ValueError(f"restored tree structure {r_def} differs from the expected {t_def}")
  for t, r in zip(t_leaves, r_leaves):
    if np.shape(t) != np.shape(r):
      raise ValueError(f"restored leaf shape {np.shape(r)} differs from expected {np.shape(t)}")
