"""kfac-jax graph patterns for Flax layers that compute in a lower precision.

A Flax ``nn.Dense`` / ``nn.Conv`` with ``dtype=bfloat16, param_dtype=float32``
casts its float32 kernel and bias to bfloat16 (``convert_element_type``) before
the ``dot_general`` / ``conv_general_dilated``. kfac-jax's default patterns
expect the parameter to feed the contraction directly, so such a layer is not
matched and silently gets a diagonal ``Auto[generic]`` block (kfac-jax#114,
#270, #344). The patterns here add the casts, so the layer is registered as the
usual Kronecker-factored dense / conv2d block (K-FAC, Martens & Grosse 2015
§3; Grosse & Martens 2016 for convolutions) on its float32 parameters, with the
activations and output tangents in the compute dtype.

They are tried after kfac-jax's defaults (which match float32 layers). kfac-jax is
loaded (through :func:`dksflax.compat.kfac_jax_compat.load_kfac_jax`) when the
patterns are built, not when this module is imported.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import types
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from dksflax.compat import kfac_jax_compat

#: ``kfac_jax._src.tag_graph_matcher.GraphPattern`` (kfac-jax is imported lazily).
GraphPattern = Any

# Compute dtypes for which cast patterns are built.
CAST_DTYPES = (jnp.bfloat16, jnp.float16)
_NUMPY_DTYPES = {jnp.bfloat16: ml_dtypes.bfloat16, jnp.float16: np.float16}


def _cast_dense(x: jax.Array, params: Sequence[jax.Array],
                dtype: jnp.dtype) -> jax.Array:
  """Flax ``nn.Dense`` with ``dtype`` compute and float32 parameters."""
  w = params[0].astype(dtype)
  y = jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))
  if len(params) == 1:
    return y
  b = params[1].astype(dtype)
  return y + jnp.reshape(b, (1,) * (y.ndim - 1) + b.shape)


def _cast_conv2d(x: jax.Array, params: Sequence[jax.Array],
                 dtype: jnp.dtype) -> jax.Array:
  """Flax ``nn.Conv`` (2-D, NHWC/HWIO) with ``dtype`` compute."""
  w = params[0].astype(dtype)
  y = jax.lax.conv_general_dilated(
      x, w, window_strides=(2, 2), padding="SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if len(params) == 1:
    return y
  b = params[1].astype(dtype)
  return y + jnp.reshape(b, (1,) * (y.ndim - 1) + b.shape)


def _kfac_internals() -> tuple[types.ModuleType, types.ModuleType]:
  """Returns kfac-jax's ``layers_and_loss_tags`` and ``tag_graph_matcher`` modules."""
  kfac_jax_compat.load_kfac_jax()
  return (importlib.import_module("kfac_jax._src.layers_and_loss_tags"),
          importlib.import_module("kfac_jax._src.tag_graph_matcher"))


def _dense_pattern(dtype: jnp.dtype, with_bias: bool,
                   num_repeated_axes: int) -> GraphPattern:
  tags, tgm = _kfac_internals()
  np_dtype = _NUMPY_DTYPES[dtype]
  x_shape = (2,) + (7,) * num_repeated_axes + (3,)
  p_shapes = [(3, 5), (5,)] if with_bias else [(3, 5)]
  variant = "repeated_dense" if num_repeated_axes else "dense"
  name = (f"cast_{jnp.dtype(dtype).name}_{variant}[{num_repeated_axes}]_"
          + ("with_bias" if with_bias else "no_bias"))
  return tgm.GraphPattern(
      name=name,
      tag_primitive=tags.layer_tag,
      compute_func=functools.partial(_cast_dense, dtype=dtype),
      parameters_extractor_func=functools.partial(
          tgm._dense_parameter_extractor, variant=variant),  # pylint: disable=protected-access
      example_args=[np.zeros(x_shape, np_dtype),
                    [np.zeros(s, np.float32) for s in p_shapes]],
  )


def _conv2d_pattern(dtype: jnp.dtype, with_bias: bool) -> GraphPattern:
  tags, tgm = _kfac_internals()
  np_dtype = _NUMPY_DTYPES[dtype]
  p_shapes = [(3, 3, 5, 4), (4,)] if with_bias else [(3, 3, 5, 4)]
  name = (f"cast_{jnp.dtype(dtype).name}_conv2d_"
          + ("with_bias" if with_bias else "no_bias"))
  return tgm.GraphPattern(
      name=name,
      tag_primitive=tags.layer_tag,
      compute_func=functools.partial(_cast_conv2d, dtype=dtype),
      parameters_extractor_func=tgm._conv2d_parameter_extractor,  # pylint: disable=protected-access
      example_args=[np.zeros((2, 8, 8, 5), np_dtype),
                    [np.zeros(s, np.float32) for s in p_shapes]],
  )


def mixed_precision_patterns() -> tuple[GraphPattern, ...]:
  """Returns the cast dense/conv2d patterns for every dtype in CAST_DTYPES."""
  patterns = []
  for dtype, with_bias in itertools.product(CAST_DTYPES, (True, False)):
    patterns.append(_conv2d_pattern(dtype, with_bias))
    patterns.extend(_dense_pattern(dtype, with_bias, r) for r in range(3))
  return tuple(patterns)


def all_patterns() -> tuple[GraphPattern, ...]:
  """kfac-jax's default patterns followed by the mixed-precision ones."""
  _, tgm = _kfac_internals()
  return tuple(tgm.DEFAULT_GRAPH_PATTERNS) + mixed_precision_patterns()
