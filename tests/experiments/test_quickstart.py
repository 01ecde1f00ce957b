"""Smoke test of `defects-jax quickstart` (fewer steps), evaluate and report."""

import json

import pytest

from defects_jax import cli


@pytest.mark.slow
def test_quickstart_cli_writes_a_report_and_evaluates(tmp_path, capsys):
  assert cli.main(["quickstart", "--preset", "smoke", "--set", "steps=20", "--set",
                   "eval_every=10", "--out", str(tmp_path), "--no-progress"]) == 0
  out = capsys.readouterr().out
  assert "report:" in out
  (run_dir,) = list((tmp_path / "quickstart").iterdir())
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "Test metrics" in report
  for fig in ("curves", "confusion", "predictions", "train_samples"):
    assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000
    assert f"figures/{fig}.png" in report
  config = json.loads((run_dir / "config.json").read_text())
  assert config["experiment"] == "quickstart" and config["steps"] == 20
  evals = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()
           if json.loads(l)["split"] == "eval"]
  assert [e["step"] for e in evals] == [10, 20]

  assert cli.main(["evaluate", str(run_dir)]) == 0
  result = json.loads(capsys.readouterr().out)
  assert result["step"] == 20 and result["accuracy"] == pytest.approx(evals[-1]["accuracy"])

  (run_dir / "report.md").unlink()
  assert cli.main(["report", str(run_dir)]) == 0
  assert (run_dir / "report.md").read_text() == report


def test_cli_rejects_unknown_override(tmp_path):
  with pytest.raises(SystemExit):
    cli.main(["quickstart", "--preset", "smoke", "--set", "nope=1", "--out", str(tmp_path)])


def test_evaluate_needs_a_run_folder(tmp_path):
  with pytest.raises(SystemExit, match="not a run folder"):
    cli.main(["evaluate", str(tmp_path)])
