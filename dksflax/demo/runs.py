"""The demo's runs: one config per (method, learning rate), trained by the real trainer.

Every run is ``dksflax.train.train_and_evaluate(config, run_dir)`` on a config built from
``dksflax.configlib.default_config()`` with a few overrides, so its TensorBoard events,
``metrics.jsonl``, ``results.json`` and checkpoints land in its own run directory.

The vanilla networks are one deep MLP without skip connections or normalisation (DKS
§28.2, TAT §5 "vanilla" networks), initialised four ways:
  * ``none``: ReLU with He / fan-in initialisation (sigma_w^2 = 2): the standard recipe;
  * ``eoc``: tanh on the edge of chaos (Poole et al. 2016; DKS §5);
  * ``dks``: tanh transformed by DKS with zeta = 1.5 (DKS §16.6, §28.1);
  * ``tat``: leaky ReLU transformed by TAT with eta = 0.9 (TAT §4.3).
The reference is a standard ResNet-V2 (skip connections and batch norm) with one
bottleneck block per stage, ReLU and fan-in initialisation.

A finished run (``results.json`` says completed or failed) is reused when the demo is
rerun; an interrupted one resumes from its checkpoint (the trainer's own behaviour).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import time
from typing import Any

import ml_collections

from dksflax.configlib import default_config, validate_config
from dksflax.errors import ConfigError

RESULTS_FILE = "results.json"
FINISHED = ("completed", "failed")


@dataclasses.dataclass(frozen=True)
class MethodSpec:
  """One row of the demo table.

  Attributes:
    key: short name used in run-directory names and ``--methods``.
    label: the row's name in the table.
    network: a short description of the network.
    overrides: dotted config keys -> values applied on top of the shared settings.
      The strings ``"{depth}"`` / ``"{width}"`` are replaced by the demo's sizes.
  """

  key: str
  label: str
  network: str
  overrides: tuple[tuple[str, Any], ...]


_VANILLA = (("model.name", "mlp"), ("model.variant", "vanilla"),
            ("model.depth", "{depth}"), ("model.width", "{width}"),
            ("model.normalization", "none"))

METHODS: dict[str, MethodSpec] = {m.key: m for m in (
    MethodSpec("none", "standard init (ReLU, He)", "vanilla MLP", _VANILLA + (
        ("model.activation", "relu"), ("shaping.method", "none"),
        ("shaping.weight_init", "fan_in_gaussian"))),
    MethodSpec("eoc", "EOC (tanh)", "vanilla MLP", _VANILLA + (
        ("model.activation", "tanh"), ("shaping.method", "eoc"),
        ("shaping.weight_init", "fan_in_gaussian"))),
    MethodSpec("dks", "DKS (tanh, zeta 1.5)", "vanilla MLP", _VANILLA + (
        ("model.activation", "tanh"), ("shaping.method", "dks"), ("shaping.zeta", 1.5),
        ("shaping.weight_init", "fan_in_gaussian"))),
    MethodSpec("tat", "TAT (leaky ReLU, eta 0.9)", "vanilla MLP", _VANILLA + (
        ("model.activation", "leaky_relu"), ("shaping.method", "tat"),
        ("shaping.eta", 0.9), ("shaping.weight_init", "fan_in_gaussian"))),
    MethodSpec("resnet", "standard ResNet (skips + BN)", "ResNet-V2, 1 block/stage", (
        ("model.name", "resnet"), ("model.variant", "standard"),
        ("model.blocks", (1, 1, 1, 1)), ("model.width_multiplier", 0.125),
        ("model.normalization", "batch_norm"), ("model.stem", "cifar"),
        ("model.activation", "relu"), ("shaping.method", "none"),
        ("shaping.weight_init", "fan_in_gaussian"))),
)}


@dataclasses.dataclass(frozen=True)
class DemoSettings:
  """What every run shares.

  Attributes:
    depth: nonlinear layers of the vanilla MLP. (Default: 100: at depth 50 ReLU with He
      initialisation still trains on digits, at 100 it falls far behind)
    width: units per layer of the vanilla MLP. (Default: 128)
    steps: training steps of every run. (Default: 300)
    learning_rates: the Adam learning-rate grid, the same for every method.
    batch_size: global batch size. (Default: 64)
    methods: keys of `METHODS` to run, in table order.
    seed: the runs' seed. (Default: 0)
    workers: processes training runs side by side (results do not depend on it).
      (Default: 2, the cores of the reference machine)
  """

  depth: int = 100
  width: int = 128
  steps: int = 300
  learning_rates: tuple[float, ...] = (1e-4, 3e-4)
  batch_size: int = 64
  methods: tuple[str, ...] = ("none", "eoc", "dks", "tat", "resnet")
  seed: int = 0
  workers: int = 2

  def tag(self) -> str:
    """A directory name that changes with every setting the configs depend on."""
    return f"d{self.depth}_w{self.width}_s{self.steps}_b{self.batch_size}_seed{self.seed}"


def check_settings(settings: DemoSettings) -> None:
  """Raises ConfigError for settings no run could use (before anything is trained)."""
  for name in ("depth", "width", "steps", "batch_size", "workers"):
    value = getattr(settings, name)
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"demo {name}={value!r} must be a positive integer")
  if not settings.learning_rates or any(
      not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0)
      for lr in settings.learning_rates):
    raise ConfigError(f"demo learning rates {settings.learning_rates!r} must be a non-empty "
                      "list of positive numbers")
  unknown = [m for m in settings.methods if m not in METHODS]
  if unknown or not settings.methods:
    raise ConfigError(f"demo methods {list(settings.methods)!r}: accepted are "
                      + ", ".join(repr(k) for k in METHODS))


def make_config(method: str, lr: float, settings: DemoSettings) -> ml_collections.ConfigDict:
  """The full, validated config of one demo run.

  Shared settings: digits (no download), Adam (eps 1e-5, DKS §27.5) at a constant
  learning rate (so the grid compares step sizes directly), batch
  ``settings.batch_size``, ``settings.steps`` steps, evaluation at the end, training
  scalars every 10 steps, one checkpoint at the end.

  Args:
    method: a key of `METHODS`.
    lr: the Adam learning rate.
    settings: the shared settings.

  Returns:
    The locked ConfigDict.

  Raises:
    ConfigError: for an unknown method or a config the framework refuses.
  """
  if method not in METHODS:
    raise ConfigError(f"demo method {method!r} is not accepted; choose one of: "
                      + ", ".join(repr(k) for k in METHODS))
  c = default_config()
  c.seed = settings.seed
  c.data.name = "digits"
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = float(lr)
  c.optimizer.schedule = "constant"
  c.optimizer.warmup_steps = 0
  c.optimizer.adam.eps = 1e-5
  t = c.train
  t.batch_size = settings.batch_size
  t.eval_batch_size = 120
  t.steps = settings.steps
  t.epochs = -1
  t.eval_every = 0
  t.log_every = min(10, settings.steps)
  t.checkpoint_every = settings.steps
  t.keep_checkpoints = 1
  t.progress_bar = False
  sizes = {"{depth}": settings.depth, "{width}": settings.width}
  for dotted, value in METHODS[method].overrides:
    section, key = dotted.split(".")
    c[section][key] = sizes.get(value, value) if isinstance(value, str) else value
  c.lock()
  validate_config(c)
  return c


def run_dir(workdir: str, settings: DemoSettings, method: str, lr: float) -> str:
  """``WORKDIR/runs/<settings tag>/<method>_lr<lr>``."""
  return os.path.join(workdir, "runs", settings.tag(), f"{method}_lr{lr:g}")


def _read_results(path: str) -> dict[str, Any] | None:
  file = os.path.join(path, RESULTS_FILE)
  if not os.path.isfile(file):
    return None
  try:
    with open(file, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, json.JSONDecodeError):
    return None
  return data if isinstance(data, dict) else None


def record_from_results(method: str, lr: float, path: str, results: dict[str, Any],
                        seconds: float | None) -> dict[str, Any]:
  """A run record (see `dksflax.demo.table`) from the trainer's ``results.json``."""
  spec = METHODS[method]
  train = results.get("train") or {}
  evaluation = results.get("eval") or {}
  return dict(
      method=spec.label, key=method, network=spec.network, lr=float(lr),
      status=results.get("status", "failed"),
      train_loss=train.get("loss"), train_accuracy=train.get("accuracy"),
      test_loss=evaluation.get("loss"), test_accuracy=evaluation.get("accuracy"),
      failed_step=results.get("failed_step"),
      seconds=seconds if seconds is not None else results.get("wall_time_s"),
      workdir=path)


