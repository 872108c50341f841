"""Inverse p-th roots of symmetric PSD matrices in float32, for Shampoo.

Two methods, each returning the root and a relative residual used as a check:

* ``eigh``: ``A = Q diag(l) Q^T`` and ``A^{-1/p} = Q diag(l^{-1/p}) Q^T`` (exact for
  every real p > 0);
* ``newton``: the coupled Newton iteration of Guo & Higham (2006, SIAM J. Matrix
  Anal. Appl. 28(3), Alg. 3.3 with c chosen as in Anil et al. 2020 §3.1), for integer
  p >= 1. ``T^p`` is formed by binary powering, so every integer p is handled, not only
  powers of 2 (the optax PR#1735 pitfall, where p = 6 converged to a wrong root).

Both first add a ridge ``eps * ||A||_inf`` (relative: ``||A||_inf`` bounds lambda_max of a
PSD matrix; floored at ``1e-30``), as in
Gupta et al. 2018 (Shampoo, Alg. 1, ``eps I``) made scale-free.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

INVERSE_ROOT_METHODS = ("eigh", "newton")


def _ridge(mat: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
  """Returns ``A + eps * max(|A|_2-estimate, tiny) I`` and the ridge used."""
  n = mat.shape[0]
  # The max row-sum bounds lambda_max of a PSD matrix; eigh gives it exactly but the
  # Newton path must avoid an eigendecomposition, so both use the same cheap bound.
  scale = jnp.max(jnp.sum(jnp.abs(mat), axis=1))
  ridge = jnp.maximum(eps * scale, 1e-30)
  return mat + ridge * jnp.eye(n, dtype=mat.dtype), ridge


def _matrix_power(mat: jax.Array, p: int) -> jax.Array:
  """``mat**p`` for an integer ``p >= 1`` by binary powering (any p, not only 2^k)."""
  result = None
  base = mat
  while p:
    if p & 1:
      result = base if result is None else result @ base
    p >>= 1
    if p:
      base = base @ base
  return result


def inverse_pth_root_eigh(mat: jax.Array, p: float, eps: float) -> tuple[jax.Array, jax.Array]:
  """``(A + ridge I)^{-1/p}`` via a float32 eigendecomposition.

  Args:
    mat: Symmetric PSD ``[n, n]``.
    p: Root (> 0, any real).
    eps: Relative ridge.

  Returns:
    ``(root, residual)``, residual = ``max|R^p A_r - I|`` computed from the eigenvalues
    (0 up to rounding unless eigh failed, then non-finite).
  """
  a, _ = _ridge(mat.astype(jnp.float32), eps)
  a = 0.5 * (a + a.T)
  evals, evecs = jnp.linalg.eigh(a)
  evals = jnp.maximum(evals, jnp.max(evals) * 1e-30 + 1e-30)
  root = (evecs * jnp.power(evals, -1.0 / p)) @ evecs.T
  recon = (evecs * evals) @ evecs.T
  residual = jnp.max(jnp.abs(recon - a)) / jnp.maximum(jnp.max(jnp.abs(a)), 1e-30)
  return root, residual


def inverse_pth_root_newton(mat: jax.Array, p: int, eps: float, *, num_iters: int = 100,
                            tol: float = 1e-6) -> tuple[jax.Array, jax.Array]:
  """``(A + ridge I)^{-1/p}`` by the coupled Newton iteration, integer ``p``.

  With ``z = (1 + p) / (2 ||A||)``: ``M_0 = z A``, ``X_0 = z^{1/p} I``; repeat
  ``T = ((p + 1) I - M) / p``, ``M <- T^p M``, ``X <- X T`` until ``max|M - I| < tol``.
  Then ``X -> A^{-1/p}`` (``M = X^p A`` throughout).

  Args:
    mat: Symmetric PSD ``[n, n]``.
    p: Integer root >= 1.
    eps: Relative ridge.
    num_iters: Maximum iterations. (Default: 100)
    tol: Stop when ``max|M - I|`` is below this. (Default: 1e-6)

  Returns:
    ``(root, residual)`` with residual ``max|X^p A - I|`` (the check).

  Raises:
    ValueError: If ``p`` is not an integer >= 1.
  """
  if int(p) != p or p < 1:
    raise ValueError(f"coupled Newton needs an integer root p >= 1, got p={p}; "
                     "use inverse_root_method='eigh' for non-integer roots")
  p = int(p)
  a, _ = _ridge(mat.astype(jnp.float32), eps)
  n = a.shape[0]
  eye = jnp.eye(n, dtype=jnp.float32)
  z = (1.0 + p) / (2.0 * jnp.max(jnp.sum(jnp.abs(a), axis=1)))
  m0 = z * a
  x0 = jnp.power(z, 1.0 / p) * eye

  def cond(carry):
    i, _, _, err = carry
    return jnp.logical_and(i < num_iters, err > tol)

  def body(carry):
    i, x, m, _ = carry
    t = ((p + 1.0) * eye - m) / p
    m = _matrix_power(t, p) @ m
    x = x @ t
    return i + 1, x, m, jnp.max(jnp.abs(m - eye))

  _, x, _, _ = jax.lax.while_loop(cond, body, (0, x0, m0, jnp.asarray(jnp.inf, jnp.float32)))
  residual = jnp.max(jnp.abs(_matrix_power(x, p) @ a - eye))
  return x, residual


def inverse_pth_root(mat: jax.Array, p: float, eps: float,
                     method: str = "eigh") -> tuple[jax.Array, jax.Array]:
  """Dispatches to :func:`inverse_pth_root_eigh` or :func:`inverse_pth_root_newton`.

  Raises:
    ValueError: For an unknown method (or a non-integer p with ``newton``).
  """
  if method == "eigh":
    return inverse_pth_root_eigh(mat, p, eps)
  if method == "newton":
    return inverse_pth_root_newton(mat, p, eps)
  raise ValueError(f"inverse_root_method={method!r}; choose one of {INVERSE_ROOT_METHODS}")
