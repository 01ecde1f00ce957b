"""Quickstart: train a small CNN on the SYNTHETIC six-class default and report.

Command (no data, no GPU needed):
  defects-jax quickstart [--preset default|smoke] [--set steps=800 ...] [--out runs]

Presets:
  default: 64x64 images, 2400 train / 600 test, 400 steps of batch 64, Adam 2e-3;
           about 2 minutes on 2 CPU cores (measured in the README).
  smoke:   32x32, 60 steps; seconds (the tests use it).

It writes runs/quickstart/<timestamp>/ with config.json, train/metrics.jsonl,
train/checkpoints/, figures/ and report.md, and prints where the report is.
The data are SYNTHETIC: the accuracy says the pipeline works, nothing about
the papers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optax

from defects_jax import config as config_lib
from defects_jax import data
from defects_jax import metrics
from defects_jax import report
from defects_jax import runs
from defects_jax import train
from defects_jax.config import check
from defects_jax.config import field
from defects_jax.systems import classifier as C

NAME = "quickstart"
CELL = "train"
TEST_SEED_OFFSET = 10_000  # the test images come from another generator seed


@dataclasses.dataclass(frozen=True)
class Config(config_lib.Base):
  """Quickstart configuration (see the module docstring for the command)."""

  preset: str = "default"
  log_every: int = 20
  checkpoint_every: int = 200
  eval_batch: int = 200
  image_size: int = field(64, doc="synthetic image side")
  num_train: int = field(2400, doc="training images")
  num_test: int = field(600, doc="test images (another generator seed)")
  batch_size: int = 64
  steps: int = 400
  learning_rate: float = 2e-3
  widths: tuple = field((16, 32, 64), doc="conv widths of the small CNN")
  eval_every: int = field(100, doc="steps between test evaluations (0: only at the end)")

  def validate(self) -> None:
    super().validate()
    check(self.image_size >= 16, "image_size", f"must be >= 16, got {self.image_size}")
    for name in ("num_train", "num_test", "batch_size", "steps"):
      check(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
    check(self.batch_size <= self.num_train, "batch_size",
          f"{self.batch_size} is more than num_train={self.num_train}")
    check(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")
    check(len(self.widths) >= 1 and min(self.widths) >= 1, "widths",
          f"needs at least one width >= 1, got {self.widths}")
    check(self.eval_every >= 0, "eval_every", f"must be >= 0, got {self.eval_every}")


DEFAULT = Config()
PRESETS = config_lib.presets(
    default=DEFAULT,
    smoke=dataclasses.replace(DEFAULT, image_size=32, num_train=384, num_test=120,
                              batch_size=32, steps=60, widths=(8, 16), eval_every=30,
                              log_every=10, checkpoint_every=30),
)


def get_config(preset: str = "default") -> Config:
  return config_lib.get_preset(PRESETS, preset)


def sources(cfg: Config):
  """(train, test) synthetic sources: different generator seeds, disjoint images."""
  train_src = data.load_source("synthetic", num_images=cfg.num_train, image_size=cfg.image_size,
                               seed=cfg.seed)
  test_src = data.load_source("synthetic", num_images=cfg.num_test, image_size=cfg.image_size,
                              seed=cfg.seed + TEST_SEED_OFFSET)
  return train_src, test_src


def init_state(cfg: Config, num_classes: int, key):
  model = C.make_model(C.SMALL_CNN, num_classes, widths=cfg.widths)
  return C.make_state(model, optax.adam(cfg.learning_rate), key, image_size=cfg.image_size)


def run(cfg: Config, run: runs.Run) -> Path:
  """Trains, evaluates and reports into ``run.dir``."""
  train_src, test_src = sources(cfg)
  state = init_state(cfg, train_src.num_classes, run.key("init"))
  loader = data.make_loader(train_src, batch_size=cfg.batch_size, seed=run.loader_seed(CELL),
                            num_epochs=None, worker_count=cfg.worker_count,
                            transforms=data.classification_transforms(cfg.image_size,
                                                                      train=True))

  def eval_fn(st):
    out = C.evaluate(st, test_src, image_size=cfg.image_size, batch_size=cfg.eval_batch)
    return {"accuracy": metrics.accuracy(out["label"], out["pred"])}

  state, _ = run.train(CELL, state=state, step=C.train_step, loader=loader,
                       num_steps=cfg.steps, key=run.key(CELL), eval_fn=eval_fn,
                       eval_every=cfg.eval_every)
  return write_run_report(run, state, cfg, train_src, test_src)


def prediction_labels(y, pred, names) -> tuple[list[str], list[bool]]:
  """Titles "true\n-> predicted" with the full class names (the "synthetic-"
  prefix kept) and the mistakes to mark, for the prediction grid."""
  titles = [f"{names[t]}\n-> {names[p]}" for t, p in zip(y, pred)]
  return titles, [bool(t != p) for t, p in zip(y, pred)]


def write_run_report(run: runs.Run, state, cfg: Config, train_src, test_src) -> Path:
  """Evaluates on the test source and writes figures, report.json, report.md."""
  names = list(train_src.class_names)
  out = C.evaluate(state, test_src, image_size=cfg.image_size, batch_size=cfg.eval_batch,
                   keep_images=True)
  y, pred = out["label"], out["pred"]
  prf = metrics.precision_recall_f1(y, pred, len(names))
  cm = metrics.confusion_matrix(y, pred, len(names))
  run.add_result({"cell": CELL, "accuracy": metrics.accuracy(y, pred),
                  "macro F1": prf["macro"]["f1"]})
  lines = train.read_metrics(run.dir / CELL / "metrics.jsonl")
  figs = run.dir / "figures"
  report.figures.loss_curves(lines, figs / "curves.png", keys=["loss", "accuracy"])
  report.figures.confusion_matrix(cm, names, figs / "confusion.png")
  titles, mistakes = prediction_labels(y[:24], pred[:24], names)
  report.figures.image_grid(out["image"][:24], titles, figs / "predictions.png", cols=6,
                            mistakes=mistakes)
  k = len(names)  # synthetic label = index mod k: images c, c + k, ... are of class c
  samples = [train_src[c + k * j]["image"] for c in range(k) for j in range(4)]
  report.figures.image_grid(samples, [names[c] for c in range(k) for _ in range(4)],
                            figs / "train_samples.png", cols=8)
  acc = metrics.accuracy(y, pred)
  return run.write_report(
      title="defects-jax quickstart: small CNN on SYNTHETIC six-class defects",
      facts={"steps x batch": f"{cfg.steps} x {cfg.batch_size}",
             "train / test images": f"{cfg.num_train} / {cfg.num_test} "
                                    f"({cfg.image_size}x{cfg.image_size})",
             "parameters": train.count_params(state.params)},
      tables={
          "Test metrics": [{"accuracy %": 100 * acc,
                            "macro precision": prf["macro"]["precision"],
                            "macro recall": prf["macro"]["recall"],
                            "macro F1": prf["macro"]["f1"]}],
          "Per class (test)": [{"class": names[c], "precision": float(prf["precision"][c]),
                                "recall": float(prf["recall"][c]), "F1": float(prf["f1"][c]),
                                "support": int(prf["support"][c])} for c in range(k)],
          "Confusion matrix (test; rows = true class)": report.confusion_table(cm, names),
      },
      figures={"Training curves": "figures/curves.png",
               "Confusion matrix (test)": "figures/confusion.png",
               "Test predictions (true -> predicted; mistakes in red)": "figures/predictions.png",
               "Training samples per class": "figures/train_samples.png"},
      notes=[f"Reproduce: defects-jax quickstart --preset {cfg.preset} --set seed={cfg.seed}",
             "Metrics per step: train/metrics.jsonl; resolved config: config.json."],
      headline=f"accuracy {100 * acc:.2f}%")


def evaluate(run_dir: Path, cfg: Config) -> dict:
  """Test metrics of the run's latest checkpoint (finished or interrupted)."""
  train_src, test_src = sources(cfg)
  import jax  # pylint: disable=g-import-not-at-top
  target = init_state(cfg, train_src.num_classes, jax.random.key(0))
  state, step = runs.restore_latest(run_dir / CELL, target)
  if state is None:
    return {CELL: {"step": None, "of": cfg.steps, "note": "no checkpoint yet"}}
  out = C.evaluate(state, test_src, image_size=cfg.image_size, batch_size=cfg.eval_batch)
  prf = metrics.precision_recall_f1(out["label"], out["pred"], train_src.num_classes)
  return {CELL: {"step": step, "of": cfg.steps,
                 "accuracy": metrics.accuracy(out["label"], out["pred"]),
                 "macro_f1": prf["macro"]["f1"]}}
