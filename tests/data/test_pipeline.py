"""Tests of the grain pipeline and the numpy transforms."""

import json

import numpy as np
import pytest

from defects_jax import data
from defects_jax.data import transforms as T
from tests.data.conftest import real_dataset

AUG = [T.RandomCrop(24), T.RandomFlip(horizontal=True, vertical=True), T.RandomRot90(),
       T.ToFloat()]


def collect(loader, n=None, state=None):
  """Up to n batches (all if None), then the iterator state; closes the iterator."""
  it = iter(loader)
  if state is not None:
    it.set_state(state)
  out = []
  try:
    for batch in it:
      out.append(batch)
      if n is not None and len(out) == n:
        break
    return out, it.get_state()
  finally:
    it.close()


def assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


@pytest.fixture(scope="module")
def synth():
  return data.SyntheticDefects(60, image_size=32, seed=1)


def loader(src, **kw):
  args = dict(batch_size=8, seed=3, transforms=AUG, num_epochs=2)
  args.update(kw)
  return data.make_loader(src, **args)


def test_batches_shapes_epochs_and_determinism(synth):
  batches, _ = collect(loader(synth))
  assert len(batches) == (2 * 60) // 8  # batches run across the epoch boundary
  b = batches[0]
  assert b["image"].shape == (8, 24, 24, 1) and b["image"].dtype == np.float32
  assert b["mask"].shape == (8, 24, 24) and b["label"].dtype == np.int32
  assert -1.0 <= b["image"].min() and b["image"].max() <= 1.0
  again, _ = collect(loader(synth))
  assert_same_batches(batches, again)
  other, _ = collect(loader(synth, seed=4))
  assert not np.array_equal(other[0]["image"], batches[0]["image"])
  # Each epoch is a permutation of the source, reshuffled between epochs.
  plain, _ = collect(loader(synth, transforms=[], batch_size=6))
  ids = [i for b in plain for i in b["id"]]
  assert sorted(ids[:60]) == sorted(ids[60:]) == sorted(synth.ids)
  assert ids[:60] != ids[60:]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_gives_identical_batches(synth, workers):
  full, _ = collect(loader(synth, worker_count=workers))
  head, state = collect(loader(synth, worker_count=workers), n=5)
  state = json.loads(json.dumps(state))  # what a checkpoint stores and reads back
  tail, _ = collect(loader(synth, worker_count=workers), state=state)
  assert_same_batches(full, head + tail)


def test_workers_match_in_process(synth):
  in_process, _ = collect(loader(synth))
  workers, _ = collect(loader(synth, worker_count=2))
  assert_same_batches(in_process, workers)
  assert type(workers[0]["image"]) is np.ndarray  # copied out of shared memory


def test_keep_remainder_and_no_shuffle(synth):
  batches, _ = collect(data.make_loader(synth, batch_size=7, shuffle=False, drop_remainder=False))
  assert [len(b["id"]) for b in batches] == [7] * 8 + [4]
  assert list(batches[0]["id"]) == [f"synthetic/{i}" for i in range(7)]


def test_loader_argument_errors(synth):
  with pytest.raises(ValueError, match="batch_size"):
    data.make_loader(synth, batch_size=0)
  with pytest.raises(TypeError, match="grain Map/RandomMap"):
    data.make_loader(synth, batch_size=2, transforms=[lambda r: r])


def test_loader_over_real_neu_subset(real_root):
  real_dataset(real_root, "NEU-CLS")
  src = data.NEUCLS(real_root)
  split = data.neu_fewshot_split(src)
  sub = data.Subset(src, split["train_10"])
  ts = data.classification_transforms(64, train=True, rgb=True)
  batches, _ = collect(data.make_loader(sub, batch_size=12, transforms=ts))
  assert len(batches) == 5
  assert batches[0]["image"].shape == (12, 64, 64, 3) and set(batches[0]) == {"image", "label"}


# --------------------------------------------------------------------------
# transforms
# --------------------------------------------------------------------------


