"""RKD-SARSN preprocessing and augmentation (rkd-sarsn section 3.1), in numpy.

Preprocessing (section 3.1.1): a bilateral filter removes scanning noise while
keeping edges, a grey-histogram contrast stretch enhances the image, and Otsu's
threshold segments it. Augmentation (section 3.1.2): *mosaicing* splices four
same-class images into a 2x2 grid, median-blurs the seams and resizes back;
*fusion* blends two same-class images.

Library use: the bilateral filter is ``skimage.restoration.denoise_bilateral``,
the contrast stretch ``skimage.exposure.rescale_intensity`` between grey-level
percentiles of the histogram, Otsu ``skimage.filters.threshold_otsu``, the seam
blur ``scipy.ndimage.median_filter`` and the resize PIL's bilinear resize.
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np
import scipy.ndimage
from PIL import Image
from skimage import exposure
from skimage import filters
from skimage import restoration

Record = dict[str, Any]


def _as_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _check_uint8(image: np.ndarray, name: str):
  if image.dtype != np.uint8 or image.ndim != 3:
    raise ValueError(f"{name} expects a uint8 [H, W, C] image, got {image.dtype} "
                     f"{image.shape}")


# --------------------------------------------------------------------------
# Preprocessing (section 3.1.1)
# --------------------------------------------------------------------------


def bilateral_filter(image: np.ndarray, *, sigma_color: float = 0.1,
                     sigma_spatial: float = 3.0) -> np.ndarray:
  """Edge-preserving bilateral filter (``skimage.restoration.denoise_bilateral``).

  Args:
    image: uint8 [H, W, C].
    sigma_color: range sigma on the [0, 1] intensity scale.
    sigma_spatial: spatial sigma in pixels.

  Returns:
    uint8 [H, W, C].
  """
  _check_uint8(image, "bilateral_filter")
  chans = [restoration.denoise_bilateral(image[..., c], sigma_color=sigma_color,
                                         sigma_spatial=sigma_spatial, channel_axis=None)
           for c in range(image.shape[-1])]
  return _as_uint8(np.stack(chans, -1) * 255.0)


def contrast_stretch(image: np.ndarray, *, low_percentile: float = 1.0,
                     high_percentile: float = 99.0) -> np.ndarray:
  """Linear grey-level stretch between two histogram percentiles to [0, 255]
  (``skimage.exposure.rescale_intensity``). A flat image is returned unchanged.

  Args:
    image: uint8 [H, W, C].
    low_percentile, high_percentile: the grey levels mapped to 0 and 255.

  Returns:
    uint8 [H, W, C].
  """
  _check_uint8(image, "contrast_stretch")
  lo, hi = np.percentile(image, (low_percentile, high_percentile))
  if hi <= lo:
    return image.copy()
  return _as_uint8(exposure.rescale_intensity(image.astype(np.float64), in_range=(lo, hi),
                                              out_range=(0.0, 255.0)))


def otsu_mask(image: np.ndarray) -> np.ndarray:
  """Otsu segmentation: uint8 [H, W] with 1 where the (channel-mean) grey level
  exceeds ``skimage.filters.threshold_otsu``; all zero for a flat image."""
  _check_uint8(image, "otsu_mask")
  gray = image.mean(axis=-1)
  if gray.min() == gray.max():
    return np.zeros(gray.shape, np.uint8)
  return (gray > filters.threshold_otsu(gray)).astype(np.uint8)


class SARSNPreprocess(grain.transforms.Map):
  """Bilateral filter then contrast stretch of ``image``; adds ``otsu_mask``
  (uint8 [H, W]) when ``with_otsu``. The rkd-sarsn preprocessing chain."""

  def __init__(self, *, sigma_color: float = 0.1, sigma_spatial: float = 3.0,
               low_percentile: float = 1.0, high_percentile: float = 99.0,
               with_otsu: bool = False):
    self.sigma_color, self.sigma_spatial = sigma_color, sigma_spatial
    self.low_percentile, self.high_percentile = low_percentile, high_percentile
    self.with_otsu = with_otsu

  def map(self, record: Record) -> Record:
    img = bilateral_filter(record["image"], sigma_color=self.sigma_color,
                           sigma_spatial=self.sigma_spatial)
    img = contrast_stretch(img, low_percentile=self.low_percentile,
                           high_percentile=self.high_percentile)
    out = {**record, "image": img}
    if self.with_otsu:
      out["otsu_mask"] = otsu_mask(img)
    return out


# --------------------------------------------------------------------------
# Mosaicing and fusion (section 3.1.2)
# --------------------------------------------------------------------------


def mosaic(images: np.ndarray, *, seam_width: int = 4, median_size: int = 5) -> np.ndarray:
  """Splices four same-size images 2x2, median-blurs the seams, resizes back.

  rkd-sarsn: "four 64x64 defect samples of the same type" -> 128x128 -> "median
  fuzzy" on the splicing gaps -> readjusted to 64x64.

  Args:
    images: uint8 [4, H, W, C].
    seam_width: half-width in pixels of the band around each seam that is blurred.
    median_size: median filter window (pixels).

  Returns:
    uint8 [H, W, C].
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[0] != 4 or images.dtype != np.uint8:
    raise ValueError(f"mosaic expects uint8 [4, H, W, C], got {images.dtype} {images.shape}")
  _, h, w, c = images.shape
  grid = np.concatenate([np.concatenate(images[:2], axis=1),
                         np.concatenate(images[2:], axis=1)], axis=0)  # [2H, 2W, C]
  blurred = scipy.ndimage.median_filter(grid, size=(median_size, median_size, 1))
  band = np.zeros(grid.shape[:2], bool)
  band[h - seam_width:h + seam_width, :] = True
  band[:, w - seam_width:w + seam_width] = True
  grid = np.where(band[..., None], blurred, grid)
  out = [np.asarray(Image.fromarray(grid[..., k]).resize((w, h), Image.BILINEAR))
         for k in range(c)]
  return np.stack(out, -1)


