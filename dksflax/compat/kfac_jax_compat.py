"""Compatibility fixes that let kfac-jax 0.0.8 import and trace graphs on current JAX.

Three independent breaks, all fixed on kfac-jax's main branch but not released:

1. **Import (JAX >= 0.11).** kfac-jax 0.0.8 reads ``jax.core.Effects``,
   ``no_effects``, ``DropVar``, ``DebugInfo``, ``gensym``, ``new_jaxpr_eqn`` (in
   ``layers_and_loss_tags.py`` / ``tag_graph_matcher.py``, some at class-definition
   time) and ``core.unsafe_get_axis_names_DO_NOT_USE`` (``utils/parallel.py``).
   JAX 0.10 deprecated these ``jax.core`` names and 0.11 removed them (they live in
   ``jax.extend.core``), so ``import kfac_jax`` raises ``AttributeError: jax.core.Effects
   was deprecated in JAX v0.10.0 and removed in JAX v0.11.0``.
   :func:`restore_jax_core_names` puts back, as aliases of the ``jax.extend.core``
   objects, exactly those names that are missing (none on 0.10.2, all seven on 0.11.2).
   kfac-jax's fix: 34e5b31, 40e28c0.

2. **Tracing (JAX >= 0.9.2).** kfac-jax evaluates jaxpr equations in
   ``kfac_jax._src.tag_graph_matcher.eval_jaxpr_eqn`` with::

     subfuns, bind_params = eqn.primitive.get_bind_params(eqn.params)
     eqn.primitive.bind(*subfuns, *in_values, **bind_params)

   Since JAX 0.9.2, ``Primitive.get_bind_params`` returns a single params dict
   (call-like primitives put their sub-functions under the ``"subfuns"`` key, which
   ``bind`` pops itself), so the first K-FAC step fails with ``ValueError: too many
   values to unpack (expected 2)``. ``jax._src.core.eval_jaxpr`` now evaluates an
   equation as ``primitive.bind(*in_values, **params)``. :func:`apply` replaces that
   one module-level function (``tracer.py`` calls it through the module attribute
   ``tgm.eval_jaxpr_eqn``) with a version that accepts both return forms, decided per
   call from the returned value (not from a version number).

3. **Tracing (JAX >= 0.11).** JAX 0.11 merged ``ClosedJaxpr`` into ``Jaxpr`` (a
   ``Jaxpr`` carries its consts; ``jax.extend.core.ClosedJaxpr is Jaxpr``, and the
   constructor takes the legacy ``(jaxpr, consts)`` only positionally). kfac-jax
   0.0.8 builds ``ClosedJaxpr(jaxpr=..., consts=...)`` by keyword (``TypeError:
   Jaxpr.__init__() got an unexpected keyword argument 'jaxpr'`` at ``init``), and its
   ``to_closed_jaxpr`` wraps every ``Jaxpr`` again with empty consts. Where the two
   classes are one, :func:`apply` gives ``tag_graph_matcher`` (and ``tracer``, which
   reaches the class through ``jax.extend``) a ``ClosedJaxpr`` that accepts the
   keywords and passes them on positionally (``isinstance`` still sees the real
   class), and makes ``to_closed_jaxpr`` the identity, as kfac-jax's main branch does.

:func:`load_kfac_jax` does all three, in that order, and returns the module: the rest of
dksflax imports kfac-jax only through it (and only when a K-FAC optimizer is built),
so the same code runs on jax 0.10.2 (CPU) and 0.11.2 (GPU).

kfac-jax itself needs no TensorFlow: it imports distrax, which imports tfp-nightly's
JAX substrate; that substrate tries ``import tensorflow`` inside ``try/except`` (for
docstrings and ``tf_inspect``) and works without it, but where TensorFlow is
installed it loads it (about 10 s).

When to drop it: once a kfac-jax release imports and traces a Flax model without
these fixes, ``tests/test_compat_kfac.py::test_unpatched_kfac_still_fails`` fails and
says so: delete this module and use ``import kfac_jax`` directly. Other fixes on
kfac-jax's main branch (36f5d63: no reliance on ``Var.count``; c6cb1af: scan
``num_consts``) are not needed by dksflax's models (no ``lax.scan`` in a K-FAC loss).
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

_PATCH_MARKER = "_dksflax_compat_patched"

#: ``jax.core`` names kfac-jax 0.0.8 reads that JAX 0.11 moved to ``jax.extend.core``.
JAX_CORE_NAMES = ("DebugInfo", "DropVar", "Effects", "gensym", "new_jaxpr_eqn",
                  "no_effects", "unsafe_get_axis_names_DO_NOT_USE")


def restore_jax_core_names() -> tuple[str, ...]:
  """Aliases the :data:`JAX_CORE_NAMES` missing from ``jax.core`` to ``jax.extend.core``.

  Only absent names are set (on JAX 0.10 they still exist, deprecated, and are left
  alone); each alias is the very ``jax.extend.core`` object, so ``isinstance`` checks
  and primitive identities are unchanged. Idempotent.

  Returns:
    The names that were added by this call (empty when nothing was missing).

  Raises:
    RuntimeError: If ``jax.extend.core`` lacks a name too (a later JAX moved it again:
      this layer needs updating).
  """
  import jax.core  # pylint: disable=g-import-not-at-top
  import jax.extend.core  # pylint: disable=g-import-not-at-top
  added = []
  for name in JAX_CORE_NAMES:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      present = hasattr(jax.core, name)
    if present:
      continue
    if not hasattr(jax.extend.core, name):
      raise RuntimeError(
          f"kfac-jax 0.0.8 needs jax.core.{name}, which this JAX has neither in jax.core "
          "nor in jax.extend.core; dksflax.compat.kfac_jax_compat needs updating.")
    setattr(jax.core, name, getattr(jax.extend.core, name))
    added.append(name)
  return tuple(added)


def load_kfac_jax() -> types.ModuleType:
  """Imports kfac-jax with both fixes applied and returns the ``kfac_jax`` module.

  Returns:
    The ``kfac_jax`` module, ready to trace on this JAX.

  Raises:
    ImportError: If kfac-jax (or its dependencies distrax, tfp-nightly) is not
      installed; the message says how to install it.
  """
  restore_jax_core_names()
  try:
    module = importlib.import_module("kfac_jax")
  except ImportError as e:
    raise ImportError(
        f"optimizer.name='kfac' needs kfac-jax 0.0.8 and its dependencies (distrax, "
        f"tfp-nightly, dm-tree, immutabledict), which do not import here: {e}") from e
  apply()
  return module


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
  restore_jax_core_names()
  from kfac_jax._src import tag_graph_matcher  # pylint: disable=g-import-not-at-top
  return getattr(tag_graph_matcher.eval_jaxpr_eqn, _PATCH_MARKER, False)


def apply() -> None:
  """Applies fixes 1 to 3 of the module docstring to kfac-jax; idempotent.

  Safe on a kfac-jax that already handles new JAX: the replacement evaluator
  accepts the old and the new ``get_bind_params`` forms alike, and the
  ``ClosedJaxpr`` stand-in accepts positional and keyword construction.

  Raises:
    RuntimeError: If kfac-jax no longer has the functions these patches replace
      (then it was restructured upstream: check whether the patches are needed).
  """
  restore_jax_core_names()
  if is_applied():
    return
  patch_merged_closed_jaxpr()
  patch_eval_jaxpr_eqn()


def patch_eval_jaxpr_eqn() -> None:
  """Fix 2 of the module docstring alone (replaces ``eval_jaxpr_eqn``).

  Raises:
    RuntimeError: If ``tag_graph_matcher.eval_jaxpr_eqn`` does not exist.
  """
  from kfac_jax._src import tag_graph_matcher  # pylint: disable=g-import-not-at-top
  if not hasattr(tag_graph_matcher, "eval_jaxpr_eqn"):
    raise RuntimeError(
        "kfac_jax._src.tag_graph_matcher.eval_jaxpr_eqn does not exist in this "
        "kfac-jax; dksflax.compat.kfac_jax_compat may no longer be needed.")
  setattr(_compatible_eval_jaxpr_eqn, _PATCH_MARKER, True)
  tag_graph_matcher.eval_jaxpr_eqn = _compatible_eval_jaxpr_eqn


def closed_jaxpr_is_merged() -> bool:
  """True where ``jax.extend.core.ClosedJaxpr`` is ``Jaxpr`` (JAX >= 0.11)."""
  import jax.extend.core  # pylint: disable=g-import-not-at-top
  return jax.extend.core.ClosedJaxpr is jax.extend.core.Jaxpr


def keyword_closed_jaxpr(real: type) -> type:
  """Returns a stand-in for ``real`` (the merged class) that accepts keywords.

  ``Stand(jaxpr=j, consts=c)`` and ``Stand(j, c)`` both return ``real(j, c)`` (JAX's
  legacy positional form), and ``isinstance(x, Stand)`` is ``isinstance(x, real)``.

  Args:
    real: ``jax.extend.core.ClosedJaxpr`` of a JAX where it is ``Jaxpr``.

  Returns:
    The stand-in class.
  """

  class _Meta(type):

    def __instancecheck__(cls, obj: Any) -> bool:
      return isinstance(obj, real)

    def __call__(cls, jaxpr: Any, consts: Sequence[Any]) -> Any:
      return real(jaxpr, list(consts))

  return _Meta("ClosedJaxpr", (), {"__doc__": f"Keyword-accepting {real.__name__}."})


class _ModuleOverlay(types.ModuleType):
  """A module that returns ``overrides`` and forwards every other name to ``base``."""

  def __init__(self, base: types.ModuleType, **overrides: Any):
    super().__init__(base.__name__, base.__doc__)
    self._base = base
    self.__dict__.update(overrides)

  def __getattr__(self, name: str) -> Any:
    return getattr(self._base, name)


def patch_merged_closed_jaxpr() -> bool:
  """Fix 3 of the module docstring alone; nothing where ClosedJaxpr is its own class.

  Returns:
    Whether anything was patched (True on JAX >= 0.11).

  Raises:
    RuntimeError: If ``tag_graph_matcher.to_closed_jaxpr`` does not exist.
  """
  if not closed_jaxpr_is_merged():
    return False
  import jax.extend  # pylint: disable=g-import-not-at-top
  import jax.extend.core  # pylint: disable=g-import-not-at-top
  from kfac_jax._src import tag_graph_matcher  # pylint: disable=g-import-not-at-top
  from kfac_jax._src import tracer  # pylint: disable=g-import-not-at-top
  if not hasattr(tag_graph_matcher, "to_closed_jaxpr"):
    raise RuntimeError(
        "kfac_jax._src.tag_graph_matcher.to_closed_jaxpr does not exist in this "
        "kfac-jax; dksflax.compat.kfac_jax_compat may no longer be needed.")
  stand_in = keyword_closed_jaxpr(jax.extend.core.ClosedJaxpr)
  tag_graph_matcher.ClosedJaxpr = stand_in
  tag_graph_matcher.to_closed_jaxpr = _identity_closed_jaxpr
  tracer.jex = _ModuleOverlay(
      jax.extend, core=_ModuleOverlay(jax.extend.core, ClosedJaxpr=stand_in))
  return True


def _identity_closed_jaxpr(jaxpr: Any) -> Any:
  """``to_closed_jaxpr`` where every ``Jaxpr`` already carries its consts."""
  return jaxpr
