"""Model registry: model.name -> the spec builder (architecture) for that name.

`spec_from_config(model_cfg, *, num_classes, normalization)` turns `model.*` into the
`dksflax.shaping.architectures` spec from which both the Flax module and the kernel graph
are built; `module_class(spec)` says which module runs it. Names:

  resnet50 / resnet101 / resnet152   ResNet-V2 of that depth (DKS §23.1)
  resnet                             ResNet-V2 with explicit model.blocks (or model.depth)
  wrn                                Wide-ResNet WRN-{depth}-{width} (DKS §23.6)
  mlp                                model.depth layers of model.width units
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_collections

from dksflax.errors import ConfigError
from dksflax.shaping import architectures as arch

Spec = arch.ResNetSpec | arch.MLPSpec


def _fixed_resnet(depth: int) -> Callable[..., Spec]:
  def build(m: ml_collections.ConfigDict, num_classes: int, normalization: str,
            shortcut_weight: float) -> Spec:
    return arch.resnet_v2_spec(
        depth, num_classes=num_classes, variant=m.variant, shortcut_weight=shortcut_weight,
        normalization=normalization, stem=m.stem, width_multiplier=m.width_multiplier,
        pooling=m.pooling, resavg=m.resavg)
  return build


def _explicit_resnet(m: ml_collections.ConfigDict, num_classes: int, normalization: str,
                     shortcut_weight: float) -> Spec:
  blocks = tuple(int(b) for b in m.blocks) or None
  depth = m.depth if blocks is None else 3 * sum(blocks) + 2
  return arch.resnet_v2_spec(
      depth, num_classes=num_classes, variant=m.variant, shortcut_weight=shortcut_weight,
      normalization=normalization, stem=m.stem, width_multiplier=m.width_multiplier,
      blocks_per_stage=blocks, pooling=m.pooling, resavg=m.resavg)


def _wrn(m: ml_collections.ConfigDict, num_classes: int, normalization: str,
         shortcut_weight: float) -> Spec:
  return arch.wide_resnet_spec(
      m.depth, m.width, num_classes=num_classes, variant=m.variant,
      shortcut_weight=shortcut_weight, normalization=normalization, pooling=m.pooling,
      resavg=m.resavg, width_multiplier=m.width_multiplier)


def _mlp(m: ml_collections.ConfigDict, num_classes: int, normalization: str,
         shortcut_weight: float) -> Spec:
  del shortcut_weight
  return arch.mlp_spec(m.depth, m.width, num_classes=num_classes, normalization=normalization)


#: model.name -> builder(model_cfg, num_classes, normalization, shortcut_weight) -> spec.
MODELS: dict[str, Callable[..., Spec]] = {
    "resnet50": _fixed_resnet(50),
    "resnet101": _fixed_resnet(101),
    "resnet152": _fixed_resnet(152),
    "resnet": _explicit_resnet,
    "wrn": _wrn,
    "mlp": _mlp,
}


def model_names() -> tuple[str, ...]:
  """Registered model names."""
  return tuple(MODELS)


def spec_from_config(model: ml_collections.ConfigDict, *, num_classes: int,
                     normalization: str, shortcut_weight: float) -> Spec:
  """Builds the architecture spec for `model.*`.

  Args:
    model: the model config section.
    num_classes: classifier outputs (model.num_classes, or the dataset's when it is -1).
    normalization: the resolved normalisation (see `compatibility.resolve_normalization`).
    shortcut_weight: shaping.shortcut_weight (w of TAT Eq. 6; rescaled variant only).

  Returns:
    A ResNetSpec or MLPSpec.

  Raises:
    ConfigError: unknown name (listing the registry), impossible depth, bad widths.
  """
  if model.name not in MODELS:
    raise ConfigError(f"model.name={model.name!r} is not accepted; choose one of: "
                      + ", ".join(repr(n) for n in MODELS))
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ConfigError(f"num_classes={num_classes!r} must be a positive integer")
  return MODELS[model.name](model, num_classes, normalization, shortcut_weight)


def module_class(spec: Any) -> type:
  """The Flax module class that runs `spec` (ResNet for ResNetSpec, MLP for MLPSpec)."""
  from dksflax.models.mlp import MLP  # pylint: disable=import-outside-toplevel
  from dksflax.models.resnet import ResNet  # pylint: disable=import-outside-toplevel
  if isinstance(spec, arch.ResNetSpec):
    return ResNet
  if isinstance(spec, arch.MLPSpec):
    return MLP
  raise ConfigError(f"no model module for spec type {type(spec).__name__}")
