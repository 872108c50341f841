"""`dksflax report`: the paper's numbers and ours side by side, as markdown (and a PNG).

For each cell of a sweep (one number of the paper's table) the report reads the
``results.json`` of its runs, takes the metric (``eval.accuracy`` x 100 by default),
averages it over seeds for each search point, and keeps the best search point, as the
papers do (TAT App. D: "chosen by grid search"). A run that stopped on a non-finite loss
counts as diverged, not as a number. Runs of both expansions (with and without the
paper's search) are collected, so a report works whichever was launched.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dksflax.sweep.expand import Run, expand, format_value
from dksflax.sweep.runner import read_results
from dksflax.sweep.spec import Sweep


@dataclasses.dataclass(frozen=True)
class RunResult:
  """One run and what its ``results.json`` says.

  Attributes:
    run: the Run.
    status: ``completed``, ``failed`` (non-finite), ``preempted``, ``running`` (workdir
      without results) or ``missing`` (no workdir).
    value: the metric in the paper's unit, or None.
    failed_step: step of the non-finite loss for ``failed`` runs.
  """

  run: Run
  status: str
  value: float | None
  failed_step: int | None = None


@dataclasses.dataclass(frozen=True)
class CellRow:
  """One row of the report table.

  Attributes:
    key: the cell's label values.
    paper: the paper's number, or None.
    ours: mean metric of the best search point, or None.
    spread: standard deviation over seeds of that point (0 for one seed), or None.
    finished: finished runs (completed or failed) of the cell.
    expected: runs of the cell in the expansion that has the most of its runs present.
    best: the best search point's overrides ({} without search).
    note: diverged / unsupported / missing remarks.
  """

  key: tuple[str, ...]
  paper: float | None
  ours: float | None
  spread: float | None
  finished: int
  expected: int
  best: dict[str, Any]
  note: str


def _metric(results: dict[str, Any], path: str) -> float | None:
  node: Any = results
  for part in path.split("."):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  try:
    value = float(node)
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def collect(sweep: Sweep, root: str, project_root: str = ".") -> list[RunResult]:
  """Reads every run of the sweep (both expansions) under ``root``.

  Args:
    sweep: the Sweep.
    root: str. The runs root given to ``dksflax sweep`` (runs are in root/SWEEP/NAME).
    project_root: str. Directory a relative ``root`` is resolved against. (Default: ".")

  Returns:
    One RunResult per distinct run name, default expansion first.
  """
  out: list[RunResult] = []
  seen: set[str] = set()
  for run in expand(sweep, root=root) + expand(sweep, root=root, search=True):
    if run.name in seen:
      continue
    seen.add(run.name)
    workdir = run.workdir if os.path.isabs(run.workdir) else os.path.join(project_root,
                                                                          run.workdir)
    results = read_results(workdir)
    if results is None:
      status = "running" if os.path.isdir(workdir) else "missing"
      out.append(RunResult(run, status, None))
      continue
    status = str(results.get("status"))
    value = _metric(results, sweep.metric) if status == "completed" else None
    if value is not None:
      value *= sweep.metric_scale
    step = results.get("failed_step") if status == "failed" else None
    out.append(RunResult(run, status, value, step))
  return out


def _cell_keys(sweep: Sweep) -> list[tuple[str, ...]]:
  keys = list(sweep.paper)
  for cell in sweep.cells:
    if sweep.cell_key(cell) not in keys:
      keys.append(sweep.cell_key(cell))
  for key in sweep.unsupported:
    if key not in keys:
      keys.append(key)
  return keys


def summarize(sweep: Sweep, results: Sequence[RunResult]) -> list[CellRow]:
  """One row per cell (paper order), the best search point's seed-mean as ours."""
  by_cell: dict[tuple[str, ...], list[RunResult]] = {}
  for r in results:
    by_cell.setdefault(r.run.cell_key(), []).append(r)
  default_names = {r.name for r in expand(sweep, root="")}
  cell_keys = {sweep.cell_key(c) for c in sweep.cells}
  rows = []
  for key in _cell_keys(sweep):
    paper = sweep.paper.get(key)
    if key in sweep.unsupported:
      rows.append(CellRow(key, paper, None, None, 0, 0, {},
                          f"not run: {sweep.unsupported[key]}"))
      continue
    if key not in cell_keys:
      rows.append(CellRow(key, paper, None, None, 0, 0, {}, "no cell of this sweep runs it"))
      continue
    cell_runs = by_cell.get(key, [])
    present = [r for r in cell_runs if r.status != "missing"]
    in_default = [r for r in cell_runs if r.run.name in default_names]
    in_search = [r for r in cell_runs if r.run.name not in default_names] or in_default
    uses_search = sum(r.status != "missing" for r in in_search) > sum(
        r.status != "missing" for r in in_default)
    expected = len(in_search) if uses_search else len(in_default)
    finished = [r for r in present if r.status in ("completed", "failed")]
    points: dict[tuple, list[float]] = {}
    for r in present:
      if r.value is not None:
        points.setdefault(r.run.search, []).append(r.value)
    notes = []
    diverged = [r for r in present if r.status == "failed"]
    if diverged:
      notes.append(f"{len(diverged)} diverged (step "
                   + ", ".join(str(r.failed_step) for r in diverged[:3]) + ")")
    unfinished = [r for r in present if r.status in ("running", "preempted")]
    if unfinished:
      notes.append(f"{len(unfinished)} unfinished")
    if not present:
      notes.append("not run yet")
    if points:
      best_point, vals = max(points.items(), key=lambda kv: float(np.mean(kv[1])))
      ours, spread = float(np.mean(vals)), float(np.std(vals))
    else:
      best_point, ours, spread = (), None, None
    rows.append(CellRow(key, paper, ours, spread, len(finished), expected,
                        dict(best_point), "; ".join(notes)))
  return rows


