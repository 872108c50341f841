"""Two real JAX processes (gloo CPU collectives): shards, global batches, exact eval."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dksflax.configlib import data as data_cfg
from dksflax.data import array_pipeline, augment_np
from dksflax.data.arrays import synthetic_split
from dksflax.data.stream import StreamLayout

_WORKER = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid)
    from dksflax.configlib import data as d
    from dksflax.data import make_eval_iterator, make_train_iterator
    c = d.defaults(); c.name = "synthetic"; c.synthetic_shape = (4, 4, 3)
    c.synthetic_classes = 5; c.synthetic_examples = 40; c.synthetic_eval_examples = 1001
    sharding = NamedSharding(Mesh(np.array(jax.devices()), ("data",)), PartitionSpec("data"))
    w = np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32)
    @jax.jit
    def counts(b):
      logits = b["image"].reshape(b["image"].shape[0], -1) @ w
      return (jnp.sum((jnp.argmax(logits, -1) == b["label"]) & b["mask"]),
              jnp.sum(b["mask"]))
    correct = seen = 0
    for b in make_eval_iterator(c, global_batch_size=64, sharding=sharding):
      a, n = counts(b)
      correct, seen = correct + int(a), seen + int(n)
    labels = []
    it = make_train_iterator(c, global_batch_size=8, seed=2, start_step=3, sharding=sharding)
    for _ in range(2):
      labels.append(multihost_utils.process_allgather(next(it)["label"], tiled=True).tolist())
    json.dump({"correct": correct, "seen": seen, "labels": labels}, open(out, "w"))
""")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_count_every_eval_example_once_and_build_global_batches(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text(_WORKER)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             JAX_PLATFORMS="cpu")
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, str(script), str(port), str(p),
                             str(tmp_path / f"out{p}.json")], env=env)
           for p in range(2)]
  for proc in procs:
    assert proc.wait(timeout=300) == 0
  outs = [json.loads((tmp_path / f"out{p}.json").read_text()) for p in range(2)]
  c = data_cfg.defaults()
  c.name, c.synthetic_shape, c.synthetic_classes = "synthetic", (4, 4, 3), 5
  c.synthetic_examples, c.synthetic_eval_examples = 40, 1001
  split = synthetic_split(c, False, 0, 1)
  x = augment_np.normalize(split.images, split.scale, split.mean, split.std)
  w = np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32)
  ref = int(np.sum(np.argmax(x.reshape(1001, -1) @ w, -1) == split.labels))
  for out in outs:
    assert out["seen"] == 1001
    assert out["correct"] == ref
  # The global batch is process 0's local batch followed by process 1's, each drawn from
  # that process's own shard (disjoint halves of the split).
  local = [array_pipeline.train_batches(synthetic_split(c, True, p, 2),
                                        StreamLayout(40, 8, p, 2), seed=2, start_step=3,
                                        augment=True, pln="none") for p in range(2)]
  for step in range(2):
    want = np.concatenate([next(local[p])["label"] for p in range(2)])
    assert outs[0]["labels"][step] == want.tolist() == outs[1]["labels"][step]
