"""Small stand-ins for the data, model and optimizer layers, used by the trainer tests.

They follow the public signatures the trainer relies on (`dksflax.train.Components`), so
the trainer's mechanics (sharding, checkpoints, resume, logging, NaN guard) are tested
in isolation and fast. Run as a script, this module trains with them (the SIGKILL and
preemption tests start it as a subprocess):

  python tests/test_train_standins.py WORKDIR --steps 40 --checkpoint-every 5

With the environment variable STANDIN_PAUSE_AT=k the input pipeline prints
``PAUSED k`` and waits when batch k is requested (until the file named by
STANDIN_RELEASE_FILE exists, at most 10 minutes; it also writes the file named by
STANDIN_PAUSED_FILE), so a test can signal it exactly there.
The tests at the bottom check the stand-ins themselves against numpy.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

NUM_TRAIN = 256
NUM_EVAL = 37         # not a multiple of any batch size used: exercises the padded last batch
IMAGE_SHAPE = (4, 4, 1)
NUM_CLASSES = 3

DatasetInfo = collections.namedtuple(
    "DatasetInfo", "name num_classes image_shape num_train_examples num_eval_examples")


def _dataset(split: str) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(1234)
  teacher = rng.normal(size=(int(np.prod(IMAGE_SHAPE)), NUM_CLASSES))
  n = NUM_TRAIN + NUM_EVAL
  x = rng.normal(size=(n, *IMAGE_SHAPE)).astype(np.float32)
  y = np.argmax(x.reshape(n, -1) @ teacher, axis=-1).astype(np.int32)
  if split == "train":
    return x[:NUM_TRAIN], y[:NUM_TRAIN]
  return x[NUM_TRAIN:], y[NUM_TRAIN:]


def get_dataset_info(data_config: Any) -> DatasetInfo:
  del data_config
  return DatasetInfo("standin", NUM_CLASSES, IMAGE_SHAPE, NUM_TRAIN, NUM_EVAL)


def _place(batch: dict[str, np.ndarray], sharding: Any) -> dict[str, Any]:
  if sharding is None:
    return batch
  import jax  # pylint: disable=import-outside-toplevel
  return {k: jax.device_put(v, sharding) for k, v in batch.items()}


def make_train_iterator(data_config: Any, *, global_batch_size: int, seed: int,
                        start_step: int = 0, sharding: Any = None) -> Iterator[dict[str, Any]]:
  """Batches deterministic in (seed, step): a fresh permutation per epoch."""
  del data_config
  x, y = _dataset("train")
  per_epoch = NUM_TRAIN // global_batch_size
  pause_at = int(os.environ.get("STANDIN_PAUSE_AT", "-1"))
  step = start_step
  while True:
    if step == pause_at:
      print(f"PAUSED {step}", flush=True)
      if os.environ.get("STANDIN_PAUSED_FILE"):
        with open(os.environ["STANDIN_PAUSED_FILE"], "w") as f:
          f.write(str(step))
      release = os.environ.get("STANDIN_RELEASE_FILE", "")
      deadline = time.monotonic() + 600
      while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.05)
    epoch, pos = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(NUM_TRAIN)
    idx = order[pos * global_batch_size:(pos + 1) * global_batch_size]
    yield _place(dict(image=x[idx], label=y[idx]), sharding)
    step += 1


def make_eval_iterator(data_config: Any, *, global_batch_size: int,
                       sharding: Any = None) -> Iterator[dict[str, Any]]:
  """One pass over the eval split; the last batch is padded and masked."""
  del data_config
  x, y = _dataset("eval")
  for start in range(0, NUM_EVAL, global_batch_size):
    xb, yb = x[start:start + global_batch_size], y[start:start + global_batch_size]
    pad = global_batch_size - len(xb)
    mask = np.concatenate([np.ones(len(xb), bool), np.zeros(pad, bool)])
    xb = np.concatenate([xb, np.zeros((pad, *IMAGE_SHAPE), np.float32)])
    yb = np.concatenate([yb, np.zeros(pad, np.int32)])
    yield _place(dict(image=xb, label=yb, mask=mask), sharding)


def build_network(config: Any, *, num_classes: int, input_shape: tuple[int, ...]):
  """A two-layer tanh MLP returning ``(logits, out)``."""
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  class TinyMLP(nn.Module):
    width: int
    classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
      del train
      h = jnp.tanh(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
      return nn.Dense(self.classes)(h), {"hidden": h}

  del input_shape
  model = TinyMLP(width=8, classes=num_classes)

  def init_fn(rng, sample_images):
    return dict(model.init(rng, sample_images))

  return model, init_fn, {"method": config.shaping.method, "standin": True}


def make_loss(apply_fn, *, label_smoothing: float, l2: float):
  """Cross-entropy (+ L2 on kernels) in the optimizer layer's LossFn form."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  def loss_fn(params, model_state, rng, batch):
    del rng
    logits, _ = apply_fn({"params": params, **model_state}, batch["image"], train=True)
    labels = jax.nn.one_hot(batch["label"], logits.shape[-1])
    labels = optax.smooth_labels(labels, label_smoothing) if label_smoothing else labels
    loss = jnp.mean(optax.softmax_cross_entropy(logits, labels))
    kernels = [p for path, p in jax.tree_util.tree_leaves_with_path(params)
               if "kernel" in jax.tree_util.keystr(path)]
    loss = loss + 0.5 * l2 * sum(jnp.sum(k ** 2) for k in kernels)
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return loss, (model_state, {"accuracy": acc})

  return loss_fn


