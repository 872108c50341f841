"""Devices, the data-parallel Mesh and its shardings; multi-host start-up.

dksflax trains with ``jax.jit`` over a one-axis ``Mesh`` (axis ``"data"``) holding every
device of every process: the batch is split along its first axis
(``NamedSharding(mesh, P("data"))``) and parameters and optimizer state are replicated
(``NamedSharding(mesh, P())``). The same program runs on one CPU, eight GPUs or a TPU pod;
there is no ``pmap`` (in maintenance mode since JAX 0.8, STYLE.md §1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dksflax.errors import ConfigError

DATA_AXIS = "data"

# Environment variables that ask for an explicit multi-process start (all three needed).
_COORDINATOR_ENV = "DKSFLAX_COORDINATOR_ADDRESS"
_NUM_PROCESSES_ENV = "DKSFLAX_NUM_PROCESSES"
_PROCESS_ID_ENV = "DKSFLAX_PROCESS_ID"
# Environments in which ``jax.distributed.initialize()`` detects its own arguments.
_AUTO_DETECT_ENVS = ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "OMPI_COMM_WORLD_SIZE")


def distributed_request(environ: Mapping[str, str]) -> dict[str, object] | None:
  """Says whether (and how) the environment asks for a multi-process run.

  Args:
    environ: Mapping. The process environment (``os.environ``).

  Returns:
    None for a single-process run; otherwise the keyword arguments for
    ``jax.distributed.initialize`` (empty when JAX detects them itself: SLURM with more than
    one task, a TPU pod, Open MPI, or ``JAX_COORDINATOR_ADDRESS``).

  Raises:
    ConfigError: when only some of the ``DKSFLAX_*`` variables are set, or they are not
      integers.
  """
  explicit = [environ.get(k) for k in (_COORDINATOR_ENV, _NUM_PROCESSES_ENV, _PROCESS_ID_ENV)]
  if any(explicit):
    if not all(explicit):
      raise ConfigError(
          f"multi-process start needs all of {_COORDINATOR_ENV}, {_NUM_PROCESSES_ENV} and "
          f"{_PROCESS_ID_ENV}; got {dict(zip((_COORDINATOR_ENV, _NUM_PROCESSES_ENV, _PROCESS_ID_ENV), explicit))}")
    try:
      return dict(coordinator_address=explicit[0], num_processes=int(explicit[1]),
                  process_id=int(explicit[2]))
    except ValueError:
      raise ConfigError(f"{_NUM_PROCESSES_ENV}={explicit[1]!r} and {_PROCESS_ID_ENV}="
                        f"{explicit[2]!r} must be integers") from None
  if int(environ.get("SLURM_NTASKS", "1") or "1") > 1:
    return {}
  if any(environ.get(k) for k in _AUTO_DETECT_ENVS):
    return {}
  return None


def maybe_initialize_distributed(environ: Mapping[str, str] | None = None) -> bool:
  """Calls ``jax.distributed.initialize`` when the environment asks for several processes.

  Must run before any other JAX call. Idempotent within a process.

  Args:
    environ: Mapping or None. Environment to read. (Default: ``os.environ``)

  Returns:
    True if a multi-process run was initialised.
  """
  request = distributed_request(os.environ if environ is None else environ)
  if request is None:
    return False
  if jax.distributed.is_initialized():
    return True
  # CPU processes need a collectives implementation to talk to each other
  # (stack/README.md); the setting only affects the CPU backend.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**request)
  logging.info("jax.distributed initialised: process %d of %d", jax.process_index(),
               jax.process_count())
  return True


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Returns a one-axis data-parallel Mesh over ``devices``.

  Args:
    devices: Sequence of devices or None. (Default: ``jax.devices()``, every device of every
      process)

  Returns:
    A ``Mesh`` with the single axis ``"data"``.
  """
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a batch: split along the first axis over the ``data`` axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of parameters and optimizer state: a full copy on every device."""
  return NamedSharding(mesh, PartitionSpec())


def check_batch_divisible(key: str, batch_size: int, mesh: Mesh) -> None:
  """Raises ConfigError unless ``batch_size`` splits evenly over the mesh's devices.

  Args:
    key: str. The config key that set the batch size (named in the error).
    batch_size: int. Global batch size.
    mesh: Mesh. The data-parallel mesh.

  Raises:
    ConfigError: if ``batch_size`` is not a positive multiple of the device count.
  """
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ConfigError(
        f"{key}={batch_size} must be a positive multiple of the number of devices ({n}): "
        f"each device takes an equal slice of the batch; try {max(n, batch_size // n * n)}")
