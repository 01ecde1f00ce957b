"""Plain PyTorch LNet/DNet weak detector and its stage-1 / stage-2 updates, the
same networks and updates as ``defects_jax.models.weak_detector`` and
``defects_jax.systems.weak_detection`` (paper sizes: LNet 15x15x512, DNet hidden 266),
for the JAX-vs-PyTorch harness (``bench/train_step_bench.py --models
weak_stage1,weak_stage2``).

* Stage 1: shared layers + LNet on the weak loss (alpha * -log(1 - Q) for the
  negative, Q log Q + (1 - Q) log(1 - Q) for the positive; Q = mean heat map,
  straight-through clamp), SGD lr 0.1, one (positive, negative) pair per update.
* Stage 2: DNet on BCE with shared + LNet frozen (inference-mode BatchNorm, no
  gradient), SGD lr 0.01.
Not part of the package (torch is only a bench dependency).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, reflect=True):
  return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False,
                                 padding_mode="reflect" if reflect else "zeros"),
                       nn.BatchNorm2d(cout, momentum=0.1), nn.ReLU())


class WeakDetector(nn.Module):

  def __init__(self, lnet_wide=512, lnet_kernel=15, dnet_hidden=266):
    super().__init__()
    layers, cin = [], 1
    for width, pool in [(32, False), (32, True), (64, False), (64, True), (128, False),
                        (128, True), (128, False)]:
      layers.append(conv_bn(cin, width, 3))
      if pool:
        layers.append(nn.MaxPool2d(2))
      cin = width
    self.shared = nn.Sequential(*layers)
    self.lnet = nn.Sequential(conv_bn(128, 64, 5), conv_bn(64, 64, 5),
                              conv_bn(64, lnet_wide, lnet_kernel), nn.Conv2d(lnet_wide, 1, 1))
    self.dnet = nn.Sequential(conv_bn(128, 64, 3, False), nn.MaxPool2d(2),
                              conv_bn(64, 64, 3, False), nn.MaxPool2d(2),
                              conv_bn(64, 128, 3, False), nn.MaxPool2d(2),
                              conv_bn(128, 256, 3, False))
    self.fc0 = nn.Linear(257, dnet_hidden)
    self.fc1 = nn.Linear(dnet_hidden, 1)

  def heatmap(self, x):
    f = self.shared(x)
    return f, torch.sigmoid(self.lnet(f)[:, 0])

  def decide(self, f, heat):
    x = self.dnet(f * heat[:, None] + f)
    v = torch.cat([x.mean(dim=(2, 3)), heat.mean(dim=(1, 2))[:, None]], dim=1)
    return self.fc1(F.relu(self.fc0(v)))[:, 0]


def weak_loss(heat, y, alpha, eps=1e-6):
  q = heat.flatten(1).mean(1)
  q = q + (q.clamp(eps, 1 - eps) - q).detach()
  positive = q * torch.log(q) + (1 - q) * torch.log1p(-q)
  return (alpha * -torch.log1p(-q) * (1 - y) + positive * y).mean()


class Stage1:
  """``step(images NCHW [2, 1, H, W], labels [2])``: one stage-1 update."""

  def __init__(self, model: WeakDetector, alpha: float = 8.0):
    self.model, self.alpha = model, alpha
    self.opt = torch.optim.SGD(list(model.shared.parameters()) + list(model.lnet.parameters()),
                               lr=0.1)

  def __call__(self, x, y):
    self.model.train()
    self.opt.zero_grad(set_to_none=True)
    _, heat = self.model.heatmap(x)
    loss = weak_loss(heat, y, self.alpha)
    loss.backward()
    self.opt.step()
    return loss.detach()


class Stage2:
  """``step(images, labels)``: one stage-2 update of DNet (backbone frozen)."""

  def __init__(self, model: WeakDetector):
    self.model = model
    self.opt = torch.optim.SGD(list(model.dnet.parameters()) + list(model.fc0.parameters())
                               + list(model.fc1.parameters()), lr=0.01)

  def __call__(self, x, y):
    self.model.shared.eval()
    self.model.lnet.eval()
    self.model.dnet.train()
    self.opt.zero_grad(set_to_none=True)
    with torch.no_grad():
      f, heat = self.model.heatmap(x)
    loss = F.binary_cross_entropy_with_logits(self.model.decide(f, heat), y)
    loss.backward()
    self.opt.step()
    return loss.detach()
