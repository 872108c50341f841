"""Choosing the best learning rate of each method and printing the results table.

Pure Python on run records (no JAX), so the selection logic is testable on fake results.
A run record is a dict with at least ``method``, ``lr``, ``status`` (``completed`` or
``failed``: the trainer's NaN guard stopped it), ``train_loss`` and ``test_accuracy``
(None when the run failed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: A completed run whose final train loss exceeds this multiple of the chance-level loss
#: ln(num_classes) counts as diverged too (it moved away from, not towards, a solution).
DIVERGED_LOSS_FACTOR = 2.0


def is_diverged(run: Mapping[str, Any], num_classes: int = 10) -> bool:
  """Whether a run diverged: stopped on NaN/Inf, or ended far above the chance loss.

  Args:
    run: a run record (see the module docstring).
    num_classes: classes of the task; the chance-level loss is ln(num_classes).
      (Default: 10)

  Returns:
    True when ``status`` is not ``completed``, the loss is missing or not finite, or it
    exceeds ``DIVERGED_LOSS_FACTOR * ln(num_classes)``.
  """
  loss = run.get("train_loss")
  if run.get("status") != "completed" or loss is None or not math.isfinite(loss):
    return True
  return loss > DIVERGED_LOSS_FACTOR * math.log(num_classes)


def _rank_key(run: Mapping[str, Any], num_classes: int) -> tuple[float, ...]:
  """Sort key: runs that did not diverge by (-accuracy, loss, lr); diverged ones by lr."""
  if is_diverged(run, num_classes):
    return (1.0, 0.0, 0.0, float(run["lr"]))
  acc = run.get("test_accuracy")
  acc = acc if acc is not None and math.isfinite(acc) else -1.0
  return (0.0, -acc, float(run["train_loss"]), float(run["lr"]))


def select_best(runs: Sequence[Mapping[str, Any]], num_classes: int = 10
                ) -> dict[str, dict[str, Any]]:
  """Picks, per method, the run with the best final test accuracy.

  Selection criterion: runs that did not diverge come first; among them the highest
  final test accuracy wins, ties broken by the lower final train loss, then the smaller
  learning rate. A method whose runs all diverged is reported with its smallest LR.

  Args:
    runs: run records of every (method, lr) pair.
    num_classes: classes of the task (for `is_diverged`). (Default: 10)

  Returns:
    ``{method: best run record + {"diverged": bool, "lrs_tried": [...],
    "lrs_diverged": [...]}}`` in the order methods first appear in ``runs``.

  Raises:
    ValueError: when ``runs`` is empty or a record lacks ``method`` or ``lr``.
  """
  if not runs:
    raise ValueError("select_best needs at least one run record; got none")
  by_method: dict[str, list[Mapping[str, Any]]] = {}
  for run in runs:
    if "method" not in run or "lr" not in run:
      raise ValueError(f"run record {dict(run)!r} needs 'method' and 'lr'")
    by_method.setdefault(run["method"], []).append(run)
  best = {}
  for method, group in by_method.items():
    chosen = min(group, key=lambda r: _rank_key(r, num_classes))
    best[method] = {
        **chosen, "diverged": is_diverged(chosen, num_classes),
        "lrs_tried": sorted(float(r["lr"]) for r in group),
        "lrs_diverged": sorted(float(r["lr"]) for r in group
                               if is_diverged(r, num_classes))}
  return best


def _fmt(x: float | None, spec: str) -> str:
  return "-" if x is None or not math.isfinite(x) else format(x, spec)


def markdown_table(best: Mapping[str, Mapping[str, Any]]) -> str:
  """The results table in markdown: one row per method (the `select_best` output).

  Columns: method, network, best lr, final train loss, test accuracy (%), diverged? (at
  the best lr, plus the grid's diverged learning rates).
  """
  lines = ["| method | network | best lr | train loss | test acc. (%) | diverged? |",
           "|---|---|---|---|---|---|"]
  for method, run in best.items():
    acc = run.get("test_accuracy")
    div = "yes" if run["diverged"] else "no"
    if run["lrs_diverged"]:
      div += " (diverged at lr " + ", ".join(f"{lr:g}" for lr in run["lrs_diverged"]) + ")"
    lines.append(
        f"| {method} | {run.get('network', '')} | {float(run['lr']):g} | "
        f"{_fmt(run.get('train_loss'), '.3f')} | "
        f"{_fmt(None if acc is None else 100.0 * acc, '.1f')} | {div} |")
  return "\n".join(lines)
