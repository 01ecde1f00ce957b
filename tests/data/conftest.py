"""Fixtures for data tests: the shared real datasets (skip when absent) and
tiny fake datasets written to a temp dir."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"


def _real_root() -> Path | None:
  env = os.environ.get("DEFECTS_JAX_DATA")
  for cand in ([Path(env)] if env else []) + [SHARED]:
    if cand.is_dir():
      return cand
  return None


@pytest.fixture(scope="session")
def real_root() -> Path:
  root = _real_root()
  if root is None:
    pytest.skip(f"real datasets not found: no {SHARED} and DEFECTS_JAX_DATA unset "
                f"(put shared/datasets beside the repository to run these tests)")
  return root


def real_dataset(root: Path, name: str) -> Path:
  path = root / name
  if not path.is_dir():
    pytest.skip(f"{path} not present")
  return path


def write_png(path: Path, array: np.ndarray, mode: str | None = None):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def fake_neu(tmp_path) -> Path:
  """NEU-CLS layout, 6 classes x 2 grayscale 8x8 images."""
  root = tmp_path / "NEU-CLS"
  rng = np.random.default_rng(0)
  for name, prefix in zip(("crazing", "inclusion", "patches", "pitted_surface",
                           "rolled-in_scale", "scratches"), ("Cr", "In", "Pa", "PS", "RS", "Sc")):
    for n in (1, 2):
      write_png(root / name / f"{prefix}_{n}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
  return root


@pytest.fixture
def fake_kolektor(tmp_path) -> Path:
  """KolektorSDD layout: kos01, kos02 with two 12x6 images each; kos02/Part1 defective."""
  root = tmp_path / "KolektorSDD"
  for kos in ("kos01", "kos02"):
    for part in (0, 1):
      write_png(root / kos / f"Part{part}.png", np.full((12, 6), 100, np.uint8))
      mask = np.zeros((12, 6), np.uint8)
      if kos == "kos02" and part == 1:
        mask[3:5, 2:4] = 255
      write_png(root / kos / f"Part{part}_label.png", mask)
  return root
