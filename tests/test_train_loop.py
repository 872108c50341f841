"""Trainer mechanics with stand-in layers: devices, NaN guard, checkpoints, eval, workdir.

The stand-ins (tests/test_train_standins.py) are a 2-layer MLP, momentum SGD and a fixed
random dataset, so each run takes a second or two; two fake CPU devices (conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import test_train_standins as standins
from dksflax.errors import ConfigError
from dksflax.train import NonFiniteError, evaluate_workdir, setup_run, train_and_evaluate
from dksflax.train.metric_io import read_jsonl


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


def _train(workdir, devices=None, **train_overrides):
  return train_and_evaluate(standins.small_config(**train_overrides), str(workdir),
                            components=standins.components(), devices=devices)


def _train_losses(workdir) -> list[float]:
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return [r["values"]["train/loss"] for r in records
          if r["kind"] == "scalars" and "train/loss" in r["values"]]


def _checkpoint_params(workdir, step: int) -> dict:
  path = os.path.join(workdir, "checkpoints", str(step), "state")
  return ocp.StandardCheckpointer().restore(path)["params"]


def _tree_digest(directory) -> dict[str, str]:
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


def test_one_and_two_devices_give_the_same_losses(tmp_path):
  assert jax.device_count() == 2
  _train(tmp_path / "one", devices=jax.devices()[:1], steps=20, log_every=1)
  _train(tmp_path / "two", steps=20, log_every=1)
  one, two = _train_losses(tmp_path / "one"), _train_losses(tmp_path / "two")
  assert len(one) == len(two) == 20
  np.testing.assert_allclose(one, two, rtol=0, atol=1e-5)
  assert one[-1] < one[0]   # it trains


def test_nan_at_step_k_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  k = 7
  with pytest.raises(NonFiniteError, match=f"step {k}") as info:
    _train(tmp_path / "nan", steps=12, checkpoint_every=5, log_every=4, debug_nan_step=k)
  assert info.value.step == k
  failure = json.loads((tmp_path / "nan" / "failure.json").read_text())
  assert failure["failed_step"] == k and failure["last_good_checkpoint"] == 5
  results = json.loads((tmp_path / "nan" / "results.json").read_text())
  assert results["status"] == "failed" and results["failed_step"] == k
  assert sorted(os.listdir(tmp_path / "nan" / "checkpoints")) == ["5"]
  # The checkpoint before k restores, and equals a clean 5-step run's final state.
  _train(tmp_path / "clean", steps=5, checkpoint_every=5)
  got = _checkpoint_params(tmp_path / "nan", 5)
  want = _checkpoint_params(tmp_path / "clean", 5)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)


def test_eval_is_weighted_by_examples_not_batches(tmp_path):
  results = _train(tmp_path, steps=6)
  params = jax.tree.map(np.asarray, _checkpoint_params(tmp_path, 6))
  x, y = standins._dataset("eval")  # pylint: disable=protected-access
  h = np.tanh(x.reshape(len(x), -1).astype(np.float64) @ params["Dense_0"]["kernel"]
              + params["Dense_0"]["bias"])
  logits = h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  assert results["eval"]["num_examples"] == standins.NUM_EVAL   # 37: last batch ragged
  np.testing.assert_allclose(results["eval"]["loss"], -np.mean(logp[np.arange(len(y)), y]),
                             rtol=1e-5)
  np.testing.assert_allclose(results["eval"]["accuracy"],
                             np.mean(np.argmax(logits, -1) == y), rtol=1e-12)
  # `dksflax eval` path: restores the newest checkpoint with the saved config.
  again = evaluate_workdir(str(tmp_path), components=standins.components())
  assert again["step"] == 6
  np.testing.assert_allclose(again["loss"], results["eval"]["loss"], rtol=1e-6)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
  _train(tmp_path, steps=10, checkpoint_every=5)
  newest = tmp_path / "checkpoints" / "10" / "state"
  for root, _, files in os.walk(newest):
    for name in files:
      if "ocdbt" in root or name.startswith("manifest") or root.endswith("/d"):
        os.remove(os.path.join(root, name))
  run = setup_run(standins.small_config(steps=10, checkpoint_every=5), str(tmp_path),
                  components=standins.components())
  run.store.close()
  assert run.restored and run.start_step == 5
  want = _checkpoint_params(tmp_path, 5)
  for a, b in zip(jax.tree.leaves(run.state["params"]), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), b)


def test_a_finished_run_rerun_changes_nothing_but_results(tmp_path):
  first = _train(tmp_path, steps=4, checkpoint_every=2)
  before = _tree_digest(tmp_path / "checkpoints")
  second = _train(tmp_path, steps=4, checkpoint_every=2)
  assert second["start_step"] == 4 and second["step"] == 4
  assert _tree_digest(tmp_path / "checkpoints") == before
  assert second["eval"] == first["eval"]


def test_a_different_config_is_refused_and_nothing_changes(tmp_path):
  _train(tmp_path, steps=4, checkpoint_every=2)
  before = _tree_digest(tmp_path)
  with pytest.raises(ConfigError, match=r"train.steps: 4 -> 6"):
    _train(tmp_path, steps=6, checkpoint_every=2)
  assert _tree_digest(tmp_path) == before


def test_a_foreign_non_empty_directory_is_refused(tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ConfigError, match="not empty"):
    _train(tmp_path, steps=2)
  assert os.listdir(tmp_path) == ["notes.txt"]


def test_batch_not_divisible_by_devices_fails_before_compute(tmp_path):
  with pytest.raises(ConfigError, match=r"train.batch_size=7 must be a positive multiple "
                                        r"of the number of devices \(2\)"):
    _train(tmp_path / "w", batch_size=7)
  assert not (tmp_path / "w").exists()


def test_unwritable_workdir_fails_before_compute(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(ConfigError, match="is not writable|not a directory"):
    _train(blocker / "run", steps=2)
  with pytest.raises(ConfigError, match="not a directory"):
    _train(blocker, steps=2)


def test_bad_train_values_are_config_errors(tmp_path):
  with pytest.raises(ConfigError, match="exactly one of train.steps"):
    _train(tmp_path, epochs=2)
  with pytest.raises(ConfigError, match="train.metric_writer='csv'"):
    _train(tmp_path, metric_writer="csv")
  with pytest.raises(ConfigError, match="grad_accum_steps=3"):
    _train(tmp_path, grad_accum_steps=3)
  config = standins.small_config(grad_accum_steps=2)
  config.unlock()
  config.optimizer.name = "kfac"
  with pytest.raises(ConfigError, match="grad_accum_steps=2 is not supported with "
                                        "optimizer.name='kfac'"):
    train_and_evaluate(config, str(tmp_path), components=standins.components())
  assert not os.listdir(tmp_path)


def test_epochs_convert_to_steps_once(tmp_path):
  results = _train(tmp_path, steps=-1, epochs=1, checkpoint_every=100)
  assert results["total_steps"] == standins.NUM_TRAIN // 8 == results["step"]
  assert results["checkpoints"] == [32]


def test_gradient_accumulation_equals_the_full_batch_step(tmp_path):
  # SGD on mean losses: 4 micro-batches of 2 give the full batch-8 gradient (to rounding).
  _train(tmp_path / "full", steps=3, checkpoint_every=3)
  _train(tmp_path / "accum", steps=3, checkpoint_every=3, grad_accum_steps=4)
  full, accum = _checkpoint_params(tmp_path / "full", 3), _checkpoint_params(
      tmp_path / "accum", 3)
  for a, b in zip(jax.tree.leaves(accum), jax.tree.leaves(full)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert any(np.any(a != 0) for a in jax.tree.leaves(accum))


def test_micro_batches_are_strided_so_devices_keep_their_share():
  from dksflax.train.accumulation import split_micro_batches  # pylint: disable=import-outside-toplevel
  batch = {"image": np.arange(8 * 3).reshape(8, 3), "label": np.arange(8)}
  micro = split_micro_batches(batch, 4)
  np.testing.assert_array_equal(micro["label"], [[0, 4], [1, 5], [2, 6], [3, 7]])
  np.testing.assert_array_equal(micro["image"][1], batch["image"][[1, 5]])
  with pytest.raises(ValueError, match="grad_accum_steps=3"):
    split_micro_batches(batch, 3)
