"""Shampoo against an independent float64 numpy reference (explicit eigendecompositions)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dksflax.optim.inverse_root import inverse_pth_root
from dksflax.optim.shampoo import scale_by_shampoo, shampoo


def _np_root(mat: np.ndarray, p: float, eps: float) -> np.ndarray:
  a = mat + eps * np.max(np.abs(mat).sum(1)) * np.eye(len(mat))
  w, v = np.linalg.eigh(a)
  return (v * w ** (-1.0 / p)) @ v.T


class NumpyShampoo:
  """Shampoo written from Gupta et al. 2018 Alg. 2 + grafting, float64, no blocking."""

  def __init__(self, shapes, *, lr, beta1, beta2, eps, period, graft, start):
    self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
    self.period, self.graft, self.start = period, graft, start
    self.count = 0
    self.acc = [np.zeros(s) for s in shapes]
    self.mom = [np.zeros(s) for s in shapes]
    self.stats = [[np.zeros((d, d)) for d in s] if len(s) >= 2 else None for s in shapes]
    self.roots = [[np.eye(d) for d in s] if len(s) >= 2 else None for s in shapes]

  def _acc(self, old, new):
    return old + new if self.beta2 == 1.0 else self.beta2 * old + (1 - self.beta2) * new

  def step(self, params, grads):
    out = []
    for i, (p, g) in enumerate(zip(params, grads)):
      self.acc[i] = self._acc(self.acc[i], g * g)
      corr = 1.0 if self.beta2 == 1.0 else 1.0 - self.beta2 ** (self.count + 1)
      ada = g / (np.sqrt(self.acc[i] / corr) + self.eps)
      if self.stats[i] is None:
        d = ada
      else:
        k = g.ndim
        unfold = [np.moveaxis(g, j, 0).reshape(g.shape[j], -1) for j in range(k)]
        self.stats[i] = [self._acc(s, u @ u.T) for s, u in zip(self.stats[i], unfold)]
        if self.count % self.period == 0:
          self.roots[i] = [_np_root(s, 2.0 * k, self.eps) for s in self.stats[i]]
        d = g
        for j, r in enumerate(self.roots[i]):
          d = np.moveaxis(np.tensordot(r, np.moveaxis(d, j, 0), axes=(1, 0)), 0, j)
        ref = ada if self.graft == "adagrad" else g
        if self.graft != "none":
          d = d * np.linalg.norm(ref) / np.linalg.norm(d)
        if self.count < self.start:
          d = g if self.graft == "sgd" else ada
      self.mom[i] = self.beta1 * self.mom[i] + d
      out.append(p - self.lr * self.mom[i])
    self.count += 1
    return out


def _problem(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(32, 6))
  y = rng.normal(size=(32, 3))
  params = [rng.normal(size=(6, 5)) / np.sqrt(6), 0.1 * rng.normal(size=(5,)),
            rng.normal(size=(5, 3)) / np.sqrt(5), 0.1 * rng.normal(size=(3,))]
  return x, y, params


def _np_grads(params, x, y):
  w1, b1, w2, b2 = params
  h = np.tanh(x @ w1 + b1)
  out = h @ w2 + b2
  dout = 2.0 * (out - y) / y.size
  dh = (dout @ w2.T) * (1 - h * h)
  return [x.T @ dh, dh.sum(0), h.T @ dout, dout.sum(0)]


def _jax_loss(params, x, y):
  w1, b1, w2, b2 = params
  out = jnp.tanh(x @ w1 + b1) @ w2 + b2
  return jnp.mean((out - y) ** 2)


@pytest.mark.parametrize("graft,beta2,period,start", [
    ("adagrad", 0.99, 2, 1), ("sgd", 1.0, 3, 2), ("none", 0.9, 1, 0)])
def test_shampoo_matches_numpy_reference_20_steps(graft, beta2, period, start):
  """Every one of 20 updates on a two-layer tanh net equals the float64 reference.

  Both optimizers see the same gradient sequence (taken at the JAX iterates), so the
  comparison isolates the optimizer; the float32 roots keep the per-step relative
  error near 5e-6 with eps = 1e-3. A free-running comparison (each on its own
  trajectory) is checked too, more loosely, as float32 rounding compounds.
  """
  x, y, params0 = _problem()
  hp = dict(beta2=beta2, eps=1e-3, period=period, graft=graft, start=start)
  ref = NumpyShampoo([p.shape for p in params0], lr=0.02, beta1=0.9, **hp)
  free_ref = NumpyShampoo([p.shape for p in params0], lr=0.02, beta1=0.9, **hp)
  tx = shampoo(0.02, beta1=0.9, beta2=beta2, eps=1e-3, update_period=period, graft=graft,
               start_preconditioning_step=start)
  free_params = [p.copy() for p in params0]
  jx_params = [jnp.asarray(p, jnp.float32) for p in params0]
  state = tx.init(jx_params)
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  grad_fn = jax.jit(jax.grad(_jax_loss))
  update_fn = jax.jit(tx.update)
  worst = 0.0
  for _ in range(20):
    grads = grad_fn(jx_params, xj, yj)
    updates, state = update_fn(grads, state, jx_params)
    old = [np.asarray(p, np.float64) for p in jx_params]
    new = ref.step(old, [np.asarray(g, np.float64) for g in grads])
    for o, n, u in zip(old, new, updates):
      worst = max(worst, np.linalg.norm(np.asarray(u, np.float64) - (n - o))
                  / np.linalg.norm(n - o))
    jx_params = [p + u for p, u in zip(jx_params, updates)]
    free_params = free_ref.step(free_params, _np_grads(free_params, x, y))
  assert worst < 1e-5, (graft, worst)
  for p0, pn, pj in zip(params0, free_params, jx_params):
    err = np.linalg.norm(np.asarray(pj, np.float64) - pn) / np.linalg.norm(pn - p0)
    assert err < 1e-4, (graft, err)
  assert int(state[0].root_failures) == 0


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("method", ["eigh", "newton"])
def test_inverse_root_every_p(p, method):
  rng = np.random.default_rng(p)
  a = rng.normal(size=(12, 40))
  mat = a @ a.T / 40.0
  root, residual = jax.jit(lambda m: inverse_pth_root(m, p, 1e-6, method))(
      jnp.asarray(mat, jnp.float32))
  expected = _np_root(mat, p, 1e-6)
  rel = np.linalg.norm(np.asarray(root, np.float64) - expected) / np.linalg.norm(expected)
  assert rel < 2e-4, (p, method, rel)
  assert float(residual) < 1e-3
  # Independent check: root^p * (A + ridge) = I.
  ridge = 1e-6 * np.max(np.abs(mat).sum(1))
  prod = np.linalg.matrix_power(np.asarray(root, np.float64), p) @ (mat + ridge * np.eye(12))
  np.testing.assert_allclose(prod, np.eye(12), atol=2e-3)


def test_newton_rejects_non_integer_root():
  tx = scale_by_shampoo(exponent_multiplier=1.5, inverse_root_method="newton")
  with pytest.raises(ValueError, match="not an integer"):
    tx.init({"w": jnp.zeros((4, 3))})


def test_blocking_equals_independent_blocks():
  """A (6, 5) kernel with block_size 3 == four separate Shampoos on its 3x3/3x2 blocks."""
  rng = np.random.default_rng(3)
  grads = [jnp.asarray(rng.normal(size=(6, 5)), jnp.float32) for _ in range(4)]
  kw = dict(beta2=0.95, eps=1e-4, update_period=1, graft="adagrad",
            start_preconditioning_step=0)
  tx_blocked = scale_by_shampoo(block_size=3, **kw)
  tx_single = scale_by_shampoo(block_size=1024, **kw)
  st = tx_blocked.init(grads[0])
  slices = list(itertools.product([slice(0, 3), slice(3, 6)], [slice(0, 3), slice(3, 5)]))
  st_parts = [tx_single.init(grads[0][s]) for s in slices]
  blocked_update, single_update = jax.jit(tx_blocked.update), jax.jit(tx_single.update)
  for g in grads:
    upd, st = blocked_update(g, st)
    for k, s in enumerate(slices):
      part, st_parts[k] = single_update(g[s], st_parts[k])
      np.testing.assert_allclose(np.asarray(upd[s]), np.asarray(part), rtol=1e-5, atol=1e-7)


def test_one_dim_and_oversized_params_use_adagrad_diagonal():
  rng = np.random.default_rng(4)
  params = {"b": jnp.zeros((7,)), "big": jnp.zeros((20, 3)), "conv1x1": jnp.zeros((1, 1, 5))}
  tx = scale_by_shampoo(beta2=1.0, eps=1e-3, max_preconditioner_dim=10)
  st = tx.init(params)
  update = jax.jit(tx.update)
  acc = {k: np.zeros(v.shape) for k, v in params.items()}
  for _ in range(3):
    g = {k: rng.normal(size=v.shape) for k, v in params.items()}
    upd, st = update(jax.tree_util.tree_map(jnp.asarray, g), st)
    for k in params:
      acc[k] += g[k] ** 2
      np.testing.assert_allclose(np.asarray(upd[k]), g[k] / (np.sqrt(acc[k]) + 1e-3),
                                 rtol=1e-5)
