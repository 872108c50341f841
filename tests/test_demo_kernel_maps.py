"""`dksflax demo --part kernel_maps`: predicted network C maps against the papers' targets."""

from __future__ import annotations

import json
import os

import pytest

from dksflax import cli


@pytest.mark.slow
def test_demo_writes_table_plots_and_summary(tmp_path, capsys):
  assert cli.main(["demo", "--workdir", str(tmp_path), "--part", "kernel_maps"]) == 0
  out = capsys.readouterr().out
  assert "DKS tanh" in out and "TAT leaky_relu" in out
  summary = json.loads((tmp_path / "summary.json").read_text())
  for net in summary["networks"].values():
    rows = {r["setting"]: r for r in net["rows"]}
    assert rows["ReLU, He/EOC"]["C_f(0.0)"] > 0.98   # degenerate
    assert abs(rows["DKS tanh"]["C_f(0.0)"]) < 1e-6  # DKS keeps C_f(0) = 0
    assert rows["TAT leaky_relu"]["C_f(0.0)"] == pytest.approx(0.9, abs=1e-4)
    assert os.path.getsize(net["plot"]) > 10_000
  profile = summary["networks"]["MLP-100 vanilla"]["depth_profile"]
  relu = profile["ReLU, He/EOC"]
  assert all(b >= a for a, b in zip(relu, relu[1:])) and relu[-1] > 0.99  # collapses
  assert max(abs(v) for v in profile["DKS tanh"]) < 1e-6
  assert not (tmp_path / "runs").exists()    # the training part did not run
