"""Every loss refuses an empty batch the same way: a ValueError at trace time
(under jax.jit too) that names the loss and the empty argument."""

import jax
import jax.numpy as jnp
import pytest

from defects_jax import losses

E1 = jnp.zeros((0,))            # scores / logits float[0]
I1 = jnp.zeros((0,), jnp.int32)  # labels int[0]
EK = jnp.zeros((0, 6))          # class logits float[0, K]
EIMG = jnp.zeros((0, 8, 8, 1))  # images float[0, H, W, C]
EEMB = jnp.zeros((0, 4))        # embeddings float[0, D]
S1 = jnp.ones((3,))
critic = lambda x: jnp.sum(x, axis=(1, 2, 3))
key = jax.random.key(0)

# (loss, call with an empty batch, the argument the message must name)
CASES = {
    "cross_entropy": (lambda: losses.cross_entropy(EK, I1), "logits"),
    "binary_cross_entropy": (lambda: losses.binary_cross_entropy(E1, E1), "logits"),
    "wgan_critic_loss": (lambda: losses.wgan_critic_loss(E1, S1), "real_scores"),
    "wgan_generator_loss": (lambda: losses.wgan_generator_loss(E1), "fake_scores"),
    "wasserstein_div_penalty": (
        lambda: losses.wasserstein_div_penalty(critic, EIMG, EIMG, key), "real"),
    "gradient_penalty": (lambda: losses.gradient_penalty(critic, EIMG, EIMG, key), "real"),
    "bce_discriminator_loss": (lambda: losses.bce_discriminator_loss(S1, E1), "fake_logits"),
    "bce_generator_loss": (lambda: losses.bce_generator_loss(E1), "fake_logits"),
    "lsgan_discriminator_loss": (lambda: losses.lsgan_discriminator_loss(E1, S1), "real_out"),
    "lsgan_generator_loss": (lambda: losses.lsgan_generator_loss(E1), "fake_out"),
    "acgan_class_loss": (lambda: losses.acgan_class_loss(EK, I1, EK, I1), "real_class_logits"),
    "d2gan_discriminator_loss": (
        lambda: losses.d2gan_discriminator_loss(S1, S1, E1, S1), "d2_real"),
    "d2gan_generator_loss": (lambda: losses.d2gan_generator_loss(E1, S1), "d1_fake"),
    "jensen_shannon_estimate": (lambda: losses.jensen_shannon_estimate(S1, E1), "q_logits"),
    "dg2_d1_loss": (lambda: losses.dg2_d1_loss(E1, S1), "real_logits"),
    "dg2_d2_loss": (lambda: losses.dg2_d2_loss(S1, E1), "fake_logits"),
    "dg2_generator_loss": (lambda: losses.dg2_generator_loss(E1, E1), "d1_fake_logits"),
    "cycle_consistency_loss": (lambda: losses.cycle_consistency_loss(EIMG, EIMG), "x"),
    "identity_loss": (lambda: losses.identity_loss(EIMG, EIMG), "x"),
    "weak_supervision_loss": (
        lambda: losses.weak_supervision_loss(jnp.zeros((0, 4, 4)), E1, alpha=8.0), "heatmap"),
    "rkd_distance_loss": (lambda: losses.rkd_distance_loss(EEMB, EEMB), "student"),
    "rkd_angle_loss": (lambda: losses.rkd_angle_loss(EEMB, EEMB), "student"),
    "rkd_loss": (lambda: losses.rkd_loss(EEMB, EEMB), "student"),
    "kd_loss": (lambda: losses.kd_loss(EK, EK), "student_logits"),
    "self_adaptive_loss": (
        lambda: losses.self_adaptive_loss(EK, I1, jnp.ones((6,))), "logits"),
}
# Not batch losses: element-wise activations (empty in, empty out), a schedule,
# and per-class weights of a confusion matrix.
NOT_BATCH = {"soft_threshold", "saddt", "collaborative_alpha", "gmean_class_weights"}


def test_every_loss_has_an_empty_batch_case():
  assert set(CASES) == set(losses.__all__) - NOT_BATCH


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_empty_batch_raises_naming_the_loss_and_argument(name, jit):
  call, arg = CASES[name]
  fn = jax.jit(call) if jit else call
  with pytest.raises(ValueError, match=rf"{name}: argument '{arg}' is empty \(shape \(0"):
    fn()


def test_activations_pass_empty_inputs_through():
  x = jnp.zeros((0, 4, 4, 3))
  assert losses.soft_threshold(x, jnp.ones((3,))).shape == (0, 4, 4, 3)
  assert losses.saddt(x, jnp.ones((3,)), 1.0).shape == (0, 4, 4, 3)
