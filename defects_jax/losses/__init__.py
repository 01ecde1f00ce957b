"""Pure loss functions of the five papers (see the README's "Losses" table).

Every function takes arrays positionally and hyperparameters as keywords, works
under ``jax.jit``, ``jax.grad`` and (where per-example) ``jax.vmap``, accepts
float32 and bfloat16 inputs, computes in float32, and returns a float32 scalar
unless its docstring says "per-example". Each docstring gives the math, the
shapes, the paper and equation, and any deviation from a misprinted equation.

An empty batch (a batch argument with 0 examples) is refused the same way by
every loss: a ``ValueError`` at trace time naming the loss and the argument
(shapes are static, so the check costs nothing under jit). The mean over no
examples is undefined, and a silent NaN or 0 would hide the data bug that
produced it. ``soft_threshold`` and ``saddt`` are element-wise activations
(empty in, empty out); ``gmean_class_weights`` and ``collaborative_alpha``
take no batch.
"""

from defects_jax.losses.adversarial import acgan_class_loss
from defects_jax.losses.adversarial import bce_discriminator_loss
from defects_jax.losses.adversarial import bce_generator_loss
from defects_jax.losses.adversarial import gradient_penalty
from defects_jax.losses.adversarial import lsgan_discriminator_loss
from defects_jax.losses.adversarial import lsgan_generator_loss
from defects_jax.losses.adversarial import wasserstein_div_penalty
from defects_jax.losses.adversarial import wgan_critic_loss
from defects_jax.losses.adversarial import wgan_generator_loss
from defects_jax.losses.classification import binary_cross_entropy
from defects_jax.losses.classification import cross_entropy
from defects_jax.losses.cycle import cycle_consistency_loss
from defects_jax.losses.cycle import identity_loss
from defects_jax.losses.distillation import kd_loss
from defects_jax.losses.distillation import rkd_angle_loss
from defects_jax.losses.distillation import rkd_distance_loss
from defects_jax.losses.distillation import rkd_loss
from defects_jax.losses.dual_discriminator import d2gan_discriminator_loss
from defects_jax.losses.dual_discriminator import d2gan_generator_loss
from defects_jax.losses.dual_discriminator import dg2_d1_loss
from defects_jax.losses.dual_discriminator import dg2_d2_loss
from defects_jax.losses.dual_discriminator import dg2_generator_loss
from defects_jax.losses.dual_discriminator import jensen_shannon_estimate
from defects_jax.losses.imbalance import gmean_class_weights
from defects_jax.losses.imbalance import self_adaptive_loss
from defects_jax.losses.shrinkage import saddt
from defects_jax.losses.shrinkage import soft_threshold
from defects_jax.losses.weak_supervision import collaborative_alpha
from defects_jax.losses.weak_supervision import weak_supervision_loss

__all__ = [
    # classification
    "cross_entropy",
    "binary_cross_entropy",
    # adversarial
    "wgan_critic_loss",
    "wgan_generator_loss",
    "wasserstein_div_penalty",
    "gradient_penalty",
    "bce_discriminator_loss",
    "bce_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "acgan_class_loss",
    # dual discriminators
    "d2gan_discriminator_loss",
    "d2gan_generator_loss",
    "jensen_shannon_estimate",
    "dg2_d1_loss",
    "dg2_d2_loss",
    "dg2_generator_loss",
    # cycle
    "cycle_consistency_loss",
    "identity_loss",
    # weak supervision
    "weak_supervision_loss",
    "collaborative_alpha",
    # distillation
    "rkd_distance_loss",
    "rkd_angle_loss",
    "rkd_loss",
    "kd_loss",
    # imbalance and shrinkage
    "gmean_class_weights",
    "self_adaptive_loss",
    "soft_threshold",
    "saddt",
]
