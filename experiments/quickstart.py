"""Quickstart: train a small CNN on the SYNTHETIC six-class default and report.

Command (no data, no GPU needed):
  defects-jax quickstart [--out runs] [--preset default|smoke] [--set steps=800 ...]

Presets:
  default: 64x64 images, 2400 train / 600 test, 400 steps of batch 64, Adam 2e-3;
           about 1-2 minutes on 2 CPU cores (measured in the README).
  smoke:   32x32, 60 steps; seconds (used by the tests).

It writes runs/quickstart/<timestamp>/ with config.json, metrics.jsonl,
checkpoints/, figures/ and report.md, and prints where the report is. The data
are SYNTHETIC: the accuracy says the pipeline works, nothing about the papers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import config as config_lib
from defects_jax import data
from defects_jax import metrics
from defects_jax import models
from defects_jax import report
from defects_jax import train

NAME = "quickstart"


@dataclasses.dataclass(frozen=True)
class Config:
  """Quickstart configuration (see the module docstring for the command)."""

  preset: str = "default"
  seed: int = 0
  image_size: int = 64
  num_train: int = 2400
  num_test: int = 600
  batch_size: int = 64
  steps: int = 400
  learning_rate: float = 2e-3
  widths: tuple = (16, 32, 64)
  eval_every: int = 100
  log_every: int = 20
  checkpoint_every: int = 200
  worker_count: int = 0


PRESETS = {
    "default": Config(),
    "smoke": Config(preset="smoke", image_size=32, num_train=384, num_test=120, batch_size=32,
                    steps=60, widths=(8, 16), eval_every=30, log_every=10, checkpoint_every=30),
}


def get_config(preset: str = "default") -> Config:
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
  return PRESETS[preset]


def _sources(cfg: Config):
  # Train and test come from different generator seeds: disjoint images.
  train_src = data.SyntheticDefects(cfg.num_train, image_size=cfg.image_size, seed=cfg.seed)
  test_src = data.SyntheticDefects(cfg.num_test, image_size=cfg.image_size,
                                   seed=cfg.seed + 10_000)
  return train_src, test_src


def _init_state(cfg: Config, num_classes: int):
  model = models.SmallCNN(num_classes=num_classes, widths=tuple(cfg.widths))
  k_init = jax.random.fold_in(jax.random.key(cfg.seed), 1_000_000)  # disjoint from step keys
  variables = model.init(k_init, jnp.zeros((1, cfg.image_size, cfg.image_size, 1)),
                         train=False)
  return train.TrainState.create(apply_fn=model.apply, variables=variables,
                                 tx=optax.adam(cfg.learning_rate))


def predict(state, source, cfg: Config, batch_size: int = 200):
  """(labels, predicted labels, softmax scores, images) over a whole source."""
  loader = data.make_loader(source, batch_size=batch_size, shuffle=False, drop_remainder=False,
                            transforms=data.classification_transforms(cfg.image_size,
                                                                      train=False))
  eval_step = jax.jit(train.classifier_eval_step)
  labels, logits, images = [], [], []
  it = iter(loader)
  try:
    for batch in it:
      logits.append(np.asarray(eval_step(state, batch)))
      labels.append(batch["label"])
      images.append(batch["image"])
  finally:
    it.close()
  logits = np.concatenate(logits)
  probs = np.asarray(jax.nn.softmax(logits, -1))
  return np.concatenate(labels), logits.argmax(-1), probs, np.concatenate(images)


def write_run_report(run_dir: Path, state, cfg: Config, wall_seconds: float) -> Path:
  """Evaluates on the test source and writes figures, report.json, report.md."""
  train_src, test_src = _sources(cfg)
  names = list(train_src.class_names)
  y, pred, _, images = predict(state, test_src, cfg)
  prf = metrics.precision_recall_f1(y, pred, len(names))
  cm = metrics.confusion_matrix(y, pred, len(names))
  lines = train.read_metrics(run_dir / "metrics.jsonl")
  figs = run_dir / "figures"
  report.figures.loss_curves(lines, figs / "curves.png", keys=["loss", "accuracy"])
  report.figures.confusion_matrix(cm, names, figs / "confusion.png")
  short = [n.replace("synthetic-", "") for n in names]
  report.figures.image_grid(images[:24], [f"{short[t]}\n-> {short[p]}" for t, p in
                                          zip(y[:24], pred[:24])], figs / "predictions.png")
  per_class = [next(i for i in range(len(train_src)) if i % len(names) == c)
               for c in range(len(names))]
  samples = np.stack([train_src[i + len(names) * j]["image"] for i in per_class for j in range(4)])
  report.figures.image_grid(samples, [short[c] for c in range(len(names)) for _ in range(4)],
                            figs / "train_samples.png", cols=8)
  spec = {
      "title": "defects-jax quickstart: small CNN on SYNTHETIC six-class defects",
      "banners": ["SYNTHETIC data (generated by defects_jax.data.SyntheticDefects; not NEU-CLS): "
                  "these numbers show the pipeline works, not the papers' results."],
      "facts": {"experiment": NAME, "preset": cfg.preset, "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})",
                "commit": report.git_commit(), "seed": cfg.seed, "steps": cfg.steps,
                "train / test images": f"{cfg.num_train} / {cfg.num_test} "
                                       f"({cfg.image_size}x{cfg.image_size})",
                "parameters": train.count_params(state.params),
                "wall time (training incl. compile)": f"{wall_seconds:.1f} s"},
      "tables": {
          "Test metrics": [{"accuracy": metrics.accuracy(y, pred),
                            "macro precision": prf["macro"]["precision"],
                            "macro recall": prf["macro"]["recall"], "macro F1": prf["macro"]["f1"]}],
          "Per class (test)": [{"class": names[c], "precision": float(prf["precision"][c]),
                                "recall": float(prf["recall"][c]), "F1": float(prf["f1"][c]),
                                "support": int(prf["support"][c])} for c in range(len(names))],
      },
      "figures": {"Training curves": "figures/curves.png",
                  "Confusion matrix (test)": "figures/confusion.png",
                  "Test predictions (true -> predicted)": "figures/predictions.png",
                  "Training samples per class": "figures/train_samples.png"},
      "notes": [f"Reproduce: defects-jax quickstart --preset {cfg.preset} --set seed={cfg.seed}",
                "Metrics per step: metrics.jsonl; resolved config: config.json."],
  }
  (run_dir / "report.json").write_text(json.dumps(spec, indent=1))
  return report.write_report(run_dir)


def run(cfg: Config, out_dir: str | Path = "runs", *, run_dir: str | Path | None = None,
        progress: bool = True) -> Path:
  """Trains, evaluates and reports; returns the run folder."""
  run_dir = Path(run_dir) if run_dir is not None else report.new_run_dir(out_dir, NAME)
  train_src, test_src = _sources(cfg)
  state = _init_state(cfg, train_src.num_classes)
  loader = data.make_loader(train_src, batch_size=cfg.batch_size, seed=cfg.seed, num_epochs=None,
                            worker_count=cfg.worker_count,
                            transforms=data.classification_transforms(cfg.image_size,
                                                                      train=True))

  def eval_fn(st):
    y, pred, _, _ = predict(st, test_src, cfg)
    return {"accuracy": metrics.accuracy(y, pred)}

  start = time.perf_counter()
  state, _ = train.train(
      state=state, train_step=train.classifier_train_step, loader=loader,
      root_key=jax.random.key(cfg.seed), workdir=run_dir, num_steps=cfg.steps,
      config={"experiment": NAME, **config_lib.to_dict(cfg)}, eval_fn=eval_fn,
      eval_every=cfg.eval_every, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
      progress=progress, description=NAME)
  write_run_report(run_dir, state, cfg, time.perf_counter() - start)
  return run_dir


def load_run(run_dir: str | Path):
  """(config, restored state) of a quickstart run folder (latest checkpoint)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  run_dir = Path(run_dir)
  raw = json.loads((run_dir / "config.json").read_text())
  raw.pop("experiment", None)
  cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
  state = _init_state(cfg, 6)
  with ocp.CheckpointManager((run_dir / "checkpoints").absolute(),
                             item_names=("state", "data", "config")) as mngr:
    step = mngr.latest_step()
    if step is None:
      raise FileNotFoundError(f"{run_dir / 'checkpoints'}: no checkpoint")
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    state = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract))).state
  return cfg, state


def evaluate_run(run_dir: str | Path) -> dict:
  """Test metrics of a run's latest checkpoint."""
  cfg, state = load_run(run_dir)
  _, test_src = _sources(cfg)
  y, pred, _, _ = predict(state, test_src, cfg)
  prf = metrics.precision_recall_f1(y, pred, 6)
  return {"step": int(state.step), "accuracy": metrics.accuracy(y, pred),
          "macro_f1": prf["macro"]["f1"]}
