"""Singular values of layer and block input-output Jacobians.

skip_connections_normalisation.txt §6.1 (Hypothesis 6.1): the singular value
distribution of a composite layer's Jacobian governs how fast gradient descent can make
progress, and a skip connection whose own singular values are all 1 shifts that
distribution upwards relative to the equivalent chain. RISOTTO (and dynamical isometry in
general) asks for all singular values to be 1 at initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np


def jacobian_matrix(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> np.ndarray:
  """The Jacobian of ``fn`` at ``x`` as an ``(output size, input size)`` float64 matrix.

  Forward mode is used when the input is the smaller side, reverse mode otherwise; the
  computation is jitted.

  Args:
    fn: a function of ONE example (no batch axis) to an array.
    x: the point, an array of any shape.

  Returns:
    The flattened Jacobian.
  """
  x = jax.numpy.asarray(x)
  out_size = int(np.prod(jax.eval_shape(fn, x).shape))
  jac_fn = jax.jacfwd(fn) if x.size <= out_size else jax.jacrev(fn)
  jac = np.asarray(jax.jit(jac_fn)(x), np.float64)
  return jac.reshape(out_size, x.size)


def jacobian_singular_values(fn: Callable[[jax.Array], jax.Array],
                             x: jax.Array) -> np.ndarray:
  """Singular values of ``fn``'s input-output Jacobian at ``x``, in decreasing order.

  Args:
    fn: a function of ONE example (no batch axis) to an array, e.g.
      ``lambda x: block.apply(variables, x[None])[0]``.
    x: the point.

  Returns:
    float64 array of ``min(output size, input size)`` singular values.

  Raises:
    ValueError: when the Jacobian has non-finite entries.
  """
  jac = jacobian_matrix(fn, x)
  if not np.all(np.isfinite(jac)):
    raise ValueError("the Jacobian has non-finite entries at this input")
  return np.linalg.svd(jac, compute_uv=False)
