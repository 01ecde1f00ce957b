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
    padding: flax padding ("SAME", "VALID", or explicit), or "REFLECT" for
      same-size output with mirrored borders (odd kernels; each spatial side
      must exceed kernel_size // 2).
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  activation: Callable[[jax.Array], jax.Array] | None = nn.relu
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    padding = self.padding
    if padding == "REFLECT":
      x = reflect_pad(x, self.kernel_size // 2)
      padding = "VALID"
    x = nn.Conv(self.features, (self.kernel_size, self.kernel_size),
                strides=(self.strides, self.strides), padding=padding, use_bias=False)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return self.activation(x) if self.activation is not None else x


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Mirror-pads the two spatial axes of NHWC ``x`` by ``pad`` (numpy "reflect")."""
  if pad == 0:
    return x
  if min(x.shape[1], x.shape[2]) <= pad:
    raise ValueError(f"reflect padding {pad} needs spatial size > {pad}, got {x.shape[1:3]}")
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 (floor of odd sizes, as torch's default)."""
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))
