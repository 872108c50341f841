"""C-map plots (matplotlib, Agg canvas; no pyplot global state).

What a user would rather look at than read: the local C map of the (transformed)
activation, and the network's C map, before and after shaping. A well-shaped deep network
has a global C map that stays away from the constant 1 (DKS §12.4 degeneration: all inputs
look alike) and from the identity (a nearly linear network); TAT's Theorem 1 bounds its
distance to the identity by 4 C_f(0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Curve = tuple[Sequence[float], Sequence[float]]


def plot_c_maps(path: str, panels: Mapping[str, Mapping[str, Curve]], *,
                title: str = "") -> str:
  """Draws one panel per entry of `panels`, each with its named curves and the identity.

  Args:
    path: output PNG file.
    panels: panel title -> {curve label -> (c values, mapped c values)}.
    title: figure title. (Default: none)

  Returns:
    `path`.

  Raises:
    ValueError: no panels, or a curve whose x and y lengths differ.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  if not panels:
    raise ValueError("plot_c_maps needs at least one panel")
  fig = Figure(figsize=(5.0 * len(panels), 4.4), dpi=110)
  FigureCanvasAgg(fig)
  axes = fig.subplots(1, len(panels), squeeze=False)[0]
  for ax, (name, curves) in zip(axes, panels.items()):
    ax.plot([-1, 1], [-1, 1], color="0.7", lw=1, ls=":", label="identity")
    for label, (x, y) in curves.items():
      x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
      if x.shape != y.shape:
        raise ValueError(f"curve {label!r}: {x.shape} c values but {y.shape} outputs")
      ax.plot(x, y, lw=1.8, label=label)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("input c")
    ax.set_ylabel("output c")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
  if title:
    fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(path)
  return path


def plot_depth_profile(path: str, curves: Mapping[str, Curve], *, title: str = "") -> str:
  """C_f(0) (the output c of two orthogonal inputs) against depth, log depth axis.

  An unshaped deep network drives it to 1 (DKS §12.4); DKS keeps it at 0 and TAT at eta.

  Args:
    path: output PNG file.
    curves: label -> (depths, C_f(0) values).
    title: axes title. (Default: none)

  Returns:
    `path`.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(5.6, 4.2), dpi=110)
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  for label, (depths, values) in curves.items():
    ax.plot(depths, values, marker="o", ms=3, lw=1.6, label=label)
  ax.set_xscale("log")
  ax.set_xlabel("depth d (nonlinear layers)")
  ax.set_ylabel("C_f(0)")
  ax.set_ylim(-0.05, 1.05)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  if title:
    ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  return path
