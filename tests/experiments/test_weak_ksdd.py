"""`defects-jax weak_ksdd --preset smoke`: the run, its report, and the
acceptance check that heat maps of positives localise better than chance."""

import json

import numpy as np
import pytest

from defects_jax import cli
from experiments import weak_ksdd as W


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("weak_smoke")
  assert cli.main(["weak_ksdd", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
  (run_dir,) = list((out / "weak_ksdd").iterdir())
  return run_dir


@pytest.mark.slow
def test_weak_ksdd_smoke_writes_report(smoke_run, capsys):
  run_dir = smoke_run
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "Differs from the paper's setting" in report
  assert "Beside the paper (Table 6, AP %)" in report
  for fig in ("overlays", "pr", "alpha", "fold0_first_stage"):
    assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000
  for k in range(3):
    for stage in ("stage1", "stage2", "stage3"):
      assert (run_dir / f"fold_{k}" / stage / "metrics.jsonl").exists()
  per_fold = json.loads((run_dir / "report.json").read_text())["tables"]["Per fold"]
  for row in per_fold[:3]:
    assert row["LNet collapsed"] in ("yes", "no") and 0.0 <= row["Q+ end of stage 1"] <= 1.0
  assert per_fold[3]["LNet collapsed"].endswith("of 3")
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  result = json.loads(capsys.readouterr().out)
  assert set(result) == {"AP", "FP@bestF1", "FN@bestF1", "FP@100%recall"}
  assert 0.0 <= result["AP"] <= 1.0


@pytest.mark.slow
def test_smoke_heat_maps_localise_better_than_chance(smoke_run):
  """Issue acceptance: after the smoke run, heat-map regions that hold a defect
  rank above those that do not (region AP well above the defective-region rate,
  which is what a heat map without localisation scores), and detection beats
  chance too."""
  spec = json.loads((smoke_run / "report.json").read_text())
  (row,) = spec["tables"]["Detection over the concatenated test folds"]
  assert 0.0 < row["region chance"] < 0.2
  assert row["region AP (heat map)"] > 1.5 * row["region chance"], row
  assert row["pixel AP (heat map)"] > row["pixel chance"], row
  labels = np.load(smoke_run / "predictions.npz")["label"]
  assert row["AP"] > labels.mean() + 0.2, row


def test_region_masks_and_region_ap():
  mask = np.zeros((1, 16, 24), np.uint8)
  mask[0, 9, 17] = 1  # one pixel in region (1, 2)
  regions = W.region_masks(mask, (2, 3))
  np.testing.assert_array_equal(regions[0], [[0, 0, 0], [0, 0, 1]])
  heat = np.zeros((1, 2, 3))
  heat[0, 1, 2] = 0.9
  ap, chance = W.region_ap(heat, mask)
  assert ap == pytest.approx(1.0) and chance == pytest.approx(1 / 6)
  heat[0, 0, 0] = 0.95  # a clean region ranked first: precision 1/2 at the defect
  assert W.region_ap(heat, mask)[0] == pytest.approx(0.5)


def test_q_trace_table_lists_each_fold(tmp_path):
  for k, q in ((0, 0.5), (1, 2e-6)):
    d = tmp_path / f"fold_{k}" / "stage1"
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(
        {"step": s, "split": "train", "q_pos": q, "q_neg": q / 2, "loss": 0.0})
        for s in (1, 2, 3)) + "\n")
  lines = W.q_trace_table(tmp_path, iterations=2).splitlines()
  assert lines[0] == "| fold | before update 1 | before update 2 |"
  assert lines[2] == "| fold_0 | 0.5 / 0.25 | 0.5 / 0.25 |"
  assert lines[3] == "| fold_1 | 2e-06 / 1e-06 | 2e-06 / 1e-06 |"
  with pytest.raises(FileNotFoundError, match="stage 1 skipped"):
    W.q_trace_table(tmp_path / "fold_0")
