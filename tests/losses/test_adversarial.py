"""Tests of defects_jax.losses.adversarial."""

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
from tests.losses._helpers import check_grads_f64
from tests.losses._helpers import finite_grads
from tests.losses._helpers import jit_value

finite_floats = st.floats(-50, 50, allow_nan=False, width=32)
vec4 = hnp.arrays(np.float32, (4,), elements=finite_floats)


# --------------------------------------------------------------------------
# WGAN
# --------------------------------------------------------------------------


def test_wgan_hand_values():
  real, fake = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 1.0])
  assert jit_value(losses.wgan_critic_loss, real, fake) == pytest.approx(0.5 - 2.0)
  assert jit_value(losses.wgan_generator_loss, fake) == pytest.approx(-0.5)


@given(vec4, vec4)
def test_wgan_critic_antisymmetric(real, fake):
  a = jit_value(losses.wgan_critic_loss, real, fake)
  b = jit_value(losses.wgan_critic_loss, fake, real)
  np.testing.assert_allclose(a, -b, atol=1e-5)


def test_wgan_grads():
  real, fake = jnp.array([1e4, -1e4]), jnp.array([0.0, 3.0])
  g_real, g_fake = finite_grads(losses.wgan_critic_loss, real, fake, argnums=(0, 1))
  np.testing.assert_allclose(g_real, [-0.5, -0.5])
  np.testing.assert_allclose(g_fake, [0.5, 0.5])
  np.testing.assert_allclose(finite_grads(losses.wgan_generator_loss, fake), [-0.5, -0.5])


def test_wgan_vmap_over_stacked_batches():
  real = jax.random.normal(jax.random.key(0), (3, 5))
  fake = jax.random.normal(jax.random.key(1), (3, 5))
  batched = jax.vmap(losses.wgan_critic_loss)(real, fake)
  looped = [losses.wgan_critic_loss(r, f) for r, f in zip(real, fake)]
  np.testing.assert_allclose(batched, looped, rtol=1e-6)


# --------------------------------------------------------------------------
# Wasserstein divergence and WGAN-GP
# --------------------------------------------------------------------------


def linear_critic(w, c):
  # D(x) = c * <w, x> per sample: grad_x D = c * w everywhere.
  return lambda x: c * jnp.sum(jnp.reshape(x * w, (x.shape[0], -1)), axis=1)


def quadratic_critic(x):
  # D(x) = ||x||^2 / 2 per sample: grad_x D = x.
  return 0.5 * jnp.sum(jnp.reshape(x * x, (x.shape[0], -1)), axis=1)


def _images(seed, shape=(3, 4, 4, 2)):
  return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("mode", ["interpolate", "real_fake"])
def test_wdiv_linear_critic_equals_k_c_pow_p_w_pow_p(mode):
  # ||w|| = 5 (a 3-4-5 triangle), c = 0.5: k * |c|^p * ||w||^p = 2 * 2.5^6.
  w = jnp.zeros((4, 4, 2)).at[0, 0, 0].set(3.0).at[1, 2, 1].set(4.0)
  real, fake = _images(0), _images(1)
  out = jit_value(losses.wasserstein_div_penalty, linear_critic(w, 0.5), real, fake,
                  jax.random.key(2), k=2.0, p=6.0, mode=mode)
  assert out == pytest.approx(2.0 * 2.5**6, rel=1e-5)  # 488.28125


@given(st.floats(-3, 3), st.floats(0.5, 8), st.floats(0.1, 4))
def test_wdiv_linear_critic_property(c, p, k):
  w = jnp.array([[0.3, -1.2], [0.7, 0.0]])
  real, fake = jnp.ones((2, 2, 2)), jnp.zeros((2, 2, 2))
  out = losses.wasserstein_div_penalty(linear_critic(w, c), real, fake, jax.random.key(0),
                                       k=k, p=p)
  expected = k * abs(c)**p * float(jnp.linalg.norm(w))**p
  np.testing.assert_allclose(out, expected, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["interpolate", "real_fake"])
def test_wdiv_constant_critic_is_zero_with_finite_param_grads(mode):
  # A critic whose input gradient is exactly zero: D(x) = b + 0 * <w, x>.
  def penalty(params):
    critic = lambda x: params["b"] + jnp.sum(
        jnp.reshape(x * params["w"], (x.shape[0], -1)), axis=1)
    return losses.wasserstein_div_penalty(critic, _images(0), _images(1), jax.random.key(3),
                                          mode=mode)
  params = {"w": jnp.zeros((4, 4, 2)), "b": jnp.float32(1.5)}
  assert jax.jit(penalty)(params) == 0.0
  grads = finite_grads(penalty, params)
  assert float(jnp.max(jnp.abs(grads["w"]))) == 0.0


