"""The papers' data protocols as deterministic, seeded splits of ids.

A :class:`Split` is a named collection of id lists (``"train"``, ``"test"``,
``"train_10"``, ``"fold_0"`` ...) plus the protocol name, seed and parameters
that made it. It saves to and loads from JSON, so an experiment can pin the
exact images it used; :class:`Subset` turns a list of ids back into a source.

Protocols:

* :func:`neu_fewshot_split`: res-acgan section 4.2: a fixed 2:1 split per class
  (1200 train / 600 test) and nested per-class training subsets
  n in {200, 150, 100, 50, 30, 10} sharing one test set.
* :func:`stratified_split`: e.g. the edcgan 7:3 NEU-CLS split, or MVTec good vs
  defective.
* :func:`kolektor_folds`: 3-fold cross-validation grouped by commutator, the
  duplicated commutators kept together; :func:`kolektor_fold_split` with an
  optional cap on positive training images.
* :class:`CrackForestPatches` and :func:`crackforest_split`: a defect /
  defect-free patch dataset cut from the 118 images, split by source image.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from defects_jax.data.sources import DatasetError

NEU_SHOTS = (200, 150, 100, 50, 30, 10)
# Byte-identical commutators in the KolektorSDD distribution (see the dataset
# manifest): they must share a fold or test images leak into training.
KOLEKTOR_LINKED = (("kos01", "kos26"), ("kos27", "kos34"))


@dataclasses.dataclass(frozen=True)
class Split:
  """Named id lists plus how they were made.

  Attributes:
    protocol: e.g. ``"neu_fewshot"``.
    seed: the seed that made it.
    subsets: name -> tuple of ids (ordered as chosen).
    params: the protocol's other parameters (JSON-serialisable).
  """

  protocol: str
  seed: int
  subsets: dict[str, tuple[str, ...]]
  params: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __getitem__(self, name: str) -> tuple[str, ...]:
    if name not in self.subsets:
      raise KeyError(f"split {self.protocol!r} has no subset {name!r}; "
                     f"it has {sorted(self.subsets)}")
    return self.subsets[name]

  def to_json(self) -> str:
    return json.dumps({"protocol": self.protocol, "seed": self.seed, "params": self.params,
                       "subsets": {k: list(v) for k, v in self.subsets.items()}}, indent=1)

  def save(self, path: str | os.PathLike) -> None:
    Path(path).write_text(self.to_json())

  @classmethod
  def load(cls, path: str | os.PathLike) -> "Split":
    try:
      raw = json.loads(Path(path).read_text())
      return cls(protocol=raw["protocol"], seed=int(raw["seed"]),
                 subsets={k: tuple(v) for k, v in raw["subsets"].items()},
                 params=raw.get("params", {}))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
      raise DatasetError(f"{path}: not a split file written by Split.save ({e})") from e


class Subset:
  """The items of ``source`` whose ids are ``ids``, in that order (picklable)."""

  def __init__(self, source, ids: Sequence[str]):
    self.source = source
    self.ids = list(ids)
    self._indices = source.index_of(self.ids)
    for attr in ("class_names", "num_classes", "is_synthetic"):
      if hasattr(source, attr):
        setattr(self, attr, getattr(source, attr))

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int):
    return self.source[self._indices[index]]

  @property
  def labels(self) -> np.ndarray:
    return np.asarray(self.source.labels)[self._indices]

  def index_of(self, ids):
    lookup = {i: k for k, i in enumerate(self.ids)}
    missing = [i for i in ids if i not in lookup]
    if missing:
      raise DatasetError(f"{len(missing)} ids not in this subset, e.g. {missing[:3]}")
    return [lookup[i] for i in ids]

  def __repr__(self) -> str:
    return f"Subset({self.source!r}, n={len(self)})"


def _ids_and_labels(source) -> tuple[list[str], np.ndarray]:
  ids = list(source.ids)
  labels = np.asarray(source.labels, np.int64)
  if len(ids) != len(labels) or len(set(ids)) != len(ids):
    raise DatasetError(f"{source!r}: ids must be unique and match the labels")
  return ids, labels


# --------------------------------------------------------------------------
# Stratified and few-shot splits
# --------------------------------------------------------------------------


def stratified_split(source, *, train_fraction: float = 0.7, seed: int = 0,
                     protocol: str = "stratified") -> Split:
  """Per-class random split into ``"train"`` / ``"test"``.

  Each class contributes ``round(n_c * train_fraction)`` training images. With
  ``train_fraction=0.7`` on NEU-CLS this is the edcgan 7:3 split (210 / 90 per
  class).

  Args:
    source: anything with ``ids`` and ``labels``.
    train_fraction: in (0, 1).
    seed: permutation seed.
    protocol: name stored in the split.
  """
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  ids, labels = _ids_and_labels(source)
  rng = np.random.default_rng(seed)
  train, test = [], []
  for c in np.unique(labels):
    members = [ids[i] for i in np.flatnonzero(labels == c)]
    perm = rng.permutation(len(members))
    k = int(round(len(members) * train_fraction))
    train += [members[i] for i in perm[:k]]
    test += [members[i] for i in perm[k:]]
  return Split(protocol, seed, {"train": tuple(train), "test": tuple(test)},
               {"train_fraction": train_fraction})


def neu_fewshot_split(source, *, shots: Sequence[int] = NEU_SHOTS, seed: int = 0,
                      train_fraction: float = 2 / 3) -> Split:
  """The res-acgan few-shot protocol on NEU-CLS (section 4.2, Tables 1-2).

  Per class: a fixed 2:1 split (200 train / 100 test of 300), then nested
  training subsets: ``train_<n>`` holds the first n of one seeded permutation
  of the class's training images, so ``train_10`` is inside ``train_30`` is
  inside ... ``train_200``. Every n shares the same ``test`` subset.

  Returns:
    A Split with ``"train"``, ``"test"`` and ``"train_<n>"`` for every n.
  """
  base = stratified_split(source, train_fraction=train_fraction, seed=seed)
  ids, labels = _ids_and_labels(source)
  label_of = dict(zip(ids, labels.tolist()))
  per_class: dict[int, list[str]] = {}
  for i in base["train"]:  # already a seeded permutation within each class
    per_class.setdefault(label_of[i], []).append(i)
  subsets = {"train": base["train"], "test": base["test"]}
  for n in sorted(shots, reverse=True):
    short = {c: len(v) for c, v in per_class.items() if len(v) < n}
    if short:
      raise DatasetError(f"{source!r}: {n} training images per class requested but classes "
                         f"{short} have fewer")
    subsets[f"train_{n}"] = tuple(i for c in sorted(per_class) for i in per_class[c][:n])
  return Split("neu_fewshot", seed, subsets,
               {"shots": list(shots), "train_fraction": train_fraction})


# --------------------------------------------------------------------------
# KolektorSDD
# --------------------------------------------------------------------------


def kolektor_folds(source, *, num_folds: int = 3, seed: int = 0,
                   linked: Sequence[Sequence[str]] = KOLEKTOR_LINKED) -> Split:
  """Cross-validation folds of KolektorSDD grouped by commutator.

  Commutators (``kosNN``, linked ones merged into one group) are dealt to folds
  greedily: groups in order of decreasing positives (seeded shuffle among
  ties); a group with defective images goes to the fold with the fewest
  positives (then fewest images), a defect-free group to the fold with the
  fewest negatives. So every fold gets about a third of the defective and of
  the defect-free images, and no commutator is split.

  Returns:
    A Split with ``"fold_<k>"`` (the test images of fold k) for k < num_folds.
  """
  ids, labels = _ids_and_labels(source)
  groups = list(source.groups)
  root_of = {}
  for chain in linked:
    for g in chain:
      root_of[g] = chain[0]
  members: dict[str, list[int]] = {}
  for i, g in enumerate(groups):
    members.setdefault(root_of.get(g, g), []).append(i)
  rng = np.random.default_rng(seed)
  order = list(members)
  rng.shuffle(order)
  order.sort(key=lambda g: -int(labels[members[g]].sum()))  # stable: ties keep shuffle
  pos, size = np.zeros(num_folds, int), np.zeros(num_folds, int)
  folds: list[list[str]] = [[] for _ in range(num_folds)]
  for g in order:
    if labels[members[g]].sum():  # balance positives first
      k = min(range(num_folds), key=lambda f: (pos[f], size[f], f))
    else:  # defect-free groups balance the negatives
      k = min(range(num_folds), key=lambda f: (size[f] - pos[f], size[f], f))
    folds[k] += [ids[i] for i in members[g]]
    pos[k] += int(labels[members[g]].sum())
    size[k] += len(members[g])
  return Split("kolektor_folds", seed, {f"fold_{k}": tuple(f) for k, f in enumerate(folds)},
               {"num_folds": num_folds, "linked": [list(c) for c in linked]})


def kolektor_fold_split(folds: Split, fold: int, *, source=None,
                        num_positive: int | None = None, seed: int = 0) -> Split:
  """Train/test for one fold: test = ``fold_<fold>``, train = the other folds.

  Args:
    folds: from :func:`kolektor_folds`.
    fold: which fold is the test set.
    source: the KolektorSDD source (needed only with ``num_positive``).
    num_positive: keep only this many defective training images (the paper's
      5..30 study); the kept ones are the first of a seeded permutation, so a
      smaller count is a subset of a larger one. Defect-free images are all kept.
    seed: permutation seed for ``num_positive``.
  """
  k = int(fold)
  names = sorted(n for n in folds.subsets if n.startswith("fold_"))
  if f"fold_{k}" not in folds.subsets:
    raise ValueError(f"fold {k} not in {names}")
  test = folds[f"fold_{k}"]
  train = tuple(i for n in names if n != f"fold_{k}" for i in folds[n])
  params = {"fold": k, "num_positive": num_positive}
  if num_positive is not None:
    if source is None:
      raise ValueError("num_positive needs the source (for the labels)")
    ids, labels = _ids_and_labels(source)
    label_of = dict(zip(ids, labels.tolist()))
    positives = [i for i in train if label_of[i] == 1]
    if not 1 <= num_positive <= len(positives):
      raise ValueError(f"num_positive must be in [1, {len(positives)}] for fold {k}, "
                       f"got {num_positive}")
    perm = np.random.default_rng(seed).permutation(len(positives))
    keep = {positives[i] for i in perm[:num_positive]}
    train = tuple(i for i in train if label_of[i] == 0 or i in keep)
  return Split("kolektor_cv", seed, {"train": train, "test": test}, params)


# --------------------------------------------------------------------------
# CrackForest patches
# --------------------------------------------------------------------------


class CrackForestPatches:
  """Defect / defect-free square patches cut from CrackForest images.

  A patch is "defect" (label 1) when it has at least ``min_crack_pixels`` crack
  pixels, "defect-free" (label 0) when it has none; patches in between are
  ambiguous and left out, and counted in :attr:`num_ambiguous`. Only the images
  named by ``image_ids`` are cut (split by image first, see
  :func:`crackforest_split`).

  Records: ``image`` uint8 [P, P, 3], ``mask`` uint8 [P, P], ``label`` int32,
  ``id`` ``"NNN@y,x"``.

  Args:
    source: a :class:`~defects_jax.data.CrackForest`.
    image_ids: the source images to cut (default: all).
    patch_size: P (default 64).
    stride: step between patches (default 64: no overlap).
    min_crack_pixels: crack pixels for a defect patch (default 20).
    max_counts: optional (defect-free, defect) caps: a seeded random choice of
      at most that many patches of each label, e.g. (1000, 300) for dg2gan
      Table 1's training set and (330, 60) for its test set.
    seed: seed of that choice.

  With the defaults and ``crackforest_split(seed=0)`` (88 train / 30 test
  images) the shared copy gives 2103 defect-free / 930 defect training patches
  and 686 / 347 test patches (47 and 17 ambiguous ones left out); see
  tests/data/test_splits.py.
  """

  class_names = ("defect-free", "crack")
  num_classes = 2

  def __init__(self, source, image_ids: Sequence[str] | None = None, *, patch_size: int = 64,
               stride: int = 64, min_crack_pixels: int = 20,
               max_counts: tuple[int, int] | None = None, seed: int = 0):
    if patch_size < 1 or stride < 1 or min_crack_pixels < 1:
      raise ValueError("patch_size, stride and min_crack_pixels must be >= 1")
    self.source, self.patch_size, self.stride = source, patch_size, stride
    self.min_crack_pixels = min_crack_pixels
    image_ids = list(source.ids if image_ids is None else image_ids)
    self._items: list[tuple[int, int, int, str, int]] = []
    self.num_ambiguous = 0
    for idx, img_id in zip(source.index_of(image_ids), image_ids):
      mask = source.mask(idx)  # masks only: the images are decoded per patch later
      h, w = mask.shape
      if h < patch_size or w < patch_size:
        raise DatasetError(f"{img_id}: image {w}x{h} smaller than patch {patch_size}")
      for y in range(0, h - patch_size + 1, stride):
        for x in range(0, w - patch_size + 1, stride):
          n = int(mask[y:y + patch_size, x:x + patch_size].sum())
          if n == 0 or n >= min_crack_pixels:
            self._items.append((idx, y, x, f"{img_id}@{y},{x}", int(n > 0)))
          else:
            self.num_ambiguous += 1
    if max_counts is not None:
      rng = np.random.default_rng(seed)
      keep = set()
      for label, cap in enumerate(max_counts):
        of_label = [k for k, it in enumerate(self._items) if it[4] == label]
        if cap > len(of_label):
          raise DatasetError(f"max_counts asks for {cap} patches of label {label} but only "
                             f"{len(of_label)} exist")
        keep.update(of_label[k] for k in rng.choice(len(of_label), cap, replace=False))
      self._items = [it for k, it in enumerate(self._items) if k in keep]

  def __len__(self) -> int:
    return len(self._items)

  def __getitem__(self, index: int):
    idx, y, x, pid, label = self._items[index]
    rec = self.source[idx]
    p = self.patch_size
    return {"image": np.ascontiguousarray(rec["image"][y:y + p, x:x + p]),
            "mask": np.ascontiguousarray(rec["mask"][y:y + p, x:x + p]),
            "label": np.int32(label), "id": pid}

  @property
  def ids(self) -> list[str]:
    return [it[3] for it in self._items]

  @property
  def labels(self) -> np.ndarray:
    return np.array([it[4] for it in self._items], np.int32)

  def index_of(self, ids):
    lookup = {it[3]: k for k, it in enumerate(self._items)}
    missing = [i for i in ids if i not in lookup]
    if missing:
      raise DatasetError(f"{len(missing)} patch ids not present, e.g. {missing[:3]}")
    return [lookup[i] for i in ids]

  def counts(self) -> dict[str, int]:
    labels = self.labels
    return {"defect-free": int((labels == 0).sum()), "defect": int((labels == 1).sum()),
            "ambiguous (left out)": self.num_ambiguous}

  def __repr__(self) -> str:
    return (f"CrackForestPatches(n={len(self)}, {self.counts()}, patch={self.patch_size}, "
            f"stride={self.stride}, min_crack_pixels={self.min_crack_pixels})")


def crackforest_split(source, *, test_fraction: float = 0.25, seed: int = 0) -> Split:
  """Splits CrackForest *images* into ``"train"`` / ``"test"`` (cut patches after).

  Splitting by source image guarantees no image contributes patches to both
  sides. Build the patch datasets with
  ``CrackForestPatches(source, split["train"])`` and ``split["test"]``.
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
  ids = list(source.ids)
  perm = np.random.default_rng(seed).permutation(len(ids))
  n_test = int(round(len(ids) * test_fraction))
  test = tuple(sorted(ids[i] for i in perm[:n_test]))
  train = tuple(sorted(ids[i] for i in perm[n_test:]))
  return Split("crackforest_images", seed, {"train": train, "test": test},
               {"test_fraction": test_fraction})
