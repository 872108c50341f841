"""Optimizers behind one interface: SGD, Adam, LARS (optax), Shampoo (ours), K-FAC (kfac-jax).

The trainer uses ``create_optimizer(config.optimizer, loss_fn=..., total_steps=...)`` and
the returned object's ``init`` / ``step`` / ``describe`` only.
"""

from dksflax.optim.factory import OPTIMIZERS, create_optimizer
from dksflax.optim.losses import make_classification_loss, smoothed_cross_entropy
from dksflax.optim.masks import weights_mask
from dksflax.optim.schedules import make_schedule
from dksflax.optim.shampoo import scale_by_shampoo, shampoo
from dksflax.optim.types import LossFn, TrainingOptimizer

__all__ = [
    "OPTIMIZERS", "LossFn", "TrainingOptimizer", "create_optimizer",
    "make_classification_loss", "make_schedule", "scale_by_shampoo", "shampoo",
    "smoothed_cross_entropy", "weights_mask",
]
