"""Tests of defects_jax.losses.distillation."""

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

N, D = 5, 3
emb = hnp.arrays(np.float32, (N, D), elements=st.floats(-10, 10, width=32))


# --------------------------------------------------------------------------
# Reference: the official PyTorch code (lenscloth/RKD, metric/loss.py),
# transcribed with explicit loops in float64.
# --------------------------------------------------------------------------


def _smooth_l1(x):
  x = abs(x)
  return 0.5 * x * x if x < 1 else x - 0.5


def ref_distance_loss(s, t):
  def pdist(e):
    n = len(e)
    d = np.zeros((n, n))
    for i in range(n):
      for j in range(n):
        if i != j:
          d[i, j] = math.sqrt(max(np.sum((e[i] - e[j]) ** 2), 1e-12))
    return d / d[d > 0].mean()
  ds, dt = pdist(np.float64(s)), pdist(np.float64(t))
  n = len(s)
  return sum(_smooth_l1(ds[i, j] - dt[i, j]) for i in range(n) for j in range(n)) / n**2


def ref_angle_loss(s, t):
  def angles(e):
    n = len(e)
    a = np.zeros((n, n, n))
    for i in range(n):
      for j in range(n):
        for k in range(n):
          u, v = e[j] - e[i], e[k] - e[i]
          u = u / max(np.linalg.norm(u), 1e-12)
          v = v / max(np.linalg.norm(v), 1e-12)
          a[i, j, k] = u @ v
    return a
  diff = angles(np.float64(s)) - angles(np.float64(t))
  return float(np.mean([_smooth_l1(x) for x in diff.ravel()]))


def random_orthogonal(seed, d):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
  return q


# --------------------------------------------------------------------------
# RKD distance / angle
# --------------------------------------------------------------------------


def test_rkd_hand_value_collinear_vs_right_angle():
  # Student: 0, 1, 2 on a line -> distances /(4/3). Teacher: a right isosceles
  # triangle -> distances 1, 1, sqrt 2 over mean (2 + sqrt 2) / 3.
  s = jnp.array([[0.0], [1.0], [2.0]])
  t = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  ms, mt = 4.0 / 3.0, (2 + math.sqrt(2)) / 3
  pairs = [(1 / ms, 1 / mt), (2 / ms, 1 / mt), (1 / ms, math.sqrt(2) / mt)]  # (01, 02, 12)
  expected = 2 * sum(_smooth_l1(a - b) for a, b in pairs) / 9
  assert jit_value(losses.rkd_distance_loss, s, t) == pytest.approx(expected, rel=1e-6)
  # Angles: student has cos = +-1 at every vertex, teacher a right angle at 0
  # and 45 degrees at 1 and 2.
  assert jit_value(losses.rkd_angle_loss, s, t) == pytest.approx(ref_angle_loss(s, t), rel=1e-6)


