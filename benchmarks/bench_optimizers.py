"""Amortised K-FAC and Shampoo step time as a ratio to the SGD step, same model and batch.

Usage::

  .venv/bin/python benchmarks/bench_optimizers.py [--models cnn,mlp] [--batch 64]
      [--width 16] [--depth 10] [--rounds 2] [--write]
  .venv/bin/python benchmarks/bench_optimizers.py --models resnet50,resnet50_tat
      [--resnet-batch 8] [--image-size 64]        # 224 and a larger batch on a GPU

Models: ``cnn`` (2 conv + 2 dense, tanh, 8x8x1 inputs) and ``mlp`` (tanh, 8x8x1 inputs)
written here; ``resnet50`` (the standard ResNet-V2-50 of ``dksflax.models`` with batch
norm and ReLU) and ``resnet50_tat`` (the vanilla ResNet-50: no skips, no normalisation,
leaky ReLU shaped by TAT with eta = 0.9), ImageNet stem, 1000 classes, at
``--image-size`` (64 by default so that a CPU run takes minutes).

Every optimizer is built by ``dksflax.optim.create_optimizer`` with the default
hyperparameters (constant learning rate) and steps on one synthetic batch on the device.
Update periods, as in the papers:

* K-FAC: curvature statistics every step, inverses every 50 steps (TAT App. D; DKS
  §27.5: "computed its inverse every 50 iterations"). ``--kfac-period``.
* Shampoo: DKS §27.5 gives no preconditioner period; the default here is dksflax's 10
  (``optimizer.shampoo.update_period``). ``--shampoo-period``.

After 2 warm-up steps per optimizer (compilation of both K-FAC variants: with and without
the inverse update), the three optimizers are timed in ``--rounds`` interleaved rounds
(``benchmarks/_timing.py``): per round one block of one K-FAC period, one Shampoo period
and ``--sgd-block`` SGD steps. A block of one period holds exactly one inverse (or
preconditioner) update wherever it starts, so the per-step time is amortised. Reported:
median ms/step over rounds and the median over rounds of the per-round ratio to SGD.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=wrong-import-position
from benchmarks import _results, _timing  # noqa: E402
from benchmarks._stepper import OptimizerStepper, optimizer_config, synthetic_batch  # noqa: E402
from dksflax.configlib import default_config  # noqa: E402
# pylint: enable=wrong-import-position

SECTION = "optimizers"
MODELS = ("cnn", "mlp", "resnet50", "resnet50_tat")
OPTIMIZERS = ("sgd", "shampoo", "kfac")


class BenchCNN(nn.Module):
  """Two 3x3 conv layers (the second strided), a dense hidden layer, a classifier."""

  width: int = 16

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = jnp.tanh(nn.Conv(self.width, (3, 3))(x))
    x = jnp.tanh(nn.Conv(self.width, (3, 3), strides=(2, 2))(x))
    x = jnp.tanh(nn.Dense(4 * self.width)(x.reshape((x.shape[0], -1))))
    return nn.Dense(10)(x), {}


class BenchMLP(nn.Module):
  """``depth - 1`` tanh layers of ``width`` units and a classifier."""

  width: int = 16
  depth: int = 10

  @nn.compact
  def __call__(self, x, train=True):
    del train
    x = x.reshape((x.shape[0], -1))
    for _ in range(self.depth - 1):
      x = jnp.tanh(nn.Dense(self.width)(x))
    return nn.Dense(10)(x), {}


def resnet50_config(key: str) -> Any:
  """Config of ``resnet50`` (standard, BN, ReLU) or ``resnet50_tat`` (vanilla TAT)."""
  c = default_config()
  c.model.name, c.model.stem = "resnet50", "imagenet"
  if key == "resnet50":
    c.model.variant, c.model.activation, c.shaping.method = "standard", "relu", "none"
  else:
    c.model.variant, c.model.activation, c.shaping.method = "vanilla", "leaky_relu", "tat"
    c.shaping.eta = 0.9
  return c


def build(key: str, args: argparse.Namespace) -> tuple[Any, dict, dict, str]:
  """(apply_fn, variables, batch, description) of model ``key``."""
  if key in ("cnn", "mlp"):
    model = (BenchCNN(width=args.width) if key == "cnn"
             else BenchMLP(width=args.width, depth=args.depth))
    batch = synthetic_batch(args.batch, (8, 8, 1))
    variables = model.init(jax.random.PRNGKey(0), batch["image"])
    return model.apply, dict(variables), batch, f"{key} (8x8x1)"
  from dksflax.models.build import build_network  # pylint: disable=import-outside-toplevel
  size = args.image_size
  model, init_fn, _ = build_network(resnet50_config(key), num_classes=1000,
                                    input_shape=(size, size, 3))
  batch = synthetic_batch(args.resnet_batch, (size, size, 3), num_classes=1000)
  variables = jax.jit(init_fn)(jax.random.PRNGKey(0), batch["image"])
  return model.apply, dict(variables), batch, f"{key} ({size}x{size}x3)"


def measure(key: str, args: argparse.Namespace) -> dict[str, Any]:
  """Interleaved rounds of SGD, Shampoo and K-FAC blocks on model ``key``."""
  apply_fn, variables, batch, desc = build(key, args)
  configs = {"sgd": optimizer_config("sgd"),
             "shampoo": optimizer_config("shampoo", shampoo_period=args.shampoo_period),
             "kfac": optimizer_config("kfac", kfac_period=args.kfac_period)}
  blocks = {"sgd": args.sgd_block, "shampoo": args.shampoo_period, "kfac": args.kfac_period}
  steppers = {}
  for name in OPTIMIZERS:
    print(f"[{key}] {name}: build and 2 warm-up steps ...", flush=True)
    steppers[name] = OptimizerStepper(configs[name], apply_fn, variables, batch)
    steppers[name].run(2)
  print(f"[{key}] {args.rounds} interleaved rounds (blocks: {blocks}) ...", flush=True)
  times = _timing.interleaved({n: (lambda n=n: steppers[n].run(blocks[n])) for n in OPTIMIZERS},
                              args.rounds)
  per_step = {n: [t / blocks[n] for t in times[n]] for n in OPTIMIZERS}
  row = {"model": desc, "batch": int(batch["label"].shape[0])}
  for n in OPTIMIZERS:
    row[n] = 1e3 * _timing.median(per_step[n])
    row[f"{n}_ratio"] = _timing.paired_ratio(per_step[n], per_step["sgd"])
  return row


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
  """Parses the command line, measures each model, prints (and writes) the table."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="cnn,mlp")
  parser.add_argument("--batch", type=int, default=64, help="batch of cnn and mlp")
  parser.add_argument("--width", type=int, default=16, help="cnn/mlp width")
  parser.add_argument("--depth", type=int, default=10, help="mlp depth")
  parser.add_argument("--resnet-batch", type=int, default=8)
  parser.add_argument("--image-size", type=int, default=64, help="ResNet-50 input size")
  parser.add_argument("--rounds", type=int, default=2,
                      help="interleaved rounds (each one K-FAC period long)")
  parser.add_argument("--kfac-period", type=int, default=50)
  parser.add_argument("--shampoo-period", type=int, default=10)
  parser.add_argument("--sgd-block", type=int, default=10)
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args(argv)
  keys = args.models.split(",")
  for key in keys:
    if key not in MODELS:
      parser.error(f"--models: unknown {key!r}; choose from {MODELS}")
  for flag in ("batch", "resnet_batch", "rounds", "kfac_period", "shampoo_period",
               "sgd_block"):
    if getattr(args, flag) < 1:
      parser.error(f"--{flag.replace('_', '-')}={getattr(args, flag)} must be >= 1")
  if args.image_size < 32:
    parser.error(f"--image-size={args.image_size}: ResNet-50's five stride-2 stages need "
                 ">= 32")
  rows = [measure(key, args) for key in keys]
  lines = [f"K-FAC inverses every {args.kfac_period} steps (curvature every step), Shampoo "
           f"preconditioners every {args.shampoo_period} steps; {args.rounds} interleaved "
           f"rounds of one block each (K-FAC {args.kfac_period} steps, Shampoo "
           f"{args.shampoo_period}, SGD {args.sgd_block}), after 2 warm-up steps; medians "
           "over rounds.", "",
           "| model | batch | SGD ms/step | Shampoo ms/step (x SGD) | K-FAC ms/step (x SGD) |",
           "|---|---|---|---|---|"]
  lines += [f"| {r['model']} | {r['batch']} | {r['sgd']:.2f} | {r['shampoo']:.2f} "
            f"({r['shampoo_ratio']:.2f}x) | {r['kfac']:.2f} ({r['kfac_ratio']:.2f}x) |"
            for r in rows]
  table = "\n".join(lines)
  print(table, flush=True)
  if args.write:
    _results.write_run(SECTION, "bench_optimizers.py", argv,
                       "Target (issue 9): K-FAC <= 1.25x SGD on ResNet-50 on a GPU.", table)
  return rows


if __name__ == "__main__":
  main()
