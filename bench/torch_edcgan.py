"""Plain PyTorch EDCGAN train step: the same networks, objective and update
order as ``defects_jax.systems.edcgan`` (one class's GAN), for the
JAX-vs-PyTorch harness (``bench/train_step_bench.py --models edcgan,edcgan6``).

Generator: z -> Linear -> (4, 4, w0) -> BN -> ReLU -> [ConvTranspose 3x3
stride 2 ("SAME": padding 1, output_padding 1), BN, ReLU] ... ->
ConvTranspose to 1 channel -> tanh. Discriminator: stride-2 3x3 convs
("SAME"), SELU, no BN, alpha-dropout on the flattened 4x4 features, Linear
logit. Adam (lr 1e-4, betas 0.8, 0.99); one step = one discriminator update
(non-saturating BCE on real and generated images) then one generator update.
``Six`` steps six such GANs one after the other, as a PyTorch user trains one
model per class. Not part of the package (torch is only a bench dependency).
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def stages(size):
  return int(round(math.log2(size / 4)))


class Generator(nn.Module):

  def __init__(self, size, widths, latent=100, channels=1):
    super().__init__()
    n = stages(size)
    w = list(widths[:n])
    self.w0 = w[0]
    self.project = nn.Linear(latent, 16 * w[0])
    self.bn0 = nn.BatchNorm2d(w[0], momentum=0.1)
    layers = []
    for a, b in zip(w[:-1], w[1:]):
      layers += [nn.ConvTranspose2d(a, b, 3, 2, padding=1, output_padding=1, bias=False),
                 nn.BatchNorm2d(b, momentum=0.1), nn.ReLU()]
    layers += [nn.ConvTranspose2d(w[-1], channels, 3, 2, padding=1, output_padding=1)]
    self.body = nn.Sequential(*layers)

  def forward(self, z):
    h = F.relu(self.bn0(self.project(z).view(-1, self.w0, 4, 4)))
    return torch.tanh(self.body(h))


class Discriminator(nn.Module):

  def __init__(self, size, widths, channels=1, rate=0.5):
    super().__init__()
    n = stages(size)
    w = list(widths[len(widths) - n:])
    layers, c = [], channels
    for b in w:
      layers += [nn.Conv2d(c, b, 3, 2, padding=1), nn.SELU()]
      c = b
    self.body = nn.Sequential(*layers, nn.Flatten(), nn.AlphaDropout(rate))
    self.logit = nn.Linear(16 * c, 1)

  def forward(self, x):
    return self.logit(self.body(x))[:, 0]


class Step:
  """``step(images NCHW)``: one EDCGAN update (D then G); returns the losses."""

  def __init__(self, size, gen_widths, disc_widths, latent=100, device="cpu"):
    self.g = Generator(size, gen_widths, latent).to(device).train()
    self.d = Discriminator(size, disc_widths).to(device).train()
    self.opt_g = torch.optim.Adam(self.g.parameters(), 1e-4, betas=(0.8, 0.99))
    self.opt_d = torch.optim.Adam(self.d.parameters(), 1e-4, betas=(0.8, 0.99))
    self.latent, self.device = latent, device

  def __call__(self, real):
    b = real.shape[0]
    with torch.no_grad():
      fake = self.g(torch.randn(b, self.latent, device=self.device))
    self.opt_d.zero_grad(set_to_none=True)
    rl, fl = self.d(real), self.d(fake)
    d_loss = (F.binary_cross_entropy_with_logits(rl, torch.ones_like(rl))
              + F.binary_cross_entropy_with_logits(fl, torch.zeros_like(fl)))
    d_loss.backward()
    self.opt_d.step()
    self.opt_g.zero_grad(set_to_none=True)
    logits = self.d(self.g(torch.randn(b, self.latent, device=self.device)))
    g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    g_loss.backward()
    self.opt_g.step()
    return d_loss.detach(), g_loss.detach()


class Six:
  """K class GANs stepped in a Python loop; ``step(images [K, B, C, H, W])``."""

  def __init__(self, k, *args, **kwargs):
    self.steps = [Step(*args, **kwargs) for _ in range(k)]

  def __call__(self, images):
    out = [s(x) for s, x in zip(self.steps, images)]
    return out[-1]
