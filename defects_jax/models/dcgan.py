"""The DCGAN family (Radford et al. 2016), flax.linen, NHWC: one generator and
one discriminator whose sizes, normalisation, activation and dropout are
attributes, so EDCGAN (edcgan-mobilenetv2), plain DCGAN and the
noise-to-image GANs of DG2GAN's baselines are configurations of the same two
modules.

Generator: z [B, latent] -> dense -> [4, 4, widths[0]] -> (BN, activation) ->
stride-2 3x3 transposed convs widths[1], widths[2], ... each followed by BN
and the activation -> a last stride-2 transposed conv to ``channels`` -> tanh.
An output of size S = 4 * 2^n takes n transposed convs; the widths used are
the first n (the low-resolution end), so a smaller output drops the
high-resolution stages: with the EDCGAN widths (1024, 512, 256, 128, 64, 32),
S = 256 uses all six (edcgan Table 1, D1-D6) and S = 64 is Radford's 64x64
generator (1024 -> 512 -> 256 -> 128 -> C).

Discriminator: x [B, S, S, C] -> stride-2 3x3 convs, each followed by the
norm ("none" or "bn"; never on the first conv, as in DCGAN) and the
activation, down to 4x4 -> flatten -> optional (alpha-)dropout -> dense -> one
logit. An input of size S takes n = log2(S / 4) convs with the *last* n
widths (again the low-resolution end): with (32, 64, 128, 256, 512, 1024),
S = 256 uses all six.

Used by :mod:`defects_jax.systems.edcgan`; the EDCGAN reading of the paper's
Table 1 is in :data:`EDCGAN_GENERATOR_WIDTHS` / :data:`EDCGAN_DISCRIMINATOR_WIDTHS`.
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from defects_jax.models.layers import AlphaDropout
from defects_jax.models.layers import Conv
from defects_jax.models.layers import ConvTranspose

# edcgan section 4.2 / Table 1: dense to 4x4x1024, then D1-D5 8x8x512 ... 128x128x32, D6
# to 256x256xC with tanh.
EDCGAN_GENERATOR_WIDTHS = (1024, 512, 256, 128, 64, 32)
# Table 1's discriminator column lists each conv's *input*: C1 256x256x3, C2 128x128x32 ...
# C6 8x8x512, so C1-C5 output 32, 64, 128, 256, 512 channels. C6's output width is not
# given: ours 1024 (at 4x4, mirroring the generator's 4x4x1024), then a dense logit.
EDCGAN_DISCRIMINATOR_WIDTHS = (32, 64, 128, 256, 512, 1024)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "elu": nn.elu,
    "selu": nn.selu,
    "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
}
NORMS = ("none", "bn")
DROPOUTS = ("none", "alpha", "standard")
DCGAN_INIT = nn.initializers.normal(0.02)  # Radford et al.'s N(0, 0.02)


def num_stages(size: int) -> int:
  """n with size = 4 * 2^n (size a power of two >= 8).

  Raises:
    ValueError: size is not 4 * 2^n with n >= 1.
  """
  n = int(round(math.log2(size / 4))) if size >= 8 else 0
  if n < 1 or 4 * 2 ** n != size:
    raise ValueError(f"DCGAN image size must be 4 * 2^n (8, 16, 32, 64, 128, 256 ...), "
                     f"got {size}")
  return n


def _init_for(activation: str):
  """SELU networks need LeCun-normal weights for self-normalisation; the
  others use DCGAN's N(0, 0.02)."""
  return nn.initializers.lecun_normal() if activation == "selu" else DCGAN_INIT


def _check(name: str, value: str, allowed) -> None:
  if value not in allowed:
    raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


