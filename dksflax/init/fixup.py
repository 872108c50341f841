"""Fixup initialisation (Zhang, Dauphin & Ma, 2019) applied to a Flax parameter tree.

Fixup, for a network of ``L`` residual branches with ``m`` weight layers each:
  1. the classifier and the last weight layer of every residual branch start at zero;
  2. the other branch layers keep their standard (He) initialisation, multiplied by
     ``L^(-1/(2m-2))``;
  3. a scalar bias (init 0) before each convolution / activation and a scalar multiplier
     (init 1) per branch (these are model parameters; ``fixup_rescale`` resets them to
     their Fixup values when present).
TAT (Zhang et al. 2022, §5 / Appendix) uses Fixup and SkipInit as baselines.

Parameter-name convention (``dksflax.models``): residual blocks are the top-level
entries ``block_{i}``; their branch layers are ``conv_{j}`` (j = 0, 1, ...), each with a
``kernel`` (and maybe ``bias``); the projection shortcut ``shortcut_conv`` is not part of
the branch and is left alone; Fixup scalars are ``bias_{k}`` and ``scale`` leaves of the
block; the classifier is ``classifier``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from dksflax.errors import ConfigError


def fixup_scale(num_branches: int, layers_per_branch: int) -> float:
  """Returns Fixup's multiplier ``L^(-1/(2m-2))`` for the non-final branch layers.

  Args:
    num_branches: L, the number of residual branches (>= 1).
    layers_per_branch: m, weight layers per branch (>= 2; Fixup's rule is undefined
      for m = 1).

  Returns:
    The multiplier of the weights (standard deviation scale).

  Raises:
    ConfigError: for L < 1 or m < 2.
  """
  if int(num_branches) < 1:
    raise ConfigError(f"fixup num_branches={num_branches!r} must be >= 1")
  if int(layers_per_branch) < 2:
    raise ConfigError(
        f"fixup layers_per_branch={layers_per_branch!r} must be >= 2: the scale "
        "L^(-1/(2m-2)) is undefined for single-layer branches")
  return float(num_branches) ** (-1.0 / (2.0 * layers_per_branch - 2.0))


def _to_dict(tree: Mapping[str, Any]) -> dict[str, Any]:
  return {k: _to_dict(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def _branch_layers(block: Mapping[str, Any], layer_prefix: str) -> list[str]:
  pattern = re.compile(re.escape(layer_prefix) + r"(\d+)$")
  found = [(int(m.group(1)), k) for k in block if (m := pattern.match(k))]
  return [k for _, k in sorted(found)]


def fixup_rescale(params: Mapping[str, Any], *, num_branches: int | None = None,
                  layers_per_branch: int | None = None, block_prefix: str = "block_",
                  layer_prefix: str = "conv_",
                  classifier: str = "classifier") -> dict[str, Any]:
  """Turns a standard-initialised parameter tree into a Fixup-initialised one.

  Args:
    params: the ``params`` collection (nested mapping); not modified.
    num_branches: L; inferred as the number of ``block_prefix`` entries when None.
      (Default: None)
    layers_per_branch: m; inferred as the largest number of branch layers in a block when
      None. (Default: None)
    block_prefix: prefix of residual-block entries. (Default: "block_")
    layer_prefix: prefix of branch weight layers inside a block. (Default: "conv_")
    classifier: name of the classifier entry. (Default: "classifier")

  Returns:
    A new nested dict: branch layers 0..m-2 scaled by ``fixup_scale(L, m)``, the last
    branch layer and the classifier zeroed (kernel and bias), Fixup scalars ``bias_*``
    set to 0 and ``scale`` set to 1.

  Raises:
    ConfigError: when no residual blocks or no classifier are found (Fixup needs a
      residual network: a vanilla net has no branches to rescale), or L/m are invalid.
  """
  out = _to_dict(params)
  blocks = [k for k in out if k.startswith(block_prefix) and isinstance(out[k], dict)]
  if not blocks:
    raise ConfigError(
        f"fixup found no residual blocks (entries named {block_prefix!r}*) in the "
        f"parameters {sorted(out)}; Fixup applies to residual networks only")
  if classifier not in out:
    raise ConfigError(f"fixup found no classifier entry {classifier!r} in {sorted(out)}")
  layers = {b: _branch_layers(out[b], layer_prefix) for b in blocks}
  if num_branches is None:
    num_branches = len(blocks)
  if layers_per_branch is None:
    layers_per_branch = max(len(v) for v in layers.values())
  factor = fixup_scale(num_branches, layers_per_branch)
  for b in blocks:
    block = out[b]
    names = layers[b]
    for j, name in enumerate(names):
      layer = block[name]
      if j == len(names) - 1:
        block[name] = {k: jnp.zeros_like(v) for k, v in layer.items()}
      else:
        block[name] = dict(layer, kernel=layer["kernel"] * factor)
    for key, value in list(block.items()):
      if isinstance(value, dict):
        continue
      if key.startswith("bias_"):
        block[key] = jnp.zeros_like(value)
      elif key == "scale":
        block[key] = jnp.ones_like(value)
  out[classifier] = {k: jnp.zeros_like(v) for k, v in out[classifier].items()}
  return out
