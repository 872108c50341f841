"""`train_and_evaluate(config, workdir)`: the data-parallel training loop.

In the style of the Flax ImageNet example (STYLE.md §1), with sharded ``jax.jit``
instead of ``pmap`` (big_vision, STYLE.md §2). Order of work:

1. Validate the config and check the workdir, devices and batch sizes: every config
   error is raised here, before anything is compiled.
2. Build the network (its shaping report), initialise parameters on the first training
   batch (data-dependent initialisers such as LSUV use it), replicate them over the mesh,
   and initialise the optimizer.
3. Restore the newest usable checkpoint of the workdir if there is one (rerunning the same
   command resumes), including optimizer state, step, RNG key and data position.
4. Loop: one ``opt.step`` per batch with the RNG ``fold_in(key, step)``; every
   ``log_every`` steps (and before every checkpoint or evaluation) the metrics since the
   last check are fetched, checked for NaN/Inf (the first bad step stops the run) and
   written; evaluate every ``eval_every`` steps; save every ``checkpoint_every`` steps, at
   the end and on SIGTERM.
5. Write ``results.json`` (and ``failure.json`` when the run failed).

Because the input pipeline and the per-step RNG are functions of the step alone, a run
that is killed and restarted produces the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dksflax.configlib import validate_config
from dksflax.errors import ConfigError
from dksflax.train import durations
from dksflax.train.accumulation import accumulate_loss, check_accumulation_supported
from dksflax.train import workdir as workdir_lib
from dksflax.train.checkpoints import CheckpointStore
from dksflax.train.components import Components, default_components
from dksflax.train.evaluation import evaluate, make_eval_step
from dksflax.train.guards import (NonFiniteError, PreemptionFlag, agree_across_processes,
                                  first_non_finite)
from dksflax.train.mesh import (batch_sharding, check_batch_divisible, make_mesh,
                                maybe_initialize_distributed, replicated_sharding)
from dksflax.train.metric_io import create_writer
from dksflax.train.progress import ProgressBar

PyTree = Any


@dataclasses.dataclass
class RunSetup:
  """Everything built before the first step (see `setup_run`)."""

  config: ml_collections.ConfigDict
  workdir: str
  mesh: jax.sharding.Mesh
  total_steps: int
  model: Any
  report: Any
  optimizer: Any
  state: dict[str, PyTree]
  start_step: int
  restored: bool
  store: CheckpointStore
  components: Components
  dataset_info: Any


def _to_jsonable(report: Any) -> Any:
  if dataclasses.is_dataclass(report) and not isinstance(report, type):
    return dataclasses.asdict(report)
  return report


def _nan_batch(batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """The `train.debug_nan_step` test hook: the same batch with NaN images."""
  out = dict(batch)
  out["image"] = batch["image"] * jnp.asarray(jnp.nan, batch["image"].dtype)
  return out


def _stack_metrics(metrics: Sequence[Mapping[str, jax.Array]]) -> dict[str, jax.Array]:
  """Stacks a window of per-step metric dicts into one array per metric (jit it).

  Fetching one ``[n]`` array per metric costs one transfer each instead of one per step
  and metric (a window of 20 steps x 9 metrics: 180 small transfers otherwise).
  """
  return {k: jnp.stack([m[k] for m in metrics]) for k in metrics[-1]}


def _unstack(stacked: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
  """The host copy of `_stack_metrics`'s output as per-step dicts again."""
  n = len(next(iter(stacked.values())))
  return [{k: v[i] for k, v in stacked.items()} for i in range(n)]


def _window_scalars(host: Sequence[Mapping[str, Any]]) -> dict[str, float]:
  """Mean of each (host) metric over a window of steps (learning rate: the last value)."""
  out = {k: float(np.mean([float(m[k]) for m in host])) for k in host[-1]}
  if "learning_rate" in host[-1]:
    out["learning_rate"] = float(host[-1]["learning_rate"])
  return out


