"""Solve-time benchmark: dksflax's DKS/TAT solvers, side by side with the official ``dks``.

Three tables:

1. one solve of each method (DKS, smooth TAT, TAT leaky ReLU) for several activations on a
   100-layer vanilla net and rescaled ResNet-V2 50/101/152 (shortcut weight 0.8; the
   maximal slope / C(0) / curvature functions come from ``dksflax.shaping.kernel_graph``
   and are handed to both solvers);
2. solve time vs depth, vanilla nets of 10 to 1000 layers (issue 9, "how cost grows");
3. the first solve in a fresh process (imports excluded; building the maximal function
   from the graph and cold caches included), for dksflax and the reference.

The official ``dks`` package (PyPI ``dks``, DeepMind; a reference, not a dependency) is
used when importable from ``--reference-path``; install it with

    .tools/bin/uv pip install --python .venv/bin/python --target /tmp/dksref dks==0.1.2

Its NumPy solver (``dks.base.activation_transform``) runs the same problems; both answers
and the speed ratio are printed. The two solvers are timed in alternation, ``--repeats``
rounds, each round timing a block of consecutive solves of ~5 ms per solver (timeit's
``number``), and the speed-up is the median of the per-round ratios (a load change on a
shared machine hits both); reference solves that take over a second run once. ``--write`` stores
the tables in ``benchmarks/RESULTS.md`` under "## shaping solve". Times are CPU seconds of
this process (``time.process_time``), which other jobs on the machine disturb less than
wall time.

Usage:
    .venv/bin/python benchmarks/bench_shaping_solve.py [--write] [--reference-all]
        [--repeats N] [--depths 10,30,100,300,1000] [--methods dks,tat-smooth,tat-lrelu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import _results  # noqa: E402
from dksflax.errors import ShapingError  # noqa: E402
from dksflax.shaping import kernel_graph as kg  # noqa: E402
from dksflax.shaping.architecture_graphs import kernel_graph_for, vanilla_chain  # noqa: E402
from dksflax.shaping.architectures import resnet_v2_spec  # noqa: E402
from dksflax.shaping.dks import solve_dks  # noqa: E402
from dksflax.shaping.tat import solve_tat_lrelu, solve_tat_smooth  # noqa: E402

SECTION = "shaping solve"
INSTALL_HINT = ("the official dks package is not importable; for a side-by-side comparison "
                "install it with\n  .tools/bin/uv pip install --python .venv/bin/python "
                "--target /tmp/dksref dks==0.1.2")

# (method, activation): which problems to solve on every architecture.
PROBLEMS = (("dks", "tanh"), ("dks", "softplus"), ("dks", "swish"), ("dks", "selu"),
            ("dks", "relu"), ("tat-smooth", "tanh"), ("tat-smooth", "softplus"),
            ("tat-lrelu", "leaky_relu"))
# Reference runs of DKS / smooth TAT take 0.3-16 s each; by default only these are
# compared (and every TAT leaky-ReLU row, ~0.1 s each).
REFERENCE_DEFAULT = {("vanilla-100", "dks", "tanh"), ("vanilla-100", "dks", "softplus"),
                     ("vanilla-100", "dks", "relu"), ("vanilla-100", "tat-smooth", "tanh"),
                     ("resnet50", "dks", "softplus")}
DEPTH_PROBLEMS = (("dks", "tanh"), ("tat-smooth", "tanh"), ("tat-lrelu", "leaky_relu"))
TARGETS = {"dks": 1.5, "tat-smooth": 0.3, "tat-lrelu": 0.9}   # zeta, tau, eta (the papers')
#: Shortcut weight of the rescaled ResNets (TAT Table 2; with 0.9, eta = 0.9 is out of reach
#: of a ResNet-50: even ReLU only gives C_f(0) = 0.888).
SHORTCUT_WEIGHT = 0.8
#: A reference solve slower than this (CPU s) is run once, not ``--repeats`` times.
SLOW_REFERENCE_S = 1.0
#: Each timed block runs consecutive solves for about this long (CPU s), as timeit's
#: ``number`` does: a sub-millisecond solve right after the other contender's block would
#: otherwise mostly measure refilling the caches (2-3x its warm time here).
BLOCK_S = 0.005
MAX_BLOCK_CALLS = 200


def _architectures() -> dict[str, Any]:
  graphs = {"vanilla-100": vanilla_chain(100)}
  for depth in (50, 101, 152):
    spec = resnet_v2_spec(depth, variant="rescaled", normalization="none",
                          shortcut_weight=SHORTCUT_WEIGHT)
    graphs[f"resnet{depth}"] = kernel_graph_for(spec)
  return graphs


def _ours(method: str, act: str, graph: Any) -> tuple[float, ...]:
  """One dksflax solve, maximal function built from the graph inside the timed call."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if method == "dks":
      p = solve_dks(act, max_slope_func=kg.max_slope_func(graph), zeta=TARGETS[method])
    elif method == "tat-smooth":
      p = solve_tat_smooth(act, max_curvature_func=kg.max_curvature_func(graph),
                           tau=TARGETS[method])
    else:
      t = solve_tat_lrelu(max_c0_func=kg.max_c0_func(graph), eta=TARGETS[method])
      return (t.negative_slope, t.output_scale)
  return (p.alpha, p.beta, p.delta, p.gamma)


