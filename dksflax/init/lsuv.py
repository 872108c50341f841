"""LSUV: layer-sequential unit-variance initialisation (Mishkin & Matas, 2016).

The procedure ("All you need is a good init", Algorithm 1): pre-initialise the weights
with orthonormal matrices (Saxe et al. 2014); then, for each layer in forward order,
measure the variance of its output on one batch and divide its weights by the square root
of that variance, repeating until ``|Var - 1| < tolerance`` or ``max_iters`` is reached.
Later layers never change earlier layers' outputs, so at the end every processed layer's
output variance on the batch is 1 within the tolerance (unless a layer hit the cap,
which the report says).

Layers are the linen modules that own a ``kernel`` parameter (``nn.Dense``,
``nn.Conv``), found and ordered by running the model once with flax's
``capture_intermediates``: no model cooperation is needed beyond a pure ``apply``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from dksflax.errors import ConfigError, ShapingError
from dksflax.init.initializers import orthogonal

Path = tuple[str, ...]
ApplyFn = Callable[..., Any]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LSUVLayer:
  """What LSUV did to one layer.

  Attributes:
    path: the layer's module path joined by "/" (e.g. "block_0/conv_1").
    initial_variance: output variance before rescaling (after the orthonormal pre-init).
    final_variance: output variance after the last rescaling.
    iterations: rescalings applied.
    converged: ``|final_variance - 1| < tolerance``.
  """

  path: str
  initial_variance: float
  final_variance: float
  iterations: int
  converged: bool


@dataclasses.dataclass(frozen=True)
class LSUVReport:
  """Per-layer outcome of ``lsuv``, in forward order.

  Attributes:
    layers: one ``LSUVLayer`` per processed layer.
    tolerance: the variance tolerance used.
    max_iters: the iteration cap used.
  """

  layers: tuple[LSUVLayer, ...]
  tolerance: float
  max_iters: int

  def to_dict(self) -> dict[str, Any]:
    """Returns a JSON-able dict."""
    return dataclasses.asdict(self)


def _get(tree: Mapping[str, Any], path: Path) -> Any:
  for name in path:
    tree = tree[name]
  return tree


def _to_dict(tree: Mapping[str, Any]) -> dict[str, Any]:
  return {k: _to_dict(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def _set_kernel(params: dict[str, Any], path: Path, kernel: jax.Array) -> None:
  node = params
  for name in path:
    node = node[name]
  node["kernel"] = kernel


def kernel_layers(apply_fn: ApplyFn, variables: Mapping[str, Any], batch: Any) -> list[Path]:
  """Returns the paths of the modules owning a ``kernel`` parameter, in call order.

  Args:
    apply_fn: ``apply_fn(variables, batch, **kwargs)``, forwarding ``capture_intermediates``
      and ``mutable`` to ``flax.linen.Module.apply`` (e.g. ``functools.partial(model.apply,
      train=False)``).
    variables: the model's variables (with a ``params`` collection).
    batch: an input batch.

  Returns:
    Module paths (tuples of names) in the order their ``__call__`` returned.
  """
  params = variables["params"]
  order: list[Path] = []

  def record(module: Any, method_name: str) -> bool:
    path = tuple(module.path)
    if method_name != "__call__" or path in order:
      return False
    try:
      owns_kernel = isinstance(_get(params, path), Mapping) and "kernel" in _get(params, path)
    except (KeyError, TypeError):
      owns_kernel = False
    if owns_kernel:
      order.append(path)
    return False

  jax.eval_shape(lambda v, b: apply_fn(v, b, capture_intermediates=record,
                                       mutable=["intermediates"]), variables, batch)
  return order


def _variance_fn(apply_fn: ApplyFn, paths: list[Path]) -> Callable[..., jax.Array]:
  wanted = set(paths)

  def capture(module: Any, method_name: str) -> bool:
    return method_name == "__call__" and tuple(module.path) in wanted

  def variances(variables: Mapping[str, Any], batch: Any) -> jax.Array:
    _, state = apply_fn(variables, batch, capture_intermediates=capture,
                        mutable=["intermediates"])
    inter = state["intermediates"]
    out = []
    for path in paths:
      y = _get(inter, path)["__call__"][0]
      out.append(jnp.var(y.astype(jnp.float32)))
    return jnp.stack(out)

  return jax.jit(variances)


def lsuv(apply_fn: ApplyFn, variables: Mapping[str, Any], batch: Any, *,
         tolerance: float = 0.01, max_iters: int = 10,
         layer_filter: Callable[[Path], bool] | None = None,
         preinit_key: jax.Array | None = None) -> tuple[dict[str, Any], LSUVReport]:
  """Runs LSUV on a Flax model's variables (Mishkin & Matas 2016, Algorithm 1).

  Args:
    apply_fn: ``apply_fn(variables, batch, **kwargs)`` forwarding ``capture_intermediates``
      and ``mutable`` to ``Module.apply`` (e.g. ``functools.partial(model.apply,
      train=False)``).
    variables: the model's variables; not modified.
    batch: the initialisation batch (inputs only).
    tolerance: stop rescaling a layer when ``|Var - 1| < tolerance``. (Default: 0.01)
    max_iters: rescalings per layer at most. (Default: 10)
    layer_filter: ``layer_filter(path) -> bool`` selects the layers to process (all
      kernel-owning modules when None). (Default: None)
    preinit_key: when given, each selected kernel is first replaced by a Haar orthogonal
      one (LSUV's orthonormal pre-initialisation); when None the kernels are used as they
      are. (Default: None)

  Returns:
    ``(variables, report)``: new variables (``params`` rescaled, other collections
    unchanged) and an ``LSUVReport``.

  Raises:
    ConfigError: for a non-positive tolerance or iteration cap, or when no layer is
      selected.
    ShapingError: when a layer's output variance is 0 or not finite (a dead layer or a
      NaN), which no rescaling can fix.
  """
  if not (math.isfinite(tolerance) and tolerance > 0.0):
    raise ConfigError(f"shaping.lsuv_tolerance={tolerance!r} must be a positive number")
  if int(max_iters) < 1:
    raise ConfigError(f"shaping.lsuv_max_iters={max_iters!r} must be >= 1")
  paths = kernel_layers(apply_fn, variables, batch)
  if layer_filter is not None:
    paths = [p for p in paths if layer_filter(p)]
  if not paths:
    raise ConfigError("lsuv found no layer to initialise: the model has no Dense/Conv "
                      "kernel, or layer_filter rejected every layer")
  variables = _to_dict(variables)
  params = variables["params"]
  if preinit_key is not None:
    for path, key in zip(paths, jax.random.split(preinit_key, len(paths))):
      kernel = _get(params, path)["kernel"]
      _set_kernel(params, path, orthogonal()(key, kernel.shape, kernel.dtype))
  measure = _variance_fn(apply_fn, paths)
  layers = []
  for i, path in enumerate(paths):
    name = "/".join(path)
    var = float(measure(variables, batch)[i])
    initial, iters = var, 0
    while True:
      if not math.isfinite(var) or var <= 0.0:
        raise ShapingError(
            f"lsuv: the output variance of layer {name!r} is {var!r} on the init batch; "
            "a zero or non-finite variance cannot be rescaled to 1 (dead units, an "
            "all-zero batch, or NaNs upstream)")
      if abs(var - 1.0) < tolerance or iters >= max_iters:
        break
      kernel = _get(params, path)["kernel"]
      _set_kernel(params, path, kernel / jnp.sqrt(jnp.asarray(var, kernel.dtype)))
      iters += 1
      var = float(measure(variables, batch)[i])
    converged = abs(var - 1.0) < tolerance
    if not converged:
      warnings.warn(f"lsuv: layer {name!r} reached max_iters={max_iters} with output "
                    f"variance {var:.4g} (tolerance {tolerance})", stacklevel=2)
    _log.info("lsuv %d/%d %s: variance %.4g -> %.4g in %d steps", i + 1, len(paths), name,
              initial, var, iters)
    layers.append(LSUVLayer(name, initial, var, iters, converged))
  return variables, LSUVReport(tuple(layers), float(tolerance), int(max_iters))
