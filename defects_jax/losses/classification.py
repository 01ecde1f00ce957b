"""Classification losses shared by every system: softmax cross-entropy with
integer labels and sigmoid binary cross-entropy, both on logits.

The project's one copy of each (optax's implementations, batch-averaged, in
float32): the ACGAN class loss, the classifier train step, the weakly
supervised DNet and the GAN baselines all call these.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  r"""Mean softmax cross-entropy with integer labels.

  .. math:: \frac1B \sum_b \big(\log \textstyle\sum_k e^{z_{bk}} - z_{b,y_b}\big)

  Args:
    logits: float[B, K].
    labels: int[B] class ids in ``[0, K)``.

  Returns:
    float32 scalar.

  Raises:
    ValueError: at trace time, for mismatched shapes or an empty batch (B = 0).

  References:
    ``optax.softmax_cross_entropy_with_integer_labels``; res-acgan eq. 11 / 14
    (R), rkd-sarsn eq. 16 (the unweighted case).
  """
  logits, labels = as_f32(logits), jnp.asarray(labels)
  if logits.ndim != 2 or labels.shape != logits.shape[:1]:
    raise ValueError(f"cross_entropy: expected logits float[B, K] and labels int[B], got "
                     f"{logits.shape} and {labels.shape}")
  require_examples("cross_entropy", logits=logits)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      logits, labels.astype(jnp.int32)))


def binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  r"""Mean sigmoid binary cross-entropy on logits (finite for any logit).

  .. math:: \frac1B \sum_b \big(\mathrm{softplus}(h_b) - y_b h_b\big)
     = -\frac1B \sum_b \big(y_b \log\sigma(h_b) + (1-y_b)\log(1-\sigma(h_b))\big)

  Args:
    logits: float[B] (or any shape; ``labels`` of the same shape).
    labels: float or int targets in [0, 1], same shape.

  Returns:
    float32 scalar, the mean over all elements.

  Raises:
    ValueError: at trace time, for mismatched shapes or no elements.

  References:
    ``optax.sigmoid_binary_cross_entropy``; weakly-supervised section III.B
    (DNet's loss).
  """
  logits, labels = as_f32(logits), as_f32(labels)
  if logits.shape != labels.shape:
    raise ValueError(f"binary_cross_entropy: logits {logits.shape} and labels {labels.shape} "
                     f"differ in shape")
  require_examples("binary_cross_entropy", logits=logits)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
