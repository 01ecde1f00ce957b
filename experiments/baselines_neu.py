"""Few-shot NEU-CLS baselines: standard backbones trained on n images per class.

Command:
  defects-jax baselines_neu --preset smoke       # SYNTHETIC six classes, 32x32, CPU, ~2 min
  defects-jax baselines_neu --preset paper --data-dir ../shared/datasets   # NEU-CLS, GPU
  defects-jax baselines_neu --preset paper --data-dir ../shared/datasets \\
      --set models=resnet18 --set shots=10                                  # one cell, CPU

Protocol (res-acgan section 4.2, Tables 1-2): NEU-CLS split 2:1 per class (1200
train / 600 test, ``data.neu_fewshot_split``); for each n in 200, 150, 100, 50,
30, 10 a model is trained from its own initialisation on the first n training
images of every class (nested subsets) and tested on the same 600 images. The
paper's Table 2 reports ResNet18 and ResNet50 (ImageNet-pretrained); we add
MobileNetV2 and VGG16 (edcgan's baselines).

Training (the paper does not give the classifiers' settings; ours): grey
images resized to ``image_size`` (NEU is 200x200: the paper preset keeps 200),
random horizontal + vertical flips, Adam, cosine decay over ``steps`` steps of
``batch_size``, the same number of steps for every n (small n repeats its
images more often), cross-entropy; accuracy of the final weights. No
ImageNet weights are downloaded: with ``weights_dir`` set, ``<model>.pth`` or
``<model>.npz`` there (torchvision state dicts) initialise the backbones
(the head is replaced; a 3-channel stem is summed to 1 channel), and the
report says which rows were pretrained.

Presets:
  paper: NEU-CLS at 200x200, all four models, all six n, 2000 steps of batch 32,
         Adam 1e-3 (lr 1e-4 for VGG16, which does not train from scratch at 1e-3).
  smoke: SYNTHETIC six-class default at 32x32 (200 train + 100 test per class
         drawn as NEU's 300 per class), n in (30, 10), 12 steps; CI runs it.
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
from defects_jax.models import convert

NAME = "baselines_neu"
SHOTS = (200, 150, 100, 50, 30, 10)
# res-acgan Table 2 (ImageNet-pretrained ResNets), accuracy % per n.
PAPER_TABLE2 = {"ResNet18 (paper, ImageNet-pretrained)": (92.33, 90.67, 85.00, 83.33, 76.33,
                                                          59.5),
                "ResNet50 (paper, ImageNet-pretrained)": (93.00, 92.33, 85.33, 83.00, 77.00,
                                                          63.17)}
DISPLAY = {"resnet18": "ResNet18", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2",
           "vgg16": "VGG16", "resnet34": "ResNet34", "resnet101": "ResNet101", "vgg19": "VGG19"}


@dataclasses.dataclass(frozen=True)
class Config:
  """baselines_neu configuration (commands in the module docstring)."""

  preset: str = "paper"
  dataset: str = "neu"  # "neu" or "synthetic"
  seed: int = 0
  models: tuple = ("resnet18", "resnet50", "mobilenet_v2", "vgg16")
  shots: tuple = SHOTS
  image_size: int = 200
  batch_size: int = 32
  steps: int = 2000
  learning_rate: float = 1e-3
  vgg_learning_rate: float = 1e-4
  weight_decay: float = 1e-4
  weights_dir: str = ""  # folder of <model>.pth / .npz torchvision state dicts ("" = none)
  log_every: int = 50
  eval_batch: int = 100


PRESETS = {
    "paper": Config(),
    "smoke": Config(preset="smoke", dataset="synthetic", shots=(30, 10), image_size=32,
                    batch_size=16, steps=12, log_every=4, eval_batch=100),
}


def get_config(preset: str = "paper") -> Config:
  return config_lib.select_preset(PRESETS, preset)


def load_source(cfg: Config):
  if cfg.dataset == "neu":
    return data.NEUCLS()
  if cfg.dataset == "synthetic":  # 300 per class, like NEU-CLS
    return data.SyntheticDefects(1800, image_size=max(cfg.image_size, 32), seed=cfg.seed)
  raise ValueError(f"dataset must be 'neu' or 'synthetic', got {cfg.dataset!r}")


def make_model(cfg: Config, name: str, num_classes: int):
  """(model, optimiser) of ``name``; built once per model so that every n
  reuses one compiled train step (jit caches on the state's static fields)."""
  if name not in models.ZOO:
    raise ValueError(f"unknown model {name!r}; expected one of {sorted(models.ZOO)}")
  model = models.ZOO[name](num_classes=num_classes)
  lr = cfg.vgg_learning_rate if name.startswith("vgg") else cfg.learning_rate
  tx = optax.adamw(optax.cosine_decay_schedule(lr, cfg.steps), weight_decay=cfg.weight_decay)
  return model, tx


def make_state(cfg: Config, name: str, model, tx, key):
  """A fresh TrainState (optionally from torchvision weights) and the weights
  file used, or None."""
  x = jnp.zeros((1, cfg.image_size, cfg.image_size, 1))
  variables = jax.jit(lambda k: model.init(k, x, train=False))(key)
  pretrained = None
  if cfg.weights_dir:
    for suffix in (".pth", ".npz"):
      path = Path(cfg.weights_dir) / f"{name}{suffix}"
      if path.is_file():
        variables = convert.from_torchvision(convert.load_state_dict(path), variables,
                                             skip_head=True)
        pretrained = str(path)
        break
    else:
      raise FileNotFoundError(f"weights_dir={cfg.weights_dir!r} has no {name}.pth or "
                              f"{name}.npz (torchvision state dict)")
  return train.TrainState.create(apply_fn=model.apply, variables=variables, tx=tx), pretrained


def evaluate(state, source, cfg: Config, eval_step) -> tuple[np.ndarray, np.ndarray]:
  """(labels, predictions) over a whole source."""
  loader = data.make_loader(source, batch_size=cfg.eval_batch, shuffle=False,
                            drop_remainder=False,
                            transforms=data.classification_transforms(cfg.image_size,
                                                                      train=False))
  labels, preds = [], []
  it = iter(loader)
  try:
    for batch in it:
      preds.append(np.asarray(eval_step(state, batch)).argmax(-1))
      labels.append(batch["label"])
  finally:
    it.close()
  return np.concatenate(labels), np.concatenate(preds)


def run(cfg: Config, out_dir: str | Path = "runs", *, run_dir: str | Path | None = None,
        progress: bool = True) -> Path:
  run_dir = Path(run_dir) if run_dir is not None else report.new_run_dir(out_dir, NAME)
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps({"experiment": NAME,
                                                   **config_lib.to_dict(cfg)}, indent=1))
  bad = [n for n in cfg.shots if n not in SHOTS]
  if bad:
    raise ValueError(f"shots {bad} not in the protocol's {SHOTS}")
  source = load_source(cfg)
  split = data.neu_fewshot_split(source, shots=cfg.shots, seed=cfg.seed)
  split.save(run_dir / "split.json")
  test = data.Subset(source, split["test"])
  root = jax.random.key(cfg.seed)
  eval_step = jax.jit(train.classifier_eval_step)
  results, pretrained, timings = [], {}, {}
  started = time.perf_counter()
  for m, name in enumerate(cfg.models):
    model, tx = make_model(cfg, name, source.num_classes)
    for n in cfg.shots:
      subset = data.Subset(source, split[f"train_{n}"])
      key = jax.random.fold_in(root, 1000 * m + n)
      k_init, k_train = jax.random.split(key)
      state, pretrained[name] = make_state(cfg, name, model, tx, k_init)
      loader = data.make_loader(subset, batch_size=min(cfg.batch_size, len(subset)),
                                seed=cfg.seed * 1000 + 10 * m + n, num_epochs=None,
                                transforms=data.classification_transforms(cfg.image_size,
                                                                          train=True))
      t0 = time.perf_counter()
      state, _ = train.train(state=state, train_step=train.classifier_train_step, loader=loader,
                             root_key=k_train, workdir=run_dir / name / f"n{n}",
                             num_steps=cfg.steps, log_every=cfg.log_every, progress=progress,
                             description=f"{name} n={n}",
                             config={"experiment": NAME, "model": name, "shots": n,
                                     **config_lib.to_dict(cfg)})
      seconds = time.perf_counter() - t0
      y, pred = evaluate(state, test, cfg, eval_step)
      results.append({"model": name, "n": n, "accuracy": metrics.accuracy(y, pred),
                      "train images": len(subset), "test images": len(y),
                      "seconds": seconds})
      timings[f"{name}/n{n}"] = seconds
      (run_dir / "results.json").write_text(json.dumps(results, indent=1))
  wall = time.perf_counter() - started
  write_run_report(run_dir, cfg, results, pretrained, wall)
  return run_dir


