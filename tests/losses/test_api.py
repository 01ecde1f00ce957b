"""Cross-cutting contract of defects_jax.losses: the public names, positional
arrays with keyword-only hyperparameters, bfloat16 inputs computed in float32,
scalar outputs, and finite gradients through jit for every function."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import losses
from tests.losses._helpers import assert_finite

# name -> the positional (array) parameters of the contract, in order.
CONTRACT = {
    "cross_entropy": ["logits", "labels"],
    "binary_cross_entropy": ["logits", "labels"],
    "wgan_critic_loss": ["real_scores", "fake_scores"],
    "wgan_generator_loss": ["fake_scores"],
    "wasserstein_div_penalty": ["critic_fn", "real", "fake", "key"],
    "gradient_penalty": ["critic_fn", "real", "fake", "key"],
    "bce_discriminator_loss": ["real_logits", "fake_logits"],
    "bce_generator_loss": ["fake_logits"],
    "lsgan_discriminator_loss": ["real_out", "fake_out"],
    "lsgan_generator_loss": ["fake_out"],
    "acgan_class_loss": ["real_class_logits", "real_labels", "fake_class_logits", "fake_labels"],
    "d2gan_discriminator_loss": ["d1_real", "d1_fake", "d2_real", "d2_fake"],
    "d2gan_generator_loss": ["d1_fake", "d2_fake"],
    "jensen_shannon_estimate": ["p_logits", "q_logits"],
    "dg2_d1_loss": ["real_logits", "fake_logits"],
    "dg2_d2_loss": ["real_logits", "fake_logits"],
    "dg2_generator_loss": ["d1_fake_logits", "d2_fake_logits"],
    "cycle_consistency_loss": ["x", "x_reconstructed"],
    "identity_loss": ["x", "g_of_x"],
    "weak_supervision_loss": ["heatmap", "is_defective"],
    "collaborative_alpha": ["step"],
    "rkd_distance_loss": ["student", "teacher"],
    "rkd_angle_loss": ["student", "teacher"],
    "rkd_loss": ["student", "teacher"],
    "kd_loss": ["student_logits", "teacher_logits"],
    "gmean_class_weights": ["confusion"],
    "self_adaptive_loss": ["logits", "labels", "class_weights"],
    "soft_threshold": ["x", "tau"],
    "saddt": ["x", "tau", "slope"],
}


def test_public_names_are_exactly_the_contract():
  assert sorted(losses.__all__) == sorted(CONTRACT)
  for name in CONTRACT:
    assert callable(getattr(losses, name)), name


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_arrays_positional_hyperparameters_keyword_only(name):
  params = list(inspect.signature(getattr(losses, name)).parameters.values())
  positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
  assert positional == CONTRACT[name]
  others = [p for p in params if p.kind != p.POSITIONAL_OR_KEYWORD]
  assert all(p.kind == p.KEYWORD_ONLY for p in others), others
  doc = getattr(losses, name).__doc__
  assert "References:" in doc and "Returns:" in doc and "Args:" in doc, name


def _critic(x):
  flat = jnp.reshape(x, (x.shape[0], -1))
  return jnp.tanh(flat @ jnp.linspace(-1.0, 1.0, flat.shape[1]))


_r = np.random.default_rng(0)
_KEY = jax.random.key(0)


def _f(*shape, lo=-2.0, hi=2.0):
  return jnp.asarray(_r.uniform(lo, hi, size=shape), jnp.float32)


# name -> (float array args, builder (float args) -> call, output kind)
CASES = {
    "cross_entropy": ((_f(3, 5),), lambda z: losses.cross_entropy(z, jnp.array([0, 4, 2]))),
    "binary_cross_entropy": ((_f(4), _f(4, lo=0.0, hi=1.0)),
                             lambda h, y: losses.binary_cross_entropy(h, y)),
    "wgan_critic_loss": ((_f(4), _f(3)), lambda a, b: losses.wgan_critic_loss(a, b)),
    "wgan_generator_loss": ((_f(4),), lambda a: losses.wgan_generator_loss(a)),
    "wasserstein_div_penalty": (
        (_f(2, 4, 4, 1), _f(2, 4, 4, 1)),
        lambda a, b: losses.wasserstein_div_penalty(_critic, a, b, _KEY, k=2.0, p=6.0)),
    "gradient_penalty": (
        (_f(2, 4, 4, 1), _f(2, 4, 4, 1)),
        lambda a, b: losses.gradient_penalty(_critic, a, b, _KEY)),
    "bce_discriminator_loss": ((_f(4), _f(3)), lambda a, b: losses.bce_discriminator_loss(a, b)),
    "bce_generator_loss": ((_f(4),), lambda a: losses.bce_generator_loss(a)),
    "lsgan_discriminator_loss": ((_f(4), _f(3)),
                                 lambda a, b: losses.lsgan_discriminator_loss(a, b)),
    "lsgan_generator_loss": ((_f(4),), lambda a: losses.lsgan_generator_loss(a)),
    "acgan_class_loss": (
        (_f(3, 5), _f(2, 5)),
        lambda a, b: losses.acgan_class_loss(a, jnp.array([0, 4, 2]), b, jnp.array([1, 1]))),
    "d2gan_discriminator_loss": ((_f(4), _f(3), _f(4), _f(3)),
                                 lambda a, b, c, d: losses.d2gan_discriminator_loss(a, b, c, d)),
    "d2gan_generator_loss": ((_f(3), _f(3)), lambda a, b: losses.d2gan_generator_loss(a, b)),
    "jensen_shannon_estimate": ((_f(4), _f(3)),
                                lambda a, b: losses.jensen_shannon_estimate(a, b)),
    "dg2_d1_loss": ((_f(4), _f(3)), lambda a, b: losses.dg2_d1_loss(a, b)),
    "dg2_d2_loss": ((_f(4), _f(3)), lambda a, b: losses.dg2_d2_loss(a, b, mu=0.05)),
    "dg2_generator_loss": ((_f(3), _f(3)), lambda a, b: losses.dg2_generator_loss(a, b)),
    "cycle_consistency_loss": ((_f(2, 4, 4, 3), _f(2, 4, 4, 3)),
                               lambda a, b: losses.cycle_consistency_loss(a, b)),
    "identity_loss": ((_f(2, 4, 4, 3), _f(2, 4, 4, 3)), lambda a, b: losses.identity_loss(a, b)),
    "weak_supervision_loss": (
        (_f(2, 4, 4, lo=0.0, hi=1.0),),
        lambda h: jnp.sum(losses.weak_supervision_loss(h, jnp.array([1, 0]), alpha=8.0))),
    "rkd_distance_loss": ((_f(5, 3), _f(5, 6)), lambda a, b: losses.rkd_distance_loss(a, b)),
    "rkd_angle_loss": ((_f(5, 3), _f(5, 6)), lambda a, b: losses.rkd_angle_loss(a, b)),
    "rkd_loss": ((_f(5, 3), _f(5, 6)), lambda a, b: losses.rkd_loss(a, b)),
    "kd_loss": ((_f(3, 4), _f(3, 4)), lambda a, b: losses.kd_loss(a, b, temperature=4.0)),
    "gmean_class_weights": (
        (_f(3, 3, lo=0.0, hi=10.0),),
        lambda c: jnp.sum(losses.gmean_class_weights(c, imbalance_ratio=5.0))),
    "self_adaptive_loss": (
        (_f(3, 4), _f(4, lo=0.1, hi=1.0)),
        lambda z, w: losses.self_adaptive_loss(z, jnp.array([0, 3, 1]), w, beta=0.1)),
    "soft_threshold": ((_f(2, 3, 3, 4), _f(4, lo=0.0, hi=1.0)),
                       lambda x, t: jnp.sum(losses.soft_threshold(x, t))),
    "saddt": ((_f(2, 3, 3, 4), _f(4, lo=0.0, hi=1.0), _f(4, lo=0.5, hi=2.0)),
              lambda x, t, d: jnp.sum(losses.saddt(x, t, d))),
}


def test_every_array_function_has_a_case():
  # collaborative_alpha takes an integer step (tested in test_weak_supervision).
  assert sorted(CASES) == sorted(set(CONTRACT) - {"collaborative_alpha"})


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_bfloat16_scalar_and_finite_grads(name):
  args, call = CASES[name]
  f32 = jax.jit(call)(*args)
  assert f32.shape == () and f32.dtype == jnp.float32, (f32.shape, f32.dtype)
  # bfloat16 inputs: computed in float32, equal to the float32 result on the
  # same (bf16-rounded) values.
  bf16 = tuple(a.astype(jnp.bfloat16) for a in args)
  out = jax.jit(call)(*bf16)
  assert out.dtype == jnp.float32 or name in ("soft_threshold", "saddt")
  ref = jax.jit(call)(*(a.astype(jnp.float32) for a in bf16))
  rtol = 1e-2 if name in ("soft_threshold", "saddt") else 1e-5  # these return bf16
  np.testing.assert_allclose(np.float32(out), np.float32(ref), rtol=rtol, atol=1e-5)
  grads = jax.jit(jax.grad(call, argnums=tuple(range(len(args)))))(*args)
  assert_finite(grads)
  for g, a in zip(grads, args):
    assert g.shape == a.shape
