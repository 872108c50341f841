"""How the training step's cost grows: batch size, depth, and K-FAC's overhead vs width.

Usage::

  .venv/bin/python benchmarks/bench_scaling.py [--parts batch,depth,kfac]
      [--batches 8,16,32,64,128] [--batch-model resnet] [--depths 10,25,50,100,200]
      [--widths 32,64,128,256,512]
      [--rounds 5] [--kfac-period 50] [--write]

Every step is dksflax's own (``dksflax.optim.create_optimizer``, models from
``dksflax.models.build.build_network``), on one fixed synthetic batch on the device:

* batch: SGD step of a small vanilla TAT ResNet-V2 (one bottleneck block per stage,
  width x1/8, 16x16x3 images) at each batch size: ms/step, ms/example, and the log-log
  slope of step time against batch size (1 = linear; below 1, small batches leave the
  cores idle).
* depth: SGD step of a vanilla TAT tanh MLP (64 units, batch 32) at each depth: ms/step,
  ms/layer, and the least-squares slope of step time against depth (ms per layer) with
  its intercept (the fixed per-step cost).
* kfac: K-FAC step (curvature every step, inverses every ``--kfac-period`` steps: 50 in
  TAT App. D and DKS §27.5) as a multiple of the SGD step on a 4-layer tanh MLP (batch 64)
  at each width, amortised over whole periods; and the log-log slope of K-FAC's extra time
  (K-FAC - SGD) against width (the factor statistics cost O(width^2 batch) per layer and
  step, the inverses O(width^3) per period).

In each part the contenders (one per size, and SGD/K-FAC per width) are timed in
interleaved rounds (`benchmarks/_timing.py`) after a warm-up block that compiles them;
figures are medians over rounds, ratios medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=wrong-import-position
from benchmarks import _results, _timing  # noqa: E402
from benchmarks._stepper import OptimizerStepper, optimizer_config, synthetic_batch  # noqa: E402
from dksflax.configlib import default_config  # noqa: E402
from dksflax.models.build import build_network  # noqa: E402
# pylint: enable=wrong-import-position

SECTION = "scaling"
PARTS = ("batch", "depth", "kfac")


def _ints(text: str, flag: str) -> list[int]:
  try:
    values = [int(v) for v in text.split(",")]
  except ValueError as e:
    raise SystemExit(f"{flag}={text!r} must be comma-separated integers") from e
  if not values or min(values) < 1:
    raise SystemExit(f"{flag}={text!r} must list positive integers")
  return values


def _network(kind: str, size: tuple[int, int], image_shape: tuple[int, ...]) -> Any:
  """(apply_fn, variables) of a vanilla TAT network: ``resnet``, or ``mlp`` of (depth, width).

  TAT's initialisation does not look at the data: the variables are made on one example
  and serve every batch size.
  """
  c = default_config()
  if kind == "resnet":
    c.model.name, c.model.blocks, c.model.stem = "resnet", (1, 1, 1, 1), "cifar"
    c.model.width_multiplier, c.model.activation = 0.125, "leaky_relu"
  else:
    c.model.name, c.model.activation = "mlp", "tanh"
    c.model.depth, c.model.width = size
  c.model.variant, c.shaping.method = "vanilla", "tat"
  model, init_fn, _ = build_network(c, num_classes=10, input_shape=image_shape)
  sample = synthetic_batch(1, image_shape)["image"]
  return model.apply, jax.jit(init_fn)(jax.random.PRNGKey(0), sample)


def _time(steppers: dict[str, OptimizerStepper], blocks: dict[str, int], rounds: int,
          label: str) -> dict[str, list[float]]:
  """Two warm-up steps each, then interleaved rounds; seconds per step per round.

  Any ``period`` consecutive K-FAC steps hold exactly one inverse update, so a block of
  one period is amortised whatever step it starts at.
  """
  print(f"[{label}] compiling {len(steppers)} contenders ...", flush=True)
  for s in steppers.values():
    s.run(2)   # K-FAC: step 0 updates the inverses, step 1 does not: both compiled
  print(f"[{label}] timing {rounds} interleaved rounds ...", flush=True)
  times = _timing.interleaved({n: (lambda s=s, n=n: s.run(blocks[n]))
                               for n, s in steppers.items()}, rounds, progress=False)
  return {n: [t / blocks[n] for t in ts] for n, ts in times.items()}


def _loglog_slope(x: list[float], y: list[float]) -> float:
  return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def batch_part(batches: list[int], rounds: int, model: str) -> list[str]:
  """Table: SGD step time vs batch size on the small ResNet (or a 4 x 64 MLP)."""
  apply_fn, variables = _network(model, (4, 64), (16, 16, 3))
  steppers = {f"b{b}": OptimizerStepper(optimizer_config("sgd"), apply_fn, variables,
                                        synthetic_batch(b, (16, 16, 3))) for b in batches}
  times = _time(steppers, {n: 5 for n in steppers}, rounds, "batch")
  ms = [1e3 * _timing.median(times[f"b{b}"]) for b in batches]
  per_ex = [m / b for m, b in zip(ms, batches)]
  desc = ("vanilla TAT ResNet-V2 (1,1,1,1) width x1/8" if model == "resnet"
          else "vanilla TAT tanh MLP 4 x 64")
  lines = [f"Step time vs batch size: SGD, {desc}, 16x16x3.", "",
           "| batch | ms/step | ms/example | per-example time (x batch "
           f"{batches[0]}) |", "|---|---|---|---|"]
  lines += [f"| {b} | {m:.2f} | {e:.3f} | {e / per_ex[0]:.2f} |"
            for b, m, e in zip(batches, ms, per_ex)]
  if len(batches) > 1:
    lines += ["", f"Log-log slope of step time vs batch size: "
              f"{_loglog_slope(batches, ms):.2f} (1 = linear)."]
  return lines


def depth_part(depths: list[int], rounds: int) -> list[str]:
  """Table: SGD step time vs depth of a vanilla MLP."""
  steppers = {}
  for d in depths:
    apply_fn, variables = _network("mlp", (d, 64), (16, 16, 3))
    data = synthetic_batch(32, (16, 16, 3))
    steppers[f"d{d}"] = OptimizerStepper(optimizer_config("sgd"), apply_fn, variables, data)
  times = _time(steppers, {n: 10 for n in steppers}, rounds, "depth")
  ms = [1e3 * _timing.median(times[f"d{d}"]) for d in depths]
  lines = ["Step time vs depth: SGD, vanilla TAT tanh MLP, 64 units, batch 32, 16x16x3 "
           "inputs.", "", "| depth | ms/step | ms/layer |", "|---|---|---|"]
  lines += [f"| {d} | {m:.3f} | {m / d:.4f} |" for d, m in zip(depths, ms)]
  if len(depths) > 1:
    slope, intercept = np.polyfit(depths, ms, 1)
    lines += ["", f"Least-squares fit: {slope:.4f} ms per layer + {intercept:.3f} ms fixed; "
              f"log-log slope {_loglog_slope(depths, ms):.2f} (1 = linear)."]
  return lines


def kfac_part(widths: list[int], rounds: int, period: int) -> list[str]:
  """Table: amortised K-FAC step / SGD step vs MLP width."""
  steppers, blocks = {}, {}
  for w in widths:
    apply_fn, variables = _network("mlp", (4, w), (16, 16, 3))
    data = synthetic_batch(64, (16, 16, 3))
    steppers[f"sgd{w}"] = OptimizerStepper(optimizer_config("sgd"), apply_fn, variables,
                                           data)
    steppers[f"kfac{w}"] = OptimizerStepper(optimizer_config("kfac", kfac_period=period),
                                            apply_fn, variables, data)
    blocks[f"sgd{w}"], blocks[f"kfac{w}"] = min(period, 10), period
  times = _time(steppers, blocks, rounds, "kfac")
  sgd = [1e3 * _timing.median(times[f"sgd{w}"]) for w in widths]
  kfac = [1e3 * _timing.median(times[f"kfac{w}"]) for w in widths]
  ratio = [_timing.paired_ratio(times[f"kfac{w}"], times[f"sgd{w}"]) for w in widths]
  lines = [f"K-FAC overhead vs width: 4-layer vanilla TAT tanh MLP, batch 64, K-FAC inverses "
           f"every {period} steps (curvature every step), amortised over whole periods.", "",
           "| width | SGD ms/step | K-FAC ms/step | K-FAC x SGD |", "|---|---|---|---|"]
  lines += [f"| {w} | {s:.3f} | {k:.3f} | {r:.2f} |"
            for w, s, k, r in zip(widths, sgd, kfac, ratio)]
  extra = [k - s for k, s in zip(kfac, sgd)]
  if len(widths) > 1 and min(extra) > 0:
    lines += ["", f"Log-log slope of K-FAC's extra time (K-FAC - SGD) vs width: "
              f"{_loglog_slope(widths, extra):.2f} (2: statistics-bound, 3: inverse-bound)."]
  return lines


def main(argv: list[str] | None = None) -> str:
  """Parses the command line, runs the parts, prints (and writes) the tables."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--parts", default=",".join(PARTS))
  parser.add_argument("--batches", default="8,16,32,64,128")
  parser.add_argument("--depths", default="10,25,50,100,200")
  parser.add_argument("--widths", default="32,64,128,256,512")
  parser.add_argument("--batch-model", default="resnet", choices=("resnet", "mlp"))
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--kfac-period", type=int, default=50)
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args(argv)
  parts = args.parts.split(",")
  for p in parts:
    if p not in PARTS:
      parser.error(f"--parts: unknown {p!r}; choose from {PARTS}")
  if args.rounds < 1 or args.kfac_period < 1:
    parser.error(f"--rounds ({args.rounds}) and --kfac-period ({args.kfac_period}) must be "
                 ">= 1")
  sections = []
  if "batch" in parts:
    sections.append(batch_part(_ints(args.batches, "--batches"), args.rounds,
                               args.batch_model))
  if "depth" in parts:
    sections.append(depth_part(_ints(args.depths, "--depths"), args.rounds))
  if "kfac" in parts:
    sections.append(kfac_part(_ints(args.widths, "--widths"), args.rounds, args.kfac_period))
  text = "\n\n".join("\n".join(s) for s in sections)
  print(text, flush=True)
  if args.write:
    _results.write_run(SECTION, "bench_scaling.py", argv,
                       f"One device, medians of {args.rounds} interleaved rounds.", text)
  return text


if __name__ == "__main__":
  main()
