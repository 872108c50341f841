"""Expanding a `Sweep` into runs with stable names, workdirs and train commands.

A run is one ``dksflax train --config FILE[:ARG] --workdir ROOT/SWEEP/NAME
--config.key=value ...`` command. Its name is built from the cell's labels, the search
point's overrides and the seed, so it is the same on every expansion (and on every
machine) and a rerun finds the run's workdir again. Expansion checks, before anything
starts, that every overridden key exists in the config the run builds and that the
resulting config is valid (`dksflax.configlib.validate_config`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import ml_collections

from dksflax.errors import ConfigError
from dksflax.sweep.spec import Setting, Sweep, merge

_SLUG_BAD = re.compile(r"[^A-Za-z0-9._+=-]+")
#: Longest run name accepted (a directory name; most file systems allow 255 bytes).
MAX_NAME_LENGTH = 200


def _slug(text: str) -> str:
  return _SLUG_BAD.sub("", text.replace(" ", "-").replace("/", "-"))


def format_value(value: Any) -> str:
  """The text of one ``--config.key=value`` override, as ml_collections parses it.

  Args:
    value: bool, int, float, str or a tuple of them.

  Returns:
    ``True``/``False`` for bools, ``repr`` for numbers and tuples, the string itself.
  """
  if isinstance(value, bool):
    return "True" if value else "False"
  if isinstance(value, (int, float)):
    return repr(value)
  if isinstance(value, tuple):
    return repr(tuple(value))
  return str(value)


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of a sweep.

  Attributes:
    name: str. Stable, directory-safe name (cell labels, search point, seed).
    sweep: str. The sweep's name.
    labels: tuple of (heading, value). The cell's labels.
    search: tuple of (key, value). The search point's overrides (empty without search).
    seed: int. The run's seed.
    config: str. ``configs/X.py[:arg]``, relative to the project root.
    overrides: tuple of (key, value). Every override, seed included, in order.
    workdir: str. ``ROOT/SWEEP/NAME``.
  """

  name: str
  sweep: str
  labels: tuple[tuple[str, str], ...]
  search: tuple[tuple[str, Any], ...]
  seed: int
  config: str
  overrides: tuple[tuple[str, Any], ...]
  workdir: str

  def train_args(self) -> list[str]:
    """The arguments of ``dksflax train`` for this run."""
    return (["--config", self.config, "--workdir", self.workdir]
            + [f"--config.{k}={format_value(v)}" for k, v in self.overrides])

  def cell_key(self) -> tuple[str, ...]:
    return tuple(v for _, v in self.labels)


def run_name(labels: tuple[tuple[str, str], ...], search: tuple[tuple[str, Any], ...],
             seed: int, cell_overrides: tuple[tuple[str, Any], ...] = ()) -> str:
  """Builds the stable run name ``label-value__...__key-value__seed-N``.

  Args:
    labels: the cell's labels; when empty, the cell's overrides name it instead.
    search: the search point's overrides.
    seed: the seed.
    cell_overrides: the cell's overrides (used only when it has no labels).

  Returns:
    The name (characters outside ``A-Za-z0-9._+=-`` removed).
  """
  parts = [f"{_slug(k)}-{_slug(v)}" for k, v in labels]
  if not labels:
    parts += [f"{_slug(k)}-{_slug(format_value(v))}" for k, v in cell_overrides
              if k != "seed"]
  parts += [f"{_slug(k)}-{_slug(format_value(v))}" for k, v in search if k != "seed"]
  parts.append(f"seed-{seed}")
  return "__".join(parts)


def expand(sweep: Sweep, *, root: str = "runs", search: bool = False) -> list[Run]:
  """Expands a sweep into its runs (cells x search points x seeds), in a fixed order.

  Args:
    sweep: Sweep. The definition.
    root: str. Runs go to ``root/sweep.name/RUN``. (Default: "runs")
    search: bool. Expand the paper's hyperparameter search in each cell; False runs
      each cell once per seed at the cell's own settings. (Default: False)

  Returns:
    The runs. Names are unique.

  Raises:
    ConfigError: for two runs with the same name (two cells with the same labels), a
      name too long for a directory, or a seed set by both the cell and the sweep.
  """
  runs: list[Run] = []
  seen: dict[str, Run] = {}
  for cell in sweep.cells:
    points = sweep.search_points(cell) if search else (Setting(),)
    for point in points:
      combined = merge(cell, point)
      config = combined.config or sweep.config
      own_seed = combined.override_dict().get("seed")
      seeds = (own_seed,) if own_seed is not None else sweep.seeds
      for seed in seeds:
        overrides = dict(combined.overrides)
        overrides["seed"] = seed
        name = run_name(cell.labels, point.overrides, seed, cell.overrides)
        if len(name) > MAX_NAME_LENGTH:
          raise ConfigError(f"sweep {sweep.name!r}: run name {name!r} is longer than "
                            f"{MAX_NAME_LENGTH} characters; use shorter labels")
        run = Run(name=name, sweep=sweep.name, labels=cell.labels, search=point.overrides,
                  seed=int(seed), config=config, overrides=tuple(overrides.items()),
                  workdir=os.path.join(root, sweep.name, name))
        if name in seen:
          raise ConfigError(
              f"sweep {sweep.name!r}: two runs are both named {name!r} (cells "
              f"{dict(seen[name].labels)} and {dict(cell.labels)}); give the cells "
              "distinct labels")
        seen[name] = run
        runs.append(run)
  return runs


