"""The trainer's step against a bare ``jax.jit`` train step: framework overhead, side by side.

Usage::

  .venv/bin/python benchmarks/bench_framework_overhead.py [--optimizers sgd,adam]
      [--model resnet] [--batch 32] [--image-size 16] [--width-multiplier 0.125]
      [--window 20] [--rounds 8] [--write]

The framework contender is ``dksflax.train.train_and_evaluate`` itself, on synthetic
data (no augmentation: the input pipeline has its own benchmark), one device, metrics
written every ``--window`` steps (``train.log_every``) to JSONL: every step it takes the
batch from the pipeline iterator, folds the step into the RNG key, calls
``TrainingOptimizer.step`` (built by ``dksflax.optim.create_optimizer``) and keeps the
step's metrics; every window it fetches them, checks them for NaN/Inf and writes them.

The bare contender is a plain ``jax.jit(train_step, donate_argnums=(0, 1))`` written in
this script: the same Flax module (the one ``build_network`` returned), the same initial
parameters, softmax cross-entropy through ``optax.softmax_cross_entropy_with_integer_labels``
and the optax optimizer with the config's hyperparameters, stepping on one batch already
on the device.

The two are interleaved inside one run: the optimizer handed to the trainer is a thin
proxy that, at the start of every window (after the trainer's metric fetch has synchronised
the device), runs one window of bare steps (timed, blocking) before passing the call on.
A framework window is the time from the end of that bare block to the start of the next
one, so it holds ``--window`` steps of the trainer's loop, one metric fetch and write
included. The overhead is the median over rounds of framework / bare - 1 (target <= 3%,
issue 9), in wall-clock time and in CPU time of the process. Before timing, the two are
checked to compute the same losses for the first ``--check-steps`` steps on the same
batches.

With ``--optimizers kfac`` the bare contender is a plain ``kfac_jax.Optimizer`` loop with
the same settings as dksflax's wrapper (inverse update period, damping, norm constraint).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=wrong-import-position
from benchmarks import _results, _timing  # noqa: E402
from dksflax.configlib import default_config  # noqa: E402
from dksflax.train import train_and_evaluate  # noqa: E402
from dksflax.train.components import default_components  # noqa: E402
# pylint: enable=wrong-import-position

SECTION = "framework overhead"
OPTIMIZERS = ("sgd", "adam", "kfac")
MODELS = ("resnet", "mlp")


def make_config(optimizer: str, model: str, batch: int, image_size: int,
                width_multiplier: float, steps: int, window: int) -> Any:
  """The run's config: a small vanilla TAT network on synthetic data, constant lr.

  Args:
    optimizer: sgd, adam or kfac.
    model: ``resnet`` (ResNet-V2 with one bottleneck block per stage, leaky ReLU, TAT
      eta = 0.9, no normalisation) or ``mlp`` (4 layers of 16 units, tanh, TAT).
    batch: Global batch size.
    image_size: Height = width of the synthetic RGB images.
    width_multiplier: ResNet channel scale (1.0: the standard 64...2048 channels).
    steps: Training steps of the run.
    window: ``train.log_every``: the metric fetch/write period and the timing window.

  Returns:
    A ConfigDict for ``train_and_evaluate``.
  """
  c = default_config()
  if model == "resnet":
    c.model.name, c.model.blocks, c.model.stem = "resnet", (1, 1, 1, 1), "cifar"
    c.model.width_multiplier = width_multiplier
    c.model.activation = "leaky_relu"
  else:
    c.model.name, c.model.depth, c.model.width = "mlp", 4, 16
    c.model.activation = "tanh"
  c.model.variant = "vanilla"
  c.shaping.method = "tat"
  c.data.name = "synthetic"
  c.data.synthetic_shape = (image_size, image_size, 3)
  c.data.synthetic_examples = max(1024, 4 * batch)
  c.data.synthetic_eval_examples = batch
  c.data.augment = False
  c.optimizer.name = optimizer
  c.optimizer.schedule = "constant"
  c.optimizer.learning_rate = 1e-4 if optimizer == "kfac" else 0.01
  c.train.batch_size = batch
  c.train.eval_batch_size = batch
  c.train.steps = steps
  c.train.log_every = window
  c.train.eval_every = 0
  c.train.checkpoint_every = steps
  c.train.keep_checkpoints = 1
  c.train.metric_writer = "jsonl"
  c.train.progress_bar = False
  return c


def _softmax_ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()


def bare_optax_step(model: Any, opt_cfg: Any) -> tuple[Callable, optax.GradientTransformation]:
  """A plain jitted train step of ``model`` with the optax optimizer ``opt_cfg`` names.

  Returns:
    ``(step(params, opt_state, images, labels) -> (params, opt_state, loss), tx)``.
  """
  lr = opt_cfg.learning_rate
  if opt_cfg.name == "sgd":
    tx = optax.sgd(lr, momentum=opt_cfg.sgd.momentum or None, nesterov=opt_cfg.sgd.nesterov)
  else:
    tx = optax.adam(lr, b1=opt_cfg.adam.b1, b2=opt_cfg.adam.b2, eps=opt_cfg.adam.eps)

  def train_step(params, opt_state, images, labels):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, images, train=True)
      return _softmax_ce(logits, labels)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(train_step, donate_argnums=(0, 1)), tx


class BareKfac:
  """A plain ``kfac_jax.Optimizer`` loop with dksflax's K-FAC settings (the bare contender)."""

  def __init__(self, model: Any, opt_cfg: Any, total_steps: int):
    # pylint: disable=import-outside-toplevel
    from dksflax.compat import kfac_jax_compat
    from dksflax.optim.kfac_optimizer import damping_schedule
    from dksflax.optim.kfac_patterns import all_patterns
    # pylint: enable=import-outside-toplevel
    kfac_jax = kfac_jax_compat.load_kfac_jax()   # the jax 0.10/0.11 fixes come first
    k = opt_cfg.kfac

    def loss_fn(params, rng, batch):
      del rng
      logits, _ = model.apply({"params": params}, batch["image"], train=True)
      logits = logits.astype(jnp.float32)
      kfac_jax.register_softmax_cross_entropy_loss(logits, batch["label"])
      return _softmax_ce(logits, batch["label"])

    lr = opt_cfg.learning_rate
    self._opt = kfac_jax.Optimizer(
        value_and_grad_func=jax.value_and_grad(loss_fn),
        l2_reg=0.0,
        value_func_has_rng=True,
        learning_rate_schedule=lambda step: jnp.full([], lr, jnp.float32),
        momentum_schedule=lambda step: jnp.full([], k.momentum, jnp.float32),
        damping_schedule=damping_schedule(k.damping_schedule, k.damping, k.final_damping,
                                          total_steps),
        norm_constraint=k.norm_constraint if k.norm_constraint > 0 else None,
        num_burnin_steps=0,
        estimation_mode="fisher_gradients",
        curvature_ema=k.curvature_ema,
        inverse_update_period=k.inverse_update_period,
        auto_register_kwargs={"graph_patterns": all_patterns()},
        multi_device=False,
        include_norms_in_stats=True)
    self.params = self.state = None
    self.step_count = 0

  def init(self, params: Any, batch: dict) -> None:
    self.params = params
    self.state = self._opt.init(params, jax.random.PRNGKey(0), batch)
    self.step_count = 0

  def step(self, batch: dict, rng: jax.Array | None = None) -> jax.Array:
    """One K-FAC step; ``rng`` (the curvature estimator's samples) defaults to the count."""
    rng = jax.random.PRNGKey(self.step_count) if rng is None else rng
    self.params, self.state, stats = self._opt.step(
        self.params, self.state, rng, batch=batch, global_step_int=self.step_count)
    self.step_count += 1
    return stats["loss"]


