"""Every experiment's runs build their model and train one step at reduced size.

Each run's config is built exactly as ``dksflax sweep`` builds it (the experiment's config
file, its arguments and overrides), then shrunk with `test_configs.shrink` (same choices
of variant, shaping method, activation, normalisation, optimizer and schedule; tiny widths,
shallow ResNets, synthetic 16x16 data, batch 4) and trained for one step through
`dksflax.train.train_and_evaluate`. Runs that differ only in numbers the shrink does not
change the code path of (seeds, learning rates, L2, dropout, eta/zeta/tau) share one
check. The default suite trains the first run of four experiment files that between
them cover every model family (ResNet-50/101, WRN, MLP) and the SGD and Shampoo
paths; the `slow` suite trains the first run of every file and every distinct run.
"""

from __future__ import annotations

import glob
import json
import math
import os

import jax
import pytest

import test_configs
from dksflax.sweep import expand, load_experiment
from dksflax.sweep.expand import ConfigBuilder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(p for p in glob.glob(os.path.join(REPO, "experiments", "*.py"))
               if not os.path.basename(p).startswith("__")
               and not os.path.basename(p).endswith("_common.py"))
#: Config keys whose value does not change which code runs (the one-step check is shared).
VALUE_ONLY_KEYS = ("seed", "optimizer.learning_rate", "optimizer.l2", "model.dropout",
                   "shaping.eta", "shaping.zeta", "shaping.tau",
                   "optimizer.label_smoothing", "shaping.shortcut_weight")


def _signature(config) -> str:
  flat = json.loads(config.to_json_best_effort())
  for key in VALUE_ONLY_KEYS:
    section, _, leaf = key.rpartition(".")
    node = flat[section] if section else flat
    node.pop(leaf, None)
  return json.dumps(flat, sort_keys=True)


def _distinct_runs(path: str) -> list[tuple[str, object]]:
  """(run name, shrunk config) of the runs of ``path`` with distinct code paths."""
  sweep, root = load_experiment(path)
  builder = ConfigBuilder(root)
  seen, out = set(), []
  for run in expand(sweep, root="runs"):
    config = test_configs.shrink(builder.build(run))
    signature = _signature(config)
    if signature not in seen:
      seen.add(signature)
      out.append((f"{sweep.name}/{run.name}", config))
  return out


def _train_one_step(tmp_path, config) -> None:
  from dksflax.train import train_and_evaluate  # pylint: disable=import-outside-toplevel
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", True)
  try:
    results = train_and_evaluate(config, str(tmp_path))
  finally:
    jax.config.update("jax_disable_most_optimizations", previous)
  assert results["status"] == "completed" and results["step"] == 1
  assert math.isfinite(results["train"]["loss"]) and math.isfinite(results["eval"]["loss"])


def _ids(path: str) -> str:
  return os.path.basename(path)[:-3]


#: (experiment, run): rescaled TAT ResNet + SGD, vanilla DKS tanh ResNet + Shampoo,
#: rescaled DKS softplus WRN + SGD, vanilla TAT MLP + SGD.
FAST_RUNS = (
    ("tat_table2", "optimizer-SGD__network-rescaled-ResNet__activation-TReLU__w-0.5__seed-0"),
    ("dks_imagenet", "depth-50__optimizer-Shampoo__network-DKS-vanilla__activation-tanh__seed-0"),
    ("dks_cifar_wrn", "optimizer-SGD__network-DKS-rescaled__activation-softplus__seed-0"),
    ("digits_tat_eta", "optimizer-SGD__eta-0.1__seed-0"),
)


@pytest.mark.parametrize("experiment, run_name", FAST_RUNS, ids=[e for e, _ in FAST_RUNS])
def test_representative_runs_train_one_step(tmp_path, experiment, run_name):
  runs = dict(_distinct_runs(os.path.join(REPO, "experiments", f"{experiment}.py")))
  _train_one_step(tmp_path, runs[f"{experiment}/{run_name}"])


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_first_run_of_every_experiment_trains_one_step(tmp_path, path):
  _train_one_step(tmp_path, _distinct_runs(path)[0][1])


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_every_distinct_run_of_every_experiment_trains_one_step(tmp_path, path):
  runs = _distinct_runs(path)
  for i, (name, config) in enumerate(runs):
    try:
      _train_one_step(tmp_path / str(i), config)
    except Exception as e:  # name the failing run
      raise AssertionError(f"{name} failed one reduced step: {e!r}") from e


def test_distinct_runs_cover_every_optimizer_and_method_of_a_table():
  """The de-duplication keeps each (optimizer, method, variant) of TAT Table 5."""
  runs = _distinct_runs(os.path.join(REPO, "experiments", "tat_table5.py"))
  combos = {(c.optimizer.name, c.shaping.method, c.model.activation) for _, c in runs}
  sweep, _ = load_experiment(os.path.join(REPO, "experiments", "tat_table5.py"))
  full = {(c.optimizer.name, c.shaping.method, c.model.activation)
          for c in (ConfigBuilder(REPO).build(r) for r in expand(sweep))}
  assert combos == full and len(runs) < len(expand(sweep))