def test_wdiv_real_fake_hand_value():
  # Quadratic critic: grad D(x) = x. ||real|| = 1, ||fake|| = 2, p = 6, k = 2:
  # k/2 * (1^6 + 2^6) = 65.
  real = jnp.array([[1.0, 0.0]])
  fake = jnp.array([[0.0, 2.0]])
  out = jit_value(losses.wasserstein_div_penalty, quadratic_critic, real, fake, mode="real_fake")
  assert out == pytest.approx(65.0)


def test_wdiv_interpolate_at_equal_points_is_key_free():
  x = jnp.array([[1.0, 0.0], [0.0, 2.0]])  # norms 1, 2 -> mean(1, 64) * k
  for seed in range(3):
    out = losses.wasserstein_div_penalty(quadratic_critic, x, x, jax.random.key(seed))
    assert float(out) == pytest.approx(2.0 * 32.5)


def test_wdiv_interpolation_is_uniform_per_sample():
  # real = 0, fake = 1 (scalar samples), quadratic critic: ||grad|| = e_b.
  # With p = 2, the penalty is k * mean(e^2) -> k/3 for e ~ U[0,1] i.i.d.
  real, fake = jnp.zeros((4096, 1)), jnp.ones((4096, 1))
  out = losses.wasserstein_div_penalty(quadratic_critic, real, fake, jax.random.key(7),
                                       k=1.0, p=2.0)
  assert float(out) == pytest.approx(1.0 / 3.0, abs=0.02)
  # A different key gives different coefficients.
  out2 = losses.wasserstein_div_penalty(quadratic_critic, real, fake, jax.random.key(8),
                                        k=1.0, p=2.0)
  assert float(out) != float(out2)


def test_wdiv_second_order_grads_through_mlp_critic():
  """Gradient w.r.t. the critic's parameters (the thing a W-div critic step
  differentiates) matches finite differences."""
  def penalty(w1, w2, real, fake):
    critic = lambda x: jnp.tanh(x @ w1) @ w2
    return losses.wasserstein_div_penalty(critic, real, fake, mode="real_fake", p=6.0)
  rng = np.random.default_rng(0)
  args = (rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4,)) * 0.5,
          rng.normal(size=(2, 3)), rng.normal(size=(2, 3)))
  check_grads_f64(penalty, args)


def test_wdiv_interpolate_needs_key_and_valid_mode():
  x = jnp.ones((2, 3))
  with pytest.raises(ValueError, match="needs a PRNG key"):
    losses.wasserstein_div_penalty(quadratic_critic, x, x)
  with pytest.raises(ValueError, match="mode"):
    losses.wasserstein_div_penalty(quadratic_critic, x, x, mode="both")
  with pytest.raises(ValueError, match="scores of shape"):
    losses.wasserstein_div_penalty(lambda u: u, x, x, jax.random.key(0))


def test_gradient_penalty_hand_values():
  # Linear critic with ||grad|| = 5: weight * (5 - 1)^2 = 160.
  w = jnp.array([3.0, 4.0])
  real, fake = jnp.ones((3, 2)), jnp.zeros((3, 2))
  out = jit_value(losses.gradient_penalty, linear_critic(w, 1.0), real, fake, jax.random.key(0))
  assert out == pytest.approx(160.0)
  # Unit-norm gradient: no penalty.
  out = losses.gradient_penalty(linear_critic(w / 5.0, 1.0), real, fake, jax.random.key(0))
  assert float(out) == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_zero_input_gradient_is_finite():
  def penalty(w):
    return losses.gradient_penalty(linear_critic(w, 1.0), _images(0), _images(1),
                                   jax.random.key(0), weight=10.0)
  w = jnp.zeros((4, 4, 2))
  assert float(jax.jit(penalty)(w)) == pytest.approx(10.0)
  finite_grads(penalty, w)


def test_gradient_penalty_matches_finite_differences():
  def penalty(w1, w2, real, fake):
    critic = lambda x: jnp.tanh(x @ w1) @ w2
    return losses.gradient_penalty(critic, real, fake, jax.random.key(1))
  rng = np.random.default_rng(1)
  args = (rng.normal(size=(3, 4)), rng.normal(size=(4,)),
          rng.normal(size=(2, 3)), rng.normal(size=(2, 3)))
  check_grads_f64(penalty, args)


