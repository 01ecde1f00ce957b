"""Res-ACGAN + Wasserstein divergence + multi-level semantic guidance on few-shot NEU-CLS.

Commands:
  defects-jax res_acgan --preset smoke        # SYNTHETIC six classes, 32x32, CPU, minutes
  defects-jax res_acgan --preset paper --data-dir ../shared/datasets \\
      --set vgg_weights=/path/to/vgg19.pth     # Tables 1/2 (GPU; 3 variants x 6 n)
  defects-jax res_acgan --preset paper_ablation --data-dir ../shared/datasets   # Table 3
  defects-jax res_acgan --preset cpu_reduced --data-dir ../shared/datasets      # CPU, n=200,10

What is trained (paper sections 3-4; models in ``defects_jax.models.res_acgan``):
for every (variant, n) cell a generator G and a discriminator D (critic head +
class head) are trained from scratch on the first n training images of every
NEU-CLS class (``data.neu_fewshot_split``: 2:1 split, nested subsets, the same
600 test images), and the cell's score is the accuracy of D's class head on
the test images (Tables 1-3), plus the quality of G's samples (Table 4).

Objective (eq. 10-15), all from ``defects_jax.losses``, minimised:
  D: wgan_critic_loss + wasserstein_div_penalty(k=2, p=6) + acgan_class_loss
  G: wgan_generator_loss + cross-entropy of D's class head on G(z, c)
Eq. 12 and 15 literally say "maximise L(D) = L_c + L_s(D)" and "maximise
L(G) = L_c - L_s(G)"; maximising the class cross-entropy L_c would unlearn the
classes, so we read both players as *minimising* L_c and D as maximising L_s(D)
(i.e. minimising ``wgan_critic_loss + penalty``) and G as maximising L_s(G) =
E[D(G(z))]. In eq. 14 the real-image term of L_c does not depend on G and is
dropped from G's loss (same gradient). P_u of the penalty: interpolates between
real and fake (Wu et al.'s code; ``wdiv_mode="real_fake"`` gives Algorithm 1
step 5's reading). Noise z ~ U(-1, 1)^128 (Algorithm 1 step 2: "uniform").

Algorithm 1: m critic updates per generator update, in one jitted step
(``train.make_adversarial_step``). The paper never gives m; we use 5, the usual
value for Wasserstein critics (Arjovsky et al., Gulrajani et al.), for every
variant. Each critic update sees ``batch_size`` real images (the loader yields
m x batch_size per step), the generator update the first ``batch_size``
labels. G is conditioned on the labels of the real images of its micro-batch
and, with MSFE, guided by those images ("the sample image I corresponding to
the true sample label c", section 3.2); at sampling time the guide is drawn
from the training images of the requested class.

VGG19 ImageNet weights cannot be downloaded here: ``vgg_weights`` loads a
user-supplied torchvision ``vgg19`` state dict (.pth with torch, or .npz)
through ``models.convert``. Without one, the extractor is randomly initialised
and frozen (``vgg_trainable=False``; measured against training it jointly on
the smoke setting, see experiments/results/res_acgan.md) and every report says
so in a banner: that is not the paper's setting.

Variants (Table 3 rows; ``variants`` picks them):
  acgan     ACGAN: BCE real/fake head, no residual blocks, no MSFE
  res       ACGAN + Res (the "Res-ACGAN" row of Table 2)
  wgan_gp   ACGAN + Wasserstein + GP (gradient_penalty, weight 10)
  wdiv      ACGAN + Wasserstein-div
  res_wdiv  ACGAN + Res + Wasserstein-div ("Ours (lack MSFE)")
  full      ACGAN + Res + Wasserstein-div + MSFE ("Ours")
SENet/CBAM discriminators (Table 3's optional rows) are not implemented.

Presets:
  paper:          NEU-CLS at 64x64 (from 200x200), variants acgan/res_wdiv/full, all six n,
                  10,000 iterations, Adam 2e-4 (0.5, 0.999), batch 64, z 128, m 5.
  paper_ablation: the six variants at n = 200 (Table 3), otherwise as paper.
  cpu_reduced:    NEU-CLS at 64x64, variant full, n in (200, 10), 200 iterations, batch 16,
                  generator widths (64, 32): what 2 CPU cores finish in about half an hour.
  smoke:          SYNTHETIC six classes at 32x32, n = 30, 100 iterations, batch 16, m 2,
                  Adam 1e-3 (2e-4 barely moves the class head in 100 iterations), small
                  widths; CI runs it.
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
from defects_jax import losses
from defects_jax import metrics
from defects_jax import report
from defects_jax import train
from defects_jax.data import transforms as T
from defects_jax.models import convert
from defects_jax.models.res_acgan import Discriminator
from defects_jax.models.res_acgan import Generator
from experiments.baselines_neu import load_source  # same NEU-CLS / synthetic sources

NAME = "res_acgan"
SHOTS = (200, 150, 100, 50, 30, 10)


@dataclasses.dataclass(frozen=True)
class Variant:
  label: str
  adversarial: str  # "bce", "wgan-gp" or "wdiv"
  residual: bool
  msfe: bool


VARIANTS = {
    "acgan": Variant("ACGAN", "bce", False, False),
    "res": Variant("ACGAN + Res", "bce", True, False),
    "wgan_gp": Variant("ACGAN + Wasserstein + GP", "wgan-gp", False, False),
    "wdiv": Variant("ACGAN + Wasserstein-div", "wdiv", False, False),
    "res_wdiv": Variant("ACGAN + Res + Wasserstein-div (Ours, lack MSFE)", "wdiv", True, False),
    "full": Variant("ACGAN + Res + Wasserstein-div + MSFE (Ours)", "wdiv", True, True),
}
# Paper numbers, accuracy % for n = 200, 150, 100, 50, 30, 10 (Tables 1 and 2).
PAPER_BY_N = {"acgan": (94.83, 93.67, 90.00, 83.83, 77.83, 66.50),
              "res": (96.17, 95.00, 91.00, 84.67, 79.00, 70.50),
              "res_wdiv": (97.00, 96.00, 94.33, 93.67, 91.33, 86.00),
              "full": (98.67, 98.33, 95.50, 94.67, 94.00, 89.67)}
PAPER_TABLE3 = {"acgan": 94.83, "res": 96.17, "wgan_gp": 95.33, "wdiv": 95.83,
                "res_wdiv": 97.00, "full": 98.67}  # n = 200
PAPER_TABLE4 = {"acgan": (347.8543, 0.6935), "res_wdiv": (193.8484, 0.7828),
                "full": (184.2617, 0.7912)}  # MSE, SSIM (n = 200; pairing unstated)


@dataclasses.dataclass(frozen=True)
class Config:
  """res_acgan configuration (commands in the module docstring)."""

  preset: str = "paper"
  dataset: str = "neu"  # "neu" or "synthetic"
  seed: int = 0
  variants: tuple = ("acgan", "res_wdiv", "full")
  shots: tuple = SHOTS
  image_size: int = 64
  batch_size: int = 64
  num_critic_steps: int = 5
  steps: int = 10_000
  learning_rate: float = 2e-4
  beta1: float = 0.5
  beta2: float = 0.999
  latent_dim: int = 128
  gen_widths: tuple = (128, 64)
  disc_widths: tuple = (16, 32, 64, 128)
  head_width: int = 128
  num_res_blocks: int = 3
  dropout: float = 0.25
  wdiv_k: float = 2.0
  wdiv_p: float = 6.0
  wdiv_mode: str = "interpolate"
  gp_weight: float = 10.0
  msfe_taps: tuple = (23, 16, 7)
  vgg_weights: str = ""  # torchvision vgg19 state dict (.pth / .npz); "" = random init
  vgg_trainable: bool = False
  flip: bool = True  # random horizontal/vertical flips of the real images (ours)
  samples_per_class: int = 50
  log_every: int = 50
  checkpoint_every: int = 1000
  eval_batch: int = 100


PRESETS = {
    "paper": Config(),
    "paper_ablation": Config(preset="paper_ablation", variants=tuple(VARIANTS), shots=(200,)),
    "cpu_reduced": Config(preset="cpu_reduced", variants=("full",), shots=(200, 10), steps=200,
                          batch_size=16, gen_widths=(64, 32), log_every=20,
                          checkpoint_every=50),
    "smoke": Config(preset="smoke", dataset="synthetic", variants=("full",), shots=(30,),
                    image_size=32, batch_size=16, num_critic_steps=2, steps=100,
                    learning_rate=1e-3,
                    gen_widths=(32, 16), disc_widths=(16, 32, 32, 64), head_width=64,
                    samples_per_class=8, log_every=10, checkpoint_every=0, eval_batch=100),
}


def get_config(preset: str = "paper") -> Config:
  return config_lib.select_preset(PRESETS, preset)


# --------------------------------------------------------------------------
# Models and state
# --------------------------------------------------------------------------


def make_models(cfg: Config, variant: Variant, num_classes: int):
  gen = Generator(num_classes=num_classes, image_size=cfg.image_size,
                  latent_dim=cfg.latent_dim, widths=tuple(cfg.gen_widths),
                  num_res_blocks=cfg.num_res_blocks, residual=variant.residual,
                  msfe=variant.msfe, taps=tuple(cfg.msfe_taps),
                  msfe_trainable=cfg.vgg_trainable)
  disc = Discriminator(num_classes=num_classes, widths=tuple(cfg.disc_widths),
                       head_width=cfg.head_width, num_res_blocks=cfg.num_res_blocks,
                       residual=variant.residual, dropout_rate=cfg.dropout)
  return gen, disc


def load_vgg19(params: dict, path: str | Path, taps) -> dict:
  """``params`` with ``params["extractor"]["vgg"]`` replaced from a torchvision
  ``vgg19`` state dict (only ``features.i`` with i <= max(taps) are used)."""
  state_dict = convert.load_state_dict(path)
  deepest = max(taps)
  kept = {k: v for k, v in state_dict.items()
          if k.startswith("features.") and int(k.split(".")[1]) <= deepest}
  if not kept:
    raise convert.ConversionError(f"{path}: no torchvision 'features.<i>' keys; expected a "
                                  f"vgg19 state dict")
  vgg = convert.from_torchvision(kept, {"params": params["extractor"]["vgg"]})["params"]
  return {**params, "extractor": {**params["extractor"], "vgg": vgg}}


def make_state(cfg: Config, gen, disc, key) -> dict:
  """{"generator", "critic"} TrainStates; the VGG19 extractor frozen unless
  ``vgg_trainable``."""
  k_gen, k_disc = jax.random.split(key)
  s = cfg.image_size
  x = jnp.zeros((1, s, s, 1))
  gvars = jax.jit(lambda k: gen.init(k, jnp.zeros((1, cfg.latent_dim)), jnp.zeros((1,), int), x,
                                     train=False))(k_gen)
  dvars = jax.jit(lambda k: disc.init(k, x, train=False))(k_disc)
  adam = optax.adam(cfg.learning_rate, b1=cfg.beta1, b2=cfg.beta2)
  gparams = gvars["params"]
  gen_tx = adam
  if gen.msfe:
    if cfg.vgg_weights:
      gparams = load_vgg19(gparams, cfg.vgg_weights, cfg.msfe_taps)
    if not cfg.vgg_trainable:
      gen_tx = train.freeze(adam, gparams, lambda path: path[0] != "extractor")
  return {"generator": train.TrainState.create(apply_fn=gen.apply,
                                               variables={**gvars, "params": gparams},
                                               tx=gen_tx),
          "critic": train.TrainState.create(apply_fn=disc.apply, variables=dvars, tx=adam)}


# --------------------------------------------------------------------------
# Losses and the train step
# --------------------------------------------------------------------------


def _noise(key, n: int, dim: int) -> jax.Array:
  return jax.random.uniform(key, (n, dim), minval=-1.0, maxval=1.0)


def _generate(gen, gen_state, params, batch, key, *, latent_dim: int, grad_through_vgg: bool):
  """(fakes float32[B, S, S, 1], new generator batch_stats) in training mode."""
  z = _noise(key, batch["label"].shape[0], latent_dim)
  kw = {}
  if gen.msfe:
    kw = ({"guide": batch["image"]} if grad_through_vgg
          else {"guide_features": batch["guide_features"]})
  fake, updates = gen.apply({"params": params, "batch_stats": gen_state.batch_stats}, z,
                            batch["label"], train=True, mutable=["batch_stats"], **kw)
  return fake, updates["batch_stats"]


def make_losses(cfg: Config, variant: Variant, gen, disc):
  """(critic_loss, generator_loss) in ``train.make_adversarial_step``'s form."""
  if variant.adversarial not in ("bce", "wgan-gp", "wdiv"):
    raise ValueError(f"adversarial must be bce, wgan-gp or wdiv, got {variant.adversarial!r}")

  def critic_loss(params, st, batch, key):
    k_z, k_real, k_fake, k_pen, k_pen_drop = jax.random.split(key, 5)
    fake, _ = _generate(gen, st["generator"], st["generator"].params, batch, k_z,
                        latent_dim=cfg.latent_dim, grad_through_vgg=False)
    fake = jax.lax.stop_gradient(fake)
    real, labels = batch["image"], batch["label"]

    def d(x, k):
      return disc.apply({"params": params}, x, train=True, rngs={"dropout": k})

    real_score, real_logits = d(real, k_real)
    fake_score, fake_logits = d(fake, k_fake)
    critic_fn = lambda u: d(u, k_pen_drop)[0]
    if variant.adversarial == "bce":
      adv = losses.bce_discriminator_loss(real_score, fake_score)
      pen = jnp.zeros((), jnp.float32)
    elif variant.adversarial == "wgan-gp":
      adv = losses.wgan_critic_loss(real_score, fake_score)
      pen = losses.gradient_penalty(critic_fn, real, fake, k_pen, weight=cfg.gp_weight)
    else:
      adv = losses.wgan_critic_loss(real_score, fake_score)
      pen = losses.wasserstein_div_penalty(critic_fn, real, fake, k_pen, k=cfg.wdiv_k,
                                           p=cfg.wdiv_p, mode=cfg.wdiv_mode)
    cls = losses.acgan_class_loss(real_logits, labels, fake_logits, labels)
    acc = jnp.mean((jnp.argmax(real_logits, -1) == labels).astype(jnp.float32))
    return adv + pen + cls, (None, {"adversarial": adv, "penalty": pen, "class": cls,
                                    "real_accuracy": acc})

  def generator_loss(params, st, batch, key):
    batch = jax.tree_util.tree_map(lambda x: x[:cfg.batch_size], batch)
    k_z, k_drop = jax.random.split(key)
    fake, new_stats = _generate(gen, st["generator"], params, batch, k_z,
                                latent_dim=cfg.latent_dim, grad_through_vgg=cfg.vgg_trainable)
    score, logits = disc.apply({"params": st["critic"].params}, fake, train=True,
                               rngs={"dropout": k_drop})
    adv = (losses.bce_generator_loss(score) if variant.adversarial == "bce"
           else losses.wgan_generator_loss(score))
    cls = train.cross_entropy(logits, batch["label"])
    acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
    return adv + cls, (new_stats, {"adversarial": adv, "class": cls, "fake_accuracy": acc})

  return critic_loss, generator_loss


