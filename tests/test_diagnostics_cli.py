"""`dksflax diagnose`: config file + overrides -> measured vs predicted table, plot, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dksflax import cli
from dksflax.cli_diagnose import parse_diagnose_flags, run_diagnose

CONFIG = "configs/digits_mlp.py:dks,sgd"
SMALL = ["--config.model.width=128", "--config.model.depth=4",
         "--config.shaping.weight_init=orthogonal_delta"]


def test_run_diagnose_matches_prediction_for_a_dks_mlp(tmp_path):
  config, options = parse_diagnose_flags(
      ["--config", CONFIG, *SMALL, "--num_pairs=8", "--correlations=0,0.6"])
  assert options["correlations"] == (0.0, 0.6) and options["num_pairs"] == 8
  assert config.model.depth == 4
  lines = []
  out = run_diagnose(config, num_pairs=8, correlations=(0.0, 0.6),
                     plot=str(tmp_path / "qc.png"), log=lines.append)
  assert out["method"] == "dks" and out["predicted"] and not out["note"]
  assert list(out["layers"])[:5] == ["layer_0", "layer_1", "layer_2", "layer_3", "pre_logits"]
  assert any("c_pred" in line for line in lines)
  assert (tmp_path / "qc.png").stat().st_size > 1000
  for name in ("layer_0", "layer_3"):
    for cin in ("0", "0.6"):
      row = out["layers"][name][cin]
      # DKS keeps q = 1 at every layer; c follows the kernel-graph prediction.
      assert row["q_pred"] == pytest.approx(1.0, abs=1e-6)
      assert abs(row["c"] - row["c_pred"]) < 4 * row["c_se"] + 0.03, (name, cin, row)
      assert abs(row["q"] - 1.0) < 0.15
  # DKS's C(0) = 0 condition: an uncorrelated pair stays uncorrelated (DKS §16).
  assert abs(out["layers"]["layer_3"]["0"]["c_pred"]) < 1e-8
  assert np.isfinite(out["layers"]["logits"]["0.6"]["c"])


def test_diagnose_command_end_to_end_and_errors(tmp_path, capsys):
  js = tmp_path / "r.json"
  status = cli.main(["diagnose", "--config", CONFIG, *SMALL, "--num_pairs=4",
                     "--correlations=0.5", f"--json={js}"])
  assert status == 0
  report = json.loads(js.read_text())
  # A DKS-shaped layer's C map is convex with C(0) = 0 and C(1) = 1, so 0 < C(0.5) < 0.5.
  c_pred = report["layers"]["layer_0"]["0.5"]["c_pred"]
  assert 0.3 < c_pred < 0.5
  assert "layer_0" in capsys.readouterr().out
  assert cli.main(["diagnose", "--config", CONFIG, "--config.model.widht=3"]) == 2
  assert "widht" in capsys.readouterr().err
  assert cli.main(["diagnose", "--config", CONFIG, "--num_pairs=1"]) == 2
  assert cli.main(["diagnose", "--num_pairs=4"]) == 2
  assert "--config is required" in capsys.readouterr().err
