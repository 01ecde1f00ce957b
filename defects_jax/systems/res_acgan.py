"""Res-ACGAN + Wasserstein divergence + multi-level semantic guidance (MSFE),
as a system: models from hyperparameters, the objective, the pure train step,
state creation and inference (class-head predictions, guided sampling, sample
quality). Paper: res-acgan-wasserstein-div-msfe; networks in
:mod:`defects_jax.models.res_acgan`.

Use from your own code::

  from defects_jax.systems import res_acgan as RA
  hp = RA.Hyper(image_size=64)
  gen, disc = RA.make_models(hp, "full", num_classes=6)
  state = RA.make_state(hp, gen, disc, jax.random.key(0))
  step = jax.jit(RA.make_train_step(hp, "full", gen, disc), donate_argnums=0)
  # batch: image float32[m * B, 64, 64, 1] in [-1, 1], label int32[m * B]
  state, metrics = step(state, batch, key)
  preds = RA.classify(state, test_images)

Objective (eq. 10-15), all from :mod:`defects_jax.losses`, minimised:

  D: wgan_critic_loss + wasserstein_div_penalty(k=2, p=6) + acgan_class_loss
  G: wgan_generator_loss + cross-entropy of D's class head on G(z, c)

Eq. 12 and 15 literally say "maximise L(D) = L_c + L_s(D)" and "maximise
L(G) = L_c - L_s(G)"; maximising the class cross-entropy L_c would unlearn the
classes, so we read both players as *minimising* L_c and D as maximising L_s(D)
(i.e. minimising ``wgan_critic_loss + penalty``) and G as maximising L_s(G) =
E[D(G(z))]. In eq. 14 the real-image term of L_c does not depend on G and is
dropped from G's loss (same gradient). P_u of the penalty: interpolates between
real and fake (Wu et al.'s code; ``wdiv_mode="real_fake"`` gives Algorithm 1
step 5's reading). Noise z ~ U(-1, 1)^latent_dim (Algorithm 1 step 2:
"uniform").

Algorithm 1: m critic updates per generator update, in one jitted step
(``train.make_adversarial_step``). The paper never gives m; we use 5, the usual
value for Wasserstein critics (Arjovsky et al., Gulrajani et al.), for every
variant. Each critic update sees ``batch_size`` real images (the batch holds
m x batch_size), the generator update the first ``batch_size`` labels. G is
conditioned on the labels of the real images of its micro-batch and, with
MSFE, guided by those images ("the sample image I corresponding to the true
sample label c", section 3.2); at sampling time the guide is drawn from the
training images of the requested class.

Variants (Table 3 rows, :data:`VARIANTS`):
  acgan     ACGAN: BCE real/fake head, no residual blocks, no MSFE
  res       ACGAN + Res (the "Res-ACGAN" row of Table 2)
  wgan_gp   ACGAN + Wasserstein + GP (gradient_penalty, weight 10)
  wdiv      ACGAN + Wasserstein-div
  res_wdiv  ACGAN + Res + Wasserstein-div ("Ours (lack MSFE)")
  full      ACGAN + Res + Wasserstein-div + MSFE ("Ours")
SENet/CBAM discriminators (Table 3's optional rows) are not implemented.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import losses
from defects_jax import metrics
from defects_jax import train
from defects_jax.config import field
from defects_jax.errors import ConfigError
from defects_jax.models import convert
from defects_jax.models.res_acgan import Discriminator
from defects_jax.models.res_acgan import Generator

@dataclasses.dataclass(frozen=True)
class Variant:
  label: str
  adversarial: str  # "bce", "wgan-gp" or "wdiv"
  residual: bool
  msfe: bool
  paper_row: str = ""  # the paper's name for the row where it has its own ("Ours")


VARIANTS = {
    "acgan": Variant("ACGAN", "bce", False, False),
    "res": Variant("ACGAN + Res", "bce", True, False),
    "wgan_gp": Variant("ACGAN + Wasserstein + GP", "wgan-gp", False, False),
    "wdiv": Variant("ACGAN + Wasserstein-div", "wdiv", False, False),
    "res_wdiv": Variant("ACGAN + Res + Wasserstein-div", "wdiv", True, False,
                        "Ours (lack MSFE)"),
    "full": Variant("ACGAN + Res + Wasserstein-div + MSFE", "wdiv", True, True, "Ours"),
}


def get_variant(variant: Variant | str) -> Variant:
  """A :class:`Variant`, or the one named (a key of :data:`VARIANTS`).

  Raises:
    ConfigError: unknown name.
  """
  if isinstance(variant, Variant):
    return variant
  if variant not in VARIANTS:
    raise ConfigError(f"unknown Res-ACGAN variant {variant!r}; expected one of {list(VARIANTS)}")
  return VARIANTS[variant]


@dataclasses.dataclass(frozen=True)
class Hyper:
  """Res-ACGAN hyperparameters (model sizes, objective, optimiser). Fields
  marked ``paper=`` are the paper's setting (or our reading of what it leaves
  open); the experiment's config inherits them."""

  image_size: int = field(64, paper="section 4.1 trains at NEU's 200x200; ours 64x64 (the "
                          "networks' sizes are ours, see models.res_acgan)")
  batch_size: int = field(64, paper="section 4.1: batch 64")
  num_critic_steps: int = field(5, paper="m of Algorithm 1, not given; 5 as WGAN/WGAN-GP")
  learning_rate: float = field(2e-4, paper="section 4.1: Adam 2e-4")
  beta1: float = field(0.5, paper="section 4.1: Adam betas (0.5, 0.999)")
  beta2: float = field(0.999, paper="section 4.1: Adam betas (0.5, 0.999)")
  latent_dim: int = field(128, paper="section 4.1: z of 128 dimensions")
  gen_widths: tuple = field((128, 64), paper="not given; the reference ACGAN's")
  disc_widths: tuple = field((16, 32, 64, 128), paper="not given; the reference ACGAN's")
  head_width: int = field(128, paper="not given; ours")
  num_res_blocks: int = field(3, paper="section 3.1: three residual modules per stage")
  dropout: float = field(0.25, paper="Figure 3B: dropout (rate not given; the reference "
                         "ACGAN's 0.25)")
  wdiv_k: float = field(2.0, paper="eq. 9: k = 2")
  wdiv_p: float = field(6.0, paper="eq. 9: p = 6")
  wdiv_mode: str = field("interpolate", doc="P_u of the W-div penalty: 'interpolate' or "
                         "'real_fake'")
  gp_weight: float = field(10.0, doc="WGAN-GP weight (Table 3's wgan_gp row)")
  msfe_taps: tuple = field((23, 16, 7), paper="section 3.2: VGG19 layers 7 to 23")
  vgg_weights: str = field("", paper="section 3.2: ImageNet VGG19 (a torchvision vgg19 state "
                           "dict you supply; '' = random init)")
  vgg_trainable: bool = field(False, doc="train the MSFE VGG19 jointly (default frozen)")

  def validate(self) -> None:
    from defects_jax.config import check  # pylint: disable=g-import-not-at-top
    check(self.image_size >= 16 and self.image_size % 4 == 0, "image_size",
          f"must be a multiple of 4 and >= 16, got {self.image_size}")
    check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
    check(self.num_critic_steps >= 1, "num_critic_steps",
          f"must be >= 1, got {self.num_critic_steps}")
    check(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")
    check(len(self.gen_widths) == 2, "gen_widths", f"needs 2 widths, got {self.gen_widths}")
    check(len(self.disc_widths) == 4, "disc_widths", f"needs 4 widths, got {self.disc_widths}")
    check(len(self.msfe_taps) == 3, "msfe_taps", f"needs 3 taps, got {self.msfe_taps}")
    check(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
    check(self.wdiv_mode in ("interpolate", "real_fake"), "wdiv_mode",
          f"must be 'interpolate' or 'real_fake', got {self.wdiv_mode!r}")
    check(not self.vgg_weights or Path(self.vgg_weights).is_file(), "vgg_weights",
          f"{self.vgg_weights!r}: no such file (a torchvision vgg19 state dict, .pth or .npz)")


# --------------------------------------------------------------------------
# Models, state, objective and the train step
# --------------------------------------------------------------------------


def make_models(hp: Hyper, variant: Variant | str, num_classes: int):
  """(generator, discriminator) flax modules of ``variant`` (a :class:`Variant`
  or a key of :data:`VARIANTS`) for ``num_classes`` classes."""
  variant = get_variant(variant)
  gen = Generator(num_classes=num_classes, image_size=hp.image_size,
                  latent_dim=hp.latent_dim, widths=tuple(hp.gen_widths),
                  num_res_blocks=hp.num_res_blocks, residual=variant.residual,
                  msfe=variant.msfe, taps=tuple(hp.msfe_taps),
                  msfe_trainable=hp.vgg_trainable)
  disc = Discriminator(num_classes=num_classes, widths=tuple(hp.disc_widths),
                       head_width=hp.head_width, num_res_blocks=hp.num_res_blocks,
                       residual=variant.residual, dropout_rate=hp.dropout)
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


def make_state(hp: Hyper, gen, disc, key) -> dict:
  """{"generator", "critic"} TrainStates; the VGG19 extractor frozen unless
  ``vgg_trainable``."""
  k_gen, k_disc = jax.random.split(key)
  s = hp.image_size
  x = jnp.zeros((1, s, s, 1))
  gvars = jax.jit(lambda k: gen.init(k, jnp.zeros((1, hp.latent_dim)), jnp.zeros((1,), int), x,
                                     train=False))(k_gen)
  dvars = jax.jit(lambda k: disc.init(k, x, train=False))(k_disc)
  adam = optax.adam(hp.learning_rate, b1=hp.beta1, b2=hp.beta2)
  gparams = gvars["params"]
  gen_tx = adam
  if gen.msfe:
    if hp.vgg_weights:
      gparams = load_vgg19(gparams, hp.vgg_weights, hp.msfe_taps)
    if not hp.vgg_trainable:
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


def make_losses(hp: Hyper, variant: Variant | str, gen, disc):
  """(critic_loss, generator_loss) in ``train.make_adversarial_step``'s form."""
  variant = get_variant(variant)
  if variant.adversarial not in ("bce", "wgan-gp", "wdiv"):
    raise ValueError(f"adversarial must be bce, wgan-gp or wdiv, got {variant.adversarial!r}")

  def critic_loss(params, st, batch, key):
    k_z, k_real, k_fake, k_pen, k_pen_drop = jax.random.split(key, 5)
    fake, _ = _generate(gen, st["generator"], st["generator"].params, batch, k_z,
                        latent_dim=hp.latent_dim, grad_through_vgg=False)
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
      pen = losses.gradient_penalty(critic_fn, real, fake, k_pen, weight=hp.gp_weight)
    else:
      adv = losses.wgan_critic_loss(real_score, fake_score)
      pen = losses.wasserstein_div_penalty(critic_fn, real, fake, k_pen, k=hp.wdiv_k,
                                           p=hp.wdiv_p, mode=hp.wdiv_mode)
    cls = losses.acgan_class_loss(real_logits, labels, fake_logits, labels)
    acc = jnp.mean((jnp.argmax(real_logits, -1) == labels).astype(jnp.float32))
    return adv + pen + cls, (None, {"adversarial": adv, "penalty": pen, "class": cls,
                                    "real_accuracy": acc})

  def generator_loss(params, st, batch, key):
    batch = jax.tree_util.tree_map(lambda x: x[:hp.batch_size], batch)
    k_z, k_drop = jax.random.split(key)
    fake, new_stats = _generate(gen, st["generator"], params, batch, k_z,
                                latent_dim=hp.latent_dim, grad_through_vgg=hp.vgg_trainable)
    score, logits = disc.apply({"params": st["critic"].params}, fake, train=True,
                               rngs={"dropout": k_drop})
    adv = (losses.bce_generator_loss(score) if variant.adversarial == "bce"
           else losses.wgan_generator_loss(score))
    cls = losses.cross_entropy(logits, batch["label"])
    acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
    return adv + cls, (new_stats, {"adversarial": adv, "class": cls, "fake_accuracy": acc})

  return critic_loss, generator_loss


def make_train_step(hp: Hyper, variant: Variant | str, gen, disc, *, unroll: bool = True):
  """Pure ``(state, batch, key) -> (state, metrics)``: the MSFE features of the
  batch's real images (the guides) once, then m critic updates and one
  generator update (``train.make_adversarial_step``; ``unroll`` its critic
  loop, the faster choice on CPU, see bench/RESULTS.md)."""
  critic_loss, generator_loss = make_losses(hp, variant, gen, disc)
  inner = train.make_adversarial_step(critic_loss=critic_loss, generator_loss=generator_loss,
                                      num_critic_steps=hp.num_critic_steps, unroll=unroll)

  def step(state, batch, key):
    if gen.msfe:
      g = state["generator"]
      feats = gen.apply({"params": g.params, "batch_stats": g.batch_stats}, batch["image"],
                        method=Generator.guide_features)
      batch = {**batch, "guide_features": jax.lax.stop_gradient(feats)}
    return inner(state, batch, key)

  return step


# --------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------


@jax.jit
def class_logits(critic: train.TrainState, images: jax.Array) -> jax.Array:
  """float32[B, K] class-head logits of the critic in inference mode (no
  dropout) for images float32[B, S, S, 1] in [-1, 1]."""
  return critic.apply_fn({"params": critic.params}, images, train=False)[1]


def classify(state: dict, images: np.ndarray, batch: int = 100) -> np.ndarray:
  """Class-head predictions int[N] of the critic in inference mode."""
  critic = state["critic"]
  return np.concatenate([np.asarray(class_logits(critic, jnp.asarray(images[i:i + batch])))
                         .argmax(-1) for i in range(0, len(images), batch)])


@jax.jit
def _generate_eval(gen_state: train.TrainState, z, labels, guide):
  return gen_state.apply_fn(gen_state.variables, z, labels, guide, train=False)


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
  out = _generate_eval(g, z, jnp.asarray(labels), kw.get("guide"))
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