def _reference(at: Any, method: str, act: str, graph: Any) -> tuple[float, ...]:
  """One solve by the dks package, on the same maximal function."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if method == "dks":
      params = at._get_activations_params(  # pylint: disable=protected-access
          [act], method="DKS", dks_params={"c_slope_1_target": TARGETS[method]},
          max_slope_func=kg.max_slope_func(graph))[act]
    elif method == "tat-smooth":
      params = at._get_activations_params(  # pylint: disable=protected-access
          [act], method="TAT", tat_params={"c_curve_target": TARGETS[method]},
          max_curv_func=kg.max_curvature_func(graph))[act]
    else:
      c0 = kg.max_c0_func(graph)
      params = at._get_activations_params(  # pylint: disable=protected-access
          [act], method="TAT", tat_params={"c_val_0_target": TARGETS[method]},
          subnet_max_func=lambda x, r: c0(r))[act]
      return (float(params["negative_slope"]), float(params["output_scale"]))
  return (float(params.get("input_scale", 1.0)), float(params.get("input_shift", 0.0)),
          float(params["output_shift"]), float(params["output_scale"]))


def _cpu_time(fn: Callable[[], Any]) -> tuple[Any, float]:
  t = time.process_time()
  out = fn()
  return out, time.process_time() - t


def _block(fn: Callable[[], Any], first_s: float) -> tuple[Callable[[], float], int]:
  """A timer of ``n`` consecutive calls (CPU s per call), ``n`` filling ~BLOCK_S."""
  n = max(1, min(MAX_BLOCK_CALLS, math.ceil(BLOCK_S / max(first_s, 1e-6))))

  def timed() -> float:
    t = time.process_time()
    for _ in range(n):
      fn()
    return (time.process_time() - t) / n

  return timed, n


def _compare(ours: Callable[[], Any], ref: Callable[[], Any] | None,
             repeats: int) -> dict[str, Any]:
  """Times ours (and the reference) in alternating rounds; failures become messages.

  Each round times a block of consecutive solves per contender (see BLOCK_S), so that
  the caches the other contender's block left cold cost both the same small share.
  """
  row: dict[str, Any] = {"ours": None, "reference": None, "error": None, "ref_error": None}
  try:
    row["ours"], first = _cpu_time(ours)
  except ShapingError as e:
    row["error"] = str(e).split(":")[0]
    first = None
  ref_time = None
  if ref is not None:
    try:
      row["reference"], ref_time = _cpu_time(ref)
    except ValueError as e:   # the reference refuses some problems (its own rules)
      row["ref_error"] = str(e).split(".")[0]
  times, ref_times = [], []
  if row["ours"] is not None:
    ours_block, row["block"] = _block(ours, first)
    ref_block = None
    if row["reference"] is not None and ref_time < SLOW_REFERENCE_S:
      ref_block, row["ref_block"] = _block(ref, ref_time)
    for _ in range(repeats):
      times.append(ours_block())
      if ref_block is not None:
        ref_times.append(ref_block())
  row["first_s"] = first
  row["median_s"] = statistics.median(times) if times else first
  row["reference_s"] = statistics.median(ref_times) if ref_times else ref_time
  if row["ours"] is not None and row["reference"] is not None:
    pairs = list(zip(ref_times, times)) or [(ref_time, row["median_s"])]
    row["speedup"] = statistics.median(r / max(o, 1e-9) for r, o in pairs)
  return row


_COLD_SCRIPT = r"""
import json, logging, sys, time, warnings
sys.path.insert(0, {repo!r})
sys.path.append({ref_path!r})
warnings.simplefilter("ignore")
from dksflax.shaping.architecture_graphs import vanilla_chain
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.dks import solve_dks
from dksflax.shaping.tat import solve_tat_lrelu, solve_tat_smooth
method, who = {method!r}, {who!r}
if who == "dks":
  from dks.base import activation_transform as at
  logging.getLogger("absl").setLevel(logging.ERROR)
