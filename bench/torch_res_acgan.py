"""Plain PyTorch Res-ACGAN W-div train step: the same networks, objective and
update order as ``defects_jax.systems.res_acgan`` (full variant), for the
JAX-vs-PyTorch harness (``bench/train_step_bench.py --models res_acgan``).

Sizes follow ``defects_jax.models.res_acgan`` (its docstring lists them):
generator ``embed(c) * z`` -> FC -> (S/4, S/4, w0) -> BN (+ MSFE tap 23) ->
[nearest x2, conv, BN, LReLU (+ tap 16), 3 ResBlocks] -> [nearest x2, conv,
BN, LReLU (+ tap 7), 3 ResBlocks] -> conv -> tanh; MSFE = frozen VGG19
``features`` taps (23, 16, 7), each aligned by a 1x1 conv and bilinear resize;
discriminator four stride-2 convs (ResBlocks after the first, dropout 0.25),
two head convs, linear critic and class heads. One step = the VGG19 features of
the batch's real images (no grad), m critic updates (W critic loss + W-div
penalty k=2, p=6 at interpolates, ACGAN class loss), one generator update.
Not part of the package (torch is only a bench dependency).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

import torch_models  # bench/ sibling (torchvision-layout VGG)

TAPS = (23, 16, 7)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def lrelu(x):
  return F.leaky_relu(x, 0.2)


class ResBlock(nn.Module):

  def __init__(self, c, norm):
    super().__init__()
    self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
    self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
    self.b1 = nn.BatchNorm2d(c, momentum=0.1) if norm else nn.Identity()
    self.b2 = nn.BatchNorm2d(c, momentum=0.1) if norm else nn.Identity()

  def forward(self, x):
    return lrelu(x + self.b2(self.c2(lrelu(self.b1(self.c1(x))))))


class MSFE(nn.Module):

  def __init__(self):
    super().__init__()
    self.vgg = torch_models.build("vgg19", 1000, in_channels=3).features[:max(TAPS) + 1]
    self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
    self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

  def forward(self, x):
    x = ((x + 1) / 2).repeat(1, 3, 1, 1)
    x = (x - self.mean) / self.std
    out = {}
    for i, layer in enumerate(self.vgg):
      x = layer(x)
      if i in TAPS:
        out[i] = x
    return [out[t] for t in TAPS]


class Generator(nn.Module):

  def __init__(self, num_classes, size, latent=128, widths=(128, 64), blocks=3):
    super().__init__()
    w0, w1 = widths
    self.s0, self.w0 = size // 4, w0
    self.embed = nn.Embedding(num_classes, latent)
    self.fc = nn.Linear(latent, self.s0 * self.s0 * w0)
    self.bn0 = nn.BatchNorm2d(w0)
    self.convs = nn.ModuleList([nn.Conv2d(w0, w0, 3, padding=1, bias=False),
                                nn.Conv2d(w0, w1, 3, padding=1, bias=False)])
    self.bns = nn.ModuleList([nn.BatchNorm2d(w0), nn.BatchNorm2d(w1)])
    self.res = nn.ModuleList([nn.Sequential(*[ResBlock(w, True) for _ in range(blocks)])
                              for w in (w0, w1)])
    self.align = nn.ModuleList([nn.Conv2d(c, w, 1) for c, w in zip((512, 256, 128),
                                                                   (w0, w0, w1))])
    self.out = nn.Conv2d(w1, 1, 3, padding=1)

  def _guide(self, h, i, feats):
    g = self.align[i](feats[i])
    if g.shape[-2:] != h.shape[-2:]:
      g = F.interpolate(g, size=h.shape[-2:], mode="bilinear", align_corners=False)
    return h + g

  def forward(self, z, labels, feats):
    h = self.fc(z * self.embed(labels)).view(-1, self.w0, self.s0, self.s0)
    h = self._guide(self.bn0(h), 0, feats)
    for i in range(2):
      h = F.interpolate(h, scale_factor=2, mode="nearest")
      h = self._guide(lrelu(self.bns[i](self.convs[i](h))), i + 1, feats)
      h = self.res[i](h)
    return torch.tanh(self.out(h))


class Discriminator(nn.Module):

  def __init__(self, num_classes, size, widths=(16, 32, 64, 128), head=128, blocks=3):
    super().__init__()
    chans = (1,) + tuple(widths)
    self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, stride=2, padding=1)
                                for a, b in zip(chans[:-1], chans[1:])])
    self.res = nn.Sequential(*[ResBlock(widths[0], False) for _ in range(blocks)])
    self.heads = nn.ModuleList([nn.Conv2d(widths[-1], head, 3, padding=1),
                                nn.Conv2d(head, head, 3, padding=1)])
    flat = head * (size // 2 ** len(widths)) ** 2
    self.critic = nn.Linear(flat, 1)
    self.cls = nn.Linear(flat, num_classes)
    self.drop = nn.Dropout(0.25)

  def forward(self, x):
    for i, conv in enumerate(self.convs):
      x = self.drop(lrelu(conv(x)))
      if i == 0:
        x = self.res(x)
    for conv in self.heads:
      x = lrelu(conv(x))
    x = torch.flatten(x, 1)
    return self.critic(x)[:, 0], self.cls(x)


class Step:
  """``step(images NCHW, labels)``: one Res-ACGAN iteration; returns the losses."""

  def __init__(self, size, num_classes=6, batch=16, m=5, latent=128, device="cpu"):
    self.g = Generator(num_classes, size, latent).to(device).train()
    self.d = Discriminator(num_classes, size).to(device).train()
    self.msfe = MSFE().to(device).eval().requires_grad_(False)
    self.opt_g = torch.optim.Adam(self.g.parameters(), 2e-4, betas=(0.5, 0.999))
    self.opt_d = torch.optim.Adam(self.d.parameters(), 2e-4, betas=(0.5, 0.999))
    self.batch, self.m, self.latent, self.device = batch, m, latent, device

  def _noise(self, n):
    return torch.rand(n, self.latent, device=self.device) * 2 - 1

  def __call__(self, images, labels):
    b = self.batch
    with torch.no_grad():
      feats = self.msfe(images)
    for k in range(self.m):
      sl = slice(k * b, (k + 1) * b)
      real, y, f = images[sl], labels[sl], [t[sl] for t in feats]
      with torch.no_grad():
        fake = self.g(self._noise(b), y, f)
      self.opt_d.zero_grad(set_to_none=True)
      rs, rl = self.d(real)
      fs, fl = self.d(fake)
      e = torch.rand(b, 1, 1, 1, device=self.device)
      u = (real + e * (fake - real)).requires_grad_(True)
      (gu,) = torch.autograd.grad(self.d(u)[0].sum(), u, create_graph=True)
      penalty = 2.0 * (gu.pow(2).flatten(1).sum(1) ** 3).mean()  # k=2, ||g||^6
      d_loss = fs.mean() - rs.mean() + penalty + F.cross_entropy(rl, y) + F.cross_entropy(fl, y)
      d_loss.backward()
      self.opt_d.step()
    self.opt_g.zero_grad(set_to_none=True)
    y, f = labels[:b], [t[:b] for t in feats]
    fake = self.g(self._noise(b), y, f)
    s, logits = self.d(fake)
    g_loss = -s.mean() + F.cross_entropy(logits, y)
    g_loss.backward()
    self.opt_g.step()
    return d_loss.detach(), g_loss.detach()
