"""The model zoo: parameter counts derived from the architecture tables equal
the zoo's (and torchvision's published numbers), shapes for every model and
input size, VGG feature taps by torchvision index, train/eval behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import models
from defects_jax.models import mobilenet
from defects_jax.models import vgg

# torchvision's documented parameter counts (1000 classes, RGB).
TORCHVISION = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
               "resnet101": 44_549_160, "mobilenet_v2": 3_504_872, "vgg16": 138_357_544,
               "vgg19": 143_667_240}


def conv(cin, cout, k, bias=False, groups=1):
  return k * k * cin // groups * cout + (cout if bias else 0)


def bn(c):
  return 2 * c


def derived_count(name, num_classes=1000, cin=3):
  """Parameters counted from the papers' architecture tables, independently
  of the model code."""
  if name.startswith("resnet"):
    blocks = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3),
              "resnet101": (3, 4, 23, 3)}[name]
    bottleneck = name in ("resnet50", "resnet101")
    exp = 4 if bottleneck else 1
    n, inp = conv(cin, 64, 7) + bn(64), 64
    for i, reps in enumerate(blocks):
      planes = 64 * 2 ** i
      for j in range(reps):
        stride = 2 if i and not j else 1
        if bottleneck:
          n += conv(inp, planes, 1) + conv(planes, planes, 3) + conv(planes, 4 * planes, 1)
          n += bn(planes) * 2 + bn(4 * planes)
        else:
          n += conv(inp, planes, 3) + conv(planes, planes, 3) + bn(planes) * 2
        if stride != 1 or inp != planes * exp:
          n += conv(inp, planes * exp, 1) + bn(planes * exp)
        inp = planes * exp
    return n + inp * num_classes + num_classes
  if name == "mobilenet_v2":
    n, inp = conv(cin, 32, 3) + bn(32), 32
    for t, c, reps, _ in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
      for _ in range(reps):
        hid = inp * t
        if t != 1:
          n += conv(inp, hid, 1) + bn(hid)
        n += conv(hid, hid, 3, groups=hid) + bn(hid) + conv(hid, c, 1) + bn(c)
        inp = c
    n += conv(320, 1280, 1) + bn(1280)
    return n + 1280 * num_classes + num_classes
  widths = [v for v in vgg.CFGS[name] if v != "M"]
  n, inp = 0, cin
  for w in widths:
    n, inp = n + conv(inp, w, 3, bias=True), w
  return n + 512 * 49 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * num_classes + num_classes


def param_count(model, shape):
  v = jax.eval_shape(lambda k: model.init(k, jnp.zeros(shape), train=False), jax.random.key(0))
  return sum(x.size for x in jax.tree.leaves(v["params"]))


@pytest.mark.parametrize("name", sorted(models.ZOO))
def test_parameter_counts_equal_the_architecture_and_torchvision(name):
  model = models.ZOO[name](num_classes=1000)
  assert param_count(model, (1, 224, 224, 3)) == derived_count(name) == TORCHVISION[name]
  # 1-channel, 6 classes, small inputs: counts follow the same tables.
  assert param_count(models.ZOO[name](num_classes=6), (1, 64, 64, 1)) == derived_count(
      name, 6, 1)


@pytest.mark.parametrize("name", sorted(models.ZOO))
@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (100, 1)])
def test_logit_shapes_for_every_model_and_size(name, size, channels):
  model = models.ZOO[name](num_classes=6)
  x = jnp.zeros((2, size, size, channels))
  out = jax.eval_shape(lambda k: model.apply(model.init(k, x, train=False), x, train=False),
                       jax.random.key(0))
  assert out.shape == (2, 6) and out.dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(models.ZOO))
def test_too_small_inputs_are_refused(name):
  model = models.ZOO[name](num_classes=6)
  with pytest.raises(ValueError, match="at least 32x32"):
    jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, 16, 40, 1)), train=False),
                   jax.random.key(0))


def test_vgg19_taps_by_torchvision_index():
  model = models.VGG19(num_classes=6)
  x = jnp.zeros((1, 64, 64, 3))
  kinds = vgg.layer_kinds(vgg.CFGS["vgg19"])
  assert len(kinds) == 37 and kinds[4] == "pool" and kinds[7] == "conv" and kinds[23] == "conv"
  taps = jax.eval_shape(lambda k: model.apply(model.init(k, x, train=False), x, tuple(
      range(7, 24)), method=models.VGG.features), jax.random.key(0))
  assert sorted(taps) == list(range(7, 24))
  assert taps[7].shape == (1, 32, 32, 128)   # conv2_2
  assert taps[9].shape == (1, 16, 16, 128)   # pool2
  assert taps[16].shape == (1, 16, 16, 256)  # conv3_4
  assert taps[23].shape == (1, 8, 8, 512)    # conv4_3
  with pytest.raises(ValueError, match="0..36"):
    jax.eval_shape(lambda k: model.apply(model.init(k, x, train=False), x, (40,),
                                         method=models.VGG.features), jax.random.key(0))


def test_vgg_taps_are_the_forward_prefix():
  model = models.VGG16(num_classes=3)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 32, 32, 1)), jnp.float32)
  # features only: the 102M-parameter classifier is not needed for the taps
  v = jax.jit(lambda k: model.init(k, x, (1, 4), method=models.VGG.features))(jax.random.key(0))
  taps = jax.jit(lambda v: model.apply(v, x, (1, 4), method=models.VGG.features))(v)
  conv0 = v["params"]["features_0"]
  manual = jax.nn.relu(models.conv2d(x, conv0["kernel"], padding=1) + conv0["bias"])
  np.testing.assert_allclose(taps[1], manual, atol=1e-5)
  assert taps[4].shape == (1, 16, 16, 64)


def test_adaptive_avg_pool_matches_torch_bins():
  x = jnp.arange(5.0).reshape(1, 5, 1, 1) * jnp.ones((1, 5, 3, 1))
  y = vgg.adaptive_avg_pool(x, (3, 1))
  # torch bins over 5 -> 3: [0, 2), [1, 4), [3, 5)
  np.testing.assert_allclose(y[0, :, 0, 0], [0.5, 2.0, 3.5])
  up = vgg.adaptive_avg_pool(jnp.ones((1, 1, 1, 2)) * 3.0, (7, 7))
  np.testing.assert_allclose(up, 3.0 * np.ones((1, 7, 7, 2)))


def test_make_divisible_is_torchvisions():
  assert [mobilenet.make_divisible(c * 0.5) for c in (32, 16, 24, 1280)] == [16, 8, 16, 640]
  assert mobilenet.make_divisible(1280 * 1.0) == 1280


def test_mobilenet_width_multiplier_and_train_mode():
  model = models.MobileNetV2(num_classes=4, width_mult=0.5)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 32, 32, 1)), jnp.float32)
  v = jax.jit(lambda key: model.init(key, x, train=False))(jax.random.key(0))  # jit: 2x faster
  assert v["params"]["features_0_0"]["kernel"].shape == (3, 3, 1, 16)
  assert v["params"]["features_18_0"]["kernel"].shape == (1, 1, 160, 1280)
  logits, new = jax.jit(lambda v, key: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                   rngs={"dropout": key}))(v, jax.random.key(1))
  assert logits.shape == (2, 4) and np.isfinite(logits).all()
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), v["batch_stats"],
                         new["batch_stats"])
  assert all(jax.tree.leaves(changed))


def test_resnet18_trains_one_step_and_returns_features():
  model = models.ResNet18(num_classes=3)
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 32, 32, 1)), jnp.float32)
  v = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
  logits, feats = jax.jit(lambda v: model.apply(v, x, train=False, return_features=True))(v)
  assert logits.shape == (2, 3) and feats.shape == (2, 512)

  def loss(p):
    out, _ = model.apply({"params": p, "batch_stats": v["batch_stats"]}, x, train=True,
                         mutable=["batch_stats"])
    return jnp.mean(out ** 2)
  grads = jax.jit(jax.grad(loss))(v["params"])
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["conv1"]["kernel"]).sum()) > 0
