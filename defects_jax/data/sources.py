"""Random-access sources over the four real defect datasets in their canonical layouts.

Each source scans its root folder once at construction (checking the layout) and
decodes one image per ``__getitem__``. Sources hold only paths and small lists,
so they are picklable and thread-safe for grain worker processes (files are
reopened by path in whichever process reads them).

Records are dicts of numpy arrays:

* ``image``: uint8 [H, W, C] (C = 1 for grayscale datasets, 3 for RGB),
* ``label``: int32 scalar,
* ``mask``: uint8 [H, W] with values 0/1, for datasets with pixel masks,
* ``id``: str, unique within the source.

The data root comes from the ``root`` argument (a CLI flag passes it through)
or, when ``root`` is None, from the ``DEFECTS_JAX_DATA`` environment variable,
which names the folder holding all datasets (``NEU-CLS/``, ``KolektorSDD/``,
``CrackForest/``, ``mvtec_ad/``). An explicit ``root`` may be either the
dataset's own folder or that parent folder.

Bad input raises :class:`DatasetError` naming the file and what was expected.
With ``on_error="skip"`` every file is decoded once at construction, the bad
ones are left out, and ``source.skipped`` lists them (path, reason); a warning
with their count is logged. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from defects_jax.errors import DefectsJaxError

DATA_ENV = "DEFECTS_JAX_DATA"
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg")

Record = dict[str, Any]
_log = logging.getLogger(__name__)


class DatasetError(DefectsJaxError, ValueError):
  """A dataset file or folder is missing, malformed or not what was expected."""


# --------------------------------------------------------------------------
# Root resolution and decoding
# --------------------------------------------------------------------------


def resolve_root(root: str | os.PathLike | None, folder_name: str) -> Path:
  """Returns the dataset folder ``folder_name`` from ``root`` or ``$DEFECTS_JAX_DATA``.

  Args:
    root: the dataset's own folder, or the folder that contains it; None to use
      the ``DEFECTS_JAX_DATA`` environment variable.
    folder_name: the canonical folder name, e.g. ``"NEU-CLS"``.

  Raises:
    DatasetError: no root given and the variable unset, or the folder is missing.
  """
  if root is None:
    env = os.environ.get(DATA_ENV)
    if not env:
      raise DatasetError(
          f"no data root for {folder_name}: pass root=... (the command line: --data-dir) "
          f"or set {DATA_ENV} to the folder that contains {folder_name}/",
          hint="the synthetic default needs no data: try --preset smoke")
    root = env
  path = Path(root).expanduser()
  if (path / folder_name).is_dir():
    path = path / folder_name
  if not path.is_dir():
    raise DatasetError(f"{path}: dataset folder not found (expected the {folder_name} "
                       f"folder or a folder containing {folder_name}/)",
                       hint=f"point --data-dir (or {DATA_ENV}) at the folder that holds "
                            f"{folder_name}/")
  return path


def read_image(path: Path, modes: Sequence[str]) -> np.ndarray:
  """Decodes an image file to uint8 [H, W, C], checking its PIL mode.

  Raises:
    DatasetError: the file cannot be decoded or its mode is not in ``modes``.
  """
  try:
    with Image.open(path) as im:
      im.load()
      mode = im.mode
      if mode not in modes:
        raise DatasetError(f"{path}: image mode {mode!r}, expected one of {list(modes)}")
      arr = np.asarray(im)
  except DatasetError:
    raise
  except (OSError, SyntaxError, ValueError) as e:  # PIL's decode errors
    raise DatasetError(f"{path}: cannot decode image ({e})") from e
  if arr.dtype != np.uint8:
    raise DatasetError(f"{path}: expected 8-bit pixels, got {arr.dtype}")
  return arr[..., None] if arr.ndim == 2 else arr


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
  """Decodes a mask image (mode L, P or 1) to uint8 [H, W] in {0, 1}.

  Any non-zero grey level (after palette conversion) counts as defect.

  Raises:
    DatasetError: undecodable, wrong mode, or its size differs from ``shape``.
  """
  try:
    with Image.open(path) as im:
      im.load()
      if im.mode not in ("L", "P", "1"):
        raise DatasetError(f"{path}: mask mode {im.mode!r}, expected 'L', 'P' or '1'")
      arr = np.asarray(im.convert("L"))
  except DatasetError:
    raise
  except (OSError, SyntaxError, ValueError) as e:
    raise DatasetError(f"{path}: cannot decode mask ({e})") from e
  if arr.shape != tuple(shape):
    raise DatasetError(f"{path}: mask is {arr.shape[1]}x{arr.shape[0]} (WxH) but its image "
                       f"is {shape[1]}x{shape[0]}")
  return (arr > 0).astype(np.uint8)


def _image_hw(path: Path) -> tuple[int, int]:
  """(H, W) from the image header, without decoding the pixels."""
  try:
    with Image.open(path) as im:
      return im.size[1], im.size[0]
  except (OSError, SyntaxError, ValueError) as e:
    raise DatasetError(f"{path}: cannot read image header ({e})") from e


def _list_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
  """Image files of ``folder`` sorted by name; hidden files (``.*``) are ignored,
  any other unexpected file is an error."""
  files, unexpected = [], []
  for p in sorted(folder.iterdir()):
    if p.name.startswith("."):
      continue
    if p.is_file() and p.suffix.lower() in suffixes:
      files.append(p)
    else:
      unexpected.append(p.name)
  if unexpected:
    raise DatasetError(f"{folder}: unexpected entries {unexpected[:5]}"
                       f"{' ...' if len(unexpected) > 5 else ''}; expected only image files "
                       f"({', '.join(suffixes)})")
  return files


def _natural_key(name: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------


class _FileSource:
  """Shared machinery: an item list, decoding, ``on_error`` handling.

  Subclasses fill ``self._items`` (dicts with at least ``id``) in ``_scan`` and
  implement ``_load(item) -> Record``.
  """

  folder_name: str = ""
  num_classes: int = 2
  class_names: tuple[str, ...] = ("good", "defective")

  def __init__(self, root=None, *, on_error: str = "raise"):
    if on_error not in ("raise", "skip"):
      raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}')
    self.root = resolve_root(root, self.folder_name)
    self.on_error = on_error
    self.skipped: list[tuple[str, str]] = []
    self._items: list[dict[str, Any]] = self._scan()
    if not self._items:
      raise DatasetError(f"{self.root}: no images found for {type(self).__name__}")
    if on_error == "skip":
      self._drop_unreadable()

  # Subclass hooks -----------------------------------------------------------
  def _scan(self) -> list[dict[str, Any]]:
    raise NotImplementedError

  def _load(self, item: dict[str, Any]) -> Record:
    raise NotImplementedError

  # Public API ---------------------------------------------------------------
  def __len__(self) -> int:
    return len(self._items)

  def __getitem__(self, index: int) -> Record:
    return self._load(self._items[index])

  @property
  def ids(self) -> list[str]:
    return [it["id"] for it in self._items]

  def image_path(self, index: int) -> Path:
    """The image file behind item ``index`` (for exporters such as the tfds builders)."""
    return self._items[index]["path"]

  @property
  def labels(self) -> np.ndarray:
    """int32 [N] labels, in source order (may decode masks once, then cached)."""
    return np.array([it["label"] for it in self._items], np.int32)

  def index_of(self, ids: Iterable[str]) -> list[int]:
    """Source indices of ``ids``; unknown ids raise :class:`DatasetError`."""
    lookup = {it["id"]: i for i, it in enumerate(self._items)}
    out, missing = [], []
    for i in ids:
      (out.append(lookup[i]) if i in lookup else missing.append(i))
    if missing:
      raise DatasetError(f"{self.root}: {len(missing)} ids not in {type(self).__name__}, "
                         f"e.g. {missing[:3]}")
    return out

  def __repr__(self) -> str:
    skipped = f", skipped={len(self.skipped)}" if self.skipped else ""
    return f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)}{skipped})"

  def verify(self) -> None:
    """Decodes every item once (images and masks), so that a bad file is found
    before training rather than mid-run.

    Raises:
      DatasetError: naming every unreadable file (the first 10) and the
        ``on_error="skip"`` way out (``--set on_error=skip`` on the command line).
    """
    bad = []
    for it in self._items:
      try:
        self._load(it)
      except DatasetError as e:
        bad.append(str(e))
    if bad:
      more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
      raise DatasetError(f"{self.root}: {len(bad)} unreadable file(s): " + "; ".join(bad[:10])
                         + more, hint="replace the files, or leave them out with --set "
                                      "on_error=skip (the report lists them)")

  # What the papers' protocols assume of this dataset: {what: count}.
  EXPECTED_COUNTS: dict[str, int] = {}

  def counts(self) -> dict[str, int]:
    """The counts :attr:`EXPECTED_COUNTS` names, measured on this copy."""
    return {"images": len(self)}

  def protocol_differences(self) -> list[str]:
    """One line per count that differs from :attr:`EXPECTED_COUNTS` (an
    incomplete or modified copy: its results are not the paper protocol's)."""
    have = self.counts()
    return [f"{what}: {have.get(what)} (the paper's protocol assumes {want})"
            for what, want in self.EXPECTED_COUNTS.items() if have.get(what) != want]

  def _drop_unreadable(self):
    kept = []
    for it in self._items:
      try:
        self._load(it)
        kept.append(it)
      except DatasetError as e:
        self.skipped.append((it["id"], str(e)))
    self._items = kept
    if self.skipped:
      _log.warning("%s: skipped %d unreadable item(s) (on_error='skip'); see .skipped: %s",
                   self.root, len(self.skipped), self.skipped[:3])
    if not self._items:
      raise DatasetError(f"{self.root}: every item was unreadable")


# --------------------------------------------------------------------------
# NEU-CLS
# --------------------------------------------------------------------------


class NEUCLS(_FileSource):
  """NEU surface defect database, classification set: 6 classes x 300 grayscale images.

  Layouts accepted under ``root`` (the ``NEU-CLS`` folder):

  * one folder per class, named by class (``crazing``, ``inclusion``, ``patches``,
    ``pitted_surface``, ``rolled-in_scale``, ``scratches``) or by file prefix
    (``Cr``, ``In``, ``Pa``, ``PS``, ``RS``, ``Sc``), case-insensitive;
  * the original flat folder of ``<Prefix>_<n>.bmp`` files.

  Images are .bmp/.png/.jpg, 8-bit grayscale (PIL mode ``L``). Records:
  ``image`` uint8 [200, 200, 1], ``label`` int32 in [0, 6) (order of
  :attr:`class_names`), ``id`` the file stem (``"Cr_1"``).
  """

  folder_name = "NEU-CLS"
  class_names = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale",
                 "scratches")
  prefixes = ("Cr", "In", "Pa", "PS", "RS", "Sc")
  num_classes = 6
  EXPECTED_COUNTS = {"images": 1800, **{f"{c} images": 300 for c in class_names}}

  def counts(self) -> dict[str, int]:
    per = np.bincount(self.labels, minlength=6)
    return {"images": len(self), **{f"{c} images": int(n) for c, n in zip(self.class_names,
                                                                           per)}}

  def _class_of_folder(self, name: str) -> int | None:
    low = name.lower()
    for c, (full, prefix) in enumerate(zip(self.class_names, self.prefixes)):
      if low in (full.lower(), prefix.lower()):
        return c
    return None

  def _class_of_file(self, path: Path) -> int:
    m = re.fullmatch(r"([A-Za-z]+)_\d+", path.stem)
    prefixes = [p.lower() for p in self.prefixes]
    if not m or m.group(1).lower() not in prefixes:
      raise DatasetError(f"{path}: file name should be <prefix>_<n> with prefix in "
                         f"{list(self.prefixes)}")
    return prefixes.index(m.group(1).lower())

  def _scan(self):
    entries = [p for p in sorted(self.root.iterdir()) if not p.name.startswith(".")]
    dirs = [p for p in entries if p.is_dir()]
    items = []
    if dirs:  # one folder per class
      files_at_top = [p.name for p in entries if p.is_file()]
      if files_at_top:
        raise DatasetError(f"{self.root}: mixes class folders and files {files_at_top[:3]}; "
                           f"expected only the 6 class folders")
      seen = {}
      for d in dirs:
        c = self._class_of_folder(d.name)
        if c is None:
          raise DatasetError(f"{d}: unknown class folder; expected one of "
                             f"{list(self.class_names)} (or prefixes {list(self.prefixes)})")
        if c in seen:
          raise DatasetError(f"{d}: class {self.class_names[c]!r} also in {seen[c]}")
        seen[c] = d
        files = _list_files(d, IMAGE_SUFFIXES)
        if not files:
          raise DatasetError(f"{d}: empty class folder (expected images of "
                             f"{self.class_names[c]!r})")
        items += [{"id": f.stem, "path": f, "label": c} for f in files]
      missing = [self.class_names[c] for c in range(6) if c not in seen]
      if missing:
        raise DatasetError(f"{self.root}: missing class folder(s) {missing}")
    else:  # original flat layout
      for f in _list_files(self.root, IMAGE_SUFFIXES):
        items.append({"id": f.stem, "path": f, "label": self._class_of_file(f)})
    ids = [it["id"] for it in items]
    if len(set(ids)) != len(ids):
      dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
      raise DatasetError(f"{self.root}: duplicate image names {dup}")
    items.sort(key=lambda it: (it["label"], _natural_key(it["id"])))
    return items

  def _load(self, item):
    return {"image": read_image(item["path"], ("L",)),
            "label": np.int32(item["label"]), "id": item["id"]}


