"""`train.*` config keys: durations, batch sizes, checkpoints, logging."""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.batch_size = 128        # global batch size (divisible by the device count)
  c.eval_batch_size = 256
  c.steps = 1000            # set exactly one of steps / epochs (-1 = unset)
  c.epochs = -1
  c.eval_every = 200
  c.log_every = 20
  c.checkpoint_every = 200
  c.keep_checkpoints = 3
  c.grad_accum_steps = 1
  return c


def validate(train: ml_collections.ConfigDict) -> None:
  if (train.steps > 0) == (train.epochs > 0):
    raise ConfigError(
        f"set exactly one of train.steps ({train.steps}) and train.epochs ({train.epochs}); "
        "use -1 for the other")
  if train.batch_size <= 0:
    raise ConfigError(f"train.batch_size={train.batch_size} must be positive")
