"""Activation functions in NumPy (float64) with derivatives and kernel-relevant metadata.

The kernel maps of DKS (Martens et al. 2021, §8.1) need an activation ``phi`` together
with its first two derivatives (``C'(1) = E[phi'(z)^2]`` and ``C''(1) = E[phi''(z)^2]`` for
unit q values), and the quadrature needs to know where ``phi`` is not smooth (its kinks)
to split the integration there. Positively homogeneous activations (DKS §18.6) lose one
degree of freedom under the DKS transformation, and odd ones have mirror solutions; both
facts are recorded here so the solvers can act on them.

``get_activation(name, **params)`` returns an :class:`Activation`; the JAX twins live
under the same names in ``dksflax.models.activations``. :class:`TransformedActivation`
is ``gamma * (phi(alpha * x + beta) + delta)`` (DKS §18.1), itself usable wherever an
:class:`Activation` is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import special

from dksflax.errors import ConfigError

ArrayFn = Callable[[np.ndarray], np.ndarray]

#: SELU constants (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
#: Constant of the tanh approximation of GELU (Hendrycks & Gimpel 2016; jax.nn.gelu).
GELU_TANH_COEF = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Activation:
  """An element-wise activation function with two derivatives and metadata.

  Attributes:
    name: registry name (e.g. ``"tanh"``).
    params: the activation's own parameters as sorted ``(name, value)`` pairs, e.g.
      ``(("negative_slope", 0.2),)`` for a leaky ReLU.
    fn: ``phi``, a NumPy-vectorised float64 function.
    d1: ``phi'`` (the one-sided value at kinks is irrelevant: a measure-zero set).
    d2: ``phi''`` (zero on linear pieces).
    kinks: input locations where ``phi``, ``phi'`` or ``phi''`` is discontinuous; the
      quadrature splits its integration range there.
    kink_order: the lowest derivative order that jumps at the kinks (1 for ReLU: ``phi'``
      jumps; 2 for ELU with alpha = 1), or ``None`` for smooth activations. The C-map
      derivative formula for order ``i`` needs ``phi^(i-1)`` continuous (DKS §8.1.2).
    homogeneous_degree: ``k`` if ``phi(l*x) = l**k phi(x)`` for all ``l >= 0`` (positively
      homogeneous, DKS §18.6), else ``None``.
    odd: whether ``phi(x) - phi(0)`` is odd (tanh, erf; sigmoid too): the DKS and TAT
      conditions then have mirror-image solutions ``beta -> -beta``.
  """

  name: str
  params: tuple[tuple[str, float], ...]
  # Two activations are equal when their names and parameters are (not their closures).
  fn: ArrayFn = dataclasses.field(compare=False)
  d1: ArrayFn = dataclasses.field(compare=False)
  d2: ArrayFn = dataclasses.field(compare=False)
  kinks: tuple[float, ...] = ()
  kink_order: int | None = None
  homogeneous_degree: int | None = None
  odd: bool = False

  def __call__(self, x: Any) -> np.ndarray:
    return self.fn(np.asarray(x, dtype=np.float64))

  @property
  def params_dict(self) -> dict[str, float]:
    """The parameters as a dict, e.g. ``{"negative_slope": 0.2}``."""
    return dict(self.params)


# ----------------------------------------------------------------------------------------
# Builders: one per registry name. Each returns an Activation for its parameters.


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return special.expit(x)


def _identity() -> Activation:
  return Activation("identity", (), lambda x: x * 1.0, np.ones_like, np.zeros_like,
                    homogeneous_degree=1, odd=True)


def _relu() -> Activation:
  return Activation("relu", (), lambda x: np.maximum(x, 0.0),
                    lambda x: (x > 0).astype(np.float64), np.zeros_like,
                    kinks=(0.0,), kink_order=1, homogeneous_degree=1)


def _leaky_relu(negative_slope: float = 0.01) -> Activation:
  s = float(negative_slope)
  return Activation("leaky_relu", (("negative_slope", s),),
                    lambda x: np.where(x > 0, x, s * x),
                    lambda x: np.where(x > 0, 1.0, s), np.zeros_like,
                    kinks=(0.0,) if s != 1.0 else (), kink_order=1 if s != 1.0 else None,
                    homogeneous_degree=1, odd=s == 1.0)


def _tanh() -> Activation:

  def d1(x):
    t = np.tanh(x)
    return 1.0 - t * t

  def d2(x):
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)

  return Activation("tanh", (), np.tanh, d1, d2, odd=True)


def _softplus() -> Activation:
  # log(1 + e^x) written to avoid overflow.
  def fn(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)

  def d2(x):
    s = _sigmoid(x)
    return s * (1.0 - s)

  return Activation("softplus", (), fn, _sigmoid, d2)


def _sigmoid_act() -> Activation:

  def d1(x):
    s = _sigmoid(x)
    return s * (1.0 - s)

  def d2(x):
    s = _sigmoid(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)

  return Activation("sigmoid", (), _sigmoid, d1, d2, odd=True)


def _swish(name: str) -> Activation:

  def fn(x):
    return x * _sigmoid(x)

  def d1(x):
    s = _sigmoid(x)
    return s + x * s * (1.0 - s)

  def d2(x):
    s = _sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))

  return Activation(name, (), fn, d1, d2)


def _gelu() -> Activation:
  """GELU, tanh approximation (the default of jax.nn.gelu and of the dks package)."""
  k, a = _SQRT_2_OVER_PI, GELU_TANH_COEF

  def fn(x):
    return 0.5 * x * (1.0 + np.tanh(k * (x + a * x**3)))

  def d1(x):
    t = np.tanh(k * (x + a * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * a * x * x)

  def d2(x):
    t = np.tanh(k * (x + a * x**3))
    u1 = k * (1.0 + 3.0 * a * x * x)
    u2 = 6.0 * a * k * x
    return (1.0 - t * t) * (u1 + 0.5 * x * (u2 - 2.0 * t * u1 * u1))

  return Activation("gelu", (), fn, d1, d2)


def _gelu_exact() -> Activation:
  """GELU with the exact Gaussian CDF: ``x * Phi(x)``."""

  def pdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)

  return Activation("gelu_exact", (), lambda x: x * special.ndtr(x),
                    lambda x: special.ndtr(x) + x * pdf(x),
                    lambda x: pdf(x) * (2.0 - x * x))


def _elu_like(name: str, alpha: float, scale: float,
              params: tuple[tuple[str, float], ...]) -> Activation:
  a, l = float(alpha), float(scale)

  def fn(x):
    return l * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0)))

  def d1(x):
    return l * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0)))

  def d2(x):
    return l * np.where(x > 0, 0.0, a * np.exp(np.minimum(x, 0.0)))

  return Activation(name, params, fn, d1, d2, kinks=(0.0,),
                    kink_order=2 if a == 1.0 else 1)


def _elu(alpha: float = 1.0) -> Activation:
  return _elu_like("elu", alpha, 1.0, (("alpha", float(alpha)),))


def _selu() -> Activation:
  return _elu_like("selu", SELU_ALPHA, SELU_SCALE, ())


def _erf() -> Activation:
  c = 2.0 / math.sqrt(math.pi)
  return Activation("erf", (), special.erf, lambda x: c * np.exp(-x * x),
                    lambda x: -2.0 * c * x * np.exp(-x * x), odd=True)


def _sin() -> Activation:
  return Activation("sin", (), np.sin, np.cos, lambda x: -np.sin(x), odd=True)


def _atan() -> Activation:
  return Activation("atan", (), np.arctan, lambda x: 1.0 / (1.0 + x * x),
                    lambda x: -2.0 * x / (1.0 + x * x)**2, odd=True)


def _asinh() -> Activation:
  return Activation("asinh", (), np.arcsinh, lambda x: 1.0 / np.sqrt(1.0 + x * x),
                    lambda x: -x / (1.0 + x * x)**1.5, odd=True)


def _softsign() -> Activation:
  return Activation("softsign", (), lambda x: x / (1.0 + np.abs(x)),
                    lambda x: 1.0 / (1.0 + np.abs(x))**2,
                    lambda x: -2.0 * np.sign(x) / (1.0 + np.abs(x))**3,
                    kinks=(0.0,), kink_order=2, odd=True)


def _bentid() -> Activation:
  """Bent identity ``(sqrt(x^2 + 1) - 1) / 2 + x``."""
  return Activation("bentid", (), lambda x: 0.5 * (np.sqrt(x * x + 1.0) - 1.0) + x,
                    lambda x: 0.5 * x / np.sqrt(x * x + 1.0) + 1.0,
                    lambda x: 0.5 / (x * x + 1.0)**1.5)


def _square() -> Activation:
  return Activation("square", (), lambda x: x * x, lambda x: 2.0 * x,
                    lambda x: np.full_like(x, 2.0), homogeneous_degree=2)


#: Registry: name -> builder(**params) -> Activation.
_REGISTRY: dict[str, Callable[..., Activation]] = {
    "identity": _identity,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "tanh": _tanh,
    "softplus": _softplus,
    "sigmoid": _sigmoid_act,
    "swish": lambda: _swish("swish"),
    "silu": lambda: _swish("silu"),
    "gelu": _gelu,
    "gelu_exact": _gelu_exact,
    "elu": _elu,
    "selu": _selu,
    "erf": _erf,
    "sin": _sin,
    "atan": _atan,
    "asinh": _asinh,
    "softsign": _softsign,
    "bentid": _bentid,
    "square": _square,
}

#: Accepted parameters of each activation with their defaults.
ACTIVATION_PARAMS: Mapping[str, Mapping[str, float]] = {
    "leaky_relu": {"negative_slope": 0.01},
    "elu": {"alpha": 1.0},
}


def activation_names() -> tuple[str, ...]:
  """Returns the registered activation names, sorted."""
  return tuple(sorted(_REGISTRY))


def get_activation(name: str, **params: float) -> Activation:
  """Looks up an activation by name.

  Args:
    name: str. A registered name (see :func:`activation_names`).
    **params: the activation's own parameters: ``negative_slope`` for ``leaky_relu``
      (Default: 0.01, as jax.nn.leaky_relu), ``alpha`` for ``elu`` (Default: 1.0).

  Returns:
    The :class:`Activation`.

  Raises:
    ConfigError: unknown name (the message lists the known ones) or parameter.
  """
  if name not in _REGISTRY:
    raise ConfigError(
        f"unknown activation {name!r}; known activations: {', '.join(activation_names())}")
  accepted = ACTIVATION_PARAMS.get(name, {})
  bad = sorted(set(params) - set(accepted))
  if bad:
    raise ConfigError(
        f"activation {name!r} does not take parameter(s) {bad}; it accepts "
        f"{sorted(accepted) if accepted else 'no parameters'}")
  for key, value in params.items():
    if not math.isfinite(float(value)):
      raise ConfigError(f"activation {name!r}: {key}={value!r} must be a finite number")
  return _REGISTRY[name](**{k: float(v) for k, v in params.items()})


def as_activation(activation: str | Activation | TransformedActivation) -> Activation:
  """Resolves a name, an :class:`Activation` or a :class:`TransformedActivation`."""
  if isinstance(activation, Activation):
    return activation
  if isinstance(activation, TransformedActivation):
    return activation.as_activation()
  if isinstance(activation, str):
    return get_activation(activation)
  raise ConfigError(
      f"expected an activation name, Activation or TransformedActivation, got "
      f"{type(activation).__name__}: {activation!r}")


@dataclasses.dataclass(frozen=True)
class TransformedActivation:
  """``phi_hat(x) = gamma * (phi(alpha * x + beta) + delta)`` (DKS §18.1).

  Attributes:
    base: registry name of ``phi``.
    base_params: parameters of ``phi`` as sorted ``(name, value)`` pairs.
    alpha: input scale.
    beta: input shift.
    gamma: output scale.
    delta: output shift (applied before ``gamma``).
  """

  base: str
  base_params: tuple[tuple[str, float], ...] = ()
  alpha: float = 1.0
  beta: float = 0.0
  gamma: float = 1.0
  delta: float = 0.0

  def base_activation(self) -> Activation:
    """The untransformed ``phi`` from the registry."""
    return get_activation(self.base, **dict(self.base_params))

  def as_activation(self) -> Activation:
    """The transformed function as an :class:`Activation` (derivatives by the chain rule)."""
    phi = self.base_activation()
    a, b, g, d = (float(self.alpha), float(self.beta), float(self.gamma),
                  float(self.delta))
    if a == 0.0:
      raise ConfigError(f"TransformedActivation({self.base!r}): alpha=0 makes it constant")
    kinks = tuple(sorted((k - b) / a for k in phi.kinks))
    return Activation(
        f"transformed_{phi.name}", phi.params,
        lambda x: g * (phi.fn(a * x + b) + d),
        lambda x: (g * a) * phi.d1(a * x + b),
        lambda x: (g * a * a) * phi.d2(a * x + b),
        kinks=kinks, kink_order=phi.kink_order,
        homogeneous_degree=phi.homogeneous_degree if b == 0.0 and d == 0.0 else None,
        odd=phi.odd and b == 0.0 and d == 0.0)

  def __call__(self, x: Any) -> np.ndarray:
    phi = self.base_activation()
    x = np.asarray(x, dtype=np.float64)
    return self.gamma * (phi.fn(self.alpha * x + self.beta) + self.delta)
