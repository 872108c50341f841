"""Types shared by the optimizer layer: the loss-function contract and the one interface.

The trainer calls every optimizer through :class:`TrainingOptimizer` and never
branches on the optimizer's name (kfac-jax ``OptaxWrapper`` style).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax

Params = Any          # a pytree of arrays (the ``params`` collection)
ModelState = Any      # a (possibly empty) dict of non-trainable collections (batch_stats)
OptState = Any        # an optimizer's state pytree
Batch = Mapping[str, jax.Array]   # {"image": [B, ...], "label": int [B]}
PRNGKey = jax.Array
Metrics = dict[str, jax.Array]

#: ``loss_fn(params, model_state, rng, batch) -> (loss, (model_state, aux))``: ``aux`` is
#: a dict of scalar metrics. The function registers its softmax cross-entropy with kfac-jax.
LossFn = Callable[[Params, ModelState, PRNGKey, Batch], tuple[jax.Array, tuple[ModelState, Metrics]]]


class TrainingOptimizer(Protocol):
  """What the trainer uses: compiled ``init`` and ``step``, and a ``describe`` report.

  ``step`` donates ``params`` and ``opt_state`` (do not reuse the arrays passed in),
  works when ``batch`` is a global ``jax.Array`` sharded over a Mesh with replicated
  parameters, and is deterministic given ``rng``.
  """

  def init(self, params: Params, model_state: ModelState, rng: PRNGKey,
           batch: Batch) -> OptState:
    """Returns the initial optimizer state."""

  def step(self, params: Params, model_state: ModelState, opt_state: OptState,
           rng: PRNGKey, batch: Batch, step: int
           ) -> tuple[Params, ModelState, OptState, Metrics]:
    """One update; metrics hold at least loss, grad_norm, learning_rate and the aux."""

  def describe(self) -> dict[str, Any]:
    """Name, hyperparameters and (K-FAC) the registered curvature blocks by type."""