class Bare:
  """The bare contender: owns its parameters, optimizer state and device batch."""

  def __init__(self, model: Any, opt_cfg: Any, total_steps: int):
    self._kfac = BareKfac(model, opt_cfg, total_steps) if opt_cfg.name == "kfac" else None
    if self._kfac is None:
      self._step, self._tx = bare_optax_step(model, opt_cfg)
    self._params = self._opt_state = None

  def reset(self, host_params: Any, batch: dict) -> None:
    """Starts again from ``host_params`` (numpy pytree)."""
    params = jax.device_put(host_params)
    if self._kfac is not None:
      self._kfac.init(params, batch)
    else:
      self._params, self._opt_state = params, self._tx.init(params)

  def step(self, batch: dict, rng: jax.Array | None = None) -> jax.Array:
    """One training step on ``batch``; returns the loss before the update.

    ``rng`` is used by K-FAC only (its curvature estimate samples from the model).
    """
    if self._kfac is not None:
      return self._kfac.step(batch, rng)
    self._params, self._opt_state, loss = self._step(self._params, self._opt_state,
                                                     batch["image"], batch["label"])
    return loss

  def run(self, batch: dict, steps: int) -> None:
    """``steps`` steps on ``batch``, blocking until the last one is done."""
    loss = None
    for _ in range(steps):
      loss = self.step(batch)
    jax.block_until_ready(loss)


