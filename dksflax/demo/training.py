"""The training part of ``dksflax demo``: grid of runs, best LR per method, table, curves.

Writes to the demo directory: ``results.json`` (every run and the selected ones),
``results.md`` (the markdown table) and ``training_curves.png`` (train loss vs step of
each method's best run, read from the runs' ``metrics.jsonl``). TensorBoard events are
in each run directory (``runs/<settings>/<method>_lr<lr>/``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import time
from typing import Any

from dksflax.demo import curves, runs, table


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def run_training_demo(workdir: str, settings: runs.DemoSettings, *, log: Any = print
                      ) -> dict[str, Any]:
  """Trains the grid, selects the best learning rate per method, writes the outputs.

  Selection: the highest final test accuracy among runs that did not diverge
  (`dksflax.demo.table.select_best`).

  Args:
    workdir: the demo directory (created).
    settings: sizes, steps, learning-rate grid and methods.
    log: called with each progress line. (Default: print)

  Returns:
    The summary written to ``results.json``.

  Raises:
    ConfigError, ShapingError: for settings or configs the framework refuses, before
      anything is trained.
  """
  os.makedirs(workdir, exist_ok=True)
  start, cpu0 = time.perf_counter(), _cpu_seconds()
  lrs = ", ".join(f"{lr:g}" for lr in settings.learning_rates)
  log(f"training: depth-{settings.depth}, width-{settings.width} vanilla MLPs (no skips, no "
      f"normalisation) and a standard ResNet on digits; Adam, lr in {{{lrs}}}, "
      f"{settings.steps} steps, batch {settings.batch_size}")
  records = runs.run_all(workdir, settings, log=log)
  best = table.select_best(records)
  md = table.markdown_table(best)
  log("\nbest learning rate per method (highest final test accuracy among runs that did "
      "not diverge):\n" + md)
  plotted = {}
  for run in best.values():
    steps, losses = curves.read_curve(run["workdir"])
    plotted[f"{run['method']} (lr {run['lr']:g})"] = (steps, losses)
  png = os.path.join(workdir, "training_curves.png")
  curves.plot_curves(png, plotted, title=(
      f"digits: depth-{settings.depth} width-{settings.width} vanilla MLP vs standard "
      "ResNet (best lr of each)"))
  summary = dict(
      settings=dataclasses.asdict(settings), selection="highest final test accuracy "
      "among runs that did not diverge (ties: lower train loss, then smaller lr)",
      best=best, runs=records, table_markdown=md, curves_png=png,
      wall_seconds=round(time.perf_counter() - start, 1),
      cpu_seconds=round(_cpu_seconds() - cpu0, 1))
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2)
  with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
    f.write(f"# dksflax demo: deep vanilla networks on digits\n\n"
            f"Vanilla MLP: depth {settings.depth}, width {settings.width}, no skip "
            f"connections, no normalisation. Adam, constant lr from {{{lrs}}}, "
            f"{settings.steps} steps, batch {settings.batch_size}, seed {settings.seed}. "
            f"Best lr per method: {summary['selection']}. Test accuracy on the 360 "
            f"held-out digits; train loss averaged over the last logging window.\n\n"
            f"{md}\n\nTraining curves: training_curves.png\n")
  log(f"wrote results.md, results.json and training_curves.png to {workdir} "
      f"({summary['wall_seconds']} s wall, {summary['cpu_seconds']} CPU-s in this process)")
  return summary
