"""`defects-jax baselines_neu --preset smoke` (two models, one n, to stay fast)."""

import json

import pytest

from defects_jax import cli
from experiments import baselines_neu as B


@pytest.mark.slow
def test_baselines_smoke_writes_the_table(tmp_path, capsys):
  args = ["baselines_neu", "--preset", "smoke", "--out", str(tmp_path), "--no-progress",
          "--set", "models=resnet18,mobilenet_v2", "--set", "shots=10,30"]
  assert cli.main(args) == 0
  (run_dir,) = list((tmp_path / "baselines_neu").iterdir())
  report = (run_dir / "report.md").read_text()
  assert "SYNTHETIC" in report and "no ImageNet pretraining" in report
  assert "| ResNet18 (ours, from scratch) |" in report
  assert "| MobileNetV2 (ours, from scratch) |" in report
  spec = json.loads((run_dir / "report.json").read_text())
  table = spec["tables"]["Accuracy % by training images per class (res-acgan Table 2 protocol)"]
  assert table[2] == {"model": "ResNet18 (paper, ImageNet-pretrained)", "n=10": 59.5,
                      "n=30": 76.33}
  assert all(0.0 <= table[i][f"n={n}"] <= 100.0 for i in (0, 1) for n in (10, 30))
  split = json.loads((run_dir / "split.json").read_text())
  assert not set(split["subsets"]["train_30"]) & set(split["subsets"]["test"])
  assert set(split["subsets"]["train_10"]) <= set(split["subsets"]["train_30"])
  capsys.readouterr()
  assert cli.main(["evaluate", str(run_dir)]) == 0
  cells = json.loads(capsys.readouterr().out)
  assert set(cells) == {"resnet18/n10", "resnet18/n30", "mobilenet_v2/n10",
                        "mobilenet_v2/n30"}
  assert all(0.0 <= v <= 1.0 for v in cells.values())


def test_accuracy_table_puts_ours_beside_the_paper():
  rows = B.accuracy_table([{"model": "resnet18", "n": 10, "accuracy": 0.5}], (10, 200),
                          {"resnet18": None})
  assert rows[0] == {"model": "ResNet18 (ours, from scratch)", "n=10": 50.0, "n=200": "-"}
  assert rows[1]["n=200"] == 92.33 and rows[2]["n=10"] == 63.17


def test_unknown_model_or_shots_are_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown model 'resnet9'"):
    B.make_model(B.get_config("smoke"), "resnet9", 6)
  with pytest.raises(ValueError, match=r"shots \[20\]"):
    B.run(B.Config(dataset="synthetic", shots=(20,)), tmp_path)


def test_missing_weights_file_is_named(tmp_path):
  cfg = B.Config(dataset="synthetic", image_size=32, weights_dir=str(tmp_path))
  model, tx = B.make_model(cfg, "resnet18", 6)
  import jax  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="resnet18.pth or resnet18.npz"):
    B.make_state(cfg, "resnet18", model, tx, jax.random.key(0))
