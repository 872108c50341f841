"""Diagnostics: measured vs predicted Q/C maps, Jacobian singular values, plots.

  empirical_qc      measured per-layer q and c of a real network at init (empirical.py)
  predicted_qc      the kernel-graph prediction for the same layers (predicted.py)
  jacobian_singular_values   layer/block Jacobian spectra (jacobian.py)
  plot_qc, plot_singular_values   PNG plots (plots.py; matplotlib imported lazily)

Imports JAX (empirical, jacobian) and numpy/scipy shaping maths; never TensorFlow.
"""

from __future__ import annotations

from dksflax.diagnostics.empirical import (QCMeasurement, correlated_pairs, empirical_qc,
                                           pair_statistics)
from dksflax.diagnostics.jacobian import jacobian_matrix, jacobian_singular_values
from dksflax.diagnostics.plots import plot_qc, plot_singular_values
from dksflax.diagnostics.predicted import QCPrediction, layer_graphs, predicted_qc

__all__ = [
    "QCMeasurement", "QCPrediction", "correlated_pairs", "empirical_qc",
    "jacobian_matrix", "jacobian_singular_values", "layer_graphs", "pair_statistics",
    "plot_qc", "plot_singular_values", "predicted_qc",
]
