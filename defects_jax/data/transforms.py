"""Numpy record transforms for grain pipelines (dict in, dict out).

Each transform touches ``image`` (uint8 or float [H, W, C]) and, where it
changes geometry, ``mask`` ([H, W]) the same way; other keys pass through.
Random transforms are ``grain.transforms.RandomMap`` classes and draw only from
the ``numpy.random.Generator`` grain hands them (seeded per record from the
pipeline seed), never from global state, so a pipeline is deterministic per
seed and resumable.
"""

from __future__ import annotations

from typing import Any, Sequence

import grain
import numpy as np
from PIL import Image

Record = dict[str, Any]


def _hw(size) -> tuple[int, int]:
  return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _resize_channels(arr: np.ndarray, hw, resample) -> np.ndarray:
  """PIL resize of [H, W, C] (uint8 or float32), channel by channel."""
  h, w = hw
  mode = "F" if arr.dtype != np.uint8 else "L"
  src = arr.astype(np.float32) if mode == "F" else arr
  out = [np.asarray(Image.fromarray(src[..., c], mode=mode).resize((w, h), resample))
         for c in range(arr.shape[-1])]
  return np.stack(out, -1).astype(arr.dtype)


class Resize(grain.transforms.Map):
  """Resizes the image (bilinear, or as given) and the mask (nearest) to ``size``.

  Args:
    size: int or (H, W).
    interpolation: ``"bilinear"``, ``"bicubic"``, ``"lanczos"`` or ``"nearest"``.
  """

  _RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS, "nearest": Image.NEAREST}

  def __init__(self, size, interpolation: str = "bilinear"):
    if interpolation not in self._RESAMPLE:
      raise ValueError(f"interpolation must be one of {list(self._RESAMPLE)}, "
                       f"got {interpolation!r}")
    self.size, self.resample = _hw(size), self._RESAMPLE[interpolation]

  def map(self, record: Record) -> Record:
    out = dict(record)
    out["image"] = _resize_channels(record["image"], self.size, self.resample)
    if "mask" in record:
      out["mask"] = _resize_channels(record["mask"][..., None], self.size, Image.NEAREST)[..., 0]
    return out


def _crop(record: Record, y: int, x: int, h: int, w: int) -> Record:
  out = dict(record)
  out["image"] = np.ascontiguousarray(record["image"][y:y + h, x:x + w])
  if "mask" in record:
    out["mask"] = np.ascontiguousarray(record["mask"][y:y + h, x:x + w])
  return out


def _check_fits(record: Record, h: int, w: int, name: str):
  ih, iw = record["image"].shape[:2]
  if ih < h or iw < w:
    raise ValueError(f"{name}: crop {h}x{w} larger than image {ih}x{iw} "
                     f"(record {record.get('id', '?')})")


class CenterCrop(grain.transforms.Map):
  """Crops the central ``size`` region of image and mask."""

  def __init__(self, size):
    self.size = _hw(size)

  def map(self, record: Record) -> Record:
    h, w = self.size
    _check_fits(record, h, w, "CenterCrop")
    ih, iw = record["image"].shape[:2]
    return _crop(record, (ih - h) // 2, (iw - w) // 2, h, w)


class RandomCrop(grain.transforms.RandomMap):
  """Crops a uniformly random ``size`` region of image and mask."""

  def __init__(self, size):
    self.size = _hw(size)

  def random_map(self, record: Record, rng: np.random.Generator) -> Record:
    h, w = self.size
    _check_fits(record, h, w, "RandomCrop")
    ih, iw = record["image"].shape[:2]
    return _crop(record, int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1)),
                 h, w)


class RandomFlip(grain.transforms.RandomMap):
  """Flips image and mask left-right and/or up-down, each with probability 1/2."""

  def __init__(self, horizontal: bool = True, vertical: bool = False):
    self.horizontal, self.vertical = horizontal, vertical

  def random_map(self, record: Record, rng: np.random.Generator) -> Record:
    out = dict(record)
    for axis, enabled in ((1, self.horizontal), (0, self.vertical)):
      if enabled and rng.random() < 0.5:
        out["image"] = np.flip(out["image"], axis)
        if "mask" in out:
          out["mask"] = np.flip(out["mask"], axis)
    out["image"] = np.ascontiguousarray(out["image"])
    if "mask" in out:
      out["mask"] = np.ascontiguousarray(out["mask"])
    return out


class RandomRot90(grain.transforms.RandomMap):
  """Rotates image and mask by k * 90 degrees, k uniform in ``k_choices``.

  A quarter turn of a non-square image changes its shape and would break
  batching, so it is an error; pass ``k_choices=(0, 2)`` for such images.
  """

  def __init__(self, k_choices: Sequence[int] = (0, 1, 2, 3)):
    self.k_choices = tuple(int(k) % 4 for k in k_choices)

  def random_map(self, record: Record, rng: np.random.Generator) -> Record:
    k = self.k_choices[int(rng.integers(0, len(self.k_choices)))]
    h, w = record["image"].shape[:2]
    if k % 2 and h != w:
      raise ValueError(f"RandomRot90: a quarter turn of a {h}x{w} image changes its shape; "
                       f"use k_choices=(0, 2) (record {record.get('id', '?')})")
    out = dict(record)
    out["image"] = np.ascontiguousarray(np.rot90(record["image"], k, axes=(0, 1)))
    if "mask" in record:
      out["mask"] = np.ascontiguousarray(np.rot90(record["mask"], k, axes=(0, 1)))
    return out