# --------------------------------------------------------------------------
# KolektorSDD
# --------------------------------------------------------------------------


class KolektorSDD(_FileSource):
  """Kolektor Surface-Defect Dataset (v1): 50 commutators ``kosNN``, 399 images.

  Layout: ``root/kosNN/PartK.jpg`` with its mask ``PartK_label.bmp`` (original)
  or ``PartK_label.png``. Images are grayscale (mode ``L``), about 500x1250;
  masks have the image's size. Records: ``image`` uint8 [H, W, 1], ``mask``
  uint8 [H, W] in {0, 1}, ``label`` 1 iff the mask has a defect pixel, ``id``
  ``"kosNN/PartK"``. :meth:`group` gives the commutator (``"kosNN"``) for
  grouped splits.
  """

  folder_name = "KolektorSDD"
  class_names = ("defect-free", "defective")
  EXPECTED_COUNTS = {"images": 399, "defective images": 52, "commutators": 50}

  def counts(self) -> dict[str, int]:
    return {"images": len(self), "defective images": int(self.labels.sum()),
            "commutators": len(set(self.groups))}

  def _scan(self):
    items = []
    dirs = [p for p in sorted(self.root.iterdir()) if not p.name.startswith(".")]
    for d in dirs:
      if not (d.is_dir() and re.fullmatch(r"kos\d+", d.name)):
        raise DatasetError(f"{d}: unexpected entry; expected commutator folders kosNN")
      names = {p.name for p in d.iterdir() if not p.name.startswith(".")}
      images = sorted((n for n in names if re.fullmatch(r"Part\d+\.(jpg|jpeg|png|bmp)", n,
                                                          re.I)), key=_natural_key)
      if not images:
        raise DatasetError(f"{d}: no PartK.jpg images")
      expected = set(images)
      for n in images:
        stem = Path(n).stem
        masks = [m for m in (f"{stem}_label.bmp", f"{stem}_label.png") if m in names]
        if not masks:
          raise DatasetError(f"{d / n}: no mask {stem}_label.bmp or {stem}_label.png")
        expected.add(masks[0])
        if len(masks) == 2:
          expected.add(masks[1])  # both formats present: the .bmp original is used
        items.append({"id": f"{d.name}/{stem}", "group": d.name, "path": d / n,
                      "mask": d / masks[0]})
      extra = sorted(names - expected)
      if extra:
        raise DatasetError(f"{d}: unexpected files {extra[:5]}; expected PartK.jpg and "
                           f"PartK_label.(bmp|png)")
    if not items:
      raise DatasetError(f"{self.root}: no kosNN folders")
    return items

  def _load(self, item):
    image = read_image(item["path"], ("L",))
    mask = read_mask(item["mask"], image.shape[:2])
    label = np.int32(mask.any())
    item.setdefault("label", int(label))  # cache for .labels
    return {"image": image, "mask": mask, "label": label, "id": item["id"]}

  @property
  def labels(self) -> np.ndarray:
    for it in self._items:
      if "label" not in it:
        it["label"] = int(read_mask(it["mask"], _image_hw(it["path"])).any())
    return super().labels

  @property
  def groups(self) -> list[str]:
    """The commutator (``kosNN``) of each item, in source order."""
    return [it["group"] for it in self._items]


