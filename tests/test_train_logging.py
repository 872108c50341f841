"""TensorBoard events, the JSONL record and the progress bar hold what a user looks for."""

from __future__ import annotations

import io
import json
import os

import jax
import numpy as np
import pytest

import test_train_standins as standins
from dksflax.train import train_and_evaluate
from dksflax.train.metric_io import JsonlWriter, read_jsonl
from dksflax.train.progress import ProgressBar, format_eta

TRAIN_SCALARS = ("train/loss", "train/accuracy", "train/learning_rate", "train/grad_norm",
                 "train/step_time_s", "train/images_per_s")
EVAL_SCALARS = ("eval/loss", "eval/accuracy")


@pytest.fixture(autouse=True, scope="module")
def _fast_compile():
  previous = jax.config.values["jax_disable_most_optimizations"]
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


def _read_events(workdir) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
  """Scalars {tag: {step: value}} and texts {tag: text} from the TF event files."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  scalars: dict[str, dict[int, float]] = {}
  texts: dict[str, str] = {}
  files = [os.path.join(workdir, f) for f in os.listdir(workdir) if "tfevents" in f]
  assert files, f"no event file in {os.listdir(workdir)}"
  for path in files:
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        array = tf.make_ndarray(value.tensor)
        if array.dtype.kind in "SO":
          texts[value.tag] = np.asarray(array).reshape(-1)[0].decode()
        else:
          scalars.setdefault(value.tag, {})[event.step] = float(array)
  return scalars, texts


def test_tensorboard_events_hold_train_eval_scalars_and_the_shaping_report(tmp_path):
  results = train_and_evaluate(
      standins.small_config(steps=8, log_every=2, eval_every=4, checkpoint_every=100,
                            metric_writer="tensorboard"),
      str(tmp_path), components=standins.components())
  scalars, texts = _read_events(tmp_path)
  for tag in TRAIN_SCALARS:
    assert sorted(scalars[tag]) == [2, 4, 6, 8], tag
  for tag in EVAL_SCALARS:
    assert sorted(scalars[tag]) == [4, 8], tag
  assert scalars["train/learning_rate"][8] == pytest.approx(0.1)
  assert scalars["eval/accuracy"][8] == pytest.approx(results["eval"]["accuracy"], rel=1e-6)
  assert 0.0 < scalars["train/accuracy"][8] <= 1.0
  assert scalars["train/images_per_s"][8] > 0
  assert '"standin": true' in texts["shaping_report"]
  assert "standin_sgd" in texts["optimizer"]
  # The JSONL record holds the same numbers, and the final results point at them.
  records = read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  last = [r["values"] for r in records if r["kind"] == "scalars" and r["step"] == 8]
  merged = {k: v for d in last for k, v in d.items()}
  assert merged["train/loss"] == pytest.approx(scalars["train/loss"][8], rel=1e-6)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["train"]["loss"] == pytest.approx(merged["train/loss"], rel=1e-12)
  assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 8


def test_logged_training_loss_is_the_window_mean(tmp_path):
  train_and_evaluate(standins.small_config(steps=6, log_every=1), str(tmp_path / "a"),
                     components=standins.components())
  train_and_evaluate(standins.small_config(steps=6, log_every=3, checkpoint_every=100), str(tmp_path / "b"),
                     components=standins.components())

  def losses(d):
    return {r["step"]: r["values"]["train/loss"] for r in read_jsonl(
        os.path.join(d, "metrics.jsonl")) if "train/loss" in r.get("values", {})}
  per_step, windows = losses(tmp_path / "a"), losses(tmp_path / "b")
  np.testing.assert_allclose(windows[3], np.mean([per_step[s] for s in (1, 2, 3)]), rtol=1e-6)
  np.testing.assert_allclose(windows[6], np.mean([per_step[s] for s in (4, 5, 6)]), rtol=1e-6)


def test_jsonl_writer_keeps_non_finite_values_readable(tmp_path):
  writer = JsonlWriter(str(tmp_path / "m.jsonl"))
  writer.write_scalars(3, {"a": 1.5, "b": float("nan")})
  writer.write_texts(3, {"t": "hello"})
  writer.close()
  records = read_jsonl(str(tmp_path / "m.jsonl"))
  assert records == [{"step": 3, "kind": "scalars", "values": {"a": 1.5, "b": "nan"}},
                     {"step": 3, "kind": "texts", "values": {"t": "hello"}}]


def test_progress_bar_rate_and_eta_follow_the_clock():
  now = [100.0]
  stream = io.StringIO()
  bar = ProgressBar(100, start=20, stream=stream, min_interval_s=0.0, clock=lambda: now[0])
  bar.update(20)                     # first update: the clock starts (compile excluded)
  now[0] += 10.0
  bar.update(40, {"loss": 0.5})      # 20 steps in 10 s: 2 it/s; 60 left: 30 s
  assert bar.rate(40) == pytest.approx(2.0)
  assert "40/100" in bar.last_line and "2.00 it/s" in bar.last_line
  assert "ETA 0:00:30" in bar.last_line and "loss 0.5" in bar.last_line
  assert format_eta(3725) == "1:02:05" and format_eta(float("nan")) == "?"
  bar.close()
  assert stream.getvalue().endswith("\n")
  silent = io.StringIO()
  off = ProgressBar(10, enabled=False, stream=silent)
  off.update(5)
  off.close()
  assert silent.getvalue() == ""
