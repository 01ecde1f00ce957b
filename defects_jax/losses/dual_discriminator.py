"""Dual-discriminator losses: D2GAN (Nguyen et al. 2017) and DG2GAN (dg2gan
eq. 2-5) with its Jensen-Shannon (DJS) term.

In DG2GAN each domain has two discriminators: D1 rewards real images (real -> 1)
and D2 rewards generated ones (real -> 0, fake -> 1, plus a DJS term). The
generator must look real to both, i.e. score high on D1 and low on D2.

Conventions: pure functions on logits / pre-activations, float32/bfloat16 in,
float32 scalar out, keyword-only hyperparameters, every value a quantity to
minimise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples
from defects_jax.losses._numerics import log_softplus
from defects_jax.losses.adversarial import bce_discriminator_loss
from defects_jax.losses.adversarial import bce_generator_loss


# --------------------------------------------------------------------------
# D2GAN
# --------------------------------------------------------------------------


def d2gan_discriminator_loss(
    d1_real: jax.Array,
    d1_fake: jax.Array,
    d2_real: jax.Array,
    d2_fake: jax.Array,
    *,
    alpha: float = 0.2,
    beta: float = 0.1,
) -> jax.Array:
  r"""D2GAN loss of the two discriminators (minimised jointly).

  With pre-activations :math:`h` and :math:`D = \mathrm{softplus}(h) > 0`:

  .. math::
     L_D = \mathbb{E}_x[-\alpha \log D_1(x)] + \mathbb{E}_z[D_1(G(z))]
         + \mathbb{E}_x[D_2(x)] + \mathbb{E}_z[-\beta \log D_2(G(z))]

  the negation of D2GAN's objective :math:`J` (eq. 2 of Nguyen et al.). For
  fixed G the optimum is :math:`D_1^* = \alpha\,p_{data}/p_G` and
  :math:`D_2^* = \beta\,p_G/p_{data}` (their Proposition 1).
  :math:`\log \mathrm{softplus}(h)` is evaluated stably (finite down to
  :math:`h = -10^4`, where softplus underflows in float32).

  Args:
    d1_real: float[B] D1 pre-activations on real samples.
    d1_fake: float[B'] D1 pre-activations on generated samples.
    d2_real: float[B] D2 pre-activations on real samples.
    d2_fake: float[B'] D2 pre-activations on generated samples.
    alpha: weight of the KL(P_data || P_G) term (paper: 0.2 on natural images).
    beta: weight of the reverse-KL term (paper: 0.1).

  Returns:
    float32 scalar (may be negative).

  References:
    Nguyen, Le, Vu, Phung 2017, "Dual Discriminator Generative Adversarial
    Nets", eq. 2 and section 5; dg2gan's D2GAN baseline.
  """
  require_examples("d2gan_discriminator_loss", d1_real=d1_real, d1_fake=d1_fake,
                   d2_real=d2_real, d2_fake=d2_fake)
  d1_real, d1_fake = as_f32(d1_real), as_f32(d1_fake)
  d2_real, d2_fake = as_f32(d2_real), as_f32(d2_fake)
  return (jnp.mean(-alpha * log_softplus(d1_real))
          + jnp.mean(jax.nn.softplus(d1_fake))
          + jnp.mean(jax.nn.softplus(d2_real))
          + jnp.mean(-beta * log_softplus(d2_fake)))


def d2gan_generator_loss(
    d1_fake: jax.Array,
    d2_fake: jax.Array,
    *,
    beta: float = 0.1,
) -> jax.Array:
  r"""D2GAN generator loss :math:`\mathbb{E}_z[-D_1(G(z)) + \beta\log D_2(G(z))]`.

  The generator's part of D2GAN's :math:`J` (it minimises J). Unbounded below
  by construction, as in the paper.

  Args:
    d1_fake: float[B] D1 pre-activations on generated samples.
    d2_fake: float[B] D2 pre-activations on generated samples.
    beta: reverse-KL weight (paper: 0.1).

  Returns:
    float32 scalar.

  References:
    Nguyen et al. 2017, eq. 2.
  """
  require_examples("d2gan_generator_loss", d1_fake=d1_fake, d2_fake=d2_fake)
  return (jnp.mean(-jax.nn.softplus(as_f32(d1_fake)))
          + beta * jnp.mean(log_softplus(as_f32(d2_fake))))


# --------------------------------------------------------------------------
# Jensen-Shannon estimate (DJS) and DG2GAN
# --------------------------------------------------------------------------


def jensen_shannon_estimate(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  r"""Variational lower bound of :math:`JS(P\|Q)` from a critic's logits.

  .. math::
     \widehat{JS} = \log 2 - \tfrac12\mathbb{E}_{P}[\mathrm{softplus}(-t)]
                           - \tfrac12\mathbb{E}_{Q}[\mathrm{softplus}(t)]

  For any critic :math:`t` this is :math:`\le JS(P\|Q) \le \log 2`; the bound is
  tight for the Bayes-optimal critic :math:`t^* = \log(p/q)`. It is exactly 0
  when all logits are 0 (a critic that cannot tell P from Q). Note
  :math:`\widehat{JS} = \log 2 - \tfrac12 L_{BCE}`, with :math:`L_{BCE}` the
  sum of the two mean cross-entropies of a classifier that labels P as 1.

  Args:
    p_logits: float[B] critic logits on samples of P (critic says "P" when high).
    q_logits: float[B'] critic logits on samples of Q.

  Returns:
    float32 scalar, <= log 2.

  References:
    Nowozin et al. 2016, "f-GAN", Table 1 (JS row) and eq. 4; Goodfellow et al.
    2014, Theorem 1; dg2gan eq. 2 (DJS).
  """
  require_examples("jensen_shannon_estimate", p_logits=p_logits, q_logits=q_logits)
  return (jnp.log(2.0)
          - 0.5 * jnp.mean(jax.nn.softplus(-as_f32(p_logits)))
          - 0.5 * jnp.mean(jax.nn.softplus(as_f32(q_logits))))


def dg2_d1_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  r"""DG2GAN D1 loss: binary cross-entropy with real -> 1, fake -> 0.

  .. math:: \mathbb{E}_d[\mathrm{softplus}(-h(d))] + \mathbb{E}_n[\mathrm{softplus}(h(G(n)))]

  the negative of dg2gan eq. 3 (written there as a log-likelihood to maximise).
  Identical to :func:`~defects_jax.losses.bce_discriminator_loss`.

  Args:
    real_logits: float[B] D1 logits on real images of the target domain.
    fake_logits: float[B'] D1 logits on translated images.

  Returns:
    float32 scalar, >= 0.

  References:
    dg2gan eq. 3.
  """
  require_examples("dg2_d1_loss", real_logits=real_logits, fake_logits=fake_logits)
  return bce_discriminator_loss(real_logits, fake_logits)


def dg2_d2_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    *,
    mu: float = 0.05,
) -> jax.Array:
  r"""DG2GAN D2 loss: reversed-target BCE (real -> 0, fake -> 1) plus DJS.

  .. math::
     L_{D2} = \mathbb{E}_d[\mathrm{softplus}(h(d))]
            + \mathbb{E}_n[\mathrm{softplus}(-h(G(n)))]
            + \mu\,\widehat{JS}(P_{fake} \| P_{real})

  with :math:`\widehat{JS}` = :func:`jensen_shannon_estimate` on D2's own
  logits (fakes as P).

  Deviation from the paper: eq. 2 literally reads
  :math:`DJS\cdot\mu + E_d[\log D2(d)] + E_n[\log(1 - D2(G(n)))]` as a quantity
  to *minimise*. Minimising those log terms drives :math:`D2(d) \to 0` and
  :math:`D2(G(n)) \to 1` (the reward-fakes behaviour the prose describes) but is
  unbounded below. The reversed-target BCE here has the same optimum and is
  bounded below by 0; this is the coherent reading of eq. 2 (and of eq. 4,
  which states the same targets as a likelihood).

  Note: since D2's logits serve as the JS critic,
  :math:`\widehat{JS} = \log 2 - \tfrac12 L_{BCE}` and the total equals
  :math:`(1 - \mu/2)\,L_{BCE} + \mu\log 2`: with ``mu`` in [0, 2) the DJS term
  rescales D2's gradient by :math:`1 - \mu/2` rather than changing its optimum.

  Args:
    real_logits: float[B] D2 logits on real images of the target domain.
    fake_logits: float[B'] D2 logits on translated images.
    mu: DJS weight (paper: :math:`\mu`; default 0.05).

  Returns:
    float32 scalar.

  References:
    dg2gan eq. 2 and 4.
  """
  require_examples("dg2_d2_loss", real_logits=real_logits, fake_logits=fake_logits)
  # Reversed targets: treat the fakes as the class D2 should score high.
  bce = bce_discriminator_loss(fake_logits, real_logits)
  return bce + mu * jensen_shannon_estimate(fake_logits, real_logits)


def dg2_generator_loss(
    d1_fake_logits: jax.Array,
    d2_fake_logits: jax.Array,
    *,
    lam: float = 0.8,
    beta: float = 0.5,
) -> jax.Array:
  r"""DG2GAN generator adversarial loss: look real to D1 and to D2.

  .. math:: \lambda\,\mathbb{E}_n[\mathrm{softplus}(-h_1(G(n)))]
          + \beta\,\mathbb{E}_n[\mathrm{softplus}(h_2(G(n)))]

  i.e. :math:`\lambda\,\mathrm{BCE}(D1(G(n)) \to 1) + \beta\,\mathrm{BCE}(D2(G(n)) \to 0)`:
  the generator side of eq. 5 (:math:`\lambda L_{gan1} + \beta L_{gan2}`) in
  non-saturating form. D2 labels real images 0, so "looking real" to D2 means
  a low D2 score.

  Args:
    d1_fake_logits: float[B] D1 logits on translated images.
    d2_fake_logits: float[B] D2 logits on translated images.
    lam: weight of the quality term :math:`L_{gan1}` (paper: :math:`\lambda`).
    beta: weight of the diversity term :math:`L_{gan2}` (paper: :math:`\beta`).

  Returns:
    float32 scalar, >= 0.

  References:
    dg2gan eq. 3-5.
  """
  require_examples("dg2_generator_loss", d1_fake_logits=d1_fake_logits,
                   d2_fake_logits=d2_fake_logits)
  return (lam * bce_generator_loss(d1_fake_logits)
          + beta * jnp.mean(jax.nn.softplus(as_f32(d2_fake_logits))))
