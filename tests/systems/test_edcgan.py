"""Tests of the EDCGAN system (defects_jax.systems.edcgan): the K class GANs
stepped together equal K separate steps, sampling, the config's checks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import config as config_lib
from defects_jax import train
from defects_jax.systems import edcgan as E

K = 6
TINY = E.Hyper(gan_image_size=16, latent_dim=8, gen_widths=(8, 4), disc_widths=(4, 8),
               gan_batch_size=4)


@pytest.mark.parametrize("variant,k", [
    ({"class_axis": "vmap"}, K),  # EDCGAN: the six NEU classes in one vmapped step
    # the unrolled loop, on the plain-DCGAN switch (BatchNorm statistics in the
    # critic); two classes keep its compilation short
    ({"class_axis": "loop", **E.DCGAN_BASELINE}, 2),
])
def test_class_step_equals_separate_steps(variant, k):
  hp = dataclasses.replace(TINY, **variant)
  gen, disc = E.make_models(hp)
  states = E.make_class_states(hp, gen, disc, jax.random.key(0), k)
  assert train.stack_size(states) == k
  batch = {"image": jax.random.uniform(jax.random.key(1), (4, k, 16, 16, 1), minval=-1,
                                       maxval=1)}
  key = jax.random.key(2)
  new, metrics = jax.jit(E.make_class_step(hp, gen, disc))(states, batch, key)
  step = jax.jit(E.make_train_step(hp, gen, disc))
  keys = jax.random.split(key, k)
  separate = []
  for c in range(k):
    state_c, metrics_c = step(train.index(states, c), {"image": batch["image"][:, c]}, keys[c])
    separate.append(metrics_c)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
                 train.index(new, c), state_c)
  for name, value in metrics.items():
    np.testing.assert_allclose(value, np.mean([m[name] for m in separate]), atol=1e-5)
  # the classes really are different models: initialised from fold_in(key, c)
  kernels = new["generator"].params["project"]["kernel"]
  assert not np.allclose(kernels[0], kernels[1])
  assert int(new["generator"].step[0]) == 1 and int(new["critic"].step[0]) == 1


def test_sample_gives_labelled_uint8_images_class_by_class():
  gen, disc = E.make_models(TINY)
  states = E.make_class_states(TINY, gen, disc, jax.random.key(0), 3)
  assert states["critic"].batch_stats == {}  # EDCGAN's critic has no BatchNorm
  images, labels = E.sample(states, 5, jax.random.key(3), latent_dim=TINY.latent_dim,
                            batch_size=2)
  assert images.shape == (15, 16, 16, 1) and images.dtype == np.uint8
  assert labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
  again, _ = E.sample(states, 5, jax.random.key(3), latent_dim=TINY.latent_dim, batch_size=2)
  np.testing.assert_array_equal(images, again)
  assert not np.array_equal(images[:5], images[5:10])
  with pytest.raises(ValueError, match="per_class must be >= 1"):
    E.sample(states, 0, jax.random.key(3), latent_dim=TINY.latent_dim)


def test_to_uint8_maps_the_tanh_range():
  out = E.to_uint8(jnp.array([-1.5, -1.0, 0.0, 1.0, 2.0]))
  assert out.tolist() == [0, 0, 128, 255, 255] and out.dtype == np.uint8


def test_gan_steps_and_paper_defaults():
  assert E.gan_steps(E.Hyper(), 210) == 1313  # 800 epochs of 210 images at batch 128
  hp = E.Hyper()
  assert (hp.beta1, hp.beta2, hp.gan_learning_rate, hp.latent_dim) == (0.8, 0.99, 1e-4, 100)
  assert hp.disc_norm == "none" and hp.disc_dropout == "alpha"


@pytest.mark.parametrize("change,match", [
    ({"gan_image_size": 48}, "gan_image_size"),
    ({"gan_image_size": 64, "gen_widths": (8, 4)}, "needs 4 widths"),
    ({"disc_activation": "tanh"}, "disc_activation"),
    ({"class_axis": "pmap"}, "class_axis"),
    ({"dropout_rate": 1.0}, "dropout_rate"),
])
def test_bad_hyperparameters_are_refused(change, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    dataclasses.replace(TINY, **change).validate()
