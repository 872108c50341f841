"""A kernel graph compiled for the solvers' maximal functions (DKS §17, TAT Appendix B).

The solvers evaluate a maximal function ``max_g U_{g,r}(start)`` many times with different
nonlinear-layer rules ``r`` (a root finder over ``psi``, ``kappa`` or a leaky ReLU's
negative slope). The generic evaluator of `dksflax.shaping.kernel_graph` walks the node
tree on every call: type dispatch per node, path labels for every candidate subnetwork,
and each branch evaluated once for the whole network and once more as a candidate. None of
that depends on ``r``, so :func:`compile_graph` does it once and keeps only what does:

* affine, pooling and input nodes map to the identity and disappear; runs of nonlinear
  layers become one instruction "apply ``r`` ``n`` times" (DKS §21.3 rules 1-3, 7, 8);
* normalised sums and concatenations become a "mix" of sub-programs with the weights
  ``w_i^2`` or ``k_i / sum k`` (rules 4-5);
* the mean tracking of layer normalisation (DKS §19.2 Eq. 17) is resolved statically: what
  remains is ``c -> (c - m)/(1 - m)`` with ``m = f * r(0)`` for a known factor ``f``, or an
  error where the map is undetermined;
* the candidate subnetworks (the network and every branch of every sum or concatenation,
  see the `kernel_graph` module docstring) are kept once per distinct program: the
  identical blocks of a ResNet stage give one candidate, not one per block.

The arithmetic is the generic evaluator's, in the same order, so the values agree to the
last bit (up to the sign of a zero; tests/test_shaping_leaky_relu_closed_form.py checks it
on many graphs). Each compiled graph costs about as much as one tree walk to build.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dksflax.errors import ShapingError
from dksflax.shaping.kernel_graph_nodes import (Affine, Chain, Concat, Input, Node, Nonlinear,
                                                NormalizedSum, Normalize, Pool,
                                                check_shapeable)

#: Layer-norm handling (see `kernel_graph._RuleSemantics`).
LN_MODES = ("cmap", "identity", "centred")

UNCENTRED_LN_MESSAGE = (
    "a layer normalisation follows uncentred features (a nonlinear layer, or a sum "
    "of several such branches): its C map (DKS §19.2 Eq. 17) then depends on the "
    "activation's mean and its slope at 1 is not 1, which the TAT curvature calculus "
    "needs. Place layer norms before activations (pre-activation), as in ResNet-V2")

# Instruction codes. A program is a tuple of instructions:
#   (_REPEAT, n)                        x <- r applied n times
#   (_MIX, fractions, sub_programs)     x <- sum_i fractions[i] * run(sub_programs[i], x)
#   (_NORM, factor)                     m = factor * r(0); x <- (x - m) / (1 - m)
#   (_FAIL, message)                    raise ShapingError(message)
_REPEAT, _MIX, _NORM, _FAIL = 0, 1, 2, 3
# Static mean states: None (centred), a float factor (mean share factor * r(0)), _UNKNOWN.
_UNKNOWN = "unknown"

Program = tuple


def _append(program: list, instruction: tuple) -> None:
  """Appends an instruction, merging consecutive runs of nonlinear layers."""
  if instruction[0] == _REPEAT and program and program[-1][0] == _REPEAT:
    program[-1] = (_REPEAT, program[-1][1] + instruction[1])
  else:
    program.append(instruction)


def _normalize(mean: Any, ln_mode: str) -> list[tuple]:
  if mean is None or ln_mode == "identity":
    return []
  if ln_mode == "centred":
    return [(_FAIL, UNCENTRED_LN_MESSAGE)]
  if mean == _UNKNOWN:
    return [(_FAIL, UNCENTRED_LN_MESSAGE)]
  return [(_NORM, mean)]


def _compile(node: Node, mean: Any, ln_mode: str,
             candidates: dict[Program, None]) -> tuple[list[tuple], Any]:
  """(instructions, mean state after `node`); adds branch candidates to `candidates`.

  Also applies `check_shapeable` to every node on the way (DKS §21.1-21.2).
  """
  kind = type(node)
  if kind is Chain:
    return _compile_chain(node.layers, mean, ln_mode, candidates)
  if kind is NormalizedSum or kind is Concat:
    return _compile_merge(node, mean, ln_mode, candidates)
  if isinstance(node, (Input, Pool)):
    return [], mean
  if isinstance(node, Affine):
    check_shapeable(node)
    return [], None
  if isinstance(node, Nonlinear):
    return [(_REPEAT, 1)], 1.0
  if isinstance(node, Normalize):
    check_shapeable(node)
    return _normalize(mean, ln_mode), None
  if isinstance(node, Chain):   # subclasses
    return _compile_chain(node.layers, mean, ln_mode, candidates)
  if isinstance(node, (NormalizedSum, Concat)):
    return _compile_merge(node, mean, ln_mode, candidates)
  raise ShapingError(f"{node!r} is not a kernel-graph node")


def _compile_chain(layers: tuple, mean: Any, ln_mode: str,
                   candidates: dict[Program, None]) -> tuple[list[tuple], Any]:
  """Composition (DKS §21.3 rule 1); the compiler's hot loop, with the leaves inline."""
  program: list[tuple] = []
  for layer in layers:
    kind = type(layer)
    if kind is Affine:
      if layer.weight_var != 1.0 or layer.bias_var != 0.0:
        check_shapeable(layer)
      mean = None
    elif kind is Nonlinear:
      if program and program[-1][0] == _REPEAT:
        program[-1] = (_REPEAT, program[-1][1] + 1)
      else:
        program.append((_REPEAT, 1))
      mean = 1.0
    elif kind is NormalizedSum or kind is Concat:
      sub, mean = _compile_merge(layer, mean, ln_mode, candidates)
      program.append(sub[0])
    elif kind is not Input and kind is not Pool:
      sub, mean = _compile(layer, mean, ln_mode, candidates)
      for instruction in sub:
        _append(program, instruction)
  return program, mean


