"""Weakly supervised localisation loss and its collaborative alpha schedule
(weakly-supervised-lnet-dnet, eq. 3-6).

LNet outputs a heat map of per-region defect probabilities. With image-level
labels only, a positive image is pushed to maximum entropy of its mean
activation Q (some regions defective, some not) and a negative image to Q = 0.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples


def weak_supervision_loss(
    heatmap: jax.Array,
    is_defective: jax.Array,
    *,
    alpha: float | jax.Array,
    eps: float = 1e-6,
) -> jax.Array:
  r"""Per-example weakly supervised LNet loss.

  With :math:`Q = \frac{1}{hw}\sum_i q_i` the mean heat-map value of an image
  and :math:`y` its image label:

  .. math::
     L_{pos} &= Q\log Q + (1 - Q)\log(1 - Q) \quad\text{(eq. 3)}\\
     L_{neg} &= -\log(1 - Q) \quad\text{(eq. 4)}\\
     L_{weak} &= \alpha\,L_{neg}\,(1 - y) + L_{pos}\,y \quad\text{(eq. 5)}

  :math:`L_{pos}` is the *negative* binary entropy of Q: minimising it drives Q
  toward 1/2, the maximum-entropy split of a positive image into defective and
  clean regions. :math:`L_{neg}` is the cross-entropy of Q against label 0.

  Deviation from the paper (typos in eq. 4-5): eq. 4 multiplies by
  :math:`(1 - y)^2` (equal to :math:`1 - y` for binary y); eq. 5 writes
  :math:`-\log(1 - Q^2)` inside the negative term, multiplies the whole
  negative term by :math:`y` as well (which would cancel it for every image),
  and leaves the positive term unmultiplied by :math:`y`. The coherent reading,
  consistent with eq. 3-4 and with the prose ("Loss_weak = alpha *
  Loss_negative + Loss_positive"), is the one above.

  Numerics: Q is clamped to ``[eps, 1 - eps]`` in value only (a straight-through
  clamp), so both the value and the gradient stay finite at Q = 0 and Q = 1, and
  a saturated heat map still receives the gradient of the clamped point rather
  than zero.

  Args:
    heatmap: float[B, h, w] (or float[B, h, w, 1]) heat map with values in
      [0, 1], usually a sigmoid output.
    is_defective: [B] image labels, 1 for a defective (positive) image, 0 for a
      clean one (bool, int or float; soft labels in [0, 1] interpolate).
    alpha: collaborative factor weighting the negative term (> 0); may be a
      traced scalar, e.g. from :func:`collaborative_alpha`.
    eps: clamp margin for Q.

  Returns:
    float32[B] per-example losses (take the mean yourself).

  References:
    weakly-supervised-lnet-dnet, section III.B, eq. 3-5.
  """
  require_examples("weak_supervision_loss", heatmap=heatmap, is_defective=is_defective)
  heatmap = as_f32(heatmap)
  y = as_f32(is_defective)
  if heatmap.ndim < 2 or y.shape != heatmap.shape[:1]:
    raise ValueError(
        f"expected heatmap float[B, h, w] and is_defective [B], got "
        f"{heatmap.shape} and {y.shape}")
  q = jnp.mean(jnp.reshape(heatmap, (heatmap.shape[0], -1)), axis=1)
  q = q + jax.lax.stop_gradient(jnp.clip(q, eps, 1.0 - eps) - q)
  positive = q * jnp.log(q) + (1.0 - q) * jnp.log1p(-q)
  negative = -jnp.log1p(-q)
  return alpha * negative * (1.0 - y) + positive * y


def collaborative_alpha(
    step: int | jax.Array,
    *,
    alpha_init: float = 8.0,
    total_steps: int = 750,
    update_every: int = 30,
) -> jax.Array:
  r"""Cosine "collaborative learning" schedule of the weak loss's alpha.

  .. math:: \alpha_i = \alpha_{init}\,\frac{\cos(2\pi i / k) + 3}{4},
     \quad i = \lfloor step / n \rfloor,\quad k = \mathrm{round}(N / n)

  so alpha starts at ``alpha_init``, falls to ``alpha_init / 2`` half way and
  returns; it is piecewise constant over ``update_every`` steps and periodic
  with period ``k * update_every`` (steps beyond ``total_steps`` continue the
  cosine). ``round`` is Python's (half to even), and k is at least 1.

  Args:
    step: int scalar, the training iteration (0-based); may be traced.
    alpha_init: :math:`\alpha_{init}` (paper: 8).
    total_steps: :math:`N`, iterations of stage 1 (paper: 750).
    update_every: :math:`n`, iterations between updates (paper: 30).

  Returns:
    float32 scalar in ``[alpha_init / 2, alpha_init]``.

  References:
    weakly-supervised-lnet-dnet, eq. 6 and Algorithm 1.
  """
  if update_every < 1:
    raise ValueError(f"update_every must be >= 1, got {update_every}")
  k = max(1, round(total_steps / update_every))
  i = jnp.floor_divide(jnp.asarray(step, jnp.int32), update_every)
  # i mod k keeps the angle small (exact periodicity even for huge steps).
  angle = (2.0 * math.pi / k) * jnp.mod(i, k).astype(jnp.float32)
  return jnp.float32(alpha_init) * (jnp.cos(angle) + 3.0) / 4.0