@given(emb, emb)
def test_rkd_matches_official_code(s, t):
  # Distinct rows (the official code and ours differ only for duplicates).
  s = s + np.arange(N, dtype=np.float32)[:, None] * 25.0
  t = t + np.arange(N, dtype=np.float32)[:, None] * 25.0
  np.testing.assert_allclose(jit_value(losses.rkd_distance_loss, s, t),
                             ref_distance_loss(s, t), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(jit_value(losses.rkd_angle_loss, s, t),
                             ref_angle_loss(s, t), rtol=1e-4, atol=1e-6)


@given(emb)
def test_rkd_zero_when_student_equals_teacher(e):
  # Exact in real arithmetic; under jit XLA may fuse the student and teacher
  # branches differently, leaving float32 rounding (seen: 6e-16).
  for fn in (losses.rkd_distance_loss, losses.rkd_angle_loss, losses.rkd_loss):
    assert abs(float(jit_value(fn, e, e))) <= 1e-7


@given(emb, emb, st.integers(0, 10**6), st.floats(0.1, 10.0),
       hnp.arrays(np.float32, (D,), elements=st.floats(-100, 100, width=32)))
def test_rkd_invariant_to_similarity_transforms(s, t, seed, scale, shift):
  # Keep both geometries non-degenerate (distinct, spread-out rows).
  s = s + np.arange(N, dtype=np.float32)[:, None]
  t = t + np.arange(N, dtype=np.float32)[::-1, None]
  rotation = random_orthogonal(seed, D)

  def move(x):
    return (scale * x @ rotation + shift).astype(np.float32)

  for fn in (losses.rkd_distance_loss, losses.rkd_angle_loss):
    base = float(jit_value(fn, s, t))
    np.testing.assert_allclose(float(jit_value(fn, move(s), t)), base, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(float(jit_value(fn, s, move(t))), base, rtol=2e-3, atol=2e-4)


def test_rkd_student_and_teacher_dimensions_may_differ():
  s = jax.random.normal(jax.random.key(0), (6, 4))
  t = jax.random.normal(jax.random.key(1), (6, 16))
  np.testing.assert_allclose(losses.rkd_distance_loss(s, t), ref_distance_loss(s, t), rtol=1e-4)
  np.testing.assert_allclose(losses.rkd_angle_loss(s, t), ref_angle_loss(s, t), rtol=1e-4)


def test_no_gradient_reaches_the_teacher():
  s = jax.random.normal(jax.random.key(0), (N, D))
  t = jax.random.normal(jax.random.key(1), (N, D))
  for fn in (losses.rkd_distance_loss, losses.rkd_angle_loss, losses.rkd_loss):
    g_s, g_t = finite_grads(fn, s, t, argnums=(0, 1))
    assert float(jnp.max(jnp.abs(g_t))) == 0.0
    assert float(jnp.max(jnp.abs(g_s))) > 0.0
  g_s, g_t = finite_grads(losses.kd_loss, s, t, argnums=(0, 1))
  assert float(jnp.max(jnp.abs(g_t))) == 0.0 and float(jnp.max(jnp.abs(g_s))) > 0.0


@pytest.mark.parametrize("case", ["identical_rows", "duplicated_rows", "single_row"])
def test_rkd_degenerate_embeddings_are_finite(case):
  t = jax.random.normal(jax.random.key(1), (N, D))
  if case == "identical_rows":
    s = jnp.ones((N, D))
  elif case == "duplicated_rows":
    s = jax.random.normal(jax.random.key(0), (N, D)).at[1].set(0.0).at[2].set(0.0)
    t = t.at[3].set(t[4])
  else:
    s, t = jnp.ones((1, D)), jnp.zeros((1, D))
  for fn in (losses.rkd_distance_loss, losses.rkd_angle_loss, losses.rkd_loss):
    assert_finite(jit_value(fn, s, t))
    finite_grads(fn, s, t)
    finite_grads(fn, t, t)  # student == teacher, degenerate


def test_rkd_gradients_match_finite_differences():
  rng = np.random.default_rng(0)
  s, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
  check_grads_f64(lambda a: losses.rkd_distance_loss(a, t), (s,))
  check_grads_f64(lambda a: losses.rkd_angle_loss(a, t), (s,))


def test_rkd_loss_weights_and_vmap():
  s = jax.random.normal(jax.random.key(0), (3, N, D))
  t = jax.random.normal(jax.random.key(1), (3, N, D))
  out = jax.jit(jax.vmap(lambda a, b: losses.rkd_loss(a, b, distance_weight=2.0,
                                                      angle_weight=3.0)))(s, t)
  for i in range(3):
    expected = (2.0 * losses.rkd_distance_loss(s[i], t[i])
                + 3.0 * losses.rkd_angle_loss(s[i], t[i]))
    np.testing.assert_allclose(out[i], expected, rtol=1e-5)


def test_rkd_rejects_mismatched_batches():
  with pytest.raises(ValueError, match="same N"):
    losses.rkd_distance_loss(jnp.zeros((3, 2)), jnp.zeros((4, 2)))


# --------------------------------------------------------------------------
# Hinton KD
# --------------------------------------------------------------------------


def test_kd_hand_values():
  # T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2).
  s = jnp.array([[0.0, 0.0]])
  t = jnp.array([[math.log(3.0), 0.0]])
  expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
  assert jit_value(losses.kd_loss, s, t, temperature=1.0) == pytest.approx(expected, rel=1e-5)
  # T = 2 halves the logits: p_t = softmax(log(3)/2, 0) = (sqrt3, 1)/(sqrt3 + 1).
  pt = np.array([math.sqrt(3), 1.0]) / (math.sqrt(3) + 1)
  expected = 4.0 * float(np.sum(pt * np.log(pt / 0.5)))
  assert jit_value(losses.kd_loss, s, t, temperature=2.0) == pytest.approx(expected, rel=1e-5)


@given(hnp.arrays(np.float32, (3, 4), elements=st.floats(-30, 30, width=32)),
       hnp.arrays(np.float32, (3, 4), elements=st.floats(-30, 30, width=32)),
       hnp.arrays(np.float32, (3, 1), elements=st.floats(-30, 30, width=32)))
def test_kd_properties(s, t, shift):
  assert float(jit_value(losses.kd_loss, s, s)) == pytest.approx(0.0, abs=1e-6)
  assert float(jit_value(losses.kd_loss, s, t)) >= -1e-5
  # Invariant to adding a constant to each row.
  np.testing.assert_allclose(jit_value(losses.kd_loss, s + shift, t),
                             jit_value(losses.kd_loss, s, t), rtol=1e-3, atol=1e-4)


def test_kd_extreme_logits_finite():
  s = jnp.array([[1e4, -1e4, 0.0]])
  t = jnp.array([[-1e4, 1e4, 0.0]])
  assert_finite(jit_value(losses.kd_loss, s, t))
  finite_grads(losses.kd_loss, s, t)
  check_grads_f64(lambda a: losses.kd_loss(a, np.array([[0.3, -1.0, 2.0]]), temperature=3.0),
                  (np.array([[1.0, 0.5, -0.5]]),))
