"""torchvision-format state dicts <-> the zoo's Flax variables.

Pretrained weights cannot be downloaded on our machines: bring your own file,
either a ``.pth`` / ``.pt`` written by ``torch.save(model.state_dict())`` (read
with torch, from the ``bench`` extra) or an ``.npz`` of the same keys (no torch
needed; :func:`save_npz` writes one, e.g. from a machine that has torchvision)::

    variables = model.init(key, x, train=False)
    sd = convert.load_state_dict("resnet18-f37072fd.pth")
    variables = convert.from_torchvision(sd, variables, skip_head=True)

The zoo's module names mirror torchvision's keys, so the mapping is mechanical:
``layer1.0.downsample.0.weight`` -> ``params/layer1_0/downsample_0/kernel``
(a name followed by numeric indices joins them with "_"). Per tensor:

* conv weight [O, I/g, kh, kw] -> kernel [kh, kw, I/g, O];
* linear weight [O, I] -> kernel [I, O] (VGG's first classifier layer also
  permutes its input from torch's (c, h, w) flattening to our (h, w, c));
* BatchNorm weight/bias -> params scale/bias, running_mean/var ->
  batch_stats mean/var; ``num_batches_tracked`` is ignored.

Every target leaf must be filled and every source key used, or a
:class:`ConversionError` names the keys; shapes are checked against the target.
A 3-channel first conv loads into a 1-channel model by summing its input
channels (exact for a grey image fed as three equal channels).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
from flax import traverse_util

IGNORED_SUFFIXES = ("num_batches_tracked",)
HEADS = ("fc", "classifier_1", "classifier_6")


class ConversionError(ValueError):
  """A state dict that does not fit the target model (names the keys)."""


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
  """Reads a torchvision-format state dict from ``.pth``/``.pt`` (needs torch)
  or ``.npz``; values as float32 numpy arrays (int buffers kept)."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(
        f"{path}: no weights file. Pretrained weights are not downloaded by defects-jax; "
        f"pass a torchvision state dict (.pth with torch installed, or .npz) you already have.")
  if path.suffix == ".npz":
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  if path.suffix in (".pth", ".pt"):
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f"{path}: reading .pth needs torch (pip install -e '.[bench]'), or "
                        f"export the state dict to .npz with defects_jax.models.convert."
                        f"save_npz on a machine that has torch") from e
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
      sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
      raise ConversionError(f"{path}: expected a state dict (a mapping of names to tensors), "
                            f"got {type(sd).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in sd.items()}
  raise ConversionError(f"{path}: unknown weights format {path.suffix!r}; expected .pth, .pt "
                        f"or .npz")


def save_npz(state_dict: Mapping[str, Any], path: str | Path) -> Path:
  """Writes a state dict (torch tensors or arrays) as ``.npz`` (torch-free reading)."""
  arrays = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in state_dict.items()}
  path = Path(path)
  np.savez(path, **arrays)
  return path


def flax_path(torch_key: str) -> tuple[tuple[str, ...], str]:
  """``"layer1.0.conv1.weight"`` -> (("layer1_0", "conv1"), "weight")."""
  parts = torch_key.split(".")
  modules: list[str] = []
  for p in parts[:-1]:
    if p.isdigit() and modules:
      modules[-1] += f"_{p}"
    else:
      modules.append(p)
  return tuple(modules), parts[-1]


def torch_key(modules: tuple[str, ...], name: str) -> str:
  """Inverse of :func:`flax_path`."""
  return ".".join(m.replace("_", ".") if re.fullmatch(r"[A-Za-z]+\d*(_\d+)+", m) else m
                  for m in modules) + "." + name


