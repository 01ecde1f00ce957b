"""Tests of defects_jax.losses.dual_discriminator."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from defects_jax import losses
from defects_jax.losses._numerics import log_softplus
from tests.losses._helpers import check_grads_f64
from tests.losses._helpers import finite_grads
from tests.losses._helpers import jit_value

vec4 = hnp.arrays(np.float32, (4,), elements=st.floats(-60, 60, width=32))


def inv_softplus(d):
  """h with softplus(h) = d (d > 0)."""
  return np.log(np.expm1(np.asarray(d, np.float64)))


# --------------------------------------------------------------------------
# D2GAN
# --------------------------------------------------------------------------


def test_d2gan_hand_values():
  # Pre-activations chosen so D = softplus(h) is 1, 2, 3, 1: log D1(x) = 0 and
  # log D2(G) = 0, so L_D = D1(G) + D2(x) = 2 + 3.
  d1_real, d1_fake, d2_real, d2_fake = (jnp.array([inv_softplus(v)], jnp.float32)
                                        for v in (1.0, 2.0, 3.0, 1.0))
  out = jit_value(losses.d2gan_discriminator_loss, d1_real, d1_fake, d2_real, d2_fake,
                  alpha=0.2, beta=0.1)
  assert out == pytest.approx(5.0, rel=1e-5)
  # L_G = -D1(G) + beta * log D2(G) = -2 + 0.1 * log 2 with D2(G) = 2.
  out = jit_value(losses.d2gan_generator_loss, d1_fake, jnp.array([inv_softplus(2.0)], jnp.float32),
                  beta=0.1)
  assert out == pytest.approx(-2.0 + 0.1 * math.log(2.0), rel=1e-5)


def test_log_softplus_is_finite_and_accurate():
  h = jnp.array([-1e4, -200.0, -30.0, -20.5, -19.5, 0.0, 5.0, 1e4])
  out = jax.jit(log_softplus)(h)
  h64 = np.asarray(h, np.float64)
  # float64 softplus underflows only below about -745; -1e4 uses the asymptote.
  ref = np.where(h64 > -700, np.log(np.logaddexp(0.0, np.maximum(h64, -700))), h64)
  np.testing.assert_allclose(out, ref, rtol=1e-6)
  g = jax.jit(jax.vmap(jax.grad(log_softplus)))(h)
  assert np.all(np.isfinite(g))
  # d/dh log softplus(h) = sigmoid(h) / softplus(h) -> 1 as h -> -inf.
  np.testing.assert_allclose(g[:2], [1.0, 1.0], rtol=1e-6)


def test_d2gan_finite_at_extreme_preactivations():
  ext = jnp.array([-1e4, 1e4])
  assert np.isfinite(float(jit_value(losses.d2gan_discriminator_loss, ext, ext, ext, ext)))
  assert np.isfinite(float(jit_value(losses.d2gan_generator_loss, ext, ext)))
  finite_grads(losses.d2gan_discriminator_loss, ext, ext, ext, ext, argnums=(0, 1, 2, 3))
  finite_grads(losses.d2gan_generator_loss, ext, ext, argnums=(0, 1))


def test_d2gan_discriminator_optimum_on_a_discrete_distribution():
  """For fixed G, D1* = alpha * p / q and D2* = beta * q / p (Nguyen et al.,
  Prop. 1). Real and fake batches are the support points repeated in
  proportion to p and q; D1 and D2 are free values per support point."""
  alpha, beta = 0.2, 0.1
  p = np.array([0.5, 0.3, 0.2])
  q = np.array([0.2, 0.2, 0.6])
  real_idx = np.repeat(np.arange(3), (p * 10).astype(int))
  fake_idx = np.repeat(np.arange(3), (q * 10).astype(int))

  def loss(h1, h2):
    return losses.d2gan_discriminator_loss(h1[real_idx], h1[fake_idx], h2[real_idx],
                                           h2[fake_idx], alpha=alpha, beta=beta)

  h1_star = jnp.asarray(inv_softplus(alpha * p / q), jnp.float32)
  h2_star = jnp.asarray(inv_softplus(beta * q / p), jnp.float32)
  g1, g2 = finite_grads(loss, h1_star, h2_star, argnums=(0, 1))
  np.testing.assert_allclose(g1, 0.0, atol=1e-6)
  np.testing.assert_allclose(g2, 0.0, atol=1e-6)
  # And it is a minimum: gradient descent from zero converges to it.
  h1, h2 = jnp.zeros(3), jnp.zeros(3)
  step = jax.jit(jax.grad(loss, argnums=(0, 1)))
  for _ in range(3000):
    d1, d2 = step(h1, h2)
    h1, h2 = h1 - 0.5 * d1, h2 - 0.5 * d2
  np.testing.assert_allclose(jax.nn.softplus(h1), alpha * p / q, rtol=1e-3)
  np.testing.assert_allclose(jax.nn.softplus(h2), beta * q / p, rtol=1e-3)


def test_d2gan_grads_match_finite_differences():
  rng = np.random.default_rng(0)
  args = tuple(rng.normal(size=(3,)) for _ in range(4))
  check_grads_f64(losses.d2gan_discriminator_loss, args, alpha=0.3, beta=0.2)
  check_grads_f64(losses.d2gan_generator_loss, args[:2], beta=0.2)


# --------------------------------------------------------------------------
# Jensen-Shannon estimate
# --------------------------------------------------------------------------


def test_js_estimate_hand_values():
  assert float(jit_value(losses.jensen_shannon_estimate, jnp.zeros(3), jnp.zeros(2))) == 0.0
  out = jit_value(losses.jensen_shannon_estimate, jnp.array([1.0]), jnp.array([-1.0]))
  assert out == pytest.approx(math.log(2) - math.log1p(math.exp(-1)), rel=1e-6)
  # A perfect critic on disjoint supports reaches log 2.
  out = jit_value(losses.jensen_shannon_estimate, jnp.array([1e4]), jnp.array([-1e4]))
  assert out == pytest.approx(math.log(2))


@given(vec4, vec4)
def test_js_estimate_at_most_log2(p_logits, q_logits):
  assert float(jit_value(losses.jensen_shannon_estimate, p_logits, q_logits)) <= math.log(2) + 1e-6


def test_js_estimate_bayes_optimal_critic_gives_true_js():
  """With t* = log(p/q) the bound is tight: the estimate equals JS(P||Q)."""
  p = np.array([0.5, 0.3, 0.2])
  q = np.array([0.2, 0.2, 0.6])
  m = 0.5 * (p + q)
  true_js = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
  t = np.log(p / q).astype(np.float32)
  p_idx = np.repeat(np.arange(3), (p * 10).astype(int))
  q_idx = np.repeat(np.arange(3), (q * 10).astype(int))
  out = losses.jensen_shannon_estimate(t[p_idx], t[q_idx])
  assert float(out) == pytest.approx(true_js, rel=1e-5)
  # Any other critic gives less.
  worse = losses.jensen_shannon_estimate(0.5 * t[p_idx], 0.5 * t[q_idx])
  assert float(worse) < true_js


# --------------------------------------------------------------------------
# DG2GAN
# --------------------------------------------------------------------------


def test_dg2_d1_is_bce_real_one_fake_zero():
  real, fake = jnp.array([2.0, -1.0]), jnp.array([0.5])
  expected = (0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(1)))
              + math.log1p(math.exp(0.5)))
  assert jit_value(losses.dg2_d1_loss, real, fake) == pytest.approx(expected, rel=1e-6)


def test_dg2_d2_hand_values():
  # Zero logits: BCE = 2 log 2, JS estimate = 0.
  out = jit_value(losses.dg2_d2_loss, jnp.zeros(2), jnp.zeros(3), mu=0.05)
  assert out == pytest.approx(2 * math.log(2))
  # Reversed targets: real -> 0, fake -> 1 is D2's optimum: BCE = 0, JS = log 2.
  out = jit_value(losses.dg2_d2_loss, jnp.array([-1e4]), jnp.array([1e4]), mu=0.05)
  assert out == pytest.approx(0.05 * math.log(2))
  # real = 1, fake = -1 (D2 wrong way round): 2 softplus(1) + mu * (log 2 - softplus(1)).
  sp1 = math.log1p(math.e)
  out = losses.dg2_d2_loss(jnp.array([1.0]), jnp.array([-1.0]), mu=0.5)
  assert float(out) == pytest.approx(2 * sp1 + 0.5 * (math.log(2) - sp1), rel=1e-6)


@given(vec4, vec4, st.floats(0.0, 1.0))
def test_dg2_d2_equals_rescaled_bce(real, fake, mu):
  """Documented identity: L_D2 = (1 - mu/2) * BCE_reversed + mu * log 2."""
  bce = losses.bce_discriminator_loss(fake, real)
  out = jit_value(losses.dg2_d2_loss, real, fake, mu=mu)
  np.testing.assert_allclose(out, (1 - mu / 2) * bce + mu * math.log(2), rtol=1e-5, atol=1e-5)


def test_dg2_generator_hand_values_and_direction():
  out = jit_value(losses.dg2_generator_loss, jnp.zeros(2), jnp.zeros(2), lam=0.8, beta=0.5)
  assert out == pytest.approx(1.3 * math.log(2))
  # Looking real to D1 (high logit) and to D2 (low logit) is rewarded.
  good = losses.dg2_generator_loss(jnp.array([1e4]), jnp.array([-1e4]))
  bad = losses.dg2_generator_loss(jnp.array([-1e4]), jnp.array([1e4]))
  assert float(good) == 0.0
  assert float(bad) == pytest.approx(1.3e4)
  g1, g2 = finite_grads(losses.dg2_generator_loss, jnp.zeros(2), jnp.zeros(2), argnums=(0, 1))
  assert np.all(np.asarray(g1) < 0) and np.all(np.asarray(g2) > 0)


def test_dg2_losses_finite_grads_at_extremes():
  ext = jnp.array([-1e4, 0.0, 1e4])
  finite_grads(losses.dg2_d1_loss, ext, ext, argnums=(0, 1))
  finite_grads(losses.dg2_d2_loss, ext, ext, argnums=(0, 1))
  finite_grads(losses.dg2_generator_loss, ext, ext, argnums=(0, 1))
  finite_grads(losses.jensen_shannon_estimate, ext, ext, argnums=(0, 1))
  rng = np.random.default_rng(3)
  check_grads_f64(losses.dg2_d2_loss, (rng.normal(size=4), rng.normal(size=3)), mu=0.3)
