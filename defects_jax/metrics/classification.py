"""Classification metrics (numpy): accuracy, confusion matrix, per-class
precision / recall / F1 with macro and weighted averages, and the edcgan
per-class "AP" (which is *not* average precision)."""

from __future__ import annotations

import numpy as np


def _as_labels(labels, predictions):
  y = np.asarray(labels).astype(np.int64).ravel()
  p = np.asarray(predictions).astype(np.int64).ravel()
  if y.shape != p.shape:
    raise ValueError(f"labels and predictions differ in length: {y.shape} vs {p.shape}")
  return y, p


def accuracy(labels, predictions) -> float:
  """Fraction of ``predictions`` equal to ``labels`` (int [N] each)."""
  y, p = _as_labels(labels, predictions)
  if y.size == 0:
    raise ValueError("accuracy of an empty set")
  return float(np.mean(y == p))


def confusion_matrix(labels, predictions, num_classes: int | None = None) -> np.ndarray:
  """int64 [K, K] counts, rows = true class, columns = predicted (sklearn's layout).

  Args:
    labels, predictions: int [N] class ids in [0, K).
    num_classes: K (default: 1 + the largest id seen).
  """
  y, p = _as_labels(labels, predictions)
  k = int(num_classes if num_classes is not None else max(y.max(initial=-1),
                                                          p.max(initial=-1)) + 1)
  if y.size and (min(y.min(), p.min()) < 0 or max(y.max(), p.max()) >= k):
    raise ValueError(f"class ids must be in [0, {k})")
  return np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def _safe_ratio(num, den):
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def precision_recall_f1(labels, predictions, num_classes: int | None = None) -> dict:
  """Per-class precision, recall, F1 and support, with macro and weighted means.

  A ratio with a zero denominator is 0 (sklearn's ``zero_division=0``).

  Returns:
    ``{"precision": float64[K], "recall": [K], "f1": [K], "support": int64[K],
    "macro": {"precision", "recall", "f1"}, "weighted": {...}}`` where weighted
    means use the support (true counts) as weights.
  """
  cm = confusion_matrix(labels, predictions, num_classes)
  tp = np.diag(cm).astype(np.float64)
  support = cm.sum(axis=1)
  precision = _safe_ratio(tp, cm.sum(axis=0))
  recall = _safe_ratio(tp, support)
  f1 = _safe_ratio(2 * precision * recall, precision + recall)
  weights = support / max(support.sum(), 1)
  out = {"precision": precision, "recall": recall, "f1": f1, "support": support}
  out["macro"] = {k: float(out[k].mean()) for k in ("precision", "recall", "f1")}
  out["weighted"] = {k: float((out[k] * weights).sum()) for k in ("precision", "recall", "f1")}
  return out


def precision_recall_mean(labels, predictions, num_classes: int | None = None) -> np.ndarray:
  """Per-class (precision + recall) / 2: what edcgan eq. 12 calls "AP".

  It is the arithmetic mean of a class's precision and recall, *not* average
  precision (the area under a precision-recall curve, see
  :func:`~defects_jax.metrics.average_precision`); it is named for what it is
  so the two are never confused.

  Returns:
    float64 [K].
  """
  prf = precision_recall_f1(labels, predictions, num_classes)
  return (prf["precision"] + prf["recall"]) / 2.0