g = vanilla_chain(100)
t = time.process_time()
if who == "dksflax":
  if method == "dks":
    solve_dks("tanh", max_slope_func=kg.max_slope_func(g), zeta=1.5)
  elif method == "tat-smooth":
    solve_tat_smooth("tanh", max_curvature_func=kg.max_curvature_func(g), tau=0.3)
  else:
    solve_tat_lrelu(max_c0_func=kg.max_c0_func(g), eta=0.9)
elif method == "dks":
  at._get_activations_params(["tanh"], method="DKS", dks_params={{"c_slope_1_target": 1.5}},
                             max_slope_func=kg.max_slope_func(g))
elif method == "tat-smooth":
  at._get_activations_params(["tanh"], method="TAT", tat_params={{"c_curve_target": 0.3}},
                             max_curv_func=kg.max_curvature_func(g))
else:
  c0 = kg.max_c0_func(g)
  at._get_activations_params(["leaky_relu"], method="TAT", tat_params={{"c_val_0_target": 0.9}},
                             subnet_max_func=lambda x, r: c0(r))
print(json.dumps(time.process_time() - t))
"""


def _cold(method: str, who: str, ref_path: str) -> float:
  """CPU seconds of the first solve (vanilla-100, tanh / leaky ReLU) in a fresh process."""
  script = _COLD_SCRIPT.format(repo=str(REPO), ref_path=ref_path, method=method, who=who)
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=True, timeout=600)
  return float(json.loads(out.stdout.strip().splitlines()[-1]))


def _fmt(values: tuple[float, ...] | None) -> str:
  return "-" if values is None else ", ".join(f"{v:.9g}" for v in values)


def _rel_diff(ours: tuple[float, ...], ref: tuple[float, ...]) -> float:
  """Max relative difference, up to the sign flips of mirror solutions (odd phi, alpha<0)."""
  return max(abs(abs(a) - abs(b)) / max(abs(b), 1e-300) for a, b in zip(ours, ref))


def _ms(seconds: float | None) -> str:
  return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _print_row(label: str, row: dict[str, Any]) -> None:
  if row["ours"] is None:
    print(f"{label} ours: {row['error']}", flush=True)
    return
  line = (f"{label} ours {_ms(row['median_s']):>8s} ms (first {_ms(row['first_s'])} ms)  "
          f"[{_fmt(row['ours'])}]")
  if row["reference"] is not None:
    line += (f"\n{'':36s} dks  {_ms(row['reference_s']):>8s} ms  [{_fmt(row['reference'])}]  "
             f"speed-up {row['speedup']:,.1f}x, max rel diff "
             f"{_rel_diff(row['ours'], row['reference']):.1e}")
  elif row["ref_error"]:
    line += f"\n{'':36s} dks: {row['ref_error']}"
  print(line, flush=True)


def _load_reference(path: str) -> Any:
  if os.path.isdir(path):
    sys.path.append(path)   # after the venv: its numpy/scipy win
  try:
    import logging  # pylint: disable=import-outside-toplevel
    from dks.base import activation_transform as at  # pylint: disable=import-outside-toplevel
    logging.getLogger("absl").setLevel(logging.ERROR)
  except ImportError:
    print(INSTALL_HINT, flush=True)
    return None
  return at


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reference-path", default="/tmp/dksref")
  parser.add_argument("--reference-all", action="store_true",
                      help="run the reference on every problem (slow: up to ~16 s each)")
  parser.add_argument("--no-reference", action="store_true")
  parser.add_argument("--repeats", type=int, default=5,
                      help="timed rounds per problem after the first call (Default: 5)")
  parser.add_argument("--depths", default="10,30,100,300,1000",
                      help="vanilla-net depths of the solve-time-vs-depth table")
  parser.add_argument("--methods", default="dks,tat-smooth,tat-lrelu",
                      help="comma-separated subset of dks, tat-smooth, tat-lrelu")
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args(argv)
  methods = [m for m in args.methods.split(",") if m.strip()]
  unknown = sorted(set(methods) - set(TARGETS))
  if unknown:
    parser.error(f"--methods: unknown {unknown}; choose from {sorted(TARGETS)}")
  if args.repeats < 1:
    parser.error(f"--repeats={args.repeats} must be >= 1")
  depths = [int(d) for d in args.depths.split(",") if d.strip()]
  at = None if args.no_reference else _load_reference(args.reference_path)

  print("first solve in a fresh process, vanilla-100 (CPU ms, imports excluded):", flush=True)
  cold: dict[str, dict[str, float]] = {}
  for method in methods:
    cold[method] = {"dksflax": _cold(method, "dksflax", args.reference_path)}
    if at is not None and (args.reference_all or method == "tat-lrelu"):
      cold[method]["dks"] = _cold(method, "dks", args.reference_path)
    print(f"  {method:11s} " + ", ".join(f"{k} {v * 1e3:.2f} ms"
                                         for k, v in cold[method].items()), flush=True)

  rows = []
  for arch, graph in _architectures().items():
    for method, act in (p for p in PROBLEMS if p[0] in methods):
      use_ref = at is not None and (args.reference_all or method == "tat-lrelu"
                                    or (arch, method, act) in REFERENCE_DEFAULT)
      row = _compare(lambda: _ours(method, act, graph),
                     (lambda: _reference(at, method, act, graph)) if use_ref else None,
                     args.repeats)
      row.update(arch=arch, method=method, activation=act)
      rows.append(row)
      _print_row(f"{arch:12s} {method:10s} {act:10s}", row)

  print("solve time vs depth (vanilla nets):", flush=True)
  depth_rows = []
  for depth in depths:
    graph = vanilla_chain(depth)
    for method, act in (p for p in DEPTH_PROBLEMS if p[0] in methods):
      use_ref = at is not None and (args.reference_all or method == "tat-lrelu")
      row = _compare(lambda: _ours(method, act, graph),
                     (lambda: _reference(at, method, act, graph)) if use_ref else None,
                     args.repeats)
      row.update(arch=f"vanilla-{depth}", method=method, activation=act, depth=depth)
      depth_rows.append(row)
      _print_row(f"{'vanilla-' + str(depth):12s} {method:10s} {act:10s}", row)

  if args.write:
    _results.write_section(SECTION, _markdown(rows, depth_rows, cold, at is not None, args))


def _table(rows: list[dict]) -> list[str]:
  lines = ["| net | method | activation | dksflax (ms) | dksflax params | dks 0.1.2 (ms) | "
           "dks params | speed-up | max rel diff |", "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    if r["ours"] is None:
      lines.append(f"| {r['arch']} | {r['method']} | {r['activation']} | - | {r['error']} "
                   "| - | - | - | - |")
      continue
    ref = r["reference"]
    lines.append(
        f"| {r['arch']} | {r['method']} | {r['activation']} | {_ms(r['median_s'])} | "
        f"{_fmt(r['ours'])} | "
        + (f"{_ms(r['reference_s'])} | {_fmt(ref)} | {r['speedup']:,.1f}x | "
           f"{_rel_diff(r['ours'], ref):.1e} |" if ref is not None else
           f"- | {r['ref_error'] or '-'} | - | - |"))
  return lines


def _markdown(rows: list[dict], depth_rows: list[dict], cold: dict[str, dict[str, float]],
              have_ref: bool, args: argparse.Namespace) -> str:
  load = os.getloadavg()[0]
  cores = os.cpu_count() or 1
  shared = ": other jobs shared the cores" if load > 1.25 * cores else ""
  command = " ".join(["benchmarks/bench_shaping_solve.py", "--write"]
                     + (["--reference-all"] if args.reference_all else [])
                     + [f"--repeats {args.repeats}", f"--depths {args.depths}"]
                     + ([f"--methods {args.methods}"]
                        if len(args.methods.split(",")) < len(TARGETS) else []))
  lines = [f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: "
           f"{platform.machine()}, {cores} CPU cores (1-min load average {load:.1f} at the "
           f"end{shared}), Python {platform.python_version()}. Command: `.venv/bin/python "
           f"{command}`. Times are CPU milliseconds of one process (`time.process_time`), "
           f"the median of {args.repeats} rounds in which dksflax and dks alternate, each "
           f"round timing a block of consecutive solves of ~{BLOCK_S * 1e3:g} ms per "
           f"contender (dks solves over {SLOW_REFERENCE_S:g} s run once); the speed-up is "
           "the median of the per-round ratios. Both solvers get the same maximal function "
           "(`dksflax.shaping.kernel_graph`), built inside the timed call.", "",
           "First solve in a fresh process, vanilla-100, tanh (DKS, smooth TAT) or leaky "
           "ReLU (imports excluded): " + "; ".join(
               f"{m}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in c.items())
               for m, c in cold.items()) + ".", "",
           "Targets: zeta = 1.5 (DKS), tau = 0.3 (smooth TAT), eta = 0.9 (TAT leaky ReLU); "
           f"rescaled ResNets use shortcut weight {SHORTCUT_WEIGHT}. Parameters are (alpha, "
           "beta, delta, gamma), or (negative slope, output scale) for TAT leaky ReLU.", ""]
  lines += _table(rows)
  lines += ["", "### solve time vs depth", "",
            "Vanilla nets (L combined layers and an affine head), same targets; the TAT "
            "leaky-ReLU solve walks the network once per root-finder step, so its cost "
            "grows linearly with depth (for both solvers); DKS and smooth TAT of a vanilla "
            "net cost the same at every depth (the maximal function is a power).", ""]
  lines += _table(depth_rows)
  if not have_ref:
    lines += ["", "The official dks package was not installed: " + INSTALL_HINT.split("; ")[1]]
  lines += ["", "Notes: odd activations (tanh) may come out as the mirror solution (beta, "
            "delta) -> (-beta, -delta), compared up to sign. Kinked activations (relu, selu) "
            "differ by up to ~1e-4 because dks integrates across the kink with an unsplit "
            "100,000-node Gauss-Legendre rule; dksflax splits the integral at the kink "
            "(relu's closed form agrees with dksflax to 1e-10). TAT leaky ReLU: dks stops "
            "its bisection at |C_f(0) - eta| < 1e-8, dksflax solves to full precision "
            "(Brent's method), hence differences of ~1e-8 in the slope. dksflax evaluates "
            "the leaky-ReLU C map in closed form on floats (`dksflax.shaping.leaky_relu`) "
            "and the network through a compiled kernel graph "
            "(`dksflax.shaping.kernel_graph_program`, ~13 network evaluations per solve; "
            "dks's bisection needs ~27, each calling its NumPy C map once per layer)."]
  return "\n".join(lines)


if __name__ == "__main__":
  main()
