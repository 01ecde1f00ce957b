"""Numerically safe building blocks shared by the loss modules (private).

Every helper here has a finite value *and* a finite gradient on the whole real
line, including the points where the textbook formula is singular (a norm at 0,
a log at 0, a division by 0). The standard trick is the "double where": the
unsafe operation is evaluated on a substituted safe input, so that the branch
``jnp.where`` discards never produces a NaN that would leak into the gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Below this a squared norm / denominator counts as zero. float32 has ~1e-38
# normal range; 1e-30 leaves room for squaring without flushing to zero.
TINY = 1e-30


def as_f32(x) -> jax.Array:
  """Returns ``x`` as an array of at least float32 precision.

  bfloat16, float16, int and bool inputs become float32; float64 (only present
  when the user enabled x64, e.g. for finite-difference checks) stays float64.
  """
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def safe_sqrt(sq: jax.Array) -> jax.Array:
  """``sqrt(sq)`` for ``sq >= 0`` with gradient 0 (not inf) at ``sq == 0``."""
  positive = sq > TINY
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def safe_pow(sq: jax.Array, exponent: float) -> jax.Array:
  """``sq ** exponent`` for ``sq >= 0``; value 0 and gradient 0 at ``sq == 0``.

  For ``exponent >= 1`` the plain power is already smooth at 0; for
  ``0 < exponent < 1`` its derivative is infinite there, which this avoids.
  """
  positive = sq > TINY
  return jnp.where(positive, jnp.where(positive, sq, 1.0) ** exponent, 0.0)


def safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
  """``num / den`` where ``|den| > TINY``, else 0 (value and gradient)."""
  ok = jnp.abs(den) > TINY
  return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def safe_normalize(v: jax.Array, axis: int = -1) -> jax.Array:
  """``v / ||v||`` along ``axis``; a zero vector maps to the zero vector.

  The gradient at a zero vector is 0. (``torch.nn.functional.normalize`` divides
  by ``max(||v||, 1e-12)`` instead, whose gradient there is 1e12.)
  """
  sq = jnp.sum(v * v, axis=axis, keepdims=True)
  positive = sq > TINY
  inv = jnp.where(positive, jax.lax.rsqrt(jnp.where(positive, sq, 1.0)), 0.0)
  return v * inv


def log_softplus(h: jax.Array) -> jax.Array:
  """``log(softplus(h))``, finite for all finite ``h``.

  For very negative ``h``, ``softplus(h) = exp(h) - exp(2h)/2 + ...`` underflows
  to 0 in float32 (at about h = -104) and the plain log gives -inf. There
  ``log(softplus(h)) = h + log1p(-exp(h)/2 + ...)`` and the correction is below
  float32 resolution once ``h < -20``, so the asymptote ``h`` is returned.
  """
  small = h < -20.0
  safe_h = jnp.where(small, 0.0, h)
  return jnp.where(small, h, jnp.log(jax.nn.softplus(safe_h)))


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
  """Elementwise Huber / smooth-L1: ``0.5 x^2`` if ``|x| < delta`` else
  ``delta * (|x| - 0.5 delta)``. With ``delta=1`` this is
  ``torch.nn.functional.smooth_l1_loss`` (``beta=1``)."""
  ax = jnp.abs(x)
  return jnp.where(ax < delta, 0.5 * x * x, delta * (ax - 0.5 * delta))


def per_example_sq_norm(g: jax.Array) -> jax.Array:
  """Squared L2 norm over all non-batch axes: ``float[B, ...] -> float[B]``."""
  return jnp.sum(jnp.reshape(g * g, (g.shape[0], -1)), axis=1)


def require_examples(loss: str, **arrays) -> None:
  """Raises ValueError at trace time when an argument has no examples.

  Every loss refuses an empty batch the same way (shapes are static, so this
  costs nothing under jit): the mean over zero examples is undefined, and a
  silent NaN or 0 would hide a data bug (an empty class, a filter that kept
  nothing). ``arrays`` maps argument names to arrays whose axis 0 (or, for a
  scalar-per-example argument, size) counts examples.
  """
  for name, x in arrays.items():
    shape = jnp.shape(x)
    if (shape[0] if shape else 1) == 0 or jnp.size(x) == 0:
      raise ValueError(f"{loss}: argument {name!r} is empty (shape {tuple(shape)}); a loss "
                       f"needs at least one example")