class InterleavingOptimizer:
  """The trainer's optimizer, passed through, with a bare block before every window.

  It records, for the check, the host copies of the initial parameters, of the first
  ``check_steps`` batches and the framework's losses on them; from step ``warmup`` on,
  every ``window`` steps (when the trainer's metric fetch has just synchronised the
  device) it times one window of the bare contender, then marks the time the framework
  resumes.
  """

  def __init__(self, inner: Any, bare_factory: Callable[[], Bare], window: int,
               warmup: int, rounds: int, check_steps: int):
    self._inner = inner
    self._bare_factory = bare_factory
    self._bare: Bare | None = None
    self._window, self._warmup, self._rounds = window, warmup, rounds
    self._check_steps = check_steps
    self.init_params: Any = None
    self.check_batches: list[dict] = []
    self.check_losses: list[jax.Array] = []
    self.check_rngs: list[jax.Array] = []
    self.bare_s: list[float] = []
    self.framework_s: list[float] = []
    self.bare_cpu_s: list[float] = []
    self.framework_cpu_s: list[float] = []
    self._device_batch: dict | None = None
    self._resumed: tuple[float, float] | None = None

  def init(self, params, model_state, rng, batch):
    """Records the initial parameters and passes on."""
    if model_state:
      raise ValueError(f"the bare step has no model state; this model has "
                       f"{sorted(model_state)} (use a vanilla or rescaled network)")
    self.init_params = jax.device_get(params)
    return self._inner.init(params, model_state, rng, batch)

  def describe(self):
    return self._inner.describe()

  def step(self, params, model_state, opt_state, rng, batch, step):
    """Passes on, after one timed bare window at each window boundary."""
    if step < self._check_steps:
      self.check_batches.append(jax.device_get(dict(batch)))
      self.check_rngs.append(rng)
    rel = step - self._warmup
    if rel >= 0 and rel % self._window == 0 and rel // self._window <= self._rounds:
      now, cpu_now = time.perf_counter(), time.process_time()
      if self._resumed is not None:
        self.framework_s.append(now - self._resumed[0])
        self.framework_cpu_s.append(cpu_now - self._resumed[1])
      if rel // self._window < self._rounds:
        if self._bare is None:
          self._bare = self._bare_factory()
          self._device_batch = jax.device_put(self.check_batches[0])
          self._bare.reset(self.init_params, self._device_batch)
          self._bare.run(self._device_batch, 2)   # compile + warm-up, not timed
        start, cpu_start = time.perf_counter(), time.process_time()
        self._bare.run(self._device_batch, self._window)
        self.bare_s.append(time.perf_counter() - start)
        self.bare_cpu_s.append(time.process_time() - cpu_start)
      self._resumed = (time.perf_counter(), time.process_time())
    out = self._inner.step(params, model_state, opt_state, rng, batch, step)
    if step < self._check_steps:
      self.check_losses.append(out[3]["loss"])
    return out

  def same_math_check(self) -> float:
    """Max |framework loss - bare loss| over the first check steps, same batches."""
    bare = self._bare if self._bare is not None else self._bare_factory()
    bare.reset(self.init_params, jax.device_put(self.check_batches[0]))
    diffs = []
    for batch, rng, fw_loss in zip(self.check_batches, self.check_rngs, self.check_losses):
      bare_loss = bare.step(jax.device_put(batch), rng)
      diffs.append(abs(float(bare_loss) - float(fw_loss)))
    return max(diffs)


