"""cross_entropy and binary_cross_entropy: hand values, agreement with the
textbook formulas (hypothesis), extreme logits, gradients, shape errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from defects_jax import losses

finite = st.floats(-30.0, 30.0, width=32)


def test_cross_entropy_hand_value():
  # logits (0, ln 3) -> softmax (1/4, 3/4); labels 1 then 0: (-ln 3/4 - ln 1/4) / 2
  z = jnp.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])
  want = (-np.log(0.75) - np.log(0.25)) / 2
  assert float(jax.jit(losses.cross_entropy)(z, jnp.array([1, 0]))) == pytest.approx(want,
                                                                                     rel=1e-6)


def test_binary_cross_entropy_hand_value():
  # sigmoid(0) = 1/2 -> ln 2 whatever the label; sigmoid(ln 3) = 3/4 with y = 1 -> -ln 3/4
  h, y = jnp.array([0.0, 0.0, np.log(3.0)]), jnp.array([1.0, 0.0, 1.0])
  want = (2 * np.log(2.0) - np.log(0.75)) / 3
  assert float(jax.jit(losses.binary_cross_entropy)(h, y)) == pytest.approx(want, rel=1e-6)


@given(hnp.arrays(np.float32, (4, 3), elements=finite), st.lists(st.integers(0, 2), min_size=4,
                                                                  max_size=4))
def test_cross_entropy_equals_log_softmax_formula(z, labels):
  labels = np.array(labels)
  logp = z - np.log(np.sum(np.exp(z.astype(np.float64) - z.max(1, keepdims=True)), 1,
                           keepdims=True)) - z.max(1, keepdims=True)
  want = -np.mean(logp[np.arange(4), labels])
  got = float(jax.jit(losses.cross_entropy)(jnp.asarray(z), jnp.asarray(labels)))
  assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


@given(hnp.arrays(np.float32, 5, elements=finite), hnp.arrays(np.float32, 5,
                                                               elements=st.sampled_from([0., 1.])))
def test_binary_cross_entropy_equals_softplus_formula(h, y):
  h64 = h.astype(np.float64)
  want = np.mean(np.logaddexp(0.0, h64) - y * h64)
  got = float(jax.jit(losses.binary_cross_entropy)(jnp.asarray(h), jnp.asarray(y)))
  assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_extreme_logits_are_finite_with_exact_gradients():
  h, y = jnp.array([80.0, -80.0]), jnp.array([1.0, 0.0])
  value, grad = jax.jit(jax.value_and_grad(losses.binary_cross_entropy))(h, y)
  assert np.isfinite(float(value)) and float(value) < 1e-30
  np.testing.assert_allclose(grad, [0.0, 0.0], atol=1e-30)
  z = jnp.array([[1e4, -1e4, 0.0]])
  v, g = jax.jit(jax.value_and_grad(losses.cross_entropy))(z, jnp.array([1]))
  assert float(v) == pytest.approx(2e4) and np.all(np.isfinite(g))
  # d/dz CE = softmax(z) - onehot: here (1, 0, 0) - (0, 1, 0)
  np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]], atol=1e-6)


def test_gradients_match_finite_differences():
  from jax.test_util import check_grads  # pylint: disable=g-import-not-at-top
  z = jnp.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.5]], jnp.float32)
  check_grads(lambda z: losses.cross_entropy(z, jnp.array([2, 0])), (z,), order=1,
              modes=["rev"], atol=1e-2, rtol=1e-2)
  h = jnp.array([0.7, -2.0, 3.0], jnp.float32)
  check_grads(lambda h: losses.binary_cross_entropy(h, jnp.array([1.0, 0.0, 0.5])), (h,),
              order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_shape_mismatches_are_errors():
  with pytest.raises(ValueError, match="expected logits float.B, K. and labels int.B."):
    losses.cross_entropy(jnp.zeros((3, 2)), jnp.zeros((2,), jnp.int32))
  with pytest.raises(ValueError, match="differ in shape"):
    losses.binary_cross_entropy(jnp.zeros((3,)), jnp.zeros((3, 1)))
