"""Run length in one unit: ``train.steps`` or ``train.epochs``, converted once, at the top."""

from __future__ import annotations

import ml_collections

from dksflax.errors import ConfigError


def steps_per_epoch(num_train_examples: int, batch_size: int) -> int:
  """Full batches in one pass over the training split (the remainder is dropped).

  Raises:
    ConfigError: if the batch is larger than the training split.
  """
  n = num_train_examples // batch_size
  if n < 1:
    raise ConfigError(
        f"train.batch_size={batch_size} exceeds the {num_train_examples} training examples; "
        "an epoch would hold no full batch")
  return n


def total_steps(train: ml_collections.ConfigDict, num_train_examples: int) -> int:
  """Returns the number of optimizer steps of the run.

  Exactly one of ``train.steps`` and ``train.epochs`` is set (the other is -1;
  `dksflax.configlib.train.validate` enforces it). Epochs become
  ``epochs * (num_train_examples // batch_size)`` steps, as in the Flax ImageNet example.

  Args:
    train: ConfigDict. The ``train`` section.
    num_train_examples: int. Size of the training split.

  Returns:
    int, at least 1.

  Raises:
    ConfigError: when both or neither duration is set, or an epoch holds no batch.
  """
  if (train.steps > 0) == (train.epochs > 0):
    raise ConfigError(f"set exactly one of train.steps ({train.steps}) and train.epochs "
                      f"({train.epochs}); use -1 for the other")
  if train.steps > 0:
    return int(train.steps)
  return int(train.epochs) * steps_per_epoch(num_train_examples, train.batch_size)