def fuse(a: np.ndarray, b: np.ndarray, *, weight: float = 0.5) -> np.ndarray:
  """Fuses two same-class images by weighted blending: ``weight*a + (1-weight)*b``.

  rkd-sarsn (Figure 9) shows the defects of both samples in the new one
  ("the number of defects ... increased, but the types remain unchanged"); the
  paper does not give the operator, and pixel-wise weighted blending is the
  reading used here.

  Args:
    a, b: uint8 [H, W, C] of the same shape.
    weight: share of ``a`` in [0, 1].

  Returns:
    uint8 [H, W, C].
  """
  if a.shape != b.shape:
    raise ValueError(f"fuse needs images of one shape, got {a.shape} and {b.shape}")
  if not 0.0 <= weight <= 1.0:
    raise ValueError(f"weight must be in [0, 1], got {weight}")
  return _as_uint8(weight * a.astype(np.float32) + (1.0 - weight) * b.astype(np.float32))


class SameClassAugmented:
  """A random-access source of mosaics or fusions of same-class images.

  Item i draws (from ``numpy.random.default_rng([seed, i])``) a class, uniform
  over the classes present, then 4 (mosaic) or 2 (fusion) distinct images of
  that class from ``source``, and returns ``{"image", "label", "id"}`` with id
  ``"mosaic/<i>:<id1>+<id2>+..."``. Deterministic, picklable.

  Args:
    source: a source with ``labels`` and ``ids`` and same-size images.
    num_samples: length.
    kind: ``"mosaic"`` or ``"fusion"``.
    seed: base seed.
    fusion_weight: ``(low, high)`` range of the blend weight for fusion.
  """

  def __init__(self, source, num_samples: int, *, kind: str = "mosaic", seed: int = 0,
               fusion_weight: tuple[float, float] = (0.4, 0.6)):
    if kind not in ("mosaic", "fusion"):
      raise ValueError(f'kind must be "mosaic" or "fusion", got {kind!r}')
    self.source, self.num_samples, self.kind, self.seed = source, int(num_samples), kind, seed
    self.fusion_weight = fusion_weight
    labels = np.asarray(source.labels)
    need = 4 if kind == "mosaic" else 2
    self._by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    short = {c: len(v) for c, v in self._by_class.items() if len(v) < need}
    if short:
      raise ValueError(f"{kind} needs {need} images per class; classes {short} have fewer")
    self._classes = sorted(self._by_class)
    for attr in ("class_names", "num_classes", "is_synthetic"):
      if hasattr(source, attr):
        setattr(self, attr, getattr(source, attr))

  def __len__(self) -> int:
    return self.num_samples

  def __getitem__(self, index: int) -> Record:
    rng = np.random.default_rng([self.seed, int(index)])
    c = self._classes[int(rng.integers(len(self._classes)))]
    picks = rng.choice(self._by_class[c], 4 if self.kind == "mosaic" else 2, replace=False)
    recs = [self.source[int(i)] for i in picks]
    if self.kind == "mosaic":
      image = mosaic(np.stack([r["image"] for r in recs]))
    else:
      image = fuse(recs[0]["image"], recs[1]["image"],
                   weight=float(rng.uniform(*self.fusion_weight)))
    return {"image": image, "label": np.int32(c),
            "id": f"{self.kind}/{index}:" + "+".join(str(r["id"]) for r in recs)}
