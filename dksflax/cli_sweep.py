"""`dksflax sweep` and `dksflax report`: run a sweep's train commands, tabulate results.

  dksflax sweep experiments/tat_table2.py --root runs               # one after another
  dksflax sweep experiments/tat_table2.py --root runs --devices 0,1,2,3
  dksflax sweep experiments/tat_table2.py --search --print          # commands only
  dksflax sweep experiments/tat_table2.py --write-commands cmds.txt # for a cluster
  dksflax report experiments/tat_table2.py --root runs              # markdown (+ PNG)

Every run's config is built and validated before the first run starts (an unknown key,
a wrong type or an invalid combination stops the sweep with the run's name), and every
distinct kernel shaping is solved: an unreachable target (such as TAT's eta on a too
shallow net) stops the sweep, except for ``--search`` points, which are left out and
listed (a point no network can attain is no candidate); ``--skip-shaping-check`` skips
the solve. Finished
runs (``results.json`` completed or failed) are skipped; interrupted ones are resumed by
rerunning the same train command on the same workdir. Commands are run from the
project root (the parent of ``experiments/``), where the config paths point.
"""

from __future__ import annotations

import argparse
import os
import sys

from dksflax.errors import ConfigError

EXIT_RUN_FAILED = 1


def _prepare(ns: argparse.Namespace):
  from dksflax import sweep as sweep_lib  # pylint: disable=import-outside-toplevel
  sweep, project_root = sweep_lib.load_experiment(ns.experiment)
  runs = sweep_lib.expand(sweep, root=ns.root, search=ns.search)
  runs = sweep_lib.select(runs, ns.only)
  return sweep_lib, sweep, project_root, runs


def sweep_command(ns: argparse.Namespace) -> int:
  """Runs ``dksflax sweep``; returns the exit status (1 if a run failed)."""
  sweep_lib, sweep, project_root, runs = _prepare(ns)
  from dksflax.sweep.runner import parse_devices  # pylint: disable=import-outside-toplevel
  devices = parse_devices(ns.devices)
  if ns.print_commands and ns.write_commands:
    raise ConfigError("--print and --write-commands are alternatives; give one")
  sweep_lib.check_runs(runs, project_root)
  if not ns.skip_shaping_check and ns.search:
    runs, dropped = sweep_lib.drop_unsolvable(runs, project_root)
    for run, why in dropped:
      print(f"# left out, shaping target out of reach: {why}", file=sys.stderr)
    if dropped:
      print(f"# {sweep.name}: left out {len(dropped)} search runs whose shaping has no "
            "solution (listed above)", file=sys.stderr)
  elif not ns.skip_shaping_check:
    n = sweep_lib.check_shaping(runs, project_root)
    print(f"# {sweep.name}: all {len(runs)} configs valid; {n} distinct shapings solve",
          file=sys.stderr)
  pending = sweep_lib.pending_runs(runs, project_root)
  skipped = len(runs) - len(pending)
  if ns.print_commands or ns.write_commands:
    lines = [sweep_lib.shell_command(r) for r in pending]
    note = (f"# {sweep.name}: {len(pending)} of {len(runs)} runs to do ({skipped} finished "
            f"and left out); run from {project_root}")
    if ns.print_commands:
      print(note)
      print("\n".join(lines))
    else:
      with open(ns.write_commands, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
      print(f"{note}\nwrote {len(lines)} commands to {ns.write_commands}")
    return 0
  sweep_dir = os.path.join(ns.root, sweep.name)
  manifest = os.path.join(sweep_dir if os.path.isabs(sweep_dir)
                          else os.path.join(project_root, sweep_dir), "sweep.json")
  sweep_lib.write_manifest(manifest, runs)
  print(f"{sweep.name}: {len(runs)} runs ({skipped} finished), manifest {manifest}")
  outcomes = sweep_lib.run_locally(runs, project_root, devices=devices)
  failed = [o for o in outcomes if o.status == "error"]
  print(f"{sweep.name}: {sum(o.status == 'ok' for o in outcomes)} ran, "
        f"{sum(o.status == 'skipped' for o in outcomes)} skipped, {len(failed)} failed")
  return EXIT_RUN_FAILED if failed else 0


def report_command(ns: argparse.Namespace) -> int:
  """Runs ``dksflax report``: prints the markdown table and writes it (and a PNG)."""
  from dksflax import sweep as sweep_lib  # pylint: disable=import-outside-toplevel
  sweep, project_root = sweep_lib.load_experiment(ns.experiment)
  results = sweep_lib.collect(sweep, ns.root, project_root)
  text = sweep_lib.markdown(sweep, sweep_lib.summarize(sweep, results))
  sweep_dir = os.path.join(ns.root, sweep.name)
  if not os.path.isabs(sweep_dir):
    sweep_dir = os.path.join(project_root, sweep_dir)
  out = ns.out or os.path.join(sweep_dir, "report.md")
  plot_key = ns.plot_key or sweep.plot_key
  if plot_key:
    png = sweep_lib.plot(sweep, results, plot_key,
                         os.path.splitext(out)[0] + f"_{plot_key.replace('.', '_')}.png")
    if png:
      text += f"\n![{sweep.metric_name} vs {plot_key}]({os.path.basename(png)})\n"
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w") as f:
    f.write(text)
  sys.stdout.write(text)
  print(f"\nwrote {out}")
  return 0


def _common(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("experiment", help="experiment file defining SWEEP, e.g. "
                      "experiments/tat_table2.py")
  parser.add_argument("--root", default="runs",
                      help="runs go to ROOT/SWEEP/RUN (relative to the project root) "
                      "(default: runs)")


def register(subparsers: argparse._SubParsersAction) -> None:
  """Adds the ``sweep`` and ``report`` subcommands to the ``dksflax`` parser."""
  sweep = subparsers.add_parser(
      "sweep", help="expand an experiment into train runs; run, resume or print them")
  _common(sweep)
  sweep.add_argument("--search", action="store_true",
                     help="expand the paper's hyperparameter search in every cell")
  sweep.add_argument("--only", nargs="+", metavar="PATTERN",
                     help="run only the runs whose names match these shell patterns")
  sweep.add_argument("--devices", default=None,
                     help="comma-separated device ids: one run per device at a time, "
                     "each with CUDA_VISIBLE_DEVICES=ID (default: one run at a time)")
  sweep.add_argument("--skip-shaping-check", action="store_true",
                     help="do not solve each distinct shaping before starting (the check "
                     "takes about a second per distinct model/shaping config)")
  sweep.add_argument("--print", dest="print_commands", action="store_true",
                     help="print the unfinished runs' train commands instead of running")
  sweep.add_argument("--write-commands", metavar="FILE", default=None,
                     help="write the unfinished runs' train commands to FILE, one a line")
  sweep.set_defaults(func=sweep_command)
  report = subparsers.add_parser(
      "report", help="tabulate a sweep's results.json next to the paper's numbers")
  _common(report)
  report.add_argument("--out", default=None,
                      help="markdown file (default: ROOT/SWEEP/report.md)")
  report.add_argument("--plot-key", default=None,
                      help="config key for the PNG's x axis (default: the sweep's)")
  report.set_defaults(func=report_command)
