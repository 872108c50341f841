"""Which shaping method works with which model: the compatibility matrix.

Imports no JAX (only the NumPy activation registry), so config validation can call it.

=========  =================  ====================  ===================  ====================
method     families           variants              normalization        activation
=========  =================  ====================  ===================  ====================
none       resnet, wrn, mlp   all                   all                  any
dks        resnet, wrn, mlp   rescaled, vanilla,    none, layer_norm     any (relu: the
                              standard (+LN only)                        diminished DKS,
                                                                         §18.6, warns)
tat        resnet, wrn, mlp   rescaled, vanilla,    none, layer_norm     leaky_relu (TAT
                              standard (+LN only)                        §4.3) or smooth
                                                                         (TAT §4.2)
eoc        resnet, wrn, mlp   vanilla               none                 any with an EOC
lsuv       resnet, wrn, mlp   all                   all                  any
fixup      resnet, wrn        standard              none                 any
skipinit   resnet, wrn        standard              none, batch_norm     any
risotto    wrn                standard              none, batch_norm     relu
=========  =================  ====================  ===================  ====================

Why: DKS/TAT need every sum to be a normalised sum (DKS §21.2 step 5, TAT Eq. 6: the
rescaled variant; a plain x + R(x) is one only when layer norms keep every branch's q
fixed, as `dksflax.shaping.architecture_graphs` explains) and refuse batch norm (DKS
§19.1: its maps depend on the whole batch; layer norm has Q/C maps, §19.2). TAT for
piecewise-linear activations is defined for leaky ReLU only (ReLU cannot reach C(0) < 1
targets with the slope as the only free parameter, and is rejected as in the `dks`
package); other activations need C''(1), i.e. a continuous first derivative (smooth TAT).
EOC is a fixed-point analysis of feedforward chains (Poole et al. 2016) without
normalisation. Fixup and SkipInit replace normalisation in plain-sum residual nets (Zhang
et al. 2019; De & Smith 2020), so they need shortcut branches (not vanilla) and their own
branch weighting (not rescaled); Fixup refuses batch norm (it exists to remove it),
SkipInit allows it (De & Smith study both). RISOTTO (Gadhikar & Burkholz) is an
exact-isometry scheme for ReLU residual blocks with plain sums, with or without batch
norm; its looks-linear construction (`dksflax.init.risotto`) needs half the hidden width
to reach the block's input width in projection blocks, which Wide-ResNet basic blocks have
and ResNet-V2 bottlenecks never do. The MLP has no shortcut branches: its variant is
"vanilla". ResAvg transitions need projection shortcuts, so no vanilla nets (the model
normalises the pooled + projected shortcut, see `blocks.py`, so DKS/TAT accept them).

"auto" normalisation resolves to batch norm for the standard variant (none under fixup,
skipinit and risotto, which exist to replace it) and to none otherwise.
"""

from __future__ import annotations

import dataclasses

from dksflax.errors import ConfigError
from dksflax.shaping.activations import get_activation

FAMILIES_BY_NAME = {"resnet50": "resnet", "resnet101": "resnet", "resnet152": "resnet",
                    "resnet": "resnet", "wrn": "wrn", "mlp": "mlp"}
ALL_VARIANTS = ("standard", "rescaled", "vanilla")
ALL_NORMS = ("none", "batch_norm", "layer_norm")


@dataclasses.dataclass(frozen=True)
class MethodRule:
  """Where one shaping method is defined.

  Attributes:
    families: model families ("resnet", "wrn", "mlp").
    variants: accepted model.variant values.
    normalizations: accepted (resolved) model.normalization values.
    activations: "any", "relu" or "tat" (leaky_relu or an activation with continuous phi').
    why: the reason, quoted in errors.
  """

  families: tuple[str, ...]
  variants: tuple[str, ...]
  normalizations: tuple[str, ...]
  activations: str
  why: str


_DKS_WHY = ("DKS/TAT need normalised sums (the rescaled variant, TAT Eq. 6, or standard "
            "sums with layer norm) or no sums (vanilla), and batch norm has no Q/C maps "
            "(DKS §19.1; layer norm is fine)")
COMPATIBILITY: dict[str, MethodRule] = {
    "none": MethodRule(("resnet", "wrn", "mlp"), ALL_VARIANTS, ALL_NORMS, "any",
                       "no shaping"),
    "dks": MethodRule(("resnet", "wrn", "mlp"), ALL_VARIANTS,
                      ("none", "layer_norm"), "any", _DKS_WHY),
    "tat": MethodRule(("resnet", "wrn", "mlp"), ALL_VARIANTS,
                      ("none", "layer_norm"), "tat", _DKS_WHY),
    "eoc": MethodRule(("resnet", "wrn", "mlp"), ("vanilla",), ("none",), "any",
                      "the edge of chaos is a fixed-point analysis of plain feedforward "
                      "chains without normalisation (Poole et al. 2016)"),
    "lsuv": MethodRule(("resnet", "wrn", "mlp"), ALL_VARIANTS, ALL_NORMS, "any",
                       "LSUV is data-dependent and applies to any network"),
    "fixup": MethodRule(("resnet", "wrn"), ("standard",), ("none",), "any",
                        "Fixup replaces normalisation in plain-sum residual networks "
                        "(Zhang et al. 2019)"),
    "skipinit": MethodRule(("resnet", "wrn"), ("standard",), ("none", "batch_norm"), "any",
                           "SkipInit gates the residual branch of plain-sum residual "
                           "networks (De & Smith 2020)"),
    "risotto": MethodRule(("wrn",), ("standard",), ("none", "batch_norm"), "relu",
                          "RISOTTO is exact dynamical isometry for ReLU residual blocks with "
                          "plain sums; a ResNet-V2 bottleneck (hidden width below the block "
                          "width) cannot be exactly orthogonal in a transition block"),
}
METHODS = tuple(COMPATIBILITY)


