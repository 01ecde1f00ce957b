"""Single-discriminator adversarial losses: WGAN, Wasserstein divergence, WGAN-GP,
BCE (non-saturating), LSGAN and the ACGAN auxiliary-classifier loss.

Used by Res-ACGAN (res-acgan-wasserstein-div-msfe, eq. 9-15), the EDCGAN
baseline (edcgan-mobilenetv2) and the GAN baselines of dg2gan.

Conventions: every function is pure, accepts float32/bfloat16 arrays, computes
in float32 and returns a float32 scalar. Hyperparameters are keyword-only.
Losses are quantities to *minimise* (the papers write some as maxima).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples
from defects_jax.losses.classification import cross_entropy
from defects_jax.losses._numerics import per_example_sq_norm
from defects_jax.losses._numerics import safe_pow
from defects_jax.losses._numerics import safe_sqrt

CriticFn = Callable[[jax.Array], jax.Array]


# --------------------------------------------------------------------------
# Wasserstein critic / generator
# --------------------------------------------------------------------------


def wgan_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  r"""Wasserstein critic loss: the critic scores real samples high.

  .. math:: L_D = \mathbb{E}[D(\tilde x)] - \mathbb{E}[D(x)]

  This is the negation of the first two terms of res-acgan eq. 10 (the paper
  maximises :math:`E[D(x)] - E[D(G(z))]`; we minimise).

  Args:
    real_scores: float[B] (any shape) critic outputs on real samples.
    fake_scores: float[B'] (any shape) critic outputs on generated samples.

  Returns:
    float32 scalar ``mean(fake_scores) - mean(real_scores)``.

  References:
    Arjovsky et al. 2017, "Wasserstein GAN"; res-acgan eq. 10.
  """
  require_examples("wgan_critic_loss", real_scores=real_scores, fake_scores=fake_scores)
  return jnp.mean(as_f32(fake_scores)) - jnp.mean(as_f32(real_scores))


def wgan_generator_loss(fake_scores: jax.Array) -> jax.Array:
  r"""Wasserstein generator loss :math:`-\mathbb{E}[D(G(z))]`.

  Args:
    fake_scores: float[B] critic outputs on generated samples.

  Returns:
    float32 scalar ``-mean(fake_scores)``.

  References:
    Arjovsky et al. 2017; res-acgan eq. 13 and 15 (:math:`L(G) = L_c - L_s(G)`).
  """
  require_examples("wgan_generator_loss", fake_scores=fake_scores)
  return -jnp.mean(as_f32(fake_scores))


# --------------------------------------------------------------------------
# Gradient penalties
# --------------------------------------------------------------------------


def _input_gradients(critic_fn: CriticFn, u: jax.Array) -> jax.Array:
  """``d critic_fn(u)_b / d u_b`` for every sample b: float[B, ...].

  One vector-Jacobian product with a ones cotangent. It equals the per-sample
  gradient whenever ``critic_fn`` treats samples independently (no BatchNorm in
  training mode across the batch, which WGAN critics avoid anyway).
  """
  scores, vjp = jax.vjp(critic_fn, u)
  if scores.shape != u.shape[:1]:
    raise ValueError(
        f"critic_fn must map a batch {u.shape} to scores of shape "
        f"{u.shape[:1]}, got {scores.shape}")
  (grads,) = vjp(jnp.ones_like(scores))
  return grads


def _interpolate(real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
  """``real + e * (fake - real)`` with one ``e ~ U[0, 1]`` per sample."""
  if real.shape != fake.shape:
    raise ValueError(
        f"real and fake must have the same shape, got {real.shape} and "
        f"{fake.shape}")
  e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  return real + e * (fake - real)


def wasserstein_div_penalty(
    critic_fn: CriticFn,
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array | None = None,
    *,
    k: float = 2.0,
    p: float = 6.0,
    mode: str = "interpolate",
) -> jax.Array:
  r"""Wasserstein-divergence gradient penalty (W-div).

  .. math:: k \, \mathbb{E}_{u \sim P_u}\big[\|\nabla_u D(u)\|_2^{p}\big]

  with the norm taken per sample over all non-batch axes. Add it to
  :func:`wgan_critic_loss` to get the critic objective of res-acgan eq. 10
  (written there as a maximisation, hence the sign flip).

  ``mode`` picks :math:`P_u`:

  * ``"interpolate"``: :math:`u = x + \epsilon (\tilde x - x)`,
    :math:`\epsilon \sim U[0,1]` per sample, as in Wu et al.'s official code;
    needs ``key``.
  * ``"real_fake"``: :math:`\tfrac{k}{2}(\mathbb{E}\|\nabla D(x)\|^p +
    \mathbb{E}\|\nabla D(\tilde x)\|^p)`, the form of Wu et al. eq. 12
    (gradients at the real and at the fake points; no key). res-acgan
    Algorithm 1 step 5 ("the gradient of the real sample space ... of the
    generated sample space") describes this variant.

  :math:`\|g\|^p` is computed as :math:`(\sum g^2)^{p/2}` so the value *and*
  its gradient with respect to the critic's parameters are finite where
  :math:`\nabla D = 0` (a plain norm has an infinite derivative there).

  Args:
    critic_fn: maps a batch float[B, ...] to scores float[B]; usually a closure
      ``lambda x: critic.apply(params, x)[..., 0]``. It must treat samples
      independently (the gradient is taken with one VJP for the whole batch).
    real: float[B, ...] real samples (NHWC images for the papers' critics).
    fake: float[B, ...] generated samples, same shape as ``real``.
    key: PRNG key, required for ``mode="interpolate"``.
    k: penalty weight (paper: 2).
    p: exponent (paper: 6); must be > 0.
    mode: ``"interpolate"`` or ``"real_fake"``.

  Returns:
    float32 scalar penalty, >= 0.

  References:
    Wu et al. 2018, "Wasserstein Divergence for GANs", eq. 12 and official code;
    res-acgan eq. 9-10 (k = 2, p = 6).
  """
  if p <= 0:
    raise ValueError(f"p must be > 0, got {p}")
  require_examples("wasserstein_div_penalty", real=real, fake=fake)
  real, fake = as_f32(real), as_f32(fake)

  def mean_grad_pow(u):
    return jnp.mean(safe_pow(per_example_sq_norm(_input_gradients(critic_fn, u)),
                             p / 2.0))

  if mode == "interpolate":
    if key is None:
      raise ValueError('wasserstein_div_penalty(mode="interpolate") needs a PRNG key')
    return k * mean_grad_pow(_interpolate(real, fake, key))
  if mode == "real_fake":
    if real.shape[1:] != fake.shape[1:]:
      raise ValueError(
          f"real and fake must have the same sample shape, got {real.shape} "
          f"and {fake.shape}")
    return 0.5 * k * (mean_grad_pow(real) + mean_grad_pow(fake))
  raise ValueError(f'mode must be "interpolate" or "real_fake", got {mode!r}')


def gradient_penalty(
    critic_fn: CriticFn,
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
    *,
    weight: float = 10.0,
) -> jax.Array:
  r"""WGAN-GP two-sided gradient penalty (for the res-acgan Table 3 baselines).

  .. math:: \lambda \, \mathbb{E}_{u}\big[(\|\nabla_u D(u)\|_2 - 1)^2\big],
     \quad u = x + \epsilon(\tilde x - x),\ \epsilon \sim U[0, 1]

  The norm uses a safe square root, so a critic whose input gradient is exactly
  zero yields value ``weight`` and a finite (zero) gradient through the norm.

  Args:
    critic_fn: maps float[B, ...] to float[B] (see
      :func:`wasserstein_div_penalty`).
    real: float[B, ...] real samples.
    fake: float[B, ...] generated samples, same shape.
    key: PRNG key for the interpolation coefficients.
    weight: :math:`\lambda` (Gulrajani et al.: 10).

  Returns:
    float32 scalar penalty, >= 0.

  References:
    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", eq. 3.
  """
  require_examples("gradient_penalty", real=real, fake=fake)
  u = _interpolate(as_f32(real), as_f32(fake), key)
  norms = safe_sqrt(per_example_sq_norm(_input_gradients(critic_fn, u)))
  return weight * jnp.mean((norms - 1.0) ** 2)


# --------------------------------------------------------------------------
# Sigmoid cross-entropy (standard GAN) and least squares
# --------------------------------------------------------------------------


def bce_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  r"""Standard GAN discriminator loss on logits (real -> 1, fake -> 0).

  .. math:: -\mathbb{E}[\log\sigma(h_r)] - \mathbb{E}[\log(1 - \sigma(h_f))]
     = \mathbb{E}[\mathrm{softplus}(-h_r)] + \mathbb{E}[\mathrm{softplus}(h_f)]

  The softplus form is exact and finite for logits of any magnitude.

  Args:
    real_logits: float[B] (any shape) discriminator logits on real samples.
    fake_logits: float[B'] (any shape) logits on generated samples.

  Returns:
    float32 scalar, >= 0.

  References:
    Goodfellow et al. 2014, eq. 1; edcgan-mobilenetv2 (DCGAN objective);
    dg2gan eq. 3 (D1 side).
  """
  require_examples("bce_discriminator_loss", real_logits=real_logits, fake_logits=fake_logits)
  return (jnp.mean(jax.nn.softplus(-as_f32(real_logits)))
          + jnp.mean(jax.nn.softplus(as_f32(fake_logits))))


def bce_generator_loss(fake_logits: jax.Array) -> jax.Array:
  r"""Non-saturating generator loss :math:`-\mathbb{E}[\log\sigma(h_f)] =
  \mathbb{E}[\mathrm{softplus}(-h_f)]`.

  Args:
    fake_logits: float[B] discriminator logits on generated samples.

  Returns:
    float32 scalar, >= 0.

  References:
    Goodfellow et al. 2014, section 3 (the "-log D" trick).
  """
  require_examples("bce_generator_loss", fake_logits=fake_logits)
  return jnp.mean(jax.nn.softplus(-as_f32(fake_logits)))


def lsgan_discriminator_loss(real_out: jax.Array, fake_out: jax.Array) -> jax.Array:
  r"""Least-squares GAN discriminator loss, targets real -> 1, fake -> 0.

  .. math:: \tfrac12\big(\mathbb{E}[(D(x) - 1)^2] + \mathbb{E}[D(\tilde x)^2]\big)

  Args:
    real_out: float[B] raw (unbounded) discriminator outputs on real samples.
    fake_out: float[B'] outputs on generated samples.

  Returns:
    float32 scalar, >= 0.

  References:
    Mao et al. 2017, "Least Squares GANs", eq. 2 with a=0, b=c=1 (the CycleGAN
    choice, used by the rkd-sarsn and dg2gan CycleGAN baselines).
  """
  require_examples("lsgan_discriminator_loss", real_out=real_out, fake_out=fake_out)
  return 0.5 * (jnp.mean((as_f32(real_out) - 1.0) ** 2)
                + jnp.mean(as_f32(fake_out) ** 2))


def lsgan_generator_loss(fake_out: jax.Array) -> jax.Array:
  r"""Least-squares GAN generator loss :math:`\tfrac12\mathbb{E}[(D(G(z)) - 1)^2]`.

  Args:
    fake_out: float[B] raw discriminator outputs on generated samples.

  Returns:
    float32 scalar, >= 0.

  References:
    Mao et al. 2017, eq. 2 with c = 1.
  """
  require_examples("lsgan_generator_loss", fake_out=fake_out)
  return 0.5 * jnp.mean((as_f32(fake_out) - 1.0) ** 2)


# --------------------------------------------------------------------------
# ACGAN auxiliary classifier
# --------------------------------------------------------------------------


def acgan_class_loss(
    real_class_logits: jax.Array,
    real_labels: jax.Array,
    fake_class_logits: jax.Array,
    fake_labels: jax.Array,
) -> jax.Array:
  r"""ACGAN auxiliary classification loss on real and generated samples.

  .. math:: L_c = \mathbb{E}_{x}[\mathrm{CE}(C(x), c_x)]
     + \mathbb{E}_{z, c}[\mathrm{CE}(C(G(z, c)), c)]

  Used by both players (res-acgan eq. 11 and 14 are the same expression):
  the discriminator minimises it through its class head, the generator through
  its samples. Pass ``fake_class_logits`` computed on the generator's output.

  Args:
    real_class_logits: float[B, K] class-head logits on real samples.
    real_labels: int[B] class ids in ``[0, K)``.
    fake_class_logits: float[B', K] class-head logits on generated samples.
    fake_labels: int[B'] the classes the generator was conditioned on.

  Returns:
    float32 scalar, the sum of the two batch-mean cross-entropies.

  References:
    Odena et al. 2017, "Conditional Image Synthesis with Auxiliary Classifier
    GANs", eq. 2; res-acgan eq. 11 / 14 (:math:`R` = cross-entropy).
  """
  require_examples("acgan_class_loss", real_class_logits=real_class_logits,
                   fake_class_logits=fake_class_logits)
  return (cross_entropy(real_class_logits, real_labels)
          + cross_entropy(fake_class_logits, fake_labels))
