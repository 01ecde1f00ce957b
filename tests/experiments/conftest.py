"""The smoke runs the experiment tests share: `defects-jax NAME --preset smoke`
runs once per test session per experiment, whichever of the experiment's tests
asks first (pytest-xdist's ``--dist loadfile`` keeps a file's tests in one
worker), and :func:`check_smoke_run` holds what every experiment's run folder
must satisfy.
"""

import json
from pathlib import Path

import pytest

from defects_jax import cli
from defects_jax import runs

_RUNS: dict[str, Path] = {}
STANDARD_FACTS = ("experiment", "preset", "dataset", "device", "jax", "commit", "seed",
                  "wall time (incl. compile and evaluation)")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
  """``smoke_run(name)`` -> the run folder of the experiment's smoke preset."""
  def get(name: str) -> Path:
    if name not in _RUNS:
      out = tmp_path_factory.mktemp(f"smoke_{name}")
      assert cli.main([name, "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
      (run_dir,) = list((out / name).iterdir())
      _RUNS[name] = run_dir
    return _RUNS[name]
  return get


def check_smoke_run(run_dir: Path, name: str) -> dict:
  """What the skeleton promises of every finished run folder; returns its
  report spec."""
  config = json.loads((run_dir / "config.json").read_text())
  assert config["experiment"] == name and config["preset"] == "smoke"
  status = json.loads((run_dir / "status.json").read_text())
  assert status["status"] == "finished" and status["headline"], status
  spec = json.loads((run_dir / "report.json").read_text())
  assert list(spec["facts"])[:len(STANDARD_FACTS) - 1] == list(STANDARD_FACTS[:-1])
  assert STANDARD_FACTS[-1] in spec["facts"]
  assert spec["banners"][0].startswith("SYNTHETIC data")
  report = (run_dir / "report.md").read_text()
  assert "UNFINISHED" not in report and "{'" not in report and "['" not in report
  assert (run_dir / "log.txt").read_text().count(": done in ") >= 1
  results = json.loads((run_dir / "results.json").read_text())
  assert results
  listed = runs.describe_status(run_dir)
  assert listed["status"] == "finished" and listed["headline"] == status["headline"]
  return spec
