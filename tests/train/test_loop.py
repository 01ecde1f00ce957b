"""Tests of the training loop: metrics file, NaN stop, exact resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from defects_jax import data
from defects_jax import models
from defects_jax import train

REPO = Path(__file__).resolve().parents[2]


def small_setup(seed=0):
  src = data.SyntheticDefects(48, image_size=16, seed=seed)
  loader = data.make_loader(src, batch_size=8, seed=1, num_epochs=None,
                            transforms=data.classification_transforms(16, train=True))
  model = models.SmallCNN(num_classes=6, widths=(8, 16))
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), train=False)
  state = train.TrainState.create(apply_fn=model.apply, variables=variables, tx=optax.adam(3e-3))
  return state, loader


def test_loop_writes_metrics_config_and_checkpoint(tmp_path):
  state, loader = small_setup()
  evals = []

  def eval_fn(st):
    evals.append(int(st.step))
    return {"param_norm": float(optax.tree.norm(st.params))}

  state, lines = train.train(state=state, train_step=train.classifier_train_step, loader=loader,
                             root_key=jax.random.key(0), workdir=tmp_path, num_steps=10,
                             log_every=4, eval_fn=eval_fn, eval_every=5, progress=False,
                             config={"lr": 3e-3, "model": "SmallCNN"})
  assert int(state.step) == 10
  on_disk = train.read_metrics(tmp_path / "metrics.jsonl")
  assert on_disk == lines
  assert [(l["step"], l["split"]) for l in lines] == [
      (4, "train"), (5, "train"), (5, "eval"), (8, "train"), (10, "train"), (10, "eval")]
  assert evals == [5, 10]
  assert set(lines[0]) == {"step", "split", "loss", "accuracy"}
  assert json.loads((tmp_path / "config.json").read_text())["model"] == "SmallCNN"
  assert (tmp_path / "checkpoints" / "10").is_dir()


def test_nan_stops_the_run_naming_step_and_metric(tmp_path):
  state, loader = small_setup()

  def poisoned_step(st, batch, key):
    st, metrics = train.classifier_train_step(st, batch, key)
    bad = jnp.where(st.step == 7, jnp.nan, metrics["loss"])
    return st, {**metrics, "loss": bad}

  with pytest.raises(train.NonFiniteError, match=r"metric 'loss' is nan at step 7"):
    train.train(state=state, train_step=poisoned_step, loader=loader,
                root_key=jax.random.key(0), workdir=tmp_path, num_steps=20, log_every=5,
                checkpoint_every=5, progress=False)
  # The checkpoint at step 5 (before the NaN) exists; none after it.
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [5]


def test_loader_too_short_is_an_error(tmp_path):
  state, _ = small_setup()
  short = data.make_loader(data.SyntheticDefects(16, image_size=16), batch_size=8,
                           transforms=data.classification_transforms(16, train=False))
  with pytest.raises(ValueError, match="ran out after 2 steps of 5"):
    train.train(state=state, train_step=train.classifier_train_step, loader=short,
                root_key=jax.random.key(0), workdir=tmp_path, num_steps=5, progress=False)


@pytest.mark.slow
def test_resume_in_a_new_process_is_bit_exact(tmp_path):
  """2N steps uninterrupted == N steps, then a new process resuming to 2N."""
  script = Path(__file__).with_name("resume_script.py")
  env = {**os.environ, "PYTHONPATH": str(REPO)}

  def run(workdir, steps, out):
    subprocess.run([sys.executable, str(script), str(workdir), str(steps), str(out)],
                   check=True, env=env, cwd=REPO, capture_output=True, timeout=300)

  run(tmp_path / "a", 10, tmp_path / "a.npz")
  run(tmp_path / "b", 5, tmp_path / "b_half.npz")
  run(tmp_path / "b", 10, tmp_path / "b.npz")  # resumes from the step-5 checkpoint
  a, b, half = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz"), np.load(
      tmp_path / "b_half.npz")
  assert a.files == b.files and len(a.files) > 10
  for k in a.files:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  assert any(not np.array_equal(a[k], half[k]) for k in a.files)  # it did train on
  # The metrics file of the resumed run reads as one run.
  lines = train.read_metrics(tmp_path / "b" / "metrics.jsonl")
  steps = [l["step"] for l in lines if l["split"] == "train"]
  assert steps == sorted(set(steps)) and steps[-1] == 10
