"""`dksflax report`: paper and measured numbers side by side, best search point, PNG."""

from __future__ import annotations

import json
import os

import numpy as np

from dksflax import cli
from dksflax.sweep import Sweep, collect, expand, markdown, setting, summarize, values

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(REPO, "configs", "digits_mlp.py") + ":tat,sgd"


def _write(run, **results):
  os.makedirs(run.workdir, exist_ok=True)
  with open(os.path.join(run.workdir, "results.json"), "w") as f:
    json.dump(results, f)


def _sweep():
  return Sweep(
      name="tab", title="Toy table", config=DIGITS,
      cells=values("shaping.eta", [0.5, 0.9, 0.95], label="eta"),
      search=values("optimizer.learning_rate", [0.1, 0.01], label=""),
      seeds=(0, 1), plot_key="shaping.eta",
      paper={("0.5",): 70.0, ("0.9",): 74.6, ("0.95",): 75.1, ("1.0",): 71.0},
      unsupported={("1.0",): "no such network here"})


def test_report_table_has_paper_and_measured_columns(tmp_path):
  sweep = _sweep()
  root = str(tmp_path / "runs")
  runs = {r.name: r for r in expand(sweep, root=root, search=True)}
  # eta 0.5: lr 0.1 gives 0.60 / 0.62 over seeds, lr 0.01 gives 0.70 / 0.74 -> best 72.0 +- 2.0
  accs = {("0.5", 0.1): (0.60, 0.62), ("0.5", 0.01): (0.70, 0.74),
          ("0.9", 0.1): (0.751, 0.751)}
  for (eta, lr), pair in accs.items():
    for seed, acc in enumerate(pair):
      name = f"eta-{eta}__optimizer.learning_rate-{lr}__seed-{seed}"
      _write(runs[name], status="completed", eval=dict(accuracy=acc))
  _write(runs["eta-0.9__optimizer.learning_rate-0.01__seed-0"], status="failed",
         failed_step=17)
  os.makedirs(runs["eta-0.9__optimizer.learning_rate-0.01__seed-1"].workdir)  # running
  results = collect(sweep, root)
  rows = {r.key: r for r in summarize(sweep, results)}
  assert list(rows) == [("0.5",), ("0.9",), ("0.95",), ("1.0",)]   # paper order
  r = rows[("0.5",)]
  assert r.paper == 70.0 and r.best == {"optimizer.learning_rate": 0.01}
  np.testing.assert_allclose([r.ours, r.spread], [72.0, 2.0], atol=1e-9)
  assert (r.finished, r.expected) == (4, 4)
  r = rows[("0.9",)]
  np.testing.assert_allclose(r.ours, 75.1)
  assert "1 diverged (step 17)" in r.note and "1 unfinished" in r.note
  assert rows[("0.95",)].ours is None and rows[("0.95",)].note == "not run yet"
  assert rows[("1.0",)].note == "not run: no such network here"

  text = markdown(sweep, list(rows.values()))
  lines = text.splitlines()
  assert lines[0] == "# Toy table"
  assert lines[2] == ("| eta | paper top-1 (%) | ours top-1 (%) | runs | best search point "
                      "| note |")
  assert "| 0.5 | 70 | 72.0 ± 2.0 | 4/4 | optimizer.learning_rate=0.01 |  |" in lines
  assert any(line.startswith("| 0.9 | 74.6 | 75.1 | 3/4 |") for line in lines)
  # Nothing of eta 0.95 present: counted against the default expansion (2 seeds).
  assert "| 0.95 | 75.1 | — | 0/2 |  | not run yet |" in lines


def test_report_without_search_and_cli_png(tmp_path, capsys):
  exp = tmp_path / "exp.py"
  exp.write_text(
      "from dksflax.sweep import Sweep, values\n"
      f"SWEEP = Sweep(name='eta', title='eta sweep', config={DIGITS!r},\n"
      "              cells=values('shaping.eta', [0.5, 0.9], label='eta'), seeds=(0, 1),\n"
      "              plot_key='shaping.eta', paper={('0.9',): 74.6})\n")
  root = str(tmp_path / "runs")
  sweep = Sweep(name="eta", title="eta sweep", config=DIGITS,
                cells=values("shaping.eta", [0.5, 0.9], label="eta"), seeds=(0, 1))
  for run, acc in zip(expand(sweep, root=root), (0.5, 0.6, 0.8, 0.9)):
    _write(run, status="completed", eval=dict(accuracy=acc))
  assert cli.main(["report", str(exp), "--root", root]) == 0
  out = capsys.readouterr().out
  assert "| 0.9 | 74.6 | 85.0 ± 5.0 | 2/2 |" in out
  assert "| 0.5 | — | 55.0 ± 5.0 | 2/2 |" in out
  png = os.path.join(root, "eta", "report_shaping_eta.png")
  with open(png, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(root, "eta", "report.md")) as f:
    assert "report_shaping_eta.png" in f.read()


def test_metric_path_and_scale_are_used(tmp_path):
  sweep = Sweep(name="m", title="t", config=DIGITS,
                cells=(setting(labels={"net": "a"}),), metric="train.accuracy",
                metric_scale=1.0, metric_name="train acc")
  (run,) = expand(sweep, root=str(tmp_path))
  _write(run, status="completed", train=dict(accuracy=0.25), eval=dict(accuracy=0.9))
  (row,) = summarize(sweep, collect(sweep, str(tmp_path)))
  assert row.ours == 0.25
  assert "| net | paper train acc | ours train acc | runs | note |" in markdown(sweep, [row])


def test_plot_axis_is_logarithmic_only_for_wide_positive_ranges():
  from dksflax.sweep.report import wants_log_axis  # pylint: disable=import-outside-toplevel
  assert wants_log_axis([1.00001, 1.5, 10.0, 10000.0])          # DKS's zeta grid
  assert not wants_log_axis([0.1, 0.5, 0.9, 0.98])              # TAT's eta grid
  assert not wants_log_axis([-1.0, 1000.0]) and not wants_log_axis([])
