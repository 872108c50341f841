"""Measured q and c values of a real network at initialisation (DKS §5-§7, §10.2).

Pairs of inputs with a chosen correlation ``c`` are pushed through the network; for each
named intermediate the *dimension-normalised squared norm* ``q = ||a||^2 / n`` and the
cosine similarity ``c = <a1, a2> / (||a1|| ||a2||)`` are measured and averaged over the
pairs, with standard errors. These are the quantities whose large-width limits are the
network's Q and C maps (the APKF of DKS §5 converging to the PKF), so they can be
compared with the kernel-graph prediction (``dksflax.diagnostics.predicted``).

Inputs are per-location normalised (DKS §10.2): at every spatial location the channel
vector of each input has ``q = 1`` exactly and the two inputs of a pair have cosine
similarity exactly ``c``, so the input kernel is uniform over locations, as the Q/C map
analysis assumes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_log = logging.getLogger(__name__)

ApplyFn = Callable[[Any, jax.Array], Any]


@dataclasses.dataclass(frozen=True)
class QCMeasurement:
  """Per-layer q and c values for several input correlations.

  Attributes:
    layer_names: the named intermediates, in network order.
    correlations: the input correlations c_in.
    q: array (layers, correlations): mean q (both inputs of every pair).
    q_se: standard errors of ``q`` over pairs.
    c: array (layers, correlations): mean output cosine similarity.
    c_se: standard errors of ``c`` over pairs.
    num_pairs: pairs per correlation.
  """

  layer_names: tuple[str, ...]
  correlations: tuple[float, ...]
  q: np.ndarray
  q_se: np.ndarray
  c: np.ndarray
  c_se: np.ndarray
  num_pairs: int

  def to_dict(self) -> dict[str, Any]:
    """Returns a JSON-able dict ``{layer: {c_in: {q, q_se, c, c_se}}}``."""
    return {name: {f"{cin:g}": dict(q=float(self.q[i, j]), q_se=float(self.q_se[i, j]),
                                    c=float(self.c[i, j]), c_se=float(self.c_se[i, j]))
                   for j, cin in enumerate(self.correlations)}
            for i, name in enumerate(self.layer_names)}


def _check_correlations(correlations: Sequence[float]) -> tuple[float, ...]:
  out = tuple(float(c) for c in correlations)
  if not out or any(not -1.0 <= c <= 1.0 for c in out):
    raise ValueError(f"correlations={correlations!r} must be a non-empty list of values in "
                     "[-1, 1] (cosine similarities of the input pairs)")
  return out


def correlated_pairs(rng: np.random.Generator, input_shape: Sequence[int], correlation: float,
                     num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
  """Samples input pairs with q = 1 and cosine similarity ``correlation`` per location.

  The last axis is the channel axis; every other axis indexes locations (with a single
  channel, the whole example is one location). At each location
  ``x1 = sqrt(k) u`` and ``x2 = sqrt(k) (c u + sqrt(1 - c^2) v)`` with ``u``, ``v``
  orthonormal random directions, so ``||x||^2 / k = 1`` and ``<x1, x2> / k = c`` exactly
  (per-location normalisation, DKS §10.2).

  Args:
    rng: numpy random generator.
    input_shape: shape of one example, e.g. ``(d,)`` or ``(H, W, C)``.
    correlation: the cosine similarity c in [-1, 1].
    num_pairs: number of pairs.

  Returns:
    ``(x1, x2)``, float32 arrays of shape ``(num_pairs, *input_shape)``.

  Raises:
    ValueError: for a bad shape, correlation or pair count.
  """
  shape = tuple(int(s) for s in input_shape)
  if not shape or min(shape) < 1 or int(np.prod(shape)) < 2:
    raise ValueError(f"input_shape={shape} must have positive sizes and >= 2 elements")
  if num_pairs < 2:
    raise ValueError(f"num_pairs={num_pairs} must be >= 2 to estimate a standard error")
  (c,) = _check_correlations([correlation])
  # One location per channel vector; a single-channel input is one location in all.
  work = shape if shape[-1] >= 2 else (int(np.prod(shape)),)
  k = work[-1]
  g = rng.standard_normal((2, num_pairs) + work)
  u = g[0] / np.linalg.norm(g[0], axis=-1, keepdims=True)
  v = g[1] - np.sum(g[1] * u, axis=-1, keepdims=True) * u
  v /= np.linalg.norm(v, axis=-1, keepdims=True)
  x1 = (math.sqrt(k) * u).reshape((num_pairs,) + shape)
  x2 = (math.sqrt(k) * (c * u + math.sqrt(max(0.0, 1.0 - c * c)) * v)).reshape(
      (num_pairs,) + shape)
  return x1.astype(np.float32), x2.astype(np.float32)


def pair_statistics(a1: np.ndarray, a2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-pair q (mean of both inputs) and cosine similarity of two activation batches.

  Args:
    a1: activations of the first inputs, shape (pairs, ...).
    a2: activations of the second inputs, same shape.

  Returns:
    ``(q, c)``, float64 arrays of shape (pairs,).
  """
  a1 = np.asarray(a1, np.float64).reshape(a1.shape[0], -1)
  a2 = np.asarray(a2, np.float64).reshape(a2.shape[0], -1)
  s11, s22 = np.sum(a1 * a1, axis=1), np.sum(a2 * a2, axis=1)
  q = 0.5 * (s11 + s22) / a1.shape[1]
  with np.errstate(invalid="ignore", divide="ignore"):
    c = np.sum(a1 * a2, axis=1) / np.sqrt(s11 * s22)
  return q, c


