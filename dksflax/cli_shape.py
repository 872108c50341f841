"""``dksflax shape``: solve the kernel shaping of a network and print it as JSON.

  dksflax shape --arch resnet50 --variant vanilla --method tat --activation leaky_relu \\
      --eta 0.9 [--plot out.png]
  dksflax shape --arch wrn --depth 40 --width 2 --variant rescaled --method dks --zeta 1.5
  dksflax shape --arch mlp --depth 100 --method eoc --activation tanh
  dksflax shape --config configs/X.py[:ARG]      (model.* and shaping.* of a config file)

The network's maximal slope / C(0) / curvature functions are derived from its kernel graph
(`dksflax.shaping.architecture_graphs.kernel_graph_for`), built from the same spec as the
Flax model, and handed to the solvers of DKS (§21.2), TAT (§4, Appendix B) or EOC. The
JSON gives the activation parameters and what they achieve: the local map values, the
maximal function at the target, and the whole network's C(0) and slope. ``--plot`` draws
the local and network C maps before shaping (the raw activation with fan-in weights,
sigma_w^2 = 1) and after.

Pure numpy/scipy: neither JAX nor TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from dksflax.errors import ConfigError, check_choice
from dksflax.shaping import architectures as arch_lib
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.architecture_graphs import kernel_graph_for
from dksflax.shaping.map_tables import fixed_point_layer_map, tabulated_local_c_map

ARCHS = ("resnet50", "resnet101", "resnet152", "resnet", "wrn", "mlp")
METHODS = ("dks", "tat", "eoc")
DEFAULT_ACTIVATION = {"dks": "tanh", "tat": "leaky_relu", "eoc": "tanh"}
PLOT_POINTS = 81


@dataclasses.dataclass(frozen=True)
class ShapeRequest:
  """What to shape: the architecture (model.* keys) and the method (shaping.* keys).

  Attributes:
    arch: one of ARCHS. (Default: "mlp")
    depth: MLP layers (100), WRN depth 6n+4 (28), or the ResNet-V2 depth for "resnet".
    width: MLP width (256) or WRN widening factor (2); kernel maps do not depend on it.
    variant: standard, rescaled or vanilla. (Default: "vanilla")
    normalization: none / batch_norm / layer_norm; None takes the spec's default (batch
      norm for standard ResNets, which kernel shaping refuses). (Default: None)
    shortcut_weight: w of rescaled sums w*x + sqrt(1-w^2)*R(x), TAT Eq. 6. (Default: 0.9)
    stem: ResNet-V2 stem, imagenet (default) or cifar.
    pooling: mean or weighted_mean. (Default: "mean")
    resavg: ResAvg transitions. (Default: False)
    method: dks, tat or eoc. (Default: "dks")
    activation: activation name; None: tanh (dks, eoc) or leaky_relu (tat).
    zeta: DKS maximal-slope target, DKS §16.6. (Default: 1.5)
    eta: TAT leaky-ReLU maximal C(0) target, TAT §4.3. (Default: 0.9)
    tau: smooth-TAT maximal curvature target, TAT §4.2. (Default: 0.3)
    q_star: EOC fixed point. (Default: 1.0)
  """

  arch: str = "mlp"
  depth: int | None = None
  width: int | None = None
  variant: str = "vanilla"
  normalization: str | None = None  # None: the spec's default (BN for standard nets)
  shortcut_weight: float = 0.9
  stem: str | None = None
  pooling: str = "mean"
  resavg: bool = False
  method: str = "dks"
  activation: str | None = None
  zeta: float = 1.5
  eta: float = 0.9
  tau: float = 0.3
  q_star: float = 1.0

  @property
  def activation_name(self) -> str:
    return self.activation or DEFAULT_ACTIVATION[self.method]


def spec_for(req: ShapeRequest) -> arch_lib.ResNetSpec | arch_lib.MLPSpec:
  """The architecture spec of a request (the one the Flax model is built from).

  Args:
    req: the request.

  Returns:
    A ResNetSpec (resnet*, wrn) or MLPSpec.

  Raises:
    ConfigError: unknown architecture or a depth it cannot have.
  """
  check_choice("--arch", req.arch, ARCHS)
  if req.arch == "mlp":
    return arch_lib.mlp_spec(req.depth or 100, req.width or 256,
                             normalization=req.normalization or "none")
  if req.arch == "wrn":
    return arch_lib.wide_resnet_spec(
        req.depth or 28, req.width or 2, variant=req.variant,
        shortcut_weight=req.shortcut_weight, normalization=req.normalization,
        pooling=req.pooling, resavg=req.resavg)
  depth = req.depth or 50
  if req.arch != "resnet":
    depth = int(req.arch[len("resnet"):])
    if req.depth not in (None, depth):
      raise ConfigError(f"--depth={req.depth} contradicts --arch={req.arch}; use --arch "
                        "resnet --depth D for other ResNet-V2 depths")
  return arch_lib.resnet_v2_spec(
      depth, variant=req.variant, shortcut_weight=req.shortcut_weight,
      normalization=req.normalization, stem=req.stem or "imagenet", pooling=req.pooling,
      resavg=req.resavg)


def closed_form_c_map(activation: Any) -> Callable[[Any], Any] | None:
  """C(c) of a raw ReLU / leaky ReLU in closed form (TAT Eq. 20), else None.

  These are positively homogeneous, so C does not depend on q (DKS §18.6).
  """
  from dksflax.shaping import activations, tat  # pylint: disable=g-import-not-at-top
  if isinstance(activation, str):
    activation = activations.get_activation(activation)
  if isinstance(activation, activations.Activation) and activation.name in ("relu",
                                                                            "leaky_relu"):
    slope = activation.params_dict.get("negative_slope", 0.0)
    return lambda c: tat.leaky_relu_c_map(c, slope)
  return None


def fast_local_c_map(activation: Any) -> Callable[[Any], Any]:
  """C(c) at q = 1, vectorised: the closed form if there is one, else a Chebyshev table."""
  return closed_form_c_map(activation) or tabulated_local_c_map(activation)


def eoc_layer_map(activation: Any, q_star: float = 1.0
                  ) -> tuple[Any, Callable[[Any, Any, Any], tuple[Any, Any, Any]], float]:
  """The edge of chaos (Poole et al. 2016) of a raw activation, ready for network maps.

  Args:
    activation: the raw activation (name or Activation).
    q_star: the fixed point of the Q map. (Default: 1.0)

  Returns:
    (EOCParams, nonlinear layer map for `kg.network_qc_map`, the network input q = Q(q*)
    that puts every nonlinear layer of an EOC network at its fixed point q*).

  Raises:
    ShapingError: no edge of chaos at q* for this activation.
  """
  from dksflax.shaping import maps  # pylint: disable=g-import-not-at-top
  from dksflax.shaping.eoc import eoc  # pylint: disable=g-import-not-at-top
  params = eoc(activation, q_star=q_star)
  layer_map = fixed_point_layer_map(activation, q_star, c_map=closed_form_c_map(activation))
  return params, layer_map, float(maps.local_q_map(activation, q_star))


def eoc_network_map(graph: kg.Node, activation: Any, q_star: float = 1.0
                    ) -> tuple[Callable[[Any], Any], Any]:
  """The network C map of the raw activation on the edge of chaos (Poole et al. 2016).

  Every affine layer gets the EOC variances, and the input q is Q(q*), so that every
  nonlinear layer sees its fixed point q* (one C-map table serves all layers).

  Args:
    graph: the network's kernel graph.
    activation: the raw activation (name or Activation).
    q_star: the fixed point of the Q map. (Default: 1.0)

  Returns:
    (c -> network c, EOCParams).

  Raises:
    ShapingError: no edge of chaos at q* for this activation.
  """
  params, layer_map, q_in = eoc_layer_map(activation, q_star)
  g = kg.with_affine_variances(graph, params.weight_var, params.bias_var)
  return (lambda c: kg.network_qc_map(g, layer_map, q_in, q_in, c)[2]), params


def _as_dict(result: Any) -> dict[str, Any]:
  if hasattr(result, "to_dict"):
    return result.to_dict()
  return {k: (list(v) if isinstance(v, tuple) else v)
          for k, v in dataclasses.asdict(result).items()}


def _dominant(values: list[tuple[str, float]]) -> dict[str, Any]:
  path, value = max(values, key=lambda pv: pv[1])
  root = values[0][1]
  return {"value": value, "network": root, "attained_by": path}


def solve(req: ShapeRequest, spec: Any = None) -> dict[str, Any]:
  """Solves the request and returns a JSON-able report plus the maps for plotting.

  Args:
    req: the request.
    spec: the architecture spec, if already built (else `spec_for(req)`).

  Returns:
    {"report": dict, "graph": the kernel graph, "shaped_local": local C map table (None
    for EOC), "shaped_network": network C map (vectorised, from the table),
    "raw_activation": the untransformed activation}.

  Raises:
    ConfigError / ShapingError: bad values or unreachable targets (raised by the graph
      builder or the solvers, before or instead of any result).
  """
  from dksflax.shaping import activations, maps  # pylint: disable=g-import-not-at-top

  if req.method not in METHODS:
    raise ConfigError(
        f"shaping.method={req.method!r}: `dksflax shape` solves the kernel-shaping methods "
        f"{', '.join(METHODS)}; fixup, lsuv, skipinit, risotto and none set weights without "
        "a kernel-map solve (see dksflax.models.shaping_plan.shaping_for)")
  spec = spec if spec is not None else spec_for(req)
  graph = kernel_graph_for(spec)
  name = req.activation_name
  raw = activations.get_activation(name)
  network = {"spec": type(spec).__name__, "depth": getattr(spec, "depth", None),
             "nonlinear_layers_on_longest_path": kg.count_nonlinear(graph)}
  report: dict[str, Any] = {"network": network, "method": req.method, "activation": name}

  if req.method == "dks":
    from dksflax.shaping.dks import solve_dks  # pylint: disable=g-import-not-at-top
    mu = kg.max_slope_func(graph)
    params = solve_dks(name, max_slope_func=mu, zeta=req.zeta)
    act = params.transformed()
    r = lambda c: maps.local_c_map(act, c)  # noqa: E731  (exact, for scalars)
    slopes = kg.subnetwork_values(graph, lambda x: params.psi * x, 1.0, ln_mode="identity")
    report["targets"] = {"zeta": req.zeta}
    report["params"] = _as_dict(params)
    report["achieved"] = {
        "psi": params.psi, "max_slope_mu_psi": _dominant(slopes),
        "local_c0": float(maps.local_c0(act)), "local_c_slope": float(maps.local_c_slope(act)),
        "local_q1": float(maps.local_q_map(act, 1.0)),
        "network_c0": float(kg.network_c_map(graph, r)(0.0))}
    return _solved(report, graph, act, raw)

  if req.method == "tat" and name in ("leaky_relu", "relu"):
    if name == "relu":
      raise ConfigError("--method tat with --activation relu: TAT for rectifiers solves the "
                        "negative slope (Tailored ReLU, TAT §4.3): use --activation "
                        "leaky_relu, or a smooth activation for smooth TAT (TAT §4.2)")
    from dksflax.shaping import tat  # pylint: disable=g-import-not-at-top
    params = tat.solve_tat_lrelu(max_c0_func=kg.max_c0_func(graph), eta=req.eta)
    act = activations.get_activation("leaky_relu", negative_slope=params.negative_slope)
    r = lambda c: tat.leaky_relu_c_map(c, params.negative_slope)  # noqa: E731 (TAT Eq. 20)
    report["targets"] = {"eta": req.eta}
    report["params"] = _as_dict(params)
    report["achieved"] = {
        "max_c0": _dominant(kg.subnetwork_values(graph, r, 0.0)),
        "local_c0": float(maps.local_c0(act)),
        "local_c_slope": float(maps.local_c_slope(act)),
        "local_q1": float(params.output_scale**2 * maps.local_q_map(act, 1.0))}
    return _solved(report, graph, act, raw, table=r)

  if req.method == "tat":
    from dksflax.shaping.tat import solve_tat_smooth  # pylint: disable=g-import-not-at-top
    params = solve_tat_smooth(name, max_curvature_func=kg.max_curvature_func(graph),
                              tau=req.tau)
    act = params.transformed()
    r = lambda c: maps.local_c_map(act, c)  # noqa: E731
    curv = kg.subnetwork_values(graph, lambda x: x + params.kappa, 0.0, ln_mode="centred")
    report["targets"] = {"tau": req.tau}
    report["params"] = _as_dict(params)
    report["achieved"] = {
        "kappa": params.kappa, "max_curvature": _dominant(curv),
        "local_c_slope": float(maps.local_c_slope(act)),
        "local_c_curvature": float(maps.local_c_curvature(act)),
        "local_q1": float(maps.local_q_map(act, 1.0)),
        "network_c0": float(kg.network_c_map(graph, r)(0.0))}
    return _solved(report, graph, act, raw)

  network, params = eoc_network_map(graph, raw, req.q_star)
  report["targets"] = {"q_star": req.q_star}
  report["params"] = _as_dict(params)
  report["achieved"] = {"network_c0": float(network(0.0))}
  return {"report": report, "graph": graph, "shaped_local": None, "shaped_network": network,
          "raw_activation": raw}


class _Lazy:
  """A vectorised function built on first call (tables cost quadratures; JSON needs none)."""

  def __init__(self, build: Callable[[], Callable[[Any], Any]]):
    self._build = build
    self._fn: Callable[[Any], Any] | None = None

  def __call__(self, c: Any) -> Any:
    if self._fn is None:
      self._fn = self._build()
    return self._fn(c)


def _solved(report: dict[str, Any], graph: kg.Node, act: Any, raw: Any,
            table: Callable[[Any], Any] | None = None) -> dict[str, Any]:
  local = table or _Lazy(lambda: tabulated_local_c_map(act))
  return {"report": report, "graph": graph, "shaped_local": local,
          "shaped_network": kg.network_c_map(graph, local), "raw_activation": raw}


def plot(req: ShapeRequest, solved: dict[str, Any], path: str) -> str:
  """Local and network C maps before and after shaping, as a PNG.

  "Before" is the raw activation: its local C map at q = 1 and, where the activation has
  an edge of chaos, the network on it (the best unshaped initialisation, as compared in
  TAT Figure 2).

  Args:
    req: the request.
    solved: the result of `solve`.
    path: output PNG file.

  Returns:
    `path`.
  """
  from dksflax.shaping.plots import plot_c_maps  # pylint: disable=g-import-not-at-top
  c = np.linspace(-1.0, 1.0, PLOT_POINTS)
  raw = solved["raw_activation"]
  local = {f"{raw.name} (raw)": (c, fast_local_c_map(raw)(c))}
  if solved["shaped_local"] is not None:
    local[f"{req.method} transformed"] = (c, solved["shaped_local"](c))
  network = {}
  if req.method != "eoc":
    try:
      network[f"{raw.name} on the edge of chaos"] = (
          c, eoc_network_map(solved["graph"], raw, req.q_star)[0](c))
    except ValueError as e:  # no EOC for this activation: show the shaped map only
      solved["report"]["plot_note"] = f"no unshaped (EOC) curve: {e}"
  network[req.method] = (c, solved["shaped_network"](c))
  return plot_c_maps(path, {"local C map": local, "network C map": network},
                     title=f"{req.arch} {req.variant}: {req.method} with {raw.name}")



ARCH_FIELDS = ("arch", "depth", "width", "variant", "normalization", "shortcut_weight",
               "stem", "pooling", "resavg")


def load_config(path: str) -> Any:
  """Loads ``file.py[:arg]`` (its ``get_config([arg])``) and validates it.

  Raises:
    ConfigError: the file cannot be loaded, lacks get_config, or has a bad value.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  file, _, arg = path.partition(":")
  try:
    module_spec = importlib.util.spec_from_file_location("dksflax_shape_config", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except (OSError, AttributeError, ImportError) as e:
    raise ConfigError(f"--config={path!r} could not be loaded: {e}") from None
  from dksflax.configlib import validate_config  # pylint: disable=g-import-not-at-top
  validate_config(config)
  return config


def request_from_args(ns: argparse.Namespace) -> tuple[ShapeRequest, Any]:
  """The request (and, with --config, the config's own architecture spec).

  With ``--config`` the architecture is the config's, built by the model registry exactly
  as training builds it (`dksflax.models.shaping_plan.resolve_spec`, which imports no JAX);
  method flags (--method, --activation, --zeta, --eta, --tau, --q-star) override the
  config's shaping.* values, architecture flags are refused.

  Raises:
    ConfigError: architecture flags together with --config, or a bad config.
  """
  fields = {f.name for f in dataclasses.fields(ShapeRequest)}
  overrides = {k: v for k, v in vars(ns).items() if k in fields and v is not None}
  if not ns.config:
    return dataclasses.replace(ShapeRequest(), **overrides), None
  clash = sorted(set(overrides) & set(ARCH_FIELDS))
  if clash:
    raise ConfigError(f"--config fixes the architecture; drop {['--' + c for c in clash]} or "
                      "change model.* in the config")
  config = load_config(ns.config)
  from dksflax.models.shaping_plan import resolve_spec  # pylint: disable=g-import-not-at-top
  spec, normalization = resolve_spec(config)
  m, s = config.model, config.shaping
  req = ShapeRequest(
      arch=m.name, depth=m.depth, width=m.width, variant=m.variant,
      normalization=normalization, shortcut_weight=s.shortcut_weight, stem=m.stem,
      pooling=m.pooling, resavg=m.resavg, method=s.method, activation=m.activation,
      zeta=s.zeta, eta=s.eta, tau=s.tau, q_star=s.eoc_q_star)
  return dataclasses.replace(req, **overrides), spec


def shape_command(ns: argparse.Namespace) -> int:
  """Runs ``dksflax shape``: prints the JSON report, optionally writes the plot.

  Args:
    ns: the parsed flags.

  Returns:
    0 (errors are raised and turned into exit status 2 by `dksflax.cli.main`).
  """
  req, spec = request_from_args(ns)
  solved = solve(req, spec)
  if ns.plot:
    solved["report"]["plot"] = plot(req, solved, ns.plot)
  print(json.dumps(solved["report"], indent=2, sort_keys=True))
  return 0


def register(subparsers: argparse._SubParsersAction) -> None:
  """Adds ``shape`` to the ``dksflax`` parser."""
  p = subparsers.add_parser(
      "shape", help="solve DKS / TAT / EOC for an architecture and print the result (JSON)",
      description=__doc__.split("\n\n")[0])
  p.add_argument("--config", help="config file (file.py[:arg]) to read model.* and shaping.* "
                 "from; flags given explicitly override it")
  p.add_argument("--arch", choices=ARCHS, help="architecture (default: mlp)")
  p.add_argument("--depth", type=int, help="MLP: nonlinear layers (100); WRN: 6n+4 (28); "
                 "resnet: 50/101/152/200")
  p.add_argument("--width", type=int, help="MLP width (256) or WRN widening factor (2)")
  p.add_argument("--variant", choices=arch_lib.VARIANTS, help="(default: vanilla)")
  p.add_argument("--normalization", choices=arch_lib.NORMALIZATIONS, help="(default: none)")
  p.add_argument("--shortcut-weight", dest="shortcut_weight", type=float,
                 help="w in w*x + sqrt(1-w^2)*R(x) for rescaled nets (default: 0.9)")
  p.add_argument("--stem", choices=("imagenet", "cifar"), help="ResNet-V2 stem")
  p.add_argument("--pooling", choices=arch_lib.POOLINGS, help="(default: mean)")
  p.add_argument("--resavg", action="store_const", const=True, help="ResAvg transitions")
  p.add_argument("--method", choices=METHODS, help="(default: dks)")
  p.add_argument("--activation", help="activation name (default: tanh; leaky_relu for tat)")
  p.add_argument("--zeta", type=float, help="DKS maximal slope target (default: 1.5)")
  p.add_argument("--eta", type=float, help="TAT leaky-ReLU C(0) target (default: 0.9)")
  p.add_argument("--tau", type=float, help="smooth TAT curvature target (default: 0.3)")
  p.add_argument("--q-star", dest="q_star", type=float, help="EOC fixed point q* (1.0)")
  p.add_argument("--plot", help="write local and network C maps to this PNG")
  p.set_defaults(func=shape_command)
