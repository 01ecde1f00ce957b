"""`defects-jax res_acgan --preset smoke` and the driver's config checks (the
system's tests: tests/systems/test_res_acgan.py)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import cli
from defects_jax import config as config_lib
from defects_jax import runs
from defects_jax import train
from defects_jax.experiments import res_acgan as ra
from defects_jax.systems import res_acgan as RA
from tests.experiments.conftest import check_smoke_run


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
  method = ra._method  # pylint: disable=protected-access
  assert method("full") == "ACGAN + Res + Wasserstein-div + MSFE (Ours)"
  assert method("acgan") == "ACGAN"


@pytest.mark.slow
def test_smoke_class_head_beats_chance(smoke_run, capsys):
  run_dir = smoke_run("res_acgan")
  check_smoke_run(run_dir, "res_acgan")
  (cell,) = json.loads((run_dir / "results.json").read_text())
  # six balanced classes, 600 test images: chance 1/6; more than three binomial
  # standard errors above it (measured 31.3% with the smoke preset, seed 0)
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


def _changed(a, b):
  return any(bool(jnp.any(x != y)) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                   jax.tree_util.tree_leaves(b)))


@pytest.mark.slow
def test_smoke_steps_trained_both_networks_and_kept_vgg19_frozen(smoke_run, tmp_path):
  """The jitted step (m critic updates, then one generator update) as the smoke
  run applied it: the cell's final checkpoint against the state the run
  started from (same init key): critic and generator changed, the frozen VGG19
  bit-identical, update counters m * steps and steps, every logged metric
  finite and the W-div penalty positive."""
  run_dir = smoke_run("res_acgan")
  cfg = ra.get_config("smoke")
  gen, disc = RA.make_models(cfg, "full", 6)
  start = RA.make_state(cfg, gen, disc, runs.Run("res_acgan", cfg, tmp_path).key("full/n30",
                                                                                  "init"))
  final, step = runs.restore_latest(run_dir / "full" / "n30", start)
  assert step == cfg.steps
  assert int(final["critic"].step) == cfg.steps * cfg.num_critic_steps
  assert int(final["generator"].step) == cfg.steps
  assert _changed(final["critic"].params, start["critic"].params)
  g_new, g_old = final["generator"].params, start["generator"].params
  assert _changed(g_new["fc"], g_old["fc"]) and _changed(g_new["to_image"], g_old["to_image"])
  assert _changed(final["generator"].batch_stats, start["generator"].batch_stats)
  for a, b in zip(jax.tree_util.tree_leaves(g_new["extractor"]),
                  jax.tree_util.tree_leaves(g_old["extractor"])):
    np.testing.assert_array_equal(a, b)  # vgg_trainable=False: frozen
  lines = [l for l in train.read_metrics(run_dir / "full" / "n30" / "metrics.jsonl")
           if l["split"] == "train"]
  assert lines and all(np.isfinite(v) for l in lines for v in l.values() if
                       isinstance(v, float))
  assert all(l["critic/penalty"] > 0 for l in lines)
