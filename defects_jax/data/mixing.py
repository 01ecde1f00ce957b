"""Generated images as a data source, and real/generated training mixes.

The augment-then-classify protocol of edcgan (section 4.3, Tables 2-3) and of
DG2GAN's augmented classification: a generator makes labelled images, they
are held in an :class:`ArraySource`, and a :class:`MixedSource` combines a
real training :class:`~defects_jax.data.Subset` with a class-balanced share
of them. Both are ordinary random-access sources (grain pipelines take them
unchanged) whose records have the same keys as the real ones plus
``generated`` (bool), so a mix never loses track of which image is which.

:func:`generated_counts` turns a protocol row ("20% real images", "8000
generated only") into per-class counts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from defects_jax.data.sources import DatasetError


class ArraySource:
  """In-memory images with labels, e.g. a generator's samples.

  Records: ``image`` (the array's dtype, [H, W, C]), ``label`` int32, ``id``
  ``"<prefix>/<class>/<j>"`` (j counts within the class), ``generated`` bool.

  Attributes:
    images: [N, H, W, C] (uint8 in 0..255, as decoded files, to share the
      real images' transforms).
    labels: int32 [N].
    origin: what made the images (e.g. the generating run folder and cell);
      recorded with every result that uses them.
    class_names, num_classes: as the real source's.
  """

  def __init__(self, images: np.ndarray, labels: Sequence[int], *, class_names: Sequence[str],
               origin: str = "", generated: bool = True, prefix: str = "generated"):
    images, labels = np.asarray(images), np.asarray(labels, np.int32)
    if images.ndim != 4 or len(images) != len(labels):
      raise DatasetError(f"ArraySource({origin or prefix}): need images [N, H, W, C] and N "
                         f"labels, got {images.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
      raise DatasetError(f"ArraySource({origin or prefix}): labels must be in "
                         f"[0, {len(class_names)}), got {labels.min()}..{labels.max()}")
    self.images, self.labels = images, labels
    self.class_names, self.num_classes = tuple(class_names), len(class_names)
    self.origin, self.is_generated = origin, bool(generated)
    rank = np.zeros(len(labels), np.int64)
    for c in range(self.num_classes):
      members = np.flatnonzero(labels == c)
      rank[members] = np.arange(len(members))
    self.ids = [f"{prefix}/{self.class_names[c]}/{j}" for c, j in zip(labels, rank)]
    self._lookup = {i: k for k, i in enumerate(self.ids)}

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, index: int) -> dict:
    return {"image": self.images[index], "label": np.int32(self.labels[index]),
            "id": self.ids[index], "generated": np.bool_(self.is_generated)}

  def index_of(self, ids) -> list[int]:
    missing = [i for i in ids if i not in self._lookup]
    if missing:
      raise DatasetError(f"{len(missing)} ids not in {self!r}, e.g. {missing[:3]}")
    return [self._lookup[i] for i in ids]

  def class_indices(self, c: int) -> np.ndarray:
    """Indices of class ``c``'s images, in order."""
    return np.flatnonzero(self.labels == c)

  def counts(self) -> dict[str, int]:
    per = np.bincount(self.labels, minlength=self.num_classes)
    return {"images": len(self), **{f"{n} images": int(k) for n, k in zip(self.class_names,
                                                                          per)}}

  def __repr__(self) -> str:
    return f"ArraySource({self.origin or 'in memory'}, n={len(self)})"


def generated_counts(real_labels, num_classes: int, *, real_fraction: float,
                     total: int | None = None) -> np.ndarray:
  """Generated images per class for a mix where real images are
  ``real_fraction`` of the training set.

  With 0 < real_fraction <= 1 the mix keeps every real image and has
  ``round(R / real_fraction)`` images in all (R real ones): 1260 real at
  0.75, 0.5, 0.3, 0.2 -> 1680, 2520, 4200, 6300 (edcgan Table 2). With
  real_fraction = 0 the mix is ``total`` generated images only. The generated
  share is spread as evenly as possible over the classes, the first classes
  taking one more when it does not divide (8000 / 6 -> 1334, 1334, 1333 ...).

  Returns:
    int64 [num_classes].

  Raises:
    DatasetError: real_fraction outside [0, 1], or 0 without a total >= 1.
  """
  if not 0.0 <= real_fraction <= 1.0:
    raise DatasetError(f"real_fraction must be in [0, 1], got {real_fraction}")
  num_real = len(np.asarray(real_labels))
  if real_fraction == 0.0:
    if total is None or total < 1:
      raise DatasetError("a mix of generated images only (real_fraction 0) needs total >= 1")
    num_generated = int(total)
  else:
    num_generated = int(round(num_real / real_fraction)) - num_real
  base, extra = divmod(num_generated, num_classes)
  return np.array([base + (c < extra) for c in range(num_classes)], np.int64)


class MixedSource:
  """Real training images plus generated ones: ``real`` (all of it, unless
  ``real_fraction`` 0 drops it) then ``per_class[c]`` generated images of each
  class c (the first ones of that class in ``generated``).

  Records as the sources' (the real ones get ``generated`` False). ``ids``,
  ``labels`` and ``generated`` (bool [N]) describe the mix.

  Args:
    real: the real training images (a Subset or any source with ``ids`` and
      ``labels``); None for a generated-only mix.
    generated: an :class:`ArraySource`.
    per_class: generated images per class (e.g. :func:`generated_counts`).
    exclude_ids: ids that must not be in the mix (the test set): any overlap
      is an error, whatever its origin.

  Raises:
    DatasetError: more generated images of a class asked for than exist, a
      class missing from ``generated``, or an id of ``exclude_ids`` in the mix.
  """

  def __init__(self, real, generated: ArraySource, per_class: Sequence[int], *,
               exclude_ids: Sequence[str] = ()):
    per_class = [int(k) for k in per_class]
    if len(per_class) != generated.num_classes or min(per_class, default=0) < 0:
      raise DatasetError(f"per_class needs {generated.num_classes} counts >= 0, got {per_class}")
    self.real, self.generated_source = real, generated
    self.class_names, self.num_classes = generated.class_names, generated.num_classes
    self.is_synthetic = bool(getattr(real, "is_synthetic", False))
    self._items: list[tuple[int, int]] = []
    if real is not None:
      self._items += [(0, i) for i in range(len(real))]
    short = []
    for c, k in enumerate(per_class):
      have = generated.class_indices(c)
      if k > len(have):
        short.append(f"{self.class_names[c]}: {k} asked, {len(have)} generated")
      self._items += [(1, int(i)) for i in have[:k]]
    if short:
      raise DatasetError(f"not enough generated images in {generated!r} ({'; '.join(short)}); "
                         f"generate more per class")
    real_ids = list(real.ids) if real is not None else []
    real_labels = np.asarray(real.labels, np.int32) if real is not None else np.zeros(0, np.int32)
    self.ids = real_ids + [generated.ids[i] for w, i in self._items if w == 1]
    self.labels = np.concatenate([real_labels, np.asarray(
        [generated.labels[i] for w, i in self._items if w == 1], np.int32)])
    self.generated = np.array([w == 1 for w, _ in self._items], bool)
    if len(set(self.ids)) != len(self.ids):
      raise DatasetError(f"{self!r}: ids are not unique")
    leaked = sorted(set(self.ids) & set(exclude_ids))
    if leaked:
      raise DatasetError(f"{len(leaked)} test images would be in the training mix, e.g. "
                         f"{leaked[:3]}")

  def __len__(self) -> int:
    return len(self._items)

  def __getitem__(self, index: int) -> dict:
    which, i = self._items[index]
    if which == 1:
      return self.generated_source[i]
    return {**self.real[i], "generated": np.bool_(False)}

  def index_of(self, ids) -> list[int]:
    lookup = {i: k for k, i in enumerate(self.ids)}
    missing = [i for i in ids if i not in lookup]
    if missing:
      raise DatasetError(f"{len(missing)} ids not in {self!r}, e.g. {missing[:3]}")
    return [lookup[i] for i in ids]

  def counts(self) -> dict[str, int]:
    """Images in all, real, generated, and per class."""
    per = np.bincount(self.labels, minlength=self.num_classes)
    return {"images": len(self), "real": int((~self.generated).sum()),
            "generated": int(self.generated.sum()),
            **{f"{n} images": int(k) for n, k in zip(self.class_names, per)}}

  def __repr__(self) -> str:
    return (f"MixedSource(real={int((~self.generated).sum())}, "
            f"generated={int(self.generated.sum())})")


def mix(real, generated: ArraySource, *, real_fraction: float, total: int | None = None,
        exclude_ids: Sequence[str] = ()) -> MixedSource:
  """The training mix where real images are ``real_fraction`` of the set
  (:func:`generated_counts`); ``real_fraction`` 0 is ``total`` generated
  images and no real ones."""
  if real is None and real_fraction > 0:
    raise DatasetError(f"real_fraction {real_fraction} needs real images")
  labels = real.labels if real is not None else np.zeros(0)
  per_class = generated_counts(labels, generated.num_classes, real_fraction=real_fraction,
                               total=total)
  return MixedSource(real if real_fraction > 0 else None, generated, per_class,
                     exclude_ids=exclude_ids)
