"""InceptionV3 for FID in Flax (the TF "2015-12-05" network of pytorch-fid), and
FID / domain-FID helpers.

The architecture is torchvision's ``Inception3`` with pytorch-fid's patches:
the pooling branches of the A, C and first E blocks average without counting
padded zeros (as TensorFlow does), and the last E block max-pools. Submodules
carry the torchvision names (``Conv2d_1a_3x3``, ``Mixed_5b/branch1x1`` ...),
each a ``conv`` (no bias) + ``bn`` (eps 1e-3) pair, so the pytorch-fid weight
file maps onto the Flax variables key by key.

Weights: this project cannot download them. To use the standard FID network,
obtain ``pt_inception-2015-12-05-6726825d.pth`` (the pytorch-fid release
asset) yourself and load it with :func:`load_fid_inception` (needs torch, the
``bench`` extra) or convert it once to .npz with
``python -m defects_jax.metrics.inception convert pt_inception.pth out.npz``
(torch needed only for that step). Without weights the network is randomly
initialised: its features are only good for shape checks, not for FID
values comparable to the literature. For datasets far from ImageNet,
:func:`domain_fid` uses the features of a classifier trained here instead.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from defects_jax.metrics.generation import feature_statistics
from defects_jax.metrics.generation import frechet_distance

BLOCK_DIMS = {0: 64, 1: 192, 2: 768, 3: 2048}


class BasicConv(nn.Module):
  """torchvision ``BasicConv2d``: conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU."""

  features: int
  kernel: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, strides=(self.strides, self.strides),
                padding=((self.padding[0], self.padding[0]), (self.padding[1], self.padding[1])),
                use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_tf(x):
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool(x, stride, pad=0):
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, name="branch1x1")(x)
    b5 = BasicConv(48, name="branch5x5_1")(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, name="branch_pool")(_avg_pool_tf(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = BasicConv(64, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, name="branch1x1")(x)
    b7 = BasicConv(c7, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, name="branch_pool")(_avg_pool_tf(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, name="branch3x3_1")(x)
    b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
  max_pool_branch: bool = False  # FID's Mixed_7c max-pools (pytorch-fid FIDInceptionE_2)

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, name="branch1x1")(x)
    b3 = BasicConv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv(448, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    pooled = _max_pool(x, 1, pad=1) if self.max_pool_branch else _avg_pool_tf(x)
    bp = BasicConv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """InceptionV3-FID feature extractor.

  Input: float [B, H, W, C] in [0, 1], C = 1 (repeated to RGB) or 3; resized
  bilinearly to 299x299 (``resize_input``) and scaled to [-1, 1], as
  pytorch-fid does. Output: a tuple of the requested blocks' features:
  block 0 [B, h, w, 64] (first max pool), 1 [.., 192], 2 [.., 768], 3
  float32 [B, 2048] (final average pool, the FID features).
  """

  output_blocks: Sequence[int] = (3,)
  resize_input: bool = True

  @nn.compact
  def __call__(self, x):
    x = x.astype(jnp.float32)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if self.resize_input:
      x = jax.image.resize(x, (x.shape[0], 299, 299, 3), "bilinear", antialias=False)
    x = 2.0 * x - 1.0
    last = max(self.output_blocks)
    outs = []
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    if 0 in self.output_blocks:
      outs.append(x)
    if last >= 1:
      x = BasicConv(80, name="Conv2d_3b_1x1")(x)
      x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
      x = _max_pool(x, 2)
      if 1 in self.output_blocks:
        outs.append(x)
    if last >= 2:
      x = InceptionA(32, name="Mixed_5b")(x)
      x = InceptionA(64, name="Mixed_5c")(x)
      x = InceptionA(64, name="Mixed_5d")(x)
      x = InceptionB(name="Mixed_6a")(x)
      x = InceptionC(128, name="Mixed_6b")(x)
      x = InceptionC(160, name="Mixed_6c")(x)
      x = InceptionC(160, name="Mixed_6d")(x)
      x = InceptionC(192, name="Mixed_6e")(x)
      if 2 in self.output_blocks:
        outs.append(x)
    if last >= 3:
      x = InceptionD(name="Mixed_7a")(x)
      x = InceptionE(name="Mixed_7b")(x)
      x = InceptionE(max_pool_branch=True, name="Mixed_7c")(x)
      outs.append(jnp.mean(x, axis=(1, 2)))
    return tuple(outs)


def init_fid_inception(key: jax.Array, output_blocks: Sequence[int] = (3,)):
  """(module, randomly initialised variables). Random features: shapes only.

  Only the shapes come from flax (``jax.eval_shape``, no compilation of the
  21.8M-parameter graph); kernels are drawn N(0, 1/fan_in), BatchNorm scales
  and running variances are 1, biases and running means 0.
  """
  model = FIDInceptionV3(output_blocks=tuple(output_blocks))
  init_model = FIDInceptionV3(output_blocks=(3,), resize_input=False)
  shapes = jax.eval_shape(init_model.init, key, jnp.zeros((1, 75, 75, 3)))
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes))
  rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
  out = {}
  for path, leaf in flat.items():
    if path[-1] == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      value = rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in)
    elif path[-1] in ("scale", "var"):
      value = np.ones(leaf.shape, np.float32)
    else:
      value = np.zeros(leaf.shape, np.float32)
    out[path] = jnp.asarray(value)
  return model, flax.traverse_util.unflatten_dict(out)


def torch_state_dict_to_variables(state_dict: dict[str, Any], variables: dict) -> dict:
  """Maps a pytorch-fid / torchvision Inception state dict onto Flax variables.

  ``<path>.conv.weight`` [O, I, kh, kw] -> ``params/<path>/conv/kernel``
  [kh, kw, I, O]; ``<path>.bn.{weight, bias}`` -> ``params/.../bn/{scale,
  bias}``; ``<path>.bn.{running_mean, running_var}`` -> ``batch_stats``. Keys
  the Flax model lacks (``fc.*``, ``AuxLogits.*``, ``num_batches_tracked``) are
  ignored; a Flax variable missing from the state dict, or a shape mismatch,
  is an error naming the key.
  """
  sd = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        for k, v in state_dict.items()}
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
  out = {}
  for path, value in flat.items():
    collection, *mods, leaf = path
    prefix = ".".join(mods)
    if collection == "params" and leaf == "kernel":
      key = f"{prefix}.weight"
      arr = sd.get(key)
      if arr is not None and (arr.ndim != 4 or np.transpose(arr, (2, 3, 1, 0)).shape
                              != value.shape):
        expected = (value.shape[3], value.shape[2], value.shape[0], value.shape[1])
        raise ValueError(f"{key}: shape {arr.shape}, the Flax model expects {expected} "
                         f"(torch layout O, I, kh, kw)")
      arr = None if arr is None else np.transpose(arr, (2, 3, 1, 0))
    else:
      name = {("params", "scale"): "weight", ("params", "bias"): "bias",
              ("batch_stats", "mean"): "running_mean",
              ("batch_stats", "var"): "running_var"}[(collection, leaf)]
      key = f"{prefix}.{name}"
      arr = sd.get(key)
    if arr is None:
      raise KeyError(f"state dict has no {key!r} (needed for {'/'.join(path)})")
    if arr.shape != value.shape:
      raise ValueError(f"{key}: shape {arr.shape}, the Flax model expects {value.shape}")
    out[path] = jnp.asarray(arr, value.dtype)
  return flax.traverse_util.unflatten_dict(out)


def load_fid_inception(path: str, output_blocks: Sequence[int] = (3,)):
  """(module, variables) with weights from a user-supplied file: the pytorch-fid
  ``pt_inception-2015-12-05-*.pth`` (read with torch) or its .npz conversion."""
  model, variables = init_fid_inception(jax.random.key(0), output_blocks)
  if str(path).endswith(".npz"):
    sd = dict(np.load(path))
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f"reading {path} needs torch (pip install 'defects-jax[bench]'), or "
                        f"convert it to .npz on a machine that has torch") from e
    sd = torch.load(path, map_location="cpu", weights_only=True)
  return model, torch_state_dict_to_variables(sd, variables)


def features_in_batches(feature_fn: Callable[[jax.Array], jax.Array], images: np.ndarray,
                        batch_size: int = 50) -> np.ndarray:
  """Applies ``feature_fn`` (jit it once yourself) to ``images`` [N, H, W, C]
  batch by batch (the last batch padded, so one compilation) and returns
  float64 [N, D]."""
  out = []
  for start in range(0, len(images), batch_size):
    chunk = np.asarray(images[start:start + batch_size])
    pad = batch_size - len(chunk)
    if pad:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
    out.append(np.asarray(feature_fn(chunk), np.float64)[:batch_size - pad])
  return np.concatenate(out)


def fid(model, variables, real: np.ndarray, fake: np.ndarray, *, batch_size: int = 50) -> float:
  """FID between two image sets (float [N, H, W, C] in [0, 1]) with an
  InceptionV3-FID ``model``/``variables`` (:func:`load_fid_inception`)."""
  return _features_distance(lambda x: _pooled_features(model, variables, x), real, fake,
                            batch_size)


# The weights are an argument, not constants folded into the program (a closure
# over 24M parameters made XLA compile them into the executable); the module is
# static (linen modules hash by value), so one compilation per architecture and
# batch shape, across calls.
@functools.partial(jax.jit, static_argnums=0)
def _pooled_features(model, variables, x):
  return model.apply(variables, x)[-1]


def _features_distance(feature_fn, real, fake, batch_size: int) -> float:
  f_real = features_in_batches(feature_fn, real, batch_size)
  f_fake = features_in_batches(feature_fn, fake, batch_size)
  return frechet_distance(*feature_statistics(f_real), *feature_statistics(f_fake))


def domain_fid(feature_fn: Callable[[jax.Array], jax.Array], real: np.ndarray, fake: np.ndarray,
               *, batch_size: int = 50) -> float:
  """Frechet distance in the feature space of any network trained here, e.g. a
  defect classifier's pooled features (``lambda x: model.apply(v, x,
  train=False, return_features=True)[1]``). For datasets far from ImageNet,
  where Inception features say little; not comparable to published FIDs."""
  return _features_distance(jax.jit(feature_fn), real, fake, batch_size)


def _convert_main(argv):
  """python -m defects_jax.metrics.inception convert IN.pth OUT.npz"""
  if len(argv) != 3 or argv[0] != "convert":
    raise SystemExit(_convert_main.__doc__)
  import torch  # pylint: disable=g-import-not-at-top
  sd = torch.load(argv[1], map_location="cpu", weights_only=True)
  np.savez(argv[2], **{k: v.numpy() for k, v in sd.items()})
  print(f"wrote {argv[2]} ({len(sd)} arrays)")


if __name__ == "__main__":
  _convert_main(sys.argv[1:])
