"""`dksflax diagnose`: measured vs predicted q/c per layer of a config's network at init.

  dksflax diagnose --config configs/digits_mlp.py:tat,sgd --plot qc.png \\
      [--config.model.width=256 ...] [--num_pairs=16] [--correlations=0,0.5,0.9] \\
      [--input_shape=16,16,3] [--json=qc.json] [--seed=0]

Builds the network exactly as training would (``dksflax.models.build.build_network``:
the same shaping, initialisers and LSUV/Fixup/RISOTTO procedures), pushes per-location
normalised input pairs with the chosen correlations through it (``empirical_qc``), and
compares every named intermediate with the kernel-graph prediction (``predicted_qc``; DKS
§6-§7, §21) where the kernel maps describe the initialisation (dks, tat, eoc, none).
Prints a table as it goes, optionally writes the plot (PNG) and a JSON report. The
kernel maps do not depend on the image size (Delta initialisation, DKS §4), so
``--input_shape`` may shrink images to keep the run cheap on a CPU.

Flags are parsed with absl and ml_collections ``config_flags`` (``lock_config=True``),
as ``dksflax train`` does: a misspelt override is an error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

from dksflax.configlib.command_line import parse_config_flags
from dksflax.errors import ConfigError

#: Methods whose initialisation the kernel graph (with the plan's variances) describes.
PREDICTABLE_METHODS = ("dks", "tat", "eoc", "none")


def _parse_floats(text: str, name: str) -> tuple[float, ...]:
  try:
    return tuple(float(t) for t in text.split(",") if t.strip())
  except ValueError:
    raise ConfigError(f"--{name}={text!r} must be comma-separated numbers") from None


def parse_diagnose_flags(argv: Sequence[str]) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
  """Parses ``--config FILE[:ARG] [--config.a.b=v ...]`` and the diagnose options.

  Args:
    argv: the arguments after ``diagnose``.

  Returns:
    ``(config, options)`` with options ``plot``, ``json``, ``num_pairs``, ``correlations``,
    ``input_shape`` (tuple or None) and ``seed``.

  Raises:
    ConfigError: for a missing or unloadable config, an unknown key, or a bad option.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel

  def define_flags(values: Any) -> None:
    flags.DEFINE_string("plot", "", "PNG file for measured vs predicted q/c.",
                        flag_values=values)
    flags.DEFINE_string("json", "", "JSON file for the report.", flag_values=values)
    flags.DEFINE_integer("num_pairs", 16, "Input pairs per correlation.", flag_values=values)
    flags.DEFINE_string("correlations", "0,0.5,0.9", "Input correlations.",
                        flag_values=values)
    flags.DEFINE_string("input_shape", "", "One example's shape H,W,C (default: the "
                        "dataset's).", flag_values=values)
    flags.DEFINE_integer("seed", 0, "Seed of the input pairs.", flag_values=values)

  config, values = parse_config_flags("diagnose", argv, define_flags=define_flags,
                                      example="configs/digits_mlp.py:tat,sgd")
  shape = None
  if values.input_shape:
    shape = tuple(int(v) for v in _parse_floats(values.input_shape, "input_shape"))
  if values.num_pairs < 2:
    raise ConfigError(f"--num_pairs={values.num_pairs} must be >= 2")
  options = dict(plot=values.plot, json=values.json, num_pairs=values.num_pairs,
                 correlations=_parse_floats(values.correlations, "correlations"),
                 input_shape=shape, seed=values.seed)
  return config, options


def _dataset_shape(config: ml_collections.ConfigDict) -> tuple[tuple[int, ...], int]:
  from dksflax.data.catalog import dataset_facts  # pylint: disable=import-outside-toplevel
  from dksflax.shaping.pln import pln_num_channels  # pylint: disable=import-outside-toplevel
  facts = dataset_facts(config.data)
  h, w, c = facts.image_shape
  return (h, w, pln_num_channels(c, config.data.pln)), facts.num_classes


