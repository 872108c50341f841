"""Sweeps over configs: definitions, expansion into runs, local running, reports.

  from dksflax.sweep import Sweep, setting, values, options, grid, chain
  SWEEP = Sweep(name="eta", title="...", config="configs/digits_mlp.py:tat,sgd",
                cells=values("shaping.eta", [0.5, 0.9, 0.95]), seeds=(0, 1))

``dksflax sweep experiments/X.py`` expands and runs (or prints) it; ``dksflax report
experiments/X.py`` tabulates the results next to the paper's numbers.
"""

from dksflax.sweep.expand import (ConfigBuilder, Run, apply_override, check_runs,
                                  check_shaping, drop_unsolvable, expand, format_value, load_experiment,
                                  run_name, select)
from dksflax.sweep.report import CellRow, RunResult, collect, markdown, plot, summarize
from dksflax.sweep.runner import (Outcome, pending_runs, read_results, run_locally,
                                  run_status, shell_command, write_manifest)
from dksflax.sweep.spec import Setting, Sweep, chain, grid, merge, options, setting, values

__all__ = [
    "CellRow", "ConfigBuilder", "Outcome", "Run", "RunResult", "Setting", "Sweep",
    "apply_override", "chain", "check_runs", "check_shaping", "collect", "drop_unsolvable", "expand",
    "format_value", "grid",
    "load_experiment", "markdown", "merge", "options", "pending_runs", "plot",
    "read_results", "run_locally", "run_name", "run_status", "select", "setting",
    "shell_command", "summarize", "values", "write_manifest",
]
