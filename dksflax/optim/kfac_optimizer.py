"""K-FAC (Martens & Grosse 2015) through kfac-jax, behind the :class:`TrainingOptimizer` API.

Layers are registered automatically from the traced loss (kfac-jax graph matching),
with extra patterns for Flax layers that compute in bfloat16/float16 on float32
parameters (:mod:`dksflax.optim.kfac_patterns`). After ``init`` the registered
curvature blocks are counted by type, and any parameter that fell back to a diagonal
``Auto[generic]`` / Orphan block raises :class:`KfacRegistrationError`, so a layer is
never silently approximated crudely (kfac-jax#114, #270, #344).

Hyperparameters follow DKS §26 / TAT App. E: fixed learning-rate schedule and
momentum, damping fixed or decayed geometrically from ``damping`` to
``final_damping`` over the run, curvature EMA, inverse update period, and the norm
constraint on the update (``norm_constraint``; Ba et al. 2017 §5, as in kfac-jax).
``kfac_jax.Optimizer(multi_device=False)`` compiles internally; with a batch sharded
over a Mesh and replicated parameters, XLA reduces the curvature statistics and the
gradient over the global batch.

kfac-jax is imported when a :class:`KfacTrainingOptimizer` is built (through
:func:`dksflax.compat.kfac_jax_compat.load_kfac_jax`), not when this module is: the
other optimizers never load it (nor distrax / tfp-nightly, which load TensorFlow where
it is installed).
"""

from __future__ import annotations

import collections
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from dksflax.compat import kfac_jax_compat
from dksflax.optim.kfac_patterns import all_patterns
from dksflax.optim.schedules import Schedule
from dksflax.optim.types import Batch, LossFn, Metrics, ModelState, OptState, Params, PRNGKey

#: Block classes that mean "no pattern matched this parameter".
FALLBACK_BLOCK_TYPES = ("NaiveDiagonal", "NaiveFull", "NaiveTNT")


class KfacRegistrationError(ValueError):
  """A parameter was not registered as a Kronecker-factored (or norm) block."""


def damping_schedule(kind: str, damping: float, final_damping: float,
                     total_steps: int) -> Schedule:
  """``fixed``: constant; ``decay``: geometric from ``damping`` to ``final_damping``.

  Args:
    kind: ``fixed`` or ``decay``.
    damping: Initial damping (> 0).
    final_damping: Damping at the last step (> 0), ``decay`` only.
    total_steps: Run length.

  Returns:
    ``schedule(step) -> damping`` (float32).
  """
  if kind == "fixed":
    return lambda step: jnp.full([], damping, jnp.float32)
  rate = math.log(final_damping / damping) / max(total_steps - 1, 1)

  def decayed(step: jax.Array) -> jax.Array:
    t = jnp.minimum(jnp.asarray(step, jnp.float32), total_steps - 1)
    return (damping * jnp.exp(rate * t)).astype(jnp.float32)

  return decayed


def _check_param_dtypes(params: Params) -> None:
  dtypes = {jnp.dtype(p.dtype) for p in jax.tree_util.tree_leaves(params)}
  if len(dtypes) > 1:
    raise KfacRegistrationError(
        f"K-FAC needs one float dtype for all parameters; got {sorted(map(str, dtypes))}. "
        "Keep param_dtype=float32 and compute in bfloat16 via the layers' dtype=...")


