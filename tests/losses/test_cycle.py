"""Tests of defects_jax.losses.cycle."""

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

images = hnp.arrays(np.float32, (2, 3, 3, 1), elements=st.floats(-1, 1, width=32))


@pytest.mark.parametrize("fn", [losses.cycle_consistency_loss, losses.identity_loss])
def test_hand_values(fn):
  x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  x_rec = jnp.array([[1.0, 0.0], [3.0, 8.0]])
  assert jit_value(fn, x, x_rec) == pytest.approx((0 + 2 + 0 + 4) / 4)


@pytest.mark.parametrize("fn", [losses.cycle_consistency_loss, losses.identity_loss])
@given(a=images, b=images)
def test_nonnegative_and_zero_iff_equal(fn, a, b):
  out = float(jit_value(fn, a, b))
  assert out >= 0.0
  if np.array_equal(a, b):
    assert out == 0.0
  # XLA:CPU flushes subnormal floats to zero, so a mean of differences below
  # ~1e-38 reads 0 (hypothesis found a = 0, b = 1.75e-43); above that it must not.
  if np.max(np.abs(a - b)) >= 1e-30:
    assert out > 0.0
  assert float(jit_value(fn, a, a)) == 0.0


@pytest.mark.parametrize("fn", [losses.cycle_consistency_loss, losses.identity_loss])
def test_grads_finite_at_equality_and_sign_elsewhere(fn):
  x = jnp.zeros((1, 2, 2, 3))
  finite_grads(fn, x, x, argnums=(0, 1))
  g = finite_grads(fn, x, x + 1.0, argnums=1)
  np.testing.assert_allclose(g, np.full(x.shape, 1.0 / x.size))


def test_vmap_over_image_pairs():
  a = jax.random.normal(jax.random.key(0), (4, 2, 3, 3, 1))
  b = jax.random.normal(jax.random.key(1), (4, 2, 3, 3, 1))
  out = jax.vmap(losses.cycle_consistency_loss)(a, b)
  np.testing.assert_allclose(out, [losses.cycle_consistency_loss(x, y) for x, y in zip(a, b)],
                             rtol=1e-6)


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match="shapes must match"):
    losses.cycle_consistency_loss(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4, 1)))
