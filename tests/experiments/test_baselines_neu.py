"""`defects-jax baselines_neu --preset smoke` and the driver's helpers."""

import json

import pytest

from defects_jax import cli
from defects_jax import config as config_lib
from defects_jax.experiments import baselines_neu as B
from tests.experiments.conftest import check_smoke_run


def test_baselines_smoke_learns_and_writes_the_table(smoke_run, capsys):
  run_dir = smoke_run("baselines_neu")
  check_smoke_run(run_dir, "baselines_neu")
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "no ImageNet pretraining" in report
  assert "| ResNet18 | this run (from scratch) |" in report
  spec = json.loads((run_dir / "report.json").read_text())
  table = spec["tables"]["Accuracy % by training images per class (res-acgan Table 2 protocol)"]
  assert table[1] == {"model": "ResNet18", "source": "paper (ImageNet-pretrained)",
                      "n=30": 76.33, "n=10": 59.5}
  # Issue 14: the smoke preset learns something: ResNet18 at n=30 beats chance (1/6 on
  # 600 test images) by more than three binomial standard errors (measured 61.8%).
  results = {r["n"]: r for r in json.loads((run_dir / "results.json").read_text())}
  p = 1 / 6
  assert results[30]["accuracy"] > p + 3 * (p * (1 - p) / 600) ** 0.5, results[30]
  split = json.loads((run_dir / "split.json").read_text())
  assert not set(split["subsets"]["train_30"]) & set(split["subsets"]["test"])
  assert set(split["subsets"]["train_10"]) <= set(split["subsets"]["train_30"])
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  cells = json.loads(capsys.readouterr().out)
  assert set(cells) == {"resnet18/n30", "resnet18/n10"}
  for n in (30, 10):
    assert cells[f"resnet18/n{n}"]["accuracy"] == pytest.approx(results[n]["accuracy"])
    assert cells[f"resnet18/n{n}"]["step"] == 100


def test_accuracy_table_puts_this_run_beside_the_paper():
  rows = B.accuracy_table([{"model": "resnet18", "n": 10, "accuracy": 0.5}], (10, 200),
                          {"resnet18": None})
  assert rows[0] == {"model": "ResNet18", "source": "this run (from scratch)", "n=10": 50.0,
                     "n=200": "-"}
  assert rows[1]["n=200"] == 92.33 and rows[2]["n=10"] == 63.17


def test_chance_banner_names_cells_at_chance():
  rows = [{"model": "resnet18", "n": 10, "accuracy": 0.17, "test images": 600},
          {"model": "vgg16", "n": 30, "accuracy": 0.6, "test images": 600}]
  (banner,) = B.chance_banner(rows, 6, 12)
  assert "ResNet18 n=10 (17.00%)" in banner and "VGG16" not in banner and "12 steps" in banner
  assert B.chance_banner(rows[1:], 6, 12) == []


def test_bad_configs_are_refused(tmp_path):
  cfg = B.get_config("smoke")
  with pytest.raises(config_lib.ConfigError, match="unknown .'resnet9'."):
    config_lib.override(cfg, ["models=resnet9"]).validate()
  with pytest.raises(config_lib.ConfigError, match=r"\[20\] not in the protocol"):
    config_lib.override(cfg, ["shots=20"]).validate()
  with pytest.raises(config_lib.ConfigError, match="needs at least one n"):
    config_lib.override(cfg, ["shots="]).validate()
  with pytest.raises(config_lib.ConfigError, match="resnet18.pth or resnet18.npz"):
    config_lib.override(cfg, [f"weights_dir={tmp_path}"]).validate()