def _to_flax(key: str, value: np.ndarray, chw_in: tuple | None):
  """One torch tensor -> its flax leaf (collection, leaf name, array)."""
  modules, name = flax_path(key)
  v = np.asarray(value, np.float32)
  if name == "weight" and v.ndim == 4:
    return "params", "kernel", v.transpose(2, 3, 1, 0)
  if name == "weight" and v.ndim == 2:
    if chw_in is not None:  # torch flattens (c, h, w); we flatten (h, w, c)
      c, h, w = chw_in
      v = v.reshape(v.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(v.shape[0], -1)
    return "params", "kernel", v.T
  if name == "weight" and v.ndim == 1:
    return "params", "scale", v
  if name == "bias":
    return "params", "bias", v
  if name == "running_mean":
    return "batch_stats", "mean", v
  if name == "running_var":
    return "batch_stats", "var", v
  raise ConversionError(f"{key}: no Flax counterpart for a {name!r} tensor of shape {v.shape}")


def from_torchvision(state_dict: Mapping[str, Any], variables: Mapping[str, Any], *,
                     skip_head: bool = False) -> dict:
  """Returns ``variables`` with every leaf replaced from a torchvision state dict.

  Args:
    state_dict: torchvision-format {key: tensor or array} for the same
      architecture (e.g. from :func:`load_state_dict`).
    variables: the target's variables (from ``model.init``), giving the tree
      and shapes.
    skip_head: keep the target's classifier (``fc`` / ``classifier_1`` /
      ``classifier_6``), e.g. ImageNet weights into a 6-class model.

  Returns:
    A new {"params": ..., "batch_stats": ...} dict.

  Raises:
    ConversionError: naming missing keys, unused keys or shape mismatches.
  """
  flat = {("/".join(k)): v for k, v in traverse_util.flatten_dict(
      jax.tree.map(np.asarray, dict(variables))).items()}
  out = dict(flat)
  filled, unused, mismatched = set(), [], []
  vgg_chw = None
  if any(k.startswith("classifier.0.") for k in state_dict):
    last_conv = max((k for k in state_dict if k.startswith("features.") and
                     k.endswith(".weight")), key=lambda k: int(k.split(".")[1]), default=None)
    if last_conv is not None:
      vgg_chw = (np.shape(state_dict[last_conv])[0], 7, 7)
  for key, value in state_dict.items():
    if key.endswith(IGNORED_SUFFIXES):
      continue
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    modules, _ = flax_path(key)
    if skip_head and modules and modules[0] in HEADS:
      continue
    chw = vgg_chw if modules == ("classifier_0",) and value.ndim == 2 else None
    collection, leaf, array = _to_flax(key, value, chw)
    path = "/".join((collection,) + modules + (leaf,))
    if path not in flat:
      unused.append(f"{key} (-> {path})")
      continue
    target = flat[path].shape
    if array.shape != target and leaf == "kernel" and array.ndim == 4 and target[2] == 1 \
        and array.shape[2] == 3 and array.shape[3] == target[3]:
      array = array.sum(axis=2, keepdims=True)  # RGB stem -> grey stem
    if array.shape != target:
      mismatched.append(f"{key}: {value.shape} -> {array.shape}, model expects {target}")
      continue
    out[path] = array.astype(flat[path].dtype)
    filled.add(path)
  missing = [p for p in flat if p not in filled and not (
      skip_head and p.split("/")[1] in HEADS)]
  problems = []
  if mismatched:
    problems.append("shape mismatches: " + "; ".join(mismatched))
  if unused:
    problems.append(f"{len(unused)} state-dict keys with no place in the model: "
                    + ", ".join(unused[:8]) + (" ..." if len(unused) > 8 else ""))
  if missing:
    problems.append(f"{len(missing)} model variables not in the state dict: "
                    + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
  if problems:
    raise ConversionError("state dict does not fit the model: " + " | ".join(problems)
                          + (" (different num_classes? pass skip_head=True)"
                             if any(h in " ".join(mismatched) for h in ("fc.", "classifier."))
                             else ""))
  nested = traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in out.items()})
  return jax.tree.map(jax.numpy.asarray, nested)


def to_torchvision(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The inverse: Flax variables -> a torchvision-format state dict of numpy
  arrays (``num_batches_tracked`` omitted). ``save_npz`` it to hand weights to
  PyTorch code."""
  flat = traverse_util.flatten_dict(jax.tree.map(np.asarray, dict(variables)))
  names = {("params", "kernel"): "weight", ("params", "scale"): "weight",
           ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
           ("batch_stats", "var"): "running_var"}
  sd = {}
  for path, v in flat.items():
    collection, modules, leaf = path[0], path[1:-1], path[-1]
    v = np.asarray(v, np.float32)
    if leaf == "kernel" and v.ndim == 4:
      v = v.transpose(3, 2, 0, 1)
    elif leaf == "kernel" and v.ndim == 2:
      if modules == ("classifier_0",):
        c = v.shape[0] // 49
        v = v.reshape(7, 7, c, -1).transpose(2, 0, 1, 3).reshape(v.shape[0], -1)
      v = v.T
    sd[torch_key(modules, names[(collection, leaf)])] = v
  return sd
