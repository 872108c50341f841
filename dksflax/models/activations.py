"""JAX twins of the NumPy activation registry (``dksflax.shaping.activations``).

Every name registered in the shaping layer has a ``jax.numpy`` implementation here under
the same name (a test checks both registries agree to float32 precision). The transformed
activation ``gamma * (phi(alpha * x + beta) + delta)`` of DKS §18.1 / TAT §4 is built by
:func:`transformed_activation` from a
:class:`~dksflax.shaping.activations.TransformedActivation`, a
:class:`~dksflax.shaping.dks.DKSParams` or a :class:`~dksflax.shaping.tat.TATLReLUParams`.
Its constants are Python floats, so the output keeps the input dtype (bfloat16 in,
bfloat16 out), the bug fixed in dks d354aaa.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError
from dksflax.shaping import activations as np_activations
from dksflax.shaping.activations import TransformedActivation

JaxFn = Callable[[jax.Array], jax.Array]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _leaky_relu(negative_slope: float = 0.01) -> JaxFn:
  s = float(negative_slope)
  return lambda x: jnp.where(x > 0, x, s * x)


def _elu(alpha: float = 1.0) -> JaxFn:
  a = float(alpha)
  return lambda x: jnp.where(x > 0, x, a * jnp.expm1(jnp.minimum(x, 0)))


def _selu() -> JaxFn:
  a, l = np_activations.SELU_ALPHA, np_activations.SELU_SCALE
  return lambda x: l * jnp.where(x > 0, x, a * jnp.expm1(jnp.minimum(x, 0)))


def _gelu_tanh(x: jax.Array) -> jax.Array:
  k, c = _SQRT_2_OVER_PI, np_activations.GELU_TANH_COEF
  return 0.5 * x * (1.0 + jnp.tanh(k * (x + c * x**3)))


#: name -> builder(**params) -> JAX function; the same names as the NumPy registry.
_REGISTRY: dict[str, Callable[..., JaxFn]] = {
    "identity": lambda: lambda x: x,
    "relu": lambda: jax.nn.relu,
    "leaky_relu": _leaky_relu,
    "tanh": lambda: jnp.tanh,
    "softplus": lambda: jax.nn.softplus,
    "sigmoid": lambda: jax.nn.sigmoid,
    "swish": lambda: jax.nn.swish,
    "silu": lambda: jax.nn.silu,
    "gelu": lambda: _gelu_tanh,
    "gelu_exact": lambda: lambda x: jax.nn.gelu(x, approximate=False),
    "elu": _elu,
    "selu": _selu,
    "erf": lambda: jax.scipy.special.erf,
    "sin": lambda: jnp.sin,
    "atan": lambda: jnp.arctan,
    "asinh": lambda: jnp.arcsinh,
    "softsign": lambda: lambda x: x / (1 + jnp.abs(x)),
    "bentid": lambda: lambda x: 0.5 * (jnp.sqrt(x * x + 1) - 1) + x,
    "square": lambda: jnp.square,
}


def activation_names() -> tuple[str, ...]:
  """The registered JAX activation names, sorted."""
  return tuple(sorted(_REGISTRY))


def get_jax_activation(name: str, **params: float) -> JaxFn:
  """The JAX activation registered under ``name``.

  Args:
    name: str. A registered name (the same as in ``dksflax.shaping.activations``).
    **params: the activation's parameters (``negative_slope`` for leaky_relu, ``alpha``
      for elu), validated by the NumPy registry.

  Returns:
    A function ``jax.Array -> jax.Array``.

  Raises:
    ConfigError: unknown name or parameter (the message lists what is accepted).
  """
  np_activations.get_activation(name, **params)   # validates name and parameters
  if name not in _REGISTRY:
    raise ConfigError(f"activation {name!r} has no JAX implementation; known: "
                      f"{', '.join(activation_names())}")
  return _REGISTRY[name](**params)


def _as_transformed(params: Any) -> TransformedActivation:
  if isinstance(params, TransformedActivation):
    return params
  if hasattr(params, "transformed"):
    return params.transformed()
  raise ConfigError(
      f"expected a TransformedActivation, DKSParams or TATLReLUParams, got "
      f"{type(params).__name__}: {params!r}")


def transformed_activation(params: Any) -> JaxFn:
  """``x -> gamma * (phi(alpha * x + beta) + delta)`` in JAX (DKS §18.1).

  Args:
    params: a TransformedActivation, DKSParams (``solve_dks`` / ``solve_tat_smooth``) or
      TATLReLUParams (``solve_tat_lrelu``: ``output_scale * leaky_relu(x, s)``).

  Returns:
    A JAX function that returns the dtype of its input (the constants are Python floats,
    which JAX treats as weakly typed).

  Raises:
    ConfigError: an unsupported ``params`` object or activation.
  """
  t = _as_transformed(params)
  phi = get_jax_activation(t.base, **dict(t.base_params))
  a, b, g, d = float(t.alpha), float(t.beta), float(t.gamma), float(t.delta)
  if (a, b, g, d) == (1.0, 0.0, 1.0, 0.0):
    return phi

  def fn(x: jax.Array) -> jax.Array:
    return g * (phi(a * x + b) + d)

  return fn
