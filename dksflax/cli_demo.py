"""``dksflax demo --workdir DIR``: what kernel shaping buys, in numbers and pictures.

Two parts (``--part`` picks one; the default runs both, as ``make demo`` does):

  1. ``kernel_maps`` (numpy only, seconds): predicted network C maps of a 100-layer
     vanilla MLP and a vanilla ResNet-50, unshaped vs DKS / TAT (`dksflax.demo.kernel_maps`):
     table, PNG plots, ``summary.json``.
  2. ``training`` (JAX, a few minutes on 2 CPU cores): a deep vanilla MLP (no skips, no
     normalisation) trained on digits with standard initialisation, EOC, DKS and TAT, and
     a standard ResNet as the reference, each over the same Adam learning-rate grid
     through the real trainer (`dksflax.demo.training`): one line per run, the best
     learning rate per method as a markdown table (``results.md``, ``results.json``),
     ``training_curves.png``, TensorBoard logs in each run directory under ``runs/``.

Rerunning on the same DIR reuses finished runs (and resumes interrupted ones).
"""

from __future__ import annotations

import argparse

PARTS = ("all", "kernel_maps", "training")


def _floats(text: str) -> tuple[float, ...]:
  try:
    return tuple(float(x) for x in text.split(",") if x.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"{text!r} must be comma-separated numbers, e.g. 1e-4,3e-4,1e-3") from None


def _names(text: str) -> tuple[str, ...]:
  return tuple(x.strip() for x in text.split(",") if x.strip())


def demo_command(ns: argparse.Namespace) -> int:
  """Runs ``dksflax demo``; returns the exit status 0.

  Raises:
    ConfigError, ShapingError: for training settings the framework refuses, before any
      training starts.
  """
  from dksflax.demo import runs  # pylint: disable=import-outside-toplevel
  defaults = runs.DemoSettings()
  settings = runs.DemoSettings(
      depth=ns.depth, width=ns.width, steps=ns.steps,
      learning_rates=ns.lrs if ns.lrs is not None else defaults.learning_rates,
      batch_size=ns.batch_size,
      methods=ns.methods if ns.methods is not None else defaults.methods, seed=ns.seed,
      workers=ns.workers)
  if ns.part in ("all", "training"):
    runs.check_settings(settings)   # refuse bad flags before the first part runs
  if ns.part in ("all", "kernel_maps"):
    from dksflax.demo.kernel_maps import run_kernel_maps  # pylint: disable=import-outside-toplevel
    run_kernel_maps(ns.workdir)
  if ns.part in ("all", "training"):
    from dksflax.demo.training import run_training_demo  # pylint: disable=import-outside-toplevel
    print(flush=True)
    run_training_demo(ns.workdir, settings, log=lambda line: print(line, flush=True))
  return 0


def register(subparsers: argparse._SubParsersAction) -> None:
  """Adds ``demo`` to the ``dksflax`` parser."""
  from dksflax.demo.runs import DemoSettings, METHODS  # pylint: disable=import-outside-toplevel
  d = DemoSettings()
  p = subparsers.add_parser(
      "demo", help="show what kernel shaping buys on deep vanilla nets (C maps, training)",
      description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="output directory (reruns reuse it)")
  p.add_argument("--part", choices=PARTS, default="all",
                 help="which part to run (default: all)")
  p.add_argument("--depth", type=int, default=d.depth,
                 help=f"vanilla MLP depth (default: {d.depth})")
  p.add_argument("--width", type=int, default=d.width,
                 help=f"vanilla MLP width (default: {d.width})")
  p.add_argument("--steps", type=int, default=d.steps,
                 help=f"training steps per run (default: {d.steps})")
  p.add_argument("--batch-size", type=int, default=d.batch_size,
                 help=f"batch size (default: {d.batch_size})")
  p.add_argument("--workers", type=int, default=d.workers,
                 help=f"processes training runs side by side (default: {d.workers})")
  p.add_argument("--lrs", type=_floats, default=None,
                 help="Adam learning-rate grid shared by all methods (default: "
                      + ",".join(f"{lr:g}" for lr in d.learning_rates) + ")")
  p.add_argument("--methods", type=_names, default=None,
                 help=f"methods to train, from {','.join(METHODS)} (default: all)")
  p.add_argument("--seed", type=int, default=d.seed, help="run seed (default: 0)")
  p.set_defaults(func=demo_command)
