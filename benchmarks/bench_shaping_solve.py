"""Solve-time benchmark: dksflax's DKS/TAT solvers, side by side with the official ``dks``.

Times one solve of each method (DKS, smooth TAT, TAT leaky ReLU) for several activations
on a 100-layer vanilla net and rescaled ResNet-V2 50/101/152 (shortcut weight 0.8; the
maximal slope / C(0) / curvature functions come from ``dksflax.shaping.kernel_graph``),
plus the first solve in a fresh process (imports excluded, cold caches included).

The official ``dks`` package (PyPI ``dks``, DeepMind; a reference, not a dependency) is
used when importable from ``--reference-path``; install it with

    .tools/bin/uv pip install --python .venv/bin/python --target /tmp/dksref dks==0.1.2

Its NumPy solver (``dks.base.activation_transform``) runs the same problems; both answers
and the speed ratio are printed, and ``--write`` stores the table in
``benchmarks/RESULTS.md`` under "## shaping solve". Times are CPU seconds of this process
(``time.process_time``), which other jobs on the machine disturb less than wall time.

Usage:
    .venv/bin/python benchmarks/bench_shaping_solve.py [--write] [--reference-all]
"""

from __future__ import annotations

import argparse
import datetime
import json
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

from dksflax.shaping import kernel_graph as kg  # noqa: E402
from dksflax.shaping.architecture_graphs import kernel_graph_for, vanilla_chain  # noqa: E402
from dksflax.shaping.architectures import resnet_v2_spec  # noqa: E402
from dksflax.shaping.dks import solve_dks  # noqa: E402
from dksflax.shaping.tat import solve_tat_lrelu, solve_tat_smooth  # noqa: E402

SECTION = "## shaping solve"
INSTALL_HINT = ("the official dks package is not importable; for a side-by-side comparison "
                "install it with\n  .tools/bin/uv pip install --python .venv/bin/python "
                "--target /tmp/dksref dks==0.1.2")

# (method, activation): which problems to solve on every architecture.
PROBLEMS = (("dks", "tanh"), ("dks", "softplus"), ("dks", "swish"), ("dks", "selu"),
            ("dks", "relu"), ("tat-smooth", "tanh"), ("tat-smooth", "softplus"),
            ("tat-lrelu", "leaky_relu"))
# Reference runs take ~10 s each; by default only these are compared.
REFERENCE_DEFAULT = {("vanilla-100", "dks", "tanh"), ("vanilla-100", "dks", "softplus"),
                     ("vanilla-100", "dks", "relu"), ("vanilla-100", "tat-smooth", "tanh"),
                     ("vanilla-100", "tat-lrelu", "leaky_relu"),
                     ("resnet50", "dks", "softplus"), ("resnet101", "tat-lrelu", "leaky_relu")}
TARGETS = {"dks": 1.5, "tat-smooth": 0.3, "tat-lrelu": 0.9}   # zeta, tau, eta (the papers')
#: Shortcut weight of the rescaled ResNets (TAT Table 2; with 0.9, eta = 0.9 is out of reach
#: of a ResNet-50: even ReLU only gives C_f(0) = 0.888).
SHORTCUT_WEIGHT = 0.8


def _architectures() -> dict[str, Any]:
  graphs = {"vanilla-100": vanilla_chain(100)}
  for depth in (50, 101, 152):
    spec = resnet_v2_spec(depth, variant="rescaled", normalization="none",
                          shortcut_weight=SHORTCUT_WEIGHT)
    graphs[f"resnet{depth}"] = kernel_graph_for(spec)
  return graphs


def _ours(method: str, act: str, graph: Any) -> tuple[float, ...]:
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


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
  """Returns (result, first-call CPU s, median CPU s of `repeats` further calls)."""
  t = time.process_time()
  out = fn()
  first = time.process_time() - t
  times = []
  for _ in range(repeats):
    t = time.process_time()
    fn()
    times.append(time.process_time() - t)
  return out, first, statistics.median(times) if times else first


_COLD_SCRIPT = r"""
import json, sys, time, warnings
sys.path.insert(0, {repo!r})
from dksflax.shaping.architecture_graphs import vanilla_chain
from dksflax.shaping import kernel_graph as kg
from dksflax.shaping.dks import solve_dks
from dksflax.shaping.tat import solve_tat_lrelu, solve_tat_smooth
g = vanilla_chain(100)
mu, c0, curv = kg.max_slope_func(g), kg.max_c0_func(g), kg.max_curvature_func(g)
method = {method!r}
t = time.process_time()
if method == "dks":
  solve_dks("tanh", max_slope_func=mu, zeta=1.5)
elif method == "tat-smooth":
  solve_tat_smooth("tanh", max_curvature_func=curv, tau=0.3)
else:
  solve_tat_lrelu(max_c0_func=c0, eta=0.9)
print(json.dumps(time.process_time() - t))
"""


def _cold(method: str) -> float:
  out = subprocess.run([sys.executable, "-c", _COLD_SCRIPT.format(repo=str(REPO),
                                                                 method=method)],
                       capture_output=True, text=True, check=True, timeout=600)
  return float(json.loads(out.stdout.strip().splitlines()[-1]))


def _fmt(values: tuple[float, ...] | None) -> str:
  return "-" if values is None else ", ".join(f"{v:.6g}" for v in values)


