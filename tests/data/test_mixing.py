"""Generated-image sources and real/generated training mixes (edcgan Table 2)."""

import numpy as np
import pytest

from defects_jax import data
from defects_jax.data import DatasetError

NAMES = ("Cr", "In", "Pa", "Ps", "Rs", "Sc")


class FakeReal:
  """The edcgan training split's shape: 210 real images per class, ids 'r<i>'."""

  def __init__(self, per_class=210, k=6, size=8):
    self.labels = np.repeat(np.arange(k), per_class).astype(np.int32)
    self.ids = [f"r{i}" for i in range(len(self.labels))]
    self.class_names, self.num_classes = NAMES[:k], k
    self.size = size

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, i):
    return {"image": np.full((self.size, self.size, 1), i % 256, np.uint8),
            "label": np.int32(self.labels[i]), "id": self.ids[i]}


def generated(per_class, k=6, size=8):
  labels = np.repeat(np.arange(k), per_class)
  images = np.zeros((len(labels), size, size, 1), np.uint8)
  return data.ArraySource(images, labels, class_names=NAMES[:k], origin="test-run/gan")


def test_array_source_records_ids_and_origin():
  src = generated(3)
  rec = src[4]
  assert rec["label"] == 1 and rec["id"] == "generated/In/1" and rec["generated"]
  assert rec["image"].shape == (8, 8, 1) and rec["image"].dtype == np.uint8
  assert src.index_of(["generated/Sc/2"]) == [17]
  assert src.counts()["Pa images"] == 3 and "test-run/gan" in repr(src)
  with pytest.raises(DatasetError, match=r"labels must be in \[0, 6\)"):
    data.ArraySource(np.zeros((2, 4, 4, 1), np.uint8), [0, 6], class_names=NAMES)
  with pytest.raises(DatasetError, match="need images"):
    data.ArraySource(np.zeros((2, 4, 4), np.uint8), [0, 1], class_names=NAMES)


@pytest.mark.parametrize("fraction,total", [(1.0, 1260), (0.75, 1680), (0.5, 2520),
                                            (0.3, 4200), (0.2, 6300)])
def test_mixes_have_table2_sizes_keep_every_real_image_and_stay_balanced(fraction, total):
  real = FakeReal()
  gen = generated(1100)
  mixed = data.mix(real, gen, real_fraction=fraction, exclude_ids=["t1", "t2"])
  counts = mixed.counts()
  assert counts["images"] == total == len(mixed) == len(mixed.ids)
  assert counts["real"] == 1260 and counts["generated"] == total - 1260
  per_class = [counts[f"{n} images"] for n in NAMES]
  assert max(per_class) - min(per_class) <= 1
  assert abs(counts["real"] / total - fraction) < 1e-3
  recs = [mixed[i] for i in (0, len(mixed) - 1)]
  assert not recs[0]["generated"] and recs[1]["generated"] == (fraction < 1.0)
  assert set(mixed.ids[:1260]) == set(real.ids)


def test_generated_only_mix_is_8000_images_1334_or_1333_per_class():
  counts = data.generated_counts(np.zeros(1260), 6, real_fraction=0.0, total=8000)
  assert counts.tolist() == [1334, 1334, 1333, 1333, 1333, 1333]
  mixed = data.mix(None, generated(1334), real_fraction=0.0, total=8000)
  assert len(mixed) == 8000 and mixed.generated.all() and mixed.counts()["real"] == 0
  assert np.bincount(mixed.labels).tolist() == counts.tolist()


def test_mix_refuses_test_images_and_too_few_generated():
  real = FakeReal(per_class=10)
  with pytest.raises(DatasetError, match="2 test images would be in the training mix"):
    data.mix(real, generated(20), real_fraction=0.5, exclude_ids=["r3", "r7", "x"])
  gen = generated(20)
  with pytest.raises(DatasetError, match="test images would be in the training mix"):
    data.mix(real, gen, real_fraction=0.5, exclude_ids=["generated/Cr/0"])
  with pytest.raises(DatasetError, match=r"not enough generated images .*40 asked, 20 generated"):
    data.mix(real, gen, real_fraction=0.2)
  with pytest.raises(DatasetError, match=r"real_fraction must be in \[0, 1\]"):
    data.generated_counts(real.labels, 6, real_fraction=1.5)
  with pytest.raises(DatasetError, match="needs total >= 1"):
    data.generated_counts(real.labels, 6, real_fraction=0.0)


def test_per_class_source_and_transforms_stack_one_image_of_every_class():
  real = FakeReal(per_class=3, k=4)
  src = data.PerClassSource(real, 4)
  assert len(src) == 3 and set(src[0]) == set(src.keys)
  assert [src[2][f"class_{c}"]["label"] for c in range(4)] == [0, 1, 2, 3]
  loader = data.make_loader(src, batch_size=2, seed=0, num_epochs=1,
                            transforms=data.per_class_transforms(src.keys, 16))
  batch = next(iter(loader))
  assert batch["image"].shape == (2, 4, 16, 16, 1) and batch["image"].dtype == np.float32
  assert batch["label"].tolist() == [[0, 1, 2, 3]] * 2
  with pytest.raises(ValueError, match="no images of class"):
    data.PerClassSource(real, 5)
