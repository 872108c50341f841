"""Sweep definitions and their expansion: grids, names, key checks, command round trip."""

from __future__ import annotations

import os

import pytest

from dksflax.errors import ConfigError
from dksflax.sweep import (ConfigBuilder, Setting, Sweep, chain, check_runs, expand,
                           format_value, grid, merge, options, select, setting, values)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = "configs/digits_mlp.py:tat,sgd"


def _eta_sweep(**kw) -> Sweep:
  return Sweep(name="eta", title="eta", config=DIGITS,
               cells=values("shaping.eta", [0.5, 0.9, 0.95], label="eta"), **kw)


def test_grid_is_the_product_and_chain_the_union():
  g = grid(values("shaping.eta", [0.5, 0.9]), values("optimizer.learning_rate", [0.1, 0.01]))
  assert len(g) == 4
  assert [s.override_dict() for s in g][1] == {"shaping.eta": 0.5,
                                               "optimizer.learning_rate": 0.01}
  c = chain(values("shaping.eta", [0.5]), values("shaping.tau", [0.2, 0.3]))
  assert [s.override_dict() for s in c] == [{"shaping.eta": 0.5}, {"shaping.tau": 0.2},
                                            {"shaping.tau": 0.3}]
  o = options("act", {"ReLU": setting(overrides={"model.activation": "relu"}),
                      "Tanh": setting(overrides={"model.activation": "tanh"})})
  assert [s.label_dict() for s in o] == [{"act": "ReLU"}, {"act": "Tanh"}]


def test_merge_later_wins():
  a = setting(labels={"x": 1}, config="a.py", overrides={"seed": 1, "shaping.eta": 0.5})
  b = setting(labels={"x": 2}, overrides={"seed": 3})
  m = merge(a, b)
  assert m.config == "a.py" and m.label_dict() == {"x": "2"}
  assert m.override_dict() == {"seed": 3, "shaping.eta": 0.5}


@pytest.mark.parametrize("make", [
    lambda: values("shaping.eta", []),
    lambda: grid(values("seed", [0]), ()),
    lambda: chain(),
    lambda: options("a", {}),
    lambda: Sweep(name="e", title="", config=DIGITS, cells=()),
    lambda: _eta_sweep(seeds=()),
])
def test_empty_grids_are_refused(make):
  with pytest.raises(ConfigError, match="empty"):
    make()


def test_bad_keys_values_and_names_are_refused():
  with pytest.raises(ConfigError, match="dotted path"):
    values("shaping..eta", [1.0])
  with pytest.raises(ConfigError, match="bool, int, float, str"):
    setting(overrides={"shaping.eta": None})
  with pytest.raises(ConfigError, match="directory"):
    Sweep(name="a/b", title="", config=DIGITS, cells=values("seed", [0]))


def test_expansion_counts_names_and_workdirs():
  sweep = _eta_sweep(seeds=(0, 1), search=values("optimizer.learning_rate", [0.1, 0.03]))
  runs = expand(sweep, root="R")
  assert len(runs) == 3 * 2
  assert runs[0].name == "eta-0.5__seed-0"
  assert runs[0].workdir == os.path.join("R", "eta", "eta-0.5__seed-0")
  searched = expand(sweep, root="R", search=True)
  assert len(searched) == 3 * 2 * 2
  assert searched[0].name == "eta-0.5__optimizer.learning_rate-0.1__seed-0"
  # Stable: the same definition expands to the same names, in the same order.
  assert [r.name for r in expand(sweep, root="R", search=True)] == [r.name for r in searched]
  assert len({r.name for r in searched}) == len(searched)
  assert select(searched, ["eta-0.9__*"])[0].name.startswith("eta-0.9")
  with pytest.raises(ConfigError, match="matches none"):
    select(searched, ["nothing*"])


def test_duplicate_cells_are_refused():
  sweep = Sweep(name="dup", title="", config=DIGITS,
                cells=(setting(labels={"a": 1}, overrides={"seed": 0}),
                       setting(labels={"a": 1}, overrides={"shaping.eta": 0.5})))
  with pytest.raises(ConfigError, match="both named"):
    expand(sweep)


