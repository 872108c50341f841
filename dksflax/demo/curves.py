"""Training curves of the demo runs: read from each run's ``metrics.jsonl``, plot as PNG.

The trainer writes every scalar both to TensorBoard and to ``metrics.jsonl`` in the run
directory (`dksflax.train.metric_io`); the JSONL record needs no TensorFlow to read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence

METRICS_FILE = "metrics.jsonl"


def read_curve(workdir: str, key: str = "train/loss") -> tuple[list[int], list[float]]:
  """Returns (steps, values) of one scalar from a run directory's ``metrics.jsonl``.

  Non-finite values (written as strings by the trainer) become NaN; a resumed run's
  repeated steps keep their last value.

  Args:
    workdir: the run directory.
    key: the scalar's name. (Default: "train/loss")

  Returns:
    Steps in increasing order and their values; empty lists when there is no file.
  """
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.isfile(path):
    return [], []
  points: dict[int, float] = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip():
        continue
      rec = json.loads(line)
      if rec.get("kind") == "scalars" and key in rec.get("values", {}):
        try:
          points[int(rec["step"])] = float(rec["values"][key])
        except (TypeError, ValueError):
          points[int(rec["step"])] = math.nan
  steps = sorted(points)
  return steps, [points[s] for s in steps]


def plot_curves(path: str, curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *,
                title: str, ylabel: str = "train loss (cross-entropy)") -> None:
  """Writes a PNG of one line per label (log-scale y), e.g. loss vs step per method.

  Args:
    path: the PNG file to write.
    curves: ``{label: (steps, values)}``.
    title: the figure title.
    ylabel: the y-axis label. (Default: "train loss (cross-entropy)")
  """
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(7.5, 4.5))
  for label, (steps, values) in curves.items():
    finite = [(s, v) for s, v in zip(steps, values) if math.isfinite(v) and v > 0]
    if finite:
      ax.plot(*zip(*finite), label=label, lw=1.6)
  ax.axhline(math.log(10.0), color="grey", ls=":", lw=1, label="chance (ln 10)")
  ax.set_yscale("log")
  ax.set_xlabel("training step")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