def select(runs: list[Run], patterns: list[str] | None) -> list[Run]:
  """Keeps the runs whose name matches one of the shell patterns (all when None)."""
  if not patterns:
    return runs
  import fnmatch  # pylint: disable=import-outside-toplevel
  kept = [r for r in runs if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
  if not kept:
    raise ConfigError(f"--only {' '.join(patterns)} matches none of the {len(runs)} runs "
                      f"(e.g. {runs[0].name!r})")
  return kept


def load_experiment(path: str) -> tuple[Sweep, str]:
  """Loads ``SWEEP`` from an experiment file and finds the project root.

  Experiment files live in a package (``experiments/``, with ``__init__.py``) so that
  they can share helpers; the project root is the package's parent directory, and the
  config paths of the sweep are relative to it.

  Args:
    path: str. ``experiments/NAME.py`` (or any ``.py`` file defining ``SWEEP``).

  Returns:
    ``(sweep, project_root)``.

  Raises:
    ConfigError: if the file does not exist, fails to import, or defines no Sweep.
  """
  full = os.path.abspath(path)
  if not os.path.isfile(full) or not full.endswith(".py"):
    raise ConfigError(f"experiment file {path!r} does not exist or is not a .py file; "
                      "e.g. experiments/tat_table2.py")
  directory, filename = os.path.split(full)
  modname = filename[:-3]
  if os.path.isfile(os.path.join(directory, "__init__.py")):
    root = os.path.dirname(directory)
    qualified = f"{os.path.basename(directory)}.{modname}"
    if root not in sys.path:
      sys.path.insert(0, root)
    try:
      module = importlib.import_module(qualified)
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"experiment file {path!r} failed to import: {e!r}") from e
  else:
    root = os.getcwd()
    spec = importlib.util.spec_from_file_location(f"dksflax_experiment_{modname}", full)
    module = importlib.util.module_from_spec(spec)
    try:
      spec.loader.exec_module(module)
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f"experiment file {path!r} failed to import: {e!r}") from e
  sweep = getattr(module, "SWEEP", None)
  if not isinstance(sweep, Sweep):
    raise ConfigError(f"experiment file {path!r} defines no SWEEP (a dksflax.sweep.Sweep)")
  return sweep, root


class ConfigBuilder:
  """Builds each run's config as ``dksflax train`` would, caching the config files.

  Args:
    project_root: str. Directory the config paths are relative to.
  """

  def __init__(self, project_root: str):
    self._root = project_root
    self._base: dict[str, ml_collections.ConfigDict] = {}

  def base_config(self, spec: str) -> ml_collections.ConfigDict:
    """Returns ``get_config(arg)`` of ``FILE[:ARG]`` (a fresh copy each call)."""
    if spec not in self._base:
      path, _, arg = spec.partition(":")
      full = path if os.path.isabs(path) else os.path.join(self._root, path)
      if not os.path.isfile(full):
        raise ConfigError(f"config file {path!r} (from {spec!r}) does not exist under "
                          f"{self._root}")
      modspec = importlib.util.spec_from_file_location(
          "dksflax_sweep_config_" + _slug(os.path.basename(path))[:-3].replace(".", "_"),
          full)
      module = importlib.util.module_from_spec(modspec)
      modspec.loader.exec_module(module)
      config = module.get_config(arg) if arg else module.get_config()
      self._base[spec] = config
    return ml_collections.ConfigDict(self._base[spec].to_dict())

  def build(self, run: Run) -> ml_collections.ConfigDict:
    """Returns the run's config, locked, with every override applied and validated.

    Raises:
      ConfigError: naming the run and the key when a key does not exist, when a value
        has the wrong type, or when the config is invalid.
    """
    from dksflax.configlib import validate_config  # pylint: disable=import-outside-toplevel
    try:
      config = self.base_config(run.config)
    except ConfigError as e:
      raise ConfigError(f"sweep {run.sweep!r}, run {run.name!r}: {e}") from None
    config.lock()
    for key, value in run.overrides:
      apply_override(config, key, value, where=f"sweep {run.sweep!r}, run {run.name!r} "
                     f"(config {run.config})")
    try:
      validate_config(config)
    except ConfigError as e:
      raise ConfigError(f"sweep {run.sweep!r}, run {run.name!r}: {e}") from None
    return config


