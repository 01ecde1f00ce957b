"""The experiment skeleton (defects_jax.runs): keys and loader seeds, status,
the run listing, partial reports, restore."""

import dataclasses
import json

import jax
import pytest

from defects_jax import report
from defects_jax import runs
from defects_jax.experiments import quickstart as Q


def _run(tmp_path, **changes):
  cfg = dataclasses.replace(Q.get_config("smoke"), **changes)
  tmp_path.mkdir(parents=True, exist_ok=True)
  return runs.Run("quickstart", cfg, tmp_path)


def test_keys_are_fold_in_chains_and_loader_seeds_do_not_collide(tmp_path):
  run = _run(tmp_path)
  root = jax.random.key(0)
  want = jax.random.fold_in(jax.random.fold_in(root, 7), 2)
  assert jax.random.key_data(run.key(7, 2)).tolist() == jax.random.key_data(want).tolist()
  assert (jax.random.key_data(run.key("full/n10", "init")).tolist()
          != jax.random.key_data(run.key("full/n10", "train")).tolist())
  # The old arithmetic seed * 1000 + 10 * variant + n gave 50 to both of these cells.
  cells = [f"{v}/n{n}" for v in ("acgan", "res_wdiv", "full") for n in (200, 150, 100, 50, 30,
                                                                       10)]
  seeds = [run.loader_seed(c) for c in cells]
  assert len(set(seeds)) == len(seeds) and all(0 <= s < 2 ** 31 for s in seeds)
  assert run.loader_seed("full/n10") == _run(tmp_path / "again").loader_seed("full/n10")
  assert run.loader_seed("full/n10") != _run(tmp_path / "s1", seed=1).loader_seed("full/n10")


def test_status_listing_and_partial_report(tmp_path):
  run_dir = tmp_path / "out" / "quickstart" / "20260101-000000"
  run = _run(run_dir)
  (run_dir / "config.json").write_text(json.dumps({"experiment": "quickstart",
                                                   "preset": "smoke"}))
  run.set_status("interrupted", cell="train", step=14, of=60, message="interrupted (SIGINT)")
  (run_dir / "train").mkdir()
  (run_dir / "train" / "config.json").write_text(json.dumps({"experiment": "quickstart",
                                                             "cell": "train"}))
  (run_dir / "train" / "metrics.jsonl").write_text(
      json.dumps({"step": 10, "split": "train", "loss": 1.5}) + "\n")
  (rows,) = runs.list_runs(tmp_path / "out")
  assert rows == {"run": str(run_dir), "experiment": "quickstart", "preset": "smoke",
                  "status": "interrupted in train at step 14/60", "headline": ""}
  text = report.write_report(run_dir).read_text()
  assert text.startswith("# quickstart (smoke): partial report")
  assert "UNFINISHED: this run is interrupted in train at step 14 of 60" in text
  assert "| train | 10 | 1.5000 |" in text or "| train | 1.5000 | 10 |" in text


def test_read_run_config_refuses_other_folders(tmp_path):
  with pytest.raises(runs.RunFolderError, match="not a run folder"):
    runs.read_run_config(tmp_path)
  with pytest.raises(runs.RunFolderError, match="no such folder"):
    runs.read_run_config(tmp_path / "missing")


def test_restore_latest_without_a_checkpoint(tmp_path):
  assert runs.restore_latest(tmp_path, {"a": 1}) == (None, None)