def family_of(name: str) -> str:
  """Returns "resnet", "wrn" or "mlp" for a model.name; ConfigError for unknown names."""
  if name not in FAMILIES_BY_NAME:
    raise ConfigError(f"model.name={name!r} is not accepted; choose one of: "
                      + ", ".join(repr(n) for n in FAMILIES_BY_NAME))
  return FAMILIES_BY_NAME[name]


def resolve_normalization(name: str, variant: str, normalization: str, method: str) -> str:
  """Resolves model.normalization="auto" (see the module docstring); others pass through.

  Args:
    name: model.name.
    variant: model.variant.
    normalization: model.normalization.
    method: shaping.method.

  Returns:
    "none", "batch_norm" or "layer_norm".
  """
  if normalization != "auto":
    return normalization
  if (family_of(name) != "mlp" and variant == "standard"
      and method not in ("fixup", "skipinit", "risotto")):
    return "batch_norm"
  return "none"


def tat_flavour(activation: str) -> str:
  """Returns "lrelu" or "smooth": which TAT applies to `activation` (TAT §4.2-4.3).

  Raises:
    ConfigError: relu, identity, or an activation whose first derivative jumps.
  """
  if activation == "leaky_relu":
    return "lrelu"
  if activation == "relu":
    raise ConfigError(
        "shaping.method='tat' with model.activation='relu' is not accepted: TAT transforms "
        "piecewise-linear nets through the negative slope of a leaky ReLU (TAT §4.3), and "
        "ReLU has no such freedom; use model.activation='leaky_relu', or shaping.method="
        "'dks' (diminished for ReLU)")
  act = get_activation(activation)
  if activation == "identity" or act.homogeneous_degree is not None or (
      act.kink_order is not None and act.kink_order < 2):
    raise ConfigError(
        f"shaping.method='tat' with model.activation={activation!r} is not accepted: "
        "smooth TAT (TAT §4.2) needs a nonlinear activation with a continuous first "
        "derivative (curvature C''(1)); accepted: 'leaky_relu' or a smooth activation "
        "such as 'softplus', 'tanh', 'swish', 'gelu'")
  return "smooth"


def check_compatible(*, name: str, variant: str, normalization: str, activation: str,
                     method: str, resavg: bool = False, pooling: str = "mean") -> str:
  """Checks one (model, method) combination against the matrix.

  Args:
    name: model.name.
    variant: model.variant.
    normalization: model.normalization ("auto" allowed).
    activation: model.activation (a registry name).
    method: shaping.method.
    resavg: model.resavg.
    pooling: model.pooling.

  Returns:
    The resolved normalisation.

  Raises:
    ConfigError: naming the key, the value, the accepted values and why.
  """
  if method not in COMPATIBILITY:
    raise ConfigError(f"shaping.method={method!r} is not accepted; choose one of: "
                      + ", ".join(repr(m) for m in METHODS))
  family = family_of(name)
  get_activation(activation)  # unknown names fail here, listing the registry
  rule = COMPATIBILITY[method]
  if family == "mlp":
    if variant != "vanilla":
      raise ConfigError(f"model.variant={variant!r} is not accepted for model.name='mlp': "
                        "an MLP has no shortcut branches; use 'vanilla'")
    if resavg or pooling != "mean":
      raise ConfigError("model.resavg / model.pooling do not apply to model.name='mlp' "
                        "(no transitions, no spatial pooling); leave them at False / 'mean'")
  norm = resolve_normalization(name, variant, normalization, method)
  if family not in rule.families:
    raise ConfigError(
        f"shaping.method={method!r} is not defined for model.name={name!r}; accepted model "
        f"families: {', '.join(rule.families)} ({rule.why})")
  if variant not in rule.variants:
    raise ConfigError(
        f"shaping.method={method!r} with model.variant={variant!r} is not accepted; "
        f"accepted variants: {', '.join(repr(v) for v in rule.variants)} ({rule.why})")
  if norm not in rule.normalizations:
    raise ConfigError(
        f"shaping.method={method!r} with model.normalization={norm!r} is not accepted; "
        f"accepted: {', '.join(repr(v) for v in rule.normalizations)} ({rule.why})")
  if rule.activations == "relu" and activation != "relu":
    raise ConfigError(
        f"shaping.method={method!r} with model.activation={activation!r} is not accepted; "
        f"accepted: 'relu' ({rule.why})")
  if rule.activations == "tat":
    tat_flavour(activation)
  if resavg and variant == "vanilla":
    raise ConfigError("model.resavg=True needs projection shortcuts; the vanilla variant has "
                      "none (use 'standard' or 'rescaled', or resavg=False)")
  if method in ("dks", "tat") and variant == "standard" and norm != "layer_norm":
    raise ConfigError(
        f"shaping.method={method!r} with model.variant='standard' needs "
        f"model.normalization='layer_norm' (got {norm!r}): plain sums x + R(x) are "
        "normalised sums only when layer norms keep q = 1 (DKS §21.2 step 5); otherwise use "
        "model.variant='rescaled' or 'vanilla'")
  return norm
