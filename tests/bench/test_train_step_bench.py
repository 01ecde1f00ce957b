"""The train-step benchmark harness runs one tiny configuration (no timing
assertions): JAX always, PyTorch when torch is installed."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_harness_runs_a_tiny_configuration(tmp_path, capsys):
  # Batch 4 at 64x64: at 32x32 with batch 2, MobileNetV2's last BatchNorm sees
  # two values per channel and training diverges within steps (in PyTorch too).
  sys.path.insert(0, str(BENCH))
  try:
    import train_step_bench  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  frameworks = "jax,torch" if importlib.util.find_spec("torch") else "jax"
  out = tmp_path / "rows.json"
  assert train_step_bench.main(["--models", "mobilenet_v2", "--sizes", "64", "--batch", "4",
                                "--steps", "2", "--warmup", "1", "--frameworks", frameworks,
                                "--json", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "| mobilenet_v2 | 4x64x64x1 | jax |" in printed
  rows = json.loads(out.read_text())["rows"]
  assert [r["framework"] for r in rows] == frameworks.split(",")
  for r in rows:
    assert r["steps"] == 2 and r["median_ms"] > 0 and r["peak_mib"] > 0
  if len(rows) == 2:
    assert rows[0]["ratio"] > 0
