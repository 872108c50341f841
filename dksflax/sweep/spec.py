"""Sweep definitions: labelled settings, grids and lists, and the `Sweep` record.

A sweep is a list of *cells* (one per number a paper reports, or one per point of a
plain grid) and, optionally, the hyperparameter search the paper ran inside each cell
(e.g. TAT App. D: learning rate x L2 x dropout, picking the best). Every cell and every
search point is a `Setting`: table labels (the row/column headings of the paper's table),
an optional config file (``configs/X.py:arg``) and dotted config-key overrides
(``shaping.eta``, ``optimizer.learning_rate``, ``seed`` ...). Settings combine with

  * `values(key, [v1, v2])`: one setting per value of one config key (a list axis),
  * `options(label, {"ReLU": s1, "TReLU": s2})`: named alternatives,
  * `grid(axis1, axis2, ...)`: the Cartesian product (later settings win on a clash),
  * `chain(axis1, axis2, ...)`: concatenation (a union of lists).

An empty axis is an error: a sweep that would silently expand to nothing is always a
mistake. Which config keys exist is checked when the sweep is expanded
(`dksflax.sweep.expand`), against the config each run actually builds.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dksflax.errors import ConfigError

Labels = tuple[tuple[str, str], ...]
Overrides = tuple[tuple[str, Any], ...]
#: Value types a ``--config.key=value`` override can carry.
SCALAR_TYPES = (bool, int, float, str)


def _check_value(key: str, value: Any) -> Any:
  if isinstance(value, list):
    value = tuple(value)
  if isinstance(value, tuple):
    for v in value:
      if not isinstance(v, SCALAR_TYPES):
        raise ConfigError(f"override {key}={value!r}: tuple entries must be bool, int, float "
                          f"or str (got {type(v).__name__})")
    return value
  if not isinstance(value, SCALAR_TYPES):
    raise ConfigError(f"override {key}={value!r} is not accepted: a command-line override "
                      "takes a bool, int, float, str or a tuple of them")
  return value


def _check_key(key: Any) -> str:
  if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
    raise ConfigError(f"config key {key!r} is not accepted: use a dotted path such as "
                      "'shaping.eta' or 'seed'")
  return key


@dataclasses.dataclass(frozen=True)
class Setting:
  """A partial run description: table labels, a config file and config overrides.

  Attributes:
    labels: tuple of (heading, value) str pairs. The cell's coordinates in the paper's
      table, in column order (e.g. ``(("depth", "50"), ("optimizer", "K-FAC"))``).
    overrides: tuple of (dotted key, value) pairs. Config values to set.
    config: str or None. Config file with optional ``:arg`` (``configs/X.py:arg``);
      None keeps the one set elsewhere (the sweep's base config).
  """

  labels: Labels = ()
  overrides: Overrides = ()
  config: str | None = None

  def label_dict(self) -> dict[str, str]:
    return dict(self.labels)

  def override_dict(self) -> dict[str, Any]:
    return dict(self.overrides)


def setting(*, labels: Mapping[str, Any] | None = None, config: str | None = None,
            overrides: Mapping[str, Any] | None = None) -> Setting:
  """Builds a `Setting` from dicts (keys kept in insertion order).

  Args:
    labels: Mapping or None. Table headings to values (values are turned into str).
    config: str or None. ``configs/X.py[:arg]``. (Default: None, inherit)
    overrides: Mapping or None. Dotted config keys to values.

  Returns:
    The Setting.

  Raises:
    ConfigError: for a malformed key or a value no command-line override can carry.
  """
  lab = tuple((str(k), str(v)) for k, v in (labels or {}).items())
  ovr = tuple((_check_key(k), _check_value(k, v)) for k, v in (overrides or {}).items())
  return Setting(labels=lab, overrides=ovr, config=config)


def merge(*settings: Setting) -> Setting:
  """Combines settings left to right; a later label, override or config wins."""
  labels: dict[str, str] = {}
  overrides: dict[str, Any] = {}
  config = None
  for s in settings:
    labels.update(s.labels)
    overrides.update(s.overrides)
    config = s.config if s.config is not None else config
  return Setting(labels=tuple(labels.items()), overrides=tuple(overrides.items()),
                 config=config)


def _nonempty(name: str, axis: Sequence[Setting]) -> tuple[Setting, ...]:
  axis = tuple(axis)
  if not axis:
    raise ConfigError(f"{name}: empty axis; a sweep axis needs at least one value (an empty "
                      "grid would expand to no runs)")
  for s in axis:
    if not isinstance(s, Setting):
      raise ConfigError(f"{name}: {s!r} is not a Setting; build axes with values(), "
                        "options(), setting(), grid() or chain()")
  return axis


def values(key: str, vals: Iterable[Any], *, label: str | None = None,
           fmt: Callable[[Any], str] = str) -> tuple[Setting, ...]:
  """One setting per value of one config key (a list axis).

  Args:
    key: str. Dotted config key, e.g. ``"shaping.eta"`` or ``"seed"``.
    vals: iterable. The values (bool, int, float, str or tuples of them).
    label: str or None. Table heading for this axis; None: the key itself; "" for no
      label (use for seeds: runs differing only in an unlabelled key are replicates of
      one cell). (Default: None)
    fmt: callable. Turns a value into its label text. (Default: str)

  Returns:
    The axis.

  Raises:
    ConfigError: if ``vals`` is empty or holds a value an override cannot carry.
  """
  _check_key(key)
  vals = list(vals)
  if not vals:
    raise ConfigError(f"values({key!r}, []): empty grid; give at least one value")
  heading = key if label is None else label
  return tuple(setting(labels={heading: fmt(v)} if heading else None, overrides={key: v})
               for v in vals)


def options(label: str, alternatives: Mapping[str, Setting]) -> tuple[Setting, ...]:
  """Named alternatives: each setting gets ``label = name``.

  Args:
    label: str. Table heading (e.g. "activation").
    alternatives: Mapping from the label value (e.g. "TReLU") to its Setting.

  Returns:
    The axis, in the mapping's order.

  Raises:
    ConfigError: if ``alternatives`` is empty.
  """
  if not alternatives:
    raise ConfigError(f"options({label!r}, {{}}): empty grid; give at least one alternative")
  return tuple(merge(Setting(labels=((label, str(name)),)), s)
               for name, s in alternatives.items())


def grid(*axes: Sequence[Setting]) -> tuple[Setting, ...]:
  """The Cartesian product of axes, merged left to right (first axis varies slowest)."""
  if not axes:
    raise ConfigError("grid(): empty grid; give at least one axis")
  checked = [_nonempty(f"grid axis {i}", a) for i, a in enumerate(axes)]
  return tuple(merge(*combo) for combo in itertools.product(*checked))


def chain(*axes: Sequence[Setting]) -> tuple[Setting, ...]:
  """Concatenates axes (a union of lists)."""
  if not axes:
    raise ConfigError("chain(): empty grid; give at least one axis")
  out: list[Setting] = []
  for i, a in enumerate(axes):
    out.extend(_nonempty(f"chain axis {i}", a))
  return tuple(out)


SearchFn = Callable[[Setting], Sequence[Setting]]


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A sweep: cells (one per reported number), the per-cell search, seeds and metric.

  Attributes:
    name: str. Directory-safe sweep name (runs go to ``ROOT/name/RUN``).
    title: str. One line for the report heading (paper, table, what is compared).
    config: str. Base config ``configs/X.py[:arg]``, used by cells that set none.
    cells: tuple of Setting. One per reported number; each must carry labels.
    search: tuple of Setting, or a callable ``cell -> settings``. The paper's
      hyperparameter search inside a cell (expanded only on request; the report keeps
      the best point per cell). (Default: (), no search)
    seeds: tuple of int. Seeds per cell and search point (``seed`` override).
      (Default: (0,))
    metric: str. Dotted path into ``results.json`` (e.g. ``eval.accuracy``).
      (Default: "eval.accuracy")
    metric_scale: float. Multiplies the metric to the paper's unit (accuracy fraction
      -> percent). (Default: 100.0)
    metric_name: str. Column heading for the metric. (Default: "top-1 (%)")
    plot_key: str or None. Config key for the x axis of the report's PNG (e.g.
      ``shaping.eta``); None: no plot. (Default: None)
    notes: str. Settings and departures from the paper, printed under the table.
    paper: Mapping. Cell label values (tuple, in label order) -> the paper's number.
    unsupported: Mapping. Cell label values -> why dksflax cannot run that cell (its
      paper number is still listed in the report). (Default: {})
  """

  name: str
  title: str
  config: str
  cells: tuple[Setting, ...]
  search: tuple[Setting, ...] | SearchFn = ()
  seeds: tuple[int, ...] = (0,)
  metric: str = "eval.accuracy"
  metric_scale: float = 100.0
  metric_name: str = "top-1 (%)"
  plot_key: str | None = None
  notes: str = ""
  paper: Mapping[tuple[str, ...], float] = dataclasses.field(default_factory=dict)
  unsupported: Mapping[tuple[str, ...], str] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not self.name or any(c not in _NAME_CHARS for c in self.name):
      raise ConfigError(f"sweep name {self.name!r} must be non-empty and use only letters, "
                        "digits, '.', '_' and '-' (it names a directory)")
    _nonempty(f"sweep {self.name!r} cells", self.cells)
    if not self.seeds:
      raise ConfigError(f"sweep {self.name!r}: seeds=() is an empty grid; give at least one")
    for s in self.seeds:
      if not isinstance(s, int) or isinstance(s, bool) or s < 0:
        raise ConfigError(f"sweep {self.name!r}: seed {s!r} must be a non-negative integer")
    if not callable(self.search):
      object.__setattr__(self, "search", tuple(self.search))

  def search_points(self, cell: Setting) -> tuple[Setting, ...]:
    """The search settings of one cell (``(Setting(),)`` when there is no search)."""
    points = self.search(cell) if callable(self.search) else self.search
    points = tuple(points)
    return points if points else (Setting(),)

  def cell_key(self, cell: Setting) -> tuple[str, ...]:
    """The tuple of a cell's label values: its key in `paper` / `unsupported`."""
    return tuple(v for _, v in cell.labels)


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
