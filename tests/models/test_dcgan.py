"""The DCGAN family and its layers: transposed convolution through conv2d's
lowering (== lax.conv_transpose in value and gradient), alpha-dropout, and the
generator / discriminator shapes and switches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import models
from defects_jax.models import dcgan
from defects_jax.models import layers


def reference_transpose(x, k, strides, padding):
  return jax.lax.conv_transpose(x, k, strides, padding,
                                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("ksize,strides,padding,lowering", [
    ((3, 3), (2, 2), "SAME", "auto"),    # the DCGAN layer
    ((5, 2), (3, 2), "VALID", "im2col"),
    ((1, 1), (2, 2), "SAME", "taps"),    # kernel smaller than the stride
])
def test_conv_transpose2d_equals_lax_conv_transpose_in_value_and_gradient(
    ksize, strides, padding, lowering):
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 5, 4, 3))
  k = jax.random.normal(kk, ksize + (3, 4))
  want = reference_transpose(x, k, strides, padding)
  got = jax.jit(lambda a, b: layers.conv_transpose2d(
      a, b, strides=strides, padding=padding, lowering=lowering,
      precision=jax.lax.Precision.HIGHEST))(x, k)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  g = jax.random.normal(kg, want.shape)  # a random cotangent
  grads = lambda f: jax.grad(lambda a, b: jnp.sum(f(a, b) * g), argnums=(0, 1))(x, k)
  for got_g, want_g in zip(
      grads(lambda a, b: layers.conv_transpose2d(a, b, strides=strides, padding=padding,
                                                 lowering=lowering,
                                                 precision=jax.lax.Precision.HIGHEST)),
      grads(lambda a, b: reference_transpose(a, b, strides, padding))):
    np.testing.assert_allclose(got_g, want_g, atol=1e-3, rtol=1e-4)


def test_conv_transpose_module_matches_flax_and_refuses_bad_input():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.key(1), (2, 4, 4, 3))
  ours = layers.ConvTranspose(5, 3, 2)
  variables = ours.init(jax.random.key(2), x)
  theirs = nn.ConvTranspose(5, (3, 3), strides=(2, 2), padding="SAME",
                            precision=jax.lax.Precision.HIGHEST)
  np.testing.assert_allclose(ours.apply(variables, x), theirs.apply(variables, x), atol=1e-4)
  assert ours.apply(variables, x).shape == (2, 8, 8, 5)
  with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
    layers.conv_transpose2d(x, jnp.zeros((3, 3, 3, 5)), padding=1)
  with pytest.raises(ValueError, match=r"expects x \[B, H, W, C\]"):
    layers.conv_transpose2d(x, jnp.zeros((3, 3, 2, 5)))


def test_alpha_dropout_keeps_mean_and_variance_of_selu_activations():
  # SELU of standard-normal inputs has mean 0 and variance 1 (the fixed point)
  z = jax.nn.selu(jax.random.normal(jax.random.key(0), (400_000,)))
  assert abs(float(z.mean())) < 0.01 and abs(float(z.var()) - 1) < 0.02
  for rate in (0.1, 0.5):
    y = jax.jit(layers.alpha_dropout, static_argnums=1)(z, rate, jax.random.key(1))
    assert abs(float(y.mean() - z.mean())) < 0.01, rate
    assert abs(float(y.var() - z.var())) < 0.02, rate
    # dropped units all sit at one value: a * alpha' + b
    q = 1 - rate
    a = (q + layers.SELU_SATURATION ** 2 * q * (1 - q)) ** -0.5
    dropped = a * layers.SELU_SATURATION - a * (1 - q) * layers.SELU_SATURATION
    assert abs(float(jnp.mean(jnp.isclose(y, dropped, atol=1e-5))) - rate) < 0.01
  # plain dropout does not keep the variance: what alpha-dropout is for
  keep = jax.random.bernoulli(jax.random.key(1), 0.5, z.shape)
  assert float(jnp.where(keep, z / 0.5, 0).var()) > 1.5
  with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
    layers.alpha_dropout(z, 1.0, jax.random.key(1))


def test_alpha_dropout_layer_is_the_identity_at_inference_and_needs_its_rng():
  x = jax.random.normal(jax.random.key(0), (4, 16))
  layer = layers.AlphaDropout(0.5)
  assert layer.apply({}, x, deterministic=True) is x
  y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)})
  assert y.shape == x.shape and not np.allclose(y, x)
  np.testing.assert_array_equal(
      y, layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)}))
  assert layers.AlphaDropout(0.0).apply({}, x, deterministic=False) is x
  with pytest.raises(Exception, match="dropout"):
    layer.apply({}, x, deterministic=False)


@pytest.mark.parametrize("size,stages", [(8, 1), (32, 3), (256, 6)])
def test_num_stages(size, stages):
  assert dcgan.num_stages(size) == stages


def test_num_stages_refuses_sizes_that_are_not_4_times_a_power_of_two():
  with pytest.raises(ValueError, match="48"):
    dcgan.num_stages(48)


def test_generator_and_discriminator_shapes_and_switches():
  gen = models.DCGANGenerator(image_size=32, channels=1, widths=(16, 8, 4))
  z = jax.random.normal(jax.random.key(0), (3, 10))
  gvars = jax.jit(lambda k: gen.init(k, z, train=False))(jax.random.key(1))
  x = jax.jit(lambda v: gen.apply(v, z, train=False))(gvars)
  assert x.shape == (3, 32, 32, 1) and x.dtype == jnp.float32
  assert float(jnp.abs(x).max()) <= 1.0  # tanh
  assert "batch_stats" in gvars and "deconv_3" in gvars["params"]
  # the EDCGAN discriminator: SELU, no BatchNorm, alpha-dropout before the logit
  disc = models.DCGANDiscriminator(widths=(4, 8, 16), norm="none", activation="selu",
                                   dropout="alpha", dropout_rate=0.5)
  dvars = jax.jit(lambda k: disc.init(k, x, train=False))(jax.random.key(2))
  assert "batch_stats" not in dvars
  apply = jax.jit(lambda v, rng, train: disc.apply(v, x, train=train, rngs={"dropout": rng}),
                  static_argnums=2)
  logits = apply(dvars, jax.random.key(3), False)
  assert logits.shape == (3,) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(logits, apply(dvars, jax.random.key(4), False))
  noisy = apply(dvars, jax.random.key(3), True)
  assert not np.allclose(noisy, logits)
  # the plain-DCGAN switch: BatchNorm (not after the first conv) + LeakyReLU
  plain = models.DCGANDiscriminator(widths=(4, 8, 16), norm="bn", activation="leaky_relu",
                                    dropout="none")
  pvars = jax.jit(lambda k: plain.init(k, x, train=False))(jax.random.key(2))
  assert len(pvars["batch_stats"]) == 2
  out, updates = jax.jit(lambda v: plain.apply(v, x, train=True, mutable=["batch_stats"]))(pvars)
  assert out.shape == (3,) and "batch_stats" in updates
  # a larger width tuple: the low-resolution end is used
  wide = models.DCGANDiscriminator(widths=dcgan.EDCGAN_DISCRIMINATOR_WIDTHS)
  wvars = jax.eval_shape(lambda k: wide.init(k, x, train=False), jax.random.key(2))
  kernels = [v["kernel"].shape[-1] for k, v in sorted(wvars["params"].items()) if "conv" in k]
  assert kernels == [256, 512, 1024]


def test_bad_widths_and_switches_are_refused():
  z = jnp.zeros((1, 10))
  with pytest.raises(ValueError, match="needs 3 widths"):
    models.DCGANGenerator(image_size=32, widths=(8, 4)).init(jax.random.key(0), z, train=False)
  with pytest.raises(ValueError, match="activation"):
    models.DCGANGenerator(image_size=8, widths=(8,), activation="swish").init(
        jax.random.key(0), z, train=False)
  with pytest.raises(ValueError, match="norm"):
    models.DCGANDiscriminator(widths=(4,), norm="layer").init(
        jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
