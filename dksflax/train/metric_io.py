"""Metric writers: clu's TensorBoard writer plus a JSONL record, or JSONL alone without TF.

``clu.metric_writers`` imports TensorFlow (its TensorBoard writer is TF summaries), and
the GPU machines have no TensorFlow. ``train.metric_writer`` therefore picks:
``tensorboard`` (clu, TF required), ``jsonl`` (``metrics.jsonl`` only, no TF import) or
``auto`` (TensorBoard when TensorFlow imports, else JSONL). A JSONL record is always
written next to the event files: one line per write, readable without TensorFlow.
Only process 0 writes; other processes get a writer that drops everything.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from dksflax.errors import ConfigError

METRICS_FILE = "metrics.jsonl"


class Writer(Protocol):
  """The subset of ``clu.metric_writers.MetricWriter`` the trainer uses."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None: ...

  def flush(self) -> None: ...

  def close(self) -> None: ...


class JsonlWriter:
  """Appends ``{"step", "kind", "values"}`` lines to ``<workdir>/metrics.jsonl``.

  Args:
    path: str. The JSONL file (appended to, so a resumed run continues the record).
  """

  def __init__(self, path: str):
    self.path = path
    self._file = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def _write(self, step: int, kind: str, values: Mapping[str, Any]) -> None:
    clean = {k: (_finite_or_str(v) if kind == "scalars" else str(v)) for k, v in values.items()}
    self._file.write(json.dumps({"step": int(step), "kind": kind, "values": clean}) + "\n")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    self._write(step, "scalars", scalars)

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
    self._write(step, "texts", texts)

  def flush(self) -> None:
    self._file.flush()

  def close(self) -> None:
    if not self._file.closed:
      self._file.close()


def _finite_or_str(v: Any) -> float | str:
  x = float(v)
  return x if math.isfinite(x) else str(x)


class FanOutWriter:
  """Sends every write to each of ``writers`` (an empty list drops everything)."""

  def __init__(self, writers: Sequence[Writer]):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for w in self.writers:
      w.write_scalars(step, {k: float(v) for k, v in scalars.items()})

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
    for w in self.writers:
      w.write_texts(step, texts)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


def create_writer(workdir: str, kind: str, *, is_main_process: bool) -> FanOutWriter:
  """Returns the writer for ``train.metric_writer = kind``.

  Args:
    workdir: str. Run directory; TensorBoard event files and ``metrics.jsonl`` go there.
    kind: str. ``auto``, ``tensorboard`` or ``jsonl`` (see the module docstring).
    is_main_process: bool. Only process 0 writes.

  Returns:
    A FanOutWriter.

  Raises:
    ConfigError: for ``tensorboard`` when TensorFlow (needed by clu's writer) is missing.
  """
  if not is_main_process:
    return FanOutWriter([])
  writers: list[Writer] = [JsonlWriter(os.path.join(workdir, METRICS_FILE))]
  if kind in ("auto", "tensorboard"):
    try:
      from clu import metric_writers  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      if kind == "tensorboard":
        raise ConfigError(
            f"train.metric_writer='tensorboard' needs TensorFlow for clu's writer ({e}); "
            "install tensorflow or use train.metric_writer='jsonl'") from None
      logging.info("TensorFlow unavailable (%s): metrics go to %s only", e, METRICS_FILE)
    else:
      writers.insert(0, metric_writers.SummaryWriter(workdir))
  return FanOutWriter(writers)


def read_jsonl(path: str) -> list[dict[str, Any]]:
  """Returns the records of a ``metrics.jsonl`` file, in order."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]
