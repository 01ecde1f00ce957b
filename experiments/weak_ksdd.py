"""Weakly supervised defect localisation and decision (weakly-supervised-lnet-dnet).

Command:
  defects-jax weak_ksdd --preset smoke            # SYNTHETIC defect/mask images, CPU, ~1 min
  defects-jax weak_ksdd --preset paper --data-dir ../shared/datasets      # KolektorSDD
  defects-jax weak_ksdd --preset cpu_reduced --data-dir ../shared/datasets

Protocol (sections III.C, IV.C): 3-fold cross-validation on KolektorSDD grouped by
commutator (kos01/kos26 and kos27/kos34 kept together), images resized to
``image_height`` x ``image_width``. Per fold, three stages, each its own pure
jitted step; an iteration is one positive then one negative image (batch 1
each), two sequential SGD updates (Algorithm 1):

1. shared layers + LNet, ``weak_supervision_loss`` with ``collaborative_alpha``
   (alpha_init 8, updated every 30 iterations, 750 iterations), SGD lr 0.1;
2. DNet only (shared + LNet frozen, their BatchNorm statistics fixed), binary
   cross-entropy, SGD lr 0.01 for 1200 iterations, x0.1 at 600;
3. everything, BCE + weak loss with alpha fixed at alpha_init, lr 0.001, 300
   iterations.

Deviation from Algorithm 1 (default ``pair_batch=True``): the paper alternates
batch-1 updates (positive, then negative). With BatchNorm, a batch of one image
is normalised by its own statistics, so global average pooling after BN gives
nearly the same vector for every image (DNet's loss stays at log 2) and the
network meets different statistics at inference (running averages). We update
on the positive and the negative together, a batch of 2, which keeps the
alternation of classes within every update; ``pair_batch=False`` restores the
literal two batch-1 updates per iteration (iteration counts and the alpha
schedule are per iteration either way).

Evaluation over the test folds: AP, FP and FN at the best-F1 threshold, FP at
100% recall, on the concatenated predictions and as the per-fold mean, and
the heat map's localisation against the ground-truth masks: region AP (each
heat-map value against whether its 8x8 region holds a defect pixel) and pixel
AP (the map upsampled x8), each beside its chance level. The paper reports
(Table 6) AP 99.5% for this method on KolektorSDD.

Presets:
  paper:       1408x512 (the paper's resolution), full iteration counts, 30
               positive training images per fold (Figure 5's best setting). GPU.
  cpu_reduced: the full 3-fold protocol and iteration counts at 352x128 (1/4
               linear resolution: 44x16 heat maps) with LNet's 15x15 layer
               shrunk to 5x5 so its receptive field keeps about the same share
               of the image, and stage-1 learning rate 0.01 (see below); 2-core
               CPU: 4122 s measured at lr 0.1 on a shared CPU.
  cpu_small:   the same at 176x64 (1/8 linear resolution, 22x8 heat maps, LNet
               kernel 3, stage-1 lr 0.01): for the Table 5 ablations on CPU
               (424-1427 s each, measured with two runs sharing 2 cores), e.g.
               ``--set freeze_in_stage2=False``, ``--set rotate=True``,
               ``--set skip_stage1=True``, ``--set num_positive=5``.
  smoke:       SYNTHETIC defect / defect-free 64x64 images with masks (compact
               defect kinds only), short stages, small LNet (5x5 wide layer);
               CI runs it (about a minute).
  What a preset reduces is written into its report.

Why the wide layer shrinks with the resolution: LNet's output is trained only
through the image mean Q (eq. 3-5). When each heat-map value sees the whole
image, a uniform map (every value 1/2 on a positive, 0 on a negative) is a
minimiser, and the heat map does not localise. At 1408x512 the 15x15 layer
sees about a tenth of the image's length; at 64x64 it would see all of it.

Why the CPU presets train stage 1 at lr 0.01, not the paper's 0.1: at
initialisation every heat-map value is near 1/2, where the positive term of
the weak loss has zero gradient (its minimum), so the first update follows
the negative term alone, alpha * -log(1 - Q) with alpha = 8, and moves the
1x1 output conv over all 512 channels of the wide layer at once. On
KolektorSDD at 176x64 (``--set stage1_iters=20 --set log_every=1``) one SGD
update at lr 0.1 took Q from about 0.5 to below 1e-5 on both images of the
pair in all three folds; every heat-map value then sits deep in the sigmoid's
flat tail, the gradients (of order Q) cannot bring it back, and stage 1 ends
with a map near 0 everywhere ("collapsed": 3 of 3 folds at cpu_small, 2 of 3
at cpu_reduced). At lr 0.01 Q dips to about 0.05 and recovers (Q+ ~ 0.46,
Q- ~ 0.001 after 750 iterations, no fold collapsed), as in the paper's Figure
6. The ``paper`` preset keeps 0.1; every report flags a collapsed fold (Q+ <
``COLLAPSE_Q`` at the end of stage 1) in a banner. Measurements:
experiments/results/weak_ksdd.md.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import config as config_lib
from defects_jax import data
from defects_jax import losses
from defects_jax import metrics
from defects_jax import models
from defects_jax import report
from defects_jax import train
from defects_jax.data import transforms as T

NAME = "weak_ksdd"
# Compact synthetic defects, like KolektorSDD's cracks (pitted surface and
# patches spread over the whole image: nothing to localise).
SYNTHETIC_KINDS = ("crazing", "inclusion", "rolled-in_scale", "scratches")
PAPER_TABLE6 = [("Ours (paper: LNet + DNet, weak labels)", 99.5),
                ("Tabernik et al. (pixel labels)", 99.9), ("Cognex ViDi", 99.0),
                ("U-Net", 96.1), ("DeepLabv3+", 98.0), ("ResNet18 (ImageNet)", 97.8)]


@dataclasses.dataclass(frozen=True)
class Config:
  """weak_ksdd configuration (see the module docstring for commands)."""

  preset: str = "paper"
  dataset: str = "kolektor"  # "kolektor" or "synthetic"
  seed: int = 0
  image_height: int = 1408
  image_width: int = 512
  num_folds: int = 3
  num_positive: int = 0  # positive training images kept per fold (0 = all)
  lnet_wide: int = 512
  lnet_kernel: int = 15
  dnet_hidden: int = 266
  stage1_iters: int = 750
  stage1_lr: float = 0.1
  alpha_init: float = 8.0
  alpha_every: int = 30
  stage2_iters: int = 1200
  stage2_lr: float = 0.01
  stage2_decay_at: int = 600
  stage3_iters: int = 300
  stage3_lr: float = 0.001
  skip_stage1: bool = False  # "without LNet training" (Figure 7)
  freeze_in_stage2: bool = True
  # Random rotation by multiples of 90 degrees (Table 5's switch; 0/180 only for
  # non-square images, whose shape must not change). The paper's best result
  # (99.5% AP) was without it.
  rotate: bool = False
  # True: each iteration is one update on (positive, negative) as a batch of 2.
  # False: Algorithm 1 literally, two batch-1 updates (see the module docstring).
  pair_batch: bool = True
  synthetic_images: int = 150
  log_every: int = 25
  # Heat-map figure: this many test positives (0 = every one) and the
  # overlay_negatives test negatives with the highest scores.
  overlay_images: int = 0
  overlay_negatives: int = 8


PRESETS = {
    # Figure 5's best configuration: frozen in stage 2, no rotation, 30 positives.
    "paper": Config(num_positive=30),
    # Stage-1 lr 0.01: at 0.1 LNet collapses in its first update (module docstring).
    "cpu_reduced": Config(preset="cpu_reduced", image_height=352, image_width=128,
                          lnet_kernel=5, num_positive=30, stage1_lr=0.01),
    "cpu_small": Config(preset="cpu_small", image_height=176, image_width=64, lnet_kernel=3,
                        num_positive=30, stage1_lr=0.01),
    "smoke": Config(preset="smoke", dataset="synthetic", image_height=64, image_width=64,
                    lnet_wide=32, lnet_kernel=5, dnet_hidden=64, stage1_iters=200,
                    alpha_every=10, stage2_iters=80, stage2_lr=0.05, stage2_decay_at=40,
                    stage3_iters=20, synthetic_images=120, log_every=20, overlay_images=4,
                    overlay_negatives=2),
}


def get_config(preset: str = "paper") -> Config:
  return config_lib.select_preset(PRESETS, preset)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


class Prepared:
  """Records of ``source[indices]`` resized to (H, W), image float32 in [-1, 1]."""

  def __init__(self, source, indices, hw):
    self.source, self.indices = source, list(indices)
    self.resize, self.to_float = T.Resize(hw), T.ToFloat()

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    rec = self.source[self.indices[i]]
    rec = self.to_float.map(self.resize.map(rec))
    return {"image": rec["image"], "mask": rec["mask"], "label": np.int32(rec["label"]),
            "id": rec["id"]}


class PairSource:
  """Item i: (positive i mod P, negative i) stacked: image [2, H, W, 1],
  mask [2, H, W], label [1, 0]. One epoch covers every negative once."""

  def __init__(self, positives: Prepared, negatives: Prepared):
    if not len(positives) or not len(negatives):
      raise ValueError("a fold needs at least one positive and one negative training image")
    self.pos, self.neg = positives, negatives

  def __len__(self):
    return len(self.neg)

  def __getitem__(self, i):
    p, n = self.pos[i % len(self.pos)], self.neg[i]
    return {"image": np.stack([p["image"], n["image"]]), "mask": np.stack([p["mask"], n["mask"]]),
            "label": np.array([1, 0], np.int32)}


class PairRotate(grain.transforms.RandomMap):
  """Independent random rotation of both images by k * 90 degrees (k in 0..3
  for square images, 0 or 2 otherwise, so the shape is kept)."""

  def random_map(self, rec, rng):
    images, masks = [], []
    for img, mask in zip(rec["image"], rec["mask"]):
      square = img.shape[0] == img.shape[1]
      r = T.RandomRot90((0, 1, 2, 3) if square else (0, 2)).random_map(
          {"image": img, "mask": mask}, rng)
      images.append(r["image"])
      masks.append(r["mask"])
    return {**rec, "image": np.stack(images), "mask": np.stack(masks)}


def load_source(cfg: Config):
  if cfg.dataset == "synthetic":
    return data.SyntheticDefects(cfg.synthetic_images, image_size=(cfg.image_height,
                                                                    cfg.image_width),
                                 seed=cfg.seed, variant="defect_mask", defect_fraction=0.35,
                                 defect_kinds=SYNTHETIC_KINDS)
  if cfg.dataset == "kolektor":
    return data.KolektorSDD()
  raise ValueError(f"dataset must be 'kolektor' or 'synthetic', got {cfg.dataset!r}")


def fold_sources(cfg: Config, source, folds: data.Split, k: int):
  split = data.kolektor_fold_split(folds, k, source=source,
                                   num_positive=cfg.num_positive or None, seed=cfg.seed)
  labels = dict(zip(source.ids, np.asarray(source.labels).tolist()))
  hw = (cfg.image_height, cfg.image_width)
  train_ids = split["train"]
  pos = Prepared(source, source.index_of([i for i in train_ids if labels[i] == 1]), hw)
  neg = Prepared(source, source.index_of([i for i in train_ids if labels[i] == 0]), hw)
  test = Prepared(source, source.index_of(split["test"]), hw)
  return PairSource(pos, neg), test, split


# --------------------------------------------------------------------------
# Pure stage steps
# --------------------------------------------------------------------------


def _update(state, x, y, loss_of_outputs, *, heat_only: bool, frozen_backbone: bool = False):
  """One SGD update on images x [n, H, W, C] with labels y [n]."""
  def objective(params):
    variables = {"params": params, "batch_stats": state.batch_stats}
    if heat_only:
      heat, new = state.apply_fn(variables, x, train=True, mutable=["batch_stats"],
                                 method=models.WeakDetector.heatmap)
      logit = None
    else:
      (heat, logit), new = state.apply_fn(variables, x, train=True,
                                          frozen_backbone=frozen_backbone,
                                          mutable=["batch_stats"])
    q = jnp.mean(heat, axis=(1, 2))  # per-image mean heat (the weak loss's Q)
    return loss_of_outputs(heat, logit, y), (new["batch_stats"], q)
  (loss, (stats, q)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  return state.apply_gradients(grads, batch_stats=stats), loss, q


def _iteration(state, batch, loss_of_outputs, cfg: Config, **kw):
  """One iteration on (positive, negative): one batch-2 update, or two batch-1
  updates (positive first) when ``cfg.pair_batch`` is False.

  Returns (state, metrics): the mean loss and ``q_pos`` / ``q_neg``, the mean
  heat of the positive and the negative image before the update (both near 0
  at once means LNet has collapsed, see ``stage1_diagnosis``)."""
  images, labels = batch["image"][0], batch["label"][0].astype(jnp.float32)
  if cfg.pair_batch:
    state, loss, q = _update(state, images, labels, loss_of_outputs, **kw)
    return state, {"loss": loss, "q_pos": q[0], "q_neg": q[1]}
  state, l_pos, q_pos = _update(state, images[:1], labels[:1], loss_of_outputs, **kw)
  state, l_neg, q_neg = _update(state, images[1:], labels[1:], loss_of_outputs, **kw)
  return state, {"loss": (l_pos + l_neg) / 2, "q_pos": q_pos[0], "q_neg": q_neg[0]}


def updates_per_iteration(cfg: Config) -> int:
  return 1 if cfg.pair_batch else 2


def _bce(logit, y):
  return jnp.mean(jax.nn.softplus(logit) - y * logit)  # = BCE with logits


def make_stage1_step(cfg: Config):
  """Shared + LNet on the weak loss, alpha = collaborative_alpha(iteration)."""
  per = updates_per_iteration(cfg)

  def step(state, batch, key):
    del key  # deterministic stage (no dropout)
    alpha = losses.collaborative_alpha(state.step // per, alpha_init=cfg.alpha_init,
                                       total_steps=cfg.stage1_iters, update_every=cfg.alpha_every)
    weak = lambda heat, _, y: jnp.mean(losses.weak_supervision_loss(heat, y, alpha=alpha))
    state, metrics = _iteration(state, batch, weak, cfg, heat_only=True)
    return state, {**metrics, "alpha": alpha}
  return step


def make_stage2_step(cfg: Config):
  """DNet on BCE; shared + LNet frozen (zero updates, inference-mode BN)."""
  def step(state, batch, key):
    del key
    bce = lambda _, logit, y: _bce(logit, y)
    return _iteration(state, batch, bce, cfg, heat_only=False,
                      frozen_backbone=cfg.freeze_in_stage2)
  return step


def make_stage3_step(cfg: Config):
  """Everything on BCE + weak loss with alpha fixed at alpha_init."""
  def step(state, batch, key):
    del key
    joint = lambda heat, logit, y: _bce(logit, y) + jnp.mean(
        losses.weak_supervision_loss(heat, y, alpha=cfg.alpha_init))
    return _iteration(state, batch, joint, cfg, heat_only=False)
  return step


def init_model(cfg: Config, key):
  model = models.WeakDetector(lnet_wide=cfg.lnet_wide, lnet_kernel=cfg.lnet_kernel,
                              dnet_hidden=cfg.dnet_hidden)
  variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, cfg.image_height, cfg.image_width,
                                                         1)), train=False))(key)
  return model, variables


def stage_state(model, variables, tx):
  return train.TrainState.create(apply_fn=model.apply, variables=variables, tx=tx)


def stage_txs(cfg: Config, params):
  """The three optimisers; learning-rate boundaries count updates."""
  backbone = lambda path: path[0] in ("shared", "lnet")
  tx1 = train.freeze(optax.sgd(cfg.stage1_lr), params, backbone)
  lr2 = train.schedules.step_decay(
      cfg.stage2_lr, boundaries=[updates_per_iteration(cfg) * cfg.stage2_decay_at])
  tx2 = (train.freeze(optax.sgd(lr2), params, lambda path: path[0] == "dnet")
         if cfg.freeze_in_stage2 else optax.sgd(lr2))
  tx3 = optax.sgd(cfg.stage3_lr)
  return tx1, tx2, tx3


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


@jax.jit
def _forward(state, x):
  return state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, x,
                        train=False)


def predict(state, test: Prepared, batch_size: int = 4):
  """Scores (sigmoid of the logit), heat maps, masks, images and ids of a test set."""
  fwd = _forward
  scores, heats, masks, images, ids, labels = [], [], [], [], [], []
  for start in range(0, len(test), batch_size):
    recs = [test[i] for i in range(start, min(start + batch_size, len(test)))]
    x = np.stack([r["image"] for r in recs])
    heat, logit = fwd(state, x)
    scores += list(np.asarray(jax.nn.sigmoid(logit)))
    heats += list(np.asarray(heat))
    masks += [r["mask"] for r in recs]
    images += [r["image"] for r in recs]
    ids += [r["id"] for r in recs]
    labels += [int(r["label"]) for r in recs]
  return {"score": np.array(scores), "heat": np.stack(heats), "mask": np.stack(masks),
          "image": np.stack(images), "id": ids, "label": np.array(labels)}


def pixel_ap(heats: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
  """(AP of heat-map pixels against the mask, the positive-pixel rate = chance AP).

  The heat map is upsampled x8 (each value covers its 8x8 region). Thin
  defects fill a small part of their 8x8 regions, so even a perfect heat map
  scores low here; :func:`region_ap` is the measure at the heat map's own
  resolution."""
  up = np.repeat(np.repeat(heats, 8, axis=1), 8, axis=2)
  m = masks[:, :up.shape[1], :up.shape[2]].ravel()
  if m.sum() == 0:
    return float("nan"), 0.0
  return metrics.average_precision(m, up.ravel()), float(m.mean())


def region_masks(masks: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """uint8[B, h, w]: 1 where the 8x8 region of ``masks`` [B, 8h, 8w] holds a
  defect pixel (what a heat-map value predicts, section III.A)."""
  b, (h, w) = masks.shape[0], hw
  return masks[:, :8 * h, :8 * w].reshape(b, h, 8, w, 8).max(axis=(2, 4)).astype(np.uint8)


def region_ap(heats: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
  """(AP of heat-map values against "region holds a defect pixel", the
  defective-region rate = chance AP), over all images given."""
  r = region_masks(masks, heats.shape[1:]).ravel()
  if r.sum() == 0:
    return float("nan"), 0.0
  return metrics.average_precision(r, heats.ravel()), float(r.mean())


# Below this mean heat on the positive training image at the end of stage 1,
# LNet counts as collapsed: the weak loss wants Q = 1/2 on a positive, and a
# sigmoid map this close to 0 everywhere passes back gradients of order Q.
COLLAPSE_Q = 0.01


# The per-fold diagnosis of a run without stage 1 (skipped or 0 iterations).
STAGE1_NOT_RUN = {"Q+ end of stage 1": float("nan"), "Q- end of stage 1": float("nan"),
                  "LNet collapsed": "stage 1 skipped"}


def stage1_diagnosis(lines: list[dict]) -> dict:
  """Mean heat of the positive (Q+) and negative (Q-) training images over the
  last logged window of stage 1, and whether LNet collapsed (Q+ < COLLAPSE_Q).

  The weak loss (eq. 3-5) is minimised by Q+ = 1/2 and Q- = 0. A collapsed
  LNet outputs ~0 everywhere on every image (the dip of the paper's Figure 6
  that did not recover): its heat map carries no location."""
  train_lines = [l for l in lines if l.get("split") == "train" and "q_pos" in l]
  if not train_lines:
    raise ValueError("stage 1 wrote no metric lines with q_pos (log_every > stage1_iters?)")
  last = train_lines[-1]
  return {"Q+ end of stage 1": last["q_pos"], "Q- end of stage 1": last["q_neg"],
          "LNet collapsed": "yes" if last["q_pos"] < COLLAPSE_Q else "no"}


def collapse_banner(cfg: Config, per_fold: list[dict]) -> list[str]:
  """A report banner when LNet collapsed in any fold (empty list otherwise)."""
  n = sum(f["LNet collapsed"] == "yes" for f in per_fold)
  if not n:
    return []
  hint = (" At the paper's stage-1 learning rate 0.1 one update took Q from about 0.5 to "
          "below 1e-5 on KolektorSDD (module docstring); try --set stage1_lr=0.01."
          if cfg.stage1_lr >= 0.1 else "")
  return [f"LNet collapsed in {n} of {len(per_fold)} folds (Q+ < {COLLAPSE_Q} at the end of "
          f"stage 1): its heat map is ~0 on every image, so DNet decides without a location "
          f"(the residual attention passes the features through unweighted).{hint}"]


def detection_metrics(labels, scores) -> dict:
  best = metrics.fp_fn_at_best_f1(labels, scores)
  return {"AP": metrics.average_precision(labels, scores), "FP@bestF1": best["fp"],
          "FN@bestF1": best["fn"], "FP@100%recall": metrics.fp_at_full_recall(labels, scores)}


# --------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------


def run(cfg: Config, out_dir: str | Path = "runs", *, run_dir: str | Path | None = None,
        progress: bool = True) -> Path:
  run_dir = Path(run_dir) if run_dir is not None else report.new_run_dir(out_dir, NAME)
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps({"experiment": NAME,
                                                   **config_lib.to_dict(cfg)}, indent=1))
  source = load_source(cfg)
  folds = data.kolektor_folds(source, num_folds=cfg.num_folds, seed=cfg.seed)
  folds.save(run_dir / "folds.json")
  root = jax.random.key(cfg.seed)
  per_fold, preds, timings = [], [], {}
  # One model, one set of step functions and optimisers for all folds, so each
  # stage compiles once per run (the TrainState's static fields and the step
  # function are the jit cache key).
  model, variables0 = init_model(cfg, jax.random.fold_in(root, 10_000))
  tx1, tx2, tx3 = stage_txs(cfg, variables0["params"])
  stages = [("stage1", make_stage1_step(cfg), tx1, cfg.stage1_iters),
            ("stage2", make_stage2_step(cfg), tx2, cfg.stage2_iters),
            ("stage3", make_stage3_step(cfg), tx3, cfg.stage3_iters)]
  if cfg.skip_stage1:
    stages = stages[1:]
  # A stage with 0 iterations is left out (e.g. stage 1 alone for a study of
  # LNet: --set stage2_iters=0 --set stage3_iters=0).
  stages = [s for s in stages if s[3] > 0]
  if not stages:
    raise ValueError("every stage has 0 iterations (or stage 1 is skipped and stages 2-3 "
                     "have 0); nothing to train")
  started = time.perf_counter()
  for k in range(cfg.num_folds):
    stage1_end = STAGE1_NOT_RUN
    pairs, test, _ = fold_sources(cfg, source, folds, k)
    _, variables = init_model(cfg, jax.random.fold_in(root, 10_000 + k))
    fold_key = jax.random.fold_in(root, k)
    for s, (name, step, tx, iters) in enumerate(stages):
      loader = data.make_loader(pairs, batch_size=1, seed=cfg.seed * 100 + k * 10 + s,
                                num_epochs=None, transforms=[PairRotate()] if cfg.rotate
                                else [])
      state = stage_state(model, variables, tx)
      t0 = time.perf_counter()
      state, lines = train.train(state=state, train_step=step, loader=loader,
                             root_key=jax.random.fold_in(fold_key, s), workdir=run_dir /
                             f"fold_{k}" / name, num_steps=iters, log_every=cfg.log_every,
                             progress=progress, description=f"fold {k} {name}",
                             config={"experiment": NAME, "fold": k, "stage": name,
                                     **config_lib.to_dict(cfg)})
      timings[f"fold_{k}/{name}"] = time.perf_counter() - t0
      if name == "stage1":
        stage1_end = stage1_diagnosis(lines)
      variables = {"params": state.params, "batch_stats": state.batch_stats}
    p = predict(state, test)
    p["fold"] = np.full(len(p["label"]), k)
    preds.append(p)
    fold_metrics = {"fold": k, "test images": len(p["label"]),
                    "test defective": int(p["label"].sum()), **detection_metrics(p["label"],
                                                                                p["score"])}
    fold_metrics["pixel AP"], _ = pixel_ap(p["heat"], p["mask"])
    fold_metrics["region AP"], _ = region_ap(p["heat"], p["mask"])
    fold_metrics.update(stage1_end)
    per_fold.append(fold_metrics)
  wall = time.perf_counter() - started
  allp = {key: (np.concatenate([p[key] for p in preds]) if key != "id" else
                sum((p["id"] for p in preds), [])) for key in preds[0]}
  np.savez(run_dir / "predictions.npz", score=allp["score"], label=allp["label"],
           fold=allp["fold"], id=np.array(allp["id"]))
  write_run_report(run_dir, cfg, allp, per_fold, wall, timings)
  return run_dir


def write_run_report(run_dir: Path, cfg: Config, allp: dict, per_fold: list[dict],
                     wall: float, timings: dict) -> Path:
  figs = run_dir / "figures"
  overall = detection_metrics(allp["label"], allp["score"])
  pix_ap, chance = pixel_ap(allp["heat"], allp["mask"])
  reg_ap, reg_chance = region_ap(allp["heat"], allp["mask"])
  pos_idx = np.flatnonzero(allp["label"] == 1)
  pos_idx = pos_idx[:cfg.overlay_images] if cfg.overlay_images else pos_idx
  # The negatives DNet scored highest: where false positives come from.
  neg_all = np.flatnonzero(allp["label"] == 0)
  neg_idx = neg_all[np.argsort(-allp["score"][neg_all], kind="stable")][:cfg.overlay_negatives]
  sel = np.concatenate([pos_idx, neg_idx])
  report.figures.heatmap_overlays(
      allp["image"][sel], allp["heat"][sel], figs / "overlays.png", masks=allp["mask"][sel],
      titles=[f"{allp['id'][i]} y={allp['label'][i]} p={allp['score'][i]:.2f}" for i in sel],
      per_row=1 if len(sel) <= 8 else 4)
  prec, rec, _ = metrics.precision_recall_curve(allp["label"], allp["score"])
  report.figures.pr_curve(prec, rec, figs / "pr.png", label=f"AP {overall['AP']:.3f}")
  steps = np.arange(cfg.stage1_iters)
  alphas = np.asarray(jax.vmap(lambda s: losses.collaborative_alpha(
      s, alpha_init=cfg.alpha_init, total_steps=cfg.stage1_iters,
      update_every=cfg.alpha_every))(steps))
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(4, 2.6))
  ax.plot(steps, alphas)
  ax.set_xlabel("stage-1 iteration")
  ax.set_ylabel("alpha")
  fig.tight_layout()
  fig.savefig(figs / "alpha.png", dpi=110)
  plt.close(fig)
  first = next(iter(timings)).split("/", 1)[1]  # the first stage run() trained
  stage_lines = train.read_metrics(run_dir / "fold_0" / first / "metrics.jsonl")
  report.figures.loss_curves(stage_lines, figs / "fold0_first_stage.png",
                             keys=["loss", "q_pos", "q_neg"])
  synthetic = cfg.dataset == "synthetic"
  mean = {k: float(np.nanmean([f[k] for f in per_fold]))
          for k in ("AP", "FP@bestF1", "FN@bestF1", "FP@100%recall", "pixel AP",
                    "region AP", "Q+ end of stage 1", "Q- end of stage 1")}
  mean["LNet collapsed"] = (STAGE1_NOT_RUN["LNet collapsed"] if first != "stage1" else
                            f"{sum(f['LNet collapsed'] == 'yes' for f in per_fold)} of "
                            f"{len(per_fold)}")
  reduced = []
  if (cfg.image_height, cfg.image_width) != (1408, 512):
    reduced.append(f"resolution {cfg.image_height}x{cfg.image_width} instead of the "
                   f"paper's ~1408x512")
  if (cfg.lnet_wide, cfg.lnet_kernel) != (512, 15):
    reduced.append(f"LNet's 15x15x512 layer is {cfg.lnet_kernel}x{cfg.lnet_kernel}x"
                   f"{cfg.lnet_wide}")
  for name, ours, paper in (("stage-1", cfg.stage1_iters, 750), ("stage-2", cfg.stage2_iters,
                                                                  1200),
                            ("stage-3", cfg.stage3_iters, 300)):
    if ours != paper:
      reduced.append(f"{name} {ours} iterations instead of {paper}")
  if cfg.stage1_lr != 0.1:
    reduced.append(f"stage-1 learning rate {cfg.stage1_lr} instead of 0.1")
  spec = {
      "title": f"weak_ksdd ({cfg.preset}): LNet + DNet from image-level labels",
      "banners": (["SYNTHETIC data (defects_jax.data.SyntheticDefects, defect_mask variant; not "
                   "KolektorSDD): says the pipeline works, nothing about the paper's numbers."]
                  if synthetic else []) + ([f"Differs from the paper's setting: "
                                            f"{'; '.join(reduced)}."] if reduced else [])
                 + collapse_banner(cfg, per_fold),
      "facts": {"experiment": NAME, "preset": cfg.preset, "dataset": cfg.dataset,
                "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})",
                "commit": report.git_commit(), "seed": cfg.seed,
                "folds": cfg.num_folds, "image size": f"{cfg.image_height}x{cfg.image_width}",
                "iterations per stage": f"{cfg.stage1_iters} / {cfg.stage2_iters} / "
                                        f"{cfg.stage3_iters}",
                "positive training images per fold": cfg.num_positive or "all",
                "shared + LNet frozen in stage 2": cfg.freeze_in_stage2,
                "random rotation": cfg.rotate, "stage 1 (LNet training)":
                "yes" if first == "stage1" else "skipped",
                "LNet wide layer": f"{cfg.lnet_kernel}x{cfg.lnet_kernel}x{cfg.lnet_wide}",
                "wall time (all folds, incl. compile)": f"{wall:.0f} s"},
      "tables": {
          "Detection over the concatenated test folds": [
              {**overall, "pixel AP (heat map)": pix_ap, "pixel chance": chance,
               "region AP (heat map)": reg_ap, "region chance": reg_chance}],
          "Per fold": per_fold + [{"fold": "mean", **mean}],
          "Beside the paper (Table 6, AP %)": [
              {"method": "this run", "AP %": round(100 * overall["AP"], 2),
               "data": "SYNTHETIC" if synthetic else "KolektorSDD"}]
          + [{"method": m, "AP %": ap, "data": "KolektorSDD (paper)"} for m, ap in PAPER_TABLE6],
          "Wall time per stage (s)": [{"stage": k, "seconds": round(v, 1)}
                                      for k, v in timings.items()],
      },
      "figures": {"Heat maps (image / ground truth / heat map): test positives, then the "
                  "highest-scoring test negatives": "figures/overlays.png",
                  "Precision-recall (all test folds)": "figures/pr.png",
                  "Collaborative alpha schedule (eq. 6)": "figures/alpha.png",
                  "Fold 0 first stage: loss, mean heat Q+ (positive) and Q- (negative)": "figures/fold0_first_stage.png"},
      "notes": ["Folds: folds.json (grouped by commutator); predictions: predictions.npz.",
                "Pixel AP: heat map upsampled x8 against the resized masks, all test images. "
                "Region AP: each heat-map value against whether its 8x8 region holds a defect "
                "pixel (what the paper says a value predicts). Chance = the positive rate.",
                f"Q+ / Q-: mean heat of the positive / negative training image over the last "
                f"{cfg.log_every} stage-1 iterations (the weak loss wants 1/2 and 0). LNet "
                f"collapsed: Q+ < {COLLAPSE_Q}, a map near 0 everywhere."],
  }
  (run_dir / "report.json").write_text(json.dumps(spec, indent=1, default=float))
  return report.write_report(run_dir)


def evaluate_run(run_dir: str | Path) -> dict:
  """Detection metrics recomputed from a run's saved predictions."""
  p = np.load(Path(run_dir) / "predictions.npz")
  return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v))
          for k, v in detection_metrics(p["label"], p["score"]).items()}


