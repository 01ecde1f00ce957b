"""ResNet-18/34/50/101 (He et al. 2016), torchvision's layout, flax.linen, NHWC.

Matches ``torchvision.models.resnet*`` (v1.5: the stride of a bottleneck block
sits on its 3x3 conv) layer for layer, with module names that mirror the
torchvision state-dict keys (``layer1.0.conv1.weight`` -> ``layer1_0/conv1/
kernel``), so :mod:`defects_jax.models.convert` maps weights mechanically and
parameter counts equal torchvision's (resnet34, 1000 classes: 21,797,672).

Used by: res-acgan Table 2 (ResNet18/50 baselines), rkd-sarsn (ResNet34
student), dg2gan (ResNet34/50 classifiers), the ``baselines_neu`` experiment.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from defects_jax.models.layers import Conv

# torchvision's initialisers: kaiming normal (fan_out, relu) for convs.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def batch_norm(train: bool, name: str) -> nn.BatchNorm:
  """torch's BatchNorm2d defaults: momentum 0.1 (flax 0.9), eps 1e-5."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def conv(features: int, kernel: int, strides: int = 1, *, name: str, groups: int = 1) -> Conv:
  """torchvision's bias-free conv with padding kernel // 2 and kaiming init."""
  return Conv(features, kernel, strides, padding=kernel // 2, feature_group_count=groups,
              use_bias=False, kernel_init=conv_init, name=name)


def shortcut(x, features: int, strides: int, *, train: bool, enabled: bool):
  """The identity, or torchvision's ``downsample`` (1x1 conv + BN) when enabled."""
  if not enabled:
    return x
  return batch_norm(train, "downsample_1")(conv(features, 1, strides, name="downsample_0")(x))


class BasicBlock(nn.Module):
  """Two 3x3 convs; expansion 1."""

  planes: int
  strides: int = 1
  downsample: bool = False
  expansion = 1

  @nn.compact
  def __call__(self, x, *, train: bool):
    out = conv(self.planes, 3, self.strides, name="conv1")(x)
    out = nn.relu(batch_norm(train, "bn1")(out))
    out = conv(self.planes, 3, 1, name="conv2")(out)
    out = batch_norm(train, "bn2")(out)
    return nn.relu(out + shortcut(x, self.planes, self.strides, train=train,
                                  enabled=self.downsample))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride here, torchvision v1.5) -> 1x1 x4; expansion 4."""

  planes: int
  strides: int = 1
  downsample: bool = False
  expansion = 4

  @nn.compact
  def __call__(self, x, *, train: bool):
    out = conv(self.planes, 1, 1, name="conv1")(x)
    out = nn.relu(batch_norm(train, "bn1")(out))
    out = conv(self.planes, 3, self.strides, name="conv2")(out)
    out = nn.relu(batch_norm(train, "bn2")(out))
    out = conv(self.planes * 4, 1, 1, name="conv3")(out)
    out = batch_norm(train, "bn3")(out)
    return nn.relu(out + shortcut(x, self.planes * 4, self.strides, train=train,
                                  enabled=self.downsample))


class ResNet(nn.Module):
  """ResNet classifier.

  ``__call__(x, *, train, return_features=False)``: x float[B, H, W, C] (C = 1
  or 3, H, W >= 32) -> float32 logits [B, num_classes] (and the pooled
  features [B, 512 * expansion] with ``return_features``).

  Attributes:
    num_classes: K.
    stage_sizes: blocks per stage.
    block: BasicBlock or Bottleneck.
    width: channels of the first stage (64).
  """

  num_classes: int = 1000
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: Any = BasicBlock
  width: int = 64

  @nn.compact
  def __call__(self, x, *, train: bool, return_features: bool = False):
    if min(x.shape[1:3]) < 32:
      raise ValueError(f"ResNet needs inputs of at least 32x32, got {x.shape}")
    x = conv(self.width, 7, 2, name="conv1")(x)
    x = nn.relu(batch_norm(train, "bn1")(x))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    in_planes = self.width
    for i, n in enumerate(self.stage_sizes):
      planes = self.width * 2 ** i
      for j in range(n):
        strides = 2 if (i > 0 and j == 0) else 1
        downsample = j == 0 and (strides != 1 or in_planes != planes * self.block.expansion)
        x = self.block(planes, strides, downsample, name=f"layer{i + 1}_{j}")(x, train=train)
        in_planes = planes * self.block.expansion
    features = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    logits = nn.Dense(self.num_classes, name="fc")(features)
    return (logits, features) if return_features else logits


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
