"""Killed and preempted runs resume to the same parameters as an uninterrupted one.

The stand-ins (tests/test_train_standins.py) train 40 steps with a checkpoint every 5:
  * SIGKILL: a subprocess is killed by the test while it waits for batch 23 (no chance to
    save), then the same run is started again and resumes from step 20;
  * SIGTERM (preemption): the run receives SIGTERM at batch 23, saves step 24, stops
    cleanly, and is started again.
The final parameters and optimizer states must equal an uninterrupted run's, bitwise (CPU).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import test_train_standins as standins
from dksflax.train import train_and_evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
  # The same setting the stand-in script uses, so in-process and subprocess steps agree.
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


def _config():
  return standins.small_config(steps=40, checkpoint_every=5, log_every=5)


def _train(workdir):
  return train_and_evaluate(_config(), str(workdir), components=standins.components())


def _state(workdir, step: int):
  return ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "state"))


def _assert_same_final_state(workdir, reference) -> None:
  got, want = _state(workdir, 40), _state(reference, 40)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  results = _train(workdir)
  assert results["status"] == "completed" and results["start_step"] == 0
  # The run moves: its final parameters differ from the step-30 ones.
  assert any(not np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(_state(workdir, 30)["params"]),
      jax.tree.leaves(_state(workdir, 40)["params"])))
  return workdir


def test_sigkill_at_step_23_then_rerun_equals_uninterrupted(tmp_path, uninterrupted):
  env = dict(os.environ, STANDIN_PAUSE_AT="23",
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.Popen(
      [sys.executable, os.path.join(HERE, "test_train_standins.py"), str(tmp_path),
       "--steps", "40", "--checkpoint-every", "5"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
  try:
    for line in proc.stdout:
      if line.strip() == "PAUSED 23":
        break
    else:
      raise AssertionError(f"the run ended before batch 23: {proc.stderr.read()[-3000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
    proc.stdout.close()
    proc.stderr.close()
  assert proc.returncode == -signal.SIGKILL
  assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints")) == [10, 15, 20]
  assert not (tmp_path / "results.json").exists()

  results = _train(tmp_path)   # the same command again
  assert results["start_step"] == 20 and results["step"] == 40
  _assert_same_final_state(tmp_path, uninterrupted)


def test_sigterm_saves_stops_and_resumes_to_the_same_state(tmp_path, uninterrupted,
                                                           monkeypatch):
  release, paused = tmp_path / "release", tmp_path / "paused"
  monkeypatch.setenv("STANDIN_PAUSE_AT", "23")
  monkeypatch.setenv("STANDIN_RELEASE_FILE", str(release))
  monkeypatch.setenv("STANDIN_PAUSED_FILE", str(paused))

  def preempt():
    os.kill(os.getpid(), signal.SIGTERM)
    release.write_text("go")

  def pause_watcher():
    # Waits until the pipeline pauses at batch 23, then signals.
    while not paused.exists():
      threading.Event().wait(0.05)
    preempt()

  watcher = threading.Thread(target=pause_watcher, daemon=True)
  watcher.start()
  first = _train(tmp_path / "run")
  watcher.join(timeout=10)
  assert first["status"] == "preempted" and first["step"] == 24
  saved = json.loads((tmp_path / "run" / "results.json").read_text())
  assert saved["status"] == "preempted"
  assert max(int(s) for s in os.listdir(tmp_path / "run" / "checkpoints")) == 24

  monkeypatch.delenv("STANDIN_PAUSE_AT")
  second = _train(tmp_path / "run")
  assert second["start_step"] == 24 and second["status"] == "completed"
  _assert_same_final_state(tmp_path / "run", uninterrupted)
