"""EDCGAN (paper: edcgan-mobilenetv2) as a system: one DCGAN-family generator
and discriminator per defect class, all classes trained together in one
jitted, vmapped step; state creation, sampling of labelled images.

Use from your own code::

  from defects_jax.systems import edcgan as E
  hp = E.Hyper(image_size=64)
  gen, disc = E.make_models(hp)
  state = E.make_class_states(hp, gen, disc, jax.random.key(0), num_classes=6)
  step = jax.jit(E.make_class_step(hp, gen, disc), donate_argnums=0)
  # batch["image"]: float32[B, 6, 64, 64, 1] in [-1, 1], one image of every class per row
  state, metrics = step(state, batch, key)
  images, labels = E.sample(state, gen, per_class=100, key=key, latent_dim=hp.latent_dim)

**One GAN per class (our reading).** The paper trains an unconditional GAN
and then uses 8000 *labelled* generated images; it never says how labels are
obtained. We train one EDCGAN per class on that class's images. Done the JAX
way: the K classes' states are stacked along a leading axis
(``train.stack``) and one pure step is ``vmap``-ed over them, so all K GANs
train in one compiled step (equal to K separate steps with keys
``split(key, K)``, tested to 1e-5).

**Readings of the paper** (section numbers of edcgan-mobilenetv2):

* Generator activation. Section 3.1 says twice that ELU is introduced "only
  ... in the discriminative layer, while that in the generation layer remains
  unchanged" (DCGAN's ReLU, with BN), and lists it as characteristic (2).
  Section 4.2 and Table 1 (E1-E5) put "ERelu" after the generator's BN. We
  follow the method's definition (3.1): ``gen_activation="relu"``; Table 1's
  reading is ``gen_activation="selu"``.
* Discriminator activation. Eq. 5 prints plain ELU, alpha (e^x - 1); the text
  around it credits the unit with self-normalisation ("keeps the output ...
  self-normalized", "Since BN is already included in the ERELU activation
  function, there is no need to add a BN function") and section 3.2 calls it
  "the scaled linear exponential unit" for which alpha-dropout is used: that
  is SELU (Klambauer et al. 2017), the only one of the two with those
  properties and the one alpha-dropout was derived for. Default
  ``disc_activation="selu"`` (LeCun-normal init, no BN); ``"elu"`` is eq. 5
  read literally.
* Alpha-dropout. "alpha = min ELU(x) = -lambda x. The value of lambda is
  usually a number from 0 to 1, we set it as 0.5" is garbled: alpha-dropout's
  saturation value is alpha' = -lambda alpha = -1.7581 for SELU (fixed, not a
  choice), and lambda = 1.0507 is not in (0, 1). The only free number of
  alpha-dropout is the drop rate, so we read the paper's 0.5 as the drop rate.
  Section 3.2 places dropout "in the fully connected network layer": ours
  sits on the flattened 4x4 features before the discriminator's dense logit.
* Discriminator size. Table 1 lists each conv's *input* (C1 256x256x3 ... C6
  8x8x512), so C1-C5 output 32, 64, 128, 256, 512 channels; C6's output width
  and the final layer are not given: ours 1024 at 4x4, then a dense logit
  (:data:`~defects_jax.models.dcgan.EDCGAN_DISCRIMINATOR_WIDTHS`).
* Optimiser. "MBGD ... exponential decay parameters beta1 0.8 and beta2 0.99"
  describes Adam's moment decays: Adam lr 1e-4, betas (0.8, 0.99), batch 128,
  800 epochs (section 4.1); with one GAN per class an epoch is one pass over
  that class's images (210 on the 7:3 split), so 800 epochs are
  ceil(800 x 210 / 128) = 1313 steps.
* Objective: the non-saturating GAN loss (``losses.bce_discriminator_loss``,
  ``losses.bce_generator_loss``): D then G, one update each per step; noise
  z ~ N(0, I) of 100 dimensions (section 4.2).

The plain-DCGAN baseline is :data:`DCGAN_BASELINE` (BN + LeakyReLU(0.2)
discriminator, no dropout, DCGAN's N(0, 0.02) init).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import losses
from defects_jax import train
from defects_jax.config import check
from defects_jax.config import field
from defects_jax.models import dcgan
from defects_jax.train.steps import apply_model

# The discriminator switches that turn EDCGAN into Radford et al.'s DCGAN.
CLASS_AXES = ("vmap", "loop")
DCGAN_BASELINE = {"disc_activation": "leaky_relu", "disc_norm": "bn", "disc_dropout": "none"}


@dataclasses.dataclass(frozen=True)
class Hyper:
  """EDCGAN hyperparameters. Fields marked ``paper=`` are the paper's setting
  (or our reading of what it leaves open, see the module docstring)."""

  gan_image_size: int = field(256, paper="section 4.2 / Table 1: 256x256 generator output")
  latent_dim: int = field(100, paper="section 4.2: a 100-dimensional noise vector")
  gen_widths: tuple = field(dcgan.EDCGAN_GENERATOR_WIDTHS,
                            paper="section 4.2 / Table 1: 4x4x1024, then 512/256/128/64/32")
  disc_widths: tuple = field(dcgan.EDCGAN_DISCRIMINATOR_WIDTHS,
                             paper="Table 1: C1-C5 output 32..512 (its column lists inputs); "
                                   "C6's 1024 is ours")
  gen_activation: str = field("relu", paper="section 3.1: generator 'remains unchanged' "
                              "(ReLU); Table 1's EReLU would be 'selu'")
  disc_activation: str = field("selu", paper="sections 3.1-3.2: self-normalising 'scaled' "
                               "exponential unit = SELU (eq. 5 prints ELU: 'elu')")
  disc_norm: str = field("none", paper="section 3.1: no BN in the discriminator")
  disc_dropout: str = field("alpha", paper="section 3.2: alpha-dropout in the dense layer")
  dropout_rate: float = field(0.5, paper="section 3.2: '0.5' (garbled; read as the drop rate)")
  gan_batch_size: int = field(128, paper="section 4.1: mini-batch 128")
  gan_learning_rate: float = field(1e-4, paper="section 4.1: learning rate 1e-4")
  beta1: float = field(0.8, paper="section 4.1: beta1 0.8 (read as Adam's)")
  beta2: float = field(0.99, paper="section 4.1: beta2 0.99")
  gan_epochs: int = field(800, paper="section 4.1: 800 epochs (per class: 1313 steps of 128)")
  class_axis: str = field("vmap", doc="how the K class GANs share one jitted step: 'vmap' "
                          "(one batched program; best on GPU) or 'loop' (K unrolled copies of "
                          "the step; on XLA:CPU vmapped per-class convs become grouped convs: "
                          "vmap measured about 7x one class's step, the loop about 5.3x, "
                          "bench/RESULTS.md)")

  def validate(self) -> None:
    try:
      dcgan.num_stages(self.gan_image_size)
    except ValueError as e:
      check(False, "gan_image_size", str(e))
    n = dcgan.num_stages(self.gan_image_size)
    check(len(self.gen_widths) >= n, "gen_widths",
          f"a {self.gan_image_size}x{self.gan_image_size} generator needs {n} widths, got "
          f"{self.gen_widths}")
    check(len(self.disc_widths) >= n, "disc_widths",
          f"a {self.gan_image_size}x{self.gan_image_size} discriminator needs {n} widths, got "
          f"{self.disc_widths}")
    for name, allowed in (("gen_activation", dcgan.ACTIVATIONS),
                          ("disc_activation", dcgan.ACTIVATIONS), ("disc_norm", dcgan.NORMS),
                          ("disc_dropout", dcgan.DROPOUTS)):
      check(getattr(self, name) in allowed, name,
            f"must be one of {list(allowed)}, got {getattr(self, name)!r}")
    check(0.0 <= self.dropout_rate < 1.0, "dropout_rate",
          f"must be in [0, 1), got {self.dropout_rate}")
    check(self.latent_dim >= 1, "latent_dim", f"must be >= 1, got {self.latent_dim}")
    check(self.gan_batch_size >= 2, "gan_batch_size", f"must be >= 2, got {self.gan_batch_size}")
    check(self.gan_learning_rate > 0, "gan_learning_rate",
          f"must be > 0, got {self.gan_learning_rate}")
    check(self.gan_epochs >= 1, "gan_epochs", f"must be >= 1, got {self.gan_epochs}")
    check(self.class_axis in CLASS_AXES, "class_axis",
          f"must be one of {list(CLASS_AXES)}, got {self.class_axis!r}")


def gan_steps(hp: Hyper, images_per_class: int) -> int:
  """Steps of ``gan_epochs`` passes over ``images_per_class`` images at
  ``gan_batch_size`` (the largest class when they differ)."""
  return max(1, math.ceil(hp.gan_epochs * images_per_class / hp.gan_batch_size))


# --------------------------------------------------------------------------
# Models and state
# --------------------------------------------------------------------------


def make_models(hp: Hyper, channels: int = 1):
  """(generator, discriminator) flax modules."""
  gen = dcgan.DCGANGenerator(image_size=hp.gan_image_size, channels=channels,
                             widths=tuple(hp.gen_widths), activation=hp.gen_activation)
  disc = dcgan.DCGANDiscriminator(widths=tuple(hp.disc_widths), norm=hp.disc_norm,
                                  activation=hp.disc_activation, dropout=hp.disc_dropout,
                                  dropout_rate=hp.dropout_rate)
  return gen, disc


def make_optimizer(hp: Hyper) -> optax.GradientTransformation:
  return optax.adam(hp.gan_learning_rate, b1=hp.beta1, b2=hp.beta2)


def make_state(hp: Hyper, gen, disc, key: jax.Array, channels: int = 1) -> dict:
  """One class's ``{"generator", "critic"}`` TrainStates (traceable: vmap it)."""
  k_gen, k_disc = jax.random.split(key)
  s = hp.gan_image_size
  gvars = gen.init(k_gen, jnp.zeros((1, hp.latent_dim)), train=False)
  dvars = disc.init(k_disc, jnp.zeros((1, s, s, channels)), train=False)
  tx = make_optimizer(hp)
  return {"generator": train.TrainState.create(apply_fn=gen.apply, variables=gvars, tx=tx),
          "critic": train.TrainState.create(apply_fn=disc.apply, variables=dvars, tx=tx)}


