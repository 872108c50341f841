"""Initialisers by name, and edge-of-chaos scaled initialisers.

``get_initializer(name, **kwargs)`` is the one name-to-builder lookup (config key
``shaping.weight_init``); an unknown name or keyword raises ``ConfigError`` listing what
is accepted.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from dksflax.errors import ConfigError
from dksflax.init import initializers as inits

#: name -> factory returning an ``init(key, shape, dtype)`` function.
INITIALIZERS: dict[str, Callable[..., inits.Initializer]] = {
    "fan_in_gaussian": inits.fan_in_gaussian,
    "orthogonal": inits.orthogonal,
    "delta": inits.delta,
    "orthogonal_delta": inits.orthogonal_delta,
    "looks_linear": inits.looks_linear,
    "zeros": inits.zeros,
    "gaussian_bias": inits.gaussian_bias,
}

#: names whose factory takes the variance multiplier ``scale`` (DKS §4 sigma_w^2).
WEIGHT_INITIALIZERS = ("fan_in_gaussian", "orthogonal", "delta", "orthogonal_delta",
                       "looks_linear")


def initializer_names() -> tuple[str, ...]:
  """Returns the registered initialiser names, sorted."""
  return tuple(sorted(INITIALIZERS))


def get_initializer(name: str, **kwargs: Any) -> inits.Initializer:
  """Builds a registered initialiser.

  Args:
    name: one of ``initializer_names()``.
    **kwargs: keyword arguments of that factory (e.g. ``scale=2.0``).

  Returns:
    An initialiser ``init(key, shape, dtype=jnp.float32)``.

  Raises:
    ConfigError: for an unknown name (listing the names) or a keyword the factory does
      not take (listing the ones it takes).
  """
  if name not in INITIALIZERS:
    raise ConfigError(f"initialiser {name!r} is unknown; choose one of: "
                      + ", ".join(repr(n) for n in initializer_names()))
  factory = INITIALIZERS[name]
  accepted = tuple(inspect.signature(factory).parameters)
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise ConfigError(
        f"initialiser {name!r} does not take {', '.join(unknown)}; it accepts: "
        + (", ".join(accepted) if accepted else "no arguments"))
  return factory(**kwargs)


@dataclasses.dataclass(frozen=True)
class EOCInitializers:
  """Kernel and bias initialisers on the edge of chaos.

  Attributes:
    kernel_init: weight initialiser with variance multiplier ``weight_var``.
    bias_init: bias initialiser with variance ``bias_var``.
    weight_var: sigma_w^2 from the EOC solver.
    bias_var: sigma_b^2 from the EOC solver.
    weight_init: name of the weight distribution.
  """

  kernel_init: inits.Initializer
  bias_init: inits.Initializer
  weight_var: float
  bias_var: float
  weight_init: str


def eoc_initializers(activation: Any, *, q_star: float = 1.0,
                     weight_init: str = "orthogonal_delta") -> EOCInitializers:
  """Edge-of-chaos initialisers (Poole et al. 2016; Schoenholz et al. 2017; DKS §25.4).

  Calls ``dksflax.shaping.eoc.eoc(activation, q_star=q_star)`` for the weight and bias
  variances (sigma_w^2, sigma_b^2) at which the local C map has slope 1 at c = 1 with the
  fixed point q*; the kernel initialiser uses ``weight_var`` as its variance multiplier
  (variance sigma_w^2 / fan_in) and biases are iid N(0, sigma_b^2).

  Args:
    activation: activation name (or object) accepted by ``dksflax.shaping.eoc.eoc``.
    q_star: the Q-map fixed point q*. (Default: 1.0)
    weight_init: weight distribution, one of ``WEIGHT_INITIALIZERS`` other than
      ``looks_linear``. (Default: "orthogonal_delta")

  Returns:
    An ``EOCInitializers``.

  Raises:
    ConfigError: for an unknown weight distribution.
    dksflax.errors.ShapingError: when no EOC point exists (raised by the solver).
  """
  allowed = tuple(n for n in WEIGHT_INITIALIZERS if n != "looks_linear")
  if weight_init not in allowed:
    raise ConfigError(f"EOC weight_init={weight_init!r} is not accepted; choose one of: "
                      + ", ".join(repr(a) for a in allowed))
  from dksflax.shaping.eoc import eoc  # pylint: disable=import-outside-toplevel
  params = eoc(activation, q_star=q_star)
  weight_var = float(params.weight_var)
  bias_var = float(params.bias_var)
  return EOCInitializers(
      kernel_init=get_initializer(weight_init, scale=weight_var),
      bias_init=inits.gaussian_bias(bias_var),
      weight_var=weight_var, bias_var=bias_var, weight_init=weight_init)