def _compile_merge(node: NormalizedSum | Concat, mean: Any, ln_mode: str,
                   candidates: dict[Program, None]) -> tuple[list[tuple], Any]:
  """A normalised sum or concatenation (DKS §21.3 rules 4-5) and its branch candidates."""
  is_sum = isinstance(node, NormalizedSum)
  if is_sum:
    fractions = tuple([w * w for w in node.weights])
  else:
    total = float(sum(node.channels))
    fractions = tuple([k / total for k in node.channels])
  subs = []
  uncentred = []
  for fraction, branch in zip(fractions, node.branches):
    sub, branch_mean = _compile(branch, mean, ln_mode, candidates)
    sub = tuple(sub)
    candidates[sub] = None
    subs.append(sub)
    if branch_mean is not None:
      uncentred.append((fraction, branch_mean))
  out_mean: Any = None
  if len(uncentred) == 1 and uncentred[0][1] != _UNKNOWN:
    f, m = uncentred[0]
    out_mean = m * (f if is_sum else f * f)
  elif uncentred:
    out_mean = _UNKNOWN
  return [(_MIX, fractions, tuple(subs))], out_mean


Runner = Callable[[Any, Callable[[Any], Any], Callable[[], float]], Any]


def _identity(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
  del rule, r0
  return x


def _repeat_step(n: int) -> Runner:
  if n == 1:
    return lambda x, rule, r0: rule(x)
  if n == 2:
    return lambda x, rule, r0: rule(rule(x))
  if n == 3:
    return lambda x, rule, r0: rule(rule(rule(x)))

  def repeat(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
    del r0
    for _ in range(n):
      x = rule(x)
    return x

  return repeat


def _mix_step(fractions: tuple[float, ...], subs: tuple[Program, ...],
              memo: dict[tuple, Runner]) -> Runner:
  # sum_i f_i x_i, added left to right from 0 as the generic walk's sum() does.
  runners = tuple(_runner(sub, memo) if sub else None for sub in subs)
  if len(runners) == 2 and runners[0] is None and runners[1] is not None:
    (f0, f1), g1 = fractions, runners[1]      # identity shortcut + residual branch
    return lambda x, rule, r0: f0 * x + f1 * g1(x, rule, r0)
  if len(runners) == 2 and None not in runners:
    (f0, f1), (g0, g1) = fractions, runners   # projection shortcut + residual branch
    return lambda x, rule, r0: f0 * g0(x, rule, r0) + f1 * g1(x, rule, r0)
  pairs = tuple(zip(fractions, runners))

  def mix(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
    total = 0
    for fraction, run in pairs:
      total = total + fraction * (x if run is None else run(x, rule, r0))
    return total

  return mix


def _norm_step(factor: float) -> Runner:
  def norm(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
    del rule
    m = factor * r0()
    if m >= 1.0:
      raise ShapingError(f"layer norm input has a mean component C(0)={m} >= 1: all c "
                         "values are 1 and layer normalisation is undefined")
    return (x - m) / (1.0 - m)

  return norm


def _fail_step(message: str) -> Runner:
  def fail(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
    del x, rule, r0
    raise ShapingError(message)

  return fail


def _runner(program: Program, memo: dict[tuple, Runner]) -> Runner:
  """A program as nested closures: no instruction dispatch left at evaluation time.

  ``memo`` shares the closures of equal instructions (the identical blocks of a stage).
  """
  steps = []
  for instruction in program:
    step = memo.get(instruction)
    if step is None:
      code = instruction[0]
      if code == _REPEAT:
        step = _repeat_step(instruction[1])
      elif code == _MIX:
        step = _mix_step(instruction[1], instruction[2], memo)
      elif code == _NORM:
        step = _norm_step(instruction[1])
      else:
        step = _fail_step(instruction[1])
      memo[instruction] = step
    steps.append(step)
  if not steps:
    return _identity
  if len(steps) == 1:
    return steps[0]
  steps = tuple(steps)

  def run(x: Any, rule: Callable[[Any], Any], r0: Callable[[], float]) -> Any:
    for step in steps:
      x = step(x, rule, r0)
    return x

  return run


@dataclasses.dataclass(frozen=True)
class CompiledGraph:
  """A kernel graph compiled for repeated scalar evaluation with different rules.

  Attributes:
    network: the whole network's program.
    branches: the distinct programs of the candidate branch subnetworks (TAT B.2).
    ln_mode: how layer norms act, one of LN_MODES.
  """

  network: Program
  branches: tuple[Program, ...]
  ln_mode: str
  _runners: tuple[Runner, ...] = dataclasses.field(init=False, repr=False, compare=False)

  def __post_init__(self) -> None:
    memo: dict[tuple, Runner] = {}
    object.__setattr__(self, "_runners",
                       tuple(_runner(p, memo) for p in (self.network,) + self.branches))

  def values(self, rule: Callable[[Any], Any], start: Any) -> list[float]:
    """``U_{g,r}(start)`` for the network (first) and each distinct branch candidate.

    Args:
      rule: ``r``, applied at every nonlinear layer.
      start: the value fed to every candidate's input.

    Returns:
      The values as floats, the whole network first.

    Raises:
      ShapingError: a layer norm whose map is undetermined (see `kernel_graph`).
    """
    cache: list[float] = []

    def r0() -> float:
      if not cache:
        cache.append(float(np.asarray(rule(0.0))))
      return cache[0]

    return [float(run(start, rule, r0)) for run in self._runners]

  def maximum(self, rule: Callable[[Any], Any], start: Any) -> float:
    """``max_g U_{g,r}(start)`` over the candidates (DKS §17.2, TAT Appendix B.2).

    Args:
      rule: ``r``, applied at every nonlinear layer.
      start: the value fed to every candidate's input.

    Returns:
      The maximum, or NaN if any candidate's value is NaN (never a silently dropped NaN).
    """
    values = self.values(rule, start)
    if any(math.isnan(v) for v in values):
      return math.nan
    return max(values)


def compile_graph(graph: Node, ln_mode: str) -> CompiledGraph:
  """Compiles a kernel graph for the maximal functions (see the module docstring).

  Args:
    graph: the kernel graph.
    ln_mode: layer-norm handling, one of LN_MODES: "cmap" (DKS §19.2 Eq. 17 with the
      mean's share ``r(0)``), "identity" (DKS §21.3 rule 6) or "centred" (identity, and an
      error at evaluation if a layer norm may see uncentred features).

  Returns:
    The :class:`CompiledGraph`.

  Raises:
    ValueError: unknown ``ln_mode``.
    ShapingError: the graph is not shapeable (batch normalisation, or an affine layer
      with variances other than (1, 0); see `kernel_graph.check_shapeable`).
  """
  if ln_mode not in LN_MODES:
    raise ValueError(f"ln_mode={ln_mode!r} is not one of {LN_MODES}")
  candidates: dict[Program, None] = {}
  network, _ = _compile(graph, None, ln_mode, candidates)
  return CompiledGraph(tuple(network), tuple(candidates), ln_mode)
