"""Compatibility fix that lets kfac-jax 0.0.8 trace graphs on current JAX.

Why: kfac-jax 0.0.8 (the newest PyPI release, 2026-02-24) evaluates jaxpr
equations in ``kfac_jax._src.tag_graph_matcher.eval_jaxpr_eqn`` with::

  subfuns, bind_params = eqn.primitive.get_bind_params(eqn.params)
  eqn.primitive.bind(*subfuns, *in_values, **bind_params)

Since JAX 0.9.2, ``Primitive.get_bind_params`` returns a single params dict
(call-like primitives put their sub-functions under the ``"subfuns"`` key, which
``bind`` pops itself), so the first K-FAC step fails with ``ValueError: too many
values to unpack (expected 2)``. ``jax._src.core.eval_jaxpr`` now evaluates an
equation as ``primitive.bind(*in_values, **params)``.

What: :func:`apply` replaces that one module-level function (``tracer.py`` calls
it through the module attribute ``tgm.eval_jaxpr_eqn``) with a version that
accepts both return forms, decided per call from the returned value (not from a
version number), so the same code runs on jax 0.10.2 (CPU) and 0.11.2 (GPU).

When to drop it: kfac-jax's main branch evaluates equations the new way, and its
JAX >= 0.10 fixes (34e5b31, 40e28c0: ``jax.extend.core``; 36f5d63: ``Var.count``;
c6cb1af: scan ``num_consts``) are not yet released. Once a kfac-jax release
traces a Flax model without this patch, ``tests/test_compat_kfac.py::
test_unpatched_kfac_still_fails`` fails and says so: delete this module and the
call in ``dksflax/optim/kfac_optimizer.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_PATCH_MARKER = "_dksflax_compat_patched"


def _split_bind_params(bound: Any) -> tuple[Sequence[Any], Mapping[str, Any]]:
  """Normalises ``get_bind_params``' result to ``(subfuns, params)``.

  Args:
    bound: What ``Primitive.get_bind_params`` returned: either the old
      ``(subfuns, params)`` pair or the new single params dict.

  Returns:
    The positional sub-functions (empty for the new form, where ``bind`` reads
    them from ``params["subfuns"]``) and the keyword params for ``bind``.

  Raises:
    TypeError: If ``bound`` is neither form (a future JAX change: fail loudly).
  """
  if isinstance(bound, Mapping):
    return (), bound
  if (isinstance(bound, tuple) and len(bound) == 2
      and isinstance(bound[1], Mapping)):
    return tuple(bound[0]), bound[1]
  raise TypeError(
      "Primitive.get_bind_params returned "
      f"{type(bound).__name__}; expected a params dict (JAX >= 0.9.2) or a "
      "(subfuns, params) pair (older JAX). dksflax.compat.kfac_jax_compat "
      "needs updating for this JAX version.")


def _compatible_eval_jaxpr_eqn(eqn: Any, in_values: list[Any]) -> list[Any]:
  """Computes the outputs of one jaxpr equation on any supported JAX.

  Args:
    eqn: A ``JaxprEqn``.
    in_values: The values of ``eqn.invars``.

  Returns:
    The list of output values (one element for single-result primitives).
  """
  import jax.extend as jex  # pylint: disable=g-import-not-at-top

  subfuns, bind_params = _split_bind_params(
      eqn.primitive.get_bind_params(eqn.params))
  with jex.source_info_util.user_context(eqn.source_info.traceback):
    output = eqn.primitive.bind(*subfuns, *in_values, **bind_params)
  return output if isinstance(output, list) else [output]


def is_applied() -> bool:
  """Returns whether :func:`apply` has patched the loaded kfac-jax."""
  from kfac_jax._src import tag_graph_matcher  # pylint: disable=g-import-not-at-top
  return getattr(tag_graph_matcher.eval_jaxpr_eqn, _PATCH_MARKER, False)


def apply() -> None:
  """Patches ``tag_graph_matcher.eval_jaxpr_eqn``; idempotent.

  Safe on a kfac-jax that already handles new JAX: the replacement accepts the
  old and the new ``get_bind_params`` forms alike.

  Raises:
    RuntimeError: If kfac-jax no longer has the function this patch replaces
      (then it was restructured upstream: check whether the patch is needed).
  """
  from kfac_jax._src import tag_graph_matcher  # pylint: disable=g-import-not-at-top
  if not hasattr(tag_graph_matcher, "eval_jaxpr_eqn"):
    raise RuntimeError(
        "kfac_jax._src.tag_graph_matcher.eval_jaxpr_eqn does not exist in this "
        "kfac-jax; dksflax.compat.kfac_jax_compat may no longer be needed.")
  if is_applied():
    return
  setattr(_compatible_eval_jaxpr_eqn, _PATCH_MARKER, True)
  tag_graph_matcher.eval_jaxpr_eqn = _compatible_eval_jaxpr_eqn
