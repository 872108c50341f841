"""From `model.*` + `shaping.*` to the shaping a network gets, without building params.

`shaping_for(config)` builds the architecture spec, derives its kernel graph
(`dksflax.shaping.architecture_graphs.kernel_graph_for`: the same spec the Flax module is
built from, so nobody types a polynomial), runs the solver of `shaping.method` and returns
a frozen `ShapingPlan`: the activation (always a `TransformedActivation`, the identity
transform for unshaped methods), the weight/bias variances, and the derived network
quantities that justify the choice. It imports no JAX.

Methods (see `compatibility.py` for where each is accepted):
  dks       DKS §21.2: psi = mu^{-1}(zeta) from the derived max_slope_func, then
            (alpha, beta, gamma, delta) with Q(1)=1, Q'(1)=1, C(0)=0, C'(1)=psi.
  tat       leaky_relu: TAT §4.3, the negative slope with max_g C_g(0) = eta from the
            derived max_c0_func, output scale sqrt(2/(1+s^2)); smooth activations: TAT §4.2,
            C'(1)=1 and max_g C_g''(1) = tau from the derived max_curvature_func.
  eoc       edge of chaos (Poole et al. 2016): sigma_w^2, sigma_b^2 with chi_1 = 1 at q*.
  none, lsuv, fixup, skipinit, risotto: the raw activation; weights with variance
            sigma_w^2 / fan_in, sigma_w^2 = shaping.weight_var, or when it is -1 the He
            gain 2/(1+a^2) for (leaky) ReLU (He et al. 2015; TAT §5 uses sqrt(2) for
            standard ResNets) and 1 otherwise (LeCun).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import ml_collections

from dksflax.errors import ConfigError
from dksflax.models import compatibility, registry
from dksflax.shaping import maps
from dksflax.shaping.activations import TransformedActivation, get_activation

#: weight_init names accepted for weights (the registry of `dksflax.init`).
WEIGHT_INITS = ("fan_in_gaussian", "orthogonal", "delta", "orthogonal_delta")


@dataclasses.dataclass(frozen=True)
class ShapingPlan:
  """What a (model, shaping) config yields, before any parameter exists.

  Attributes:
    method: shaping.method.
    activation: the activation the network uses, gamma*(phi(alpha x + beta) + delta).
    weight_init: weight distribution name (dksflax.init registry).
    weight_var: sigma_w^2 (variance sigma_w^2 / fan_in).
    bias_var: sigma_b^2 of the biases (0 except EOC).
    shortcut_weight: w of rescaled sums (None for other variants).
    normalization: the resolved model.normalization.
    solver: name of the solver that ran ("" for none).
    solver_result: the solver's result as a JSON-able dict.
    derived: network quantities from the kernel graph (psi, mu(psi), network C(0), C''(1)...).
    notes: warnings and explanations, in words.
  """

  method: str
  activation: TransformedActivation
  weight_init: str
  weight_var: float
  bias_var: float
  shortcut_weight: float | None
  normalization: str
  solver: str = ""
  solver_result: dict[str, Any] = dataclasses.field(default_factory=dict)
  derived: dict[str, Any] = dataclasses.field(default_factory=dict)
  notes: tuple[str, ...] = ()

  def to_dict(self) -> dict[str, Any]:
    """A JSON-able dict."""
    act = self.activation
    return {
        "method": self.method,
        "activation": {"base": act.base, "base_params": dict(act.base_params),
                       "alpha": act.alpha, "beta": act.beta, "gamma": act.gamma,
                       "delta": act.delta},
        "weight_init": self.weight_init, "weight_var": self.weight_var,
        "bias_var": self.bias_var, "shortcut_weight": self.shortcut_weight,
        "normalization": self.normalization, "solver": self.solver,
        "solver_result": dict(self.solver_result), "derived": dict(self.derived),
        "notes": list(self.notes),
    }


def _floatify(d: dict[str, Any]) -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, (tuple, list)):
      v = [x if isinstance(x, str) else (list(x) if isinstance(x, tuple) else x) for x in v]
    elif v is not None and not isinstance(v, (str, bool, dict)):
      v = float(v)
    out[k] = v
  return out


def he_weight_var(activation: str) -> float:
  """sigma_w^2 = 2 / (1 + a^2) for (leaky) ReLU (He et al. 2015), 1 for others."""
  if activation == "relu":
    return 2.0
  if activation == "leaky_relu":
    a = get_activation("leaky_relu").params_dict["negative_slope"]
    return 2.0 / (1.0 + a * a)
  return 1.0


def check_shaping_keys(shaping: ml_collections.ConfigDict) -> None:
  """Checks the shaping keys this layer reads (weight_init, weight_var).

  Raises:
    ConfigError: naming the key, the value and what is accepted.
  """
  if shaping.weight_init not in WEIGHT_INITS:
    raise ConfigError(f"shaping.weight_init={shaping.weight_init!r} is not accepted; choose "
                      "one of: " + ", ".join(repr(w) for w in WEIGHT_INITS))
  wv = shaping.weight_var
  if not (wv == -1 or (isinstance(wv, (int, float)) and math.isfinite(wv) and wv > 0)):
    raise ConfigError(f"shaping.weight_var={wv!r} must be a positive variance multiplier, "
                      "or -1 for the method's default")


def resolve_spec(config: ml_collections.ConfigDict, num_classes: int | None = None) -> Any:
  """Checks compatibility and returns the architecture spec of `config`.

  Args:
    config: the full config (model, shaping).
    num_classes: classifier outputs; model.num_classes wins when set, else this (or 1 when
      only the shaping is wanted: the classifier does not change any kernel map).

  Returns:
    (spec, resolved normalisation).

  Raises:
    ConfigError: incompatible combination, bad model keys, or a num_classes mismatch.
  """
  m, s = config.model, config.shaping
  norm = compatibility.check_compatible(
      name=m.name, variant=m.variant, normalization=m.normalization,
      activation=m.activation, method=s.method, resavg=m.resavg, pooling=m.pooling)
  check_shaping_keys(s)
  if m.num_classes != -1:
    if num_classes is not None and num_classes != m.num_classes:
      raise ConfigError(f"model.num_classes={m.num_classes} does not match the dataset's "
                        f"{num_classes} classes; set model.num_classes=-1 to take it from "
                        "the dataset")
    num_classes = m.num_classes
  spec = registry.spec_from_config(m, num_classes=num_classes or 1, normalization=norm,
                                   shortcut_weight=float(s.shortcut_weight))
  return spec, norm


def _graph(spec: Any):
  from dksflax.shaping import architecture_graphs  # pylint: disable=import-outside-toplevel
  return architecture_graphs.kernel_graph_for(spec)


def local_c_map_fn(act: TransformedActivation) -> Callable[[Any], Any]:
  """A fast, vectorised local C map (q = 1) of `act` for whole-network maps.

  Scaled leaky ReLUs use the closed form of TAT §4.3 (`dksflax.shaping.tat`); other
  activations a Chebyshev table of the exact map (`dksflax.shaping.map_tables`), accurate
  to ~1e-5 for rectifiers and near machine precision for smooth activations.
  """
  if act.base == "leaky_relu" and act.alpha > 0 and act.beta == 0.0 and act.delta == 0.0:
    from dksflax.shaping.tat import leaky_relu_c_map  # pylint: disable=import-outside-toplevel
    slope = dict(act.base_params)["negative_slope"]
    return lambda c: leaky_relu_c_map(c, slope)
  from dksflax.shaping import map_tables  # pylint: disable=import-outside-toplevel
  return map_tables.tabulated_local_c_map(act)


def _shaped_derived(graph: Any, act: TransformedActivation) -> dict[str, Any]:
  """Network quantities of a q=1 net with local maps of `act` (DKS §17, TAT App. B)."""
  from dksflax.shaping import kernel_graph as kg  # pylint: disable=import-outside-toplevel
  r = local_c_map_fn(act)
  psi = float(maps.local_c_slope(act))
  derived = {
      "q_at_1": float(maps.local_q_map(act, 1.0)),
      "q_slope": float(maps.local_q_slope(act, 1.0)),
      "local_c0": float(maps.local_c0(act)),
      "psi": psi,
      "max_slope_mu_psi": float(kg.max_slope_func(graph)(psi)),
      "max_c0": float(kg.max_c0_func(graph)(r)),
      "network_c0": float(kg.network_c_map(graph, r)(0.0)),
      "nonlinear_layers": int(kg.count_nonlinear(graph)),
  }
  base = act.base_activation()
  if base.kink_order is None or base.kink_order >= 2:
    kappa = float(maps.local_c_curvature(act))
    derived["kappa"] = kappa
    if abs(psi - 1.0) < 1e-6:
      derived["max_curvature"] = float(kg.max_curvature_func(graph)(kappa))
  return derived


def shaping_for(config: ml_collections.ConfigDict) -> ShapingPlan:
  """The shaping `config` yields: activation transform, init variances, derived maps.

  Args:
    config: the full config (reads model.* and shaping.*).

  Returns:
    A ShapingPlan (JSON via `.to_dict()`).

  Raises:
    ConfigError: an incompatible (model, method, activation) combination or bad keys.
    ShapingError: the solver has no solution (e.g. TAT's eta unreachable for a shallow net).
  """
  spec, norm = resolve_spec(config)
  m, s = config.model, config.shaping
  method, act_name = s.method, m.activation
  shortcut = float(s.shortcut_weight) if m.variant == "rescaled" else None
  common = dict(method=method, weight_init=s.weight_init, shortcut_weight=shortcut,
                normalization=norm)
  if method in ("dks", "tat"):
    graph = _graph(spec)
    from dksflax.shaping import kernel_graph as kg  # pylint: disable=import-outside-toplevel
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      if method == "dks":
        from dksflax.shaping.dks import solve_dks  # pylint: disable=import-outside-toplevel
        result = solve_dks(act_name, max_slope_func=kg.max_slope_func(graph),
                           zeta=float(s.zeta))
        solver = "solve_dks"
        act = result.transformed()
      elif compatibility.tat_flavour(act_name) == "lrelu":
        from dksflax.shaping.tat import solve_tat_lrelu  # pylint: disable=import-outside-toplevel
        result = solve_tat_lrelu(max_c0_func=kg.max_c0_func(graph), eta=float(s.eta))
        solver = "solve_tat_lrelu"
        act = result.transformed()
      else:
        from dksflax.shaping.tat import solve_tat_smooth  # pylint: disable=import-outside-toplevel
        result = solve_tat_smooth(act_name, max_curvature_func=kg.max_curvature_func(graph),
                                  tau=float(s.tau))
        solver = "solve_tat_smooth"
        act = result.transformed()
    notes += [str(w.message) for w in caught]
    for w in caught:
      warnings.warn(w.message, w.category, stacklevel=2)
    res = result.to_dict() if hasattr(result, "to_dict") else dataclasses.asdict(result)
    return ShapingPlan(activation=act, weight_var=1.0, bias_var=0.0, solver=solver,
                       solver_result=_floatify(res), derived=_shaped_derived(graph, act),
                       notes=tuple(notes), **common)
  base = get_activation(act_name)
  identity = TransformedActivation(act_name, base.params)
  if method == "eoc":
    from dksflax.shaping.eoc import eoc  # pylint: disable=import-outside-toplevel
    result = eoc(act_name, q_star=float(s.eoc_q_star))
    res = result.to_dict() if hasattr(result, "to_dict") else dataclasses.asdict(result)
    return ShapingPlan(activation=identity, weight_var=float(result.weight_var),
                       bias_var=float(result.bias_var), solver="eoc",
                       solver_result=_floatify(res), **common)
  weight_var = he_weight_var(act_name) if s.weight_var == -1 else float(s.weight_var)
  notes = {
      "none": "no shaping: the raw activation with fan-in scaled weights",
      "lsuv": "LSUV (Mishkin & Matas 2016): orthonormal pre-init, then each layer rescaled to "
              "unit output variance on the sample batch",
      "fixup": "Fixup (Zhang et al. 2019): last branch layers and classifier zero, other "
               "branch layers scaled by L^(-1/(2m-2)), scalar biases and multipliers",
      "skipinit": "SkipInit (De & Smith 2020): a zero-initialised gain on every residual "
                  "branch, so each block is its shortcut at init",
      "risotto": "RISOTTO: looks-linear residual branches making every block an orthogonal "
                 "map at init (dksflax.init.risotto)",
  }[method]
  return ShapingPlan(activation=identity, weight_var=weight_var, bias_var=0.0,
                     notes=(notes,), **common)