def q_trace_table(run_dir: str | Path, iterations: int = 10) -> str:
  """Markdown table of Q+ / Q- (mean heat of the positive / negative image,
  before each update) over the first ``iterations`` logged stage-1 lines of
  every fold of a run: how fast LNet's map moves (run with --set log_every=1 to
  see single updates)."""
  run_dir = Path(run_dir)
  folds = sorted(run_dir.glob("fold_*/stage1/metrics.jsonl"))
  if not folds:
    raise FileNotFoundError(f"{run_dir}: no fold_*/stage1/metrics.jsonl (stage 1 skipped?)")
  traces = {p.parent.parent.name: [l for l in train.read_metrics(p) if l.get("split") ==
                                   "train"][:iterations] for p in folds}
  steps = [l["step"] for l in next(iter(traces.values()))]
  head = "| fold | " + " | ".join(f"before update {s}" for s in steps) + " |"
  rows = [f"| {k} | " + " | ".join(f"{l['q_pos']:.2g} / {l['q_neg']:.2g}" for l in lines) + " |"
          for k, lines in traces.items()]
  return "\n".join([head, "|" + "---|" * (len(steps) + 1)] + rows)


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  if len(sys.argv) not in (3, 4) or sys.argv[1] != "q_trace":
    raise SystemExit("usage: python -m experiments.weak_ksdd q_trace RUN_DIR [ITERATIONS]")
  print(q_trace_table(sys.argv[2], *(int(a) for a in sys.argv[3:])))