def record(h=6, w=8, c=1):
  img = np.arange(h * w * c, dtype=np.uint8).reshape(h, w, c)
  mask = (np.arange(h * w).reshape(h, w) % 3 == 0).astype(np.uint8)
  return {"image": img, "mask": mask, "label": np.int32(2), "id": "r"}


def test_resize_image_bilinear_mask_nearest():
  r = T.Resize((12, 16)).map(record())
  assert r["image"].shape == (12, 16, 1) and r["image"].dtype == np.uint8
  assert r["mask"].shape == (12, 16) and set(np.unique(r["mask"])) <= {0, 1}
  np.testing.assert_array_equal(r["mask"][::2, ::2], record()["mask"])  # nearest, x2
  f = T.Resize(4).map({"image": np.ones((8, 8, 3), np.float32)})
  assert f["image"].shape == (4, 4, 3) and f["image"].dtype == np.float32
  with pytest.raises(ValueError, match="interpolation"):
    T.Resize(4, interpolation="cubic")


def test_crops_keep_image_and_mask_aligned():
  rec = record()
  c = T.CenterCrop((2, 4)).map(rec)
  np.testing.assert_array_equal(c["image"], rec["image"][2:4, 2:6])
  np.testing.assert_array_equal(c["mask"], rec["mask"][2:4, 2:6])
  rng = np.random.default_rng(0)
  for _ in range(20):
    r = T.RandomCrop(3).random_map(rec, rng)
    y, x = np.argwhere(rec["image"][..., 0] == r["image"][0, 0, 0])[0]
    np.testing.assert_array_equal(r["mask"], rec["mask"][y:y + 3, x:x + 3])
  with pytest.raises(ValueError, match=r"crop 7x7 larger than image 6x8"):
    T.CenterCrop(7).map(rec)


def test_flip_and_rot90_keep_alignment():
  rec = record(6, 6)
  rng = np.random.default_rng(1)
  seen = set()
  for _ in range(200):
    r = T.RandomRot90().random_map(rec, rng)
    r = T.RandomFlip(True, True).random_map(r, rng)
    # The mask moves with the image: pixel values of masked positions agree.
    np.testing.assert_array_equal(np.sort(r["image"][r["mask"] == 1, 0]),
                                  np.sort(rec["image"][rec["mask"] == 1, 0]))
    seen.add(r["image"].tobytes())
  assert len(seen) == 8  # the dihedral group of the square
  with pytest.raises(ValueError, match=r"quarter turn of a 6x8 image"):
    for _ in range(20):
      T.RandomRot90().random_map(record(), rng)
  half = T.RandomRot90((0, 2)).random_map(record(), rng)
  assert half["image"].shape == (6, 8, 1)


def test_float_and_color_conversions():
  rec = {"image": np.array([[[0], [255]]], np.uint8)}
  np.testing.assert_allclose(T.ToFloat().map(rec)["image"][..., 0], [[-1.0, 1.0]])
  norm = T.ToFloat(mean=[0.5], std=[0.25]).map(rec)["image"]
  np.testing.assert_allclose(norm[..., 0], [[-2.0, 2.0]])
  with pytest.raises(ValueError, match="both mean and std"):
    T.ToFloat(mean=[0.5])
  with pytest.raises(ValueError, match="uint8"):
    T.ToFloat().map({"image": np.zeros((1, 1, 1), np.float32)})
  rgb = T.ToRGB().map(rec)["image"]
  assert rgb.shape == (1, 2, 3) and (rgb == rec["image"]).all()
  gray = T.ToGrayscale().map({"image": np.array([[[255, 0, 0], [10, 20, 30]]], np.uint8)})
  np.testing.assert_array_equal(gray["image"][..., 0], [[76, 18]])  # PIL 'L' luma
  assert T.ToGrayscale().map(rec) is rec and T.ToRGB().map({"image": rgb})["image"] is rgb
  assert set(T.SelectKeys(["image"]).map(record())) == {"image"}
  with pytest.raises(KeyError, match="has no"):
    T.SelectKeys(["nope"]).map(record())
