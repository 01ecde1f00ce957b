"""Tests of defects_jax.losses.imbalance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from defects_jax import losses
from tests.losses._helpers import assert_finite
from tests.losses._helpers import finite_grads
from tests.losses._helpers import jit_value


def expected_weight(tp, fn, fp, tn, ratio):
  tpr, tnr = tp / (tp + fn), tn / (tn + fp)
  acc = (tp + tn) / (tp + fn + fp + tn)
  return math.tanh(ratio * math.exp(-math.sqrt(tpr * tnr) / 2) * math.exp(-(1 - acc) / 2))


def test_gmean_weights_hand_values():
  # Rows true, columns predicted; 3 classes, 30 samples.
  conf = jnp.array([[8, 1, 1],
                    [2, 6, 2],
                    [0, 0, 10]])
  # One-vs-rest counts (tp, fn, fp, tn):
  # class 0: 8, 2, 2, 18; class 1: 6, 4, 1, 19; class 2: 10, 0, 3, 17.
  expected = [expected_weight(8, 2, 2, 18, 3.0), expected_weight(6, 4, 1, 19, 3.0),
              expected_weight(10, 0, 3, 17, 3.0)]
  out = jit_value(losses.gmean_class_weights, conf, imbalance_ratio=3.0)
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  assert out.dtype == jnp.float32
  # A harder class (1: recall 0.6) gets a larger weight than an easy one (2).
  assert float(out[1]) > float(out[2])


def test_gmean_weights_perfect_classifier_and_absent_class():
  out = losses.gmean_class_weights(jnp.eye(4) * 25, imbalance_ratio=2.0)
  np.testing.assert_allclose(out, math.tanh(2.0 * math.exp(-0.5)), rtol=1e-6)
  # Class 2 never occurs and is never predicted: its TPR is 0/0 -> 0 (documented).
  conf = jnp.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
  out = losses.gmean_class_weights(conf, imbalance_ratio=2.0)
  assert_finite(out)
  assert float(out[2]) == pytest.approx(math.tanh(2.0 * math.exp(0.0)), rel=1e-6)
  # All zeros: finite.
  assert_finite(losses.gmean_class_weights(jnp.zeros((3, 3)), imbalance_ratio=2.0))
  finite_grads(lambda c: jnp.sum(losses.gmean_class_weights(c, imbalance_ratio=2.0)),
               jnp.zeros((3, 3)))


@given(hnp.arrays(np.int32, (3, 3), elements=st.integers(0, 50)), st.floats(0.1, 20))
def test_gmean_weights_in_unit_interval(conf, ratio):
  out = np.asarray(losses.gmean_class_weights(conf, imbalance_ratio=ratio))
  assert np.all(out > 0) and np.all(out <= 1)


def test_gmean_weights_rejects_non_square():
  with pytest.raises(ValueError, match=r"\[K, K\]"):
    losses.gmean_class_weights(jnp.zeros((2, 3)), imbalance_ratio=1.0)


# --------------------------------------------------------------------------
# self-adaptive loss
# --------------------------------------------------------------------------


def test_self_adaptive_hand_values():
  # Uniform logits, K = 2: p = (.5, .5); each ||onehot - p||^2 = 0.5, so
  # rho2 / n = 1 / 2. Weighted NLL: mean(1 * log 2, 2 * log 2) = 1.5 log 2.
  logits, labels, w = jnp.zeros((2, 2)), jnp.array([0, 1]), jnp.array([1.0, 2.0])
  out = jit_value(losses.self_adaptive_loss, logits, labels, w)
  assert out == pytest.approx(0.5 * 1.5 * math.log(2), rel=1e-6)
  # beta = 0.5: components (0.5 + .5, -0.5 + .5) = (1, 0) per sample: rho2/n = 1.
  out = jit_value(losses.self_adaptive_loss, logits, labels, w, beta=0.5)
  assert out == pytest.approx(1.5 * math.log(2), rel=1e-6)


def test_self_adaptive_scale_is_stop_gradient():
  logits = jax.random.normal(jax.random.key(0), (4, 3))
  labels = jnp.array([0, 2, 1, 2])
  w = jnp.array([0.5, 1.0, 0.8])
  p = jax.nn.softmax(logits)
  scale = float(jnp.sum((jax.nn.one_hot(labels, 3) - p) ** 2) / 4)

  def weighted_ce(z):
    lp = jax.nn.log_softmax(z)
    return jnp.mean(-w[labels] * lp[jnp.arange(4), labels])

  g = finite_grads(losses.self_adaptive_loss, logits, labels, w)
  np.testing.assert_allclose(g, scale * jax.grad(weighted_ce)(logits), rtol=1e-5, atol=1e-7)
  # (No finite-difference check: differences would see through stop_gradient.)
  # The class weights are constants: no gradient flows to them.
  gw = finite_grads(lambda ww: losses.self_adaptive_loss(logits, labels, ww), w)
  assert float(jnp.max(jnp.abs(gw))) == 0.0


def test_self_adaptive_extreme_logits_finite():
  logits = jnp.array([[1e4, -1e4], [-1e4, 1e4]])
  labels = jnp.array([1, 1])
  out = jit_value(losses.self_adaptive_loss, logits, labels, jnp.ones(2))
  assert_finite(out)
  finite_grads(losses.self_adaptive_loss, logits, labels, jnp.ones(2))
  # A perfectly confident correct batch has rho2 = 0 and loss 0.
  assert float(losses.self_adaptive_loss(logits, jnp.array([0, 1]), jnp.ones(2))) == 0.0


def test_self_adaptive_rejects_bad_shapes():
  with pytest.raises(ValueError, match="class_weights"):
    losses.self_adaptive_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), jnp.ones(2))
