"""grain input pipelines: one function from a random-access source to batches.

``make_loader`` builds, on grain's Dataset API::

  MapDataset.source(source).seed(seed) -> shuffle -> repeat(num_epochs)
    -> map / random_map (the transforms, in order) -> batch
    -> to_iter_dataset -> mp_prefetch (when worker_count > 0)

Iterating the result gives a grain ``DatasetIterator`` whose ``get_state()`` /
``set_state()`` capture the exact position (shuffle order, per-record random
streams and all), so a run restored from a checkpoint sees exactly the batches
an uninterrupted run would. Each epoch is reshuffled (grain reseeds per epoch).
Batching comes after ``repeat``, so with several epochs a batch may hold the
last records of one epoch and the first of the next, and ``drop_remainder``
drops only the final partial batch of the whole stream.

With ``worker_count > 0``, close the iterator (``it.close()``) or let it be
garbage-collected before the program exits: it owns worker processes. (grain
0.2.18 prints harmless ``__del__`` tracebacks for iterators still alive while
the interpreter is tearing down.)
"""

from __future__ import annotations

from typing import Any, Sequence

import grain
import numpy as np

from defects_jax.data import transforms as T


def _ensure_absl_flags_parsed() -> None:
  """grain 0.2.18 reads absl flags in multiprocessing workers and fails with
  ``UnparsedFlagAccessError`` when the host program never parsed them (any
  program not started through ``absl.app.run``). Marking the (empty) flag set
  as parsed is what ``app.run`` would have done for flags we do not use."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _to_plain_numpy(batch):
  """Copies grain's shared-memory batch arrays into ordinary numpy arrays.

  With worker processes, grain 0.2.18 delivers ``SharedMemoryArray`` leaves.
  Any still alive at interpreter exit raise in ``__del__`` and leak their
  segments; one copy per batch in the parent releases them at once.
  """
  if isinstance(batch, dict):
    return {k: _to_plain_numpy(v) for k, v in batch.items()}
  if isinstance(batch, np.ndarray) and type(batch) is not np.ndarray:
    return np.array(batch, copy=True)
  return batch


def make_loader(
    source,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    transforms: Sequence[Any] = (),
    num_epochs: int | None = 1,
    worker_count: int = 0,
    drop_remainder: bool = True,
    worker_buffer_size: int = 2,
) -> grain.IterDataset:
  """A grain pipeline that yields batches (dicts of stacked numpy arrays).

  Args:
    source: random-access source (``__len__`` / ``__getitem__``), e.g.
      :class:`~defects_jax.data.NEUCLS` or a :class:`~defects_jax.data.Subset`.
    batch_size: records per batch.
    shuffle: shuffle the records (reshuffled every epoch).
    seed: seeds the shuffle and every ``RandomMap`` transform.
    transforms: ``grain.transforms.Map`` / ``RandomMap`` instances (see
      :mod:`defects_jax.data.transforms`), applied in order per record.
    num_epochs: passes over the source; None repeats forever.
    worker_count: 0 reads in the calling process; N > 0 uses N worker
      processes (``mp_prefetch``). Results are identical either way.
    drop_remainder: drop a final partial batch (keeps shapes static for jit).
    worker_buffer_size: batches buffered per worker.

  Returns:
    A ``grain.IterDataset``; ``iter()`` it for a checkpointable iterator.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if len(source) == 0:
    raise ValueError(f"{source!r} is empty")
  ds = grain.MapDataset.source(source).seed(seed)
  if shuffle:
    ds = ds.shuffle()
  if num_epochs != 1:
    ds = ds.repeat(num_epochs)
  for t in transforms:
    if isinstance(t, grain.transforms.RandomMap):
      ds = ds.random_map(t)
    elif isinstance(t, grain.transforms.Map):
      ds = ds.map(t)
    else:
      raise TypeError(f"transforms must be grain Map/RandomMap instances, got {t!r}")
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  it = ds.to_iter_dataset()
  if worker_count > 0:
    _ensure_absl_flags_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=worker_count, per_worker_buffer_size=worker_buffer_size))
    it = it.map(_to_plain_numpy)
  return it


def classification_transforms(image_size: int, *, train: bool, rgb: bool = False,
                              rot90: bool = False) -> list:
  """The usual classifier chain: resize, (random flip [+ rot90] when training),
  optional gray->RGB, float in [-1, 1], and keep only ``image``/``label``."""
  ts: list = [T.Resize(image_size)]
  if train:
    ts.append(T.RandomFlip(horizontal=True, vertical=True))
    if rot90:
      ts.append(T.RandomRot90())
  if rgb:
    ts.append(T.ToRGB())
  ts += [T.ToFloat(), T.SelectKeys(("image", "label"))]
  return ts


