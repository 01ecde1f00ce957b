"""`defects-jax quickstart --preset smoke`, evaluate and report."""

import json
import os
import subprocess
import sys

import pytest

from defects_jax import cli
from defects_jax.train.loop import SIGINT_AT_STEP_ENV
from tests.experiments.conftest import check_smoke_run


def test_quickstart_writes_a_report_and_evaluates(smoke_run, capsys):
  run_dir = smoke_run("quickstart")
  check_smoke_run(run_dir, "quickstart")
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
  # a results file (what experiments/results/ commits) regenerates from the run
  results = run_dir.parent / "results" / "quickstart.md"
  assert cli.main(["report", str(run_dir), "--results", str(results)]) == 0
  text = results.read_text()
  assert "defects-jax quickstart --preset smoke" in text and "](figures/" not in text
  assert cli.main(["report", str(run_dir), "--results", str(results)]) == 0
  assert results.read_text() == text


def test_prediction_grid_marks_mistakes_and_keeps_class_names():
  from defects_jax.experiments import quickstart as Q  # pylint: disable=g-import-not-at-top
  names = ["synthetic-crazing", "synthetic-patches"]
  titles, mistakes = Q.prediction_labels([0, 1, 1], [0, 0, 1], names)
  assert titles == ["synthetic-crazing\n-> synthetic-crazing",
                    "synthetic-patches\n-> synthetic-crazing",
                    "synthetic-patches\n-> synthetic-patches"]
  assert mistakes == [False, True, False]


def _cli(*args, env=None):
  env = {**{k: v for k, v in os.environ.items() if k != "DEFECTS_JAX_DATA"}, **(env or {})}
  return subprocess.run([sys.executable, "-m", "defects_jax", *args], capture_output=True,
                        text=True, env=env, timeout=300)


@pytest.mark.slow
def test_sigint_checkpoints_and_resume_ends_like_an_uninterrupted_run(smoke_run, tmp_path,
                                                                      capsys):
  """A real SIGINT in a subprocess, mid-training (sent by the loop's test hook
  at step 25 of 60): the run checkpoints, exits 130 and prints the resume
  command; plain log lines go to stderr (a pipe, not a terminal); `evaluate`,
  `report` and `runs` work on the interrupted run; `resume` finishes it with
  the test metrics of the uninterrupted smoke run (same config)."""
  out = tmp_path / "a"
  proc = _cli("quickstart", "--preset", "smoke", "--out", str(out),
              env={SIGINT_AT_STEP_ENV: "25"})
  assert proc.returncode == 130, proc.stderr
  (run_dir,) = (out / "quickstart").iterdir()
  assert "SIGINT: stopping at the next step boundary" in proc.stderr
  assert f"resume with: defects-jax resume {run_dir}" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert "train: step 20/60 " in proc.stderr and "steps/s, ETA" in proc.stderr
  status = json.loads((run_dir / "status.json").read_text())
  assert status["status"] == "interrupted" and status["step"] == 25

  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  captured = capsys.readouterr()
  assert json.loads(captured.out)["train"]["step"] == 25
  assert "train: checkpoint at step 25 of 60" in captured.err
  assert cli.main(["report", str(run_dir)]) == 0
  assert "UNFINISHED: this run is interrupted in train at step 25 of 60" in (
      run_dir / "report.md").read_text()
  assert cli.main(["runs", str(out)]) == 0
  assert "interrupted in train at step 25/60" in capsys.readouterr().out

  resumed = _cli("resume", str(run_dir))
  assert resumed.returncode == 0, resumed.stderr
  reference = smoke_run("quickstart")
  for name in ("Test metrics", "Per class (test)"):
    got = json.loads((run_dir / "report.json").read_text())["tables"][name]
    assert got == json.loads((reference / "report.json").read_text())["tables"][name]
  assert "UNFINISHED" not in (run_dir / "report.md").read_text()
  capsys.readouterr()
  assert cli.main(["resume", str(run_dir)]) == 2
  assert "finished; nothing to resume" in capsys.readouterr().err
