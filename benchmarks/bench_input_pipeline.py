"""Input-pipeline throughput next to the training step rate of a small CNN, in one run.

Measures, on this machine:
  1. the CIFAR augmentation (4-pixel pad + random crop + flip, per-channel normalisation,
     optional PLN) in images/s, on synthetic CIFAR-shaped data through the same code path
     the cifar10/100 pipelines use (``dksflax.data.array_pipeline``), single-threaded and
     through ``make_train_iterator`` (background thread);
  2. the step rate of a small Flax CNN trained with optax SGD (jitted) on a fixed batch;
  3. the same training loop fed by ``make_train_iterator``: if the pipeline is not the
     bottleneck, this rate matches (2).

With ``--write``, replaces the section "input pipeline" of benchmarks/RESULTS.md (other
sections are kept).

Usage: .venv/bin/python benchmarks/bench_input_pipeline.py [--batch 128] [--steps 50] [--write]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import _results  # noqa: E402  pylint: disable=wrong-import-position
from dksflax.configlib import data as data_cfg
from dksflax.data import array_pipeline, make_train_iterator
from dksflax.data.arrays import synthetic_split
from dksflax.data.stream import StreamLayout

SECTION = "input pipeline"


class SmallCNN(nn.Module):
  """Two 3x3 conv layers (16, 32 channels), average pooling, a dense classifier."""

  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.relu(nn.Conv(16, (3, 3))(x))
    x = nn.avg_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(32, (3, 3))(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


def _config(pln: str) -> object:
  c = data_cfg.defaults()
  c.name = "synthetic"
  c.synthetic_shape = (32, 32, 3)
  c.synthetic_examples = 10_000
  c.pln = pln
  return c


def augmentation_rate(pln: str, batch: int, steps: int) -> float:
  """Images/s of the numpy CIFAR augmentation on one thread (no prefetch)."""
  c = _config(pln)
  split = synthetic_split(c, True, 0, 1)
  batches = array_pipeline.train_batches(split, StreamLayout(split.num_examples, batch, 0, 1),
                                         seed=0, start_step=0, augment=True, pln=pln)
  next(batches)
  start = time.perf_counter()
  for _ in range(steps):
    next(batches)
  return steps * batch / (time.perf_counter() - start)


def iterator_rate(pln: str, batch: int, steps: int) -> float:
  """Images/s drawn from make_train_iterator (background thread), nothing else running."""
  it = make_train_iterator(_config(pln), global_batch_size=batch, seed=0)
  next(it)
  start = time.perf_counter()
  for _ in range(steps):
    next(it)
  return steps * batch / (time.perf_counter() - start)


def _train_step_fn(model: SmallCNN, tx: optax.GradientTransformation):
  @jax.jit
  def step(params, opt_state, images, labels):
    def loss_fn(p):
      logits = model.apply({"params": p}, images)
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss
  return step


def training_rates(batch: int, steps: int) -> tuple[float, float]:
  """Returns (steps/s on a fixed batch, steps/s fed by the input pipeline)."""
  model, tx = SmallCNN(), optax.sgd(0.01, momentum=0.9)
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  opt_state = tx.init(params)
  step = _train_step_fn(model, tx)
  it = make_train_iterator(_config("none"), global_batch_size=batch, seed=0)
  fixed = next(it)
  images, labels = jnp.asarray(fixed["image"]), jnp.asarray(fixed["label"])
  params, opt_state, loss = step(params, opt_state, images, labels)  # compile
  loss.block_until_ready()
  start = time.perf_counter()
  for _ in range(steps):
    params, opt_state, loss = step(params, opt_state, images, labels)
  loss.block_until_ready()
  fixed_rate = steps / (time.perf_counter() - start)
  start = time.perf_counter()
  for _ in range(steps):
    b = next(it)
    params, opt_state, loss = step(params, opt_state, b["image"], b["label"])
  loss.block_until_ready()
  fed_rate = steps / (time.perf_counter() - start)
  return fixed_rate, fed_rate


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args()
  rows = []
  for pln in ("none", "extra_channel"):
    print(f"[1/3] augmentation, pln={pln} ...", flush=True)
    rows.append((pln, augmentation_rate(pln, args.batch, args.steps),
                 iterator_rate(pln, args.batch, args.steps)))
    print(f"      {rows[-1][1]:,.0f} images/s (one thread), "
          f"{rows[-1][2]:,.0f} images/s (make_train_iterator)", flush=True)
  print("[2/3] small CNN + optax SGD, fixed batch ...", flush=True)
  print("[3/3] same loop fed by make_train_iterator ...", flush=True)
  fixed, fed = training_rates(args.batch, args.steps)
  train_images = fixed * args.batch
  print(f"      {fixed:.2f} steps/s = {train_images:,.0f} images/s (fixed batch); "
        f"{fed:.2f} steps/s fed by the pipeline", flush=True)
  headroom = min(r[2] for r in rows) / train_images
  verdict = ("the pipeline is not the bottleneck" if headroom > 1.0 and fed > 0.8 * fixed
             else "the pipeline IS the bottleneck")
  print(f"pipeline / training throughput = {headroom:.1f}x: {verdict}", flush=True)
  lines = [
      f"{_results.machine_facts()} "
      f"Command: `.venv/bin/python benchmarks/bench_input_pipeline.py --batch {args.batch} "
      f"--steps {args.steps}`.",
      "",
      "CIFAR augmentation (pad 4 + random crop + flip + per-channel normalisation [+ PLN]) "
      "on synthetic 32x32x3 data, the cifar10/100 code path:",
      "",
      "| PLN | one thread (images/s) | make_train_iterator (images/s) |",
      "|---|---|---|",
  ]
  lines += [f"| {p} | {a:,.0f} | {b:,.0f} |" for p, a, b in rows]
  lines += [
      "",
      f"Small CNN (conv16-pool-conv32-mean-dense) with optax SGD, jitted, batch "
      f"{args.batch}: {fixed:.2f} steps/s on a fixed batch ({train_images:,.0f} images/s); "
      f"{fed:.2f} steps/s when fed by make_train_iterator.",
      "",
      f"Pipeline throughput / training throughput = {headroom:.1f}x: {verdict}. "
      "(The pipeline thread and the training step share the same cores here.)",
  ]
  if args.write:
    _results.write_section(SECTION, "\n".join(lines))


if __name__ == "__main__":
  main()