# --------------------------------------------------------------------------
# CrackForest
# --------------------------------------------------------------------------


class CrackForest(_FileSource):
  """CrackForest (CFD): 118 road images 480x320 RGB with crack ground truth.

  Layout: ``root/image/NNN.jpg`` with ground truth ``root/groundTruth/NNN.mat``
  (original BSDS-style struct, read with ``scipy.io.loadmat``; crack =
  ``Segmentation`` value in ``crack_labels``) or ``root/mask/NNN.png``
  (0/255). ``ground_truth="auto"`` prefers the .mat files. Images without
  ground truth are an error (``unlabeled/`` is not read).

  Records: ``image`` uint8 [320, 480, 3], ``mask`` uint8 [320, 480] in {0, 1},
  ``label`` 1 (every annotated image has a crack; the defect / defect-free
  split is made on patches, see :class:`~defects_jax.data.splits.CrackForestPatches`),
  ``id`` ``"NNN"``.

  Args:
    root: dataset folder (or its parent), None for ``$DEFECTS_JAX_DATA``.
    ground_truth: ``"auto"``, ``"mat"`` or ``"mask"``.
    crack_labels: ``Segmentation`` values that count as crack. Default (2, 4):
      2 = crack, 4 = a second crack component in 5 images; 3 (background
      enclosed by crack loops) is not crack.
    on_error: ``"raise"`` or ``"skip"``.
  """

  folder_name = "CrackForest"
  class_names = ("defect-free", "crack")

  def __init__(self, root=None, *, ground_truth: str = "auto",
               crack_labels: Sequence[int] = (2, 4), on_error: str = "raise"):
    if ground_truth not in ("auto", "mat", "mask"):
      raise ValueError(f'ground_truth must be "auto", "mat" or "mask", got {ground_truth!r}')
    self.ground_truth = ground_truth
    self.crack_labels = tuple(int(c) for c in crack_labels)
    super().__init__(root, on_error=on_error)

  def _scan(self):
    image_dir = self.root / "image"
    if not image_dir.is_dir():
      raise DatasetError(f"{image_dir}: missing; expected CrackForest's image/NNN.jpg folder")
    kind = self.ground_truth
    if kind == "auto":
      kind = "mat" if (self.root / "groundTruth").is_dir() else "mask"
    gt_dir = self.root / ("groundTruth" if kind == "mat" else "mask")
    if not gt_dir.is_dir():
      raise DatasetError(f"{gt_dir}: missing; expected ground truth as groundTruth/NNN.mat "
                         f"or mask/NNN.png")
    items = []
    for f in sorted(image_dir.iterdir()):
      if f.name.startswith(".") or f.suffix.lower() == ".rar":
        continue  # the source repository ships image.rar, an archive of the same images
      if f.suffix.lower() not in IMAGE_SUFFIXES:
        raise DatasetError(f"{f}: unexpected file; expected NNN.jpg images")
      gt = gt_dir / (f.stem + (".mat" if kind == "mat" else ".png"))
      if not gt.is_file():
        raise DatasetError(f"{f}: no ground truth {gt}")
      items.append({"id": f.stem, "path": f, "gt": gt, "gt_kind": kind, "label": 1})
    return items

  def _read_mat(self, path: Path, shape) -> np.ndarray:
    import scipy.io  # pylint: disable=g-import-not-at-top
    try:
      seg = scipy.io.loadmat(str(path))["groundTruth"][0, 0]["Segmentation"]
      while seg.dtype == object:  # cell/struct nesting differs between writers
        seg = seg.flat[0]
    except (KeyError, IndexError, ValueError, TypeError, OSError) as e:
      raise DatasetError(f"{path}: expected a BSDS-style groundTruth{{1}}.Segmentation "
                         f"struct ({type(e).__name__}: {e})") from e
    if seg.shape != tuple(shape):
      raise DatasetError(f"{path}: Segmentation is {seg.shape} but its image is {shape}")
    return np.isin(seg, self.crack_labels).astype(np.uint8)

  def _read_gt(self, item, hw) -> np.ndarray:
    if item["gt_kind"] == "mat":
      return self._read_mat(item["gt"], hw)
    return read_mask(item["gt"], hw)

  def _load(self, item):
    image = read_image(item["path"], ("RGB",))
    return {"image": image, "mask": self._read_gt(item, image.shape[:2]),
            "label": np.int32(1), "id": item["id"]}

  def mask(self, index: int) -> np.ndarray:
    """The crack mask of item ``index`` (uint8 [H, W] in {0, 1}) without decoding
    the image (its size comes from the header)."""
    item = self._items[index]
    return self._read_gt(item, _image_hw(item["path"]))