class StandinOptimizer:
  """SGD with momentum behind the TrainingOptimizer interface."""

  def __init__(self, opt_config: Any, *, loss_fn, total_steps: int):
    import jax  # pylint: disable=import-outside-toplevel
    import optax  # pylint: disable=import-outside-toplevel
    self.lr = float(opt_config.learning_rate)
    self.total_steps = total_steps
    self._tx = optax.sgd(self.lr, momentum=0.9)

    def step(params, model_state, opt_state, rng, batch, step):
      del step
      (loss, (model_state, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          params, model_state, rng, batch)
      updates, opt_state = self._tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      metrics = dict(loss=loss, grad_norm=optax.global_norm(grads),
                     learning_rate=jax.numpy.asarray(self.lr), **aux)
      return params, model_state, opt_state, metrics

    self._step = jax.jit(step, donate_argnums=(0, 2))

  def init(self, params, model_state, rng, batch):
    del model_state, rng, batch
    return self._tx.init(params)

  def step(self, params, model_state, opt_state, rng, batch, step):
    return self._step(params, model_state, opt_state, rng, batch, step)

  def describe(self) -> dict[str, Any]:
    return {"name": "standin_sgd", "learning_rate": self.lr}


def components():
  """The stand-ins as a `dksflax.train.Components` record."""
  from dksflax.train import Components  # pylint: disable=import-outside-toplevel
  return Components(get_dataset_info=get_dataset_info, make_train_iterator=make_train_iterator,
                    make_eval_iterator=make_eval_iterator, build_network=build_network,
                    make_loss=make_loss, create_optimizer=StandinOptimizer)


def small_config(**train_overrides: Any):
  """The default config shrunk for the stand-ins: batch 8, 10 steps, JSONL metrics."""
  from dksflax.configlib import default_config  # pylint: disable=import-outside-toplevel
  config = default_config()
  config.train.batch_size = 8
  config.train.eval_batch_size = 8
  config.train.steps = 10
  config.train.log_every = 1
  config.train.eval_every = 0
  config.train.checkpoint_every = 5
  config.train.metric_writer = "jsonl"
  config.train.progress_bar = False
  config.optimizer.learning_rate = 0.1
  for k, v in train_overrides.items():
    config.train[k] = v
  config.lock()
  return config


def _main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("workdir")
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--checkpoint-every", type=int, default=5)
  args = parser.parse_args(argv)
  import jax  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_disable_most_optimizations", True)
  from dksflax.train import train_and_evaluate  # pylint: disable=import-outside-toplevel
  config = small_config(steps=args.steps, checkpoint_every=args.checkpoint_every,
                        log_every=5)
  results = train_and_evaluate(config, args.workdir, components=components())
  print("DONE", results["status"], results["step"], flush=True)
  return 0


# ------------------------------------------------------------------ tests of the stand-ins


def test_standin_loss_matches_numpy_cross_entropy():
  import jax  # pylint: disable=import-outside-toplevel
  model, init_fn, _ = build_network(small_config(), num_classes=3, input_shape=IMAGE_SHAPE)
  batch = next(make_train_iterator(None, global_batch_size=8, seed=0))
  variables = init_fn(jax.random.PRNGKey(0), batch["image"])
  loss, _ = make_loss(model.apply, label_smoothing=0.0, l2=0.0)(
      variables["params"], {}, None, batch)
  logits = np.asarray(model.apply(variables, batch["image"])[0], np.float64)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = -np.mean(logp[np.arange(8), batch["label"]])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_standin_pipelines_are_deterministic_and_masked():
  a = make_train_iterator(None, global_batch_size=8, seed=3, start_step=0)
  batches = [next(a) for _ in range(35)]
  b = next(make_train_iterator(None, global_batch_size=8, seed=3, start_step=33))
  np.testing.assert_array_equal(batches[33]["image"], b["image"])
  evals = list(make_eval_iterator(None, global_batch_size=8))
  assert sum(int(e["mask"].sum()) for e in evals) == NUM_EVAL
  assert len(evals) == -(-NUM_EVAL // 8)


if __name__ == "__main__":
  sys.exit(_main(sys.argv[1:]))
