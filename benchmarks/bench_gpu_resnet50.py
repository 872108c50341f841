"""ResNet-50 training throughput (images/s) on synthetic ImageNet-shaped data: SGD and K-FAC.

Usage::

  python benchmarks/bench_gpu_resnet50.py [--batch 256] [--resolution 224]
      [--models standard,tat] [--optimizers sgd,kfac] [--steps 50] [--kfac-period 50]
      [--dtype bfloat16] [--profile DIR] [--write]
  python benchmarks/bench_gpu_resnet50.py --smoke      # CPU check: 32x32, batch 2, 2 steps

What is timed: ``TrainingOptimizer.step`` of ``dksflax.optim.create_optimizer`` (the
step the trainer runs) on ``dksflax.models`` ResNet-50 built from
``configs/imagenet_resnet.py`` -- ``standard`` (ReLU, batch norm) and ``tat`` (vanilla
ResNet-50, TAT leaky ReLU with eta = 0.9, no normalisation, TAT §5) -- with bfloat16
compute and float32 parameters, NHWC images, a data-parallel mesh over every local
device (``--batch`` per device), parameters and optimizer state donated to the step, and
no host transfer inside the timed loop (the images, labels and RNG keys are on the
device before the clock starts; images in the compute dtype, as a pipeline that casts
on the host would feed them). The optimizer settings are the config's for the 90-epoch
run (its schedule: the first steps of the 5-epoch warm-up); label smoothing 0.1, L2
2e-5 on weights (TAT App. D).
K-FAC updates the curvature every step and the inverses every ``--kfac-period`` steps
(50 in TAT App. D); its timed window is a whole number of periods, so its time per step
is the amortised one. Each (model, optimizer) runs in a fresh process (own compile
cache and a clean ``peak_bytes_in_use`` from ``device.memory_stats()``; "n/a" on CPU).

TensorFlow, tfds, tf_keras, clu and TensorBoard are hidden before anything is imported
(:mod:`dksflax.compat.hidden_packages`): the run imports none of them, as on the GPU
machines, which lack them. ``--profile DIR`` writes a ``jax.profiler`` trace of 3 extra
steps per run to ``DIR/<model>_<optimizer>`` (TensorBoard/XProf or Perfetto). ``--write``
replaces the ``## gpu resnet50`` section of benchmarks/RESULTS.md. K-FAC is skipped with
a message where kfac-jax is not installed (see benchmarks/README.md: carry its wheels).

Issue 9's target: ResNet-50 bf16 SGD >= 4,800 images/s on one H100; K-FAC amortised step
<= 1.25x SGD.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

from dksflax.compat.hidden_packages import TENSORFLOW_PACKAGES, HiddenPackages  # noqa: E402

SECTION = "gpu resnet50"
#: --models key -> (model.variant, shaping.method) of configs/imagenet_resnet.py.
MODELS = {"standard": ("standard", "none"), "tat": ("vanilla", "tat")}
OPTIMIZERS = ("sgd", "kfac")
SGD_TARGET_IMAGES_PER_S = 4800.0
KFAC_TARGET_RATIO = 1.25
SMOKE = dict(resolution=32, batch=2, steps=2, warmup=2, kfac_period=2,
             width_multiplier=1 / 16, fast_compile=True)


def _imagenet_config(model_key: str, optimizer: str):
  """Returns configs/imagenet_resnet.py's config and its run length in steps."""
  path = os.path.join(_ROOT, "configs", "imagenet_resnet.py")
  spec = importlib.util.spec_from_file_location("imagenet_resnet_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  variant, method = MODELS[model_key]
  cfg = module.get_config(f"{variant},{method},{optimizer},50")
  return cfg, cfg.train.epochs * module.STEPS_PER_EPOCH


def run_one(model_key: str, optimizer: str, args: argparse.Namespace) -> dict:
  """Builds, compiles and times one (model, optimizer); returns the measurements."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  if args.fast_compile:   # --smoke: a correctness check, not a timing
    jax.config.update("jax_disable_most_optimizations", True)
  from dksflax.models.build import build_network  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from dksflax.optim import create_optimizer, make_classification_loss
  from dksflax.train.mesh import batch_sharding, make_mesh, replicated_sharding
  # pylint: enable=import-outside-toplevel

  cfg, run_steps = _imagenet_config(model_key, optimizer)
  cfg.model.dtype = args.dtype
  cfg.model.width_multiplier = float(args.width_multiplier)
  opt_cfg = cfg.optimizer
  opt_cfg.kfac.inverse_update_period = int(args.kfac_period)
  mesh = make_mesh()
  devices = mesh.devices.size
  global_batch = args.batch * devices
  res = args.resolution
  model, init_fn, _ = build_network(cfg, num_classes=1000, input_shape=(res, res, 3))
  data, replicated = batch_sharding(mesh), replicated_sharding(mesh)
  dtype = jnp.dtype(args.dtype)

  def make_batch(key):
    k_img, k_lab = jax.random.split(key)
    return {"image": jax.random.normal(k_img, (global_batch, res, res, 3), dtype),
            "label": jax.random.randint(k_lab, (global_batch,), 0, 1000, jnp.int32)}

  batches = [jax.jit(make_batch, out_shardings=data)(jax.random.PRNGKey(100 + i))
             for i in range(2)]
  variables = dict(jax.jit(init_fn, out_shardings=replicated)(
      jax.random.PRNGKey(0), batches[0]["image"]))
  params = variables.pop("params")
  model_state = variables
  period = int(args.kfac_period)
  steps = int(args.steps)
  if optimizer == "kfac":   # a whole number of inverse updates in the timed window
    steps = period * max(1, math.ceil(steps / period))
  warmup = max(int(args.warmup), 2)   # K-FAC: step 0 inverts, step 1 does not
  extra = 3 if args.profile else 0
  total = warmup + steps + extra
  # The schedule of the 90-epoch run (its first steps: 5-epoch linear warm-up).
  opt = create_optimizer(opt_cfg, loss_fn=make_classification_loss(
      model.apply, label_smoothing=opt_cfg.label_smoothing, l2=opt_cfg.l2),
      total_steps=max(total, run_steps))
  root = jax.random.PRNGKey(1)
  keys = jax.device_put([jax.random.fold_in(root, s) for s in range(total)], replicated)
  opt_state = opt.init(params, model_state, jax.random.PRNGKey(2), batches[0])

  def run(first: int, count: int):
    nonlocal params, model_state, opt_state
    metrics = None
    for s in range(first, first + count):
      params, model_state, opt_state, metrics = opt.step(
          params, model_state, opt_state, keys[s], batches[s % 2], s)
    return metrics

  t0 = time.perf_counter()
  jax.block_until_ready(run(0, 1))
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(run(1, warmup - 1))
  t0 = time.perf_counter()
  metrics = run(warmup, steps)
  jax.block_until_ready((params, metrics))
  elapsed = time.perf_counter() - t0
  if args.profile:
    trace_dir = os.path.join(args.profile, f"{model_key}_{optimizer}")
    with jax.profiler.trace(trace_dir):
      jax.block_until_ready(run(warmup + steps, extra))
  loss = float(jax.device_get(metrics["loss"]))
  if not math.isfinite(loss):
    raise FloatingPointError(f"{model_key}/{optimizer}: loss {loss} after {total} steps")
  device = jax.devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  peak = (stats or {}).get("peak_bytes_in_use")
  return dict(model=model_key, optimizer=optimizer, batch_per_device=args.batch,
              global_batch=global_batch, resolution=res, dtype=args.dtype,
              width_multiplier=float(args.width_multiplier), steps=steps,
              warmup=warmup, kfac_period=period if optimizer == "kfac" else None,
              compile_s=compile_s, step_ms=1e3 * elapsed / steps,
              images_per_s=steps * global_batch / elapsed,
              peak_gib=None if peak is None else peak / 2**30, loss=loss,
              platform=device.platform, device_kind=device.device_kind,
              num_devices=int(devices), jax=jax.__version__,
              registered_blocks=(opt.describe().get("registered_blocks")
                                 if optimizer == "kfac" else None),
              hidden_loaded=sorted({m.split(".")[0] for m in sys.modules}
                                   & set(TENSORFLOW_PACKAGES)))


def _child(model_key: str, optimizer: str, args: argparse.Namespace) -> dict:
  """Runs :func:`run_one` in a fresh interpreter; returns its result or an error row."""
  argv = [sys.executable, os.path.abspath(__file__), "--one", f"{model_key},{optimizer}",
          "--batch", str(args.batch), "--resolution", str(args.resolution),
          "--steps", str(args.steps), "--warmup", str(args.warmup),
          "--kfac-period", str(args.kfac_period), "--dtype", args.dtype,
          "--width-multiplier", repr(float(args.width_multiplier))]
  if args.fast_compile:
    argv.append("--fast-compile")
  if args.profile:
    argv += ["--profile", args.profile]
  print(f"[{model_key}/{optimizer}] building, compiling, timing ...", flush=True)
  proc = subprocess.run(argv, capture_output=True, text=True, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode != 0 or not lines:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
    print("\n".join(tail), file=sys.stderr, flush=True)
    return dict(model=model_key, optimizer=optimizer,
                error=(tail[-1] if tail else f"exit code {proc.returncode}")[:200])
  result = json.loads(lines[-1][len("RESULT "):])
  peak = "n/a" if result["peak_gib"] is None else f"{result['peak_gib']:.2f} GiB"
  print(f"[{model_key}/{optimizer}] {result['images_per_s']:.1f} images/s, "
        f"{result['step_ms']:.2f} ms/step, compile {result['compile_s']:.1f} s, peak "
        f"memory {peak}, loss {result['loss']:.3f}", flush=True)
  return result


def format_table(rows: list[dict]) -> str:
  """Markdown table of the results, with each optimizer's step time over SGD's."""
  sgd_ms = {r["model"]: r["step_ms"] for r in rows
            if r.get("optimizer") == "sgd" and "step_ms" in r}
  out = ["| model | optimizer | batch/device | images/s | ms/step | x SGD step | "
         "peak device memory | compile s |", "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    if "error" in r:
      out.append(f"| {r['model']} | {r['optimizer']} | failed: {r['error']} ||||||")
      continue
    ratio = (f"{r['step_ms'] / sgd_ms[r['model']]:.2f}x" if r["model"] in sgd_ms
             else "n/a")
    peak = "n/a" if r["peak_gib"] is None else f"{r['peak_gib']:.2f} GiB"
    name = r["optimizer"] + (f" (inverse every {r['kfac_period']})"
                             if r["optimizer"] == "kfac" else "")
    out.append(f"| {r['model']} | {name} | {r['batch_per_device']} | "
               f"{r['images_per_s']:.1f} | {r['step_ms']:.2f} | {ratio} | {peak} | "
               f"{r['compile_s']:.1f} |")
  return "\n".join(out)


def target_lines(rows: list[dict]) -> list[str]:
  """Issue 9's targets against the measured rows (GPU rows at 224x224 only)."""
  lines = []
  ok = [r for r in rows if "error" not in r]
  for r in ok:
    if (r["model"] == "standard" and r["optimizer"] == "sgd" and r["platform"] == "gpu"
        and r["resolution"] == 224 and r["width_multiplier"] == 1.0):
      per_gpu = r["images_per_s"] / r["num_devices"]
      verdict = ("met" if per_gpu >= SGD_TARGET_IMAGES_PER_S else
                 f"missed by {100 * (1 - per_gpu / SGD_TARGET_IMAGES_PER_S):.0f}%")
      lines.append(f"Target ResNet-50 bf16 SGD >= {SGD_TARGET_IMAGES_PER_S:.0f} images/s "
                   f"per GPU ({r['device_kind']}): {per_gpu:.0f}, {verdict}.")
  sgd = {r["model"]: r for r in ok if r["optimizer"] == "sgd"}
  for r in ok:
    if r["optimizer"] == "kfac" and r["model"] in sgd:
      ratio = r["step_ms"] / sgd[r["model"]]["step_ms"]
      verdict = "met" if ratio <= KFAC_TARGET_RATIO else "missed"
      lines.append(f"K-FAC amortised step / SGD step ({r['model']}, {r['platform']}): "
                   f"{ratio:.2f}x (target <= {KFAC_TARGET_RATIO}x: {verdict}).")
  return lines


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256, help="images per device")
  parser.add_argument("--resolution", type=int, default=224)
  parser.add_argument("--models", default="standard,tat")
  parser.add_argument("--optimizers", default="sgd,kfac")
  parser.add_argument("--steps", type=int, default=50,
                      help="timed steps (K-FAC: rounded up to whole inverse periods)")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps (>= 2)")
  parser.add_argument("--kfac-period", type=int, default=50,
                      help="K-FAC inverse update period (TAT App. D: 50)")
  parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
  parser.add_argument("--width-multiplier", type=float, default=1.0)
  parser.add_argument("--profile", default="", help="write jax.profiler traces here")
  parser.add_argument("--write", action="store_true",
                      help="replace the '## gpu resnet50' section of RESULTS.md")
  parser.add_argument("--smoke", action="store_true",
                      help="CPU check: 32x32, batch 2, 2 steps, width 1/16")
  parser.add_argument("--fast-compile", action="store_true",
                      help="XLA without most optimisations (--smoke sets it; no timing)")
  parser.add_argument("--one", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.smoke:
    for key, value in SMOKE.items():
      setattr(args, key, value)
  for key in ("batch", "resolution", "steps", "kfac_period"):
    if getattr(args, key) < 1:
      parser.error(f"--{key.replace('_', '-')}={getattr(args, key)} must be >= 1")
  if args.resolution < 32:
    parser.error(f"--resolution={args.resolution}: ResNet-50's stem and 4 stages need >= 32")
  return args


def main(argv: list[str] | None = None) -> None:
  HiddenPackages().install()   # before jax, flax, orbax or kfac-jax is imported
  args = _parse(argv)
  if args.one:
    model_key, optimizer = args.one.split(",")
    print("RESULT " + json.dumps(run_one(model_key, optimizer, args)), flush=True)
    return
  models = [m for m in args.models.split(",") if m]
  optimizers = [o for o in args.optimizers.split(",") if o]
  for m in models:
    if m not in MODELS:
      raise SystemExit(f"--models: unknown {m!r}; choose from {sorted(MODELS)}")
  for o in optimizers:
    if o not in OPTIMIZERS:
      raise SystemExit(f"--optimizers: unknown {o!r}; choose from {list(OPTIMIZERS)}")
  if "kfac" in optimizers and importlib.util.find_spec("kfac_jax") is None:
    print("K-FAC skipped: kfac_jax is not importable here (carry kfac-jax 0.0.8 and its "
          "pure-Python dependencies as wheels: benchmarks/README.md)", flush=True)
    optimizers.remove("kfac")
  rows = [_child(m, o, args) for m in models for o in optimizers]
  from benchmarks import _results  # pylint: disable=import-outside-toplevel
  table = format_table(rows)
  command = "bench_gpu_resnet50.py " + " ".join(sys.argv[1:] if argv is None else argv)
  body = "\n".join([
      _results.machine_facts() + f" Command: `{command}`.", "",
      f"ResNet-50 at {args.resolution}x{args.resolution}, {args.dtype} compute with float32 "
      f"parameters, synthetic data on the device, {args.steps} timed steps after "
      f"{max(args.warmup, 2)} warm-up steps (K-FAC: whole inverse periods), width "
      f"multiplier {args.width_multiplier:g}. TensorFlow imported: "
      f"{'yes' if any(r.get('hidden_loaded') for r in rows) else 'no'}.", "",
      table, "", *target_lines(rows)])
  print(body)
  if args.write:
    _results.write_section(SECTION, body)
  if any("error" in r for r in rows):
    raise SystemExit("some runs failed (see the table)")


if __name__ == "__main__":
  main()
