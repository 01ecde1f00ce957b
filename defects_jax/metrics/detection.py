"""Score-based binary metrics (numpy), KolektorSDD / weakly-supervised convention.

All take ``labels`` (1 = defective, 0 = defect-free) and ``scores`` (higher =
more likely defective), treat tied scores as one threshold, and match
scikit-learn's definitions where it has them.
"""

from __future__ import annotations

import numpy as np


def _binary(labels, scores):
  y = np.asarray(labels).ravel()
  s = np.asarray(scores, np.float64).ravel()
  if y.shape != s.shape:
    raise ValueError(f"labels and scores differ in length: {y.shape} vs {s.shape}")
  if not np.all(np.isin(y, (0, 1))):
    raise ValueError("labels must be 0/1")
  if not np.all(np.isfinite(s)):
    raise ValueError("scores must be finite")
  return y.astype(np.int64), s


def _threshold_counts(y, s):
  """Cumulative TP / FP at each distinct score, thresholds descending
  (sklearn's ``_binary_clf_curve``)."""
  order = np.argsort(-s, kind="mergesort")
  s, y = s[order], y[order]
  last_of_tie = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
  tps = np.cumsum(y)[last_of_tie]
  fps = (1 + last_of_tie) - tps
  return tps, fps, s[last_of_tie]


def precision_recall_curve(labels, scores):
  """(precision, recall, thresholds) as ``sklearn.metrics.precision_recall_curve``
  (scikit-learn >= 1.3: every distinct score is a threshold, none dropped after
  full recall): thresholds ascending; the final point (precision 1, recall 0)
  has no threshold."""
  y, s = _binary(labels, scores)
  tps, fps, thresholds = _threshold_counts(y, s)
  if tps[-1] == 0:
    raise ValueError("precision-recall curve needs at least one positive")
  precision = tps / np.maximum(tps + fps, 1)
  recall = tps / tps[-1]
  # Reverse to ascending thresholds and append the (P = 1, R = 0) end point.
  return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(labels, scores) -> float:
  r"""Average precision, :math:`\sum_n (R_n - R_{n-1}) P_n` over thresholds.

  Exactly ``sklearn.metrics.average_precision_score`` (no interpolation; tied
  scores form one threshold). The weakly-supervised paper's AP on KolektorSDD.
  """
  precision, recall, _ = precision_recall_curve(labels, scores)
  return float(-np.sum(np.diff(recall) * precision[:-1]))


def fp_fn_at_best_f1(labels, scores) -> dict:
  """False positives and negatives at the threshold with the highest F1.

  Predicted defective = score >= threshold, over the distinct scores; among
  equal F1 the highest threshold wins.

  Returns:
    ``{"threshold", "f1", "fp", "fn", "tp", "tn"}``.
  """
  y, s = _binary(labels, scores)
  tps, fps, thresholds = _threshold_counts(y, s)
  p = int(y.sum())
  if p == 0:
    raise ValueError("best-F1 threshold needs at least one positive")
  f1 = 2 * tps / (tps + fps + p)
  k = int(np.argmax(f1))  # first = highest threshold among ties
  fp, tp = int(fps[k]), int(tps[k])
  return {"threshold": float(thresholds[k]), "f1": float(f1[k]), "fp": fp, "fn": p - tp,
          "tp": tp, "tn": int(y.size - p - fp)}


def fp_at_full_recall(labels, scores) -> int:
  """False positives at 100% recall: the threshold is the lowest positive score,
  and every negative scoring at or above it counts (ties with it included)."""
  y, s = _binary(labels, scores)
  if not y.any():
    raise ValueError("FP at full recall needs at least one positive")
  threshold = s[y == 1].min()
  return int(np.sum((y == 0) & (s >= threshold)))


def roc_auc(labels, scores) -> float:
  """Area under the ROC curve (``sklearn.metrics.roc_auc_score``): the
  Mann-Whitney statistic with average ranks for ties."""
  y, s = _binary(labels, scores)
  p, n = int(y.sum()), int(y.size - y.sum())
  if p == 0 or n == 0:
    raise ValueError("ROC AUC needs both classes")
  order = np.argsort(s, kind="mergesort")
  ranks = np.empty(y.size, np.float64)
  sorted_s = s[order]
  # Average rank of each tie group (1-based).
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
  ends = np.r_[starts[1:], y.size]
  avg = (starts + ends + 1) / 2.0
  ranks[order] = np.repeat(avg, ends - starts)
  return float((ranks[y == 1].sum() - p * (p + 1) / 2.0) / (p * n))


# --------------------------------------------------------------------------
# Heat maps against pixel masks (weakly-supervised section III.A: each value
# of the heat map predicts whether its ``scale`` x ``scale`` region holds a
# defect)
# --------------------------------------------------------------------------


def region_masks(masks: np.ndarray, hw: tuple[int, int], *, scale: int = 8) -> np.ndarray:
  """uint8[B, h, w]: 1 where the ``scale`` x ``scale`` region of ``masks``
  [B, scale*h, scale*w] (larger masks are cropped) holds a defect pixel."""
  b, (h, w) = masks.shape[0], hw
  m = np.asarray(masks)[:, :scale * h, :scale * w]
  return m.reshape(b, h, scale, w, scale).max(axis=(2, 4)).astype(np.uint8)


def region_ap(heats: np.ndarray, masks: np.ndarray, *, scale: int = 8) -> tuple[float, float]:
  """(AP of heat-map values float[B, h, w] against "their region holds a
  defect pixel", the defective-region rate = the AP of an uninformative map),
  over all images given; (nan, 0) when no region holds a defect."""
  r = region_masks(masks, heats.shape[1:], scale=scale).ravel()
  if r.sum() == 0:
    return float("nan"), 0.0
  return average_precision(r, np.asarray(heats).ravel()), float(r.mean())


def pixel_ap(heats: np.ndarray, masks: np.ndarray, *, scale: int = 8) -> tuple[float, float]:
  """(AP of heat-map pixels against the mask, the positive-pixel rate =
  chance AP): the heat map float[B, h, w] is upsampled x``scale`` (each value
  covers its region) against masks [B, >= scale*h, >= scale*w].

  Thin defects fill a small part of their regions, so even a perfect heat map
  scores low here; :func:`region_ap` is the measure at the map's own
  resolution."""
  up = np.repeat(np.repeat(np.asarray(heats), scale, axis=1), scale, axis=2)
  m = np.asarray(masks)[:, :up.shape[1], :up.shape[2]].ravel()
  if m.sum() == 0:
    return float("nan"), 0.0
  return average_precision(m, up.ravel()), float(m.mean())


def detection_summary(labels, scores) -> dict[str, float]:
  """The weakly-supervised paper's detection columns (Table 5): AP, FP and FN
  at the best-F1 threshold, FP at 100% recall."""
  best = fp_fn_at_best_f1(labels, scores)
  return {"AP": average_precision(labels, scores), "FP@bestF1": best["fp"],
          "FN@bestF1": best["fn"], "FP@100%recall": fp_at_full_recall(labels, scores)}
