"""The paper experiments: run counts against the tables, valid configs, copied numbers."""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest

from dksflax.sweep import check_runs, expand, load_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(p for p in glob.glob(os.path.join(REPO, "experiments", "*.py"))
               if not os.path.basename(p).startswith("__")
               and not os.path.basename(p).endswith("_common.py"))

#: Numbers printed in each TAT table (all cells), and how many dksflax can run.
TAT_TABLE_SIZES = {2: (18, 16), 3: (12, 12), 4: (24, 24), 5: (16, 16), 6: (12, 4),
                   7: (96, 96), 8: (18, 18), 9: (12, 12), 10: (12, 4), 11: (24, 24)}


def _load(name):
  return load_experiment(os.path.join(REPO, "experiments", f"{name}.py"))


def test_every_table_and_experiment_has_a_file():
  names = {os.path.basename(p)[:-3] for p in FILES}
  assert {f"tat_table{t}" for t in range(2, 12)} <= names
  assert {"dks_imagenet", "dks_zeta", "dks_cifar_wrn"} <= names


@pytest.mark.parametrize("table", sorted(TAT_TABLE_SIZES))
def test_tat_tables_expand_to_one_run_per_printed_number(table):
  sweep, root = _load(f"tat_table{table}")
  printed, runnable = TAT_TABLE_SIZES[table]
  module_results = __import__(f"experiments.tat_table{table}",
                              fromlist=["PAPER_RESULTS"]).PAPER_RESULTS
  assert len(module_results) == printed and dict(sweep.paper) == module_results
  runs = expand(sweep, root="runs")
  assert len(runs) == runnable
  keys = {r.cell_key() for r in runs}
  # Every run is a cell of the table and every number is a run or listed as unsupported.
  assert keys | set(sweep.unsupported) == set(sweep.paper)
  assert not keys & set(sweep.unsupported)
  assert all(len(k) == len(next(iter(sweep.paper))) for k in keys)
  check_runs(runs, root)


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p)[:-3])
def test_every_default_run_config_is_valid(path):
  sweep, root = load_experiment(path)
  runs = expand(sweep, root="runs")
  check_runs(runs, root)
  assert len({r.name for r in runs}) == len(runs)


def test_tat_search_follows_appendix_d():
  sweep, _ = _load("tat_table2")
  runs = expand(sweep, search=True)
  by_cell = {}
  for r in runs:
    by_cell.setdefault(r.cell_key(), []).append(r)
  # Standard ResNet (batch norm): 5 learning rates x 3 L2 values.
  assert len(by_cell[("K-FAC", "standard ResNet", "ReLU", "-")]) == 15
  # No batch norm: x 2 dropout rates; eta fixed at 0.9 by the caption (no eta search).
  assert len(by_cell[("K-FAC", "rescaled ResNet", "TReLU", "0.8")]) == 30
  assert ("K-FAC", "rescaled ResNet", "TReLU", "0.9") in sweep.unsupported
  lrs = {dict(r.search)["optimizer.learning_rate"]
         for r in by_cell[("SGD", "rescaled ResNet", "ReLU", "0.5")]}
  assert lrs == {1.0, 0.3, 0.1, 0.03, 0.01}
  assert len(runs) == 2 * 15 + 14 * 30
  sweep5, _ = _load("tat_table5")
  cells5 = {}
  for r in expand(sweep5, search=True):
    cells5.setdefault(r.cell_key(), []).append(r)
  assert len(cells5[("50", "SGD", "TAT", "(L)ReLU")]) == 5 * 3 * 2 * 2   # + eta grid
  assert len(cells5[("50", "SGD", "TAT", "Tanh")]) == 5 * 3 * 2 * 3      # + tau grid
  assert len(cells5[("50", "SGD", "EOC", "Tanh")]) == 5 * 3 * 2