def accuracy_table(results: list[dict], shots, pretrained: dict) -> list[dict]:
  """Rows = models (ours, then the paper's Table 2), columns = n, accuracy %."""
  rows = []
  for name in dict.fromkeys(r["model"] for r in results):
    row = {"model": f"{DISPLAY.get(name, name)} (ours, "
                    f"{'pretrained' if pretrained.get(name) else 'from scratch'})"}
    for n in shots:
      hit = [r for r in results if r["model"] == name and r["n"] == n]
      row[f"n={n}"] = round(100 * hit[0]["accuracy"], 2) if hit else "-"
    rows.append(row)
  for label, values in PAPER_TABLE2.items():
    paper = dict(zip(SHOTS, values))
    rows.append({"model": label, **{f"n={n}": paper[n] for n in shots}})
  return rows


def write_run_report(run_dir: Path, cfg: Config, results: list[dict], pretrained: dict,
                     wall: float) -> Path:
  synthetic = cfg.dataset == "synthetic"
  deviations = []
  if not any(pretrained.values()):
    deviations.append("no ImageNet pretraining (the paper's ResNet rows were pretrained; "
                      "weights are not downloaded here - see weights_dir)")
  if cfg.image_size != 200:
    deviations.append(f"images resized to {cfg.image_size}x{cfg.image_size} (NEU is 200x200)")
  spec = {
      "title": f"baselines_neu ({cfg.preset}): few-shot classification, accuracy % on the "
               f"{'SYNTHETIC' if synthetic else 'NEU-CLS'} test set",
      "banners": (["SYNTHETIC data (defects_jax.data.SyntheticDefects, six classes; not "
                   "NEU-CLS): says the pipeline works, nothing about the paper's numbers."]
                  if synthetic else []) + ([f"Differs from the paper: {'; '.join(deviations)}."]
                                           if deviations else []),
      "facts": {"experiment": NAME, "preset": cfg.preset, "dataset": cfg.dataset,
                "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})",
                "commit": report.git_commit(), "seed": cfg.seed,
                "image size": f"{cfg.image_size}x{cfg.image_size}x1",
                "steps x batch": f"{cfg.steps} x {cfg.batch_size}",
                "optimiser": f"AdamW, cosine from {cfg.learning_rate} (VGG "
                             f"{cfg.vgg_learning_rate}), weight decay {cfg.weight_decay}",
                "pretrained": {k: (v or "no") for k, v in pretrained.items()},
                "wall time (all cells, incl. compile)": f"{wall:.0f} s"},
      "tables": {
          "Accuracy % by training images per class (res-acgan Table 2 protocol)":
              accuracy_table(results, cfg.shots, pretrained),
          "Cells": [{**r, "accuracy": round(100 * r["accuracy"], 2),
                     "seconds": round(r["seconds"], 1)} for r in results],
      },
      "notes": ["Same 600 (or synthetic 600) test images for every n; nested training subsets "
                "(split.json).",
                "Per-cell training logs: <model>/n<n>/metrics.jsonl."],
  }
  (run_dir / "report.json").write_text(json.dumps(spec, indent=1, default=str))
  return report.write_report(run_dir)


def evaluate_run(run_dir: str | Path) -> dict:
  """The accuracy of every (model, n) cell recorded by a run."""
  results = json.loads((Path(run_dir) / "results.json").read_text())
  return {f"{r['model']}/n{r['n']}": r["accuracy"] for r in results}
