"""The kfac-jax compatibility layer: still needed on this JAX, and sufficient.

Runs on jax 0.10.2 (the CPU venv: kfac-jax imports, its tracing needs the
``eval_jaxpr_eqn`` fix) and on jax 0.11.2 (the GPU machines: kfac-jax needs the
``jax.core`` aliases even to import).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from dksflax.compat import kfac_jax_compat

kfac_jax = kfac_jax_compat.load_kfac_jax()

_TINY_STEP = textwrap.dedent("""
    import sys
    class _NoTensorFlow:  # tfp's JAX backend imports TF only for docstrings: skip it
      def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
          raise ImportError("tensorflow not needed here")
        return None
    sys.meta_path.insert(0, _NoTensorFlow())
    from dksflax.compat import kfac_jax_compat
    fixes = set(sys.argv[1:])   # which of the layer's fixes to apply: 1, 2, 3
    if "1" in fixes:
      kfac_jax_compat.restore_jax_core_names()
    import jax, jax.numpy as jnp, kfac_jax
    if "2" in fixes:
      kfac_jax_compat.patch_eval_jaxpr_eqn()
    if "3" in fixes:
      kfac_jax_compat.patch_merged_closed_jaxpr()
    def loss(p, batch):
      x, y = batch
      logits = x @ p["w"] + p["b"]
      kfac_jax.register_softmax_cross_entropy_loss(logits, y)
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    params = {"w": jnp.ones((4, 3)) * 0.1, "b": jnp.zeros((3,))}
    batch = (jnp.ones((8, 4)), jnp.arange(8) % 3)
    opt = kfac_jax.Optimizer(value_and_grad_func=jax.value_and_grad(loss), l2_reg=0.0,
        learning_rate_schedule=lambda s: 0.1, momentum_schedule=lambda s: 0.0,
        damping_schedule=lambda s: 1e-3, num_burnin_steps=0, multi_device=False)
    state = opt.init(params, jax.random.PRNGKey(0), batch)
    opt.step(params, state, jax.random.PRNGKey(1), batch=batch, global_step_int=0)
    print("UNPATCHED-STEP-OK")
