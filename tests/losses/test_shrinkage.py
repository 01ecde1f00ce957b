"""Tests of defects_jax.losses.shrinkage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from defects_jax import losses
from tests.losses._helpers import finite_grads
from tests.losses._helpers import jit_value

x_strategy = hnp.arrays(np.float32, (2, 3, 3, 4), elements=st.floats(-5, 5, width=32))
tau_strategy = hnp.arrays(np.float32, (4,), elements=st.floats(0, 3, width=32))


def test_soft_threshold_hand_values():
  x = jnp.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
  np.testing.assert_allclose(jit_value(losses.soft_threshold, x, 2.0), [-1, 0, 0, 0, 0, 0, 1])
  # Gradient: 1 outside the band, 0 inside (eq. 9).
  g = jax.vmap(jax.grad(lambda v: losses.soft_threshold(v, 2.0)))(jnp.array([-3.0, -1.0, 1.0, 3.0]))
  np.testing.assert_allclose(g, [1, 0, 0, 1])


def test_saddt_hand_values():
  x = jnp.array([-3.0, -1.0, 0.0, 1.0, 3.0])
  # slope 2, tau 2: 2*3 - 2 = 4; 2*(-3) + 2 = -4.
  np.testing.assert_allclose(jit_value(losses.saddt, x, 2.0, 2.0), [-4, 0, 0, 0, 4])
  g = jax.vmap(jax.grad(lambda v: losses.saddt(v, 2.0, 0.5)))(x)
  np.testing.assert_allclose(g, [0.5, 0, 0, 0, 0.5])


def test_per_channel_and_per_sample_thresholds():
  x = jnp.broadcast_to(jnp.array([1.0, 2.0, 3.0]), (2, 2, 2, 3))
  tau_c = jnp.array([0.5, 2.5, 1.0])
  out = losses.soft_threshold(x, tau_c)
  np.testing.assert_allclose(out[0, 0, 0], [0.5, 0.0, 2.0])
  tau_bc = jnp.array([[0.5, 2.5, 1.0], [0.0, 0.0, 3.0]])  # [B, C] -> [B, 1, 1, C]
  out = losses.soft_threshold(x, tau_bc)
  np.testing.assert_allclose(out[0, 1, 1], [0.5, 0.0, 2.0])
  np.testing.assert_allclose(out[1, 0, 1], [1.0, 2.0, 0.0])
  slope_bc = jnp.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
  out = losses.saddt(x, tau_bc, slope_bc)
  np.testing.assert_allclose(out[1, 0, 0], [2.0, 4.0, 0.0])


@given(x_strategy, tau_strategy)
def test_soft_threshold_properties(x, tau):
  out = np.asarray(jit_value(losses.soft_threshold, x, tau))
  # Shrinks toward zero by at most tau, never flips sign, zero inside the band.
  assert np.all(np.abs(out) <= np.abs(x) + 1e-6)
  assert np.all(out * x >= 0)
  np.testing.assert_allclose(np.abs(x - out), np.minimum(np.abs(x), tau), atol=1e-5)
  # SADDT with slope 1 is the soft threshold.
  np.testing.assert_allclose(jit_value(losses.saddt, x, tau, jnp.ones(4)), out, atol=1e-6)


def test_bfloat16_in_bfloat16_out_and_finite_grads():
  x = jnp.linspace(-3, 3, 24).reshape(1, 2, 3, 4).astype(jnp.bfloat16)
  out = losses.soft_threshold(x, jnp.ones(4))
  assert out.dtype == jnp.bfloat16
  assert losses.saddt(x, jnp.ones(4), 1.5 * jnp.ones(4)).dtype == jnp.bfloat16
  xf = x.astype(jnp.float32)
  finite_grads(lambda v, t, d: jnp.sum(losses.saddt(v, t, d)), xf, jnp.ones(4), jnp.ones(4),
               argnums=(0, 1, 2))
  finite_grads(lambda v, t: jnp.sum(losses.soft_threshold(v, t)), xf, jnp.zeros(4), argnums=(0, 1))