def apply_override(config: ml_collections.ConfigDict, key: str, value: Any,
                   where: str = "") -> None:
  """Sets ``config.<key> = value`` after checking that the key exists.

  Args:
    config: ConfigDict. Modified in place.
    key: str. Dotted key.
    value: the value (must match the existing value's type; int -> float is allowed).
    where: str. Context for the error message.

  Raises:
    ConfigError: for a key that does not exist (listing the keys at that level) or a
      value of the wrong type.
  """
  node = config
  parts = key.split(".")
  for i, part in enumerate(parts):
    prefix = ".".join(parts[:i])
    if not isinstance(node, (ml_collections.ConfigDict, Mapping)) or part not in node:
      keys = sorted(node.keys()) if isinstance(node, (ml_collections.ConfigDict, Mapping)) \
          else []
      raise ConfigError(
          f"{where}: config key {key!r} does not exist"
          + (f"; keys under {prefix or 'the top level'!s}: {', '.join(keys)}" if keys else
             f" ({prefix!r} is a value, not a section)"))
    if i < len(parts) - 1:
      node = node[part]
  current = node[parts[-1]]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"{where}: config key {key!r} is a section, not a value; override "
                      "one of its keys: " + ", ".join(sorted(current.keys())))
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  ok = (type(current) is type(value)
        or (isinstance(current, float) and type(value) is int)
        or (isinstance(current, tuple) and isinstance(value, tuple)))
  if not ok:
    raise ConfigError(f"{where}: config key {key!r} holds a {type(current).__name__} "
                      f"({current!r}); the override {value!r} is a {type(value).__name__}")
  node[parts[-1]] = float(value) if isinstance(current, float) else value


def check_runs(runs: list[Run], project_root: str) -> None:
  """Builds and validates every run's config; raises on the first bad one."""
  builder = ConfigBuilder(project_root)
  for run in runs:
    builder.build(run)


def check_shaping(runs: list[Run], project_root: str, *,
                  progress: Any = None) -> int:
  """Solves the kernel shaping of every distinct (model, shaping) config of the runs.

  Catches targets no network of that depth can reach (e.g. TAT's eta above the ReLU
  network's C_f(0), TAT §4.3) before any run starts. Uses
  `dksflax.models.shaping_plan.shaping_for` (numpy/scipy only, no JAX); runs that differ
  only in other keys (learning rate, seed ...) share one solve.

  Args:
    runs: the runs.
    project_root: str. Directory the config paths are relative to.
    progress: callable(str) or None. Called with a line per solve. (Default: None)

  Returns:
    The number of distinct shapings solved.

  Raises:
    ConfigError or ShapingError: naming the first run whose shaping fails.
  """
  solved, failed = _solve_shapings(runs, project_root, progress, stop_at_first=True)
  if failed:
    raise failed[0][1]
  return solved


def drop_unsolvable(runs: list[Run], project_root: str, *,
                    progress: Any = None) -> tuple[list[Run], list[tuple[Run, str]]]:
  """Splits search runs into those whose shaping solves and those whose target is out of
  reach (a grid point such as eta = 0.95 that a given network cannot attain is no
  candidate of the search; TAT §5 picks eta from {0.9, 0.95} by search).

  Args:
    runs: the runs (usually of a ``--search`` expansion).
    project_root: str. Directory the config paths are relative to.
    progress: callable(str) or None. (Default: None)

  Returns:
    ``(kept, dropped)``; ``dropped`` pairs each left-out run with the solver's message.

  Raises:
    ConfigError: if every search point of some cell is out of reach (the cell would
      silently vanish), naming the cell.
  """
  _, failed = _solve_shapings(runs, project_root, progress, stop_at_first=False)
  bad = {run.name: str(err) for run, err in failed}
  kept = [r for r in runs if r.name not in bad]
  cells = {r.cell_key() for r in runs}
  lost = cells - {r.cell_key() for r in kept}
  if lost:
    cell = sorted(lost)[0]
    example = next(r for r in runs if r.cell_key() == cell)
    raise ConfigError(f"sweep {example.sweep!r}: no search point of cell {cell} has a "
                      f"solvable shaping: {bad[example.name]}")
  return kept, [(r, bad[r.name]) for r in runs if r.name in bad]


def _solve_shapings(runs: list[Run], project_root: str, progress: Any,
                    stop_at_first: bool) -> tuple[int, list[tuple[Run, ValueError]]]:
  import json  # pylint: disable=import-outside-toplevel
  from dksflax.errors import ShapingError  # pylint: disable=import-outside-toplevel
  from dksflax.models.shaping_plan import shaping_for  # pylint: disable=import-outside-toplevel
  builder = ConfigBuilder(project_root)
  outcome: dict[str, tuple[type, str] | None] = {}
  failed: list[tuple[Run, ValueError]] = []
  for run in runs:
    config = builder.build(run)
    key = json.dumps([config.model.to_dict(), config.shaping.to_dict()], sort_keys=True,
                     default=repr)
    if key not in outcome:
      try:
        shaping_for(config)
        outcome[key] = None
      except (ShapingError, ConfigError) as e:
        outcome[key] = (ShapingError if isinstance(e, ShapingError) else ConfigError, str(e))
      if progress is not None:
        progress(f"shaping {'ok' if outcome[key] is None else 'FAILS'} "
                 f"({len(outcome)}): {run.name}")
    if outcome[key] is not None:
      cls, message = outcome[key]
      failed.append((run, cls(f"sweep {run.sweep!r}, run {run.name!r}: {message}")))
      if stop_at_first:
        break
  return sum(v is None for v in outcome.values()), failed
