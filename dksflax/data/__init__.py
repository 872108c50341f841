"""Input pipelines: CIFAR-10/100 and ImageNet (tfds), digits and synthetic (offline).

Public interface (the trainer uses exactly this)::

  from dksflax.data import get_dataset_info, make_train_iterator, make_eval_iterator

Importing this package imports neither TensorFlow nor JAX; the tfds modules import
TensorFlow only when a tfds dataset is requested.
"""

from __future__ import annotations

from dksflax.data.catalog import DatasetInfo, get_dataset_info
from dksflax.data.pipeline import make_eval_iterator, make_train_iterator

__all__ = ["DatasetInfo", "get_dataset_info", "make_eval_iterator", "make_train_iterator"]