def _headings(sweep: Sweep) -> list[str]:
  heads: list[str] = []
  for cell in sweep.cells:
    for k, _ in cell.labels:
      if k not in heads:
        heads.append(k)
  return heads


def markdown(sweep: Sweep, rows: Sequence[CellRow]) -> str:
  """The report as markdown: heading, table (labels, paper, ours, runs, best, note)."""
  heads = _headings(sweep)
  any_search = any(r.best for r in rows)
  columns = heads + [f"paper {sweep.metric_name}", f"ours {sweep.metric_name}", "runs"]
  if any_search:
    columns.append("best search point")
  columns.append("note")
  lines = [f"# {sweep.title}", "",
           "| " + " | ".join(columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
  for row in rows:
    labels = list(row.key) + [""] * (len(heads) - len(row.key))
    paper = "—" if row.paper is None else f"{row.paper:g}"
    if row.ours is None:
      ours = "—"
    elif row.spread:
      ours = f"{row.ours:.1f} ± {row.spread:.1f}"
    else:
      ours = f"{row.ours:.1f}"
    cells = labels + [paper, ours, f"{row.finished}/{row.expected}"]
    if any_search:
      cells.append(", ".join(f"{k}={format_value(v)}" for k, v in row.best.items()))
    cells.append(row.note)
    lines.append("| " + " | ".join(cells) + " |")
  if sweep.notes:
    lines += ["", sweep.notes.strip()]
  lines += ["", f"Metric: `{sweep.metric}` x {sweep.metric_scale:g} from each run's "
            "results.json; ours = mean over seeds of the best search point."]
  return "\n".join(lines) + "\n"


def wants_log_axis(xs: Sequence[float]) -> bool:
  """True when ``xs`` are positive and span more than two decades."""
  return bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 100


def plot(sweep: Sweep, results: Sequence[RunResult], key: str, path: str) -> str | None:
  """Plots the metric against config key ``key`` (one line per other-label group).

  Args:
    sweep: the Sweep.
    results: the collected RunResults.
    key: str. Config key on the x axis (e.g. ``shaping.eta``); runs that do not
      override it are left out.
    path: str. PNG file to write.

  Returns:
    ``path``, or None when no finished run overrides ``key`` (nothing is written).
    The x axis is logarithmic when the values are positive and span more than two
    decades (DKS's zeta grid runs from 1.00001 to 10000).
  """
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  series: dict[str, dict[float, list[float]]] = {}
  for r in results:
    x = dict(r.run.overrides).get(key)
    if r.value is None or not isinstance(x, (int, float)):
      continue
    group = ", ".join(f"{k}={v}" for k, v in r.run.labels
                      if k != key and v != format_value(x)) or sweep.name
    series.setdefault(group, {}).setdefault(float(x), []).append(r.value)
  if not series:
    return None
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  for group, points in sorted(series.items()):
    xs = sorted(points)
    means = [float(np.mean(points[x])) for x in xs]
    stds = [float(np.std(points[x])) for x in xs]
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=group)
  if wants_log_axis([x for points in series.values() for x in points]):
    ax.set_xscale("log")
  ax.set_xlabel(key)
  ax.set_ylabel(sweep.metric_name)
  ax.set_title(sweep.title, fontsize=9)
  if len(series) <= 12:
    ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