def measure(optimizer: str, args: argparse.Namespace) -> dict[str, Any]:
  """Runs train_and_evaluate with the interleaving proxy; returns the timings and check."""
  warmup = args.window   # first window: compilation and first dispatches, not timed
  steps = warmup + args.rounds * args.window + 1
  config = make_config(optimizer, args.model, args.batch, args.image_size,
                       args.width_multiplier, steps, args.window)
  base = default_components()
  built: dict[str, Any] = {}
  proxy: dict[str, InterleavingOptimizer] = {}

  def build_network(cfg, **kwargs):
    model, init_fn, report = base.build_network(cfg, **kwargs)
    built["model"] = model
    return model, init_fn, report

  def create_optimizer(opt_cfg, *, loss_fn, total_steps):
    inner = base.create_optimizer(opt_cfg, loss_fn=loss_fn, total_steps=total_steps)
    proxy["opt"] = InterleavingOptimizer(
        inner, lambda: Bare(built["model"], opt_cfg, total_steps), args.window, warmup,
        args.rounds, args.check_steps)
    return proxy["opt"]

  comps = dataclasses.replace(base, build_network=build_network,
                              create_optimizer=create_optimizer)
  print(f"[{optimizer}] train_and_evaluate: {steps} steps, window {args.window} ...",
        flush=True)
  with tempfile.TemporaryDirectory() as workdir:
    train_and_evaluate(config, workdir, components=comps, devices=jax.devices()[:1])
  p = proxy["opt"]
  diff = p.same_math_check()
  fw, bare = p.framework_s, p.bare_s
  return {"optimizer": optimizer, "framework_ms": 1e3 * _timing.median(fw) / args.window,
          "bare_ms": 1e3 * _timing.median(bare) / args.window,
          "overhead": _timing.paired_ratio(fw, bare) - 1.0, "loss_diff": diff,
          "cpu_overhead": _timing.paired_ratio(p.framework_cpu_s, p.bare_cpu_s) - 1.0,
          "rounds": len(fw)}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
  """Parses the command line, measures each optimizer, prints (and writes) the table."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--optimizers", default="sgd,adam")
  parser.add_argument("--model", default="resnet", choices=MODELS)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--image-size", type=int, default=16)
  parser.add_argument("--width-multiplier", type=float, default=0.125)
  parser.add_argument("--window", type=int, default=20,
                      help="steps per timed block = train.log_every")
  parser.add_argument("--rounds", type=int, default=8)
  parser.add_argument("--check-steps", type=int, default=3)
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args(argv)
  names = args.optimizers.split(",")
  for name in names:
    if name not in OPTIMIZERS:
      parser.error(f"--optimizers: unknown {name!r}; choose from {OPTIMIZERS}")
  if args.window < 1 or args.rounds < 1 or not 1 <= args.check_steps <= args.window:
    parser.error(f"need --window >= 1, --rounds >= 1 and 1 <= --check-steps <= --window; got "
                 f"{args.window}, {args.rounds}, {args.check_steps}")
  rows = [measure(name, args) for name in names]
  model = (f"vanilla TAT ResNet-V2 (1,1,1,1) bottleneck blocks, width x{args.width_multiplier}, "
           f"{args.image_size}x{args.image_size}x3" if args.model == "resnet"
           else "vanilla TAT tanh MLP, 4 x 16 units")
  lines = [
      f"Model: {model}, batch {args.batch}, one device; {args.rounds} interleaved rounds of "
      f"{args.window} steps (window = train.log_every), median per round.",
      "",
      "| optimizer | bare jit ms/step | train_and_evaluate ms/step | overhead (wall) | "
      f"overhead (CPU time) | loss diff after {args.check_steps} steps |",
      "|---|---|---|---|---|---|"]
  lines += [f"| {r['optimizer']} | {r['bare_ms']:.2f} | {r['framework_ms']:.2f} | "
            f"{100 * r['overhead']:+.1f}% | {100 * r['cpu_overhead']:+.1f}% | "
            f"{r['loss_diff']:.1e} |" for r in rows]
  lines += ["", "Overhead (CPU time): the same ratio in CPU seconds of this process (all "
            "threads: XLA's, the input pipeline's and Python's), less sensitive to other jobs "
            "on a shared machine than wall-clock time."]
  table = "\n".join(lines)
  print(table, flush=True)
  if args.write:
    _results.write_run(SECTION, "bench_framework_overhead.py", argv,
                       "Target: overhead <= 3% (issue 9).", table)
  return rows


if __name__ == "__main__":
  main()
