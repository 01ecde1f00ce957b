"""The ``neu_cls`` and ``kolektor_sdd`` tfds builders and the reader source."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from defects_jax.data import sources as S

_MANUAL = """\
Download the dataset yourself (it cannot be fetched automatically) and pass its
folder as the manual dir, in the layout the folder source accepts:
{layout}
"""


class _DefectsBuilder(tfds.core.GeneratorBasedBuilder):
  """Shared builder: one ``train`` split holding every image of the dataset.

  The papers' protocols (few-shot subsets, grouped folds) are made with
  :mod:`defects_jax.data.splits` on the ids, exactly as for folder sources.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Original image bytes; binary masks as zlib uint8."}
  source_cls: type = S.NEUCLS
  has_mask = False
  has_group = False

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        "image_bytes": tfds.features.Tensor(shape=(), dtype=np.object_),
        "label": tfds.features.ClassLabel(names=list(self.source_cls.class_names)),
        "id": tfds.features.Text(),
    }
    if self.has_mask:
      features["mask"] = tfds.features.Tensor(shape=(None, None), dtype=np.uint8,
                                              encoding=tfds.features.Encoding.ZLIB)
    if self.has_group:
      features["group"] = tfds.features.Text()
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                 description=self.__doc__)

  def _split_generators(self, dl_manager):
    source = self.source_cls(Path(dl_manager.manual_dir))
    return {"train": self._generate_examples(source)}

  def _generate_examples(self, source):
    groups = source.groups if self.has_group else None
    for i in range(len(source)):
      rec = source[i]  # decodes and validates (raises DatasetError naming the file)
      example: dict[str, Any] = {"image_bytes": source.image_path(i).read_bytes(),
                                 "label": int(rec["label"]), "id": rec["id"]}
      if self.has_mask:
        example["mask"] = rec["mask"]
      if self.has_group:
        example["group"] = groups[i]
      yield rec["id"], example


class NeuCls(_DefectsBuilder):
  """NEU-CLS: 6 classes x 300 grayscale 200x200 hot-rolled steel images."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(
      layout="NEU-CLS/<class>/<Prefix>_<n>.(bmp|png) or the original flat folder of "
             "<Prefix>_<n>.bmp files.")
  source_cls = S.NEUCLS


class KolektorSdd(_DefectsBuilder):
  """KolektorSDD v1: 399 grayscale commutator images with binary defect masks."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL.format(
      layout="KolektorSDD/kosNN/PartK.jpg with PartK_label.(bmp|png).")
  source_cls = S.KolektorSDD
  has_mask = True
  has_group = True


BUILDERS = {"neu_cls": NeuCls, "kolektor_sdd": KolektorSdd}


def _builder_cls(name: str):
  if name not in BUILDERS:
    raise ValueError(f"unknown builder {name!r}; expected one of {sorted(BUILDERS)}")
  return BUILDERS[name]


def build(name: str, *, data_dir: str | os.PathLike, manual_dir: str | os.PathLike) -> Path:
  """Builds ``name`` as array_record under ``data_dir`` from ``manual_dir``.

  Returns:
    The folder holding the built version.
  """
  data_dir = Path(data_dir).expanduser()
  builder = _builder_cls(name)(data_dir=str(data_dir), file_format="array_record")
  manual = S.resolve_root(manual_dir, builder.source_cls.folder_name)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return Path(builder.data_dir)


class TFDSSource:
  """Reads a built dataset through ``tfds.data_source`` as folder-source records.

  Records: ``image`` uint8 [H, W, C] (decoded with PIL), ``label`` int32, ``id``
  str, plus ``mask`` uint8 [H, W] (and ``groups``) where the dataset has them.
  Picklable: each process reopens the array_record files by path.

  Args:
    name: ``"neu_cls"`` or ``"kolektor_sdd"``.
    data_dir: the ``data_dir`` passed to :func:`build`.
    split: tfds split name (``"train"``: every image).
  """

  def __init__(self, name: str, *, data_dir: str | os.PathLike, split: str = "train"):
    self.builder_cls = _builder_cls(name)
    self.name, self.data_dir, self.split = name, str(Path(data_dir).expanduser()), split
    self.class_names = self.builder_cls.source_cls.class_names
    self.num_classes = len(self.class_names)
    self._source = None
    self._meta = None
    self._open()

  def _open(self):
    if self._source is None:
      try:
        self._source = tfds.data_source(self.name, data_dir=self.data_dir)[self.split]
      except Exception as e:  # tfds raises several types for a missing/partial build
        raise S.DatasetError(f"{self.data_dir}: no built {self.name!r} split {self.split!r} "
                             f"(run defects_jax.data.tfds_builders.build first): {e}") from e
    return self._source

  def __getstate__(self):
    return {**self.__dict__, "_source": None}

  def __len__(self) -> int:
    return len(self._open())

  def _decode(self, raw: dict[str, Any]) -> dict[str, Any]:
    rid = raw["id"].decode() if isinstance(raw["id"], bytes) else str(raw["id"])
    try:
      with Image.open(io.BytesIO(raw["image_bytes"])) as im:
        image = np.asarray(im)
    except (OSError, SyntaxError, ValueError) as e:
      raise S.DatasetError(f"{self.data_dir}/{self.name} example {rid}: cannot decode image "
                           f"({e})") from e
    rec = {"image": image[..., None] if image.ndim == 2 else image,
           "label": np.int32(raw["label"]), "id": rid}
    if "mask" in raw:
      rec["mask"] = np.asarray(raw["mask"], np.uint8)
    return rec

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self._decode(self._open()[int(index)])

  def _metadata(self):
    if self._meta is None:
      src = self._open()
      rows = [src[i] for i in range(len(src))]
      self._meta = {
          "ids": [r["id"].decode() if isinstance(r["id"], bytes) else str(r["id"]) for r in rows],
          "labels": np.array([r["label"] for r in rows], np.int32),
          "groups": [g.decode() if isinstance(g, bytes) else str(g)
                     for g in (r.get("group", b"") for r in rows)]}
    return self._meta

  @property
  def ids(self) -> list[str]:
    return self._metadata()["ids"]

  @property
  def labels(self) -> np.ndarray:
    return self._metadata()["labels"]

  @property
  def groups(self) -> list[str]:
    if not self.builder_cls.has_group:
      raise AttributeError(f"{self.name} has no groups")
    return self._metadata()["groups"]

  def index_of(self, ids):
    lookup = {i: k for k, i in enumerate(self.ids)}
    missing = [i for i in ids if i not in lookup]
    if missing:
      raise S.DatasetError(f"{len(missing)} ids not in {self!r}, e.g. {missing[:3]}")
    return [lookup[i] for i in ids]

  def __repr__(self) -> str:
    return f"TFDSSource({self.name!r}, data_dir={self.data_dir!r}, split={self.split!r})"
