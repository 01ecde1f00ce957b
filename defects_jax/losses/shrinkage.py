"""Shrinkage activations of the residual shrinkage network: soft threshold and
the self-adaptive directional-derivative threshold (rkd-sarsn eq. 8-10).

These are elementwise layers rather than losses; they live here because the
issue that specified the loss API grouped them with the SARSN losses, and they
share its numerics and testing conventions. They compute in float32 and return
``x``'s dtype, so a bfloat16 network stays bfloat16.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32


def _per_channel(v, x: jax.Array) -> jax.Array:
  """Broadcasts a threshold to ``x``: scalar, float[C], float[B, C] or any
  shape that broadcasts against ``x``. A [B, C] array meets an NHWC ``x`` as
  [B, 1, 1, C]."""
  v = as_f32(v)
  if v.ndim == 2 and x.ndim > 2:
    v = jnp.reshape(v, (v.shape[0],) + (1,) * (x.ndim - 2) + (v.shape[1],))
  return v


def soft_threshold(x: jax.Array, tau: jax.Array) -> jax.Array:
  r"""Soft thresholding (eq. 8).

  .. math:: y = \begin{cases} x - \tau & x > \tau \\ 0 & |x| \le \tau \\
            x + \tau & x < -\tau \end{cases}

  Its derivative is 1 outside the threshold band and 0 inside (eq. 9).

  Args:
    x: float[B, H, W, C] (any shape) features.
    tau: thresholds >= 0: scalar, float[C], float[B, C] (per sample and
      channel, as SARSN produces them) or broadcastable to ``x``.

  Returns:
    array of ``x``'s shape and dtype.

  References:
    Donoho 1995; Zhao et al. 2020 (deep residual shrinkage networks);
    rkd-sarsn eq. 8-9.
  """
  xf = as_f32(x)
  t = _per_channel(tau, xf)
  return (xf - jnp.clip(xf, -t, t)).astype(jnp.asarray(x).dtype)


def saddt(x: jax.Array, tau: jax.Array, slope: jax.Array) -> jax.Array:
  r"""Self-adaptive directional-derivative threshold, SADDT (eq. 10).

  .. math:: y = \begin{cases} \delta x - \tau & x > \tau \\ 0 & |x| \le \tau \\
            \delta x + \tau & x < -\tau \end{cases}

  i.e. ``slope * x - tau * sign(x)`` where ``|x| > tau`` and 0 elsewhere. With
  ``slope = 1`` it is :func:`soft_threshold`. For ``slope != 1`` the function
  jumps by :math:`(\delta - 1)\tau` at :math:`|x| = \tau`, exactly as eq. 10 is
  written; the derivative is :math:`\delta` outside the band and 0 inside.

  Args:
    x: float[B, H, W, C] (any shape) features.
    tau: thresholds >= 0, broadcast as in :func:`soft_threshold`.
    slope: :math:`\delta`, the learned directional derivative, broadcast the
      same way (scalar, float[C] or float[B, C]).

  Returns:
    array of ``x``'s shape and dtype.

  References:
    rkd-sarsn eq. 10-11.
  """
  xf = as_f32(x)
  t = _per_channel(tau, xf)
  d = _per_channel(slope, xf)
  out = jnp.where(jnp.abs(xf) > t, d * xf - t * jnp.sign(xf), 0.0)
  return out.astype(jnp.asarray(x).dtype)
