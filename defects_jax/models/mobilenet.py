"""MobileNetV2 (Sandler et al. 2018), torchvision's layout, flax.linen, NHWC.

Inverted residual blocks (1x1 expansion, 3x3 depthwise, linear 1x1
projection), ReLU6, width multiplier with channels rounded to multiples of 8,
dropout 0.2 before the classifier. Module names mirror torchvision's keys
(``features.2.conv.1.0.weight`` -> ``features_2/conv_1_0/kernel``); parameter
count with 1000 classes: 3,504,872, as ``torchvision.models.mobilenet_v2()``.

Used by: edcgan Table 3 (MobileNetV2 on real/generated NEU-CLS mixes) and the
``baselines_neu`` experiment.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from defects_jax.models.resnet import batch_norm
from defects_jax.models.resnet import conv

# (expansion t, channels c, repeats n, stride s) of the paper's Table 2.
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
  """torchvision's ``_make_divisible``: nearest multiple, never 10% below v."""
  min_value = min_value or divisor
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


class InvertedResidual(nn.Module):
  """[1x1 expand, BN, ReLU6] -> 3x3 depthwise, BN, ReLU6 -> 1x1 project, BN."""

  in_channels: int
  out_channels: int
  strides: int
  expand_ratio: int

  @nn.compact
  def __call__(self, x, *, train: bool):
    hidden = int(round(self.in_channels * self.expand_ratio))
    h, i = x, 0
    if self.expand_ratio != 1:
      h = conv(hidden, 1, 1, name="conv_0_0")(h)
      h = jax.nn.relu6(batch_norm(train, "conv_0_1")(h))
      i = 1
    h = conv(hidden, 3, self.strides, groups=hidden, name=f"conv_{i}_0")(h)
    h = jax.nn.relu6(batch_norm(train, f"conv_{i}_1")(h))
    h = conv(self.out_channels, 1, 1, name=f"conv_{i + 1}")(h)
    h = batch_norm(train, f"conv_{i + 2}")(h)
    if self.strides == 1 and self.in_channels == self.out_channels:
      return x + h
    return h


class MobileNetV2(nn.Module):
  """MobileNetV2 classifier.

  ``__call__(x, *, train, return_features=False)``: x float[B, H, W, C] (C = 1
  or 3, H, W >= 32) -> float32 logits [B, num_classes] (and the pooled
  features [B, last_channel] with ``return_features``). Dropout needs the
  ``dropout`` rng when ``train``.

  Attributes:
    num_classes: K.
    width_mult: width multiplier (channels rounded to multiples of 8).
    dropout_rate: before the classifier (0.2).
  """

  num_classes: int = 1000
  width_mult: float = 1.0
  dropout_rate: float = 0.2
  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    if min(x.shape[1:3]) < 32:
      raise ValueError(f"MobileNetV2 needs inputs of at least 32x32, got {x.shape}")
    in_ch = make_divisible(32 * self.width_mult)
    last = make_divisible(1280 * max(1.0, self.width_mult))
    x = conv(in_ch, 3, 2, name="features_0_0")(x)
    x = jax.nn.relu6(batch_norm(train, "features_0_1")(x))
    idx = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
      out_ch = make_divisible(c * self.width_mult)
      for j in range(n):
        x = InvertedResidual(in_ch, out_ch, s if j == 0 else 1, t,
                             name=f"features_{idx}")(x, train=train)
        in_ch, idx = out_ch, idx + 1
    x = conv(last, 1, 1, name=f"features_{idx}_0")(x)
    x = jax.nn.relu6(batch_norm(train, f"features_{idx}_1")(x))
    features = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, name="classifier_1",
                      kernel_init=nn.initializers.normal(0.01))(h)
    return (logits, features) if return_features else logits