def run_one(config: ml_collections.ConfigDict, method: str, lr: float, path: str
            ) -> tuple[dict[str, Any], bool]:
  """Trains one run (or reuses its finished results).

  Args:
    config: the run's config (`make_config`).
    method: its method key.
    lr: its learning rate.
    path: its run directory.

  Returns:
    (run record, reused): reused is True when ``results.json`` already held a finished
    run and nothing was trained.
  """
  # pylint: disable-next=import-outside-toplevel
  from dksflax.train import NonFiniteError, train_and_evaluate
  previous = _read_results(path)
  if previous is not None and previous.get("status") in FINISHED:
    return record_from_results(method, lr, path, previous, None), True
  start = time.perf_counter()
  try:
    results = train_and_evaluate(config, path)
  except NonFiniteError:
    results = _read_results(path) or dict(status="failed")
  return record_from_results(method, lr, path, results, time.perf_counter() - start), False


def plan_runs(workdir: str, settings: DemoSettings
              ) -> list[tuple[str, float, ml_collections.ConfigDict, str]]:
  """Every (method, lr, config, run dir), configs validated and shapings solved first.

  Raises:
    ConfigError, ShapingError: before anything is trained.
  """
  from dksflax.models.build import shaping_for  # pylint: disable=import-outside-toplevel
  check_settings(settings)
  planned = []
  for method in settings.methods:
    for lr in settings.learning_rates:
      config = make_config(method, lr, settings)
      planned.append((method, float(lr), config, run_dir(workdir, settings, method, lr)))
    shaping_for(planned[-1][2])   # an unreachable target fails here, not mid-demo
  return planned


