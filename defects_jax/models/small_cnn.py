"""A small CNN classifier for CPU runs (the quickstart and smoke presets)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from defects_jax.models.layers import ConvBN
from defects_jax.models.layers import global_avg_pool


class SmallCNN(nn.Module):
  """Stages of two 3x3 ConvBN blocks (the second with stride 2), global average
  pooling, dropout and a linear head.

  Input float[B, H, W, C] (NHWC, any H, W >= 2**len(widths)); output float32
  logits [B, num_classes] and, with ``return_features``, the pooled features.

  Attributes:
    num_classes: K.
    widths: channels per stage (default 16, 32, 64: about 70k parameters).
    dropout_rate: before the head.
  """

  num_classes: int
  widths: Sequence[int] = (16, 32, 64)
  dropout_rate: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, return_features: bool = False):
    for width in self.widths:
      x = ConvBN(width)(x, train=train)
      x = ConvBN(width, strides=2)(x, train=train)
    features = global_avg_pool(x)
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes)(h)
    return (logits, features) if return_features else logits
