"""Amortised K-FAC and Shampoo step time as a ratio to the SGD step, same model and batch.

Usage::

  .venv/bin/python benchmarks/bench_optimizers.py [--models cnn,mlp] [--batch 64]
      [--steps 30] [--width 16] [--depth 10] [--no-write]

For each model (a small CNN: 2 conv + 2 dense; a tanh MLP) the script builds SGD,
Shampoo and K-FAC through ``dksflax.optim.create_optimizer`` with the default
hyperparameters (Shampoo update period 10, K-FAC inverse update period 50 by default:
the expensive inverse work is amortised over these periods), runs 3 warm-up steps
(compilation), then times ``--steps`` steps (blocking on the result) and prints the
mean step time and the ratio to SGD. The table is written to ``benchmarks/RESULTS.md``
under the section ``## optimizers`` (only that section is replaced).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dksflax.configlib import optimizer as optimizer_cfg  # noqa: E402
from dksflax.optim import create_optimizer, make_classification_loss  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
SECTION = "optimizers"


class BenchCNN(nn.Module):
  width: int = 16

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = jnp.tanh(nn.Conv(self.width, (3, 3))(x))
    x = jnp.tanh(nn.Conv(self.width, (3, 3), strides=(2, 2))(x))
    x = jnp.tanh(nn.Dense(4 * self.width)(x.reshape((x.shape[0], -1))))
    return nn.Dense(10)(x), {}


class BenchMLP(nn.Module):
  width: int = 16
  depth: int = 10

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.depth - 1):
      x = jnp.tanh(nn.Dense(self.width)(x))
    return nn.Dense(10)(x), {}


def time_optimizer(name: str, model: nn.Module, batch: dict, steps: int) -> float:
  """Returns the mean seconds per step over ``steps`` steps after 3 warm-up steps."""
  cfg = optimizer_cfg.defaults()
  cfg.name = name
  cfg.schedule = "constant"
  cfg.learning_rate = 0.01
  total = steps + 3
  opt = create_optimizer(cfg, loss_fn=make_classification_loss(model.apply),
                         total_steps=total)
  params = model.init(jax.random.PRNGKey(0), batch["image"])["params"]
  state = opt.init(params, {}, jax.random.PRNGKey(1), batch)
  for step in range(3):
    params, _, state, metrics = opt.step(params, {}, state, jax.random.PRNGKey(step),
                                         batch, step)
  jax.block_until_ready(metrics["loss"])
  start = time.perf_counter()
  for step in range(3, total):
    params, _, state, metrics = opt.step(params, {}, state, jax.random.PRNGKey(step),
                                         batch, step)
  jax.block_until_ready((params, metrics["loss"]))
  return (time.perf_counter() - start) / steps


def write_section(text: str) -> None:
  """Replaces (or appends) the ``## optimizers`` section of RESULTS.md."""
  old = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmarks\n"
  block = f"## {SECTION}\n\n{text.strip()}\n"
  pattern = re.compile(rf"^## {SECTION}\n.*?(?=^## |\Z)", re.S | re.M)
  new = pattern.sub(block + "\n", old) if pattern.search(old) else old.rstrip() + "\n\n" + block
  with open(RESULTS, "w") as f:
    f.write(new)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="cnn,mlp")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--width", type=int, default=16)
  parser.add_argument("--depth", type=int, default=10)
  parser.add_argument("--no-write", action="store_true")
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.normal(size=(args.batch, 8, 8, 1)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, size=args.batch), jnp.int32)}
  models = {"cnn": BenchCNN(width=args.width),
            "mlp": BenchMLP(width=args.width, depth=args.depth)}
  rows = []
  for key in args.models.split(","):
    if key not in models:
      raise SystemExit(f"--models: unknown {key!r}; choose from {sorted(models)}")
    times = {}
    for name in ("sgd", "shampoo", "kfac"):
      times[name] = time_optimizer(name, models[key], batch, args.steps)
      print(f"[{key}] {name}: {1e3 * times[name]:.2f} ms/step", flush=True)
    rows.append(f"| {key} | {args.batch} | {1e3 * times['sgd']:.2f} | "
                f"{1e3 * times['shampoo']:.2f} ({times['shampoo'] / times['sgd']:.1f}x) | "
                f"{1e3 * times['kfac']:.2f} ({times['kfac'] / times['sgd']:.1f}x) |")
  device = jax.devices()[0]
  text = "\n".join([
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
      f"{device.platform} ({device.device_kind}; {platform.machine()}, "
      f"{os.cpu_count()} cores, 1-min load average {os.getloadavg()[0]:.1f} at the end), "
      f"jax {jax.__version__}. Command: "
      f"`bench_optimizers.py --models {args.models} --batch {args.batch} --steps "
      f"{args.steps} --width {args.width} --depth {args.depth}`. Amortised step time over "
      f"{args.steps} steps after 3 warm-up steps (Shampoo update period 10, K-FAC "
      "inverse update period 50: defaults).",
      "",
      "| model | batch | SGD ms/step | Shampoo ms/step (x SGD) | K-FAC ms/step (x SGD) |",
      "|---|---|---|---|---|",
      *rows])
  print(text)
  if not args.no_write:
    write_section(text)


if __name__ == "__main__":
  main()
