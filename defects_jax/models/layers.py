"""Shared building blocks (flax.linen, NHWC). Every model uses these, so one
change (e.g. a faster CPU convolution) reaches all of them."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConvBN(nn.Module):
  """Conv -> BatchNorm -> activation.

  Attributes:
    features: output channels.
    kernel_size: square kernel size.
    strides: square stride.
    activation: applied after BN (None for identity).
    padding: flax padding ("SAME", "VALID", or explicit).
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  activation: Callable[[jax.Array], jax.Array] | None = nn.relu
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nn.Conv(self.features, (self.kernel_size, self.kernel_size),
                strides=(self.strides, self.strides), padding=self.padding, use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return self.activation(x) if self.activation is not None else x


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))
