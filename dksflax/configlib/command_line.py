"""``--config FILE[:ARG] [--config.a.b=v ...]`` command lines (absl + ml_collections).

The Flax-examples convention (STYLE.md §1): `config_flags.DEFINE_config_file` with
``lock_config=True``, so an override of a key that does not exist fails. Every failure is
turned into a `ConfigError` naming what was wrong, before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

from dksflax.errors import ConfigError


def parse_config_flags(command: str, argv: Sequence[str], *,
                       define_flags: Callable[[Any], None] | None = None,
                       example: str = "configs/digits_mlp.py"
                       ) -> tuple[ml_collections.ConfigDict, Any]:
  """Parses a subcommand's flags: the config file, its overrides and extra flags.

  Args:
    command: str. The subcommand's name (for messages).
    argv: Sequence of str. The arguments after the subcommand.
    define_flags: Callable or None. Defines the subcommand's other flags on the
      `absl.flags.FlagValues` it is given. (Default: None)
    example: str. A --config value shown when --config is missing.

  Returns:
    ``(config, flag_values)``: the locked config with every override applied, and the
    parsed `absl.flags.FlagValues` holding the other flags.

  Raises:
    ConfigError: for a bad command line, an unloadable config file, an unknown key, or a
      value of the wrong type; and when --config is missing.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel

  argv = [f"dksflax {command}", *argv]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file(
      "config", None, "Experiment config file (configs/*.py), optionally file.py:arg.",
      flag_values=values, lock_config=True, sys_argv=argv)
  if define_flags is not None:
    define_flags(values)
  try:
    values(argv)
    config = values.config
    if config is not None and not isinstance(config, ml_collections.ConfigDict):
      config.get("train")   # a file that failed to load raises its error on first use
  except flags.Error as e:
    raise ConfigError(f"bad command line: {e}") from None
  except AttributeError as e:
    # ml_collections reports an unknown (locked) key as an AttributeError with a suggestion.
    raise ConfigError(f"unknown config key in an override: {e.args[0] if e.args else e}; "
                      "see the config file for the keys that exist") from None
  except (OSError, ImportError, SyntaxError) as e:
    raise ConfigError(f"cannot load the --config file: {e}") from None
  if config is None:
    raise ConfigError(f"--config is required, e.g. --config {example}")
  return config, values