def _outputs(result: Any) -> Mapping[str, Any]:
  """Named intermediates from ``apply_fn``'s result: ``(logits, out)`` or a mapping."""
  if isinstance(result, Mapping):
    return result
  if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping):
    return dict(result[1], logits=result[0])
  raise ValueError("apply_fn must return a mapping of named intermediates or (logits, out) "
                   f"with out such a mapping (big_vision style); got {type(result).__name__}")


def empirical_qc(apply_fn: ApplyFn, variables: Any, *, input_shape: Sequence[int],
                 correlations: Sequence[float] = (0.0, 0.5, 0.9), num_pairs: int = 16,
                 rng: int | np.random.Generator = 0,
                 layer_names: Sequence[str] | None = None) -> QCMeasurement:
  """Measures per-layer q and c of a network at initialisation.

  Args:
    apply_fn: ``apply_fn(variables, x)`` returning ``(logits, out)`` (``out`` a dict of
      named intermediates, as ``dksflax.models`` modules return with ``train=False``) or a
      dict. It is jitted here.
    variables: the model's variables.
    input_shape: shape of one example (no batch axis); the last axis is channels.
    correlations: input cosine similarities. (Default: (0.0, 0.5, 0.9))
    num_pairs: input pairs per correlation (>= 2). (Default: 16)
    rng: seed or numpy generator for the inputs. (Default: 0)
    layer_names: intermediates to report, in order; all of them (plus "logits") when
      None. (Default: None)

  Returns:
    A ``QCMeasurement``.

  Raises:
    ValueError: for bad arguments, an unknown layer name (listing the known ones), or a
      non-finite activation (a NaN is reported, never averaged).
  """
  corrs = _check_correlations(correlations)
  gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
  order: list[str] = []

  def traced(v: Any, x: jax.Array) -> Mapping[str, Any]:
    outs = _outputs(apply_fn(v, x))
    if not order:  # jit returns dicts with sorted keys: keep the model's own order.
      order.extend(outs)
    return outs

  run = jax.jit(traced)
  names: tuple[str, ...] | None = None
  shape = (len(corrs),)
  stats: dict[str, list[np.ndarray]] = {}
  for j, cin in enumerate(corrs):
    x1, x2 = correlated_pairs(gen, input_shape, cin, num_pairs)
    outs = run(variables, jnp.asarray(np.concatenate([x1, x2])))
    if names is None:
      available = tuple(order)
      names = available if layer_names is None else tuple(layer_names)
      unknown = [n for n in names if n not in outs]
      if unknown:
        raise ValueError(f"layer_names {unknown} are not intermediates of the model; it "
                         "returns: " + ", ".join(available))
      stats = {n: [np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)]
               for n in names}
    for name in names:
      a = np.asarray(outs[name], np.float64)
      if not np.all(np.isfinite(a)):
        raise ValueError(f"intermediate {name!r} has non-finite values at init for input "
                         f"correlation {cin:g}")
      q, c = pair_statistics(a[:num_pairs], a[num_pairs:])
      s = stats[name]
      s[0][j], s[1][j] = q.mean(), q.std(ddof=1) / math.sqrt(num_pairs)
      s[2][j], s[3][j] = c.mean(), c.std(ddof=1) / math.sqrt(num_pairs)
    _log.info("empirical_qc: input correlation %g done (%d/%d)", cin, j + 1, len(corrs))
  layers = tuple(stats)
  q, q_se, c, c_se = (np.stack([stats[n][i] for n in layers]) for i in range(4))
  return QCMeasurement(layers, corrs, q, q_se, c, c_se, int(num_pairs))
