"""Every experiment config in configs/ loads, follows its paper, and trains one step shrunk.

`shrink` keeps a config's choices (variant, shaping method, activation, optimizer,
schedule) and makes it tiny: ResNets become a one-block-per-stage ResNet-V2 with 1/16 of
the channels, WRNs depth 10 with 4 base channels, MLPs depth 3 and width 8; data become
synthetic 16x16 images (digits stay digits); batch 4, one step. TAT's target C_f(0) is
lowered to 0.5, since a depth-3 or depth-10 net cannot reach 0.9.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os

import jax
import ml_collections
import numpy as np
import pytest

from dksflax.configlib import validate_config
from dksflax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "configs")


def load_config(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """Loads configs/<name>.py and returns get_config(arg)."""
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", os.path.join(CONFIG_DIR,
                                                                           f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Returns a copy of ``config`` at test size (see the module docstring)."""
  c = ml_collections.ConfigDict(config.to_dict())
  if c.model.name.startswith("resnet"):
    c.model.name = "resnet"
    c.model.blocks = (1, 1, 1, 1)
    c.model.width_multiplier = 1 / 16
  elif c.model.name == "wrn":
    c.model.depth = 10
    c.model.width = 1
    c.model.width_multiplier = 0.25
  else:
    c.model.depth = 3
    c.model.width = 8
  if c.data.name != "digits":
    c.data.name = "synthetic"
    c.data.synthetic_shape = (16, 16, 3)
    c.data.synthetic_classes = 10
    c.data.synthetic_examples = 16
    c.data.synthetic_eval_examples = 8
  c.data.prefetch = 0
  # Shallow nets cannot reach the papers' TAT target C_f(0) = 0.9 (TAT §4.3): ask for less.
  c.shaping.eta = min(c.shaping.eta, 0.5)
  c.optimizer.warmup_steps = 0
  t = c.train
  t.batch_size, t.eval_batch_size, t.steps, t.epochs = 4, 4, 1, -1
  t.log_every, t.checkpoint_every, t.eval_every = 1, 1, 0
  t.metric_writer, t.progress_bar = "jsonl", False
  c.lock()
  return c


CONFIG_FILES = sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py"))
# One fast run per config file; the grid of variants x methods x optimizers is `slow`.
FAST_RUNS = [("imagenet_resnet", "standard,none,sgd"), ("cifar_wrn", "vanilla,tat,sgd"),
             ("digits_mlp", "tat,kfac")]
SLOW_RUNS = [
    ("imagenet_resnet", "vanilla,tat,kfac,50"), ("imagenet_resnet", "rescaled,dks,shampoo"),
    ("imagenet_resnet", "vanilla,eoc,adam,101"), ("imagenet_resnet", "standard,fixup,lars"),
    ("imagenet_resnet", "standard,skipinit,sgd"), ("imagenet_resnet", "rescaled,lsuv,sgd"),
    ("cifar_wrn", "vanilla,tat,kfac"), ("cifar_wrn", "standard,risotto,sgd"),
    ("cifar_wrn", "rescaled,dks,adam,16"), ("digits_mlp", "dks,shampoo"),
    ("digits_mlp", "none,sgd"), ("digits_mlp", "eoc,lars"), ("digits_mlp", "lsuv,adam"),
]


