"""Tests of the Res-ACGAN system (defects_jax.systems.res_acgan): the adversarial
step of every Table 3 variant (traced), the critic loss written out, sampling,
sample quality, VGG19 loading. The compiled step's updates are checked on the
smoke run's checkpoint (tests/experiments/test_res_acgan.py), which pays for
that compilation once."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import losses
from defects_jax.models import VGG19
from defects_jax.models import convert
from defects_jax.models.res_acgan import Generator
from defects_jax.systems import res_acgan as RA

TINY = RA.Hyper(image_size=32, batch_size=4, num_critic_steps=1, latent_dim=16,
               gen_widths=(8, 4), disc_widths=(4, 8, 8, 8), head_width=8, num_res_blocks=1,
               msfe_taps=(7, 5, 2))  # shallow taps: 4 VGG convs, fast
# which loss functions each adversarial setting must call (Table 3 rows)
EXPECTED = {
    "bce": {"bce_discriminator_loss", "bce_generator_loss", "acgan_class_loss"},
    "wgan-gp": {"wgan_critic_loss", "gradient_penalty", "wgan_generator_loss",
                "acgan_class_loss"},
    "wdiv": {"wgan_critic_loss", "wasserstein_div_penalty", "wgan_generator_loss",
             "acgan_class_loss"},
}
ADVERSARIAL = set().union(*EXPECTED.values())


def _batch(cfg, n=None, seed=0):
  n = n or cfg.batch_size * cfg.num_critic_steps
  s = cfg.image_size
  x = jax.random.uniform(jax.random.key(seed), (n, s, s, 1), minval=-1, maxval=1)
  return {"image": x, "label": jnp.arange(n) % 6}


@pytest.mark.parametrize("vname", list(RA.VARIANTS))
def test_each_variant_builds_its_intended_loss_and_networks(vname, monkeypatch):
  """Traced (not compiled, to stay fast): the step of every Table 3 variant calls
  exactly its loss functions and builds its networks."""
  called = set()
  for name in ADVERSARIAL:
    fn = getattr(losses, name)

    def spy(*a, _fn=fn, _name=name, **kw):
      called.add(_name)
      return _fn(*a, **kw)
    monkeypatch.setattr(losses, name, spy)
  variant = RA.VARIANTS[vname]
  gen, disc = RA.make_models(TINY, variant, 6)
  state = jax.eval_shape(lambda k: RA.make_state(TINY, gen, disc, k), jax.random.key(0))
  new, metrics = jax.eval_shape(RA.make_train_step(TINY, variant, gen, disc), state,
                                _batch(TINY), jax.random.key(1))
  assert called == EXPECTED[variant.adversarial]
  assert set(metrics) >= {"critic/adversarial", "critic/penalty", "critic/class",
                          "generator/adversarial", "generator/class"}
  g = state["generator"].params
  assert ("extractor" in g) == variant.msfe
  assert any(k.startswith("res_") for k in g) == variant.residual
  assert any(k.startswith("ResBlock") for k in state["critic"].params) == variant.residual


def test_critic_loss_is_eq_10_to_12_written_out():
  """The full variant's critic loss equals W critic loss + k E||grad D(u)||^p +
  CE(real) + CE(fake), computed here directly (dropout 0 so D is deterministic)."""
  cfg = dataclasses.replace(TINY, dropout=0.0)
  variant = RA.VARIANTS["full"]
  gen, disc = RA.make_models(cfg, variant, 6)
  state = RA.make_state(cfg, gen, disc, jax.random.key(0))
  batch = _batch(cfg, cfg.batch_size)
  g = state["generator"]
  batch["guide_features"] = gen.apply(g.variables, batch["image"],
                                      method=Generator.guide_features)
  critic_loss, _ = RA.make_losses(cfg, variant, gen, disc)
  key = jax.random.key(7)
  params = state["critic"].params
  got, (_, parts) = jax.jit(critic_loss)(params, state, batch, key)

  def by_hand(params, batch, key):  # eq. 10-12 written out (jitted: op by op is slow)
    k_z, _, _, k_pen, _ = jax.random.split(key, 5)
    z = jax.random.uniform(k_z, (cfg.batch_size, cfg.latent_dim), minval=-1, maxval=1)
    fake, _ = gen.apply(g.variables, z, batch["label"], train=True, mutable=["batch_stats"],
                        guide_features=batch["guide_features"])
    d = lambda x: disc.apply({"params": params}, x, train=False)
    (rs, rl), (fs, fl) = d(batch["image"]), d(fake)
    e = jax.random.uniform(k_pen, (cfg.batch_size, 1, 1, 1))
    u = batch["image"] + e * (fake - batch["image"])
    grads = jax.vmap(jax.grad(lambda x: d(x[None])[0][0]))(u)
    norms = jnp.sqrt(jnp.sum(grads ** 2, axis=(1, 2, 3)))
    penalty = 2.0 * jnp.mean(norms ** 6)
    ce = lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(logits)),
                                                               batch["label"]])
    return (jnp.mean(fs) - jnp.mean(rs)) + penalty + ce(rl) + ce(fl), penalty

  want, penalty = jax.jit(by_hand)(params, batch, key)
  assert float(parts["penalty"]) == pytest.approx(float(penalty), rel=1e-4, abs=1e-8)
  assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-5)


def test_sampling_returns_images_of_the_requested_classes():
  gen, disc = RA.make_models(TINY, RA.VARIANTS["res_wdiv"], 6)  # (the smoke run samples
  # with MSFE guides)
  state = RA.make_state(TINY, gen, disc, jax.random.key(0))
  train_x = np.asarray(_batch(TINY, 12)["image"])
  train_y = np.arange(12) % 6
  want = np.array([2, 2, 5, 0, 2])
  fakes, partner = RA.sample(state, gen, want, jax.random.key(3), train_x, train_y,
                             latent_dim=TINY.latent_dim)
  assert fakes.shape == (5, 32, 32, 1) and fakes.dtype == np.float32
  assert np.all(np.abs(fakes) <= 1.0)
  np.testing.assert_array_equal(train_y[partner], want)  # guides of the requested class
  with pytest.raises(ValueError, match=r"classes \[7\]"):
    RA.sample(state, gen, np.array([7]), jax.random.key(3), train_x, train_y,
              latent_dim=TINY.latent_dim)


def test_sample_quality_of_a_copy_is_perfect():
  rng = np.random.default_rng(0)
  train_x = rng.uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
  train_y = np.array([0, 0, 1, 1, 2, 2])
  q = RA.sample_quality(train_x[[1, 2]], np.array([0, 1]), np.array([1, 2]), train_x, train_y)
  assert q["MSE (guide)"] == 0.0 and q["MSE (nearest)"] == 0.0
  assert q["SSIM (guide)"] == pytest.approx(1.0) and q["SSIM (nearest)"] == pytest.approx(1.0)
  # paired with the other image of the class: the nearest pairing finds the copy
  q = RA.sample_quality(train_x[[1]], np.array([0]), np.array([0]), train_x, train_y)
  assert q["MSE (guide)"] > 1000 and q["MSE (nearest)"] == 0.0


def test_vgg19_weights_load_into_the_extractor(tmp_path):
  """A torchvision-layout vgg19 state dict (here: exported from another random
  VGG19 as .npz, no torch needed) replaces the extractor's weights."""
  donor = jax.jit(lambda k: VGG19().init(k, jnp.zeros((1, 32, 32, 3)), (23,),
                                         method="features"))(jax.random.key(5))
  path = convert.save_npz(convert.to_torchvision(donor), tmp_path / "vgg19.npz")
  hp = RA.Hyper(image_size=32, gen_widths=(8, 4), num_res_blocks=1, latent_dim=16,
                vgg_weights=str(path))
  gen, disc = RA.make_models(hp, "full", 6)
  state = RA.make_state(hp, gen, disc, jax.random.key(0))
  got = state["generator"].params["extractor"]["vgg"]
  assert set(got) == {f"features_{i}" for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23)}
  for name in got:
    np.testing.assert_array_equal(got[name]["kernel"], donor["params"][name]["kernel"])
  bad = convert.save_npz({"fc.weight": np.zeros((2, 2))}, tmp_path / "resnet.npz")
  with pytest.raises(convert.ConversionError, match="vgg19 state dict"):
    RA.load_vgg19(state["generator"].params, bad, (7, 16, 23))