def make_train_step(cfg: Config, variant: Variant, gen, disc, *, unroll: bool = True):
  """Pure ``(state, batch, key) -> (state, metrics)``: the MSFE features of the
  batch's real images (the guides) once, then m critic updates and one
  generator update (``train.make_adversarial_step``; ``unroll`` its critic
  loop, the faster choice on CPU, see bench/RESULTS.md)."""
  critic_loss, generator_loss = make_losses(cfg, variant, gen, disc)
  inner = train.make_adversarial_step(critic_loss=critic_loss, generator_loss=generator_loss,
                                      num_critic_steps=cfg.num_critic_steps, unroll=unroll)

  def step(state, batch, key):
    if gen.msfe:
      g = state["generator"]
      feats = gen.apply({"params": g.params, "batch_stats": g.batch_stats}, batch["image"],
                        method=Generator.guide_features)
      batch = {**batch, "guide_features": jax.lax.stop_gradient(feats)}
    return inner(state, batch, key)

  return step


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


def load_images(source, image_size: int, batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """All images of ``source`` resized, float32 [N, S, S, 1] in [-1, 1], and labels int[N]."""
  loader = data.make_loader(source, batch_size=batch, shuffle=False, drop_remainder=False,
                            transforms=data.classification_transforms(image_size, train=False))
  images, labels = [], []
  it = iter(loader)
  try:
    for b in it:
      images.append(b["image"])
      labels.append(b["label"])
  finally:
    it.close()
  return np.concatenate(images).astype(np.float32), np.concatenate(labels)


def classify(state: dict, images: np.ndarray, batch: int = 100) -> np.ndarray:
  """Class-head predictions int[N] of the critic in inference mode."""
  critic = state["critic"]
  fn = jax.jit(lambda p, x: critic.apply_fn({"params": p}, x, train=False)[1])
  return np.concatenate([np.asarray(fn(critic.params, images[i:i + batch])).argmax(-1)
                         for i in range(0, len(images), batch)])


def sample(state: dict, gen, labels: np.ndarray, key, train_images: np.ndarray,
           train_labels: np.ndarray, *, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
  """Generated images float32 [N, S, S, 1] in [-1, 1] for ``labels`` (inference
  mode), and the index into ``train_images`` of each one's guide/partner: a
  training image of the requested class drawn at random (the MSFE guide)."""
  labels = np.asarray(labels)
  bad = sorted(set(labels.tolist()) - set(np.asarray(train_labels).tolist()))
  if bad:
    raise ValueError(f"no training images of classes {bad} to guide the generator")
  k_pick, k_z = jax.random.split(key)
  pick_keys = jax.random.split(k_pick, len(labels))
  partner = np.array([np.flatnonzero(train_labels == c)[int(jax.random.randint(
      k, (), 0, int(np.sum(train_labels == c))))] for c, k in zip(labels, pick_keys)])
  g = state["generator"]
  z = _noise(k_z, len(labels), latent_dim)
  kw = {"guide": jnp.asarray(train_images[partner])} if gen.msfe else {}
  out = jax.jit(lambda v, z, y, **kw: gen.apply(v, z, y, train=False, **kw))(
      g.variables, z, jnp.asarray(labels), **kw)
  return np.asarray(out), partner


def sample_quality(fakes: np.ndarray, labels: np.ndarray, partner: np.ndarray,
                   train_images: np.ndarray, train_labels: np.ndarray) -> dict:
  """res-acgan Table 4 on the 0..255 scale, two pairings (the paper names none):

  * guide: each generated image against the training image it was paired with
    (its MSFE guide; a random image of the class for variants without MSFE);
  * nearest: against the training image of its class with the smallest MSE.
  """
  to255 = lambda x: (np.clip(x, -1, 1) + 1.0) * 127.5
  f, r = to255(fakes[..., 0]), to255(train_images[..., 0])
  mse_g, ssim_g, mse_n, ssim_n = [], [], [], []
  for img, c, p in zip(f, labels, partner):
    mse_g.append(metrics.mse(img, r[p]))
    ssim_g.append(metrics.ssim(img, r[p], data_range=255.0))
    same = np.flatnonzero(train_labels == c)
    d = np.mean((r[same] - img) ** 2, axis=(1, 2))
    j = same[int(np.argmin(d))]
    mse_n.append(float(d.min()))
    ssim_n.append(metrics.ssim(img, r[j], data_range=255.0))
  return {"MSE (guide)": float(np.mean(mse_g)), "SSIM (guide)": float(np.mean(ssim_g)),
          "MSE (nearest)": float(np.mean(mse_n)), "SSIM (nearest)": float(np.mean(ssim_n))}


# --------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------


def train_transforms(cfg: Config) -> list:
  ts = [T.Resize(cfg.image_size)]
  if cfg.flip:
    ts.append(T.RandomFlip(horizontal=True, vertical=True))
  return ts + [T.ToFloat(), T.SelectKeys(("image", "label"))]


def run(cfg: Config, out_dir: str | Path = "runs", *, run_dir: str | Path | None = None,
        progress: bool = True) -> Path:
  run_dir = Path(run_dir) if run_dir is not None else report.new_run_dir(out_dir, NAME)
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps({"experiment": NAME,
                                                   **config_lib.to_dict(cfg)}, indent=1))
  bad = [n for n in cfg.shots if n not in SHOTS]
  unknown = [v for v in cfg.variants if v not in VARIANTS]
  if bad or unknown:
    raise ValueError(f"shots must be in {SHOTS} (got {bad}) and variants in "
                     f"{sorted(VARIANTS)} (got {unknown})")
  if cfg.vgg_weights and not Path(cfg.vgg_weights).is_file():
    raise FileNotFoundError(f"vgg_weights={cfg.vgg_weights!r}: no such file (a torchvision "
                            f"vgg19 state dict, .pth or .npz)")
  source = load_source(cfg)
  split = data.neu_fewshot_split(source, shots=cfg.shots, seed=cfg.seed)
  split.save(run_dir / "split.json")
  test_x, test_y = load_images(data.Subset(source, split["test"]), cfg.image_size,
                               cfg.eval_batch)
  root = jax.random.key(cfg.seed)
  results, started = [], time.perf_counter()
  for v_idx, vname in enumerate(cfg.variants):
    variant = VARIANTS[vname]
    gen, disc = make_models(cfg, variant, source.num_classes)
    step = make_train_step(cfg, variant, gen, disc)
    for n in cfg.shots:
      cell = f"{vname}/n{n}"
      key = jax.random.fold_in(root, 1000 * v_idx + n)
      k_init, k_train, k_sample = jax.random.split(key, 3)
      subset = data.Subset(source, split[f"train_{n}"])
      state = make_state(cfg, gen, disc, k_init)
      loader = data.make_loader(subset, batch_size=cfg.batch_size * cfg.num_critic_steps,
                                seed=cfg.seed * 1000 + 10 * v_idx + n, num_epochs=None,
                                transforms=train_transforms(cfg))
      t0 = time.perf_counter()
      state, _ = train.train(state=state, train_step=step, loader=loader, root_key=k_train,
                             workdir=run_dir / vname / f"n{n}", num_steps=cfg.steps,
                             log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
                             progress=progress, description=f"{vname} n={n}",
                             config={"experiment": NAME, "variant": vname, "shots": n,
                                     **config_lib.to_dict(cfg)})
      seconds = time.perf_counter() - t0
      pred = classify(state, test_x, cfg.eval_batch)
      train_x, train_y = load_images(subset, cfg.image_size, cfg.eval_batch)
      want = np.repeat(np.arange(source.num_classes), cfg.samples_per_class)
      fakes, partner = sample(state, gen, want, k_sample, train_x, train_y,
                              latent_dim=cfg.latent_dim)
      quality = sample_quality(fakes, want, partner, train_x, train_y)
      cm = metrics.confusion_matrix(test_y, pred, source.num_classes)
      cell_dir = run_dir / vname / f"n{n}"
      np.savez_compressed(cell_dir / "predictions.npz", label=test_y, pred=pred,
                          samples=fakes[::max(1, cfg.samples_per_class // 8)],
                          sample_labels=want[::max(1, cfg.samples_per_class // 8)])
      figs = run_dir / "figures"
      report.figures.confusion_matrix(cm, source.class_names, figs / f"cm_{vname}_n{n}.png")
      per_class = min(8, cfg.samples_per_class)
      grid_idx = np.concatenate([np.flatnonzero(want == c)[:per_class]
                                 for c in range(source.num_classes)])
      report.figures.image_grid(fakes[grid_idx], [short_name(source.class_names[c])
                                                  for c in want[grid_idx]],
                                figs / f"samples_{vname}_n{n}.png", cols=per_class)
      results.append({"variant": vname, "n": n, "accuracy": metrics.accuracy(test_y, pred),
                      **quality, "confusion": cm.tolist(), "seconds": seconds})
      (run_dir / "results.json").write_text(json.dumps(results, indent=1))
  write_run_report(run_dir, cfg, results, time.perf_counter() - started,
                   source.class_names)
  return run_dir


def short_name(class_name: str) -> str:
  return class_name.removeprefix("synthetic-")[:12]


def vgg_banner(cfg: Config) -> str:
  if cfg.vgg_weights:
    return f"MSFE VGG19 weights loaded from {cfg.vgg_weights} (frozen: {not cfg.vgg_trainable})."
  how = "trained jointly with the generator" if cfg.vgg_trainable else "frozen"
  return (f"MSFE VGG19 is NOT ImageNet-pretrained: randomly initialised and {how} (no "
          f"vgg_weights given). The paper used ImageNet VGG19: MSFE rows here are not the "
          f"paper's setting.")


def write_run_report(run_dir: Path, cfg: Config, results: list[dict], wall: float,
                     class_names) -> Path:
  synthetic = cfg.dataset == "synthetic"
  reduced = []
  if cfg.steps != 10_000:
    reduced.append(f"{cfg.steps} iterations instead of 10,000")
  if cfg.batch_size != 64:
    reduced.append(f"batch {cfg.batch_size} instead of 64")
  if tuple(cfg.gen_widths) != (128, 64):
    reduced.append(f"generator widths {tuple(cfg.gen_widths)} instead of our paper preset's "
                   f"(128, 64)")
  pct = lambda a: round(100 * a, 2)
  by_n = []
  for vname in cfg.variants:
    row = {"method": f"{VARIANTS[vname].label} (ours)"}
    for n in cfg.shots:
      hit = [r for r in results if r["variant"] == vname and r["n"] == n]
      row[f"n={n}"] = pct(hit[0]["accuracy"]) if hit else "-"
    by_n.append(row)
  for vname in cfg.variants:
    if vname in PAPER_BY_N:
      paper = dict(zip(SHOTS, PAPER_BY_N[vname]))
      by_n.append({"method": f"{VARIANTS[vname].label} (paper)",
                   **{f"n={n}": paper[n] for n in cfg.shots}})
  tables = {"Accuracy % of the class head by training images per class (Tables 1-2)": by_n}
  if 200 in cfg.shots:
    tables["Table 3 (n = 200): accuracy %"] = [
        {"method": VARIANTS[r["variant"]].label, "ours": pct(r["accuracy"]),
         "paper": PAPER_TABLE3[r["variant"]]} for r in results if r["n"] == 200]
  tables["Sample quality (Table 4; 0..255 scale; paper at n = 200)"] = [
      {"method": VARIANTS[r["variant"]].label, "n": r["n"],
       **{k: round(r[k], 4) for k in ("MSE (guide)", "SSIM (guide)", "MSE (nearest)",
                                       "SSIM (nearest)")},
       "paper MSE": PAPER_TABLE4.get(r["variant"], ("-", "-"))[0],
       "paper SSIM": PAPER_TABLE4.get(r["variant"], ("-", "-"))[1]} for r in results]
  tables["Confusion matrices (rows = true class, counts per predicted class in order)"] = [
      {"cell": f"{r['variant']}/n{r['n']}", **{short_name(class_names[i]): " ".join(map(str, row))
                                              for i, row in enumerate(r["confusion"])}}
      for r in results]
  tables["Cells"] = [{"variant": r["variant"], "n": r["n"], "accuracy %": pct(r["accuracy"]),
                      "seconds": round(r["seconds"], 1)} for r in results]
  uses_msfe = any(VARIANTS[v].msfe for v in cfg.variants)
  spec = {
      "title": f"res_acgan ({cfg.preset}): few-shot classification by the ACGAN class head, "
               f"{'SYNTHETIC' if synthetic else 'NEU-CLS'}",
      "banners": (["SYNTHETIC data (defects_jax.data.SyntheticDefects, six classes; not "
                   "NEU-CLS): says the pipeline works, nothing about the paper's numbers."]
                  if synthetic else [])
      + ([vgg_banner(cfg)] if uses_msfe else [])
      + ([f"Reduced from the paper's setting: {'; '.join(reduced)}."] if reduced else []),
      "facts": {"experiment": NAME, "preset": cfg.preset, "dataset": cfg.dataset,
                "device": f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind})",
                "commit": report.git_commit(), "seed": cfg.seed,
                "image size": f"{cfg.image_size}x{cfg.image_size}x1 (resized)",
                "iterations x batch": f"{cfg.steps} x {cfg.batch_size} "
                                      f"(critic: {cfg.num_critic_steps} updates/iteration)",
                "optimiser": f"Adam {cfg.learning_rate} betas ({cfg.beta1}, {cfg.beta2})",
                "W-div": f"k={cfg.wdiv_k}, p={cfg.wdiv_p}, P_u={cfg.wdiv_mode}",
                "generator / discriminator widths": f"{tuple(cfg.gen_widths)} / "
                                                    f"{tuple(cfg.disc_widths)} + "
                                                    f"{cfg.head_width}",
                "VGG19 ImageNet weights": cfg.vgg_weights or "no (random init)",
                "VGG19 trained": cfg.vgg_trainable,
                "wall time (all cells, incl. compile and evaluation)": f"{wall:.0f} s"},
      "tables": tables,
      "figures": {**{f"Samples {r['variant']} n={r['n']} (rows = classes)":
                     f"figures/samples_{r['variant']}_n{r['n']}.png" for r in results},
                  **{f"Confusion {r['variant']} n={r['n']}":
                     f"figures/cm_{r['variant']}_n{r['n']}.png" for r in results}},
      "notes": ["Same test images for every n; nested training subsets (split.json).",
                "Accuracy: argmax of the discriminator's class head on the test images "
                "(inference mode: no dropout).",
                f"Sample quality: {cfg.samples_per_class} samples per class; 'guide' pairs each "
                "with the training image it was guided by (random image of its class without "
                "MSFE), 'nearest' with the closest training image of its class (min MSE).",
                "Per-cell logs: <variant>/n<n>/metrics.jsonl; predictions.npz beside them."],
  }
  (run_dir / "report.json").write_text(json.dumps(spec, indent=1, default=str))
  return report.write_report(run_dir)


def evaluate_run(run_dir: str | Path) -> dict:
  """Accuracy and sample quality of every (variant, n) cell recorded by a run."""
  results = json.loads((Path(run_dir) / "results.json").read_text())
  return {f"{r['variant']}/n{r['n']}": {k: v for k, v in r.items()
                                       if k not in ("variant", "n", "confusion")}
          for r in results}