def setup_run(config: ml_collections.ConfigDict, workdir: str, *,
              components: Components | None = None,
              devices: Sequence[jax.Device] | None = None,
              write_config: bool = True) -> RunSetup:
  """Validates, builds and (if the workdir holds a checkpoint) restores a run.

  Args:
    config: ConfigDict. The full config (`dksflax.configlib.default_config` layout).
    workdir: str. Run directory.
    components: Components or None. Layer entry points. (Default: dksflax's own)
    devices: Sequence of devices or None. Devices of the data-parallel mesh.
      (Default: every device)
    write_config: bool. Check and record the config in the workdir (False for
      ``dksflax eval``, which reads the saved one). (Default: True)

  Returns:
    A RunSetup whose ``state`` is the restored or freshly initialised training state.

  Raises:
    ConfigError: for an invalid config, an unusable workdir, or a batch size that does
      not split over the devices; raised before anything is compiled.
  """
  validate_config(config)
  check_accumulation_supported(config)
  mesh = make_mesh(devices)
  tcfg = config.train
  check_batch_divisible("train.batch_size", tcfg.batch_size, mesh)
  check_batch_divisible("train.eval_batch_size", tcfg.eval_batch_size, mesh)
  check_batch_divisible("train.batch_size / train.grad_accum_steps",
                        tcfg.batch_size // tcfg.grad_accum_steps, mesh)
  comps = default_components() if components is None else components
  info = comps.get_dataset_info(config.data)
  total_steps = durations.total_steps(tcfg, info.num_train_examples)
  is_main = jax.process_index() == 0
  if write_config:
    workdir_lib.prepare_workdir(workdir, config, write=is_main)
  num_classes = config.model.num_classes if config.model.num_classes > 0 else info.num_classes
  model, init_fn, report = comps.build_network(
      config, num_classes=num_classes, input_shape=tuple(info.image_shape))

  data_sharding = batch_sharding(mesh)
  replicated = replicated_sharding(mesh)
  root = jax.random.PRNGKey(config.seed)
  init_rng, opt_rng, train_rng = jax.random.split(root, 3)
  # Initialise on the first training batch, whatever step we resume from: data-dependent
  # initialisers (LSUV) then see the same data and the initial state is reproducible.
  first_batches = iter(comps.make_train_iterator(
      config.data, global_batch_size=tcfg.batch_size, seed=config.seed, start_step=0,
      sharding=data_sharding))
  sample = next(first_batches)
  if hasattr(first_batches, "close"):
    first_batches.close()   # stops the pipeline's prefetch thread
  if getattr(report, "data_dependent", False):
    # Data-dependent initialisers (LSUV) iterate on host values: run them eagerly.
    # (Host copies first: a process-local jax.Array put onto a global sharding is not a
    # valid global array when several processes share the mesh.)
    variables = jax.device_put(jax.device_get(dict(init_fn(init_rng, sample["image"]))),
                               replicated)
  else:
    # One compiled program instead of one dispatch per initialiser op.
    variables = dict(jax.jit(init_fn, out_shardings=replicated)(init_rng, sample["image"]))
  params = variables.pop("params")
  model_state = variables
  loss_fn = accumulate_loss(
      comps.make_loss(model.apply, label_smoothing=config.optimizer.label_smoothing,
                      l2=config.optimizer.l2),
      tcfg.grad_accum_steps)
  optimizer = comps.create_optimizer(config.optimizer, loss_fn=loss_fn,
                                     total_steps=total_steps)
  opt_state = optimizer.init(params, model_state, opt_rng, sample)
  state = dict(params=params, model_state=model_state, opt_state=opt_state,
               rng=jax.device_put(np.asarray(jax.random.key_data(train_rng)), replicated))
  store = CheckpointStore(os.path.join(workdir, workdir_lib.CHECKPOINT_DIR),
                          keep=tcfg.keep_checkpoints)
  start_step = 0
  restored = store.restore_latest(state)
  if restored is not None:
    start_step, state, meta = restored
    logging.info("resumed from step %d (data position %s)", start_step,
                 meta.get("data_batches_consumed"))
  return RunSetup(config=config, workdir=workdir, mesh=mesh, total_steps=total_steps,
                  model=model, report=report, optimizer=optimizer, state=state,
                  start_step=start_step, restored=restored is not None, store=store, components=comps,
                  dataset_info=info)


def _save(run: RunSetup, step: int, state: dict[str, PyTree]) -> None:
  meta = dict(step=step, data_batches_consumed=step,
              examples_seen=step * run.config.train.batch_size,
              total_steps=run.total_steps)
  run.store.save(step, state, meta)


def run_evaluation(run: RunSetup, state: Mapping[str, PyTree],
                   eval_step: Any = None) -> dict[str, float]:
  """Evaluates ``state`` on one pass of the eval split (see `dksflax.train.evaluation`)."""
  step_fn = make_eval_step(run.model.apply) if eval_step is None else eval_step
  variables = {"params": state["params"], **state["model_state"]}
  batches = run.components.make_eval_iterator(
      run.config.data, global_batch_size=run.config.train.eval_batch_size,
      sharding=batch_sharding(run.mesh))
  return evaluate(step_fn, variables, batches)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       components: Components | None = None,
                       devices: Sequence[jax.Device] | None = None) -> dict[str, Any]:
  """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint) and evaluates.

  Args:
    config: ConfigDict. The full, locked config.
    workdir: str. Run directory: ``config.json``, ``checkpoints/``, TensorBoard events,
      ``metrics.jsonl``, ``results.json`` (and ``failure.json``).
    components: Components or None. Layer entry points (tests pass stand-ins).
      (Default: dksflax's own)
    devices: Sequence or None. Devices of the mesh. (Default: every device)

  Returns:
    The content of ``results.json``: status (``completed`` or ``preempted``), steps,
    final train and eval metrics, timing, shaping report and optimizer description.

  Raises:
    ConfigError: for any config/workdir problem, before compilation.
    NonFiniteError: when a loss or gradient norm becomes NaN/Inf (``failure.json`` and
      ``results.json`` record the step; the newest checkpoint is the last good state).
  """
  maybe_initialize_distributed()
  run = setup_run(config, workdir, components=components, devices=devices)
  return _train_loop(run)


