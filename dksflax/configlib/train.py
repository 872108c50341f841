"""`train.*` config keys: durations, batch sizes, checkpoints, logging, debug aids."""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError, check_choice

METRIC_WRITERS = ("auto", "tensorboard", "jsonl")


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.batch_size = 128        # global batch size (divisible by the device count)
  c.eval_batch_size = 256   # global eval batch size; the last batch is padded and masked
  c.steps = 1000            # set exactly one of steps / epochs (-1 = unset)
  c.epochs = -1             # epochs -> steps once, at start: epochs * (num_train // batch_size)
  c.eval_every = 200        # evaluate every N steps (and always at the end); 0: only at the end
  c.log_every = 20          # write training scalars every N steps
  c.checkpoint_every = 200  # save every N steps (and at the end, and on SIGTERM)
  c.keep_checkpoints = 3    # keep the newest K checkpoints
  c.grad_accum_steps = 1    # micro-batches per optimizer step (batch_size must divide evenly)
  c.metric_writer = "auto"  # auto (TensorBoard if TensorFlow imports, else JSONL), tensorboard, jsonl
  c.progress_bar = True     # terminal progress bar with ETA (process 0 only)
  # Test/debug aid: replace the batch of this step (0-based) with NaNs, to exercise the
  # non-finite guard. -1 (the default) disables it; never set it in experiments.
  c.debug_nan_step = -1
  return c


def _positive_int(key: str, value: object) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ConfigError(f"{key}={value!r} must be a positive integer")


def validate(train: ml_collections.ConfigDict) -> None:
  if (train.steps > 0) == (train.epochs > 0):
    raise ConfigError(
        f"set exactly one of train.steps ({train.steps}) and train.epochs ({train.epochs}); "
        "use -1 for the other")
  if train.batch_size <= 0:
    raise ConfigError(f"train.batch_size={train.batch_size} must be positive")
  for key in ("eval_batch_size", "log_every", "checkpoint_every", "keep_checkpoints",
              "grad_accum_steps"):
    _positive_int(f"train.{key}", train[key])
  if train.eval_every < 0:
    raise ConfigError(f"train.eval_every={train.eval_every} must be >= 0 (0: only at the end)")
  if train.batch_size % train.grad_accum_steps:
    raise ConfigError(
        f"train.batch_size={train.batch_size} must be divisible by train.grad_accum_steps="
        f"{train.grad_accum_steps}: each optimizer step averages equal micro-batches")
  check_choice("train.metric_writer", train.metric_writer, METRIC_WRITERS)
  if train.debug_nan_step < -1:
    raise ConfigError(f"train.debug_nan_step={train.debug_nan_step} must be -1 (off) or a step")
