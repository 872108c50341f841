"""Chebyshev tables of local C maps, for fast network maps over many c values.

A network C map applies the local C map once per nonlinear layer (DKS §6.2), i.e. 50-150
times for the networks of DKS §23, each over a grid of c values for a plot. The accurate
local maps of `dksflax.shaping.maps` cost a two-dimensional quadrature per c value, so a
grid through a deep network would take minutes. A C map is a positive definite function
on [-1, 1] (DKS §11.2): a convergent power series with non-negative coefficients, smooth
inside the interval and at worst a (1 - c^2)^(3/2)-type kink at the ends for rectifiers.
A Chebyshev interpolant of modest degree, built from one vectorised call at its nodes, is
therefore accurate to ~1e-5 for rectifiers and to near machine precision for smooth
activations (`DEFAULT_DEGREE` = 32), and costs microseconds per evaluation.

Use these tables for plots and tables of whole C maps; scalar quantities that solvers
target (C(0), slopes) should come from the exact maps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev

DEFAULT_DEGREE = 32


def chebyshev_c_map(c_map: Callable[[np.ndarray], Any], degree: int = DEFAULT_DEGREE
                    ) -> Callable[[Any], Any]:
  """Interpolates a C map on [-1, 1] at Chebyshev points (one vectorised call).

  Args:
    c_map: a numpy-vectorised function of c in [-1, 1].
    degree: polynomial degree (degree + 1 evaluations of `c_map`). (Default: 32)

  Returns:
    c -> interpolated C(c), vectorised, clipped to [-1, 1].

  Raises:
    ValueError: degree < 2, or `c_map` returns non-finite values.
  """
  if degree < 2:
    raise ValueError(f"degree={degree!r} must be >= 2")
  nodes = np.cos(np.pi * np.arange(degree + 1) / degree)  # Chebyshev points, incl. +-1
  values = np.asarray(c_map(nodes), dtype=np.float64)
  if values.shape != nodes.shape or not np.all(np.isfinite(values)):
    raise ValueError("the C map returned non-finite values or the wrong shape at the "
                     "Chebyshev nodes")
  poly = chebyshev.Chebyshev.fit(nodes, values, degree, domain=[-1.0, 1.0])

  def table(c: Any) -> Any:
    return np.clip(poly(np.asarray(c, dtype=np.float64)), -1.0, 1.0)

  return table


def tabulated_local_c_map(activation: Any, q: float = 1.0, degree: int = DEFAULT_DEGREE
                          ) -> Callable[[Any], Any]:
  """The local C map C(c; q, q) of an activation as a Chebyshev table (DKS Eq. 7).

  Args:
    activation: name, Activation or TransformedActivation (see dksflax.shaping.maps).
    q: the input q value of both inputs. (Default: 1.0)
    degree: interpolation degree. (Default: 32)

  Returns:
    c -> C(c; q, q), vectorised.
  """
  from dksflax.shaping import maps  # pylint: disable=g-import-not-at-top
  return chebyshev_c_map(lambda c: maps.local_c_map(activation, c, q, q), degree)


def fixed_point_layer_map(activation: Any, q_star: float, degree: int = DEFAULT_DEGREE, *,
                          c_map: Callable[[Any], Any] | None = None
                          ) -> Callable[[Any, Any, Any], tuple[Any, Any, Any]]:
  """A nonlinear layer map for `kernel_graph.network_qc_map`, fast at q1 = q2 = q_star.

  Networks initialised at a fixed point of their Q map (the edge of chaos, He-initialised
  ReLU) feed every nonlinear layer q = q*, so one table of C(c; q*, q*) serves them all;
  any other q falls back to the exact maps.

  Args:
    activation: the (raw) activation.
    q_star: the pre-activation q value of the fixed point.
    degree: interpolation degree. (Default: 32)
    c_map: C(c; q*, q*) if known in closed form (e.g. a leaky ReLU); replaces the table.
      (Default: None)

  Returns:
    (q1, q2, c) -> (Q(q1), Q(q2), C(c; q1, q2)).
  """
  from dksflax.shaping import maps  # pylint: disable=g-import-not-at-top
  table = c_map or tabulated_local_c_map(activation, q_star, degree)
  q_out = float(maps.local_q_map(activation, q_star))

  def layer_map(q1: Any, q2: Any, c: Any) -> tuple[Any, Any, Any]:
    q1f, q2f = float(q1), float(q2)
    if abs(q1f - q_star) <= 1e-9 * q_star and abs(q2f - q_star) <= 1e-9 * q_star:
      return q_out, q_out, table(c)
    return maps.nonlinear_qc_map(activation, q1f, q2f, c)

  return layer_map
