"""Multi-host training without a cluster: two local processes joined by jax.distributed.

Each process runs the same ``dksflax train`` command (as the launchers do) with the
``DKSFLAX_*`` variables pointing at a coordinator on the loopback address and one CPU
device each; CPU collectives use gloo (`dksflax.train.mesh`). The per-step training
losses must equal those of one process driving two devices (same global mesh, same
global batch) to 1e-5.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 4
TRAIN_ARGS = [
    "--config", "configs/digits_mlp.py:none,sgd",
    f"--config.train.steps={STEPS}", "--config.train.epochs=-1",
    "--config.model.depth=3", "--config.model.width=16",
    "--config.train.batch_size=8", "--config.train.eval_batch_size=8",
    "--config.train.log_every=1", "--config.train.eval_every=0",
    "--config.train.checkpoint_every=100", "--config.train.progress_bar=False",
    "--config.train.metric_writer=jsonl", "--config.optimizer.warmup_steps=0",
]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int, **extra) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith("DKSFLAX_")}
  env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  return env


def _losses(workdir: str) -> dict[int, float]:
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      rec = json.loads(line)
      if rec.get("kind") == "scalars" and "train/loss" in rec["values"]:
        out[rec["step"]] = rec["values"]["train/loss"]
  return out


def _train(workdir: str, env: dict[str, str]) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, "-m", "dksflax.cli", "train", *TRAIN_ARGS,
                           "--workdir", workdir], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_processes_match_one_process_with_two_devices(tmp_path):
  single = str(tmp_path / "single")
  proc = _train(single, _env(2))
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-3000:]

  multi = str(tmp_path / "multi")
  port = _free_port()
  procs = [_train(multi, _env(1, DKSFLAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                              DKSFLAX_NUM_PROCESSES="2", DKSFLAX_PROCESS_ID=str(i)))
           for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, o in zip(procs, outs):
    assert p.returncode == 0, o[-3000:]
  with open(os.path.join(multi, "results.json")) as f:
    results = json.load(f)
  assert results["num_processes"] == 2 and results["num_devices"] == 2
  a, b = _losses(single), _losses(multi)
  assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
  np.testing.assert_allclose([b[s] for s in sorted(b)], [a[s] for s in sorted(a)],
                             rtol=0, atol=1e-5)
