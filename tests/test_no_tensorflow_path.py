"""The training path runs with TensorFlow, tfds, TF-probability and clu unimportable.

The GPU machines have no TensorFlow (issue 9): there a run on synthetic data must
import neither TensorFlow nor anything that pulls it in. Each test starts a fresh
interpreter (this file run as a script) that hides those packages with
:class:`dksflax.compat.hidden_packages.HiddenPackages` (they look not installed; every
look-up is recorded), builds a tiny shaped ResNet
(vanilla TAT, bfloat16 compute with float32 parameters: the GPU settings), takes
optimizer steps (checking that the parameters are donated to the step) with implicit
host<->device transfers disallowed, and trains 3 steps
through ``train_and_evaluate`` (JSONL metric writer) with device-to-host transfers
disallowed outside explicit fetches. The parent checks the child's JSON report.

* ``sgd``: kfac-jax, distrax and tfp are hidden too, and nothing may even look for
  them: SGD never touches the K-FAC stack. (etils, under orbax, asks whether
  TensorFlow is installed, and copes with the answer no.)
* ``kfac``: only TensorFlow, tfds, tf_keras and clu are hidden (kfac-jax needs
  distrax and tfp-nightly's JAX substrate, which tries ``import tensorflow`` inside
  ``try/except`` and works without it); TensorFlow must not end up loaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from dksflax.compat.hidden_packages import TENSORFLOW_PACKAGES, HiddenPackages

#: Hidden in every mode: TensorFlow and what imports it (clu's writers, tfds).
TF_ROOTS = TENSORFLOW_PACKAGES
#: Hidden as well when the optimizer is not K-FAC.
KFAC_ROOTS = ("kfac_jax", "distrax", "tensorflow_probability")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child(mode: str, workdir: str) -> None:
  """Runs in the subprocess: refuse imports, build, step, train; print a JSON report."""
  refuse = HiddenPackages(TF_ROOTS + (KFAC_ROOTS if mode == "sgd" else ())).install()
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_disable_most_optimizations", True)   # compile faster on CPU

  from dksflax import configlib, data, init, models, optim, shaping, train  # pylint: disable=import-outside-toplevel,unused-import
  from dksflax.models.build import build_network  # pylint: disable=import-outside-toplevel
  from dksflax.train.metric_io import read_jsonl  # pylint: disable=import-outside-toplevel

  cfg = configlib.default_config()
  cfg.data.name = "synthetic"
  cfg.data.synthetic_shape = (8, 8, 3)
  cfg.data.synthetic_classes = 4
  cfg.data.synthetic_examples = 32
  cfg.data.synthetic_eval_examples = 8
  cfg.model.name = "resnet"
  cfg.model.blocks = (1, 1, 1, 1)
  cfg.model.width_multiplier = 1 / 16
  cfg.model.variant = "vanilla"
  cfg.model.activation = "leaky_relu"
  cfg.model.stem = "cifar"
  cfg.model.dtype = "bfloat16"
  cfg.shaping.method = "tat"
  cfg.shaping.eta = 0.5
  cfg.optimizer.name = mode
  cfg.optimizer.schedule = "constant"
  cfg.optimizer.learning_rate = 0.01 if mode == "sgd" else 3e-4
  cfg.optimizer.kfac.inverse_update_period = 2
  cfg.train.batch_size = 8
  cfg.train.eval_batch_size = 8
  cfg.train.steps = 3
  cfg.train.log_every = 1
  cfg.train.eval_every = 0
  cfg.train.checkpoint_every = 3
  cfg.train.metric_writer = "jsonl"
  cfg.train.progress_bar = False

  # Direct optimizer steps on a fixed batch, as the benchmark drives them.
  model, init_fn, _ = build_network(cfg, num_classes=4, input_shape=(8, 8, 3))
  rng = np.random.default_rng(0)
  batch = jax.device_put({"image": rng.normal(size=(8, 8, 8, 3)).astype(np.float32),
                          "label": rng.integers(0, 4, size=8).astype(np.int32)})
  variables = dict(init_fn(jax.random.PRNGKey(0), batch["image"]))
  params = variables.pop("params")
  opt = optim.create_optimizer(cfg.optimizer, loss_fn=optim.make_classification_loss(
      model.apply), total_steps=10)
  state = opt.init(params, variables, jax.random.PRNGKey(1), batch)
  keys = [jax.random.PRNGKey(10 + s) for s in range(5)]
  losses = []
  before = jax.tree_util.tree_leaves(params)[0]
  params, variables, state, metrics = opt.step(params, variables, state, keys[0], batch, 0)
  losses.append(metrics["loss"])
  donated = before.is_deleted()   # the step reused the old parameters' buffers
  with jax.transfer_guard("disallow"):   # no implicit transfer either way in a step
    for step in range(1, 5):
      params, variables, state, metrics = opt.step(params, variables, state, keys[step],
                                                   batch, step)
      losses.append(metrics["loss"])
  step_losses = [float(x) for x in jax.device_get(losses)]
  param_dtypes = sorted({str(p.dtype) for p in jax.tree_util.tree_leaves(params)})

  with jax.transfer_guard_device_to_host("disallow"):   # only explicit fetches
    results = train.train_and_evaluate(cfg, workdir)
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  train_losses = [r["values"]["train/loss"] for r in records
                  if r["kind"] == "scalars" and "train/loss" in r["values"]]
  loaded = sorted({m.split(".")[0] for m in sys.modules} & set(TF_ROOTS + KFAC_ROOTS))
  print("REPORT " + json.dumps(dict(
      attempts=refuse.attempts, loaded=loaded, step_losses=step_losses,
      param_dtypes=param_dtypes, donated=donated, status=results["status"],
      step=results["step"],
      train_losses=train_losses, eval_examples=results["eval"]["num_examples"],
      tensorboard_files=[f for f in os.listdir(workdir) if "tfevents" in f])))


def _run_child(mode: str, workdir) -> dict:
  env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), mode, str(workdir)],
                        capture_output=True, text=True, timeout=900, env=env, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("REPORT ")]
  assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
  return json.loads(lines[-1][len("REPORT "):])


def _check_training(report: dict) -> None:
  assert report["status"] == "completed" and report["step"] == 3
  assert len(report["train_losses"]) == 3
  # Untrained 4-class classifier: cross-entropy near log 4, never NaN.
  for loss in report["step_losses"] + report["train_losses"]:
    assert 0.0 < loss < 5.0, report
  assert report["eval_examples"] == 8
  assert report["param_dtypes"] == ["float32"]   # bf16 compute, f32 parameters
  assert report["donated"]                       # parameters donated to the step
  assert report["tensorboard_files"] == []       # the JSONL writer alone


def test_sgd_path_never_tries_tensorflow_or_kfac(tmp_path):
  report = _run_child("sgd", tmp_path)
  assert not any(a.split(".")[0] in KFAC_ROOTS for a in report["attempts"]), report
  assert report["loaded"] == []
  _check_training(report)
  # Five SGD steps on one batch lower its loss.
  assert report["step_losses"][-1] < report["step_losses"][0], report["step_losses"]


@pytest.mark.slow
def test_kfac_path_runs_without_tensorflow(tmp_path):
  report = _run_child("kfac", tmp_path)
  assert not set(report["loaded"]) & set(TF_ROOTS), report["loaded"]
  assert "kfac_jax" in report["loaded"]
  _check_training(report)


def test_hidden_packages_look_not_installed():
  assert "tabnanny" not in sys.modules
  hidden = HiddenPackages(("tabnanny",)).install()
  try:
    with pytest.raises(ModuleNotFoundError):
      __import__("tabnanny")
    assert importlib.util.find_spec("tabnanny") is None
    assert importlib.util.find_spec("json") is not None   # others still resolve
  finally:
    hidden.uninstall()
  assert hidden.attempts == ["tabnanny", "tabnanny"] and hidden.loaded() == []
  assert importlib.util.find_spec("tabnanny") is not None
  with pytest.raises(RuntimeError, match="json"):
    HiddenPackages(("json",)).install()


if __name__ == "__main__":
  _child(sys.argv[1], sys.argv[2])