# --------------------------------------------------------------------------
# MVTec AD
# --------------------------------------------------------------------------


class MVTecAD(_FileSource):
  """One MVTec AD category, good vs defective, with whatever images are present.

  Layout: ``root/<category>/train/good/NNN.png``, ``test/<type>/NNN.png`` and
  ``ground_truth/<type>/NNN_mask.png``. Images are RGB or grayscale (some
  categories are ``L``). ``train`` holds only ``good``.

  Records: ``image`` uint8 [H, W, C], ``label`` 0 (good) / 1 (defective),
  ``mask`` uint8 [H, W] in {0, 1}, ``has_mask`` bool (False for a defective
  image whose mask file is absent: its mask is then all zeros and means
  "unknown"), ``defect_type`` str, ``id`` ``"test/cut/000"``. Masks without an
  image are listed in :attr:`orphan_masks` (partial copies have them).
  """

  folder_name = "mvtec_ad"

  def __init__(self, root=None, category: str = "leather", *, on_error: str = "raise"):
    self.category = category
    self.orphan_masks: list[str] = []
    super().__init__(root, on_error=on_error)

  def _scan(self):
    cat = self.root / self.category
    if not cat.is_dir():
      present = sorted(p.name for p in self.root.iterdir() if p.is_dir())
      raise DatasetError(f"{cat}: category folder not found (present: {present})")
    items = []
    for split in ("train", "test"):
      split_dir = cat / split
      if not split_dir.is_dir():
        raise DatasetError(f"{split_dir}: missing; expected {split}/<type>/NNN.png")
      for type_dir in sorted(p for p in split_dir.iterdir() if not p.name.startswith(".")):
        if not type_dir.is_dir():
          raise DatasetError(f"{type_dir}: unexpected file; expected defect-type folders")
        if split == "train" and type_dir.name != "good":
          raise DatasetError(f"{type_dir}: train/ should hold only good/")
        files = _list_files(type_dir, IMAGE_SUFFIXES)
        if not files:
          raise DatasetError(f"{type_dir}: empty defect-type folder")
        good = type_dir.name == "good"
        for f in files:
          mask = cat / "ground_truth" / type_dir.name / f"{f.stem}_mask.png"
          items.append({"id": f"{split}/{type_dir.name}/{f.stem}", "path": f,
                        "mask": None if good or not mask.is_file() else mask,
                        "label": 0 if good else 1, "defect_type": type_dir.name})
    gt = cat / "ground_truth"
    if gt.is_dir():
      have = {(it["defect_type"], it["path"].stem) for it in items}
      for m in sorted(gt.glob("*/*_mask.png")):
        if (m.parent.name, m.stem[:-len("_mask")]) not in have:
          self.orphan_masks.append(str(m.relative_to(cat)))
      if self.orphan_masks:
        _log.info("%s: %d mask(s) without an image: %s", cat, len(self.orphan_masks),
                  self.orphan_masks[:5])
    return items

  def _load(self, item):
    image = read_image(item["path"], ("RGB", "L"))
    if item["mask"] is not None:
      mask, has_mask = read_mask(item["mask"], image.shape[:2]), True
    else:
      mask, has_mask = np.zeros(image.shape[:2], np.uint8), item["label"] == 0
    return {"image": image, "mask": mask, "label": np.int32(item["label"]),
            "has_mask": np.bool_(has_mask), "defect_type": item["defect_type"],
            "id": item["id"]}


