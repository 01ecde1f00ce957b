"""`defects-jax edcgan --preset smoke` and the driver's helpers."""

import json

import numpy as np
import pytest

from defects_jax import cli
from defects_jax import config as config_lib
from defects_jax.experiments import edcgan as ED
from tests.experiments.conftest import check_smoke_run


def test_edcgan_smoke_mixes_trains_and_reports(smoke_run, capsys):
  run_dir = smoke_run("edcgan")
  spec = check_smoke_run(run_dir, "edcgan")
  split = json.loads((run_dir / "split.json").read_text())["subsets"]
  assert len(split["train"]) == 1260 and len(split["test"]) == 540  # the 7:3 split
  assert not set(split["train"]) & set(split["test"])
  results = json.loads((run_dir / "results.json").read_text())
  cells = {(r["model"], r["real_fraction"]): r for r in results}
  assert set(cells) == {("resnet18", 1.0), ("resnet18", 0.0)}
  real_only, generated_only = cells[("resnet18", 1.0)], cells[("resnet18", 0.0)]
  assert (real_only["real"], real_only["generated"]) == (1260, 0)
  assert (generated_only["real"], generated_only["generated"]) == (0, 600)
  for r in results:
    assert len(r["recall"]) == len(r["ap"]) == 6 and r["steps"] == 30
    cm = np.array(r["confusion"])
    assert cm.sum() == 540 and np.allclose(np.diag(cm) / cm.sum(1), r["recall"])
    ap = (np.array(r["precision"]) + np.array(r["recall"])) / 2
    np.testing.assert_allclose(r["ap"], ap)
  tables = spec["tables"]
  (t2,) = [v for k, v in tables.items() if k.startswith("Table 2: per-class recall")]
  assert [row["training set"] for row in t2] == ["1260 (100%)", "600 (0%)"]
  (t3,) = [v for k, v in tables.items() if k.startswith("Table 3")]
  resnet = "ResNet18 (paper: 'ResNet-19')"
  assert [(row["model"], row["source"]) for row in t3] == [(resnet, "this run"),
                                                           (resnet, "paper")]
  (fid,) = [v for k, v in tables.items() if k.startswith("Per-class FID (domain FID")]
  assert len(fid) == 6 and all(row["images (gen / test / train)"] == "60 / 90 / 210"
                               for row in fid)
  assert all(row["generated vs real test"] > 0 for row in fid)
  for figure in ("samples.png", "real.png", "cm_resnet18_real0.png"):
    assert (run_dir / "figures" / figure).stat().st_size > 0
  samples = np.load(run_dir / "gan" / "samples.npz")
  assert samples["image"].shape == (24, 32, 32, 1) and samples["image"].dtype == np.uint8
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  evaluated = json.loads(capsys.readouterr().out)
  assert evaluated["resnet18/real0"]["accuracy"] == pytest.approx(
      generated_only["accuracy"])


def test_paper_tables_and_the_mobilenet_row_check():
  rows = ED.paper_mobilenet_check()
  assert [r["mean of Table 2 row"] for r in rows] == [95.742, 99.117, 97.92]
  for r in rows:  # Table 3's MobileNetV2 row is Table 2's row means, to rounding
    assert abs(r["Table 3 MobileNetV2"] - r["mean of Table 2 row"]) < 0.01
  cfg = ED.get_config("paper")
  assert ED.cells(cfg)[:6] == [("mobilenet_v2", f) for f in ED.FRACTIONS]
  assert len(ED.cells(cfg)) == 12
  # 8000 generated-only images need 1334 per class
  assert ED.generated_per_class(cfg, np.repeat(np.arange(6), 210), 6) == 1334
  assert ED.classifier_steps(cfg, 1260) == 900 * 1260 // 32 + 1


@pytest.mark.parametrize("setting,match", [
    ("real_fractions=1.0,0.4", r"\[0.4\]: not a real fraction of the protocol"),
    ("compare_models=resnet9", "unknown model 'resnet9'"),
    ("real_fractions=0.5", "include 1.0, or give inception_weights"),
    ("gan_image_size=48", "gan_image_size"),
    ("inception_weights=/nonexistent.pth", "no such file"),
])
def test_bad_configs_are_refused(setting, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.override(ED.get_config("smoke"), [setting]).validate()
