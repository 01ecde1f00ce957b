"""torchvision-format state dicts <-> zoo variables.

With torch installed (the ``bench`` extra) the plain-PyTorch models of
bench/torch_models.py (torchvision's layout and key names) are converted and
their outputs compared; without torch those tests skip with the reason, and
the torch-free paths (.npz, round trips, errors) still run."""

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import models
from defects_jax.models import convert

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _torch_models():
  torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[bench]')")
  sys.path.insert(0, str(BENCH))
  try:
    import torch_models  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  return torch, torch_models


def _randomise_bn(torch, model):
  g = torch.Generator().manual_seed(0)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
        m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
        m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)


@pytest.mark.parametrize("name,channels", [("resnet18", 3), ("resnet50", 1),
                                           ("mobilenet_v2", 3), ("vgg16", 1)])
def test_torch_outputs_equal_after_conversion(name, channels):
  torch, tm = _torch_models()
  torch.manual_seed(0)
  tmodel = tm.build(name, num_classes=6, in_channels=channels).eval()
  _randomise_bn(torch, tmodel)
  assert sum(p.numel() for p in tmodel.parameters()) > 0
  x = np.random.default_rng(0).standard_normal((2, 48, 64, channels)).astype(np.float32)
  model = models.ZOO[name](num_classes=6)
  v = convert.from_torchvision(tmodel.state_dict(),
                               model.init(jax.random.key(1), jnp.asarray(x), train=False))
  y = np.asarray(model.apply(v, x, train=False))
  with torch.no_grad():
    want = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
  scale = np.abs(want).max()
  np.testing.assert_allclose(y / scale, want / scale, atol=1e-4)
  back = convert.to_torchvision(v)
  sd = {k: t.numpy() for k, t in tmodel.state_dict().items()
        if not k.endswith("num_batches_tracked")}
  assert set(back) == set(sd)
  for k in sd:
    np.testing.assert_allclose(back[k], sd[k], atol=1e-6, err_msg=k)


def test_torch_param_counts_equal_torchvision():
  _, tm = _torch_models()
  counts = {"resnet34": 21_797_672, "mobilenet_v2": 3_504_872, "vgg16": 138_357_544}
  for name, n in counts.items():
    assert sum(p.numel() for p in tm.build(name).parameters()) == n


def test_pth_file_is_read_with_torch(tmp_path):
  torch, tm = _torch_models()
  tmodel = tm.build("resnet18", num_classes=5)
  torch.save(tmodel.state_dict(), tmp_path / "r18.pth")
  sd = convert.load_state_dict(tmp_path / "r18.pth")
  assert set(sd) == set(tmodel.state_dict())
  model = models.ResNet18(num_classes=5)
  v = convert.from_torchvision(sd, model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                              train=False))
  np.testing.assert_allclose(v["params"]["fc"]["kernel"],
                             tmodel.fc.weight.detach().numpy().T)


@functools.cache
def _init_fn(name, classes, channels):
  model = models.ZOO[name](num_classes=classes)
  init = lambda key: model.init(key, jnp.zeros((1, 32, 32, channels)), train=False)
  # MobileNetV2's eager init dispatches its many small ops one by one: compiling
  # it once (cached per model) measured about 2x faster on the CI CPU.
  return model, (jax.jit(init) if name == "mobilenet_v2" else init)


def _flax(name, classes=4, channels=3, seed=0):
  model, init = _init_fn(name, classes, channels)
  return model, init(jax.random.key(seed))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_npz_round_trip_without_torch(name, tmp_path):
  _, v = _flax(name)
  path = convert.save_npz(convert.to_torchvision(v), tmp_path / f"{name}.npz")
  sd = convert.load_state_dict(path)
  _, target = _flax(name, seed=1)
  back = convert.from_torchvision(sd, target)
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(v)):
    np.testing.assert_array_equal(a, b)


def test_rgb_stem_loads_into_a_grey_model_exactly():
  rgb_model, rgb = _flax("resnet18", channels=3)
  grey_model, grey = _flax("resnet18", channels=1, seed=2)
  grey = convert.from_torchvision(convert.to_torchvision(rgb), grey)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 40, 40, 1)), jnp.float32)
  np.testing.assert_allclose(grey_model.apply(grey, x, train=False),
                             rgb_model.apply(rgb, jnp.repeat(x, 3, axis=-1), train=False),
                             atol=1e-4)


def test_vgg_classifier_flattening_is_permuted():
  """torch flattens (c, h, w); the converted first FC layer must read our
  (h, w, c) flattening of the same features."""
  model, v = _flax("vgg16")
  sd = convert.to_torchvision(v)
  w_torch = sd["classifier.0.weight"]  # [4096, 512*7*7] in (c, h, w) order
  feats = np.random.default_rng(0).standard_normal((512, 7, 7)).astype(np.float32)
  ours = feats.transpose(1, 2, 0).reshape(-1) @ np.asarray(v["params"]["classifier_0"]["kernel"])
  np.testing.assert_allclose(ours, w_torch @ feats.reshape(-1), rtol=1e-4, atol=1e-4)


def test_mismatches_are_named():
  _, v = _flax("resnet18", classes=4)
  sd = convert.to_torchvision(v)
  _, target10 = _flax("resnet18", classes=10)
  with pytest.raises(convert.ConversionError, match=r"fc\.weight.*skip_head=True"):
    convert.from_torchvision(sd, target10)
  head_kept = convert.from_torchvision(sd, target10, skip_head=True)
  np.testing.assert_array_equal(head_kept["params"]["fc"]["kernel"],
                                target10["params"]["fc"]["kernel"])
  np.testing.assert_array_equal(head_kept["params"]["conv1"]["kernel"],
                                v["params"]["conv1"]["kernel"])
  partial = dict(sd)
  del partial["layer1.0.bn1.running_var"]
  partial["layer9.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
  with pytest.raises(convert.ConversionError) as e:
    convert.from_torchvision(partial, v)
  assert "layer9.0.conv1.weight" in str(e.value)
  assert "batch_stats/layer1_0/bn1/var" in str(e.value)
  _, mobile = _flax("mobilenet_v2")
  with pytest.raises(convert.ConversionError, match="no place in the model"):
    convert.from_torchvision(sd, mobile)


def test_missing_or_unknown_files_say_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="not downloaded"):
    convert.load_state_dict(tmp_path / "resnet18.pth")
  (tmp_path / "w.safetensors").write_bytes(b"x")
  with pytest.raises(convert.ConversionError, match="unknown weights format"):
    convert.load_state_dict(tmp_path / "w.safetensors")


def test_key_mapping_is_mechanical():
  assert convert.flax_path("layer1.0.downsample.0.weight") == (("layer1_0", "downsample_0"),
                                                               "weight")
  assert convert.flax_path("features.2.conv.1.0.weight") == (("features_2", "conv_1_0"),
                                                             "weight")
  for key in ("layer1.0.downsample.0.weight", "features.2.conv.1.0.weight", "bn1.bias",
              "classifier.6.bias", "features.18.1.running_mean"):
    assert convert.torch_key(*convert.flax_path(key)) == key
