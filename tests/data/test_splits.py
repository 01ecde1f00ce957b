"""Tests of defects_jax.data.splits: determinism, disjointness, nesting, JSON."""

import numpy as np
import pytest

from defects_jax import data
from defects_jax.data import DatasetError
from defects_jax.data import splits
from tests.data.conftest import real_dataset


@pytest.fixture(scope="module")
def synth_classes():
  return data.SyntheticDefects(300 * 6, image_size=16)  # NEU-sized: 300 per class


def test_neu_fewshot_protocol(synth_classes):
  s = data.neu_fewshot_split(synth_classes, seed=3)
  labels = dict(zip(synth_classes.ids, synth_classes.labels.tolist()))
  assert len(s["train"]) == 1200 and len(s["test"]) == 600
  assert not set(s["train"]) & set(s["test"])
  for n in splits.NEU_SHOTS:
    sub = s[f"train_{n}"]
    assert np.bincount([labels[i] for i in sub], minlength=6).tolist() == [n] * 6
  for big, small in zip(splits.NEU_SHOTS, splits.NEU_SHOTS[1:]):
    assert set(s[f"train_{small}"]) < set(s[f"train_{big}"])
  assert set(s["train_200"]) == set(s["train"])
  # Deterministic per seed, different across seeds.
  assert data.neu_fewshot_split(synth_classes, seed=3) == s
  assert data.neu_fewshot_split(synth_classes, seed=4)["train_10"] != s["train_10"]


def test_neu_fewshot_rejects_too_few(tmp_path):
  small = data.SyntheticDefects(60, image_size=16)  # 10 per class
  with pytest.raises(DatasetError, match="200 training images per class"):
    data.neu_fewshot_split(small)


def test_stratified_7_3(synth_classes):
  s = data.stratified_split(synth_classes, train_fraction=0.7, seed=0)
  labels = dict(zip(synth_classes.ids, synth_classes.labels.tolist()))
  assert np.bincount([labels[i] for i in s["train"]]).tolist() == [210] * 6
  assert np.bincount([labels[i] for i in s["test"]]).tolist() == [90] * 6
  assert not set(s["train"]) & set(s["test"])


def test_split_json_round_trip_and_subset(synth_classes, tmp_path):
  s = data.neu_fewshot_split(synth_classes, seed=1)
  s.save(tmp_path / "split.json")
  loaded = data.Split.load(tmp_path / "split.json")
  assert loaded == s
  sub = data.Subset(synth_classes, loaded["train_10"])
  assert len(sub) == 60
  np.testing.assert_array_equal(sub[0]["image"], synth_classes[sub.source.index_of(
      [loaded["train_10"][0]])[0]]["image"])
  assert sub.class_names == synth_classes.class_names
  with pytest.raises(DatasetError, match="ids not in"):
    data.Subset(synth_classes, ["synthetic/999999"])
  (tmp_path / "bad.json").write_text("{}")
  with pytest.raises(DatasetError, match="bad.json: not a split file"):
    data.Split.load(tmp_path / "bad.json")
  with pytest.raises(KeyError, match="no subset 'train_7'"):
    loaded["train_7"]


def test_neu_fewshot_on_real_data(real_root):
  real_dataset(real_root, "NEU-CLS")
  src = data.NEUCLS(real_root)
  s = data.neu_fewshot_split(src, seed=0)
  assert len(s["train"]) == 1200 and len(s["test"]) == 600
  assert len(s["train_10"]) == 60
  assert set(s["train_10"]) < set(s["train_30"]) < set(s["train_50"])


def test_kolektor_folds_on_real_data(real_root):
  real_dataset(real_root, "KolektorSDD")
  src = data.KolektorSDD(real_root)
  folds = data.kolektor_folds(src, seed=0)
  all_ids = [i for f in folds.subsets.values() for i in f]
  assert sorted(all_ids) == sorted(src.ids)  # a partition
  fold_of_group = {}
  for name, ids in folds.subsets.items():
    for i in ids:
      fold_of_group.setdefault(i.split("/")[0], set()).add(name)
  assert all(len(f) == 1 for f in fold_of_group.values())  # no commutator split
  assert fold_of_group["kos01"] == fold_of_group["kos26"]
  assert fold_of_group["kos27"] == fold_of_group["kos34"]
  labels = dict(zip(src.ids, src.labels.tolist()))
  positives = [sum(labels[i] for i in f) for f in folds.subsets.values()]
  assert sum(positives) == 52 and max(positives) - min(positives) <= 2
  assert data.kolektor_folds(src, seed=0) == folds
  # Capping positive training images: nested, negatives untouched.
  s5 = data.kolektor_fold_split(folds, 0, source=src, num_positive=5, seed=1)
  s20 = data.kolektor_fold_split(folds, 0, source=src, num_positive=20, seed=1)
  full = data.kolektor_fold_split(folds, 0)
  pos = lambda ids: {i for i in ids if labels[i]}
  assert len(pos(s5["train"])) == 5 and pos(s5["train"]) < pos(s20["train"])
  assert {i for i in s5["train"] if not labels[i]} == {i for i in full["train"]
                                                       if not labels[i]}
  assert not set(full["train"]) & set(full["test"])
  with pytest.raises(ValueError, match="num_positive must be in"):
    data.kolektor_fold_split(folds, 0, source=src, num_positive=100)


def test_kolektor_folds_keep_linked_groups_together(fake_kolektor):
  src = data.KolektorSDD(fake_kolektor)
  folds = data.kolektor_folds(src, num_folds=2, linked=(("kos01", "kos02"),))
  assert sorted(len(v) for v in folds.subsets.values()) == [0, 4]


def test_crackforest_patches_on_real_data(real_root):
  real_dataset(real_root, "CrackForest")
  src = data.CrackForest(real_root)
  s = data.crackforest_split(src, seed=0)
  assert len(s["train"]) == 88 and len(s["test"]) == 30
  assert not set(s["train"]) & set(s["test"])
  train = data.CrackForestPatches(src, s["train"])
  test = data.CrackForestPatches(src, s["test"])
  # The counts the defaults produce (documented in the docstring and README).
  assert train.counts() == {"defect-free": 2103, "defect": 930, "ambiguous (left out)": 47}
  assert test.counts() == {"defect-free": 686, "defect": 347, "ambiguous (left out)": 17}
  train_images = {i.split("@")[0] for i in train.ids}
  test_images = {i.split("@")[0] for i in test.ids}
  assert not train_images & test_images
  rec = train[int(np.flatnonzero(train.labels == 1)[0])]
  assert rec["image"].shape == (64, 64, 3) and rec["mask"].sum() >= 20
  rec = train[int(np.flatnonzero(train.labels == 0)[0])]
  assert rec["mask"].sum() == 0
  # dg2gan Table 1 counts by capping.
  t1 = data.CrackForestPatches(src, s["train"], max_counts=(1000, 300), seed=0)
  assert t1.counts()["defect-free"] == 1000 and t1.counts()["defect"] == 300
  with pytest.raises(DatasetError, match="max_counts asks for 5000"):
    data.CrackForestPatches(src, s["test"], max_counts=(5000, 10))


def test_mvtec_stratified_on_real_data(real_root):
  real_dataset(real_root, "mvtec_ad")
  src = data.MVTecAD(real_root, "leather")
  s = data.stratified_split(src, train_fraction=0.75, seed=0, protocol="mvtec")
  labels = dict(zip(src.ids, src.labels.tolist()))
  assert sum(labels[i] for i in s["train"]) == 15 and sum(labels[i] for i in s["test"]) == 5
