"""benchmarks/bench_gpu_resnet50.py: the table and targets, and a --smoke run on CPU.

The smoke run is the real script (fresh processes, ResNet-50 at width 1/16 on 32x32
images, batch 2, 2 timed steps): it must print a row per run with a finite throughput,
report no TensorFlow import, and (K-FAC, slow) register every layer.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_ROOT, "benchmarks", "bench_gpu_resnet50.py")


def _bench_module():
  spec = importlib.util.spec_from_file_location("bench_gpu_resnet50_under_test", _SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)   # (TensorFlow is hidden by main() only)
  return module


def _row(model, optimizer, step_ms, **extra):
  row = dict(model=model, optimizer=optimizer, batch_per_device=256, global_batch=256,
             resolution=224, dtype="bfloat16", width_multiplier=1.0, steps=50, warmup=3,
             kfac_period=50 if optimizer == "kfac" else None, compile_s=40.0,
             step_ms=step_ms, images_per_s=256 / (step_ms / 1e3), peak_gib=20.5,
             loss=6.9, platform="gpu", device_kind="NVIDIA H100 80GB HBM3",
             num_devices=1, jax="0.11.2", registered_blocks=None, hidden_loaded=[])
  row.update(extra)
  return row


def test_table_ratios_and_targets():
  bench = _bench_module()
  rows = [_row("standard", "sgd", 50.0), _row("standard", "kfac", 60.0),
          _row("tat", "sgd", 40.0), _row("tat", "kfac", 60.0),
          dict(model="tat", optimizer="sgd", error="RESOURCE_EXHAUSTED: out of memory")]
  table = bench.format_table(rows)
  assert "| standard | sgd | 256 | 5120.0 | 50.00 | 1.00x | 20.50 GiB | 40.0 |" in table
  assert "| standard | kfac (inverse every 50) | 256 | 4266.7 | 60.00 | 1.20x |" in table
  assert "| tat | kfac (inverse every 50) | 256 | 4266.7 | 60.00 | 1.50x |" in table
  assert "failed: RESOURCE_EXHAUSTED" in table
  lines = bench.target_lines(rows)
  assert lines[0] == ("Target ResNet-50 bf16 SGD >= 4800 images/s per GPU "
                      "(NVIDIA H100 80GB HBM3): 5120, met.")
  assert "(standard, gpu): 1.20x (target <= 1.25x: met)" in lines[1]
  assert "(tat, gpu): 1.50x (target <= 1.25x: missed)" in lines[2]
  slow = bench.target_lines([_row("standard", "sgd", 64.0)])
  assert slow[0].endswith("4000, missed by 17%.")
  # CPU or reduced-size rows are never judged against the GPU throughput target.
  assert bench.target_lines([_row("standard", "sgd", 1.0, platform="cpu")]) == []


def test_arguments_are_checked():
  bench = _bench_module()
  args = bench._parse(["--smoke"])   # pylint: disable=protected-access
  assert (args.resolution, args.batch, args.steps, args.kfac_period) == (32, 2, 2, 2)
  for bad in (["--resolution", "16"], ["--batch", "0"], ["--kfac-period", "0"]):
    with pytest.raises(SystemExit):
      bench._parse(bad)   # pylint: disable=protected-access


def _smoke(*extra: str) -> str:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, _SCRIPT, "--smoke", *extra], capture_output=True,
                        text=True, timeout=1500, env=env, cwd=_ROOT, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert "TensorFlow imported: no." in proc.stdout
  return proc.stdout


def _rows(stdout: str) -> dict[tuple[str, str], float]:
  found = re.findall(r"^\| (standard|tat) \| (sgd|kfac)[^|]* \| 2 \| ([0-9.]+) \| "
                     r"([0-9.]+) \| ([0-9.]+)x \| n/a \|", stdout, re.M)
  return {(m, o): float(ips) for m, o, ips, _, _ in found}


def test_smoke_run_tat_sgd_on_cpu():
  out = _smoke("--models", "tat", "--optimizers", "sgd")
  rows = _rows(out)
  assert list(rows) == [("tat", "sgd")] and rows[("tat", "sgd")] > 0, out


@pytest.mark.slow
def test_smoke_run_every_model_and_optimizer_on_cpu():
  out = _smoke()
  rows = _rows(out)
  assert sorted(rows) == [("standard", "kfac"), ("standard", "sgd"), ("tat", "kfac"),
                          ("tat", "sgd")], out
  assert all(v > 0 for v in rows.values())
  assert "K-FAC amortised step / SGD step (standard, cpu)" in out
