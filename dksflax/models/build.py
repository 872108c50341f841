"""One entry point: `model.*` + `shaping.*` -> a ready, shaped network.

  model, init_fn, report = build_network(config, num_classes=10, input_shape=(32, 32, 3))
  variables = init_fn(jax.random.key(0), sample_images)   # {"params": ..., ["batch_stats"]}
  logits, out = model.apply(variables, images, train=False)

`report` (a frozen `BuildReport`, JSON via `.to_dict()`) says what was chosen and why:
the shaping plan (method, solver result, derived psi / C(0) / curvature from the model's
own kernel graph, activation transform), the initializers and the architecture.

`init_fn(rng, sample_images)` initialises the parameters; sample_images fixes the input
shape and, for data-dependent methods (LSUV), is the initialisation batch. It is pure JAX
(jit / eval_shape friendly) for every method except lsuv, which runs a Python loop over
the layers (`report.data_dependent` says so). The compatibility matrix of methods and
models is in `dksflax.models.compatibility`; `shaping_for(config)` (re-exported here)
returns the shaping without building anything.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from dksflax.configlib import model as model_cfg
from dksflax.configlib import shaping as shaping_cfg
from dksflax.errors import ConfigError
from dksflax.init import registry as init_registry
from dksflax.init.fixup import fixup_rescale
from dksflax.models import registry
from dksflax.models.activations import transformed_activation
from dksflax.models.model_inits import ModelInits, zeros
from dksflax.models.shaping_plan import ShapingPlan, resolve_spec, shaping_for
from dksflax.shaping.architectures import MLPSpec, ResNetSpec

__all__ = ["BuildReport", "build_network", "shaping_for"]

InitFn = Callable[[jax.Array, jax.Array], dict[str, Any]]
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class BuildReport:
  """What `build_network` chose and why (JSON via `to_dict`).

  Attributes:
    model: architecture summary (name, family, depth, variant, normalisation, widths...).
    shaping: the ShapingPlan.
    init: initializer names and variances per parameter group.
    data_dependent: init_fn needs a real sample batch and is not jittable (LSUV).
  """

  model: dict[str, Any]
  shaping: ShapingPlan
  init: dict[str, Any]
  data_dependent: bool

  def to_dict(self) -> dict[str, Any]:
    """A JSON-able dict."""
    return {"model": dict(self.model), "shaping": self.shaping.to_dict(),
            "init": dict(self.init), "data_dependent": self.data_dependent}


def _model_summary(config: ml_collections.ConfigDict, spec: Any) -> dict[str, Any]:
  m = config.model
  d: dict[str, Any] = {"name": m.name, "dtype": m.dtype, "dropout": float(m.dropout),
                       "num_classes": spec.num_classes}
  if isinstance(spec, MLPSpec):
    d.update(family="mlp", depth=spec.depth, width=spec.width,
             normalization=spec.normalization)
  else:
    d.update(family=spec.family, depth=spec.depth, variant=spec.variant,
             normalization=spec.normalization, stem=spec.stem, pooling=spec.pooling,
             resavg=spec.resavg, num_blocks=len(spec.blocks),
             stem_channels=spec.stem_channels, final_channels=spec.final_channels,
             nonlinear_layers=spec.num_nonlinear_layers,
             shortcut_weight=spec.shortcut_weight if spec.variant == "rescaled" else None)
  return d


def _inits(plan: ShapingPlan) -> tuple[ModelInits, dict[str, Any]]:
  """The initializer bundle for a plan, and its description for the report."""
  kernel = init_registry.get_initializer(plan.weight_init, scale=plan.weight_var)
  if plan.bias_var > 0.0:
    bias = init_registry.get_initializer("gaussian_bias", variance=plan.bias_var)
    bias_name = f"gaussian_bias(variance={plan.bias_var:.6g})"
  else:
    bias, bias_name = zeros, "zeros"
  desc = {"kernel": f"{plan.weight_init}(scale={plan.weight_var:.6g})", "bias": bias_name}
  if plan.method == "lsuv":
    desc["kernel"] = "orthogonal pre-init, then LSUV rescaling on the sample batch"
  return ModelInits.uniform(kernel, bias), desc


def _residual_mode(method: str) -> str:
  return method if method in ("fixup", "skipinit", "risotto") else "plain"


def _risotto(variables: dict[str, Any], spec: ResNetSpec, rng: jax.Array) -> dict[str, Any]:
  """Replaces every block's kernels by RISOTTO's (`dksflax.init.risotto`)."""
  from dksflax.init.risotto import risotto_block  # pylint: disable=import-outside-toplevel
  params = jax.tree_util.tree_map(lambda x: x, dict(variables["params"]))
  keys = jax.random.split(rng, len(spec.blocks))
  for i, (block, key) in enumerate(zip(spec.blocks, keys)):
    shapes = block.conv_shapes
    ri = risotto_block(key, in_channels=block.in_channels, out_channels=block.out_channels,
                       hidden_channels=block.bottleneck_channels, num_layers=len(shapes),
                       kernel_sizes=[s[:2] for s in shapes], shortcut_weight=1.0,
                       residual_weight=1.0, projection=block.is_transition)
    bp = dict(params[f"block_{i}"])
    for name, kernel in ri.kernels.items():
      bp[name] = dict(bp[name], kernel=kernel)
    params[f"block_{i}"] = bp
  return dict(variables, params=params)


def build_network(config: ml_collections.ConfigDict, *, num_classes: int,
                  input_shape: tuple[int, ...]) -> tuple[Any, InitFn, BuildReport]:
  """Builds the shaped network a config describes.

  Args:
    config: the full config (reads model.* and shaping.*; validated here first).
    num_classes: classifier outputs (the dataset's); model.num_classes must be -1 or equal.
    input_shape: the shape of ONE example, e.g. (224, 224, 3) (no batch axis).

  Returns:
    (model, init_fn, report): a Flax module whose `apply(variables, x, train=...)` returns
    (logits, out); init_fn(rng, sample_images) -> variables; a BuildReport.

  Raises:
    ConfigError: bad or incompatible config values, or an input shape the model cannot
      take; raised before any parameter is created.
    ShapingError: the shaping problem has no solution.
  """
  model_cfg.validate(config.model)
  shaping_cfg.validate(config.shaping, config.model)
  input_shape = tuple(int(d) for d in input_shape)
  spec, _ = resolve_spec(config, num_classes)
  if isinstance(spec, ResNetSpec) and len(input_shape) != 3:
    raise ConfigError(f"input_shape={input_shape} must be (height, width, channels) for "
                      f"model.name={config.model.name!r}")
  plan = shaping_for(config)
  inits, init_desc = _inits(plan)
  act = transformed_activation(plan.activation)
  dtype = _DTYPES[config.model.dtype]
  cls = registry.module_class(spec)
  kwargs: dict[str, Any] = dict(dropout_rate=float(config.model.dropout), dtype=dtype)
  if isinstance(spec, ResNetSpec):
    kwargs["residual_mode"] = _residual_mode(plan.method)
  model = cls(spec, act, inits, **kwargs)
  method = plan.method
  s = config.shaping

  def init_fn(rng: jax.Array, sample_images: jax.Array) -> dict[str, Any]:
    if tuple(sample_images.shape[1:]) != input_shape:
      raise ConfigError(f"sample_images of shape {tuple(sample_images.shape)} do not match "
                        f"input_shape={input_shape} (plus a batch axis)")
    init_key, extra_key = jax.random.split(rng)
    variables = dict(model.init({"params": init_key}, sample_images, train=False))
    if method == "fixup":
      variables["params"] = fixup_rescale(variables["params"])
    elif method == "risotto":
      variables = _risotto(variables, spec, extra_key)
    elif method == "lsuv":
      from dksflax.init.lsuv import lsuv  # pylint: disable=import-outside-toplevel
      variables, _ = lsuv(functools.partial(model.apply, train=False), variables,
                          sample_images, tolerance=float(s.lsuv_tolerance),
                          max_iters=int(s.lsuv_max_iters), preinit_key=extra_key)
    return variables

  if method == "fixup":
    init_desc["fixup"] = "last branch conv and classifier zero; others x L^(-1/(2m-2))"
  if method == "risotto":
    init_desc["risotto"] = "block kernels from dksflax.init.risotto.risotto_block"
  report = BuildReport(model=_model_summary(config, spec), shaping=plan, init=init_desc,
                       data_dependent=method == "lsuv")
  return model, init_fn, report
