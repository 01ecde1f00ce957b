"""Matplotlib figures for run reports (Agg backend; PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position


def _save(fig, path: Path) -> Path:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def loss_curves(lines: Sequence[dict], path: Path, *, keys: Sequence[str] | None = None) -> Path:
  """Train metrics (and eval ones on the same axes, dashed) against step."""
  train = [l for l in lines if l.get("split") == "train"]
  evals = [l for l in lines if l.get("split") == "eval"]
  keys = list(keys or [k for k in (train[0] if train else {}) if k not in ("step", "split")])
  fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3))
  axes = np.atleast_1d(axes)
  for ax, key in zip(axes, keys):
    ax.plot([l["step"] for l in train], [l[key] for l in train], label=f"train {key}")
    ev = [l for l in evals if key in l]
    if ev:
      ax.plot([l["step"] for l in ev], [l[key] for l in ev], "--o", label=f"eval {key}")
    ax.set_xlabel("step")
    ax.set_title(key)
    ax.legend(fontsize=8)
  return _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
  """Counts with row-normalised colour (rows = true class)."""
  cm = np.asarray(cm)
  norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
  k = len(class_names)
  fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 0.8 + 0.7 * k))
  ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
  for i in range(k):
    for j in range(k):
      ax.text(j, i, str(cm[i, j]), ha="center", va="center",
              color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
  ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=7)
  ax.set_yticks(range(k), class_names, fontsize=7)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  return _save(fig, path)


def image_grid(images: np.ndarray, titles: Sequence[str], path: Path, *, cols: int = 8,
               mistakes: Sequence[bool] | None = None) -> Path:
  """A grid of images (uint8 or float in [-1, 1]; [N, H, W, C]) with titles;
  cells where ``mistakes[i]`` is true get a red frame and a red title (wrong
  predictions)."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = np.clip((images + 1.0) * 127.5, 0, 255).astype(np.uint8)
  n = len(images)
  if n == 0:
    raise ValueError(f"{path}: no images to draw")
  rows = int(np.ceil(n / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for i, (ax, img, title) in enumerate(zip(axes.ravel(), images, titles)):
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
    wrong = mistakes is not None and bool(mistakes[i])
    ax.set_title(title, fontsize=6, color="red" if wrong else "black")
    if wrong:
      ax.axis("on")
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_edgecolor("red")
        spine.set_linewidth(2.5)
  if mistakes is not None:
    fig.suptitle(f"{int(np.sum(mistakes[:n]))} of {n} wrong (red)", fontsize=8)
  return _save(fig, path)


def line_plot(x, y, path: Path, *, xlabel: str, ylabel: str, title: str = "") -> Path:
  """One curve ``y`` against ``x`` (e.g. a schedule)."""
  fig, ax = plt.subplots(figsize=(4, 2.6))
  ax.plot(np.asarray(x), np.asarray(y))
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title, fontsize=9)
  return _save(fig, path)


def pr_curve(precision: np.ndarray, recall: np.ndarray, path: Path, *, label: str = "") -> Path:
  """A precision-recall curve (step-wise, as average precision sums it)."""
  fig, ax = plt.subplots(figsize=(3.6, 3.2))
  ax.step(recall, precision, where="post", label=label)
  ax.set_xlabel("recall")
  ax.set_ylabel("precision")
  ax.set_xlim(0, 1.01)
  ax.set_ylim(0, 1.01)
  if label:
    ax.legend(fontsize=8)
  return _save(fig, path)


def heatmap_overlays(images: np.ndarray, heatmaps: np.ndarray, path: Path, *,
                     masks: np.ndarray | None = None, titles: Sequence[str] | None = None,
                     per_row: int = 1) -> Path:
  """Cells of image / ground-truth mask (when given) / heat map over the image,
  ``per_row`` cells side by side.

  Args:
    images: [N, H, W, C] uint8 or float in [-1, 1].
    heatmaps: [N, h, w] in [0, 1] (any resolution; drawn stretched over the image).
    masks: optional [N, H, W] in {0, 1}.
    titles: optional per-cell titles (e.g. "kos12/Part3 score 0.97").
    per_row: cells per figure row (tall images such as KolektorSDD's read
      better several to a row).
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = np.clip((images + 1.0) * 127.5, 0, 255).astype(np.uint8)
  n = len(images)
  if n == 0:
    raise ValueError(f"{path}: no images to draw")
  per = 3 if masks is not None else 2
  per_row = max(1, min(per_row, n))
  rows = -(-n // per_row)
  h0, w0 = images.shape[1:3]
  panel_w = 2.2 if per_row == 1 else max(0.9, min(2.2, 2.4 * w0 / h0))
  fig, axes = plt.subplots(rows, per * per_row, figsize=(panel_w * per * per_row, 2.4 * rows),
                           squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for i in range(n):
    r, c0 = divmod(i, per_row)
    cell = axes[r, c0 * per:(c0 + 1) * per]
    img = images[i][..., 0] if images[i].shape[-1] == 1 else images[i]
    h, w = img.shape[:2]
    cell[0].imshow(img, cmap="gray")
    cell[0].set_title(titles[i] if titles else "image", fontsize=7)
    if masks is not None:
      cell[1].imshow(masks[i], cmap="gray", vmin=0, vmax=1)
      cell[1].set_title("ground truth", fontsize=7)
    cell[-1].imshow(img, cmap="gray")
    heat = cell[-1].imshow(heatmaps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1,
                           extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    cell[-1].set_title("heat map", fontsize=7)
  cbar = fig.colorbar(heat, ax=axes.ravel().tolist(), shrink=0.6, fraction=0.02, pad=0.01)
  cbar.set_label("heat (LNet output, 0..1)", fontsize=7)
  cbar.ax.tick_params(labelsize=6)
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110, bbox_inches="tight")  # (tight_layout cannot place a colour bar)
  plt.close(fig)
  return path