def make_class_states(hp: Hyper, gen, disc, key: jax.Array, num_classes: int,
                      channels: int = 1) -> dict:
  """K = ``num_classes`` independent states stacked along axis 0 (class c
  initialised from ``fold_in(key, c)``), built by one jitted vmap."""
  keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(num_classes))
  return jax.jit(jax.vmap(lambda k: make_state(hp, gen, disc, k, channels)))(keys)


# --------------------------------------------------------------------------
# The objective and the steps
# --------------------------------------------------------------------------


def _apply(state: train.TrainState, params, x, *, training: bool, key=None):
  """(output, new batch_stats) of a network (dropout from ``key``)."""
  return apply_model(state, params, x, train=training, dropout_key=key)


def make_losses(hp: Hyper):
  """(critic_loss, generator_loss) in ``train.make_adversarial_step``'s form:
  the non-saturating GAN objective of one class's GAN."""

  def generate(st, params, n, key):
    z = jax.random.normal(key, (n, hp.latent_dim))
    return _apply(st["generator"], params, z, training=True)

  def critic_loss(params, st, batch, key):
    k_z, k_real, k_fake = jax.random.split(key, 3)
    real = batch["image"]
    fake, _ = generate(st, st["generator"].params, real.shape[0], k_z)
    fake = jax.lax.stop_gradient(fake)
    critic = st["critic"]
    real_logits, stats = _apply(critic, params, real, training=True, key=k_real)
    critic = critic.replace(batch_stats=stats)
    fake_logits, stats = _apply(critic, params, fake, training=True, key=k_fake)
    loss = losses.bce_discriminator_loss(real_logits, fake_logits)
    return loss, (stats if st["critic"].batch_stats else None,
                  {"real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),
                   "fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits))})

  def generator_loss(params, st, batch, key):
    k_z, k_drop = jax.random.split(key)
    fake, gen_stats = generate(st, params, batch["image"].shape[0], k_z)
    logits, _ = _apply(st["critic"], st["critic"].params, fake, training=True, key=k_drop)
    return losses.bce_generator_loss(logits), (gen_stats, {})

  return critic_loss, generator_loss


def make_train_step(hp: Hyper, gen=None, disc=None):
  """Pure ``(state, batch, key) -> (state, metrics)`` of one class's GAN:
  one discriminator update, then one generator update against it. ``batch``:
  ``image`` float32[B, S, S, C] in [-1, 1]. Metrics: ``critic/loss``,
  ``critic/real_prob``, ``critic/fake_prob``, ``generator/loss``. (``gen`` and
  ``disc`` are accepted for symmetry with other systems; the step reads the
  modules from the state.)"""
  del gen, disc
  critic_loss, generator_loss = make_losses(hp)
  return train.make_adversarial_step(critic_loss=critic_loss, generator_loss=generator_loss,
                                     num_critic_steps=1)


def make_class_step(hp: Hyper, gen=None, disc=None):
  """Pure ``(stacked_state, batch, key) -> (stacked_state, metrics)``: the
  single-class step applied to each of the K stacked GANs. ``batch["image"]``
  is float32[B, K, S, S, C] (a :class:`~defects_jax.data.PerClassSource`
  batch: row b holds one image of every class); class c steps on
  ``image[:, c]`` with key ``split(key, K)[c]``. ``hp.class_axis`` says how:
  ``"vmap"`` (one batched program) or ``"loop"`` (K unrolled copies inside
  the one jitted step); both equal K separate steps. Metrics are means over
  the classes."""
  step = make_train_step(hp, gen, disc)
  if hp.class_axis not in CLASS_AXES:
    raise ValueError(f"class_axis must be one of {CLASS_AXES}, got {hp.class_axis!r}")

  def class_step(state, batch, key):
    images = jnp.swapaxes(batch["image"], 0, 1)
    keys = jax.random.split(key, images.shape[0])
    if hp.class_axis == "vmap":
      state, metrics = jax.vmap(step)(state, {"image": images}, keys)
    else:
      outs = [step(train.index(state, c), {"image": images[c]}, keys[c])
              for c in range(images.shape[0])]
      state = train.stack([o[0] for o in outs])
      metrics = {k: jnp.stack([o[1][k] for o in outs]) for k in outs[0][1]}
    return state, {k: jnp.mean(v) for k, v in metrics.items()}

  return class_step


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


@jax.jit
def _generate_classes(gen_state: train.TrainState, z: jax.Array) -> jax.Array:
  """[K, n, S, S, C] images (inference mode) from z [K, n, latent]."""
  return jax.vmap(lambda s, zz: s.apply_fn(s.variables, zz, train=False))(gen_state, z)


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 0..255 (as decoded image files)."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255
                 ).astype(np.uint8)


def sample(state: dict, per_class: int, key: jax.Array, *, latent_dim: int,
           batch_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """``per_class`` images of every class from the stacked generators, in
  inference mode (running BatchNorm statistics).

  Returns:
    (uint8 [K * per_class, S, S, C], int32 labels [K * per_class]), class by
    class (all of class 0, then class 1 ...).
  """
  if per_class < 1:
    raise ValueError(f"per_class must be >= 1, got {per_class}")
  g = state["generator"]
  k = train.stack_size(g)
  batch_size = min(batch_size, per_class)
  chunks = []
  for i, start in enumerate(range(0, per_class, batch_size)):
    z = jax.random.normal(jax.random.fold_in(key, i), (k, batch_size, latent_dim))
    chunks.append(to_uint8(_generate_classes(g, z)))
  images = np.concatenate(chunks, axis=1)[:, :per_class]
  labels = np.repeat(np.arange(k, dtype=np.int32), per_class)
  return images.reshape((k * per_class,) + images.shape[2:]), labels
