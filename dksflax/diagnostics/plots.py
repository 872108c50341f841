"""Plots a user would rather look at than read: measured vs predicted q/c, Jacobian spectra.

PNG files via matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from dksflax.diagnostics.empirical import QCMeasurement
from dksflax.diagnostics.predicted import QCPrediction


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _save(fig, path: str) -> str:
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  return path


def plot_qc(measured: QCMeasurement, path: str, *, predicted: QCPrediction | None = None,
            c_map: Callable[[np.ndarray], np.ndarray] | None = None,
            title: str = "") -> str:
  """Plots measured (markers with 2-standard-error bars) vs predicted (lines) q and c.

  Three panels: q per layer, c per layer (one colour per input correlation), and the
  C map c_in -> c_out of the last layer (measured points; ``c_map`` drawn as a curve,
  e.g. ``network_c_map(graph, r)`` or a prediction).

  Args:
    measured: output of ``empirical_qc``.
    path: PNG file to write (directories are created).
    predicted: output of ``predicted_qc`` for the same layer names, or None.
      (Default: None)
    c_map: the predicted network C map of the last layer, vectorised, or None.
      (Default: None)
    title: figure title. (Default: "")

  Returns:
    ``path``.
  """
  plt = _pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  idx = np.arange(len(measured.layer_names))
  pred_rows = None
  if predicted is not None:
    pred_rows = {n: i for i, n in enumerate(predicted.layer_names)}
  for j, cin in enumerate(measured.correlations):
    colour = f"C{j}"
    for ax, val, se in ((axes[0], measured.q, measured.q_se), (axes[1], measured.c,
                                                                measured.c_se)):
      ax.errorbar(idx, val[:, j], yerr=2 * se[:, j], fmt="o", ms=3, color=colour,
                  label=f"measured, c_in={cin:g}")
    if pred_rows is not None:
      rows = [pred_rows.get(n) for n in measured.layer_names]
      keep = [i for i, r in enumerate(rows) if r is not None]
      pj = predicted.correlations.index(cin) if cin in predicted.correlations else None
      if keep and pj is not None:
        sel = [rows[i] for i in keep]
        axes[0].plot(keep, predicted.q[sel, pj], "-", color=colour, alpha=0.7)
        axes[1].plot(keep, predicted.c[sel, pj], "-", color=colour, alpha=0.7,
                     label=f"predicted, c_in={cin:g}")
  for ax, label in ((axes[0], "q (mean squared activation)"), (axes[1], "c (correlation)")):
    ax.set_xticks(idx)
    ax.set_xticklabels(measured.layer_names, rotation=90, fontsize=7)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  axes[1].legend(fontsize=7)
  ax = axes[2]
  grid = np.linspace(0.0, 1.0, 101)
  ax.plot(grid, grid, ":", color="grey", label="identity")
  if c_map is not None:
    ax.plot(grid, np.asarray(c_map(grid)), "-", color="C3", label="predicted C map")
  ax.errorbar(measured.correlations, measured.c[-1], yerr=2 * measured.c_se[-1], fmt="o",
              color="k", label=f"measured ({measured.layer_names[-1]})")
  ax.set_xlabel("input correlation c_in")
  ax.set_ylabel("output correlation")
  ax.set_xlim(0, 1)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  if title:
    fig.suptitle(title)
  path = _save(fig, path)
  plt.close(fig)
  return path


def plot_singular_values(spectra: Mapping[str, np.ndarray], path: str, *,
                         bins: int = 40, title: str = "") -> str:
  """Overlaid histograms of Jacobian singular values (skip_connections_normalisation §6).

  Args:
    spectra: ``{label: singular values}``, e.g. ``{"chain": ..., "skip": ...}``.
    path: PNG file to write.
    bins: histogram bins over the common range. (Default: 40)
    title: figure title. (Default: "")

  Returns:
    ``path``.

  Raises:
    ValueError: when ``spectra`` is empty.
  """
  if not spectra:
    raise ValueError("plot_singular_values needs at least one spectrum")
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  values = np.concatenate([np.asarray(v, np.float64) for v in spectra.values()])
  lo, hi = float(values.min()), float(values.max())
  edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
  for label, sv in spectra.items():
    ax.hist(np.asarray(sv), bins=edges, alpha=0.5, label=f"{label} (median "
            f"{np.median(sv):.3g})")
  ax.set_xlabel("singular value")
  ax.set_ylabel("count")
  ax.legend()
  if title:
    ax.set_title(title)
  path = _save(fig, path)
  plt.close(fig)
  return path
