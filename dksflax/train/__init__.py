"""Data-parallel training: sharded jit over a Mesh, orbax checkpoints, clu metrics.

Public entry points:
  train_and_evaluate(config, workdir, *, components=None, devices=None) -> results dict
  evaluate_workdir(workdir, *, components=None, devices=None) -> eval dict
  Components / default_components(): the layer entry points the trainer is built from.
  NonFiniteError: raised when a loss or gradient norm becomes NaN/Inf.
"""

from __future__ import annotations

from dksflax.train.components import Components, default_components
from dksflax.train.guards import NonFiniteError
from dksflax.train.trainer import evaluate_workdir, setup_run, train_and_evaluate

__all__ = ["Components", "NonFiniteError", "default_components", "evaluate_workdir",
           "setup_run", "train_and_evaluate"]