# --------------------------------------------------------------------------
# BCE and LSGAN
# --------------------------------------------------------------------------


def test_bce_hand_values():
  assert jit_value(losses.bce_discriminator_loss, jnp.zeros(3), jnp.zeros(2)) == pytest.approx(
      2 * math.log(2))
  out = jit_value(losses.bce_discriminator_loss, jnp.array([2.0]), jnp.array([-1.0]))
  assert out == pytest.approx(math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)), rel=1e-6)
  out = jit_value(losses.bce_generator_loss, jnp.array([0.0, 1.0]))
  assert out == pytest.approx(0.5 * (math.log(2) + math.log1p(math.exp(-1))), rel=1e-6)


def test_bce_stable_at_extreme_logits():
  big = jnp.array([1e4, -1e4])
  assert float(jit_value(losses.bce_discriminator_loss, jnp.array([1e4]), jnp.array([-1e4]))) == 0.0
  assert float(jit_value(losses.bce_discriminator_loss, jnp.array([-1e4]), jnp.array([1e4]))) == 2e4
  assert float(jit_value(losses.bce_generator_loss, jnp.array([-1e4]))) == 1e4
  g_r, g_f = finite_grads(losses.bce_discriminator_loss, big, big, argnums=(0, 1))
  # d softplus(-h)/dh = -sigmoid(-h): 0 at +1e4, -1 at -1e4 (each / batch 2).
  np.testing.assert_allclose(g_r, [0.0, -0.5], atol=1e-7)
  np.testing.assert_allclose(g_f, [0.5, 0.0], atol=1e-7)
  finite_grads(losses.bce_generator_loss, big)


def test_lsgan_hand_values():
  out = jit_value(losses.lsgan_discriminator_loss, jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0]))
  assert out == pytest.approx(0.5 * (2.0 + 2.0))
  assert jit_value(losses.lsgan_generator_loss, jnp.array([0.0, 2.0])) == pytest.approx(0.5)
  assert float(losses.lsgan_discriminator_loss(jnp.ones(4), jnp.zeros(4))) == 0.0
  assert_finite(finite_grads(losses.lsgan_generator_loss, jnp.array([1e4, -1e4])))


@given(vec4, vec4)
def test_bce_and_lsgan_nonnegative(real, fake):
  assert float(jit_value(losses.bce_discriminator_loss, real, fake)) >= 0.0
  assert float(jit_value(losses.lsgan_discriminator_loss, real, fake)) >= 0.0
  assert float(jit_value(losses.bce_generator_loss, fake)) >= 0.0


# --------------------------------------------------------------------------
# ACGAN
# --------------------------------------------------------------------------


def test_acgan_class_loss_hand_values():
  # Uniform logits over K = 4: each CE is log 4.
  out = jit_value(losses.acgan_class_loss, jnp.zeros((3, 4)), jnp.array([0, 1, 2]),
                  jnp.zeros((2, 4)), jnp.array([3, 3]))
  assert out == pytest.approx(2 * math.log(4))
  # Real: logits [log 3, 0] label 0 -> -log(3/4); fake: label 1 -> -log(1/4).
  logits = jnp.array([[math.log(3.0), 0.0]])
  out = losses.acgan_class_loss(logits, jnp.array([0]), logits, jnp.array([1]))
  assert float(out) == pytest.approx(-math.log(0.75) - math.log(0.25), rel=1e-6)


def test_acgan_class_loss_grads_and_extremes():
  logits = jnp.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
  labels = jnp.array([1, 2])
  g = finite_grads(losses.acgan_class_loss, logits, labels, logits, labels)
  # d CE / d logits = (softmax - onehot) / B.
  expected = (jax.nn.softmax(logits) - jax.nn.one_hot(labels, 3)) / 2
  np.testing.assert_allclose(g, expected, atol=1e-6)
  check_grads_f64(lambda a, b: losses.acgan_class_loss(a, jnp.array([0, 1]), b, jnp.array([2, 0])),
                  (np.random.default_rng(0).normal(size=(2, 3)),
                   np.random.default_rng(1).normal(size=(2, 3))))


def test_acgan_class_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match="logits"):
    losses.acgan_class_loss(jnp.zeros((3,)), jnp.zeros(3, jnp.int32), jnp.zeros((3, 2)),
                            jnp.zeros(3, jnp.int32))