""")


def _unpatched_step(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", _TINY_STEP, *args], capture_output=True,
                        text=True, timeout=600, check=False)


def _fail_if_fixed(proc: subprocess.CompletedProcess, what: str) -> None:
  if proc.returncode == 0 and "UNPATCHED-STEP-OK" in proc.stdout:
    raise AssertionError(
        f"kfac-jax {kfac_jax.__version__} now traces on jax {jax.__version__} without "
        f"{what}: drop it from dksflax.compat.kfac_jax_compat (and the module once "
        "nothing is left)")


_IMPORT_ERROR = "removed in JAX v0.11"
_TRACE_ERRORS = ("too many values to unpack", "not enough values")


def test_unpatched_kfac_still_fails():
  """Fails the day kfac-jax handles current JAX itself: then drop the compat layer.

  Runs a one-layer K-FAC step WITHOUT any fix in a fresh interpreter. On jax >= 0.11
  ``import kfac_jax`` fails (removed ``jax.core`` names); on 0.10 the step fails with
  ``too many values to unpack`` from ``tag_graph_matcher.eval_jaxpr_eqn``.
  """
  proc = _unpatched_step()
  _fail_if_fixed(proc, "dksflax.compat.kfac_jax_compat")
  errors = (_IMPORT_ERROR,) + _TRACE_ERRORS if _jax_at_least(0, 11) else _TRACE_ERRORS
  assert any(e in proc.stderr for e in errors), proc.stderr[-2000:]


_CLOSED_JAXPR_ERROR = "unexpected keyword argument 'jaxpr'"


@pytest.mark.slow
def test_each_fix_is_still_needed_where_it_applies():
  """Leaves out one fix at a time (the other two applied): the step must still fail.

  Fix 2 (``eval_jaxpr_eqn``) is needed on every JAX here; fix 3 (merged
  ``ClosedJaxpr``) only where ``ClosedJaxpr is Jaxpr`` (0.11), and elsewhere the step
  runs without it; fix 1 is covered by the tests above and below.
  """
  without_2 = _unpatched_step("1", "3")
  _fail_if_fixed(without_2, "the eval_jaxpr_eqn patch")
  assert any(e in without_2.stderr for e in _TRACE_ERRORS), without_2.stderr[-2000:]
  without_3 = _unpatched_step("1", "2")
  if kfac_jax_compat.closed_jaxpr_is_merged():
    _fail_if_fixed(without_3, "the merged-ClosedJaxpr patch")
    assert _CLOSED_JAXPR_ERROR in without_3.stderr, without_3.stderr[-2000:]
  else:
    assert "UNPATCHED-STEP-OK" in without_3.stdout, without_3.stderr[-2000:]
  all_fixes = _unpatched_step("1", "2", "3")
  assert "UNPATCHED-STEP-OK" in all_fixes.stdout, all_fixes.stderr[-2000:]


def test_keyword_closed_jaxpr_builds_the_real_class():
  import jax.extend.core  # pylint: disable=import-outside-toplevel
  jaxpr = jax.make_jaxpr(lambda x: x * 2.0 + 1.0)(jnp.ones(3))
  real = type(jaxpr)
  stand_in = kfac_jax_compat.keyword_closed_jaxpr(real)
  assert isinstance(jaxpr, stand_in) and not isinstance(object(), stand_in)
  if kfac_jax_compat.closed_jaxpr_is_merged():
    rebuilt = stand_in(jaxpr=jaxpr, consts=list(jaxpr.consts))
  else:
    rebuilt = stand_in(jaxpr=jaxpr.jaxpr, consts=list(jaxpr.consts))
    assert real is jax.extend.core.ClosedJaxpr
  assert type(rebuilt) is real
  out = jax.extend.core.jaxpr_as_fun(rebuilt)(jnp.arange(3.0))
  assert jnp.allclose(out[0], jnp.arange(3.0) * 2.0 + 1.0)


def _jax_at_least(major: int, minor: int) -> bool:
  return tuple(int(p) for p in jax.__version__.split(".")[:2]) >= (major, minor)


def test_restored_names_are_the_jax_extend_objects():
  import jax.extend.core  # pylint: disable=import-outside-toplevel
  assert kfac_jax_compat.restore_jax_core_names() == ()   # idempotent (already loaded)
  for name in kfac_jax_compat.JAX_CORE_NAMES:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)   # jax 0.10: deprecated aliases
      assert getattr(jax.core, name) is getattr(jax.extend.core, name), name


def test_restore_adds_exactly_the_names_this_jax_lacks():
  probe = ("from dksflax.compat import kfac_jax_compat as c; "
           "print(','.join(c.restore_jax_core_names()))")
  proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                        timeout=300, check=True)
  added = [n for n in proc.stdout.strip().split(",") if n]
  if _jax_at_least(0, 11):
    assert sorted(added) == sorted(kfac_jax_compat.JAX_CORE_NAMES)
  else:
    assert added == []


def test_apply_is_idempotent_and_makes_a_step_run():
  kfac_jax_compat.apply()
  first = __import__("kfac_jax._src.tag_graph_matcher", fromlist=["x"]).eval_jaxpr_eqn
  kfac_jax_compat.apply()
  second = __import__("kfac_jax._src.tag_graph_matcher", fromlist=["x"]).eval_jaxpr_eqn
  assert first is second and kfac_jax_compat.is_applied()

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = jnp.tanh(nn.Conv(4, (3, 3))(x))
      return nn.Dense(3)(x.reshape((x.shape[0], -1)))

  model = Net()
  x = jnp.asarray(jax.random.normal(jax.random.PRNGKey(0), (8, 6, 6, 1)))
  y = jnp.arange(8) % 3
  params = model.init(jax.random.PRNGKey(1), x)["params"]

  def loss(p, batch):
    logits = model.apply({"params": p}, batch[0])
    kfac_jax.register_softmax_cross_entropy_loss(logits, batch[1])
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1))

  opt = kfac_jax.Optimizer(
      value_and_grad_func=jax.value_and_grad(loss), l2_reg=0.0,
      learning_rate_schedule=lambda s: 0.1, momentum_schedule=lambda s: 0.0,
      damping_schedule=lambda s: 1e-3, num_burnin_steps=0, multi_device=False)
  state = opt.init(params, jax.random.PRNGKey(2), (x, y))
  blocks = sorted(type(b).__name__ for b in opt._estimator.blocks)  # pylint: disable=protected-access
  assert blocks == ["Conv2DTwoKroneckerFactored", "DenseTwoKroneckerFactored"]
  before = float(loss(params, (x, y)))
  params, state, stats = opt.step(params, state, jax.random.PRNGKey(3), batch=(x, y),
                                  global_step_int=0)
  assert abs(float(stats["loss"]) - before) < 1e-5
  assert float(loss(params, (x, y))) < before


def test_split_bind_params_accepts_both_forms():
  assert kfac_jax_compat._split_bind_params({"a": 1}) == ((), {"a": 1})  # pylint: disable=protected-access
  subfuns, params = kfac_jax_compat._split_bind_params(([len], {"a": 1}))  # pylint: disable=protected-access
  assert subfuns == (len,) and params == {"a": 1}
