"""The ``dksflax`` command line: one argparse parser, one small module per subcommand.

  dksflax shape --arch resnet50 --variant vanilla --method tat --activation leaky_relu
  dksflax demo --workdir demo_out
  python -m dksflax.cli <subcommand> ...            (same thing; ``make demo`` uses it)

This file only builds the parser and dispatches. Each subcommand lives in its own module
``dksflax/cli_<name>.py`` exposing ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable of the parsed namespace returning the exit status). To add a
subcommand, write that module and append its name to `SUBCOMMAND_MODULES`. A module
imports its heavy dependencies (JAX, TensorFlow) inside ``func``, never at import time,
so ``dksflax shape`` stays a pure numpy/scipy program.

Errors: a bad value (ConfigError, ShapingError or another ValueError raised before any
compute) is printed as ``dksflax <subcommand>: error: <message>`` with exit status 2 and
no traceback; argparse usage errors also exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

#: Modules providing subcommands, in the order they are listed by ``dksflax --help``.
SUBCOMMAND_MODULES = (
    "dksflax.cli_shape",
    "dksflax.cli_demo",
    "dksflax.cli_sweep",   # sweep, report (H8)
    "dksflax.cli_train",   # train, eval (H7)
    "dksflax.cli_diagnose",  # diagnose (H6)
)

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
  """The ``dksflax`` parser with every subcommand of `SUBCOMMAND_MODULES` registered."""
  parser = argparse.ArgumentParser(
      prog="dksflax",
      description="Kernel shaping (DKS, TAT, EOC ...) for very deep networks in JAX/Flax.")
  subparsers = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
  for name in SUBCOMMAND_MODULES:
    importlib.import_module(name).register(subparsers)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Runs one subcommand.

  Args:
    argv: the arguments after the program name. (Default: sys.argv[1:])

  Returns:
    The exit status: 0 on success, 2 for a usage error or a rejected value.
  """
  parser = build_parser()
  ns = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
  try:
    return int(ns.func(ns) or 0)
  except ValueError as e:  # ConfigError and ShapingError are ValueErrors.
    print(f"dksflax {ns.command}: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  except BrokenPipeError:  # e.g. `dksflax shape ... | head`: the reader left early.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
  sys.exit(main())
