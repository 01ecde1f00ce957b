"""Smoke test of `defects-jax weak_ksdd --preset smoke` (fewer iterations)."""

import json

import pytest

from defects_jax import cli


@pytest.mark.slow
def test_weak_ksdd_smoke_writes_report(tmp_path, capsys):
  args = ["weak_ksdd", "--preset", "smoke", "--out", str(tmp_path), "--no-progress"]
  for kv in ("synthetic_images=36", "stage1_iters=6", "alpha_every=2", "stage2_iters=4",
             "stage2_decay_at=2", "stage3_iters=2", "lnet_wide=8", "dnet_hidden=8",
             "log_every=2"):
    args += ["--set", kv]
  assert cli.main(args) == 0
  (run_dir,) = list((tmp_path / "weak_ksdd").iterdir())
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "Reduced from the paper's setting" in report
  assert "Beside the paper (Table 6, AP %)" in report
  for fig in ("overlays", "pr", "alpha", "fold0_first_stage"):
    assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000
  for k in range(3):
    for stage in ("stage1", "stage2", "stage3"):
      assert (run_dir / f"fold_{k}" / stage / "metrics.jsonl").exists()
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  result = json.loads(capsys.readouterr().out)
  assert set(result) == {"AP", "FP@bestF1", "FN@bestF1", "FP@100%recall"}
  assert 0.0 <= result["AP"] <= 1.0
