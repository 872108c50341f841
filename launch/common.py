"""What both launchers share: checking the train arguments and the remote environment.

Every process of a multi-host job runs the same ``dksflax train`` command; the trainer
calls ``jax.distributed.initialize`` when ``DKSFLAX_COORDINATOR_ADDRESS``,
``DKSFLAX_NUM_PROCESSES`` and ``DKSFLAX_PROCESS_ID`` are set (`dksflax.train.mesh`). The
launchers set these explicitly from the cluster's own description of the job, so what
runs is visible in the dry run rather than left to auto-detection.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from dksflax.errors import ConfigError


def check_train_args(train_args: Sequence[str]) -> list[str]:
  """Checks the ``dksflax train`` arguments given after ``--``.

  Args:
    train_args: the arguments, e.g. ``["--config", "configs/X.py:arg", "--workdir", D]``.

  Returns:
    The arguments as a list.

  Raises:
    ConfigError: when ``--config`` or ``--workdir`` is missing.
  """
  args = list(train_args)
  if args and args[0] == "--":
    args = args[1:]
  for flag in ("--config", "--workdir"):
    if not any(a == flag or a.startswith(flag + "=") for a in args):
      raise ConfigError(f"the train command needs {flag}: give the dksflax train arguments "
                        "after '--', e.g. -- --config configs/digits_mlp.py --workdir RUN")
  return args


def workdir_of(train_args: Sequence[str]) -> str:
  """The value of ``--workdir`` in the train arguments."""
  args = list(train_args)
  for i, a in enumerate(args):
    if a.startswith("--workdir="):
      return a.split("=", 1)[1]
    if a == "--workdir" and i + 1 < len(args):
      return args[i + 1]
  raise ConfigError("the train command needs --workdir")


def parse_env(pairs: Sequence[str] | None) -> list[tuple[str, str]]:
  """Parses repeated ``--env KEY=VALUE`` options.

  Raises:
    ConfigError: for an entry without ``=`` or with an invalid variable name.
  """
  out = []
  for pair in pairs or ():
    key, sep, value = pair.partition("=")
    if not sep or not key.replace("_", "a").isalnum() or key[0].isdigit():
      raise ConfigError(f"--env {pair!r} must be KEY=VALUE with a shell variable name")
    out.append((key, value))
  return out


def train_line(python: str, train_args: Sequence[str]) -> str:
  """``PYTHON -m dksflax.cli train ARGS``, shell-quoted."""
  return shlex.join([python, "-m", "dksflax.cli", "train", *train_args])
