"""The notebooks execute (nbclient, kernel "python3" = this interpreter) with the right numbers.

Each notebook is executed in memory from notebooks/ (the committed file is never rewritten). A
probe cell appended by the test prints the notebook's own variables as JSON, which are checked
against closed forms, the kfac-jax example's TAT slopes, and independent averages of the sweep
results.json files.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
RESULTS_ROOT = os.path.join(REPO, "experiments", "results")
DIGITS_SWEEPS = ("digits_tat_eta", "digits_dks_zeta", "digits_tat_tau")
PROBE_MARK = "NOTEBOOK_PROBE:"

# kfac-jax examples/lrelunet101_imagenet hard-codes these TAT (eta = 0.9) negative slopes for
# vanilla ResNet-50/101/152; it solves to a looser tolerance than dksflax, hence 1e-8.
KFAC_JAX_SLOPES = {50: 0.4259071946144104, 101: 0.5704395323991776, 152: 0.6386479139328003}


def _execute(name: str, *, parameters: dict[str, Any] | None = None, probe: str = "",
             timeout: int = 300) -> tuple[Any, dict[str, Any]]:
  """Executes notebooks/<name> in memory; returns (notebook, probe JSON)."""
  nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  if parameters is not None:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    cells[0].source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
  nb.cells.append(nbformat.v4.new_code_cell(
      "import json as _json, sys as _sys\n"
      f"print({PROBE_MARK!r} + _json.dumps(dict(prefix=_sys.prefix{probe})))"))
  client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                   resources={"metadata": {"path": NOTEBOOKS}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]
  assert not errors, errors
  text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
  line = next(ln for ln in text.splitlines() if ln.startswith(PROBE_MARK))
  data = json.loads(line[len(PROBE_MARK):])
  assert os.path.realpath(data["prefix"]) == os.path.realpath(sys.prefix), (
      "the notebook kernel is not this interpreter", data["prefix"], sys.prefix)
  return nb, data


def _outputs(nb: Any, kind: str) -> list[Any]:
  return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
          if kind in o.get("data", {})]


def test_shaping_walkthrough_executes_and_matches_the_papers():
  nb, data = _execute("shaping_walkthrough.ipynb", probe=(
      ", relu_c0=relu_c0, lrelu_c0=lrelu_c0, summary=summary, resnet_slope=resnet_slope,"
      " resnet_c0=plan.derived['network_c0'], n_params=n_params, max_gap=max_gap,"
      " mean_gap=mean_gap,"
      " final_c=[[k[0], k[1], *v] for k, v in final_c.items()],"
      " profile=profile"))
  assert len(_outputs(nb, "image/png")) == 4
  # Part 1: closed forms (ReLU arc-cosine kernel; TAT Eq. 9 at slope 0.2).
  assert data["relu_c0"] == pytest.approx(1 / math.pi, abs=1e-9)
  assert data["lrelu_c0"] == pytest.approx(0.8**2 / (math.pi * 1.04), abs=1e-9)
  # Part 2: the 50-layer MLP's network C maps.
  s = data["summary"]
  assert s["DKS tanh, ζ=1.5"][0] == pytest.approx(0.0, abs=1e-6)
  assert s["DKS tanh, ζ=1.5"][1] == pytest.approx(1.5, abs=1e-3)
  assert s["TAT leaky ReLU, η=0.9"][0] == pytest.approx(0.9, abs=1e-6)
  # ReLU with He init: 50 compositions of the arc-cosine map, composed here independently.
  c = 0.0
  for _ in range(50):
    c = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
  assert s["ReLU, He (EOC)"][0] == pytest.approx(c, abs=1e-4)
  assert s["tanh, EOC"][0] > 0.9
  assert data["profile"]["ReLU, He (EOC)"][0] == pytest.approx(1 / math.pi, abs=1e-4)
  # Part 3: TAT for vanilla ResNet-50/101/152 from the config = kfac-jax's hard-coded slopes.
  for depth, slope in KFAC_JAX_SLOPES.items():
    assert data["resnet_slope"][str(depth)] == pytest.approx(slope, abs=1e-8)
  assert data["resnet_slope"]["50"] == pytest.approx(0.42590719, abs=1e-8)
  assert data["resnet_c0"] == pytest.approx(0.9, abs=1e-9)
  assert 22e6 < data["n_params"] < 26e6
  # Part 4: measured c of the real width-128 MLP near the prediction at every layer (the gaps
  # are finite-width effects of one network: about 0.02 on average, at most 0.1 here).
  for label in ("DKS tanh, ζ=1.5", "TAT leaky ReLU, η=0.9", "ReLU, He (unshaped)"):
    assert data["mean_gap"][label] < 0.05, label
    assert data["max_gap"][label] < 0.15, label
  final = {(label, cin): (m, se, p) for label, cin, m, se, p in data["final_c"]}
  m, se, p = final[("DKS tanh, ζ=1.5", 0.0)]
  assert p == pytest.approx(0.0, abs=1e-6) and abs(m) < 0.06
  assert final[("TAT leaky ReLU, η=0.9", 0.0)][2] == pytest.approx(0.9, abs=1e-6)
  for cin in (0.0, 0.5, 0.9):  # degenerate: every pair ends up nearly parallel
    assert final[("ReLU, He (unshaped)", cin)][0] > 0.97


def test_walkthrough_shared_weights_are_what_each_init_fn_returns():
  """Part 4 reuses one draw for DKS, TAT and He-ReLU nets: check that claim on a small MLP."""
  import jax  # pylint: disable=import-outside-toplevel

  from dksflax.configlib import default_config  # pylint: disable=import-outside-toplevel
  from dksflax.models.build import build_network  # pylint: disable=import-outside-toplevel

  params = {}
  for method, act in (("dks", "tanh"), ("tat", "leaky_relu"), ("none", "relu")):
    cfg = default_config()
    cfg.model.name, cfg.model.depth, cfg.model.width, cfg.model.activation = "mlp", 3, 16, act
    cfg.shaping.method, cfg.shaping.eta = method, 0.5   # eta 0.9 is out of reach at depth 3
    _, init_fn, _ = build_network(cfg, num_classes=10, input_shape=(8,))
    params[method] = init_fn(jax.random.key(0), jax.numpy.ones((2, 8)))["params"]
  flat = {k: jax.tree_util.tree_leaves_with_path(v) for k, v in params.items()}
  for (path, a), (_, b), (_, c) in zip(flat["dks"], flat["tat"], flat["none"]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    scale = math.sqrt(2.0) if path[-1].key == "kernel" else 1.0
    np.testing.assert_allclose(np.asarray(c), scale * np.asarray(a), rtol=1e-6, atol=1e-7)


def _write_results(workdir: str, status: str, accuracy: float | None) -> None:
  os.makedirs(workdir, exist_ok=True)
  body: dict[str, Any] = {"status": status, "step": 100}
  if status == "completed":
    body["eval"] = {"accuracy": accuracy, "loss": 1.0, "num_examples": 360}
  else:
    body["failed_step"] = 7
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(body, f)


_PROBE_ROWS = (", rows={name: [[list(r.key), r.ours, r.spread, r.finished, r.expected] for r in"
               " rows] for name, (sweep, results, rows) in collected.items()},"
               " found=[s.name for s in found]")


def test_sweep_notebook_on_a_partial_sweep(tmp_path):
  """Known accuracies for part of the eta sweep: the tables are their seed means and stds."""
  from dksflax.sweep import expand, load_experiment  # pylint: disable=import-outside-toplevel

  sweep, _ = load_experiment(os.path.join(REPO, "experiments", "digits_tat_eta.py"))
  root = str(tmp_path / "runs")
  runs = expand(sweep, root=root)
  cells = list(dict.fromkeys(run.cell_key() for run in runs))
  assert len(cells) >= 3 and len(sweep.seeds) >= 2
  not_run, diverging = cells[-1], cells[1]
  rng = np.random.default_rng(0)
  expected: dict[tuple[str, ...], list[float]] = {}
  for run in runs:
    key = run.cell_key()
    if key == not_run:
      continue
    if key == diverging and run.seed == sweep.seeds[-1]:
      _write_results(run.workdir, "failed", None)    # diverged: no number
      continue
    acc = float(rng.uniform(0.5, 0.99))
    _write_results(run.workdir, "completed", acc)
    expected.setdefault(key, []).append(100 * acc)
  nb, data = _execute("sweep_results.ipynb", parameters=dict(
      ROOT=root, SWEEPS=[f"../experiments/{n}.py" for n in DIGITS_SWEEPS]), probe=_PROBE_ROWS)
  assert data["found"] == ["digits_tat_eta"]
  rows = {tuple(k): (ours, spread, fin, exp) for k, ours, spread, fin, exp
          in data["rows"]["digits_tat_eta"]}
  assert list(rows) == cells
  seeds = len(sweep.seeds)
  for key, values in expected.items():
    ours, spread, finished, total = rows[key]
    assert ours == pytest.approx(np.mean(values), abs=1e-9)
    assert spread == pytest.approx(np.std(values), abs=1e-9)
    assert (finished, total) == (seeds, seeds)
  assert rows[not_run][0] is None and rows[not_run][2] == 0
  assert len(expected[diverging]) == seeds - 1
  text = "".join(o["data"]["text/markdown"] for o in _outputs(nb, "text/markdown"))
  first = expected[cells[0]]
  assert (f"| {' | '.join(cells[0])} | — | {np.mean(first):.1f} ± {np.std(first):.1f} "
          f"| {seeds}/{seeds} |") in text
  assert "1 diverged (step 7)" in text and "not run yet" in text
  assert len(_outputs(nb, "image/png")) == 1


def test_sweep_notebook_with_no_results(tmp_path):
  _, data = _execute("sweep_results.ipynb", parameters=dict(
      ROOT=str(tmp_path), SWEEPS=["../experiments/digits_dks_zeta.py"]), probe=_PROBE_ROWS)
  assert data["found"] == [] and data["rows"] == {}


@pytest.mark.skipif(not any(os.path.isdir(os.path.join(RESULTS_ROOT, n)) for n in DIGITS_SWEEPS),
                    reason="no digits sweep results committed under experiments/results")
def test_sweep_notebook_on_the_committed_results():
  """The committed notebook's parameters, the committed results: independent seed means."""
  from dksflax.sweep import expand, load_experiment  # pylint: disable=import-outside-toplevel

  _, data = _execute("sweep_results.ipynb", probe=_PROBE_ROWS)
  present = [n for n in DIGITS_SWEEPS if os.path.isdir(os.path.join(RESULTS_ROOT, n))]
  assert sorted(data["found"]) == sorted(present)
  for name in present:
    sweep, _ = load_experiment(os.path.join(REPO, "experiments", f"{name}.py"))
    by_cell: dict[tuple[str, ...], list[float]] = {}
    for run in expand(sweep, root=RESULTS_ROOT):
      path = os.path.join(run.workdir, "results.json")
      if not os.path.isfile(path):
        continue
      with open(path, encoding="utf-8") as f:
        res = json.load(f)
      acc = res.get("eval", {}).get("accuracy") if res.get("status") == "completed" else None
      if acc is not None and math.isfinite(acc):
        by_cell.setdefault(run.cell_key(), []).append(100 * acc)
    rows = {tuple(k): (ours, spread) for k, ours, spread, _, _ in data["rows"][name]}
    assert by_cell, name
    for key, values in by_cell.items():
      assert rows[key][0] == pytest.approx(np.mean(values), abs=1e-9)
      assert rows[key][1] == pytest.approx(np.std(values), abs=1e-9)
