"""Tests of defects_jax.losses.weak_supervision."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from defects_jax import losses
from tests.losses._helpers import check_grads_f64
from tests.losses._helpers import finite_grads
from tests.losses._helpers import jit_value


def const_maps(*qs, shape=(4, 6)):
  return jnp.stack([jnp.full(shape, q, jnp.float32) for q in qs])


def test_weak_loss_hand_values():
  # Q = 0.5: positive term -log 2; negative term with alpha = 2: 2 log 2.
  out = jit_value(losses.weak_supervision_loss, const_maps(0.5, 0.5), jnp.array([1, 0]), alpha=2.0)
  np.testing.assert_allclose(out, [-math.log(2), 2 * math.log(2)], rtol=1e-6)
  # Q = 0.25 from a non-constant map (mean of [0, 0, 0.5, 0.5]).
  heat = jnp.array([[[0.0, 0.0], [0.5, 0.5]]] * 2)
  out = jit_value(losses.weak_supervision_loss, heat, jnp.array([1.0, 0.0]), alpha=8.0)
  np.testing.assert_allclose(
      out, [0.25 * math.log(0.25) + 0.75 * math.log(0.75), -8.0 * math.log(0.75)], rtol=1e-6)


def test_weak_loss_accepts_channel_axis():
  heat = jnp.full((2, 3, 3, 1), 0.2)
  a = losses.weak_supervision_loss(heat, jnp.array([1, 0]), alpha=3.0)
  b = losses.weak_supervision_loss(heat[..., 0], jnp.array([1, 0]), alpha=3.0)
  np.testing.assert_allclose(a, b)


# alpha traced, so hypothesis examples share one compilation.
_weak_jit = jax.jit(lambda h, y, a: losses.weak_supervision_loss(h, y, alpha=a))


@given(st.floats(0.0, 1.0))
def test_positive_term_minimised_at_half(q):
  # Jitted only: near Q = 1 the term (1 - Q) log(1 - Q) amplifies the 1-ulp
  # difference between the fused (jit) and eager means of the map, so jit and
  # eager differ by ~4e-6 at Q = 0.99999 (hypothesis found it); agreement of the
  # two is checked at well-conditioned points in the other tests.
  pos = float(_weak_jit(const_maps(q), jnp.array([1]), 1.0)[0])
  assert pos >= -math.log(2) - 1e-6


@given(st.floats(0.0, 1.0), st.floats(0.1, 10.0))
def test_negative_term_is_alpha_times_cross_entropy(q, alpha):
  neg = float(_weak_jit(const_maps(q), jnp.array([0]), alpha)[0])
  # Reference in float32 arithmetic, Q clamped to [1e-6, 1 - 1e-6] as documented.
  q32 = np.clip(np.float32(q), np.float32(1e-6), np.float32(1) - np.float32(1e-6))
  assert neg == pytest.approx(-alpha * math.log(np.float32(1) - q32), rel=1e-4, abs=1e-5)
  assert neg >= 0.0


@pytest.mark.parametrize("q", [0.0, 1.0])
def test_finite_value_and_gradient_at_saturation(q):
  heat = const_maps(q, q)
  labels = jnp.array([1, 0])
  out = jit_value(losses.weak_supervision_loss, heat, labels, alpha=8.0)
  assert np.all(np.isfinite(out))
  g = finite_grads(lambda h: jnp.sum(losses.weak_supervision_loss(h, labels, alpha=8.0)), heat)
  # Gradients point the right way even at the clamp: positive image toward
  # Q = 1/2, negative image toward Q = 0.
  sign_pos = np.sign(np.asarray(g[0])).mean()
  assert sign_pos == (-1.0 if q == 0.0 else 1.0)
  assert np.all(np.asarray(g[1]) > 0)


def test_weak_loss_gradient_matches_finite_differences():
  rng = np.random.default_rng(0)
  heat = rng.uniform(0.1, 0.9, size=(2, 3, 3))
  check_grads_f64(lambda h: jnp.sum(losses.weak_supervision_loss(h, jnp.array([1.0, 0.0]),
                                                                 alpha=4.0)), (heat,))


def test_weak_loss_vmap_and_traced_alpha():
  heat = jax.random.uniform(jax.random.key(0), (5, 2, 4, 4))
  labels = jnp.array([[1, 0]] * 5)
  alphas = jnp.linspace(4.0, 8.0, 5)
  out = jax.jit(jax.vmap(lambda h, y, a: losses.weak_supervision_loss(h, y, alpha=a)))(
      heat, labels, alphas)
  for i in range(5):
    np.testing.assert_allclose(
        out[i], losses.weak_supervision_loss(heat[i], labels[i], alpha=float(alphas[i])),
        rtol=1e-6)


def test_weak_loss_bfloat16_heatmap():
  heat = const_maps(0.25, 0.25).astype(jnp.bfloat16)
  out = losses.weak_supervision_loss(heat, jnp.array([True, False]), alpha=2.0)
  assert out.dtype == jnp.float32 and out.shape == (2,)
  np.testing.assert_allclose(out, [0.25 * math.log(0.25) + 0.75 * math.log(0.75),
                                   -2 * math.log(0.75)], rtol=1e-6)


def test_weak_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match="is_defective"):
    losses.weak_supervision_loss(jnp.zeros((2, 4, 4)), jnp.zeros(3), alpha=1.0)


# --------------------------------------------------------------------------
# collaborative alpha
# --------------------------------------------------------------------------


def test_alpha_hand_values():
  # N = 60, n = 30: k = 2, i = 0 for steps 0..29, 1 for 30..59, 2 for 60.
  f = jax.jit(lambda s: losses.collaborative_alpha(s, alpha_init=8.0, total_steps=60,
                                                   update_every=30))
  assert float(f(0)) == 8.0 and float(f(29)) == 8.0
  assert float(f(30)) == pytest.approx(4.0) and float(f(59)) == pytest.approx(4.0)
  assert float(f(60)) == pytest.approx(8.0)
  # Paper setting (k = 25): i = 5 -> 8 * (cos(2 pi / 5) + 3) / 4.
  a = losses.collaborative_alpha(150)
  assert float(a) == pytest.approx(8.0 * (math.cos(2 * math.pi * 5 / 25) + 3) / 4, rel=1e-6)


@given(st.integers(0, 10**6), st.floats(0.5, 20), st.integers(1, 2000), st.integers(1, 100))
def test_alpha_range_and_period(step, alpha_init, total, every):
  kw = dict(alpha_init=alpha_init, total_steps=total, update_every=every)
  a = float(losses.collaborative_alpha(step, **kw))
  assert alpha_init / 2 - 1e-5 <= a <= alpha_init + 1e-5
  k = max(1, round(total / every))
  assert float(losses.collaborative_alpha(step + k * every, **kw)) == pytest.approx(a, rel=1e-6)
  # Piecewise constant within an update window.
  start = (step // every) * every
  assert float(losses.collaborative_alpha(start, **kw)) == pytest.approx(a, rel=1e-6)


def test_alpha_under_scan_with_traced_step():
  def body(carry, step):
    return carry, losses.collaborative_alpha(step)
  _, alphas = jax.lax.scan(body, 0, jnp.arange(750))
  alphas = np.asarray(alphas)
  assert alphas[0] == 8.0 and alphas.min() == pytest.approx(8.0 * (math.cos(
      2 * math.pi * 12 / 25) + 3) / 4)
  windows = alphas.reshape(25, 30)  # one update every 30 steps, k = 25 updates
  assert np.all(windows == windows[:, :1])
  np.testing.assert_allclose(windows[1:, 0], windows[:0:-1, 0], rtol=1e-6)  # i vs 25 - i
  assert alphas.dtype == np.float32