def run_diagnose(config: ml_collections.ConfigDict, *, num_pairs: int = 16,
                 correlations: Sequence[float] = (0.0, 0.5, 0.9),
                 input_shape: Sequence[int] | None = None, seed: int = 0, plot: str = "",
                 log: Callable[[str], None] = print) -> dict[str, Any]:
  """Measures and predicts per-layer q/c for a config's network at initialisation.

  Args:
    config: the full config (validated here, before any compute).
    num_pairs: input pairs per correlation. (Default: 16)
    correlations: input correlations. (Default: (0.0, 0.5, 0.9))
    input_shape: one example's shape; the dataset's when None. (Default: None)
    seed: seed of the input pairs (the network uses ``config.seed``). (Default: 0)
    plot: PNG path for ``plot_qc``; no plot when empty. (Default: "")
    log: progress printer. (Default: print)

  Returns:
    A JSON-able report: ``method``, ``activation``, ``predicted`` (bool), ``note``, and
    ``layers``: ``{name: {c_in: {q, q_se, c, c_se[, q_pred, c_pred]}}}``.

  Raises:
    ConfigError: for a bad config (naming the key) or an unusable input shape.
    ShapingError: when the shaping problem has no solution.
  """
  import functools  # pylint: disable=import-outside-toplevel

  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from dksflax.configlib import validate_config  # pylint: disable=import-outside-toplevel
  from dksflax.diagnostics import (  # pylint: disable=import-outside-toplevel
      correlated_pairs, empirical_qc, layer_graphs, plot_qc, predicted_qc)
  from dksflax.models.build import build_network  # pylint: disable=import-outside-toplevel
  from dksflax.models.shaping_plan import resolve_spec  # pylint: disable=import-outside-toplevel
  from dksflax.shaping import (  # pylint: disable=import-outside-toplevel
      architecture_graphs, kernel_graph)

  validate_config(config)
  shape, num_classes = _dataset_shape(config)
  if config.model.num_classes > 0:
    num_classes = int(config.model.num_classes)
  if input_shape is not None:
    shape = tuple(int(s) for s in input_shape)
  log(f"diagnose: building {config.model.name} ({config.model.variant}, "
      f"{config.shaping.method}) for inputs {shape}")
  model, init_fn, report = build_network(config, num_classes=num_classes, input_shape=shape)
  plan = report.shaping
  sample, _ = correlated_pairs(np.random.default_rng(seed + 1), shape, 0.0, 8)
  variables = init_fn(jax.random.key(int(config.seed)), jax.numpy.asarray(sample))
  log(f"diagnose: measuring {num_pairs} pairs at input correlations "
      f"{', '.join(f'{c:g}' for c in correlations)}")
  measured = empirical_qc(functools.partial(model.apply, train=False), variables,
                          input_shape=shape, correlations=correlations, num_pairs=num_pairs,
                          rng=seed)
  predicted, note, graph = None, "", None
  if plan.method in PREDICTABLE_METHODS:
    try:
      spec, _ = resolve_spec(config, num_classes)
      graph = kernel_graph.with_affine_variances(
          architecture_graphs.kernel_graph_for(spec), plan.weight_var, plan.bias_var)
      known = layer_graphs(graph)
      predicted = predicted_qc(graph, plan.activation, correlations=correlations,
                               layer_names=[n for n in measured.layer_names if n in known])
    except (ConfigError, ValueError) as e:
      note = f"no prediction: {e}"
  else:
    note = (f"no prediction: shaping.method={plan.method!r} initialises weights in a way "
            "the kernel maps do not describe (data-dependent or zero-initialised branches)")
  if note:
    log(f"diagnose: {note}")
  layers: dict[str, Any] = measured.to_dict()
  header = f"{'layer':<14}{'c_in':>6}{'q':>10}{'q_pred':>10}{'c':>9}{'+-2se':>8}{'c_pred':>9}"
  log(header)
  for name in measured.layer_names:
    for j, cin in enumerate(measured.correlations):
      row = layers[name][f"{cin:g}"]
      qp = cp = math.nan
      if predicted is not None and name in predicted.layer_names:
        k = predicted.layer_names.index(name)
        qp, cp = float(predicted.q[k, j]), float(predicted.c[k, j])
        row.update(q_pred=qp, c_pred=cp)
      log(f"{name:<14}{cin:>6g}{row['q']:>10.4f}{qp:>10.4f}{row['c']:>9.4f}"
          f"{2 * row['c_se']:>8.4f}{cp:>9.4f}")
  if plot:
    c_map = None
    if graph is not None:
      last = measured.layer_names[-1]
      c_map = lambda cs: predicted_qc(graph, plan.activation, correlations=cs,  # noqa: E731
                                      layer_names=[last]).c[0]
    plot_qc(measured, plot, predicted=predicted, c_map=c_map,
            title=f"{config.model.name} {config.model.variant} {plan.method}")
    log(f"diagnose: wrote {plot}")
  return dict(method=plan.method, activation=str(plan.activation),
              predicted=predicted is not None, note=note, layers=layers)


def diagnose_command(argv: Sequence[str]) -> int:
  """Runs ``dksflax diagnose``; returns the exit status (2 for a rejected value)."""
  try:
    config, options = parse_diagnose_flags(argv)
    out = run_diagnose(config, num_pairs=options["num_pairs"],
                       correlations=options["correlations"],
                       input_shape=options["input_shape"], seed=options["seed"],
                       plot=options["plot"])
  except ValueError as e:  # ConfigError and ShapingError are ValueErrors.
    print(f"dksflax diagnose: error: {e}", file=sys.stderr)
    return 2
  if options["json"]:
    with open(options["json"], "w", encoding="utf-8") as f:
      json.dump(out, f, indent=1)
    print(f"diagnose: wrote {options['json']}")
  return 0


def register(subparsers: argparse._SubParsersAction) -> None:
  """Adds the ``diagnose`` subcommand to the ``dksflax`` parser.

  Its arguments go untouched to absl (``--config.a.b=v`` style flags), so its argparse
  parser takes them as plain words (``prefix_chars="+"``), like ``dksflax train``.
  """
  parser = subparsers.add_parser(
      "diagnose", add_help=False, prefix_chars="+",
      help="measured vs predicted q/c per layer at init: --config FILE[:ARG] [--plot PNG]")
  parser.add_argument("flags", nargs="*")
  parser.set_defaults(func=lambda ns: diagnose_command(ns.flags))
