"""Knowledge-distillation losses: relational KD (distance + angle) and Hinton's
soft-target KD (rkd-sarsn eq. 18-20).

In rkd-sarsn the SARSN teacher's embedding structure is transferred into a
ResNet34 student. The teacher is always under ``stop_gradient``: no gradient
reaches it through these losses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from defects_jax.losses._numerics import as_f32
from defects_jax.losses._numerics import require_examples
from defects_jax.losses._numerics import huber
from defects_jax.losses._numerics import safe_divide
from defects_jax.losses._numerics import safe_normalize
from defects_jax.losses._numerics import safe_sqrt


def _check_embeddings(student: jax.Array, teacher: jax.Array, name: str):
  require_examples(name, student=student, teacher=teacher)
  student, teacher = as_f32(student), as_f32(teacher)
  if student.ndim != 2 or teacher.ndim != 2 or student.shape[0] != teacher.shape[0]:
    raise ValueError(
        f"{name}: expected student float[N, Ds] and teacher float[N, Dt] with the "
        f"same N, got {student.shape} and {teacher.shape}")
  return student, jax.lax.stop_gradient(teacher)


def _normalized_distances(e: jax.Array) -> jax.Array:
  """Pairwise Euclidean distances divided by their off-diagonal mean: [N, N].

  Differences are formed explicitly (not via the Gram trick) so that equal rows
  give exactly 0; the square root is safe there. All-equal rows (mean 0) give an
  all-zero matrix.
  """
  n = e.shape[0]
  diff = e[:, None, :] - e[None, :, :]
  dist = safe_sqrt(jnp.sum(diff * diff, axis=-1))
  mean = jnp.sum(dist) / max(n * (n - 1), 1)  # diagonal is 0
  return safe_divide(dist, mean)


def _angles(e: jax.Array) -> jax.Array:
  """cos of the angle at vertex i between j and k: [N, N, N].

  ``angles[i, j, k] = <normalize(e_j - e_i), normalize(e_k - e_i)>``; a zero
  difference (j == i or duplicated rows) normalises to the zero vector.
  """
  unit = safe_normalize(e[None, :, :] - e[:, None, :], axis=-1)  # [i, j, D]
  return jnp.einsum("ijd,ikd->ijk", unit, unit)


def rkd_distance_loss(student: jax.Array, teacher: jax.Array) -> jax.Array:
  r"""Relational KD distance-wise loss.

  .. math::
     \psi_D(t_i, t_j) = \frac{\|t_i - t_j\|_2}{\mu},\quad
     \mu = \frac{1}{N(N-1)}\sum_{i \ne j}\|t_i - t_j\|_2,\qquad
     L = \frac{1}{N^2}\sum_{i,j} \ell_\delta\big(\psi_D(s_i, s_j) - \psi_D(t_i, t_j)\big)

  with :math:`\ell_\delta` the Huber (smooth-L1) loss, :math:`\delta = 1`,
  averaged over all :math:`N^2` entries (diagonal included, where both sides
  are 0), as in the official code. Invariant to rotating, translating or
  uniformly scaling either embedding.

  Edge cases: identical embeddings (all distances 0) give a zero normalised
  matrix, duplicated rows a zero entry; values and gradients stay finite.
  (The official code clamps squared distances at 1e-12 and averages over the
  entries > 0; here exactly-zero off-diagonal distances count in the mean.
  The two agree whenever rows are distinct.)

  Args:
    student: float[N, Ds] student embeddings.
    teacher: float[N, Dt] teacher embeddings (gradient stopped); Ds may differ
      from Dt.

  Returns:
    float32 scalar, >= 0.

  References:
    Park et al. 2019, "Relational Knowledge Distillation", eq. 5-6 and the
    official code (lenscloth/RKD, ``RkdDistance``); rkd-sarsn eq. 20.
  """
  student, teacher = _check_embeddings(student, teacher, "rkd_distance_loss")
  return jnp.mean(huber(_normalized_distances(student) - _normalized_distances(teacher)))


def rkd_angle_loss(student: jax.Array, teacher: jax.Array) -> jax.Array:
  r"""Relational KD angle-wise loss.

  .. math::
     \psi_A(t_i, t_j, t_k) = \langle e_{ij}, e_{ik}\rangle,\quad
     e_{ij} = \frac{t_j - t_i}{\|t_j - t_i\|_2},\qquad
     L = \frac{1}{N^3}\sum_{i,j,k}\ell_\delta\big(\psi_A(s) - \psi_A(t)\big)

  over all :math:`N^3` triplets (degenerate ones, with a zero difference
  vector, contribute 0 on both sides), Huber with :math:`\delta = 1`. Memory is
  :math:`O(N^2 D + N^3)`.

  Args:
    student: float[N, Ds] student embeddings.
    teacher: float[N, Dt] teacher embeddings (gradient stopped).

  Returns:
    float32 scalar, >= 0.

  References:
    Park et al. 2019, eq. 7-8 and the official code (``RKdAngle``); rkd-sarsn
    eq. 20.
  """
  student, teacher = _check_embeddings(student, teacher, "rkd_angle_loss")
  return jnp.mean(huber(_angles(student) - _angles(teacher)))


def rkd_loss(
    student: jax.Array,
    teacher: jax.Array,
    *,
    distance_weight: float = 25.0,
    angle_weight: float = 50.0,
) -> jax.Array:
  r"""Relational KD: ``distance_weight * L_dist + angle_weight * L_angle``.

  Args:
    student: float[N, Ds] student embeddings.
    teacher: float[N, Dt] teacher embeddings (gradient stopped).
    distance_weight: :math:`\lambda_{D}` (Park et al.: 25).
    angle_weight: :math:`\lambda_{A}` (Park et al.: 50).

  Returns:
    float32 scalar, >= 0.

  References:
    Park et al. 2019, section 3.3 and 4; rkd-sarsn eq. 20.
  """
  require_examples("rkd_loss", student=student, teacher=teacher)
  return (distance_weight * rkd_distance_loss(student, teacher)
          + angle_weight * rkd_angle_loss(student, teacher))


def kd_loss(
    student_logits: jax.Array,
    teacher_logits: jax.Array,
    *,
    temperature: float = 4.0,
) -> jax.Array:
  r"""Hinton soft-target distillation loss.

  .. math:: T^2\,\frac{1}{B}\sum_b \mathrm{KL}\big(\mathrm{softmax}(t_b/T)\,\|\,
     \mathrm{softmax}(s_b/T)\big)

  The :math:`T^2` factor keeps gradient magnitudes comparable across
  temperatures. Computed from log-softmax on both sides, so logits of any
  magnitude give finite values (a teacher probability that underflows to 0
  contributes 0). The teacher is under ``stop_gradient``.

  Args:
    student_logits: float[B, K].
    teacher_logits: float[B, K].
    temperature: :math:`T > 0` (rkd-sarsn eq. 18's :math:`\tau`).

  Returns:
    float32 scalar, >= 0; 0 when the logits are equal (up to a per-row shift).

  References:
    Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural
    Network"; rkd-sarsn eq. 18-19.
  """
  require_examples("kd_loss", student_logits=student_logits, teacher_logits=teacher_logits)
  s, t = as_f32(student_logits), jax.lax.stop_gradient(as_f32(teacher_logits))
  if s.shape != t.shape or s.ndim != 2:
    raise ValueError(
        f"kd_loss: expected student and teacher logits float[B, K], got "
        f"{s.shape} and {t.shape}")
  log_p_s = jax.nn.log_softmax(s / temperature, axis=-1)
  log_p_t = jax.nn.log_softmax(t / temperature, axis=-1)
  kl = jnp.sum(jnp.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
  return temperature ** 2 * jnp.mean(kl)
