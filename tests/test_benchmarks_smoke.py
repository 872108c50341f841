"""Smoke tests of the CPU benchmark scripts: tiny arguments, the real code, the tables' rows.

Each script's ``main(argv)`` runs in this process (no second JAX start-up) with sizes that
compile in seconds; the tests check the printed table has one row per contender and that
the numbers are sane (positive times, the framework and the bare step computing the same
losses). Also unit tests of the shared helpers (`benchmarks/_results.py`, `_timing.py`).
"""

from __future__ import annotations

import importlib
import math
import pathlib
import re
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))


def _script(name: str):
  return importlib.import_module(f"benchmarks.{name}")


def _table_rows(text: str) -> list[list[str]]:
  """Data rows of the markdown tables in ``text`` (header and rule rows left out)."""
  lines = text.splitlines()
  rows = []
  for i, line in enumerate(lines):
    is_header = i + 1 < len(lines) and lines[i + 1].startswith("|---")
    if line.startswith("|") and not line.startswith("|---") and not is_header:
      rows.append([c.strip() for c in line.strip().strip("|").split("|")])
  return rows


def test_replace_section_keeps_other_sections():
  results = _script("_results")
  text = "# Benchmark results\n\n## a\n\nold a\n\n## b\n\nold b\n"
  new = results.replace_section(text, "a", "new a")
  assert new == "# Benchmark results\n\n## a\n\nnew a\n\n## b\n\nold b\n"
  appended = results.replace_section(new, "c (x)", "body c")
  assert appended.endswith("## c (x)\n\nbody c\n") and "old b" in appended
  assert results.replace_section(appended, "c (x)", "body d").count("## c (x)") == 1
  with pytest.raises(ValueError, match="one non-empty line"):
    results.replace_section(text, "two\nlines", "x")


def test_write_section_and_machine_facts(tmp_path):
  results = _script("_results")
  path = tmp_path / "RESULTS.md"
  results.write_section("s", f"{results.machine_facts()}\n\n| x |", path)
  text = path.read_text()
  assert text.startswith("# Benchmark results\n\n## s\n\n")
  assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\. Machine: cpu", text)
  assert "jax " in text and "| x |" in text


def test_interleaved_rotates_order_and_pairs_ratios():
  timing = _script("_timing")
  calls = []
  times = timing.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                             3, progress=False)
  assert calls == ["a", "b", "b", "a", "a", "b"]
  assert all(len(v) == 3 and min(v) >= 0 for v in times.values())
  assert timing.paired_ratio([2.0, 4.0, 9.0], [1.0, 2.0, 3.0]) == 2.0
  assert timing.median([3.0, 1.0, 2.0]) == 2.0
  with pytest.raises(ValueError):
    timing.interleaved({}, 1)
  with pytest.raises(ValueError):
    timing.paired_ratio([1.0], [1.0, 2.0])


def test_framework_overhead_smoke(capsys):
  rows = _script("bench_framework_overhead").main(
      ["--model", "mlp", "--optimizers", "sgd", "--batch", "8", "--image-size", "8",
       "--window", "2", "--rounds", "2", "--check-steps", "2"])
  out = capsys.readouterr().out
  table = _table_rows(out)
  assert [r[0] for r in table] == ["sgd"]
  (row,) = rows
  assert row["rounds"] == 2
  assert row["bare_ms"] > 0 and row["framework_ms"] > 0 and math.isfinite(row["overhead"])
  # Same model, batch, loss and optimizer: the same losses step by step.
  assert row["loss_diff"] < 1e-5


def test_framework_overhead_rejects_bad_arguments():
  with pytest.raises(SystemExit):
    _script("bench_framework_overhead").main(["--optimizers", "lbfgs"])


def test_scaling_smoke(capsys):
  text = _script("bench_scaling").main(
      ["--batch-model", "mlp", "--batches", "2,4", "--depths", "2,3", "--widths", "4",
       "--rounds", "1", "--kfac-period", "2"])
  out = capsys.readouterr().out
  assert text in out
  rows = _table_rows(text)
  assert [r[0] for r in rows] == ["2", "4", "2", "3", "4"]
  # Per-example time relative to the first batch size is 1 for the first row.
  assert rows[0][3] == "1.00"
  assert float(rows[4][3]) > 0   # K-FAC x SGD
  assert "ms per layer" in text and "slope of step time vs batch size" in text


def test_optimizers_smoke(capsys):
  rows = _script("bench_optimizers").main(
      ["--models", "mlp", "--width", "4", "--depth", "2", "--batch", "4", "--rounds", "1",
       "--kfac-period", "2", "--shampoo-period", "2", "--sgd-block", "2"])
  out = capsys.readouterr().out
  assert [r[0] for r in _table_rows(out)] == ["mlp (8x8x1)"]
  (row,) = rows
  assert row["sgd_ratio"] == 1.0
  assert row["kfac"] > 0 and row["shampoo"] > 0


def test_optimizers_rejects_unknown_model():
  with pytest.raises(SystemExit):
    _script("bench_optimizers").main(["--models", "vgg"])


def test_shaping_solve_smoke_writes_its_section(tmp_path, monkeypatch, capsys):
  """TAT leaky-ReLU rows and the depth table; --write goes to a temporary results file."""
  results = tmp_path / "RESULTS.md"
  monkeypatch.setenv("DKSFLAX_BENCH_RESULTS", str(results))
  _script("bench_shaping_solve").main(
      ["--no-reference", "--repeats", "1", "--depths", "30,100", "--methods", "tat-lrelu",
       "--write"])
  out = capsys.readouterr().out
  text = results.read_text()
  assert "## shaping solve" in text and "--methods tat-lrelu" in text
  rows = [r for r in _table_rows(text) if r[1] == "tat-lrelu"]
  assert rows and all(float(r[3]) > 0 for r in rows if r[3] != "-")
  # 100-layer vanilla net at eta = 0.9: the official dks 0.1.2 solver's slope 0.57044.
  assert any(r[0] == "vanilla-100" and abs(float(r[4].split(",")[0]) - 0.57044) < 5e-6
             for r in rows), out
