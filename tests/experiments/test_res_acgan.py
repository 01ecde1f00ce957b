"""`defects-jax res_acgan --preset smoke` and the driver's config checks (the
system's tests: tests/systems/test_res_acgan.py)."""

import json

import pytest

from defects_jax import cli
from defects_jax import config as config_lib
from defects_jax.experiments import res_acgan as ra
from tests.experiments.conftest import SMOKE


def test_bad_configs_are_refused(tmp_path):
  cfg = ra.get_config("smoke")
  with pytest.raises(config_lib.ConfigError, match="variants"):
    config_lib.override(cfg, ["variants=senet"]).validate()
  with pytest.raises(config_lib.ConfigError, match="nope.pth"):
    config_lib.override(cfg, [f"vgg_weights={tmp_path / 'nope.pth'}"]).validate()
  with pytest.raises(config_lib.ConfigError, match="multiple of 4"):
    config_lib.override(cfg, ["image_size=30"]).validate()


def test_labels_name_each_row_once():
  """One label per row: the variant's description, plus the paper's row name
  where it has one (no "(Ours) (ours)")."""
  assert ra._method("full") == "ACGAN + Res + Wasserstein-div + MSFE (Ours)"  # pylint: disable=protected-access
  assert ra._method("acgan") == "ACGAN"  # pylint: disable=protected-access


@SMOKE
@pytest.mark.slow
def test_smoke_class_head_beats_chance(smoke_run, capsys):
  run_dir = smoke_run("res_acgan")
  (cell,) = json.loads((run_dir / "results.json").read_text())
  # six balanced classes, 600 test images: chance 1/6; more than three binomial
  # standard errors above it (measured 23.2% with the smoke preset, seed 0)
  p = 1 / 6
  assert cell["accuracy"] > p + 3 * (p * (1 - p) / 600) ** 0.5, cell["accuracy"]
  assert 0 < cell["SSIM (nearest)"] <= 1 and cell["MSE (nearest)"] <= cell["MSE (guide)"]
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "NOT ImageNet-pretrained" in report
  assert "(Ours) | this run |" in report and "(ours)" not in report
  assert "## Confusion matrix full n=30 (test; rows = true class)" in report
  assert (run_dir / "figures" / "samples_full_n30.png").is_file()
  assert (run_dir / "figures" / "cm_full_n30.png").is_file()
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  assert json.loads(capsys.readouterr().out)["full/n30"]["accuracy"] == cell["accuracy"]
