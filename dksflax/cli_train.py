"""`dksflax train` and `dksflax eval`: thin command-line front ends to `dksflax.train`.

  dksflax train --config configs/imagenet_resnet.py:resnet50,tat,kfac --workdir DIR \\
      [--config.train.steps=1000 ...]
  dksflax eval --workdir DIR

Flags are parsed with absl and ml_collections ``config_flags`` (as in the Flax examples),
with ``lock_config=True``: an override of a key that does not exist, or of the wrong
type, is an error. ``file.py:arg`` passes ``arg`` to the file's ``get_config(arg)``
(big_vision style). Rerunning the same command on the same workdir resumes.
Errors (bad config, unusable workdir, non-finite training) are printed as one clear
message with a nonzero exit status, not a traceback.

`register(subparsers)` adds both subcommands to the `dksflax` argparse parser
(`dksflax/cli.py`); ``python -m dksflax.cli_train train|eval ...`` works on its own too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import ml_collections

from dksflax.configlib.command_line import parse_config_flags
from dksflax.errors import ConfigError, ShapingError

EXIT_CONFIG_ERROR = 2
EXIT_NON_FINITE = 3


def parse_train_flags(argv: Sequence[str]) -> tuple[ml_collections.ConfigDict, str]:
  """Parses ``--config FILE[:ARG] --workdir DIR [--config.a.b=v ...]``.

  Args:
    argv: Sequence of str. The arguments after ``train``.

  Returns:
    ``(config, workdir)``; the config is locked and has every override applied.

  Raises:
    ConfigError: for a missing flag, an unloadable config file, an unknown key, or a value
      of the wrong type.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel

  def define_flags(values: Any) -> None:
    flags.DEFINE_string("workdir", None, "Run directory (created; rerun to resume).",
                        flag_values=values)

  config, values = parse_config_flags("train", argv, define_flags=define_flags)
  if not values.workdir:
    raise ConfigError("--workdir is required: the run directory (rerun to resume)")
  return config, values.workdir


def train_command(argv: Sequence[str]) -> int:
  """Runs ``dksflax train``; returns the exit status."""
  try:
    config, workdir = parse_train_flags(argv)
    from dksflax.configlib import validate_config  # pylint: disable=import-outside-toplevel
    validate_config(config)
    from dksflax.train import (  # pylint: disable=import-outside-toplevel
        NonFiniteError, train_and_evaluate)
    try:
      results = train_and_evaluate(config, workdir)
    except NonFiniteError as e:
      print(f"dksflax train: error: {e}", file=sys.stderr)
      return EXIT_NON_FINITE
  except (ConfigError, ShapingError) as e:
    print(f"dksflax train: error: {e}", file=sys.stderr)
    return EXIT_CONFIG_ERROR
  print(json.dumps(dict(status=results["status"], step=results["step"],
                        eval=results["eval"]), sort_keys=True))
  return 0


def eval_command(workdir: str) -> int:
  """Runs ``dksflax eval --workdir DIR``; returns the exit status."""
  try:
    from dksflax.train import evaluate_workdir  # pylint: disable=import-outside-toplevel
    result = evaluate_workdir(workdir)
  except (ConfigError, ShapingError) as e:
    print(f"dksflax eval: error: {e}", file=sys.stderr)
    return EXIT_CONFIG_ERROR
  print(json.dumps(result, sort_keys=True))
  return 0


def register(subparsers: argparse._SubParsersAction) -> None:
  """Adds the ``train`` and ``eval`` subcommands to the ``dksflax`` parser.

  Each parser sets ``func`` (a callable of the parsed namespace returning the exit status).
  ``train`` hands its arguments untouched to absl (``--config.a.b=v`` style flags), so its
  argparse parser takes them as plain words (``prefix_chars="+"``).
  """
  train = subparsers.add_parser(
      "train", add_help=False, prefix_chars="+",
      help="train a config: --config FILE[:ARG] --workdir DIR [--config.a.b=v ...]")
  train.add_argument("flags", nargs="*")
  train.set_defaults(func=lambda ns: train_command(ns.flags))
  evaluate = subparsers.add_parser(
      "eval", help="evaluate the newest checkpoint of a workdir with its saved config")
  evaluate.add_argument("--workdir", required=True, help="run directory of `dksflax train`")
  evaluate.set_defaults(func=lambda ns: eval_command(ns.workdir))
