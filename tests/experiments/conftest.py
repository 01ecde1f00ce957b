"""The smoke runs the experiment tests share: `defects-jax NAME --preset smoke`
runs once per test session per experiment, whichever tests ask for it.

Tests that use the fixture carry ``pytest.mark.xdist_group("smoke")`` (via
``SMOKE``) so that, with pytest-xdist's ``--dist loadgroup``, they all run in one
worker and each smoke run happens once.
"""

from pathlib import Path

import pytest

from defects_jax import cli

SMOKE = pytest.mark.xdist_group("smoke")
_RUNS: dict[str, Path] = {}


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
