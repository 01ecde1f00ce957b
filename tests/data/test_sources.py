"""Tests of defects_jax.data.sources: real-data counts and every bad-input case."""

import logging
import pickle

import numpy as np
import pytest
import scipy.io

from defects_jax import data
from defects_jax.data import DatasetError
from tests.data.conftest import real_dataset
from tests.data.conftest import write_png

# --------------------------------------------------------------------------
# The shared real datasets
# --------------------------------------------------------------------------


def test_neu_cls_counts(real_root):
  real_dataset(real_root, "NEU-CLS")
  src = data.NEUCLS(real_root)
  assert len(src) == 1800
  assert np.bincount(src.labels).tolist() == [300] * 6
  rec = src[0]
  assert rec["image"].shape == (200, 200, 1) and rec["image"].dtype == np.uint8
  assert rec["label"].dtype == np.int32 and rec["id"] == "Cr_1"
  last = src[len(src) - 1]
  assert last["image"].shape == (200, 200, 1) and int(last["label"]) == 5


def test_kolektor_counts(real_root):
  real_dataset(real_root, "KolektorSDD")
  src = data.KolektorSDD(real_root)
  assert len(src) == 399
  assert int(src.labels.sum()) == 52
  assert len(set(src.groups)) == 50
  i = src.ids.index("kos38/Part0")  # a defective image (manifest)
  rec = src[i]
  assert rec["image"].shape[2] == 1 and rec["mask"].shape == rec["image"].shape[:2]
  assert int(rec["label"]) == 1 and set(np.unique(rec["mask"])) == {0, 1}
  # The palette mask with three indices (kos20/Part4) still reads as binary.
  rec = src[src.ids.index("kos20/Part4")]
  assert set(np.unique(rec["mask"])) <= {0, 1}


def test_crackforest_counts_and_mat_equals_png(real_root):
  real_dataset(real_root, "CrackForest")
  mat = data.CrackForest(real_root, ground_truth="mat")
  png = data.CrackForest(real_root, ground_truth="mask")
  assert len(mat) == len(png) == 118
  for i in (0, 57, 117):
    a, b = mat[i], png[i]
    assert a["image"].shape == (320, 480, 3)
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert 0 < a["mask"].mean() < 0.07


def test_mvtec_leather_as_present(real_root):
  real_dataset(real_root, "mvtec_ad")
  src = data.MVTecAD(real_root, "leather")
  assert len(src) == 28 and int(src.labels.sum()) == 20
  assert len(src.orphan_masks) == 7
  has = [bool(src[i]["has_mask"]) for i in range(len(src))]
  assert sum(has) == 8 + 11  # good images plus the 11 defective ones with masks
  assert src[0]["image"].shape == (256, 256, 3)


def test_sources_pickle_and_read_after_unpickling(real_root):
  real_dataset(real_root, "KolektorSDD")
  src = data.KolektorSDD(real_root)
  clone = pickle.loads(pickle.dumps(src))
  np.testing.assert_array_equal(clone[5]["image"], src[5]["image"])


# --------------------------------------------------------------------------
# Root resolution
# --------------------------------------------------------------------------


def test_root_from_env_or_parent(fake_neu, monkeypatch):
  monkeypatch.setenv("DEFECTS_JAX_DATA", str(fake_neu.parent))
  assert len(data.NEUCLS()) == 12
  assert len(data.NEUCLS(fake_neu.parent)) == 12  # the parent folder works too
  assert len(data.NEUCLS(fake_neu)) == 12


def test_missing_root_and_unset_env(tmp_path, monkeypatch):
  monkeypatch.delenv("DEFECTS_JAX_DATA", raising=False)
  with pytest.raises(DatasetError, match="DEFECTS_JAX_DATA"):
    data.NEUCLS()
  with pytest.raises(DatasetError, match="nowhere.*not found"):
    data.NEUCLS(tmp_path / "nowhere")


# --------------------------------------------------------------------------
# Bad input, NEU-CLS layout
# --------------------------------------------------------------------------


def test_unknown_class_folder(fake_neu):
  write_png(fake_neu / "rust" / "Ru_1.png", np.zeros((8, 8), np.uint8))
  with pytest.raises(DatasetError, match=r"rust: unknown class folder"):
    data.NEUCLS(fake_neu)


def test_empty_and_missing_class_folder(fake_neu):
  for f in (fake_neu / "scratches").iterdir():
    f.unlink()
  with pytest.raises(DatasetError, match=r"scratches: empty class folder"):
    data.NEUCLS(fake_neu)
  (fake_neu / "scratches").rmdir()
  with pytest.raises(DatasetError, match=r"missing class folder\(s\) \['scratches'\]"):
    data.NEUCLS(fake_neu)


def test_unexpected_file_in_class_folder(fake_neu):
  (fake_neu / "patches" / "notes.txt").write_text("hi")
  with pytest.raises(DatasetError, match=r"patches: unexpected entries \['notes.txt'\]"):
    data.NEUCLS(fake_neu)


def test_flat_layout_and_bad_prefix(tmp_path):
  root = tmp_path / "NEU-CLS"
  write_png(root / "Cr_1.png", np.zeros((8, 8), np.uint8))
  write_png(root / "Sc_7.png", np.zeros((8, 8), np.uint8))
  src = data.NEUCLS(root)
  assert src.labels.tolist() == [0, 5] and src.ids == ["Cr_1", "Sc_7"]
  write_png(root / "Xx_1.png", np.zeros((8, 8), np.uint8))
  with pytest.raises(DatasetError, match=r"Xx_1.png: file name should be <prefix>_<n>"):
    data.NEUCLS(root)


