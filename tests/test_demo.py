"""`dksflax demo`: selection/table logic on fake results, configs, curves, reuse, end to end."""

from __future__ import annotations

import json
import math
import os

import pytest

from dksflax import cli
from dksflax.demo import curves, runs, table
from dksflax.errors import ConfigError


def _rec(method, lr, loss, acc, status="completed"):
  return dict(method=method, lr=lr, status=status, train_loss=loss, test_accuracy=acc)


def test_select_best_prefers_accuracy_and_skips_diverged_runs():
  records = [
      _rec("tat", 1e-4, 0.40, 0.85), _rec("tat", 3e-4, None, None, status="failed"),
      _rec("tat", 1e-3, 0.30, 0.85),                     # same accuracy, lower loss
      _rec("none", 1e-4, 2.20, 0.20), _rec("none", 3e-4, 9.0, 0.31),  # 9 > 2 ln 10
      _rec("eoc", 1e-4, None, None, status="failed"),
      _rec("eoc", 3e-4, math.nan, 0.1)]
  best = table.select_best(records)
  assert list(best) == ["tat", "none", "eoc"]
  assert best["tat"]["lr"] == 1e-3 and not best["tat"]["diverged"]
  assert best["tat"]["lrs_diverged"] == [3e-4] and best["tat"]["lrs_tried"] == [1e-4, 3e-4, 1e-3]
  # A run far above the chance loss ln(10) counts as diverged even with higher accuracy.
  assert best["none"]["lr"] == 1e-4 and best["none"]["lrs_diverged"] == [3e-4]
  # All diverged: reported as diverged, at the smallest lr.
  assert best["eoc"]["diverged"] and best["eoc"]["lr"] == 1e-4
  md = table.markdown_table(best).splitlines()
  assert len(md) == 5 and md[0].startswith("| method |")
  assert md[2] == "| tat |  | 0.001 | 0.300 | 85.0 | no (diverged at lr 0.0003) |"
  assert md[4] == "| eoc |  | 0.0001 | - | - | yes (diverged at lr 0.0001, 0.0003) |"


def test_is_diverged_threshold_and_errors():
  assert not table.is_diverged(_rec("m", 1, 2 * math.log(10) - 1e-9, 0.1))
  assert table.is_diverged(_rec("m", 1, 2 * math.log(10) + 1e-9, 0.1))
  assert table.is_diverged(_rec("m", 1, math.inf, 0.1))
  with pytest.raises(ValueError, match="at least one"):
    table.select_best([])
  with pytest.raises(ValueError, match="'method' and 'lr'"):
    table.select_best([{"lr": 1.0}])


def test_configs_share_the_grid_and_differ_only_in_the_method():
  settings = runs.DemoSettings(depth=6, width=16, steps=7, learning_rates=(1e-3,))
  cfgs = {m: runs.make_config(m, 1e-3, settings) for m in runs.METHODS}
  for m, c in cfgs.items():
    assert (c.data.name, c.optimizer.name, c.optimizer.learning_rate) == ("digits", "adam", 1e-3)
    assert (c.train.steps, c.train.batch_size, c.seed) == (7, 64, 0)
    if m != "resnet":
      assert (c.model.name, c.model.variant, c.model.depth, c.model.width) == (
          "mlp", "vanilla", 6, 16)
      assert c.model.normalization == "none"
  assert cfgs["resnet"].model.variant == "standard"
  assert cfgs["resnet"].model.normalization == "batch_norm"
  assert {m: (c.shaping.method, c.model.activation) for m, c in cfgs.items()} == {
      "none": ("none", "relu"), "eoc": ("eoc", "tanh"), "dks": ("dks", "tanh"),
      "tat": ("tat", "leaky_relu"), "resnet": ("none", "relu")}
  assert runs.run_dir("W", settings, "tat", 3e-4) == os.path.join(
      "W", "runs", "d6_w16_s7_b64_seed0", "tat_lr0.0003")


