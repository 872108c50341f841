"""The full default config and its validation, assembled from one module per layer.

Every key a library function reads is in `default_config()`; library code never calls
`config.get(key, default)`. Experiment files in `configs/` start from `default_config()`
and change only what differs. `validate_config` runs before any compute and raises
`dksflax.errors.ConfigError` naming the key, the value and the accepted values.
"""

from __future__ import annotations

import ml_collections

from dksflax.configlib import data as data_cfg
from dksflax.configlib import model as model_cfg
from dksflax.configlib import optimizer as optimizer_cfg
from dksflax.configlib import shaping as shaping_cfg
from dksflax.configlib import train as train_cfg


def default_config() -> ml_collections.ConfigDict:
  """Returns the complete default config (an MLP on the offline digits data)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.model = model_cfg.defaults()
  config.shaping = shaping_cfg.defaults()
  config.optimizer = optimizer_cfg.defaults()
  config.data = data_cfg.defaults()
  config.train = train_cfg.defaults()
  return config


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks every section; raises ConfigError on the first bad value."""
  model_cfg.validate(config.model)
  shaping_cfg.validate(config.shaping, config.model)
  optimizer_cfg.validate(config.optimizer)
  data_cfg.validate(config.data)
  train_cfg.validate(config.train)