def _train_loop(run: RunSetup) -> dict[str, Any]:
  config, tcfg = run.config, run.config.train
  is_main = jax.process_index() == 0
  single_process = jax.process_count() == 1
  writer = create_writer(run.workdir, tcfg.metric_writer, is_main_process=is_main)
  report = _to_jsonable(run.report)
  writer.write_texts(run.start_step, {
      "shaping_report": f"```\n{_pretty(report)}\n```",
      "optimizer": f"```\n{_pretty(run.optimizer.describe())}\n```",
      "config": f"```\n{config.to_json_best_effort(indent=2)}\n```"})
  eval_step = make_eval_step(run.model.apply)
  train_iter: Iterator[Mapping[str, jax.Array]] = iter(run.components.make_train_iterator(
      config.data, global_batch_size=tcfg.batch_size, seed=config.seed,
      start_step=run.start_step, sharding=batch_sharding(run.mesh)))
  state = dict(run.state)
  params, model_state, opt_state = state["params"], state["model_state"], state["opt_state"]
  key = jax.random.wrap_key_data(state["rng"])
  progress = ProgressBar(run.total_steps, run.start_step,
                         enabled=bool(tcfg.progress_bar) and is_main)
  pending_steps: list[int] = []
  pending_metrics: list[Mapping[str, jax.Array]] = []
  last_train: dict[str, float] = {}
  last_eval: dict[str, float] = {}
  status = "completed"
  step = run.start_step
  # One compiled dispatch per step (the eager fold_in costs several small dispatches).
  fold_in = jax.jit(jax.random.fold_in)
  stack_window = jax.jit(_stack_metrics)
  window_start = time.perf_counter()
  t_start = window_start
  try:
    with PreemptionFlag() as preemption:
      while step < run.total_steps:
        batch = next(train_iter)
        if step == tcfg.debug_nan_step:
          batch = _nan_batch(batch)
        params, model_state, opt_state, metrics = run.optimizer.step(
            params, model_state, opt_state, fold_in(key, step), batch, step)
        pending_steps.append(step)
        pending_metrics.append(metrics)
        step += 1
        # Multi-host: agreeing on a SIGTERM is a collective (a host sync), so hosts only
        # compare flags at log windows; one process reads its own flag every step.
        stop = (agree_across_processes(preemption.requested)
                if single_process or step % tcfg.log_every == 0 else False)
        do_eval = tcfg.eval_every > 0 and step % tcfg.eval_every == 0
        do_save = step % tcfg.checkpoint_every == 0 or step == run.total_steps or stop
        if step % tcfg.log_every == 0 or do_save or do_eval:
          host_metrics = _unstack(jax.device_get(stack_window(pending_metrics)))
          bad = first_non_finite(pending_steps, host_metrics)
          if bad is not None:
            raise NonFiniteError(*bad)
          elapsed = time.perf_counter() - window_start
          last_train = _window_scalars(host_metrics)
          n = len(pending_steps)
          last_train["step_time_s"] = elapsed / n
          last_train["images_per_s"] = n * tcfg.batch_size / elapsed if elapsed > 0 else 0.0
          writer.write_scalars(step, {f"train/{k}": v for k, v in last_train.items()})
          progress.update(step, {k: last_train[k] for k in ("loss", "accuracy")
                                 if k in last_train})
          pending_steps, pending_metrics = [], []
          window_start = time.perf_counter()
        if do_eval and step < run.total_steps:
          last_eval = run_evaluation(
              run, dict(params=params, model_state=model_state), eval_step)
          writer.write_scalars(step, {f"eval/{k}": v for k, v in last_eval.items()})
          window_start = time.perf_counter()
        if do_save:
          _save(run, step, dict(params=params, model_state=model_state,
                                opt_state=opt_state, rng=state["rng"]))
          window_start = time.perf_counter()
        if stop and step < run.total_steps:
          status = "preempted"
          logging.warning("SIGTERM received: saved step %d and stopped", step)
          break
      if status == "completed":
        if step == run.start_step:  # nothing left to train: make sure the end is saved
          _save(run, step, dict(params=params, model_state=model_state,
                                opt_state=opt_state, rng=state["rng"]))
        last_eval = run_evaluation(
            run, dict(params=params, model_state=model_state), eval_step)
        writer.write_scalars(step, {f"eval/{k}": v for k, v in last_eval.items()})
  except NonFiniteError as e:
    progress.close()
    writer.close()
    saved = run.store.steps()
    failure = dict(status="failed", error=str(e), failed_step=e.step, metrics=e.metrics,
                   last_good_checkpoint=saved[-1] if saved else None)
    if is_main:
      workdir_lib.write_json(os.path.join(run.workdir, workdir_lib.FAILURE_FILE), failure)
      workdir_lib.write_json(os.path.join(run.workdir, workdir_lib.RESULTS_FILE),
                             dict(failure, total_steps=run.total_steps, shaping=report))
    raise
  finally:
    if hasattr(train_iter, "close"):
      train_iter.close()   # stops the input pipeline's threads
    saved_steps = run.store.steps()
    run.store.close()
  progress.close()
  results = dict(
      status=status, step=step, total_steps=run.total_steps, start_step=run.start_step,
      train=last_train, eval=last_eval, wall_time_s=time.perf_counter() - t_start,
      num_devices=int(run.mesh.devices.size), num_processes=jax.process_count(),
      shaping=report, optimizer=run.optimizer.describe(), checkpoints=saved_steps)
  if is_main:
    workdir_lib.write_json(os.path.join(run.workdir, workdir_lib.RESULTS_FILE), results)
  writer.close()
  return results


def _pretty(data: Any) -> str:
  return json.dumps(data, indent=2, sort_keys=True, default=repr)


def evaluate_workdir(workdir: str, *, components: Components | None = None,
                     devices: Sequence[jax.Device] | None = None) -> dict[str, Any]:
  """Restores the newest checkpoint of ``workdir`` and evaluates it with the saved config.

  Args:
    workdir: str. A run directory written by `train_and_evaluate`.
    components: Components or None. (Default: dksflax's own)
    devices: Sequence or None. (Default: every device)

  Returns:
    dict with ``step`` (of the checkpoint) and the eval ``loss``, ``accuracy`` and
    ``num_examples``.

  Raises:
    ConfigError: if the directory holds no config or no usable checkpoint.
  """
  maybe_initialize_distributed()
  config = workdir_lib.load_workdir_config(workdir)
  run = setup_run(config, workdir, components=components, devices=devices,
                  write_config=False)
  if not run.restored:
    run.store.close()
    raise ConfigError(f"--workdir {workdir} holds no usable checkpoint to evaluate")
  result = dict(step=run.start_step, **run_evaluation(run, run.state))
  run.store.close()
  return result
