"""The pieces the trainer is assembled from, chosen once so tests can swap them.

The trainer never imports a model, optimizer or pipeline by name: it asks a `Components`
record for the data layer's, the models layer's and the optimizer layer's public entry
points (DESIGN.md, "Contracts"). `default_components()` gives dksflax's own; a test or a
research script may pass small stand-ins with the same signatures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Components:
  """Public entry points of the layers the trainer uses.

  Attributes:
    get_dataset_info: ``(data_config) -> DatasetInfo`` with ``num_classes``,
      ``image_shape``, ``num_train_examples``, ``num_eval_examples`` (dksflax.data).
    make_train_iterator: ``(data_config, *, global_batch_size, seed, start_step,
      sharding) -> Iterator[dict(image, label)]``, deterministic in (seed, step).
    make_eval_iterator: ``(data_config, *, global_batch_size, sharding) ->
      Iterator[dict(image, label, mask)]``, one padded pass over the eval split.
    build_network: ``(config, *, num_classes, input_shape) -> (model, init_fn, report)``
      (dksflax.models.build).
    make_loss: ``(apply_fn, *, label_smoothing, l2) -> LossFn`` (dksflax.optim).
    create_optimizer: ``(optimizer_config, *, loss_fn, total_steps) -> TrainingOptimizer``
      with ``init``, ``step`` and ``describe`` (dksflax.optim).
  """

  get_dataset_info: Callable[..., Any]
  make_train_iterator: Callable[..., Any]
  make_eval_iterator: Callable[..., Any]
  build_network: Callable[..., Any]
  make_loss: Callable[..., Any]
  create_optimizer: Callable[..., Any]


def default_components() -> Components:
  """Returns dksflax's own data, model and optimizer entry points (imported lazily)."""
  # Imported here so that `dksflax.train` imports without pulling every layer in.
  from dksflax import data  # pylint: disable=import-outside-toplevel
  from dksflax import optim  # pylint: disable=import-outside-toplevel
  from dksflax.models import build  # pylint: disable=import-outside-toplevel
  return Components(
      get_dataset_info=data.get_dataset_info,
      make_train_iterator=data.make_train_iterator,
      make_eval_iterator=data.make_eval_iterator,
      build_network=build.build_network,
      make_loss=optim.make_classification_loss,
      create_optimizer=optim.create_optimizer,
  )
