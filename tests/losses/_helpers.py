"""Test helpers for the loss library: jit/eager agreement, finite gradients,
and finite-difference gradient checks in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads


_JIT_CACHE = {}


def jit_value(fn, *args, **kwargs):
  """``fn(*args, **kwargs)`` through ``jax.jit``, asserting it agrees with the
  eager call. Callable arguments (critics) and keyword arguments are closed
  over; array arguments are traced."""
  traced = tuple(i for i, a in enumerate(args) if not callable(a))
  static = tuple((i, a) for i, a in enumerate(args) if callable(a))
  try:  # reuse the compiled function across hypothesis examples
    cache_key = (fn, traced, static, tuple(sorted(kwargs.items())))
    hash(cache_key)
  except TypeError:
    cache_key = None
  jitted = _JIT_CACHE.get(cache_key) if cache_key else None
  if jitted is None:
    def call(*traced_args):
      full = list(args)
      for i, a in zip(traced, traced_args):
        full[i] = a
      return fn(*full, **kwargs)
    jitted = jax.jit(call)
    if cache_key:
      _JIT_CACHE[cache_key] = jitted
  out = jitted(*(args[i] for i in traced))
  eager = fn(*args, **kwargs)
  np.testing.assert_allclose(np.asarray(out), np.asarray(eager), rtol=1e-5, atol=1e-6)
  return out


def assert_finite(tree):
  for leaf in jax.tree_util.tree_leaves(tree):
    arr = np.asarray(leaf, dtype=np.float64)
    assert np.all(np.isfinite(arr)), f"non-finite values: {arr}"


def finite_grads(fn, *args, argnums=0, **kwargs):
  """Jitted gradient of a scalar ``fn`` w.r.t. ``argnums``; asserts it is finite."""
  g = jax.jit(jax.grad(lambda *a: fn(*a, **kwargs), argnums=argnums))(*args)
  assert_finite(g)
  return g


def check_grads_f64(fn, args, order=1, **kwargs):
  """Finite-difference check of ``fn``'s reverse-mode gradient in float64."""
  with jax.enable_x64(True):
    args64 = tuple(jnp.asarray(np.asarray(a), jnp.float64) for a in args)
    check_grads(lambda *a: fn(*a, **kwargs), args64, order=order, modes=("rev",),
                atol=1e-5, rtol=1e-5)