class DCGANGenerator(nn.Module):
  """Noise-to-image generator.

  ``__call__(z, *, train)``: z float[B, latent_dim] -> float32[B, S, S,
  channels] in (-1, 1). BatchNorm statistics in ``batch_stats``.

  Attributes:
    image_size: S = 4 * 2^n (n transposed convs).
    channels: output channels (1 for NEU-CLS).
    widths: channels of the 4x4 map and of each transposed conv's output but
      the last; at least n used (the first n).
    activation: a key of :data:`ACTIVATIONS` after every BN ("relu" is
      DCGAN's; edcgan Table 1's "EReLU" is read as "selu", see
      :mod:`defects_jax.systems.edcgan`).
    use_bn: BatchNorm after the dense layer and every hidden transposed conv.
    kernel_size: of the transposed convs (3 in edcgan Table 1; DCGAN used 5).
  """

  image_size: int = 64
  channels: int = 1
  widths: tuple[int, ...] = EDCGAN_GENERATOR_WIDTHS
  activation: str = "relu"
  use_bn: bool = True
  kernel_size: int = 3

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool) -> jax.Array:
    _check("activation", self.activation, ACTIVATIONS)
    n = num_stages(self.image_size)
    if len(self.widths) < n:
      raise ValueError(f"a {self.image_size}x{self.image_size} generator needs {n} widths, "
                       f"got {self.widths}")
    act, init = ACTIVATIONS[self.activation], _init_for(self.activation)

    def norm_act(h, name):
      if self.use_bn:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)(h)
      return act(h)

    h = nn.Dense(4 * 4 * self.widths[0], kernel_init=init, name="project")(z)
    h = norm_act(h.reshape(z.shape[0], 4, 4, self.widths[0]), "project_bn")
    for i in range(1, n):
      h = ConvTranspose(self.widths[i], self.kernel_size, 2, kernel_init=init,
                        use_bias=not self.use_bn, name=f"deconv_{i}")(h)
      h = norm_act(h, f"bn_{i}")
    h = ConvTranspose(self.channels, self.kernel_size, 2, kernel_init=init, name=f"deconv_{n}")(h)
    return jnp.tanh(h.astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
  """Image-to-logit discriminator.

  ``__call__(x, *, train)``: x float[B, S, S, C] -> float32[B] logits (real
  vs generated). Dropout (when ``dropout != "none"`` and ``train``) needs the
  ``dropout`` rng; BatchNorm statistics (``norm="bn"``) in ``batch_stats``.

  Attributes:
    widths: output channels of the stride-2 convs; the last n used for an
      input of 4 * 2^n.
    norm: "none" or "bn" (never on the first conv).
    activation: a key of :data:`ACTIVATIONS`.
    dropout: "none", "alpha" (:class:`~defects_jax.models.layers.AlphaDropout`,
      for SELU) or "standard", on the flattened 4x4 features before the logit
      (edcgan section 3.2: dropout "in the fully connected network layer").
    dropout_rate: its drop probability.
    kernel_size: of the convs (3 in edcgan Table 1).
  """

  widths: tuple[int, ...] = EDCGAN_DISCRIMINATOR_WIDTHS
  norm: str = "none"
  activation: str = "selu"
  dropout: str = "alpha"
  dropout_rate: float = 0.5
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    _check("activation", self.activation, ACTIVATIONS)
    _check("norm", self.norm, NORMS)
    _check("dropout", self.dropout, DROPOUTS)
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
      raise ValueError(f"the discriminator expects square images [B, S, S, C], got {x.shape}")
    n = num_stages(x.shape[1])
    if len(self.widths) < n:
      raise ValueError(f"a {x.shape[1]}x{x.shape[1]} input needs {n} discriminator widths, "
                       f"got {self.widths}")
    act, init = ACTIVATIONS[self.activation], _init_for(self.activation)
    h = x
    for i, width in enumerate(self.widths[len(self.widths) - n:]):
      h = Conv(width, self.kernel_size, strides=2, kernel_init=init,
               use_bias=not (self.norm == "bn" and i > 0), name=f"conv_{i + 1}")(h)
      if self.norm == "bn" and i > 0:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn_{i + 1}")(h)
      h = act(h)
    h = h.reshape(h.shape[0], -1)
    if self.dropout == "alpha":
      h = AlphaDropout(self.dropout_rate)(h, deterministic=not train)
    elif self.dropout == "standard":
      h = nn.Dropout(self.dropout_rate)(h, deterministic=not train)
    return nn.Dense(1, kernel_init=init, name="logit")(h)[:, 0].astype(jnp.float32)
