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