def collect(source, *, batch_size: int, transforms: Sequence[Any] = (), fn=None,
            keep: Sequence[str] | None = None) -> dict[str, np.ndarray]:
  """One ordered pass over ``source`` (no shuffle, the last partial batch
  kept): the concatenation of what each batch yields.

  Args:
    source: random-access source (``__len__`` / ``__getitem__``).
    batch_size: records per batch.
    transforms: grain transforms applied per record, as in :func:`make_loader`.
    fn: optional ``batch -> {name: array[B, ...]}`` (e.g. a model's
      predictions); its outputs are collected too.
    keep: the record fields to collect (default: every field of the batch).

  Returns:
    ``{name: array[N, ...]}`` in source order: the kept fields, then ``fn``'s.
  """
  loader = make_loader(source, batch_size=batch_size, shuffle=False, drop_remainder=False,
                       transforms=transforms)
  parts: dict[str, list] = {}
  it = iter(loader)
  try:
    for batch in it:
      out = {k: v for k, v in batch.items() if keep is None or k in keep}
      if fn is not None:
        out.update(fn(batch))
      for k, v in out.items():
        parts.setdefault(k, []).append(np.asarray(v))
  finally:
    close = getattr(it, "close", None)
    if close is not None:
      close()
  return {k: np.concatenate(v) for k, v in parts.items()}


class PairSource:
  """Positive/negative pairs for weakly supervised training (the weak-sup.
  paper's Algorithm 1: one defective, then one defect-free image).

  Item ``i`` is ``{"positive": source[positives[i mod P]], "negative":
  source[negatives[i]]}``, the two raw records; one epoch covers every
  negative once and cycles through the positives. Per-image transforms go
  through :func:`~defects_jax.data.transforms.each`, and
  :class:`~defects_jax.data.transforms.StackPair` stacks the pair into
  ``image`` [2, H, W, C], ``mask`` [2, H, W], ``label`` [1, 0]
  (:func:`pair_transforms` builds that chain).
  """

  def __init__(self, source, positives: Sequence[int], negatives: Sequence[int]):
    self.source = source
    self.positives, self.negatives = list(positives), list(negatives)
    if not self.positives or not self.negatives:
      raise ValueError(f"{source!r}: pairs need at least one positive and one negative image "
                       f"(got {len(self.positives)} and {len(self.negatives)})")

  def __len__(self) -> int:
    return len(self.negatives)

  def __getitem__(self, i: int):
    return {"positive": self.source[self.positives[i % len(self.positives)]],
            "negative": self.source[self.negatives[i]]}

  def __repr__(self) -> str:
    return (f"PairSource({self.source!r}, positives={len(self.positives)}, "
            f"negatives={len(self.negatives)})")


def pair_transforms(size, *, rotate: bool = False) -> list:
  """Per image: resize to ``size`` ((H, W) or an int), optional random
  rotation by multiples of 90 degrees (0/180 only for non-square sizes, so the
  shape is kept), float in [-1, 1]; then stack the pair."""
  h, w = T._hw(size)  # pylint: disable=protected-access
  ts = [T.each(T.Resize((h, w)))]
  if rotate:
    ts.append(T.each(T.RandomRot90((0, 1, 2, 3) if h == w else (0, 2))))
  return ts + [T.each(T.ToFloat()), T.StackPair()]


class PerClassSource:
  """One image of every class per item, for K models trained side by side
  (e.g. one GAN per class, vmapped).

  Item ``i`` is ``{"class_0": rec, ..., "class_<K-1>": rec}`` where class c's
  record is the ``(i mod n_c)``-th of its images in ``source`` (n_c of them);
  one epoch is the largest class. :func:`per_class_transforms` (or
  ``transforms.each(t, keys)`` + :class:`~defects_jax.data.transforms.StackKeys`)
  turns it into ``image`` [K, H, W, C], so a batch is [B, K, H, W, C].

  Raises:
    ValueError: a class without images.
  """

  def __init__(self, source, num_classes: int):
    labels = np.asarray(source.labels)
    self.source, self.num_classes = source, int(num_classes)
    self.members = [np.flatnonzero(labels == c) for c in range(self.num_classes)]
    empty = [c for c, m in enumerate(self.members) if len(m) == 0]
    if empty:
      names = getattr(source, "class_names", None)
      raise ValueError(f"{source!r}: no images of class(es) "
                       f"{[names[c] if names and c < len(names) else c for c in empty]}")
    self.keys = tuple(f"class_{c}" for c in range(self.num_classes))

  def __len__(self) -> int:
    return max(len(m) for m in self.members)

  def __getitem__(self, i: int):
    return {k: self.source[int(m[i % len(m)])] for k, m in zip(self.keys, self.members)}

  def __repr__(self) -> str:
    return f"PerClassSource({self.source!r}, {[len(m) for m in self.members]} per class)"


def per_class_transforms(keys, size: int, *, flip: bool = False) -> list:
  """Per image: resize to ``size`` x ``size``, optional random flips, float in
  [-1, 1]; then stack the classes (``image`` [K, size, size, C])."""
  ts = [T.each(T.Resize(size), keys)]
  if flip:
    ts.append(T.each(T.RandomFlip(horizontal=True, vertical=True), keys))
  return ts + [T.each(T.ToFloat(), keys), T.StackKeys(keys)]
