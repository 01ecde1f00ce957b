"""`defects-jax quickstart --preset smoke`, evaluate and report."""

import json

import pytest

from defects_jax import cli
from tests.experiments.conftest import SMOKE


@SMOKE
def test_quickstart_writes_a_report_and_evaluates(smoke_run, capsys):
  run_dir = smoke_run("quickstart")
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "## Test metrics" in report
  assert "## Confusion matrix (test; rows = true class)" in report
  assert "| synthetic-crazing |" in report  # full class names, "synthetic-" kept
  for fig in ("curves", "confusion", "predictions", "train_samples"):
    assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000
    assert f"figures/{fig}.png" in report
  config = json.loads((run_dir / "config.json").read_text())
  assert config["experiment"] == "quickstart" and config["steps"] == 60
  evals = [json.loads(l) for l in (run_dir / "train" / "metrics.jsonl").read_text().splitlines()
           if json.loads(l)["split"] == "eval"]
  assert [e["step"] for e in evals] == [30, 60]
  # the small CNN learns the synthetic classes: well above chance (1/6) in 60 steps
  assert evals[-1]["accuracy"] > 0.35, evals

  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  captured = capsys.readouterr()
  result = json.loads(captured.out)["train"]
  assert result["step"] == 60 and result["accuracy"] == pytest.approx(evals[-1]["accuracy"])
  assert "train: checkpoint at step 60 of 60" in captured.err

  (run_dir / "report.md").unlink()
  assert cli.main(["report", str(run_dir)]) == 0
  assert (run_dir / "report.md").read_text() == report


@SMOKE
def test_prediction_grid_marks_mistakes_and_keeps_class_names(smoke_run, monkeypatch, tmp_path):
  """The predictions figure gets a mistakes mask equal to (true != predicted) and
  titles with the full "synthetic-" class names."""
  import jax  # pylint: disable=g-import-not-at-top
  from defects_jax import report as report_lib  # pylint: disable=g-import-not-at-top
  from defects_jax import runs  # pylint: disable=g-import-not-at-top
  from defects_jax.experiments import quickstart as Q  # pylint: disable=g-import-not-at-top
  calls = {}
  real = report_lib.figures.image_grid

  def spy(images, titles, path, **kw):
    calls[path.name] = (list(titles), kw.get("mistakes"))
    return real(images, titles, path, **kw)
  monkeypatch.setattr(report_lib.figures, "image_grid", spy)
  run_dir = smoke_run("quickstart")
  cfg = Q.get_config("smoke")
  state, _ = runs.restore_latest(run_dir / "train", Q.init_state(cfg, 6, jax.random.key(0)))
  run = runs.Run("quickstart", cfg, tmp_path)
  train_src, test_src = Q.sources(cfg)
  (tmp_path / "train").mkdir()
  (tmp_path / "train" / "metrics.jsonl").write_text(
      (run_dir / "train" / "metrics.jsonl").read_text())
  Q.write_run_report(run, state, cfg, train_src, test_src)
  titles, mistakes = calls["predictions.png"]
  assert all(t.startswith("synthetic-") and "-> synthetic-" in t for t in titles)
  wrong = [t.split("\n-> ")[0] != t.split("\n-> ")[1] for t in titles]
  assert list(mistakes) == wrong and any(wrong) and not all(wrong)
  assert all(t.startswith("synthetic-") for t in calls["train_samples.png"][0])
