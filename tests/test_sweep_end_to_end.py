"""A real (tiny) sweep: `dksflax train` subprocesses, skip on rerun, then the report."""

from __future__ import annotations

import json
import os

import pytest

from dksflax.sweep import (Sweep, check_runs, check_shaping, collect, expand, grid,
                           markdown, run_locally, setting, summarize, values)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = setting(overrides={
    "model.depth": 4, "model.width": 16, "train.steps": 3, "train.epochs": -1,
    "train.batch_size": 8, "train.eval_batch_size": 40, "train.eval_every": 0,
    "train.log_every": 1, "train.progress_bar": False, "train.metric_writer": "jsonl",
    "optimizer.warmup_steps": 0})


@pytest.mark.slow
def test_tiny_eta_sweep_runs_skips_and_reports(tmp_path):
  sweep = Sweep(name="tiny_eta", title="tiny eta sweep", config="configs/digits_mlp.py:tat,sgd",
                cells=grid((TINY,), values("shaping.eta", [0.2, 0.5], label="eta")),
                plot_key="shaping.eta", paper={("0.5",): 50.0})
  root = str(tmp_path / "runs")
  runs = expand(sweep, root=root)
  check_runs(runs, REPO)                # as `dksflax sweep` does before starting
  assert check_shaping(runs, REPO) == 2  # (eta 0.9 is out of reach at depth 4)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  log = tmp_path / "progress.txt"
  with open(log, "w") as out:
    outcomes = run_locally(runs, REPO, env=env, out=out)
  assert [o.status for o in outcomes] == ["ok", "ok"], log.read_text()
  results = []
  for run in runs:
    with open(os.path.join(run.workdir, "results.json")) as f:
      results.append(json.load(f))
    assert results[-1]["status"] == "completed" and results[-1]["step"] == 3
  stamps = [os.stat(os.path.join(r.workdir, "results.json")).st_mtime_ns for r in runs]
  with open(log, "w") as out:
    again = run_locally(runs, REPO, env=env, out=out)
  assert [o.status for o in again] == ["skipped", "skipped"]
  assert stamps == [os.stat(os.path.join(r.workdir, "results.json")).st_mtime_ns
                    for r in runs]
  rows = summarize(sweep, collect(sweep, root))
  assert [r.ours for r in rows] == pytest.approx(
      [100 * res["eval"]["accuracy"] for res in reversed(results)])   # paper key first
  text = markdown(sweep, rows)
  assert f"| 0.5 | 50 | {100 * results[1]['eval']['accuracy']:.1f} | 1/1 |" in text
