"""Res-ACGAN generator, discriminator and MSFE (defects_jax.models.res_acgan)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax.models import convert
from defects_jax.models.res_acgan import MSFE
from defects_jax.models.res_acgan import Discriminator
from defects_jax.models.res_acgan import Generator
from defects_jax.models.vgg import VGG19

SMALL = dict(widths=(8, 4), num_res_blocks=1, latent_dim=16)


@pytest.mark.parametrize("size", [64])  # our training size; 32 runs in the smoke test
def test_generator_shapes_and_range(size):
  gen = Generator(num_classes=6, image_size=size, **SMALL)
  z = jax.random.uniform(jax.random.key(0), (3, 16), minval=-1, maxval=1)
  labels = jnp.array([0, 3, 5])
  guide = jax.random.uniform(jax.random.key(1), (3, size, size, 1), minval=-1, maxval=1)
  v = jax.jit(lambda k: gen.init(k, z, labels, guide, train=False))(jax.random.key(2))
  out, upd = jax.jit(lambda v: gen.apply(v, z, labels, guide, train=True,
                                         mutable=["batch_stats"]))(v)
  assert out.shape == (3, size, size, 1) and out.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(out))) <= 1.0 and "batch_stats" in upd
  feats = jax.jit(lambda v: gen.apply(v, guide, method=Generator.guide_features))(v)
  # taps (23, 16, 7): conv4_3 at 1/8, conv3_4 at 1/4, conv2_2 at 1/2 of the image
  assert [f.shape for f in feats] == [(3, size // 8, size // 8, 512),
                                      (3, size // 4, size // 4, 256),
                                      (3, size // 2, size // 2, 128)]
  # the guide matters: another guide gives other images
  infer = jax.jit(lambda v, g: gen.apply(v, z, labels, g, train=False))
  assert float(jnp.max(jnp.abs(infer(v, -guide) - infer(v, guide)))) > 0


def test_generator_variants_have_the_intended_parameters():
  z, labels = jnp.zeros((1, 16)), jnp.zeros((1,), int)
  plain = Generator(num_classes=6, image_size=32, residual=False, msfe=False, **SMALL)
  v = jax.eval_shape(lambda k: plain.init(k, z, labels, train=False), jax.random.key(0))
  v = v["params"]
  assert "extractor" not in v and not any(k.startswith("res_") for k in v)
  full = Generator(num_classes=6, image_size=32, **SMALL)
  with pytest.raises(ValueError, match="needs guide images"):
    jax.eval_shape(lambda k: full.init(k, z, labels, train=False), jax.random.key(0))
  v = jax.eval_shape(lambda k: full.init(k, z, labels, jnp.zeros((1, 32, 32, 1)), train=False),
                     jax.random.key(0))["params"]
  assert {"extractor", "res_1_0", "res_2_0", "align_0", "align_2"} <= set(v)
  # VGG19 only up to the deepest tap (features.23): its first 11 convs
  assert set(v["extractor"]["vgg"]) == {f"features_{i}" for i in (0, 2, 5, 7, 10, 12, 14, 16,
                                                                  19, 21, 23)}
  with pytest.raises(ValueError, match="multiple of 4"):
    jax.eval_shape(lambda k: Generator(num_classes=6, image_size=30, msfe=False, **SMALL).init(
        k, z, labels, train=False), jax.random.key(0))


def test_discriminator_heads_and_per_sample_independence():
  disc = Discriminator(num_classes=6, widths=(4, 8, 8, 8), head_width=8)
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 1))
  v = jax.jit(lambda k: disc.init(k, x, train=False))(jax.random.key(1))
  assert set(v) == {"params"}  # no normalisation statistics in the critic
  jitted = jax.jit(lambda v, x: disc.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)}))
  apply = lambda x: jitted(v, x)
  score, logits = apply(x)
  assert score.shape == (4,) and logits.shape == (4, 6)
  # gradient penalties need each score to depend on its own sample only
  score2, _ = apply(x.at[1:].set(0.0))
  assert float(score2[0]) == pytest.approx(float(score[0]), abs=1e-6)
  with pytest.raises(ValueError, match="S >= 16"):
    disc.apply(v, jnp.zeros((1, 8, 8, 1)), train=False)


def test_msfe_equals_vgg19_features_on_imagenet_normalised_rgb():
  msfe = MSFE(taps=(7, 16))
  x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), minval=-1, maxval=1)
  v = msfe.init(jax.random.key(1), x)
  rgb = (jnp.repeat((x + 1) / 2, 3, -1) - jnp.array([0.485, 0.456, 0.406])) / jnp.array(
      [0.229, 0.224, 0.225])
  want = VGG19().apply({"params": v["params"]["vgg"]}, rgb, (7, 16), method="features")
  got = msfe.apply(v, x)
  for a, t in zip(got, (7, 16)):
    np.testing.assert_allclose(a, want[t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trainable", [False, True])
def test_vgg19_gets_gradients_only_when_trainable(trainable):
  gen = Generator(num_classes=6, image_size=32, taps=(7, 5, 2), msfe_trainable=trainable,
                  **SMALL)
  z, labels = jnp.ones((1, 16)), jnp.array([1])
  guide = jax.random.uniform(jax.random.key(1), (1, 32, 32, 1), minval=-1, maxval=1)
  v = gen.init(jax.random.key(0), z, labels, guide, train=False)
  grads = jax.grad(lambda p: jnp.sum(gen.apply({**v, "params": p}, z, labels, guide,
                                               train=False) ** 2))(v["params"])
  vgg_norm = sum(float(jnp.sum(g ** 2)) for g in jax.tree_util.tree_leaves(grads["extractor"]))
  assert (vgg_norm > 0) == trainable
  assert float(jnp.sum(grads["align_0"]["kernel"] ** 2)) > 0
