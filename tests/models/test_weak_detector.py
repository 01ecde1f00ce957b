"""Tests of the LNet/DNet weak detector network (the system's steps:
tests/systems/test_weak_detection.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import models
from defects_jax.models.weak_detector import SharedLayers


def test_heatmap_is_one_eighth_and_logit_per_image():
  m = models.WeakDetector(lnet_wide=16, lnet_kernel=3, dnet_hidden=8)
  # A 3x3 wide layer keeps the compile short; the paper's 15x15 is checked by
  # eval_shape below and its im2col lowering by tests/models/test_conv.py.
  v = jax.jit(lambda k: m.init(k, jnp.zeros((1, 64, 128, 1)), train=False))(jax.random.key(0))
  heat, logit = jax.jit(lambda v, x: m.apply(v, x, train=False))(
      v, jax.random.uniform(jax.random.key(1), (3, 64, 128, 1)))
  assert heat.shape == (3, 8, 16) and logit.shape == (3,)
  assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
  assert set(v["params"]) == {"shared", "lnet", "dnet"}


def test_shared_layers_and_lnet_use_reflect_padding():
  """A constant image stays spatially constant through reflect-padded convs
  (zero padding would make the borders differ from the interior)."""
  m = SharedLayers()
  x = jnp.full((1, 64, 64, 1), 0.7)
  v = jax.jit(lambda k: m.init(k, x, train=False))(jax.random.key(0))
  f = jax.jit(lambda v: m.apply(v, x, train=False))(v)
  assert f.shape == (1, 8, 8, 128)
  np.testing.assert_allclose(f, jnp.broadcast_to(f[:, :1, :1], f.shape), rtol=1e-5, atol=1e-6)
  det = models.WeakDetector(lnet_wide=16, lnet_kernel=3, dnet_hidden=8)
  vd = jax.jit(lambda k: det.init(k, x, train=False))(jax.random.key(0))
  heat = jax.jit(lambda v: det.apply(v, x, train=False, method=models.WeakDetector.heatmap))(vd)
  np.testing.assert_allclose(heat, jnp.broadcast_to(heat[:, :1, :1], heat.shape), rtol=1e-5)


def test_paper_size_detector_shapes_by_eval_shape():
  """The paper's sizes (15x15x512 LNet layer, 1408x512 input), traced without
  compiling: heat map at 1/8, one logit, the wide layer's kernel."""
  m = models.WeakDetector()
  x = jax.ShapeDtypeStruct((2, 1408, 512, 1), jnp.float32)
  v = jax.eval_shape(lambda k, x: m.init(k, x, train=False), jax.random.key(0), x)
  heat, logit = jax.eval_shape(lambda v, x: m.apply(v, x, train=False), v, x)
  assert heat.shape == (2, 176, 64) and logit.shape == (2,)
  kernels = [l.shape for l in jax.tree_util.tree_leaves(v["params"]["lnet"]) if l.ndim == 4]
  assert (15, 15, 64, 512) in kernels
