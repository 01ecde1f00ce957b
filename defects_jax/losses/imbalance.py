"""Class-imbalance losses of RKD-SARSN: GMean/accuracy class weights and the
self-adaptive loss (rkd-sarsn eq. 12-17).

The weights are computed from a confusion matrix (e.g. of the previous epoch
on the training set) and fed back as constants into the loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples
from defects_jax.losses._numerics import safe_divide
from defects_jax.losses._numerics import safe_sqrt


def gmean_class_weights(confusion: jax.Array, *, imbalance_ratio: float) -> jax.Array:
  r"""Per-class weights from GMean and one-vs-rest accuracy.

  For each class c, treated one-vs-rest on a K x K confusion matrix
  :math:`C` (rows = true class, columns = predicted class, as sklearn):

  .. math::
     TPR_c &= \frac{TP_c}{TP_c + FN_c},\quad TNR_c = \frac{TN_c}{TN_c + FP_c}\\
     GMean_c &= \sqrt{TPR_c \cdot TNR_c} \quad\text{(eq. 12)}\\
     acc_c &= \frac{TP_c + TN_c}{TP_c + TN_c + FP_c + FN_c} \quad\text{(eq. 14)}\\
     \Phi_c &= K\,e^{-GMean_c/2}\,e^{-(1 - acc_c)/2} \quad\text{(eq. 13)}\\
     w_c &= \tanh(\Phi_c) \quad\text{(eq. 15)}

  with K the imbalance ratio (the paper: "the sample imbalance ratio").

  Deviations from the paper: eq. 12 writes :math:`\sqrt{TPR \times FPR}`, but
  its own text defines GMean as "the geometric average of recall and
  specificity", i.e. :math:`\sqrt{TPR \times TNR}` (Kubat & Matwin's G-mean);
  with FPR, a perfect classifier would get GMean = 0. Eq. 15 prints
  :math:`(e^{1-\Phi} - e^{\Phi-1}) / (e^{1-\Phi} + e^{1+\Phi})`, a garbled
  tanh (the denominator's exponents do not mirror the numerator's, and it is
  not bounded in (-1, 1) as the text states); the text says it "uses the tanh
  activation function to map the value of Phi", so :math:`\tanh(\Phi)` is
  used.

  A rate whose denominator is 0 (a class absent from the matrix) is taken as 0.

  Args:
    confusion: [K, K] counts (int or float), rows true, columns predicted.
    imbalance_ratio: K of eq. 13, the majority/minority sample ratio (> 0).

  Returns:
    float32[K] class weights in (0, 1).

  References:
    rkd-sarsn eq. 12-15; Kubat & Matwin 1997 (G-mean).
  """
  c = as_f32(confusion)
  if c.ndim != 2 or c.shape[0] != c.shape[1]:
    raise ValueError(f"confusion must be [K, K], got {c.shape}")
  total = jnp.sum(c)
  tp = jnp.diagonal(c)
  fn = jnp.sum(c, axis=1) - tp
  fp = jnp.sum(c, axis=0) - tp
  tn = total - tp - fn - fp
  tpr = safe_divide(tp, tp + fn)
  tnr = safe_divide(tn, tn + fp)
  gmean = safe_sqrt(tpr * tnr)
  acc = safe_divide(tp + tn, total)
  phi = imbalance_ratio * jnp.exp(-gmean / 2.0) * jnp.exp(-(1.0 - acc) / 2.0)
  return jnp.tanh(phi)


def self_adaptive_loss(
    logits: jax.Array,
    labels: jax.Array,
    class_weights: jax.Array,
    *,
    beta: float = 0.0,
) -> jax.Array:
  r"""Self-adaptive (GMean-weighted, error-scaled) classification loss.

  With :math:`p_i = \mathrm{softmax}(z_i)`, one-hot targets :math:`y_i` and
  class weights :math:`w` (from :func:`gmean_class_weights`):

  .. math::
     \rho^2 &= \sum_{i=1}^{n} \|y_i - p_i + \beta\|_2^2 \quad\text{(eq. 16)}\\
     L &= \mathrm{sg}\!\left(\frac{\rho^2}{n}\right)\cdot
          \frac{1}{n}\sum_{i=1}^{n} -w_{y_i}\log p_{i, y_i} \quad\text{(eq. 17)}

  :math:`\rho^2 / n` is the batch's mean squared error of the probabilities:
  a hard batch scales the weighted cross-entropy up, an easy one down.

  Deviation from the paper: eq. 17 prints
  :math:`-\frac{\rho^2}{n}\sum_i T_h \log(y'_i)`, a sum over the batch with
  the :math:`1/n` already used by :math:`\rho^2/n`; here the cross-entropy term
  is a batch mean so the loss scale does not grow with the batch size, and
  :math:`T_h` is read as the weight of each sample's true class. The scale
  :math:`\rho^2/n` is under ``stop_gradient``: the paper presents it as a
  sensitivity factor, and differentiating it would add a Brier-score gradient
  the paper does not describe. :math:`\beta` (eq. 16's sensitivity offset) is
  added to every component of :math:`y_i - p_i`.

  Args:
    logits: float[B, K] classifier logits.
    labels: int[B] class ids in [0, K).
    class_weights: float[K] per-class weights (constants; gradient stopped).
    beta: eq. 16's offset :math:`\beta` (default 0).

  Returns:
    float32 scalar, >= 0 for non-negative weights.

  References:
    rkd-sarsn eq. 16-17.
  """
  require_examples("self_adaptive_loss", logits=logits, labels=labels)
  logits = as_f32(logits)
  labels = jnp.asarray(labels).astype(jnp.int32)
  w = jax.lax.stop_gradient(as_f32(class_weights))
  if logits.ndim != 2 or labels.shape != logits.shape[:1] or w.shape != logits.shape[-1:]:
    raise ValueError(
        f"expected logits float[B, K], labels int[B], class_weights float[K]; got "
        f"{logits.shape}, {labels.shape}, {w.shape}")
  n = logits.shape[0]
  log_p = jax.nn.log_softmax(logits, axis=-1)
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  rho2 = jnp.sum((onehot - jnp.exp(log_p) + beta) ** 2)
  nll = -jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
  return jax.lax.stop_gradient(rho2 / n) * jnp.mean(w[labels] * nll)