def test_corrupt_image_raises_naming_the_file(fake_neu):
  bad = fake_neu / "inclusion" / "In_2.png"
  bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
  src = data.NEUCLS(fake_neu)  # the layout is fine; decoding fails on read
  i = src.ids.index("In_2")
  with pytest.raises(DatasetError, match=r"In_2.png: cannot decode image"):
    src[i]


def test_truncated_image_raises(fake_neu):
  path = fake_neu / "patches" / "Pa_1.png"
  big = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
  write_png(path, big)
  path.write_bytes(path.read_bytes()[:200])
  src = data.NEUCLS(fake_neu)
  with pytest.raises(DatasetError, match=r"Pa_1.png: cannot decode image"):
    src[src.ids.index("Pa_1")]


def test_on_error_skip_counts_and_reports(fake_neu, caplog):
  (fake_neu / "inclusion" / "In_2.png").write_bytes(b"not an image")
  write_png(fake_neu / "crazing" / "Cr_1.png", np.zeros((8, 8, 3), np.uint8))  # RGB
  with caplog.at_level(logging.WARNING):
    src = data.NEUCLS(fake_neu, on_error="skip")
  assert len(src) == 10
  assert sorted(i for i, _ in src.skipped) == ["Cr_1", "In_2"]
  assert "skipped 2 unreadable" in caplog.text
  assert "skipped=2" in repr(src)


def test_unexpected_image_mode(fake_neu):
  write_png(fake_neu / "crazing" / "Cr_1.png", np.zeros((8, 8, 3), np.uint8))
  src = data.NEUCLS(fake_neu)
  with pytest.raises(DatasetError, match=r"Cr_1.png: image mode 'RGB', expected one of \['L'\]"):
    src[0]


def test_invalid_on_error():
  with pytest.raises(ValueError, match="on_error"):
    data.NEUCLS("/nonexistent", on_error="ignore")


# --------------------------------------------------------------------------
# Bad input, masks and other layouts
# --------------------------------------------------------------------------


def test_kolektor_fake_layout_and_labels(fake_kolektor):
  src = data.KolektorSDD(fake_kolektor)
  assert src.ids == ["kos01/Part0", "kos01/Part1", "kos02/Part0", "kos02/Part1"]
  assert src.labels.tolist() == [0, 0, 0, 1]
  assert src.groups == ["kos01", "kos01", "kos02", "kos02"]


def test_kolektor_mask_size_mismatch(fake_kolektor):
  write_png(fake_kolektor / "kos01" / "Part1_label.png", np.zeros((10, 6), np.uint8))
  src = data.KolektorSDD(fake_kolektor)
  with pytest.raises(DatasetError, match=r"Part1_label.png: mask is 6x10 \(WxH\) but its image "
                                         r"is 6x12"):
    src[1]


def test_kolektor_missing_mask_and_unexpected_folder(fake_kolektor):
  (fake_kolektor / "kos02" / "Part0_label.png").unlink()
  with pytest.raises(DatasetError, match=r"Part0.png: no mask Part0_label.bmp or "
                                         r"Part0_label.png"):
    data.KolektorSDD(fake_kolektor)
  (fake_kolektor / "extra").mkdir()
  with pytest.raises(DatasetError, match=r"extra: unexpected entry"):
    data.KolektorSDD(fake_kolektor)


def test_crackforest_bad_mat_and_missing_ground_truth(tmp_path):
  root = tmp_path / "CrackForest"
  write_png(root / "image" / "001.jpg", np.zeros((6, 8, 3), np.uint8))
  (root / "groundTruth").mkdir()
  scipy.io.savemat(root / "groundTruth" / "001.mat", {"something": np.zeros(3)})
  src = data.CrackForest(root)
  with pytest.raises(DatasetError, match=r"001.mat: expected a BSDS-style"):
    src[0]
  write_png(root / "image" / "002.jpg", np.zeros((6, 8, 3), np.uint8))
  with pytest.raises(DatasetError, match=r"002.jpg: no ground truth"):
    data.CrackForest(root)


def test_crackforest_mat_size_mismatch(tmp_path):
  root = tmp_path / "CrackForest"
  write_png(root / "image" / "001.jpg", np.zeros((6, 8, 3), np.uint8))
  (root / "groundTruth").mkdir()
  gt = np.empty((1, 1), dtype=object)
  gt[0, 0] = {"Segmentation": np.ones((5, 8), np.uint8), "Boundaries": np.zeros((5, 8))}
  scipy.io.savemat(root / "groundTruth" / "001.mat", {"groundTruth": gt})
  with pytest.raises(DatasetError, match=r"001.mat: Segmentation is \(5, 8\) but its image is "
                                         r"\(6, 8\)"):
    data.CrackForest(root)[0]


def test_mvtec_bad_layouts(tmp_path):
  root = tmp_path / "mvtec_ad"
  write_png(root / "leather" / "train" / "good" / "000.png", np.zeros((8, 8, 3), np.uint8))
  write_png(root / "leather" / "test" / "cut" / "000.png", np.zeros((8, 8, 3), np.uint8))
  write_png(root / "leather" / "ground_truth" / "cut" / "000_mask.png",
            np.full((8, 8), 255, np.uint8))
  src = data.MVTecAD(root, "leather")
  assert src.labels.tolist() == [0, 1] and int(src[1]["mask"].sum()) == 64
  with pytest.raises(DatasetError, match=r"wood: category folder not found"):
    data.MVTecAD(root, "wood")
  write_png(root / "leather" / "train" / "cut" / "000.png", np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(DatasetError, match=r"train/ should hold only good/"):
    data.MVTecAD(root, "leather")