def test_unknown_key_fails_before_anything_starts(tmp_path):
  sweep = Sweep(name="bad", title="", config=DIGITS,
                cells=values("shaping.etta", [0.5, 0.9]))
  runs = expand(sweep, root=str(tmp_path))
  with pytest.raises(ConfigError, match=r"'shaping.etta' does not exist.*eta"):
    check_runs(runs, REPO)
  assert not os.listdir(tmp_path)
  wrong_type = Sweep(name="t", title="", config=DIGITS, cells=values("model.depth", ["x"]))
  with pytest.raises(ConfigError, match="holds a int"):
    check_runs(expand(wrong_type), REPO)
  invalid = Sweep(name="v", title="", config=DIGITS, cells=values("shaping.eta", [1.5]))
  with pytest.raises(ConfigError, match="shaping.eta=1.5"):
    check_runs(expand(invalid), REPO)
  missing = Sweep(name="m", title="", config="configs/nope.py", cells=values("seed", [0]))
  with pytest.raises(ConfigError, match="does not exist"):
    check_runs(expand(missing), REPO)


def test_train_command_builds_the_same_config_as_the_sweep():
  """The printed overrides parse (absl + config_flags) to the config the sweep checked."""
  from dksflax.cli_train import parse_train_flags
  from dksflax.train.workdir import config_to_dict
  cell = setting(labels={"c": "x"}, overrides={
      "shaping.eta": 0.95, "optimizer.learning_rate": 3e-5, "model.depth": 7,
      "data.augment": False, "optimizer.step_boundaries": (0.25, 0.5),
      "model.activation": "leaky_relu", "model.width_multiplier": 2})
  sweep = Sweep(name="rt", title="", config=DIGITS, cells=(cell,), seeds=(4,))
  (run,) = expand(sweep, root="R")
  built = ConfigBuilder(REPO).build(run)
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    parsed, workdir = parse_train_flags(run.train_args())
  finally:
    os.chdir(cwd)
  assert workdir == run.workdir
  assert config_to_dict(parsed) == config_to_dict(built)
  assert built.seed == 4 and built.optimizer.step_boundaries == (0.25, 0.5)
  assert format_value(False) == "False" and format_value(3e-5) == "3e-05"


def test_search_can_depend_on_the_cell():
  def search(cell: Setting):
    n = 1 if cell.label_dict()["eta"] == "0.5" else 3
    return values("optimizer.learning_rate", [0.1, 0.03, 0.01][:n], label="")
  runs = expand(_eta_sweep(search=search), search=True)
  assert len(runs) == 1 + 3 + 3


def test_unreachable_shaping_target_fails_before_anything_starts():
  """TAT §4.3: a 4-layer leaky-ReLU net cannot reach C_f(0) = 0.99; solved once per net."""
  from dksflax.errors import ShapingError
  from dksflax.sweep import check_shaping
  sweep = Sweep(name="eta", title="", config=DIGITS, seeds=(0, 1),
                cells=grid(values("model.depth", [4], label=""),
                           values("shaping.eta", [0.5, 0.99], label="eta")))
  runs = expand(sweep)
  check_runs(runs, REPO)              # the config itself is valid ...
  with pytest.raises(ShapingError, match=r"run 'eta-0.99__seed-0'.*eta=0.99 is unreachable"):
    check_shaping(runs, REPO)         # ... but its shaping has no solution
  lines = []
  assert check_shaping(runs[:2], REPO, progress=lines.append) == 1   # seeds share a solve
  assert len(lines) == 1


def test_search_points_out_of_reach_are_left_out_not_the_cell():
  from dksflax.sweep import drop_unsolvable
  depth4 = values("model.depth", [4], label="")
  sweep = Sweep(name="s", title="", config=DIGITS, cells=depth4,
                search=values("shaping.eta", [0.5, 0.99], label=""))
  kept, dropped = drop_unsolvable(expand(sweep, search=True), REPO)
  assert [dict(r.search) for r in kept] == [{"shaping.eta": 0.5}]
  assert len(dropped) == 1 and "eta=0.99 is unreachable" in dropped[0][1]
  hopeless = Sweep(name="h", title="", config=DIGITS, cells=depth4,
                   search=values("shaping.eta", [0.95, 0.99], label=""))
  with pytest.raises(ConfigError, match="no search point of cell"):
    drop_unsolvable(expand(hopeless, search=True), REPO)