# --------------------------------------------------------------------------
# Selection by name
# --------------------------------------------------------------------------

SOURCES = {"neu": NEUCLS, "kolektor": KolektorSDD, "crackforest": CrackForest,
           "mvtec": MVTecAD}


def load_source(name: str, *, root=None, on_error: str = "raise", verify: bool = False,
                **synthetic):
  """A source by name: ``"neu"``, ``"kolektor"``, ``"crackforest"``,
  ``"mvtec"`` (from ``root`` or ``$DEFECTS_JAX_DATA``), or ``"synthetic"``
  (:class:`~defects_jax.data.SyntheticDefects` built from the keyword
  arguments ``synthetic``; no files).

  Args:
    name: the dataset.
    root: data folder (None: ``$DEFECTS_JAX_DATA``).
    on_error: ``"raise"`` or ``"skip"`` (unreadable files left out and listed
      in ``source.skipped``).
    verify: decode every file now (:meth:`_FileSource.verify`) so a bad file
      stops the run before training; implied by ``on_error="skip"``.

  Raises:
    DatasetError: unknown name, missing folder, bad layout or bad file.
  """
  if name == "synthetic":
    from defects_jax.data.synthetic import SyntheticDefects  # pylint: disable=g-import-not-at-top
    return SyntheticDefects(**synthetic)
  if name not in SOURCES:
    raise DatasetError(f"unknown dataset {name!r}; expected one of "
                       f"{sorted(SOURCES) + ['synthetic']}")
  source = SOURCES[name](root, on_error=on_error)
  if verify and on_error == "raise":
    source.verify()
  return source


def load_neu_or_synthetic(name: str, *, image_size: int, seed: int = 0, root=None,
                          on_error: str = "raise"):
  """What the NEU-CLS experiments read: NEU-CLS (``name="neu"``; every file
  decoded up front, so a bad file stops the run before training) or
  (``"synthetic"``) the synthetic six classes drawn as NEU's 1800 images, 300
  per class, at ``image_size`` (at least 32) with ``seed``."""
  return load_source(name, root=root, on_error=on_error, verify=True, num_images=1800,
                     image_size=max(image_size, 32), seed=seed)