def _rel_diff(ours: tuple[float, ...], ref: tuple[float, ...]) -> float:
  """Max relative difference, up to the sign flips of mirror solutions (odd phi, alpha<0)."""
  return max(abs(abs(a) - abs(b)) / max(abs(b), 1e-300) for a, b in zip(ours, ref))


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reference-path", default="/tmp/dksref")
  parser.add_argument("--reference-all", action="store_true",
                      help="run the reference on every problem (slow: ~10 s each)")
  parser.add_argument("--no-reference", action="store_true")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
  args = parser.parse_args(argv)

  at = None
  if not args.no_reference:
    if os.path.isdir(args.reference_path):
      sys.path.append(args.reference_path)   # after the venv: its numpy/scipy win
    try:
      import logging  # pylint: disable=import-outside-toplevel
      from dks.base import activation_transform as at  # pylint: disable=import-outside-toplevel
      logging.getLogger("absl").setLevel(logging.ERROR)
    except ImportError:
      print(INSTALL_HINT, flush=True)

  print("cold first solve in a fresh process (CPU s, imports excluded):", flush=True)
  cold = {m: _cold(m) for m in ("dks", "tat-smooth", "tat-lrelu")}
  for m, v in cold.items():
    print(f"  {m:11s} {v * 1e3:7.1f} ms", flush=True)

  rows = []
  for arch, graph in _architectures().items():
    for method, act in PROBLEMS:
      ours, first, median = _timed(lambda: _ours(method, act, graph), args.repeats)
      ref, ref_time = None, None
      if at is not None and (args.reference_all or (arch, method, act) in REFERENCE_DEFAULT):
        with warnings.catch_warnings():
          warnings.simplefilter("ignore")
          t = time.process_time()
          try:
            ref = _reference(at, method, act, graph)
          except ValueError as e:   # the reference rejects some problems (its own rules)
            print(f"  reference failed on {arch} {method} {act}: {e}", flush=True)
          ref_time = time.process_time() - t
      row = {"arch": arch, "method": method, "activation": act, "ours": ours,
             "first_s": first, "median_s": median, "reference": ref, "reference_s": ref_time}
      rows.append(row)
      line = (f"{arch:12s} {method:10s} {act:10s} ours {median * 1e3:7.1f} ms "
              f"(first {first * 1e3:6.1f} ms)  [{_fmt(ours)}]")
      if ref is not None:
        line += (f"\n{'':34s} dks  {ref_time:7.2f} s  [{_fmt(ref)}]  speed-up "
                 f"{ref_time / median:,.0f}x, max rel diff {_rel_diff(ours, ref):.1e}")
      print(line, flush=True)

  if args.write:
    _write_results(rows, cold, at is not None)


def _write_results(rows: list[dict], cold: dict[str, float], have_ref: bool) -> None:
  load = os.getloadavg()[0]
  lines = [SECTION, "",
           f"Date: {datetime.date.today().isoformat()}. Machine: {platform.machine()}, "
           f"{os.cpu_count()} CPU cores (1-min load average {load:.1f}: other jobs shared the "
           f"cores), Python {platform.python_version()}. Command: `.venv/bin/python "
           f"benchmarks/bench_shaping_solve.py --write`. Times are CPU seconds of one "
           f"process (`time.process_time`).", "",
           "First solve in a fresh process (imports excluded): " + ", ".join(
               f"{m} {v * 1e3:.1f} ms" for m, v in cold.items()) + ".", "",
           "Targets: zeta = 1.5 (DKS), tau = 0.3 (smooth TAT), eta = 0.9 (TAT leaky ReLU); "
           f"rescaled ResNets use shortcut weight {SHORTCUT_WEIGHT}. Parameters are (alpha, beta, delta, "
           "gamma), or (negative slope, output scale) for TAT leaky ReLU.", "",
           "| net | method | activation | dksflax (ms) | dksflax params | dks 0.1.2 (s) | "
           "dks params | speed-up | max rel diff |", "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    ref = r["reference"]
    lines.append(
        f"| {r['arch']} | {r['method']} | {r['activation']} | {r['median_s'] * 1e3:.1f} | "
        f"{_fmt(r['ours'])} | "
        + (f"{r['reference_s']:.2f} | {_fmt(ref)} | {r['reference_s'] / r['median_s']:,.0f}x | "
           f"{_rel_diff(r['ours'], ref):.1e} |" if ref is not None else "- | - | - | - |"))
  if not have_ref:
    lines += ["", "The official dks package was not installed: " + INSTALL_HINT.split("; ")[1]]
  lines += ["", "Notes: odd activations (tanh) may come out as the mirror solution (beta, "
            "delta) -> (-beta, -delta), compared up to sign. Kinked activations (relu, selu) "
            "differ by up to ~1e-4 because dks integrates across the kink with an unsplit "
            "100,000-node Gauss-Legendre rule; dksflax splits the integral at the kink "
            "(relu's closed form agrees with dksflax to 1e-10).", ""]
  path = REPO / "benchmarks" / "RESULTS.md"
  text = path.read_text() if path.exists() else "# Benchmark results\n\n"
  start = text.find(SECTION)
  if start >= 0:
    end = text.find("\n## ", start + len(SECTION))
    text = text[:start] + "\n".join(lines) + ("" if end < 0 else text[end:])
  else:
    text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
  path.write_text(text if text.endswith("\n") else text + "\n")
  print(f"wrote {path}", flush=True)


if __name__ == "__main__":
  main()