def test_every_config_file_is_covered_by_a_fast_run():
  assert {name for name, _ in FAST_RUNS} == set(CONFIG_FILES)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_default_config_validates_and_is_documented(name):
  config = load_config(name)
  validate_config(config)
  spec = importlib.util.spec_from_file_location("m", os.path.join(CONFIG_DIR, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert "dksflax train --config configs/" in module.__doc__


def test_imagenet_follows_tat_appendix_d():
  c = load_config("imagenet_resnet", "vanilla,tat,kfac,101")
  assert (c.model.name, c.model.variant, c.model.activation) == ("resnet101", "vanilla",
                                                                 "leaky_relu")
  assert (c.train.batch_size, c.train.epochs, c.train.steps) == (1024, 90, -1)
  assert c.optimizer.label_smoothing == 0.1 and c.optimizer.l2 in (5e-5, 2e-5, 0.0)
  np.testing.assert_allclose(c.optimizer.step_boundaries, (4 / 9, 7 / 9))
  assert c.optimizer.warmup_steps == 5 * (1_281_167 // 1024)          # 5 epochs
  assert c.optimizer.learning_rate in (0.003, 0.001, 0.0003, 0.0001, 0.00003)
  assert (c.optimizer.kfac.damping, c.optimizer.kfac.norm_constraint,
          c.optimizer.kfac.inverse_update_period) == (1e-3, 1e-3, 50)
  assert c.shaping.eta in (0.9, 0.95)
  sgd = load_config("imagenet_resnet", "standard,none,sgd")
  assert sgd.optimizer.learning_rate in (1.0, 0.3, 0.1, 0.03, 0.01)
  assert sgd.model.activation == "relu"
  lars = load_config("imagenet_resnet", "standard,none,lars")
  assert lars.optimizer.learning_rate in (10.0, 3.0, 1.0, 0.3, 0.1)
  assert lars.optimizer.lars.trust_coefficient == 1e-3
  shampoo = load_config("imagenet_resnet", "vanilla,dks,shampoo")
  assert (shampoo.optimizer.shampoo.exponent_multiplier, shampoo.optimizer.shampoo.eps,
          shampoo.optimizer.shampoo.graft) == (3.0, 1e-5, "adagrad")    # DKS §27.5
  assert shampoo.shaping.zeta == 1.5                                   # DKS §28.1


def test_cifar_wrn_follows_tat_appendix_e2():
  c = load_config("cifar_wrn", "vanilla,tat,kfac,100")
  assert (c.model.name, c.model.depth, c.model.width) == ("wrn", 100, 2)
  assert (c.train.epochs, c.train.batch_size) == (200, 1024)
  assert [200 * b for b in c.optimizer.step_boundaries] == pytest.approx([75, 150])
  assert (c.optimizer.kfac.damping, c.optimizer.kfac.norm_constraint) == (1e-2, 1e-4)
  assert load_config("cifar_wrn").model.depth == 250                    # DKS §28.1


@pytest.mark.parametrize("name, arg, message", [
    ("imagenet_resnet", "vanilla,tat", "variant,method,optimizer"),
    ("imagenet_resnet", "vanilla,tat,kfac,34", "config arg depth='34'"),
    ("imagenet_resnet", "plain,tat,kfac", "config arg variant='plain'"),
    ("cifar_wrn", "vanilla,tat,kfac,20", "6n \\+ 4"),
    ("digits_mlp", "fixup,sgd", "config arg method='fixup'"),
])
def test_bad_config_args_are_config_errors(name, arg, message):
  with pytest.raises(ConfigError, match=message):
    load_config(name, arg)


def _one_step(tmp_path, name: str, arg: str) -> dict:
  from dksflax.train import train_and_evaluate  # pylint: disable=import-outside-toplevel
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", True)
  try:
    results = train_and_evaluate(shrink(load_config(name, arg)), str(tmp_path))
  finally:
    jax.config.update("jax_disable_most_optimizations", previous)
  assert results["status"] == "completed" and results["step"] == 1
  assert math.isfinite(results["train"]["loss"]) and math.isfinite(results["eval"]["loss"])
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["shaping"] == json.loads(json.dumps(results["shaping"], default=repr))
  return results


@pytest.mark.parametrize("name, arg", FAST_RUNS)
def test_config_trains_one_step_at_reduced_size(tmp_path, name, arg):
  _one_step(tmp_path, name, arg)


@pytest.mark.slow
@pytest.mark.parametrize("name, arg", SLOW_RUNS)
def test_config_grid_trains_one_step_at_reduced_size(tmp_path, name, arg):
  _one_step(tmp_path, name, arg)
