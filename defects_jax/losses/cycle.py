"""Cycle-consistency and identity losses of CycleGAN (rkd-sarsn eq. 3-4,
dg2gan eq. 1).

Pure functions, float32/bfloat16 in, float32 scalar out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples


def _mean_abs_error(a: jax.Array, b: jax.Array, name: str) -> jax.Array:
  require_examples(name, x=a, reconstruction=b)
  a, b = as_f32(a), as_f32(b)
  if a.shape != b.shape:
    raise ValueError(f"{name}: shapes must match, got {a.shape} and {b.shape}")
  return jnp.mean(jnp.abs(b - a))


def cycle_consistency_loss(x: jax.Array, x_reconstructed: jax.Array) -> jax.Array:
  r"""Cycle-consistency L1 loss :math:`\mathbb{E}\,|F(G(x)) - x|`.

  The mean absolute error over *all* elements (batch, pixels, channels), as the
  CycleGAN reference implementation computes it (``nn.L1Loss()``). Call it once
  per direction: ``cycle_consistency_loss(n, F(G(n))) +
  cycle_consistency_loss(d, G(F(d)))`` is dg2gan eq. 1.

  Args:
    x: float[B, H, W, C] original images.
    x_reconstructed: float[B, H, W, C] the images after the round trip.

  Returns:
    float32 scalar, >= 0, and 0 iff the two are equal.

  References:
    Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
    Adversarial Networks", eq. 2; dg2gan eq. 1; rkd-sarsn eq. 2-3.
  """
  return _mean_abs_error(x, x_reconstructed, "cycle_consistency_loss")


def identity_loss(x: jax.Array, g_of_x: jax.Array) -> jax.Array:
  r"""Identity-mapping L1 loss :math:`\mathbb{E}\,|G(y) - y|` for a target-domain
  image ``y`` (mean over all elements).

  Args:
    x: float[B, H, W, C] images already in G's output domain.
    g_of_x: float[B, H, W, C] G applied to them.

  Returns:
    float32 scalar, >= 0.

  References:
    Zhu et al. 2017, section 5.2 ("identity mapping loss", Taigman et al. 2017).
  """
  return _mean_abs_error(x, g_of_x, "identity_loss")