@pytest.mark.parametrize("settings, needle", [
    (runs.DemoSettings(depth=0), "depth=0"),
    (runs.DemoSettings(learning_rates=()), "learning rates"),
    (runs.DemoSettings(learning_rates=(-1.0,)), "positive"),
    (runs.DemoSettings(methods=("dks", "lsuv_typo")), "'none', 'eoc'"),
])
def test_bad_settings_are_refused(settings, needle):
  with pytest.raises(ConfigError, match=needle):
    runs.check_settings(settings)


def test_unreachable_shaping_fails_before_training(tmp_path, capsys):
  # TAT's eta = 0.9 is out of reach for a 4-layer leaky-ReLU MLP (C_f(0) <= 0.68).
  rc = cli.main(["demo", "--workdir", str(tmp_path), "--part", "training", "--depth", "4",
                 "--methods", "none,tat", "--steps", "3"])
  assert rc == 2 and "eta=0.9" in capsys.readouterr().err
  assert not (tmp_path / "runs").exists()


def test_read_curve_keeps_last_value_per_step_and_nan(tmp_path):
  lines = [{"step": 10, "kind": "scalars", "values": {"train/loss": 2.0}},
           {"step": 10, "kind": "texts", "values": {"config": "x"}},
           {"step": 20, "kind": "scalars", "values": {"train/loss": "nan"}},
           {"step": 10, "kind": "scalars", "values": {"train/loss": 1.5}},   # resumed
           {"step": 30, "kind": "scalars", "values": {"eval/loss": 1.0}}]
  (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
  steps, values = curves.read_curve(str(tmp_path))
  assert steps == [10, 20] and values[0] == 1.5 and math.isnan(values[1])
  assert curves.read_curve(str(tmp_path / "missing")) == ([], [])
  png = tmp_path / "c.png"
  curves.plot_curves(str(png), {"a": (steps, values)}, title="t")
  assert png.stat().st_size > 5_000


def test_finished_runs_are_reused_without_training(tmp_path):
  path = tmp_path / "run"
  path.mkdir()
  results = {"status": "completed", "train": {"loss": 0.25, "accuracy": 0.9},
             "eval": {"loss": 0.5, "accuracy": 0.8}, "wall_time_s": 12.5}
  (path / "results.json").write_text(json.dumps(results))
  config = runs.make_config("dks", 1e-3, runs.DemoSettings(depth=4, width=8, steps=3))
  record, reused = runs.run_one(config, "dks", 1e-3, str(path))
  assert reused and record["train_loss"] == 0.25 and record["test_accuracy"] == 0.8
  assert record["seconds"] == 12.5 and record["method"] == runs.METHODS["dks"].label
  (path / "results.json").write_text(json.dumps({"status": "failed", "failed_step": 4}))
  record, reused = runs.run_one(config, "dks", 1e-3, str(path))
  assert reused and record["status"] == "failed" and record["failed_step"] == 4
  assert table.is_diverged(record)


@pytest.mark.slow
def test_tiny_training_demo_end_to_end_and_rerun(tmp_path, capsys):
  argv = ["demo", "--workdir", str(tmp_path), "--part", "training", "--depth", "4",
          "--width", "8", "--steps", "5", "--lrs", "1e-3", "--methods", "none,dks",
          "--batch-size", "8"]
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert "[ 1/2]" in out and "[ 2/2]" in out and "| DKS (tanh, zeta 1.5) |" in out
  summary = json.loads((tmp_path / "results.json").read_text())
  assert [r["key"] for r in summary["runs"]] == ["none", "dks"]
  for r in summary["runs"]:
    assert r["status"] == "completed" and 0.0 <= r["test_accuracy"] <= 1.0
    results = json.loads(open(os.path.join(r["workdir"], "results.json")).read())
    assert results["step"] == 5 and results["eval"]["num_examples"] == 360
    assert r["train_loss"] == results["train"]["loss"]
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(r["workdir"]))
    steps, _ = curves.read_curve(r["workdir"])
    assert steps == [5]
  assert (tmp_path / "training_curves.png").stat().st_size > 5_000
  assert "| method |" in (tmp_path / "results.md").read_text()
  # A rerun on the same directory reuses the finished runs.
  assert cli.main(argv) == 0
  assert capsys.readouterr().out.count("(reused)") == 2
