"""`defects-jax weak_ksdd --preset smoke`: the run, its report, and the
acceptance check that heat maps of positives localise better than chance."""

import dataclasses
import json

import numpy as np
import pytest

from defects_jax import cli
from defects_jax.experiments import weak_ksdd as W
from tests.experiments.conftest import check_smoke_run


@pytest.mark.slow
def test_weak_ksdd_smoke_writes_report(smoke_run, capsys):
  run_dir = smoke_run("weak_ksdd")
  check_smoke_run(run_dir, "weak_ksdd")
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
  assert set(result) == {f"fold_{k}/stage3" for k in range(3)}
  for k in range(3):
    got = result[f"fold_{k}/stage3"]
    assert got["step"] == got["of"] == 20
    assert got["AP"] == pytest.approx(per_fold[k]["AP"])


@pytest.mark.slow
def test_smoke_heat_maps_localise_better_than_chance(smoke_run):
  """Issue acceptance: after the smoke run, heat-map regions that hold a defect
  rank above those that do not (region AP well above the defective-region rate,
  which is what a heat map without localisation scores), and detection beats
  chance too."""
  run_dir = smoke_run("weak_ksdd")
  spec = json.loads((run_dir / "report.json").read_text())
  (row,) = spec["tables"]["Detection over the concatenated test folds"]
  assert 0.0 < row["region chance"] < 0.2
  assert row["region AP (heat map)"] > 1.5 * row["region chance"], row
  assert row["pixel AP (heat map)"] > row["pixel chance"], row
  labels = np.load(run_dir / "predictions.npz")["label"]
  assert row["AP"] > labels.mean() + 0.2, row


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


def test_stage_iterations_leave_out_empty_and_skipped_stages():
  cfg = W.get_config("smoke")
  assert list(cfg.stage_iterations()) == ["stage1", "stage2", "stage3"]
  assert list(dataclasses.replace(cfg, skip_stage1=True).stage_iterations()) == ["stage2",
                                                                                 "stage3"]
  only1 = dataclasses.replace(cfg, stage2_iters=0, stage3_iters=0)
  assert only1.stage_iterations() == {"stage1": 200}
  with pytest.raises(ValueError, match="nothing to train"):
    dataclasses.replace(only1, skip_stage1=True).validate()


def test_collapse_banner_only_when_a_fold_collapsed():
  cfg = W.get_config("cpu_small")
  ok, bad = {"LNet collapsed": "no"}, {"LNet collapsed": "yes"}
  assert W.collapse_banner(cfg, [ok, ok]) == []
  (banner,) = W.collapse_banner(dataclasses.replace(cfg, stage1_lr=0.1), [ok, bad, bad])
  assert banner.startswith("LNet collapsed in 2 of 3 folds") and "stage1_lr=0.01" in banner
  (banner,) = W.collapse_banner(dataclasses.replace(cfg, stage1_lr=0.01), [bad])
  assert "stage1_lr=0.01" not in banner
