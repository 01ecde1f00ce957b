"""SYNTHETIC steel-like defects: the embedded default dataset (no download).

A procedural generator of grayscale images of rolled-steel texture with one of
six defect kinds named after the NEU-CLS classes (crazing, inclusion, patches,
pitted surface, rolled-in scale, scratches), each with its pixel mask. It is a
stand-in so that every pipeline, test and quickstart runs with no data: it is
not NEU-CLS, and results on it say nothing about the papers' numbers. Class
names, ids and reprs all carry the word "synthetic".

Each image is a pure function of ``(seed, index)`` (its own
``numpy.random.Generator`` seeded with both), so the source is random-access,
deterministic, thread-safe and picklable. Rendering is vectorised numpy: a
64x64 image takes well under a millisecond on one core (see
``bench/data_bench.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

SYNTHETIC_CLASSES = ("synthetic-crazing", "synthetic-inclusion", "synthetic-patches",
                     "synthetic-pitted_surface", "synthetic-rolled-in_scale",
                     "synthetic-scratches")


@functools.lru_cache(maxsize=32)
def _upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
  """[n_out, n_in] linear-interpolation matrix (bilinear upsampling by matmul)."""
  pos = np.linspace(0, n_in - 1, n_out)
  lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
  frac = pos - lo
  m = np.zeros((n_out, n_in), np.float32)
  m[np.arange(n_out), lo] = 1 - frac
  m[np.arange(n_out), lo + 1] = frac
  return m


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  return yy, xx


def _smooth_noise(rng, h, w, cells) -> np.ndarray:
  """Low-frequency noise in about [-1, 1]: a random coarse grid, bilinearly upsampled."""
  gh, gw = max(2, cells), max(2, round(cells * w / h))
  coarse = rng.standard_normal((gh, gw)).astype(np.float32)
  return _upsample_matrix(h, gh) @ coarse @ _upsample_matrix(w, gw).T


def _background(rng, h, w) -> np.ndarray:
  """Rolled-steel texture: a grey level, soft blotches, rolling streaks, grain."""
  level = rng.uniform(95, 165)
  img = level + 10 * _smooth_noise(rng, h, w, 4)
  img += 4 * rng.standard_normal((h, 1)).astype(np.float32)  # horizontal rolling streaks
  img += rng.uniform(3, 7) * rng.standard_normal((h, w)).astype(np.float32)
  return img


def _segments_to_pixels(p0, p1, h, w, width=1):
  """Rasterises segments p0[i] -> p1[i] (rows of (y, x)) into flat pixel indices."""
  length = np.maximum(np.abs(p1 - p0).max(axis=1), 1.0)
  n = int(np.ceil(length.max())) * 2 + 1
  t = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :, None]
  pts = p0[:, None, :] + t * (p1 - p0)[:, None, :]  # [S, n, 2]
  pts = pts.reshape(-1, 2)
  if width > 1:
    offsets = np.array([[dy, dx] for dy in range(width) for dx in range(width)], np.float32)
    pts = (pts[:, None, :] + offsets[None] - (width - 1) / 2).reshape(-1, 2)
  ij = np.rint(pts).astype(np.int64)
  ok = (ij[:, 0] >= 0) & (ij[:, 0] < h) & (ij[:, 1] >= 0) & (ij[:, 1] < w)
  return np.unique(ij[ok, 0] * w + ij[ok, 1])


def _ellipses(rng, h, w, n, a_range, b_range, angle_std, centers=None):
  """Sum of n soft elliptical bumps in [0, ~1] (major axis near horizontal)."""
  yy, xx = _grid(h, w)
  field = np.zeros((h, w), np.float32)
  cy = centers[:, 0] if centers is not None else rng.uniform(0, h, n)
  cx = centers[:, 1] if centers is not None else rng.uniform(0, w, n)
  a = rng.uniform(*a_range, n) * w
  b = rng.uniform(*b_range, n) * h
  th = rng.normal(0, angle_std, n)
  for i in range(n):
    dy, dx = yy - cy[i], xx - cx[i]
    u = dx * np.cos(th[i]) + dy * np.sin(th[i])
    v = -dx * np.sin(th[i]) + dy * np.cos(th[i])
    field = np.maximum(field, np.exp(-((u / a[i]) ** 2 + (v / b[i]) ** 2) * 2.0))
  return field


def _render(kind: int, rng, h, w) -> tuple[np.ndarray, np.ndarray]:
  """Returns (intensity delta float32 [h, w], mask bool [h, w]) for one defect."""
  delta = np.zeros((h, w), np.float32)
  s = min(h, w)
  if kind == 0:  # crazing: a net of short dark jagged cracks
    n_paths, steps = rng.integers(4, 8), 6
    start = rng.uniform(0, 1, (n_paths, 1, 2)) * (h, w)
    angles = rng.uniform(0, 2 * np.pi, (n_paths, 1)) + np.cumsum(
        rng.normal(0, 0.6, (n_paths, steps)), axis=1)
    step = np.stack([np.sin(angles), np.cos(angles)], -1) * (s / 10)
    pts = np.concatenate([start, start + np.cumsum(step, axis=1)], axis=1)
    idx = _segments_to_pixels(pts[:, :-1].reshape(-1, 2), pts[:, 1:].reshape(-1, 2), h, w)
    delta.flat[idx] = -rng.uniform(35, 60)
  elif kind == 1:  # inclusion: a few dark elongated blobs along the rolling direction
    field = _ellipses(rng, h, w, rng.integers(1, 4), (0.08, 0.22), (0.02, 0.05), 0.15)
    delta = -rng.uniform(50, 80) * field
  elif kind == 2:  # patches: large soft irregular dark regions
    field = np.clip(_smooth_noise(rng, h, w, 3) + rng.uniform(0.3, 0.8), 0, None)
    field = np.clip(field - 0.6, 0, 1.0) / 0.8
    delta = -rng.uniform(45, 70) * np.minimum(field, 1.0)
  elif kind == 3:  # pitted surface: many small dark pits
    n = int(rng.integers(25, 60))
    c = rng.uniform(0, 1, (n, 2)) * (h, w)
    offsets = np.array([[dy, dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                        if abs(dy) + abs(dx) <= 1], np.float32)
    pts = (c[:, None, :] + offsets[None] * rng.uniform(0.5, 1.5, (n, 1, 1))).reshape(-1, 2)
    idx = _segments_to_pixels(pts, pts, h, w)
    delta.flat[idx] = -rng.uniform(40, 70)
  elif kind == 4:  # rolled-in scale: clusters of flaky bright/dark horizontal flecks
    n = int(rng.integers(8, 16))
    centre = rng.uniform(0.2, 0.8, 2) * (h, w)
    c = centre + rng.normal(0, 0.22, (n, 2)) * (h, w)
    field = _ellipses(rng, h, w, n, (0.03, 0.07), (0.012, 0.025), 0.1, centers=c)
    sign = np.where(_smooth_noise(rng, h, w, 6) > 0, 1.0, -1.0)
    delta = rng.uniform(45, 70) * field * sign
  else:  # scratches: one to three long thin bright lines
    n = int(rng.integers(1, 4))
    y0 = rng.uniform(0, 1, n) * h
    x0 = rng.uniform(0, 0.3, n) * w
    ang = rng.normal(0, 0.5, n) + rng.choice([0, np.pi / 2], n, p=[0.6, 0.4])
    length = rng.uniform(0.6, 1.2, n) * s
    p0 = np.stack([y0, x0], -1)
    p1 = p0 + np.stack([np.sin(ang), np.cos(ang)], -1) * length[:, None]
    idx = _segments_to_pixels(p0, p1, h, w, width=2 if s >= 96 else 1)
    delta.flat[idx] = rng.uniform(45, 75)
  return delta, np.abs(delta) > 12.0


class SyntheticDefects:
  """SYNTHETIC steel-like defect images, the default data source.

  Two variants:

  * ``"classes"``: six classes named after NEU-CLS (``synthetic-crazing`` ...
    ``synthetic-scratches``), balanced (label = index mod 6); every image has
    one defect of its class. For the classification papers.
  * ``"defect_mask"``: defect-free (label 0) vs defective (label 1) images; a
    defective image carries one defect of a random kind. For the weakly
    supervised and CycleGAN papers. ``defect_fraction`` sets the share of
    defective images.

  Records: ``image`` uint8 [H, W, 1], ``label`` int32, ``mask`` uint8 [H, W]
  in {0, 1} (the defect's pixels; all zero for defect-free images), ``id``
  ``"synthetic/<index>"``.

  Args:
    num_images: length of the source.
    image_size: int or (H, W), at least 16.
    seed: base seed; image i depends only on (seed, i).
    variant: ``"classes"`` or ``"defect_mask"``.
    defect_fraction: share of defective images for ``"defect_mask"``.
    defect_kinds: for ``"defect_mask"``, the kinds a defective image draws
      from (indices 0-5 or names of ``SYNTHETIC_CLASSES``, with or without the
      ``synthetic-`` prefix); default all six. Localisation experiments use the
      compact kinds (crazing, inclusion, rolled-in scale, scratches): pitted
      surface and patches cover most of the image, so there is nothing to
      localise.
  """

  is_synthetic = True

  def __init__(self, num_images: int = 1200, *, image_size: int | tuple[int, int] = 64,
               seed: int = 0, variant: str = "classes", defect_fraction: float = 0.5,
               defect_kinds=None):
    if variant not in ("classes", "defect_mask"):
      raise ValueError(f'variant must be "classes" or "defect_mask", got {variant!r}')
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if min(h, w) < 16 or num_images < 1:
      raise ValueError(f"need num_images >= 1 and image_size >= 16, got {num_images}, {(h, w)}")
    if not 0.0 <= defect_fraction <= 1.0:
      raise ValueError(f"defect_fraction must be in [0, 1], got {defect_fraction}")
    self.defect_kinds = self._kinds(defect_kinds)
    if variant == "classes" and defect_kinds is not None:
      raise ValueError('defect_kinds applies to variant="defect_mask" only')
    self.num_images, self.image_size = int(num_images), (int(h), int(w))
    self.seed, self.variant, self.defect_fraction = int(seed), variant, float(defect_fraction)
    self.class_names = (SYNTHETIC_CLASSES if variant == "classes"
                        else ("synthetic-defect-free", "synthetic-defective"))
    self.num_classes = len(self.class_names)

  @staticmethod
  def _kinds(kinds) -> tuple[int, ...]:
    if kinds is None:
      return tuple(range(len(SYNTHETIC_CLASSES)))
    out = []
    for k in kinds:
      if isinstance(k, str):
        name = k if k.startswith("synthetic-") else f"synthetic-{k}"
        if name not in SYNTHETIC_CLASSES:
          raise ValueError(f"unknown defect kind {k!r}; expected one of {SYNTHETIC_CLASSES}")
        out.append(SYNTHETIC_CLASSES.index(name))
      elif isinstance(k, (int, np.integer)) and 0 <= int(k) < len(SYNTHETIC_CLASSES):
        out.append(int(k))
      else:
        raise ValueError(f"unknown defect kind {k!r}; expected 0-5 or a name in "
                         f"{SYNTHETIC_CLASSES}")
    if not out:
      raise ValueError("defect_kinds is empty")
    return tuple(out)

  def __len__(self) -> int:
    return self.num_images

  def _label(self, index: int) -> int:
    if self.variant == "classes":
      return index % 6
    # A fixed, seed-dependent share of defective images, independent of rendering.
    return int(np.random.default_rng([self.seed, index, 1]).random() < self.defect_fraction)

  @property
  def labels(self) -> np.ndarray:
    return np.array([self._label(i) for i in range(self.num_images)], np.int32)

  @property
  def ids(self) -> list[str]:
    return [f"synthetic/{i}" for i in range(self.num_images)]

  @property
  def groups(self) -> list[str]:
    """Each image is its own group (for grouped fold protocols such as
    :func:`~defects_jax.data.kolektor_folds`): synthetic images share nothing."""
    return self.ids

  def index_of(self, ids) -> list[int]:
    """Source indices of ids ``"synthetic/<i>"``."""
    from defects_jax.data.sources import DatasetError  # pylint: disable=g-import-not-at-top
    out = []
    for i in ids:
      head, _, num = str(i).partition("/")
      if head != "synthetic" or not num.isdigit() or int(num) >= self.num_images:
        raise DatasetError(f"{i!r}: ids not in {self!r} (expected 'synthetic/<0..."
                           f"{self.num_images - 1}>')")
      out.append(int(num))
    return out

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < self.num_images:
      raise IndexError(f"index {index} out of range for {self!r}")
    rng = np.random.default_rng([self.seed, index])
    h, w = self.image_size
    img = _background(rng, h, w)
    label = self._label(index)
    if self.variant == "classes":
      kind = label
    else:
      kinds = self.defect_kinds
      kind = kinds[int(rng.integers(0, len(kinds)))] if label else -1
    if kind >= 0:
      delta, mask = _render(kind, rng, h, w)
      img = img + delta
    else:
      mask = np.zeros((h, w), bool)
    image = np.clip(img, 0, 255).astype(np.uint8)[..., None]
    return {"image": image, "label": np.int32(label), "mask": mask.astype(np.uint8),
            "id": f"synthetic/{index}"}

  def __repr__(self) -> str:
    return (f"SyntheticDefects(SYNTHETIC, variant={self.variant!r}, n={self.num_images}, "
            f"size={self.image_size}, seed={self.seed}"
            + (f", defect_kinds={self.defect_kinds}" if self.defect_kinds != tuple(range(6))
               else "") + ")")
