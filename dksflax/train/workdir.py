"""The run directory: its guard against overwriting, config.json and JSON records.

A workdir belongs to one config. The first run writes ``config.json``; a later run on
the same directory must bring the same config (it then resumes), otherwise it is refused
before any compute, so that nothing in an existing workdir is overwritten or lost.
Records (``config.json``, ``results.json``, ``failure.json``) are written atomically
(temporary file + rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Any

import ml_collections

from dksflax.configlib import default_config
from dksflax.errors import ConfigError

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
FAILURE_FILE = "failure.json"
CHECKPOINT_DIR = "checkpoints"


def config_to_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Returns the config as plain JSON-able data (tuples become lists)."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def config_from_dict(data: dict[str, Any]) -> ml_collections.ConfigDict:
  """Rebuilds a locked config from ``config_to_dict`` output, on top of the defaults.

  Args:
    data: dict. Nested values as saved in ``config.json``.

  Returns:
    The ConfigDict, locked (unknown keys in ``data`` are errors).

  Raises:
    ConfigError: if ``data`` names a key the default config does not have.
  """
  config = default_config()
  _update(config, data, prefix="")
  config.lock()
  return config


def _update(node: ml_collections.ConfigDict, data: dict[str, Any], prefix: str) -> None:
  for key, value in data.items():
    name = prefix + key
    if key not in node:
      raise ConfigError(f"saved config key {name!r} is unknown to this version of dksflax")
    current = node[key]
    if isinstance(current, ml_collections.ConfigDict):
      _update(current, value, name + ".")
    elif isinstance(current, tuple):
      node[key] = tuple(value)
    else:
      node[key] = value


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(data, dict):
    out = {}
    for k, v in data.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out
  return {prefix[:-1]: data}


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict, *,
                    write: bool = True) -> bool:
  """Checks that ``workdir`` may hold this run and records the config there.

  Args:
    workdir: str. The run directory (created if missing).
    config: ConfigDict. The run's full config.
    write: bool. Whether this process writes files (process 0 only). (Default: True)

  Returns:
    True when the directory already holds this config (the run resumes), False for a
    fresh run.

  Raises:
    ConfigError: when the directory cannot be created or written, when it holds a
      different config (the differing keys are listed), or when it holds files but no
      ``config.json`` (it is then not a dksflax workdir).
  """
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir {workdir} exists and is not a directory")
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_probe_"):
      pass
  except OSError as e:
    raise ConfigError(f"--workdir {workdir} is not writable ({e.strerror}); choose a "
                      "directory you can write to") from None
  new = config_to_dict(config)
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != new:
      a, b = _flatten(saved), _flatten(new)
      diff = sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))
      shown = ", ".join(f"{k}: {a.get(k, '<missing>')!r} -> {b.get(k, '<missing>')!r}"
                        for k in diff[:8])
      raise ConfigError(
          f"--workdir {workdir} holds a run with a different config ({shown}"
          f"{', ...' if len(diff) > 8 else ''}); rerun with the saved config to resume, "
          "or choose a new workdir (nothing there was changed)")
    return True
  leftovers = [n for n in os.listdir(workdir) if not n.startswith(".write_probe_")]
  if leftovers:
    raise ConfigError(
        f"--workdir {workdir} is not empty ({', '.join(sorted(leftovers)[:5])}) and holds no "
        f"{CONFIG_FILE}, so it is not a dksflax run directory; choose a new or empty one")
  if write:
    write_json(path, new)
  return False


def load_workdir_config(workdir: str) -> ml_collections.ConfigDict:
  """Returns the config saved in ``workdir/config.json``.

  Raises:
    ConfigError: when the directory holds no ``config.json``.
  """
  path = os.path.join(os.path.abspath(workdir), CONFIG_FILE)
  if not os.path.exists(path):
    raise ConfigError(f"--workdir {workdir} holds no {CONFIG_FILE}; is it a dksflax run?")
  with open(path) as f:
    return config_from_dict(json.load(f))


def write_json(path: str, data: Any) -> None:
  """Writes ``data`` as indented JSON to ``path`` atomically (temporary file + rename)."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".json")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
      f.write("\n")
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _json_default(x: Any) -> Any:
  if hasattr(x, "tolist"):
    return x.tolist()
  if hasattr(x, "__dataclass_fields__"):
    return dataclasses.asdict(x)
  return repr(x)
