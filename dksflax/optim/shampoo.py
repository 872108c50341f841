"""Shampoo (Gupta et al. 2018; Anil et al. 2020) as an optax GradientTransformation.

For a gradient block ``G`` with ``k`` non-trivial dimensions, Shampoo keeps one
statistic per dimension, ``L_i <- beta2 L_i + (1 - beta2) G_(i) G_(i)^T`` (``G_(i)``
the mode-i unfolding; ``beta2 = 1`` sums, as in Gupta et al. Alg. 1-2), and
preconditions ``D = G x_1 R_1 ... x_k R_k`` with ``R_i = (L_i + ridge)^{-1/p}``,
``p = 2k / exponent_multiplier`` (Gupta et al. Alg. 2 uses p = 2k). Roots are
recomputed every ``update_period`` steps (Anil et al. §3) in float32 by eigh or the
coupled Newton iteration (:mod:`dksflax.optim.inverse_root`); a root whose residual
check fails (non-finite, or above ``failure_threshold``) is discarded and the previous
one kept, and failures are counted in the state.

Heuristics of Anil et al. 2020 (§3, App. B): dimensions larger than ``block_size`` are
split into blocks, each preconditioned on its own; parameters of rank <= 1 (after
dropping size-1 dimensions) or with a dimension above ``max_preconditioner_dim`` get a
diagonal (Adagrad-style) preconditioner, ``g / (sqrt(a / c_t) + eps)`` with the Adam
bias correction ``c_t = 1 - beta2^t`` when ``beta2 < 1``; the step direction of
each block is rescaled to the norm of a grafted optimizer's direction (``adagrad``,
``sgd``) or left as is (``none``); before ``start_preconditioning_step`` the grafted
direction (Adagrad for ``none``) is used.

Statistics are sums over the gradient, which is the mean over the global batch, so a
``jax.jit`` step on a batch sharded over a Mesh reduces them across devices exactly as
on one device (the AlgoPerf#398 pitfall cannot happen).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dksflax.optim.inverse_root import inverse_pth_root

GRAFT_TYPES = ("adagrad", "sgd", "none")


class ShampooState(NamedTuple):
  """State: step count, per-leaf statistics / roots / graft accumulators, failures."""
  count: jax.Array
  leaves: tuple[dict[str, Any], ...]
  root_failures: jax.Array


@dataclasses.dataclass(frozen=True)
class _LeafPlan:
  """How one parameter is preconditioned (static, from its shape)."""
  shape: tuple[int, ...]
  diagonal: bool
  squeezed: tuple[int, ...]                 # shape without size-1 dims
  blocks: tuple[tuple[slice, ...], ...]     # slices of the squeezed tensor

  @property
  def rank(self) -> int:
    return len(self.squeezed)


def _plan(shape: tuple[int, ...], block_size: int, max_dim: int) -> _LeafPlan:
  squeezed = tuple(d for d in shape if d != 1)
  diagonal = len(squeezed) <= 1 or any(d > max_dim for d in squeezed)
  if diagonal:
    return _LeafPlan(shape, True, squeezed, ())
  chunks = [[slice(s, min(s + block_size, d)) for s in range(0, d, block_size)]
            for d in squeezed]
  return _LeafPlan(shape, False, squeezed, tuple(itertools.product(*chunks)))


def _accumulate(old: jax.Array, new: jax.Array, beta2: float) -> jax.Array:
  return old + new if beta2 == 1.0 else beta2 * old + (1.0 - beta2) * new


def _mode_stat(g: jax.Array, i: int) -> jax.Array:
  others = [j for j in range(g.ndim) if j != i]
  return jnp.tensordot(g, g, axes=(others, others))


def _precondition(g: jax.Array, roots: tuple[jax.Array, ...]) -> jax.Array:
  for r in roots:   # contracting axis 0 k times restores the axis order
    g = jnp.tensordot(g, r, axes=[[0], [0]])
  return g


def scale_by_shampoo(*, beta2: float = 0.99, eps: float = 1e-5,
                     exponent_multiplier: float = 1.0, update_period: int = 10,
                     block_size: int = 1024, max_preconditioner_dim: int = 8192,
                     graft: str = "adagrad", start_preconditioning_step: int = 1,
                     inverse_root_method: str = "eigh",
                     failure_threshold: float = 0.1) -> optax.GradientTransformation:
  """Shampoo preconditioning (no learning rate, no momentum: chain those after).

  Args:
    beta2: Statistic decay in (0, 1]; 1 sums. (Default: 0.99)
    eps: Relative ridge of the statistics and Adagrad's epsilon. (Default: 1e-5)
    exponent_multiplier: ``e`` in the root exponent ``-e / (2k)``. (Default: 1.0)
    update_period: Recompute roots every this many steps. (Default: 10)
    block_size: Split dimensions larger than this. (Default: 1024)
    max_preconditioner_dim: Diagonal fallback above this size. (Default: 8192)
    graft: ``adagrad``, ``sgd`` or ``none``. (Default: ``adagrad``)
    start_preconditioning_step: First step using Shampoo's direction. (Default: 1)
    inverse_root_method: ``eigh`` or ``newton``. (Default: ``eigh``)
    failure_threshold: Largest accepted root residual. (Default: 0.1)

  Returns:
    An optax GradientTransformation whose state is a :class:`ShampooState`.

  Raises:
    ValueError: For out-of-range settings (at construction), or at ``init`` for a
      ``newton`` root with non-integer ``p`` for some parameter.
  """
  if not 0.0 < beta2 <= 1.0:
    raise ValueError(f"shampoo beta2={beta2} must lie in (0, 1]")
  if not eps > 0.0:
    raise ValueError(f"shampoo eps={eps} must be > 0")
  if not exponent_multiplier > 0.0:
    raise ValueError(f"shampoo exponent_multiplier={exponent_multiplier} must be > 0")
  if int(update_period) < 1 or int(block_size) < 1 or int(max_preconditioner_dim) < 1:
    raise ValueError("shampoo update_period, block_size, max_preconditioner_dim must be "
                     f">= 1; got {update_period}, {block_size}, {max_preconditioner_dim}")
  if graft not in GRAFT_TYPES:
    raise ValueError(f"shampoo graft={graft!r}; choose one of {GRAFT_TYPES}")
  if inverse_root_method not in ("eigh", "newton"):
    raise ValueError(f"shampoo inverse_root_method={inverse_root_method!r}; "
                     "choose 'eigh' or 'newton'")

  def root_power(plan: _LeafPlan) -> float:
    p = 2.0 * plan.rank / exponent_multiplier
    if inverse_root_method == "newton" and p != int(p):
      raise ValueError(
          f"shampoo: parameter of shape {plan.shape} needs the root p={p} (2*rank / "
          f"exponent_multiplier={exponent_multiplier}), not an integer, which coupled Newton "
          "cannot compute; use inverse_root_method='eigh' or another exponent_multiplier")
    return p

  def plans(params: Any) -> list[_LeafPlan]:
    return [_plan(tuple(p.shape), int(block_size), int(max_preconditioner_dim))
            for p in jax.tree_util.tree_leaves(params)]

  def init_fn(params: Any) -> ShampooState:
    leaves = []
    for plan in plans(params):
      state = {"acc": jnp.zeros(plan.shape, jnp.float32)}
      if not plan.diagonal:
        root_power(plan)
        stats, roots = [], []
        for blk in plan.blocks:
          sizes = [s.stop - s.start for s in blk]
          stats.append(tuple(jnp.zeros((n, n), jnp.float32) for n in sizes))
          roots.append(tuple(jnp.eye(n, dtype=jnp.float32) for n in sizes))
        state["stats"], state["roots"] = tuple(stats), tuple(roots)
      leaves.append(state)
    return ShampooState(jnp.zeros([], jnp.int32), tuple(leaves), jnp.zeros([], jnp.int32))

  def leaf_update(plan: _LeafPlan, g_in: jax.Array, st: dict[str, Any], count: jax.Array
                  ) -> tuple[jax.Array, dict[str, Any], jax.Array]:
    g = g_in.astype(jnp.float32)
    acc = _accumulate(st["acc"], jnp.square(g), beta2)
    # Bias-correct the exponential average (Kingma & Ba 2015 §3), so early steps are not
    # 1/sqrt(1 - beta2) times too large; a sum (beta2 = 1) needs no correction.
    correction = 1.0 if beta2 == 1.0 else 1.0 - beta2 ** (count + 1).astype(jnp.float32)
    adagrad = g / (jnp.sqrt(acc / correction) + eps)
    new = {"acc": acc}
    if plan.diagonal:
      return adagrad.astype(g_in.dtype), new, jnp.zeros([], jnp.int32)
    gs = g.reshape(plan.squeezed)
    ada_s = adagrad.reshape(plan.squeezed)
    p = root_power(plan)
    stats = tuple(
        tuple(_accumulate(s, _mode_stat(gs[blk], i), beta2) for i, s in enumerate(bstats))
        for blk, bstats in zip(plan.blocks, st["stats"]))

    def compute_roots(old_roots):
      out, failures = [], jnp.zeros([], jnp.int32)
      for bstats, broots in zip(stats, old_roots):
        new_b = []
        for s, r_old in zip(bstats, broots):
          r, residual = inverse_pth_root(s, p, eps, inverse_root_method)
          ok = jnp.isfinite(residual) & (residual < failure_threshold) & jnp.all(jnp.isfinite(r))
          new_b.append(jnp.where(ok, r, r_old))
          failures = failures + (~ok).astype(jnp.int32)
        out.append(tuple(new_b))
      return tuple(out), failures

    roots, failures = jax.lax.cond(
        count % update_period == 0, compute_roots,
        lambda old: (old, jnp.zeros([], jnp.int32)), st["roots"])
    direction = jnp.zeros(plan.squeezed, jnp.float32)
    for blk, broots in zip(plan.blocks, roots):
      d = _precondition(gs[blk], broots)
      if graft != "none":
        ref = ada_s[blk] if graft == "adagrad" else gs[blk]
        d = d * (jnp.linalg.norm(ref) / jnp.maximum(jnp.linalg.norm(d), 1e-30))
      direction = direction.at[blk].set(d)
    fallback = ada_s if graft in ("adagrad", "none") else gs
    direction = jnp.where(count >= start_preconditioning_step, direction, fallback)
    new.update(stats=stats, roots=roots)
    return direction.reshape(plan.shape).astype(g_in.dtype), new, failures

  def update_fn(updates: Any, state: ShampooState, params: Any = None
                ) -> tuple[Any, ShampooState]:
    del params
    flat, treedef = jax.tree_util.tree_flatten(updates)
    out, leaves, failures = [], [], state.root_failures
    for plan, g, st in zip(plans(updates), flat, state.leaves):
      d, new, f = leaf_update(plan, g, st, state.count)
      out.append(d)
      leaves.append(new)
      failures = failures + f
    new_state = ShampooState(state.count + 1, tuple(leaves), failures)
    return jax.tree_util.tree_unflatten(treedef, out), new_state

  return optax.GradientTransformation(init_fn, update_fn)


def shampoo(learning_rate: optax.ScalarOrSchedule, *, beta1: float = 0.9,
            **kwargs: Any) -> optax.GradientTransformation:
  """Shampoo with heavy-ball momentum ``beta1`` and a learning rate (schedule).

  Args:
    learning_rate: A float or an optax schedule.
    beta1: Momentum in [0, 1); 0 disables it. (Default: 0.9)
    **kwargs: Passed to :func:`scale_by_shampoo`.

  Returns:
    ``chain(scale_by_shampoo, trace(beta1), scale_by_learning_rate)``.
  """
  if not 0.0 <= beta1 < 1.0:
    raise ValueError(f"shampoo beta1={beta1} must lie in [0, 1)")
  parts = [scale_by_shampoo(**kwargs)]
  if beta1 > 0.0:
    parts.append(optax.trace(decay=beta1))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  return optax.chain(*parts)
