"""Tests of the rkd-sarsn preprocessing and mosaic/fusion augmentation."""

import pickle

import numpy as np
import pytest

from defects_jax import data
from defects_jax.data import preprocessing as P


def noisy_step(h=32, w=32):
  rng = np.random.default_rng(0)
  clean = np.where(np.arange(w)[None, :] < w // 2, 60.0, 180.0) * np.ones((h, 1))
  return np.clip(clean + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)[..., None], clean


def test_bilateral_denoises_but_keeps_the_edge():
  noisy, clean = noisy_step()
  out = P.bilateral_filter(noisy, sigma_color=0.15, sigma_spatial=2)
  assert out.dtype == np.uint8 and out.shape == noisy.shape
  err = lambda x: np.abs(x[..., 0].astype(float) - clean)
  assert err(out).mean() < 0.6 * err(noisy).mean()
  # Edge kept: the two halves stay far apart.
  assert out[:, :14].mean() < 90 and out[:, 18:].mean() > 150


def test_contrast_stretch_hand_values():
  img = np.array([[[100], [110], [120], [130]]], np.uint8)
  out = P.contrast_stretch(img, low_percentile=0, high_percentile=100)
  np.testing.assert_array_equal(out[0, :, 0], [0, 85, 170, 255])
  flat = np.full((2, 2, 1), 7, np.uint8)
  np.testing.assert_array_equal(P.contrast_stretch(flat), flat)


def test_otsu_splits_a_bimodal_image():
  noisy, clean = noisy_step()
  m = P.otsu_mask(noisy)
  assert m.dtype == np.uint8 and ((m == 1) == (clean > 120)).mean() > 0.95
  assert P.otsu_mask(np.zeros((3, 3, 1), np.uint8)).sum() == 0


def test_preprocess_transform_chain():
  noisy, _ = noisy_step()
  out = P.SARSNPreprocess(with_otsu=True).map({"image": noisy, "label": np.int32(1)})
  assert out["image"].shape == noisy.shape and out["otsu_mask"].shape == noisy.shape[:2]
  assert out["image"].min() == 0 and out["image"].max() == 255  # stretched
  with pytest.raises(ValueError, match="uint8"):
    P.bilateral_filter(noisy.astype(np.float32))


def test_mosaic_layout_seams_and_size():
  quads = np.stack([np.full((8, 8, 1), v, np.uint8) for v in (0, 80, 160, 240)])
  out = P.mosaic(quads, seam_width=1, median_size=3)
  assert out.shape == (8, 8, 1) and out.dtype == np.uint8
  # Corners keep their source image's grey level.
  assert out[0, 0, 0] == 0 and out[0, 7, 0] == 80 and out[7, 0, 0] == 160 and out[7, 7, 0] == 240
  # Without blur the 16x16 grid would be exact; the seam band is median-filtered.
  big = P.mosaic(np.stack([np.eye(16, dtype=np.uint8)[..., None] * 255] * 4),
                 seam_width=2, median_size=3)
  assert big.shape == (16, 16, 1)
  with pytest.raises(ValueError, match=r"\[4, H, W, C\]"):
    P.mosaic(quads[:3])


def test_fuse_hand_values():
  a, b = np.full((2, 2, 1), 200, np.uint8), np.full((2, 2, 1), 100, np.uint8)
  np.testing.assert_array_equal(P.fuse(a, b, weight=0.25), np.full((2, 2, 1), 125))
  with pytest.raises(ValueError, match="one shape"):
    P.fuse(a, b[:1])


@pytest.mark.parametrize("kind", ["mosaic", "fusion"])
def test_same_class_augmented_source(kind):
  src = data.SyntheticDefects(36, image_size=32)
  aug = P.SameClassAugmented(src, 20, kind=kind, seed=1)
  rec = aug[3]
  assert rec["image"].shape == (32, 32, 1) and rec["image"].dtype == np.uint8
  parts = rec["id"].split(":")[1].split("+")
  assert len(parts) == (4 if kind == "mosaic" else 2) and len(set(parts)) == len(parts)
  # Every part comes from the record's class.
  labels = dict(zip(src.ids, src.labels.tolist()))
  assert {labels[p] for p in parts} == {int(rec["label"])}
  np.testing.assert_array_equal(pickle.loads(pickle.dumps(aug))[3]["image"], rec["image"])
  with pytest.raises(ValueError, match="images per class"):
    P.SameClassAugmented(data.SyntheticDefects(12, image_size=16), 5, kind="mosaic")
