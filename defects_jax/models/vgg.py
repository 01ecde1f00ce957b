"""VGG-16/19 (Simonyan & Zisserman 2015; configurations D and E, no BatchNorm),
torchvision's layout, flax.linen, NHWC, with feature taps by torchvision index.

``torchvision.models.vgg19().features`` is a Sequential of convs, ReLUs and
max-pools; res-acgan's multi-level semantic guidance reads the outputs of its
layers 7..23. Here ``features(x, taps=(7, 16, 23))`` returns exactly those:
the output of ``features[i]`` for each index i (running only as far as the
deepest tap). Module names mirror torchvision's keys (``features.0.weight`` ->
``features_0/kernel``, ``classifier.6.weight`` -> ``classifier_6/kernel``);
parameter counts with 1000 classes: vgg16 138,357,544, vgg19 143,667,240.

The head is torchvision's: adaptive average pooling to 7x7 (so any input of at
least 32x32 works; small maps are replicated into the 7x7 bins as torch does),
then 4096-4096-K fully connected layers with ReLU and dropout 0.5. Flattening
is NHWC (h, w, c); the converter permutes torchvision's (c, h, w) order.

Used by: edcgan Table 3 (VGG16), res-acgan (VGG19 semantic extractor), the
``baselines_neu`` experiment.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from defects_jax.models.layers import Conv

CFGS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}


def layer_kinds(cfg: Sequence) -> list[str]:
  """torchvision's ``features`` as kinds by index: "conv", "relu" or "pool"."""
  kinds = []
  for v in cfg:
    kinds += ["pool"] if v == "M" else ["conv", "relu"]
  return kinds


@functools.lru_cache(maxsize=64)
def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] averaging matrix of torch's adaptive_avg_pool (bins
  [floor(i n_in / n_out), ceil((i + 1) n_in / n_out)))."""
  m = np.zeros((n_out, n_in), np.float32)
  for i in range(n_out):
    lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def adaptive_avg_pool(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
  """torch's ``adaptive_avg_pool2d`` for NHWC x: [B, H, W, C] -> [B, h, w, C]."""
  mh = jnp.asarray(_adaptive_matrix(x.shape[1], out_hw[0]), x.dtype)
  mw = jnp.asarray(_adaptive_matrix(x.shape[2], out_hw[1]), x.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", mh, x, mw)


class VGG(nn.Module):
  """VGG classifier with feature taps.

  ``__call__(x, *, train)``: x float[B, H, W, C] (C = 1 or 3, H, W >= 32) ->
  float32 logits [B, num_classes]; dropout needs the ``dropout`` rng when
  ``train``. ``features(x, taps)`` -> {index: output of torchvision's
  ``features[index]``} (NHWC), computing only up to ``max(taps)``.

  Attributes:
    num_classes: K.
    cfg: "vgg16" or "vgg19" (or a torchvision-style list of widths and "M").
    dropout_rate: in the classifier (0.5).
  """

  num_classes: int = 1000
  cfg: str | Sequence = "vgg16"
  dropout_rate: float = 0.5

  def setup(self):
    cfg = CFGS[self.cfg] if isinstance(self.cfg, str) else tuple(self.cfg)
    self.kinds = layer_kinds(cfg)
    widths = [v for v in cfg if v != "M"]
    conv_idx = [i for i, k in enumerate(self.kinds) if k == "conv"]
    kaiming = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    self.convs = {i: Conv(w, 3, 1, padding=1, kernel_init=kaiming, name=f"features_{i}")
                  for i, w in zip(conv_idx, widths)}
    dense = functools.partial(nn.Dense, kernel_init=nn.initializers.normal(0.01))
    self.classifier_0 = dense(4096)
    self.classifier_3 = dense(4096)
    self.classifier_6 = dense(self.num_classes)
    self.dropout = nn.Dropout(self.dropout_rate)

  def _run(self, x, last: int, taps=()):
    if min(x.shape[1:3]) < 32:
      raise ValueError(f"VGG needs inputs of at least 32x32, got {x.shape}")
    out = {}
    for i, kind in enumerate(self.kinds[:last + 1]):
      if kind == "conv":
        x = self.convs[i](x)
      elif kind == "relu":
        x = nn.relu(x)
      else:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      if i in taps:
        out[i] = x
    return x, out

  def features(self, x, taps: Sequence[int]) -> dict[int, jax.Array]:
    """{i: output of torchvision ``features[i]``} for i in ``taps``."""
    taps = tuple(int(t) for t in taps)
    bad = [t for t in taps if not 0 <= t < len(self.kinds)]
    if not taps or bad:
      raise ValueError(f"taps must be indices in 0..{len(self.kinds) - 1} of torchvision's "
                       f"features, got {taps}")
    return self._run(x, max(taps), taps)[1]

  def __call__(self, x, *, train: bool):
    x, _ = self._run(x, len(self.kinds) - 1)
    x = adaptive_avg_pool(x, (7, 7)).reshape(x.shape[0], -1).astype(jnp.float32)
    x = self.dropout(nn.relu(self.classifier_0(x)), deterministic=not train)
    x = self.dropout(nn.relu(self.classifier_3(x)), deterministic=not train)
    return self.classifier_6(x)


VGG16 = functools.partial(VGG, cfg="vgg16")
VGG19 = functools.partial(VGG, cfg="vgg19")