class ToFloat(grain.transforms.Map):
  """uint8 image -> float32: ``x / 127.5 - 1`` in [-1, 1] (GAN inputs, ``mean``
  and ``std`` None), or ``(x / 255 - mean) / std`` per channel."""

  def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
    if (mean is None) != (std is None):
      raise ValueError("give both mean and std, or neither")
    self.mean = None if mean is None else np.asarray(mean, np.float32)
    self.std = None if std is None else np.asarray(std, np.float32)

  def map(self, record: Record) -> Record:
    img = record["image"]
    if img.dtype != np.uint8:
      raise ValueError(f"ToFloat expects a uint8 image, got {img.dtype} "
                       f"(record {record.get('id', '?')})")
    x = img.astype(np.float32)
    out = dict(record)
    out["image"] = (x / 127.5 - 1.0) if self.mean is None else (x / 255.0 - self.mean) / self.std
    return out


class ToRGB(grain.transforms.Map):
  """Grayscale [H, W, 1] -> [H, W, 3] by repetition; RGB passes through."""

  def map(self, record: Record) -> Record:
    img = record["image"]
    if img.shape[-1] == 3:
      return record
    if img.shape[-1] != 1:
      raise ValueError(f"ToRGB: expected 1 or 3 channels, got {img.shape}")
    return {**record, "image": np.repeat(img, 3, axis=-1)}


class ToGrayscale(grain.transforms.Map):
  """RGB [H, W, 3] -> [H, W, 1] with ITU-R 601 luma weights (as PIL's ``L``);
  grayscale passes through. uint8 stays uint8 (rounded)."""

  _WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)

  def map(self, record: Record) -> Record:
    img = record["image"]
    if img.shape[-1] == 1:
      return record
    if img.shape[-1] != 3:
      raise ValueError(f"ToGrayscale: expected 1 or 3 channels, got {img.shape}")
    y = img.astype(np.float32) @ self._WEIGHTS
    y = np.clip(np.rint(y), 0, 255).astype(np.uint8) if img.dtype == np.uint8 else y
    return {**record, "image": y[..., None]}


class SelectKeys(grain.transforms.Map):
  """Keeps only ``keys`` (e.g. drop string ids before sending batches to a device)."""

  def __init__(self, keys: Sequence[str]):
    self.keys = tuple(keys)

  def map(self, record: Record) -> Record:
    missing = [k for k in self.keys if k not in record]
    if missing:
      raise KeyError(f"SelectKeys: record {record.get('id', '?')} has no {missing}")
    return {k: record[k] for k in self.keys}


class _Each(grain.transforms.Map):
  """``transform`` applied to each of the sub-records ``keys`` (a Map)."""

  def __init__(self, transform, keys: Sequence[str]):
    self.transform, self.keys = transform, tuple(keys)

  def map(self, record: Record) -> Record:
    return {**record, **{k: self.transform.map(record[k]) for k in self.keys}}


class _EachRandom(grain.transforms.RandomMap):
  """``transform`` applied to each of the sub-records ``keys``, in order,
  drawing from the one record rng (a RandomMap)."""

  def __init__(self, transform, keys: Sequence[str]):
    self.transform, self.keys = transform, tuple(keys)

  def random_map(self, record: Record, rng: np.random.Generator) -> Record:
    return {**record, **{k: self.transform.random_map(record[k], rng) for k in self.keys}}


def each(transform, keys: Sequence[str] = ("positive", "negative")):
  """Applies a record transform to every sub-record ``record[k]`` of a nested
  record (e.g. the two images of a :class:`~defects_jax.data.PairSource`
  item); random transforms draw from the record's rng in ``keys`` order."""
  if isinstance(transform, grain.transforms.RandomMap):
    return _EachRandom(transform, keys)
  if isinstance(transform, grain.transforms.Map):
    return _Each(transform, keys)
  raise TypeError(f"each() takes a grain Map or RandomMap, got {transform!r}")


class StackPair(grain.transforms.Map):
  """``{"positive": rec, "negative": rec}`` -> ``image`` [2, H, W, C], ``mask``
  [2, H, W] (zeros for a record without one), ``label`` int32 [1, 0]."""

  def map(self, record: Record) -> Record:
    p, n = record["positive"], record["negative"]
    if p["image"].shape != n["image"].shape:
      raise ValueError(f"StackPair: images {p.get('id', '?')} {p['image'].shape} and "
                       f"{n.get('id', '?')} {n['image'].shape} differ in shape; resize first")
    mask = lambda r: r.get("mask", np.zeros(r["image"].shape[:2], np.uint8))
    return {"image": np.stack([p["image"], n["image"]]),
            "mask": np.stack([mask(p), mask(n)]), "label": np.array([1, 0], np.int32)}


class StackKeys(grain.transforms.Map):
  """``{k: rec for k in keys}`` -> ``image`` [len(keys), H, W, C] and
  ``label`` int32 [len(keys)], the sub-records' images stacked in ``keys``
  order (e.g. one image per class from a
  :class:`~defects_jax.data.PerClassSource`)."""

  def __init__(self, keys: Sequence[str]):
    self.keys = tuple(keys)

  def map(self, record: Record) -> Record:
    recs = [record[k] for k in self.keys]
    shapes = {r["image"].shape for r in recs}
    if len(shapes) != 1:
      raise ValueError(f"StackKeys: images {[r.get('id', '?') for r in recs]} differ in shape "
                       f"{sorted(shapes)}; resize first")
    return {"image": np.stack([r["image"] for r in recs]),
            "label": np.asarray([r["label"] for r in recs], np.int32)}
