"""Res-ACGAN with multi-level semantic guidance (res-acgan sections 3.1-3.2,
Figures 2-4), flax.linen, NHWC, grey images in [-1, 1].

The paper's networks are described in words and small figures; the sizes it
leaves open are ours and are written here (each is an attribute, so a user can
change it):

* **Image size** is an attribute; our presets train at 64x64 (NEU-CLS's
  200x200 images resized; smoke 32x32). The generator starts at 1/4 of it.
* **Generator** (Figure 3A, section 3.1 (3)): the reference ACGAN layout
  (Odena et al.; the widely used PyTorch-GAN ``acgan.py``, which the paper's
  "first two convolution layers ... up-sampling" matches) with residual blocks:
  ``embed(c) * z`` -> Dense -> reshape to ``(S/4, S/4, widths[0])`` -> BN ->
  [nearest x2 -> conv3x3 widths[0] -> BN -> LReLU -> 3 ResBlocks] ->
  [nearest x2 -> conv3x3 widths[1] -> BN -> LReLU -> 3 ResBlocks] -> conv3x3 to
  1 channel -> tanh. "Three residual modules between each two convolution
  layers": three after the first and three after the second up-sampling conv.
  No transposed convolutions. Widths (128, 64) as the reference ACGAN; the
  label enters by an embedding multiplied into z (the reference ACGAN; the
  paper only says z and c go through the FC layer).
* **Discriminator** (Figure 3B): "6 convolutional layers and 3 residual
  modules", the residual modules after the first convolution, LReLU between
  layers, dropout, and "two convolutional layers added before the sigmoid and
  softmax classification layers". Our reading: four stride-2 3x3 convs (widths
  16, 32, 64, 128 as the reference ACGAN), the three ResBlocks after the first,
  dropout 0.25 after each, then two stride-1 3x3 convs (``head_width``) shared
  by both heads (4 + 2 = the paper's 6), flatten, and two linear heads: a
  critic score (no sigmoid: the loss is Wasserstein; the BCE ablation applies
  the sigmoid in its loss) and K class logits. No normalisation in the
  discriminator: the gradient penalties need each sample's score to depend on
  that sample only (BatchNorm would mix them).
* **ResBlock** (Figure 4): conv3x3 -> [BN] -> LReLU -> conv3x3 -> [BN], plus the
  input, then LReLU; BN in the generator only. LReLU slope 0.2 everywhere.
* **MSFE** (section 3.2): VGG19 ``features`` outputs at torchvision indices
  ``taps`` of a real image of the requested class; the paper says "layers 7 to
  23"; we take three of them, (23, 16, 7) = conv4_3, conv3_4, conv2_2 (outputs
  at 1/8, 1/4 and 1/2 of the image), deepest to coarsest: tap ``taps[i]`` is
  aligned by a 1x1 conv to stage i's width, bilinearly resized to stage i's
  size and added to it. Stage 0 is the reshaped FC output (S/4), stage 1 the
  output of the first up-sampling conv (S/2), stage 2 of the second (S). The
  grey guide in [-1, 1] is mapped to [0, 1], repeated to RGB and normalised
  with the ImageNet mean/std, so torchvision ``vgg19`` weights apply unchanged.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from defects_jax.models.layers import Conv
from defects_jax.models.vgg import VGG

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_TAPS = (23, 16, 7)
lrelu = functools.partial(nn.leaky_relu, negative_slope=0.2)


class ResBlock(nn.Module):
  """Figure 4: x + conv(act(conv(x))) (BN after each conv when ``norm``), then
  LReLU. ``__call__(x, *, train)``: [B, H, W, C] -> [B, H, W, C]."""

  norm: bool = True

  @nn.compact
  def __call__(self, x, *, train: bool):
    c = x.shape[-1]
    bn = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)
    h = Conv(c, 3, padding=1, use_bias=not self.norm)(x)
    h = lrelu(bn()(h) if self.norm else h)
    h = Conv(c, 3, padding=1, use_bias=not self.norm)(h)
    h = bn()(h) if self.norm else h
    return lrelu(x + h)


class MSFE(nn.Module):
  """Multi-level semantic feature extractor: VGG19 ``features`` taps.

  ``__call__(images)``: float[B, H, W, 1] in [-1, 1] (H, W >= 32) -> tuple of
  float32 [B, h_i, w_i, c_i], one per tap, in the order of ``taps``. Its
  parameters live under ``vgg`` with torchvision's names (``features_0`` ...),
  only up to the deepest tap.
  """

  taps: Sequence[int] = DEFAULT_TAPS

  @nn.compact
  def __call__(self, images):
    x = (images.astype(jnp.float32) + 1.0) / 2.0
    x = jnp.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
    x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    out = VGG(cfg="vgg19", name="vgg").features(x, self.taps)
    return tuple(out[t] for t in self.taps)


class Generator(nn.Module):
  """Res-ACGAN generator (sizes in the module docstring).

  ``__call__(z, labels, guide=None, *, train, guide_features=None)``:
  z float[B, latent_dim], labels int[B], guide float[B, S, S, 1] real images of
  the same classes (used when ``msfe``; or pass ``guide_features`` =
  ``apply(..., guide, method=Generator.guide_features)`` computed beforehand)
  -> float32 images [B, S, S, 1] in [-1, 1]. BatchNorm: ``train`` uses batch
  statistics (and needs ``mutable=["batch_stats"]``).

  Attributes:
    num_classes: K.
    image_size: S (a multiple of 4, >= 32 with MSFE).
    widths: channels of stage 0/1 and stage 2.
    num_res_blocks: per stage (paper: 3); ``residual=False`` drops them (the
      plain ACGAN rows of Table 3).
    msfe: add MSFE guidance; taps: VGG19 indices per stage (coarse to fine).
    msfe_trainable: False stops gradients at the VGG19 features (frozen
      extractor); True trains it with the generator.
  """

  num_classes: int
  image_size: int = 64
  latent_dim: int = 128
  widths: Sequence[int] = (128, 64)
  num_res_blocks: int = 3
  residual: bool = True
  msfe: bool = True
  taps: Sequence[int] = DEFAULT_TAPS
  msfe_trainable: bool = False

  def setup(self):
    if self.image_size % 4:
      raise ValueError(f"image_size must be a multiple of 4, got {self.image_size}")
    if self.msfe and len(self.taps) != 3:
      raise ValueError(f"MSFE guides 3 generator stages; got taps {self.taps}")
    if len(self.widths) != 2:
      raise ValueError(f"widths must be (stage 0/1, stage 2) channels, got {self.widths}")
    w0, w1 = self.widths
    bn = functools.partial(nn.BatchNorm, momentum=0.9)
    self.label_embed = nn.Embed(self.num_classes, self.latent_dim)
    self.fc = nn.Dense((self.image_size // 4) ** 2 * w0)
    self.bn_0 = bn()
    self.up_convs = [Conv(w, 3, padding=1, use_bias=False, name=f"up_conv_{i}")
                     for i, w in enumerate((w0, w1), start=1)]
    self.up_bns = [bn(name=f"bn_{i}") for i in (1, 2)]
    self.res_blocks = [[ResBlock(norm=True, name=f"res_{i}_{j}")
                        for j in range(self.num_res_blocks if self.residual else 0)]
                       for i in (1, 2)]
    self.to_image = Conv(1, 3, padding=1)
    if self.msfe:
      self.extractor = MSFE(self.taps)
      self.align = [Conv(w, 1, name=f"align_{i}") for i, w in enumerate((w0, w0, w1))]

  def guide_features(self, guide):
    """The MSFE taps of ``guide`` (float[B, S, S, 1]), gradient-stopped unless
    ``msfe_trainable``."""
    feats = self.extractor(guide)
    return feats if self.msfe_trainable else jax.lax.stop_gradient(feats)

  def _add_guide(self, x, i, feats):
    if not self.msfe:
      return x
    g = self.align[i](feats[i].astype(x.dtype))
    if g.shape[1:3] != x.shape[1:3]:
      g = jax.image.resize(g, (g.shape[0],) + x.shape[1:3] + (g.shape[-1],), "bilinear")
    return x + g

  def __call__(self, z, labels, guide=None, *, train: bool, guide_features=None):
    if z.shape[-1] != self.latent_dim or labels.shape != z.shape[:1]:
      raise ValueError(f"expected z [B, {self.latent_dim}] and labels [B], got {z.shape} and "
                       f"{labels.shape}")
    if self.msfe and guide_features is None:
      if guide is None:
        raise ValueError("Generator(msfe=True) needs guide images of the requested classes "
                         "(or guide_features)")
      guide_features = self.guide_features(guide)
    s0, w0 = self.image_size // 4, self.widths[0]
    h = z.astype(jnp.float32) * self.label_embed(labels.astype(jnp.int32))
    h = self.fc(h).reshape(-1, s0, s0, w0)
    h = self._add_guide(self.bn_0(h, use_running_average=not train), 0, guide_features)
    for i in range(2):
      h = jax.image.resize(h, (h.shape[0], 2 * h.shape[1], 2 * h.shape[2], h.shape[3]),
                           "nearest")
      h = lrelu(self.up_bns[i](self.up_convs[i](h), use_running_average=not train))
      h = self._add_guide(h, i + 1, guide_features)
      for block in self.res_blocks[i]:
        h = block(h, train=train)
    return jnp.tanh(self.to_image(h)).astype(jnp.float32)


class Discriminator(nn.Module):
  """Res-ACGAN discriminator with a critic head and a class head.

  ``__call__(x, *, train)``: float[B, S, S, 1] -> (score float32[B],
  class logits float32[B, K]); dropout needs the ``dropout`` rng when
  ``train``. Every output depends on its own sample only.

  Attributes:
    num_classes: K.
    widths: the four stride-2 convs; ResBlocks follow the first.
    head_width: the two stride-1 convs before the heads.
    num_res_blocks: 3 (paper); ``residual=False`` drops them.
    dropout_rate: after each stride-2 conv (0.25, the reference ACGAN).
  """

  num_classes: int
  widths: Sequence[int] = (16, 32, 64, 128)
  head_width: int = 128
  num_res_blocks: int = 3
  residual: bool = True
  dropout_rate: float = 0.25

  @nn.compact
  def __call__(self, x, *, train: bool):
    if x.ndim != 4 or min(x.shape[1:3]) < 2 ** len(self.widths):
      raise ValueError(f"Discriminator needs [B, S, S, C] with S >= {2 ** len(self.widths)}, "
                       f"got {x.shape}")
    h = x.astype(jnp.float32)
    for i, width in enumerate(self.widths):
      h = lrelu(Conv(width, 3, strides=2, padding=1)(h))
      h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
      if i == 0 and self.residual:
        for _ in range(self.num_res_blocks):
          h = ResBlock(norm=False)(h, train=train)
    for _ in range(2):
      h = lrelu(Conv(self.head_width, 3, padding=1)(h))
    h = h.reshape(h.shape[0], -1)
    score = nn.Dense(1, name="critic_head")(h)[:, 0]
    logits = nn.Dense(self.num_classes, name="class_head")(h)
    return score.astype(jnp.float32), logits.astype(jnp.float32)
