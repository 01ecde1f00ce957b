"""conv2d / Conv: every lowering equals lax.conv in value and gradient."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from defects_jax import models
from defects_jax.models import layers


def reference(x, k, strides, padding, groups):
  pads = layers._explicit_padding(padding, x.shape[1:3], k.shape[:2], layers._pairs(strides))
  return jax.lax.conv_general_dilated(x, k, layers._pairs(strides), pads,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=groups,
                                      precision=jax.lax.Precision.HIGHEST)


@given(size=st.integers(1, 6), ksize=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]),
       padding=st.sampled_from(["SAME", "VALID", 1, ((0, 1), (2, 0))]),
       kind=st.sampled_from(["dense", "depthwise", "multiplier", "grouped"]),
       lowering=st.sampled_from(["taps", "im2col"]), seed=st.integers(0, 2**16))
@settings(max_examples=30)  # each example compiles two functions
def test_taps_and_im2col_lowerings_equal_lax_conv_in_value_and_gradient(
    size, ksize, stride, padding, kind, lowering, seed):
  cin, groups, cout = {"dense": (3, 1, 5), "depthwise": (4, 4, 4), "multiplier": (3, 3, 6),
                       "grouped": (4, 2, 6)}[kind]
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((2, size, size + 1, cin)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((ksize, ksize, cin // groups, cout)), jnp.float32)
  pads = layers._explicit_padding(padding, x.shape[1:3], (ksize, ksize), (stride, stride))
  if any((x.shape[1 + a] + sum(pads[a]) - ksize) < 0 for a in range(2)):
    with pytest.raises(ValueError, match="empty"):
      models.conv2d(x, k, strides=stride, padding=padding, feature_group_count=groups)
    return
  f = jax.jit(lambda x, k: models.conv2d(x, k, strides=stride, padding=padding,
                                         feature_group_count=groups, lowering=lowering,
                                         precision=jax.lax.Precision.HIGHEST))
  want = reference(x, k, stride, padding, groups)
  np.testing.assert_allclose(f(x, k), want, atol=1e-4, rtol=1e-4)
  cot = jnp.asarray(rng.standard_normal(want.shape), jnp.float32)
  g = jax.grad(lambda x, k: jnp.sum(f(x, k) * cot), argnums=(0, 1))(x, k)
  g_ref = jax.grad(lambda x, k: jnp.sum(reference(x, k, stride, padding, groups) * cot),
                   argnums=(0, 1))(x, k)
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_auto_picks_taps_only_for_tiny_outputs_on_cpu():
  assert layers.choose_lowering((2, 2), (3, 3), 1, 512, backend="cpu") == "taps"
  assert layers.choose_lowering((1, 1), (3, 3), 8, 8, backend="cpu") == "taps"
  assert layers.choose_lowering((8, 8), (3, 3), 1, 64, backend="cpu") == "xla"
  assert layers.choose_lowering((2, 2), (3, 3), 1, 512, backend="gpu") == "xla"
  assert layers.choose_lowering((1, 1), (3, 3), 2, 8, backend="cpu") == "xla"  # grouped
  assert layers.choose_lowering((64, 64), (3, 3), 32, 32, backend="cpu") == "taps"  # depthwise
  assert layers.choose_lowering((64, 64), (3, 3), 32, 32, backend="gpu") == "xla"
  # Large dense kernels: one matmul over all taps on CPU (LNet's 15x15 layer).
  assert layers.choose_lowering((44, 16), (15, 15), 1, 64, backend="cpu") == "im2col"
  assert layers.choose_lowering((44, 16), (7, 7), 1, 64, backend="cpu") == "xla"
  assert layers.choose_lowering((44, 16), (15, 15), 1, 64, backend="gpu") == "xla"
  assert layers.choose_lowering((2, 2), (15, 15), 1, 64, backend="cpu") == "taps"


def test_env_variable_forces_a_lowering(monkeypatch):
  monkeypatch.setenv(layers.LOWERING_ENV, "xla")
  assert layers.choose_lowering((1, 1), (3, 3), 1, 8, backend="cpu") == "xla"
  monkeypatch.setenv(layers.LOWERING_ENV, "taps")
  assert layers.choose_lowering((9, 9), (3, 3), 1, 8, backend="gpu") == "taps"
  monkeypatch.setenv(layers.LOWERING_ENV, "im2col")
  assert layers.choose_lowering((9, 9), (3, 3), 1, 8, backend="gpu") == "im2col"
  assert layers.choose_lowering((9, 9), (3, 3), 8, 8, backend="cpu") == "taps"  # depthwise
  monkeypatch.setenv(layers.LOWERING_ENV, "fastest")
  with pytest.raises(ValueError, match="DEFECTS_JAX_CONV_LOWERING"):
    layers.choose_lowering((9, 9), (3, 3), 1, 8)


def test_conv_module_matches_flax_conv_params_and_output():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 9, 7, 3)), jnp.float32)
  ours = models.Conv(4, 3, strides=2, padding=1)
  ref = nn.Conv(4, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
  v = ref.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, v)
  np.testing.assert_allclose(ours.apply(v, x), ref.apply(v, x), atol=1e-5)


def test_bad_arguments_name_the_problem():
  x, k = jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 2))
  with pytest.raises(ValueError, match="lowering"):
    models.conv2d(x, k, lowering="fast")
  with pytest.raises(ValueError, match="does not fit"):
    models.conv2d(x, jnp.zeros((3, 3, 2, 2)))
  with pytest.raises(ValueError, match="padding"):
    models.conv2d(x, k, padding="FULL")
