"""LNet + DNet of the weakly supervised detector (weakly-supervised-lnet-dnet,
section III.A, Tables 1-3, Figures 1-2).

* Shared layers S1-S10 (Table 1): 3x3 ConvBN-ReLU 32, 32 | pool | 64, 64 |
  pool | 128, 128 | pool | 128, with 2x2 max pools of stride 2: features at
  1/8 of the input size.
* LNet (Table 2): ConvBN-ReLU 5x5 x 64, 5x5 x 64, 15x15 x 512, then a 1x1
  conv to one channel and a sigmoid: the heat map, one value per 8x8 region.
* Shared layers and LNet pad by reflection (section IV.C: zero padding made the
  borders look anomalous).
* DNet (Table 3, Figure 2): the residual spatial attention module
  ``f * heat + f``, then ConvBN-ReLU 64 | pool | 64 | pool | 128 | pool | 256
  (zero padding), global average pooling of the features (256) and of the
  heat map (1), concatenated, a hidden fully connected layer with ReLU, and one
  output logit (sigmoid -> defect probability).

Sizes the paper leaves open, and our choices: the order of DNet's convs and
pools (alternating, the last conv after the third pool, so the output is 1/64
of the input as the text says); the activation of the hidden layer (ReLU); the
hidden width: the paper says "266 nodes" while concatenating 256 + 1 = 257
values, so it is ``dnet_hidden`` (default 266); LNet's last layer is a plain
1x1 conv with bias (no BN) before the sigmoid, reading the garbled sentence on
its "batch normalization layer and non-linear ReLU" as applying to the layers
before it. ``lnet_wide`` (default 512) and ``lnet_kernel`` (default 15) are
configurable so reduced-resolution runs can shrink the 15x15 layer: its
receptive field must stay a fraction of the image, or LNet can satisfy the
weak loss with a uniform heat map (see experiments/weak_ksdd.py).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from defects_jax.models.layers import ConvBN
from defects_jax.models.layers import global_avg_pool
from defects_jax.models.layers import max_pool_2x2


# S1-S10 (Table 1): (width, 2x2 max pool after) of each 3x3 ConvBN-ReLU.
SHARED_LAYERS = ((32, False), (32, True), (64, False), (64, True), (128, False), (128, True),
                 (128, False))


class SharedLayers(nn.Module):
  """S1-S10: [B, H, W, C] -> [B, H/8, W/8, 128] (reflect padding)."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    for i, (width, pool_after) in enumerate(SHARED_LAYERS):
      x = ConvBN(width, 3, padding="REFLECT", name=f"conv{i}")(x, train=train)
      if pool_after:
        x = max_pool_2x2(x)
    return x


class LNet(nn.Module):
  """Heat map [B, h, w] in (0, 1) from shared features (reflect padding)."""

  wide: int = 512
  kernel: int = 15

  @nn.compact
  def __call__(self, f, *, train: bool):
    x = ConvBN(64, 5, padding="REFLECT", name="conv0")(f, train=train)
    x = ConvBN(64, 5, padding="REFLECT", name="conv1")(x, train=train)
    x = ConvBN(self.wide, self.kernel, padding="REFLECT", name="conv2")(x, train=train)
    logits = nn.Conv(1, (1, 1), name="conv3")(x)
    return jax.nn.sigmoid(logits[..., 0].astype(jnp.float32))


class DNet(nn.Module):
  """Defect logit [B] from shared features and the heat map (RSAM + convs)."""

  hidden: int = 266

  @nn.compact
  def __call__(self, f, heat, *, train: bool):
    x = f * heat[..., None] + f  # residual spatial attention module
    x = ConvBN(64, 3, name="conv0")(x, train=train)
    x = max_pool_2x2(x)
    x = ConvBN(64, 3, name="conv1")(x, train=train)
    x = max_pool_2x2(x)
    x = ConvBN(128, 3, name="conv2")(x, train=train)
    x = max_pool_2x2(x)
    x = ConvBN(256, 3, name="conv3")(x, train=train)
    v = jnp.concatenate([global_avg_pool(x), jnp.mean(heat, axis=(1, 2))[:, None]], axis=-1)
    v = nn.relu(nn.Dense(self.hidden, name="fc0")(v))
    return nn.Dense(1, name="fc1")(v)[:, 0].astype(jnp.float32)


class WeakDetector(nn.Module):
  """Shared layers + LNet + DNet.

  ``__call__(x, *, train, frozen_backbone=False) -> (heatmap, logit)``:
  x float[B, H, W, C] with H, W multiples of 64 (>= 64); heatmap float32
  [B, H/8, W/8]; logit float32 [B]. With ``frozen_backbone`` the shared
  layers and LNet run in inference mode (running BatchNorm statistics, no
  updates, no gradient), for stage 2 where they are frozen. ``heatmap(x, *, train)`` runs
  only the shared layers and LNet (stage 1). Parameters live under
  ``shared``, ``lnet`` and ``dnet``.
  """

  lnet_wide: int = 512
  lnet_kernel: int = 15
  dnet_hidden: int = 266

  def setup(self):
    self.shared = SharedLayers()
    self.lnet = LNet(self.lnet_wide, self.lnet_kernel)
    self.dnet = DNet(self.dnet_hidden)

  def heatmap(self, x, *, train: bool):
    return self.lnet(self.shared(x, train=train), train=train)

  def __call__(self, x, *, train: bool, frozen_backbone: bool = False):
    backbone_train = train and not frozen_backbone
    f = self.shared(x, train=backbone_train)
    heat = self.lnet(f, train=backbone_train)
    if frozen_backbone:
      # No gradient into frozen layers: the backward pass stops at DNet's input
      # instead of relying on the compiler to drop unused gradients.
      f, heat = jax.lax.stop_gradient(f), jax.lax.stop_gradient(heat)
    return heat, self.dnet(f, heat, train=train)