def test_numbers_agree_across_tat_tables():
  """The same network appears in several tables with the same printed number."""
  t2, t3, t4 = (_load(f"tat_table{t}")[0].paper for t in (2, 3, 4))
  t5, t6, t7 = (_load(f"tat_table{t}")[0].paper for t in (5, 6, 7))
  t10, t11 = (_load(f"tat_table{t}")[0].paper for t in (10, 11))
  for depth in ("50", "101"):
    for opt in ("K-FAC", "SGD"):
      vanilla_trelu = t4[(depth, opt, "90", "w=0.0")]
      assert t5[(depth, opt, "TAT", "(L)ReLU")] == vanilla_trelu
      assert t6[(depth, opt, "TReLU")] == vanilla_trelu
      assert t11[(depth, opt, "Orth Delta", "TAT")] == vanilla_trelu
      assert t10[(depth, opt, "TReLU")] == t4[(depth, opt, "90", "w=0.8")]
      assert t3[(depth, opt, "vanilla")] == t5[(depth, opt, "EOC", "(L)ReLU")]
      assert t11[(depth, opt, "Orth Delta", "EOC")] == t3[(depth, opt, "vanilla")]
      assert t11[(depth, opt, "Orth Delta", "ResNet")] == t4[(depth, opt, "90", "ResNet")]
  assert t2[("K-FAC", "rescaled ResNet", "TReLU", "0.0")] == t4[("50", "K-FAC", "90", "w=0.0")]
  assert t2[("SGD", "rescaled ResNet", "TReLU", "0.8")] == t4[("50", "SGD", "90", "w=0.8")]
  assert t7[("50", "K-FAC", "0.8", "TAT", "LReLU", "with")] == 76.4
  assert t7[("101", "SGD", "0.0", "DKS", "SoftPlus", "without")] == 68.3
  # "a/b": with dropout chosen from {0.2, 0} is never below the run without dropout.
  for key, value in t7.items():
    if key[-1] == "with":
      assert value >= t7[key[:-1] + ("without",)]


def test_eoc_tanh_point_is_on_the_edge_of_chaos():
  """q* gives sigma_w = 1.302 with chi_1 = 1, by independent Gauss-Hermite quadrature."""
  from experiments.tat_common import EOC_TANH_Q_STAR
  x, w = np.polynomial.hermite_e.hermegauss(120)
  w = w / w.sum()
  u = np.sqrt(EOC_TANH_Q_STAR) * x
  sw2 = 1.0 / np.sum(w * (1.0 - np.tanh(u) ** 2) ** 2)
  sb2 = EOC_TANH_Q_STAR - sw2 * np.sum(w * np.tanh(u) ** 2)
  np.testing.assert_allclose(math.sqrt(sw2), 1.302, rtol=1e-9)
  np.testing.assert_allclose(math.sqrt(sb2), 0.1978, atol=1e-4)


def test_dks_experiments_use_the_dks_training_settings():
  sweep, root = _load("dks_imagenet")
  runs = expand(sweep)
  assert len(runs) == 2 * 4 * 10       # depths x optimizers x networks
  from dksflax.sweep import ConfigBuilder
  builder = ConfigBuilder(root)
  run = next(r for r in runs if dict(r.labels)["network"] == "DKS rescaled"
             and dict(r.labels)["optimizer"] == "K-FAC")
  cfg = builder.build(run)
  assert cfg.train.batch_size == 512 and cfg.train.steps == 200_000
  assert cfg.optimizer.l2 == 0.0 and cfg.optimizer.label_smoothing == 0.0
  assert cfg.optimizer.kfac.norm_constraint == 1e-2
  assert cfg.optimizer.kfac.final_damping == 1e-6 and cfg.data.pln == "extra_channel"
  np.testing.assert_allclose(1 - cfg.shaping.shortcut_weight ** 2, 0.05)
  zeta, _ = _load("dks_zeta")
  assert sorted({dict(r.overrides)["shaping.zeta"] for r in expand(zeta)}) == [
      1.00001, 1.1, 1.5, 10.0, 100.0, 10000.0]
  assert zeta.plot_key == "shaping.zeta"


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p)[:-3])
def test_every_search_run_config_is_valid(path):
  sweep, root = load_experiment(path)
  check_runs(expand(sweep, root="runs", search=True), root)


@pytest.mark.parametrize("name", ["digits_tat_eta", "digits_dks_zeta", "digits_tat_tau"])
def test_digits_sweeps_solve_every_shaping(name):
  from dksflax.sweep import check_shaping
  sweep, root = _load(name)
  runs = expand(sweep)
  assert len(runs) == 7 * 2              # targets x seeds (SGD only)
  assert check_shaping(runs, root) == 7  # one solve per target (shared by seeds)
  assert sweep.plot_key in dict(runs[0].overrides)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p)[:-3])
def test_every_default_run_shaping_solves(path):
  from dksflax.sweep import check_shaping
  sweep, root = load_experiment(path)
  check_shaping(expand(sweep, root="runs"), root)