def _train_in_worker(method: str, lr: float, settings: DemoSettings, path: str
                     ) -> tuple[dict[str, Any], bool]:
  """`run_one` for a worker process: rebuilds the config there (configs stay unpickled)."""
  return run_one(make_config(method, lr, settings), method, lr, path)


def run_all(workdir: str, settings: DemoSettings, *, log: Any = print
            ) -> list[dict[str, Any]]:
  """Runs (or reuses) every run of the grid, printing one line per finished run.

  With ``settings.workers > 1`` the runs are spread over that many worker processes
  (each compiles and trains one run at a time; compilation, which dominates these small
  runs, is single-threaded, so two workers keep two cores busy).

  Args:
    workdir: the demo's output directory.
    settings: the shared settings.
    log: called with each progress line. (Default: print)

  Returns:
    The run records, in grid order.
  """
  planned = plan_runs(workdir, settings)
  records: list[dict[str, Any] | None] = [None] * len(planned)
  done = 0

  def report(index: int, record: dict[str, Any], reused: bool) -> None:
    nonlocal done
    done += 1
    records[index] = record
    method, lr = planned[index][0], planned[index][1]
    loss, acc = record["train_loss"], record["test_accuracy"]
    outcome = (f"train loss {loss:.4f}  test acc {100 * acc:5.1f}%"
               if record["status"] == "completed" and loss is not None and acc is not None
               else f"DIVERGED (non-finite loss at step {record['failed_step']})")
    seconds = record["seconds"]
    timing = "reused" if reused else f"{seconds:.1f} s" if seconds is not None else ""
    log(f"[{done:2d}/{len(planned)}] {METHODS[method].label:<30} lr {lr:<7g} {outcome}  "
        f"({timing})")

  if settings.workers <= 1:
    for i, (method, lr, config, path) in enumerate(planned):
      report(i, *run_one(config, method, lr, path))
    return [r for r in records if r is not None]
  # Spawned (not forked) workers: JAX and TensorFlow hold threads that fork would break.
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(settings.workers, mp_context=context) as pool:
    futures = {pool.submit(_train_in_worker, method, lr, settings, path): i
               for i, (method, lr, _, path) in enumerate(planned)}
    for future in concurrent.futures.as_completed(futures):
      report(futures[future], *future.result())
  return [r for r in records if r is not None]