class KfacTrainingOptimizer:
  """A :class:`~dksflax.optim.types.TrainingOptimizer` wrapping ``kfac_jax.Optimizer``."""

  def __init__(self, kfac_config: ml_collections.ConfigDict, *, loss_fn: LossFn,
               schedule: Schedule, total_steps: int, grad_clip_norm: float = 0.0,
               hyperparameters: dict[str, Any] | None = None):
    """Builds the kfac-jax optimizer (compiled lazily at the first ``init``/``step``).

    Imports kfac-jax (with :mod:`dksflax.compat.kfac_jax_compat`'s fixes) here.

    Args:
      kfac_config: The ``optimizer.kfac`` sub-dict (validated).
      loss_fn: ``loss_fn(params, model_state, rng, batch)``; registers its loss.
      schedule: Learning-rate schedule.
      total_steps: Run length (for the damping decay).
      grad_clip_norm: Clip the gradient to this global norm before K-FAC
        preconditions it; 0 disables. (Default: 0.0)
      hyperparameters: Extra entries (learning rate, schedule...) for ``describe``.
        (Default: None)

    Raises:
      ImportError: If kfac-jax or its dependencies are not installed.
    """
    kfac_jax = kfac_jax_compat.load_kfac_jax()
    self._cfg = kfac_config
    self._hyper = {**(hyperparameters or {}), **kfac_config.to_dict()}
    self._schedule = schedule
    self._damping = damping_schedule(kfac_config.damping_schedule, kfac_config.damping,
                                     kfac_config.final_damping, total_steps)
    value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
    if grad_clip_norm > 0.0:
      def value_and_grad_fn(params, model_state, rng, batch):
        out, grads = value_and_grad(params, model_state, rng, batch)
        norm = optax.global_norm(grads)
        scale = jnp.minimum(1.0, grad_clip_norm / jnp.maximum(norm, 1e-30))
        return out, jax.tree_util.tree_map(lambda g: g * scale, grads)
    else:
      value_and_grad_fn = value_and_grad
    adaptive = bool(kfac_config.use_adaptive_damping)
    momentum = float(kfac_config.momentum)
    self._opt = kfac_jax.Optimizer(
        value_and_grad_func=value_and_grad_fn,
        l2_reg=0.0,   # L2 is in the loss (weights only)
        value_func_has_aux=True,
        value_func_has_state=True,
        value_func_has_rng=True,
        learning_rate_schedule=schedule,
        momentum_schedule=lambda step: jnp.full([], momentum, jnp.float32),
        use_adaptive_damping=adaptive,
        damping_schedule=None if adaptive else self._damping,
        initial_damping=float(kfac_config.damping) if adaptive else None,
        min_damping=float(kfac_config.final_damping) if adaptive else 1e-8,
        norm_constraint=(float(kfac_config.norm_constraint)
                         if kfac_config.norm_constraint > 0 else None),
        num_burnin_steps=0,
        estimation_mode="fisher_gradients",
        curvature_ema=float(kfac_config.curvature_ema),
        inverse_update_period=int(kfac_config.inverse_update_period),
        auto_register_kwargs={"graph_patterns": all_patterns()},
        multi_device=False,
        include_norms_in_stats=True,
    )
    self._blocks: dict[str, int] | None = None

  def _check_registration(self) -> None:
    blocks = self._opt._estimator.blocks  # pylint: disable=protected-access
    counts = collections.Counter(type(b).__name__ for b in blocks)
    bad = [getattr(b, "name", type(b).__name__) for b in blocks
           if type(b).__name__ in FALLBACK_BLOCK_TYPES
           or "generic" in str(getattr(b, "name", "")).lower()
           or "orphan" in str(getattr(b, "name", "")).lower()]
    if bad:
      raise KfacRegistrationError(
          f"K-FAC fell back to a diagonal/Generic/Orphan block for {len(bad)} of "
          f"{len(blocks)} layer(s): {bad}. Registered block types: {dict(counts)}. Each "
          "conv/dense layer must match a kfac-jax pattern: use flax nn.Dense / nn.Conv "
          "(bias optional), keep param_dtype=float32, and register unusual layers "
          "with kfac_jax.register_dense/register_conv2d.")
    self._blocks = dict(counts)

  def init(self, params: Params, model_state: ModelState, rng: PRNGKey,
           batch: Batch) -> OptState:
    """Traces the loss, registers layers, checks them, returns the K-FAC state.

    Raises:
      KfacRegistrationError: Mixed parameter dtypes, or a layer that got a fallback block.
    """
    _check_param_dtypes(params)
    state = self._opt.init(params, rng, batch, func_state=model_state)
    self._check_registration()
    return state

  def step(self, params: Params, model_state: ModelState, opt_state: OptState,
           rng: PRNGKey, batch: Batch, step: int
           ) -> tuple[Params, ModelState, OptState, Metrics]:
    """One K-FAC update (donates ``params``); ``step`` must match the state's counter."""
    params, opt_state, model_state, stats = self._opt.step(
        params, opt_state, rng, batch=batch, func_state=model_state,
        global_step_int=int(step))
    metrics = {"loss": stats["loss"], "grad_norm": stats["grad_norm"],
               "update_norm": stats["update_norm"] if "update_norm" in stats
               else stats["precon_grad_norm"],
               "learning_rate": stats["learning_rate"], "damping": stats["damping"],
               "momentum": stats["momentum"], **stats["aux"]}
    return params, model_state, opt_state, metrics

  def describe(self) -> dict[str, Any]:
    """Name, hyperparameters and the Kronecker-factored blocks by type (after init)."""
    return {"name": "kfac", "hyperparameters": dict(self._hyper),
            "registered_blocks": dict(self._blocks) if self._blocks is not None
            else "not yet initialised (call init)"}

  @property
  def registered_blocks(self) -> dict[str, int] | None:
    """Block class name -> count, known after :meth:`init`."""
    return None if self._blocks is None else dict(self._blocks)
