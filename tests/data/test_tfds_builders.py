"""Tests of the tfds builders: array_record built without TensorFlow, read back
through tfds.data_source into the same records and grain pipeline."""

import pickle
import sys

import numpy as np
import pytest

from defects_jax import data
from defects_jax.data import DatasetError
from defects_jax.data import tfds_builders as tb
from tests.data.conftest import real_dataset
from tests.data.conftest import write_png


def test_no_tensorflow_is_imported():
  assert "tensorflow" not in sys.modules


def test_build_fake_neu_and_read_back(fake_neu, tmp_path):
  out = tb.build("neu_cls", data_dir=tmp_path / "tfds", manual_dir=fake_neu)
  assert any(p.name.endswith(".array_record-00000-of-00001") for p in out.iterdir())
  src = tb.TFDSSource("neu_cls", data_dir=tmp_path / "tfds")
  folder = data.NEUCLS(fake_neu)
  assert len(src) == 12 and sorted(src.ids) == sorted(folder.ids)
  for k in range(len(src)):
    rec = src[k]
    ref = folder[folder.index_of([rec["id"]])[0]]
    np.testing.assert_array_equal(rec["image"], ref["image"])
    assert rec["label"] == ref["label"] and rec["label"].dtype == np.int32
  clone = pickle.loads(pickle.dumps(src))
  np.testing.assert_array_equal(clone[3]["image"], src[3]["image"])
  # Same splits and grain pipeline as any source.
  split = data.stratified_split(src, train_fraction=0.5, seed=0)
  it = iter(data.make_loader(data.Subset(src, split["train"]), batch_size=3,
                             transforms=data.classification_transforms(16, train=True)))
  batch = next(it)
  it.close()
  assert batch["image"].shape == (3, 16, 16, 1)


def test_build_fails_on_a_corrupt_file(fake_neu, tmp_path):
  (fake_neu / "patches" / "Pa_1.png").write_bytes(b"\x89PNG broken")
  with pytest.raises(DatasetError, match=r"Pa_1.png: cannot decode image"):
    tb.build("neu_cls", data_dir=tmp_path / "tfds", manual_dir=fake_neu)


def test_kolektor_fake_with_masks_and_groups(fake_kolektor, tmp_path):
  tb.build("kolektor_sdd", data_dir=tmp_path / "tfds", manual_dir=fake_kolektor)
  src = tb.TFDSSource("kolektor_sdd", data_dir=tmp_path / "tfds")
  assert sorted(src.ids) == ["kos01/Part0", "kos01/Part1", "kos02/Part0", "kos02/Part1"]
  k = src.ids.index("kos02/Part1")
  assert int(src[k]["mask"].sum()) == 4 and int(src.labels[k]) == 1
  assert sorted(set(src.groups)) == ["kos01", "kos02"]
  folds = data.kolektor_folds(src, num_folds=2)
  assert sorted(len(v) for v in folds.subsets.values()) == [2, 2]


def test_unknown_builder_and_missing_build(tmp_path):
  with pytest.raises(ValueError, match="unknown builder"):
    tb.TFDSSource("mnist", data_dir=tmp_path)
  with pytest.raises(DatasetError, match="no built 'neu_cls'"):
    tb.TFDSSource("neu_cls", data_dir=tmp_path / "empty")


@pytest.mark.slow
def test_build_real_datasets_into_a_temp_dir(real_root, tmp_path):
  real_dataset(real_root, "NEU-CLS")
  real_dataset(real_root, "KolektorSDD")
  tb.build("neu_cls", data_dir=tmp_path, manual_dir=real_root)
  tb.build("kolektor_sdd", data_dir=tmp_path, manual_dir=real_root)
  neu = tb.TFDSSource("neu_cls", data_dir=tmp_path)
  assert len(neu) == 1800 and np.bincount(neu.labels).tolist() == [300] * 6
  assert neu[0]["image"].shape == (200, 200, 1)
  kol = tb.TFDSSource("kolektor_sdd", data_dir=tmp_path)
  assert len(kol) == 399 and int(kol.labels.sum()) == 52 and len(set(kol.groups)) == 50
  folder = data.KolektorSDD(real_root)
  i = kol.ids.index("kos38/Part0")
  ref = folder[folder.ids.index("kos38/Part0")]
  np.testing.assert_array_equal(kol[i]["image"], ref["image"])
  np.testing.assert_array_equal(kol[i]["mask"], ref["mask"])
